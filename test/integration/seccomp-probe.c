/* Probe for test/integration/seccomp.test.ts, compiled at test time against native/build objects.
 *   seccomp-probe CHECK CAPS   load Docker's default profile for capability mask CAPS (hex), then run CHECK
 *   seccomp-probe CHECK none   run CHECK without a filter (the baseline: what the kernel itself answers)
 *   seccomp-probe CHECK CAPS MODE  the same through the compiled-filter cache (tsfig_seccomp_prepare_default):
 *     fresh: drop the cache entry first (the filter is built and stored); cached: the entry must be used;
 *     damage-flip / damage-truncate / damage-mode: store the entry, damage it (a flipped program byte, a size that is
 *     not whole instructions, mode 0644), then prepare again (it must be rebuilt); forget: drop the entry, no check.
 *   seccomp-probe filter-digest CAPS built|cached  FNV-1a of the program the kernel holds after loading (read back
 *     with PTRACE_SECCOMP_GET_FILTER), ret = its instruction count.
 * Prints one line "ret=R errno=E load_us=U [source=built|cached] [digest=D]" and exits 0; exits 2 if the filter
 * failed to load (message on stderr), 3 if the cache was not used as MODE requires. */
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/filter.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

struct result {
    long ret;
    int err;
};

static struct result done(long ret)
{
    struct result r = { ret, ret < 0 ? errno : 0 };
    return r;
}

static struct result seccomp_mode(void)
{
    char line[256];
    long mode = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return done(-1);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "Seccomp:", 8) == 0)
            mode = strtol(line + 8, NULL, 10);
    fclose(f);
    return done(mode);
}

static struct result open_file(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return done(fd < 0 ? -1 : 0);
}

/* clone(2) used like fork(2); the child exits at once. */
static struct result clone_flags(unsigned long flags)
{
    long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    return done(pid < 0 ? -1 : 0);
}

static struct result open_socket(int domain, int type)
{
    int fd = socket(domain, type | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        close(fd);
    return done(fd < 0 ? -1 : 0);
}

/* The i386 ABI (int 0x80) and the x32 ABI: the filter must cover them instead of killing the process. */
static struct result i386_syscall(long nr)
{
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return done(-1);
    }
    return done(ret);
#else
    (void)nr;
    errno = ENOSYS;
    return done(-1);
#endif
}

static struct result x32_getpid(void)
{
#if defined(__x86_64__)
    return done(syscall(0x40000000L | SYS_getpid));
#else
    errno = ENOSYS;
    return done(-1);
#endif
}

/* Drops CAP_SYS_ADMIN from the effective set (no no_new_privs), then loads: the kernel must refuse. */
static struct result load_without_sys_admin(uint64_t caps)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    tsfig_error_t err = { 0 };
    if (syscall(SYS_capget, &hdr, data) < 0)
        return done(-1);
    data[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return done(-1);
    if (tsfig_seccomp_load_default(caps, &err) == 0)
        return done(0);
    fprintf(stderr, "%s: %s\n", err.step, err.msg);
    errno = err.errno_;
    return done(-1);
}

static struct result load_with_nnp(uint64_t caps)
{
    tsfig_error_t err = { 0 };
    struct result r = load_without_sys_admin(caps);
    if (r.ret == 0 || r.err != EACCES)
        return r; /* must have been refused first */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return done(-1);
    if (tsfig_seccomp_load_default(caps, &err) < 0) {
        errno = err.errno_;
        return done(-1);
    }
    return seccomp_mode();
}

