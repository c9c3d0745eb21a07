/* spf_record.c: the SPF record parser (RFC 7208 §4.5, §4.6.1, §5, §6, §12).
 *
 * A record is "v=spf1" and terms separated by one or more spaces (§4.6.1:
 * spaces only, so a TAB, CR or LF inside a term makes it malformed). A
 * term is a modifier when it starts with a name followed by '=', else a
 * directive: an optional qualifier and a mechanism. The known modifiers
 * are not greedy: "redirect=" and "exp=" must hold a valid domain-spec,
 * a known modifier given twice is an error (§6), and a mechanism name that
 * is not one of the eight is an error (§4.6.1, "redirect:x" included). */
#include "mailauth/spf_record.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/spf_macro.h"

/* A TXT record's RDATA is at most 65535 octets, so is the record. */
#define SPF_RECORD_MAX 65535

const char *spf_result_name(enum spf_result r)
{
    static const char *const names[] = {"none",     "neutral",   "pass",     "fail",
                                        "softfail", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

bool spf_record_is_spf(const char *p, size_t n)
{
    return n >= 6 && strutil_ncasecmp(p, "v=spf1", 6) == 0 && (n == 6 || p[6] == ' ');
}

static bool spf_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool spf_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
static bool spf_is_name_char(char c)
{
    return spf_is_alpha(c) || spf_is_digit(c) || c == '-' || c == '_' || c == '.';
}

/* A CIDR length without leading zeros (§12: ip4-cidr-length = "/" ("0" /
 * %x31-39 0*1DIGIT), ip6-cidr-length = "/" ("0" / %x31-39 0*2DIGIT)), at
 * most `max`. p[0..n) are the digits. Returns the value or -EINVAL. */
static int spf_parse_cidr(const char *p, size_t n, unsigned max)
{
    size_t maxdigits = max > 99 ? 3 : 2;
    if (n == 0 || n > maxdigits || (p[0] == '0' && n > 1))
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!spf_is_digit(p[i]))
            return -EINVAL;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= max ? (int)v : -EINVAL;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], the
 * whole of p[0..n). */
static int spf_parse_dual_cidr(const char *p, size_t n, struct spf_term *t)
{
    if (n == 0)
        return 0;
    if (p[0] != '/')
        return -EINVAL;
    size_t i = 1;
    if (i < n && p[i] != '/') {
        size_t d = i;
        while (i < n && spf_is_digit(p[i]))
            i++;
        int v = spf_parse_cidr(p + d, i - d, 32);
        if (v < 0)
            return -EINVAL;
        t->cidr4 = (uint8_t)v;
        if (i == n)
            return 0;
        if (p[i] != '/')
            return -EINVAL;
        i++;
    }
    if (i >= n || p[i] != '/')
        return -EINVAL;
    int v = spf_parse_cidr(p + i + 1, n - i - 1, 128);
    if (v < 0)
        return -EINVAL;
    t->cidr6 = (uint8_t)v;
    return 0;
}

/* Where a dual-cidr-length at the end of p[0..n) begins (n if none): a
 * domain-spec may hold '/' itself ("a:foo:bar/baz.example.com"), so only
 * a trailing "/digits", "//digits" or "/digits//digits" is taken. */
static size_t spf_cidr_suffix(const char *p, size_t n)
{
    size_t d = n;
    while (d > 0 && spf_is_digit(p[d - 1]))
        d--;
    if (d == n || d == 0 || p[d - 1] != '/')
        return n;
    size_t slash = d - 1;
    if (slash == 0 || p[slash - 1] != '/')
        return slash; /* "/N": an ip4-cidr-length */
    size_t start = slash - 1, d4 = start;
    while (d4 > 0 && spf_is_digit(p[d4 - 1]))
        d4--;
    if (d4 < start && d4 > 0 && p[d4 - 1] == '/')
        return d4 - 1; /* "/N//M" */
    return start;      /* "//M" */
}

/* qnum = DIGIT / %x31-39 DIGIT / "1" 2DIGIT / "2" %x30-34 DIGIT /
 * "25" %x30-35: 0 to 255 without leading zeros. Four of them, dotted. */
static int spf_parse_ip4(const char *p, size_t n, unsigned char out[4])
{
    size_t i = 0;
    for (int q = 0; q < 4; q++) {
        if (q > 0) {
            if (i >= n || p[i] != '.')
                return -EINVAL;
            i++;
        }
        size_t d = i;
        unsigned v = 0;
        while (i < n && spf_is_digit(p[i]) && i - d < 3)
            v = v * 10 + (unsigned)(p[i++] - '0');
        if (i == d || v > 255 || (p[d] == '0' && i - d > 1))
            return -EINVAL;
        out[q] = (unsigned char)v;
    }
    return i == n ? 0 : -EINVAL;
}

static int spf_parse_ip6(const char *p, size_t n, unsigned char out[16])
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof tmp || memchr(p, '\0', n))
        return -EINVAL;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -EINVAL;
}

