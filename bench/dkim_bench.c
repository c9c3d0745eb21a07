/* dkim_bench: what DKIM costs per message, DNS excluded (the key records
 * are answered from memory, parsed afresh for each message as the
 * verifier does). A 4 KB message (a dozen header fields, a 3.5 KB body)
 * signed with RSA-2048 and Ed25519:
 *   verify   both signatures of the message (header parse, header hashes,
 *            key parse, two public-key operations, one relaxed body hash)
 *   sign     RSA-2048, Ed25519, and both at once (one body hash)
 *   body     the streaming body hasher alone on 16 MB, relaxed and simple
 *
 * Not part of the build (needs the static libraries of a build tree):
 *   B=build; cc -O2 -D_GNU_SOURCE -Isrc -o /tmp/dkim_bench bench/dkim_bench.c \
 *     $B/libtern_mailauth.a $B/libtern_mail.a $B/libtern_base.a -lcrypto -lpthread
 *   /tmp/dkim_bench [iterations [verify]]      (verify: that part only, for perf)
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "mailauth/dkim_key.h"
#include "mailauth/dkim_sign.h"
#include "mailauth/dkim_verify.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void message(struct buf *m)
{
    buf_puts(m, "Received: from mail.example.net (mail.example.net [192.0.2.1])\r\n"
                "\tby mx.example.org with ESMTPS id 4F1Ab2Cd3; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                "From: Alice Example <alice@example.org>\r\n"
                "To: Bob <bob@example.net>, Carol <carol@example.net>\r\n"
                "Cc: Dave <dave@example.net>\r\n"
                "Subject: The quarterly numbers, with the charts we spoke about\r\n"
                "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                "Message-ID: <20240101000000.12345@example.org>\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n"
                "\r\n");
    while (m->len < 4096 - 80)
        buf_puts(m, "Lorem ipsum dolor sit amet,  consectetur adipiscing elit, sed do eiusmod\r\n");
}

struct zone1 {
    struct buf rec[2];
    const char *names[2];
};

static void answer_all(struct dkim_verify *v, struct zone1 *z)
{
    while (dkim_verify_step(v) == DKIM_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = dkim_verify_questions(v, &q);
        for (size_t i = 0; i < n; i++) {
            int k = strcmp(q[i].name, z->names[0]) == 0 ? 0 : 1;
            struct dnsq_str strs[4];
            size_t ns = 0;
            for (size_t off = 0; off < z->rec[k].len; off += 255, ns++) {
                strs[ns].p = (const unsigned char *)z->rec[k].data + off;
                strs[ns].len = z->rec[k].len - off < 255 ? z->rec[k].len - off : 255;
            }
            struct dnsq_rr rr = {.u.txt = {strs, ns}};
            struct dnsq_answer a = {.status = DNSQ_OK, .count = 1, .rrs = &rr};
            dkim_verify_answer(v, i, &a);
        }
    }
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 2000;
    struct buf pem = BUF_INIT, m = BUF_INIT, sigs = BUF_INIT, whole = BUF_INIT;
    EVP_PKEY *rsa = dkim_key_generate(2048, &pem), *ed = dkim_key_generate(0, &pem);
    message(&m);
    struct dkim_sign_key keys[2] = {{rsa, "example.org", "rsa"}, {ed, "example.org", "ed"}};
    struct dkim_signer *s = dkim_sign_new();
    struct dkim_sign_params p = {.keys = keys, .nkeys = 2, .t = 1700000000};
    dkim_sign_start(s, &p);
    dkim_sign_feed(s, m.data, m.len);
    dkim_sign_finish(s, &sigs);
    buf_append(&whole, sigs.data, sigs.len);
    buf_append(&whole, m.data, m.len);
    struct zone1 z = {{BUF_INIT, BUF_INIT}, {"rsa._domainkey.example.org", "ed._domainkey.example.org"}};
    dkim_key_record(rsa, &z.rec[0]);
    dkim_key_record(ed, &z.rec[1]);

    struct dkim_verify *v = dkim_verify_new();
    struct dkim_verify_params vp = {.now = 1700000100};
    double t0 = now_s();
    for (int i = 0; i < iters; i++) {
        dkim_verify_start(v, &vp);
        /* As a session feeds it: 1 KB reads. */
        for (size_t off = 0; off < whole.len; off += 1024)
            dkim_verify_feed(v, whole.data + off, whole.len - off < 1024 ? whole.len - off : 1024);
        dkim_verify_end(v);
        answer_all(v, &z);
        if (dkim_verify_result(v, 0)->result != DKIM_PASS ||
            dkim_verify_result(v, 1)->result != DKIM_PASS) {
            fprintf(stderr, "verification failed\n");
            return 1;
        }
    }
    double t1 = now_s();
    printf("verify  %zu-octet message, rsa-2048 + ed25519: %.1f us/message (%d runs)\n",
           whole.len, (t1 - t0) / iters * 1e6, iters);
    if (argc > 2 && strcmp(argv[2], "verify") == 0)
        return 0;

    const char *names[3] = {"rsa-2048", "ed25519", "rsa-2048 + ed25519"};
    for (int which = 0; which < 3; which++) {
        struct dkim_sign_params sp = {.keys = which == 1 ? &keys[1] : &keys[0],
                                      .nkeys = which == 2 ? 2 : 1,
                                      .t = 1700000000};
        t0 = now_s();
        for (int i = 0; i < iters; i++) {
            buf_reset(&sigs);
            dkim_sign_start(s, &sp);
            dkim_sign_feed(s, m.data, m.len);
            dkim_sign_finish(s, &sigs);
        }
        t1 = now_s();
        printf("sign    %zu-octet message, %s: %.1f us/message\n", m.len, names[which],
               (t1 - t0) / iters * 1e6);
    }

    struct buf big = BUF_INIT;
    while (big.len < 16 << 20)
        buf_puts(&big, "Lorem ipsum dolor sit amet,  consectetur adipiscing elit, sed do eiusmod\r\n");
    struct dkim_body *b = dkim_body_new();
    for (int c = 0; c < 2; c++) {
        dkim_body_reset(b);
        dkim_body_want(b, (enum dkim_canon)c, DKIM_NO_LIMIT);
        t0 = now_s();
        for (size_t off = 0; off < big.len; off += 65536)
            dkim_body_feed(b, big.data + off, big.len - off < 65536 ? big.len - off : 65536);
        dkim_body_finish(b);
        t1 = now_s();
        printf("body    %s canonicalisation + SHA-256: %.0f MB/s\n",
               dkim_canon_name((enum dkim_canon)c), big.len / (t1 - t0) / 1e6);
    }
    unsigned char d[32];
    unsigned int dl = 32;
    t0 = now_s();
    EVP_Digest(big.data, big.len, d, &dl, EVP_sha256(), NULL);
    t1 = now_s();
    printf("body    SHA-256 alone, for comparison: %.0f MB/s\n", big.len / (t1 - t0) / 1e6);
    return 0;
}
