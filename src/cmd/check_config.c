/* check_config.c: `tern check-config [-c FILE]`. */
#include <stdio.h>

#include "base/buf.h"
#include "cmd/cmds.h"
#include "conf/config.h"

int cmd_check_config(int argc, char **argv)
{
    const char *path;
    int opt = cmd_parse_config_opt(argc, argv, &path);
    if (opt != 0)
        return opt > 0 ? 0 : 64;
    struct config cfg;
    config_default(&cfg);
    struct buf err = BUF_INIT;
    int rc = 0;
    if (path && config_load(&cfg, path, &err) < 0)
        rc = 78;
    if (rc == 0 && config_check(&cfg, &err) < 0)
        rc = 78;
    if (err.len)
        fprintf(stderr, "%s", err.data);
    if (rc == 0)
        printf("%s: configuration ok\n", path ? path : "(embedded default)");
    buf_free(&err);
    config_free(&cfg);
    return rc;
}
