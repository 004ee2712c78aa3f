#include "cgroup.h"

#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const tsfig_cgroup_v1_controllers[] = {"memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer",
                                                   NULL};

/* Docker's (runc's) device allow-list after `a` is denied. */
static const char *const device_allow[] = {
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm", NULL,
};

/* The host's cgroup layout does not change under a runtime process: looked up once per process. */
int tsfig_cgroup_is_v2(void)
{
    static int v2 = -1;
    if (v2 < 0)
        v2 = access(TSFIG_CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
    return v2;
}

int tsfig_cgroup_enabled(const struct tsfig_conf *c)
{
    return c->cgroup != NULL && strcmp(c->cgroup, "none") != 0;
}

static void v1_path(char *buf, size_t cap, const char *ctrl, const char *key, const char *file)
{
    tsfig_fmt(buf, cap, TSFIG_CGROUP_ROOT "/%s/%s%s%s", ctrl, key, file ? "/" : "", file ? file : "");
}

static int have_controller(const char *ctrl)
{
    static signed char known[16];
    int i = 0;
    while (tsfig_cgroup_v1_controllers[i] != NULL && strcmp(tsfig_cgroup_v1_controllers[i], ctrl) != 0)
        i++;
    if (i < 16 && known[i] != 0)
        return known[i] > 0;
    char p[PATH_MAX];
    tsfig_fmt(p, sizeof p, TSFIG_CGROUP_ROOT "/%s/cgroup.procs", ctrl);
    int have = access(p, F_OK) == 0;
    if (i < 16)
        known[i] = have ? 1 : -1;
    return have;
}

/* cpuset children start empty: copy cpus/mems from the parent or nothing can join. */
static int cpuset_init(const char *dir, tsfig_error_t *err)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        char p[PATH_MAX], pp[PATH_MAX], val[4096];
        tsfig_fmt(p, sizeof p, "%s/%s", dir, files[i]);
        if (tsfig_read_small(p, val, sizeof val) > 1)
            continue;
        tsfig_fmt(pp, sizeof pp, "%s/../%s", dir, files[i]);
        if (tsfig_read_small(pp, val, sizeof val) < 0)
            return tsfig_make_error(err, errno, "cgroup cpuset", "read `%s`", pp);
        val[strcspn(val, "\n")] = '\0';
        if (tsfig_write_file(p, val, "cgroup cpuset", err) < 0)
            return -1;
    }
    return 0;
}

static int v1_mkdir_once(const char *ctrl, const char *key, tsfig_error_t *err)
{
    char step[64], dir[PATH_MAX];
    tsfig_fmt(step, sizeof step, "cgroup %s", ctrl);
    tsfig_fmt(dir, sizeof dir, TSFIG_CGROUP_ROOT "/%s/", ctrl);
    size_t base = strlen(dir);
    tsfig_fmt(dir + base, sizeof dir - base, "%s", key);
    for (char *p = dir + base;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return tsfig_make_error(err, errno, step, "create cgroup `%s`", dir);
        if (strcmp(ctrl, "cpuset") == 0 && cpuset_init(dir, err) < 0)
            return -1;
        *p = saved;
        if (saved == '\0')
            break;
    }
    return 0;
}

/*
 * Another tsfig process removes the root's parent cgroup when its last container goes (removeEmptyCgroupParent). If
 * that happens between our mkdir of the parent (EEXIST) and the next step, the parent is gone (ENOENT): start again
 * from the top. Once the leaf exists the parent is not empty and stays.
 */
static int v1_mkdir(const char *ctrl, const char *key, tsfig_error_t *err)
{
    for (int attempt = 0;; attempt++) {
        if (v1_mkdir_once(ctrl, key, err) == 0)
            return 0;
        if (err->errno_ != ENOENT || attempt >= 20)
            return -1;
    }
}

