/* cgroups: create with limits, join, kill everything, OOM detection, removal. v1 here, v2 in cgroup2.c. */
#ifndef TSFIG_CGROUP_H
#define TSFIG_CGROUP_H

#include "conf.h"
#include "error.h"

#include <sys/types.h>

#define TSFIG_CGROUP_ROOT "/sys/fs/cgroup"

int tsfig_cgroup_is_v2(void);
/* 0 when runtime.conf says `cgroup none` (rootless without writable cgroups): every function below is then a no-op
 * (signal_all and kill_all signal nothing; the pid namespace's init dying takes the other processes with it). */
int tsfig_cgroup_enabled(const struct tsfig_conf *c);
/* Creates the cgroup dirs and writes every limit; on failure removes what it created. */
int tsfig_cgroup_create(const struct tsfig_conf *c, tsfig_error_t *err);
/* Moves pid into the container's cgroups. */
int tsfig_cgroup_join(const struct tsfig_conf *c, pid_t pid, tsfig_error_t *err);
/* Moves the calling process into the container's cgroups (in a new pid namespace too, where getpid() is 1). Much
 * cheaper than being moved by another process on v1 (see cgroup.c); the process must be single-threaded for that. */
int tsfig_cgroup_join_self(const struct tsfig_conf *c, tsfig_error_t *err);
/* For a process that joins the container's mount namespace before it forks (exec, a health probe), where the host's
 * cgroup tree is no longer visible: opens, in fds (up to 8), the files through which a process moves itself into the
 * container's cgroups. Returns how many (0 without cgroups), -1 with err. */
int tsfig_cgroup_open_join(const struct tsfig_conf *c, int fds[8], tsfig_error_t *err);
/* In the forked (single-threaded) child: moves itself into the cgroups through the fds of tsfig_cgroup_open_join. */
int tsfig_cgroup_join_fds(const int *fds, int n, tsfig_error_t *err);
/* Sends sig to every process in the cgroup (once). Returns how many were signalled. */
int tsfig_cgroup_signal_all(const struct tsfig_conf *c, int sig);
/* SIGKILLs every process until the cgroup is empty (bounded wait). */
void tsfig_cgroup_kill_all(const struct tsfig_conf *c);
void tsfig_cgroup_thaw(const struct tsfig_conf *c);
/* How many processes of the cgroup the kernel OOM-killed so far (0: none; the counter spans restarts). */
int tsfig_cgroup_oom_killed(const struct tsfig_conf *c);
/* Removes the cgroup dirs and any now-empty parents up to the hierarchy root. */
void tsfig_cgroup_remove(const struct tsfig_conf *c);

/* v1 controllers tsfig manages; NULL-terminated. */
extern const char *const tsfig_cgroup_v1_controllers[];

/* cgroup2.c */
int tsfig_cgroup2_create(const struct tsfig_conf *c, tsfig_error_t *err);
int tsfig_cgroup2_path(char *buf, size_t cap, const char *root, const char *key, const char *file);
int tsfig_cgroup2_memory_max(char *buf, size_t cap, int64_t bytes);
int tsfig_cgroup2_swap_max(char *buf, size_t cap, int64_t memory, int64_t memory_swap);
int tsfig_cgroup2_cpu_max(char *buf, size_t cap, int64_t quota, int64_t period);
uint64_t tsfig_cgroup2_cpu_weight(int64_t shares);
int tsfig_cgroup2_pids_max(char *buf, size_t cap, int64_t pids);
const char *tsfig_cgroup2_subtree_control(void);

#endif
