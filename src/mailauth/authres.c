/* authres.c: building and reading Authentication-Results (authres.h).
 *
 * The builder lays the field out as words: each result starts a new
 * line, and within a result a fold may come before any word (a comment's
 * words included: FWS is allowed inside a comment, RFC 5322 §3.2.2), so
 * a line goes past 78 characters only when one word is longer. */
#include "mailauth/authres.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/strutil.h"

#define AUTHRES_LINE 78
#define AUTHRES_REASON_MAX 200 /* octets of a reason kept */
#define AUTHRES_VALUE_MAX 320  /* octets of a value: local-part@domain */
#define AUTHRES_B_MIN 8        /* RFC 6008 §4 */
#define AUTHRES_B_MAX 128

/* ---- characters ---- */

static bool authres_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* RFC 2045 §5.1 token characters. */
static bool authres_is_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 5322 §3.2.3 atext. */
static bool authres_is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool authres_is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!authres_is_token_char((unsigned char)s[i]))
            return false;
    return true;
}

/* dot-atom-text: atext runs joined by single dots. */
static bool authres_is_dot_atom(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' ? s[i + 1] == '.' : !authres_is_atext((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* pvalue's "[ [ local-part ] "@" ] domain-name" form, dot-atoms only. */
static bool authres_is_addr(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (at == NULL)
        return false;
    size_t l = (size_t)(at - s);
    return (l == 0 || authres_is_dot_atom(s, l)) && authres_is_dot_atom(at + 1, n - l - 1);
}

void authres_text(struct buf *out, const char *s, size_t n,
                  void (*ascii)(struct buf *out, unsigned char c, const void *arg),
                  const void *arg)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c >= 0x80 ? strutil_utf8_len((const unsigned char *)s + i, n - i) : 0;
        if (k) {
            buf_append(out, s + i, k);
            i += k;
            continue;
        }
        if (c >= 0x80)
            buf_putc(out, '?');
        else
            ascii(out, c, arg);
        i++;
    }
}

/* An ASCII octet of a value or comment: controls become '?', the
 * characters in the string arg (if any) get a '\'. */
static void authres_ascii(struct buf *b, unsigned char c, const void *arg)
{
    const char *esc = arg;
    if (authres_is_ctl(c)) {
        buf_putc(b, '?');
        return;
    }
    if (esc && strchr(esc, c))
        buf_putc(b, '\\');
    buf_putc(b, (char)c);
}

/* Appends s[0..n) with the characters in esc escaped with '\';
 * controls and malformed UTF-8 become '?'. */
static void authres_put_text(struct buf *b, const char *s, size_t n, const char *esc)
{
    authres_text(b, s, n, authres_ascii, esc);
}

/* ---- layout ---- */

struct authres_out {
    struct buf *b;
    size_t col; /* characters on the current line */
};

/* Appends one word: on this line after a space when it fits (with room
 * for the ';' that may follow), else on a new folded line. `first` starts
 * a result: always a new line. */
static void authres_word(struct authres_out *o, const char *w, size_t n, bool first)
{
    if (first || o->col + 1 + n + 1 > AUTHRES_LINE) {
        buf_puts(o->b, "\r\n\t");
        o->col = 1;
    } else {
        buf_putc(o->b, ' ');
        o->col++;
    }
    buf_append(o->b, w, n);
    o->col += n;
}

/* A word built in scratch. */
static void authres_word_buf(struct authres_out *o, struct buf *w, bool first)
{
    authres_word(o, w->data ? w->data : "", w->len, first);
    buf_reset(w);
}

/* A value raw when it is a token, or (a pvalue, `addr`) local@domain;
 * else quoted. The authserv-id is a value, never the pvalue form. */
static void authres_put_value(struct buf *w, const char *v, bool addr)
{
    size_t n = strlen(v);
    if (n > AUTHRES_VALUE_MAX)
        n = AUTHRES_VALUE_MAX;
    if (authres_is_token(v, n) || (addr && authres_is_addr(v, n))) {
        buf_append(w, v, n);
        return;
    }
    buf_putc(w, '"');
    authres_put_text(w, v, n, "\"\\");
    buf_putc(w, '"');
}

/* "ptype.property=value" as one word. */
static void authres_prop(struct authres_out *o, struct buf *w, const char *prop, const char *v,
                         size_t vlen)
{
    if (v == NULL)
        return;
    buf_puts(w, prop);
    buf_putc(w, '=');
    char tmp[AUTHRES_VALUE_MAX + 1];
    size_t n = vlen < AUTHRES_VALUE_MAX ? vlen : AUTHRES_VALUE_MAX;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    authres_put_value(w, tmp, true);
    authres_word_buf(o, w, false);
}

