/* Docker's default seccomp profile as static tables. Hand-transcribed and checked against
 *   moby/profiles seccomp/default.json and seccomp/default_linux.go at commit
 *   02e898b137aed1024e232d59bcb05e6179b72177
 * (the same profile moby/moby vendors as profiles/seccomp/default.json). Rules are kept in the file's order, one
 * entry per JSON "syscalls" element; the socket domain rules are the ones default_linux.go generates from
 * allowedSocketDomains (AF_UNIX..AF_ROSE as one "< 12" rule, then one "==" rule per further allowed domain).
 *
 * Semantics (moby seccomp_linux.go setupSeccomp + runc libcontainer/seccomp):
 *   - includes.arches / excludes.arches compare against the runtime's native arch name ("amd64", "arm64", ...);
 *   - includes.caps: every listed cap must be in the set; excludes.caps: any listed cap in the set drops the rule;
 *   - includes.min_kernel: the running kernel must be >= major.minor;
 *   - a rule is added for every name libseccomp resolves; unknown names are skipped.
 * Do not reorder or "simplify": the order mirrors the upstream file to keep diffs against it reviewable. */
#ifndef TSFIG_SECCOMP_PROFILE_H
#define TSFIG_SECCOMP_PROFILE_H

#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

#define TSFIG_SECCOMP_PROFILE_SOURCE "moby/profiles seccomp/default.json@02e898b137aed1024e232d59bcb05e6179b72177"

#define TSFIG_CAP(c) (UINT64_C(1) << (c))

struct tsfig_seccomp_arg {
    unsigned int index;
    enum scmp_compare op;
    uint64_t value;     /* for SCMP_CMP_MASKED_EQ: the mask */
    uint64_t value_two; /* for SCMP_CMP_MASKED_EQ: the datum */
};

struct tsfig_seccomp_cond {
    const char *const *arches; /* NULL-terminated, NULL = no arch condition */
    uint64_t caps;             /* TSFIG_CAP() bits, 0 = no caps condition */
    int min_kernel_major;      /* 0 = no kernel condition */
    int min_kernel_minor;
};

struct tsfig_seccomp_rule {
    const char *const *names; /* NULL-terminated */
    uint32_t action;          /* SCMP_ACT_ALLOW or SCMP_ACT_ERRNO(errnoRet) */
    const struct tsfig_seccomp_arg *args;
    size_t n_args;
    struct tsfig_seccomp_cond includes;
    struct tsfig_seccomp_cond excludes;
};

/* archMap: the native architecture plus the sub-architectures Docker adds to the filter. */
struct tsfig_seccomp_archmap {
    uint32_t arch;
    uint32_t sub_arches[3]; /* 0-terminated */
};

#define TSFIG_SECCOMP_DEFAULT_ACTION SCMP_ACT_ERRNO(EPERM) /* defaultAction SCMP_ACT_ERRNO, defaultErrnoRet 1 */

static const struct tsfig_seccomp_archmap tsfig_seccomp_archmap[] = {
    { SCMP_ARCH_X86_64, { SCMP_ARCH_X86, SCMP_ARCH_X32, 0 } },
    { SCMP_ARCH_AARCH64, { SCMP_ARCH_ARM, 0 } },
    { SCMP_ARCH_MIPS64, { SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64N32, 0 } },
    { SCMP_ARCH_MIPS64N32, { SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64, 0 } },
    { SCMP_ARCH_MIPSEL64, { SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64N32, 0 } },
    { SCMP_ARCH_MIPSEL64N32, { SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64, 0 } },
    { SCMP_ARCH_S390X, { SCMP_ARCH_S390, 0 } },
    { SCMP_ARCH_RISCV64, { 0 } },
#ifdef SCMP_ARCH_LOONGARCH64
    { SCMP_ARCH_LOONGARCH64, { 0 } },
#endif
};

static const char *const tsfig_seccomp_allow_names[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    NULL,
};

#define TSFIG_NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define TSFIG_ARCHES(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define TSFIG_ARGS(...) ((const struct tsfig_seccomp_arg[]){ __VA_ARGS__ })

