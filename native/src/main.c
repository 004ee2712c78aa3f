/* tsfig-runtime: the native helper of tsfig's engine. See native/PROTOCOL.md. */
#include "commands.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

#define TSFIG_RUNTIME_VERSION "0.1.0"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("tsfig-runtime %s protocol %d\n", TSFIG_RUNTIME_VERSION, TSFIG_PROTOCOL_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "start") == 0)
        return tsfig_cmd_start(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "exec") == 0)
        return tsfig_cmd_exec(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "unpack") == 0)
        return tsfig_cmd_unpack(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "netns") == 0)
        return tsfig_cmd_netns(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "spawner") == 0)
        return tsfig_cmd_spawner(argc - 1, argv + 1);
    fprintf(stderr, "usage: tsfig-runtime version | start DIR | exec DIR [OPTIONS] -- ARG... | unpack DIR | netns create FILE... | netns config | spawner\n");
    return 2;
}
