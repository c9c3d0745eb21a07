/* libFuzzer target: the whole DKIM verifier (mailauth/dkim_verify) with a
 * message and DNS answers the fuzzer chooses. The input:
 *
 *   octet 0      chunk size seed (the message is fed in pieces)
 *   octets 1-2   the message's length m (big-endian)
 *   m octets     the message
 *   the rest     answers, one per question (fuzz_txt.h).
 *
 * The seeds are the RFC 8463 message with its records, so mutations start
 * from signatures that verify. Every answer lives in memory freed right
 * after it is fed. Asserts with abort(): one batch of at most
 * DKIM_SIGS_MAX TXT questions for valid names, asked as soon as the header
 * is complete and never changed; every answer accepted once; DONE after
 * the end; results in range with printable reasons; pass and policy only
 * for parsed signatures, policy exactly with an unsigned From or Subject;
 * the same results fed in one piece as in chunks. */
#include <openssl/err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_txt.h"
#include "mailauth/dkim_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    size_t count;
    struct dkim_sig_result r[DKIM_SIGS_MAX];
    unsigned from, subject, fields, flags;
};

static struct dkim_verify *v;

/* dkim_verify_answer with the shape fuzz_answer_one calls. */
static int dkim_answer(void *e, size_t i, const struct dnsq_answer *a)
{
    return dkim_verify_answer(e, i, a);
}

static void run(const char *msg, size_t m, const uint8_t *answers, size_t na, size_t chunk,
                struct outcome *o)
{
    struct dkim_verify_params params = {.now = 1528637909 + 100};
    dkim_verify_start(v, &params);
    size_t asked = 0;
    for (size_t i = 0; i < m; i += chunk) {
        dkim_verify_feed(v, msg + i, m - i < chunk ? m - i : chunk);
        const struct dnsq_question *q;
        size_t nq = dkim_verify_questions(v, &q);
        if (nq < asked || (asked && nq != asked))
            abort(); /* one batch, never changed */
        asked = nq;
    }
    dkim_verify_end(v);
    struct fuzz_in in = {answers, na, 0};
    int batches = 0;
    while (dkim_verify_step(v) == DKIM_STEP_DNS) {
        const struct dnsq_question *q;
        size_t nq = dkim_verify_questions(v, &q);
        if (nq == 0 || nq > DKIM_SIGS_MAX || ++batches > 1)
            abort();
        for (size_t k = 0; k < nq; k++) {
            fuzz_answer_one(&in, q, k, dkim_answer, v);
        }
    }
    if (dkim_verify_step(v) != DKIM_STEP_DONE)
        abort();
    o->count = dkim_verify_count(v);
    if (o->count > DKIM_SIGS_MAX)
        abort();
    for (size_t i = 0; i < o->count; i++)
        o->r[i] = *dkim_verify_result(v, i);
    o->from = dkim_verify_from_count(v);
    o->subject = dkim_verify_subject_count(v);
    o->fields = dkim_verify_sig_fields(v);
    o->flags = dkim_verify_flags(v);
}

static void check(const struct outcome *o)
{
    if (o->count > o->fields || (o->fields > DKIM_SIGS_MAX) != !!(o->flags & DKIM_VF_SIGS_IGNORED))
        abort();
    for (size_t i = 0; i < o->count; i++) {
        const struct dkim_sig_result *r = &o->r[i];
        if (r->result == DKIM_NONE || r->result > DKIM_PERMERROR || r->reason == NULL)
            abort();
        for (const char *s = r->reason; *s; s++)
            if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
                abort();
        if ((r->result == DKIM_PASS) != (r->reason[0] == '\0'))
            abort();
        if ((r->result == DKIM_PASS || r->result == DKIM_POLICY) && !r->parsed)
            abort();
        if (r->result == DKIM_NEUTRAL && r->parsed)
            abort();
        if (r->result == DKIM_POLICY &&
            !(r->flags & (DKIM_SF_UNSIGNED_FROM | DKIM_SF_UNSIGNED_SUBJECT)))
            abort();
        if (r->result == DKIM_PASS &&
            (r->flags & (DKIM_SF_UNSIGNED_FROM | DKIM_SF_UNSIGNED_SUBJECT)))
            abort();
        if (r->parsed && (strlen(r->d) == 0 || strlen(r->s) == 0 || r->i[0] == '\0'))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    if (v == NULL)
        v = dkim_verify_new(); /* reused, as a session would */
    const char *msg;
    const uint8_t *answers;
    size_t m, na;
    fuzz_split(data, size, &msg, &m, &answers, &na);
    static struct outcome one, chunked;
    run(msg, m, answers, na, m ? m : 1, &one);
    check(&one);
    run(msg, m, answers, na, 1 + data[0] % 61, &chunked);
    if (one.count != chunked.count || one.from != chunked.from ||
        one.subject != chunked.subject || one.flags != chunked.flags)
        abort();
    for (size_t i = 0; i < one.count; i++)
        if (one.r[i].result != chunked.r[i].result || one.r[i].reason != chunked.r[i].reason ||
            one.r[i].body_len != chunked.r[i].body_len || one.r[i].flags != chunked.r[i].flags)
            abort();
    ERR_clear_error();
    return 0;
}