static int spf_parse_domain(const char *rec, size_t off, size_t len, struct spf_span *span,
                            uint32_t *letters)
{
    if (spf_macro_check(rec + off, len, SPF_MACRO_DOMAIN, letters) < 0)
        return -EINVAL;
    span->off = (uint32_t)off;
    span->len = (uint32_t)len;
    return 0;
}

static int spf_fail(struct spf_record_error *err, const char *what, size_t off, size_t len)
{
    if (err) {
        err->what = what;
        err->term.off = (uint32_t)off;
        err->term.len = (uint32_t)len;
    }
    return -EINVAL;
}

static int spf_parse_modifier(struct spf_record *rec, size_t off, size_t len, size_t namelen,
                              struct spf_record_error *err)
{
    const char *p = rec->text + off;
    size_t voff = off + namelen + 1, vlen = len - namelen - 1;
    struct spf_span *span = NULL;
    uint32_t *letters = NULL;
    if (namelen == 8 && strutil_ncasecmp(p, "redirect", 8) == 0) {
        span = &rec->redirect;
        letters = &rec->redirect_letters;
    } else if (namelen == 3 && strutil_ncasecmp(p, "exp", 3) == 0) {
        span = &rec->exp;
        letters = &rec->exp_letters;
    }
    if (span == NULL) {
        /* unknown-modifier = name "=" macro-string: ignored (§6), but
         * its macro syntax must hold (RFC 7208 test suite, A/3). */
        if (spf_macro_check(rec->text + voff, vlen, SPF_MACRO_UNKNOWN, NULL) < 0)
            return spf_fail(err, "bad macro in modifier", off, len);
        return 0;
    }
    if (span->len)
        return spf_fail(err, "modifier given twice", off, len);
    if (vlen == 0 || spf_parse_domain(rec->text, voff, vlen, span, letters) < 0)
        return spf_fail(err, "bad domain-spec", off, len);
    return 0;
}

static const struct {
    const char *name;
    enum spf_mech mech;
} spf_mechs[] = {
    {"all", SPF_MECH_ALL}, {"include", SPF_MECH_INCLUDE}, {"a", SPF_MECH_A},
    {"mx", SPF_MECH_MX},   {"ptr", SPF_MECH_PTR},         {"ip4", SPF_MECH_IP4},
    {"ip6", SPF_MECH_IP6}, {"exists", SPF_MECH_EXISTS},
};

static int spf_parse_directive(struct spf_record *rec, size_t off, size_t len,
                               struct spf_record_error *err)
{
    const char *p = rec->text + off;
    struct spf_term *t = &rec->terms[rec->nterms];
    memset(t, 0, sizeof *t);
    t->text.off = (uint32_t)off;
    t->text.len = (uint32_t)len;
    t->result = SPF_PASS;
    t->cidr4 = 32;
    t->cidr6 = 128;
    /* qualifier = "+" / "-" / "?" / "~"; none is "+" (§4.6.2). */
    static const char quals[] = "+-~?";
    static const uint8_t qresults[] = {SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL};
    const char *q = strchr(quals, p[0]);
    size_t i = 0;
    if (p[0] && q) {
        t->result = qresults[q - quals];
        i = 1;
    }
    size_t name = i;
    while (i < len && (spf_is_alpha(p[i]) || spf_is_digit(p[i])))
        i++;
    size_t m = 0, nm = sizeof spf_mechs / sizeof spf_mechs[0];
    while (m < nm && !(strlen(spf_mechs[m].name) == i - name &&
                       strutil_ncasecmp(p + name, spf_mechs[m].name, i - name) == 0))
        m++;
    if (m == nm)
        return spf_fail(err, "unknown mechanism", off, len);
    t->mech = (uint8_t)spf_mechs[m].mech;
    const char *rest = p + i;
    size_t nrest = len - i, roff = off + i;
    bool colon = nrest > 0 && rest[0] == ':';

