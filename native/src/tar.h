/* A streaming reader of uncompressed tar archives: ustar, GNU long names/links ('L'/'K', base-256 numbers) and PAX
 * extended headers (path, linkpath, size, uid, gid, mtime, SCHILY.xattr.*). It never seeks; entry data is read from
 * the reader between two calls of tsfig_tar_next(). */
#ifndef TSFIG_TAR_H
#define TSFIG_TAR_H

#include "error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

typedef struct tsfig_tar_xattr {
    char *name;
    char *value;
    size_t len;
} tsfig_tar_xattr_t;

typedef struct tsfig_tar_entry {
    char type;         /* ustar typeflag; '\0' and '7' are reported as '0' */
    char *name;        /* raw name, after PAX/GNU overrides */
    char *linkname;    /* raw link name (symlink target or hardlink target) */
    mode_t mode;       /* permission bits incl. setuid/setgid/sticky (07777) */
    uid_t uid;
    gid_t gid;
    uint64_t size;     /* bytes of data that follow */
    struct timespec mtime;
    unsigned int devmajor, devminor;
    tsfig_tar_xattr_t *xattrs;
    size_t n_xattrs;
} tsfig_tar_entry_t;

/* Where the reader's bytes come from instead of read(fd): returns bytes read, 0 at the end, -1 with err set. */
typedef ssize_t (*tsfig_tar_input_fn)(void *arg, void *buf, size_t n, tsfig_error_t *err);
/* Told every byte the reader consumes, in order, each once: a regular file's data with that file's name and size,
 * everything else (headers, metadata records, other data, padding, the end marker and what follows) with file NULL. */
typedef void (*tsfig_tar_observe_fn)(void *arg, const unsigned char *p, size_t n, const char *file, uint64_t size);

typedef struct tsfig_tar_reader {
    int fd;
    tsfig_tar_input_fn input; /* NULL: read(fd) */
    void *input_arg;
    tsfig_tar_observe_fn observe; /* NULL: none */
    void *observe_arg;
    const char *file;   /* the current entry's name while its data is a regular file's, else NULL */
    uint64_t file_size;
    unsigned char buf[262144];
    size_t pos, len;
    bool eof;
    uint64_t remaining; /* data bytes of the current entry not read yet */
    uint64_t padding;   /* zero bytes after the current entry's data */
} tsfig_tar_reader_t;

void tsfig_tar_reader_init(tsfig_tar_reader_t *r, int fd);

/* Reads the next entry's header(s) into e (freeing what e held). Returns 1 for an entry, 0 at the end-of-archive
 * marker, -1 on error (corrupt or truncated stream). */
int tsfig_tar_next(tsfig_tar_reader_t *r, tsfig_tar_entry_t *e, tsfig_error_t *err);

/* Reads up to n bytes of the current entry's data. Returns the count (0 when the data is exhausted) or -1. */
ssize_t tsfig_tar_read(tsfig_tar_reader_t *r, void *buf, size_t n, tsfig_error_t *err);

/* Reads and discards everything left on the input (what follows the end-of-archive marker). */
int tsfig_tar_drain(tsfig_tar_reader_t *r, tsfig_error_t *err);

void tsfig_tar_entry_free(tsfig_tar_entry_t *e);

#endif
