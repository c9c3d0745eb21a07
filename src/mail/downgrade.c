/* downgrade.c: RFC 6152 §3 — an 8-bit message made 7-bit with MIME
 * content-transfer-encodings for a next hop without 8BITMIME.
 *
 * The message is walked as a tree of entities (RFC 2045 §2.4): each has
 * a header section, an empty line and a body. An entity whose header and
 * body are already fit for a 7-bit transport (no octet >= 0x80, no NUL,
 * no line over 998 octets) is copied as it is, so a 7-bit message comes
 * out unchanged and only what needs it is touched. Otherwise its
 * Content-Type decides: a multipart is split at its delimiter lines and
 * each part is walked; a message/rfc822 has its enclosed message walked;
 * a leaf is encoded (quoted-printable for text, base64 for the rest) and
 * its Content-Transfer-Encoding field replaced. Everything between the
 * parts (preamble, delimiter lines, epilogue) is copied octet for octet,
 * so the structure the next hop sees is the one that arrived. */
#include "mail/downgrade.h"

#include <errno.h>
#include <string.h>

#include "base/base64.h"
#include "base/strutil.h"

/* RFC 5322 §2.1.1 and RFC 5321 §4.5.3.1.6: 998 octets a line before CRLF. */
#define DG_LINE_MAX 998
/* RFC 2045 §6.7 rule 5: encoded lines of at most 76 characters, the '='
 * of a soft line break included. */
#define DG_QP_WIDTH 76
/* RFC 2045 §6.8: 76 characters a line, 57 octets' worth. */
#define DG_B64_CHUNK 57

/* What dg_scan() finds in a range. */
#define DG_8BIT 0x01   /* an octet >= 0x80 */
#define DG_NUL 0x02    /* a NUL */
#define DG_LONG 0x04   /* a line over DG_LINE_MAX octets */
#define DG_BARECR 0x08 /* a CR not before an LF */
#define DG_LF 0x10     /* an LF not after a CR (a line end the wire must not carry) */

/* One line: where it starts, its length without the line end (LF, or
 * CRLF), and where the next one starts. */
struct dg_line {
    size_t start, len, end;
};

/* Takes the line of p[0..n) at *pos into *l and moves *pos past its line
 * end; returns 0 when there is none left. A CR counts as part of the line
 * end only right before the LF. */
static int dg_line_next(const char *p, size_t n, size_t *pos, struct dg_line *l)
{
    if (*pos >= n)
        return 0;
    const char *nl = memchr(p + *pos, '\n', n - *pos);
    size_t e = nl ? (size_t)(nl - p) : n;
    l->start = *pos;
    l->len = e - *pos;
    if (nl && l->len > 0 && p[e - 1] == '\r')
        l->len--;
    l->end = nl ? e + 1 : n;
    *pos = l->end;
    return 1;
}

/* Splits the entity p[0..n): its header section is p[0..*hlen) (every
 * line with its line end), the empty line p[*hlen..*body), the body
 * p[*body..n). Without an empty line it is all header and no body. */
static void dg_split(const char *p, size_t n, size_t *hlen, size_t *body)
{
    struct dg_line l;
    for (size_t pos = 0; dg_line_next(p, n, &pos, &l);) {
        if (l.len == 0) {
            *hlen = l.start;
            *body = l.end;
            return;
        }
    }
    *hlen = *body = n;
}

/* DG_* bits for what in p[0..n) a 7-bit transport cannot carry. */
static unsigned dg_scan(const char *p, size_t n)
{
    unsigned f = 0;
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') {
            if (i == 0 || p[i - 1] != '\r')
                f |= DG_LF;
            col = 0;
            continue;
        }
        if (c >= 0x80)
            f |= DG_8BIT;
        else if (c == '\0')
            f |= DG_NUL;
        else if (c == '\r' && (i + 1 == n || p[i + 1] != '\n'))
            f |= DG_BARECR;
        /* The CR of a CRLF is not counted. */
        if (++col > DG_LINE_MAX &&
            !(col == DG_LINE_MAX + 1 && c == '\r' && i + 1 < n && p[i + 1] == '\n'))
            f |= DG_LONG;
    }
    return f;
}

