/* arc_fixture.h: what the ARC unit tests share, over dkim_fixture.h's
 * keys and zone. fx_arc_seal() puts the next set on a message with
 * mailauth/arc_seal; fx_arc_forge() builds one with any tags a test wants
 * (cv= at the wrong place, h= in a seal, a 512-bit key: sets the sealer
 * refuses to make), from the same pieces; fx_arc_run() validates a message
 * against an in-memory zone (dnsq_zone.h), fed in chunks of a given size,
 * each batch answered last question first. */
#ifndef TERN_TEST_ARC_FIXTURE_H
#define TERN_TEST_ARC_FIXTURE_H

#include "dkim_fixture.h"
#include "mailauth/arc_seal.h"
#include "mailauth/arc_set.h"
#include "mailauth/arc_verify.h"

#define FX_ARC_T 1700000000LL

/* Seals msg (NUL-terminated) with key as d=domain s=sel: the new message
 * (malloc'd), or NULL with *rc set when the sealer refuses. */
static inline char *fx_arc_seal_rc(const char *msg, EVP_PKEY *key, const char *domain,
                                   const char *sel, enum arc_result cv, const char *authres,
                                   int *rc)
{
    static struct arc_sealer *s;
    if (s == NULL)
        s = arc_seal_new();
    struct arc_seal_params p = {.key = key, .domain = domain, .selector = sel, .t = FX_ARC_T,
                                .cv = cv, .authres = authres};
    struct buf out = BUF_INIT;
    *rc = arc_seal_start(s, &p);
    if (*rc == 0) {
        arc_seal_feed(s, msg, strlen(msg));
        *rc = arc_seal_finish(s, NULL, 0, &out);
    }
    if (*rc < 0) {
        buf_free(&out);
        return NULL;
    }
    buf_puts(&out, msg);
    return buf_steal(&out);
}

static inline char *fx_arc_seal(const char *msg, EVP_PKEY *key, const char *domain,
                                const char *sel, enum arc_result cv, const char *authres)
{
    int rc;
    char *m = fx_arc_seal_rc(msg, key, domain, sel, cv, authres, &rc);
    if (m == NULL) {
        fprintf(stderr, "fx_arc_seal: %d\n", rc);
        abort();
    }
    return m;
}

/* The same, freeing msg. */
static inline char *fx_arc_reseal(char *msg, EVP_PKEY *key, const char *domain, const char *sel,
                                  enum arc_result cv, const char *authres)
{
    char *m = fx_arc_seal(msg, key, domain, sel, cv, authres);
    free(msg);
    return m;
}

/* A set built by hand on top of msg: "ARC-Authentication-Results: <aar>",
 * "ARC-Message-Signature: <ams_tags> bh=..; b=.." (ams_tags hold i=, a=,
 * c=, d=, s=, h= as the test wants; its body hash in relaxed, its header
 * hash relaxed), "ARC-Seal: <as_tags> b=.." over the sets of msg (all of
 * them when all_sets, else none) and the new AAR and AMS. A NULL
 * ams_tags or as_tags leaves that field out. malloc'd. */
static inline char *fx_arc_forge(const char *msg, EVP_PKEY *key, const char *aar,
                                 const char *ams_tags, const char *as_tags, bool all_sets)
{
    struct dkim_hdr h;
    char bh[64];
    fx_body_hash(msg, &h, DKIM_CANON_RELAXED, DKIM_NO_LIMIT, bh);
    struct buf aarf = BUF_INIT, ams = BUF_INIT, as = BUF_INIT, out = BUF_INIT;
    buf_printf(&aarf, "ARC-Authentication-Results: %s", aar);
    if (ams_tags) {
        buf_printf(&ams, "ARC-Message-Signature: %s bh=%s; b=", ams_tags, bh);
        fx_sign_field(&h, key, ams_tags, DKIM_CANON_RELAXED, &ams);
    }
    if (as_tags) {
        buf_printf(&as, "ARC-Seal: %s b=", as_tags);
        struct arc_chain c;
        arc_set_collect(&c, &h);
        struct dkim_span spans[ARC_INSTANCE_MAX * ARC_FIELDS + 2];
        size_t ns = all_sets && c.why == NULL && c.n ? arc_set_fields(&c, &h, c.n, spans) : 0;
        spans[ns++] = (struct dkim_span){aarf.data, aarf.len};
        if (ams_tags)
            spans[ns++] = (struct dkim_span){ams.data, ams.len};
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        struct buf scratch = BUF_INIT;
        unsigned char hh[DKIM_HASH_LEN];
        dkim_hdr_hash_spans(spans, ns, DKIM_CANON_RELAXED, as.data, as.len, md, &scratch, hh);
        fx_append_sig(key, hh, &as);
        EVP_MD_CTX_free(md);
        buf_free(&scratch);
        buf_printf(&out, "%s\r\n", as.data);
    }
    if (ams_tags)
        buf_printf(&out, "%s\r\n", ams.data);
    buf_printf(&out, "%s\r\n%s", aarf.data, msg);
    dkim_hdr_free(&h);
    buf_free(&aarf);
    buf_free(&ams);
    buf_free(&as);
    return buf_steal(&out);
}

/* Validates msg[0..n) with v against z, fed `chunk` octets at a time (0:
 * all at once), at time now. Returns the batches answered, or -1 if the
 * validator misbehaved (a question that is not TXT or not a valid name, a
 * batch of nothing or of more than DNSQ_BATCH_MAX, an answer refused, no
 * DONE). */
static inline int fx_arc_run_n(struct arc_verify *v, struct zone *z, const char *msg, size_t n,
                               size_t chunk, long long now)
{
    struct arc_verify_params p = {.now = now};
    arc_verify_start(v, &p);
    if (chunk == 0)
        chunk = n ? n : 1;
    for (size_t i = 0; i < n; i += chunk)
        arc_verify_feed(v, msg + i, n - i < chunk ? n - i : chunk);
    arc_verify_end(v);
    int batches = 0;
    while (arc_verify_step(v) == ARC_STEP_DNS) {
        const struct dnsq_question *q;
        size_t nq = arc_verify_questions(v, &q);
        if (nq == 0 || nq > DNSQ_BATCH_MAX || ++batches > ARC_QUESTIONS_MAX)
            return -1;
        for (size_t k = nq; k-- > 0;) {
            if (q[k].type != DNSQ_TXT || !dnsq_name_ok(q[k].name, strlen(q[k].name)))
                return -1;
            struct dnsq_answer a;
            zone_answer(z, &q[k], &a);
            int rc = arc_verify_answer(v, k, &a);
            free((void *)a.rrs);
            if (rc != 0)
                return -1;
        }
    }
    return arc_verify_step(v) == ARC_STEP_DONE ? batches : -1;
}

static inline int fx_arc_run(struct arc_verify *v, struct zone *z, const char *msg)
{
    return fx_arc_run_n(v, z, msg, strlen(msg), 0, FX_ARC_T + 60);
}

static inline const char *fx_arc_result(const struct arc_verify *v)
{
    return arc_result_name(arc_verify_result(v)->result);
}

#endif
