/* smtp_parse.c: command lines of RFC 5321 §4.1 and the arguments of MAIL,
 * RCPT (§4.1.2, RFC 1869 parameters, RFC 6531), BDAT (RFC 3030) and
 * EHLO/HELO. Pure functions on bytes; nothing here reads past `len`. */
#include "smtp/smtp_parse.h"

#include <errno.h>
#include <string.h>

#include "base/strutil.h"

static const char *const smtp_verb_names[SMTP_VERB_COUNT] = {
    [SMTP_VERB_UNKNOWN] = "unknown", [SMTP_VERB_EHLO] = "ehlo",
    [SMTP_VERB_HELO] = "helo",       [SMTP_VERB_MAIL] = "mail",
    [SMTP_VERB_RCPT] = "rcpt",       [SMTP_VERB_DATA] = "data",
    [SMTP_VERB_BDAT] = "bdat",       [SMTP_VERB_RSET] = "rset",
    [SMTP_VERB_NOOP] = "noop",       [SMTP_VERB_QUIT] = "quit",
    [SMTP_VERB_VRFY] = "vrfy",       [SMTP_VERB_EXPN] = "expn",
    [SMTP_VERB_HELP] = "help",       [SMTP_VERB_STARTTLS] = "starttls",
    [SMTP_VERB_AUTH] = "auth",
};

const char *smtp_verb_name(enum smtp_verb v)
{
    if ((unsigned)v >= SMTP_VERB_COUNT)
        return "unknown";
    return smtp_verb_names[v];
}

/* The LF of the first line end in in[0..len): any LF, or with
 * SMTP_LINE_CRLF_ONLY the first LF right after a CR. NULL if none. */
static const char *smtp_line_end(const char *in, size_t len, unsigned flags)
{
    const char *p = in, *end = in + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (!(flags & SMTP_LINE_CRLF_ONLY) || (p > in && p[-1] == '\r'))
            return p;
        p++;
    }
    return NULL;
}

int smtp_line_take(const char *in, size_t len, size_t max, unsigned flags, size_t *linelen,
                   size_t *consumed)
{
    /* Look no further than a line may be long: octets beyond belong to a
     * line that is too long whatever follows. max 0 means no limit. */
    size_t scan = (max && len > max) ? max : len;
    const char *nl = smtp_line_end(in, scan, flags);
    if (nl == NULL)
        return (max && len >= max) ? SMTP_LINE_TOOLONG : SMTP_LINE_AGAIN;
    size_t n = (size_t)(nl - in);
    size_t content = (n > 0 && in[n - 1] == '\r') ? n - 1 : n;
    /* The limit counts the line as if it ended in CRLF, whether it did or
     * ended in a bare LF (§4.5.3.1.4). */
    if (max && content + 2 > max)
        return SMTP_LINE_TOOLONG;
    *linelen = content;
    *consumed = n + 1;
    /* A reader that ends lines at CRLF only sees one line here; taking it
     * for two commands would let the two readers disagree (the command
     * form of SMTP smuggling). */
    if ((flags & SMTP_LINE_CRLF_ONLY) && memchr(in, '\n', content))
        return SMTP_LINE_BARE_LF;
    return SMTP_LINE_OK;
}

size_t smtp_line_skip(const char *in, size_t len, unsigned flags, int *done)
{
    const char *nl = smtp_line_end(in, len, flags);
    if (nl == NULL) {
        *done = 0;
        if ((flags & SMTP_LINE_CRLF_ONLY) && len && in[len - 1] == '\r')
            return len - 1;
        return len;
    }
    *done = 1;
    return (size_t)(nl - in) + 1;
}

int smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *out)
{
    out->verb = SMTP_VERB_UNKNOWN;
    out->arg = "";
    out->arglen = 0;
    /* No command takes a control octet (§4.1.1: SP separates, CRLF ends).
     * A NUL or a CR inside a line is an attempt to make two programs read
     * it differently: refused, not cleaned. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            return -EINVAL;
    }
    size_t vl = 0;
    while (vl < len && line[vl] != ' ')
        vl++;
    for (int v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
        const char *name = smtp_verb_names[v];
        if (strlen(name) == vl && !strutil_ncasecmp(line, name, vl)) {
            out->verb = (enum smtp_verb)v;
            break;
        }
    }
    if (out->verb == SMTP_VERB_UNKNOWN)
        return 0;
    /* The argument: after the verb and its spaces, trailing spaces cut
     * ("RSET " is RSET: deployed clients send such lines). */
    size_t a = vl;
    while (a < len && line[a] == ' ')
        a++;
    size_t e = len;
    while (e > a && line[e - 1] == ' ')
        e--;
    out->arg = a < e ? line + a : "";
    out->arglen = e - a;
    return 0;
}

/* ---- MAIL / RCPT ---- */

static int smtp_is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value] (§4.1.2):
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126), and UTF-8 (RFC 6531 §3.3).
 * Parses p[0..n) as one parameter into *out; sets *utf8 when the value
 * holds non-ASCII (allowed only with SMTPUTF8, decided by the caller).
 * Returns 0 or -EINVAL. */
