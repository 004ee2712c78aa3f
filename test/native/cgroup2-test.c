/* C unit tests for native/src/cgroup2.c and bpfdev.c, crun style: each test returns 0 (pass), -1 (fail) or 77
 * (skip); output is TAP. Built and run by test/integration/runtime.test.ts against the objects in native/build. */
#include "../../native/src/bpfdev.h"
#include "../../native/src/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "# %s:%d: %s\n", __FILE__, __LINE__, #cond);                                               \
            return -1;                                                                                                 \
        }                                                                                                              \
    } while (0)

static int test_values(void)
{
    char b[64];
    CHECK(tsfig_cgroup2_memory_max(b, sizeof b, 0) == 0 && strcmp(b, "max") == 0);
    CHECK(tsfig_cgroup2_memory_max(b, sizeof b, 1048576) == 0 && strcmp(b, "1048576") == 0);
    CHECK(tsfig_cgroup2_swap_max(b, sizeof b, 100, 300) == 0 && strcmp(b, "200") == 0);
    CHECK(tsfig_cgroup2_swap_max(b, sizeof b, 100, -1) == 0 && strcmp(b, "max") == 0);
    CHECK(tsfig_cgroup2_swap_max(b, sizeof b, 100, 0) == 1);
    CHECK(tsfig_cgroup2_swap_max(b, sizeof b, 300, 100) == -1);
    CHECK(tsfig_cgroup2_cpu_max(b, sizeof b, 150000, 100000) == 0 && strcmp(b, "150000 100000") == 0);
    CHECK(tsfig_cgroup2_cpu_max(b, sizeof b, 0, 0) == 0 && strcmp(b, "max 100000") == 0);
    CHECK(tsfig_cgroup2_cpu_weight(1024) == 39);
    CHECK(tsfig_cgroup2_cpu_weight(2) == 1);
    CHECK(tsfig_cgroup2_cpu_weight(262144) == 10000);
    CHECK(tsfig_cgroup2_cpu_weight(0) == 0);
    CHECK(tsfig_cgroup2_pids_max(b, sizeof b, 0) == 0 && strcmp(b, "max") == 0);
    CHECK(tsfig_cgroup2_pids_max(b, sizeof b, 64) == 0 && strcmp(b, "64") == 0);
    CHECK(tsfig_cgroup2_path(b, sizeof b, "/sys/fs/cgroup", "tsf-1/abc", "memory.max") == 0
          && strcmp(b, "/sys/fs/cgroup/tsf-1/abc/memory.max") == 0);
    CHECK(tsfig_cgroup2_path(b, 8, "/sys/fs/cgroup", "tsf-1/abc", NULL) == -1);
    CHECK(strcmp(tsfig_cgroup2_subtree_control(), "+cpu +memory +pids +cpuset") == 0);
    return 0;
}

static int test_program_shape(void)
{
    struct bpf_insn insns[256];
    size_t n = tsfig_bpfdev_build(tsfig_default_dev_rules, tsfig_default_dev_rules_n, insns, 256);
    CHECK(n > 20);
    CHECK(insns[n - 1].code == (BPF_JMP | BPF_EXIT));
    CHECK(insns[n - 2].imm == 0); /* default deny */
    CHECK(tsfig_bpfdev_build(tsfig_default_dev_rules, tsfig_default_dev_rules_n, insns, 10) == 0);
    for (size_t i = 0; i < n; i++)
        if (BPF_CLASS(insns[i].code) == BPF_JMP && BPF_OP(insns[i].code) == BPF_JNE)
            CHECK(insns[i].off > 0 && i + 1 + (size_t)insns[i].off < n);
    return 0;
}

/* Child in the filtered cgroup: bit 0 /dev/null opens, bit 1 /dev/kmsg is refused with EPERM, bit 2 mknod of a
 * block device is allowed (b *:* m) */
static int probe(const char *tmp)
{
    int result = 0, fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        result |= 1;
        close(fd);
    }
    fd = open("/dev/kmsg", O_RDONLY);
    if (fd < 0 && errno == EPERM)
        result |= 2;
    if (fd >= 0)
        close(fd);
    char node[4200];
    snprintf(node, sizeof node, "%s/blk", tmp);
    if (mknod(node, S_IFBLK | 0600, makedev(8, 0)) == 0)
        result |= 4;
    unlink(node);
    return result;
}

static int test_filter_enforced(void)
{
    char dir[128], procs[160], tmp[] = "/tmp/tsf-test-bpfXXXXXX";
    if (geteuid() != 0 || access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) != 0)
        return 77;
    snprintf(dir, sizeof dir, "/sys/fs/cgroup/unified/tsf-test-bpf%d", (int)getpid());
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    if (mkdir(dir, 0755) < 0 || mkdtemp(tmp) == NULL)
        return -1;
    tsfig_error_t err = {0};
    int rc = -1, sync[2];
    if (tsfig_bpfdev_attach(dir, &err) < 0) {
        fprintf(stderr, "# %s: %s\n", err.msg, strerror(err.errno_));
        goto out;
    }
    if (pipe(sync) < 0)
        goto out;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(sync[1]);
        if (read(sync[0], &c, 1) != 1)
            _exit(100);
        _exit(probe(tmp));
    }
    close(sync[0]);
    FILE *f = fopen(procs, "w");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
    if (write(sync[1], "g", 1) != 1)
        goto out;
    close(sync[1]);
    int status;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 7)
        rc = 0;
    else
        fprintf(stderr, "# probe result %d (want 7)\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
out:
    rmdir(dir);
    rmdir(tmp);
    return rc;
}

int main(void)
{
    struct {
        const char *name;
        int (*fn)(void);
    } tests[] = {
        {"cgroup v2 values", test_values},
        {"device filter program shape", test_program_shape},
        {"device filter enforced on a cgroup2 dir", test_filter_enforced},
    };
    int failed = 0, n = (int)(sizeof tests / sizeof tests[0]);
    printf("1..%d\n", n);
    for (int i = 0; i < n; i++) {
        int r = tests[i].fn();
        if (r == 77)
            printf("ok %d - %s # SKIP\n", i + 1, tests[i].name);
        else
            printf("%s %d - %s\n", r == 0 ? "ok" : "not ok", i + 1, tests[i].name);
        failed |= r == -1;
    }
    return failed;
}
