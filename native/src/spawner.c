/* tsfig-runtime spawner: runs commands for the engine's Node process (see native/PROTOCOL.md).
 *
 * Forking a Node process costs its main thread milliseconds per child (the page tables of ~100 MB are copied, in
 * uv_spawn, synchronously), and `up` of 50 services spawned ~150 children (`tsfig-runtime start`, `ip`, `nft`...).
 * This small process forks them instead, in parallel, and hands back their exit status and output: a fork server.
 *
 * Requests on stdin, one after the other:
 *   "R <id> <flags> <argc> <envc> <strbytes> <inbytes>\n" then <strbytes> bytes of argc + envc NUL-terminated
 *   strings (argv, then the whole environment when envc > 0, else the spawner's own is inherited), then <inbytes>
 *   bytes for the child's stdin. flags: 1 = the child gets a pipe on fd 3 whose bytes are returned.
 * Responses on stdout, in completion order:
 *   "D <id> <exitcode> <signal> <errno> <outbytes> <errbytes> <fd3bytes>\n" then the three outputs.
 *   errno is non-zero when the command could not be executed (exitcode is then 127).
 * A child is complete when it has exited and its pipes are closed. On EOF of stdin the spawner finishes the
 * children it has and exits. Its own fds are close-on-exec; children get exactly fds 0, 1, 2 (and 3). */
#include "commands.h"
#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_PIPES 4 /* stdin (write end), stdout, stderr, fd 3 */

struct buf {
    char *data;
    size_t len, cap;
};

struct child {
    long long id;
    pid_t pid;
    int fds[MAX_PIPES]; /* -1 when closed: 0 = stdin writer, 1 = stdout, 2 = stderr, 3 = fd 3 */
    struct buf out[MAX_PIPES]; /* [0] = pending stdin bytes (written from `sent`), [1..3] = outputs */
    size_t sent;
    int exited, code, sig, exec_errno;
    struct child *next;
};

static struct child *children;

/* The spawner's own sealed copy of the runtime (sealed.c), or -1: requests for the runtime itself run from it. */
static int self_exe = -1;

static int buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (cap < b->len + n)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                poll(&p, 1, -1);
                continue;
            }
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

static void respond(struct child *c)
{
    char head[160];
    int n = snprintf(head, sizeof head, "D %lld %d %d %d %zu %zu %zu\n", c->id, c->code, c->sig, c->exec_errno,
                     c->out[1].len, c->out[2].len, c->out[3].len);
    /* The reader is our parent; if it is gone there is nobody to tell (EPIPE is ignored). */
    write_all(STDOUT_FILENO, head, (size_t)n);
    for (int i = 1; i < MAX_PIPES; i++)
        write_all(STDOUT_FILENO, c->out[i].data, c->out[i].len);
}

static void free_child(struct child *c)
{
    for (int i = 0; i < MAX_PIPES; i++) {
        if (c->fds[i] >= 0)
            close(c->fds[i]);
        free(c->out[i].data);
    }
    free(c);
}