static int smtp_param_one(const char *p, size_t n, struct smtp_param *out, int *utf8)
{
    size_t k = 0;
    while (k < n && p[k] != '=') {
        if (!smtp_is_alnum((unsigned char)p[k]) && !(k > 0 && p[k] == '-'))
            return -EINVAL;
        k++;
    }
    if (k == 0 || k >= sizeof out->key)
        return -EINVAL;
    for (size_t i = 0; i < k; i++) {
        char c = p[i];
        out->key[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    out->key[k] = '\0';
    out->has_value = 0;
    out->value[0] = '\0';
    if (k == n)
        return 0;
    const unsigned char *v = (const unsigned char *)p + k + 1;
    size_t vn = n - k - 1;
    if (vn == 0 || vn >= sizeof out->value)
        return -EINVAL;
    for (size_t i = 0; i < vn;) {
        if (v[i] >= 0x80) {
            size_t u = strutil_utf8_len(v + i, vn - i);
            if (u == 0)
                return -EINVAL;
            *utf8 = 1;
            i += u;
        } else if (v[i] >= 33 && v[i] <= 126 && v[i] != '=') {
            i++;
        } else {
            return -EINVAL;
        }
    }
    memcpy(out->value, v, vn);
    out->value[vn] = '\0';
    out->has_value = 1;
    return 0;
}

/* Mail-parameters = esmtp-param *(SP esmtp-param); extra spaces between
 * them are tolerated. Returns 0 or -EINVAL. */
static int smtp_params_parse(const char *p, size_t n, struct smtp_params *ps)
{
    int utf8 = 0;
    size_t i = 0;
    ps->n = 0;
    for (;;) {
        while (i < n && p[i] == ' ')
            i++;
        if (i == n)
            break;
        size_t j = i;
        while (j < n && p[j] != ' ')
            j++;
        if (ps->n == SMTP_PARAMS_MAX)
            return -EINVAL;
        struct smtp_param *sp = &ps->p[ps->n];
        if (smtp_param_one(p + i, j - i, sp, &utf8) < 0)
            return -EINVAL;
        /* The same keyword twice would leave it to chance which counts. */
        if (smtp_params_get(ps, sp->key) != NULL)
            return -EINVAL;
        ps->n++;
        i = j;
    }
    if (utf8 && smtp_params_get(ps, "SMTPUTF8") == NULL)
        return -EINVAL;
    return 0;
}

const struct smtp_param *smtp_params_get(const struct smtp_params *ps, const char *key)
{
    for (size_t i = 0; i < ps->n; i++)
        if (!strutil_casecmp(ps->p[i].key, key))
            return &ps->p[i];
    return NULL;
}

int smtp_parse_mail_rcpt(const char *arg, size_t len, int is_rcpt, unsigned flags,
                         struct mailaddr *path, struct smtp_params *params)
{
    const char *kw = is_rcpt ? "TO:" : "FROM:";
    size_t kl = strlen(kw), i;
    params->n = 0;
    if (len < kl || strutil_ncasecmp(arg, kw, kl))
        return SMTP_PATH_EPREFIX;
    i = kl;
    if (i < len && arg[i] == ' ')
        i++;
    /* Parse the path allowing UTF-8 to find where it ends; whether UTF-8
     * was allowed is decided once the parameters are known. */
    size_t used = 0;
    int rc = mailaddr_parse_path(arg + i, len - i, flags | MAILADDR_ALLOW_UTF8, path, &used);
    switch (rc) {
    case MAILADDR_OK:
        break;
    case MAILADDR_ETOOLONG:
        return SMTP_PATH_ETOOLONG;
    default:
        return SMTP_PATH_ESYNTAX;
    }
    i += used;
    if (i < len && arg[i] != ' ')
        return SMTP_PATH_ESYNTAX;
    if (smtp_params_parse(arg + i, len - i, params) < 0)
        return SMTP_PATH_EPARAM;
    /* RFC 6531 §3.4: a non-ASCII address needs SMTPUTF8 on this MAIL. */
    if ((path->flags & MAILADDR_F_UTF8) && !(flags & MAILADDR_ALLOW_UTF8) &&
        smtp_params_get(params, "SMTPUTF8") == NULL)
        return SMTP_PATH_EUTF8;
    return SMTP_PATH_OK;
}

/* ---- BDAT ---- */

int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, int *last)
{
    /* bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ], chunk-size =
     * 1*DIGIT (RFC 3030 §2). 20 digits hold any 64-bit count. */
    size_t i = 0;
    uint64_t x = 0;
    while (i < len && arg[i] >= '0' && arg[i] <= '9') {
        unsigned d = (unsigned)(arg[i] - '0');
        if (i == 20 || x > (UINT64_MAX - d) / 10)
            return -EINVAL;
        x = x * 10 + d;
        i++;
    }
    if (i == 0)
        return -EINVAL;
    int is_last = 0;
    if (i < len) {
        if (arg[i] != ' ')
            return -EINVAL;
        while (i < len && arg[i] == ' ')
            i++;
        if (len - i != 4 || strutil_ncasecmp(arg + i, "LAST", 4))
            return -EINVAL;
        is_last = 1;
    }
    *size = x;
    *last = is_last;
    return 0;
}

/* ---- EHLO / HELO ---- */

/* RFC 5321 §4.1.1.1 wants a domain or an address literal, but deployed
 * servers accept whatever clients send (bare hostnames, "[ip]" without
 * the "IPv6:" tag, names with '_'), and refusing costs mail while checking
 * proves nothing: the name is only recorded. So the name is the first
 * word, any run of octets other than space and controls (8-bit octets
 * included: the session escapes the name before using it). Refused: an
 * empty name, and any control octet in the whole argument (smtp_cmd_split
 * refuses those already; checked again for direct callers). Words after
 * the name are ignored, as Postfix does. */
int smtp_parse_helo(const char *arg, size_t len, size_t *namelen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)arg[i];
        if (c < 0x20 || c == 0x7f)
            return -EINVAL;
    }
    while (n < len && arg[n] != ' ')
        n++;
    if (n == 0)
        return -EINVAL;
    *namelen = n;
    return 0;
}
