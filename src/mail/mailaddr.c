/* mailaddr.c: RFC 5321 §4.1.2 paths and mailboxes, RFC 6531 UTF-8.
 *
 * The parser walks a bounded view of the input with a cursor and never
 * looks past in[len-1]. Every part is length-checked while it is read, so
 * a hostile megabyte of input costs at most a path's worth of scanning. */
#include "mail/mailaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "base/strutil.h"

/* A mailbox without its angle brackets: §4.5.3.1.3's 256 octets less 2. */
#define MAILADDR_MAILBOX_MAX (MAILADDR_PATH_MAX - 2)
/* §4.1.2 sub-domain; a DNS label (RFC 1035 §2.3.4). */
#define MAILADDR_LABEL_MAX 63

struct mailaddr_cur {
    const unsigned char *p;
    size_t len;
    size_t pos;
    unsigned flags; /* MAILADDR_ALLOW_* */
};

static int mailaddr_peek(const struct mailaddr_cur *c)
{
    return c->pos < c->len ? c->p[c->pos] : -1;
}

/* Where a part starting at the cursor must be read up to: one octet past
 * its length limit (to tell "too long" from "ends here"), or the end of
 * the input if that comes first. */
static size_t mailaddr_limit(const struct mailaddr_cur *c, size_t max)
{
    return c->len - c->pos > max + 1 ? c->pos + max + 1 : c->len;
}

