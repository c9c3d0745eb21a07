/* dkim_tool: mailauth/dkim_* on files, for the interoperability tests
 * (tests/dkim/test_dkim_interop.py) and by hand. No network: keys come
 * from a file.
 *
 *   dkim_tool verify [--now T] [--chunk N] KEYS < message
 *       KEYS has one line per DNS name: "<name> <TXT record text>", or
 *       "<name> TEMPFAIL" / "<name> NODATA"; unknown names are NXDOMAIN;
 *       a record is handed to the verifier in strings of 255 octets, as
 *       DNS carries a long one. Prints one line per signature,
 *       "<result> d=.. s=.. a=.. i=.. b=.. bits=.. l=.. len=.. flags=..
 *       reason=..", then "from=N subject=N fields=N flags=N".
 *   dkim_tool sign [--t T] [--x X] [--i AUID] [--headers a:b:c] [--chunk N]
 *                  KEY.pem DOMAIN SELECTOR [KEY.pem DOMAIN SELECTOR ...]
 *       < message > signed message (the fields on top).
 *   dkim_tool arc-verify [--now T] [--chunk N] KEYS < message
 *       mailauth/arc_verify with keys as for verify. Prints
 *       "<result> sets=N oldest-pass=K temporary=0|1 as-d=.. aar-id=..
 *       reason=..", then "aar=<the newest AAR's payload, unfolded>".
 *   dkim_tool arc-seal [--t T] [--cv none|pass|fail] [--chunk N]
 *                      [--dkim KEY.pem DOMAIN SELECTOR]
 *                      KEY.pem DOMAIN SELECTOR AUTHRES < message > sealed
 *       mailauth/arc_seal: the next ARC set on top, AUTHRES its AAR
 *       payload. With --dkim the message is DKIM-signed first and sealed
 *       with the signer's header and body hash (arc_seal_header), the
 *       signature below the set. Exit 3 when the sealer refuses (-EPERM,
 *       -E2BIG), printing the message unchanged.
 *   dkim_tool keygen (--rsa BITS | --ed25519) KEY.pem
 *       writes the key (0600), prints its TXT record.
 *   dkim_tool record KEY.pem     prints the TXT record of a key.
 *
 * The message is fed in chunks of N octets (default 7), so that every run
 * goes through the streaming paths. Exit 0, or 2 for a usage or file
 * error. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "mailauth/arc_seal.h"
#include "mailauth/arc_verify.h"
#include "mailauth/dkim_key.h"
#include "mailauth/dkim_sign.h"
#include "mailauth/dkim_verify.h"

static size_t chunk = 7;

static void die(const char *what)
{
    fprintf(stderr, "dkim_tool: %s\n", what);
    exit(2);
}

static void read_all(FILE *f, struct buf *out)
{
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(out, tmp, n);
    if (ferror(f))
        die("read error");
}

static void read_file(const char *path, struct buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    read_all(f, out);
    fclose(f);
}

struct zone_rec {
    char *name, *text;
};

static struct zone_rec *zone;
static size_t nzone;

static void zone_load(const char *path)
{
    struct buf b = BUF_INIT;
    read_file(path, &b);
    char *save = NULL;
    for (char *line = strtok_r(b.data ? b.data : "", "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            die("keys: a line without a record");
        *sp = '\0';
        zone = realloc(zone, (nzone + 1) * sizeof *zone);
        zone[nzone].name = strdup(line);
        zone[nzone].text = strdup(sp + 1);
        nzone++;
    }
    buf_free(&b);
}

static void answer(const struct dnsq_question *q, struct dnsq_answer *a, struct dnsq_rr *rrs,
                   struct dnsq_str *strs, size_t maxstrs)
{
    memset(a, 0, sizeof *a);
    a->status = DNSQ_NXDOMAIN;
    a->rrs = rrs;
    for (size_t i = 0; i < nzone; i++) {
        if (strcasecmp(zone[i].name, q->name) != 0)
            continue;
        const char *t = zone[i].text;
        if (strcmp(t, "TEMPFAIL") == 0) {
            a->status = DNSQ_TEMPFAIL;
            a->count = 0;
            return;
        }
        if (strcmp(t, "NODATA") == 0) {
            a->status = DNSQ_NODATA;
            a->count = 0;
            return;
        }
        size_t len = strlen(t), ns = 0, used = 0;
        for (size_t k = 0; a->count > 0 && k < a->count; k++)
            used += rrs[k].u.txt.n;
        for (size_t off = 0; off < len || ns == 0; off += 255) {
            if (used + ns == maxstrs)
                die("keys: record too long");
            strs[used + ns].p = (const unsigned char *)t + off;
            strs[used + ns].len = len - off < 255 ? len - off : 255;
            ns++;
            if (len == 0)
                break;
        }
        rrs[a->count].u.txt.strs = &strs[used];
        rrs[a->count].u.txt.n = ns;
        a->count++;
        a->status = DNSQ_OK;
    }
}

static void feed_chunks(void (*feed)(void *, const char *, size_t), void *ctx,
                        const struct buf *m)
{
    for (size_t i = 0; i < m->len; i += chunk)
        feed(ctx, m->data + i, m->len - i < chunk ? m->len - i : chunk);
}

static void vfeed(void *ctx, const char *p, size_t n)
{
    dkim_verify_feed(ctx, p, n);
}

static void sfeed(void *ctx, const char *p, size_t n)
{
    dkim_sign_feed(ctx, p, n);
}

/* The options of verify and arc-verify ([--now T] [--chunk N] KEYS),
 * the keys loaded and the message read into m; returns now. */
