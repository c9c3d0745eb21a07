/* dmarc_from.c: RFC 5322 From: fields to the domains DMARC judges
 * (dmarc_from.h). A lexer turns the field body into words, quoted
 * strings, domain literals and specials, dropping CFWS; a recursive
 * descent over them follows RFC 5322 §3.4 with the obsolete forms of §4.4
 * (groups one level deep, so the recursion is bounded). */
#include "mailauth/dmarc_from.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "base/strutil.h"
#include "mailauth/dnsq.h"

enum dmarc_tok_type {
    DMARC_T_END,
    DMARC_T_ATOM,
    DMARC_T_QSTR,
    DMARC_T_DLIT,
    DMARC_T_SPECIAL, /* one of < > @ , ; : . */
    DMARC_T_ERROR,
};

struct dmarc_tok {
    enum dmarc_tok_type type;
    char c;        /* DMARC_T_SPECIAL */
    const char *p; /* DMARC_T_ATOM: the atom */
    size_t n;
};

struct dmarc_lex {
    const char *p;
    size_t n, i;
    struct dmarc_tok cur;
    bool have; /* cur holds the next token */
};

/* atext (RFC 5322 §3.2.3) less UTF-8, which the caller checks. */
static bool dmarc_is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool dmarc_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Length of the well-formed UTF-8 character or printable ASCII at i
 * (RFC 6532 §3.2: UTF8-non-ascii where the grammar has VCHAR), 0 for a
 * control character or malformed UTF-8. */
static size_t dmarc_char_len(const struct dmarc_lex *L, size_t i)
{
    unsigned char c = (unsigned char)L->p[i];
    if (c < 0x80)
        return c >= 0x21 && c < 0x7f ? 1 : 0;
    return strutil_utf8_len((const unsigned char *)L->p + i, L->n - i);
}

/* A quoted-pair at i: '\' and one WSP or character. */
static bool dmarc_lex_pair(struct dmarc_lex *L)
{
    if (L->i + 1 >= L->n)
        return false;
    size_t k = dmarc_is_space(L->p[L->i + 1]) ? 1 : dmarc_char_len(L, L->i + 1);
    if (k == 0)
        return false;
    L->i += 1 + k;
    return true;
}

/* Skips CFWS; false on an unterminated comment or a bad character in one. */
static bool dmarc_lex_cfws(struct dmarc_lex *L)
{
    unsigned depth = 0;
    while (L->i < L->n) {
        char c = L->p[L->i];
        if (dmarc_is_space(c)) {
            L->i++;
        } else if (c == '(') {
            depth++;
            L->i++;
        } else if (depth == 0) {
            return true;
        } else if (c == ')') {
            depth--;
            L->i++;
        } else if (c == '\\') {
            if (!dmarc_lex_pair(L))
                return false;
        } else {
            size_t k = dmarc_char_len(L, L->i);
            if (k == 0)
                return false;
            L->i += k;
        }
    }
    return depth == 0;
}

/* A quoted string or domain literal from the opening octet to the
 * closing `close`; quoted-pairs allowed. */
static bool dmarc_lex_bracketed(struct dmarc_lex *L, char close)
{
    L->i++;
    while (L->i < L->n) {
        char c = L->p[L->i];
        if (c == close) {
            L->i++;
            return true;
        }
        if (close == ']' && c == '[')
            return false;
        if (c == '\\') {
            if (!dmarc_lex_pair(L))
                return false;
            continue;
        }
        size_t k = dmarc_is_space(c) ? 1 : dmarc_char_len(L, L->i);
        if (k == 0)
            return false;
        L->i += k;
    }
    return false;
}

