#include "tar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 512
/* Bounds on metadata held in memory: a hostile stream must not make the reader allocate without limit. */
#define MAX_LONGNAME (64 * 1024)
#define MAX_PAX (1024 * 1024)
#define MAX_XATTRS 1024

void tsfig_tar_reader_init(tsfig_tar_reader_t *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
}

/* Makes at least one byte available. Returns 1, 0 at EOF, -1 on error. */
static int fill(tsfig_tar_reader_t *r, tsfig_error_t *err)
{
    if (r->pos < r->len)
        return 1;
    if (r->eof)
        return 0;
    for (;;) {
        ssize_t n;
        if (r->input != NULL) {
            n = r->input(r->input_arg, r->buf, sizeof r->buf, err);
            if (n < 0)
                return -1;
        } else {
            n = read(r->fd, r->buf, sizeof r->buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return tsfig_make_error(err, errno, "unpack", "read tar stream");
        }
        r->pos = 0;
        r->len = (size_t)n;
        if (n == 0) {
            r->eof = true;
            return 0;
        }
        return 1;
    }
}

/* Takes n available bytes from the buffer, telling the observer. file: whether they are the current file's data. */
static void consume(tsfig_tar_reader_t *r, size_t n, bool file)
{
    if (r->observe != NULL && n > 0)
        r->observe(r->observe_arg, r->buf + r->pos, n, file ? r->file : NULL, r->file_size);
    r->pos += n;
}

/* Reads exactly n bytes. Returns 1, 0 at a clean EOF before any byte, -1 on error or a short read. */
static int read_exact(tsfig_tar_reader_t *r, void *dst, size_t n, tsfig_error_t *err)
{
    unsigned char *p = dst;
    size_t got = 0;
    while (got < n) {
        int ret = fill(r, err);
        if (ret < 0)
            return ret;
        if (ret == 0) {
            if (got == 0)
                return 0;
            return tsfig_make_error(err, 0, "unpack", "tar stream is truncated");
        }
        size_t chunk = r->len - r->pos;
        if (chunk > n - got)
            chunk = n - got;
        if (p != NULL)
            memcpy(p + got, r->buf + r->pos, chunk);
        consume(r, chunk, false);
        got += chunk;
    }
    return 1;
}

static int skip_bytes(tsfig_tar_reader_t *r, uint64_t n, bool file, tsfig_error_t *err)
{
    while (n > 0) {
        int ret = fill(r, err);
        if (ret < 0)
            return ret;
        if (ret == 0)
            return tsfig_make_error(err, 0, "unpack", "tar stream is truncated");
        size_t chunk = r->len - r->pos;
        if (chunk > n)
            chunk = (size_t)n;
        consume(r, chunk, file);
        n -= chunk;
    }
    return 0;
}

static uint64_t padding_of(uint64_t size)
{
    return (BLOCK - size % BLOCK) % BLOCK;
}

ssize_t tsfig_tar_read(tsfig_tar_reader_t *r, void *buf, size_t n, tsfig_error_t *err)
{
    if (r->remaining == 0)
        return 0;
    int ret = fill(r, err);
    if (ret < 0)
        return -1;
    if (ret == 0)
        return tsfig_make_error(err, 0, "unpack", "tar stream is truncated");
    size_t chunk = r->len - r->pos;
    if (chunk > n)
        chunk = n;
    if (chunk > r->remaining)
        chunk = (size_t)r->remaining;
    memcpy(buf, r->buf + r->pos, chunk);
    consume(r, chunk, r->file != NULL);
    r->remaining -= chunk;
    return (ssize_t)chunk;
}

int tsfig_tar_drain(tsfig_tar_reader_t *r, tsfig_error_t *err)
{
    for (;;) {
        int ret = fill(r, err);
        if (ret <= 0)
            return ret;
        consume(r, r->len - r->pos, false);
    }
}

void tsfig_tar_entry_free(tsfig_tar_entry_t *e)
{
    free(e->name);
    free(e->linkname);
    for (size_t i = 0; i < e->n_xattrs; i++) {
        free(e->xattrs[i].name);
        free(e->xattrs[i].value);
    }
    free(e->xattrs);
    memset(e, 0, sizeof *e);
}

/* Parses an octal (or GNU base-256) numeric field. Returns 0 or -1 when malformed. */
static int parse_number(const unsigned char *field, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (len > 0 && (field[0] & 0x80)) {
        if (field[0] == 0xff)
            return -1; /* negative */
        v = field[0] & 0x7f;
        for (i = 1; i < len; i++) {
            if (v > (UINT64_MAX >> 8))
                return -1;
            v = (v << 8) | field[i];
        }
        *out = v;
        return 0;
    }
    while (i < len && (field[i] == ' ' || field[i] == '\0'))
        i++;
    if (i == len) {
        *out = 0;
        return 0;
    }
    for (; i < len && field[i] >= '0' && field[i] <= '7'; i++) {
        if (v > (UINT64_MAX >> 3))
            return -1;
        v = (v << 3) | (uint64_t)(field[i] - '0');
    }
    for (; i < len; i++)
        if (field[i] != ' ' && field[i] != '\0')
            return -1;
    *out = v;
    return 0;
}

static bool is_zero_block(const unsigned char *b)
{
    for (size_t i = 0; i < BLOCK; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static bool checksum_ok(const unsigned char *b)
{
    uint64_t want;
    unsigned long usum = 0;
    long ssum = 0;
    if (parse_number(b + 148, 8, &want) < 0)
        return false;
    for (size_t i = 0; i < BLOCK; i++) {
        unsigned char c = (i >= 148 && i < 156) ? ' ' : b[i];
        usum += c;
        ssum += (signed char)c;
    }
    return want == usum || (long)want == ssum;
}

static char *field_string(const unsigned char *field, size_t len)
{
    size_t n = strnlen((const char *)field, len);
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, field, n);
    s[n] = '\0';
    return s;
}

/* Reads the data of a metadata entry ('L', 'K', 'x') into a NUL-terminated buffer. */
static int read_meta(tsfig_tar_reader_t *r, uint64_t size, uint64_t max, char **out, tsfig_error_t *err)
{
    if (size > max)
        return tsfig_make_error(err, 0, "unpack", "tar metadata entry of %llu bytes is too large",
                                (unsigned long long)size);
    char *buf = malloc((size_t)size + 1);
    if (buf == NULL)
        return tsfig_make_error(err, ENOMEM, "unpack", "read tar metadata");
    if (size > 0 && read_exact(r, buf, (size_t)size, err) <= 0) {
        free(buf);
        if (err->msg[0] == '\0')
            tsfig_make_error(err, 0, "unpack", "tar stream is truncated");
        return -1;
    }
    buf[size] = '\0';
    if (skip_bytes(r, padding_of(size), false, err) < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

typedef struct pax_state {
    char *path, *linkpath;
    bool has_size, has_uid, has_gid, has_mtime;
    uint64_t size, uid, gid;
    struct timespec mtime;
    tsfig_tar_xattr_t *xattrs;
    size_t n_xattrs;
} pax_state_t;

static void pax_free(pax_state_t *p)
{
    free(p->path);
    free(p->linkpath);
    for (size_t i = 0; i < p->n_xattrs; i++) {
        free(p->xattrs[i].name);
        free(p->xattrs[i].value);
    }
    free(p->xattrs);
    memset(p, 0, sizeof *p);
}

static int parse_decimal(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_pax_time(const char *s, size_t len, struct timespec *ts)
{
    const char *dot = memchr(s, '.', len);
    size_t ilen = dot ? (size_t)(dot - s) : len;
    uint64_t sec;
    long nsec = 0;
    bool neg = ilen > 0 && s[0] == '-';
    if (parse_decimal(s + neg, ilen - neg, &sec) < 0)
        return -1;
    if (dot != NULL) {
        long scale = 100000000;
        for (const char *p = dot + 1; p < s + len; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            nsec += (*p - '0') * scale;
            scale /= 10;
        }
    }
    ts->tv_sec = neg ? -(time_t)sec : (time_t)sec;
    ts->tv_nsec = neg ? 0 : nsec;
    return 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Parses PAX records ("%d key=value\n") of one extended header into p. Unknown keys are ignored, as tar does. */
static int parse_pax(const char *data, size_t size, pax_state_t *p, tsfig_error_t *err)
{
    size_t off = 0;
    while (off < size) {
        const char *rec = data + off;
        const char *sp = memchr(rec, ' ', size - off);
        uint64_t reclen;
        if (sp == NULL || parse_decimal(rec, (size_t)(sp - rec), &reclen) < 0 || reclen > size - off ||
            reclen < (uint64_t)(sp - rec) + 3 || rec[reclen - 1] != '\n')
            return tsfig_make_error(err, 0, "unpack", "corrupt pax header record");
        const char *key = sp + 1;
        const char *end = rec + reclen - 1;
        const char *eq = memchr(key, '=', (size_t)(end - key));
        if (eq == NULL)
            return tsfig_make_error(err, 0, "unpack", "corrupt pax header record");
        size_t klen = (size_t)(eq - key);
        const char *val = eq + 1;
        size_t vlen = (size_t)(end - val);
#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(key, k, klen) == 0)
        int bad = 0;
        if (KEY_IS("path")) {
            free(p->path);
            p->path = dup_n(val, vlen);
        } else if (KEY_IS("linkpath")) {
            free(p->linkpath);
            p->linkpath = dup_n(val, vlen);
        } else if (KEY_IS("size")) {
            bad = parse_decimal(val, vlen, &p->size);
            p->has_size = true;
        } else if (KEY_IS("uid")) {
            bad = parse_decimal(val, vlen, &p->uid);
            p->has_uid = true;
        } else if (KEY_IS("gid")) {
            bad = parse_decimal(val, vlen, &p->gid);
            p->has_gid = true;
        } else if (KEY_IS("mtime")) {
            bad = parse_pax_time(val, vlen, &p->mtime);
            p->has_mtime = true;
        } else if (klen > 13 && memcmp(key, "SCHILY.xattr.", 13) == 0) {
            if (p->n_xattrs >= MAX_XATTRS)
                return tsfig_make_error(err, 0, "unpack", "too many xattrs in one tar entry");
            tsfig_tar_xattr_t *x = realloc(p->xattrs, (p->n_xattrs + 1) * sizeof *x);
            if (x == NULL)
                return tsfig_make_error(err, ENOMEM, "unpack", "read pax header");
            p->xattrs = x;
            x[p->n_xattrs].name = dup_n(key + 13, klen - 13);
            x[p->n_xattrs].value = dup_n(val, vlen);
            x[p->n_xattrs].len = vlen;
            p->n_xattrs++;
        } else if (klen > 10 && memcmp(key, "GNU.sparse", 10) == 0) {
            return tsfig_make_error(err, 0, "unpack", "sparse tar entries are not supported");
        }
        if (bad)
            return tsfig_make_error(err, 0, "unpack", "corrupt pax header value for `%.*s`", (int)klen, key);
        if ((KEY_IS("path") && p->path == NULL) || (KEY_IS("linkpath") && p->linkpath == NULL) ||
            (p->n_xattrs > 0 && (p->xattrs[p->n_xattrs - 1].name == NULL || p->xattrs[p->n_xattrs - 1].value == NULL)))
            return tsfig_make_error(err, ENOMEM, "unpack", "read pax header");
#undef KEY_IS
        off += (size_t)reclen;
    }
    return 0;
}

int tsfig_tar_next(tsfig_tar_reader_t *r, tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    unsigned char h[BLOCK];
    pax_state_t pax = {0};
    char *longname = NULL, *longlink = NULL;
    int ret = -1;

    /* what the caller left of the current entry's data (still the current file's, for the observer), its padding */
    if (skip_bytes(r, r->remaining, r->file != NULL, err) < 0 || skip_bytes(r, r->padding, false, err) < 0)
        return -1;
    r->remaining = r->padding = 0;
    r->file = NULL;
    r->file_size = 0;
    tsfig_tar_entry_free(e);

    for (;;) {
        int got = read_exact(r, h, BLOCK, err);
        if (got < 0)
            goto out;
        if (got == 0) {
            tsfig_make_error(err, 0, "unpack", "tar stream ends without an end-of-archive marker (truncated?)");
            goto out;
        }
        if (is_zero_block(h)) {
            if (longname || longlink || pax.path || pax.linkpath) {
                tsfig_make_error(err, 0, "unpack", "tar stream ends after an extended header");
                goto out;
            }
            ret = 0; /* end of archive; a second zero block, if any, is drained by the caller */
            goto out;
        }
        if (!checksum_ok(h)) {
            tsfig_make_error(err, 0, "unpack", "corrupt tar header (bad checksum)");
            goto out;
        }
        uint64_t size, mode, uid, gid, mtime, maj, min;
        if (parse_number(h + 124, 12, &size) < 0 || parse_number(h + 100, 8, &mode) < 0 ||
            parse_number(h + 108, 8, &uid) < 0 || parse_number(h + 116, 8, &gid) < 0 ||
            parse_number(h + 136, 12, &mtime) < 0 || parse_number(h + 329, 8, &maj) < 0 ||
            parse_number(h + 337, 8, &min) < 0) {
            tsfig_make_error(err, 0, "unpack", "corrupt tar header (bad number)");
            goto out;
        }
        char type = (char)h[156];
        if (type == 'L' || type == 'K' || type == 'x' || type == 'g') {
            char *data = NULL;
            if (read_meta(r, size, type == 'x' || type == 'g' ? MAX_PAX : MAX_LONGNAME, &data, err) < 0)
                goto out;
            if (type == 'L') {
                free(longname);
                longname = data;
            } else if (type == 'K') {
                free(longlink);
                longlink = data;
            } else if (type == 'x') {
                int pret = parse_pax(data, (size_t)size, &pax, err);
                free(data);
                if (pret < 0)
                    goto out;
            } else {
                free(data); /* global headers: nothing in them applies to extraction */
            }
            continue;
        }

        /* A real entry. */
        bool ustar = memcmp(h + 257, "ustar\0", 6) == 0;
        if (pax.path) {
            e->name = pax.path;
            pax.path = NULL;
        } else if (longname) {
            e->name = longname;
            longname = NULL;
        } else {
            char *n = field_string(h, 100);
            if (n != NULL && ustar && h[345] != '\0') {
                char *pre = field_string(h + 345, 155);
                char *full = NULL;
                if (pre != NULL && asprintf(&full, "%s/%s", pre, n) < 0)
                    full = NULL;
                free(pre);
                free(n);
                n = full;
            }
            e->name = n;
        }
        if (pax.linkpath) {
            e->linkname = pax.linkpath;
            pax.linkpath = NULL;
        } else if (longlink) {
            e->linkname = longlink;
            longlink = NULL;
        } else {
            e->linkname = field_string(h + 157, 100);
        }
        if (e->name == NULL || e->linkname == NULL) {
            tsfig_make_error(err, ENOMEM, "unpack", "read tar header");
            goto out;
        }
        e->type = (type == '\0' || type == '7') ? '0' : type;
        e->mode = (mode_t)(mode & 07777);
        e->uid = (uid_t)(pax.has_uid ? pax.uid : uid);
        e->gid = (gid_t)(pax.has_gid ? pax.gid : gid);
        e->size = pax.has_size ? pax.size : size;
        if (pax.has_mtime)
            e->mtime = pax.mtime;
        else
            e->mtime = (struct timespec){.tv_sec = (time_t)mtime, .tv_nsec = 0};
        e->devmajor = (unsigned int)maj;
        e->devminor = (unsigned int)min;
        e->xattrs = pax.xattrs;
        e->n_xattrs = pax.n_xattrs;
        pax.xattrs = NULL;
        pax.n_xattrs = 0;
        /* Only regular files carry data; the size of anything else is skipped (hardlinks may have one in PAX). */
        r->remaining = e->size;
        r->padding = padding_of(e->size);
        if (e->type == '0') {
            r->file = e->name;
            r->file_size = e->size;
        }
        ret = 1;
        goto out;
    }
out:
    pax_free(&pax);
    free(longname);
    free(longlink);
    return ret;
}