static long long verify_setup(int argc, char **argv, const char *cmd, struct buf *m)
{
    long long now = (long long)time(NULL);
    int i = 0;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            die("usage");
        if (strcmp(argv[i], "--now") == 0)
            now = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--chunk") == 0)
            chunk = (size_t)atol(argv[i + 1]);
        else
            die("usage");
    }
    if (i + 1 != argc || chunk == 0) {
        fprintf(stderr, "usage: dkim_tool %s [--now T] [--chunk N] KEYS < message\n", cmd);
        exit(2);
    }
    zone_load(argv[i]);
    read_all(stdin, m);
    return now;
}

static int cmd_verify(int argc, char **argv)
{
    struct buf m = BUF_INIT;
    long long now = verify_setup(argc, argv, "verify", &m);
    struct dkim_verify *v = dkim_verify_new();
    struct dkim_verify_params p = {.now = now};
    dkim_verify_start(v, &p);
    feed_chunks(vfeed, v, &m);
    dkim_verify_end(v);
    static struct dnsq_rr rrs[64];
    static struct dnsq_str strs[1024];
    while (dkim_verify_step(v) == DKIM_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = dkim_verify_questions(v, &q);
        for (size_t k = n; k-- > 0;) {
            struct dnsq_answer a;
            answer(&q[k], &a, rrs, strs, sizeof strs / sizeof strs[0]);
            dkim_verify_answer(v, k, &a);
        }
    }
    for (size_t k = 0; k < dkim_verify_count(v); k++) {
        const struct dkim_sig_result *r = dkim_verify_result(v, k);
        printf("%s d=%s s=%s a=%s i=%s b=%s bits=%u l=%lld len=%llu flags=%u reason=%s\n",
               dkim_result_name(r->result), r->d, r->s, r->parsed ? dkim_alg_name(r->alg) : "",
               r->i, r->b, r->key_bits, r->l == DKIM_NO_LIMIT ? -1LL : (long long)r->l,
               (unsigned long long)r->body_len, r->flags, r->reason);
    }
    printf("from=%u subject=%u fields=%u flags=%u\n", dkim_verify_from_count(v),
           dkim_verify_subject_count(v), dkim_verify_sig_fields(v), dkim_verify_flags(v));
    dkim_verify_free(v);
    buf_free(&m);
    return 0;
}

static EVP_PKEY *load_key(const char *path)
{
    struct buf b = BUF_INIT;
    read_file(path, &b);
    EVP_PKEY *k = dkim_key_from_pem(b.data ? b.data : "", b.len);
    buf_free(&b);
    if (k == NULL)
        die("cannot read the key");
    return k;
}

