/* Healthcheck probes (see health.h). A probe is two processes: a helper forked from the monitor that joins the
 * container's namespaces (exec.c's code path) and enforces the timeout, and its child, forked into the container's
 * pid namespace, which moves itself into the container's cgroups and runs the check with the container's user, capabilities, no_new_privs and
 * seccomp. The helper exits with the check's exit code, or kills itself with SIGKILL after killing the check's
 * process group when the timeout passed, which is how the monitor tells a timeout from an exit code. */
#include "health.h"

#include "cgroup.h"
#include "container.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEALTH_LOG_MAX 5
#define HEALTH_OUTPUT_MAX 4096

enum { HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY };

struct probe_result {
    char start[40], end[40];
    int exit_code;
    char output[HEALTH_OUTPUT_MAX + 1];
};

/* One monitor per process: the state is static and only touched when a healthcheck is configured. */
static struct {
    int status, failing_streak;
    long long next_ms;     /* next probe, 0: none scheduled */
    pid_t pid;             /* running probe helper, 0: none */
    int fd;                /* its output, -1: none */
    long long started_ms, deadline_ms;
    char start[40];
    size_t out_len;
    char out[HEALTH_OUTPUT_MAX + 1];
    int n_log;
    struct probe_result log[HEALTH_LOG_MAX]; /* oldest first */
} h = {.fd = -1};

static long long interval(const struct tsfig_monitor *m, long long now)
{
    const struct tsfig_conf *c = m->c;
    /* Docker: the start interval while starting and inside the start period, else the interval */
    if (now - m->run_start_ms < c->health_start_period_ms && h.status == HEALTH_STARTING)
        return c->health_start_interval_ms;
    return c->health_interval_ms;
}

void tsfig_health_start(struct tsfig_monitor *m)
{
    if (m->c->health_cmd == NULL)
        return;
    h.status = HEALTH_STARTING;
    h.failing_streak = 0;
    h.next_ms = tsfig_monitor_now_ms() + interval(m, tsfig_monitor_now_ms());
}

static void kill_probe(void)
{
    /* bounded: a probe in a frozen (paused) cgroup only dies once thawed; the main loop's reaper collects it then */
    if (h.pid > 0) {
        kill(h.pid, SIGKILL);
        for (int i = 0; i < 20 && waitpid(h.pid, NULL, WNOHANG) == 0; i++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    h.pid = 0;
    if (h.fd >= 0)
        close(h.fd);
    h.fd = -1;
}

void tsfig_health_stop(struct tsfig_monitor *m)
{
    kill_probe();
    h.next_ms = 0;
    /* Docker's CloseMonitorChannel: "unhealthy when the monitor has stopped for compatibility reasons" */
    if (m->c->health_cmd != NULL)
        h.status = HEALTH_UNHEALTHY;
}

long long tsfig_health_deadline(void)
{
    if (h.pid > 0)
        return h.deadline_ms;
    return h.next_ms;
}

int tsfig_health_fd(void)
{
    return h.fd;
}

void tsfig_health_readable(void)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(h.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) { /* EOF: the result is taken when the helper is reaped */
            close(h.fd);
            h.fd = -1;
        }
        if (n <= 0)
            return;
        /* Docker keeps the first 4 KiB */
        size_t take = (size_t)n < HEALTH_OUTPUT_MAX - h.out_len ? (size_t)n : HEALTH_OUTPUT_MAX - h.out_len;
        memcpy(h.out + h.out_len, buf, take);
        h.out_len += take;
    }
}

