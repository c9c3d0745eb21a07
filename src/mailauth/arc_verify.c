/* arc_verify.c: the validator (RFC 8617 §5.2). The chain's form is judged
 * when the header section is complete; each signature then goes through
 * the points a DKIM signature does (dkim_verify.c): its header hash at
 * once, its key's answer (the public-key operation), and for an AMS the
 * end of the body (the body hash). The verdict is drawn at the end, in
 * the RFC's order: the newest AMS, then the seals from the newest down. */
#include "mailauth/arc_verify.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/dkim_canon.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_key.h"
#include "mailauth/dkim_msg.h"
#include "mailauth/dkim_verify.h"

/* One signature: an AMS or an AS. */
struct arc_vsig {
    bool parsed; /* the field parsed (AMS: sig; AS: seal) */
    bool final;  /* judged */
    bool ok;     /* ... and verified */
    bool keyed;  /* AMS: its key arrived and passed its checks */
    bool sig_ok; /* AMS: the public-key operation verified */
    bool temp;   /* failed for want of a key answer */
    bool skipped; /* never verified: the chain had failed before its key */
    bool unsigned_from, unsigned_subject;
    const char *why; /* static, when final and not ok */
    int q;           /* its key's question, -1 when none is asked */
    int slot;        /* AMS: its body hash */
    unsigned char hhash[DKIM_HASH_LEN];
};

struct arc_vams {
    struct arc_vsig v;
    struct dkim_sig sig;
};

struct arc_vas {
    struct arc_vsig v;
    struct arc_set_seal seal;
};

struct arc_verify {
    struct arc_verify_params p;
    struct dkim_msg m;
    struct arc_chain chain;
    struct arc_vams *ams; /* owned: [k - 1] is instance k's */
    struct arc_vas *as;   /* owned, likewise */
    size_t sets_cap;
    unsigned from_count, subject_count;

    /* Every key name the chain needs, in the order asked; the current
     * batch is qs[batch .. batch_end). Allocated for the first chain
     * (2 N names at most), so a session without ARC mail pays nothing. */
    struct dnsq_question *qs; /* owned */
    bool *answered;           /* owned */
    size_t qs_cap;
    size_t nq, batch, batch_end, nanswered;

    struct arc_verify_result res;
    char reason[160];
    bool decided; /* the result is known (none, or fail by its form) */
    bool ended, timed_out, concluded;
    struct buf tmp;
};

const char *arc_result_name(enum arc_result r)
{
    return r == ARC_PASS ? "pass" : r == ARC_FAIL ? "fail" : "none";
}

struct arc_verify *arc_verify_new(void)
{
    struct arc_verify *v = xcalloc(1, sizeof *v);
    dkim_msg_init(&v->m);
    v->ended = true;
    return v;
}

void arc_verify_free(struct arc_verify *v)
{
    if (v == NULL)
        return;
    dkim_msg_free(&v->m);
    free(v->ams);
    free(v->as);
    free(v->qs);
    free(v->answered);
    buf_free(&v->tmp);
    free(v);
}

void arc_verify_start(struct arc_verify *v, const struct arc_verify_params *p)
{
    v->p = *p;
    if (v->p.clock_skew == 0)
        v->p.clock_skew = DKIM_CLOCK_SKEW;
    dkim_msg_reset(&v->m, p->header_max);
    memset(&v->chain, 0, sizeof v->chain);
    v->from_count = v->subject_count = 0;
    v->nq = v->batch = v->batch_end = v->nanswered = 0;
    memset(&v->res, 0, sizeof v->res);
    v->res.reason = "";
    v->res.oldest_pass = -1;
    v->reason[0] = '\0';
    v->decided = v->ended = v->timed_out = v->concluded = false;
}

/* The result is fail, for the reason "<what>" or "i=<k> <field>: <why>". */
static void arc_fail(struct arc_verify *v, unsigned k, const char *field, const char *why,
                     bool temp)
{
    if (field)
        snprintf(v->reason, sizeof v->reason, "i=%u %s: %s", k, field, why);
    else
        snprintf(v->reason, sizeof v->reason, "%s", why);
    v->res.result = ARC_FAIL;
    v->res.reason = v->reason;
    v->res.temporary = temp;
    v->res.oldest_pass = -1;
}

static void arc_final(struct arc_vsig *s, bool ok, const char *why)
{
    s->final = true;
    s->ok = ok;
    s->why = ok ? "" : why;
}