/* Forks and executes one request. On failure before the fork, the child is reported as not executed. */
static void start_child(struct child *c, char **argv, char **envp, int want_fd3, const sigset_t *oldmask)
{
    int pipes[MAX_PIPES][2];
    int errpipe[2] = { -1, -1 };
    for (int i = 0; i < MAX_PIPES; i++)
        pipes[i][0] = pipes[i][1] = -1;
    int ok = pipe2(errpipe, O_CLOEXEC) == 0;
    for (int i = 0; ok && i < MAX_PIPES; i++) {
        if (i == 3 && !want_fd3)
            continue;
        ok = pipe2(pipes[i], O_CLOEXEC) == 0;
    }
    pid_t pid = ok ? fork() : -1;
    if (pid == 0) {
        /* Child: stdin from pipe 0's read end, outputs to the write ends; everything else is close-on-exec. */
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        static const int reset[] = { SIGPIPE, SIGINT, SIGQUIT, SIGHUP, SIGTERM };
        for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
            signal(reset[i], SIG_DFL);
        int targets[MAX_PIPES] = { pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1] };
        for (int i = 0; i < MAX_PIPES; i++) {
            if (targets[i] < 0)
                continue;
            /* dup2 onto itself would keep FD_CLOEXEC: move it first. */
            if (targets[i] == i) {
                int moved = fcntl(targets[i], F_DUPFD_CLOEXEC, 10);
                targets[i] = moved;
            }
        }
        for (int i = 0; i < MAX_PIPES; i++)
            if (targets[i] >= 0 && dup2(targets[i], i) < 0)
                _exit(127);
        if (self_exe >= 0 && tsfig_self_path != NULL && strcmp(argv[0], tsfig_self_path) == 0)
            syscall(SYS_execveat, self_exe, "", argv, envp != NULL ? envp : environ, AT_EMPTY_PATH);
        else if (envp != NULL)
            execvpe(argv[0], argv, envp);
        else
            execvp(argv[0], argv);
        int e = errno;
        (void)!write(errpipe[1], &e, sizeof e);
        _exit(127);
    }
    c->pid = pid;
    if (pid < 0) {
        c->exec_errno = errno != 0 ? errno : EAGAIN;
        c->exited = 1;
        c->code = 127;
    }
    if (errpipe[1] >= 0)
        close(errpipe[1]);
    if (pid > 0) {
        int e = 0;
        ssize_t r;
        do
            r = read(errpipe[0], &e, sizeof e);
        while (r < 0 && errno == EINTR);
        if (r == (ssize_t)sizeof e)
            c->exec_errno = e;
    }
    if (errpipe[0] >= 0)
        close(errpipe[0]);
    /* Parent keeps: the write end of stdin, the read ends of the outputs. */
    for (int i = 0; i < MAX_PIPES; i++) {
        int keep = i == 0 ? pipes[i][1] : pipes[i][0];
        int drop = i == 0 ? pipes[i][0] : pipes[i][1];
        if (drop >= 0)
            close(drop);
        c->fds[i] = pid > 0 ? keep : -1;
        if (pid <= 0 && keep >= 0)
            close(keep);
        if (c->fds[i] >= 0)
            fcntl(c->fds[i], F_SETFL, fcntl(c->fds[i], F_GETFL) | O_NONBLOCK);
    }
    if (c->fds[0] >= 0 && c->out[0].len == 0) {
        close(c->fds[0]);
        c->fds[0] = -1;
    }
}

/* Parses one complete request from the front of in (consumed) and starts it; returns 0 when more bytes are needed. */
static int take_request(struct buf *in, const sigset_t *oldmask)
{
    char *nl = memchr(in->data, '\n', in->len);
    if (nl == NULL)
        return 0;
    long long id;
    int flags, argc, envc;
    size_t strbytes, inbytes;
    *nl = '\0';
    if (sscanf(in->data, "R %lld %d %d %d %zu %zu", &id, &flags, &argc, &envc, &strbytes, &inbytes) != 6 || argc < 1 ||
        argc > 4096 || envc < 0 || envc > 4096) {
        fprintf(stderr, "tsfig-runtime spawner: bad request header\n");
        exit(2);
    }
    size_t head = (size_t)(nl - in->data) + 1;
    if (in->len < head + strbytes + inbytes) {
        *nl = '\n';
        return 0;
    }
    char *strings = in->data + head;
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    char **envp = envc > 0 ? calloc((size_t)envc + 1, sizeof *envp) : NULL;
    struct child *c = calloc(1, sizeof *c);
    if (argv == NULL || (envc > 0 && envp == NULL) || c == NULL) {
        fprintf(stderr, "tsfig-runtime spawner: out of memory\n");
        exit(1);
    }
    size_t pos = 0;
    for (int i = 0; i < argc + envc; i++) {
        char *s = strings + pos;
        char *end = memchr(s, '\0', strbytes - pos);
        if (pos >= strbytes || end == NULL) {
            fprintf(stderr, "tsfig-runtime spawner: bad request strings\n");
            exit(2);
        }
        if (i < argc)
            argv[i] = s;
        else
            envp[i - argc] = s;
        pos += (size_t)(end - s) + 1;
    }
    c->id = id;
    for (int i = 0; i < MAX_PIPES; i++)
        c->fds[i] = -1;
    buf_add(&c->out[0], strings + strbytes, inbytes);
    start_child(c, argv, envp, flags & 1, oldmask);
    free(argv);
    free(envp);
    c->next = children;
    children = c;
    size_t used = head + strbytes + inbytes;
    memmove(in->data, in->data + used, in->len - used);
    in->len -= used;
    return 1;
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (struct child *c = children; c != NULL; c = c->next) {
            if (c->pid != pid)
                continue;
            c->exited = 1;
            if (WIFEXITED(status))
                c->code = WEXITSTATUS(status);
            else if (WIFSIGNALED(status)) {
                c->sig = WTERMSIG(status);
                c->code = 128 + c->sig;
            }
        }
    }
}

