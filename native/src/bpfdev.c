#include "bpfdev.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ALL_ACCESS (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)

const struct tsfig_dev_rule tsfig_default_dev_rules[] = {
    {'c', -1, -1, BPF_DEVCG_ACC_MKNOD, 1}, {'b', -1, -1, BPF_DEVCG_ACC_MKNOD, 1},
    {'c', 1, 3, ALL_ACCESS, 1},            {'c', 1, 5, ALL_ACCESS, 1},
    {'c', 1, 7, ALL_ACCESS, 1},            {'c', 1, 8, ALL_ACCESS, 1},
    {'c', 1, 9, ALL_ACCESS, 1},            {'c', 5, 0, ALL_ACCESS, 1},
    {'c', 5, 1, ALL_ACCESS, 1},            {'c', 5, 2, ALL_ACCESS, 1},
    {'c', 136, -1, ALL_ACCESS, 1},         {'c', 10, 200, ALL_ACCESS, 1},
};
const size_t tsfig_default_dev_rules_n = sizeof tsfig_default_dev_rules / sizeof tsfig_default_dev_rules[0];

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define ALU32_K(op, d, i) INSN(BPF_ALU | (op) | BPF_K, d, 0, 0, i)
#define MOV64_K(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV64_X(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define JNE_K(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* One rule: a block of guards that jump to the end of the block ("next rule") on mismatch, then the verdict. */
static size_t rule_block(const struct tsfig_dev_rule *r, struct bpf_insn *b)
{
    size_t n = 0;
    if (r->type != 'a')
        b[n++] = JNE_K(BPF_REG_2, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0);
    if ((r->access & ALL_ACCESS) != ALL_ACCESS) {
        /* deny the match if the request asks for anything the rule does not grant */
        b[n++] = MOV64_X(BPF_REG_1, BPF_REG_3);
        b[n++] = ALU32_K(BPF_AND, BPF_REG_1, (int32_t)(~r->access & ALL_ACCESS));
        b[n++] = JNE_K(BPF_REG_1, 0, 0);
    }
    if (r->major >= 0)
        b[n++] = JNE_K(BPF_REG_4, (int32_t)r->major, 0);
    if (r->minor >= 0)
        b[n++] = JNE_K(BPF_REG_5, (int32_t)r->minor, 0);
    b[n++] = MOV64_K(BPF_REG_0, r->allow ? 1 : 0);
    b[n++] = EXIT();
    for (size_t i = 0; i < n; i++)
        if (BPF_CLASS(b[i].code) == BPF_JMP && BPF_OP(b[i].code) == BPF_JNE)
            b[i].off = (int16_t)(n - i - 1);
    return n;
}

size_t tsfig_bpfdev_build(const struct tsfig_dev_rule *rules, size_t n, struct bpf_insn *out, size_t cap)
{
    struct bpf_insn prologue[] = {
        LDX_W(BPF_REG_2, BPF_REG_1, 0), /* access_type */
        ALU32_K(BPF_AND, BPF_REG_2, 0xffff), /* type */
        LDX_W(BPF_REG_3, BPF_REG_1, 0),
        ALU32_K(BPF_RSH, BPF_REG_3, 16), /* access */
        LDX_W(BPF_REG_4, BPF_REG_1, 4), /* major */
        LDX_W(BPF_REG_5, BPF_REG_1, 8), /* minor */
    };
    size_t len = sizeof prologue / sizeof prologue[0];
    if (cap < len + 2)
        return 0;
    memcpy(out, prologue, sizeof prologue);
    for (size_t i = 0; i < n; i++) {
        struct bpf_insn block[16];
        size_t bn = rule_block(&rules[i], block);
        if (len + bn + 2 > cap)
            return 0;
        memcpy(out + len, block, bn * sizeof block[0]);
        len += bn;
    }
    out[len++] = MOV64_K(BPF_REG_0, 0);
    out[len++] = EXIT();
    return len;
}

static int load(const struct bpf_insn *insns, size_t n, char *log, size_t log_size)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = (uint32_t)n;
    a.license = (uint64_t)(uintptr_t) "Apache";
    if (log != NULL) {
        a.log_buf = (uint64_t)(uintptr_t)log;
        a.log_size = (uint32_t)log_size;
        a.log_level = 1;
    }
    return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
}

/* The verifier's complaint: the line before its closing statistics. */
static const char *verifier_error(char *log)
{
    char *lines[2] = {log, log};
    for (char *p = strchr(log, '\n'); p != NULL && p[1] != '\0'; p = strchr(p + 1, '\n')) {
        lines[0] = lines[1];
        lines[1] = p + 1;
    }
    lines[0][strcspn(lines[0], "\n")] = '\0';
    return lines[0];
}

int tsfig_bpfdev_attach(const char *dir, tsfig_error_t *err)
{
    struct bpf_insn insns[256];
    size_t n = tsfig_bpfdev_build(tsfig_default_dev_rules, tsfig_default_dev_rules_n, insns, 256);
    cleanup_close int prog = load(insns, n, NULL, 0);
    if (prog < 0) {
        int e = errno;
        static char log[65536];
        (void)load(insns, n, log, sizeof log);
        return tsfig_make_error(err, e, "cgroup devices", "load the device filter program (verifier: %s)",
                                verifier_error(log));
    }
    cleanup_close int cg = TEMP_FAILURE_RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cg < 0)
        return tsfig_make_error(err, errno, "cgroup devices", "open `%s`", dir);
    union bpf_attr attach;
    memset(&attach, 0, sizeof attach);
    attach.target_fd = (uint32_t)cg;
    attach.attach_bpf_fd = (uint32_t)prog;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0)
        return tsfig_make_error(err, errno, "cgroup devices", "attach the device filter to `%s`", dir);
    return 0;
}
