/* Builds Docker's default seccomp profile (seccomp_profile.h) with libseccomp and loads it, following moby's
 * setupSeccomp (which rules apply) and runc's libcontainer/seccomp (how they become a filter). */
#include "seccomp.h"
#include "conf.h"
#include "seccomp_profile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define STEP "seccomp"
#define MAX_SYSCALL_ARGS 6

static void cleanup_filter(scmp_filter_ctx *ctx)
{
    if (*ctx != NULL)
        seccomp_release(*ctx);
}
#define cleanup_seccomp __attribute__((cleanup(cleanup_filter)))

/* Go's GOARCH-derived names (moby goToNative), which "arches" conditions use, for libseccomp's native arch. */
static const char *native_arch_name(void)
{
    switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64:
        return "amd64";
    case SCMP_ARCH_X86:
        return "x86";
    case SCMP_ARCH_X32:
        return "x32";
    case SCMP_ARCH_AARCH64:
        return "arm64";
    case SCMP_ARCH_ARM:
        return "arm";
    case SCMP_ARCH_PPC64LE:
        return "ppc64le";
    case SCMP_ARCH_PPC64:
        return "ppc64";
    case SCMP_ARCH_PPC:
        return "ppc";
    case SCMP_ARCH_S390X:
        return "s390x";
    case SCMP_ARCH_S390:
        return "s390";
    case SCMP_ARCH_RISCV64:
        return "riscv64";
    case SCMP_ARCH_MIPS64:
        return "mips64";
    case SCMP_ARCH_MIPS64N32:
        return "mips64n32";
    case SCMP_ARCH_MIPSEL64:
        return "mipsel64";
    case SCMP_ARCH_MIPSEL64N32:
        return "mips3l64n32";
    case SCMP_ARCH_MIPSEL:
        return "mipsel";
    default:
        return "";
    }
}

struct kernel_version {
    int major;
    int minor;
};

/* An unparsable release counts as 0.0: minKernel rules are then left out (the stricter filter). */
static struct kernel_version running_kernel(void)
{
    struct kernel_version v = { 0, 0 };
    struct utsname u;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &v.major, &v.minor) != 2)
        v.major = v.minor = 0;
    return v;
}

static bool arch_listed(const char *const *arches, const char *arch)
{
    for (; *arches != NULL; arches++)
        if (strcmp(*arches, arch) == 0)
            return true;
    return false;
}

static bool kernel_at_least(struct kernel_version k, int major, int minor)
{
    return k.major > major || (k.major == major && k.minor >= minor);
}

/* moby setupSeccomp: excludes drop a rule if any condition holds; includes require all of theirs. */
static bool rule_applies(const struct tsfig_seccomp_rule *rule, uint64_t caps, const char *arch,
                         struct kernel_version kernel)
{
    const struct tsfig_seccomp_cond *ex = &rule->excludes, *in = &rule->includes;

    if (ex->arches != NULL && arch_listed(ex->arches, arch))
        return false;
    if ((ex->caps & caps) != 0)
        return false;
    if (ex->min_kernel_major != 0 && kernel_at_least(kernel, ex->min_kernel_major, ex->min_kernel_minor))
        return false;
    if (in->arches != NULL && !arch_listed(in->arches, arch))
        return false;
    if ((in->caps & caps) != in->caps)
        return false;
    if (in->min_kernel_major != 0 && !kernel_at_least(kernel, in->min_kernel_major, in->min_kernel_minor))
        return false;
    return true;
}

static struct scmp_arg_cmp make_condition(const struct tsfig_seccomp_arg *arg)
{
    struct scmp_arg_cmp c = { .arg = arg->index, .op = arg->op, .datum_a = arg->value, .datum_b = arg->value_two };
    return c;
}

/* runc: conditions go into one rule (AND) unless one argument is compared twice; then each is its own rule (OR). */
static bool repeats_an_argument(const struct tsfig_seccomp_rule *rule)
{
    unsigned int seen = 0;
    for (size_t i = 0; i < rule->n_args; i++) {
        unsigned int bit = 1u << rule->args[i].index;
        if (seen & bit)
            return true;
        seen |= bit;
    }
    return false;
}