/* Asks for a key name once, however many signatures need it. */
static int arc_ask(struct arc_verify *v, const char *qname)
{
    for (size_t i = 0; i < v->nq; i++)
        if (strutil_casecmp(v->qs[i].name, qname) == 0)
            return (int)i;
    size_t i = v->nq++; /* at most one per signature: arc_sets_room made room */
    v->qs[i].type = DNSQ_TXT;
    strutil_lcpy(v->qs[i].name, qname, sizeof v->qs[i].name);
    v->answered[i] = false;
    return (int)i;
}

/* The value of header field i (after its colon). */
static const char *arc_value(const struct dkim_hdr *h, uint32_t i, size_t *n)
{
    const char *f = dkim_hdr_at(h, i);
    const char *colon = memchr(f, ':', h->fields[i].len);
    *n = h->fields[i].len - (size_t)(colon + 1 - f);
    return colon + 1;
}

/* What the newest set says of itself: its seal's d=, its AAR's id and
 * payload. */
static void arc_report_newest(struct arc_verify *v)
{
    const struct arc_chain *c = &v->chain;
    unsigned n = c->n;
    if (c->at[n][ARC_FIELD_AAR] != UINT32_MAX) {
        size_t len, payload;
        unsigned inst;
        const char *val = arc_value(&v->m.hdr, c->at[n][ARC_FIELD_AAR], &len);
        if (authres_parse_arc_id(val, len, &inst, v->res.aar_id) < 0)
            v->res.aar_id[0] = '\0';
        if (authres_parse_arc_instance(val, len, &inst, &payload) == 0) {
            while (payload < len && strchr(" \t\r\n", val[payload]))
                payload++;
            v->res.aar_text = val + payload;
            v->res.aar_len = len - payload;
        }
    }
    const struct arc_vas *as = &v->as[n - 1];
    if (as->v.parsed) {
        memcpy(v->res.as_d, as->seal.d, as->seal.d_len);
        v->res.as_d[as->seal.d_len] = '\0';
    }
}

/* Room for a chain of n sets (n <= ARC_INSTANCE_MAX): their signatures
 * and a key name for each. */
static void arc_sets_room(struct arc_verify *v, unsigned n)
{
    if (v->sets_cap >= n)
        return;
    v->sets_cap = n;
    v->ams = xrealloc(v->ams, n * sizeof *v->ams);
    v->as = xrealloc(v->as, n * sizeof *v->as);
    v->qs_cap = 2 * (size_t)n;
    v->qs = xrealloc(v->qs, v->qs_cap * sizeof *v->qs);
    v->answered = xrealloc(v->answered, v->qs_cap * sizeof *v->answered);
}

static void arc_vsig_init(struct arc_vsig *s)
{
    memset(s, 0, sizeof *s);
    s->q = s->slot = -1;
    s->why = "";
}

/* §5.2 steps 2 and 3c over the parsed seals, and step 4's precondition:
 * the newest AMS parses and may sign what it signs. false: decided. */
static bool arc_judge_form(struct arc_verify *v)
{
    unsigned n = v->chain.n;
    for (unsigned k = n; k >= 1; k--) {
        const struct arc_vas *as = &v->as[k - 1];
        if (!as->v.parsed) {
            arc_fail(v, k, "ARC-Seal", as->v.why, false);
            return false;
        }
    }
    if (v->as[n - 1].seal.cv == ARC_FAIL) {
        arc_fail(v, 0, NULL, "the newest ARC-Seal says cv=fail", false); /* step 2 */
        return false;
    }
    for (unsigned k = 1; k <= n; k++) {
        enum arc_result cv = v->as[k - 1].seal.cv;
        if (cv != (k == 1 ? ARC_NONE : ARC_PASS)) {
            arc_fail(v, k, "ARC-Seal",
                     cv == ARC_FAIL   ? "cv=fail inside the chain"
                     : k == 1         ? "cv= is not none at i=1"
                                      : "cv=none after i=1",
                     false);
            return false;
        }
    }
    const struct arc_vams *newest = &v->ams[n - 1];
    if (newest->v.final && !newest->v.ok) {
        arc_fail(v, n, "ARC-Message-Signature", newest->v.why, false);
        return false;
    }
    return true;
}

/* Parses every AMS and AS of the chain; an AMS that cannot count is
 * judged at once. */
