/* arc_set.c: ARC fields, sets and seals (arc_set.h). */
#include "mailauth/arc_set.h"

#include <errno.h>
#include <string.h>

#include "base/strutil.h"
#include "mailauth/authres.h"
#include "mailauth/dkim_tags.h"

static const char *const arc_field_names[ARC_FIELDS] = {
    "arc-authentication-results",
    "arc-message-signature",
    "arc-seal",
};

int arc_set_field_kind(const struct dkim_hdr *h, size_t i)
{
    if (h->fields[i].name_len < 8 || strutil_ncasecmp(dkim_hdr_at(h, i), "arc-", 4) != 0)
        return -ENOENT; /* the common case, one comparison */
    for (int k = 0; k < ARC_FIELDS; k++)
        if (dkim_hdr_is(h, i, arc_field_names[k]))
            return k;
    return -ENOENT;
}

/* i-val of an AMS or AS: the i= tag, 1*2DIGIT of value 1 to 50. */
static int arc_tag_instance(const struct dkim_tags *t, unsigned *instance)
{
    const struct dkim_tag *i = dkim_tags_find(t, "i");
    uint64_t x;
    if (i == NULL || dkim_decimal(i->value, i->value_len, 2, &x) < 0 || x < 1 ||
        x > ARC_INSTANCE_MAX)
        return -EINVAL;
    *instance = (unsigned)x;
    return 0;
}

int arc_set_instance(enum arc_field kind, const char *v, size_t n, unsigned *instance)
{
    if (kind == ARC_FIELD_AAR) {
        size_t payload;
        return authres_parse_arc_instance(v, n, instance, &payload) < 0 ? -EINVAL : 0;
    }
    struct dkim_tags t;
    if (dkim_tags_parse(&t, v, n) < 0)
        return -EINVAL;
    return arc_tag_instance(&t, instance);
}

/* The value of field i (after its colon). */
static const char *arc_value(const struct dkim_hdr *h, size_t i, size_t *n)
{
    const char *f = dkim_hdr_at(h, i);
    size_t len = h->fields[i].len;
    const char *colon = memchr(f, ':', len);
    *n = len - (size_t)(colon + 1 - f);
    return colon + 1;
}

void arc_set_collect(struct arc_chain *c, const struct dkim_hdr *h)
{
    c->n = c->fields = 0;
    c->why = NULL;
    memset(c->at, 0xff, sizeof c->at);
    for (size_t i = 0; i < h->nfields; i++) {
        int kind = arc_set_field_kind(h, i);
        if (kind < 0)
            continue;
        c->fields++;
        if (c->why)
            continue;
        size_t n;
        const char *v = arc_value(h, i, &n);
        unsigned inst;
        if (arc_set_instance((enum arc_field)kind, v, n, &inst) < 0) {
            c->why = "ARC field without a valid instance";
            continue;
        }
        if (c->at[inst][kind] != UINT32_MAX) {
            c->why = "two ARC fields of a kind in one instance"; /* §4.2.1 */
            continue;
        }
        c->at[inst][kind] = (uint32_t)i;
        if (inst > c->n)
            c->n = inst;
    }
    if (c->why || c->fields == 0)
        return;
    for (unsigned k = 1; k <= c->n; k++) {
        int have = 0;
        for (int f = 0; f < ARC_FIELDS; f++)
            have += c->at[k][f] != UINT32_MAX;
        if (have == 0) {
            c->why = "ARC instances with a gap"; /* §5.2 step 3b */
            return;
        }
        if (have < ARC_FIELDS) {
            c->why = "incomplete ARC set"; /* §5.2 step 3a */
            return;
        }
    }
}

#define ARC_FAIL(text)  \
    do {                \
        *why = (text);  \
        return -EINVAL; \
    } while (0)

int arc_set_parse_seal(struct arc_set_seal *as, const char *v, size_t n, struct buf *tmp,
                       const char **why)
{
    struct dkim_tags t;
    memset(as, 0, sizeof *as);
    if (dkim_tags_parse(&t, v, n) < 0)
        ARC_FAIL("malformed ARC-Seal");
    if (arc_tag_instance(&t, &as->instance) < 0)
        ARC_FAIL("ARC-Seal without a valid i=");
    if (dkim_tags_find(&t, "h"))
        ARC_FAIL("h= in ARC-Seal"); /* §4.1.3 */
    const struct dkim_tag *cv = dkim_tags_find(&t, "cv"), *a = dkim_tags_find(&t, "a"),
                          *b = dkim_tags_find(&t, "b"), *d = dkim_tags_find(&t, "d"),
                          *s = dkim_tags_find(&t, "s"), *tt = dkim_tags_find(&t, "t");
    if (!cv || !a || !b || !d || !s)
        ARC_FAIL("ARC-Seal lacks a required tag");
    /* §4.1.3.1: none, fail, pass; compared as DKIM compares a= values. */
    if (dkim_text_eq(cv->value, cv->value_len, "none"))
        as->cv = ARC_NONE;
    else if (dkim_text_eq(cv->value, cv->value_len, "pass"))
        as->cv = ARC_PASS;
    else if (dkim_text_eq(cv->value, cv->value_len, "fail"))
        as->cv = ARC_FAIL;
    else
        ARC_FAIL("unknown cv= in ARC-Seal");
    if (dkim_alg_parse(a->value, a->value_len, &as->alg) < 0)
        ARC_FAIL("unknown algorithm in ARC-Seal");
    if (!dkim_name_ok(d->value, d->value_len) || !dkim_name_ok(s->value, s->value_len))
        ARC_FAIL("ARC-Seal d= or s= is no domain");
    if (dkim_sig_qname(as->qname, s->value, s->value_len, d->value, d->value_len) < 0)
        ARC_FAIL("ARC-Seal s= and d= too long for DNS");
    as->d = d->value;
    as->d_len = d->value_len;
    as->s = s->value;
    as->s_len = s->value_len;
    if (tt) {
        if (dkim_decimal(tt->value, tt->value_len, 16, &as->t) < 0)
            ARC_FAIL("malformed t= in ARC-Seal");
        as->has_t = true;
    }
    if (b->value_len == 0 ||
        dkim_b64_decode(b->value, b->value_len, DKIM_SIG_BYTES_MAX, tmp) < 0 || tmp->len == 0)
        ARC_FAIL("malformed b= in ARC-Seal");
    memcpy(as->sig, tmp->data, tmp->len);
    as->sig_len = tmp->len;
    as->b = b->value;
    as->b_len = b->value_len;
    *why = NULL;
    return 0;
}

size_t arc_set_fields(const struct arc_chain *c, const struct dkim_hdr *h, unsigned k,
                      struct dkim_span *f)
{
    size_t n = 0;
    for (unsigned j = 1; j <= k; j++)
        for (int kind = 0; kind < ARC_FIELDS; kind++) {
            uint32_t i = c->at[j][kind];
            f[n].p = dkim_hdr_at(h, i);
            f[n].n = h->fields[i].len;
            n++;
        }
    return n;
}

bool arc_set_unsignable(const char *name, size_t n)
{
    for (int k = 0; k < ARC_FIELDS; k++)
        if (dkim_text_eq(name, n, arc_field_names[k]))
            return true;
    return dkim_text_eq(name, n, "authentication-results");
}