/* The charset for a Content-Type we add to text p[0..n) that had none:
 * us-ascii when it is 7-bit (converted for a long line or a NUL only),
 * utf-8 when it is well-formed UTF-8 — which other 8-bit text rarely is
 * by chance — and RFC 1428's unknown-8bit otherwise. */
static const char *dg_charset(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    int ascii = 1;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = strutil_utf8_len(u + i, n - i);
        if (k == 0)
            return "unknown-8bit";
        ascii = 0;
        i += k;
    }
    return ascii ? "us-ascii" : "utf-8";
}

/* ---- header fields ---- */

/* One field of a header section: its octets (continuation lines and the
 * last line end included) and where its value starts. A line that is no
 * field (no colon, a bad name, a continuation with nothing before it)
 * has name_len 0 and is carried along as it is. */
struct dg_field {
    size_t start, end;
    size_t name_len;
    size_t value;
};

static int dg_field_next(const char *h, size_t n, size_t *pos, struct dg_field *f)
{
    struct dg_line l;
    if (!dg_line_next(h, n, pos, &l))
        return 0;
    f->start = l.start;
    f->name_len = 0;
    f->value = l.end;
    const char *colon = memchr(h + l.start, ':', l.len);
    if (l.len > 0 && h[l.start] != ' ' && h[l.start] != '\t' && colon) {
        size_t k = (size_t)(colon - (h + l.start));
        size_t nl = k;
        /* RFC 5322 §4.5 (obs-optional): white space before the colon. */
        while (nl > 0 && (h[l.start + nl - 1] == ' ' || h[l.start + nl - 1] == '\t'))
            nl--;
        int ok = nl > 0;
        for (size_t i = 0; ok && i < nl; i++) {
            unsigned char c = (unsigned char)h[l.start + i];
            ok = c > 32 && c < 127;
        }
        if (ok) {
            f->name_len = nl;
            f->value = l.start + k + 1;
        }
    }
    /* RFC 5322 §2.2.3: a line that starts with white space continues the field. */
    while (*pos < n && (h[*pos] == ' ' || h[*pos] == '\t'))
        dg_line_next(h, n, pos, &l);
    f->end = *pos;
    return 1;
}

static int dg_field_is(const char *h, const struct dg_field *f, const char *name)
{
    size_t k = strlen(name);
    return f->name_len == k && strutil_ncasecmp(h + f->start, name, k) == 0;
}

/* Appends the unfolded value of f (line ends dropped, RFC 5322 §2.2.3). */
static void dg_field_value(const char *h, const struct dg_field *f, struct buf *v)
{
    for (size_t i = f->value; i < f->end; i++)
        if (h[i] != '\r' && h[i] != '\n')
            buf_putc(v, h[i]);
}

/* What an entity's header says about its content. */
struct dg_head {
    int n_ct, n_cte, n_mv; /* how many Content-Type, C-T-E, MIME-Version */
    struct buf ct, cte;    /* their unfolded values (the first of each) */
};

static void dg_head_read(const char *h, size_t n, struct dg_head *hd)
{
    struct dg_field f;
    for (size_t pos = 0; dg_field_next(h, n, &pos, &f);) {
        if (dg_field_is(h, &f, "Content-Type")) {
            if (hd->n_ct++ == 0)
                dg_field_value(h, &f, &hd->ct);
        } else if (dg_field_is(h, &f, "Content-Transfer-Encoding")) {
            if (hd->n_cte++ == 0)
                dg_field_value(h, &f, &hd->cte);
        } else if (dg_field_is(h, &f, "MIME-Version")) {
            hd->n_mv++;
        }
    }
}

/* ---- structured field values (RFC 2045 §5.1, §6.1) ---- */

struct dg_lex {
    const char *p;
    size_t n, i;
};

/* Skips white space and comments, which nest and may hold quoted pairs
 * (RFC 5322 §3.2.2). -EINVAL on an unclosed comment. */
static int dg_cfws(struct dg_lex *x)
{
    int depth = 0;
    for (; x->i < x->n; x->i++) {
        char c = x->p[x->i];
        if (depth > 0 && c == '\\') {
            x->i++;
        } else if (c == '(') {
            depth++;
        } else if (depth > 0 && c == ')') {
            depth--;
        } else if (depth == 0 && c != ' ' && c != '\t') {
            return 0;
        }
    }
    return depth == 0 ? 0 : -EINVAL;
}

