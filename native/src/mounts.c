#include "mounts.h"

#include "userns.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *const masked_paths[] = {
    "/proc/acpi",        "/proc/asound",      "/proc/interrupts",  "/proc/kcore",
    "/proc/keys",        "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi",
    "/proc/timer_list",  "/proc/timer_stats", "/sys/firmware",     "/sys/devices/virtual/powercap",
    NULL,
};
static const char *const readonly_paths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
                                             NULL};

static const struct {
    const char *name;
    mode_t mode;
    unsigned maj, min;
} devices[] = {
    {"null", 0666, 1, 3}, {"zero", 0666, 1, 5}, {"full", 0666, 1, 7},
    {"random", 0666, 1, 8}, {"urandom", 0666, 1, 9}, {"tty", 0666, 5, 0},
};

static const char *const dev_links[][2] = {
    {"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
    {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},        {"/proc/kcore", "core"},
};

int tsfig_mount_options(const char *opts, unsigned long *flags, unsigned long *prop, char *data, size_t cap,
                        tsfig_error_t *err)
{
    static const struct {
        const char *name;
        unsigned long flag;
        int clear, is_prop;
    } table[] = {
        {"ro", MS_RDONLY, 0, 0},           {"rw", MS_RDONLY, 1, 0},         {"nosuid", MS_NOSUID, 0, 0},
        {"nodev", MS_NODEV, 0, 0},         {"noexec", MS_NOEXEC, 0, 0},     {"suid", MS_NOSUID, 1, 0},
        {"dev", MS_NODEV, 1, 0},           {"exec", MS_NOEXEC, 1, 0},       {"rbind", MS_REC, 0, 0},
        {"bind", 0, 0, 0},                 {"private", MS_PRIVATE, 0, 1},   {"rprivate", MS_PRIVATE | MS_REC, 0, 1},
        {"slave", MS_SLAVE, 0, 1},         {"rslave", MS_SLAVE | MS_REC, 0, 1}, {"shared", MS_SHARED, 0, 1},
        {"rshared", MS_SHARED | MS_REC, 0, 1},
    };
    *flags = 0;
    *prop = 0;
    data[0] = '\0';
    if (opts == NULL)
        return 0;
    char buf[4096];
    if (tsfig_fmt(buf, sizeof buf, "%s", opts) < 0)
        return tsfig_make_error(err, ENAMETOOLONG, "mount", "mount options too long");
    char *save = NULL;
    for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        size_t i;
        for (i = 0; i < sizeof table / sizeof table[0]; i++)
            if (strcmp(table[i].name, o) == 0)
                break;
        if (i == sizeof table / sizeof table[0]) {
            size_t len = strlen(data);
            if (tsfig_fmt(data + len, cap - len, "%s%s", len ? "," : "", o) < 0)
                return tsfig_make_error(err, ENAMETOOLONG, "mount", "mount data too long");
            continue;
        }
        if (table[i].is_prop)
            *prop = table[i].flag;
        else if (table[i].clear)
            *flags &= ~table[i].flag;
        else
            *flags |= table[i].flag;
    }
    return 0;
}

static int mount_fd(const char *src, int fd, const char *type, unsigned long flags, const char *data,
                    const char *what, tsfig_error_t *err)
{
    char p[64], step[128];
    tsfig_fmt(step, sizeof step, "mount %s", what);
    if (mount(src, tsfig_fd_path(p, sizeof p, fd), type, flags, data) < 0)
        return tsfig_make_error(err, errno, step, "mount `%s`", what);
    return 0;
}

/* Mounts onto path inside the rootfs, creating a directory mount point when missing. */
static int mount_in_root(int rootfd, const char *path, const char *src, const char *type, unsigned long flags,
                         const char *data, tsfig_error_t *err)
{
    char step[128];
    tsfig_fmt(step, sizeof step, "mount %s", path);
    cleanup_close int fd = tsfig_mkdir_in_root(rootfd, path, 0755);
    if (fd < 0)
        return tsfig_make_error(err, errno, step, "create mount point `%s`", path);
    return mount_fd(src, fd, type, flags, data, path, err);
}

/* Escapes ':' ',' '\' in an overlay path. */
static int ovl_append(char *buf, size_t cap, size_t *len, const char *s)
{
    for (; *s; s++) {
        if ((*s == ':' || *s == ',' || *s == '\\') && *len + 1 < cap)
            buf[(*len)++] = '\\';
        if (*len + 1 >= cap)
            return -1;
        buf[(*len)++] = *s;
    }
    buf[*len] = '\0';
    return 0;
}

/* Rootless, overlayfs keeps its own attributes (opaque dirs, whiteouts of renamed dirs) in user.overlay.* xattrs:
 * it cannot set trusted.* there, and without this it fails every rmdir-then-mkdir of a lower dir (EIO). */
static int ovl_userxattr(char *buf, size_t cap, size_t *len)
{
    if (!tsfig_in_userns())
        return 0;
    if (*len + sizeof ",userxattr" > cap)
        return -1;
    memcpy(buf + *len, ",userxattr", sizeof ",userxattr");
    *len += sizeof ",userxattr" - 1;
    return 0;
}

