/* Error convention (crun's): functions return >= 0 on success and leave *err alone; on failure they return a
 * negative value with *err filled by tsfig_make_error(). Messages are one lowercase line naming the object in
 * backticks; strerror(errno) is appended when printed. */
#ifndef TSFIG_ERROR_H
#define TSFIG_ERROR_H

#include <stddef.h>
#include <unistd.h>

#define TSFIG_PROTOCOL_VERSION 1

typedef struct tsfig_error {
    int errno_;      /* errno of the failing call, 0 if none */
    int code;        /* exit code docker run would use: 125, 126, 127 */
    char step[64];   /* what was being done: "mount /proc", "pivot_root", ... */
    char msg[1024];  /* human message, without strerror */
} tsfig_error_t;

/* Fills err and returns -1. step may be NULL (keeps the current step). */
int tsfig_make_error(tsfig_error_t *err, int errno_, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets the exit code of an error (default 125). Returns -1 for chaining. */
int tsfig_error_code(tsfig_error_t *err, int code);

/* Writes {"v":1,"type":"error",...} followed by '\n' to fd. */
void tsfig_write_error(int fd, const tsfig_error_t *err);

/* Appends s to buf (of size cap, at position *len) as a JSON string with quotes. Truncates safely. */
void tsfig_json_string(char *buf, size_t cap, size_t *len, const char *s);

/* Writes all of buf to fd, retrying on EINTR and short writes. Returns 0 or -1 with errno. */
int tsfig_write_all(int fd, const void *buf, size_t n);

static inline void tsfig_cleanup_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define cleanup_close __attribute__((cleanup(tsfig_cleanup_close)))

#ifndef TEMP_FAILURE_RETRY
#define TEMP_FAILURE_RETRY(expression)                                                                                 \
    (__extension__({                                                                                                   \
        long int __result;                                                                                             \
        do                                                                                                             \
            __result = (long int)(expression);                                                                         \
        while (__result == -1L && errno == EINTR);                                                                     \
        __result;                                                                                                      \
    }))
#endif

#endif