/* RFC 2045 §5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>. */
static int dg_is_tchar(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* Length of the token at x->i, which it moves past. */
static size_t dg_token(struct dg_lex *x)
{
    size_t s = x->i;
    while (x->i < x->n && dg_is_tchar((unsigned char)x->p[x->i]))
        x->i++;
    return x->i - s;
}

/* A token or a quoted-string at x->i, its value appended to v; -EINVAL when
 * there is neither or the quote is not closed. */
static int dg_value(struct dg_lex *x, struct buf *v)
{
    if (x->i < x->n && x->p[x->i] == '"') {
        for (x->i++; x->i < x->n; x->i++) {
            char c = x->p[x->i];
            if (c == '"') {
                x->i++;
                return 0;
            }
            if (c == '\\' && x->i + 1 < x->n)
                c = x->p[++x->i];
            buf_putc(v, c);
        }
        return -EINVAL;
    }
    size_t s = x->i, k = dg_token(x);
    if (k == 0)
        return -EINVAL;
    buf_append(v, x->p + s, k);
    return 0;
}

struct dg_ctype {
    struct buf type;     /* "type/subtype", lowercased */
    struct buf boundary; /* the boundary parameter, unquoted */
    int n_boundary;
    int param_error; /* the parameters did not parse to the end */
};

/* Parses a Content-Type value (RFC 2045 §5.1). -EINVAL when type/subtype does
 * not parse; a fault in the parameters only sets param_error, which
 * matters for a multipart alone. RFC 2231 forms (boundary*0=) are not
 * read: such a boundary counts as missing. */
static int dg_ctype_parse(const char *v, size_t n, struct dg_ctype *ct)
{
    struct dg_lex x = {v, n, 0};
    size_t s, k;
    if (dg_cfws(&x) < 0)
        return -EINVAL;
    s = x.i;
    if ((k = dg_token(&x)) == 0)
        return -EINVAL;
    buf_append(&ct->type, v + s, k);
    if (dg_cfws(&x) < 0 || x.i >= n || v[x.i] != '/')
        return -EINVAL;
    x.i++;
    if (dg_cfws(&x) < 0)
        return -EINVAL;
    s = x.i;
    if ((k = dg_token(&x)) == 0)
        return -EINVAL;
    buf_putc(&ct->type, '/');
    buf_append(&ct->type, v + s, k);
    strutil_lower(ct->type.data);

    struct buf val = BUF_INIT;
    for (;;) {
        if (dg_cfws(&x) < 0)
            goto bad;
        if (x.i >= n)
            break;
        if (v[x.i] != ';')
            goto bad;
        x.i++;
        if (dg_cfws(&x) < 0)
            goto bad;
        if (x.i >= n)
            break; /* a trailing ';' is common and harmless */
        s = x.i;
        k = dg_token(&x);
        if (k == 0 || dg_cfws(&x) < 0 || x.i >= n || v[x.i] != '=')
            goto bad;
        x.i++;
        buf_reset(&val);
        if (dg_cfws(&x) < 0 || dg_value(&x, &val) < 0)
            goto bad;
        if (k == 8 && strutil_ncasecmp(v + s, "boundary", 8) == 0) {
            if (ct->n_boundary++ == 0)
                buf_append(&ct->boundary, val.data ? val.data : "", val.len);
        }
    }
    buf_free(&val);
    return 0;
bad:
    ct->param_error = 1;
    buf_free(&val);
    return 0;
}

enum dg_cte { DG_CTE_NONE, DG_CTE_7BIT, DG_CTE_8BIT, DG_CTE_BINARY, DG_CTE_ENCODED, DG_CTE_OTHER };

/* RFC 2045 §6.1: the mechanism is a token, case-insensitive; comments
 * around it are allowed. */
static enum dg_cte dg_cte_parse(const char *v, size_t n)
{
    struct dg_lex x = {v, n, 0};
    if (dg_cfws(&x) < 0)
        return DG_CTE_OTHER;
    size_t s = x.i, k = dg_token(&x);
    if (k == 0 || dg_cfws(&x) < 0 || x.i != n)
        return DG_CTE_OTHER;
    static const struct {
        const char *name;
        enum dg_cte cte;
    } names[] = {{"7bit", DG_CTE_7BIT},
                 {"8bit", DG_CTE_8BIT},
                 {"binary", DG_CTE_BINARY},
                 {"quoted-printable", DG_CTE_ENCODED},
                 {"base64", DG_CTE_ENCODED}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == k && strutil_ncasecmp(v + s, names[i].name, k) == 0)
            return names[i].cte;
    return DG_CTE_OTHER;
}

/* ---- encoders ---- */

static const char dg_hex[] = "0123456789ABCDEF";

/* Appends p[0..n) in quoted-printable (RFC 2045 §6.7). CRLF is a hard
 * line break (rule 4); every other octet outside '!'..'~' (a bare CR or
 * LF included), '=' and a space or tab that would end an encoded line
 * (rule 3) are "=XX"; lines are cut with soft breaks at 76 characters
 * (rule 5). A '-' that starts an encoded line is encoded as well, so no
 * line of the result starts with "--" and none can pass for a boundary
 * delimiter of an enclosing multipart. Decodes to p[0..n) exactly. */
static void dg_qp(struct buf *out, const char *p, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
            buf_puts(out, "\r\n");
            i++;
            col = 0;
            continue;
        }
        /* Last on its line: at the end, or before a hard break. Whatever
         * follows p (the CRLF of a delimiter, the end of the message)
         * ends the line too. */
        int last = i + 1 == n || (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n');
        int lit = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
        size_t w = lit ? 1 : 3;
        /* A line that goes on needs room for its '='. */
        if (col + w > (last ? DG_QP_WIDTH : DG_QP_WIDTH - 1)) {
            buf_puts(out, "=\r\n");
            col = 0;
        }
        if (col == 0 && c == '-') {
            lit = 0;
            w = 3;
        }
        if (lit) {
            buf_putc(out, (char)c);
        } else {
            char e[3] = {'=', dg_hex[c >> 4], dg_hex[c & 15]};
            buf_append(out, e, 3);
        }
        col += w;
    }
}

