/* runtime.conf: the data the engine hands to `start` and `exec` (see native/PROTOCOL.md). */
#ifndef TSFIG_CONF_H
#define TSFIG_CONF_H

#include "error.h"

#include <stdint.h>

struct tsfig_mount {
    char *dest;
    char *type;    /* "bind" or "tmpfs" */
    char *source;
    char *options;
    int copy;      /* mount.copy: populate an empty bind source from the rootfs */
    char *subpath; /* mount.subpath: mount only this path inside the source (no symlink followed) */
    int idmap;     /* mount.idmap: mounted with the container's idmapping (userns; volumes, images, engine files) */
};

struct tsfig_rlimit {
    int resource;
    uint64_t soft, hard;
    char name[24];
};

struct tsfig_sysctl {
    char *key;
    char *value;
};

struct tsfig_conf {
    char *id, *name, *rootfs, *upper, *work, *hostname, *cwd, *user, *netns, *cgroup, *log, *run_dir, *status;
    char **lower;
    size_t n_lower;
    char **args;
    size_t n_args;
    char **env;
    size_t n_env;
    char **group_add;
    size_t n_group_add;
    struct tsfig_mount *mounts;
    size_t n_mounts;
    uint64_t caps; /* bit N = capability N */
    uint64_t exec_extra_caps; /* exec --privileged: added to caps for that process only (seccomp keeps caps) */
    struct tsfig_rlimit *rlimits;
    size_t n_rlimits;
    struct tsfig_sysctl *sysctls;
    size_t n_sysctls;
    int readonly, privileged, seccomp_default, no_new_privs, init, tty, stdin_;
    int64_t memory, memory_swap, pids, cpu_quota, cpu_period, cpu_shares;
    int64_t shm_size; /* bytes of the /dev/shm tmpfs; 0 = docker's default, 64 MiB */
    int64_t log_max_size, log_max_files;
    int stop_signal, oom_score_adj;
    /* restart policy and healthcheck, enforced by the monitor (monitor.c, health.c) */
    int restart; /* TSFIG_RESTART_* */
    int64_t restart_max; /* on-failure:N, 0 = unlimited */
    char **health_cmd;   /* argv of the check; NULL = none. CMD-SHELL is turned into /bin/sh -c */
    size_t n_health_cmd;
    int64_t health_interval_ms, health_timeout_ms, health_retries, health_start_period_ms, health_start_interval_ms;
    /* run by the monitor once the container has exited for good (conmon's --exit-command): argv and its whole env */
    char **exit_cmd;
    size_t n_exit_cmd;
    char **exit_env;
    size_t n_exit_env;
    /* userns: container ids 0..userns_size-1 are the host's userns_uid.. and userns_gid..; size 0 = no user
     * namespace (the host's, or rootless the session's) */
    uint32_t userns_uid, userns_gid, userns_size;
    /* lower_shifted: the lower dirs are copies already owned by the range's host ids (chown-on-copy, where the file
     * system has no idmapped mounts): mounted as they are, not as idmapped clones */
    int lower_shifted;
};

enum { TSFIG_RESTART_NO, TSFIG_RESTART_ALWAYS, TSFIG_RESTART_ON_FAILURE, TSFIG_RESTART_UNLESS_STOPPED };

/* Parses text (NUL-terminated) into conf. Errors use step "parse config". */
int tsfig_conf_parse(const char *text, struct tsfig_conf *conf, tsfig_error_t *err);
/* Reads <dir>/runtime.conf. */
int tsfig_conf_load(const char *dir, struct tsfig_conf *conf, tsfig_error_t *err);
void tsfig_conf_free(struct tsfig_conf *conf);

#endif
