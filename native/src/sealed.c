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
 * size, mtime), which the seccomp cache keys on (seccomp.c).
 *
 * A host with vm.memfd_noexec = 2 refuses executable memfds (EACCES). The runtime then re-executes from a read-only
 * bind of its own file, detached from every mount namespace (open_tree OPEN_TREE_CLONE of the open binary,
 * mount_setattr MOUNT_ATTR_RDONLY, execveat on that fd), as runc 1.1 did with a read-only bind in a private mount
 * namespace: the process's exe is then the host's file on a read-only mount that no namespace holds and only
 * CAP_SYS_ADMIN could change, so opening /proc/<pid>/exe for writing fails (ETXTBSY while it runs, EROFS after). When
 * neither can be made, the command fails with both reasons; it never runs from the host's writable file. */
#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

/* 1 when fd (the running binary) is a memfd sealed against writes (sealed_copy). */
static int is_sealed(int fd)
{
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & SEALS) == SEALS;
}

/* 1 when this process runs from its read-only detached bind (readonly_bind): the exe is the root of its mount (its
 * path reads "/", which no file of a mount namespace's tree has) and that mount is read-only. */
static int is_readonly_bind(int fd)
{
    char link[8] = {0};
    struct statvfs sv;
    return readlink("/proc/self/exe", link, sizeof link - 1) == 1 && link[0] == '/' && fstatvfs(fd, &sv) == 0
           && (sv.f_flag & ST_RDONLY) != 0;
}

int tsfig_exe_sealed(void)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int protected = is_sealed(fd) || is_readonly_bind(fd);
    close(fd);
    return protected;
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

/* A sealed copy of the running binary, named after the identity of its file; *step names what failed. */
static int sealed_copy(const char **step)
{
    *step = "open the binary";
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
    *step = "memfd_create";
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* before Linux 6.3: no MFD_EXEC, and memfds are executable */
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd >= 0)
        *step = "copy the binary";
    int rc = fd < 0 ? -1 : copy_all(fd, src, st.st_size);
    int e = errno;
    close(src);
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
        *step = "seal the copy";
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

/* A read-only bind of the running binary, detached (the fallback when no executable memfd can be made). */
static int readonly_bind(const char **step)
{
    *step = "open the binary";
    int src = open("/proc/self/exe", O_PATH | O_CLOEXEC);
    if (src < 0)
        return -1;
    *step = "open_tree";
    int tree = (int)syscall(SYS_open_tree, src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    int e = errno;
    close(src);
    if (tree < 0) {
        errno = e;
        return -1;
    }
    *step = "mount_setattr";
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
        e = errno;
        close(tree);
        errno = e;
        return -1;
    }
    return tree;
}

int tsfig_reexec_sealed(char **argv, char *why, size_t cap)
{
    if (tsfig_exe_sealed())
        return 0;
    static const char own[] = "/memfd:" TSFIG_SEALED_NAME;
    char link[64] = {0};
    if (readlink("/proc/self/exe", link, sizeof link - 1) > 0
        && (strncmp(link, own, sizeof own - 1) == 0 || strcmp(link, "/") == 0)) {
        /* our own copy or bind, not protected: never loop */
        snprintf(why, cap, "re-execute from a sealed copy of the runtime: its copy is not sealed (%s)", link);
        return -1;
    }
    const char *memfd_step;
    int fd = sealed_copy(&memfd_step);
    if (fd >= 0) {
        memfd_step = "execveat";
        syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        close(fd);
    }
    int memfd_errno = errno;
    /* No executable memfd (vm.memfd_noexec = 2: EACCES), or none that runs: a read-only bind of the binary. */
    const char *bind_step;
    fd = readonly_bind(&bind_step);
    if (fd >= 0) {
        bind_step = "execveat";
        syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        close(fd);
    }
    snprintf(why, cap,
             "cannot run from a protected copy of the runtime (CVE-2019-5736): a sealed memfd copy failed (%s: %s%s)"
             " and a read-only bind of the binary failed (%s: %s); refusing to run from the host's writable binary",
             memfd_step, strerror(memfd_errno), memfd_errno == EACCES ? ", vm.memfd_noexec = 2?" : "", bind_step,
             strerror(errno));
    return -1;
}
