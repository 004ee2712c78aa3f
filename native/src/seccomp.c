/* Builds Docker's default seccomp profile (seccomp_profile.h) with libseccomp and loads it, following moby's
 * setupSeccomp (which rules apply) and runc's libcontainer/seccomp (how they become a filter). */
#include "seccomp.h"
#include "seccomp_profile.h"

#include <errno.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

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

static int load_filter(scmp_filter_ctx ctx, tsfig_error_t *err)
{
    int rc = seccomp_load(ctx);
    if (rc == -EACCES)
        return tsfig_make_error(err, EACCES, STEP,
                                "load seccomp filter: needs no_new_privs or CAP_SYS_ADMIN; load it before dropping "
                                "capabilities or set no-new-privileges");
    if (rc < 0)
        return tsfig_make_error(err, -rc, STEP, "load seccomp filter");
    return 0;
}

int tsfig_seccomp_load_default(uint64_t effective_caps_mask, tsfig_error_t *err)
{
    cleanup_seccomp scmp_filter_ctx ctx = seccomp_init(TSFIG_SECCOMP_DEFAULT_ACTION);
    if (ctx == NULL)
        return tsfig_make_error(err, ENOMEM, STEP, "create seccomp filter");
    if (build_filter(ctx, effective_caps_mask, err) < 0)
        return -1;
    return load_filter(ctx, err);
}
