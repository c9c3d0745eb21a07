/* libFuzzer target: the ARC validator (mailauth/arc_verify, with arc_set)
 * and the sealer (mailauth/arc_seal) on a message and DNS answers the
 * fuzzer chooses. The input:
 *
 *   octet 0      chunk size seed (the message is fed in pieces); its top
 *                bit: the first question of the first batch times out
 *   octets 1-2   the message's length m (big-endian)
 *   m octets     the message
 *   the rest     answers, one per question (fuzz_txt.h)
 *
 * The seeds are chains sealed with the RFC 8463 keys (d=football.example.com,
 * s=brisbane for Ed25519, s=test for RSA) with the answers that make them
 * pass, so mutations start from chains that verify. Asserts with abort():
 * batches of 1 to DNSQ_BATCH_MAX TXT questions for valid names, at most
 * ARC_QUESTIONS_MAX in all, none before the header is complete; every
 * answer accepted once; DONE after the end; a result in range with a
 * printable reason, "" exactly for pass and none; none without sets, a
 * pass with 1 to 50 sets and an oldest-pass of 0 or 2..N, -1 otherwise;
 * the same result fed in one piece as in chunks. Then the message is
 * sealed on top with the cv the validator found, which must succeed or be
 * refused for a chain sealed as failed, 50 sets, or a header over the
 * limit: never for a cv that does not fit the chain. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "fuzz_txt.h"
#include "mailauth/arc_seal.h"
#include "mailauth/arc_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    struct arc_verify_result r;
    char reason[160];
    size_t asked;
};

static struct arc_verify *v;
static struct arc_sealer *s;
static EVP_PKEY *key;

/* arc_verify_answer with the shape fuzz_answer_one calls. */
static int arc_answer(void *e, size_t i, const struct dnsq_answer *a)
{
    return arc_verify_answer(e, i, a);
}

static void run(const char *msg, size_t m, const uint8_t *answers, size_t na, size_t chunk,
                bool timeout, struct outcome *o)
{
    struct arc_verify_params params = {.now = 1700000000 + 100};
    arc_verify_start(v, &params);
    const struct dnsq_question *q;
    for (size_t i = 0; i < m; i += chunk) {
        arc_verify_feed(v, msg + i, m - i < chunk ? m - i : chunk);
        (void)arc_verify_questions(v, &q);
    }
    arc_verify_end(v);
    struct fuzz_in in = {answers, na, 0};
    o->asked = 0;
    int batches = 0;
    while (arc_verify_step(v) == ARC_STEP_DNS) {
        size_t nq = arc_verify_questions(v, &q);
        if (nq == 0 || nq > DNSQ_BATCH_MAX || (o->asked += nq) > ARC_QUESTIONS_MAX)
            abort();
        bool cut = timeout && batches++ == 0; /* the first question gets no answer */
        for (size_t k = nq; k-- > 0;) {
            if (cut && k == 0) {
                arc_verify_timeout(v);
                break;
            }
            fuzz_answer_one(&in, q, k, arc_answer, v);
        }
    }
    if (arc_verify_step(v) != ARC_STEP_DONE)
        abort();
    o->r = *arc_verify_result(v);
    snprintf(o->reason, sizeof o->reason, "%s", o->r.reason);
}

static void check(const struct outcome *o)
{
    const struct arc_verify_result *r = &o->r;
    if (r->result > ARC_FAIL || r->reason == NULL)
        abort();
    for (const char *c = r->reason; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            abort();
    if ((r->result != ARC_FAIL) != (r->reason[0] == '\0'))
        abort();
    if (r->result == ARC_NONE && (r->sets != 0 || r->oldest_pass != -1 || r->aar_text))
        abort();
    if (r->result == ARC_PASS &&
        (r->sets < 1 || r->sets > ARC_INSTANCE_MAX || r->oldest_pass < 0 ||
         r->oldest_pass == 1 || r->oldest_pass > (int)r->sets || r->as_d[0] == '\0'))
        abort();
    if (r->result == ARC_FAIL && r->oldest_pass != -1)
        abort();
    if (r->sets > ARC_INSTANCE_MAX)
        abort();
}

/* Seals msg on top with what the validator found. */
static void seal(const char *msg, size_t m, const struct outcome *o)
{
    struct arc_seal_params p = {.key = key, .domain = "football.example.com",
                                .selector = "brisbane", .t = 1700000000,
                                .cv = o->r.result, .authres = "mx.example; arc=pass"};
    struct buf out = BUF_INIT;
    if (arc_seal_start(s, &p) != 0)
        abort();
    arc_seal_feed(s, msg, m);
    int rc = arc_seal_finish(s, NULL, 0, &out);
    /* What the validator found always fits the chain: never -EINVAL. */
    if (rc != 0 && rc != -EPERM && rc != -E2BIG && rc != -EMSGSIZE)
        abort();
    if ((rc == -EPERM || rc == -E2BIG) && o->r.result == ARC_NONE)
        abort();
    if (rc == 0 && (out.len == 0 || strncmp(out.data, "ARC-Seal: i=", 12) != 0))
        abort();
    if (rc != 0 && out.len != 0)
        abort();
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    if (v == NULL) {
        static const unsigned char seed[32] = {
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
            0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
            0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60}; /* RFC 8032 §7.1 */
        key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
        v = arc_verify_new(); /* reused, as a session would */
        s = arc_seal_new();
        if (key == NULL)
            abort();
    }
    const char *msg;
    const uint8_t *answers;
    size_t m, na;
    fuzz_split(data, size, &msg, &m, &answers, &na);
    bool timeout = data[0] & 0x80;
    static struct outcome one, chunked;
    run(msg, m, answers, na, m ? m : 1, timeout, &one);
    check(&one);
    run(msg, m, answers, na, 1 + (data[0] & 0x7f) % 61, timeout, &chunked);
    if (one.r.result != chunked.r.result || strcmp(one.reason, chunked.reason) != 0 ||
        one.r.sets != chunked.r.sets || one.r.oldest_pass != chunked.r.oldest_pass ||
        one.asked != chunked.asked || one.r.aar_len != chunked.r.aar_len)
        abort();
    seal(msg, m, &one);
    ERR_clear_error();
    return 0;
}