static struct dmarc_tok dmarc_lex_next(struct dmarc_lex *L)
{
    struct dmarc_tok t = {DMARC_T_ERROR, 0, NULL, 0};
    if (!dmarc_lex_cfws(L))
        return t;
    if (L->i == L->n) {
        t.type = DMARC_T_END;
        return t;
    }
    char c = L->p[L->i];
    if (strchr("<>@,;:.", c) != NULL && c != '\0') {
        L->i++;
        t.type = DMARC_T_SPECIAL;
        t.c = c;
        return t;
    }
    if (c == '"') {
        if (dmarc_lex_bracketed(L, '"'))
            t.type = DMARC_T_QSTR;
        return t;
    }
    if (c == '[') {
        if (dmarc_lex_bracketed(L, ']'))
            t.type = DMARC_T_DLIT;
        return t;
    }
    size_t start = L->i;
    while (L->i < L->n) {
        unsigned char u = (unsigned char)L->p[L->i];
        size_t k = u < 0x80 ? (dmarc_is_atext(u) ? 1 : 0)
                            : strutil_utf8_len((const unsigned char *)L->p + L->i, L->n - L->i);
        if (k == 0)
            break;
        L->i += k;
    }
    if (L->i == start)
        return t; /* a control character, ')', ']', '\' or bad UTF-8 */
    t.type = DMARC_T_ATOM;
    t.p = L->p + start;
    t.n = L->i - start;
    return t;
}

static const struct dmarc_tok *dmarc_peek(struct dmarc_lex *L)
{
    if (!L->have) {
        L->cur = dmarc_lex_next(L);
        L->have = true;
    }
    return &L->cur;
}

static void dmarc_take(struct dmarc_lex *L)
{
    dmarc_peek(L);
    L->have = L->cur.type == DMARC_T_END || L->cur.type == DMARC_T_ERROR;
}

static bool dmarc_is_special(const struct dmarc_tok *t, char c)
{
    return t->type == DMARC_T_SPECIAL && t->c == c;
}

static bool dmarc_is_word(const struct dmarc_tok *t)
{
    return t->type == DMARC_T_ATOM || t->type == DMARC_T_QSTR;
}

/* ---- the grammar ---- */

/* What one field came to, besides syntax. */
struct dmarc_field {
    struct dmarc_from *f;
    bool nodomain, toomany;
};

static void dmarc_from_record(struct dmarc_field *fd, const char *d, size_t n)
{
    struct dmarc_from *f = fd->f;
    f->naddrs++;
    char low[DNS_NAME_MAX];
    memcpy(low, d, n);
    low[n] = '\0';
    strutil_lower(low);
    for (size_t i = 0; i < f->ndomains; i++)
        if (strcmp(f->domains[i], low) == 0)
            return;
    if (f->ndomains == DMARC_FROM_MAX) {
        fd->toomany = true;
        return;
    }
    memcpy(f->domains[f->ndomains++], low, n + 1);
}

/* domain = dot-atom / domain-literal / obs-domain; records it when
 * `keep`. 0, or -1 for a syntax error. */
static int dmarc_parse_domain(struct dmarc_lex *L, struct dmarc_field *fd, bool keep)
{
    const struct dmarc_tok *t = dmarc_peek(L);
    if (t->type == DMARC_T_DLIT) {
        dmarc_take(L);
        if (keep) {
            fd->f->naddrs++;
            fd->nodomain = true; /* an address literal has no DMARC record */
        }
        return 0;
    }
    char name[DNS_NAME_MAX];
    size_t len = 0;
    bool fits = true;
    for (;;) {
        t = dmarc_peek(L);
        if (t->type != DMARC_T_ATOM)
            return -EINVAL;
        if (len + t->n + 1 < sizeof name) {
            memcpy(name + len, t->p, t->n);
            len += t->n;
        } else {
            fits = false;
        }
        dmarc_take(L);
        if (!dmarc_is_special(dmarc_peek(L), '.'))
            break;
        dmarc_take(L);
        if (len + 1 < sizeof name)
            name[len++] = '.';
        else
            fits = false;
    }
    if (!keep)
        return 0;
    if (!fits || !dnsq_name_ok(name, len)) {
        fd->f->naddrs++;
        fd->nodomain = true;
        return 0;
    }
    dmarc_from_record(fd, name, len);
    return 0;
}

/* The rest of an addr-spec once its first word is the next token:
 * local-part = word *("." word) (dot-atom, quoted-string,
 * obs-local-part), "@", domain. */
static int dmarc_parse_addr_spec(struct dmarc_lex *L, struct dmarc_field *fd)
{
    for (;;) {
        if (!dmarc_is_word(dmarc_peek(L)))
            return -EINVAL;
        dmarc_take(L);
        if (!dmarc_is_special(dmarc_peek(L), '.'))
            break;
        dmarc_take(L);
    }
    if (!dmarc_is_special(dmarc_peek(L), '@'))
        return -EINVAL;
    dmarc_take(L);
    return dmarc_parse_domain(L, fd, true);
}