/* Appends p[0..n) in base64 lines of 76 characters (RFC 2045 §6.8), a
 * line end after the last when p ended with one (so the result keeps the
 * shape of the content: a part's last line end belongs to the delimiter
 * that follows, a message's is its own). */
static void dg_base64(struct buf *out, const char *p, size_t n)
{
    char line[BASE64_ENCODED_SIZE(DG_B64_CHUNK)];
    for (size_t i = 0; i < n; i += DG_B64_CHUNK) {
        size_t k = n - i < DG_B64_CHUNK ? n - i : DG_B64_CHUNK;
        ssize_t w = base64_encode(p + i, k, line, sizeof line);
        if (i > 0)
            buf_puts(out, "\r\n");
        buf_append(out, line, (size_t)w);
    }
    if (n > 0 && p[n - 1] == '\n')
        buf_puts(out, "\r\n");
}

/* ---- the walk ---- */

struct dg {
    struct buf *out;
    unsigned flags; /* DOWNGRADE_* */
    unsigned mask;  /* DG_* bits a body must not hold to be copied as it is */
    const char *why; /* static text, set on failure */
};

enum dg_kind {
    DG_MESSAGE,     /* a whole message: the top one or one in message/rfc822 */
    DG_PART,        /* a body part of a multipart */
    DG_DIGEST_PART, /* a body part of a multipart/digest (RFC 2046 §5.1.5) */
};

static int dg_fail(struct dg *d, const char *why)
{
    d->why = why;
    return -EINVAL;
}

/* Appends p[0..n) with every line end that is a bare LF written as CRLF
 * (only where no content is: header sections and the text between
 * parts, whose line ends mean nothing else). */
static void dg_put_crlf(struct buf *out, const char *p, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
            buf_append(out, p + from, i - from);
            buf_puts(out, "\r\n");
            from = i + 1;
        }
    }
    buf_append(out, p + from, n - from);
}

