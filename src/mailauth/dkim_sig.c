/* dkim_sig.c: the DKIM-Signature field (RFC 6376 §3.5). Every rule that
 * makes a field no signature at all is here; the verifier adds the ones
 * that depend on the time, the key and the message. */
#include "mailauth/dkim_sig.h"

#include <errno.h>
#include <string.h>

#include "base/strutil.h"

const char *dkim_alg_name(enum dkim_alg a)
{
    switch (a) {
    case DKIM_ALG_RSA_SHA256:
        return "rsa-sha256";
    case DKIM_ALG_ED25519_SHA256:
        return "ed25519-sha256";
    case DKIM_ALG_RSA_SHA1:
        return "rsa-sha1";
    }
    return "?";
}

bool dkim_name_ok(const char *p, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

/* field-name = 1*ftext, ftext = %d33-57 / %d59-126 (RFC 5322 §3.6.8). */
static bool dkim_field_name_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 33 || c > 126 || c == ':')
            return false;
    }
    return n > 0;
}

/* Whether the domain after i='s last '@' is d or under it (§3.5 i=). */
static bool dkim_auid_within(const char *i, size_t ilen, const char *d, size_t dlen)
{
    const char *at = NULL;
    for (size_t k = 0; k < ilen; k++)
        if (i[k] == '@')
            at = i + k;
    if (at == NULL)
        return false;
    const char *dom = at + 1;
    size_t n = ilen - (size_t)(dom - i);
    if (n < dlen || strutil_ncasecmp(dom + n - dlen, d, dlen) != 0)
        return false;
    return n == dlen || dom[n - dlen - 1] == '.';
}

static int dkim_parse_canon(struct dkim_sig *sig, const char *v, size_t n)
{
    const char *slash = memchr(v, '/', n);
    size_t hl = slash ? (size_t)(slash - v) : n;
    enum dkim_canon *dst[2] = {&sig->hcanon, &sig->bcanon};
    const char *part[2] = {v, slash ? slash + 1 : NULL};
    size_t len[2] = {hl, slash ? n - hl - 1 : 0};
    for (int k = 0; k < 2 && part[k]; k++) {
        if (dkim_text_eq(part[k], len[k], "simple"))
            *dst[k] = DKIM_CANON_SIMPLE;
        else if (dkim_text_eq(part[k], len[k], "relaxed"))
            *dst[k] = DKIM_CANON_RELAXED;
        else
            return -EINVAL;
    }
    return 0;
}

int dkim_alg_parse(const char *v, size_t n, enum dkim_alg *a)
{
    if (dkim_text_eq(v, n, "rsa-sha256"))
        *a = DKIM_ALG_RSA_SHA256;
    else if (dkim_text_eq(v, n, "ed25519-sha256"))
        *a = DKIM_ALG_ED25519_SHA256;
    else if (dkim_text_eq(v, n, "rsa-sha1"))
        *a = DKIM_ALG_RSA_SHA1;
    else
        return -EINVAL;
    return 0;
}

int dkim_sig_qname(char out[256], const char *s, size_t s_len, const char *d, size_t d_len)
{
    if (s_len + sizeof "._domainkey." - 1 + d_len > 253)
        return -ENAMETOOLONG;
    memcpy(out, s, s_len);
    memcpy(out + s_len, "._domainkey.", 12);
    memcpy(out + s_len + 12, d, d_len);
    out[s_len + 12 + d_len] = '\0';
    return 0;
}

void dkim_sig_strip_b(const char *field, size_t n, const char *b, size_t b_len, struct buf *out)
{
    size_t b_at = (size_t)(b - field), b_end = b_at + b_len;
    buf_reset(out);
    buf_append(out, field, b_at);
    buf_append(out, field + b_end, n - b_end);
}

int dkim_sig_h_next(const struct dkim_sig *sig, size_t *pos, const char **name, size_t *len)
{
    return dkim_list_next(sig->h, sig->h_len, pos, name, len);
}

#define DKIM_FAIL(text)  \
    do {                 \
        *why = (text);   \
        return -EINVAL;  \
    } while (0)

int dkim_sig_parse(struct dkim_sig *sig, const char *value, size_t n, struct buf *tmp,
                   const char **why)
{
    return dkim_sig_parse_form(sig, DKIM_SIG_FORM_DKIM, value, n, tmp, why);
}