static int add_syscall(scmp_filter_ctx ctx, const struct tsfig_seccomp_rule *rule, const char *name, int nr,
                       tsfig_error_t *err)
{
    struct scmp_arg_cmp conds[MAX_SYSCALL_ARGS];
    int rc = 0;

    if (rule->n_args > MAX_SYSCALL_ARGS)
        return tsfig_make_error(err, EINVAL, STEP, "too many argument conditions for `%s`", name);
    for (size_t i = 0; i < rule->n_args; i++) {
        if (rule->args[i].index >= MAX_SYSCALL_ARGS)
            return tsfig_make_error(err, EINVAL, STEP, "bad argument index for `%s`", name);
        conds[i] = make_condition(&rule->args[i]);
    }
    if (rule->n_args > 0 && repeats_an_argument(rule)) {
        for (size_t i = 0; i < rule->n_args && rc == 0; i++)
            rc = seccomp_rule_add_array(ctx, rule->action, nr, 1, &conds[i]);
    } else {
        rc = seccomp_rule_add_array(ctx, rule->action, nr, (unsigned int)rule->n_args, conds);
    }
    if (rc < 0)
        return tsfig_make_error(err, -rc, STEP, "add seccomp rule for `%s`", name);
    return 0;
}

static int add_rule(scmp_filter_ctx ctx, const struct tsfig_seccomp_rule *rule, tsfig_error_t *err)
{
    /* runc skips rules whose action is the default one; libseccomp would reject them. */
    if (rule->action == TSFIG_SECCOMP_DEFAULT_ACTION)
        return 0;
    for (const char *const *name = rule->names; *name != NULL; name++) {
        int nr = seccomp_syscall_resolve_name(*name);
        if (nr == __NR_SCMP_ERROR)
            continue; /* unknown to this libseccomp: Docker ignores it too */
        if (add_syscall(ctx, rule, *name, nr, err) < 0)
            return -1;
    }
    return 0;
}

/* archMap: the native arch is already in a new filter; add the sub-architectures Docker pairs with it. */
static int add_arches(scmp_filter_ctx ctx, tsfig_error_t *err)
{
    uint32_t native = seccomp_arch_native();
    for (size_t i = 0; i < sizeof tsfig_seccomp_archmap / sizeof tsfig_seccomp_archmap[0]; i++) {
        if (tsfig_seccomp_archmap[i].arch != native)
            continue;
        for (const uint32_t *sub = tsfig_seccomp_archmap[i].sub_arches; *sub != 0; sub++) {
            int rc = seccomp_arch_add(ctx, *sub);
            if (rc < 0 && rc != -EEXIST)
                return tsfig_make_error(err, -rc, STEP, "add seccomp architecture 0x%x", *sub);
        }
        break;
    }
    return 0;
}

static int set_attributes(scmp_filter_ctx ctx, tsfig_error_t *err)
{
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* runc: leave no_new_privs to the caller */
    if (rc < 0)
        return tsfig_make_error(err, -rc, STEP, "disable seccomp no_new_privs attribute");
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1); /* report the kernel's errno from seccomp_load */
    if (rc < 0)
        return tsfig_make_error(err, -rc, STEP, "enable seccomp raw return codes");
    /* runc enables the binary-tree optimization for rulesets this long; older libseccomp lacks it (not fatal). */
    (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    return 0;
}

