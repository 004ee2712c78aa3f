/* Docker's default seccomp profile, built with libseccomp. See seccomp_profile.h for the tables. */
#ifndef TSFIG_SECCOMP_H
#define TSFIG_SECCOMP_H

#include "error.h"
#include <stddef.h>
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

/* Compiles the filter tsfig_seccomp_load_default will load for this process and the children it forks afterwards,
 * taking it from the compiled-filter cache (/run/tsfig/seccomp/<hash>.bpf, root-owned, 0600) when an entry for the
 * same profile tables, caps mask, no_new_privs, libseccomp (version and file), kernel, native arch and runtime binary
 * is there, else building it with libseccomp and storing it (temp file + rename). Must run on the host side, before
 * the container's root or mount namespace is entered: it reads files by path. Returns TSFIG_SECCOMP_CACHED,
 * TSFIG_SECCOMP_BUILT, or -1 with err set (then nothing is prepared and load_default builds the filter itself). */
enum { TSFIG_SECCOMP_BUILT = 0, TSFIG_SECCOMP_CACHED = 1 };
int tsfig_seccomp_prepare_default(uint64_t effective_caps_mask, int no_new_privs, tsfig_error_t *err);

/* prepare_default for the process runtime.conf c describes, if it gets the default profile (seccomp default, not
 * privileged). Errors are left to the load, which then builds the filter itself. */
struct tsfig_conf;
void tsfig_seccomp_prepare_for(const struct tsfig_conf *c);

/* The cache file prepare_default uses for this key (for tests and diagnostics). 0, or -1 if there is no key. */
int tsfig_seccomp_cache_file(uint64_t effective_caps_mask, int no_new_privs, char *buf, size_t cap);

#endif
