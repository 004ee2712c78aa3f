/* The input side of `tsfig-runtime unpack`: the layer's bytes as they come on stdin, gunzipped here when asked (Intel
 * ISA-L's inflate when libisal.so.2 loads, zlib's otherwise), the uncompressed stream hashed (sha256, OpenSSL's
 * libcrypto) and the tar's own bytes recorded for tar-split (the engine turns the record into tar-split.json.gz).
 *
 * The libraries are loaded with dlopen, in `unpack` only: the other commands (the container's monitor among them)
 * map nothing more than before. What is not there is reported by `unpack --features`, and the engine then does that
 * part itself, as it did before (see native/PROTOCOL.md). */
#include "layerin.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define HAVE_ISAL 1
#else
#define HAVE_ISAL 0
#endif
#if __has_include(<zlib.h>)
#include <zlib.h>
#define HAVE_ZLIB 1
#else
#define HAVE_ZLIB 0
#endif

/* ---- libcrypto (sha256) ---------------------------------------------------------------------------------------- */

typedef void *(*md_ctx_new_fn)(void);
typedef const void *(*sha256_fn)(void);
typedef int (*digest_init_fn)(void *, const void *, void *);
typedef int (*digest_update_fn)(void *, const void *, size_t);
typedef int (*digest_final_fn)(void *, unsigned char *, unsigned int *);
typedef void (*md_ctx_free_fn)(void *);

static struct {
    int loaded; /* 0 not tried, 1 yes, -1 no */
    md_ctx_new_fn ctx_new;
    sha256_fn sha256;
    digest_init_fn init;
    digest_update_fn update;
    digest_final_fn final;
    md_ctx_free_fn ctx_free;
} crypto;

static bool load_crypto(void)
{
    if (crypto.loaded != 0)
        return crypto.loaded > 0;
    crypto.loaded = -1;
    if (getenv("TSFIG_UNPACK_NO_SHA256") != NULL) /* tests: the engine hashes, gunzips and records itself */
        return false;
    void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return false;
    crypto.ctx_new = (md_ctx_new_fn)dlsym(h, "EVP_MD_CTX_new");
    crypto.sha256 = (sha256_fn)dlsym(h, "EVP_sha256");
    crypto.init = (digest_init_fn)dlsym(h, "EVP_DigestInit_ex");
    crypto.update = (digest_update_fn)dlsym(h, "EVP_DigestUpdate");
    crypto.final = (digest_final_fn)dlsym(h, "EVP_DigestFinal_ex");
    crypto.ctx_free = (md_ctx_free_fn)dlsym(h, "EVP_MD_CTX_free");
    if (!crypto.ctx_new || !crypto.sha256 || !crypto.init || !crypto.update || !crypto.final || !crypto.ctx_free)
        return false;
    crypto.loaded = 1;
    return true;
}

/* ---- inflate: ISA-L or zlib -------------------------------------------------------------------------------------- */

#if HAVE_ISAL
static struct {
    int loaded;
    void (*init)(struct inflate_state *);
    void (*reset)(struct inflate_state *);
    int (*inflate)(struct inflate_state *);
} isal;

static bool load_isal(void)
{
    if (isal.loaded != 0)
        return isal.loaded > 0;
    isal.loaded = -1;
    if (getenv("TSFIG_UNPACK_NO_ISAL") != NULL) /* tests and benchmarks: the zlib fallback */
        return false;
    void *h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return false;
    isal.init = (void (*)(struct inflate_state *))dlsym(h, "isal_inflate_init");
    isal.reset = (void (*)(struct inflate_state *))dlsym(h, "isal_inflate_reset");
    isal.inflate = (int (*)(struct inflate_state *))dlsym(h, "isal_inflate");
    if (!isal.init || !isal.reset || !isal.inflate)
        return false;
    isal.loaded = 1;
    return true;
}
#endif

#if HAVE_ZLIB
static struct {
    int loaded;
    int (*init2)(z_stream *, int, const char *, int);
    int (*reset)(z_stream *);
    int (*inflate)(z_stream *, int);
    int (*end)(z_stream *);
} zl;