/* Appends the header h[0..n) (whole lines) with its Content-Transfer-
 * Encoding field, when cte is not NULL, written as "cte" in place of the
 * first one (later ones were refused before), then the lines of `extra`;
 * `add` puts the field after them when there was none. */
static void dg_put_header(struct buf *out, const char *h, size_t n, const char *cte, int add,
                          const char *extra)
{
    struct dg_field f;
    int done = 0;
    for (size_t pos = 0; dg_field_next(h, n, &pos, &f);) {
        if (cte && dg_field_is(h, &f, "Content-Transfer-Encoding")) {
            if (!done)
                buf_printf(out, "Content-Transfer-Encoding: %s\r\n", cte);
            done = 1;
            continue;
        }
        dg_put_crlf(out, h + f.start, f.end - f.start);
    }
    buf_puts(out, extra);
    if (cte && add && !done)
        buf_printf(out, "Content-Transfer-Encoding: %s\r\n", cte);
}

static int dg_entity(struct dg *d, const char *p, size_t n, enum dg_kind kind, int depth);

/* Whether the line l of b is a boundary delimiter for bd[0..bl): RFC 2046
 * §5.1.1 has it start with "--" and the boundary, whatever follows
 * ("it is sufficient that the boundary appear in its entirety following
 * the CRLF"). Sets *close for the close delimiter ("--" after it). */
static int dg_is_delim(const char *b, const struct dg_line *l, const char *bd, size_t bl,
                       int *close)
{
    const char *s = b + l->start;
    if (l->len < 2 + bl || s[0] != '-' || s[1] != '-' || memcmp(s + 2, bd, bl) != 0)
        return 0;
    *close = l->len >= 4 + bl && s[2 + bl] == '-' && s[3 + bl] == '-';
    return 1;
}

/* Copies b[from..to) — preamble, epilogue, a delimiter line with the
 * line end before it — which no encoding covers: it must be fit for the
 * transport already (bare LF line ends become CRLF). */
static int dg_copy_between(struct dg *d, const char *b, size_t from, size_t to)
{
    if (dg_scan(b + from, to - from) & d->mask & ~DG_LF)
        return dg_fail(d, "8-bit octet, NUL, bare CR or over-long line in a multipart "
                          "preamble, epilogue or delimiter line");
    dg_put_crlf(d->out, b + from, to - from);
    return 0;
}

/* Walks the body b[0..n) of a multipart with boundary bd[0..bl). Each
 * part is what lies between the line end after one delimiter line and
 * the line end before the next (that line end belongs to the delimiter,
 * RFC 2046 §5.1.1; a bare LF serves as one, but for DOWNGRADE_BINARY). A
 * multipart whose close delimiter is missing ends its last part at the
 * end of the body, as readers do. */
static int dg_multipart(struct dg *d, const char *b, size_t n, const char *bd, size_t bl,
                        enum dg_kind part_kind, int depth)
{
    size_t copied = 0; /* b[0..copied) is out */
    int in_part = 0, closed = 0;
    struct dg_line l;
    for (size_t pos = 0; !closed && dg_line_next(b, n, &pos, &l);) {
        int close;
        if (!dg_is_delim(b, &l, bd, bl, &close))
            continue;
        /* In binary content a bare LF is data, and so is a "--boundary"
         * after it: only a CRLF starts a delimiter line (RFC 2046 §5.1.1). */
        if ((d->flags & DOWNGRADE_BINARY) && l.start > 0 &&
            (l.start < 2 || b[l.start - 2] != '\r' || b[l.start - 1] != '\n'))
            continue;
        size_t cut = l.start; /* the start of the line end before the delimiter */
        if (cut > 0)
            cut -= cut >= 2 && b[cut - 2] == '\r' ? 2 : 1;
        if (in_part) {
            /* Two delimiter lines in a row: the part is empty and the
             * line end between them serves both. */
            if (cut < copied)
                cut = copied;
            int rc = dg_entity(d, b + copied, cut - copied, part_kind, depth + 1);
            if (rc < 0)
                return rc;
        } else {
            cut = 0; /* the preamble goes with the first delimiter */
        }
        int rc = dg_copy_between(d, b, cut, l.end);
        if (rc < 0)
            return rc;
        copied = l.end;
        in_part = !close;
        closed = close;
    }
    if (in_part)
        return dg_entity(d, b + copied, n - copied, part_kind, depth + 1);
    if (!closed)
        return dg_fail(d, "multipart without a boundary delimiter");
    return dg_copy_between(d, b, copied, n); /* the epilogue */
}

