/* cgroup v2 (unified) support. The path and value computations are pure functions (tested by
 * test/native/cgroup2-test.c); the device policy is the eBPF program of bpfdev.c. */
#include "cgroup.h"

#include "bpfdev.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int tsfig_cgroup2_path(char *buf, size_t cap, const char *root, const char *key, const char *file)
{
    int n = tsfig_fmt(buf, cap, "%s/%s%s%s", root, key, file ? "/" : "", file ? file : "");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int tsfig_cgroup2_memory_max(char *buf, size_t cap, int64_t bytes)
{
    int n = bytes > 0 ? tsfig_fmt(buf, cap, "%" PRId64, bytes) : tsfig_fmt(buf, cap, "max");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* v1's memsw limit is memory+swap; v2's memory.swap.max is swap alone. */
int tsfig_cgroup2_swap_max(char *buf, size_t cap, int64_t memory, int64_t memory_swap)
{
    int n;
    if (memory_swap < 0)
        n = tsfig_fmt(buf, cap, "max");
    else if (memory_swap == 0 || memory <= 0)
        return 1;
    else if (memory_swap < memory)
        return -1;
    else
        n = tsfig_fmt(buf, cap, "%" PRId64, memory_swap - memory);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int tsfig_cgroup2_cpu_max(char *buf, size_t cap, int64_t quota, int64_t period)
{
    if (period <= 0)
        period = 100000;
    int n = quota > 0 ? tsfig_fmt(buf, cap, "%" PRId64 " %" PRId64, quota, period)
                      : tsfig_fmt(buf, cap, "max %" PRId64, period);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* runc's conversion: shares [2, 262144] onto weight [1, 10000]. */
uint64_t tsfig_cgroup2_cpu_weight(int64_t shares)
{
    if (shares <= 0)
        return 0;
    if (shares < 2)
        shares = 2;
    if (shares > 262144)
        shares = 262144;
    return 1 + ((uint64_t)(shares - 2) * 9999) / 262142;
}

int tsfig_cgroup2_pids_max(char *buf, size_t cap, int64_t pids)
{
    int n = pids > 0 ? tsfig_fmt(buf, cap, "%" PRId64, pids) : tsfig_fmt(buf, cap, "max");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

const char *tsfig_cgroup2_subtree_control(void)
{
    return "+cpu +memory +pids +cpuset";
}

static int write_in(const char *dir, const char *file, const char *val, tsfig_error_t *err)
{
    char p[PATH_MAX], step[64];
    tsfig_fmt(p, sizeof p, "%s/%s", dir, file);
    tsfig_fmt(step, sizeof step, "cgroup %.*s", (int)strcspn(file, "."), file);
    return tsfig_write_file(p, val, step, err);
}

/* Enables the controllers for the children of dir one by one: cpuset is optional, the others are required. */
static int delegate(const char *dir, tsfig_error_t *err)
{
    char list[64];
    tsfig_fmt(list, sizeof list, "%s", tsfig_cgroup2_subtree_control());
    char *save = NULL;
    for (char *ctrl = strtok_r(list, " ", &save); ctrl; ctrl = strtok_r(NULL, " ", &save)) {
        tsfig_error_t e = {0};
        if (write_in(dir, "cgroup.subtree_control", ctrl, &e) < 0 && strcmp(ctrl, "+cpuset") != 0) {
            *err = e;
            return -1;
        }
    }
    return 0;
}

static int create_dirs_once(const char *key, tsfig_error_t *err)
{
    char dir[PATH_MAX];
    size_t base = strlen(TSFIG_CGROUP_ROOT) + 1;
    tsfig_fmt(dir, sizeof dir, TSFIG_CGROUP_ROOT "/%s", key);
    for (char *p = dir + base;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return tsfig_make_error(err, errno, "cgroup", "create cgroup `%s`", dir);
        *p = saved;
        if (saved == '\0')
            break;
        /* every ancestor of the leaf delegates the controllers to its children */
        char parent[PATH_MAX];
        tsfig_fmt(parent, sizeof parent, "%.*s", (int)(p - dir), dir);
        if (delegate(parent, err) < 0)
            return -1;
    }
    return 0;
}

/* An empty parent another tsfig process removes meanwhile (ENOENT): start again from the top (see cgroup.c). */
static int create_dirs(const char *key, tsfig_error_t *err)
{
    for (int attempt = 0;; attempt++) {
        if (create_dirs_once(key, err) == 0)
            return 0;
        if (err->errno_ != ENOENT || attempt >= 20)
            return -1;
    }
}

int tsfig_cgroup2_create(const struct tsfig_conf *c, tsfig_error_t *err)
{
    char dir[PATH_MAX], v[64];
    if (delegate(TSFIG_CGROUP_ROOT, err) < 0)
        return -1;
    if (create_dirs(c->cgroup, err) < 0)
        goto fail;
    if (tsfig_cgroup2_path(dir, sizeof dir, TSFIG_CGROUP_ROOT, c->cgroup, NULL) < 0)
        goto fail;
    if (c->memory > 0 && (tsfig_cgroup2_memory_max(v, sizeof v, c->memory) < 0 || write_in(dir, "memory.max", v, err) < 0))
        goto fail;
    if (tsfig_cgroup2_swap_max(v, sizeof v, c->memory, c->memory_swap) == 0
        && write_in(dir, "memory.swap.max", v, err) < 0)
        goto fail;
    if (c->pids > 0 && (tsfig_cgroup2_pids_max(v, sizeof v, c->pids) < 0 || write_in(dir, "pids.max", v, err) < 0))
        goto fail;
    if ((c->cpu_quota > 0 || c->cpu_period > 0)
        && (tsfig_cgroup2_cpu_max(v, sizeof v, c->cpu_quota, c->cpu_period) < 0 || write_in(dir, "cpu.max", v, err) < 0))
        goto fail;
    if (c->cpu_shares > 0) {
        tsfig_fmt(v, sizeof v, "%" PRIu64, tsfig_cgroup2_cpu_weight(c->cpu_shares));
        if (write_in(dir, "cpu.weight", v, err) < 0)
            goto fail;
    }
    if (!c->privileged && tsfig_bpfdev_attach(dir, err) < 0)
        goto fail;
    return 0;
fail:
    tsfig_cgroup_remove(c);
    return -1;
}