/* A reason as a comment, one word per space-separated piece so it can
 * fold; cut to AUTHRES_REASON_MAX octets. */
static void authres_comment(struct authres_out *o, struct buf *w, const char *reason)
{
    if (reason == NULL || *reason == '\0')
        return;
    size_t n = strlen(reason);
    if (n > AUTHRES_REASON_MAX)
        n = AUTHRES_REASON_MAX;
    struct buf text = BUF_INIT;
    buf_putc(&text, '(');
    authres_put_text(&text, reason, n, "()\\");
    buf_putc(&text, ')');
    size_t start = 0;
    for (size_t i = 0; i <= text.len; i++) {
        if (i < text.len && text.data[i] != ' ')
            continue;
        if (i > start) {
            buf_append(w, text.data + start, i - start);
            authres_word_buf(o, w, false);
        }
        start = i + 1;
    }
    buf_free(&text);
}

/* "method=result" starting a result on a new line (after the previous
 * result's ';'). */
static void authres_method(struct authres_out *o, struct buf *w, const char *method,
                           const char *result)
{
    buf_putc(o->b, ';');
    buf_printf(w, "%s=%s", method, result);
    authres_word_buf(o, w, true);
}

/* RFC 6008 §4: the shortest prefix of b, at least 8 characters, that no
 * other signature of the message shares. */
static size_t authres_b_len(const struct authres_results *r, size_t k)
{
    const char *b = r->dkim[k].b;
    size_t n = strlen(b), len = n < AUTHRES_B_MIN ? n : AUTHRES_B_MIN;
    for (size_t j = 0; j < r->ndkim; j++) {
        const char *o = r->dkim[j].b;
        if (j == k || o == NULL)
            continue;
        while (len < n && strncmp(b, o, len) == 0)
            len++;
    }
    return len < AUTHRES_B_MAX ? len : AUTHRES_B_MAX;
}


int authres_build(const struct authres_results *r, struct buf *out)
{
    const char *id = r->authserv_id;
    size_t idn = id ? strlen(id) : 0;
    if (idn == 0 || idn >= AUTHRES_ID_MAX)
        return -EINVAL;
    for (size_t i = 0; i < idn; i++)
        if (authres_is_ctl((unsigned char)id[i]) || (unsigned char)id[i] >= 0x80)
            return -EINVAL;
    struct authres_out o = {out, 0};
    struct buf w = BUF_INIT;
    buf_puts(out, "Authentication-Results:");
    o.col = strlen("Authentication-Results:");
    authres_put_value(&w, id, false);
    authres_word_buf(&o, &w, false);
    size_t results = 0;
    for (size_t i = 0; i < r->nspf; i++) {
        const struct authres_spf *s = &r->spf[i];
        authres_method(&o, &w, "spf", spf_result_name(s->result));
        authres_comment(&o, &w, s->reason);
        if (s->identity)
            authres_prop(&o, &w, s->helo ? "smtp.helo" : "smtp.mailfrom", s->identity,
                         strlen(s->identity));
        results++;
    }
    for (size_t i = 0; i < r->ndkim; i++) {
        const struct authres_dkim *d = &r->dkim[i];
        authres_method(&o, &w, "dkim", dkim_result_name(d->result));
        authres_comment(&o, &w, d->reason);
        static const char *const props[] = {"header.d", "header.i", "header.s", "header.a"};
        const char *vals[] = {d->d, d->i, d->s, d->a};
        for (size_t k = 0; k < 4; k++)
            if (vals[k])
                authres_prop(&o, &w, props[k], vals[k], strlen(vals[k]));
        if (d->b && *d->b)
            authres_prop(&o, &w, "header.b", d->b, authres_b_len(r, i));
        results++;
    }
    if (r->dmarc) {
        const struct authres_dmarc *d = r->dmarc;
        authres_method(&o, &w, "dmarc", dmarc_result_name(d->result));
        authres_comment(&o, &w, d->reason);
        if (d->header_from)
            authres_prop(&o, &w, "header.from", d->header_from, strlen(d->header_from));
        if (d->has_policy) {
            const char *p = dmarc_policy_name(d->policy);
            authres_prop(&o, &w, "policy.dmarc", p, strlen(p));
        }
        results++;
    }
    if (r->arc) {
        const struct authres_arc *a = r->arc;
        authres_method(&o, &w, "arc", arc_result_name(a->result));
        authres_comment(&o, &w, a->reason);
        if (a->remote_ip)
            authres_prop(&o, &w, "smtp.remote-ip", a->remote_ip, strlen(a->remote_ip));
        if (a->oldest_pass >= 0) {
            char n[16];
            snprintf(n, sizeof n, "%d", a->oldest_pass);
            authres_prop(&o, &w, "header.oldest-pass", n, strlen(n));
        }
        results++;
    }
    if (results == 0)
        buf_puts(out, "; none");
    buf_puts(out, "\r\n");
    buf_free(&w);
    return 0;
}

