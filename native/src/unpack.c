/* `tsfig-runtime unpack DIR`: extracts an uncompressed tar stream from stdin into the empty directory DIR, confined to
 * it, converting AUFS-style whiteouts to overlay ones. See native/PROTOCOL.md.
 *
 * Confinement does not rest on checking path strings. The process enters a private mount namespace, bind-mounts DIR on
 * itself (nosuid, nodev, noexec: the extractor never runs or opens what it writes), chroots into it and sets
 * no_new_privs. On top of that every parent directory is opened relative to the root with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), and every leaf is created with O_EXCL/O_NOFOLLOW semantics (mkdirat,
 * mknodat, symlinkat, linkat never follow a final symlink) after an existing non-directory is unlinked. So `../x`,
 * `/abs/x`, `link -> /` followed by `link/etc/x`, and hardlinks to `/etc/passwd` all resolve inside DIR, or fail.
 * Names are still normalised as Docker does: a leading `/` is dropped and a `..` that would climb above the root is an
 * error. */
#include "commands.h"
#include "error.h"
#include "layerin.h"
#include "tar.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define OPAQUE_MARKER ".wh..wh..opq"
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_META_PREFIX ".wh..wh."

typedef struct dir_time {
    char *path;
    struct timespec mtime;
} dir_time_t;

typedef struct unpack_ctx {
    int rootfd;
    tsfig_tar_reader_t reader;
    dir_time_t *dirs;
    size_t n_dirs, cap_dirs;
    unsigned long long entries;
    unsigned long long bytes;
    char buf[65536];
} unpack_ctx_t;

static int openat2_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    };
    /* EAGAIN: a host-wide rename or mount raced with a ".." step; openat2(2) asks callers to retry (bounded). */
    for (int attempt = 0;; attempt++) {
        int fd = (int)TEMP_FAILURE_RETRY(syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how));
        if (fd >= 0 || errno != EAGAIN || attempt >= 1000)
            return fd;
    }
}

/* Normalises a tar name: leading `/` dropped, empty and `.` components removed, `..` applied lexically. A `..` that
 * climbs above the root is an error naming the entry. The result has no leading or trailing `/`; "" is the root. */
static int normalize_name(const char *raw, const char *entry, char **out, tsfig_error_t *err)
{
    size_t len = strlen(raw);
    cleanup_free char *copy = strdup(raw);
    char *res = malloc(len + 1);
    size_t rlen = 0;
    char *save = NULL;
    if (copy == NULL || res == NULL) {
        free(res);
        return tsfig_make_error(err, ENOMEM, "unpack", "normalize `%s`", entry);
    }
    for (char *tok = strtok_r(copy, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0) {
            if (rlen == 0) {
                free(res);
                return tsfig_make_error(err, 0, "unpack", "tar entry `%s` escapes the root: `%s` climbs above it",
                                        entry, raw);
            }
            char *slash = memrchr(res, '/', rlen);
            rlen = slash ? (size_t)(slash - res) : 0;
            continue;
        }
        size_t tlen = strlen(tok);
        if (rlen > 0)
            res[rlen++] = '/';
        memcpy(res + rlen, tok, tlen);
        rlen += tlen;
    }
    res[rlen] = '\0';
    *out = res;
    return 0;
}

/* Splits a normalised path into parent (written in place) and leaf. */
static const char *split_leaf(char *path)
{
    char *slash = strrchr(path, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    return slash + 1;
}

/* Opens the directory `path` (normalised; "" is the root) inside the root. With create, missing components are made
 * as root-owned 0755 directories, as Docker does for parents a layer does not list. */
static int open_dir(int rootfd, const char *path, bool create, int flags, const char *entry, tsfig_error_t *err)
{
    int fd = openat2_in_root(rootfd, path, flags | O_DIRECTORY);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT || !create)
        return tsfig_make_error(err, errno, "unpack", "open parent `/%s` of tar entry `%s`", path, entry);

    cleanup_free char *prefix = strdup(path);
    if (prefix == NULL)
        return tsfig_make_error(err, ENOMEM, "unpack", "open `/%s`", path);
    for (char *cursor = prefix;;) {
        char *slash = strchr(cursor, '/');
        if (slash != NULL)
            *slash = '\0';
        cleanup_close int dfd = openat2_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
        if (dfd < 0 && errno == ENOENT) {
            char *last = strrchr(prefix, '/');
            const char *name = prefix;
            cleanup_close int pfd = -1;
            if (last != NULL) {
                *last = '\0';
                pfd = openat2_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
                *last = '/';
                name = last + 1;
            } else {
                pfd = openat2_in_root(rootfd, "", O_PATH | O_DIRECTORY);
            }
            if (pfd < 0)
                return tsfig_make_error(err, errno, "unpack", "open `/%s`", prefix);
            if (mkdirat(pfd, name, 0755) < 0 && errno != EEXIST)
                return tsfig_make_error(err, errno, "unpack", "mkdir `/%s`", prefix);
            dfd = openat2_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
        }
        if (dfd < 0)
            return tsfig_make_error(err, errno, "unpack", "open parent `/%s` of tar entry `%s`", prefix, entry);
        if (slash == NULL)
            break;
        *slash = '/';
        cursor = slash + 1;
    }
    fd = openat2_in_root(rootfd, path, flags | O_DIRECTORY);
    if (fd < 0)
        return tsfig_make_error(err, errno, "unpack", "open parent `/%s` of tar entry `%s`", path, entry);
    return fd;
}

