/* `tsfig-runtime exec <dir> [--user U] [--cwd D] [--env K=V]... [--tty | --detach] -- ARG...`: run a process inside
 * a running container: join its cgroups and namespaces (through a pidfd), fork into its pid namespace, apply the
 * container's capabilities, no_new_privs and seccomp, and exec. Non-dumpable while it works (CVE-2019-5736).
 * With --detach, the container's monitor forks a keeper (own session, stdio on /dev/null) that joins and execs
 * instead, reports success and stays to reap the process; the command returns as soon as the process has execve'd. */
#include "cgroup.h"
#include "commands.h"
#include "conf.h"
#include "container.h"
#include "seccomp.h"
#include "userns.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

struct exec_opts {
    const char *dir, *user, *cwd;
    char **env;
    size_t n_env;
    char **args;
    int tty, detach, no_stdin, privileged;
};

static int report_fd(void)
{
    const char *s = getenv("_TSFIG_SYNC_FD");
    int64_t fd;
    if (s == NULL || tsfig_parse_int64(s, &fd) < 0 || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0)
        return STDERR_FILENO;
    return (int)fd;
}

static int fail(tsfig_error_t *err)
{
    tsfig_write_error(report_fd(), err);
    return err->code ? err->code : 125;
}

static int parse_args(int argc, char **argv, struct exec_opts *o, tsfig_error_t *err)
{
    memset(o, 0, sizeof *o);
    if (argc < 2)
        return tsfig_make_error(err, EINVAL, "usage", "usage: tsfig-runtime exec DIR [OPTIONS] -- ARG...");
    o->dir = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (i + 1 >= argc)
                break;
            o->args = argv + i + 1;
            if (o->tty && o->detach)
                return tsfig_make_error(err, EINVAL, "usage", "`--tty` and `--detach` cannot be combined");
            return 0;
        }
        if (strcmp(a, "--tty") == 0) {
            o->tty = 1;
            continue;
        }
        if (strcmp(a, "--detach") == 0) {
            o->detach = 1;
            continue;
        }
        if (strcmp(a, "--no-stdin") == 0) {
            o->no_stdin = 1;
            continue;
        }
        if (strcmp(a, "--privileged") == 0) {
            o->privileged = 1;
            continue;
        }
        if (i + 1 >= argc)
            return tsfig_make_error(err, EINVAL, "usage", "option `%s` needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--user") == 0)
            o->user = v;
        else if (strcmp(a, "--cwd") == 0)
            o->cwd = v;
        else if (strcmp(a, "--env") == 0 && strchr(v, '=') != NULL && v[0] != '=')
            tsfig_strv_push(&o->env, &o->n_env, v);
        else
            return tsfig_make_error(err, EINVAL, "usage", "invalid option `%s`", a);
    }
    return tsfig_make_error(err, EINVAL, "usage", "missing `--` and command");
}