static int overlay_data(const struct tsfig_conf *c, size_t skip, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    if (tsfig_fmt(buf, cap, "lowerdir=") < 0)
        return -1;
    len = strlen(buf);
    for (size_t i = 0; i < c->n_lower; i++) {
        if (i > 0 && ovl_append(buf, cap, &len, "") == 0 && len + 1 < cap)
            buf[len++] = ':';
        if (ovl_append(buf, cap, &len, c->lower[i] + skip) < 0)
            return -1;
    }
    const char *parts[][2] = {{",upperdir=", c->upper}, {",workdir=", c->work}};
    for (int i = 0; i < 2; i++) {
        if (len + strlen(parts[i][0]) + 1 >= cap)
            return -1;
        memcpy(buf + len, parts[i][0], strlen(parts[i][0]) + 1);
        len += strlen(parts[i][0]);
        if (ovl_append(buf, cap, &len, parts[i][1] + skip) < 0)
            return -1;
    }
    return ovl_userxattr(buf, cap, &len);
}

/* Longest common directory prefix of every overlay dir, with trailing '/'. */
static size_t common_parent(const struct tsfig_conf *c)
{
    const char *first = c->upper;
    size_t n = strlen(first);
    const char *all[c->n_lower + 2];
    for (size_t i = 0; i < c->n_lower; i++)
        all[i] = c->lower[i];
    all[c->n_lower] = c->upper;
    all[c->n_lower + 1] = c->work;
    for (size_t i = 0; i < c->n_lower + 2; i++) {
        size_t j = 0;
        while (j < n && all[i][j] == first[j])
            j++;
        n = j;
    }
    while (n > 0 && first[n - 1] != '/')
        n--;
    return n;
}

/* With a user namespace: each layer is a detached idmapped clone named by its fd (the image's root-owned files are
 * the container root's; the layers on disk stay as they are, shared with every other container), the upper dir is
 * not idmapped (overlayfs refuses an idmapped upper layer): what the container writes is stored with its host ids,
 * as with Docker's userns-remap, and the upper dir itself, the root directory, belongs to the container's root. */
