/* Re-execution from a sealed memfd (sealed.c). */
#ifndef TSFIG_SEALED_H
#define TSFIG_SEALED_H

/* Prefix of the memfd's name; the rest is the identity of the file it copies. */
#define TSFIG_SEALED_NAME "tsfig-runtime:"

#include <stddef.h>

/* 1 when this process runs from a memfd sealed against writes or from a read-only detached bind of its binary (what
 * tsfig_reexec_sealed makes). */
int tsfig_exe_sealed(void);
/* Unless already so, re-executes argv from a sealed copy of the running binary, or when the kernel refuses an
 * executable memfd, from a read-only detached bind of it; returns only on failure (-1, the reason in why) or when
 * already protected (0). */
int tsfig_reexec_sealed(char **argv, char *why, size_t cap);

#endif
