/* fuzz_txt.h: DNS TXT answers chosen by fuzzer input, for the targets of
 * the DKIM and ARC verifiers (fuzz_dkim_verify.c, fuzz_arc_verify.c).
 * One answer per input octet: its low 2 bits are the status (OK, NODATA,
 * NXDOMAIN, TEMPFAIL) and, for OK, bits 2-3 choose the record: a line of
 * the input, the RFC 8463 Ed25519 record, its RSA record, or a revoked
 * key; bit 4 adds a second record (another line). When the input runs
 * out, every answer is NXDOMAIN. Records are split into strings of 255
 * octets as DNS carries them; everything lives in memory the caller frees
 * right after the answer is fed (fuzz_answer_free), so a verifier that
 * kept a pointer into an answer is caught by ASan. */
#ifndef TERN_FUZZ_TXT_H
#define TERN_FUZZ_TXT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dnsq.h"

static const char fuzz_rfc_ed[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char fuzz_rfc_rsa[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
static const char fuzz_revoked[] = "v=DKIM1; p=";

struct fuzz_in {
    const uint8_t *p;
    size_t n, i;
};

static inline int fuzz_byte(struct fuzz_in *in)
{
    return in->i < in->n ? in->p[in->i++] : -1;
}

/* The next line as a malloc'd copy. */
static inline char *fuzz_line(struct fuzz_in *in, size_t *len)
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

/* One record into rr, its strings into strs[0..8); the text is copied into
 * *keep. */
static inline void fuzz_record(struct fuzz_in *in, int which, struct dnsq_rr *rr,
                               struct dnsq_str *strs, char **keep)
{
    size_t len;
    const char *src = which == 1   ? fuzz_rfc_ed
                      : which == 2 ? fuzz_rfc_rsa
                      : which == 3 ? fuzz_revoked
                                   : NULL;
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

/* An answer and the memory it points to. */
struct fuzz_answer {
    struct dnsq_answer a;
    struct dnsq_rr rrs[2];
    struct dnsq_str strs[16];
    char *keep[2];
};

/* The answer the input's octet b (-1: none left) chooses. */
static inline void fuzz_answer(struct fuzz_in *in, int b, struct fuzz_answer *f)
{
    static const enum dnsq_status st[] = {DNSQ_OK, DNSQ_NODATA, DNSQ_NXDOMAIN, DNSQ_TEMPFAIL};
    memset(f, 0, sizeof *f);
    f->a.status = b < 0 ? DNSQ_NXDOMAIN : st[b & 3];
    if (f->a.status != DNSQ_OK)
        return;
    fuzz_record(in, (b >> 2) & 3, &f->rrs[0], f->strs, &f->keep[0]);
    f->a.count = 1;
    if (b & 16) {
        fuzz_record(in, 0, &f->rrs[1], f->strs + 8, &f->keep[1]);
        f->a.count = 2;
    }
    f->a.rrs = f->rrs;
}

static inline void fuzz_answer_free(struct fuzz_answer *f)
{
    free(f->keep[0]);
    free(f->keep[1]);
}

/* The input of the verifier targets (size >= 3): octet 0 for the target,
 * octets 1-2 the message's length m (big-endian, cut to what there is),
 * the message, then the answers. */
static inline void fuzz_split(const uint8_t *data, size_t size, const char **msg, size_t *m,
                              const uint8_t **answers, size_t *na)
{
    *m = (size_t)data[1] << 8 | data[2];
    if (*m > size - 3)
        *m = size - 3;
    *msg = (const char *)data + 3;
    *answers = data + 3 + *m;
    *na = size - 3 - *m;
}

/* Answers question k of a batch with the answer the next input octet
 * chooses, through answer(v, k, a); aborts unless the question is a TXT
 * one for a valid name and the answer is taken once and refused after. */
static inline void fuzz_answer_one(struct fuzz_in *in, const struct dnsq_question *q, size_t k,
                                   int (*answer)(void *v, size_t i, const struct dnsq_answer *a),
                                   void *v)
{
    if (q[k].type != DNSQ_TXT || !dnsq_name_ok(q[k].name, strlen(q[k].name)))
        abort();
    struct fuzz_answer fa;
    fuzz_answer(in, fuzz_byte(in), &fa);
    if (answer(v, k, &fa.a) != 0 || answer(v, k, &fa.a) == 0)
        abort();
    fuzz_answer_free(&fa);
}

#endif
