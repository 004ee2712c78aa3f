/* cgroup v2 device policy: a BPF_PROG_TYPE_CGROUP_DEVICE program (v2 has no devices.* files), ported in spirit
 * from runc's devicefilter / crun's ebpf.c. */
#ifndef TSFIG_BPFDEV_H
#define TSFIG_BPFDEV_H

#include "error.h"

#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>

struct tsfig_dev_rule {
    char type;       /* 'c', 'b' or 'a' (any) */
    int64_t major;   /* -1 = any */
    int64_t minor;   /* -1 = any */
    unsigned access; /* BPF_DEVCG_ACC_MKNOD | _READ | _WRITE */
    int allow;
};

/* Docker's (runc's) default rules: c/b *:* m, null zero full random urandom tty console ptmx, pts (136:any), tun. */
extern const struct tsfig_dev_rule tsfig_default_dev_rules[];
extern const size_t tsfig_default_dev_rules_n;

/* Pure: emits the program for rules (first match wins, default deny) into out. Returns the instruction count, or
 * 0 if cap is too small. */
size_t tsfig_bpfdev_build(const struct tsfig_dev_rule *rules, size_t n, struct bpf_insn *out, size_t cap);

/* Loads the default program and attaches it (BPF_F_ALLOW_MULTI) to the cgroup v2 directory dir. */
int tsfig_bpfdev_attach(const char *dir, tsfig_error_t *err);

#endif
