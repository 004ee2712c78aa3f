#include "log.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Worst case: every byte becomes \u00XX (6 bytes) plus the envelope. Touched only as far as a line needs. */
static char out[TSFIG_LOG_LINE_MAX * 6 + 256];

int tsfig_log_open(struct tsfig_log *l, const char *path, int64_t max_size, int64_t max_files, tsfig_error_t *err)
{
    l->path = path;
    l->max_size = max_size;
    l->max_files = max_files < 1 ? 1 : max_files;
    l->fd = TEMP_FAILURE_RETRY(open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (l->fd < 0)
        return tsfig_make_error(err, errno, "log", "open log `%s`", path);
    struct stat st;
    l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

static void rotate(struct tsfig_log *l)
{
    char from[PATH_MAX], to[PATH_MAX];
    if (l->max_files > 1) {
        for (int64_t i = l->max_files - 1; i >= 2; i--) {
            tsfig_fmt(from, sizeof from, "%s.%lld", l->path, (long long)(i - 1));
            tsfig_fmt(to, sizeof to, "%s.%lld", l->path, (long long)i);
            (void)rename(from, to);
        }
        tsfig_fmt(to, sizeof to, "%s.1", l->path);
        (void)rename(l->path, to);
    }
    int fd = TEMP_FAILURE_RETRY(open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (fd >= 0) {
        close(l->fd);
        l->fd = fd;
        l->size = 0;
    }
}

/* Length of a valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;
    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    if (len > n)
        return 0;
    cp = p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Go's encoding/json escaping (HTML-safe, invalid UTF-8 as U+FFFD), which is what Docker writes. */
static size_t escape(char *o, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\') {
            o[w++] = '\\';
            o[w++] = (char)ch;
        } else if (ch == '\n' || ch == '\r' || ch == '\t') {
            o[w++] = '\\';
            o[w++] = ch == '\n' ? 'n' : ch == '\r' ? 'r' : 't';
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            memcpy(o + w, "\\u00", 4);
            o[w + 4] = hex[ch >> 4];
            o[w + 5] = hex[ch & 15];
            w += 6;
        } else if (ch < 0x80) {
            o[w++] = (char)ch;
        } else {
            size_t l = utf8_len(p + i, n - i);
            if (l == 0) {
                memcpy(o + w, "\\ufffd", 6);
                w += 6;
                i++;
                continue;
            }
            if (l == 3 && p[i] == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
                memcpy(o + w, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
                w += 6;
            } else {
                memcpy(o + w, p + i, l);
                w += l;
            }
            i += l;
            continue;
        }
        i++;
    }
    return w;
}

void tsfig_log_write(struct tsfig_log *l, const char *stream, const char *data, size_t len)
{
    char now[64];
    size_t w;
    if (l->fd < 0)
        return;
    memcpy(out, "{\"log\":\"", 8);
    w = 8 + escape(out + 8, (const unsigned char *)data, len);
    tsfig_now_rfc3339(now, sizeof now);
    w += (size_t)snprintf(out + w, sizeof out - w, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, now);
    if (l->max_size > 0 && l->size > 0 && l->size + (int64_t)w > l->max_size)
        rotate(l);
    if (tsfig_write_all(l->fd, out, w) == 0)
        l->size += (int64_t)w;
    if (w > 8192)
        (void)madvise(out, sizeof out & ~(size_t)4095, MADV_DONTNEED);
}

static void flush_lines(struct tsfig_log *l, struct tsfig_stream *s, int eof)
{
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++)
        if (s->buf[i] == '\n') {
            tsfig_log_write(l, s->name, s->buf + start, i + 1 - start);
            start = i + 1;
        }
    if (start < s->len && (eof || (start == 0 && s->len == sizeof s->buf))) {
        tsfig_log_write(l, s->name, s->buf + start, s->len - start);
        start = s->len;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
}

int tsfig_stream_read(struct tsfig_log *l, struct tsfig_stream *s)
{
    if (s->fd < 0)
        return 1;
    /* Docker's copier reads 2 KiB at a time into the 16 KiB line buffer. */
    for (int rounds = 0; rounds < 64; rounds++) {
        size_t room = sizeof s->buf - s->len;
        ssize_t n = read(s->fd, s->buf + s->len, room > 2048 ? 2048 : room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) { /* EOF, or EIO on a pty master once every slave is closed */
            flush_lines(l, s, 1);
            close(s->fd);
            s->fd = -1;
            return 1;
        }
        s->len += (size_t)n;
        flush_lines(l, s, 0);
    }
    return 0;
}