static int mount_overlay_idmapped(const struct tsfig_conf *c, tsfig_error_t *err)
{
    char data[16384];
    size_t len = 0;
    int fds[c->n_lower + 1];
    int r = -1;
    for (size_t i = 0; i < c->n_lower; i++)
        fds[i] = -1;
    if (lchown(c->upper, c->userns_uid, c->userns_gid) < 0) {
        tsfig_make_error(err, errno, "mount overlay", "chown `%s`", c->upper);
        goto out;
    }
    tsfig_fmt(data, sizeof data, "lowerdir=");
    len = strlen(data);
    for (size_t i = 0; i < c->n_lower; i++) {
        fds[i] = tsfig_userns_idmapped_clone(AT_FDCWD, c->lower[i], 0, err);
        if (fds[i] < 0)
            goto out;
        char p[64];
        if (i > 0 && len + 1 < sizeof data)
            data[len++] = ':';
        if (ovl_append(data, sizeof data, &len, tsfig_fd_path(p, sizeof p, fds[i])) < 0)
            goto toolong;
    }
    const char *parts[][2] = {{",upperdir=", c->upper}, {",workdir=", c->work}};
    for (int i = 0; i < 2; i++) {
        if (len + strlen(parts[i][0]) + 1 >= sizeof data)
            goto toolong;
        memcpy(data + len, parts[i][0], strlen(parts[i][0]) + 1);
        len += strlen(parts[i][0]);
        if (ovl_append(data, sizeof data, &len, parts[i][1]) < 0)
            goto toolong;
    }
    if ((long)strlen(data) >= sysconf(_SC_PAGESIZE) - 1)
        goto toolong;
    if (mount("overlay", c->rootfs, "overlay", 0, data) < 0)
        tsfig_make_error(err, errno, "mount overlay", "mount overlay on `%s` (idmapped layers)", c->rootfs);
    else
        r = 0;
    goto out;
toolong:
    tsfig_make_error(err, E2BIG, "mount overlay", "overlay options exceed a page");
out:
    for (size_t i = 0; i < c->n_lower; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return r;
}

static int mount_overlay(const struct tsfig_conf *c, tsfig_error_t *err)
{
    if (tsfig_userns_enabled(c) && !c->lower_shifted)
        return mount_overlay_idmapped(c, err);
    /* chown-on-copy: the layers are the range's already; the upper dir, the root directory, is its root's */
    if (tsfig_userns_enabled(c) && lchown(c->upper, c->userns_uid, c->userns_gid) < 0)
        return tsfig_make_error(err, errno, "mount overlay", "chown `%s`", c->upper);
    char data[16384];
    long page = sysconf(_SC_PAGESIZE);
    if (overlay_data(c, 0, data, sizeof data) == 0 && (long)strlen(data) < page - 1) {
        if (mount("overlay", c->rootfs, "overlay", 0, data) < 0)
            return tsfig_make_error(err, errno, "mount overlay", "mount overlay on `%s`", c->rootfs);
        return 0;
    }
    size_t skip = common_parent(c);
    char dir[PATH_MAX];
    if (skip <= 1 || tsfig_fmt(dir, sizeof dir, "%.*s", (int)skip, c->upper) < 0)
        return tsfig_make_error(err, E2BIG, "mount overlay", "overlay options exceed a page");
    if (chdir(dir) < 0)
        return tsfig_make_error(err, errno, "mount overlay", "chdir `%s`", dir);
    if (overlay_data(c, skip, data, sizeof data) < 0 || (long)strlen(data) >= page - 1)
        return tsfig_make_error(err, E2BIG, "mount overlay", "overlay options exceed a page");
    int r = mount("overlay", c->rootfs, "overlay", 0, data);
    int saved = errno;
    if (chdir("/") < 0 || r < 0)
        return tsfig_make_error(err, r < 0 ? saved : errno, "mount overlay", "mount overlay on `%s`", c->rootfs);
    return 0;
}

static int is_empty_dir(int fd)
{
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return 0;
    DIR *d = fdopendir(dup_fd);
    if (d == NULL) {
        close(dup_fd);
        return 0;
    }
    int empty = 1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

/* mount.copy: Docker's volume population on first use. */
static int populate_volume(int rootfd, const struct tsfig_mount *m, tsfig_error_t *err)
{
    char step[128];
    tsfig_fmt(step, sizeof step, "mount.copy %s", m->dest);
    cleanup_close int dst = TEMP_FAILURE_RETRY(open(m->source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dst < 0) {
        if (errno == ENOTDIR || errno == ENOENT)
            return 0;
        return tsfig_make_error(err, errno, step, "open `%s`", m->source);
    }
    if (!is_empty_dir(dst))
        return 0;
    cleanup_close int src = tsfig_open_in_root(rootfd, m->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (src < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return 0;
        return tsfig_make_error(err, errno, step, "open `%s` in the rootfs", m->dest);
    }
    if (tsfig_copy_tree(src, dst, err) < 0) {
        tsfig_fmt(err->step, sizeof err->step, "%s", step);
        return -1;
    }
    return 0;
}

/* The object at subpath beneath the directory fd base, as an O_PATH fd, as moby's safepath does for volume subpaths:
 * no symlink is followed (the volume's content is the container's: `sub -> /` must not reach the host) and nothing
 * outside base is reached. The object is pinned by the fd, so a later swap of a component changes nothing. Messages
 * as moby's (`cannot access path ...`, `path concatenation escapes the base directory ...`). */
static int open_subpath(int base, const char *what, const char *subpath, const char *step, tsfig_error_t *err)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    for (int attempt = 0;; attempt++) {
        int fd = (int)TEMP_FAILURE_RETRY(syscall(SYS_openat2, base, subpath, &how, sizeof how));
        if (fd >= 0)
            return fd;
        if (errno == EAGAIN && attempt < 1000)
            continue;
        if (errno == EXDEV)
            return tsfig_make_error(err, 0, step, "path concatenation escapes the base directory, base: %s, subpath: %s",
                                    what, subpath);
        return tsfig_make_error(err, errno, step, "cannot access path %s/%s", what, subpath);
    }
}

/* The kernel's own words on a failed fsconfig/fsmount (the fs context's log: "e tmpfs: Bad value for 'size'"). */
static const char *fs_log(int fsfd, char *buf, size_t cap)
{
    ssize_t n = read(fsfd, buf, cap - 1);
    if (n <= 2)
        return "";
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return buf + 2;
}

/* One fsconfig call: "key=value" sets a string, "key" a flag. */
static int fs_set(int fsfd, const char *option)
{
    char key[256];
    const char *eq = strchr(option, '=');
    if (eq == NULL)
        return (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_FLAG, option, NULL, 0);
    if (tsfig_fmt(key, sizeof key, "%.*s", (int)(eq - option), option) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, key, eq + 1, 0);
}

/* The overlay's lower layers, one `lowerdir+` each (Linux 6.8; a `lowerdir=` string is cut at 256 bytes): the
 * engine's list is escaped for `lowerdir=` (`\:`, `\,`, `\\`), so it is split on unescaped ':' and unescaped. A kernel
 * without `lowerdir+` gets the list whole. */
static int fs_set_lowers(int fsfd, const char *list)
{
    char path[PATH_MAX];
    size_t len = 0;
    int first = 1;
    for (const char *c = list;; c++) {
        if (*c == ':' || *c == '\0') {
            path[len] = '\0';
            if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "lowerdir+", path, 0) < 0) {
                if (first && errno == EINVAL) /* before Linux 6.8 */
                    return (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "lowerdir", list, 0);
                return -1;
            }
            if (*c == '\0')
                return 0;
            len = 0;
            first = 0;
            continue;
        }
        if (*c == '\\' && c[1] != '\0')
            c++;
        if (len + 1 >= sizeof path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        path[len++] = *c;
    }
}

/* A new file system of type as a detached mount (fsopen, fsconfig, fsmount): data is its comma-separated options
 * (overlay: `lowers` is the lower dirs' list), flags the MS_ flags of its mount. Nothing is looked up by path: the
 * caller moves this fd onto the mount point fd it checked, and sets the propagation through it. */
static int new_fs(const char *type, const char *data, const char *lowers, unsigned long flags, const char *step,
                  const char *dest, tsfig_error_t *err)
{
    char log[256], opts[4096];
    cleanup_close int fsfd = (int)syscall(SYS_fsopen, type, FSOPEN_CLOEXEC);
    if (fsfd < 0)
        return tsfig_make_error(err, errno, step, "mount `%s`: open a %s file system", dest, type);
    if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "source", type, 0) < 0) /* as mount(type, ...) named it */
        return tsfig_make_error(err, errno, step, "mount `%s`: source", dest);
    if (lowers != NULL && fs_set_lowers(fsfd, lowers) < 0) {
        int e = errno;
        return tsfig_make_error(err, e, step, "mount `%s`: the image's layers %s", dest, fs_log(fsfd, log, sizeof log));
    }
    if (tsfig_fmt(opts, sizeof opts, "%s", data) < 0)
        return tsfig_make_error(err, ENAMETOOLONG, step, "mount `%s`: options too long", dest);
    char *save = NULL;
    for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (fs_set(fsfd, o) < 0) {
            int e = errno;
            return tsfig_make_error(err, e, step, "mount `%s`: option `%s` %s", dest, o, fs_log(fsfd, log, sizeof log));
        }
    }
    if ((flags & MS_RDONLY) && fs_set(fsfd, "ro") < 0)
        return tsfig_make_error(err, errno, step, "mount `%s`: read-only", dest);
    if (syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int e = errno;
        return tsfig_make_error(err, e, step, "mount `%s` %s", dest, fs_log(fsfd, log, sizeof log));
    }
    unsigned attrs = ((flags & MS_RDONLY) ? MOUNT_ATTR_RDONLY : 0) | ((flags & MS_NOSUID) ? MOUNT_ATTR_NOSUID : 0)
                     | ((flags & MS_NODEV) ? MOUNT_ATTR_NODEV : 0) | ((flags & MS_NOEXEC) ? MOUNT_ATTR_NOEXEC : 0);
    int mnt = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, attrs);
    if (mnt < 0)
        return tsfig_make_error(err, errno, step, "mount `%s`", dest);
    return mnt;
}