static bool load_zlib(void)
{
    if (zl.loaded != 0)
        return zl.loaded > 0;
    zl.loaded = -1;
    void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return false;
    zl.init2 = (int (*)(z_stream *, int, const char *, int))dlsym(h, "inflateInit2_");
    zl.reset = (int (*)(z_stream *))dlsym(h, "inflateReset");
    zl.inflate = (int (*)(z_stream *, int))dlsym(h, "inflate");
    zl.end = (int (*)(z_stream *))dlsym(h, "inflateEnd");
    if (!zl.init2 || !zl.reset || !zl.inflate || !zl.end)
        return false;
    zl.loaded = 1;
    return true;
}
#endif

const char *tsfig_layerin_inflater(void)
{
#if HAVE_ISAL
    if (load_isal())
        return "isal";
#endif
#if HAVE_ZLIB
    if (load_zlib())
        return "zlib";
#endif
    return NULL;
}

bool tsfig_layerin_has_sha256(void)
{
    return load_crypto();
}

/* ---- the input ----------------------------------------------------------------------------------------------------- */

#define IN_SIZE (256 * 1024)

struct tsfig_layerin {
    int fd;
    bool gzip;
    const char *inflater; /* "isal" or "zlib" */
#if HAVE_ISAL
    struct inflate_state isal;
#endif
#if HAVE_ZLIB
    z_stream z;
    bool z_open;
#endif
    unsigned char *in;
    size_t in_pos, in_len;
    bool in_eof;
    bool member_end; /* a gzip member ended: another may follow */
    bool done;
    void *md; /* sha256 context, NULL without --digest */
    unsigned long long size;
    /* tar-split record */
    FILE *split;
    unsigned char *split_buf;
    bool last_raw;    /* the last bytes observed were not a file's data */
    bool split_error; /* a write failed: reported at the end */
    int split_errno;
    unsigned long long raw_bytes;
    bool split_dropped; /* more raw bytes than the engine keeps: no tar-split */
};

static int gzip_error(tsfig_error_t *err, const char *what);