static void arc_parse_sets(struct arc_verify *v)
{
    const struct arc_chain *c = &v->chain;
    for (unsigned k = 1; k <= c->n; k++) {
        struct arc_vams *ams = &v->ams[k - 1];
        struct arc_vas *as = &v->as[k - 1];
        arc_vsig_init(&ams->v);
        arc_vsig_init(&as->v);
        size_t len;
        const char *val = arc_value(&v->m.hdr, c->at[k][ARC_FIELD_AS], &len);
        const char *why;
        if (arc_set_parse_seal(&as->seal, val, len, &v->tmp, &why) == 0) {
            as->v.parsed = true;
            if (as->seal.alg == DKIM_ALG_RSA_SHA1)
                arc_final(&as->v, false, "rsa-sha1 is not accepted (RFC 8301)");
        } else {
            arc_final(&as->v, false, why);
        }
        val = arc_value(&v->m.hdr, c->at[k][ARC_FIELD_AMS], &len);
        if (dkim_sig_parse_form(&ams->sig, DKIM_SIG_FORM_AMS, val, len, &v->tmp, &why) < 0) {
            arc_final(&ams->v, false, why);
            continue;
        }
        ams->v.parsed = true;
        why = dkim_verify_early(&ams->sig, v->p.now, v->p.clock_skew);
        size_t pos = 0, nlen;
        const char *name;
        while (why == NULL && dkim_sig_h_next(&ams->sig, &pos, &name, &nlen) == 1)
            if (arc_set_unsignable(name, nlen))
                why = "signs an ARC or Authentication-Results field"; /* §4.1.2 */
        if (why) {
            arc_final(&ams->v, false, why);
            continue;
        }
        pos = 0;
        while (dkim_sig_h_next(&ams->sig, &pos, &name, &nlen) == 1)
            dkim_hdr_index_add(&v->m.idx, name, nlen);
    }
}

/* The hashes of every signature still to judge, its body slot and key. */
static void arc_prepare(struct arc_verify *v)
{
    unsigned n = v->chain.n;
    struct dkim_hdr_index *x = &v->m.idx;
    dkim_hdr_index_add(x, "from", 4);
    dkim_hdr_index_add(x, "subject", 7);
    dkim_msg_index_build(&v->m);
    v->from_count = dkim_hdr_index_count(x, dkim_hdr_index_find(x, "from", 4));
    v->subject_count = dkim_hdr_index_count(x, dkim_hdr_index_find(x, "subject", 7));
    struct dkim_span spans[ARC_INSTANCE_MAX * ARC_FIELDS];
    for (unsigned k = 1; k <= n; k++) {
        struct arc_vams *ams = &v->ams[k - 1];
        if (!ams->v.final) {
            const struct dkim_sig *s = &ams->sig;
            uint32_t f = v->chain.at[k][ARC_FIELD_AMS];
            ams->v.unsigned_from = v->from_count > s->h_from;
            ams->v.unsigned_subject = s->h_subject > 0 && v->subject_count > s->h_subject;
            dkim_sig_strip_b(dkim_hdr_at(&v->m.hdr, f), v->m.hdr.fields[f].len, s->b, s->b_len,
                             &v->tmp);
            dkim_msg_hash(&v->m, s->hcanon, s->h, s->h_len, v->tmp.data, v->tmp.len,
                          ams->v.hhash);
            ams->v.slot = dkim_body_want(v->m.body, s->bcanon, s->l);
            if (ams->v.slot < 0)
                arc_final(&ams->v, false, "too many body canonicalisations");
            else
                v->m.body_on = true;
        }
        struct arc_vas *as = &v->as[k - 1];
        if (!as->v.final) {
            size_t ns = arc_set_fields(&v->chain, &v->m.hdr, k, spans) - 1; /* not itself */
            uint32_t f = v->chain.at[k][ARC_FIELD_AS];
            dkim_sig_strip_b(dkim_hdr_at(&v->m.hdr, f), v->m.hdr.fields[f].len, as->seal.b,
                             as->seal.b_len, &v->tmp);
            dkim_hdr_hash_spans(spans, ns, DKIM_CANON_RELAXED, v->tmp.data, v->tmp.len, v->m.md,
                                &v->m.scratch, as->v.hhash);
        }
    }
    /* The keys in the order they matter: the newest AMS (step 4), the
     * seals newest first (step 6), the older AMSs (step 5). */
    if (!v->ams[n - 1].v.final)
        v->ams[n - 1].v.q = arc_ask(v, v->ams[n - 1].sig.qname);
    for (unsigned k = n; k >= 1; k--)
        if (!v->as[k - 1].v.final)
            v->as[k - 1].v.q = arc_ask(v, v->as[k - 1].seal.qname);
    for (unsigned k = n - 1; k >= 1; k--)
        if (!v->ams[k - 1].v.final)
            v->ams[k - 1].v.q = arc_ask(v, v->ams[k - 1].sig.qname);
}

