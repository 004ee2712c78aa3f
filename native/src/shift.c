/* `tsfig-runtime idmap-probe DIR` and `tsfig-runtime shift ...`: chown-on-copy for a user namespace's range where the
 * file system does not support idmapped mounts (native/PROTOCOL.md).
 *
 * Both walks are fd-relative and never follow a symlink: every directory is opened with O_NOFOLLOW|O_DIRECTORY below
 * the one before it and checked to be the entry that was listed (same device and inode), every other entry is
 * changed through its parent's fd with AT_SYMLINK_NOFOLLOW, or through an fd opened with O_NOFOLLOW; nothing on
 * another file system (a mount inside the tree) is entered or changed. A chown by root clears the setuid and setgid
 * bits of a regular file and its file capabilities: the mode is set again after the chown, and a
 * `security.capability` is written again with its root id mapped as its owner's (a v3 capability; v2 for root 0),
 * so the container's root gets the capability as it would through an idmapped mount. */
#include "commands.h"
#include "error.h"
#include "userns.h"
#include "conf.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define STEP "shift"

/* An id range: ids from..from+size-1 become to..to+size-1; others stay as they are. */
struct id_map {
    uint32_t from_uid, from_gid, to_uid, to_gid, size;
};

static uint32_t map_uid(const struct id_map *m, uint32_t id)
{
    return id >= m->from_uid && id - m->from_uid < m->size ? m->to_uid + (id - m->from_uid) : id;
}

static uint32_t map_gid(const struct id_map *m, uint32_t id)
{
    return id >= m->from_gid && id - m->from_gid < m->size ? m->to_gid + (id - m->from_gid) : id;
}

/* Hard links: inodes with more than one link, by source device and inode. */
struct link_entry {
    dev_t dev;
    ino_t ino;
    nlink_t nlink, seen;
    char *path; /* relative to the tree's root */
};

struct walk {
    struct id_map map;
    dev_t dev;    /* the tree's file system: nothing on another is entered */
    int root_fd;  /* copy: the destination's root; chown: the tree's root */
    struct link_entry *links;
    size_t n_links, cap_links;
    unsigned long long entries, skipped;
    tsfig_error_t *err;
};

static struct link_entry *find_link(struct walk *w, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < w->n_links; i++)
        if (w->links[i].dev == dev && w->links[i].ino == ino)
            return &w->links[i];
    return NULL;
}

