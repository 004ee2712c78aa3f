#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int tsfig_make_error(tsfig_error_t *err, int errno_, const char *step, const char *fmt, ...)
{
    va_list ap;
    err->errno_ = errno_;
    if (err->code == 0)
        err->code = 125;
    if (step != NULL)
        snprintf(err->step, sizeof err->step, "%s", step);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int tsfig_error_code(tsfig_error_t *err, int code)
{
    err->code = code;
    return -1;
}

void tsfig_json_string(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = *len;
#define PUT(c)                                                                                                         \
    do {                                                                                                               \
        if (n + 1 < cap)                                                                                               \
            buf[n++] = (c);                                                                                            \
    } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            PUT('\\');
            PUT((char)*p);
        } else if (*p < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            for (char *e = esc; *e; e++)
                PUT(*e);
        } else {
            PUT((char)*p);
        }
    }
    PUT('"');
#undef PUT
    if (n < cap)
        buf[n] = '\0';
    *len = n;
}

int tsfig_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void tsfig_write_error(int fd, const tsfig_error_t *err)
{
    char line[2048];
    char full[1200];
    size_t len = 0;
    if (err->errno_ != 0)
        snprintf(full, sizeof full, "%s: %s", err->msg, strerror(err->errno_));
    else
        snprintf(full, sizeof full, "%s", err->msg);
    len = (size_t)snprintf(line, sizeof line, "{\"v\":%d,\"type\":\"error\",\"step\":", TSFIG_PROTOCOL_VERSION);
    tsfig_json_string(line, sizeof line, &len, err->step);
    len += (size_t)snprintf(line + len, sizeof line - len, ",\"errno\":%d,\"message\":", err->errno_);
    tsfig_json_string(line, sizeof line, &len, full);
    len += (size_t)snprintf(line + len, sizeof line - len, ",\"code\":%d}\n", err->code ? err->code : 125);
    if (len >= sizeof line)
        len = sizeof line - 1;
    (void)tsfig_write_all(fd, line, len);
}
