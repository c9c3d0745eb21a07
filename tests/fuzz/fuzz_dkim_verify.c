/* libFuzzer target: the whole DKIM verifier (mailauth/dkim_verify) with a
 * message and DNS answers the fuzzer chooses. The input:
 *
 *   octet 0      chunk size seed (the message is fed in pieces)
 *   octets 1-2   the message's length m (big-endian)
 *   m octets     the message
 *   the rest     answers, one per question: an octet whose low 2 bits
 *                are the status (OK, NODATA, NXDOMAIN, TEMPFAIL) and, for
 *                OK, bits 2-3 choose records: a line of the input, the
 *                RFC 8463 Ed25519 record, its RSA record, or a revoked
 *                key; bit 4 adds a second record (another line). When the
 *                input runs out, every answer is NXDOMAIN.
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

#include "mailauth/dkim_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rfc_ed[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc_rsa[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
static const char revoked[] = "v=DKIM1; p=";

struct fuzz_in {
    const uint8_t *p;
    size_t n, i;
};

static int fuzz_byte(struct fuzz_in *in)
{
    return in->i < in->n ? in->p[in->i++] : -1;
}

/* The next line as a malloc'd copy. */
static char *fuzz_line(struct fuzz_in *in, size_t *len)
{
    size_t start = in->i;
    while (in->i < in->n && in->p[in->i] != '\n')
        in->i++;
    *len = in->i - start;
    char *s = malloc(*len + 1);
    memcpy(s, in->p + start, *len);
    s[*len] = '\0';
    if (in->i < in->n)
        in->i++;
    return s;
}

/* One record into rr, its strings (at most 255 octets each, as DNS has
 * them) into strs; the text is copied into *keep (freed by the caller). */
static void fuzz_record(struct fuzz_in *in, int which, struct dnsq_rr *rr, struct dnsq_str *strs,
                        char **keep)
{
    size_t len;
    const char *src = which == 1 ? rfc_ed : which == 2 ? rfc_rsa : which == 3 ? revoked : NULL;
    if (src) {
        len = strlen(src);
        *keep = malloc(len + 1);
        memcpy(*keep, src, len + 1);
    } else {
        *keep = fuzz_line(in, &len);
    }
    size_t ns = 0;
    for (size_t off = 0; off < len && ns < 8; off += 255, ns++) {
        strs[ns].p = (const unsigned char *)*keep + off;
        strs[ns].len = len - off < 255 ? len - off : 255;
    }
    rr->u.txt.strs = strs;
    rr->u.txt.n = ns;
}

struct outcome {
    size_t count;
    struct dkim_sig_result r[DKIM_SIGS_MAX];
    unsigned from, subject, fields, flags;
};

static struct dkim_verify *v;

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
            if (q[k].type != DNSQ_TXT || !dnsq_name_ok(q[k].name, strlen(q[k].name)))
                abort();
            int b = fuzz_byte(&in);
            static const enum dnsq_status st[] = {DNSQ_OK, DNSQ_NODATA, DNSQ_NXDOMAIN,
                                                  DNSQ_TEMPFAIL};
            struct dnsq_answer a = {.status = b < 0 ? DNSQ_NXDOMAIN : st[b & 3]};
            struct dnsq_rr rrs[2];
            struct dnsq_str strs[16];
            char *keep[2] = {NULL, NULL};
            if (a.status == DNSQ_OK) {
                fuzz_record(&in, (b >> 2) & 3, &rrs[0], strs, &keep[0]);
                a.count = 1;
                if (b & 16) {
                    fuzz_record(&in, 0, &rrs[1], strs + 8, &keep[1]);
                    a.count = 2;
                }
                a.rrs = rrs;
            }
            if (dkim_verify_answer(v, k, &a) != 0 || dkim_verify_answer(v, k, &a) == 0)
                abort();
            free(keep[0]);
            free(keep[1]);
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
    size_t m = (size_t)data[1] << 8 | data[2];
    if (m > size - 3)
        m = size - 3;
    const char *msg = (const char *)data + 3;
    const uint8_t *answers = data + 3 + m;
    size_t na = size - 3 - m;
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
