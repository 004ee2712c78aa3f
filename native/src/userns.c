#include "userns.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int tsfig_userns_fd = -1;
static const struct tsfig_conf *mapped; /* the conf whose range unshift uses */

int tsfig_userns_enabled(const struct tsfig_conf *c)
{
    return c->userns_size > 0;
}

static int write_map(pid_t pid, const char *file, uint64_t start, uint64_t size, tsfig_error_t *err)
{
    char path[64], line[96];
    tsfig_fmt(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    tsfig_fmt(line, sizeof line, "0 %llu %llu\n", (unsigned long long)start, (unsigned long long)size);
    return tsfig_write_file(path, line, "user namespace", err);
}

int tsfig_userns_create(const struct tsfig_conf *c, tsfig_error_t *err)
{
    if (!tsfig_userns_enabled(c) || tsfig_userns_fd >= 0)
        return 0;
    int ready[2], done[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return tsfig_make_error(err, errno, "user namespace", "create pipe");
    if (pipe2(done, O_CLOEXEC) < 0) {
        close(ready[0]);
        close(ready[1]);
        return tsfig_make_error(err, errno, "user namespace", "create pipe");
    }
    pid_t pid = fork();
    if (pid == 0) {
        char b = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'e';
        close(ready[0]);
        close(done[1]);
        (void)tsfig_write_all(ready[1], &b, 1);
        (void)TEMP_FAILURE_RETRY(read(done[0], &b, 1)); /* until the monitor has opened the namespace */
        _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    int r = -1;
    char b = 0;
    if (pid < 0)
        tsfig_make_error(err, errno, "user namespace", "fork");
    else if (TEMP_FAILURE_RETRY(read(ready[0], &b, 1)) != 1 || b != 'u')
        tsfig_make_error(err, EPERM, "user namespace", "create the container's user namespace");
    else if (write_map(pid, "uid_map", c->userns_uid, c->userns_size, err) == 0
             && write_map(pid, "gid_map", c->userns_gid, c->userns_size, err) == 0) {
        char path[64];
        tsfig_fmt(path, sizeof path, "/proc/%d/ns/user", (int)pid);
        tsfig_userns_fd = TEMP_FAILURE_RETRY(open(path, O_RDONLY | O_CLOEXEC));
        if (tsfig_userns_fd < 0)
            tsfig_make_error(err, errno, "user namespace", "open `%s`", path);
        else
            r = 0;
    }
    close(ready[0]);
    close(done[1]);
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    mapped = c;
    return r;
}

int tsfig_userns_open(const struct tsfig_conf *c, pid_t pid, tsfig_error_t *err)
{
    if (!tsfig_userns_enabled(c))
        return 0;
    char path[64];
    tsfig_fmt(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    if (tsfig_userns_fd >= 0)
        close(tsfig_userns_fd);
    tsfig_userns_fd = TEMP_FAILURE_RETRY(open(path, O_RDONLY | O_CLOEXEC));
    if (tsfig_userns_fd < 0)
        return tsfig_make_error(err, errno, "user namespace", "open `%s`", path);
    mapped = c;
    return 0;
}

int tsfig_userns_enter(const struct tsfig_conf *c, tsfig_error_t *err)
{
    if (!tsfig_userns_enabled(c))
        return 0;
    if (tsfig_userns_fd < 0)
        return tsfig_make_error(err, EBADF, "user namespace", "no user namespace to enter");
    if (setns(tsfig_userns_fd, CLONE_NEWUSER) < 0)
        return tsfig_make_error(err, errno, "user namespace", "join the container's user namespace");
    /* root of the namespace: the host's uid of the range's start. The capabilities stay, in this namespace only. */
    if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return tsfig_make_error(err, errno, "user namespace", "become root of the container's user namespace");
    close(tsfig_userns_fd);
    tsfig_userns_fd = -1;
    return 0;
}

int tsfig_userns_idmap(int tree, const char *what, tsfig_error_t *err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)tsfig_userns_fd};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
        return tsfig_make_error(err, errno, "idmapped mount", "idmap `%s` (the file system must support idmapped mounts)",
                                what);
    return 0;
}

int tsfig_userns_idmapped_clone(int dirfd, const char *path, unsigned int flags, tsfig_error_t *err)
{
    int tree = (int)syscall(SYS_open_tree, dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | flags);
    if (tree < 0)
        return tsfig_make_error(err, errno, "idmapped mount", "clone `%s`", *path ? path : "(fd)");
    if (tsfig_userns_idmap(tree, *path ? path : "(fd)", err) < 0) {
        close(tree);
        return -1;
    }
    return tree;
}

uid_t tsfig_userns_unshift_uid(uid_t uid)
{
    if (mapped == NULL || !tsfig_userns_enabled(mapped) || uid < mapped->userns_uid
        || uid - mapped->userns_uid >= mapped->userns_size)
        return uid;
    return (uid_t)(uid - mapped->userns_uid);
}

gid_t tsfig_userns_unshift_gid(gid_t gid)
{
    if (mapped == NULL || !tsfig_userns_enabled(mapped) || gid < mapped->userns_gid
        || gid - mapped->userns_gid >= mapped->userns_size)
        return gid;
    return (gid_t)(gid - mapped->userns_gid);
}
