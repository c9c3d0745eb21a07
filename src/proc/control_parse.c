/* control_parse.c: see control_parse.h. */
#include "proc/control_parse.h"

#include <errno.h>
#include <string.h>

/* nargs: how many words follow the command: exact, or at least min. */
static const struct {
    const char *name;
    enum control_cmd cmd;
    size_t min, max;
} control_cmds[] = {
    {"list", CTL_LIST, 0, 0},
    {"show", CTL_SHOW, 1, 1},
    {"shape", CTL_SHAPE, 0, 0},
    {"flush", CTL_FLUSH, 0, 0},
    {"retry", CTL_RETRY, 1, CONTROL_ARGS_MAX},
    {"hold", CTL_HOLD, 1, CONTROL_ARGS_MAX},
    {"release", CTL_RELEASE, 1, CONTROL_ARGS_MAX},
    {"delete", CTL_DELETE, 1, CONTROL_ARGS_MAX},
    {"pause", CTL_PAUSE, 1, 1},
    {"resume", CTL_RESUME, 1, 1},
};

const char control_usage[] =
    "list | show ID | shape | flush | retry ID... | hold ID... | release ID... | delete ID... "
    "(ID may be ALL) | pause DOMAIN | resume DOMAIN";

const char *control_cmd_name(enum control_cmd cmd)
{
    for (size_t i = 0; i < sizeof control_cmds / sizeof control_cmds[0]; i++)
        if (control_cmds[i].cmd == cmd)
            return control_cmds[i].name;
    return "?";
}

int control_parse(char *line, struct control_req *req, const char **why)
{
    char *words[CONTROL_ARGS_MAX + 1];
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)line; *c; c++) {
        if (*c != ' ' && (*c < 0x21 || *c > 0x7e)) {
            *why = "only printable ASCII words separated by spaces";
            return -EINVAL;
        }
    }
    for (char *p = line; *p;) {
        if (*p == ' ') {
            *p++ = '\0';
            continue;
        }
        if (n == CONTROL_ARGS_MAX + 1) {
            *why = "too many arguments";
            return -EINVAL;
        }
        words[n++] = p;
        while (*p && *p != ' ')
            p++;
    }
    if (n == 0) {
        *why = "empty request";
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof control_cmds / sizeof control_cmds[0]; i++) {
        if (strcmp(words[0], control_cmds[i].name) != 0)
            continue;
        if (n - 1 < control_cmds[i].min || n - 1 > control_cmds[i].max) {
            *why = "wrong number of arguments";
            return -EINVAL;
        }
        req->cmd = control_cmds[i].cmd;
        req->nargs = n - 1;
        for (size_t k = 1; k < n; k++)
            req->args[k - 1] = words[k];
        return 0;
    }
    *why = "unknown command";
    return -EINVAL;
}