static int v1_write(const char *ctrl, const char *key, const char *file, const char *val, int optional,
                    tsfig_error_t *err)
{
    char p[PATH_MAX], step[64];
    v1_path(p, sizeof p, ctrl, key, file);
    tsfig_fmt(step, sizeof step, "cgroup %s", ctrl);
    if (optional && access(p, F_OK) < 0)
        return 0;
    cleanup_close int fd = TEMP_FAILURE_RETRY(open(p, O_WRONLY | O_CLOEXEC));
    if (fd < 0)
        return tsfig_make_error(err, errno, step, "open `%s`", file);
    if (TEMP_FAILURE_RETRY(write(fd, val, strlen(val))) < 0)
        return tsfig_make_error(err, errno, step, "write `%s` to `%s`", val, file);
    return 0;
}

static int v1_limits(const struct tsfig_conf *c, tsfig_error_t *err)
{
    char v[64];
    const char *k = c->cgroup;
    if (c->memory > 0) {
        tsfig_fmt(v, sizeof v, "%" PRId64, c->memory);
        if (v1_write("memory", k, "memory.limit_in_bytes", v, 0, err) < 0)
            return -1;
        if (c->memory_swap != 0) {
            tsfig_fmt(v, sizeof v, "%" PRId64, c->memory_swap);
            if (v1_write("memory", k, "memory.memsw.limit_in_bytes", v, 1, err) < 0)
                return -1;
        }
    }
    if (c->pids > 0) {
        tsfig_fmt(v, sizeof v, "%" PRId64, c->pids);
        if (v1_write("pids", k, "pids.max", v, 0, err) < 0)
            return -1;
    }
    if (c->cpu_period > 0) {
        tsfig_fmt(v, sizeof v, "%" PRId64, c->cpu_period);
        if (v1_write("cpu", k, "cpu.cfs_period_us", v, 0, err) < 0)
            return -1;
    }
    if (c->cpu_quota != 0) {
        tsfig_fmt(v, sizeof v, "%" PRId64, c->cpu_quota);
        if (v1_write("cpu", k, "cpu.cfs_quota_us", v, 0, err) < 0)
            return -1;
    }
    if (c->cpu_shares > 0) {
        tsfig_fmt(v, sizeof v, "%" PRId64, c->cpu_shares);
        if (v1_write("cpu", k, "cpu.shares", v, 0, err) < 0)
            return -1;
    }
    if (!c->privileged) {
        if (v1_write("devices", k, "devices.deny", "a", 0, err) < 0)
            return -1;
        for (int i = 0; device_allow[i]; i++)
            if (v1_write("devices", k, "devices.allow", device_allow[i], 0, err) < 0)
                return -1;
    }
    return 0;
}

/* A leftover leaf with live processes would make the new container share them: refuse it. */
static int check_unused(const struct tsfig_conf *c, tsfig_error_t *err)
{
    char p[PATH_MAX], buf[64];
    v1_path(p, sizeof p, "pids", c->cgroup, "cgroup.procs");
    if (tsfig_read_small(p, buf, sizeof buf) > 0)
        return tsfig_make_error(err, EBUSY, "cgroup", "cgroup `%s` already exists and is in use", c->cgroup);
    return 0;
}

int tsfig_cgroup_create(const struct tsfig_conf *c, tsfig_error_t *err)
{
    if (!tsfig_cgroup_enabled(c))
        return 0;
    if (tsfig_cgroup_is_v2())
        return tsfig_cgroup2_create(c, err);
    if (check_unused(c, err) < 0)
        return -1;
    for (int i = 0; tsfig_cgroup_v1_controllers[i]; i++) {
        const char *ctrl = tsfig_cgroup_v1_controllers[i];
        if (!have_controller(ctrl)) {
            if (strcmp(ctrl, "devices") == 0 && !c->privileged)
                return tsfig_make_error(err, ENOENT, "cgroup devices", "devices controller not mounted");
            continue;
        }
        if (v1_mkdir(ctrl, c->cgroup, err) < 0)
            goto fail;
    }
    if (v1_limits(c, err) < 0)
        goto fail;
    return 0;
fail:
    tsfig_cgroup_remove(c);
    return -1;
}

