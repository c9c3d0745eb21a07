/* Unit tests for mailauth/dkim_canon: the RFC 6376 §3.4.5 example, header
 * canonicalisation cases, and the streaming body hasher against a plain
 * reference (dkim_canon_ref.h): bodies with trailing empty lines, white
 * space only lines, bare CR and LF, no final CRLF, an empty body; every
 * split point, every chunk size, pseudo-random bodies; l= snapshots at
 * every length (one hash state per canonicalisation), slots shared,
 * limits beyond the body; the interface's errors. */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "base/base64.h"
#include "check.h"
#include "dkim_canon_ref.h"
#include "mailauth/dkim_canon.h"

static struct dkim_body *b;

static void sha256(const char *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static void header_is(enum dkim_canon c, const char *field, const char *want)
{
    struct buf out = BUF_INIT;
    dkim_canon_header(c, field, strlen(field), &out);
    CHECK_EQ_MEM(out.data, out.len, want, strlen(want));
    buf_free(&out);
}

static void test_headers(void)
{
    /* RFC 6376 §3.4.5. */
    header_is(DKIM_CANON_RELAXED, "A : X", "a:X\r\n");
    header_is(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  ", "b:Y Z\r\n");
    header_is(DKIM_CANON_SIMPLE, "A : X", "A : X\r\n");
    header_is(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  ", "B : Y\t\r\n\tZ  \r\n");
    /* More of §3.4.2: case of the name only; runs inside the value; an
     * empty value; no white space after the colon; 8-bit text kept. */
    header_is(DKIM_CANON_RELAXED, "Subject:  Hello\t \tWorld \r\n ", "subject:Hello World\r\n");
    header_is(DKIM_CANON_RELAXED, "X-Empty:", "x-empty:\r\n");
    header_is(DKIM_CANON_RELAXED, "X-Empty: \r\n \t", "x-empty:\r\n");
    header_is(DKIM_CANON_RELAXED, "FROM:Joe", "from:Joe\r\n");
    header_is(DKIM_CANON_RELAXED, "To: caf\xc3\xa9 <a@b>", "to:caf\xc3\xa9 <a@b>\r\n");
    /* A bare CR is no fold: kept as it is. */
    header_is(DKIM_CANON_RELAXED, "X: a\rb", "x:a\rb\r\n");
    /* Only the first colon separates. */
    header_is(DKIM_CANON_RELAXED, "X : a : b", "x:a : b\r\n");
    header_is(DKIM_CANON_RELAXED, "no colon here ", "no colon here\r\n");
    CHECK_EQ_STR(dkim_canon_name(DKIM_CANON_SIMPLE), "simple");
    CHECK_EQ_STR(dkim_canon_name(DKIM_CANON_RELAXED), "relaxed");
}

/* Feeds body in pieces of `chunk` with slots for both canonicalisations;
 * checks both against the reference, and their lengths. */
static int body_matches(const char *body, size_t n, size_t chunk)
{
    dkim_body_reset(b);
    int s = dkim_body_want(b, DKIM_CANON_SIMPLE, DKIM_NO_LIMIT);
    int r = dkim_body_want(b, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    for (size_t i = 0; i < n; i += chunk)
        dkim_body_feed(b, body + i, n - i < chunk ? n - i : chunk);
    dkim_body_finish(b);
    struct buf ref = BUF_INIT;
    unsigned char want[32];
    int ok = 1;
    for (int relaxed = 0; relaxed < 2; relaxed++) {
        ref_canon_body(relaxed, body, n, &ref);
        sha256(ref.data ? ref.data : "", ref.len, want);
        enum dkim_canon c = relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
        if (memcmp(dkim_body_digest(b, relaxed ? r : s), want, 32) != 0 ||
            dkim_body_length(b, c) != ref.len)
            ok = 0;
    }
    buf_free(&ref);
    return ok;
}

static void test_rfc_example_body(void)
{
    const char *body = " C \r\nD \t E\r\n\r\n\r\n";
    struct buf ref = BUF_INIT;
    ref_canon_body(1, body, strlen(body), &ref);
    CHECK_EQ_STR(ref.data, " C\r\nD E\r\n");
    ref_canon_body(0, body, strlen(body), &ref);
    CHECK_EQ_STR(ref.data, " C \r\nD \t E\r\n");
    buf_free(&ref);
    CHECK(body_matches(body, strlen(body), 1000));

    /* §3.4.3, §3.4.4: the empty body. */
    unsigned char d[32], want[32];
    dkim_body_reset(b);
    int s = dkim_body_want(b, DKIM_CANON_SIMPLE, DKIM_NO_LIMIT);
    int r = dkim_body_want(b, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    dkim_body_finish(b);
    memcpy(d, dkim_body_digest(b, s), 32);
    sha256("\r\n", 2, want);
    CHECK_EQ_MEM(d, 32, want, 32);
    sha256("", 0, want);
    CHECK_EQ_MEM(dkim_body_digest(b, r), 32, want, 32);
    CHECK_EQ_INT(dkim_body_length(b, DKIM_CANON_SIMPLE), 2);
    CHECK_EQ_INT(dkim_body_length(b, DKIM_CANON_RELAXED), 0);
    /* The bh= of an empty body as signers write it. */
    char b64[64];
    base64_encode(d, 32, b64, sizeof b64);
    CHECK_EQ_STR(b64, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
    base64_encode(dkim_body_digest(b, r), 32, b64, sizeof b64);
    CHECK_EQ_STR(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

static const char *const bodies[] = {
    "",
    "\r\n",
    "\r\n\r\n\r\n",
    "a",
    "a\r\n",
    "a\r\n\r\n",
    "a\r\n\r\nb\r\n\r\n\r\n",
    "  \r\n \t \r\n",
    "line  with\t\truns \r\n  leading\r\ntrailing   \r\n",
    "no final crlf   ",
    "bare\nlf\n\n",
    "bare\rcr\r",
    "\r",
    "\r\r\n",
    "a \r b\r\n",
    "crlf then cr\r\n\r",
    "x\r\n \r\n\t\r\n",
    "8bit \xc3\xa9\xff\x80 \r\n\r\n",
    ".\r\n..\r\n",
    "\r\n\r\nx",
};

static void test_fixed_bodies(void)
{
    for (size_t k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
        const char *body = bodies[k];
        size_t n = strlen(body);
        int bad = 0;
        for (size_t chunk = 1; chunk <= n + 1; chunk++)
            bad += !body_matches(body, n, chunk);
        if (bad)
            fprintf(stderr, "body %zu differs in %d chunkings\n", k, bad);
        CHECK_EQ_INT(bad, 0);
    }
}

/* Every split in two of a body with everything in it, and pseudo-random
 * bodies of the octets that matter, in random chunkings. */
static void test_splits(void)
{
    const char *body = " C \r\nD \t E\r\n\r\n x \r\r\n\n\t\r\n\r\nend  \r\n \r\n\r\n";
    size_t n = strlen(body);
    int bad = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        dkim_body_reset(b);
        int s = dkim_body_want(b, DKIM_CANON_SIMPLE, DKIM_NO_LIMIT);
        int r = dkim_body_want(b, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
        dkim_body_feed(b, body, cut);
        dkim_body_feed(b, body + cut, n - cut);
        dkim_body_finish(b);
        unsigned char ds[32], dr[32];
        memcpy(ds, dkim_body_digest(b, s), 32);
        memcpy(dr, dkim_body_digest(b, r), 32);
        if (!body_matches(body, n, n + 1) || memcmp(ds, dkim_body_digest(b, s), 32) ||
            memcmp(dr, dkim_body_digest(b, r), 32))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);

    static const char alphabet[] = "ab \t\r\n\r\n";
    unsigned seed = 12345;
    char buf[300];
    bad = 0;
    for (int round = 0; round < 3000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % 17;
        bad += !body_matches(buf, len, chunk);
    }
    CHECK_EQ_INT(bad, 0);
}

/* l=: a slot's digest is the SHA-256 of the first l canonical octets, at
 * every l from 0 to past the end, with several slots in one feed. */
static void test_limits(void)
{
    const char *body = "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n\r\n";
    size_t n = strlen(body);
    struct buf ref = BUF_INIT;
    int bad = 0;
    for (int relaxed = 0; relaxed < 2; relaxed++) {
        enum dkim_canon c = relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
        ref_canon_body(relaxed, body, n, &ref);
        for (uint64_t l = 0; l <= ref.len + 3; l++) {
            for (size_t chunk = 1; chunk <= n; chunk += 5) {
                dkim_body_reset(b);
                int s0 = dkim_body_want(b, c, l);
                int s1 = dkim_body_want(b, c, l / 2);
                int s2 = dkim_body_want(b, c, DKIM_NO_LIMIT);
                if (dkim_body_want(b, c, l) != s0)
                    bad++;
                for (size_t i = 0; i < n; i += chunk)
                    dkim_body_feed(b, body + i, n - i < chunk ? n - i : chunk);
                dkim_body_finish(b);
                unsigned char want[32];
                sha256(ref.data, l < ref.len ? l : ref.len, want);
                bad += memcmp(dkim_body_digest(b, s0), want, 32) != 0;
                sha256(ref.data, l / 2 < ref.len ? l / 2 : ref.len, want);
                bad += memcmp(dkim_body_digest(b, s1), want, 32) != 0;
                sha256(ref.data, ref.len, want);
                bad += memcmp(dkim_body_digest(b, s2), want, 32) != 0;
                bad += dkim_body_length(b, c) != ref.len;
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* A large body: limits inside one staged block and across blocks;
     * empty lines held back across many feeds. */
    struct buf big = BUF_INIT;
    for (int i = 0; i < 3000; i++)
        buf_printf(&big, "line %d \t with  space\r\n%s", i, i % 7 ? "" : "\r\n\r\n");
    buf_puts(&big, "\r\n\r\n\r\n");
    for (int relaxed = 0; relaxed < 2; relaxed++) {
        enum dkim_canon c = relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
        ref_canon_body(relaxed, big.data, big.len, &ref);
        uint64_t ls[] = {1, 4095, 4096, 4097, 8192, 50000, ref.len - 1, ref.len};
        dkim_body_reset(b);
        int slots[8];
        for (int k = 0; k < 8; k++)
            slots[k] = dkim_body_want(b, c, ls[k]);
        for (size_t i = 0; i < big.len; i += 1000)
            dkim_body_feed(b, big.data + i, big.len - i < 1000 ? big.len - i : 1000);
        dkim_body_finish(b);
        for (int k = 0; k < 8; k++) {
            unsigned char want[32];
            sha256(ref.data, ls[k], want);
            CHECK_EQ_MEM(dkim_body_digest(b, slots[k]), 32, want, 32);
        }
    }
    buf_free(&big);
    buf_free(&ref);
}

static void test_interface(void)
{
    dkim_body_reset(b);
    for (int k = 0; k < DKIM_BODY_SLOTS_MAX; k++)
        CHECK_EQ_INT(dkim_body_want(b, k % 2 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                                    (uint64_t)k),
                     k);
    CHECK_EQ_INT(dkim_body_want(b, DKIM_CANON_SIMPLE, 999), -ENOSPC);
    CHECK_EQ_INT(dkim_body_want(b, DKIM_CANON_SIMPLE, 0), 0); /* an existing pair */
    dkim_body_feed(b, "x\r\n", 3);
    CHECK_EQ_INT(dkim_body_want(b, DKIM_CANON_RELAXED, DKIM_NO_LIMIT), -EBUSY);
    dkim_body_finish(b);
    dkim_body_finish(b); /* idempotent */
    dkim_body_feed(b, "more", 4); /* ignored */
    CHECK_EQ_INT(dkim_body_length(b, DKIM_CANON_SIMPLE), 3);
    /* A canonicalisation not asked for computes nothing. */
    dkim_body_reset(b);
    dkim_body_want(b, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    dkim_body_feed(b, "x\r\n", 3);
    dkim_body_finish(b);
    CHECK_EQ_INT(dkim_body_length(b, DKIM_CANON_SIMPLE), 0);
}

int main(void)
{
    b = dkim_body_new();
    test_headers();
    test_rfc_example_body();
    test_fixed_bodies();
    test_splits();
    test_limits();
    test_interface();
    dkim_body_free(b);
    return check_result("test_dkim_canon");
}
