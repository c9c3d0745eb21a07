/* spf_macro.c: SPF macro strings (RFC 7208 §7.1 ABNF, §7.3 expansion).
 * One tokenizer serves the syntax check and the expansion, so the two
 * cannot disagree about what a string means. */
#include "mailauth/spf_macro.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "mailauth/dnsq.h"

enum spf_macro_tok_type {
    SPF_TOK_LIT,   /* a run of macro-literals (and spaces, in exp) */
    SPF_TOK_ESC,   /* "%%", "%_" or "%-": text holds the replacement */
    SPF_TOK_MACRO, /* "%{" letter transformers *delimiter "}" */
};

struct spf_macro_tok {
    enum spf_macro_tok_type type;
    const char *text; /* LIT: the run; ESC: the replacement */
    size_t len;
    char letter;       /* MACRO: lower case */
    bool upper;        /* MACRO: URL-escape the value (§7.3) */
    bool reverse;      /* MACRO: "r" transformer */
    unsigned keep;     /* MACRO: right-hand parts to keep, 0 = all */
    const char *delim; /* MACRO: the delimiter characters, "" = "." */
    size_t ndelim;
};

/* macro-literal = %x21-24 / %x26-7E; explain-string adds SP. */
static bool spf_macro_is_literal(unsigned char c, enum spf_macro_kind kind)
{
    return (c >= 0x21 && c <= 0x7e && c != '%') || (c == ' ' && kind == SPF_MACRO_EXP);
}

static bool spf_macro_is_delim(char c)
{
    return c && strchr(".-+,/_=", c) != NULL;
}

static bool spf_macro_letter_ok(char c, enum spf_macro_kind kind)
{
    if (c && strchr("slodiphv", c))
        return true;
    /* §7.3: c, r and t are only for explanation text; an unknown
     * modifier is never expanded, so it takes every ABNF letter. */
    return kind != SPF_MACRO_DOMAIN && c && strchr("crt", c);
}

/* Reads the token at s[*pos..n) into *t and moves *pos past it. Returns
 * 0, 1 at the end of the string, or -EINVAL. */
static int spf_macro_next(const char *s, size_t n, size_t *pos, enum spf_macro_kind kind,
                          struct spf_macro_tok *t)
{
    size_t i = *pos;
    if (i >= n)
        return 1;
    memset(t, 0, sizeof *t);
    if (s[i] != '%') {
        size_t j = i;
        while (j < n && spf_macro_is_literal((unsigned char)s[j], kind))
            j++;
        if (j == i)
            return -EINVAL; /* a control, 8-bit or (outside exp) space octet */
        t->type = SPF_TOK_LIT;
        t->text = s + i;
        t->len = j - i;
        *pos = j;
        return 0;
    }
    /* §7.1: a '%' not followed by '{', '%', '-' or '_' is a syntax error. */
    if (i + 1 >= n)
        return -EINVAL;
    t->type = SPF_TOK_ESC;
    switch (s[i + 1]) {
    case '%':
        t->text = "%";
        t->len = 1;
        *pos = i + 2;
        return 0;
    case '_':
        t->text = " ";
        t->len = 1;
        *pos = i + 2;
        return 0;
    case '-':
        t->text = "%20";
        t->len = 3;
        *pos = i + 2;
        return 0;
    case '{':
        break;
    default:
        return -EINVAL;
    }
    i += 2;
    if (i >= n)
        return -EINVAL;
    char c = s[i];
    t->type = SPF_TOK_MACRO;
    t->upper = c >= 'A' && c <= 'Z';
    t->letter = t->upper ? (char)(c - 'A' + 'a') : c;
    if (!spf_macro_letter_ok(t->letter, kind))
        return -EINVAL;
    i++;
    bool digits = false;
    unsigned keep = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        digits = true;
        /* No name has more than 127 labels: a larger count keeps all. */
        keep = keep * 10 + (unsigned)(s[i] - '0');
        if (keep > 128)
            keep = 128;
        i++;
    }
    /* §7.3: "If a DIGIT is specified, the value MUST be nonzero." */
    if (digits && keep == 0)
        return -EINVAL;
    t->keep = keep;
    if (i < n && (s[i] == 'r' || s[i] == 'R')) {
        t->reverse = true;
        i++;
    }
    t->delim = s + i;
    while (i < n && spf_macro_is_delim(s[i]))
        i++;
    t->ndelim = (size_t)(s + i - t->delim);
    if (i >= n || s[i] != '}')
        return -EINVAL;
    *pos = i + 1;
    return 0;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ):
 * letters, digits and '-', alphanumeric at both ends, not all digits. */
static bool spf_macro_toplabel_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    bool alpha = false, dash = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            alpha = true;
        else if (c == '-')
            dash = true;
        else if (!(c >= '0' && c <= '9'))
            return false;
    }
    return p[0] != '-' && p[n - 1] != '-' && (alpha || dash);
}

/* domain-end = ( "." toplabel [ "." ] ) / macro-expand, where tail is the
 * literal text after the last macro-expand (all of it if none). */
static bool spf_macro_domain_end_ok(const char *tail, size_t n)
{
    if (n > 0 && tail[n - 1] == '.')
        n--;
    const char *dot = n ? memrchr(tail, '.', n) : NULL;
    if (dot == NULL)
        return false;
    return spf_macro_toplabel_ok(dot + 1, (size_t)(tail + n - dot - 1));
}

