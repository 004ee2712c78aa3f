/* The per-container monitor: parent of the container's PID 1, owner of its stdio, log, status and ctl socket. */
#ifndef TSFIG_MONITOR_H
#define TSFIG_MONITOR_H

#include "conf.h"
#include "error.h"
#include "log.h"

#include <sys/types.h>

struct tsfig_monitor {
    const struct tsfig_conf *c;
    pid_t pid, self;
    long long self_start;
    char started_at[64], boot_id[64];
    int ctl_fd, attach_fd, attach_client;
    int stdin_fd;  /* write end of the container's stdin (pipe, or the pty master) */
    int tty_master;
    int ctl_clients[4];
    long long kill_deadline_ms; /* 0: none */
    /* restart policy: the state written to status, the last run's exit, the back-off timer */
    int state;          /* TSFIG_STATE_* */
    int user_stopped;   /* stop/kill came over ctl: the policy never restarts after it */
    int finish_now;     /* stop/kill while restarting: leave the loop */
    int restart_count;
    long long restart_at_ms, backoff_ms, run_start_ms; /* CLOCK_MONOTONIC ms; restart_at 0: none pending */
    int have_exit, last_code, last_signal, last_oom, oom_kills; /* oom_kills: the cgroup's counter after the last run */
    char finished_at[64];
    struct tsfig_log log;
    struct tsfig_stream out, err;
    pid_t *keepers; /* the keepers of `exec --detach` it forked (ctl `exec`), reaped by it */
    size_t n_keepers, cap_keepers;
};

enum { TSFIG_STATE_RUNNING, TSFIG_STATE_RESTARTING, TSFIG_STATE_EXITED };

/* start.c: creates the stdio pipes, clones the container process through the whole init sequence, puts it in its
 * cgroups and waits until it has execve'd. Used for the first start and for every restart by the policy. */
int tsfig_monitor_launch(struct tsfig_monitor *m, tsfig_error_t *err);
/* Writes status.json atomically from the monitor's state (and the healthcheck's, see health.h). */
int tsfig_monitor_write_status(const struct tsfig_monitor *m, tsfig_error_t *err);
long long tsfig_monitor_now_ms(void);

/* Creates <run_dir>/ctl (and attach with stdin) as listening unix sockets, mode 0600. */
int tsfig_monitor_sockets(struct tsfig_monitor *m, tsfig_error_t *err);
void tsfig_monitor_remove_sockets(const struct tsfig_monitor *m);
/* Fills self/self_start/boot_id/started_at and writes status "running". */
int tsfig_monitor_running(struct tsfig_monitor *m, tsfig_error_t *err);
/* Supervises until the container's PID 1 exits, cleans up, writes the final status. Returns the exit code. */
int tsfig_monitor_loop(struct tsfig_monitor *m);

#endif
