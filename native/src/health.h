/* The healthcheck, run by the monitor (runtime.conf `health_*`, Docker's rules): a probe is a process started in the
 * container like `exec` does it, with a timeout; the last 5 results and the status go into status.json. */
#ifndef TSFIG_HEALTH_H
#define TSFIG_HEALTH_H

#include "monitor.h"

#include <stddef.h>
#include <sys/types.h>

/* The container (re)started: status `starting`, failing streak 0, first probe one interval from now. */
void tsfig_health_start(struct tsfig_monitor *m);
/* The container exited: kills and reaps a running probe; no more probes until the next start. */
void tsfig_health_stop(struct tsfig_monitor *m);
/* Earliest deadline (next probe, or the running probe's timeout) in monotonic ms; 0 if none. */
long long tsfig_health_deadline(void);
/* Starts a probe that is due; kills one that overran its timeout. */
void tsfig_health_tick(struct tsfig_monitor *m, long long now);
/* The running probe's output pipe, -1 if none. */
int tsfig_health_fd(void);
void tsfig_health_readable(void);
/* Returns 1 if pid was the probe (its result is recorded and the status written). */
int tsfig_health_reaped(struct tsfig_monitor *m, pid_t pid, int status);
/* Appends `,"health":{...}` to buf (nothing without a healthcheck). */
void tsfig_health_json(const struct tsfig_monitor *m, char *buf, size_t cap, size_t *len);
/* Upper bound of what tsfig_health_json appends. */
#define TSFIG_HEALTH_JSON_MAX (5 * (4096 * 6 + 256) + 256)

#endif