/* The header section is complete. */
static void arc_header_done(void *arg)
{
    struct arc_verify *v = arg;
    if (v->m.hdr.overflow) {
        v->decided = true;
        arc_fail(v, 0, NULL, "header section too large to validate", false);
        return;
    }
    arc_set_collect(&v->chain, &v->m.hdr);
    if (v->chain.fields == 0) {
        v->decided = true; /* §5.2 step 1: none */
        return;
    }
    v->res.sets = v->chain.n;
    if (v->chain.why) {
        v->decided = true;
        arc_fail(v, 0, NULL, v->chain.why, false);
        return;
    }
    arc_sets_room(v, v->chain.n);
    arc_parse_sets(v);
    arc_report_newest(v);
    if (!arc_judge_form(v)) {
        v->decided = true;
        return;
    }
    arc_prepare(v);
}

void arc_verify_feed(struct arc_verify *v, const char *p, size_t n)
{
    if (!v->ended)
        dkim_msg_feed(&v->m, p, n, arc_header_done, v);
}

void arc_verify_end(struct arc_verify *v)
{
    if (v->ended)
        return;
    dkim_msg_end(&v->m, arc_header_done, v);
    v->ended = true;
}

/* The signatures that wait for question i. */
static void arc_key_for(struct arc_verify *v, size_t i, const struct dkim_key *key, bool have,
                        bool temp, const char *why)
{
    for (unsigned k = 1; k <= v->chain.n; k++) {
        struct arc_vams *ams = &v->ams[k - 1];
        struct arc_vas *as = &v->as[k - 1];
        enum dkim_result r;
        if (!ams->v.final && ams->v.q == (int)i) {
            const char *refuse = have ? dkim_verify_key_refuses(key, ams->sig.alg, &r) : why;
            if (refuse) {
                arc_final(&ams->v, false, refuse);
                ams->v.temp = !have && temp;
            } else {
                ams->v.keyed = true;
                ams->v.sig_ok = dkim_verify_digest(key->pkey, ams->sig.alg, ams->sig.sig,
                                                   ams->sig.sig_len, ams->v.hhash);
            }
        }
        if (!as->v.final && as->v.q == (int)i) {
            const char *refuse = have ? dkim_verify_key_refuses(key, as->seal.alg, &r) : why;
            if (refuse) {
                arc_final(&as->v, false, refuse);
                as->v.temp = !have && temp;
            } else {
                bool ok = dkim_verify_digest(key->pkey, as->seal.alg, as->seal.sig,
                                             as->seal.sig_len, as->v.hhash);
                arc_final(&as->v, ok, "signature mismatch");
            }
        }
    }
}

int arc_verify_answer(struct arc_verify *v, size_t i, const struct dnsq_answer *a)
{
    size_t q = v->batch + i;
    if (q >= v->batch_end || v->answered[q])
        return -EINVAL;
    v->answered[q] = true;
    v->nanswered++;
    struct dkim_key key = {0};
    const char *why;
    enum dkim_result r;
    int rc = dkim_verify_key_answer(&key, a, &v->m.scratch, &v->tmp, &r, &why);
    arc_key_for(v, q, &key, rc == 0, rc == -EAGAIN, why);
    dkim_key_clear(&key);
    return 0;
}

void arc_verify_timeout(struct arc_verify *v)
{
    v->timed_out = true;
    /* The unanswered questions of the batch, and those never asked. */
    for (size_t q = v->batch; q < v->nq; q++) {
        if (q < v->batch_end) {
            if (v->answered[q])
                continue;
            v->answered[q] = true;
            v->nanswered++;
        }
        arc_key_for(v, q, NULL, false, true, "key lookup timed out");
    }
}

/* Whether the chain has failed already: a seal, or the newest AMS's
 * signature, did not verify. Then no more keys are asked for. */
