/* lines.c: the line reader shared by the config, users and aliases
 * files, and the one place that formats "file:line: ..." messages. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsio.h"
#include "conf/config_priv.h"

void conf_error(struct buf *err, const char *file, unsigned line, const char *fmt, ...)
{
    if (line)
        buf_printf(err, "%s:%u: ", file, line);
    else
        buf_printf(err, "%s: ", file);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(err, fmt, ap);
    va_end(ap);
    buf_putc(err, '\n');
}

static int conf_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Cuts the comment and trims; returns the start of what is left. A '#'
 * inside a word (a password hash, "a#b") is kept: only one that starts
 * the line or follows white space begins a comment. */
static char *conf_line_clean(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '#' && (i == 0 || conf_is_space(s[i - 1]))) {
            len = i;
            break;
        }
    }
    while (len && conf_is_space(s[len - 1]))
        len--;
    s[len] = '\0';
    while (conf_is_space(*s))
        s++;
    return s;
}

int conf_lines_read(const char *path, size_t max, conf_line_fn fn, void *arg, struct buf *err,
                    int *oserr)
{
    char *data = NULL;
    size_t len = 0;
    int rc = fsio_read_file(path, max, &data, &len);
    if (rc < 0) {
        *oserr = -rc;
        return CONF_EREAD;
    }
    int bad = 0;
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        lineno++;
        char *start = data + pos;
        char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (memchr(start, '\0', n)) {
            /* A NUL would silently cut the line short: say so instead. */
            conf_error(err, path, lineno, "NUL byte in line");
            bad = 1;
            continue;
        }
        char *line = conf_line_clean(start, n);
        if (*line == '\0')
            continue;
        if (fn(arg, line, lineno) < 0)
            bad = 1;
    }
    free(data);
    return bad ? CONF_ELINES : 0;
}