static int run_check(const char *check, struct result *r)
{
    static const unsigned long ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET;
    if (strcmp(check, "seccomp-mode") == 0)
        *r = seccomp_mode();
    else if (strcmp(check, "getpid") == 0)
        *r = done(syscall(SYS_getpid));
    else if (strcmp(check, "open") == 0)
        *r = open_file();
    else if (strcmp(check, "fork") == 0)
        *r = clone_flags(0);
    else if (strcmp(check, "clone-newns") == 0)
        *r = clone_flags(ns_flags);
    else if (strcmp(check, "clone3") == 0)
        *r = done(syscall(SYS_clone3, NULL, 0));
    else if (strcmp(check, "keyctl") == 0)
        *r = done(syscall(SYS_keyctl, 0xdead, 0, 0, 0, 0));
    else if (strcmp(check, "add_key") == 0)
        *r = done(syscall(SYS_add_key, NULL, NULL, NULL, 0, 0));
    else if (strcmp(check, "mount") == 0)
        *r = done(syscall(SYS_mount, NULL, NULL, NULL, 0, NULL));
    else if (strcmp(check, "unshare-newns") == 0)
        *r = done(syscall(SYS_unshare, CLONE_NEWNS));
    else if (strcmp(check, "kexec_load") == 0)
        *r = done(syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL));
    else if (strcmp(check, "reboot") == 0) /* bad magic: the kernel itself answers EINVAL */
        *r = done(syscall(SYS_reboot, 0, 0, 0, NULL));
    else if (strcmp(check, "bpf") == 0)
        *r = done(syscall(SYS_bpf, 0xdead, NULL, 0));
    else if (strcmp(check, "chroot") == 0)
        *r = done(syscall(SYS_chroot, "/"));
    else if (strcmp(check, "ptrace") == 0) /* bad request: the kernel itself answers ESRCH/EIO */
        *r = done(syscall(SYS_ptrace, 0xdead, 0, NULL, NULL));
    else if (strcmp(check, "socket-unix") == 0)
        *r = open_socket(AF_UNIX, SOCK_STREAM);
    else if (strcmp(check, "socket-inet") == 0)
        *r = open_socket(AF_INET, SOCK_DGRAM);
    else if (strcmp(check, "socket-vsock") == 0)
        *r = open_socket(AF_VSOCK, SOCK_STREAM);
    else if (strcmp(check, "socket-alg") == 0)
        *r = open_socket(AF_ALG, SOCK_SEQPACKET);
    else if (strcmp(check, "personality-query") == 0)
        *r = done(syscall(SYS_personality, 0xffffffffUL));
    else if (strcmp(check, "personality-bsd") == 0) /* PER_BSD */
        *r = done(syscall(SYS_personality, 0x0006UL));
    else if (strcmp(check, "swapoff") == 0) /* in no rule: the default action */
        *r = done(syscall(SYS_swapoff, "/nonexistent"));
    else if (strcmp(check, "i386-getpid") == 0)
        *r = i386_syscall(20);
    else if (strcmp(check, "i386-keyctl") == 0)
        *r = i386_syscall(288);
    else if (strcmp(check, "x32-getpid") == 0)
        *r = x32_getpid();
    else
        return -1;
    return 0;
}