static int build_filter(scmp_filter_ctx ctx, uint64_t caps, tsfig_error_t *err)
{
    const char *arch = native_arch_name();
    struct kernel_version kernel = running_kernel();

    if (set_attributes(ctx, err) < 0 || add_arches(ctx, err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof tsfig_seccomp_rules / sizeof tsfig_seccomp_rules[0]; i++) {
        const struct tsfig_seccomp_rule *rule = &tsfig_seccomp_rules[i];
        if (rule_applies(rule, caps, arch, kernel) && add_rule(ctx, rule, err) < 0)
            return -1;
    }
    return 0;
}

static int load_error(int e, tsfig_error_t *err)
{
    if (e == EACCES)
        return tsfig_make_error(err, EACCES, STEP,
                                "load seccomp filter: needs no_new_privs or CAP_SYS_ADMIN; load it before dropping "
                                "capabilities or set no-new-privileges");
    return tsfig_make_error(err, e, STEP, "load seccomp filter");
}

static int load_filter(scmp_filter_ctx ctx, tsfig_error_t *err)
{
    int rc = seccomp_load(ctx);
    return rc < 0 ? load_error(-rc, err) : 0;
}

/* ---- compiled-filter cache -------------------------------------------------------------------------------------
 * Building the filter with libseccomp costs ~17 ms of CPU per container. The program only depends on what the key
 * below names, so it is built once and kept, like crun's .cache/seccomp, in /var/cache/tsfig/seccomp/<key hash>.bpf:
 *   header (magic, key length, instruction count, FNV-1a 64 of key and program), the key text itself (compared in
 *   full: a hash collision is a miss, never a wrong filter), padded to 8 bytes, then the sock_filter array.
 * The file is only ever read by tsfig_seccomp_prepare_default, on the host side before the container's root is
 * entered (a path lookup after pivot_root or setns would resolve inside the container, which could plant a filter);
 * tsfig_seccomp_load_default itself never touches a file. Files are written to a temp name and renamed, never
 * fsync'd: a torn file fails the size or checksum test and is rebuilt. Any problem at all means "build it". */

#define CACHE_PARENT "/var/cache/tsfig"
#define CACHE_SUBDIR "seccomp"
#define CACHE_FORMAT 1
#define CACHE_MAGIC "TSFBPF\0\1"
#define CACHE_KEY_MAX 2048
#define CACHE_MAX_AGE_S (24 * 3600) /* entries of other keys older than this are pruned on a miss */

struct cache_header {
    char magic[8];
    uint32_t key_len;
    uint32_t n_insns;
    uint64_t checksum;
};

/* The filter prepared for this process (and inherited by its children). */
static struct {
    struct sock_filter *insns;
    unsigned short len;
    uint64_t caps;
    bool from_cache;
} prepared;

/* snprintf that says whether everything fitted: 0, or -1. */
__attribute__((format(printf, 3, 4))) static int fmt(char *buf, size_t cap, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, cap, format, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return s == NULL ? fnv1a(h, "\xff", 1) : fnv1a(h, s, strlen(s) + 1);
}

static uint64_t fnv_cond(uint64_t h, const struct tsfig_seccomp_cond *c)
{
    for (const char *const *a = c->arches; a != NULL && *a != NULL; a++)
        h = fnv_str(h, *a);
    h = fnv_str(h, NULL);
    h = fnv1a(h, &c->caps, sizeof c->caps);
    h = fnv1a(h, &c->min_kernel_major, sizeof c->min_kernel_major);
    return fnv1a(h, &c->min_kernel_minor, sizeof c->min_kernel_minor);
}

/* Everything in seccomp_profile.h, so an edited table can never meet an old cache entry. */
static uint64_t tables_hash(void)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < sizeof tsfig_seccomp_rules / sizeof tsfig_seccomp_rules[0]; i++) {
        const struct tsfig_seccomp_rule *r = &tsfig_seccomp_rules[i];
        for (const char *const *n = r->names; *n != NULL; n++)
            h = fnv_str(h, *n);
        h = fnv_str(h, NULL);
        h = fnv1a(h, &r->action, sizeof r->action);
        for (size_t j = 0; j < r->n_args; j++) {
            const struct tsfig_seccomp_arg *a = &r->args[j];
            uint64_t v[4] = { a->index, (uint64_t)a->op, a->value, a->value_two };
            h = fnv1a(h, v, sizeof v);
        }
        h = fnv_cond(fnv_cond(h, &r->includes), &r->excludes);
    }
    h = fnv1a(h, tsfig_seccomp_archmap, sizeof tsfig_seccomp_archmap);
    uint32_t def = TSFIG_SECCOMP_DEFAULT_ACTION;
    return fnv1a(h, &def, sizeof def);
}

