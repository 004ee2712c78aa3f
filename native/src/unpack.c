#include "commands.h"

#include <stdio.h>

int tsfig_cmd_unpack(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "tsfig-runtime unpack: not implemented\n");
    return 125;
}
