/* `tsfig-runtime start <dir>`: detach a monitor, have it start the container, report started/error. */
#include "cgroup.h"
#include "commands.h"
#include "conf.h"
#include "container.h"
#include "monitor.h"
#include "seccomp.h"
#include "userns.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the monitor tells the start command over the internal result pipe. */
struct start_result {
    int ok;
    pid_t pid, monitor;
    tsfig_error_t err;
};

struct pipes {
    int gate[2], err[2], out[2], errout[2], in[2], tty[2];
};

static int sync_fd(void)
{
    const char *s = getenv("_TSFIG_SYNC_FD");
    int64_t fd;
    if (s == NULL || tsfig_parse_int64(s, &fd) < 0 || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0)
        return STDOUT_FILENO;
    return (int)fd;
}

static void report(int fd, const struct start_result *r)
{
    if (!r->ok) {
        tsfig_write_error(fd, &r->err);
        return;
    }
    dprintf(fd, "{\"v\":%d,\"type\":\"started\",\"pid\":%d,\"monitor\":%d}\n", TSFIG_PROTOCOL_VERSION, (int)r->pid,
            (int)r->monitor);
}

static void closep(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

static int make_pipes(const struct tsfig_conf *c, struct pipes *p, tsfig_error_t *err)
{
    memset(p, -1, sizeof *p);
    if (pipe2(p->gate, O_CLOEXEC) < 0 || pipe2(p->err, O_CLOEXEC) < 0)
        return tsfig_make_error(err, errno, "start", "create pipes");
    if (c->tty) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->tty) < 0)
            return tsfig_make_error(err, errno, "tty", "create socketpair");
        return 0;
    }
    if (pipe2(p->out, O_CLOEXEC) < 0 || pipe2(p->errout, O_CLOEXEC) < 0)
        return tsfig_make_error(err, errno, "stdio", "create pipes");
    if (c->stdin_ && pipe2(p->in, O_CLOEXEC) < 0)
        return tsfig_make_error(err, errno, "stdio", "create pipes");
    return 0;
}

static pid_t clone_container(const struct tsfig_conf *c, struct pipes *p)
{
    unsigned long flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | SIGCHLD;
    if (strcmp(c->netns, "new") == 0)
        flags |= CLONE_NEWNET;
    pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
    if (pid != 0)
        return pid;
    struct tsfig_child_fds f = {
        .gate = p->gate[0],
        .err = p->err[1],
        .stdin_fd = p->in[0],
        .stdout_fd = p->out[1],
        .stderr_fd = p->errout[1],
        .tty_sock = p->tty[1],
    };
    close(p->gate[1]);
    close(p->err[0]);
    tsfig_container_main(c, &f);
}