/* Reads more compressed input. Returns 1, 0 at the end of stdin, -1 on error. */
static int read_more(tsfig_layerin_t *li, tsfig_error_t *err)
{
    if (li->in_eof)
        return 0;
    if (li->in_pos < li->in_len && li->in_pos > 0) {
        memmove(li->in, li->in + li->in_pos, li->in_len - li->in_pos);
        li->in_len -= li->in_pos;
        li->in_pos = 0;
    } else if (li->in_pos == li->in_len) {
        li->in_pos = li->in_len = 0;
    }
    if (li->in_len == IN_SIZE)
        return gzip_error(err, "the inflater stopped taking input");
    for (;;) {
        ssize_t n = read(li->fd, li->in + li->in_len, IN_SIZE - li->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return tsfig_make_error(err, errno, "unpack", "read the layer stream");
        if (n == 0) {
            li->in_eof = true;
            return 0;
        }
        li->in_len += (size_t)n;
        return 1;
    }
}

static int gzip_error(tsfig_error_t *err, const char *what)
{
    return tsfig_make_error(err, 0, "unpack", "the layer is not a valid gzip stream: %s", what);
}

/* After a member's end: another member (it starts with 0x1f), zero padding up to the end, or an error. Returns 1 when
 * a member starts, 0 at the end, -1 on error. */
static int next_member(tsfig_layerin_t *li, tsfig_error_t *err)
{
    for (;;) {
        while (li->in_pos < li->in_len && li->in[li->in_pos] == 0)
            li->in_pos++;
        if (li->in_pos < li->in_len)
            break;
        int ret = read_more(li, err);
        if (ret < 0)
            return -1;
        if (ret == 0)
            return 0;
    }
    if (li->in[li->in_pos] != 0x1f)
        return gzip_error(err, "incorrect header check (data after the compressed stream)");
    li->member_end = false;
#if HAVE_ISAL
    if (strcmp(li->inflater, "isal") == 0) {
        isal.reset(&li->isal);
        li->isal.crc_flag = ISAL_GZIP;
        return 1;
    }
#endif
#if HAVE_ZLIB
    if (zl.reset(&li->z) != Z_OK)
        return gzip_error(err, "cannot reset the inflater");
#endif
    return 1;
}

/* Inflates up to n bytes into buf. Returns the count, 0 at the end of the stream, -1 on error. */
static ssize_t inflate_some(tsfig_layerin_t *li, unsigned char *buf, size_t n, tsfig_error_t *err)
{
    for (;;) {
        if (li->done)
            return 0;
        if (li->member_end) {
            int ret = next_member(li, err);
            if (ret < 0)
                return -1;
            if (ret == 0) {
                li->done = true;
                return 0;
            }
        }
        if (li->in_pos == li->in_len) {
            int ret = read_more(li, err);
            if (ret < 0)
                return -1;
        }
        size_t avail = li->in_len - li->in_pos;
        size_t produced = 0;
        bool ended = false;
#if HAVE_ISAL
        if (strcmp(li->inflater, "isal") == 0) {
            struct inflate_state *s = &li->isal;
            s->next_in = li->in + li->in_pos;
            s->avail_in = (uint32_t)avail;
            s->next_out = buf;
            s->avail_out = (uint32_t)n;
            int ret = isal.inflate(s);
            if (ret == ISAL_INCORRECT_CHECKSUM)
                return gzip_error(err, "incorrect data check");
            if (ret < 0 || ret == ISAL_NEED_DICT)
                return gzip_error(err, ret == ISAL_INVALID_WRAPPER ? "incorrect header check" : "invalid data");
            li->in_pos += avail - s->avail_in;
            produced = n - s->avail_out;
            ended = s->block_state == ISAL_BLOCK_FINISH;
        }
#endif
#if HAVE_ZLIB
        if (strcmp(li->inflater, "zlib") == 0) {
            z_stream *z = &li->z;
            z->next_in = li->in + li->in_pos;
            z->avail_in = (uInt)avail;
            z->next_out = buf;
            z->avail_out = (uInt)n;
            int ret = zl.inflate(z, Z_NO_FLUSH);
            if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
                return gzip_error(err, z->msg != NULL ? z->msg : "invalid data");
            li->in_pos += avail - z->avail_in;
            produced = n - z->avail_out;
            ended = ret == Z_STREAM_END;
        }
#endif
        if (ended)
            li->member_end = true;
        if (produced > 0)
            return (ssize_t)produced;
        if (!ended && li->in_pos == li->in_len && li->in_eof)
            return gzip_error(err, "unexpected end of file");
    }
}

static ssize_t layer_input(void *arg, void *buf, size_t n, tsfig_error_t *err)
{
    tsfig_layerin_t *li = arg;
    ssize_t got;
    if (li->gzip) {
        got = inflate_some(li, buf, n, err);
    } else {
        do
            got = read(li->fd, buf, n);
        while (got < 0 && errno == EINTR);
        if (got < 0)
            return tsfig_make_error(err, errno, "unpack", "read the layer stream");
    }
    if (got > 0) {
        li->size += (unsigned long long)got;
        if (li->md != NULL)
            crypto.update(li->md, buf, (size_t)got);
    }
    return got;
}

/* tar-split record: 'R' <u32 length> <bytes> for the archive's own bytes, 'F' <u32 name length> <name> <u64 size>
 * for a regular file's content (the engine reads it back from the unpacked dir). Little endian. */
#define MAX_RAW (256ULL * 1024 * 1024)

static void split_write(tsfig_layerin_t *li, const void *p, size_t n)
{
    if (li->split_error || li->split_dropped)
        return;
    if (fwrite(p, 1, n, li->split) != n) {
        li->split_error = true;
        li->split_errno = errno;
    }
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void observe(void *arg, const unsigned char *p, size_t n, const char *file, uint64_t size)
{
    tsfig_layerin_t *li = arg;
    unsigned char head[8];
    if (file == NULL) {
        li->raw_bytes += n;
        if (li->raw_bytes > MAX_RAW)
            li->split_dropped = true; /* as the engine's own recorder: too much metadata to keep */
        head[0] = 'R';
        put_u32(head + 1, (uint32_t)n);
        split_write(li, head, 5);
        split_write(li, p, n);
        li->last_raw = true;
        return;
    }
    if (!li->last_raw)
        return; /* more of the same file: two files' data always have a header between them */
    size_t len = strlen(file);
    head[0] = 'F';
    put_u32(head + 1, (uint32_t)len);
    split_write(li, head, 5);
    split_write(li, file, len);
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)(size >> (8 * i));
    split_write(li, head, 8);
    li->last_raw = false;
}

int tsfig_layerin_open(tsfig_layerin_t **out, const tsfig_layerin_opts_t *opts, tsfig_tar_reader_t *reader,
                       tsfig_error_t *err)
{
    tsfig_layerin_t *li = calloc(1, sizeof *li);
    if (li == NULL)
        return tsfig_make_error(err, ENOMEM, "unpack", "allocate");
    *out = li;
    li->fd = opts->fd;
    li->gzip = opts->gzip;
    li->last_raw = true;
    if (opts->gzip) {
        li->inflater = tsfig_layerin_inflater();
        if (li->inflater == NULL)
            return tsfig_make_error(err, 0, "load inflate", "neither libisal.so.2 nor libz.so.1 could be loaded");
        li->in = malloc(IN_SIZE);
        if (li->in == NULL)
            return tsfig_make_error(err, ENOMEM, "unpack", "allocate");
#if HAVE_ISAL
        if (strcmp(li->inflater, "isal") == 0) {
            isal.init(&li->isal);
            li->isal.crc_flag = ISAL_GZIP;
        }
#endif
#if HAVE_ZLIB
        if (strcmp(li->inflater, "zlib") == 0) {
            if (zl.init2(&li->z, 16 + 15, ZLIB_VERSION, (int)sizeof(z_stream)) != Z_OK)
                return tsfig_make_error(err, ENOMEM, "unpack", "start the inflater");
            li->z_open = true;
        }
#endif
    }
    if (opts->digest) {
        if (!load_crypto())
            return tsfig_make_error(err, 0, "load sha256", "libcrypto.so.3 could not be loaded");
        li->md = crypto.ctx_new();
        if (li->md == NULL || crypto.init(li->md, crypto.sha256(), NULL) != 1)
            return tsfig_make_error(err, ENOMEM, "unpack", "start sha256");
    }
    if (opts->split_fd >= 0) {
        li->split = fdopen(opts->split_fd, "w");
        if (li->split == NULL)
            return tsfig_make_error(err, errno, "unpack", "open the tar-split record");
        li->split_buf = malloc(1 << 20);
        if (li->split_buf != NULL)
            setvbuf(li->split, (char *)li->split_buf, _IOFBF, 1 << 20);
        reader->observe = observe;
        reader->observe_arg = li;
    }
    reader->input = layer_input;
    reader->input_arg = li;
    return 0;
}

int tsfig_layerin_finish(tsfig_layerin_t *li, tsfig_layerin_result_t *res, tsfig_error_t *err)
{
    memset(res, 0, sizeof *res);
    res->size = li->size;
    res->inflater = li->gzip ? li->inflater : NULL;
    if (li->md != NULL) {
        unsigned char digest[32];
        unsigned int len = 0;
        if (crypto.final(li->md, digest, &len) != 1 || len != 32)
            return tsfig_make_error(err, 0, "unpack", "finish sha256");
        for (int i = 0; i < 32; i++)
            snprintf(res->digest + 2 * i, 3, "%02x", digest[i]);
        res->has_digest = true;
    }
    if (li->split != NULL) {
        if (fflush(li->split) != 0 && !li->split_error) {
            li->split_error = true;
            li->split_errno = errno;
        }
        if (li->split_error)
            return tsfig_make_error(err, li->split_errno, "unpack", "write the tar-split record");
        res->tar_split = !li->split_dropped;
    }
    return 0;
}

void tsfig_layerin_free(tsfig_layerin_t *li)
{
    if (li == NULL)
        return;
#if HAVE_ZLIB
    if (li->z_open)
        zl.end(&li->z);
#endif
    if (li->md != NULL)
        crypto.ctx_free(li->md);
    if (li->split != NULL)
        fclose(li->split);
    free(li->split_buf);
    free(li->in);
    free(li);
}