/* obs-route = obs-domain-list ":", obs-domain-list = *(CFWS / ",") "@"
 * domain *("," [CFWS] ["@" domain]). Called after '<' when the next
 * token is '@' or ','. */
static int dmarc_parse_route(struct dmarc_lex *L, struct dmarc_field *fd)
{
    while (dmarc_is_special(dmarc_peek(L), ','))
        dmarc_take(L);
    if (!dmarc_is_special(dmarc_peek(L), '@'))
        return -EINVAL;
    for (;;) {
        const struct dmarc_tok *t = dmarc_peek(L);
        if (dmarc_is_special(t, '@')) {
            dmarc_take(L);
            if (dmarc_parse_domain(L, fd, false) < 0)
                return -EINVAL;
        }
        t = dmarc_peek(L);
        if (dmarc_is_special(t, ':')) {
            dmarc_take(L);
            return 0;
        }
        if (!dmarc_is_special(t, ','))
            return -EINVAL;
        dmarc_take(L);
    }
}

/* angle-addr after its '<': [obs-route] addr-spec ">". */
static int dmarc_parse_angle(struct dmarc_lex *L, struct dmarc_field *fd)
{
    const struct dmarc_tok *t = dmarc_peek(L);
    if ((dmarc_is_special(t, '@') || dmarc_is_special(t, ',')) && dmarc_parse_route(L, fd) < 0)
        return -EINVAL;
    if (dmarc_parse_addr_spec(L, fd) < 0 || !dmarc_is_special(dmarc_peek(L), '>'))
        return -EINVAL;
    dmarc_take(L);
    return 0;
}

static int dmarc_parse_list(struct dmarc_lex *L, struct dmarc_field *fd, bool in_group);

/* One mailbox or group. A display name (phrase, obs-phrase: words and
 * '.') is told from a local-part by what follows it: '<' makes it a
 * display name, ':' a group's name, '@' a local-part. The lexer cannot
 * go back, so the words are read once: the lexer's position before them
 * is kept and the local-part case reads them again. */
static int dmarc_parse_element(struct dmarc_lex *L, struct dmarc_field *fd, bool in_group)
{
    struct dmarc_lex mark = *L;
    size_t words = 0;
    bool first_word = dmarc_is_word(dmarc_peek(L));
    for (;;) {
        const struct dmarc_tok *t = dmarc_peek(L);
        if (!dmarc_is_word(t) && !dmarc_is_special(t, '.'))
            break;
        words++;
        dmarc_take(L);
    }
    const struct dmarc_tok *t = dmarc_peek(L);
    if (dmarc_is_special(t, '<')) {
        if (words && !first_word)
            return -EINVAL; /* a phrase starts with a word */
        dmarc_take(L);
        return dmarc_parse_angle(L, fd);
    }
    if (dmarc_is_special(t, ':')) {
        if (in_group || !words || !first_word)
            return -EINVAL; /* groups do not nest */
        dmarc_take(L);
        return dmarc_parse_list(L, fd, true);
    }
    if (dmarc_is_special(t, '@')) {
        *L = mark;
        return dmarc_parse_addr_spec(L, fd);
    }
    return -EINVAL;
}

/* mailbox-list / address-list (with obs-mbox-list's empty elements), or
 * a group-list up to its ';'. */
static int dmarc_parse_list(struct dmarc_lex *L, struct dmarc_field *fd, bool in_group)
{
    for (;;) {
        const struct dmarc_tok *t = dmarc_peek(L);
        if (dmarc_is_special(t, ',')) {
            dmarc_take(L);
            continue;
        }
        if (in_group && dmarc_is_special(t, ';')) {
            dmarc_take(L);
            return 0;
        }
        if (t->type == DMARC_T_END)
            return in_group ? -EINVAL : 0;
        if (dmarc_parse_element(L, fd, in_group) < 0)
            return -EINVAL;
        t = dmarc_peek(L);
        if (dmarc_is_special(t, ',')) {
            dmarc_take(L);
        } else if (in_group && dmarc_is_special(t, ';')) {
            dmarc_take(L);
            return 0;
        } else if (t->type != DMARC_T_END || in_group) {
            return -EINVAL;
        }
    }
}

