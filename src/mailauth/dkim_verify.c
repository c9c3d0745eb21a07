/* dkim_verify.c: the verifier (RFC 6376 §6.1). A signature goes through
 * three points, each reached when its input is in: the header section
 * (parse, time checks, header hash, key question, body slot), its key's
 * answer (key checks, the public-key operation on the header hash) and
 * the end of the body (body hash). A signature whose result is known
 * early (malformed, sha1, expired) asks no question. */
#include "mailauth/dkim_verify.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_key.h"
#include "mailauth/dkim_msg.h"

struct dkim_vsig {
    struct dkim_sig sig;
    struct dkim_sig_result res;
    int q;     /* its key's question, -1 when none is asked */
    int slot;  /* its body hash */
    bool final;
    bool keyed;  /* its key arrived and passed its checks */
    bool sig_ok; /* the public-key operation verified */
    unsigned char hhash[DKIM_HASH_LEN];
};

struct dkim_verify {
    struct dkim_verify_params p;
    struct dkim_msg m;
    struct dkim_vsig sigs[DKIM_SIGS_MAX];
    size_t nsigs;
    unsigned sig_fields, from_count, subject_count, flags;

    struct dnsq_question qs[DNSQ_BATCH_MAX];
    bool answered[DNSQ_BATCH_MAX];
    size_t nq, nanswered;

    struct buf tmp;
    bool ended;
};