int dkim_sig_parse_form(struct dkim_sig *sig, enum dkim_sig_form form, const char *value,
                        size_t n, struct buf *tmp, const char **why)
{
    static const char *const required[] = {"v", "a", "b", "bh", "d", "h", "s"};
    static const char *const missing[] = {"missing v=", "missing a=", "missing b=",
                                          "missing bh=", "missing d=", "missing h=",
                                          "missing s="};
    bool ams = form == DKIM_SIG_FORM_AMS;
    struct dkim_tags tags;
    memset(sig, 0, sizeof *sig);
    sig->l = DKIM_NO_LIMIT;
    int rc = dkim_tags_parse(&tags, value, n);
    if (rc == -E2BIG)
        DKIM_FAIL("too many tags");
    if (rc < 0)
        DKIM_FAIL("malformed tag list");
    const struct dkim_tag *t[7];
    /* RFC 8617 §4.1.2: an AMS has no v= ("if seen, a version tag MUST be
     * ignored"). */
    t[0] = NULL;
    for (size_t k = ams ? 1 : 0; k < 7; k++) {
        t[k] = dkim_tags_find(&tags, required[k]);
        if (t[k] == NULL)
            DKIM_FAIL(missing[k]);
    }
    const struct dkim_tag *v = t[0], *a = t[1], *b = t[2], *bh = t[3], *d = t[4], *h = t[5],
                          *s = t[6];
    if (!ams && !dkim_text_eq(v->value, v->value_len, "1"))
        DKIM_FAIL("v= is not 1");

    if (dkim_alg_parse(a->value, a->value_len, &sig->alg) < 0)
        DKIM_FAIL("unknown algorithm");

    if (!dkim_name_ok(d->value, d->value_len))
        DKIM_FAIL("d= is no domain");
    if (!dkim_name_ok(s->value, s->value_len))
        DKIM_FAIL("s= is no selector");
    sig->d = d->value;
    sig->d_len = d->value_len;
    sig->s = s->value;
    sig->s_len = s->value_len;
    if (dkim_sig_qname(sig->qname, s->value, s->value_len, d->value, d->value_len) < 0)
        DKIM_FAIL("s= and d= too long for DNS");

    /* h=: at least "from" (§3.5, §5.4); names as RFC 5322 has them. */
    sig->h = h->value;
    sig->h_len = h->value_len;
    size_t pos = 0, len;
    const char *name;
    while ((rc = dkim_list_next(h->value, h->value_len, &pos, &name, &len)) == 1) {
        if (!dkim_field_name_ok(name, len))
            DKIM_FAIL("h= holds something that is no field name");
        if (++sig->nh > DKIM_H_MAX)
            DKIM_FAIL("h= names too many fields");
        if (dkim_text_eq(name, len, "from"))
            sig->h_from++;
        else if (dkim_text_eq(name, len, "subject"))
            sig->h_subject++;
    }
    if (rc < 0 || sig->nh == 0)
        DKIM_FAIL("malformed h=");
    if (sig->h_from == 0)
        DKIM_FAIL("h= does not sign From");

    /* An AMS's i= is its instance (RFC 8617 §4.2.1), read by arc_set. */
    const struct dkim_tag *i = ams ? NULL : dkim_tags_find(&tags, "i");
    if (i) {
        if (i->value_len > DKIM_AUID_MAX)
            DKIM_FAIL("i= too long");
        if (!dkim_auid_within(i->value, i->value_len, d->value, d->value_len))
            DKIM_FAIL("i= not within d=");
        sig->i = i->value;
        sig->i_len = i->value_len;
    }

    const struct dkim_tag *c = dkim_tags_find(&tags, "c");
    sig->hcanon = sig->bcanon = DKIM_CANON_SIMPLE;
    if (c && dkim_parse_canon(sig, c->value, c->value_len) < 0)
        DKIM_FAIL("unknown canonicalization");

    const struct dkim_tag *q = dkim_tags_find(&tags, "q");
    if (q && dkim_list_has(q->value, q->value_len, "dns/txt") != 1)
        DKIM_FAIL("q= has no dns/txt");

    const struct dkim_tag *l = dkim_tags_find(&tags, "l");
    if (l && dkim_decimal(l->value, l->value_len, 76, &sig->l) < 0)
        DKIM_FAIL("malformed l=");
    if (sig->l == DKIM_NO_LIMIT && l)
        sig->l = DKIM_NO_LIMIT - 1; /* a limit past any body, still a limit */

    /* t= and x=: 12 digits say the RFC (§3.5); 16 are allowed here, well
     * inside 64 bits, so a time far away reads as one, not as an error. */
    const struct dkim_tag *tt = dkim_tags_find(&tags, "t");
    if (tt) {
        if (dkim_decimal(tt->value, tt->value_len, 16, &sig->t) < 0)
            DKIM_FAIL("malformed t=");
        sig->has_t = true;
    }
    const struct dkim_tag *x = dkim_tags_find(&tags, "x");
    if (x) {
        if (dkim_decimal(x->value, x->value_len, 16, &sig->x) < 0)
            DKIM_FAIL("malformed x=");
        sig->has_x = true;
        if (sig->has_t && sig->x <= sig->t)
            DKIM_FAIL("x= not after t="); /* §3.5 x=: "MUST be greater" */
    }

    /* bh=: a SHA-256 digest (20 octets of SHA-1 pass here, to be
     * refused by the verifier with their own reason). */
    size_t bh_want = sig->alg == DKIM_ALG_RSA_SHA1 ? 20 : DKIM_HASH_LEN;
    if (dkim_b64_decode(bh->value, bh->value_len, DKIM_HASH_LEN, tmp) < 0 || tmp->len != bh_want)
        DKIM_FAIL("malformed bh=");
    memcpy(sig->bh, tmp->data, tmp->len);
    sig->bh_len = tmp->len;

    /* b=: the signature; its place in the field, which the header hash
     * sees with this value deleted (§3.7). */
    if (b->value_len == 0)
        DKIM_FAIL("empty b=");
    if (dkim_b64_decode(b->value, b->value_len, DKIM_SIG_BYTES_MAX, tmp) < 0 || tmp->len == 0)
        DKIM_FAIL("malformed b=");
    memcpy(sig->sig, tmp->data, tmp->len);
    sig->sig_len = tmp->len;
    sig->b = b->value;
    sig->b_len = b->value_len;
    sig->b_off = (size_t)(b->value - value);
    *why = NULL;
    return 0;
}