static int each_dir(const struct tsfig_conf *c, char dirs[][PATH_MAX], int max)
{
    int n = 0;
    if (!tsfig_cgroup_enabled(c))
        return 0;
    if (tsfig_cgroup_is_v2()) {
        tsfig_fmt(dirs[n++], PATH_MAX, TSFIG_CGROUP_ROOT "/%s", c->cgroup);
        return n;
    }
    for (int i = 0; tsfig_cgroup_v1_controllers[i] && n < max; i++)
        if (have_controller(tsfig_cgroup_v1_controllers[i]))
            v1_path(dirs[n++], PATH_MAX, tsfig_cgroup_v1_controllers[i], c->cgroup, NULL);
    return n;
}

/* Number of threads of the calling process (field 20 of /proc/self/stat), 0 if unknown. */
static long own_threads(void)
{
    char buf[1024];
    if (tsfig_read_small("/proc/self/stat", buf, sizeof buf) <= 0)
        return 0;
    char *p = strrchr(buf, ')');
    for (int field = 2; p != NULL && field < 20; field++)
        p = strchr(p + 1, ' ');
    return p != NULL ? strtol(p + 1, NULL, 10) : 0;
}

static int join(const struct tsfig_conf *c, pid_t pid, int self, tsfig_error_t *err)
{
    char dirs[8][PATH_MAX], p[PATH_MAX + 16], v[32];
    if (!tsfig_cgroup_enabled(c))
        return 0;
    int n = each_dir(c, dirs, 8);
    /* Writing a pid to cgroup.procs takes the kernel's global threadgroup lock for writing, which waits for an RCU
     * grace period (~14 ms here). Moving the calling thread itself through v1 `tasks` ("0") skips that lock
     * (cgroup_procs_write_start); for a single-threaded process it moves the whole process, as cgroup.procs would.
     * "0" always names the writer itself, also in a new pid namespace. */
    int fast = self && !tsfig_cgroup_is_v2() && own_threads() == 1;
    tsfig_fmt(v, sizeof v, "%d", self ? 0 : (int)pid);
    for (int i = 0; i < n; i++) {
        tsfig_fmt(p, sizeof p, "%s/%s", dirs[i], fast ? "tasks" : "cgroup.procs");
        if (tsfig_write_file(p, v, "cgroup join", err) < 0) {
            tsfig_fmt(err->msg, sizeof err->msg, "join cgroup `%s`", dirs[i]);
            return -1;
        }
    }
    return 0;
}

int tsfig_cgroup_join(const struct tsfig_conf *c, pid_t pid, tsfig_error_t *err)
{
    return join(c, pid, pid == getpid(), err);
}

int tsfig_cgroup_join_self(const struct tsfig_conf *c, tsfig_error_t *err)
{
    return join(c, 0, 1, err);
}