static int cmd_sign(int argc, char **argv)
{
    struct dkim_sign_params p = {0};
    static char *hnames[DKIM_H_MAX];
    int i = 0;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            die("usage");
        if (strcmp(argv[i], "--t") == 0) {
            p.t = atoll(argv[i + 1]);
        } else if (strcmp(argv[i], "--x") == 0) {
            p.x = atoll(argv[i + 1]);
        } else if (strcmp(argv[i], "--i") == 0) {
            p.auid = argv[i + 1];
        } else if (strcmp(argv[i], "--chunk") == 0) {
            chunk = (size_t)atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--headers") == 0) {
            size_t n = 0;
            char *save = NULL;
            for (char *h = strtok_r(argv[i + 1], ":", &save); h && n + 1 < DKIM_H_MAX;
                 h = strtok_r(NULL, ":", &save))
                hnames[n++] = h;
            hnames[n] = NULL;
            p.headers = (const char *const *)hnames;
        } else {
            die("usage");
        }
    }
    if ((argc - i) % 3 != 0 || argc == i || chunk == 0)
        die("usage: dkim_tool sign [--t T] [--x X] [--i AUID] [--headers a:b] KEY DOMAIN "
            "SELECTOR...");
    struct dkim_sign_key keys[DKIM_SIGN_KEYS_MAX];
    for (; i < argc; i += 3) {
        if (p.nkeys == DKIM_SIGN_KEYS_MAX)
            die("too many keys");
        keys[p.nkeys].key = load_key(argv[i]);
        keys[p.nkeys].domain = argv[i + 1];
        keys[p.nkeys].selector = argv[i + 2];
        p.nkeys++;
    }
    p.keys = keys;
    struct buf m = BUF_INIT, out = BUF_INIT;
    read_all(stdin, &m);
    struct dkim_signer *s = dkim_sign_new();
    int rc = dkim_sign_start(s, &p);
    if (rc < 0)
        die("bad signing parameters");
    feed_chunks(sfeed, s, &m);
    rc = dkim_sign_finish(s, &out);
    if (rc < 0)
        die("signing failed");
    fwrite(out.data, 1, out.len, stdout);
    fwrite(m.data, 1, m.len, stdout);
    for (size_t k = 0; k < p.nkeys; k++)
        EVP_PKEY_free(keys[k].key);
    dkim_sign_free(s);
    buf_free(&m);
    buf_free(&out);
    return 0;
}

static void avfeed(void *ctx, const char *p, size_t n)
{
    arc_verify_feed(ctx, p, n);
}

static void asfeed(void *ctx, const char *p, size_t n)
{
    arc_seal_feed(ctx, p, n);
}

/* Folds removed, for one line of output. */
static void print_unfolded(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\r' && p[i] != '\n')
            putchar(p[i]);
}

static int cmd_arc_verify(int argc, char **argv)
{
    struct buf m = BUF_INIT;
    long long now = verify_setup(argc, argv, "arc-verify", &m);
    struct arc_verify *v = arc_verify_new();
    struct arc_verify_params p = {.now = now};
    arc_verify_start(v, &p);
    feed_chunks(avfeed, v, &m);
    arc_verify_end(v);
    static struct dnsq_rr rrs[64];
    static struct dnsq_str strs[1024];
    while (arc_verify_step(v) == ARC_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = arc_verify_questions(v, &q);
        for (size_t k = n; k-- > 0;) {
            struct dnsq_answer a;
            answer(&q[k], &a, rrs, strs, sizeof strs / sizeof strs[0]);
            arc_verify_answer(v, k, &a);
        }
    }
    const struct arc_verify_result *r = arc_verify_result(v);
    printf("%s sets=%u oldest-pass=%d temporary=%d as-d=%s aar-id=%s reason=%s\naar=",
           arc_result_name(r->result), r->sets, r->oldest_pass, r->temporary ? 1 : 0, r->as_d,
           r->aar_id, r->reason);
    if (r->aar_text)
        print_unfolded(r->aar_text, r->aar_len);
    putchar('\n');
    arc_verify_free(v);
    buf_free(&m);
    return 0;
}