static long long json_num(const char *json, const char *key)
{
    char k[64];
    tsfig_fmt(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(json, k);
    return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

static long long start_time(long long pid)
{
    char path[64], buf[1024];
    tsfig_fmt(path, sizeof path, "/proc/%lld/stat", pid);
    if (tsfig_read_small(path, buf, sizeof buf) <= 0)
        return -1;
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoll(p + 1, NULL, 10) : -1;
}

/* The container's PID 1 from status, checked against its monitor so a reused pid is never joined. */
static pid_t container_pid(const struct tsfig_conf *c, tsfig_error_t *err)
{
    cleanup_free char *st = tsfig_read_all(c->status, NULL);
    if (st == NULL)
        return tsfig_make_error(err, errno, "status", "read `%s`", c->status);
    if (strstr(st, "\"state\":\"running\"") == NULL)
        return tsfig_make_error(err, 0, "status", "container `%s` is not running", c->name);
    long long pid = json_num(st, "pid"), mon = json_num(st, "monitor"), mstart = json_num(st, "monitorStart");
    char path[64], buf[2048];
    tsfig_fmt(path, sizeof path, "/proc/%lld/status", pid);
    const char *pp = tsfig_read_small(path, buf, sizeof buf) > 0 ? strstr(buf, "PPid:") : NULL;
    if (pid <= 0 || start_time(mon) != mstart || pp == NULL || strtoll(pp + 5, NULL, 10) != mon)
        return tsfig_make_error(err, ESRCH, "status", "container `%s` is not running", c->name);
    return (pid_t)pid;
}

static char **merge_env(const struct tsfig_conf *c, const struct exec_opts *o, size_t *n)
{
    char **env = NULL;
    *n = 0;
    for (size_t i = 0; i < c->n_env; i++) {
        size_t kl = strcspn(c->env[i], "=") + 1;
        int overridden = 0;
        for (size_t j = 0; j < o->n_env; j++)
            overridden |= strncmp(o->env[j], c->env[i], kl) == 0;
        if (!overridden)
            tsfig_strv_push(&env, n, c->env[i]);
    }
    for (size_t j = 0; j < o->n_env; j++)
        tsfig_strv_push(&env, n, o->env[j]);
    return env;
}

int tsfig_exec_join(const struct tsfig_conf *c, pid_t pid, struct tsfig_exec_join *j, tsfig_error_t *err)
{
    j->n_cgroup = 0;
    cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return tsfig_make_error(err, errno, "exec", "open pidfd of `%d`", (int)pid);
    int n = tsfig_cgroup_open_join(c, j->cgroup_fds, err);
    if (n < 0)
        return -1;
    j->n_cgroup = n;
    if (tsfig_userns_open(c, pid, err) < 0) {
        tsfig_exec_join_release(j);
        return -1;
    }
    int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWCGROUP;
    if (strcmp(c->netns, "host") != 0)
        flags |= CLONE_NEWNET;
    if (setns(pidfd, flags) < 0) {
        tsfig_exec_join_release(j);
        return tsfig_make_error(err, errno, "setns", "join the namespaces of `%d`", (int)pid);
    }
    return 0;
}

int tsfig_exec_enter_cgroup(struct tsfig_exec_join *j, tsfig_error_t *err)
{
    int r = tsfig_cgroup_join_fds(j->cgroup_fds, j->n_cgroup, err);
    tsfig_exec_join_release(j);
    return r;
}

void tsfig_exec_join_release(struct tsfig_exec_join *j)
{
    for (int i = 0; i < j->n_cgroup; i++)
        close(j->cgroup_fds[i]);
    j->n_cgroup = 0;
}

void tsfig_exec_in_container(const struct tsfig_conf *c, const char *user, const char *cwd, char **env, size_t n_env,
                             int err_fd)
{
    tsfig_error_t err = {0};
    if (tsfig_apply_rlimits(c, &err) < 0 || tsfig_userns_enter(c, &err) < 0)
        tsfig_child_fail(err_fd, &err);
    tsfig_exec_command(c, user, cwd, env, n_env, 0, err_fd);
}

static void relay(int master, pid_t child)
{
    struct termios saved, raw;
    int is_tty = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (is_tty) {
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        struct winsize ws;
        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
            ioctl(master, TIOCSWINSZ, &ws);
    }
    int in_open = 1;
    char buf[8192];
    for (;;) {
        struct pollfd p[2] = {{.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}, {.fd = master, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) {
                in_open = 0;
                (void)tsfig_write_all(master, "\x04", 1);
            } else {
                (void)tsfig_write_all(master, buf, (size_t)n);
            }
        }
        if (p[1].revents) {
            ssize_t n = read(master, buf, sizeof buf);
            if (n <= 0)
                break;
            (void)tsfig_write_all(STDOUT_FILENO, buf, (size_t)n);
        }
    }
    if (is_tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    (void)child;
}

static volatile sig_atomic_t forward_pid;

static void forward_signal(int sig)
{
    if (forward_pid > 0)
        kill((pid_t)forward_pid, sig);
}

/* Relays the caller's stdin to the process's stdin pipe and its stdout/stderr pipes to ours until both are closed or,
 * once the process has exited, nothing more is pending. Signals that would stop the caller (Ctrl-C reaches this
 * helper's process group, no longer the process) are passed on to the process. */
static void relay_pipes(int pipes[3], pid_t child, int no_stdin)
{
    forward_pid = child;
    struct sigaction sa = {.sa_handler = forward_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    int in = no_stdin ? -1 : STDIN_FILENO, exited = pidfd < 0;
    if (no_stdin) {
        close(pipes[0]);
        pipes[0] = -1;
    }
    if (pipes[0] >= 0)
        fcntl(pipes[0], F_SETFL, O_NONBLOCK); /* never blocks the relay of its output (a `cat` would deadlock) */
    char buf[65536], inbuf[65536];
    size_t pending = 0, off = 0;
    while (pipes[1] >= 0 || pipes[2] >= 0) {
        struct pollfd p[5] = {{.fd = pending == 0 ? in : -1, .events = POLLIN},
                              {.fd = pipes[1], .events = POLLIN},
                              {.fd = pipes[2], .events = POLLIN},
                              {.fd = exited ? -1 : pidfd, .events = POLLIN},
                              {.fd = pending > 0 ? pipes[0] : -1, .events = POLLOUT}};
        int n = poll(p, 5, exited ? 50 : -1);
        if (n < 0 && errno != EINTR)
            break;
        if (n == 0 && exited)
            break; /* exited and nothing pending: a background process still holding the pipes is not waited for */
        if (n < 0)
            continue;
        if (p[3].revents)
            exited = 1;
        if (p[0].revents) {
            ssize_t r = read(in, inbuf, sizeof inbuf);
            if (r > 0) {
                pending = (size_t)r;
                off = 0;
            } else {
                in = -1;
                close(pipes[0]); /* EOF for the process */
                pipes[0] = -1;
            }
        }
        if (pending > 0 && (p[4].revents || p[0].revents)) {
            ssize_t w = write(pipes[0], inbuf + off, pending);
            if (w > 0) {
                off += (size_t)w;
                pending -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                pending = 0;
                in = -1;
                close(pipes[0]);
                pipes[0] = -1;
            }
        }
        for (int i = 1; i < 3; i++) {
            if (!p[i].revents)
                continue;
            ssize_t r = read(pipes[i], buf, sizeof buf);
            if (r <= 0) {
                close(pipes[i]);
                pipes[i] = -1;
            } else {
                (void)tsfig_write_all(i, buf, (size_t)r);
            }
        }
    }
    for (int i = 0; i < 3; i++)
        if (pipes[i] >= 0)
            close(pipes[i]);
    if (pidfd >= 0)
        close(pidfd);
}

static int open_pty(int *master, int *slave, tsfig_error_t *err)
{
    char name[64];
    *master = TEMP_FAILURE_RETRY(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (*master < 0 || unlockpt(*master) < 0 || ptsname_r(*master, name, sizeof name) != 0)
        return tsfig_make_error(err, errno, "tty", "open a pty");
    *slave = TEMP_FAILURE_RETRY(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (*slave < 0)
        return tsfig_make_error(err, errno, "tty", "open `%s`", name);
    return 0;
}

/* Joins the container and forks the process into it; returns once it has execve'd (child pid in *child), or -1 with
 * err. With null_fd >= 0 the process gets it as stdin/stdout/stderr. */
static int spawn_in_container(struct tsfig_conf *c, const struct exec_opts *o, pid_t pid, int null_fd, pid_t *child,
                              int *master, int *pipes, tsfig_error_t *err)
{
    struct tsfig_exec_join j;
    if (tsfig_exec_join(c, pid, &j, err) < 0)
        return -1;
    c->args = o->args; /* the process to run replaces the container's command */
    size_t n_env;
    char **env = merge_env(c, o, &n_env);
    int slave = -1, ep[2], io[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    *master = -1;
    if (o->tty && open_pty(master, &slave, err) < 0)
        return tsfig_exec_join_release(&j), -1;
    /* Foreground without a tty: the process gets pipes (relayed by this helper on the host side), never an fd of
     * the caller's own stdio, which may be the operator's terminal (TIOCSTI, /dev/tty). */
    for (int i = 0; pipes != NULL && i < 3; i++)
        if (pipe2(io[i], O_CLOEXEC) < 0)
            return tsfig_exec_join_release(&j), tsfig_make_error(err, errno, "exec", "create stdio pipes");
    if (pipe2(ep, O_CLOEXEC) < 0)
        return tsfig_exec_join_release(&j), tsfig_make_error(err, errno, "exec", "create pipe");
    *child = fork();
    if (*child < 0)
        return tsfig_exec_join_release(&j), tsfig_make_error(err, errno, "exec", "fork");
    if (*child == 0) {
        close(ep[0]);
        /* into the container's cgroups first (this helper stays out: a stop kills the process, never the helper
         * before it has reported the process's exit) */
        if (tsfig_exec_enter_cgroup(&j, err) < 0)
            tsfig_child_fail(ep[1], err);
        /* Its own session in every case: no controlling terminal of the caller's (opening /dev/tty fails). */
        if (setsid() < 0) {
            tsfig_make_error(err, errno, "exec", "setsid");
            tsfig_child_fail(ep[1], err);
        }
        if (o->tty && (ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 || dup2(slave, 1) < 0
                       || dup2(slave, 2) < 0)) {
            tsfig_make_error(err, errno, "tty", "set up the pty");
            tsfig_child_fail(ep[1], err);
        }
        for (int i = 0; pipes != NULL && i < 3; i++)
            if (dup2(io[i][i == 0 ? 0 : 1], i) < 0) {
                tsfig_make_error(err, errno, "exec", "set up the stdio pipes");
                tsfig_child_fail(ep[1], err);
            }
        /* the container's /dev/null, not null_fd (the host's: its mode and owner are not the container's to change) */
        int own_null = null_fd >= 0 ? tsfig_open_own_null() : -1;
        if (null_fd >= 0 && own_null < 0) {
            tsfig_make_error(err, errno, "exec", "open the container's `/dev/null`");
            tsfig_child_fail(ep[1], err);
        }
        for (int i = 0; own_null >= 0 && i < 3; i++)
            if (dup2(own_null, i) < 0) {
                tsfig_make_error(err, errno, "exec", "redirect stdio to /dev/null");
                tsfig_child_fail(ep[1], err);
            }
        tsfig_exec_in_container(c, o->user ? o->user : c->user, o->cwd ? o->cwd : c->cwd, env, n_env, ep[1]);
    }
    close(ep[1]);
    tsfig_exec_join_release(&j);
    if (slave >= 0)
        close(slave);
    for (int i = 0; pipes != NULL && i < 3; i++) {
        close(io[i][i == 0 ? 0 : 1]);
        pipes[i] = io[i][i == 0 ? 1 : 0];
    }
    size_t got = 0;
    while (got < sizeof *err) {
        ssize_t n = TEMP_FAILURE_RETRY(read(ep[0], (char *)err + got, sizeof *err - got));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(ep[0]);
    if (got == sizeof *err) {
        waitpid(*child, NULL, 0);
        return -1;
    }
    return 0;
}

/* The keeper of `exec --detach` (see tsfig_exec_keeper): own session, starts the process with stdio on /dev/null,
 * writes "k" on fd once it has execve'd (else the error), lets go of every other fd and reaps it. It is the monitor's
 * child, in the host pid namespace (invisible from the container) and outside the container's cgroups; the monitor
 * reaps it, so neither it nor the process is left a zombie whatever reaps orphans on the host. */
static int run_detached(struct tsfig_conf *c, const struct exec_opts *o, pid_t pid, int fd)
{
    tsfig_error_t err = {0};
    pid_t child;
    int master;
    if (setsid() < 0)
        tsfig_make_error(&err, errno, "exec", "setsid");
    int null_fd = err.code ? -1 : open("/dev/null", O_RDWR | O_CLOEXEC);
    if (!err.code && null_fd < 0)
        tsfig_make_error(&err, errno, "exec", "open `/dev/null`");
    if (err.code || spawn_in_container(c, o, pid, null_fd, &child, &master, NULL, &err) < 0) {
        tsfig_write_error(fd, &err);
        return err.code ? err.code : 125;
    }
    for (int i = 0; i < 3; i++)
        dup2(null_fd, i);
    close_range(3, (unsigned)fd - 1, 0);
    close_range((unsigned)fd + 1, ~0U, 0);
    (void)tsfig_write_all(fd, "k", 1);
    close(fd);
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

int tsfig_exec_keeper(const struct tsfig_conf *monitor_conf, pid_t pid, int fd, const char *name)
{
    tsfig_error_t err = {0};
    struct exec_opts o;
    struct tsfig_conf c = *monitor_conf; /* the monitor's container, whatever directory the arguments name */
    char path[PATH_MAX];
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (strncmp(name, "exec-", 5) != 0 || strchr(name, '/') != NULL
        || tsfig_fmt(path, sizeof path, "%s/%s", c.run_dir, name) < 0) {
        tsfig_make_error(&err, EINVAL, "exec", "invalid argument file `%s`", name);
        tsfig_write_error(fd, &err);
        return 125;
    }
    size_t len = 0;
    char *data = tsfig_read_all(path, &len);
    int read_errno = errno;
    (void)unlink(path);
    if (data == NULL) {
        tsfig_make_error(&err, read_errno, "exec", "read `%s`", path);
        tsfig_write_error(fd, &err);
        return 125;
    }
    /* NUL-separated argv of `tsfig-runtime exec`, as the helper got it */
    int argc = 0;
    char **argv = calloc(len + 2, sizeof *argv);
    for (size_t i = 0; argv != NULL && i < len; i += strlen(data + i) + 1)
        argv[argc++] = data + i;
    if (argv == NULL || len == 0 || data[len - 1] != '\0' || parse_args(argc, argv, &o, &err) < 0 || !o.detach) {
        if (err.code == 0)
            tsfig_make_error(&err, EINVAL, "exec", "invalid argument file `%s`", path);
        tsfig_write_error(fd, &err);
        return 125;
    }
    tsfig_seccomp_prepare_for(&c);
    if (o.privileged)
        c.exec_extra_caps = tsfig_caps_all();
    return run_detached(&c, &o, pid, fd);
}

/* `exec --detach`: the container's monitor forks the keeper (ctl command `exec NAME`, the arguments in
 * <run_dir>/NAME), so the keeper is the monitor's child, reaped by it, like docker's exec processes under the shim;
 * this helper relays the keeper's answer and exits. */
static int detach_through_monitor(const struct tsfig_conf *c, int argc, char **argv)
{
    tsfig_error_t err = {0};
    char name[64], path[PATH_MAX], sock[PATH_MAX];
    tsfig_fmt(name, sizeof name, "exec-%d", (int)getpid());
    if (tsfig_fmt(path, sizeof path, "%s/%s", c->run_dir, name) < 0
        || tsfig_fmt(sock, sizeof sock, "%s/ctl", c->run_dir) < 0)
        return tsfig_make_error(&err, ENAMETOOLONG, "exec", "run dir `%s`", c->run_dir), fail(&err);
    (void)unlink(path); /* left by a killed helper that had this pid */
    cleanup_close int afd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (afd < 0)
        return tsfig_make_error(&err, errno, "exec", "create `%s`", path), fail(&err);
    for (int i = 0; i < argc; i++)
        if (tsfig_write_all(afd, argv[i], strlen(argv[i]) + 1) < 0) {
            tsfig_make_error(&err, errno, "exec", "write `%s`", path);
            (void)unlink(path);
            return fail(&err);
        }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    cleanup_close int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (strlen(sock) >= sizeof addr.sun_path) {
        (void)unlink(path);
        return tsfig_make_error(&err, ENAMETOOLONG, "exec", "control socket `%s`", sock), fail(&err);
    }
    memcpy(addr.sun_path, sock, strlen(sock) + 1);
    char request[96];
    int n = snprintf(request, sizeof request, "exec %s\n", name);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0 || tsfig_write_all(s, request, (size_t)n) < 0) {
        tsfig_make_error(&err, errno, "exec", "ask the monitor of `%s` (`%s`)", c->name, sock);
        (void)unlink(path);
        return fail(&err);
    }
    /* the keeper answers once the process has execve'd (or failed to): bounded like the engine's control commands */
    char reply[4096];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        int r = poll(&p, 1, 30000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t m = read(s, reply + got, sizeof reply - 1 - got);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            break;
        got += (size_t)m;
        if (got == sizeof reply - 1)
            break;
    }
    reply[got] = '\0';
    (void)unlink(path); /* the keeper removed it, unless it never ran */
    if (got == 1 && reply[0] == 'k')
        return 0;
    if (reply[0] == '{') { /* the keeper's error line, with its code */
        (void)tsfig_write_all(report_fd(), reply, got);
        const char *code = strstr(reply, "\"code\":");
        long v = code != NULL ? strtol(code + 7, NULL, 10) : 125;
        return v > 0 && v < 256 ? (int)v : 125;
    }
    if (strncmp(reply, "error ", 6) == 0) {
        reply[strcspn(reply, "\n")] = '\0';
        return tsfig_make_error(&err, 0, "exec", "the monitor of `%s`: %s", c->name, reply + 6), fail(&err);
    }
    return tsfig_make_error(&err, got == 0 ? ETIMEDOUT : EPROTO, "exec", "the monitor of `%s` did not start the process",
                            c->name),
           fail(&err);
}

int tsfig_cmd_exec(int argc, char **argv)
{
    tsfig_error_t err = {0};
    struct exec_opts o;
    struct tsfig_conf c;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (parse_args(argc, argv, &o, &err) < 0 || tsfig_conf_load(o.dir, &c, &err) < 0)
        return fail(&err);
    pid_t pid = container_pid(&c, &err);
    tsfig_seccomp_prepare_for(&c); /* before joining: it reads the host's compiled-filter cache */
    /* docker exec --privileged: every capability for this process; the container's seccomp profile (built for the
     * container's own capabilities) and no_new_privs stay, as with runc exec */
    if (o.privileged)
        c.exec_extra_caps = tsfig_caps_all();
    if (pid < 0)
        return fail(&err);
    if (o.detach)
        return detach_through_monitor(&c, argc, argv);
    pid_t child;
    int master, pipes[3] = {-1, -1, -1};
    if (spawn_in_container(&c, &o, pid, -1, &child, &master, o.tty ? NULL : pipes, &err) < 0)
        return fail(&err);
    if (o.tty)
        relay(master, child);
    else
        relay_pipes(pipes, child, o.no_stdin);
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return 125;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
