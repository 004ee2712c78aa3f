/* The container's filesystem: overlay root, /proc /dev /sys, user mounts, pivot_root, masked/readonly paths. */
#ifndef TSFIG_MOUNTS_H
#define TSFIG_MOUNTS_H

#include "conf.h"
#include "error.h"

/* Runs in the container's fresh mount namespace: everything up to and including pivot_root. */
int tsfig_mounts_setup(const struct tsfig_conf *c, tsfig_error_t *err);
/* After pivot_root (and sysctls): read-only root, Docker's masked and read-only paths. */
int tsfig_mounts_finalize(const struct tsfig_conf *c, tsfig_error_t *err);

/* Parses a mount.options list into flags, propagation flags and tmpfs data. */
int tsfig_mount_options(const char *opts, unsigned long *flags, unsigned long *prop, char *data, size_t cap,
                        tsfig_error_t *err);

/* copy.c: copies the tree under src (an open dir) into dst (an open, empty dir) without following symlinks and
 * without ever leaving dst; keeps ownership, modes and times. */
int tsfig_copy_tree(int src, int dst, tsfig_error_t *err);

#endif