/* RFC 5322 §3.2.3 atext, the characters of a Dot-string atom. */
static int mailaddr_is_atext(int ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch > 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

static int mailaddr_is_letdig(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* At an octet >= 0x80: sets *n to the length of the UTF-8 character
 * there, or returns a negative mailaddr_status. RFC 6531 §3.3 extends
 * atext, qtextSMTP and sub-domain with UTF8-non-ascii. A character that
 * would end beyond `limit` (the part's length limit plus one) makes the
 * part too long. */
static int mailaddr_take_utf8(const struct mailaddr_cur *c, size_t limit, size_t *n)
{
    if (!(c->flags & MAILADDR_ALLOW_UTF8))
        return MAILADDR_EUTF8;
    *n = strutil_utf8_len(c->p + c->pos, c->len - c->pos);
    if (*n == 0)
        return MAILADDR_ESYNTAX;
    return c->pos + *n > limit ? MAILADDR_ETOOLONG : MAILADDR_OK;
}

/* Local-part = Dot-string / Quoted-string (§4.1.2). Writes the decoded
 * local part to out->local; at most MAILADDR_LOCAL_MAX octets are read as
 * written (§4.5.3.1.1 counts the local part as sent). */
static int mailaddr_parse_local(struct mailaddr_cur *c, struct mailaddr *out)
{
    size_t start = c->pos, n = 0;
    size_t limit = mailaddr_limit(c, MAILADDR_LOCAL_MAX);
    int rc;

    if (mailaddr_peek(c) == '"') {
        out->flags |= MAILADDR_F_QUOTED;
        c->pos++;
        for (;;) {
            if (c->pos >= limit)
                return limit - start > MAILADDR_LOCAL_MAX ? MAILADDR_ETOOLONG : MAILADDR_ESYNTAX;
            int ch = c->p[c->pos];
            if (ch == '"') {
                c->pos++;
                break;
            }
            if (ch == '\\') {
                /* quoted-pairSMTP = %d92 %d32-126 */
                if (c->pos + 1 >= limit)
                    return limit - start > MAILADDR_LOCAL_MAX ? MAILADDR_ETOOLONG
                                                              : MAILADDR_ESYNTAX;
                ch = c->p[c->pos + 1];
                if (ch < 32 || ch > 126)
                    return ch >= 0x80 && !(c->flags & MAILADDR_ALLOW_UTF8) ? MAILADDR_EUTF8
                                                                           : MAILADDR_ESYNTAX;
                out->local[n++] = (char)ch;
                c->pos += 2;
            } else if (ch >= 0x80) {
                size_t u;
                if ((rc = mailaddr_take_utf8(c, limit, &u)) < 0)
                    return rc;
                memcpy(out->local + n, c->p + c->pos, u);
                n += u;
                c->pos += u;
                out->flags |= MAILADDR_F_UTF8;
            } else if (ch >= 32 && ch <= 126) {
                /* qtextSMTP: %d32-33 / %d35-91 / %d93-126 */
                out->local[n++] = (char)ch;
                c->pos++;
            } else {
                return MAILADDR_ESYNTAX;
            }
        }
    } else {
        /* Dot-string = Atom *("." Atom): no leading, trailing or double dot. */
        int atom = 0;
        for (;;) {
            int ch = c->pos < limit ? c->p[c->pos] : -1;
            if (ch >= 0x80) {
                size_t u;
                if ((rc = mailaddr_take_utf8(c, limit, &u)) < 0)
                    return rc;
                memcpy(out->local + n, c->p + c->pos, u);
                n += u;
                c->pos += u;
                out->flags |= MAILADDR_F_UTF8;
                atom = 1;
            } else if (mailaddr_is_atext(ch)) {
                out->local[n++] = (char)ch;
                c->pos++;
                atom = 1;
            } else if (ch == '.' && atom) {
                out->local[n++] = '.';
                c->pos++;
                atom = 0;
            } else {
                break;
            }
        }
        if (c->pos - start > MAILADDR_LOCAL_MAX)
            return MAILADDR_ETOOLONG;
        if (!atom)
            return MAILADDR_ESYNTAX; /* empty, or ends with a dot */
    }
    if (c->pos - start > MAILADDR_LOCAL_MAX)
        return MAILADDR_ETOOLONG;
    out->local[n] = '\0';
    return MAILADDR_OK;
}

/* Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (§4.1.2), each at most 63 octets; with UTF-8 a U-label's octets count
 * as letters (RFC 6531 §3.3). Reads at most MAILADDR_DOMAIN_MAX + 1
 * octets and stops at the first octet that cannot be part of a domain. */
static int mailaddr_parse_domain(struct mailaddr_cur *c, unsigned *rflags)
{
    size_t start = c->pos;
    size_t limit = mailaddr_limit(c, MAILADDR_DOMAIN_MAX);
    size_t label = 0; /* octets in the current label */
    int last = 0;     /* the label's last octet: 'a' for let-dig, '-', 0 for none */
    int rc;

    for (;;) {
        int ch = c->pos < limit ? c->p[c->pos] : -1;
        if (ch >= 0x80) {
            size_t u;
            if ((rc = mailaddr_take_utf8(c, limit, &u)) < 0)
                return rc;
            c->pos += u;
            label += u;
            last = 'a';
            *rflags |= MAILADDR_F_UTF8;
        } else if (mailaddr_is_letdig(ch)) {
            c->pos++;
            label++;
            last = 'a';
        } else if (ch == '-' && label > 0) {
            c->pos++;
            label++;
            last = '-';
        } else if (ch == '.' && last == 'a') {
            c->pos++;
            label = 0;
            last = 0;
            continue;
        } else {
            break;
        }
        if (label > MAILADDR_LABEL_MAX)
            return MAILADDR_ESYNTAX;
    }
    if (c->pos - start > MAILADDR_DOMAIN_MAX)
        return MAILADDR_ETOOLONG;
    /* Empty, ends with a dot, or a label ends with a hyphen. */
    if (last != 'a')
        return MAILADDR_ESYNTAX;
    return MAILADDR_OK;
}

/* Snum 3("." Snum), Snum = 1*3DIGIT 0-255 (§4.1.3). Leading zeros are
 * refused although the grammar allows them: inet_aton() and friends read
 * "010" as octal, so such a literal means different hosts to different
 * programs. */
static int mailaddr_check_ipv4(const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || p[i] != '.')
                return -EINVAL;
            i++;
        }
        size_t digits = 0;
        unsigned v = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(p[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && p[i - digits] == '0'))
            return -EINVAL;
    }
    return i == n ? 0 : -EINVAL;
}

/* IPv6-address-literal = "IPv6:" IPv6-addr (§4.1.3); the address forms
 * are those of RFC 4291 §2.2, which inet_pton() checks. */
