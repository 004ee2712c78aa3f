/* The runtime re-executes itself from a sealed memfd before it enters a container (CVE-2019-5736 class).
 *
 * A container's init is a clone of the monitor, and `exec` joins a container's namespaces: for a while a process in
 * the container's pid namespace runs tsfig-runtime, and with --init its PID 1 runs it for the container's life. Its
 * /proc/<pid>/exe was the host's binary: a container could open it (a read-only or O_PATH handle is allowed) and
 * write through /proc/self/fd/N as soon as no process ran the binary any more (only ETXTBSY stood in the way).
 * Running from a copy in a memfd sealed against writes, growth, shrinking and further seals, the process's exe is
 * that copy: there is no handle to the host's file to take, and the copy cannot be changed.
 *
 * The copy costs one read of the binary and one execve. The spawner (one per CLI process) seals itself once and
 * starts the runtime's commands from its own sealed copy, which they find already sealed: a container start through
 * the spawner pays nothing. The memfd's name carries the identity of the file it was copied from (device, inode,
 * size, mtime), which the seccomp cache keys on (seccomp.c). */
#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

int tsfig_exe_sealed(void)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int seals = fcntl(fd, F_GET_SEALS);
    close(fd);
    return seals >= 0 && (seals & SEALS) == SEALS;
}

static int copy_all(int to, int from, off_t size)
{
    off_t done = 0;
    while (done < size) {
        ssize_t n = sendfile(to, from, NULL, (size_t)(size - done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        done += n;
    }
    return 0;
}

/* A sealed copy of the running binary, named after the identity of its file. */
static int sealed_copy(void)
{
    int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (src < 0 || fstat(src, &st) < 0) {
        int e = errno;
        if (src >= 0)
            close(src);
        errno = e;
        return -1;
    }
    char name[200];
    snprintf(name, sizeof name, TSFIG_SEALED_NAME "%llx:%llx:%lld:%lld.%09ld", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* before Linux 6.3: no MFD_EXEC, and memfds are executable */
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int rc = fd < 0 ? -1 : copy_all(fd, src, st.st_size);
    int e = errno;
    close(src);
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_EXEC); /* Linux 6.3+: nor can its mode change */
    return fd;
}

int tsfig_reexec_sealed(char **argv)
{
    if (tsfig_exe_sealed())
        return 0;
    static const char own[] = "/memfd:" TSFIG_SEALED_NAME;
    char link[64] = {0};
    if (readlink("/proc/self/exe", link, sizeof link - 1) > 0 && strncmp(link, own, sizeof own - 1) == 0) {
        errno = EPERM; /* our own copy, not sealed: never loop */
        return -1;
    }
    int fd = sealed_copy();
    if (fd < 0)
        return -1;
    syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
