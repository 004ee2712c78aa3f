#include "container.h"

#include "cgroup.h"
#include "mounts.h"
#include "seccomp.h"
#include "user.h"
#include "userns.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <termios.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void tsfig_child_fail(int fd, tsfig_error_t *err)
{
    if (err->code == 0)
        err->code = 125;
    (void)tsfig_write_all(fd, err, sizeof *err);
    _exit(err->code);
}

int tsfig_send_fd(int sock, int fd)
{
    char byte = 'T';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    return TEMP_FAILURE_RETRY(sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 ? -1 : 0;
}

int tsfig_recv_fd(int sock)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    if (TEMP_FAILURE_RETRY(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) <= 0)
        return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (cm == NULL || cm->cmsg_type != SCM_RIGHTS) {
        errno = EBADMSG;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    return fd;
}

static int loopback_up(tsfig_error_t *err)
{
    cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    tsfig_fmt(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return tsfig_make_error(err, errno, "network", "get flags of `lo`");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return tsfig_make_error(err, errno, "network", "bring up `lo`");
    return 0;
}

static int join_netns(const char *netns, tsfig_error_t *err)
{
    if (strcmp(netns, "new") == 0)
        return loopback_up(err);
    if (strcmp(netns, "host") == 0)
        return 0;
    cleanup_close int fd = TEMP_FAILURE_RETRY(open(netns, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return tsfig_make_error(err, errno, "network", "open netns `%s`", netns);
    if (setns(fd, CLONE_NEWNET) < 0)
        return tsfig_make_error(err, errno, "network", "join netns `%s`", netns);
    return 0;
}

/* Only sysctls that belong to a namespace the container owns (Docker's validation). */
static int sysctl_allowed(const struct tsfig_conf *c, const char *key)
{
    static const char *const ipc[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
                                      NULL};
    for (int i = 0; ipc[i]; i++)
        if (strcmp(key, ipc[i]) == 0)
            return 1;
    if (strncmp(key, "fs.mqueue.", 10) == 0)
        return 1;
    return strncmp(key, "net.", 4) == 0 && strcmp(c->netns, "host") != 0;
}

static int apply_sysctls(const struct tsfig_conf *c, tsfig_error_t *err)
{
    for (size_t i = 0; i < c->n_sysctls; i++) {
        const char *key = c->sysctls[i].key;
        char path[PATH_MAX], step[128];
        tsfig_fmt(step, sizeof step, "sysctl %s", key);
        if (!sysctl_allowed(c, key))
            return tsfig_make_error(err, EPERM, step, "sysctl `%s` is not namespaced", key);
        tsfig_fmt(path, sizeof path, "/proc/sys/%s", key);
        for (char *p = path + 10; *p; p++)
            if (*p == '.')
                *p = '/';
        if (tsfig_write_file(path, c->sysctls[i].value, step, err) < 0)
            return -1;
    }
    return 0;
}

int tsfig_apply_rlimits(const struct tsfig_conf *c, tsfig_error_t *err)
{
    for (size_t i = 0; i < c->n_rlimits; i++) {
        const struct tsfig_rlimit *r = &c->rlimits[i];
        struct rlimit cur, want = {.rlim_cur = r->soft, .rlim_max = r->hard};
        if (getrlimit(r->resource, &cur) < 0)
            return tsfig_make_error(err, errno, "rlimit", "get rlimit `%s`", r->name);
        if (cur.rlim_max != RLIM_INFINITY && (r->hard == RLIM_INFINITY || r->hard > cur.rlim_max))
            return tsfig_make_error(err, EPERM, "rlimit", "rlimit `%s` hard limit %llu is above the current hard limit %llu",
                                    r->name, (unsigned long long)r->hard, (unsigned long long)cur.rlim_max);
        if (setrlimit(r->resource, &want) < 0)
            return tsfig_make_error(err, errno, "rlimit", "set rlimit `%s`", r->name);
    }
    char v[16];
    tsfig_fmt(v, sizeof v, "%d", c->oom_score_adj);
    return tsfig_write_file("/proc/self/oom_score_adj", v, "oom_score_adj", err);
}

static int setup_tty(int sock, tsfig_error_t *err)
{
    cleanup_close int master = TEMP_FAILURE_RETRY(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (master < 0)
        return tsfig_make_error(err, errno, "tty", "open `/dev/ptmx`");
    char name[64];
    if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0)
        return tsfig_make_error(err, errno, "tty", "unlock the pty");
    cleanup_close int slave = TEMP_FAILURE_RETRY(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (slave < 0)
        return tsfig_make_error(err, errno, "tty", "open `%s`", name);
    if (tsfig_send_fd(sock, master) < 0)
        return tsfig_make_error(err, errno, "tty", "send the pty master");
    /* /dev/console is the pty slave, as with runc */
    cleanup_close int console = TEMP_FAILURE_RETRY(open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (console < 0 || mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
        return tsfig_make_error(err, errno, "tty", "bind `%s` to `/dev/console`", name);
    if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
        return tsfig_make_error(err, errno, "tty", "make `%s` the controlling terminal", name);
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            return tsfig_make_error(err, errno, "tty", "dup2 the pty");
    return 0;
}

static int setup_stdio(struct tsfig_child_fds *f, tsfig_error_t *err)
{
    int fds[3] = {f->stdin_fd, f->stdout_fd, f->stderr_fd};
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        if (dup2(fds[i], i) < 0)
            return tsfig_make_error(err, errno, "stdio", "dup2 stdio");
        if (fds[i] > 2)
            close(fds[i]);
    }
    return 0;
}

/* Everything that runs as root with the full capability set, up to (not including) the privilege drop. */
static int init_container(const struct tsfig_conf *c, struct tsfig_child_fds *f, tsfig_error_t *err)
{
    char b;
    if (TEMP_FAILURE_RETRY(read(f->gate, &b, 1)) != 1)
        _exit(125);
    close(f->gate);
    /* [SEC] into the container's cgroups before anything else (by itself: see tsfig_cgroup_join_self) */
    if (tsfig_cgroup_join_self(c, err) < 0)
        return -1;
    if (unshare(CLONE_NEWCGROUP) < 0)
        return tsfig_make_error(err, errno, "cgroup namespace", "unshare cgroup namespace");
    if (join_netns(c->netns, err) < 0)
        return -1;
    if (tsfig_mounts_setup(c, err) < 0)
        return -1;
    if (c->hostname != NULL && sethostname(c->hostname, strlen(c->hostname)) < 0)
        return tsfig_make_error(err, errno, "hostname", "set hostname `%s`", c->hostname);
    if (apply_sysctls(c, err) < 0 || tsfig_mounts_finalize(c, err) < 0 || tsfig_apply_rlimits(c, err) < 0)
        return -1;
    if (c->tty && setup_tty(f->tty_sock, err) < 0)
        return -1;
    if (!c->tty && setsid() < 0)
        return tsfig_make_error(err, errno, "setsid", "setsid");
    /* [SEC] last: every namespace, mount, sysctl and rlimit is set; from here on root is the range's first id */
    return tsfig_userns_enter(c, err);
}

void tsfig_container_main(const struct tsfig_conf *c, struct tsfig_child_fds *f)
{
    tsfig_error_t err = {0};
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    umask(022);
    if (setup_stdio(f, &err) < 0 || init_container(c, f, &err) < 0)
        tsfig_child_fail(f->err, &err);
    if (f->tty_sock >= 0)
        close(f->tty_sock);
    tsfig_exec_command(c, c->user, c->cwd, c->env, c->n_env, TSFIG_EXEC_MAIN | (c->init ? TSFIG_EXEC_INIT : 0), f->err);
}

static int enter_cwd(const char *cwd, int create, tsfig_error_t *err)
{
    if (create) {
        struct stat st;
        if (stat(cwd, &st) == 0 && !S_ISDIR(st.st_mode))
            return tsfig_make_error(err, ENOTDIR, "cwd", "cwd `%s` is not a directory", cwd);
        if (tsfig_mkdir_p(cwd, 0755) < 0)
            return tsfig_make_error(err, errno, "cwd", "create cwd `%s`", cwd);
    }
    if (chdir(cwd) < 0)
        return tsfig_make_error(err, errno, "cwd", "chdir to cwd `%s`", cwd);
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf) == NULL || buf[0] != '/')
        return tsfig_make_error(err, errno ? errno : EPERM, "cwd", "cwd `%s` is outside the container root", cwd);
    return 0;
}

static const char *env_get(char **env, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
            return env[i] + kl + 1;
    return NULL;
}

/* PATH lookup as execvp does it, telling "not found" (127) from "not executable" (126). */
static int lookup(const char *arg0, const char *path, char *out, size_t cap, tsfig_error_t *err)
{
    struct stat st;
    if (strchr(arg0, '/') != NULL) {
        if (tsfig_fmt(out, cap, "%s", arg0) < 0 || stat(out, &st) < 0) {
            tsfig_make_error(err, errno, "exec", "exec: \"%s\": stat %s", arg0, arg0);
            return tsfig_error_code(err, errno == ENOENT || errno == ENOTDIR ? 127 : 126);
        }
        return 0;
    }
    int found_noexec = 0;
    char dirs[8192];
    tsfig_fmt(dirs, sizeof dirs, "%s", path);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (tsfig_fmt(out, cap, "%s/%s", *d ? d : ".", arg0) < 0 || stat(out, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (access(out, X_OK) == 0)
            return 0;
        found_noexec = 1;
    }
    tsfig_make_error(err, found_noexec ? EACCES : ENOENT, "exec", "exec: \"%s\": executable file not found in $PATH",
                     arg0);
    return tsfig_error_code(err, found_noexec ? 126 : 127);
}

static char **build_env(char **env, size_t n_env, const char *home)
{
    char **out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < n_env; i++)
        tsfig_strv_push(&out, &n, env[i]);
    if (env_get(env, n_env, "PATH") == NULL)
        tsfig_strv_push(&out, &n, "PATH=" DEFAULT_PATH);
    if (env_get(env, n_env, "HOME") == NULL) {
        char h[PATH_MAX + 8];
        tsfig_fmt(h, sizeof h, "HOME=%s", home);
        tsfig_strv_push(&out, &n, h);
    }
    if (out == NULL)
        tsfig_strv_push(&out, &n, "PATH=" DEFAULT_PATH);
    return out;
}

static int drop_privileges(const struct tsfig_conf *c, const struct tsfig_ids *ids, const char *cwd, tsfig_error_t *err)
{
    int seccomp = c->seccomp_default && !c->privileged;
    /* Without no_new_privs the filter can only be installed while CAP_SYS_ADMIN is still held (runc's order). */
    if (seccomp && !c->no_new_privs && tsfig_seccomp_load_default(c->caps, err) < 0)
        return -1;
    if (close_range(3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        return tsfig_make_error(err, errno, "close fds", "close_range");
    if (tsfig_caps_apply(c->caps | c->exec_extra_caps, ids, err) < 0)
        return -1;
    if (enter_cwd(cwd, 0, err) < 0)
        return -1;
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return tsfig_make_error(err, errno, "no_new_privs", "set no_new_privs");
    if (seccomp && c->no_new_privs && tsfig_seccomp_load_default(c->caps, err) < 0)
        return -1;
    return 0;
}

/* The parent-death signal the container's PID 1 keeps: without a cgroup nothing else could find and kill the
 * container once its monitor is gone (kill -9, OOM), so it dies with the monitor and its pid namespace with it. Set
 * after the last credential change (which clears it); an execve that gains privileges (setuid) clears it too. */
static int main_pdeathsig(const struct tsfig_conf *c, int flags)
{
    return (flags & TSFIG_EXEC_MAIN) && !tsfig_cgroup_enabled(c) ? SIGKILL : 0;
}

static void do_exec(const struct tsfig_conf *c, char **envp, int pdeathsig, int err_fd)
{
    tsfig_error_t err = {0};
    char path[PATH_MAX];
    const char *search = NULL;
    for (char **e = envp; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            search = *e + 5;
    if (lookup(c->args[0], search ? search : DEFAULT_PATH, path, sizeof path, &err) < 0)
        tsfig_child_fail(err_fd, &err);
    prctl(PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0);
    execve(path, c->args, envp);
    int e = errno;
    tsfig_make_error(&err, e, "exec", "exec `%s`", c->args[0]);
    tsfig_error_code(&err, e == ENOENT ? 127 : 126);
    tsfig_child_fail(err_fd, &err);
}

void tsfig_exec_command(const struct tsfig_conf *c, const char *user, const char *cwd, char **env, size_t n_env,
                        int flags, int err_fd)
{
    tsfig_error_t err = {0};
    struct tsfig_ids ids;
    if (tsfig_user_resolve(user, c->group_add, c->n_group_add, &ids, &err) < 0)
        tsfig_child_fail(err_fd, &err);
    if (enter_cwd(cwd, 1, &err) < 0)
        tsfig_child_fail(err_fd, &err);
    char **envp = build_env(env, n_env, ids.home);
    if (drop_privileges(c, &ids, cwd, &err) < 0)
        tsfig_child_fail(err_fd, &err);
    if (!(flags & TSFIG_EXEC_INIT))
        do_exec(c, envp, main_pdeathsig(c, flags), err_fd);
    prctl(PR_SET_PDEATHSIG, main_pdeathsig(c, flags), 0, 0, 0);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid < 0) {
        tsfig_make_error(&err, errno, "init", "fork the command");
        tsfig_child_fail(err_fd, &err);
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        do_exec(c, envp, 0, err_fd);
    }
    close(err_fd);
    /* PID 1 keeps only the container's stdio: every other fd it inherited from the monitor (log, control and attach
     * sockets, pipes) is the host's, not the container's. */
    tsfig_close_from(3);
    tsfig_minit_run(pid);
}