static int mailaddr_check_ipv6(const unsigned char *p, size_t n)
{
    /* The longest form, IPv6v4-full, is 45 octets. */
    char tmp[64];
    unsigned char addr[16];
    if (n == 0 || n >= sizeof tmp)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
              ch == ':' || ch == '.'))
            return -EINVAL;
    }
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, addr) == 1 ? 0 : -EINVAL;
}

/* address-literal = "[" ( IPv4 / IPv6 / General-address-literal ) "]"
 * (§4.1.3). General literals ("tag:content") are refused: no tag other
 * than IPv6 is registered, and nothing could deliver to one. */
static int mailaddr_parse_literal(struct mailaddr_cur *c)
{
    size_t start = c->pos;
    size_t limit = mailaddr_limit(c, MAILADDR_DOMAIN_MAX);
    size_t i = start + 1;
    while (i < limit && c->p[i] != ']') {
        /* dcontent = %d33-90 / %d94-126: no '[', '\\', space or controls */
        int ch = c->p[i];
        if (ch < 33 || ch > 126 || ch == '[' || ch == '\\')
            return ch >= 0x80 && !(c->flags & MAILADDR_ALLOW_UTF8) ? MAILADDR_EUTF8
                                                                   : MAILADDR_ESYNTAX;
        i++;
    }
    if (i >= limit)
        return limit - start > MAILADDR_DOMAIN_MAX ? MAILADDR_ETOOLONG : MAILADDR_ESYNTAX;
    const unsigned char *body = c->p + start + 1;
    size_t n = i - start - 1;
    int ok;
    if (n >= 5 && !strutil_ncasecmp((const char *)body, "IPv6:", 5))
        ok = mailaddr_check_ipv6(body + 5, n - 5);
    else
        ok = mailaddr_check_ipv4(body, n);
    if (ok < 0)
        return MAILADDR_ESYNTAX;
    c->pos = i + 1;
    return MAILADDR_OK;
}

int mailaddr_is_host(const char *in, size_t len)
{
    struct mailaddr_cur c = {(const unsigned char *)in, len, 0, 0};
    unsigned ignored = 0;
    int rc = len && in[0] == '[' ? mailaddr_parse_literal(&c) : mailaddr_parse_domain(&c, &ignored);
    return rc == MAILADDR_OK && c.pos == len;
}

/* A-d-l = At-domain *( "," At-domain ) followed by ":" (§4.1.2). The
 * route is obsolete: checked for syntax and ignored (Appendix C). */
static int mailaddr_skip_route(struct mailaddr_cur *c)
{
    for (;;) {
        if (mailaddr_peek(c) != '@')
            return MAILADDR_ESYNTAX;
        c->pos++;
        unsigned ignored = 0;
        int rc = mailaddr_parse_domain(c, &ignored);
        if (rc < 0)
            return rc;
        int ch = mailaddr_peek(c);
        c->pos++;
        if (ch == ':')
            return MAILADDR_OK;
        if (ch != ',')
            return MAILADDR_ESYNTAX;
        /* The route alone may not eat the whole path's budget. */
        if (c->pos > MAILADDR_PATH_MAX)
            return MAILADDR_ETOOLONG;
    }
}

/* Whether the decoded local part can be written as a Dot-string. */
static int mailaddr_is_dotstring(const char *s)
{
    int atom = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x80 || mailaddr_is_atext(ch))
            atom = 1;
        else if (ch == '.' && atom)
            atom = 0;
        else
            return 0;
    }
    return atom;
}

/* Builds out->text: the local part (quoted when §4.1.2 requires it), "@",
 * the domain. Fits: the text is never longer than the mailbox as
 * written, which the callers bounded to MAILADDR_MAILBOX_MAX. */
static int mailaddr_make_text(struct mailaddr *out)
{
    size_t n = 0, cap = sizeof out->text;
    const char *s = out->local;
    if (mailaddr_is_dotstring(s)) {
        size_t l = strlen(s);
        if (l >= cap)
            return MAILADDR_ETOOLONG;
        memcpy(out->text, s, l);
        n = l;
    } else {
        out->text[n++] = '"';
        for (; *s; s++) {
            if (n + 3 >= cap)
                return MAILADDR_ETOOLONG;
            if (*s == '"' || *s == '\\')
                out->text[n++] = '\\';
            out->text[n++] = *s;
        }
        out->text[n++] = '"';
    }
    size_t dl = strlen(out->domain);
    if (n + 1 + dl >= cap)
        return MAILADDR_ETOOLONG;
    out->text[n++] = '@';
    memcpy(out->text + n, out->domain, dl + 1);
    return MAILADDR_OK;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ). */