/* ---- the interface ---- */

void dmarc_from_init(struct dmarc_from *f)
{
    memset(f, 0, sizeof *f);
    f->status = DMARC_FROM_ABSENT;
}

const char *dmarc_from_status_name(enum dmarc_from_status s)
{
    switch (s) {
    case DMARC_FROM_OK:
        return "ok";
    case DMARC_FROM_ABSENT:
        return "no From field";
    case DMARC_FROM_EMPTY:
        return "no address in From";
    case DMARC_FROM_SYNTAX:
        return "malformed From";
    case DMARC_FROM_NODOMAIN:
        return "From address without a DNS domain";
    case DMARC_FROM_TOOMANY:
        return "too many From domains";
    }
    return "?";
}

/* The errors that stay once seen, least severe first. */
static enum dmarc_from_status dmarc_from_worse(enum dmarc_from_status a,
                                               enum dmarc_from_status b)
{
    static const int rank[] = {
        [DMARC_FROM_OK] = 0,       [DMARC_FROM_ABSENT] = 0, [DMARC_FROM_EMPTY] = 0,
        [DMARC_FROM_TOOMANY] = 1,  [DMARC_FROM_NODOMAIN] = 2, [DMARC_FROM_SYNTAX] = 3,
    };
    return rank[b] > rank[a] ? b : a;
}

int dmarc_from_add_field(struct dmarc_from *f, const char *v, size_t n)
{
    enum dmarc_from_status sticky = dmarc_from_worse(DMARC_FROM_OK, f->status);
    struct dmarc_lex L = {v, n, 0, {DMARC_T_END, 0, NULL, 0}, false};
    struct dmarc_field fd = {f, false, false};
    f->nfields++;
    if (dmarc_parse_list(&L, &fd, false) < 0)
        sticky = dmarc_from_worse(sticky, DMARC_FROM_SYNTAX);
    if (fd.nodomain)
        sticky = dmarc_from_worse(sticky, DMARC_FROM_NODOMAIN);
    if (fd.toomany)
        sticky = dmarc_from_worse(sticky, DMARC_FROM_TOOMANY);
    f->status = sticky != DMARC_FROM_OK ? sticky
                : f->naddrs == 0       ? DMARC_FROM_EMPTY
                                       : DMARC_FROM_OK;
    return f->status == DMARC_FROM_OK ? 0 : -EINVAL;
}

/* The end of the line at i: the offset of its CR or LF (or n), with *next
 * the start of the next line. */
static size_t dmarc_line_end(const char *h, size_t n, size_t i, size_t *next)
{
    const char *lf = memchr(h + i, '\n', n - i);
    size_t e = lf ? (size_t)(lf - h) : n;
    *next = lf ? e + 1 : n;
    if (e > i && h[e - 1] == '\r')
        e--;
    return e;
}

int dmarc_from_parse_header(struct dmarc_from *f, const char *h, size_t n)
{
    dmarc_from_init(f);
    size_t i = 0;
    while (i < n) {
        size_t next, e = dmarc_line_end(h, n, i, &next);
        if (e == i)
            break; /* the empty line ends the header */
        if (h[i] == ' ' || h[i] == '\t') {
            i = next; /* a continuation of a field not wanted */
            continue;
        }
        /* field-name = 1*ftext, then obs-optional WSP, then ':' */
        size_t k = i;
        while (k < e && h[k] >= 33 && h[k] <= 126 && h[k] != ':')
            k++;
        size_t name_end = k;
        while (k < e && (h[k] == ' ' || h[k] == '\t'))
            k++;
        if (name_end == i || k == e || h[k] != ':')
            break; /* no field: the body starts here */
        /* The field runs over the lines that start with WSP. */
        size_t body = k + 1, fend = e;
        while (next < n && (h[next] == ' ' || h[next] == '\t')) {
            fend = dmarc_line_end(h, n, next, &next);
        }
        if (name_end - i == 4 && strutil_ncasecmp(h + i, "From", 4) == 0)
            dmarc_from_add_field(f, h + body, fend - body);
        i = next;
    }
    return f->status == DMARC_FROM_OK ? 0 : -EINVAL;
}
