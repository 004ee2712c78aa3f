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
    struct tsfig_log log;
    struct tsfig_stream out, err;
};

/* Creates <run_dir>/ctl (and attach with stdin) as listening unix sockets, mode 0600. */
int tsfig_monitor_sockets(struct tsfig_monitor *m, tsfig_error_t *err);
void tsfig_monitor_remove_sockets(const struct tsfig_monitor *m);
/* Fills self/self_start/boot_id/started_at and writes status "running". */
int tsfig_monitor_running(struct tsfig_monitor *m, tsfig_error_t *err);
/* Supervises until the container's PID 1 exits, cleans up, writes the final status. Returns the exit code. */
int tsfig_monitor_loop(struct tsfig_monitor *m);

#endif