/* Removes parentfd/name, recursively for a directory, never following symlinks. ENOENT is success. */
static int remove_at(int parentfd, const char *name, tsfig_error_t *err)
{
    struct stat st;
    if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return tsfig_make_error(err, errno, "unpack", "stat `%s`", name);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parentfd, name, 0) < 0 && errno != ENOENT)
            return tsfig_make_error(err, errno, "unpack", "unlink `%s`", name);
        return 0;
    }
    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return tsfig_make_error(err, errno, "unpack", "open `%s`", name);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return tsfig_make_error(err, errno, "unpack", "open `%s`", name);
    }
    struct dirent *de;
    int ret = 0;
    while (ret == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        ret = remove_at(dirfd(d), de->d_name, err);
    }
    closedir(d);
    if (ret < 0)
        return ret;
    if (unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return tsfig_make_error(err, errno, "unpack", "rmdir `%s`", name);
    return 0;
}

/* trusted.overlay.* (and rootless, where overlay is mounted with userxattr, user.overlay.*) would let a layer steer
 * overlayfs (redirects, metacopy, opacity); only whiteout conversion sets them. Xattrs the filesystem does not
 * support are skipped, as Docker does. */
static bool xattr_allowed(const char *name)
{
    const char *own = tsfig_overlay_xattr_prefix();
    return strncmp(name, "trusted.overlay.", 16) != 0 && strncmp(name, own, strlen(own)) != 0;
}

static int set_xattrs_fd(int fd, const tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    for (size_t i = 0; i < e->n_xattrs; i++) {
        const tsfig_tar_xattr_t *x = &e->xattrs[i];
        if (!xattr_allowed(x->name))
            continue;
        if (fsetxattr(fd, x->name, x->value, x->len, 0) < 0 && errno != ENOTSUP)
            return tsfig_make_error(err, errno, "unpack", "set xattr `%s` on `%s`", x->name, e->name);
    }
    return 0;
}

/* For entries that cannot be opened (symlinks, devices): lsetxattr on a single component from the parent. */
static int set_xattrs_at(int parentfd, const char *leaf, const tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    if (e->n_xattrs == 0)
        return 0;
    if (fchdir(parentfd) < 0)
        return tsfig_make_error(err, errno, "unpack", "chdir to parent of `%s`", e->name);
    for (size_t i = 0; i < e->n_xattrs; i++) {
        const tsfig_tar_xattr_t *x = &e->xattrs[i];
        if (!xattr_allowed(x->name))
            continue;
        if (lsetxattr(leaf, x->name, x->value, x->len, 0) < 0 && errno != ENOTSUP && errno != EPERM)
            return tsfig_make_error(err, errno, "unpack", "set xattr `%s` on `%s`", x->name, e->name);
    }
    if (chdir("/") < 0)
        return tsfig_make_error(err, errno, "unpack", "chdir `/`");
    return 0;
}

