#include "mail/result.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

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
    for (char *p = r->text; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
}

/* RFC 3463 §2: class "." subject "." detail, 1-3 digits each. */
static int result_enh_ok(const char *e, char cls)
{
    if (e[0] != cls || e[1] != '.')
        return 0;
    const char *p = e + 2;
    for (int part = 0; part < 2; part++) {
        int n = 0;
        while (isdigit((unsigned char)*p) && n < 4) {
            p++;
            n++;
        }
        if (n == 0 || n > 3 || *p != (part == 0 ? '.' : '\0'))
            return 0;
        p++;
    }
    return 1;
}

int result_from_peer(struct result *r, uint32_t kind, int32_t code)
{
    static const char cls[] = {'2', '4', '5'};
    if (kind > RESULT_PERMFAIL || code < 200 || code > 599 || code / 100 != cls[kind] - '0' ||
        !result_enh_ok(r->enh, cls[kind]))
        return -1;
    for (char *c = r->text; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    r->kind = (enum result_kind)kind;
    r->code = code;
    return 0;
}