static void finish_done(void)
{
    for (struct child **p = &children; *p != NULL;) {
        struct child *c = *p;
        if (c->exited && c->fds[1] < 0 && c->fds[2] < 0 && c->fds[3] < 0) {
            respond(c);
            *p = c->next;
            free_child(c);
        } else
            p = &c->next;
    }
}

int tsfig_cmd_spawner(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* Whatever the parent leaked to us (fds without close-on-exec) must not reach the commands. */
    if (close_range(3, ~0U, 0) < 0) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    }
    /* The terminal's Ctrl-C (or a SIGTERM/SIGHUP to the CLI's group) must not take the spawner away while the CLI
     * cleans up after it: the CLI decides, and the spawner ends with the CLI (EOF on stdin). Its commands get the
     * default dispositions back, so they react to those signals as they would have as the CLI's own children. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    sigset_t mask, oldmask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        perror("tsfig-runtime spawner: signalfd");
        return 1;
    }
    fcntl(STDIN_FILENO, F_SETFD, FD_CLOEXEC);
    if (tsfig_exe_sealed())
        self_exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    fcntl(STDOUT_FILENO, F_SETFD, FD_CLOEXEC);
    struct buf in = { 0 };
    int input_open = 1;
    for (;;) {
        size_t count = 0;
        for (struct child *c = children; c != NULL; c = c->next)
            count++;
        if (!input_open && count == 0)
            break;
        struct pollfd *fds = calloc(2 + count * MAX_PIPES, sizeof *fds);
        struct child **owner = calloc(2 + count * MAX_PIPES, sizeof *owner);
        int *slot = calloc(2 + count * MAX_PIPES, sizeof *slot);
        if (fds == NULL || owner == NULL || slot == NULL)
            return 1;
        nfds_t n = 0;
        fds[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        if (input_open)
            fds[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
        for (struct child *c = children; c != NULL; c = c->next) {
            for (int i = 0; i < MAX_PIPES; i++) {
                if (c->fds[i] < 0)
                    continue;
                owner[n] = c;
                slot[n] = i;
                fds[n++] = (struct pollfd){ .fd = c->fds[i], .events = i == 0 ? POLLOUT : POLLIN };
            }
        }
        if (poll(fds, n, -1) < 0 && errno != EINTR)
            return 1;
        for (nfds_t k = 0; k < n; k++) {
            if (fds[k].revents == 0)
                continue;
            if (fds[k].fd == sfd) {
                struct signalfd_siginfo info;
                while (read(sfd, &info, sizeof info) > 0) {
                }
                reap();
            } else if (fds[k].fd == STDIN_FILENO && owner[k] == NULL) {
                char chunk[65536];
                ssize_t r = read(STDIN_FILENO, chunk, sizeof chunk);
                if (r > 0) {
                    buf_add(&in, chunk, (size_t)r);
                    while (take_request(&in, &oldmask)) {
                    }
                } else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                    input_open = 0;
            } else {
                struct child *c = owner[k];
                int i = slot[k];
                if (i == 0) {
                    ssize_t w = write(c->fds[0], c->out[0].data + c->sent, c->out[0].len - c->sent);
                    if (w > 0)
                        c->sent += (size_t)w;
                    if ((w < 0 && errno != EAGAIN && errno != EINTR) || c->sent == c->out[0].len) {
                        close(c->fds[0]);
                        c->fds[0] = -1;
                    }
                } else {
                    char chunk[65536];
                    ssize_t r = read(c->fds[i], chunk, sizeof chunk);
                    if (r > 0)
                        buf_add(&c->out[i], chunk, (size_t)r);
                    else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        close(c->fds[i]);
                        c->fds[i] = -1;
                    }
                }
            }
        }
        free(fds);
        free(owner);
        free(slot);
        reap();
        finish_done();
    }
    free(in.data);
    return 0;
}