static int file_identity(const char *path, char *buf, size_t cap)
{
    struct stat st;
    if (path == NULL || stat(path, &st) < 0)
        return -1;
    return fmt(buf, cap, "%s %llu:%llu:%lld:%lld.%09ld", path, (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec);
}

/* The runtime binary's identity. Run from its sealed copy (sealed.c), /proc/self/exe is a memfd of its own per copy:
 * the copy's name carries the identity of the file it was copied from, which is what the cache keys on. */
static int exe_identity(char *buf, size_t cap)
{
    static const char prefix[] = "/memfd:tsfig-runtime:";
    char link[256];
    ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
    if (n > 0) {
        link[n] = '\0';
        if (strncmp(link, prefix, sizeof prefix - 1) == 0) {
            char *end = strstr(link, " (deleted)");
            if (end != NULL)
                *end = '\0';
            return fmt(buf, cap, "%s", link + sizeof prefix - 1);
        }
    }
    return file_identity("/proc/self/exe", buf, cap);
}

static int find_libseccomp(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const char *base = info->dlpi_name != NULL ? strrchr(info->dlpi_name, '/') : NULL;
    if (base == NULL || strncmp(base, "/libseccomp.so", 14) != 0)
        return 0;
    *(const char **)data = info->dlpi_name;
    return 1;
}

/* The cache key: everything the compiled program depends on, the runtime binary itself included (its build holds the
 * tables and the rule logic). -1 when something cannot be known: then the filter is just built. */
static int cache_key(uint64_t caps, int no_new_privs, char *key, size_t cap)
{
    char exe[PATH_MAX + 128], lib[PATH_MAX + 128];
    struct utsname u;
    const char *lib_path = NULL;
    const struct scmp_version *v = seccomp_version();
    dl_iterate_phdr(find_libseccomp, &lib_path);
    if (v == NULL || uname(&u) < 0 || exe_identity(exe, sizeof exe) < 0
        || file_identity(lib_path, lib, sizeof lib) < 0)
        return -1;
    return fmt(key, cap,
                     "tsfig seccomp cache %d\nprofile %s\ntables %016llx\ndefault action %08x\ncaps %016llx\n"
                     "no_new_privs %d\nlibseccomp %u.%u.%u %s\nkernel %s %s\narch %08x\nruntime %s\n",
                     CACHE_FORMAT, TSFIG_SECCOMP_PROFILE_SOURCE, (unsigned long long)tables_hash(),
                     (unsigned)TSFIG_SECCOMP_DEFAULT_ACTION, (unsigned long long)caps, no_new_privs ? 1 : 0, v->major,
                     v->minor, v->micro, lib, u.release, u.version, seccomp_arch_native(), exe);
}

static int read_exact(int fd, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = TEMP_FAILURE_RETRY(read(fd, (char *)buf + got, n - got));
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static uint64_t checksum(const char *key, size_t key_len, const struct sock_filter *insns, size_t n)
{
    return fnv1a(fnv1a(FNV_OFFSET, key, key_len), insns, n * sizeof *insns);
}

/* A root-owned directory nobody else can write to, opened without following symlinks. */
static int open_private_dir(int at, const char *name, mode_t mode, bool create)
{
    int fd = TEMP_FAILURE_RETRY(openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(at, name, mode) < 0 && errno != EEXIST)
            return -1;
        fd = TEMP_FAILURE_RETRY(openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) != 0)) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

static int open_cache_dir(bool create)
{
    cleanup_close int parent = open_private_dir(AT_FDCWD, CACHE_PARENT, 0711, create);
    return parent < 0 ? -1 : open_private_dir(parent, CACHE_SUBDIR, 0700, create);
}

static void cache_name(const char *key, char *name, size_t cap)
{
    fmt(name, cap, "%016llx.bpf", (unsigned long long)fnv1a(FNV_OFFSET, key, strlen(key)));
}

/* Reads and checks a cache entry: root-owned 0600 regular file, exact size, same key, checksum. */
static int cache_read(int dir, const char *name, const char *key, struct sock_filter **out, unsigned short *len)
{
    size_t key_len = strlen(key), head = sizeof(struct cache_header) + pad8(key_len);
    cleanup_close int fd = TEMP_FAILURE_RETRY(openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0
        || st.st_nlink != 1 || st.st_size < 0 || (size_t)st.st_size <= head
        || (size_t)st.st_size > head + BPF_MAXINSNS * sizeof(struct sock_filter)
        || ((size_t)st.st_size - head) % sizeof(struct sock_filter) != 0)
        return -1;
    char *buf = malloc((size_t)st.st_size);
    if (buf == NULL)
        return -1;
    const struct cache_header *h = (const struct cache_header *)buf;
    size_t n = ((size_t)st.st_size - head) / sizeof(struct sock_filter);
    struct sock_filter *insns = (struct sock_filter *)(buf + head);
    if (read_exact(fd, buf, (size_t)st.st_size) < 0 || memcmp(h->magic, CACHE_MAGIC, sizeof h->magic) != 0
        || h->key_len != key_len || h->n_insns != n || memcmp(buf + sizeof *h, key, key_len) != 0
        || h->checksum != checksum(key, key_len, insns, n)) {
        free(buf);
        return -1;
    }
    /* keep only the program */
    memmove(buf, insns, n * sizeof *insns);
    *out = (struct sock_filter *)buf;
    *len = (unsigned short)n;
    return 0;
}

/* Drops entries of other keys (older builds of the runtime, other kernels) nobody has written for a day. */
static void cache_prune(int dir, const char *keep)
{
    int fd = fcntl(dir, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        struct stat st;
        if (strcmp(e->d_name, keep) == 0 || (l < 5 || (strcmp(e->d_name + l - 4, ".bpf") != 0
                                                       && strcmp(e->d_name + l - 4, ".tmp") != 0)))
            continue;
        if (fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && now - st.st_mtime > CACHE_MAX_AGE_S)
            (void)unlinkat(dir, e->d_name, 0);
    }
    closedir(d);
}

static void cache_write(int dir, const char *name, const char *key, const struct sock_filter *insns, size_t n)
{
    size_t key_len = strlen(key), head = sizeof(struct cache_header) + pad8(key_len), size = head + n * sizeof *insns;
    char tmp[64];
    char *buf = calloc(1, size);
    if (buf == NULL || fmt(tmp, sizeof tmp, "%.16s.%d.tmp", name, (int)getpid()) < 0) {
        free(buf);
        return;
    }
    struct cache_header h = { .key_len = (uint32_t)key_len, .n_insns = (uint32_t)n };
    memcpy(h.magic, CACHE_MAGIC, sizeof h.magic);
    h.checksum = checksum(key, key_len, insns, n);
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, key, key_len);
    memcpy(buf + head, insns, n * sizeof *insns);
    (void)unlinkat(dir, tmp, 0);
    int fd = TEMP_FAILURE_RETRY(openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    int ok = fd >= 0 && fchmod(fd, 0600) == 0 && tsfig_write_all(fd, buf, size) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    if (!ok || renameat(dir, tmp, dir, name) < 0)
        (void)unlinkat(dir, tmp, 0);
    free(buf);
    cache_prune(dir, name);
}

/* libseccomp's program for the filter, as seccomp_load would hand it to the kernel (seccomp_export_bpf). */
static int export_program(scmp_filter_ctx ctx, struct sock_filter **out, unsigned short *len, tsfig_error_t *err)
{
    cleanup_close int fd = (int)syscall(SYS_memfd_create, "tsfig-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return tsfig_make_error(err, errno, STEP, "create a memfd for the seccomp program");
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0)
        return tsfig_make_error(err, -rc, STEP, "export the seccomp program");
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0
        || st.st_size > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter)))
        return tsfig_make_error(err, EINVAL, STEP, "exported seccomp program has a bad size");
    struct sock_filter *insns = malloc((size_t)st.st_size);
    if (insns == NULL)
        return tsfig_make_error(err, ENOMEM, STEP, "export the seccomp program");
    if (lseek(fd, 0, SEEK_SET) < 0 || read_exact(fd, insns, (size_t)st.st_size) < 0) {
        free(insns);
        return tsfig_make_error(err, errno ? errno : EIO, STEP, "read back the seccomp program");
    }
    *out = insns;
    *len = (unsigned short)((size_t)st.st_size / sizeof(struct sock_filter));
    return 0;
}