    switch (t->mech) {
    case SPF_MECH_ALL:
        if (nrest)
            return spf_fail(err, "junk after all", off, len);
        rec->has_all = true;
        break;
    case SPF_MECH_INCLUDE:
    case SPF_MECH_EXISTS:
    case SPF_MECH_PTR:
        if (t->mech == SPF_MECH_PTR && nrest == 0)
            break;
        if (!colon || nrest < 2 ||
            spf_parse_domain(rec->text, roff + 1, nrest - 1, &t->spec, &t->letters) < 0)
            return spf_fail(err, "bad domain-spec", off, len);
        break;
    case SPF_MECH_A:
    case SPF_MECH_MX: {
        size_t cidr = 0;
        if (colon) {
            cidr = spf_cidr_suffix(rest + 1, nrest - 1) + 1;
            if (cidr < 2 ||
                spf_parse_domain(rec->text, roff + 1, cidr - 1, &t->spec, &t->letters) < 0)
                return spf_fail(err, "bad domain-spec", off, len);
        }
        if (spf_parse_dual_cidr(rest + cidr, nrest - cidr, t) < 0)
            return spf_fail(err, "bad CIDR length", off, len);
        break;
    }
    case SPF_MECH_IP4:
    case SPF_MECH_IP6: {
        if (!colon)
            return spf_fail(err, "no address", off, len);
        const char *net = rest + 1;
        size_t nnet = nrest - 1;
        const char *slash = memchr(net, '/', nnet);
        size_t alen = slash ? (size_t)(slash - net) : nnet;
        int rc = t->mech == SPF_MECH_IP4 ? spf_parse_ip4(net, alen, t->addr)
                                         : spf_parse_ip6(net, alen, t->addr);
        if (rc < 0)
            return spf_fail(err, "bad address", off, len);
        if (slash) {
            unsigned max = t->mech == SPF_MECH_IP4 ? 32 : 128;
            int v = spf_parse_cidr(slash + 1, nnet - alen - 1, max);
            if (v < 0)
                return spf_fail(err, "bad CIDR length", off, len);
            if (t->mech == SPF_MECH_IP4)
                t->cidr4 = (uint8_t)v;
            else
                t->cidr6 = (uint8_t)v;
        }
        break;
    }
    }
    rec->nterms++;
    return 0;
}

static int spf_parse_term(struct spf_record *rec, size_t off, size_t len,
                          struct spf_record_error *err)
{
    const char *p = rec->text + off;
    if (spf_is_alpha(p[0])) {
        size_t k = 1;
        while (k < len && spf_is_name_char(p[k]))
            k++;
        if (k < len && p[k] == '=')
            return spf_parse_modifier(rec, off, len, k, err);
    }
    return spf_parse_directive(rec, off, len, err);
}

int spf_record_parse(struct spf_record *rec, const char *text, size_t n,
                     struct spf_record_error *err)
{
    rec->len = 0;
    rec->nterms = 0;
    rec->redirect = rec->exp = (struct spf_span){0, 0};
    rec->redirect_letters = rec->exp_letters = 0;
    rec->has_all = false;
    if (n > SPF_RECORD_MAX)
        return spf_fail(err, "record too long", 0, 0);
    if (!spf_record_is_spf(text, n))
        return spf_fail(err, "not an SPF record", 0, n < 6 ? n : 6);
    /* One term per run of non-spaces bounds the mechanisms. */
    size_t words = 0;
    for (size_t i = 6; i < n; i++)
        words += text[i] != ' ' && text[i - 1] == ' ';
    if (rec->text_cap < n + 1) {
        free(rec->text);
        rec->text = xmalloc(n + 1);
        rec->text_cap = n + 1;
    }
    if (rec->terms_cap < words) {
        free(rec->terms);
        rec->terms = xmalloc(words * sizeof *rec->terms);
        rec->terms_cap = words;
    }
    memcpy(rec->text, text, n);
    rec->text[n] = '\0';
    rec->len = n;
    size_t i = 6;
    while (i < n) {
        if (text[i] == ' ') {
            i++;
            continue;
        }
        const char *sp = memchr(text + i, ' ', n - i);
        size_t end = sp ? (size_t)(sp - text) : n;
        int rc = spf_parse_term(rec, i, end - i, err);
        if (rc < 0) {
            rec->nterms = 0;
            return rc;
        }
        i = end;
    }
    return 0;
}

void spf_record_free(struct spf_record *rec)
{
    free(rec->text);
    free(rec->terms);
    memset(rec, 0, sizeof *rec);
}