static bool arc_failed_early(const struct arc_verify *v)
{
    unsigned n = v->chain.n;
    const struct arc_vams *newest = &v->ams[n - 1];
    if ((newest->v.final && !newest->v.ok) || (newest->v.keyed && !newest->v.sig_ok))
        return true;
    for (unsigned k = 1; k <= n; k++)
        if (v->as[k - 1].v.final && !v->as[k - 1].v.ok)
            return true;
    return false;
}

/* RFC 6376 §6.1.3, the body half, as dkim_verify does it. */
static void arc_judge_body(struct arc_verify *v, struct arc_vams *ams)
{
    const struct dkim_sig *s = &ams->sig;
    if (!ams->v.keyed) {
        arc_final(&ams->v, false, "not verified");
        ams->v.skipped = true;
        return;
    }
    uint64_t blen = dkim_body_length(v->m.body, s->bcanon);
    if (CRYPTO_memcmp(dkim_body_digest(v->m.body, ams->v.slot), s->bh, DKIM_HASH_LEN) != 0)
        arc_final(&ams->v, false, "body hash mismatch");
    else if (!ams->v.sig_ok)
        arc_final(&ams->v, false, "signature mismatch");
    else if (s->l != DKIM_NO_LIMIT && s->l > blen)
        arc_final(&ams->v, false, "l= longer than the body");
    else if (ams->v.unsigned_from)
        arc_final(&ams->v, false, "unsigned From above signed");
    else if (ams->v.unsigned_subject)
        arc_final(&ams->v, false, "unsigned Subject above signed");
    else
        arc_final(&ams->v, true, "");
}

/* §5.2 steps 4 to 7. */
static void arc_conclude(struct arc_verify *v)
{
    v->concluded = true;
    if (v->decided)
        return;
    unsigned n = v->chain.n;
    for (unsigned k = 1; k <= n; k++) {
        if (!v->ams[k - 1].v.final)
            arc_judge_body(v, &v->ams[k - 1]);
        if (!v->as[k - 1].v.final) {
            arc_final(&v->as[k - 1].v, false, "not verified");
            v->as[k - 1].v.skipped = true;
        }
    }
    /* An AMS left unverified (its key not asked once a seal had failed)
     * is not the reason: that seal is. */
    const struct arc_vams *newest = &v->ams[n - 1];
    if (!newest->v.ok && !newest->v.skipped) {
        arc_fail(v, n, "ARC-Message-Signature", newest->v.why, newest->v.temp);
        return;
    }
    for (int pass = 0; pass < 2; pass++) /* a seal that failed, else one skipped */
        for (unsigned k = n; k >= 1; k--) {
            const struct arc_vas *as = &v->as[k - 1];
            if (!as->v.ok && (pass || !as->v.skipped)) {
                arc_fail(v, k, "ARC-Seal", as->v.why, as->v.temp);
                return;
            }
        }
    if (!newest->v.ok) { /* cannot happen: skipped only after a seal failed */
        arc_fail(v, n, "ARC-Message-Signature", newest->v.why, false);
        return;
    }
    unsigned oldest = n;
    while (oldest > 1 && v->ams[oldest - 2].v.ok)
        oldest--;
    v->res.result = ARC_PASS;
    v->res.reason = "";
    v->res.oldest_pass = oldest == 1 ? 0 : (int)oldest;
}

enum arc_step arc_verify_step(struct arc_verify *v)
{
    if (v->nanswered < v->batch_end - v->batch)
        return ARC_STEP_DNS;
    if (v->m.hdr.done && !v->decided && !v->timed_out && v->batch_end < v->nq &&
        !arc_failed_early(v)) {
        v->batch = v->batch_end;
        v->batch_end = v->nq - v->batch > DNSQ_BATCH_MAX ? v->batch + DNSQ_BATCH_MAX : v->nq;
        v->nanswered = 0;
        return ARC_STEP_DNS;
    }
    if (!v->ended)
        return ARC_STEP_CONTENT;
    if (!v->concluded)
        arc_conclude(v);
    return ARC_STEP_DONE;
}

size_t arc_verify_questions(const struct arc_verify *v, const struct dnsq_question **q)
{
    *q = v->nq ? v->qs + v->batch : v->qs; /* qs is NULL before the first chain */
    return v->batch_end - v->batch;
}

const struct arc_verify_result *arc_verify_result(const struct arc_verify *v)
{
    return &v->res;
}
