/* Small helpers shared by the runtime: files, strings, paths resolved inside a root. */
#ifndef TSFIG_UTIL_H
#define TSFIG_UTIL_H

#include "error.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

static inline void tsfig_cleanup_free(void *p)
{
    free(*(void **)p);
}
#define cleanup_free __attribute__((cleanup(tsfig_cleanup_free)))

/* Appends s (duplicated) to a NULL-terminated vector of *n entries. Aborts on ENOMEM. */
void tsfig_strv_push(char ***v, size_t *n, const char *s);
char *tsfig_xstrdup(const char *s);
void *tsfig_xrealloc(void *p, size_t n);

/* Writes s to path (O_WRONLY|O_TRUNC unless append); fails naming the file. */
int tsfig_write_file(const char *path, const char *s, const char *step, tsfig_error_t *err);
int tsfig_write_file_at(int dirfd, const char *name, const char *s, const char *step, tsfig_error_t *err);
/* Reads up to cap-1 bytes of path into buf, NUL-terminated. Returns length or -1 with errno. */
ssize_t tsfig_read_small(const char *path, char *buf, size_t cap);
/* Reads a whole file; returns malloc'd NUL-terminated buffer or NULL with errno. */
char *tsfig_read_all(const char *path, size_t *len);

int tsfig_mkdir_p(const char *path, mode_t mode);

/* openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) of path inside rootfd. Returns fd or -1 with errno. */
int tsfig_open_in_root(int rootfd, const char *path, int flags, mode_t mode);
/* The null device of the current root (a container's, once joined or pivoted into), opened O_RDWR without following
 * a symlink or a magic link and checked to be the 1:3 character device: the container's own, never an fd of the
 * host's /dev/null (whose mode and owner a container's root could change through it). Returns fd or -1 with errno. */
int tsfig_open_own_null(void);
/* Like mkdir -p inside rootfd without leaving it. Returns an O_PATH fd of the final dir or -1 with errno. */
int tsfig_mkdir_in_root(int rootfd, const char *path, mode_t mode);
/* Ensures path exists inside rootfd as a dir (is_dir) or an empty file; returns an O_PATH fd on it. */
int tsfig_ensure_in_root(int rootfd, const char *path, int is_dir);

/* "/proc/self/fd/N" into buf. */
const char *tsfig_fd_path(char *buf, size_t cap, int fd);

int tsfig_parse_int64(const char *s, int64_t *out);

/* RFC3339Nano UTC time of now into buf (>= 40 bytes). */
void tsfig_now_rfc3339(char *buf, size_t cap);



/* Whether this process runs in a user namespace other than the host's (rootless): its uid_map is not the identity
 * map of every id (`0 0 4294967295`). The rule of engine/system/rootless.ts isRootless(); cached. */
int tsfig_in_userns(void);
/* The xattr prefix of overlayfs's own attributes (opaque dirs...): `trusted.overlay.` on the host, `user.overlay.`
 * in a user namespace, where overlay is mounted with `userxattr` (trusted.* needs the host's CAP_SYS_ADMIN). */
const char *tsfig_overlay_xattr_prefix(void);

/* snprintf that reports truncation: returns 0, or -1 with errno ENAMETOOLONG (buf then holds a truncated string). */
int tsfig_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Drops resident pages the caller no longer needs: free heap back to the kernel and unmap clean text pages
 * (they fault back in on demand). Used by the long-lived monitor to stay well under 1 MiB RSS. */
void tsfig_trim_memory(void);
#endif
