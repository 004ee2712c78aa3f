/* The built-in minimal init (`init 1`, docker run --init): PID 1 forwards signals to the command, reaps every
 * zombie re-parented to it and exits with the command's status (128+N when killed by signal N). */
#include "container.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void tsfig_close_from(int lowest)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = lowest; fd < (max > 0 ? max : 1024); fd++)
        (void)close((int)fd);
}

static void noop(int sig)
{
    (void)sig;
}

void tsfig_minit_run(pid_t child)
{
    sigset_t all;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = noop;
    /* As PID 1 of the namespace a signal with the default action is dropped; a handler makes it deliverable. */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL);
    sigfillset(&all);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            /* like tini: job-control signals aimed at the init itself are not forwarded */
            if (sig != SIGTTIN && sig != SIGTTOU)
                kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0)
                break;
            if (p != child)
                continue;
            if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));
            _exit(128 + WTERMSIG(status));
        }
    }
}