static void set_nonblock(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Reads the child's error report; 0 when the pipe closed empty (execve succeeded). */
static int wait_exec(int fd, tsfig_error_t *err)
{
    size_t got = 0;
    while (got < sizeof *err) {
        ssize_t n = TEMP_FAILURE_RETRY(read(fd, (char *)err + got, sizeof *err - got));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == 0)
        return 0;
    if (got < sizeof *err)
        tsfig_make_error(err, 0, "start", "container process died during setup");
    return -1;
}

static int launch(struct tsfig_monitor *m, struct pipes *p, tsfig_error_t *err)
{
    const struct tsfig_conf *c = m->c;
    if (tsfig_userns_create(c, err) < 0)
        return -1;
    m->pid = clone_container(c, p);
    if (m->pid < 0)
        return tsfig_make_error(err, errno, "clone", "clone the container process");
    close(p->gate[0]);
    close(p->err[1]);
    close(p->out[1]);
    close(p->errout[1]);
    close(p->in[0]);
    close(p->tty[1]);
    p->gate[0] = p->err[1] = p->out[1] = p->errout[1] = p->in[0] = p->tty[1] = -1;
    /* [SEC] once released, the child moves itself into its cgroups before anything else (tsfig_cgroup_join_self:
     * on v1 that skips the RCU grace period a move by pid waits for); it fails the start if it cannot */
    if (TEMP_FAILURE_RETRY(write(p->gate[1], "g", 1)) != 1)
        return tsfig_make_error(err, errno, "start", "release the container process");
    if (wait_exec(p->err[0], err) < 0)
        return -1;
    if (c->tty) {
        m->tty_master = tsfig_recv_fd(p->tty[0]);
        if (m->tty_master < 0)
            return tsfig_make_error(err, errno, "tty", "receive the pty master");
        m->out.fd = fcntl(m->tty_master, F_DUPFD_CLOEXEC, 0);
        m->stdin_fd = c->stdin_ ? m->tty_master : -1;
    } else {
        m->out.fd = p->out[0];
        m->err.fd = p->errout[0];
        m->stdin_fd = p->in[1];
        p->out[0] = p->errout[0] = p->in[1] = -1;
    }
    set_nonblock(m->out.fd);
    set_nonblock(m->err.fd);
    return 0;
}

int tsfig_monitor_launch(struct tsfig_monitor *m, tsfig_error_t *err)
{
    struct pipes p;
    int r = make_pipes(m->c, &p, err) == 0 && launch(m, &p, err) == 0 ? 0 : -1;
    closep(p.gate);
    closep(p.err);
    closep(p.out);
    closep(p.errout);
    closep(p.in);
    closep(p.tty);
    return r;
}

static void abort_start(struct tsfig_monitor *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    tsfig_cgroup_kill_all(m->c);
    tsfig_cgroup_remove(m->c);
    tsfig_monitor_remove_sockets(m);
}

/* The monitor process: never returns. */
static void monitor_main(const struct tsfig_conf *c, int result_fd)
{
    static struct tsfig_monitor m;
    struct start_result r = {0};
    sigset_t mask;
    memset(&m, 0, sizeof m);
    m.c = c;
    m.ctl_fd = m.attach_fd = m.attach_client = m.stdin_fd = m.tty_master = -1;
    m.out.fd = m.err.fd = -1;
    m.out.name = "stdout";
    m.err.name = "stderr";
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGPIPE);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    (void)tsfig_write_file("/proc/self/oom_score_adj", "-1000", "oom", &r.err);
    memset(&r.err, 0, sizeof r.err);
    tsfig_seccomp_prepare_for(c); /* on the host side; every container process, restart and probe inherits it */
    if (tsfig_mkdir_p(c->run_dir, 0700) < 0) {
        tsfig_make_error(&r.err, errno, "run dir", "create `%s`", c->run_dir);
    } else if (tsfig_cgroup_create(c, &r.err) == 0) {
        if (tsfig_log_open(&m.log, c->log, c->log_max_size, c->log_max_files, &r.err) == 0
            && tsfig_monitor_sockets(&m, &r.err) == 0 && tsfig_monitor_launch(&m, &r.err) == 0
            && tsfig_monitor_running(&m, &r.err) == 0)
            r.ok = 1;
        if (!r.ok)
            abort_start(&m);
    }
    r.pid = m.pid;
    r.monitor = getpid();
    (void)tsfig_write_all(result_fd, &r, sizeof r);
    close(result_fd);
    if (!r.ok)
        _exit(r.err.code ? r.err.code : 125);
    tsfig_trim_memory();
    _exit(tsfig_monitor_loop(&m));
}

static void detach(const struct tsfig_conf *c, int result_fd)
{
    if (setsid() < 0)
        _exit(125);
    pid_t pid = fork();
    if (pid != 0)
        _exit(pid < 0 ? 125 : 0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; i < 3; i++)
        dup2(null, i);
    if (chdir("/") < 0)
        _exit(125);
    /* every other fd closed: keep only the result pipe */
    int keep = fcntl(result_fd, F_DUPFD_CLOEXEC, 3);
    close_range(3, (unsigned)keep - 1, 0);
    close_range((unsigned)keep + 1, ~0U, 0);
    monitor_main(c, keep);
}

int tsfig_cmd_start(int argc, char **argv)
{
    struct tsfig_conf c;
    struct start_result r = {0};
    int out = sync_fd();
    if (argc < 2) {
        tsfig_make_error(&r.err, EINVAL, "usage", "usage: tsfig-runtime start DIR");
        report(out, &r);
        return 125;
    }
    if (tsfig_conf_load(argv[1], &c, &r.err) < 0) {
        report(out, &r);
        return r.err.code ? r.err.code : 125;
    }
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0) {
        tsfig_make_error(&r.err, errno, "start", "create pipe");
        report(out, &r);
        return 125;
    }
    pid_t mid = fork();
    if (mid == 0) {
        close(rp[0]);
        detach(&c, rp[1]);
    }
    close(rp[1]);
    if (mid > 0)
        while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
            ;
    size_t got = 0;
    while (mid > 0 && got < sizeof r) {
        ssize_t n = TEMP_FAILURE_RETRY(read(rp[0], (char *)&r + got, sizeof r - got));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(rp[0]);
    if (got < sizeof r) {
        memset(&r, 0, sizeof r);
        tsfig_make_error(&r.err, mid < 0 ? errno : 0, "start", "the monitor exited without reporting");
    }
    report(out, &r);
    tsfig_conf_free(&c);
    return r.ok ? 0 : (r.err.code ? r.err.code : 125);
}
