#include "caps.h"

#include "util.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const cap_names[] = {
    "CHOWN",           "DAC_OVERRIDE",   "DAC_READ_SEARCH", "FOWNER",     "FSETID",     "KILL",
    "SETGID",          "SETUID",         "SETPCAP",         "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
    "NET_BROADCAST",   "NET_ADMIN",      "NET_RAW",         "IPC_LOCK",   "IPC_OWNER",  "SYS_MODULE",
    "SYS_RAWIO",       "SYS_CHROOT",     "SYS_PTRACE",      "SYS_PACCT",  "SYS_ADMIN",  "SYS_BOOT",
    "SYS_NICE",        "SYS_RESOURCE",   "SYS_TIME",        "SYS_TTY_CONFIG", "MKNOD",  "LEASE",
    "AUDIT_WRITE",     "AUDIT_CONTROL",  "SETFCAP",         "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM",      "BLOCK_SUSPEND",  "AUDIT_READ",      "PERFMON",    "BPF",        "CHECKPOINT_RESTORE",
};

int tsfig_cap_from_name(const char *name)
{
    if (strncasecmp(name, "CAP_", 4) == 0)
        name += 4;
    for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++)
        if (strcasecmp(cap_names[i], name) == 0)
            return (int)i;
    return -1;
}

int tsfig_cap_last(void)
{
    char buf[16];
    int64_t v;
    if (tsfig_read_small("/proc/sys/kernel/cap_last_cap", buf, sizeof buf) <= 0)
        return 40;
    buf[strcspn(buf, "\n")] = '\0';
    if (tsfig_parse_int64(buf, &v) < 0 || v < 0 || v > 63)
        return 40;
    return (int)v;
}

/* Every capability the kernel knows that this process may still grant (its permitted set). */
uint64_t tsfig_caps_all(void)
{
    int last = tsfig_cap_last();
    uint64_t all = last >= 63 ? ~UINT64_C(0) : (UINT64_C(1) << (last + 1)) - 1;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) == 0)
        all &= (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    return all;
}

static int drop_bounding(uint64_t caps, tsfig_error_t *err)
{
    int last = tsfig_cap_last();
    for (int cap = 0; cap <= last; cap++) {
        if (caps & (UINT64_C(1) << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return tsfig_make_error(err, errno, "capabilities", "drop bounding capability `%d`", cap);
    }
    return 0;
}

static int set_caps(uint64_t caps, tsfig_error_t *err)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = data[0].permitted = (uint32_t)caps;
    data[1].effective = data[1].permitted = (uint32_t)(caps >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0)
        return tsfig_make_error(err, errno, "capabilities", "capset");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return tsfig_make_error(err, errno, "capabilities", "clear ambient capabilities");
    return 0;
}

int tsfig_caps_apply(uint64_t caps, const struct tsfig_ids *ids, tsfig_error_t *err)
{
    if (drop_bounding(caps, err) < 0)
        return -1;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return tsfig_make_error(err, errno, "capabilities", "set keepcaps");
    if (setgroups(ids->n_groups, ids->groups) < 0)
        return tsfig_make_error(err, errno, "setgroups", "setgroups");
    if (setresgid(ids->gid, ids->gid, ids->gid) < 0)
        return tsfig_make_error(err, errno, "setgid", "setgid `%u`", (unsigned)ids->gid);
    if (setresuid(ids->uid, ids->uid, ids->uid) < 0)
        return tsfig_make_error(err, errno, "setuid", "setuid `%u`", (unsigned)ids->uid);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return tsfig_make_error(err, errno, "capabilities", "clear keepcaps");
    return set_caps(caps, err);
}
