/* version.c: `tern version`. */
#include <stdio.h>

#include "cmd/cmds.h"

int cmd_version(int argc, char **argv)
{
    printf("tern %s\n", TERN_VERSION);
    return 0;
}