static int dg_is_type(const struct dg_ctype *ct, const char *prefix)
{
    return strncmp(ct->type.data, prefix, strlen(prefix)) == 0;
}

/* The entity p[0..n), header p[0..hlen), body p[body..n), converted
 * after its header passed the checks; `fit` says its body needs nothing
 * (then it is walked only for DOWNGRADE_BINARY's labels). */
static int dg_convert(struct dg *d, const char *p, size_t n, size_t hlen, size_t body,
                      enum dg_kind kind, int depth, int fit)
{
    int rc = -EINVAL;
    int keep8 = (d->flags & DOWNGRADE_KEEP_8BIT) != 0;
    struct dg_head hd = {0, 0, 0, BUF_INIT, BUF_INIT};
    struct dg_ctype ct = {BUF_INIT, BUF_INIT, 0, 0};
    struct buf extra = BUF_INIT;
    dg_head_read(p, hlen, &hd);
    if (hd.n_ct > 1 || hd.n_cte > 1) {
        rc = dg_fail(d, "more than one Content-Type or Content-Transfer-Encoding field");
        goto out;
    }
    enum dg_cte cte = hd.n_cte ? dg_cte_parse(hd.cte.data, hd.cte.len) : DG_CTE_NONE;
    if (cte == DG_CTE_ENCODED || cte == DG_CTE_OTHER) {
        rc = dg_fail(d, cte == DG_CTE_ENCODED
                            ? "8-bit octet, NUL, bare CR or LF or over-long line in encoded "
                              "content"
                            : "unknown Content-Transfer-Encoding");
        goto out;
    }
    if (hd.n_ct) {
        if (dg_ctype_parse(hd.ct.data, hd.ct.len, &ct) < 0) {
            rc = dg_fail(d, "Content-Type does not parse");
            goto out;
        }
    } else {
        /* RFC 2045 §5.2, RFC 2046 §5.1.5: the defaults. */
        buf_puts(&ct.type, kind == DG_DIGEST_PART ? "message/rfc822" : "text/plain");
    }
    if (kind == DG_MESSAGE && hd.n_mv == 0)
        buf_puts(&extra, "MIME-Version: 1.0\r\n");

    if (dg_is_type(&ct, "multipart/") || !strcmp(ct.type.data, "message/rfc822")) {
        /* Composite (RFC 2045 §6.4): no encoding of its own; what it
         * holds is made fit, so its label says what is left: "7bit", or
         * "8bit" where 8-bit text may stay. */
        int multi = dg_is_type(&ct, "multipart/");
        if (multi && (ct.param_error || ct.n_boundary != 1 || ct.boundary.len == 0)) {
            rc = dg_fail(d, "multipart without a usable boundary parameter");
            goto out;
        }
        const char *label = NULL;
        if (cte == DG_CTE_BINARY)
            label = keep8 ? "8bit" : "7bit";
        else if (cte == DG_CTE_8BIT && !keep8)
            label = "7bit";
        dg_put_header(d->out, p, hlen, label, 0, fit ? "" : extra.data ? extra.data : "");
        if (body > hlen)
            buf_puts(d->out, "\r\n"); /* the empty line */
        if (multi)
            rc = dg_multipart(d, p + body, n - body, ct.boundary.data, ct.boundary.len,
                              !strcmp(ct.type.data, "multipart/digest") ? DG_DIGEST_PART
                                                                        : DG_PART,
                              depth);
        else
            rc = dg_entity(d, p + body, n - body, DG_MESSAGE, depth + 1);
        goto out;
    }

