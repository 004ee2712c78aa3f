#include "monitor.h"

#include "cgroup.h"
#include "container.h"
#include "health.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long tsfig_monitor_now_ms(void)
{
    return now_ms();
}

static int listen_at(const char *dir, const char *name, tsfig_error_t *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char path[PATH_MAX];
    tsfig_fmt(path, sizeof path, "%s/%s", dir, name);
    cleanup_close int dirfd = TEMP_FAILURE_RETRY(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dirfd < 0)
        return tsfig_make_error(err, errno, "socket", "open `%s`", dir);
    /* long run dirs: bind through /proc/self/fd/N as conmon does */
    tsfig_fmt(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, name);
    (void)unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return tsfig_make_error(err, errno, "socket", "create socket `%s`", path);
    mode_t old = umask(0077);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (r < 0 || listen(fd, 8) < 0) {
        int e = errno;
        close(fd);
        return tsfig_make_error(err, e, "socket", "listen on `%s`", path);
    }
    return fd;
}

int tsfig_monitor_sockets(struct tsfig_monitor *m, tsfig_error_t *err)
{
    m->ctl_fd = listen_at(m->c->run_dir, "ctl", err);
    if (m->ctl_fd < 0)
        return -1;
    if (m->c->stdin_) {
        m->attach_fd = listen_at(m->c->run_dir, "attach", err);
        if (m->attach_fd < 0)
            return -1;
    }
    return 0;
}

void tsfig_monitor_remove_sockets(const struct tsfig_monitor *m)
{
    char path[PATH_MAX];
    tsfig_fmt(path, sizeof path, "%s/ctl", m->c->run_dir);
    (void)unlink(path);
    tsfig_fmt(path, sizeof path, "%s/attach", m->c->run_dir);
    (void)unlink(path);
}

static long long proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    tsfig_fmt(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (tsfig_read_small(path, buf, sizeof buf) <= 0)
        return 0;
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    /* after ") " comes field 3; starttime is field 22 */
    p += 2;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoll(p, NULL, 10) : 0;
}

/* Large enough for the health log (5 outputs of 4 KiB, escaped); only touched as far as a status needs. */
static char status_buf[TSFIG_HEALTH_JSON_MAX + 2048];