static struct link_entry *add_link(struct walk *w, const struct stat *st, const char *path)
{
    if (w->n_links == w->cap_links) {
        size_t cap = w->cap_links ? w->cap_links * 2 : 64;
        struct link_entry *grown = realloc(w->links, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        w->links = grown;
        w->cap_links = cap;
    }
    char *copy = strdup(path);
    if (copy == NULL)
        return NULL;
    struct link_entry *e = &w->links[w->n_links++];
    *e = (struct link_entry){.dev = st->st_dev, .ino = st->st_ino, .nlink = st->st_nlink, .seen = 1, .path = copy};
    return e;
}

static int join(char *buf, size_t cap, const char *dir, const char *name)
{
    return tsfig_fmt(buf, cap, "%s%s%s", dir, *dir ? "/" : "", name);
}

/* security.capability of fd, rewritten for its new owner's mapping; len 0 when it has none. */
static ssize_t mapped_caps(int fd, const struct id_map *m, struct vfs_ns_cap_data *caps)
{
    memset(caps, 0, sizeof *caps);
    ssize_t n = fgetxattr(fd, "security.capability", caps, sizeof *caps);
    if (n < 0)
        return errno == ENODATA || errno == ENOTSUP ? 0 : -1;
    uint32_t magic = le32toh(caps->magic_etc);
    uint32_t rev = magic & VFS_CAP_REVISION_MASK;
    uint32_t root = rev == VFS_CAP_REVISION_3 && n >= (ssize_t)XATTR_CAPS_SZ_3 ? le32toh(caps->rootid) : 0;
    if (rev != VFS_CAP_REVISION_2 && rev != VFS_CAP_REVISION_3)
        return n; /* unknown: written back as it was */
    uint32_t mapped = map_uid(m, root);
    if (mapped == 0) {
        caps->magic_etc = htole32(VFS_CAP_REVISION_2 | (magic & VFS_CAP_FLAGS_EFFECTIVE));
        return XATTR_CAPS_SZ_2;
    }
    caps->magic_etc = htole32(VFS_CAP_REVISION_3 | (magic & VFS_CAP_FLAGS_EFFECTIVE));
    caps->rootid = htole32(mapped);
    return XATTR_CAPS_SZ_3;
}

/* Changes the owner of an open regular file or directory, keeping its mode (setuid, setgid) and capabilities. */
static int chown_fd(struct walk *w, int fd, const struct stat *st, const char *path)
{
    struct vfs_ns_cap_data caps;
    ssize_t ncaps = S_ISREG(st->st_mode) ? mapped_caps(fd, &w->map, &caps) : 0;
    if (ncaps < 0)
        return tsfig_make_error(w->err, errno, STEP, "read the capabilities of `%s`", path);
    if (fchown(fd, map_uid(&w->map, st->st_uid), map_gid(&w->map, st->st_gid)) < 0)
        return tsfig_make_error(w->err, errno, STEP, "chown `%s`", path);
    if ((st->st_mode & (S_ISUID | S_ISGID)) != 0 && fchmod(fd, st->st_mode & 07777) < 0)
        return tsfig_make_error(w->err, errno, STEP, "chmod `%s`", path);
    if (ncaps > 0 && fsetxattr(fd, "security.capability", &caps, (size_t)ncaps, 0) < 0)
        return tsfig_make_error(w->err, errno, STEP, "set the capabilities of `%s`", path);
    return 0;
}

/* Opens the entry name of dirfd that fstatat described, without following a symlink; -2 when it changed. */
static int open_same(struct walk *w, int dirfd, const char *name, const struct stat *st, int flags, const char *path)
{
    int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return tsfig_make_error(w->err, errno, STEP, "open `%s`", path);
    struct stat now;
    if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
        close(fd);
        return tsfig_make_error(w->err, EAGAIN, STEP, "`%s` changed while it was walked", path);
    }
    return fd;
}

/* path below rootfd, reached without a symlink, a `..` above it or another file system */
static int open_beneath(int rootfd, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS};
    return (int)TEMP_FAILURE_RETRY(syscall(SYS_openat2, rootfd, path, &how, sizeof how));
}

/* ---- shift chown: in place ----------------------------------------------------------------------------------- */

static int chown_tree(struct walk *w, int dirfd, const char *rel);