    /* A leaf that needs nothing keeps its octets (only one labelled
     * binary is encoded, for DOWNGRADE_BINARY). */
    if (fit && cte != DG_CTE_BINARY) {
        buf_append(d->out, p, n);
        rc = 0;
        goto out;
    }
    /* RFC 6532 §3.5 and RFC 6533 §6 let the message/global types be
     * encoded; RFC 2046 §5.2.2-5.2.3 keep message/partial and
     * message/external-body 7-bit, and we assume no more of the others. */
    int qp = dg_is_type(&ct, "text/") || !strcmp(ct.type.data, "message/global") ||
             !strcmp(ct.type.data, "message/global-headers") ||
             !strcmp(ct.type.data, "message/global-delivery-status");
    if (!qp && dg_is_type(&ct, "message/")) {
        rc = dg_fail(d, "8-bit or binary content in a message/* type that allows no encoding");
        goto out;
    }
    if (hd.n_ct == 0)
        buf_printf(&extra, "Content-Type: text/plain; charset=%s\r\n",
                   dg_charset(p + body, n - body));
    dg_put_header(d->out, p, hlen, qp ? "quoted-printable" : "base64", 1,
                  extra.data ? extra.data : "");
    if (body > hlen)
        buf_puts(d->out, "\r\n");
    /* Either encoding decodes to the octets exactly, binary ones too
     * (RFC 2045 §6.2: binary content is made 7-bit by base64, or by
     * quoted-printable, which keeps CRLF as the line break). */
    if (qp)
        dg_qp(d->out, p + body, n - body);
    else
        dg_base64(d->out, p + body, n - body);
    rc = 0;
out:
    buf_free(&hd.ct);
    buf_free(&hd.cte);
    buf_free(&ct.type);
    buf_free(&ct.boundary);
    buf_free(&extra);
    return rc;
}

/* Converts the entity p[0..n) of the given kind; see downgrade.h for the
 * rules. */
static int dg_entity(struct dg *d, const char *p, size_t n, enum dg_kind kind, int depth)
{
    if (depth > DOWNGRADE_DEPTH_MAX)
        return dg_fail(d, "MIME structure nested too deep");
    size_t hlen, body;
    dg_split(p, n, &hlen, &body);
    unsigned hf = dg_scan(p, hlen);
    if (hf & (d->mask & (DG_8BIT | DG_NUL | DG_BARECR)))
        return dg_fail(d, kind == DG_MESSAGE
                              ? "8-bit octet, NUL or bare CR in a message header (8-bit "
                                "needs SMTPUTF8; RFC 6152 converts bodies only)"
                              : "8-bit octet, NUL or bare CR in a MIME part header");
    if (hf & DG_LONG)
        return dg_fail(d, "header line over 998 octets");
    int fit = !(hf & DG_LF) && (body == hlen || p[hlen] == '\r') &&
              !(dg_scan(p + body, n - body) & d->mask);
    if (fit && !(d->flags & DOWNGRADE_BINARY)) {
        buf_append(d->out, p, n);
        return 0;
    }
    size_t mark = d->out->len;
    int rc = dg_convert(d, p, n, hlen, body, kind, depth, fit);
    if (rc < 0 && fit) {
        /* Only labels were to change, and the structure does not allow
         * it: the octets are fit as they are. */
        d->out->len = mark;
        if (d->out->data)
            d->out->data[mark] = '\0';
        buf_append(d->out, p, n);
        d->why = NULL;
        rc = 0;
    }
    return rc;
}

static unsigned dg_mask(unsigned flags)
{
    return DG_NUL | DG_BARECR | DG_LF | DG_LONG | (flags & DOWNGRADE_KEEP_8BIT ? 0 : DG_8BIT);
}

int downgrade_needed(const char *msg, size_t len, unsigned flags)
{
    if (len == 0)
        return 0;
    size_t hlen, body;
    dg_split(msg, len, &hlen, &body);
    return (dg_scan(msg + body, len - body) & dg_mask(flags) & ~DG_LONG) != 0;
}

int downgrade_convert(const char *msg, size_t len, unsigned flags, struct buf *out,
                      const char **why)
{
    struct dg d = {out, flags, dg_mask(flags), NULL};
    size_t mark = out->len;
    int rc = dg_entity(&d, len ? msg : "", len, DG_MESSAGE, 0);
    if (rc < 0) {
        out->len = mark; /* nothing appended; buf keeps data NUL-terminated */
        if (out->data)
            out->data[mark] = '\0';
        if (why)
            *why = d.why;
        return rc;
    }
    if (why)
        *why = NULL;
    return 0;
}