static void forget_prepared(void)
{
    free(prepared.insns);
    memset(&prepared, 0, sizeof prepared);
}

int tsfig_seccomp_prepare_default(uint64_t effective_caps_mask, int no_new_privs, tsfig_error_t *err)
{
    char key[CACHE_KEY_MAX], name[32];
    forget_prepared();
    bool keyed = cache_key(effective_caps_mask, no_new_privs, key, sizeof key) == 0;
    cleanup_close int dir = keyed ? open_cache_dir(true) : -1;
    if (dir >= 0) {
        cache_name(key, name, sizeof name);
        if (cache_read(dir, name, key, &prepared.insns, &prepared.len) == 0) {
            prepared.caps = effective_caps_mask;
            prepared.from_cache = true;
            return TSFIG_SECCOMP_CACHED;
        }
    }
    cleanup_seccomp scmp_filter_ctx ctx = seccomp_init(TSFIG_SECCOMP_DEFAULT_ACTION);
    if (ctx == NULL)
        return tsfig_make_error(err, ENOMEM, STEP, "create seccomp filter");
    if (build_filter(ctx, effective_caps_mask, err) < 0
        || export_program(ctx, &prepared.insns, &prepared.len, err) < 0)
        return -1;
    prepared.caps = effective_caps_mask;
    if (dir >= 0)
        cache_write(dir, name, key, prepared.insns, prepared.len);
    return TSFIG_SECCOMP_BUILT;
}