static int set_times_at(int parentfd, const char *leaf, const tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    struct timespec ts[2] = {e->mtime, e->mtime};
    if (utimensat(parentfd, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(err, errno, "unpack", "set times of `%s`", e->name);
    return 0;
}

/* Ownership first, then mode: chown clears setuid/setgid. */
static int set_owner_mode_fd(int fd, const tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    if (fchown(fd, e->uid, e->gid) < 0)
        return tsfig_make_error(err, errno, "unpack", "chown `%s`", e->name);
    if (fchmod(fd, e->mode) < 0)
        return tsfig_make_error(err, errno, "unpack", "chmod `%s`", e->name);
    return 0;
}

static int remember_dir(unpack_ctx_t *ctx, const char *path, struct timespec mtime, tsfig_error_t *err)
{
    if (ctx->n_dirs == ctx->cap_dirs) {
        size_t cap = ctx->cap_dirs ? ctx->cap_dirs * 2 : 64;
        dir_time_t *d = realloc(ctx->dirs, cap * sizeof *d);
        if (d == NULL)
            return tsfig_make_error(err, ENOMEM, "unpack", "remember directory `%s`", path);
        ctx->dirs = d;
        ctx->cap_dirs = cap;
    }
    char *copy = strdup(path);
    if (copy == NULL)
        return tsfig_make_error(err, ENOMEM, "unpack", "remember directory `%s`", path);
    ctx->dirs[ctx->n_dirs++] = (dir_time_t){.path = copy, .mtime = mtime};
    return 0;
}

static int write_file(unpack_ctx_t *ctx, int parentfd, const char *leaf, const tsfig_tar_entry_t *e,
                      tsfig_error_t *err)
{
    cleanup_close int fd = openat(parentfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return tsfig_make_error(err, errno, "unpack", "create `%s`", e->name);
    for (;;) {
        ssize_t n = tsfig_tar_read(&ctx->reader, ctx->buf, sizeof ctx->buf, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (tsfig_write_all(fd, ctx->buf, (size_t)n) < 0)
            return tsfig_make_error(err, errno, "unpack", "write `%s`", e->name);
        ctx->bytes += (unsigned long long)n;
    }
    if (set_owner_mode_fd(fd, e, err) < 0 || set_xattrs_fd(fd, e, err) < 0)
        return -1;
    struct timespec ts[2] = {e->mtime, e->mtime};
    if (futimens(fd, ts) < 0)
        return tsfig_make_error(err, errno, "unpack", "set times of `%s`", e->name);
    return 0;
}

static int make_dir(unpack_ctx_t *ctx, int parentfd, const char *leaf, const char *path, const tsfig_tar_entry_t *e,
                    tsfig_error_t *err)
{
    if (mkdirat(parentfd, leaf, 0700) < 0 && errno != EEXIST)
        return tsfig_make_error(err, errno, "unpack", "mkdir `%s`", e->name);
    cleanup_close int fd = openat(parentfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return tsfig_make_error(err, errno, "unpack", "open directory `%s`", e->name);
    if (set_owner_mode_fd(fd, e, err) < 0 || set_xattrs_fd(fd, e, err) < 0)
        return -1;
    return remember_dir(ctx, path, e->mtime, err);
}

static int make_hardlink(unpack_ctx_t *ctx, int parentfd, const char *leaf, const tsfig_tar_entry_t *e,
                         tsfig_error_t *err)
{
    cleanup_free char *target = NULL;
    if (normalize_name(e->linkname, e->name, &target, err) < 0)
        return -1;
    if (*target == '\0')
        return tsfig_make_error(err, 0, "unpack", "hardlink `%s` points to the root", e->name);
    const char *tleaf = split_leaf(target);
    const char *tparent = tleaf ? target : "";
    if (tleaf == NULL)
        tleaf = target;
    cleanup_close int tfd = open_dir(ctx->rootfd, tparent, false, O_PATH, e->name, err);
    if (tfd < 0)
        return tsfig_make_error(err, err->errno_, "unpack", "hardlink `%s` to `%s`: target not found in the layer",
                                e->name, e->linkname);
    struct stat st;
    if (fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(err, errno, "unpack", "hardlink `%s` to `%s`", e->name, e->linkname);
    if (S_ISDIR(st.st_mode))
        return tsfig_make_error(err, 0, "unpack", "hardlink `%s` to directory `%s`", e->name, e->linkname);
    if (linkat(tfd, tleaf, parentfd, leaf, 0) < 0)
        return tsfig_make_error(err, errno, "unpack", "hardlink `%s` to `%s`", e->name, e->linkname);
    return 0;
}

static int make_node(int parentfd, const char *leaf, const tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    mode_t type = e->type == '3' ? S_IFCHR : e->type == '4' ? S_IFBLK : S_IFIFO;
    dev_t dev = e->type == '6' ? 0 : makedev(e->devmajor, e->devminor);
    if (mknodat(parentfd, leaf, type | 0600, dev) < 0) {
        /* Rootless: a user namespace may not make device nodes. They are left out, as Docker's and podman's
         * unpackers do in a user namespace: a container's /dev is a tmpfs of its own anyway. */
        if (errno == EPERM && type != S_IFIFO && dev != 0 && tsfig_in_userns())
            return 0;
        return tsfig_make_error(err, errno, "unpack", "mknod `%s`", e->name);
    }
    if (fchownat(parentfd, leaf, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(err, errno, "unpack", "chown `%s`", e->name);
    /* The node was just made with mknodat (which never follows); check before chmod, which would follow. */
    struct stat st;
    if (fstatat(parentfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || (st.st_mode & S_IFMT) != type)
        return tsfig_make_error(err, errno, "unpack", "verify `%s`", e->name);
    if (fchmodat(parentfd, leaf, e->mode, 0) < 0)
        return tsfig_make_error(err, errno, "unpack", "chmod `%s`", e->name);
    if (set_xattrs_at(parentfd, leaf, e, err) < 0)
        return -1;
    return set_times_at(parentfd, leaf, e, err);
}

static int make_symlink(int parentfd, const char *leaf, const tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    /* The target is stored verbatim (absolute targets are legitimate) and never followed here. */
    if (symlinkat(e->linkname, parentfd, leaf) < 0)
        return tsfig_make_error(err, errno, "unpack", "symlink `%s`", e->name);
    if (fchownat(parentfd, leaf, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(err, errno, "unpack", "chown `%s`", e->name);
    if (set_xattrs_at(parentfd, leaf, e, err) < 0)
        return -1;
    return set_times_at(parentfd, leaf, e, err);
}

/* `.wh..wh..opq` marks its directory opaque; `.wh.NAME` becomes a 0:0 character device NAME. */
static int convert_whiteout(unpack_ctx_t *ctx, const char *parent, const char *leaf, const tsfig_tar_entry_t *e,
                            tsfig_error_t *err)
{
    if (strcmp(leaf, OPAQUE_MARKER) == 0) {
        cleanup_close int dfd = open_dir(ctx->rootfd, parent, true, O_RDONLY, e->name, err);
        if (dfd < 0)
            return -1;
        char opaque[32];
        tsfig_fmt(opaque, sizeof opaque, "%sopaque", tsfig_overlay_xattr_prefix());
        if (fsetxattr(dfd, opaque, "y", 1, 0) < 0)
            return tsfig_make_error(err, errno, "unpack", "set xattr `%s` on `/%s`", opaque, parent);
        return 0;
    }
    if (strncmp(leaf, WHITEOUT_META_PREFIX, strlen(WHITEOUT_META_PREFIX)) == 0)
        return 0; /* other AUFS metadata (.wh..wh.plnk, ...) has no meaning for overlay */
    const char *name = leaf + strlen(WHITEOUT_PREFIX);
    if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return tsfig_make_error(err, 0, "unpack", "invalid whiteout `%s`", e->name);
    cleanup_close int pfd = open_dir(ctx->rootfd, parent, true, O_PATH, e->name, err);
    if (pfd < 0 || remove_at(pfd, name, err) < 0)
        return -1;
    if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
        return tsfig_make_error(err, errno, "unpack", "mknod whiteout for `%s`", e->name);
    if (fchownat(pfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(err, errno, "unpack", "chown whiteout for `%s`", e->name);
    return 0;
}

static int extract_entry(unpack_ctx_t *ctx, const tsfig_tar_entry_t *e, tsfig_error_t *err)
{
    cleanup_free char *path = NULL;
    if (normalize_name(e->name, e->name, &path, err) < 0)
        return -1;

    if (*path == '\0') {
        /* The archive's root (`./`): only its attributes apply. */
        if (e->type != '5')
            return tsfig_make_error(err, 0, "unpack", "tar entry `%s` names the root but is not a directory",
                                    e->name);
        if (set_owner_mode_fd(ctx->rootfd, e, err) < 0 || set_xattrs_fd(ctx->rootfd, e, err) < 0)
            return -1;
        return remember_dir(ctx, "", e->mtime, err);
    }

    cleanup_free char *full = strdup(path);
    if (full == NULL)
        return tsfig_make_error(err, ENOMEM, "unpack", "extract `%s`", e->name);
    const char *leaf = split_leaf(path);
    const char *parent = leaf ? path : "";
    if (leaf == NULL)
        leaf = path;

    if (strncmp(leaf, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
        return convert_whiteout(ctx, parent, leaf, e, err);

    cleanup_close int pfd = open_dir(ctx->rootfd, parent, true, O_PATH, e->name, err);
    if (pfd < 0)
        return -1;

    struct stat st;
    bool exists = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !(S_ISDIR(st.st_mode) && e->type == '5') && remove_at(pfd, leaf, err) < 0)
        return -1;

    switch (e->type) {
    case '0':
        return write_file(ctx, pfd, leaf, e, err);
    case '5':
        return make_dir(ctx, pfd, leaf, full, e, err);
    case '2':
        return make_symlink(pfd, leaf, e, err);
    case '1':
        return make_hardlink(ctx, pfd, leaf, e, err);
    case '3':
    case '4':
    case '6':
        return make_node(pfd, leaf, e, err);
    default:
        return tsfig_make_error(err, 0, "unpack", "tar entry `%s` has unsupported type `%c`", e->name, e->type);
    }
}

/* Directory mtimes last: creating children changed them. Setting a directory's times does not touch its parent's, so
 * archive order works, and a directory listed twice gets the later entry's time. One replaced later by something else
 * is skipped. */
static int apply_dir_times(unpack_ctx_t *ctx, tsfig_error_t *err)
{
    for (size_t i = 0; i < ctx->n_dirs; i++) {
        dir_time_t *d = &ctx->dirs[i];
        cleanup_close int fd = openat2_in_root(ctx->rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                continue;
            return tsfig_make_error(err, errno, "unpack", "open directory `/%s`", d->path);
        }
        struct timespec ts[2] = {d->mtime, d->mtime};
        if (futimens(fd, ts) < 0)
            return tsfig_make_error(err, errno, "unpack", "set times of `/%s`", d->path);
    }
    return 0;
}

static int confine(const char *dir, tsfig_error_t *err)
{
    cleanup_free char *real = realpath(dir, NULL);
    if (real == NULL)
        return tsfig_make_error(err, errno, "unpack", "resolve `%s`", dir);
    DIR *d = opendir(real);
    if (d == NULL)
        return tsfig_make_error(err, errno, "unpack", "open `%s`", real);
    struct dirent *de;
    bool empty = true;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = false;
    closedir(d);
    if (!empty)
        return tsfig_make_error(err, ENOTEMPTY, "unpack", "target `%s`", real);

    (void)tsfig_in_userns(); /* decided while /proc is still reachable: whiteouts need it after the chroot */
    if (unshare(CLONE_NEWNS) < 0)
        return tsfig_make_error(err, errno, "unpack", "unshare the mount namespace");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return tsfig_make_error(err, errno, "unpack", "make `/` private");
    if (mount(real, real, NULL, MS_BIND, NULL) < 0)
        return tsfig_make_error(err, errno, "unpack", "bind mount `%s`", real);
    if (mount(NULL, real, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return tsfig_make_error(err, errno, "unpack", "remount `%s` nosuid,nodev,noexec", real);
    if (chdir(real) < 0)
        return tsfig_make_error(err, errno, "unpack", "chdir `%s`", real);
    if (chroot(".") < 0)
        return tsfig_make_error(err, errno, "unpack", "chroot `%s`", real);
    if (chdir("/") < 0)
        return tsfig_make_error(err, errno, "unpack", "chdir `/`");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return tsfig_make_error(err, errno, "unpack", "set no_new_privs");
    umask(0);
    return 0;
}

static int run_unpack(unpack_ctx_t *ctx, const char *dir, const tsfig_layerin_opts_t *in, tsfig_layerin_t **li,
                      tsfig_error_t *err)
{
    tsfig_tar_entry_t e = {0};
    int ret;

    /* the libraries are loaded (and the record's file is open) before the chroot */
    tsfig_tar_reader_init(&ctx->reader, STDIN_FILENO);
    if (tsfig_layerin_open(li, in, &ctx->reader, err) < 0)
        return -1;
    if (confine(dir, err) < 0)
        return -1;
    ctx->rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ctx->rootfd < 0)
        return tsfig_make_error(err, errno, "unpack", "open the root");
    while ((ret = tsfig_tar_next(&ctx->reader, &e, err)) > 0) {
        ctx->entries++;
        if (extract_entry(ctx, &e, err) < 0) {
            tsfig_tar_entry_free(&e);
            return -1;
        }
    }
    tsfig_tar_entry_free(&e);
    if (ret < 0)
        return -1;
    if (apply_dir_times(ctx, err) < 0)
        return -1;
    /* The caller hashes everything it sends: read what follows the end marker too. */
    return tsfig_tar_drain(&ctx->reader, err);
}

static void write_features(void)
{
    const char *inflater = tsfig_layerin_inflater();
    char line[160];
    int n = snprintf(line, sizeof line, "{\"v\":%d,\"type\":\"features\",\"gzip\":\"%s\",\"sha256\":%s}\n",
                     TSFIG_PROTOCOL_VERSION, inflater != NULL ? inflater : "",
                     tsfig_layerin_has_sha256() ? "true" : "false");
    (void)tsfig_write_all(STDOUT_FILENO, line, (size_t)n);
}

static int usage(void)
{
    fprintf(stderr, "usage: tsfig-runtime unpack [--gzip] [--digest] [--tar-split FILE] DIR < layer\n"
                    "       tsfig-runtime unpack --features\n");
    return 2;
}

int tsfig_cmd_unpack(int argc, char **argv)
{
    tsfig_error_t err = {0};
    tsfig_layerin_opts_t in = {.fd = STDIN_FILENO, .split_fd = -1};
    const char *split = NULL;
    const char *dir = NULL;
    if (argc == 2 && strcmp(argv[1], "--features") == 0) {
        write_features();
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--gzip") == 0)
            in.gzip = true;
        else if (strcmp(argv[i], "--digest") == 0)
            in.digest = true;
        else if (strcmp(argv[i], "--tar-split") == 0 && i + 1 < argc)
            split = argv[++i];
        else if (argv[i][0] != '-' && dir == NULL)
            dir = argv[i];
        else
            return usage();
    }
    if (dir == NULL)
        return usage();
    unpack_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        tsfig_make_error(&err, ENOMEM, "unpack", "allocate");
        tsfig_write_error(STDOUT_FILENO, &err);
        return 1;
    }
    ctx->rootfd = -1;
    /* A larger pipe (1 MiB, the default pipe-max-size) takes the stream in fewer, larger writes and reads; not a pipe
     * or not allowed: the default size does, only slower. */
    (void)fcntl(STDIN_FILENO, F_SETPIPE_SZ, 1 << 20);
    int ret = 0;
    if (split != NULL) {
        /* outside the layer dir, opened before the chroot; a new file, never one that is there */
        in.split_fd = open(split, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (in.split_fd < 0)
            ret = tsfig_make_error(&err, errno, "unpack", "create `%s`", split);
    }
    tsfig_layerin_t *li = NULL;
    tsfig_layerin_result_t res = {0};
    if (ret == 0)
        ret = run_unpack(ctx, dir, &in, &li, &err);
    if (ret == 0 && li != NULL)
        ret = tsfig_layerin_finish(li, &res, &err);
    if (li == NULL && in.split_fd >= 0)
        close(in.split_fd); /* otherwise the record's stream owns it */
    tsfig_layerin_free(li);
    if (ret < 0) {
        tsfig_write_error(STDOUT_FILENO, &err);
    } else {
        char line[320];
        int n = snprintf(line, sizeof line, "{\"v\":%d,\"type\":\"done\",\"entries\":%llu,\"bytes\":%llu",
                         TSFIG_PROTOCOL_VERSION, ctx->entries, ctx->bytes);
        if (res.has_digest)
            n += snprintf(line + n, sizeof line - (size_t)n, ",\"diffId\":\"sha256:%s\",\"size\":%llu", res.digest,
                          res.size);
        if (split != NULL)
            n += snprintf(line + n, sizeof line - (size_t)n, ",\"tarSplit\":%s", res.tar_split ? "true" : "false");
        if (res.inflater != NULL)
            n += snprintf(line + n, sizeof line - (size_t)n, ",\"inflater\":\"%s\"", res.inflater);
        n += snprintf(line + n, sizeof line - (size_t)n, "}\n");
        (void)tsfig_write_all(STDOUT_FILENO, line, (size_t)n);
    }
    for (size_t i = 0; i < ctx->n_dirs; i++)
        free(ctx->dirs[i].path);
    free(ctx->dirs);
    if (ctx->rootfd >= 0)
        close(ctx->rootfd);
    free(ctx);
    return ret < 0 ? 1 : 0;
}