int tsfig_monitor_write_status(const struct tsfig_monitor *m, tsfig_error_t *err)
{
    static const char *const states[] = {"running", "restarting", "exited"};
    char tmp[PATH_MAX];
    size_t cap = sizeof status_buf - 64, n;
    n = (size_t)snprintf(status_buf, cap,
                         "{\"v\":1,\"state\":\"%s\",\"pid\":%d,\"monitor\":%d,\"monitorStart\":%lld,\"startedAt\":\"%s\"",
                         states[m->state], (int)m->pid, (int)m->self, m->self_start, m->started_at);
    if (m->have_exit)
        n += (size_t)snprintf(status_buf + n, cap - n,
                              ",\"finishedAt\":\"%s\",\"exitCode\":%d,\"signal\":%d,\"oomKilled\":%s", m->finished_at,
                              m->last_code, m->last_signal, m->last_oom ? "true" : "false");
    n += (size_t)snprintf(status_buf + n, cap - n, ",\"restartCount\":%d", m->restart_count);
    tsfig_health_json(m, status_buf, cap - 128, &n);
    n += (size_t)snprintf(status_buf + n, sizeof status_buf - n, ",\"bootId\":\"%s\"}\n", m->boot_id);
    if (n >= sizeof status_buf || tsfig_fmt(tmp, sizeof tmp, "%s.tmp", m->c->status) < 0)
        return tsfig_make_error(err, ENAMETOOLONG, "status", "format status");
    cleanup_close int fd = TEMP_FAILURE_RETRY(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (fd < 0)
        return tsfig_make_error(err, errno, "status", "open `%s`", tmp);
    int bad = tsfig_write_all(fd, status_buf, n) < 0 || fsync(fd) < 0;
    if (n > 8192) /* give the pages of a long health log back */
        (void)madvise(status_buf, sizeof status_buf & ~(size_t)4095, MADV_DONTNEED);
    if (bad)
        return tsfig_make_error(err, errno, "status", "write `%s`", tmp);
    if (rename(tmp, m->c->status) < 0)
        return tsfig_make_error(err, errno, "status", "rename `%s`", tmp);
    return 0;
}

int tsfig_monitor_running(struct tsfig_monitor *m, tsfig_error_t *err)
{
    m->self = getpid();
    m->self_start = proc_start_time(m->self);
    if (tsfig_read_small("/proc/sys/kernel/random/boot_id", m->boot_id, sizeof m->boot_id) > 0)
        m->boot_id[strcspn(m->boot_id, "\n")] = '\0';
    tsfig_now_rfc3339(m->started_at, sizeof m->started_at);
    m->state = TSFIG_STATE_RUNNING;
    m->run_start_ms = now_ms();
    return tsfig_monitor_write_status(m, err);
}

static void reply(int fd, const char *msg)
{
    (void)tsfig_write_all(fd, msg, strlen(msg));
}

static void kill_everything(struct tsfig_monitor *m)
{
    if (m->state != TSFIG_STATE_RUNNING)
        return;
    kill(m->pid, SIGKILL);
    tsfig_cgroup_signal_all(m->c, SIGKILL);
    tsfig_cgroup_thaw(m->c); /* a paused container: the kill is delivered on thaw */
}

/* ctl `exec NAME`: forks the keeper of an `exec --detach` (exec.c, tsfig_exec_keeper), which answers on fd itself.
 * The keeper is this monitor's child, so the monitor reaps it (a keeper of the CLI's would be an orphan that only
 * the host's init could reap), and waits for it before it exits (see finish). */
static void start_keeper(struct tsfig_monitor *m, int fd, const char *name)
{
    if (m->state != TSFIG_STATE_RUNNING) {
        reply(fd, "error container is not running\n");
        return;
    }
    if (m->n_keepers == m->cap_keepers) {
        size_t cap = m->cap_keepers ? m->cap_keepers * 2 : 8;
        pid_t *grown = realloc(m->keepers, cap * sizeof *grown);
        if (grown == NULL) {
            reply(fd, "error out of memory\n");
            return;
        }
        m->keepers = grown;
        m->cap_keepers = cap;
    }
    pid_t pid = fork();
    if (pid < 0) {
        dprintf(fd, "error fork: %s\n", strerror(errno));
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* the monitor's SIGCHLD/SIGPIPE go to its signalfd */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (dup2(fd, 3) < 0)
            _exit(125);
        close_range(4, ~0U, 0);
        _exit(tsfig_exec_keeper(m->c, m->pid, 3, name));
    }
    m->keepers[m->n_keepers++] = pid;
}

static int forget_keeper(struct tsfig_monitor *m, pid_t pid)
{
    for (size_t i = 0; i < m->n_keepers; i++)
        if (m->keepers[i] == pid) {
            m->keepers[i] = m->keepers[--m->n_keepers];
            return 1;
        }
    return 0;
}

/* Before the monitor exits: its keepers end with their processes (killed with the container), so it waits for them
 * (at most 2 s, then SIGKILL) rather than leaving them to the host's init. */
static void reap_keepers(struct tsfig_monitor *m)
{
    long long until = now_ms() + 2000;
    while (m->n_keepers > 0) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            if (!forget_keeper(m, p))
                (void)tsfig_health_reaped(m, p, st);
            continue;
        }
        if (p < 0 && errno != EINTR)
            break;
        if (now_ms() >= until) {
            for (size_t i = 0; i < m->n_keepers; i++) {
                kill(m->keepers[i], SIGKILL);
                while (waitpid(m->keepers[i], NULL, 0) < 0 && errno == EINTR)
                    ;
            }
            m->n_keepers = 0;
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(m->keepers);
    m->keepers = NULL;
    m->n_keepers = m->cap_keepers = 0;
}

/* One ctl command; policy (timeouts, signals) comes from the caller. */
static void ctl_command(struct tsfig_monitor *m, int fd, char *line)
{
    long a = 0, b = 0;
    int stop = sscanf(line, "stop %ld", &a) == 1 && a >= 0;
    if (stop || (sscanf(line, "kill %ld", &a) == 1 && a > 0 && a < NSIG)) {
        /* never undone by the restart policy; while waiting for a restart, it just cancels it (Docker's) */
        m->user_stopped = 1;
        if (m->state != TSFIG_STATE_RUNNING) {
            m->restart_at_ms = 0;
            m->finish_now = 1;
            reply(fd, "ok\n");
            return;
        }
    }
    if (stop) {
        if (a == 0) {
            kill_everything(m);
        } else {
            kill(m->pid, m->c->stop_signal);
            tsfig_cgroup_thaw(m->c); /* stopping a paused container resumes it so it gets the signal (Docker's) */
            m->kill_deadline_ms = now_ms() + a * 1000;
        }
        reply(fd, "ok\n");
    } else if (sscanf(line, "kill %ld", &a) == 1 && a > 0 && a < NSIG) {
        if (kill(m->pid, (int)a) < 0) {
            dprintf(fd, "error kill `%d`: %s\n", (int)m->pid, strerror(errno));
        } else {
            if (a == SIGKILL) /* paused: delivered only once resumed (other signals wait for unpause, as Docker's) */
                tsfig_cgroup_thaw(m->c);
            reply(fd, "ok\n");
        }
    } else if (sscanf(line, "resize %ld %ld", &a, &b) == 2 && a > 0 && b > 0 && a < 65536 && b < 65536) {
        struct winsize ws = {.ws_row = (unsigned short)a, .ws_col = (unsigned short)b};
        if (m->tty_master < 0)
            reply(fd, "error no tty\n");
        else if (ioctl(m->tty_master, TIOCSWINSZ, &ws) < 0)
            dprintf(fd, "error resize: %s\n", strerror(errno));
        else
            reply(fd, "ok\n");
    } else if (strncmp(line, "exec ", 5) == 0) {
        start_keeper(m, fd, line + 5);
    } else {
        reply(fd, "error unknown command\n");
    }
}

static void ctl_readable(struct tsfig_monitor *m, int slot)
{
    char line[256];
    int fd = m->ctl_clients[slot];
    ssize_t n = TEMP_FAILURE_RETRY(read(fd, line, sizeof line - 1));
    if (n > 0) {
        line[n] = '\0';
        char *nl = strchr(line, '\n');
        if (nl == NULL && (size_t)n < sizeof line - 1)
            return; /* wait for the rest of the line */
        if (nl)
            *nl = '\0';
        ctl_command(m, fd, line);
    }
    close(fd);
    m->ctl_clients[slot] = -1;
}

static void ctl_accept(struct tsfig_monitor *m)
{
    int fd = accept4(m->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < 4; i++)
        if (m->ctl_clients[i] < 0) {
            m->ctl_clients[i] = fd;
            return;
        }
    reply(fd, "error busy\n");
    close(fd);
}

static void close_stdin(struct tsfig_monitor *m)
{
    if (m->stdin_fd >= 0 && m->stdin_fd != m->tty_master)
        close(m->stdin_fd);
    else if (m->stdin_fd >= 0)
        (void)tsfig_write_all(m->stdin_fd, "\x04", 1); /* EOF on a pty: VEOF */
    m->stdin_fd = -1;
}

static void attach_readable(struct tsfig_monitor *m)
{
    char buf[8192];
    ssize_t n = TEMP_FAILURE_RETRY(read(m->attach_client, buf, sizeof buf));
    if (n > 0 && m->stdin_fd >= 0 && tsfig_write_all(m->stdin_fd, buf, (size_t)n) == 0)
        return;
    close(m->attach_client);
    m->attach_client = -1;
    if (n <= 0)
        close_stdin(m);
}

static int exit_code(int status, int *sig)
{
    *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + *sig;
}

/* Returns 1 once the container's PID 1 has been reaped (status in *status). */
static int reap(struct tsfig_monitor *m, int sigfd, int *status)
{
    struct signalfd_siginfo si;
    int done = 0;
    while (read(sigfd, &si, sizeof si) == sizeof si)
        ;
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p <= 0)
            break;
        if (p == m->pid && m->state == TSFIG_STATE_RUNNING) {
            *status = st;
            done = 1;
        } else if (!forget_keeper(m, p)) {
            (void)tsfig_health_reaped(m, p, st);
        }
    }
    return done;
}

