#include "mail/result.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/strutil.h"

void result_set(struct result *r, enum result_kind kind, int code, const char *enh,
                const char *fmt, ...)
{
    r->kind = kind;
    r->code = code;
    strutil_lcpy(r->enh, enh, sizeof r->enh);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
    /* Logs, replies and notices carry it: one line of printable ASCII
     * (a next hop's reply may hold anything). */
    for (char *p = r->text; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
        else if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

/* digits: 1 to max decimal digits at *p, advanced past them. */
static int result_digits(const char **p, int max)
{
    int n = 0;
    while (**p >= '0' && **p <= '9') {
        (*p)++;
        if (++n > max)
            return 0;
    }
    return n > 0;
}

int result_enh_valid(const char *enh, char cls)
{
    const char *p = enh;
    if (p[0] != cls || p[1] != '.')
        return 0;
    p += 2;
    return result_digits(&p, 3) && *p++ == '.' && result_digits(&p, 3) && *p == '\0';
}

int result_valid(const struct result *r)
{
    static const char cls[] = {'2', '4', '5'};
    if ((unsigned)r->kind > RESULT_PERMFAIL || r->code < 200 || r->code > 599 ||
        r->code / 100 != cls[r->kind] - '0')
        return 0;
    if (memchr(r->enh, '\0', sizeof r->enh) == NULL || !result_enh_valid(r->enh, cls[r->kind]))
        return 0;
    size_t n = strnlen(r->text, sizeof r->text);
    if (n == sizeof r->text)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)r->text[i] < 0x20 || (unsigned char)r->text[i] > 0x7e)
            return 0;
    return 1;
}

void result_spool_error(struct result *r, int err)
{
    if (err == -ENOSPC || err == -EDQUOT)
        result_set(r, RESULT_TEMPFAIL, 452, "4.3.1", "Insufficient system storage");
    else
        result_set(r, RESULT_TEMPFAIL, 451, "4.3.0", "Error: queue file write error");
}
