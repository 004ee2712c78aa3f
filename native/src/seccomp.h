/* Docker's default seccomp profile, built with libseccomp. See seccomp_profile.h for the tables. */
#ifndef TSFIG_SECCOMP_H
#define TSFIG_SECCOMP_H

#include "error.h"
#include <stdint.h>

/* Loads Docker's default seccomp profile (moby profiles/seccomp/default.json semantics) for the calling thread.
 * effective_caps_mask: bit N set = capability N is in the container's set (rules conditional on caps use it).
 * Must be called last before execve (after capabilities are set). Returns 0, or -1 with err set (step "seccomp").
 *
 * Like runc, this does not set PR_SET_NO_NEW_PRIVS itself (Docker containers keep setuid/file-cap semantics unless
 * no-new-privileges is requested). The kernel therefore only accepts the filter if the thread already has
 * no_new_privs set or still holds CAP_SYS_ADMIN; otherwise this fails with EACCES and says so. Callers that drop
 * CAP_SYS_ADMIN without no-new-privileges must load the filter before dropping capabilities (runc/crun order). */
int tsfig_seccomp_load_default(uint64_t effective_caps_mask, tsfig_error_t *err);

#endif