/* The helper: never returns. Its stdout/stderr are the output pipe, so its own errors are part of the output. */
__attribute__((noreturn)) static void probe_main(const struct tsfig_monitor *m, int out)
{
    struct tsfig_conf c = *m->c;
    tsfig_error_t err = {0};
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(125);
    close_range(3, ~0U, 0);
    long long start = tsfig_monitor_now_ms();
    struct tsfig_exec_join j;
    if (tsfig_exec_join(&c, m->pid, &j, &err) < 0) {
        dprintf(2, "%s%s%s\n", err.msg, err.errno_ ? ": " : "", err.errno_ ? strerror(err.errno_) : "");
        _exit(125);
    }
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        _exit(125);
    pid_t child = fork();
    if (child < 0)
        _exit(125);
    if (child == 0) {
        close(ep[0]);
        if (tsfig_exec_enter_cgroup(&j, &err) < 0)
            tsfig_child_fail(ep[1], &err);
        setpgid(0, 0);
        c.args = c.health_cmd;
        tsfig_exec_in_container(&c, c.user, c.cwd, c.env, c.n_env, ep[1]);
    }
    setpgid(child, child);
    close(ep[1]);
    tsfig_exec_join_release(&j);
    size_t got = 0;
    while (got < sizeof err) {
        ssize_t n = TEMP_FAILURE_RETRY(read(ep[0], (char *)&err + got, sizeof err - got));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(ep[0]);
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    if (got < sizeof err && pidfd >= 0) {
        long long left = start + m->c->health_timeout_ms - tsfig_monitor_now_ms();
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int r;
        do
            r = poll(&p, 1, left > 0 ? (int)(left < 0x7fffffff ? left : 0x7fffffff) : 0);
        while (r < 0 && errno == EINTR);
        if (r == 0) { /* timed out: the check and whatever it started, then ourselves */
            kill(-child, SIGKILL);
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            kill(getpid(), SIGKILL);
        }
    }
    int st = 0;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    if (got == sizeof err) {
        dprintf(2, "%s%s%s\n", err.msg, err.errno_ ? ": " : "", err.errno_ ? strerror(err.errno_) : "");
        _exit(err.code ? err.code : 125);
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* A paused container (freezer) is not probed: the probe would be frozen with it and then count as a timeout. Without
 * a cgroup (rootless) there is no pause, but `cp` stops every process of the container by signal while it copies
 * (engine/containers/cgroup-state.ts stopPidNamespace): a probe (the image's command) must not run meanwhile either,
 * so a PID 1 in state T counts as paused. */
static int paused(const struct tsfig_monitor *m)
{
    const struct tsfig_conf *c = m->c;
    char path[PATH_MAX], buf[1024];
    if (!tsfig_cgroup_enabled(c)) {
        tsfig_fmt(path, sizeof path, "/proc/%d/stat", (int)m->pid);
        if (tsfig_read_small(path, buf, sizeof buf) <= 0)
            return 0;
        const char *state = strrchr(buf, ')');
        return state != NULL && (state[1] == ' ') && (state[2] == 'T' || state[2] == 't');
    }
    if (tsfig_cgroup_is_v2())
        tsfig_fmt(path, sizeof path, TSFIG_CGROUP_ROOT "/%s/cgroup.freeze", c->cgroup);
    else
        tsfig_fmt(path, sizeof path, TSFIG_CGROUP_ROOT "/freezer/%s/freezer.state", c->cgroup);
    if (tsfig_read_small(path, buf, sizeof buf) <= 0)
        return 0;
    return buf[0] == '1' || strncmp(buf, "FR", 2) == 0; /* 1, FROZEN, FREEZING */
}

void tsfig_health_tick(struct tsfig_monitor *m, long long now)
{
    if (h.pid > 0) {
        /* the helper enforces the timeout itself; this only catches a helper stuck before it could */
        if (now >= h.deadline_ms) {
            kill(h.pid, SIGKILL);
            h.deadline_ms = now + 1000;
        }
        return;
    }
    if (h.next_ms == 0 || now < h.next_ms || m->state != TSFIG_STATE_RUNNING)
        return;
    if (paused(m)) {
        h.next_ms = now + interval(m, now);
        return;
    }
    int p[2];
    h.next_ms = 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return;
    tsfig_now_rfc3339(h.start, sizeof h.start);
    h.out_len = 0;
    h.started_ms = now;
    h.deadline_ms = now + m->c->health_timeout_ms + 2000;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        probe_main(m, p[1]);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        h.next_ms = now + interval(m, now);
        return;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    h.pid = pid;
    h.fd = p[0];
}

/* Go's time.Duration formatting for whole milliseconds: 30s, 1.5s, 500ms. */
static void format_duration(char *buf, size_t cap, long long ms)
{
    if (ms < 1000) {
        tsfig_fmt(buf, cap, "%lldms", ms);
        return;
    }
    char frac[8] = "";
    if (ms % 1000 != 0) {
        tsfig_fmt(frac, sizeof frac, ".%03lld", ms % 1000);
        for (size_t l = strlen(frac); l > 1 && frac[l - 1] == '0'; l--)
            frac[l - 1] = '\0';
    }
    tsfig_fmt(buf, cap, "%lld%ss", ms / 1000, frac);
}

int tsfig_health_reaped(struct tsfig_monitor *m, pid_t pid, int status)
{
    if (pid <= 0 || pid != h.pid)
        return 0;
    h.pid = 0;
    if (h.fd >= 0)
        tsfig_health_readable(); /* what is left; a background process keeping the pipe open is not waited for */
    if (h.fd >= 0)
        close(h.fd);
    h.fd = -1;
    long long now = tsfig_monitor_now_ms();
    if (h.n_log == HEALTH_LOG_MAX) {
        memmove(&h.log[0], &h.log[1], sizeof h.log[0] * (HEALTH_LOG_MAX - 1));
        h.n_log--;
    }
    struct probe_result *r = &h.log[h.n_log++];
    memcpy(r->start, h.start, sizeof r->start);
    tsfig_now_rfc3339(r->end, sizeof r->end);
    if (WIFSIGNALED(status)) {
        char d[32];
        format_duration(d, sizeof d, m->c->health_timeout_ms);
        r->exit_code = -1;
        tsfig_fmt(r->output, sizeof r->output, "Health check exceeded timeout (%s)", d);
    } else {
        r->exit_code = WEXITSTATUS(status);
        for (size_t i = 0; i < h.out_len; i++)
            r->output[i] = h.out[i] == '\0' ? ' ' : h.out[i];
        r->output[h.out_len] = '\0';
    }
    /* Docker's handleProbeResult */
    if (r->exit_code == 0) {
        h.failing_streak = 0;
        h.status = HEALTH_HEALTHY;
    } else if (!(h.status == HEALTH_STARTING && h.started_ms - m->run_start_ms < m->c->health_start_period_ms)) {
        if (++h.failing_streak >= m->c->health_retries)
            h.status = HEALTH_UNHEALTHY;
    }
    if (m->state == TSFIG_STATE_RUNNING)
        h.next_ms = now + interval(m, now);
    tsfig_error_t err = {0};
    (void)tsfig_monitor_write_status(m, &err);
    /* a probe touched fork's, the status writer's and the pipe's pages: give them back now rather than just before
     * the next probe, so the monitor stays under 1 MiB between probes */
    tsfig_trim_memory();
    return 1;
}

void tsfig_health_json(const struct tsfig_monitor *m, char *buf, size_t cap, size_t *len)
{
    static const char *const names[] = {"starting", "healthy", "unhealthy"};
    if (m->c->health_cmd == NULL)
        return;
    size_t n = *len;
    n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, ",\"health\":{\"status\":\"%s\",\"failingStreak\":%d,\"log\":[",
                          names[h.status], h.failing_streak);
    for (int i = 0; i < h.n_log && n < cap; i++) {
        const struct probe_result *r = &h.log[i];
        n += (size_t)snprintf(buf + n, cap - n, "%s{\"start\":\"%s\",\"end\":\"%s\",\"exitCode\":%d,\"output\":",
                              i ? "," : "", r->start, r->end, r->exit_code);
        if (n < cap)
            tsfig_json_string(buf, cap, &n, r->output);
        if (n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "}");
    }
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "]}");
    *len = n < cap ? n : cap - 1;
}