void tsfig_seccomp_prepare_for(const struct tsfig_conf *c)
{
    tsfig_error_t ignored = { 0 };
    if (c->seccomp_default && !c->privileged)
        (void)tsfig_seccomp_prepare_default(c->caps, c->no_new_privs, &ignored);
}

int tsfig_seccomp_cache_file(uint64_t effective_caps_mask, int no_new_privs, char *buf, size_t cap)
{
    char key[CACHE_KEY_MAX], name[32];
    if (cache_key(effective_caps_mask, no_new_privs, key, sizeof key) < 0)
        return -1;
    cache_name(key, name, sizeof name);
    return fmt(buf, cap, "%s/%s/%s", CACHE_PARENT, CACHE_SUBDIR, name);
}

int tsfig_seccomp_load_default(uint64_t effective_caps_mask, tsfig_error_t *err)
{
    if (prepared.insns != NULL && prepared.caps == effective_caps_mask) {
        /* what seccomp_load does with this filter's attributes: no flags, no no_new_privs */
        struct sock_fprog prog = { .len = prepared.len, .filter = prepared.insns };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
            return 0;
        int e = errno;
        if (e == EACCES || !prepared.from_cache)
            return load_error(e, err);
        /* a cached program the kernel refuses: build it afresh below */
    }
    cleanup_seccomp scmp_filter_ctx ctx = seccomp_init(TSFIG_SECCOMP_DEFAULT_ACTION);
    if (ctx == NULL)
        return tsfig_make_error(err, ENOMEM, STEP, "create seccomp filter");
    if (build_filter(ctx, effective_caps_mask, err) < 0)
        return -1;
    return load_filter(ctx, err);
}