int spf_macro_check(const char *s, size_t n, enum spf_macro_kind kind, uint32_t *letters)
{
    uint32_t used = 0;
    size_t pos = 0, tail = 0;
    struct spf_macro_tok t;
    int rc;
    while ((rc = spf_macro_next(s, n, &pos, kind, &t)) == 0) {
        if (t.type == SPF_TOK_MACRO)
            used |= SPF_MACRO_BIT(t.letter);
        if (t.type != SPF_TOK_LIT)
            tail = pos;
    }
    if (rc < 0)
        return rc;
    if (kind == SPF_MACRO_DOMAIN) {
        if (n == 0)
            return -EINVAL;
        /* Ending in a macro-expand is a valid domain-end by itself. */
        if (tail != n && !spf_macro_domain_end_ok(s + tail, n - tail))
            return -EINVAL;
    }
    if (letters)
        *letters = used;
    return 0;
}

/* unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
static bool spf_macro_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static void spf_macro_put(struct buf *out, const char *p, size_t n, bool escape)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!escape) {
        buf_append(out, p, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (spf_macro_unreserved(c)) {
            buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 3);
        }
    }
}

static bool spf_macro_in(char c, const char *set, size_t n)
{
    return n ? memchr(set, c, n) != NULL : c == '.';
}

/* §7.3: split the value at the delimiters, reverse if asked, keep the
 * `keep` right-hand parts, join with '.'. Done in place on the string,
 * without a list of parts. */
static void spf_macro_transform(struct buf *out, const char *val, const struct spf_macro_tok *t)
{
    size_t n = strlen(val), parts = 1;
    for (size_t i = 0; i < n; i++)
        parts += spf_macro_in(val[i], t->delim, t->ndelim);
    size_t keep = t->keep && t->keep < parts ? t->keep : parts;
    if (!t->reverse) {
        /* The last `keep` parts: skip the first parts - keep ones. */
        size_t skip = parts - keep, i = 0;
        while (skip > 0) {
            if (spf_macro_in(val[i], t->delim, t->ndelim))
                skip--;
            i++;
        }
        for (size_t j = i; j < n;) {
            size_t k = j;
            while (k < n && !spf_macro_in(val[k], t->delim, t->ndelim))
                k++;
            spf_macro_put(out, val + j, k - j, t->upper);
            if (k < n)
                buf_putc(out, '.');
            j = k + 1;
        }
        return;
    }
    /* Reversed, the right-hand `keep` parts are the first `keep` parts of
     * the value, last one first. */
    size_t end = 0, seen = 0;
    while (end < n) {
        if (spf_macro_in(val[end], t->delim, t->ndelim) && ++seen == keep)
            break;
        end++;
    }
    for (size_t k = end;;) {
        size_t j = k;
        while (j > 0 && !spf_macro_in(val[j - 1], t->delim, t->ndelim))
            j--;
        spf_macro_put(out, val + j, k - j, t->upper);
        if (j == 0)
            break;
        buf_putc(out, '.');
        k = j - 1;
    }
}

static const char *spf_macro_value(const struct spf_macro_vars *v, char letter)
{
    static const char letters[] = "slodipvhcrt";
    const char *const vals[] = {v->s, v->l, v->o, v->d, v->i, v->p,
                                v->v, v->h, v->c, v->r, v->t};
    const char *at = letter ? strchr(letters, letter) : NULL;
    const char *r = at ? vals[at - letters] : NULL;
    /* §7.3: "unknown" when there is no validated name (p) or no name of
     * the receiving host (r). */
    if (r == NULL && (letter == 'p' || letter == 'r'))
        return "unknown";
    return r ? r : "";
}

int spf_macro_expand(const char *s, size_t n, enum spf_macro_kind kind,
                     const struct spf_macro_vars *v, struct buf *out)
{
    int rc = spf_macro_check(s, n, kind, NULL);
    if (rc < 0)
        return rc;
    size_t start = out->len, pos = 0;
    struct spf_macro_tok t;
    while (spf_macro_next(s, n, &pos, kind, &t) == 0) {
        if (t.type == SPF_TOK_MACRO)
            spf_macro_transform(out, spf_macro_value(v, t.letter), &t);
        else
            buf_append(out, t.text, t.len);
        if (out->len - start > SPF_MACRO_OUT_MAX) {
            out->len = start;
            if (out->data)
                out->data[start] = '\0';
            return -E2BIG;
        }
    }
    return 0;
}

int spf_macro_domain(const char *s, size_t n, const struct spf_macro_vars *v,
                     struct buf *scratch, char out[DNS_NAME_MAX])
{
    buf_reset(scratch);
    int rc = spf_macro_expand(s, n, SPF_MACRO_DOMAIN, v, scratch);
    if (rc == -E2BIG)
        return -EDOM;
    if (rc < 0)
        return rc;
    const char *p = scratch->data ? scratch->data : "";
    size_t len = scratch->len;
    if (len > 0 && p[len - 1] == '.')
        len--; /* the trailing dot of a domain is ignored (§7.3) */
    /* §7.3: "the left side is truncated to fit, by removing successive
     * domain labels (and their following dots)". */
    while (len > DNS_NAME_MAX - 3) {
        const char *dot = memchr(p, '.', len);
        if (dot == NULL)
            return -EDOM;
        len -= (size_t)(dot + 1 - p);
        p = dot + 1;
    }
    if (!dnsq_name_ok(p, len))
        return -EDOM;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}