/* ---- reading ---- */

/* Skips CFWS from *i: 0, or -EINVAL for an unterminated comment. */
static int authres_skip_cfws(const char *v, size_t n, size_t *i)
{
    unsigned depth = 0;
    for (; *i < n; (*i)++) {
        char c = v[*i];
        if (c == '(') {
            depth++;
        } else if (depth > 0 && c == ')') {
            depth--;
        } else if (depth > 0 && c == '\\') {
            if (*i + 1 >= n)
                return -EINVAL;
            (*i)++;
        } else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            return 0;
        }
    }
    return depth == 0 ? 0 : -EINVAL;
}

/* The value (RFC 2045 token or quoted-string) at *i into id. 0, -EINVAL,
 * -ENAMETOOLONG. Octets over 0x7f count as token characters (RFC 6532
 * peers), so an 8-bit id is read whole, not cut short. */
static int authres_read_value(const char *v, size_t n, size_t *i, char id[AUTHRES_ID_MAX])
{
    size_t len = 0;
    bool over = false;
    if (*i < n && v[*i] == '"') {
        for ((*i)++; *i < n && v[*i] != '"'; (*i)++) {
            char c = v[*i];
            if (c == '\r' || c == '\n')
                continue; /* unfolding */
            if (c == '\\') {
                if (*i + 1 >= n)
                    return -EINVAL;
                c = v[++*i];
            }
            if (len + 1 < AUTHRES_ID_MAX)
                id[len++] = c;
            else
                over = true;
        }
        if (*i >= n || len == 0)
            return -EINVAL; /* unterminated, or "": no id at all */
        (*i)++;
    } else {
        while (*i < n && (authres_is_token_char((unsigned char)v[*i]) ||
                          (unsigned char)v[*i] >= 0x80)) {
            if (len + 1 < AUTHRES_ID_MAX)
                id[len++] = v[*i];
            else
                over = true;
            (*i)++;
        }
        if (len == 0)
            return -EINVAL;
    }
    id[len] = '\0';
    if (over)
        return -ENAMETOOLONG;
    return memchr(id, '\0', len) ? -EINVAL : 0;
}

/* authres-payload up to and with the id; *i after it. */
static int authres_read_id(const char *v, size_t n, size_t *i, char id[AUTHRES_ID_MAX])
{
    int rc = authres_skip_cfws(v, n, i);
    return rc < 0 ? rc : authres_read_value(v, n, i, id);
}

/* What may follow the id: [CFWS authres-version] then ';' or the end. */
static int authres_check_rest(const char *v, size_t n, size_t i)
{
    if (authres_skip_cfws(v, n, &i) < 0)
        return -EINVAL;
    if (i < n && v[i] >= '0' && v[i] <= '9') {
        while (i < n && v[i] >= '0' && v[i] <= '9')
            i++;
        if (authres_skip_cfws(v, n, &i) < 0)
            return -EINVAL;
    }
    return i == n || v[i] == ';' ? 0 : -EINVAL;
}

/* "i" [CFWS] "=" [CFWS] 1*2DIGIT [CFWS] ";" (RFC 8617 §4.1.1; the
 * instance is 1 to 50, §4.2.1). *i after the ';'. */
static int authres_read_instance(const char *v, size_t n, size_t *i, unsigned *instance)
{
    if (authres_skip_cfws(v, n, i) < 0 || *i >= n || v[*i] != 'i')
        return -EINVAL;
    (*i)++;
    if (authres_skip_cfws(v, n, i) < 0 || *i >= n || v[*i] != '=')
        return -EINVAL;
    (*i)++;
    if (authres_skip_cfws(v, n, i) < 0)
        return -EINVAL;
    unsigned x = 0, digits = 0;
    while (*i < n && v[*i] >= '0' && v[*i] <= '9' && digits < 3) {
        x = x * 10 + (unsigned)(v[*i] - '0');
        digits++;
        (*i)++;
    }
    if (digits == 0 || digits > 2 || x < 1 || x > 50)
        return -EINVAL;
    if (authres_skip_cfws(v, n, i) < 0 || *i >= n || v[*i] != ';')
        return -EINVAL;
    (*i)++;
    *instance = x;
    return 0;
}

