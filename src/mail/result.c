#include "mail/result.h"

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
