/* User and group resolution from the container's /etc/passwd and /etc/group (runc's GetExecUser semantics). */
#ifndef TSFIG_USER_H
#define TSFIG_USER_H

#include "caps.h"
#include "error.h"

/* spec: "", "uid", "uid:gid", "name", "name:group". Reads /etc/passwd and /etc/group of the current root. */
int tsfig_user_resolve(const char *spec, char *const *group_add, size_t n_group_add, struct tsfig_ids *ids,
                       tsfig_error_t *err);
void tsfig_ids_free(struct tsfig_ids *ids);

#endif