int authres_parse_id(const char *v, size_t n, char id[AUTHRES_ID_MAX])
{
    size_t i = 0;
    int rc = authres_read_id(v, n, &i, id);
    return rc < 0 ? rc : authres_check_rest(v, n, i);
}

int authres_parse_arc_instance(const char *v, size_t n, unsigned *instance, size_t *payload)
{
    size_t i = 0;
    int rc = authres_read_instance(v, n, &i, instance);
    if (rc == 0)
        *payload = i;
    return rc;
}

int authres_parse_arc_id(const char *v, size_t n, unsigned *instance, char id[AUTHRES_ID_MAX])
{
    size_t i = 0;
    int rc = authres_read_instance(v, n, &i, instance);
    if (rc == 0)
        rc = authres_read_id(v, n, &i, id);
    return rc < 0 ? rc : authres_check_rest(v, n, i);
}

/* Skips one resinfo's rest (reason, properties) up to the next ';' at the
 * top level or the end. 0 or -EINVAL (an unterminated quote or comment). */
static int authres_skip_resinfo(const char *v, size_t n, size_t *i)
{
    while (*i < n && v[*i] != ';') {
        if (v[*i] == '(') {
            if (authres_skip_cfws(v, n, i) < 0)
                return -EINVAL;
        } else if (v[*i] == '"') {
            for ((*i)++; *i < n && v[*i] != '"'; (*i)++)
                if (v[*i] == '\\' && ++*i >= n)
                    return -EINVAL;
            if (*i >= n)
                return -EINVAL;
            (*i)++;
        } else {
            (*i)++;
        }
    }
    return 0;
}

int authres_parse_result(const char *v, size_t n, const char *method, char *result, size_t cap)
{
    char id[AUTHRES_ID_MAX];
    size_t i = 0;
    if (authres_read_id(v, n, &i, id) < 0 || authres_skip_cfws(v, n, &i) < 0)
        return -EINVAL;
    while (i < n && v[i] >= '0' && v[i] <= '9')
        i++; /* authres-version */
    size_t mlen = strlen(method);
    while (i < n) {
        if (authres_skip_cfws(v, n, &i) < 0)
            return -EINVAL;
        if (i == n)
            break;
        if (v[i] != ';')
            return -EINVAL;
        i++;
        if (authres_skip_cfws(v, n, &i) < 0)
            return -EINVAL;
        size_t m = i;
        while (i < n && authres_is_token_char((unsigned char)v[i]))
            i++;
        bool match = i - m == mlen && mlen > 0 && strutil_ncasecmp(v + m, method, mlen) == 0;
        if (i < n && v[i] == '/') /* method-version */
            for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++)
                ;
        if (authres_skip_cfws(v, n, &i) < 0)
            return -EINVAL;
        if (i < n && v[i] == '=' && match) {
            i++;
            if (authres_skip_cfws(v, n, &i) < 0)
                return -EINVAL;
            size_t r = i;
            while (i < n && authres_is_token_char((unsigned char)v[i]))
                i++;
            if (i == r || i - r >= cap)
                return -EINVAL;
            for (size_t k = 0; k < i - r; k++)
                result[k] = (char)tolower((unsigned char)v[r + k]);
            result[i - r] = '\0';
            return 0;
        }
        if (authres_skip_resinfo(v, n, &i) < 0)
            return -EINVAL;
    }
    return -ENOENT;
}

/* Compares ignoring ASCII case and one final dot on either side. */
static bool authres_same_id(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strutil_ncasecmp(a, b, la) == 0;
}

int authres_claims_id(const char *v, size_t n, bool arc, const char *ours)
{
    char id[AUTHRES_ID_MAX];
    size_t i = 0;
    unsigned instance;
    if (arc && authres_read_instance(v, n, &i, &instance) < 0)
        return 1;
    int rc = authres_read_id(v, n, &i, id);
    if (rc == -ENAMETOOLONG)
        return 0; /* longer than any host name: not ours */
    if (rc < 0)
        return 1;
    return authres_same_id(id, ours) ? 1 : 0;
}
