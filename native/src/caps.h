/* Capability names and the final privilege drop (bounding set, keepcaps, uid/gid, capset, ambient). */
#ifndef TSFIG_CAPS_H
#define TSFIG_CAPS_H

#include "error.h"

#include <stdint.h>
#include <sys/types.h>

int tsfig_cap_from_name(const char *name);
int tsfig_cap_last(void);
uint64_t tsfig_caps_all(void);

struct tsfig_ids {
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t n_groups;
    char *home;
};

/* Drops the bounding set to caps, switches to ids keeping caps, then sets permitted = effective = caps,
 * inheritable empty and clears the ambient set. */
int tsfig_caps_apply(uint64_t caps, const struct tsfig_ids *ids, tsfig_error_t *err);

#endif
