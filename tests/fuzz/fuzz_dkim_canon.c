/* libFuzzer target: mailauth/dkim_canon and dkim_hdr, the canonicalisers
 * and the header collector, under random splits. The input: octet 0
 * seeds the chunk sizes, octets 1-2 an l=, the rest is content. Asserts
 * with abort():
 *  - the body hashes (simple and relaxed, whole and cut to l=) of the
 *    content fed in random chunks equal those of one feed, and those of
 *    a plain reference canonicaliser (tests/unit/dkim_canon_ref.h) put
 *    through SHA-256; the lengths too;
 *  - the header section collected in random chunks is the same as in one
 *    feed (the end found at the same octet, the same fields);
 *  - a relaxed header field ends in CRLF, has a lowercase name, no white
 *    space around its colon or at its end, no run of white space, and, for
 *    a field as dkim_hdr splits it, no CRLF inside. */
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/dkim_canon_ref.h"
#include "mailauth/dkim_canon.h"
#include "mailauth/dkim_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dkim_body *b1, *b2;
static struct dkim_hdr h1, h2;
static struct buf ref, field;

struct chunker {
    uint32_t seed;
};

static size_t next_chunk(struct chunker *c)
{
    c->seed = c->seed * 1103515245u + 12345u;
    size_t k = (c->seed >> 16) % 64;
    return k < 40 ? k % 8 + 1 : k * 17; /* mostly small, sometimes large */
}

static int slots[2][2];

static void want(struct dkim_body *b, uint64_t l)
{
    dkim_body_reset(b);
    for (int c = 0; c < 2; c++) {
        slots[c][0] = dkim_body_want(b, (enum dkim_canon)c, DKIM_NO_LIMIT);
        slots[c][1] = dkim_body_want(b, (enum dkim_canon)c, l);
    }
}

static void check_relaxed_field(const char *f, size_t n, bool split)
{
    buf_reset(&field);
    dkim_canon_header(DKIM_CANON_RELAXED, f, n, &field);
    const char *o = field.data;
    size_t len = field.len;
    if (len < 2 || o[len - 2] != '\r' || o[len - 1] != '\n')
        abort();
    len -= 2;
    const char *colon = memchr(o, ':', len);
    size_t name = colon ? (size_t)(colon - o) : len;
    for (size_t i = 0; i < name; i++)
        if (o[i] >= 'A' && o[i] <= 'Z')
            abort();
    if (name > 0 && (o[name - 1] == ' ' || o[name - 1] == '\t'))
        abort();
    if (colon && len > name + 1 && (o[name + 1] == ' ' || o[name + 1] == '\t'))
        abort();
    if (len > name + 1 && (o[len - 1] == ' ' || o[len - 1] == '\t'))
        abort();
    for (size_t i = name; i + 1 < len; i++) {
        if ((o[i] == ' ' || o[i] == '\t') && (o[i + 1] == ' ' || o[i + 1] == '\t'))
            abort();
        /* A field as dkim_hdr splits it has WSP after each CRLF inside, so
         * unfolding cannot join a bare CR to a bare LF into a CRLF. */
        if (split && o[i] == '\r' && o[i + 1] == '\n')
            abort();
    }
    for (size_t i = name; i < len; i++)
        if (o[i] == '\t')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    if (b1 == NULL) {
        b1 = dkim_body_new();
        b2 = dkim_body_new();
    }
    struct chunker ch = {data[0]};
    uint64_t l = (uint64_t)data[1] << 8 | data[2];
    const char *p = (const char *)data + 3;
    size_t n = size - 3;

    /* The body: the whole content. */
    want(b1, l);
    want(b2, l);
    dkim_body_feed(b1, p, n);
    for (size_t i = 0; i < n;) {
        size_t k = next_chunk(&ch);
        if (k > n - i)
            k = n - i;
        dkim_body_feed(b2, p + i, k);
        i += k;
    }
    dkim_body_finish(b1);
    dkim_body_finish(b2);
    for (int c = 0; c < 2; c++) {
        ref_canon_body(c, p, n, &ref);
        unsigned char d[DKIM_HASH_LEN], dl[DKIM_HASH_LEN];
        unsigned int len = DKIM_HASH_LEN;
        EVP_Digest(ref.data ? ref.data : "", ref.len, d, &len, EVP_sha256(), NULL);
        EVP_Digest(ref.data ? ref.data : "", l < ref.len ? l : ref.len, dl, &len, EVP_sha256(),
                   NULL);
        if (memcmp(dkim_body_digest(b1, slots[c][0]), d, DKIM_HASH_LEN) != 0 ||
            memcmp(dkim_body_digest(b2, slots[c][0]), d, DKIM_HASH_LEN) != 0 ||
            memcmp(dkim_body_digest(b1, slots[c][1]), dl, DKIM_HASH_LEN) != 0 ||
            memcmp(dkim_body_digest(b2, slots[c][1]), dl, DKIM_HASH_LEN) != 0 ||
            dkim_body_length(b1, (enum dkim_canon)c) != ref.len ||
            dkim_body_length(b2, (enum dkim_canon)c) != ref.len)
            abort();
    }

    /* The header section: one feed and random chunks agree. */
    dkim_hdr_reset(&h1, 0);
    dkim_hdr_reset(&h2, 0);
    size_t used1 = dkim_hdr_feed(&h1, p, n), used2 = 0;
    dkim_hdr_end(&h1);
    for (size_t i = 0; i < n && !h2.done;) {
        size_t k = next_chunk(&ch);
        if (k > n - i)
            k = n - i;
        used2 += dkim_hdr_feed(&h2, p + i, k);
        i += k;
    }
    dkim_hdr_end(&h2);
    if (used1 != used2 || h1.nfields != h2.nfields || h1.text.len != h2.text.len ||
        memcmp(h1.text.data, h2.text.data, h1.text.len) != 0 || used1 > n)
        abort();
    for (size_t i = 0; i < h1.nfields; i++) {
        const struct dkim_field *f = &h1.fields[i];
        if (f->off + f->len > h1.text.len || f->name_len > f->len ||
            memcmp(f, &h2.fields[i], sizeof *f) != 0)
            abort();
        check_relaxed_field(dkim_hdr_at(&h1, i), f->len, true);
    }
    /* And the input as one field, folds or not. */
    check_relaxed_field(p, n, false);
    return 0;
}
