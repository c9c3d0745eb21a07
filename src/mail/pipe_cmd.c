/* pipe_cmd.c: see pipe_cmd.h. One scanner serves the check and the
 * expansion, so what the aliases file accepted is what runs. */
#include "mail/pipe_cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xmalloc.h"

static const char *const pipe_cmd_vars[PIPE_VAR_N] = {"sender", "recipient", "user",
                                                      "extension", "domain"};
static const char *const pipe_cmd_envs[PIPE_VAR_N] = {"SENDER", "RECIPIENT", "USER",
                                                      "EXTENSION", "DOMAIN"};

const char *pipe_cmd_var_name(enum pipe_var v)
{
    return (unsigned)v < PIPE_VAR_N ? pipe_cmd_vars[v] : "";
}

const char *pipe_cmd_env_name(enum pipe_var v)
{
    return (unsigned)v < PIPE_VAR_N ? pipe_cmd_envs[v] : "";
}

/* The variable whose "${name}" starts at s (s[0] == '$', s[1] == '{'):
 * its index, with *len the length of the reference; -EINVAL if unknown
 * or unterminated. */
static int pipe_cmd_var_at(const char *s, size_t *len)
{
    const char *end = strchr(s + 2, '}');
    if (end == NULL)
        return -EINVAL;
    size_t n = (size_t)(end - (s + 2));
    for (int v = 0; v < PIPE_VAR_N; v++) {
        if (strlen(pipe_cmd_vars[v]) == n && !memcmp(s + 2, pipe_cmd_vars[v], n)) {
            *len = n + 3;
            return v;
        }
    }
    return -EINVAL;
}

/* Walks the template word by word. With vals and argv set, appends each
 * expanded word to *argv (*argc of them). Returns 0 or -EINVAL with *why. */
static int pipe_cmd_scan(const char *tmpl, const char *const *vals, char ***argv, size_t *argc,
                         const char **why)
{
    size_t n = strlen(tmpl), words = 0;
    if (n == 0 || n > PIPE_CMD_MAX) {
        *why = n ? "the command is longer than 1024 octets" : "no command";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tmpl[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            *why = "the command may only hold printable ASCII";
            return -EINVAL;
        }
    }
    struct buf w = BUF_INIT;
    const char *p = tmpl;
    int rc = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (++words > PIPE_CMD_ARGS_MAX) {
            *why = "more than 32 words in the command";
            rc = -EINVAL;
            break;
        }
        if (words == 1 && *p != '/') {
            /* No search of PATH: the aliases file says which program. */
            *why = "the program must be an absolute path";
            rc = -EINVAL;
            break;
        }
        buf_reset(&w);
        buf_puts(&w, "");
        while (*p && *p != ' ' && *p != '\t') {
            if (p[0] == '$' && p[1] == '{') {
                size_t len = 0;
                int v = pipe_cmd_var_at(p, &len);
                if (v < 0 || words == 1) {
                    *why = v < 0 ? "unknown ${name} (use sender, recipient, user, extension, "
                                   "domain)"
                                 : "the program path cannot hold a ${name}";
                    rc = -EINVAL;
                    break;
                }
                if (vals && vals[v])
                    buf_puts(&w, vals[v]);
                p += len;
                continue;
            }
            buf_putc(&w, *p++);
        }
        if (rc < 0)
            break;
        if (argv) {
            *argv = xrealloc(*argv, (*argc + 2) * sizeof **argv);
            (*argv)[(*argc)++] = xstrdup(w.data);
            (*argv)[*argc] = NULL;
        }
    }
    buf_free(&w);
    if (rc == 0 && words == 0) {
        *why = "no command";
        rc = -EINVAL;
    }
    return rc;
}

int pipe_cmd_check(const char *tmpl, const char **why)
{
    return pipe_cmd_scan(tmpl, NULL, NULL, NULL, why);
}

int pipe_cmd_expand(const char *tmpl, const char *const *vals, char ***argv)
{
    static const char *const none[PIPE_VAR_N] = {NULL};
    const char *why = NULL;
    size_t argc = 0;
    *argv = NULL;
    int rc = pipe_cmd_scan(tmpl, vals ? vals : none, argv, &argc, &why);
    if (rc < 0) {
        pipe_cmd_free(*argv);
        *argv = NULL;
    }
    return rc;
}

void pipe_cmd_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}
