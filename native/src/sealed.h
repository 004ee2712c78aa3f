/* Re-execution from a sealed memfd (sealed.c). */
#ifndef TSFIG_SEALED_H
#define TSFIG_SEALED_H

/* Prefix of the memfd's name; the rest is the identity of the file it copies. */
#define TSFIG_SEALED_NAME "tsfig-runtime:"

/* 1 when this process runs from a memfd sealed against writes (what tsfig_reexec_sealed makes). */
int tsfig_exe_sealed(void);
/* Unless already sealed, re-executes argv from a sealed copy of the running binary; returns only on failure (-1,
 * errno) or when already sealed (0). */
int tsfig_reexec_sealed(char **argv);

#endif