const char *dkim_result_name(enum dkim_result r)
{
    static const char *const names[] = {"none",    "pass",      "fail",     "policy",
                                        "neutral", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

struct dkim_verify *dkim_verify_new(void)
{
    struct dkim_verify *v = xcalloc(1, sizeof *v);
    dkim_msg_init(&v->m);
    v->ended = true;
    return v;
}

void dkim_verify_free(struct dkim_verify *v)
{
    if (v == NULL)
        return;
    dkim_msg_free(&v->m);
    buf_free(&v->tmp);
    free(v);
}

void dkim_verify_start(struct dkim_verify *v, const struct dkim_verify_params *p)
{
    v->p = *p;
    if (v->p.clock_skew == 0)
        v->p.clock_skew = DKIM_CLOCK_SKEW;
    dkim_msg_reset(&v->m, p->header_max);
    v->nsigs = 0;
    v->sig_fields = v->from_count = v->subject_count = v->flags = 0;
    v->nq = v->nanswered = 0;
    v->ended = false;
}

static void dkim_final(struct dkim_vsig *vs, enum dkim_result r, const char *reason)
{
    vs->res.result = r;
    vs->res.reason = reason;
    vs->final = true;
}

/* The result's copies of what the signature says. */
static void dkim_report(struct dkim_vsig *vs)
{
    const struct dkim_sig *s = &vs->sig;
    struct dkim_sig_result *r = &vs->res;
    r->parsed = true;
    r->alg = s->alg;
    memcpy(r->d, s->d, s->d_len);
    r->d[s->d_len] = '\0';
    memcpy(r->s, s->s, s->s_len);
    r->s[s->s_len] = '\0';
    if (s->i_len) {
        memcpy(r->i, s->i, s->i_len);
        r->i[s->i_len] = '\0';
    } else {
        r->i[0] = '@';
        memcpy(r->i + 1, s->d, s->d_len);
        r->i[s->d_len + 1] = '\0';
    }
    dkim_b64_prefix(s->b, s->b_len, DKIM_B_PREFIX, r->b, sizeof r->b);
    r->l = s->l;
    r->has_t = s->has_t;
    r->has_x = s->has_x;
    r->t = s->t;
    r->x = s->x;
}

const char *dkim_verify_early(const struct dkim_sig *s, long long now, unsigned clock_skew)
{
    long long skew = clock_skew;
    if (s->alg == DKIM_ALG_RSA_SHA1)
        return "rsa-sha1 is not accepted (RFC 8301)";
    if (now <= 0)
        return NULL; /* no clock given: times unchecked */
    if (s->has_x && s->x < (uint64_t)now && (uint64_t)now - s->x > (uint64_t)skew)
        return "signature expired";
    if (s->has_t && s->t > (uint64_t)(now + skew))
        return "signature time in the future";
    return NULL;
}

/* §3.5 t= and x=, RFC 8301 §3.1: results known without the key. */
static bool dkim_judge_early(struct dkim_verify *v, struct dkim_vsig *vs)
{
    const char *why = dkim_verify_early(&vs->sig, v->p.now, v->p.clock_skew);
    if (why == NULL)
        return false;
    dkim_final(vs, DKIM_FAIL, why);
    return true;
}

/* §3.7: the header hash, with the signature's field b='s value deleted. */
static void dkim_header_hash(struct dkim_verify *v, struct dkim_vsig *vs, size_t field)
{
    const struct dkim_sig *s = &vs->sig;
    dkim_sig_strip_b(dkim_hdr_at(&v->m.hdr, field), v->m.hdr.fields[field].len, s->b, s->b_len,
                     &v->tmp);
    dkim_msg_hash(&v->m, s->hcanon, s->h, s->h_len, v->tmp.data, v->tmp.len, vs->hhash);
}

/* Asks for a key name once, however many signatures need it. */
static int dkim_ask(struct dkim_verify *v, const char *qname)
{
    for (size_t i = 0; i < v->nq; i++)
        if (strutil_casecmp(v->qs[i].name, qname) == 0)
            return (int)i;
    size_t i = v->nq++;
    v->qs[i].type = DNSQ_TXT;
    strutil_lcpy(v->qs[i].name, qname, sizeof v->qs[i].name);
    v->answered[i] = false;
    return (int)i;
}

/* The header section is complete. */
static void dkim_header_done(void *arg)
{
    struct dkim_verify *v = arg;
    struct dkim_hdr *h = &v->m.hdr;
    if (h->overflow) {
        v->flags |= DKIM_VF_HEADER_TOO_LARGE;
        return;
    }
    size_t fields[DKIM_SIGS_MAX];
    for (size_t i = 0; i < h->nfields; i++) {
        if (!dkim_hdr_is(h, i, "dkim-signature"))
            continue;
        v->sig_fields++;
        if (v->nsigs == DKIM_SIGS_MAX) {
            v->flags |= DKIM_VF_SIGS_IGNORED;
            continue;
        }
        struct dkim_vsig *vs = &v->sigs[v->nsigs];
        fields[v->nsigs++] = i;
        memset(&vs->res, 0, sizeof vs->res);
        vs->res.l = DKIM_NO_LIMIT;
        vs->q = vs->slot = -1;
        vs->final = vs->keyed = vs->sig_ok = false;
        const char *f = dkim_hdr_at(h, i);
        size_t len = h->fields[i].len;
        const char *colon = memchr(f, ':', len);
        const char *why;
        size_t off = (size_t)(colon - f) + 1;
        if (dkim_sig_parse(&vs->sig, f + off, len - off, &v->tmp, &why) < 0) {
            dkim_final(vs, DKIM_NEUTRAL, why);
            continue;
        }
        dkim_report(vs);
        if (dkim_judge_early(v, vs))
            continue;
        size_t pos = 0, nlen;
        const char *name;
        while (dkim_sig_h_next(&vs->sig, &pos, &name, &nlen) == 1)
            dkim_hdr_index_add(&v->m.idx, name, nlen);
    }
    struct dkim_hdr_index *x = &v->m.idx;
    dkim_hdr_index_add(x, "from", 4);
    dkim_hdr_index_add(x, "subject", 7);
    dkim_msg_index_build(&v->m);
    v->from_count = dkim_hdr_index_count(x, dkim_hdr_index_find(x, "from", 4));
    v->subject_count = dkim_hdr_index_count(x, dkim_hdr_index_find(x, "subject", 7));
    for (size_t k = 0; k < v->nsigs; k++) {
        struct dkim_vsig *vs = &v->sigs[k];
        if (vs->final)
            continue;
        /* §8.15: a From (Subject) the signature cannot see. */
        if (v->from_count > vs->sig.h_from)
            vs->res.flags |= DKIM_SF_UNSIGNED_FROM;
        if (vs->sig.h_subject > 0 && v->subject_count > vs->sig.h_subject)
            vs->res.flags |= DKIM_SF_UNSIGNED_SUBJECT;
        dkim_header_hash(v, vs, fields[k]);
        vs->slot = dkim_body_want(v->m.body, vs->sig.bcanon, vs->sig.l);
        if (vs->slot < 0) { /* cannot happen: fewer signatures than slots */
            dkim_final(vs, DKIM_TEMPERROR, "internal error");
            continue;
        }
        v->m.body_on = true;
        vs->q = dkim_ask(v, vs->sig.qname);
    }
}

void dkim_verify_feed(struct dkim_verify *v, const char *p, size_t n)
{
    if (!v->ended)
        dkim_msg_feed(&v->m, p, n, dkim_header_done, v);
}

bool dkim_verify_digest(EVP_PKEY *pk, enum dkim_alg alg, const unsigned char *sig,
                        size_t sig_len, const unsigned char digest[DKIM_HASH_LEN])
{
    bool ok = false;
    if (alg == DKIM_ALG_ED25519_SHA256) {
        /* RFC 8463 §3: PureEdDSA over the SHA-256 of the header data. */
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        ok = m && EVP_DigestVerifyInit(m, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(m, sig, sig_len, digest, DKIM_HASH_LEN) == 1;
        EVP_MD_CTX_free(m);
    } else {
        /* RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376 §3.3.1). */
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
        ok = c && EVP_PKEY_verify_init(c) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(c, dkim_sha256()) == 1 &&
             EVP_PKEY_verify(c, sig, sig_len, digest, DKIM_HASH_LEN) == 1;
        EVP_PKEY_CTX_free(c);
    }
    ERR_clear_error(); /* nothing left for the TLS code of this thread */
    return ok;
}

/* Whether the domain of i= is d= itself (a key's t=s, §3.6.1). */
static bool dkim_auid_exact(const struct dkim_sig *s)
{
    if (s->i_len == 0)
        return true;
    const char *at = NULL;
    for (size_t k = 0; k < s->i_len; k++)
        if (s->i[k] == '@')
            at = s->i + k;
    size_t n = s->i_len - (size_t)(at + 1 - s->i);
    return n == s->d_len && strutil_ncasecmp(at + 1, s->d, n) == 0;
}

const char *dkim_verify_key_refuses(const struct dkim_key *k, enum dkim_alg alg,
                                    enum dkim_result *r)
{
    if (k->revoked) {
        *r = DKIM_FAIL;
        return "key revoked";
    }
    bool ed = alg == DKIM_ALG_ED25519_SHA256;
    if (ed != (k->type == DKIM_KEY_ED25519)) {
        *r = DKIM_PERMERROR;
        return "key type does not match a=";
    }
    if (!ed && k->bits < DKIM_RSA_BITS_MIN) {
        *r = DKIM_FAIL;
        return "key too small (RFC 8301)";
    }
    return NULL;
}

/* §6.1.2, §6.1.3 (the public-key half): one signature against its key. */
static void dkim_judge_key(struct dkim_verify *v, struct dkim_vsig *vs, const struct dkim_key *k)
{
    const struct dkim_sig *s = &vs->sig;
    vs->res.key_bits = k->bits;
    if (k->testing)
        vs->res.flags |= DKIM_SF_TESTING;
    enum dkim_result r;
    const char *why = dkim_verify_key_refuses(k, s->alg, &r);
    if (why) {
        dkim_final(vs, r, why);
        return;
    }
    if (k->strict && !dkim_auid_exact(s)) {
        dkim_final(vs, DKIM_PERMERROR, "i= in a subdomain, key has t=s");
        return;
    }
    vs->keyed = true;
    vs->sig_ok = dkim_verify_digest(k->pkey, s->alg, s->sig, s->sig_len, vs->hhash);
}

int dkim_verify_key_answer(struct dkim_key *k, const struct dnsq_answer *a, struct buf *scratch,
                           struct buf *tmp, enum dkim_result *r, const char **why)
{
    *why = "no key for signature";
    *r = DKIM_PERMERROR;
    if (a->status == DNSQ_TEMPFAIL) {
        *r = DKIM_TEMPERROR;
        *why = "key lookup failed";
        return -EAGAIN;
    }
    if (a->status != DNSQ_OK)
        return -ENOENT;
    /* The first record that is a DKIM key record decides (§3.6.2.2 leaves
     * several undefined); v= other than DKIM1 is skipped. */
    int ret = -ENOENT;
    for (size_t i = 0; i < a->count; i++) {
        dnsq_txt_join(scratch, &a->rrs[i]);
        const char *kwhy;
        int rc = dkim_key_parse(k, scratch->data ? scratch->data : "", scratch->len, tmp, &kwhy);
        if (rc == -ENOENT)
            continue;
        if (rc < 0)
            *why = kwhy;
        ret = rc < 0 ? -EINVAL : 0;
        break;
    }
    ERR_clear_error();
    return ret;
}

int dkim_verify_answer(struct dkim_verify *v, size_t i, const struct dnsq_answer *a)
{
    if (i >= v->nq || v->answered[i])
        return -EINVAL;
    v->answered[i] = true;
    v->nanswered++;
    struct dkim_key key = {0};
    const char *why;
    enum dkim_result r;
    bool have = dkim_verify_key_answer(&key, a, &v->m.scratch, &v->tmp, &r, &why) == 0;
    for (size_t k = 0; k < v->nsigs; k++) {
        struct dkim_vsig *vs = &v->sigs[k];
        if (vs->final || vs->q != (int)i)
            continue;
        if (have)
            dkim_judge_key(v, vs, &key);
        else
            dkim_final(vs, r, why);
    }
    dkim_key_clear(&key);
    return 0;
}

/* §6.1.3, the body half, once the body and the key are in. */
static void dkim_judge_body(struct dkim_verify *v, struct dkim_vsig *vs)
{
    const struct dkim_sig *s = &vs->sig;
    uint64_t blen = dkim_body_length(v->m.body, s->bcanon);
    vs->res.body_len = blen;
    if (s->l != DKIM_NO_LIMIT && s->l < blen)
        vs->res.flags |= DKIM_SF_LENGTH;
    if (CRYPTO_memcmp(dkim_body_digest(v->m.body, vs->slot), s->bh, DKIM_HASH_LEN) != 0) {
        dkim_final(vs, DKIM_FAIL, "body hash mismatch");
    } else if (!vs->sig_ok) {
        dkim_final(vs, DKIM_FAIL, "signature mismatch");
    } else if (s->l != DKIM_NO_LIMIT && s->l > blen) {
        dkim_final(vs, DKIM_FAIL, "l= longer than the body");
    } else if (vs->res.flags & DKIM_SF_UNSIGNED_FROM) {
        dkim_final(vs, DKIM_POLICY, "unsigned From above signed");
    } else if (vs->res.flags & DKIM_SF_UNSIGNED_SUBJECT) {
        dkim_final(vs, DKIM_POLICY, "unsigned Subject above signed");
    } else {
        dkim_final(vs, DKIM_PASS, "");
    }
}

static void dkim_conclude(struct dkim_verify *v)
{
    if (!v->ended || v->nanswered < v->nq)
        return;
    for (size_t k = 0; k < v->nsigs; k++) {
        struct dkim_vsig *vs = &v->sigs[k];
        if (!vs->final)
            dkim_judge_body(v, vs);
    }
}

void dkim_verify_end(struct dkim_verify *v)
{
    if (v->ended)
        return;
    dkim_msg_end(&v->m, dkim_header_done, v);
    v->ended = true;
}

enum dkim_step dkim_verify_step(struct dkim_verify *v)
{
    if (v->nanswered < v->nq)
        return DKIM_STEP_DNS;
    if (!v->ended)
        return DKIM_STEP_CONTENT;
    dkim_conclude(v);
    return DKIM_STEP_DONE;
}

size_t dkim_verify_questions(const struct dkim_verify *v, const struct dnsq_question **q)
{
    *q = v->qs;
    return v->nq;
}

void dkim_verify_timeout(struct dkim_verify *v)
{
    for (size_t i = 0; i < v->nq; i++) {
        if (v->answered[i])
            continue;
        v->answered[i] = true;
        v->nanswered++;
        for (size_t k = 0; k < v->nsigs; k++)
            if (!v->sigs[k].final && v->sigs[k].q == (int)i)
                dkim_final(&v->sigs[k], DKIM_TEMPERROR, "key lookup timed out");
    }
}

size_t dkim_verify_count(const struct dkim_verify *v)
{
    return v->nsigs;
}

const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i)
{
    return i < v->nsigs ? &v->sigs[i].res : NULL;
}

unsigned dkim_verify_from_count(const struct dkim_verify *v)
{
    return v->from_count;
}

unsigned dkim_verify_subject_count(const struct dkim_verify *v)
{
    return v->subject_count;
}

unsigned dkim_verify_sig_fields(const struct dkim_verify *v)
{
    return v->sig_fields;
}

unsigned dkim_verify_flags(const struct dkim_verify *v)
{
    return v->flags;
}