/* An image mounted as a volume (compose `type: image`): an overlay of its layers, read-only, no upper dir. The source
 * is the `lowerdir=` value, escaped by the engine, top layer first. With `mount.idmap` in a container with a user
 * namespace, each layer is an idmapped clone named by its fd, as the root file system's layers are (overlayfs refuses
 * an idmapped overlay): the image's root-owned files are the container root's. */
static int new_image_overlay(const struct tsfig_conf *c, const struct tsfig_mount *m, unsigned long flags,
                             const char *step, tsfig_error_t *err)
{
    const char *data = tsfig_in_userns() ? "userxattr" : "";
    if (!(m->idmap && tsfig_userns_enabled(c)))
        return new_fs("overlay", data, m->source, flags, step, m->dest, err);
    size_t n = 1;
    for (const char *s = m->source; *s; s++) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        else if (*s == ':')
            n++;
    }
    int fds[n];
    size_t used = 0, len = 0, plen = 0;
    char list[8192], layer[PATH_MAX], p[64];
    int r = -1;
    list[0] = '\0';
    for (const char *s = m->source;; s++) {
        if (*s == ':' || *s == '\0') {
            layer[plen] = '\0';
            int fd = tsfig_userns_idmapped_clone(AT_FDCWD, layer, 0, err);
            if (fd < 0)
                goto out;
            fds[used++] = fd;
            if (tsfig_fmt(list + len, sizeof list - len, "%s%s", len ? ":" : "", tsfig_fd_path(p, sizeof p, fd)) < 0) {
                tsfig_make_error(err, E2BIG, step, "mount `%s`: too many layers", m->dest);
                goto out;
            }
            len = strlen(list);
            plen = 0;
            if (*s == '\0')
                break;
            continue;
        }
        if (*s == '\\' && s[1] != '\0')
            s++;
        if (plen + 1 >= sizeof layer) {
            tsfig_make_error(err, ENAMETOOLONG, step, "mount `%s`: a layer's path is too long", m->dest);
            goto out;
        }
        layer[plen++] = *s;
    }
    r = new_fs("overlay", data, list, flags, step, m->dest, err);
out:
    for (size_t i = 0; i < used; i++)
        close(fds[i]);
    return r;
}

/* A tmpfs's root directory belongs to the container's root (tmpfs `uid=`/`gid=` are the mounter's, host, ids). */
static int userns_owner(const struct tsfig_conf *c, char *data, size_t cap, tsfig_error_t *err)
{
    if (!tsfig_userns_enabled(c))
        return 0;
    size_t len = strlen(data);
    if (tsfig_fmt(data + len, cap - len, "%suid=%u,gid=%u", len ? "," : "", c->userns_uid, c->userns_gid) < 0)
        return tsfig_make_error(err, E2BIG, "mount", "tmpfs options too long");
    return 0;
}

/* A mount point below an idmapped mount (a volume holding another volume's mount point): host root's ids have no
 * mapping there (EOVERFLOW), so it is made as the container's root, with the range's first ids as the file system ids
 * and the capabilities it had set again (changing the fsuid from 0 clears the file ones from the effective set), then
 * all as they were: it is stored as the container's 0:0, as a mount point the container's root made. */
static int ensure_as_container_root(const struct tsfig_conf *c, int rootfd, const char *dest, int is_dir)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct before[2], raised[2];
    if (syscall(SYS_capget, &hdr, before) < 0)
        return -1;
    memcpy(raised, before, sizeof raised);
    int old_gid = setfsgid(c->userns_gid);
    int old_uid = setfsuid(c->userns_uid);
    int fd = syscall(SYS_capset, &hdr, raised) < 0 ? -1 : tsfig_ensure_in_root(rootfd, dest, is_dir);
    int saved = errno;
    (void)setfsuid((uid_t)old_uid);
    (void)setfsgid((gid_t)old_gid);
    if (syscall(SYS_capset, &hdr, before) < 0 && fd >= 0) {
        saved = errno;
        close(fd);
        fd = -1;
    }
    errno = saved;
    return fd;
}