static void drain_output(struct tsfig_monitor *m)
{
    long long until = now_ms() + 2000;
    while ((m->out.fd >= 0 || m->err.fd >= 0) && now_ms() < until) {
        struct pollfd p[2] = {{.fd = m->out.fd, .events = POLLIN}, {.fd = m->err.fd, .events = POLLIN}};
        if (poll(p, 2, 200) <= 0)
            continue;
        if (p[0].revents)
            tsfig_stream_read(&m->log, &m->out);
        if (p[1].revents)
            tsfig_stream_read(&m->log, &m->err);
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The run ended (PID 1 reaped): log what is left of its output, kill the rest of the cgroup (kept for a restart),
 * note the exit for status. */
static void record_exit(struct tsfig_monitor *m, int status)
{
    drain_output(m);
    tsfig_cgroup_kill_all(m->c); /* the probe too, if one runs: it is in the cgroup */
    tsfig_health_stop(m);
    m->last_code = exit_code(status, &m->last_signal);
    int oom_kills = tsfig_cgroup_oom_killed(m->c); /* the cgroup outlives a restart: only new kills count */
    m->last_oom = oom_kills > m->oom_kills;
    m->oom_kills = oom_kills;
    m->have_exit = 1;
    m->state = TSFIG_STATE_EXITED; /* until a restart is scheduled; finish() must not record this run twice */
    m->kill_deadline_ms = 0;
    tsfig_now_rfc3339(m->finished_at, sizeof m->finished_at);
    /* a restart gets fresh stdio; a partial line left over is flushed with this run */
    if (m->stdin_fd == m->tty_master)
        m->stdin_fd = -1;
    close_fd(&m->stdin_fd);
    close_fd(&m->tty_master);
    close_fd(&m->attach_client);
    struct tsfig_stream *streams[2] = {&m->out, &m->err};
    for (int i = 0; i < 2; i++) {
        if (streams[i]->len > 0)
            tsfig_log_write(&m->log, streams[i]->name, streams[i]->buf, streams[i]->len);
        streams[i]->len = 0;
        close_fd(&streams[i]->fd);
    }
}

/* Docker's restart manager: which exits restart, and the back-off (100 ms doubling up to 1 min, back to 100 ms
 * after a run of 10 s or more). */
static int schedule_restart(struct tsfig_monitor *m)
{
    const struct tsfig_conf *c = m->c;
    if (m->user_stopped || c->restart == TSFIG_RESTART_NO)
        return 0;
    if (c->restart == TSFIG_RESTART_ON_FAILURE
        && (m->last_code == 0 || (c->restart_max > 0 && m->restart_count >= c->restart_max)))
        return 0;
    long long now = now_ms();
    if (now - m->run_start_ms >= 10000)
        m->backoff_ms = 0;
    m->backoff_ms = m->backoff_ms == 0 ? 100 : m->backoff_ms * 2;
    if (m->backoff_ms > 60000)
        m->backoff_ms = 60000;
    m->restart_at_ms = now + m->backoff_ms;
    m->state = TSFIG_STATE_RESTARTING;
    tsfig_error_t err = {0};
    (void)tsfig_monitor_write_status(m, &err);
    return 1;
}

/* The back-off passed: a fresh container process through the same init sequence, same cgroup and netns. A start
 * that fails counts as a run that exited with the failure's code. Returns 0 when the monitor should finish. */
static int restart(struct tsfig_monitor *m)
{
    tsfig_error_t err = {0};
    m->restart_at_ms = 0;
    m->restart_count++;
    m->run_start_ms = now_ms();
    if (tsfig_monitor_launch(m, &err) < 0) {
        if (m->pid > 0) {
            kill(m->pid, SIGKILL);
            while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        record_exit(m, 0);
        m->last_code = err.code ? err.code : 125;
        m->last_signal = 0;
        return schedule_restart(m);
    }
    m->state = TSFIG_STATE_RUNNING;
    tsfig_now_rfc3339(m->started_at, sizeof m->started_at);
    tsfig_health_start(m);
    (void)tsfig_monitor_write_status(m, &err);
    return 1;
}

static void finish(struct tsfig_monitor *m, int status)
{
    tsfig_error_t err = {0};
    if (m->state == TSFIG_STATE_RUNNING)
        record_exit(m, status);
    reap_keepers(m);
    tsfig_cgroup_remove(m->c);
    tsfig_monitor_remove_sockets(m);
    m->state = TSFIG_STATE_EXITED;
    (void)tsfig_monitor_write_status(m, &err);
}

/* conmon's --exit-command: once the container has exited for good (final status written, cgroup and sockets gone),
 * the monitor lets go of its log and sockets and starts exit_cmd (e.g. the engine's `container cleanup --rm ID`) in
 * its own session, double-forked so it outlives the monitor, with stdio on /dev/null, no other fd, an empty signal
 * mask, oom_score_adj 0 and exactly exit_env as its environment. The monitor does not wait for it. */
static void run_exit_command(struct tsfig_monitor *m)
{
    const struct tsfig_conf *c = m->c;
    close_fd(&m->log.fd);
    close_fd(&m->ctl_fd);
    close_fd(&m->attach_fd);
    for (int i = 0; i < 4; i++)
        close_fd(&m->ctl_clients[i]);
    if (c->n_exit_cmd == 0)
        return;
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid > 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return;
    }
    if (setsid() < 0)
        _exit(127);
    pid_t grandchild = fork();
    if (grandchild != 0)
        _exit(grandchild < 0 ? 127 : 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    tsfig_error_t err = {0};
    (void)tsfig_write_file("/proc/self/oom_score_adj", "0", "oom", &err);
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; null >= 0 && i < 3; i++)
        dup2(null, i);
    close_range(3, ~0U, 0);
    if (chdir("/") < 0)
        _exit(127);
    static char *const no_env[] = {NULL};
    execve(c->exit_cmd[0], c->exit_cmd, c->exit_env != NULL ? c->exit_env : no_env);
    _exit(127);
}

/* Milliseconds until the nearest timer, -1 for none. Timers are data on the monitor: the stop grace period, the idle
 * memory trim, the restart back-off and the healthcheck's (next probe, or the running probe's timeout); their
 * actions run right after poll() in the loop below. */
static int next_timeout(const struct tsfig_monitor *m, int dirty)
{
    /* after activity, wait for a quiet second and give the touched pages back (RSS stays < 1 MiB) */
    long long timeout = dirty ? 1000 : -1;
    long long deadlines[3] = {m->kill_deadline_ms, m->restart_at_ms, tsfig_health_deadline()}, now = now_ms();
    for (int i = 0; i < 3; i++) {
        if (deadlines[i] <= 0)
            continue;
        long long left = deadlines[i] - now;
        if (left < 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = left;
    }
    return (int)(timeout > 0x7fffffff ? 0x7fffffff : timeout);
}

int tsfig_monitor_loop(struct tsfig_monitor *m)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGPIPE);
    int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    int status = 0, dirty = 0;
    for (int i = 0; i < 4; i++)
        m->ctl_clients[i] = -1;
    tsfig_health_start(m);
    for (;;) {
        struct pollfd p[11];
        int n = 0, idx_out, idx_err, idx_ctl, idx_att, idx_attc, idx_cl[4], idx_health;
        p[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        idx_out = n;
        p[n++] = (struct pollfd){.fd = m->out.fd, .events = POLLIN};
        idx_err = n;
        p[n++] = (struct pollfd){.fd = m->err.fd, .events = POLLIN};
        idx_ctl = n;
        p[n++] = (struct pollfd){.fd = m->ctl_fd, .events = POLLIN};
        idx_att = n;
        p[n++] = (struct pollfd){.fd = m->attach_client < 0 ? m->attach_fd : -1, .events = POLLIN};
        idx_attc = n;
        p[n++] = (struct pollfd){.fd = m->attach_client, .events = POLLIN};
        for (int i = 0; i < 4; i++) {
            idx_cl[i] = n;
            p[n++] = (struct pollfd){.fd = m->ctl_clients[i], .events = POLLIN};
        }
        idx_health = n;
        p[n++] = (struct pollfd){.fd = tsfig_health_fd(), .events = POLLIN};
        int timeout = next_timeout(m, dirty);
        int ready = poll(p, (nfds_t)n, timeout);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready == 0 && dirty) {
            tsfig_trim_memory();
            dirty = 0;
        }
        if (ready > 0)
            dirty = 1;
        long long now = now_ms();
        if (m->kill_deadline_ms > 0 && now >= m->kill_deadline_ms) {
            kill_everything(m);
            m->kill_deadline_ms = 0;
        }
        if (m->restart_at_ms > 0 && now >= m->restart_at_ms && !restart(m))
            break;
        tsfig_health_tick(m, now);
        if (p[idx_out].revents)
            tsfig_stream_read(&m->log, &m->out);
        if (p[idx_err].revents)
            tsfig_stream_read(&m->log, &m->err);
        if (p[idx_ctl].revents)
            ctl_accept(m);
        if (p[idx_att].revents)
            m->attach_client = accept4(m->attach_fd, NULL, NULL, SOCK_CLOEXEC);
        if (m->attach_client >= 0 && p[idx_attc].revents)
            attach_readable(m);
        for (int i = 0; i < 4; i++)
            if (m->ctl_clients[i] >= 0 && p[idx_cl[i]].revents)
                ctl_readable(m, i);
        if (p[idx_health].revents && tsfig_health_fd() >= 0)
            tsfig_health_readable();
        if (p[0].revents && reap(m, sigfd, &status)) {
            record_exit(m, status);
            if (!schedule_restart(m))
                break;
        }
        if (m->finish_now)
            break;
    }
    finish(m, status);
    if (sigfd >= 0)
        close(sigfd);
    run_exit_command(m);
    return 0;
}
