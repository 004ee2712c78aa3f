#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <malloc.h>
#include <sys/mman.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

void *tsfig_xrealloc(void *p, size_t n)
{
    void *r = realloc(p, n ? n : 1);
    if (r == NULL)
        abort();
    return r;
}

char *tsfig_xstrdup(const char *s)
{
    char *r = strdup(s);
    if (r == NULL)
        abort();
    return r;
}

void tsfig_strv_push(char ***v, size_t *n, const char *s)
{
    *v = tsfig_xrealloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = tsfig_xstrdup(s);
    (*v)[*n] = NULL;
}

int tsfig_write_file_at(int dirfd, const char *name, const char *s, const char *step, tsfig_error_t *err)
{
    cleanup_close int fd = TEMP_FAILURE_RETRY(openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd < 0)
        return tsfig_make_error(err, errno, step, "open `%s`", name);
    if (TEMP_FAILURE_RETRY(write(fd, s, strlen(s))) < 0)
        return tsfig_make_error(err, errno, step, "write `%s` to `%s`", s, name);
    return 0;
}

int tsfig_write_file(const char *path, const char *s, const char *step, tsfig_error_t *err)
{
    return tsfig_write_file_at(AT_FDCWD, path, s, step, err);
}

ssize_t tsfig_read_small(const char *path, char *buf, size_t cap)
{
    cleanup_close int fd = TEMP_FAILURE_RETRY(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = TEMP_FAILURE_RETRY(read(fd, buf + n, cap - 1 - n));
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

char *tsfig_read_all(const char *path, size_t *len)
{
    cleanup_close int fd = TEMP_FAILURE_RETRY(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = tsfig_xrealloc(NULL, cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = tsfig_xrealloc(buf, cap);
        }
        ssize_t r = TEMP_FAILURE_RETRY(read(fd, buf + n, cap - 1 - n));
        if (r < 0) {
            int saved = errno;
            free(buf);
            errno = saved;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int tsfig_mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (tsfig_fmt(tmp, sizeof tmp, "%s", path) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

int tsfig_open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    while (*path == '/')
        path++;
    if (*path == '\0')
        path = ".";
    /* EAGAIN: a rename or mount anywhere on the host raced with a ".." step of the resolution (openat2(2)); the
     * kernel asks callers to retry. Bounded, so a sustained attack still ends in an error. */
    for (int attempt = 0;; attempt++) {
        int fd = (int)TEMP_FAILURE_RETRY(syscall(SYS_openat2, rootfd, path, &how, sizeof how));
        if (fd >= 0 || errno != EAGAIN || attempt >= 1000)
            return fd;
    }
}

int tsfig_open_own_null(void)
{
    int root = TEMP_FAILURE_RETRY(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root < 0)
        return -1;
    int fd = tsfig_open_in_root(root, "/dev/null", O_RDWR | O_NOFOLLOW | O_NOCTTY, 0);
    close(root);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))) {
        close(fd);
        errno = ENODEV;
        return -1;
    }
    return fd;
}

static int split_parent(const char *path, char *parent, size_t cap, const char **base)
{
    if (tsfig_fmt(parent, cap, "%s", path) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t l = strlen(parent);
    while (l > 1 && parent[l - 1] == '/')
        parent[--l] = '\0';
    char *slash = strrchr(parent, '/');
    if (slash == NULL) {
        *base = path;
        tsfig_fmt(parent, cap, ".");
        return 0;
    }
    *base = path + (slash - parent) + 1;
    if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

int tsfig_mkdir_in_root(int rootfd, const char *path, mode_t mode)
{
    int fd = tsfig_open_in_root(rootfd, path, O_PATH | O_DIRECTORY, 0);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    char parent[PATH_MAX];
    const char *base;
    if (split_parent(path, parent, sizeof parent, &base) < 0)
        return -1;
    if (strcmp(parent, path) == 0 || *base == '\0' || strcmp(base, "..") == 0 || strcmp(base, ".") == 0) {
        errno = EINVAL;
        return -1;
    }
    cleanup_close int pfd = tsfig_mkdir_in_root(rootfd, parent, mode);
    if (pfd < 0)
        return -1;
    char name[NAME_MAX + 1];
    tsfig_fmt(name, sizeof name, "%.*s", (int)strcspn(base, "/"), base);
    if (mkdirat(pfd, name, mode) < 0 && errno != EEXIST)
        return -1;
    return TEMP_FAILURE_RETRY(openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

/* Creates the file path inside rootfd. A dangling symlink (an image's /etc/resolv.conf -> ../run/...) gets its
 * target, and the target's parents, created inside the rootfs: every lookup is RESOLVE_IN_ROOT, so ".." and
 * absolute targets are clamped to the root and nothing is ever created outside it. */
static int ensure_file(int rootfd, const char *path, int depth)
{
    int fd = tsfig_open_in_root(rootfd, path, O_PATH, 0);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    char parent[PATH_MAX], name[NAME_MAX + 1], target[PATH_MAX], next[PATH_MAX * 2];
    const char *base;
    if (split_parent(path, parent, sizeof parent, &base) < 0)
        return -1;
    cleanup_close int pfd = tsfig_mkdir_in_root(rootfd, parent, 0755);
    if (pfd < 0)
        return -1;
    tsfig_fmt(name, sizeof name, "%.*s", (int)strcspn(base, "/"), base);
    ssize_t n = readlinkat(pfd, name, target, sizeof target - 1);
    if (n < 0) {
        cleanup_close int f = tsfig_open_in_root(rootfd, path, O_CREAT | O_WRONLY, 0644);
        if (f < 0)
            return -1;
        return tsfig_open_in_root(rootfd, path, O_PATH, 0);
    }
    if (depth >= 40) {
        errno = ELOOP;
        return -1;
    }
    target[n] = '\0';
    if (target[0] == '/' ? tsfig_fmt(next, sizeof next, "%s", target) < 0
                         : tsfig_fmt(next, sizeof next, "%s/%s", parent, target) < 0)
        return -1;
    cleanup_close int created = ensure_file(rootfd, next, depth + 1);
    if (created < 0)
        return -1;
    return tsfig_open_in_root(rootfd, path, O_PATH, 0);
}

int tsfig_ensure_in_root(int rootfd, const char *path, int is_dir)
{
    if (is_dir)
        return tsfig_mkdir_in_root(rootfd, path, 0755);
    return ensure_file(rootfd, path, 0);
}

const char *tsfig_fd_path(char *buf, size_t cap, int fd)
{
    tsfig_fmt(buf, cap, "/proc/self/fd/%d", fd);
    return buf;
}

int tsfig_parse_int64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

void tsfig_now_rfc3339(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    tsfig_fmt(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

int tsfig_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Read-only mappings whose pages are all clean file pages (no anonymous COW copies such as RELRO) can be
 * dropped safely: they are re-read from the page cache on the next access. */
static int trim_candidates(unsigned long (*r)[2], int max, unsigned long *stack_lo)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    if (f == NULL)
        return 0;
    char line[512], perms[8] = "";
    unsigned long s = 0, e = 0;
    int n = 0, file = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        unsigned long kb;
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
            s = a, e = b;
            file = strchr(line, '/') != NULL;
            if (strstr(line, "[stack]"))
                *stack_lo = a;
        } else if (sscanf(line, "Anonymous: %lu", &kb) == 1 && kb == 0 && file && perms[0] == 'r'
                   && perms[1] == '-' && n < max) {
            r[n][0] = s, r[n++][1] = e;
        }
    }
    fclose(f);
    return n;
}

void tsfig_trim_memory(void)
{
    unsigned long ranges[64][2], stack_lo = 0;
    char marker;
    malloc_trim(0);
    int n = trim_candidates(ranges, 64, &stack_lo);
    for (int i = 0; i < n; i++) {
        (void)madvise((void *)ranges[i][0], ranges[i][1] - ranges[i][0], MADV_RANDOM);
        (void)madvise((void *)ranges[i][0], ranges[i][1] - ranges[i][0], MADV_DONTNEED);
    }
    /* the dead part of the stack, well below this frame */
    unsigned long sp = ((unsigned long)&marker - 32768) & ~4095UL;
    if (stack_lo != 0 && sp > stack_lo)
        (void)madvise((void *)stack_lo, sp - stack_lo, MADV_DONTNEED);
}

int tsfig_in_userns(void)
{
    static int in = -1;
    if (in < 0) {
        char buf[256];
        unsigned long long inside, outside, count;
        char extra;
        ssize_t n = tsfig_read_small("/proc/self/uid_map", buf, sizeof buf);
        if (n < 0)
            in = 0; /* no uid_map: a kernel without user namespaces */
        else
            in = !(sscanf(buf, " %llu %llu %llu %c", &inside, &outside, &count, &extra) == 3 && inside == 0
                   && outside == 0 && count == 4294967295ULL);
    }
    return in;
}

const char *tsfig_overlay_xattr_prefix(void)
{
    return tsfig_in_userns() ? "user.overlay." : "trusted.overlay.";
}
