/* Docker json-file logging: {"log":"...","stream":"stdout","time":"..."} per line, 16 KiB partial lines,
 * size rotation log -> log.1 -> ... */
#ifndef TSFIG_LOG_H
#define TSFIG_LOG_H

#include "error.h"

#include <stdint.h>

#define TSFIG_LOG_LINE_MAX 16384

struct tsfig_log {
    int fd;
    const char *path;
    int64_t size, max_size, max_files;
};

struct tsfig_stream {
    int fd;            /* read end, -1 once closed */
    const char *name;  /* "stdout" / "stderr" */
    size_t len;
    char buf[TSFIG_LOG_LINE_MAX];
};

int tsfig_log_open(struct tsfig_log *l, const char *path, int64_t max_size, int64_t max_files, tsfig_error_t *err);
/* Reads what is available on s->fd and logs complete lines (and full 16 KiB chunks as partial lines).
 * Returns 0 while the stream is open, 1 once it reached EOF (the remainder is flushed without a newline). */
int tsfig_stream_read(struct tsfig_log *l, struct tsfig_stream *s);
/* Appends one message; data without a trailing '\n' is a partial message. */
void tsfig_log_write(struct tsfig_log *l, const char *stream, const char *data, size_t len);

#endif
