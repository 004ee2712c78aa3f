#include "commands.h"

#include <stdio.h>

int tsfig_cmd_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tsfig-runtime exec: not implemented\n");
    return 125;
}
