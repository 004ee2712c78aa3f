/* User namespaces for containers of a root engine (runtime.conf `userns`): container root is a subordinate id of the
 * host, never the host's root. The other namespaces stay owned by the host's user namespace (as with Docker's
 * userns-remap, whose network namespace is the daemon's): every mount, the network and the sysctls are set up by host
 * root, and the container process enters its user namespace last, just before it resolves its user and drops
 * privileges. See docs/security.md, "User namespaces". */
#ifndef TSFIG_USERNS_H
#define TSFIG_USERNS_H

#include "conf.h"
#include "error.h"

#include <sys/types.h>

/* The user namespace of this container process (or of the container an exec joins): -1 without one. CLOEXEC. */
extern int tsfig_userns_fd;

/* Whether runtime.conf asks for a user namespace. */
int tsfig_userns_enabled(const struct tsfig_conf *c);

/* The monitor, once: a user namespace mapping container ids 0..size-1 onto the host's uid..uid+size-1 (and gid), made
 * by a short-lived child that unshares it and whose maps the monitor (host root) writes; its fd in tsfig_userns_fd. */
int tsfig_userns_create(const struct tsfig_conf *c, tsfig_error_t *err);

/* exec and health probes: the user namespace of the running container whose PID 1 is pid, opened before any other
 * namespace is joined (kept in tsfig_userns_fd). */
int tsfig_userns_open(const struct tsfig_conf *c, pid_t pid, tsfig_error_t *err);

/* The calling process enters tsfig_userns_fd and becomes uid/gid 0 there (the host's subordinate ids), keeping its
 * capabilities in the user namespace only. No-op without one. */
int tsfig_userns_enter(const struct tsfig_conf *c, tsfig_error_t *err);

/* A detached clone of the directory at path (an idmapped mount of it, with the container's mapping): its fd. */
int tsfig_userns_idmapped_clone(int dirfd, const char *path, unsigned int flags, tsfig_error_t *err);
/* Sets the container's idmapping on the detached mount fd (open_tree(OPEN_TREE_CLONE) copy). */
int tsfig_userns_idmap(int tree, const char *what, tsfig_error_t *err);

/* mount.copy into a volume: the ids the container sees (host ids of its range) back to the ids stored in the
 * volume, which is mounted idmapped (uid - start when inside the range). */
uid_t tsfig_userns_unshift_uid(uid_t uid);
gid_t tsfig_userns_unshift_gid(gid_t gid);

#endif
