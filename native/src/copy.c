/* mount.copy: populate an empty volume from the image. Every write goes through a dir fd that was opened or
 * created under the destination with O_NOFOLLOW, and entries are created with *at() on single names, so nothing
 * can be written outside it; symlinks are copied as symlinks and never followed. */
#include "mounts.h"

#include "userns.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

static int copy_file(int src, int dst, const char *name, const struct stat *st, tsfig_error_t *err)
{
    cleanup_close int in = TEMP_FAILURE_RETRY(openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (in < 0)
        return tsfig_make_error(err, errno, NULL, "open `%s`", name);
    cleanup_close int out
        = TEMP_FAILURE_RETRY(openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (out < 0)
        return tsfig_make_error(err, errno, NULL, "create `%s`", name);
    for (off_t left = st->st_size; left > 0;) {
        ssize_t n = sendfile(out, in, NULL, left > (1 << 30) ? (1 << 30) : (size_t)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return tsfig_make_error(err, n < 0 ? errno : EIO, NULL, "copy `%s`", name);
        left -= n;
    }
    if (fchown(out, tsfig_userns_unshift_uid(st->st_uid), tsfig_userns_unshift_gid(st->st_gid)) < 0 || fchmod(out, st->st_mode & 07777) < 0)
        return tsfig_make_error(err, errno, NULL, "set owner and mode of `%s`", name);
    struct timespec t[2] = {st->st_atim, st->st_mtim};
    (void)futimens(out, t);
    return 0;
}

static int copy_entry(int src, int dst, const char *name, tsfig_error_t *err)
{
    struct stat st;
    if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(err, errno, NULL, "stat `%s`", name);
    struct timespec t[2] = {st.st_atim, st.st_mtim};
    if (S_ISREG(st.st_mode))
        return copy_file(src, dst, name, &st, err);
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(src, name, target, sizeof target - 1);
        if (n < 0)
            return tsfig_make_error(err, errno, NULL, "readlink `%s`", name);
        target[n] = '\0';
        if (symlinkat(target, dst, name) < 0)
            return tsfig_make_error(err, errno, NULL, "symlink `%s`", name);
    } else if (S_ISDIR(st.st_mode)) {
        if (mkdirat(dst, name, 0700) < 0)
            return tsfig_make_error(err, errno, NULL, "mkdir `%s`", name);
        cleanup_close int s = TEMP_FAILURE_RETRY(openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        cleanup_close int d = TEMP_FAILURE_RETRY(openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (s < 0 || d < 0)
            return tsfig_make_error(err, errno, NULL, "open directory `%s`", name);
        if (tsfig_copy_tree(s, d, err) < 0)
            return -1;
        if (fchmod(d, st.st_mode & 07777) < 0)
            return tsfig_make_error(err, errno, NULL, "chmod `%s`", name);
    } else if (mknodat(dst, name, st.st_mode, st.st_rdev) < 0) {
        return tsfig_make_error(err, errno, NULL, "mknod `%s`", name);
    } else if (fchmodat(dst, name, st.st_mode & 07777, AT_SYMLINK_NOFOLLOW) < 0) {
        return tsfig_make_error(err, errno, NULL, "chmod `%s`", name);
    }
    if (fchownat(dst, name, tsfig_userns_unshift_uid(st.st_uid), tsfig_userns_unshift_gid(st.st_gid), AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(err, errno, NULL, "chown `%s`", name);
    (void)utimensat(dst, name, t, AT_SYMLINK_NOFOLLOW);
    return 0;
}

int tsfig_copy_tree(int src, int dst, tsfig_error_t *err)
{
    int dfd = fcntl(src, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return tsfig_make_error(err, errno, NULL, "dup directory fd");
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return tsfig_make_error(err, errno, NULL, "open directory");
    }
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = copy_entry(src, dst, e->d_name, err);
    }
    closedir(d);
    if (rc == 0) {
        struct stat st;
        if (fstat(src, &st) == 0 && (fchown(dst, tsfig_userns_unshift_uid(st.st_uid), tsfig_userns_unshift_gid(st.st_gid)) < 0 || fchmod(dst, st.st_mode & 07777) < 0))
            return tsfig_make_error(err, errno, NULL, "set owner and mode of the volume root");
    }
    return rc;
}