static int chown_entry(struct walk *w, int dirfd, const char *name, const char *rel)
{
    char path[PATH_MAX];
    if (join(path, sizeof path, rel, name) < 0)
        return tsfig_make_error(w->err, ENAMETOOLONG, STEP, "path below `%s` too long", rel);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : tsfig_make_error(w->err, errno, STEP, "stat `%s`", path);
    if (st.st_dev != w->dev)
        return 0; /* a mount point inside the tree: not entered, not changed */
    w->entries++;
    if (S_ISDIR(st.st_mode)) {
        int fd cleanup_close = open_same(w, dirfd, name, &st, O_RDONLY | O_DIRECTORY, path);
        if (fd < 0 || chown_tree(w, fd, path) < 0)
            return -1;
        return chown_fd(w, fd, &st, path);
    }
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        /* changed once every link was seen inside the tree (below): a link to a file outside keeps it as it is */
        struct link_entry *e = find_link(w, st.st_dev, st.st_ino);
        if (e != NULL)
            e->seen++;
        else if (add_link(w, &st, path) == NULL)
            return tsfig_make_error(w->err, ENOMEM, STEP, "remember `%s`", path);
        return 0;
    }
    if (S_ISREG(st.st_mode)) {
        int fd cleanup_close = open_same(w, dirfd, name, &st, O_RDONLY, path);
        return fd < 0 ? -1 : chown_fd(w, fd, &st, path);
    }
    /* symlinks, devices, fifos, sockets: their own owner, never a target's; no setuid bit to keep */
    if (fchownat(dirfd, name, map_uid(&w->map, st.st_uid), map_gid(&w->map, st.st_gid), AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(w->err, errno, STEP, "chown `%s`", path);
    return 0;
}

static int chown_tree(struct walk *w, int dirfd, const char *rel)
{
    int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
    if (d == NULL) {
        if (dup_fd >= 0)
            close(dup_fd);
        return tsfig_make_error(w->err, errno, STEP, "read `%s`", *rel ? rel : ".");
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        r = chown_entry(w, dirfd, de->d_name, rel);
    }
    if (r == 0 && errno != 0)
        r = tsfig_make_error(w->err, errno, STEP, "read `%s`", *rel ? rel : ".");
    closedir(d);
    return r;
}

/* The hard-linked files, once the whole tree is walked: each one whose every link is inside the tree, reached again
 * from the root without symlinks (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV) and checked to be the
 * same inode; the others are counted as skipped. */
static int chown_links(struct walk *w)
{
    for (size_t i = 0; i < w->n_links; i++) {
        struct link_entry *e = &w->links[i];
        if (e->seen < e->nlink) {
            w->skipped++;
            continue;
        }
        int fd cleanup_close = open_beneath(w->root_fd, e->path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
            return tsfig_make_error(w->err, errno, STEP, "open `%s`", e->path);
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_dev != e->dev || st.st_ino != e->ino || !S_ISREG(st.st_mode))
            return tsfig_make_error(w->err, EAGAIN, STEP, "`%s` changed while it was walked", e->path);
        if (chown_fd(w, fd, &st, e->path) < 0)
            return -1;
    }
    return 0;
}

/* ---- shift copy ---------------------------------------------------------------------------------------------- */

static int copy_tree(struct walk *w, int src, int dst, const char *rel);

static int copy_xattrs(struct walk *w, int from, int to, const char *path)
{
    char names[65536];
    ssize_t n = flistxattr(from, names, sizeof names);
    if (n < 0)
        return errno == ENOTSUP ? 0 : tsfig_make_error(w->err, errno, STEP, "list the xattrs of `%s`", path);
    static char value[65536];
    for (char *name = names; name < names + n; name += strlen(name) + 1) {
        if (strcmp(name, "security.capability") == 0)
            continue; /* mapped by chown_fd */
        ssize_t len = fgetxattr(from, name, value, sizeof value);
        if (len < 0)
            return tsfig_make_error(w->err, errno, STEP, "read xattr `%s` of `%s`", name, path);
        if (fsetxattr(to, name, value, (size_t)len, 0) < 0 && errno != ENOTSUP)
            return tsfig_make_error(w->err, errno, STEP, "set xattr `%s` on `%s`", name, path);
    }
    return 0;
}

static int copy_data(struct walk *w, int from, int to, const char *path)
{
    for (;;) {
        ssize_t n = copy_file_range(from, NULL, to, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            return tsfig_make_error(w->err, errno, STEP, "copy `%s`", path);
        break;
    }
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = TEMP_FAILURE_RETRY(read(from, buf, sizeof buf));
        if (n < 0)
            return tsfig_make_error(w->err, errno, STEP, "read `%s`", path);
        if (n == 0)
            return 0;
        if (tsfig_write_all(to, buf, (size_t)n) < 0)
            return tsfig_make_error(w->err, errno, STEP, "write `%s`", path);
    }
}

/* The copy of an open file or directory `from` (described by st) as `to`: owner mapped, then mode, xattrs, times. */
static int finish_copy(struct walk *w, int from, int to, const struct stat *st, const char *path)
{
    struct vfs_ns_cap_data caps;
    ssize_t ncaps = S_ISREG(st->st_mode) ? mapped_caps(from, &w->map, &caps) : 0;
    if (ncaps < 0)
        return tsfig_make_error(w->err, errno, STEP, "read the capabilities of `%s`", path);
    if (copy_xattrs(w, from, to, path) < 0)
        return -1;
    if (fchown(to, map_uid(&w->map, st->st_uid), map_gid(&w->map, st->st_gid)) < 0)
        return tsfig_make_error(w->err, errno, STEP, "chown `%s`", path);
    if (fchmod(to, st->st_mode & 07777) < 0)
        return tsfig_make_error(w->err, errno, STEP, "chmod `%s`", path);
    if (ncaps > 0 && fsetxattr(to, "security.capability", &caps, (size_t)ncaps, 0) < 0 && errno != ENOTSUP)
        return tsfig_make_error(w->err, errno, STEP, "set the capabilities of `%s`", path);
    struct timespec times[2] = {st->st_atim, st->st_mtim};
    if (futimens(to, times) < 0)
        return tsfig_make_error(w->err, errno, STEP, "set the times of `%s`", path);
    return 0;
}

static int copy_entry(struct walk *w, int src, int dst, const char *name, const char *rel)
{
    char path[PATH_MAX];
    if (join(path, sizeof path, rel, name) < 0)
        return tsfig_make_error(w->err, ENAMETOOLONG, STEP, "path below `%s` too long", rel);
    struct stat st;
    if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(w->err, errno, STEP, "stat `%s`", path);
    if (st.st_dev != w->dev)
        return 0; /* a mount inside the source: not copied */
    w->entries++;
    uid_t uid = map_uid(&w->map, st.st_uid);
    gid_t gid = map_gid(&w->map, st.st_gid);
    if (S_ISDIR(st.st_mode)) {
        int from cleanup_close = open_same(w, src, name, &st, O_RDONLY | O_DIRECTORY, path);
        if (from < 0)
            return -1;
        if (mkdirat(dst, name, 0700) < 0)
            return tsfig_make_error(w->err, errno, STEP, "mkdir `%s`", path);
        int to cleanup_close = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (to < 0)
            return tsfig_make_error(w->err, errno, STEP, "open `%s`", path);
        if (copy_tree(w, from, to, path) < 0)
            return -1;
        return finish_copy(w, from, to, &st, path);
    }
    if (S_ISREG(st.st_mode)) {
        struct link_entry *e = st.st_nlink > 1 ? find_link(w, st.st_dev, st.st_ino) : NULL;
        if (e != NULL) { /* a hard link to a file already copied: linked to its copy */
            if (linkat(w->root_fd, e->path, dst, name, 0) < 0)
                return tsfig_make_error(w->err, errno, STEP, "link `%s` to `%s`", path, e->path);
            return 0;
        }
        int from cleanup_close = open_same(w, src, name, &st, O_RDONLY, path);
        if (from < 0)
            return -1;
        int to cleanup_close = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (to < 0)
            return tsfig_make_error(w->err, errno, STEP, "create `%s`", path);
        if (copy_data(w, from, to, path) < 0 || finish_copy(w, from, to, &st, path) < 0)
            return -1;
        if (st.st_nlink > 1 && add_link(w, &st, path) == NULL)
            return tsfig_make_error(w->err, ENOMEM, STEP, "remember `%s`", path);
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(src, name, target, sizeof target - 1);
        if (n < 0)
            return tsfig_make_error(w->err, errno, STEP, "readlink `%s`", path);
        target[n] = '\0';
        if (symlinkat(target, dst, name) < 0)
            return tsfig_make_error(w->err, errno, STEP, "symlink `%s`", path);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
        /* the same node (a whiteout, or a device the unpacker let in): the device cgroup decides its use, as before */
        if (mknodat(dst, name, (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0)
            return tsfig_make_error(w->err, errno, STEP, "mknod `%s`", path);
    } else {
        return 0; /* a socket: not copied */
    }
    if (fchownat(dst, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(w->err, errno, STEP, "chown `%s`", path);
    if (!S_ISLNK(st.st_mode) && fchmodat(dst, name, st.st_mode & 07777, 0) < 0)
        return tsfig_make_error(w->err, errno, STEP, "chmod `%s`", path);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (utimensat(dst, name, times, AT_SYMLINK_NOFOLLOW) < 0)
        return tsfig_make_error(w->err, errno, STEP, "set the times of `%s`", path);
    return 0;
}

static int copy_tree(struct walk *w, int src, int dst, const char *rel)
{
    int dup_fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
    if (d == NULL) {
        if (dup_fd >= 0)
            close(dup_fd);
        return tsfig_make_error(w->err, errno, STEP, "read `%s`", *rel ? rel : ".");
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        r = copy_entry(w, src, dst, de->d_name, rel);
    }
    if (r == 0 && errno != 0)
        r = tsfig_make_error(w->err, errno, STEP, "read `%s`", *rel ? rel : ".");
    closedir(d);
    return r;
}

/* ---- commands ------------------------------------------------------------------------------------------------ */

static int parse_u32(const char *s, uint32_t *out)
{
    int64_t v;
    if (tsfig_parse_int64(s, &v) < 0 || v < 0 || v > 0xfffffffeLL)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* More fds for deep trees (two per level while copying). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int run_shift(int argc, char **argv, struct walk *w)
{
    tsfig_error_t *err = w->err;
    bool copy = strcmp(argv[1], "copy") == 0;
    uint32_t *fields[] = {&w->map.from_uid, &w->map.from_gid, &w->map.to_uid, &w->map.to_gid, &w->map.size};
    int first = copy ? 4 : 3;
    if (copy) {
        w->map.from_uid = w->map.from_gid = 0;
        for (int i = 0; i < 3; i++)
            if (parse_u32(argv[first + i], fields[i + 2]) < 0)
                return tsfig_make_error(err, EINVAL, STEP, "invalid id `%s`", argv[first + i]);
    } else {
        for (int i = 0; i < 5; i++)
            if (parse_u32(argv[first + i], fields[i]) < 0)
                return tsfig_make_error(err, EINVAL, STEP, "invalid id `%s`", argv[first + i]);
    }
    (void)argc;
    if (w->map.size == 0)
        return tsfig_make_error(err, EINVAL, STEP, "the range is empty");
    raise_nofile();
    umask(0);
    int src cleanup_close = open(argv[2], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0)
        return tsfig_make_error(err, errno, STEP, "open `%s`", argv[2]);
    struct stat st;
    if (fstat(src, &st) < 0)
        return tsfig_make_error(err, errno, STEP, "stat `%s`", argv[2]);
    w->dev = st.st_dev;
    if (!copy) {
        w->root_fd = src;
        if (chown_tree(w, src, "") < 0 || chown_links(w) < 0)
            return -1;
        w->root_fd = -1;
        return chown_fd(w, src, &st, ".");
    }
    if (mkdir(argv[3], 0700) < 0)
        return tsfig_make_error(err, errno, STEP, "mkdir `%s`", argv[3]);
    int dst cleanup_close = open(argv[3], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dst < 0)
        return tsfig_make_error(err, errno, STEP, "open `%s`", argv[3]);
    w->root_fd = dst;
    int r = copy_tree(w, src, dst, "") < 0 ? -1 : finish_copy(w, src, dst, &st, ".");
    w->root_fd = -1;
    return r;
}

int tsfig_cmd_shift(int argc, char **argv)
{
    tsfig_error_t err = {0};
    if (!((argc == 7 && strcmp(argv[1], "copy") == 0) || (argc == 8 && strcmp(argv[1], "chown") == 0))) {
        fprintf(stderr, "usage: tsfig-runtime shift copy SRC DST UID GID SIZE | shift chown DIR FROM_UID FROM_GID "
                        "TO_UID TO_GID SIZE\n");
        return 2;
    }
    struct walk w = {.root_fd = -1, .err = &err};
    int r = run_shift(argc, argv, &w);
    if (r < 0) {
        tsfig_write_error(STDOUT_FILENO, &err);
    } else {
        char line[160];
        int n = snprintf(line, sizeof line, "{\"v\":%d,\"type\":\"done\",\"entries\":%llu,\"skipped\":%llu}\n",
                         TSFIG_PROTOCOL_VERSION, w.entries, w.skipped);
        (void)tsfig_write_all(STDOUT_FILENO, line, (size_t)n);
    }
    for (size_t i = 0; i < w.n_links; i++)
        free(w.links[i].path);
    free(w.links);
    return r < 0 ? 1 : 0;
}

/* Exit 0 when DIR's file system takes an idmapped mount, 1 (with the reason on stdout, an error line) when it does
 * not; the mapping is a throwaway user namespace's. */
int tsfig_cmd_idmap_probe(int argc, char **argv)
{
    tsfig_error_t err = {0};
    if (argc != 2) {
        fprintf(stderr, "usage: tsfig-runtime idmap-probe DIR\n");
        return 2;
    }
    static struct tsfig_conf conf;
    conf.userns_uid = 0;
    conf.userns_gid = 0;
    conf.userns_size = 1;
    if (tsfig_userns_create(&conf, &err) < 0) {
        tsfig_write_error(STDOUT_FILENO, &err);
        return 125;
    }
    int tree = tsfig_userns_idmapped_clone(AT_FDCWD, argv[1], 0, &err);
    if (tree < 0) {
        tsfig_write_error(STDOUT_FILENO, &err);
        return strcmp(err.step, "idmapped mount") == 0 && err.errno_ != ENOENT && err.msg[0] == 'i' ? 1 : 125;
    }
    close(tree);
    return 0;
}