/* One argument condition "arg[index] op value". */
#define TSFIG_RULE_ARG(name_list, arg_index, arg_op, arg_value, arg_value_two)                                          \
    .names = (name_list), .action = SCMP_ACT_ALLOW,                                                                    \
    .args = TSFIG_ARGS({ (arg_index), (arg_op), (arg_value), (arg_value_two) }), .n_args = 1

#define TSFIG_SOCKET(op, domain) { TSFIG_RULE_ARG(TSFIG_NAMES("socket"), 0, (op), (domain), 0) }
#define TSFIG_PERSONALITY(value) { TSFIG_RULE_ARG(TSFIG_NAMES("personality"), 0, SCMP_CMP_EQ, (value), 0) }

/* CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP */
#define TSFIG_CLONE_NS_MASK UINT64_C(0x7E020000)

static const struct tsfig_seccomp_rule tsfig_seccomp_rules[] = {
    { .names = tsfig_seccomp_allow_names, .action = SCMP_ACT_ALLOW },
    {
        .names = TSFIG_NAMES("process_vm_readv", "process_vm_writev", "ptrace"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .min_kernel_major = 4, .min_kernel_minor = 8 },
    },
    /* socket(2): allowedSocketDomains. Blocked: AF_DECnet 12, AF_ECONET 19, AF_ATMSVC 20, AF_IRDA 23,
     * AF_WANPIPE 25, AF_ISDN 34, AF_CAIF 37, AF_ALG 38, AF_VSOCK 40. */
    TSFIG_SOCKET(SCMP_CMP_LT, 12), /* AF_UNIX .. AF_ROSE */
    TSFIG_SOCKET(SCMP_CMP_EQ, 13), /* AF_NETBEUI */
    TSFIG_SOCKET(SCMP_CMP_EQ, 14), /* AF_SECURITY */
    TSFIG_SOCKET(SCMP_CMP_EQ, 15), /* AF_KEY */
    TSFIG_SOCKET(SCMP_CMP_EQ, 16), /* AF_NETLINK */
    TSFIG_SOCKET(SCMP_CMP_EQ, 17), /* AF_PACKET */
    TSFIG_SOCKET(SCMP_CMP_EQ, 18), /* AF_ASH */
    TSFIG_SOCKET(SCMP_CMP_EQ, 21), /* AF_RDS */
    TSFIG_SOCKET(SCMP_CMP_EQ, 22), /* AF_SNA */
    TSFIG_SOCKET(SCMP_CMP_EQ, 24), /* AF_PPPOX */
    TSFIG_SOCKET(SCMP_CMP_EQ, 26), /* AF_LLC */
    TSFIG_SOCKET(SCMP_CMP_EQ, 27), /* AF_IB */
    TSFIG_SOCKET(SCMP_CMP_EQ, 28), /* AF_MPLS */
    TSFIG_SOCKET(SCMP_CMP_EQ, 29), /* AF_CAN */
    TSFIG_SOCKET(SCMP_CMP_EQ, 30), /* AF_TIPC */
    TSFIG_SOCKET(SCMP_CMP_EQ, 31), /* AF_BLUETOOTH */
    TSFIG_SOCKET(SCMP_CMP_EQ, 32), /* AF_IUCV */
    TSFIG_SOCKET(SCMP_CMP_EQ, 33), /* AF_RXRPC */
    TSFIG_SOCKET(SCMP_CMP_EQ, 35), /* AF_PHONET */
    TSFIG_SOCKET(SCMP_CMP_EQ, 36), /* AF_IEEE802154 */
    TSFIG_SOCKET(SCMP_CMP_EQ, 39), /* AF_NFC */
    TSFIG_SOCKET(SCMP_CMP_EQ, 41), /* AF_KCM */
    TSFIG_SOCKET(SCMP_CMP_EQ, 42), /* AF_QIPCRTR */
    TSFIG_SOCKET(SCMP_CMP_EQ, 43), /* AF_SMC */
    TSFIG_SOCKET(SCMP_CMP_EQ, 44), /* AF_XDP */
    TSFIG_SOCKET(SCMP_CMP_EQ, 45), /* AF_MCTP */
    TSFIG_PERSONALITY(0x0),        /* PER_LINUX */
    TSFIG_PERSONALITY(0x0008),     /* PER_LINUX | UNAME26 */
    TSFIG_PERSONALITY(0x20000),    /* PER_LINUX32 */
    TSFIG_PERSONALITY(0x20008),    /* PER_LINUX32 | UNAME26 */
    TSFIG_PERSONALITY(0xffffffff), /* query */
    {
        .names = TSFIG_NAMES("sync_file_range2", "swapcontext"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .arches = TSFIG_ARCHES("ppc64le") },
    },
    {
        .names = TSFIG_NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                             "set_tls"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .arches = TSFIG_ARCHES("arm", "arm64") },
    },
    {
        .names = TSFIG_NAMES("arch_prctl"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .arches = TSFIG_ARCHES("amd64", "x32") },
    },
    {
        .names = TSFIG_NAMES("modify_ldt"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .arches = TSFIG_ARCHES("amd64", "x32", "x86") },
    },
    {
        .names = TSFIG_NAMES("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .arches = TSFIG_ARCHES("s390", "s390x") },
    },
    {
        .names = TSFIG_NAMES("riscv_flush_icache"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .arches = TSFIG_ARCHES("riscv64") },
    },
    {
        .names = TSFIG_NAMES("open_by_handle_at"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_DAC_READ_SEARCH) },
    },
    {
        .names = TSFIG_NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                             "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
                             "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                             "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_ADMIN) },
    },
    {
        TSFIG_RULE_ARG(TSFIG_NAMES("clone"), 0, SCMP_CMP_MASKED_EQ, TSFIG_CLONE_NS_MASK, 0),
        .excludes = { .caps = TSFIG_CAP(CAP_SYS_ADMIN), .arches = TSFIG_ARCHES("s390", "s390x") },
    },
    {
        /* s390 parameter ordering for clone is different */
        TSFIG_RULE_ARG(TSFIG_NAMES("clone"), 1, SCMP_CMP_MASKED_EQ, TSFIG_CLONE_NS_MASK, 0),
        .includes = { .arches = TSFIG_ARCHES("s390", "s390x") },
        .excludes = { .caps = TSFIG_CAP(CAP_SYS_ADMIN) },
    },
    {
        .names = TSFIG_NAMES("clone3"),
        .action = SCMP_ACT_ERRNO(ENOSYS), /* errnoRet 38 */
        .excludes = { .caps = TSFIG_CAP(CAP_SYS_ADMIN) },
    },
    {
        .names = TSFIG_NAMES("reboot"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_BOOT) },
    },
    {
        .names = TSFIG_NAMES("chroot"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_CHROOT) },
    },
    {
        .names = TSFIG_NAMES("delete_module", "init_module", "finit_module"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_MODULE) },
    },
    {
        .names = TSFIG_NAMES("acct"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_PACCT) },
    },
    {
        .names = TSFIG_NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
                             "ptrace"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_PTRACE) },
    },
    {
        .names = TSFIG_NAMES("iopl", "ioperm"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_RAWIO) },
    },
    {
        .names = TSFIG_NAMES("settimeofday", "stime", "clock_settime", "clock_settime64"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_TIME) },
    },
    {
        .names = TSFIG_NAMES("vhangup"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_TTY_CONFIG) },
    },
    {
        .names = TSFIG_NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYS_NICE) },
    },
    {
        .names = TSFIG_NAMES("syslog"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_SYSLOG) },
    },
    {
        .names = TSFIG_NAMES("bpf"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_BPF) },
    },
    {
        .names = TSFIG_NAMES("perf_event_open"),
        .action = SCMP_ACT_ALLOW,
        .includes = { .caps = TSFIG_CAP(CAP_PERFMON) },
    },
};

#endif
