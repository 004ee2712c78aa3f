/* The container process: everything between clone() and execve() (engine-anchors §7 steps 8-22). */
#ifndef TSFIG_CONTAINER_H
#define TSFIG_CONTAINER_H

#include "caps.h"
#include "conf.h"
#include "error.h"

struct tsfig_child_fds {
    int gate;      /* read end: one byte once the monitor has put us in our cgroups */
    int err;       /* write end, CLOEXEC: a tsfig_error_t if anything fails before execve */
    int stdin_fd;  /* -1 with tty */
    int stdout_fd;
    int stderr_fd;
    int tty_sock;  /* with tty: unix socket on which the pty master is sent to the monitor */
};

/* Never returns: execve()s the command or reports on fds->err and exits. */
__attribute__((noreturn)) void tsfig_container_main(const struct tsfig_conf *c, struct tsfig_child_fds *fds);

/* tsfig_exec_command flags: run the minimal init as this process (docker run --init); this is the container's PID 1
 * (not an exec'd process): without a cgroup it keeps SIGKILL as its parent-death signal. */
#define TSFIG_EXEC_INIT 1
#define TSFIG_EXEC_MAIN 2

/* Shared with exec: resolve user, apply caps/NNP/seccomp (in the right order), look up argv[0], execve.
 * err_fd receives a tsfig_error_t on failure. flags: TSFIG_EXEC_*. */
__attribute__((noreturn)) void tsfig_exec_command(const struct tsfig_conf *c, const char *user, const char *cwd,
                                                  char **env, size_t n_env, int flags, int err_fd);

/* What tsfig_exec_join leaves for the child it forks next: the files through which the child moves itself into the
 * container's cgroups (the joining process stays out of them, so stopping the container never kills it before it
 * has reported the exit of its process). */
struct tsfig_exec_join {
    int cgroup_fds[8];
    int n_cgroup;
};

/* exec.c, shared by `exec` and the monitor's healthcheck: join the namespaces of the running container whose PID 1
 * is pid (setns through a pidfd; the next fork() lands in its pid namespace) and open its cgroups' join files in j;
 * the forked child calls tsfig_exec_enter_cgroup first, the parent tsfig_exec_join_release after the fork ... */
int tsfig_exec_join(const struct tsfig_conf *c, pid_t pid, struct tsfig_exec_join *j, tsfig_error_t *err);
int tsfig_exec_enter_cgroup(struct tsfig_exec_join *j, tsfig_error_t *err);
void tsfig_exec_join_release(struct tsfig_exec_join *j);
/* The keeper of `exec --detach`, forked by the container's monitor (monitor.c, ctl command `exec NAME`): reads the
 * exec's arguments from <run_dir>/NAME (written by the `exec --detach` helper, removed here), starts the process in
 * the container whose PID 1 is pid with stdio on /dev/null, answers on fd ("k" once it has execve'd, else the error
 * as a protocol line) and stays to reap it. Returns the exit code for the keeper. */
int tsfig_exec_keeper(const struct tsfig_conf *c, pid_t pid, int fd, const char *name);
/* ... then, in the forked child: rlimits, user, caps, no_new_privs, seccomp, execve of c->args (never returns). */
__attribute__((noreturn)) void tsfig_exec_in_container(const struct tsfig_conf *c, const char *user, const char *cwd,
                                                       char **env, size_t n_env, int err_fd);

/* rlimits (never above the current hard limit) and oom_score_adj of runtime.conf, for the calling process. */
int tsfig_apply_rlimits(const struct tsfig_conf *c, tsfig_error_t *err);

/* Sends an error struct on fd and exits with its code. */
__attribute__((noreturn)) void tsfig_child_fail(int fd, tsfig_error_t *err);

/* minit.c: PID 1 that runs `child` (a forked pid), forwards signals, reaps zombies; exits with child's status. */
__attribute__((noreturn)) void tsfig_minit_run(pid_t child);
/* Closes every fd from lowest up (close_range, or one by one where the kernel has none). */
void tsfig_close_from(int lowest);

/* Sends/receives one fd over a unix socket. */
int tsfig_send_fd(int sock, int fd);
int tsfig_recv_fd(int sock);

#endif