int tsfig_cgroup_open_join(const struct tsfig_conf *c, int fds[8], tsfig_error_t *err)
{
    char dirs[8][PATH_MAX], p[PATH_MAX + 16];
    if (!tsfig_cgroup_enabled(c))
        return 0;
    int n = each_dir(c, dirs, 8);
    for (int i = 0; i < n; i++) {
        /* v1: `tasks` moves the writing thread, the whole process of a single-threaded child (see join) */
        tsfig_fmt(p, sizeof p, "%s/%s", dirs[i], tsfig_cgroup_is_v2() ? "cgroup.procs" : "tasks");
        fds[i] = open(p, O_WRONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            tsfig_make_error(err, errno, "cgroup join", "open `%s`", p);
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    return n;
}

int tsfig_cgroup_join_fds(const int *fds, int n, tsfig_error_t *err)
{
    for (int i = 0; i < n; i++)
        if (write(fds[i], "0", 1) != 1) /* "0": the writer itself, also in another pid namespace */
            return tsfig_make_error(err, errno, "cgroup join", "join the container's cgroup");
    return 0;
}

int tsfig_cgroup_signal_all(const struct tsfig_conf *c, int sig)
{
    char dirs[8][PATH_MAX], p[PATH_MAX + 16];
    int n = each_dir(c, dirs, 8), count = 0;
    for (int i = 0; i < n; i++) {
        tsfig_fmt(p, sizeof p, "%s/cgroup.procs", dirs[i]);
        FILE *f = fopen(p, "re");
        if (f == NULL)
            continue;
        int pid;
        while (fscanf(f, "%d", &pid) == 1)
            if (pid > 0 && kill(pid, sig) == 0)
                count++;
        fclose(f);
    }
    return count;
}

static void freeze(const struct tsfig_conf *c, const char *state)
{
    char p[PATH_MAX];
    tsfig_error_t ignored = {0};
    if (!tsfig_cgroup_enabled(c))
        return;
    v1_path(p, sizeof p, "freezer", c->cgroup, "freezer.state");
    if (access(p, F_OK) == 0)
        (void)tsfig_write_file(p, state, "cgroup freezer", &ignored);
}

/* Resumes a paused (frozen) container so that a signal sent to it is delivered: a frozen task keeps a SIGKILL pending
 * for ever, and its cgroup can then never be removed (Docker resumes a paused container it stops or kills too). */
void tsfig_cgroup_thaw(const struct tsfig_conf *c)
{
    if (!tsfig_cgroup_enabled(c))
        return;
    if (!tsfig_cgroup_is_v2()) {
        freeze(c, "THAWED");
        return;
    }
    char p[PATH_MAX];
    tsfig_error_t ignored = {0};
    tsfig_fmt(p, sizeof p, TSFIG_CGROUP_ROOT "/%s/cgroup.freeze", c->cgroup);
    if (access(p, F_OK) == 0)
        (void)tsfig_write_file(p, "0", "cgroup freezer", &ignored);
}

void tsfig_cgroup_kill_all(const struct tsfig_conf *c)
{
    if (!tsfig_cgroup_enabled(c))
        return;
    int v1 = !tsfig_cgroup_is_v2();
    for (int i = 0; i < 500; i++) {
        /* frozen, nothing can fork while the list is read; SIGKILL is delivered on thaw */
        if (v1)
            freeze(c, "FROZEN");
        int n = tsfig_cgroup_signal_all(c, SIGKILL);
        if (v1)
            freeze(c, "THAWED");
        if (n == 0)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int tsfig_cgroup_oom_killed(const struct tsfig_conf *c)
{
    char p[PATH_MAX], buf[1024];
    if (!tsfig_cgroup_enabled(c))
        return 0;
    if (tsfig_cgroup_is_v2())
        tsfig_fmt(p, sizeof p, TSFIG_CGROUP_ROOT "/%s/memory.events", c->cgroup);
    else
        v1_path(p, sizeof p, "memory", c->cgroup, "memory.oom_control");
    if (tsfig_read_small(p, buf, sizeof buf) < 0)
        return 0;
    const char *k = strstr(buf, "oom_kill ");
    long n = k != NULL ? strtol(k + 9, NULL, 10) : 0;
    return n > 0 ? (int)(n < INT_MAX ? n : INT_MAX) : 0;
}

void tsfig_cgroup_remove(const struct tsfig_conf *c)
{
    char dirs[8][PATH_MAX];
    int n = each_dir(c, dirs, 8);
    for (int i = 0; i < n; i++) {
        size_t rootlen = tsfig_cgroup_is_v2() ? strlen(TSFIG_CGROUP_ROOT) : strlen(dirs[i]) - strlen(c->cgroup) - 1;
        for (int tries = 0; tries < 100; tries++) {
            if (rmdir(dirs[i]) == 0 || errno != EBUSY)
                break;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        for (char *slash = strrchr(dirs[i], '/'); slash && (size_t)(slash - dirs[i]) > rootlen;
             slash = strrchr(dirs[i], '/')) {
            *slash = '\0';
            if (rmdir(dirs[i]) < 0)
                break;
        }
    }
}