static long elapsed_us(struct timespec a, struct timespec b)
{
    return (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000L;
}

/* Damages the cache entry at path in place as mode says. */
static int damage(const char *path, const char *mode)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    if (strcmp(mode, "damage-mode") == 0)
        return chmod(path, 0644);
    if (strcmp(mode, "damage-truncate") == 0)
        return truncate(path, st.st_size - 4);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    unsigned char b;
    off_t at = st.st_size - 3; /* inside the last instruction: the file keeps its size */
    int rc = fd < 0 || pread(fd, &b, 1, at) != 1 ? -1 : 0;
    b ^= 0x10;
    if (rc == 0 && pwrite(fd, &b, 1, at) != 1)
        rc = -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Prepares the filter through the cache as mode says; returns the source, or -1 (message on stderr). */
static int prepare(uint64_t caps, const char *mode)
{
    tsfig_error_t err = { 0 };
    char path[4096];
    if (tsfig_seccomp_cache_file(caps, 0, path, sizeof path) < 0) {
        fprintf(stderr, "no cache key\n");
        return -1;
    }
    if (strcmp(mode, "fresh") == 0 || strcmp(mode, "forget") == 0)
        unlink(path);
    if (strncmp(mode, "damage-", 7) == 0) {
        if (tsfig_seccomp_prepare_default(caps, 0, &err) < 0 || damage(path, mode) < 0) {
            fprintf(stderr, "damage %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    if (strcmp(mode, "forget") == 0)
        return TSFIG_SECCOMP_BUILT;
    int source = tsfig_seccomp_prepare_default(caps, 0, &err);
    if (source < 0)
        fprintf(stderr, "%s: %s: %s\n", err.step, err.msg, strerror(err.errno_));
    return source;
}

/* A child loads the filter (built by libseccomp right there, or prepared from the cache) and stops; the program the
 * kernel holds is read back through ptrace. */
static int filter_digest(uint64_t caps, const char *mode)
{
    int source = strcmp(mode, "cached") == 0 ? prepare(caps, "cached") : TSFIG_SECCOMP_BUILT;
    if (source < 0)
        return 2;
    pid_t pid = fork();
    if (pid == 0) {
        tsfig_error_t err = { 0 };
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0 || tsfig_seccomp_load_default(caps, &err) < 0)
            _exit(2);
        raise(SIGSTOP);
        _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status)) {
        fprintf(stderr, "the child did not stop\n");
        return 2;
    }
    long n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, NULL);
    struct sock_filter *insns = n > 0 ? calloc((size_t)n, sizeof *insns) : NULL;
    long got = insns != NULL ? ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, insns) : -1;
    int e = errno;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (got != n || n <= 0) {
        fprintf(stderr, "PTRACE_SECCOMP_GET_FILTER: %s\n", strerror(e));
        return 2;
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < (size_t)n * sizeof *insns; i++)
        h = (h ^ ((unsigned char *)insns)[i]) * 0x100000001b3ULL;
    free(insns);
    printf("ret=%ld errno=0 load_us=-1 source=%s digest=%016llx\n", n,
           source == TSFIG_SECCOMP_CACHED ? "cached" : "built", (unsigned long long)h);
    return 0;
}

int main(int argc, char **argv)
{
    struct result r = { 0, 0 };
    long load_us = -1;
    const char *mode = argc == 4 ? argv[3] : NULL;
    int source = -1;
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s CHECK CAPS|none [MODE]\n", argv[0]);
        return 2;
    }
    uint64_t caps = strcmp(argv[2], "none") == 0 ? 0 : strtoull(argv[2], NULL, 16);
    if (strcmp(argv[1], "filter-digest") == 0)
        return filter_digest(caps, mode != NULL ? mode : "built");
    if (mode != NULL) {
        source = prepare(caps, mode);
        if (source < 0)
            return 2;
        int want = strcmp(mode, "cached") == 0 ? TSFIG_SECCOMP_CACHED : TSFIG_SECCOMP_BUILT;
        if (source != want) {
            fprintf(stderr, "mode %s: the filter was %s\n", mode, source == TSFIG_SECCOMP_CACHED ? "cached" : "built");
            return 3;
        }
        if (strcmp(mode, "forget") == 0) {
            printf("ret=0 errno=0 load_us=-1\n");
            return 0;
        }
    }
    if (strcmp(argv[1], "load-without-sys-admin") == 0)
        r = load_without_sys_admin(caps);
    else if (strcmp(argv[1], "load-with-nnp") == 0)
        r = load_with_nnp(caps);
    else {
        if (strcmp(argv[2], "none") != 0) {
            tsfig_error_t err = { 0 };
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            int rc = tsfig_seccomp_load_default(caps, &err);
            clock_gettime(CLOCK_MONOTONIC, &b);
            if (rc < 0) {
                fprintf(stderr, "%s: %s: %s\n", err.step, err.msg, strerror(err.errno_));
                return 2;
            }
            load_us = elapsed_us(a, b);
        }
        if (run_check(argv[1], &r) < 0) {
            fprintf(stderr, "unknown check %s\n", argv[1]);
            return 2;
        }
    }
    printf("ret=%ld errno=%d load_us=%ld", r.ret, r.err, load_us);
    if (source >= 0)
        printf(" source=%s", source == TSFIG_SECCOMP_CACHED ? "cached" : "built");
    printf("\n");
    return 0;
}
