/* The input of `tsfig-runtime unpack`: stdin as is or gunzipped (ISA-L or zlib, loaded with dlopen), the uncompressed
 * stream's sha256 (libcrypto, loaded with dlopen) and a record of the tar's own bytes for tar-split. */
#ifndef TSFIG_LAYERIN_H
#define TSFIG_LAYERIN_H

#include "error.h"
#include "tar.h"

#include <stdbool.h>

typedef struct tsfig_layerin tsfig_layerin_t;

typedef struct tsfig_layerin_opts {
    int fd;        /* the layer's bytes */
    bool gzip;     /* they are gzip: inflate them */
    bool digest;   /* hash the uncompressed bytes */
    int split_fd;  /* where the tar-split record goes; -1: none */
} tsfig_layerin_opts_t;

typedef struct tsfig_layerin_result {
    unsigned long long size; /* uncompressed bytes read, all of them (what follows the end marker too) */
    bool has_digest;
    char digest[65];      /* sha256 hex of those bytes */
    bool tar_split;       /* the record is complete (false: too much metadata, as the engine's own recorder) */
    const char *inflater; /* "isal", "zlib", NULL: not gzip */
} tsfig_layerin_result_t;

/* The inflate library unpack would use ("isal", "zlib"), NULL when none loads. TSFIG_UNPACK_NO_ISAL=1 skips ISA-L
 * (and TSFIG_UNPACK_NO_SHA256=1 libcrypto): the fallbacks, for tests and benchmarks. */
const char *tsfig_layerin_inflater(void);
bool tsfig_layerin_has_sha256(void);

/* Sets reader up to read through the layer input (and report to the tar-split record). *out is set even on failure
 * (free it). */
int tsfig_layerin_open(tsfig_layerin_t **out, const tsfig_layerin_opts_t *opts, tsfig_tar_reader_t *reader,
                       tsfig_error_t *err);
/* After the whole stream was read: digest, size, whether the record is complete; the record flushed. */
int tsfig_layerin_finish(tsfig_layerin_t *li, tsfig_layerin_result_t *res, tsfig_error_t *err);
void tsfig_layerin_free(tsfig_layerin_t *li);

#endif
