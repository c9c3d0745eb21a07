/* dmarc_record.c: the DMARC record parser (dmarc_record.h).
 *
 * A record is a tag-list: tags separated by ';' with WSP (space, TAB)
 * around the separators and the '='. The record is walked once; each tag
 * is judged on its own, and only p, sp and rua together decide whether
 * the record is usable (§6.6.3 step 6). */
#include "mailauth/dmarc_record.h"

#include <errno.h>
#include <string.h>

#include "base/strutil.h"

/* A TXT record's RDATA is at most 65535 octets, so is the record. */
#define DMARC_RECORD_MAX 65535

const char *dmarc_policy_name(enum dmarc_policy p)
{
    static const char *const names[] = {"none", "quarantine", "reject"};
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

const char *dmarc_align_name(enum dmarc_align a)
{
    return a == DMARC_ALIGN_STRICT ? "s" : "r";
}

void dmarc_record_fo_text(unsigned fo, char out[8])
{
    static const char letters[] = "01ds";
    size_t n = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (!(fo & (1u << i)))
            continue;
        if (n)
            out[n++] = ':';
        out[n++] = letters[i];
    }
    if (n == 0)
        out[n++] = '0';
    out[n] = '\0';
}

static bool dmarc_is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool dmarc_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool dmarc_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool dmarc_is_hex(char c)
{
    return dmarc_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A span of the record. */
struct dmarc_span {
    const char *p;
    size_t n;
};

static struct dmarc_span dmarc_trim(const char *p, size_t n)
{
    while (n > 0 && dmarc_is_wsp(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && dmarc_is_wsp(p[n - 1]))
        n--;
    return (struct dmarc_span){p, n};
}

static bool dmarc_span_is(struct dmarc_span s, const char *word)
{
    size_t n = strlen(word);
    return s.n == n && strutil_ncasecmp(s.p, word, n) == 0;
}

bool dmarc_record_is_dmarc(const char *text, size_t n)
{
    /* dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31 */
    size_t i = 0;
    if (n == 0 || (text[0] != 'v' && text[0] != 'V'))
        return false;
    i = 1;
    while (i < n && dmarc_is_wsp(text[i]))
        i++;
    if (i == n || text[i] != '=')
        return false;
    i++;
    while (i < n && dmarc_is_wsp(text[i]))
        i++;
    if (n - i < 6 || memcmp(text + i, "DMARC1", 6) != 0)
        return false;
    i += 6;
    while (i < n && dmarc_is_wsp(text[i]))
        i++;
    return i == n || text[i] == ';';
}

/* "none" / "quarantine" / "reject": 0 with *p, or -1. */
static int dmarc_parse_policy(struct dmarc_span v, enum dmarc_policy *p)
{
    if (dmarc_span_is(v, "none"))
        *p = DMARC_POLICY_NONE;
    else if (dmarc_span_is(v, "quarantine"))
        *p = DMARC_POLICY_QUARANTINE;
    else if (dmarc_span_is(v, "reject"))
        *p = DMARC_POLICY_REJECT;
    else
        return -EINVAL;
    return 0;
}

static int dmarc_parse_align(struct dmarc_span v, enum dmarc_align *a)
{
    if (dmarc_span_is(v, "r"))
        *a = DMARC_ALIGN_RELAXED;
    else if (dmarc_span_is(v, "s"))
        *a = DMARC_ALIGN_STRICT;
    else
        return -EINVAL;
    return 0;
}

/* 1*DIGIT into *out, at most max: 0 or -1. */
static int dmarc_parse_uint(struct dmarc_span v, uint64_t max, uint64_t *out)
{
    if (v.n == 0)
        return -EINVAL;
    uint64_t x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (!dmarc_is_digit(v.p[i]))
            return -EINVAL;
        unsigned d = (unsigned)(v.p[i] - '0');
        if (x > (max - d) / 10)
            return -EINVAL;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* The colon-separated list of fo or rf: calls each item through `item`,
 * which returns its bit or 0 for an item it does not know. Returns the
 * bits, or 0 for a malformed list. */
static unsigned dmarc_parse_colons(struct dmarc_span v, unsigned (*item)(struct dmarc_span))
{
    unsigned bits = 0;
    size_t start = 0;
    for (size_t i = 0; i <= v.n; i++) {
        if (i < v.n && v.p[i] != ':')
            continue;
        struct dmarc_span s = dmarc_trim(v.p + start, i - start);
        if (s.n == 0)
            return 0;
        bits |= item(s);
        start = i + 1;
    }
    return bits;
}

static unsigned dmarc_fo_item(struct dmarc_span s)
{
    if (s.n != 1)
        return 1u << 8; /* poisons the list: not one of 0 1 d s */
    switch (s.p[0]) {
    case '0':
        return DMARC_FO_0;
    case '1':
        return DMARC_FO_1;
    case 'd':
    case 'D':
        return DMARC_FO_D;
    case 's':
    case 'S':
        return DMARC_FO_S;
    }
    return 1u << 8;
}

static unsigned dmarc_rf_item(struct dmarc_span s)
{
    return dmarc_span_is(s, "afrf") ? DMARC_RF_AFRF : 0;
}

/* RFC 3986 URI characters, less ',' and '!' which a DMARC URI must
 * percent-encode (§6.4) and ';' which ends the tag. */
static bool dmarc_is_uri_char(char c)
{
    return dmarc_is_alpha(c) || dmarc_is_digit(c) || (c != '\0' && strchr("-._~:/?#[]@$&'()*+=", c));
}

/* One dmarc-uri: URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]. */
static int dmarc_parse_uri(struct dmarc_span s, struct dmarc_uri *out)
{
    const char *bang = memchr(s.p, '!', s.n);
    size_t ulen = bang ? (size_t)(bang - s.p) : s.n;
    if (ulen == 0 || ulen >= DMARC_URI_MAX)
        return -EINVAL;
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    size_t i = 0;
    if (!dmarc_is_alpha(s.p[0]))
        return -EINVAL;
    while (i < ulen && (dmarc_is_alpha(s.p[i]) || dmarc_is_digit(s.p[i]) ||
                        s.p[i] == '+' || s.p[i] == '-' || s.p[i] == '.'))
        i++;
    if (i == ulen || s.p[i] != ':' || i + 1 == ulen)
        return -EINVAL;
    for (i++; i < ulen; i++) {
        if (s.p[i] == '%') {
            if (i + 2 >= ulen || !dmarc_is_hex(s.p[i + 1]) || !dmarc_is_hex(s.p[i + 2]))
                return -EINVAL;
            i += 2;
        } else if (!dmarc_is_uri_char(s.p[i])) {
            return -EINVAL;
        }
    }
    uint64_t limit = 0;
    if (bang) {
        struct dmarc_span size = {bang + 1, s.n - ulen - 1};
        unsigned shift = 0;
        if (size.n > 0) {
            switch (size.p[size.n - 1]) {
            case 'k': case 'K': shift = 10; break;
            case 'm': case 'M': shift = 20; break;
            case 'g': case 'G': shift = 30; break;
            case 't': case 'T': shift = 40; break;
            }
            if (shift)
                size.n--;
        }
        /* "the numeric portion MUST fit within an unsigned 64-bit integer" */
        if (dmarc_parse_uint(size, UINT64_MAX, &limit) < 0)
            return -EINVAL;
        if (shift && limit > (UINT64_MAX >> shift))
            limit = UINT64_MAX;
        else
            limit <<= shift;
        if (limit == 0)
            return -EINVAL; /* a limit of nothing cannot be honoured */
    }
    memcpy(out->uri, s.p, ulen);
    out->uri[ulen] = '\0';
    out->max_bytes = limit;
    return 0;
}

/* dmarc-uri *(*WSP "," *WSP dmarc-uri): the valid ones into uris[]. */
static size_t dmarc_parse_uris(struct dmarc_span v, struct dmarc_uri *uris)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= v.n && k < DMARC_URIS_MAX; i++) {
        if (i < v.n && v.p[i] != ',')
            continue;
        struct dmarc_span s = dmarc_trim(v.p + start, i - start);
        if (s.n && dmarc_parse_uri(s, &uris[k]) == 0)
            k++;
        start = i + 1;
    }
    return k;
}

enum dmarc_tag {
    DMARC_TAG_P,
    DMARC_TAG_SP,
    DMARC_TAG_RUA,
    DMARC_TAG_RUF,
    DMARC_TAG_ADKIM,
    DMARC_TAG_ASPF,
    DMARC_TAG_RI,
    DMARC_TAG_FO,
    DMARC_TAG_RF,
    DMARC_TAG_PCT,
    DMARC_TAG_COUNT,
};

static int dmarc_tag_of(struct dmarc_span name)
{
    static const char *const names[DMARC_TAG_COUNT] = {"p",  "sp", "rua", "ruf", "adkim",
                                                       "aspf", "ri", "fo", "rf", "pct"};
    for (int t = 0; t < DMARC_TAG_COUNT; t++)
        if (dmarc_span_is(name, names[t]))
            return t;
    return -EINVAL;
}

static void dmarc_record_defaults(struct dmarc_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->p = rec->sp = DMARC_POLICY_NONE;
    rec->adkim = rec->aspf = DMARC_ALIGN_RELAXED;
    rec->pct = 100;
    rec->fo = DMARC_FO_0;
    rec->rf = DMARC_RF_AFRF;
    rec->ri = 86400;
}

/* Applies one tag's value; returns false when it is invalid. */
static bool dmarc_record_tag(struct dmarc_record *rec, int tag, struct dmarc_span v)
{
    uint64_t x;
    unsigned bits;
    switch (tag) {
    case DMARC_TAG_P:
        return dmarc_parse_policy(v, &rec->p) == 0;
    case DMARC_TAG_SP:
        return dmarc_parse_policy(v, &rec->sp) == 0;
    case DMARC_TAG_RUA:
        rec->nrua = dmarc_parse_uris(v, rec->rua);
        return rec->nrua > 0;
    case DMARC_TAG_RUF:
        rec->nruf = dmarc_parse_uris(v, rec->ruf);
        return rec->nruf > 0;
    case DMARC_TAG_ADKIM:
        return dmarc_parse_align(v, &rec->adkim) == 0;
    case DMARC_TAG_ASPF:
        return dmarc_parse_align(v, &rec->aspf) == 0;
    case DMARC_TAG_RI:
        if (dmarc_parse_uint(v, UINT32_MAX, &x) < 0)
            return false;
        rec->ri = (uint32_t)x;
        return true;
    case DMARC_TAG_FO:
        bits = dmarc_parse_colons(v, dmarc_fo_item);
        if (bits == 0 || bits > 0xf)
            return false;
        rec->fo = bits;
        return true;
    case DMARC_TAG_RF:
        bits = dmarc_parse_colons(v, dmarc_rf_item);
        if (bits == 0)
            return false;
        rec->rf = bits;
        return true;
    case DMARC_TAG_PCT:
        /* 1*3DIGIT, a percentage */
        if (v.n > 3 || dmarc_parse_uint(v, 100, &x) < 0)
            return false;
        rec->pct = (unsigned)x;
        return true;
    }
    return false;
}

int dmarc_record_parse(struct dmarc_record *rec, const char *text, size_t n, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    dmarc_record_defaults(rec);
    if (n > DMARC_RECORD_MAX || !dmarc_record_is_dmarc(text, n)) {
        *why = "not a DMARC1 record";
        return -EINVAL;
    }
    bool seen[DMARC_TAG_COUNT] = {false};
    bool p_ok = false, sp_bad = false;
    /* The tags after "v=DMARC1;". */
    const char *semi = memchr(text, ';', n);
    size_t start = semi ? (size_t)(semi - text) + 1 : n;
    for (size_t i = start; i <= n; i++) {
        if (i < n && text[i] != ';')
            continue;
        struct dmarc_span part = dmarc_trim(text + start, i - start);
        start = i + 1;
        const char *eq = part.n ? memchr(part.p, '=', part.n) : NULL;
        if (eq == NULL)
            continue; /* empty, or no tag=value: ignored (§6.3) */
        struct dmarc_span name = dmarc_trim(part.p, (size_t)(eq - part.p));
        struct dmarc_span value = dmarc_trim(eq + 1, part.n - (size_t)(eq - part.p) - 1);
        int tag = dmarc_tag_of(name);
        if (tag < 0 || seen[tag])
            continue; /* unknown tags and repeats are ignored */
        seen[tag] = true;
        /* A tag sets its field only when its value is valid, so an
         * invalid one leaves the default. */
        bool ok = dmarc_record_tag(rec, tag, value);
        if (tag == DMARC_TAG_P)
            p_ok = ok;
        else if (tag == DMARC_TAG_SP)
            sp_bad = !ok;
    }
    rec->sp_given = seen[DMARC_TAG_SP] && !sp_bad;
    if (!p_ok || sp_bad) {
        /* §6.6.3 step 6 */
        if (rec->nrua == 0) {
            *why = !p_ok ? "no valid p tag" : "invalid sp tag";
            return -EINVAL;
        }
        rec->p = DMARC_POLICY_NONE;
        rec->p_valid = false;
        rec->sp_given = false;
    } else {
        rec->p_valid = true;
    }
    if (!rec->sp_given)
        rec->sp = rec->p;
    *why = NULL;
    return 0;
}