static int mailaddr_parse_mbox(struct mailaddr_cur *c, struct mailaddr *out)
{
    size_t start = c->pos;
    int rc = mailaddr_parse_local(c, out);
    if (rc < 0)
        return rc;
    if (mailaddr_peek(c) != '@')
        return MAILADDR_ESYNTAX;
    c->pos++;
    size_t dstart = c->pos;
    if (mailaddr_peek(c) == '[') {
        rc = mailaddr_parse_literal(c);
        out->flags |= MAILADDR_F_LITERAL;
    } else {
        rc = mailaddr_parse_domain(c, &out->flags);
    }
    if (rc < 0)
        return rc;
    size_t dl = c->pos - dstart;
    if (dl > MAILADDR_DOMAIN_MAX || c->pos - start > MAILADDR_MAILBOX_MAX)
        return MAILADDR_ETOOLONG;
    memcpy(out->domain, c->p + dstart, dl);
    out->domain[dl] = '\0';
    return mailaddr_make_text(out);
}

static void mailaddr_reset(struct mailaddr *out)
{
    out->flags = 0;
    out->local[0] = '\0';
    out->domain[0] = '\0';
    out->text[0] = '\0';
}

int mailaddr_parse_path(const char *in, size_t len, unsigned flags, struct mailaddr *out,
                        size_t *consumed)
{
    struct mailaddr_cur c = {(const unsigned char *)in, len, 0, flags};
    int rc;
    mailaddr_reset(out);
    if (mailaddr_peek(&c) != '<')
        return MAILADDR_ESYNTAX;
    c.pos++;
    /* Reverse-path = Path / "<>" (§4.1.2). */
    if (mailaddr_peek(&c) == '>') {
        if (!(flags & MAILADDR_ALLOW_NULL))
            return MAILADDR_ESYNTAX;
        out->flags = MAILADDR_F_NULL;
        *consumed = 2;
        return MAILADDR_OK;
    }
    /* "<Postmaster>", case-insensitive, with no domain (§4.1.1.3, §4.5.1). */
    if (len - c.pos >= 11 && !strutil_ncasecmp(in + c.pos, "postmaster", 10) &&
        in[c.pos + 10] == '>') {
        if (!(flags & MAILADDR_ALLOW_POSTMASTER))
            return MAILADDR_ESYNTAX;
        out->flags = MAILADDR_F_POSTMASTER;
        strutil_lcpy(out->local, "postmaster", sizeof out->local);
        strutil_lcpy(out->text, "postmaster", sizeof out->text);
        *consumed = 12;
        return MAILADDR_OK;
    }
    if (mailaddr_peek(&c) == '@' && (rc = mailaddr_skip_route(&c)) < 0)
        goto fail;
    if ((rc = mailaddr_parse_mbox(&c, out)) < 0)
        goto fail;
    if (mailaddr_peek(&c) != '>') {
        rc = MAILADDR_ESYNTAX;
        goto fail;
    }
    c.pos++;
    /* §4.5.3.1.3: the whole path, route and brackets included. */
    if (c.pos > MAILADDR_PATH_MAX) {
        rc = MAILADDR_ETOOLONG;
        goto fail;
    }
    *consumed = c.pos;
    return MAILADDR_OK;
fail:
    mailaddr_reset(out);
    return rc;
}

int mailaddr_parse_mailbox(const char *in, size_t len, unsigned flags, struct mailaddr *out)
{
    struct mailaddr_cur c = {(const unsigned char *)in, len, 0, flags};
    mailaddr_reset(out);
    int rc = mailaddr_parse_mbox(&c, out);
    if (rc == MAILADDR_OK && c.pos != len)
        rc = MAILADDR_ESYNTAX;
    if (rc < 0)
        mailaddr_reset(out);
    return rc;
}

int mailaddr_domain_eq(const char *a, const char *b)
{
    return strutil_casecmp(a, b) == 0;
}