static int cmd_arc_seal(int argc, char **argv)
{
    struct arc_seal_params p = {.cv = ARC_NONE};
    struct dkim_sign_key dk = {0};
    int i = 0;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        if (strcmp(argv[i], "--dkim") == 0 && i + 3 < argc) {
            dk.key = load_key(argv[i + 1]);
            dk.domain = argv[i + 2];
            dk.selector = argv[i + 3];
            i += 4;
            continue;
        }
        if (i + 1 >= argc)
            die("usage");
        if (strcmp(argv[i], "--t") == 0)
            p.t = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--chunk") == 0)
            chunk = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--cv") == 0)
            p.cv = strcmp(argv[i + 1], "pass") == 0   ? ARC_PASS
                   : strcmp(argv[i + 1], "fail") == 0 ? ARC_FAIL
                                                      : ARC_NONE;
        else
            die("usage");
        i += 2;
    }
    if (argc - i != 4 || chunk == 0)
        die("usage: dkim_tool arc-seal [--t T] [--cv CV] [--dkim KEY DOMAIN SEL] KEY DOMAIN "
            "SELECTOR AUTHRES");
    p.key = load_key(argv[i]);
    p.domain = argv[i + 1];
    p.selector = argv[i + 2];
    p.authres = argv[i + 3];
    struct buf m = BUF_INIT, out = BUF_INIT, sigs = BUF_INIT;
    read_all(stdin, &m);
    struct arc_sealer *s = arc_seal_new();
    int rc;
    if (dk.key) {
        struct dkim_signer *ds = dkim_sign_new();
        struct dkim_sign_params sp = {.keys = &dk, .nkeys = 1, .t = p.t};
        if (dkim_sign_start(ds, &sp) < 0)
            die("bad signing parameters");
        feed_chunks(sfeed, ds, &m);
        if (dkim_sign_finish(ds, &sigs) < 0)
            die("signing failed");
        size_t hn;
        const char *h = dkim_sign_header(ds, &hn);
        rc = arc_seal_header(s, &p, sigs.data, sigs.len, h, hn, dkim_sign_body_hash(ds), &out);
        dkim_sign_free(ds);
        EVP_PKEY_free(dk.key);
    } else {
        if (arc_seal_start(s, &p) < 0)
            die("bad sealing parameters");
        feed_chunks(asfeed, s, &m);
        rc = arc_seal_finish(s, NULL, 0, &out);
    }
    int status = 0;
    if (rc == -EPERM || rc == -E2BIG) {
        status = 3; /* refused: the message as it was */
        buf_reset(&out);
        buf_reset(&sigs);
    } else if (rc < 0) {
        fprintf(stderr, "dkim_tool: arc-seal: %s\n", strerror(-rc));
        status = 2;
    }
    if (status != 2) {
        const struct buf *parts[] = {&out, &sigs, &m};
        for (size_t k = 0; k < 3; k++)
            if (parts[k]->len)
                fwrite(parts[k]->data, 1, parts[k]->len, stdout);
    }
    EVP_PKEY_free(p.key);
    arc_seal_free(s);
    buf_free(&m);
    buf_free(&out);
    buf_free(&sigs);
    return status;
}

static int cmd_keygen(int argc, char **argv)
{
    unsigned bits;
    const char *path;
    if (argc == 2 && strcmp(argv[0], "--ed25519") == 0) {
        bits = 0;
        path = argv[1];
    } else if (argc == 3 && strcmp(argv[0], "--rsa") == 0) {
        bits = (unsigned)atoi(argv[1]);
        path = argv[2];
    } else {
        die("usage: dkim_tool keygen (--rsa BITS | --ed25519) KEY.pem");
    }
    struct buf pem = BUF_INIT, rec = BUF_INIT;
    EVP_PKEY *k = dkim_key_generate(bits, &pem);
    if (k == NULL)
        die("key generation failed");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, pem.data, pem.len) != (ssize_t)pem.len || close(fd) != 0)
        die("cannot write the key");
    dkim_key_record(k, &rec);
    printf("%s\n", rec.data);
    EVP_PKEY_free(k);
    buf_free(&pem);
    buf_free(&rec);
    return 0;
}

static int cmd_record(int argc, char **argv)
{
    if (argc != 1)
        die("usage: dkim_tool record KEY.pem");
    EVP_PKEY *k = load_key(argv[0]);
    struct buf rec = BUF_INIT;
    if (dkim_key_record(k, &rec) < 0)
        die("no record for this key");
    printf("%s\n", rec.data);
    EVP_PKEY_free(k);
    buf_free(&rec);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: dkim_tool verify|sign|arc-verify|arc-seal|keygen|record ...");
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (strcmp(argv[1], "sign") == 0)
        return cmd_sign(argc - 2, argv + 2);
    if (strcmp(argv[1], "arc-verify") == 0)
        return cmd_arc_verify(argc - 2, argv + 2);
    if (strcmp(argv[1], "arc-seal") == 0)
        return cmd_arc_seal(argc - 2, argv + 2);
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 2, argv + 2);
    if (strcmp(argv[1], "record") == 0)
        return cmd_record(argc - 2, argv + 2);
    die("unknown command");
}
