/* tsfig-runtime: the native helper of tsfig's engine. See native/PROTOCOL.md. */
#include "commands.h"
#include "error.h"
#include "sealed.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TSFIG_RUNTIME_VERSION "0.1.0"

const char *tsfig_self_path;

/* The commands that enter a container (start: the monitor and the container's init; exec) and the spawner, whose
 * sealed copy the commands it starts share, run from a sealed memfd (or a read-only bind of the binary where the
 * kernel refuses executable memfds: sealed.c) before they do anything else. */
static int needs_sealed_exe(const char *command)
{
    return strcmp(command, "start") == 0 || strcmp(command, "exec") == 0 || strcmp(command, "spawner") == 0;
}

int main(int argc, char **argv)
{
    tsfig_self_path = argv[0];
    char why[512];
    if (argc >= 2 && needs_sealed_exe(argv[1]) && tsfig_reexec_sealed(argv, why, sizeof why) < 0) {
        fprintf(stderr, "tsfig-runtime: %s\n", why);
        return 125;
    }
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("tsfig-runtime %s protocol %d\n", TSFIG_RUNTIME_VERSION, TSFIG_PROTOCOL_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "start") == 0)
        return tsfig_cmd_start(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "exec") == 0)
        return tsfig_cmd_exec(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "shift") == 0)
        return tsfig_cmd_shift(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "idmap-probe") == 0)
        return tsfig_cmd_idmap_probe(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "unpack") == 0)
        return tsfig_cmd_unpack(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "netns") == 0)
        return tsfig_cmd_netns(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "spawner") == 0)
        return tsfig_cmd_spawner(argc - 1, argv + 1);
    fprintf(stderr, "usage: tsfig-runtime version | start DIR | exec DIR [OPTIONS] -- ARG... | unpack [--gzip] [--digest] [--tar-split FILE] DIR | shift copy|chown ... | idmap-probe DIR | netns create FILE... | netns config | spawner\n");
    return 2;
}