static int user_mount(const struct tsfig_conf *c, int rootfd, const struct tsfig_mount *m, tsfig_error_t *err)
{
    unsigned long flags, prop;
    char data[4096], step[128], p[64];
    tsfig_fmt(step, sizeof step, "mount %s", m->dest);
    if (tsfig_mount_options(m->options, &flags, &prop, data, sizeof data, err) < 0)
        return -1;
    if (strcmp(m->type, "tmpfs") == 0 && userns_owner(c, data, sizeof data, err) < 0)
        return -1;
    int is_bind = strcmp(m->type, "bind") == 0, is_dir = 1;
    cleanup_close int src = -1;
    if (is_bind) {
        struct stat st;
        src = TEMP_FAILURE_RETRY(open(m->source, O_PATH | O_CLOEXEC));
        if (src < 0 || fstat(src, &st) < 0)
            return tsfig_make_error(err, errno, step, "stat bind source `%s`", m->source);
        if (m->subpath != NULL) {
            int sub = open_subpath(src, m->source, m->subpath, step, err);
            if (sub < 0)
                return -1;
            close(src);
            src = sub;
            if (fstat(src, &st) < 0)
                return tsfig_make_error(err, errno, step, "stat `%s/%s`", m->source, m->subpath);
        }
        is_dir = S_ISDIR(st.st_mode);
    }
    cleanup_close int fd = tsfig_ensure_in_root(rootfd, m->dest, is_dir);
    if (fd < 0 && errno == EOVERFLOW && tsfig_userns_enabled(c))
        fd = ensure_as_container_root(c, rootfd, m->dest, is_dir);
    if (fd < 0)
        return tsfig_make_error(err, errno, step, "create mount point `%s`", m->dest);
    /* Each mount is a detached one (a bind's copy, a new tmpfs or overlay) moved onto the mount point fd; that mount's
     * fd is then what gets its propagation and options. Looking the destination up again instead let a container
     * sharing the volume that holds it rename the mount point in between, so that the read-only remount or the
     * propagation landed on another mount (CVE-2021-30465 shape). */
    cleanup_close int tree = -1;
    if (is_bind) {
        tree = (int)syscall(SYS_open_tree, src, "",
                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | ((flags & MS_REC) ? AT_RECURSIVE : 0));
        if (tree < 0)
            return tsfig_make_error(err, errno, step, "mount `%s`", m->dest);
        /* a volume or a file of the engine: its stored ids are the container's (the same volume serves every
         * container, with or without a user namespace); a host path keeps the host's ids, as with Docker */
        if (m->idmap && tsfig_userns_enabled(c) && tsfig_userns_idmap(tree, m->dest, err) < 0)
            return -1;
        if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return tsfig_make_error(err, errno, step, "mount `%s`", m->dest);
    } else if (strcmp(m->type, "overlay") == 0) {
        tree = new_image_overlay(c, m, (flags & ~MS_REC) | MS_RDONLY, step, err);
        if (tree < 0 || syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return tree < 0 ? -1 : tsfig_make_error(err, errno, step, "mount `%s`", m->dest);
        if (m->subpath != NULL) {
            /* Only a directory of the image (`image.subpath`): a clone of it replaces the whole image's overlay,
             * which is detached once the clone is taken; both through the overlay's own fd. */
            cleanup_close int whole = tree;
            tree = -1;
            cleanup_close int sub = open_subpath(whole, "<image>", m->subpath, step, err);
            if (sub < 0)
                return -1;
            struct stat st;
            if (fstat(sub, &st) < 0)
                return tsfig_make_error(err, errno, step, "stat `%s`", m->subpath);
            if (!S_ISDIR(st.st_mode))
                return tsfig_make_error(err, ENOTDIR, step, "image subpath %s of a multi-layer image must be a directory",
                                        m->subpath);
            tree = (int)syscall(SYS_open_tree, sub, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
            if (tree < 0)
                return tsfig_make_error(err, errno, step, "clone `%s`", m->subpath);
            if (umount2(tsfig_fd_path(p, sizeof p, whole), MNT_DETACH) < 0)
                return tsfig_make_error(err, errno, step, "detach the image at `%s`", m->dest);
            if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return tsfig_make_error(err, errno, step, "mount `%s`", m->dest);
        }
    } else {
        /* a tmpfs: made detached and moved onto the checked mount point, as a bind is */
        tree = new_fs("tmpfs", data, NULL, flags & ~MS_REC, step, m->dest, err);
        if (tree < 0 || syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            return tree < 0 ? -1 : tsfig_make_error(err, errno, step, "mount `%s`", m->dest);
    }
    /* Every mount is now the fd tree, and that fd (not the destination's path, which a container sharing the
     * volume that holds it could have swapped meanwhile) gets the propagation and, for a bind, the options. */
    if (mount(NULL, tsfig_fd_path(p, sizeof p, tree), NULL, prop ? prop : (MS_PRIVATE | MS_REC), NULL) < 0)
        return tsfig_make_error(err, errno, step, "set propagation of `%s`", m->dest);
    unsigned long attrs = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (is_bind && attrs && mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | attrs, NULL) < 0)
        return tsfig_make_error(err, errno, step, "remount `%s` with its options", m->dest);
    return 0;
}

/* In a user namespace mknod is refused (EPERM), as the kernel allows device nodes only to the initial namespace's
 * CAP_MKNOD: the host's node is bind-mounted onto an empty file instead (runc and crun do the same rootless). The
 * source is opened without following links and checked to be the expected character device before it is bound, so
 * the container never gets anything else under that name. */
static int bind_device(int dev, const char *name, dev_t want, tsfig_error_t *err)
{
    char host[64], src[64], dst[64];
    struct stat st;
    tsfig_fmt(host, sizeof host, "/dev/%s", name);
    cleanup_close int from = TEMP_FAILURE_RETRY(open(host, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (from < 0 || fstat(from, &st) < 0)
        return tsfig_make_error(err, errno, "mount /dev", "open the host's `%s`", host);
    if (!S_ISCHR(st.st_mode) || st.st_rdev != want)
        return tsfig_make_error(err, EINVAL, "mount /dev", "the host's `%s` is not the expected device", host);
    cleanup_close int to = TEMP_FAILURE_RETRY(openat(dev, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (to < 0)
        return tsfig_make_error(err, errno, "mount /dev", "create mount point `/dev/%s`", name);
    if (mount(tsfig_fd_path(src, sizeof src, from), tsfig_fd_path(dst, sizeof dst, to), NULL, MS_BIND, NULL) < 0)
        return tsfig_make_error(err, errno, "mount /dev", "bind the host's `%s`", host);
    return 0;
}

static int make_devices(int rootfd, tsfig_error_t *err)
{
    cleanup_close int dev = tsfig_open_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (dev < 0)
        return tsfig_make_error(err, errno, "mount /dev", "open `/dev`");
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        dev_t want = makedev(devices[i].maj, devices[i].min);
        struct stat st;
        int bound = 0;
        if (mknodat(dev, devices[i].name, S_IFCHR | devices[i].mode, want) < 0) {
            if (errno != EPERM)
                return tsfig_make_error(err, errno, "mknod", "mknod `/dev/%s`", devices[i].name);
            if (bind_device(dev, devices[i].name, want, err) < 0)
                return -1;
            bound = 1;
        }
        errno = 0;
        if (fstatat(dev, devices[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != want)
            return tsfig_make_error(err, errno ? errno : EINVAL, "mknod", "verify `/dev/%s`", devices[i].name);
        /* a bound node keeps the host's mode (0666 for these); its owner is the host's root, unmapped here */
        if (!bound && fchmodat(dev, devices[i].name, devices[i].mode, 0) < 0)
            return tsfig_make_error(err, errno, "mknod", "chmod `/dev/%s`", devices[i].name);
    }
    for (size_t i = 0; i < sizeof dev_links / sizeof dev_links[0]; i++)
        if (symlinkat(dev_links[i][0], dev, dev_links[i][1]) < 0)
            return tsfig_make_error(err, errno, "mount /dev", "symlink `/dev/%s`", dev_links[i][1]);
    if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 01777) < 0 || mkdirat(dev, "mqueue", 0755) < 0)
        return tsfig_make_error(err, errno, "mount /dev", "create `/dev` directories");
    return 0;
}

static int mount_dev(const struct tsfig_conf *c, int rootfd, tsfig_error_t *err)
{
    char devdata[128] = "mode=755,size=65536k", pts[128], shm[128];
    if (userns_owner(c, devdata, sizeof devdata, err) < 0)
        return -1;
    if (mount_in_root(rootfd, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, devdata, err) < 0)
        return -1;
    if (make_devices(rootfd, err) < 0)
        return -1;
    /* tty is group 5 of the container: with a user namespace, the host's id of it */
    tsfig_fmt(pts, sizeof pts, "newinstance,ptmxmode=0666,mode=0620,gid=%u",
              tsfig_userns_enabled(c) ? c->userns_gid + 5 : 5);
    if (mount_in_root(rootfd, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, pts, err) < 0)
        return -1;
    if (c->shm_size > 0)
        tsfig_fmt(shm, sizeof shm, "mode=1777,size=%lld", (long long)c->shm_size);
    else
        tsfig_fmt(shm, sizeof shm, "mode=1777,size=65536k");
    if (userns_owner(c, shm, sizeof shm, err) < 0)
        return -1;
    if (mount_in_root(rootfd, "/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, shm, err) < 0)
        return -1;
    return mount_in_root(rootfd, "/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
}

static int setattr_ro_recursive(int fd, tsfig_error_t *err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
        return tsfig_make_error(err, errno, "mount /sys", "make `/sys` read-only");
    return 0;
}

/* /sys/fs/cgroup: a tmpfs holding each v1 hierarchy (seen from the container's cgroup namespace), read-only. */
static int mount_cgroups(int rootfd, int ro, tsfig_error_t *err)
{
    unsigned long f = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
        return mount_in_root(rootfd, "/sys/fs/cgroup", "cgroup2", "cgroup2", f | (ro ? MS_RDONLY : 0), NULL, err);
    if (mount_in_root(rootfd, "/sys/fs/cgroup", "tmpfs", "tmpfs", f, "mode=755", err) < 0)
        return -1;
    FILE *mf = fopen("/proc/self/mounts", "re");
    if (mf == NULL)
        return tsfig_make_error(err, errno, "mount /sys/fs/cgroup", "open `/proc/self/mounts`");
    char line[4096];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, mf)) {
        char src[256], dst[1024], type[64], opts[1024], keep[1024] = "", path[1100];
        if (sscanf(line, "%255s %1023s %63s %1023s", src, dst, type, opts) != 4 || strcmp(type, "cgroup") != 0
            || strncmp(dst, "/sys/fs/cgroup/", 15) != 0 || strchr(dst + 15, '/') != NULL)
            continue;
        char *save = NULL;
        for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
            static const char *const skip[] = {"rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime",
                                               "clone_children", "xattr", NULL};
            int s = 0;
            for (int i = 0; skip[i]; i++)
                s |= strcmp(o, skip[i]) == 0;
            if (s || strncmp(o, "release_agent", 13) == 0)
                continue;
            size_t l = strlen(keep);
            tsfig_fmt(keep + l, sizeof keep - l, "%s%s", l ? "," : "", o);
        }
        tsfig_fmt(path, sizeof path, "/sys/fs/cgroup/%s", dst + 15);
        rc = mount_in_root(rootfd, path, "cgroup", "cgroup", f | (ro ? MS_RDONLY : 0), keep, err);
    }
    fclose(mf);
    if (rc < 0)
        return -1;
    cleanup_close int fd = tsfig_open_in_root(rootfd, "/sys/fs/cgroup", O_PATH | O_NOFOLLOW, 0);
    char p[64];
    if (ro && (fd < 0 || mount(NULL, tsfig_fd_path(p, sizeof p, fd), NULL, MS_REMOUNT | MS_RDONLY | f, "mode=755") < 0))
        return tsfig_make_error(err, errno, "mount /sys/fs/cgroup", "remount `/sys/fs/cgroup` read-only");
    return 0;
}

static int mount_sys(const struct tsfig_conf *c, int rootfd, tsfig_error_t *err)
{
    unsigned long ro = c->privileged ? 0 : MS_RDONLY;
    if (strcmp(c->netns, "host") == 0) {
        cleanup_close int fd = tsfig_mkdir_in_root(rootfd, "/sys", 0755);
        if (fd < 0)
            return tsfig_make_error(err, errno, "mount /sys", "create mount point `/sys`");
        if (mount_fd("/sys", fd, NULL, MS_BIND | MS_REC, NULL, "/sys", err) < 0)
            return -1;
        cleanup_close int top = tsfig_open_in_root(rootfd, "/sys", O_PATH | O_NOFOLLOW, 0);
        if (top < 0)
            return tsfig_make_error(err, errno, "mount /sys", "reopen `/sys`");
        if (ro && setattr_ro_recursive(top, err) < 0)
            return -1;
    } else if (mount_in_root(rootfd, "/sys", "sysfs", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | ro, NULL, err) < 0) {
        return -1;
    }
    return mount_cgroups(rootfd, !c->privileged, err);
}

static int pivot(const char *rootfs, tsfig_error_t *err)
{
    cleanup_close int oldroot = TEMP_FAILURE_RETRY(open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    cleanup_close int newroot = TEMP_FAILURE_RETRY(open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (oldroot < 0 || newroot < 0)
        return tsfig_make_error(err, errno, "pivot_root", "open `%s`", rootfs);
    if (fchdir(newroot) < 0)
        return tsfig_make_error(err, errno, "pivot_root", "chdir `%s`", rootfs);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return tsfig_make_error(err, errno, "pivot_root", "pivot_root `%s`", rootfs);
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        return tsfig_make_error(err, errno, "pivot_root", "make old root slave");
    if (umount2(".", MNT_DETACH) < 0)
        return tsfig_make_error(err, errno, "pivot_root", "unmount old root");
    if (chdir("/") < 0)
        return tsfig_make_error(err, errno, "pivot_root", "chdir `/`");
    return 0;
}

int tsfig_mounts_setup(const struct tsfig_conf *c, tsfig_error_t *err)
{
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        return tsfig_make_error(err, errno, "mount propagation", "make `/` rslave");
    if (mount_overlay(c, err) < 0)
        return -1;
    {
        cleanup_close int ovl = TEMP_FAILURE_RETRY(open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (ovl < 0)
            return tsfig_make_error(err, errno, "mount overlay", "open `%s`", c->rootfs);
        for (size_t i = 0; i < c->n_mounts; i++)
            if (c->mounts[i].copy && populate_volume(ovl, &c->mounts[i], err) < 0)
                return -1;
    }
    if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return tsfig_make_error(err, errno, "mount rootfs", "bind `%s` onto itself", c->rootfs);
    cleanup_close int rootfd = TEMP_FAILURE_RETRY(open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return tsfig_make_error(err, errno, "mount rootfs", "open `%s`", c->rootfs);
    {
        cleanup_close int procfd = tsfig_mkdir_in_root(rootfd, "/proc", 0755);
        struct stat st;
        if (procfd < 0 || fstat(procfd, &st) < 0 || !S_ISDIR(st.st_mode))
            return tsfig_make_error(err, errno ? errno : ENOTDIR, "mount /proc", "`/proc` is not a directory");
        if (mount_fd("proc", procfd, "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, "/proc", err) < 0)
            return -1;
    }
    if (mount_dev(c, rootfd, err) < 0 || mount_sys(c, rootfd, err) < 0)
        return -1;
    for (size_t i = 0; i < c->n_mounts; i++)
        if (user_mount(c, rootfd, &c->mounts[i], err) < 0)
            return -1;
    return pivot(c->rootfs, err);
}

/* Binds the object of the O_PATH fd src onto the object of the O_PATH fd dst with the new mount API: neither is looked
 * up again by path, so what is bound, and where, are the inodes that were checked (CVE-2021-30465 and CVE-2025-31133
 * both swapped a path between a check and the mount that re-resolved it). attrs (MOUNT_ATTR_*) are set on the detached
 * copy before it is attached, recursively: there is no window where it is mounted without them. */
static int bind_checked(int src, int dst, uint64_t attrs)
{
    cleanup_close int tree = (int)syscall(SYS_open_tree, src, "",
                                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0)
        return -1;
    struct mount_attr attr = {.attr_set = attrs};
    if (attrs && syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
        return -1;
    return (int)syscall(SYS_move_mount, tree, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/* An O_PATH fd of path inside the root, the last component not followed (nor any magic link): the object the caller
 * checks and then mounts on. A symlink there is refused: under /proc and /sys there is none unless a volume put it. */
static int open_target(int rootfd, const char *path, const char *step, struct stat *st, tsfig_error_t *err)
{
    int fd = tsfig_open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0)
        return errno == ENOENT ? -2 : tsfig_make_error(err, errno, step, "open `%s`", path);
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return tsfig_make_error(err, e, step, "stat `%s`", path);
    }
    if (S_ISLNK(st->st_mode)) {
        close(fd);
        return tsfig_make_error(err, ELOOP, step, "`%s` is a symbolic link", path);
    }
    return fd;
}

/* The container's /dev/null, opened once and checked to be the null character device itself, not a symlink to one
 * (nor a magic link such as /proc/self/fd/0, the monitor's /dev/null of the host): masks bind this fd. */
static int open_null(int rootfd, tsfig_error_t *err)
{
    struct stat st;
    int fd = open_target(rootfd, "/dev/null", "mask", &st, err);
    if (fd == -2) {
        errno = ENOENT;
        return tsfig_make_error(err, errno, "mask", "open `/dev/null`");
    }
    if (fd < 0)
        return -1;
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
        close(fd);
        return tsfig_make_error(err, EINVAL, "mask", "`/dev/null` is not the null device");
    }
    return fd;
}

static int mask_path(int rootfd, int nullfd, const char *path, tsfig_error_t *err)
{
    char step[128], p[64];
    tsfig_fmt(step, sizeof step, "mask %s", path);
    struct stat st;
    cleanup_close int fd = open_target(rootfd, path, step, &st, err);
    if (fd == -2)
        return 0;
    if (fd < 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        if (mount("tmpfs", tsfig_fd_path(p, sizeof p, fd), "tmpfs", MS_RDONLY, "nr_inodes=1") < 0)
            return tsfig_make_error(err, errno, step, "mask `%s`", path);
        return 0;
    }
    if (bind_checked(nullfd, fd, 0) < 0)
        return tsfig_make_error(err, errno, step, "mask `%s`", path);
    return 0;
}

static int readonly_path(int rootfd, const char *path, tsfig_error_t *err)
{
    char step[128];
    tsfig_fmt(step, sizeof step, "readonly %s", path);
    struct stat st;
    cleanup_close int fd = open_target(rootfd, path, step, &st, err);
    if (fd == -2)
        return 0;
    if (fd < 0)
        return -1;
    uint64_t attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (bind_checked(fd, fd, attrs) < 0)
        return tsfig_make_error(err, errno, step, "remount `%s` read-only", path);
    return 0;
}

/* Without -i the container's stdin is the monitor's, the host's /dev/null: through it a container's root could chmod
 * or chown the host's node (`chmod 0640 /proc/self/fd/0` took /dev/null away from every other user). Any stdio fd on
 * a null device other than the container's own moves to the container's own; with none usable (a volume over /dev)
 * stdin becomes an empty pipe (reads see end of file, as from /dev/null). */
static int own_stdio_null(tsfig_error_t *err)
{
    cleanup_close int own = tsfig_open_own_null();
    struct stat mine, st;
    if (own >= 0 && fstat(own, &mine) < 0)
        return tsfig_make_error(err, errno, "stdio", "stat `/dev/null`");
    for (int fd = 0; fd < 3; fd++) {
        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
            continue;
        if (own >= 0 && st.st_dev == mine.st_dev && st.st_ino == mine.st_ino)
            continue;
        if (own >= 0) {
            if (dup2(own, fd) < 0)
                return tsfig_make_error(err, errno, "stdio", "move fd %d to the container's `/dev/null`", fd);
            continue;
        }
        int p[2];
        if (fd != 0)
            return tsfig_make_error(err, ENODEV, "stdio", "the container has no usable `/dev/null` for fd %d", fd);
        if (pipe2(p, 0) < 0 || dup2(p[0], 0) < 0)
            return tsfig_make_error(err, errno, "stdio", "replace stdin");
        close(p[0]);
        close(p[1]);
    }
    return 0;
}

int tsfig_mounts_finalize(const struct tsfig_conf *c, tsfig_error_t *err)
{
    if (own_stdio_null(err) < 0)
        return -1;
    if (c->readonly && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        return tsfig_make_error(err, errno, "readonly rootfs", "remount `/` read-only");
    if (c->privileged)
        return 0;
    cleanup_close int rootfd = TEMP_FAILURE_RETRY(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return tsfig_make_error(err, errno, "masked paths", "open `/`");
    for (int i = 0; readonly_paths[i]; i++)
        if (readonly_path(rootfd, readonly_paths[i], err) < 0)
            return -1;
    cleanup_close int nullfd = open_null(rootfd, err);
    if (nullfd < 0)
        return -1;
    for (int i = 0; masked_paths[i]; i++)
        if (mask_path(rootfd, nullfd, masked_paths[i], err) < 0)
            return -1;
    glob_t g;
    if (glob("/sys/devices/system/cpu/cpu*/thermal_throttle", GLOB_NOSORT, NULL, &g) == 0) {
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++)
            rc = mask_path(rootfd, nullfd, g.gl_pathv[i], err);
        globfree(&g);
        if (rc < 0)
            return -1;
    }
    return 0;
}
