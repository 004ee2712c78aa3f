#include "commands.h"

#include <stdio.h>

int tsfig_cmd_start(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tsfig-runtime start: not implemented\n");
    return 125;
}
