/* test_sasl: base64 (RFC 4648 §10 vectors and strictness), SASL PLAIN and
 * LOGIN decoding, password hashes, the credentials cache, the brute-force
 * throttle, auth_verify() against a users file and sender ownership under
 * each sender_check mode. Prints what one yescrypt verify and one cache
 * hit cost on this machine. */
#include <crypt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sasl/authcache.h"
#include "sasl/passwd.h"
#include "sasl/sasl.h"
#include "sasl/throttle.h"
#include "sasl/verify.h"
#include "base/base64.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/xmalloc.h"
#include "check.h"
#include "conf/config.h"
#include "conf/table.h"
#include "mail/mailaddr.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ------------------------------------------------------------------ base64 */

static void test_base64_vectors(void)
{
    /* RFC 4648 §10. */
    static const struct {
        const char *plain, *b64;
    } v[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},       {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char enc[32], dec[32];
        size_t pn = strlen(v[i].plain), bn = strlen(v[i].b64);
        CHECK_EQ_INT(base64_encode(v[i].plain, pn, enc, sizeof enc), bn);
        CHECK_EQ_STR(enc, v[i].b64);
        CHECK_EQ_INT(base64_decode(v[i].b64, bn, dec, sizeof dec), pn);
        CHECK_EQ_MEM(dec, pn, v[i].plain, pn);
        /* Exactly enough room works; one octet less does not. */
        CHECK_EQ_INT(base64_encode(v[i].plain, pn, enc, BASE64_ENCODED_SIZE(pn)), bn);
        CHECK_EQ_INT(base64_encode(v[i].plain, pn, enc, BASE64_ENCODED_SIZE(pn) - 1),
                     BASE64_ENOSPC);
        CHECK_EQ_INT(base64_decode(v[i].b64, bn, dec, pn), pn);
        if (pn)
            CHECK_EQ_INT(base64_decode(v[i].b64, bn, dec, pn - 1), BASE64_ENOSPC);
    }
    /* Every octet value survives a round trip. */
    unsigned char all[256], back[256];
    char enc[BASE64_ENCODED_SIZE(256)];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    ssize_t n = base64_encode(all, sizeof all, enc, sizeof enc);
    CHECK_EQ_INT(n, 344);
    CHECK_EQ_INT(base64_decode(enc, (size_t)n, back, sizeof back), 256);
    CHECK(memcmp(all, back, 256) == 0);
}

static void test_base64_strict(void)
{
    static const char *const bad[] = {
        "Zg=",       /* not a multiple of 4 */
        "Zg",        /* padding missing */
        "Zm9v\r\n",  /* a line end */
        " Zm9v",     /* white space */
        "Zm9 v",     /*  ... inside */
        "Zm9v====",  /* a block of padding only */
        "Zg=a",      /* padding not at the end */
        "Z===",      /* three pads */
        "Zm=v",      /* pad in the middle */
        "Zh==",      /* non-zero pad bits (RFC 4648 §3.5) */
        "Zm9=",      /* the same with one pad */
        "Zm9-",      /* base64url's alphabet */
        "Zm9_",      ("Zm9v\x80" "AAA"), "====", "=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[16] = "untouched";
        CHECK_EQ_INT(base64_decode(bad[i], strlen(bad[i]), out, sizeof out), BASE64_EINVAL);
        CHECK_EQ_STR(out, "untouched");
    }
    /* A NUL is just another bad character (the length is explicit). */
    CHECK_EQ_INT(base64_decode("Zm\0v", 4, (char[4]){0}, 4), BASE64_EINVAL);
    /* Validity is judged before size: bad input too large is still EINVAL. */
    CHECK_EQ_INT(base64_decode("Zm9vYmFy!", 9, (char[1]){0}, 1), BASE64_EINVAL);
    CHECK_EQ_INT(base64_decode("Zm9vYmFy", 8, (char[1]){0}, 1), BASE64_ENOSPC);
}

/* ------------------------------------------------------------------ SASL */

/* base64 of n octets, in a static buffer. */
static const char *b64(const void *p, size_t n)
{
    static char out[4096];
    if (base64_encode(p, n, out, sizeof out) < 0)
        abort();
    return out;
}

static int plain(const void *msg, size_t n, struct sasl_creds *c)
{
    const char *s = b64(msg, n);
    return sasl_plain_decode(s, strlen(s), c);
}

static int creds_zero(const struct sasl_creds *c)
{
    static const struct sasl_creds zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static void test_sasl_plain(void)
{
    struct sasl_creds c;
    /* RFC 4616 §4's example, without and with an authzid. */
    CHECK_EQ_INT(plain("\0tim\0tanstaaftanstaaf", 21, &c), SASL_OK);
    CHECK_EQ_STR(c.authzid, "");
    CHECK_EQ_STR(c.authcid, "tim");
    CHECK_EQ_STR(c.password, "tanstaaftanstaaf");
    CHECK_EQ_INT(plain("tim\0tim\0pw", 10, &c), SASL_OK);
    CHECK_EQ_STR(c.authzid, "tim");
    CHECK_EQ_INT(plain("TIM\0tim\0pw", 10, &c), SASL_OK); /* names ignore case */
    CHECK_EQ_INT(plain("Ursel\0Kurt\0xipj3plmq", 20, &c), SASL_EAUTHZID);
    CHECK(creds_zero(&c));
    /* The literal "AGFsaWNlAHNlY3JldA==" = "\0alice\0secret". */
    CHECK_EQ_INT(sasl_plain_decode("AGFsaWNlAHNlY3JldA==", 20, &c), SASL_OK);
    CHECK_EQ_STR(c.authcid, "alice");
    CHECK_EQ_STR(c.password, "secret");
    sasl_wipe(&c, sizeof c);
    CHECK(creds_zero(&c));

    /* Malformed messages. */
    CHECK_EQ_INT(plain("alice", 5, &c), SASL_EMALFORMED);             /* no NUL */
    CHECK_EQ_INT(plain("\0alice", 6, &c), SASL_EMALFORMED);           /* one NUL */
    CHECK_EQ_INT(plain("\0alice\0pw\0", 10, &c), SASL_EMALFORMED);    /* three */
    CHECK_EQ_INT(plain("\0\0pw", 4, &c), SASL_EMALFORMED);            /* no authcid */
    CHECK_EQ_INT(plain("\0alice\0", 7, &c), SASL_EMALFORMED);         /* no password */
    CHECK_EQ_INT(plain("\0\0", 2, &c), SASL_EMALFORMED);
    CHECK(creds_zero(&c));
    CHECK_EQ_INT(sasl_plain_decode("=", 1, &c), SASL_EMALFORMED);     /* empty */
    CHECK_EQ_INT(sasl_plain_decode("", 0, &c), SASL_EMALFORMED);
    /* Bad base64, told apart from malformed. */
    CHECK_EQ_INT(sasl_plain_decode("AGFsaWNlAHNlY3JldA=", 19, &c), SASL_EBASE64);
    CHECK_EQ_INT(sasl_plain_decode("AGFsaWNl AHNlY3JldA==", 21, &c), SASL_EBASE64);
    CHECK_EQ_INT(sasl_plain_decode("*", 1, &c), SASL_EBASE64);
    CHECK_EQ_INT(sasl_plain_decode("==", 2, &c), SASL_EBASE64);

    /* Field lengths: 255 octets each is the most. */
    char msg[3 * 256 + 8];
    memset(msg, 'a', sizeof msg);
    msg[255] = '\0';
    msg[511] = '\0';
    CHECK_EQ_INT(plain(msg, 767, &c), SASL_OK);
    CHECK_EQ_INT(strlen(c.authzid), 255);
    CHECK_EQ_INT(strlen(c.authcid), 255);
    CHECK_EQ_INT(strlen(c.password), 255);
    CHECK_EQ_INT(plain(msg, 768, &c), SASL_EMALFORMED); /* password of 256 */
    /* No authzid, authcid and password of 255: fine; authcid of 256: not. */
    memset(msg, 'a', sizeof msg);
    msg[0] = '\0';
    msg[256] = '\0';
    CHECK_EQ_INT(plain(msg, 512, &c), SASL_OK);
    CHECK_EQ_INT(strlen(c.authcid), 255);
    msg[256] = 'a';
    msg[257] = '\0';
    CHECK_EQ_INT(plain(msg, 513, &c), SASL_EMALFORMED);
    /* A long run of valid base64 is malformed, not bad base64. */
    char big[3000];
    memset(big, 'A', sizeof big);
    CHECK_EQ_INT(sasl_plain_decode(big, 2400, &c), SASL_EMALFORMED);
    big[1000] = '!';
    CHECK_EQ_INT(sasl_plain_decode(big, 2400, &c), SASL_EBASE64);
    CHECK(creds_zero(&c));
    CHECK_EQ_STR(sasl_status_str(SASL_EBASE64), "bad base64");
}

static void test_sasl_login(void)
{
    char out[SASL_FIELD_MAX + 1];
    CHECK_EQ_INT(sasl_login_decode("YWxpY2U=", 8, out, sizeof out), SASL_OK);
    CHECK_EQ_STR(out, "alice");
    CHECK_EQ_INT(sasl_login_decode("=", 1, out, sizeof out), SASL_OK);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(sasl_login_decode("", 0, out, sizeof out), SASL_OK);
    CHECK_EQ_INT(sasl_login_decode("YWxpY2U", 7, out, sizeof out), SASL_EBASE64);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(sasl_login_decode("YWxp\nY2U=", 9, out, sizeof out), SASL_EBASE64);
    const char *s = b64("al\0ce", 5);
    CHECK_EQ_INT(sasl_login_decode(s, strlen(s), out, sizeof out), SASL_EMALFORMED);
    CHECK_EQ_STR(out, "");
    char field[300];
    memset(field, 'p', sizeof field);
    s = b64(field, 255);
    CHECK_EQ_INT(sasl_login_decode(s, strlen(s), out, sizeof out), SASL_OK);
    CHECK_EQ_INT(strlen(out), 255);
    s = b64(field, 256);
    CHECK_EQ_INT(sasl_login_decode(s, strlen(s), out, sizeof out), SASL_EMALFORMED);
    s = b64(field, 300);
    CHECK_EQ_INT(sasl_login_decode(s, strlen(s), out, sizeof out), SASL_EMALFORMED);
    char small[4];
    CHECK_EQ_INT(sasl_login_decode("YWxpY2U=", 8, small, sizeof small), SASL_EMALFORMED);
    CHECK_EQ_STR(small, "");
}

/* ------------------------------------------------------------------ passwd */

/* A hash made the old way, with an explicit prefix (for $6$). */
static char *hash_with(const char *prefix, const char *pw)
{
    char *setting = crypt_gensalt_ra(prefix, 0, NULL, 0);
    if (setting == NULL)
        return NULL;
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    const char *h = crypt_rn(pw, setting, cd, (int)sizeof *cd);
    char *out = h ? xstrdup(h) : NULL;
    free(cd);
    free(setting);
    return out;
}

static double yescrypt_ms; /* for the summary line */

static void test_passwd(void)
{
    char *y = passwd_hash_new("correct horse");
    CHECK(y != NULL && !strncmp(y, "$y$", 3));
    char *y2 = passwd_hash_new("correct horse");
    CHECK(y2 != NULL && strcmp(y, y2) != 0); /* a fresh salt each time */
    double t0 = now_us();
    CHECK_EQ_INT(passwd_verify(y, "correct horse"), 1);
    yescrypt_ms = (now_us() - t0) / 1000;
    CHECK_EQ_INT(passwd_verify(y2, "correct horse"), 1);
    CHECK_EQ_INT(passwd_verify(y, "correct horsE"), 0);
    CHECK_EQ_INT(passwd_verify(y, "correct horse "), 0);
    CHECK_EQ_INT(passwd_verify(y, ""), 0);
    char longpw[1000];
    memset(longpw, 'x', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    CHECK_EQ_INT(passwd_verify(y, longpw), 0);

    char *s6 = hash_with("$6$", "s3cret");
    CHECK(s6 != NULL && !strncmp(s6, "$6$", 3));
    CHECK_EQ_INT(passwd_verify(s6, "s3cret"), 1);
    CHECK_EQ_INT(passwd_verify(s6, "s3cre"), 0);
    char *s5 = hash_with("$5$", "s3cret");
    CHECK_EQ_INT(passwd_verify(s5, "s3cret"), 1);
    char *b2 = hash_with("$2b$", "s3cret");
    CHECK_EQ_INT(passwd_verify(b2, "s3cret"), 1);
    CHECK_EQ_INT(passwd_verify(b2, "s3cre"), 0);
    /* gost-yescrypt and scrypt, where this libxcrypt builds them. */
    static const char *const more[] = {"$gy$", "$7$"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        char *h = hash_with(more[i], "s3cret");
        if (h == NULL)
            continue;
        CHECK_EQ_INT(passwd_verify(h, "s3cret"), 1);
        CHECK_EQ_INT(passwd_verify(h, "s3creT"), 0);
        free(h);
    }

    /* Unusable: weak or unknown families, locked accounts, garbage. */
    char *md5 = hash_with("$1$", "s3cret");
    static const char *const unusable[] = {
        "", "*", "!", "!$y$j9T$abc$def", "x", "abJnggxhB/yWI", /* DES */
        "$y$", "$y$!!!", "$6", "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
    };
    for (size_t i = 0; i < sizeof unusable / sizeof unusable[0]; i++) {
        int rc = passwd_verify(unusable[i], "s3cret");
        CHECK(rc == PASSWD_EUNUSABLE);
        if (rc != PASSWD_EUNUSABLE)
            fprintf(stderr, "  hash %s gave %d\n", unusable[i], rc);
    }
    if (md5)
        CHECK_EQ_INT(passwd_verify(md5, "s3cret"), PASSWD_EUNUSABLE);
    CHECK(passwd_hash_accepted("$gy$x"));
    CHECK(passwd_hash_accepted("$7$x"));
    CHECK(!passwd_hash_accepted("$2y$x"));

    /* The dummy costs about what a real verify does. */
    t0 = now_us();
    passwd_verify_dummy();
    double dummy_ms = (now_us() - t0) / 1000;
    CHECK(dummy_ms > yescrypt_ms / 8 && dummy_ms < yescrypt_ms * 8);
    printf("passwd: yescrypt verify %.1f ms, dummy verify %.1f ms\n", yescrypt_ms, dummy_ms);
    free(y);
    free(y2);
    free(s6);
    free(s5);
    free(b2);
    free(md5);
}

/* ------------------------------------------------------------------ authcache */

static void test_authcache(void)
{
    struct authcache *c = authcache_new(4, 10);
    CHECK(c != NULL);
    uint64_t t = 1000000;
    CHECK(!authcache_lookup(c, "alice", "pw", "$y$h1", t));
    authcache_add(c, "alice", "pw", "$y$h1", t);
    CHECK_EQ_INT(authcache_count(c), 1);
    CHECK(authcache_lookup(c, "alice", "pw", "$y$h1", t));
    CHECK(authcache_lookup(c, "alice", "pw", "$y$h1", t + 9999));
    /* Any part different: a miss. The NUL separators keep "ab"+"c" and
     * "a"+"bc" apart. */
    CHECK(!authcache_lookup(c, "alice", "pW", "$y$h1", t));
    CHECK(!authcache_lookup(c, "alice", "pw", "$y$h2", t)); /* new hash in the file */
    CHECK(!authcache_lookup(c, "bob", "pw", "$y$h1", t));
    CHECK(!authcache_lookup(c, "alicep", "w", "$y$h1", t));
    CHECK(!authcache_lookup(c, "alice", "pw$", "y$h1", t));
    /* Expiry: the TTL counts from the add; an expired entry goes away. */
    CHECK(!authcache_lookup(c, "alice", "pw", "$y$h1", t + 10000));
    CHECK_EQ_INT(authcache_count(c), 0);
    authcache_add(c, "alice", "pw", "$y$h1", t);
    CHECK(!authcache_lookup(c, "alice", "pw", "$y$h1", t - 1)); /* clock went back */
    /* Renewal: adding again restarts the TTL, and counts once. */
    authcache_add(c, "alice", "pw", "$y$h1", t);
    authcache_add(c, "alice", "pw", "$y$h1", t + 5000);
    CHECK_EQ_INT(authcache_count(c), 1);
    CHECK(authcache_lookup(c, "alice", "pw", "$y$h1", t + 14000));
    /* Bounded: the oldest goes first. */
    authcache_add(c, "u1", "pw", "h", t + 5001);
    authcache_add(c, "u2", "pw", "h", t + 5002);
    authcache_add(c, "u3", "pw", "h", t + 5003);
    CHECK_EQ_INT(authcache_count(c), 4);
    authcache_add(c, "u4", "pw", "h", t + 5004);
    CHECK_EQ_INT(authcache_count(c), 4);
    CHECK(!authcache_lookup(c, "alice", "pw", "$y$h1", t + 5005));
    CHECK(authcache_lookup(c, "u1", "pw", "h", t + 5005));
    CHECK(authcache_lookup(c, "u4", "pw", "h", t + 5005));
    authcache_add(c, "u5", "pw", "h", t + 5006);
    CHECK(!authcache_lookup(c, "u1", "pw", "h", t + 5006));
    CHECK(authcache_lookup(c, "u2", "pw", "h", t + 5006));
    /* What a hit costs: one HMAC-SHA256 and a lookup under the mutex. */
    double t1 = now_us();
    int hits = 0;
    for (int i = 0; i < 1000; i++)
        hits += authcache_lookup(c, "u2", "pw", "h", t + 5006);
    CHECK_EQ_INT(hits, 1000);
    printf("authcache: hit %.2f us (mean of 1000)\n", (now_us() - t1) / 1000);
    authcache_free(c);

    /* TTL 0: never a hit. NULL: no cache. */
    c = authcache_new(4, 0);
    authcache_add(c, "alice", "pw", "h", t);
    CHECK(!authcache_lookup(c, "alice", "pw", "h", t));
    authcache_free(c);
    authcache_add(NULL, "alice", "pw", "h", t);
    CHECK(!authcache_lookup(NULL, "alice", "pw", "h", t));
    authcache_free(NULL);
}

struct cache_thread {
    struct authcache *c;
    int id;
    int bad;
};

static void *cache_worker(void *arg)
{
    struct cache_thread *ct = arg;
    char user[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(user, sizeof user, "u%d-%d", ct->id, i % 50);
        authcache_add(ct->c, user, "pw", "h", 1000);
        authcache_lookup(ct->c, user, "pw", "h", 1000);
        if (authcache_lookup(ct->c, user, "wrong", "h", 1000))
            ct->bad++;
    }
    return NULL;
}

static void test_authcache_threads(void)
{
    struct authcache *c = authcache_new(64, 60);
    struct cache_thread ct[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ct[i] = (struct cache_thread){c, i, 0};
        pthread_create(&th[i], NULL, cache_worker, &ct[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(ct[i].bad, 0);
    }
    CHECK(authcache_count(c) <= 64 && authcache_count(c) > 0);
    authcache_free(c);
}

/* ------------------------------------------------------------------ throttle */

static void test_throttle(void)
{
    /* 3 failures within 80 s block; slots of 10 s. */
    struct throttle *t = throttle_new(3, 80, 4);
    uint64_t t0 = 5000000;
    CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.1", t0, 16000), 0);
    CHECK(!throttle_blocked(t, "192.0.2.1", t0));
    unsigned want[] = {1000, 2000, 4000, 8000, 16000, 16000, 16000};
    /* The cap (auth_failure_delay_max) is never exceeded, whatever its value;
     * 0 answers at once. */
    unsigned want3[] = {1000, 2000, 3000, 3000, 3000, 3000, 3000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        throttle_fail(t, "192.0.2.1", t0 + i);
        CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.1", t0 + i, 16000), want[i]);
        CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.1", t0 + i, 3000), want3[i]);
        CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.1", t0 + i, 500), 500);
        CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.1", t0 + i, 0), 0);
        CHECK_EQ_INT(throttle_blocked(t, "192.0.2.1", t0 + i), i + 1 >= 3);
    }
    for (int i = 0; i < 40; i++)
        throttle_fail(t, "192.0.2.1", t0 + 10);
    CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.1", t0 + 10, 300000), 300000);
    CHECK_EQ_INT(throttle_failures(t, "192.0.2.1", t0 + 10), 47);
    /* Other keys are untouched. */
    CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.2", t0, 16000), 0);
    /* Within the window: remembered. A slot past it: forgotten. */
    CHECK(throttle_blocked(t, "192.0.2.1", t0 + 80000));
    CHECK(!throttle_blocked(t, "192.0.2.1", t0 + 90000));
    CHECK_EQ_INT(throttle_delay_ms(t, "192.0.2.1", t0 + 90000, 16000), 0);
    /* The window slides: two old failures and two new ones. */
    throttle_fail(t, "alice", t0);
    throttle_fail(t, "alice", t0 + 1);
    throttle_fail(t, "alice", t0 + 50000);
    CHECK(throttle_blocked(t, "alice", t0 + 50000));
    CHECK(!throttle_blocked(t, "alice", t0 + 95000)); /* only the third counts */
    CHECK_EQ_INT(throttle_failures(t, "alice", t0 + 95000), 1);
    throttle_fail(t, "alice", t0 + 95000);
    CHECK_EQ_INT(throttle_failures(t, "alice", t0 + 95000), 2);
    CHECK_EQ_INT(throttle_delay_ms(t, "alice", t0 + 95000, 16000), 2000);
    /* A success forgets. */
    throttle_success(t, "alice");
    CHECK_EQ_INT(throttle_failures(t, "alice", t0 + 95000), 0);
    throttle_success(t, "nobody");
    /* A clock that goes back does not lose failures. */
    throttle_fail(t, "carol", t0 + 20000);
    CHECK_EQ_INT(throttle_failures(t, "carol", t0), 1);
    throttle_free(t);

    /* Bounded: the stalest key goes first; aged keys are dropped. */
    t = throttle_new(3, 80, 4);
    throttle_fail(t, "k1", t0);
    throttle_fail(t, "k2", t0 + 1);
    throttle_fail(t, "k3", t0 + 2);
    throttle_fail(t, "k4", t0 + 3);
    throttle_fail(t, "k1", t0 + 4); /* k1 is fresh again: k2 is the stalest */
    CHECK_EQ_INT(throttle_count(t), 4);
    throttle_fail(t, "k5", t0 + 5);
    CHECK_EQ_INT(throttle_count(t), 4);
    CHECK_EQ_INT(throttle_failures(t, "k2", t0 + 5), 0);
    CHECK_EQ_INT(throttle_failures(t, "k1", t0 + 5), 2);
    CHECK_EQ_INT(throttle_failures(t, "k3", t0 + 5), 1);
    throttle_fail(t, "k6", t0 + 200000); /* everyone else has aged out */
    CHECK_EQ_INT(throttle_count(t), 1);
    /* Long keys are cut, not refused. */
    char longkey[1000];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    throttle_fail(t, longkey, t0 + 200000);
    CHECK_EQ_INT(throttle_failures(t, longkey, t0 + 200000), 1);
    throttle_free(t);

    /* Many keys: the index grows, lookups stay right. */
    t = throttle_new(10, 900, THROTTLE_KEYS_DEFAULT);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "10.0.%d.%d", i / 256, i % 256);
        throttle_fail(t, key, t0 + (uint64_t)i);
    }
    CHECK_EQ_INT(throttle_count(t), 20000);
    CHECK_EQ_INT(throttle_failures(t, "10.0.3.7", t0 + 20000), 1);
    throttle_free(t);
}

/* ------------------------------------------------------------------ verify */

static char tmpdir[PATH_MAX];

/* Loads a config whose users file has alice ($y$ "pw-alice"), bob@example.test
 * ($6$ "pw-bob"), carol (no hash), dave (MD5-crypt: unusable). */
static int load_config(struct config *cfg)
{
    char *ya = passwd_hash_new("pw-alice");
    char *sb = hash_with("$6$", "pw-bob");
    struct buf users = BUF_INIT, err = BUF_INIT;
    buf_printf(&users, "# test users\nalice: %s\nbob@example.test: %s\ncarol\n"
                       "dave: $1$abcdefgh$VjBDfXbJNCrfUStFFuw4a1\n", ya, sb);
    check_put(tmpdir, "users", users.data);
    check_put(tmpdir, "aliases", "team: alice, carol\n"
                   "sales@example.test: bob@example.test\n"
                   "nested: team\n"
                   "other@localhost: carol\n");
    struct buf conf = BUF_INIT;
    buf_printf(&conf, "local_domains = example.test, localhost\n"
                      "users_file = %s/users\naliases_file = %s/aliases\n", tmpdir, tmpdir);
    const char *path = check_put(tmpdir, "tern.conf", conf.data);
    config_default(cfg);
    int rc = config_load(cfg, path, &err);
    if (rc < 0)
        fprintf(stderr, "config_load: %s", err.data);
    free(ya);
    free(sb);
    buf_free(&users);
    buf_free(&conf);
    buf_free(&err);
    return rc;
}

static void test_verify(struct config *cfg)
{
    struct authcache *c = authcache_new(16, 3600);
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "pw-alice", c), AUTH_OK);
    CHECK_EQ_INT(authcache_count(c), 1);
    double t0 = now_us();
    CHECK_EQ_INT(auth_verify(cfg->users, "ALICE", "pw-alice", c), AUTH_OK); /* cached */
    double hit_us = now_us() - t0;
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "pw-Alice", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "bob@example.test", "pw-bob", c), AUTH_OK);
    CHECK_EQ_INT(auth_verify(cfg->users, "Bob@Example.TEST", "pw-bob", c), AUTH_OK);
    CHECK_EQ_INT(auth_verify(cfg->users, "bob", "pw-bob", c), AUTH_FAIL); /* exact name */
    CHECK_EQ_INT(auth_verify(cfg->users, "alice@example.test", "pw-alice", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "nobody", "pw-alice", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "", "pw-alice", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "carol", "", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "carol", "anything", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "dave", "s3cret", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(NULL, "alice", "pw-alice", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "pw-alice", NULL), AUTH_OK);
    /* An unknown user takes about as long as a wrong password. */
    t0 = now_us();
    CHECK_EQ_INT(auth_verify(cfg->users, "mallory", "x", c), AUTH_FAIL);
    double unknown_ms = (now_us() - t0) / 1000;
    t0 = now_us();
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "x", c), AUTH_FAIL);
    double wrong_ms = (now_us() - t0) / 1000;
    CHECK(unknown_ms > wrong_ms / 8 && unknown_ms < wrong_ms * 8);
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_EQ_INT(auth_verify(cfg->users, longname, "x", c), AUTH_FAIL);

    /* A new hash in the users file: the cached success no longer counts. */
    struct conf_entry *e = (struct conf_entry *)conf_table_get(cfg->users, "alice");
    char *nh = passwd_hash_new("pw-new");
    free(e->vals[0]);
    e->vals[0] = nh;
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "pw-alice", c), AUTH_FAIL);
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "pw-new", c), AUTH_OK);
    /* After the TTL the password is checked again (still right). */
    size_t before = authcache_count(c);
    clock_fake_advance(3601);
    t0 = now_us();
    CHECK_EQ_INT(auth_verify(cfg->users, "alice", "pw-new", c), AUTH_OK);
    double again_ms = (now_us() - t0) / 1000;
    CHECK(again_ms > 1.0); /* a yescrypt, not a cache hit (microseconds) */
    CHECK_EQ_INT(authcache_count(c), before);
    printf("verify: unknown user %.1f ms, wrong password %.1f ms, cache hit %.1f us "
           "(auth_verify), expired entry %.1f ms\n",
           unknown_ms, wrong_ms, hit_us, again_ms);
    authcache_free(c);
}

static void test_owns(const struct config *cfg)
{
    enum { O = AUTH_SENDER_OWN, D = AUTH_SENDER_DOMAIN, A = AUTH_SENDER_ANY };
    static const struct {
        const char *login, *sender;
        int mode, want;
    } cases[] = {
        /* "<>" always. */
        {"alice", "<>", O, 1},
        {"bob@example.test", "<>", D, 1},
        /* A login without a domain owns its name in every local domain. */
        {"alice", "<alice@example.test>", O, 1},
        {"alice", "<ALICE@Example.TEST>", O, 1},
        {"Alice", "<alice@localhost>", O, 1},
        {"alice", "<\"alice\"@localhost>", O, 1},
        {"alice", "<alice@remote.example>", O, 0},
        {"alice", "<carol@example.test>", O, 0},
        {"alice", "<alice.x@example.test>", O, 0},
        {"alice", "<alice@[127.0.0.1]>", O, 0},
        /* Aliases that reach the user, however deep. */
        {"alice", "<team@example.test>", O, 1},
        {"carol", "<team@localhost>", O, 1},
        {"alice", "<nested@localhost>", O, 1},
        {"alice", "<sales@example.test>", O, 0},
        {"alice", "<other@localhost>", O, 0},
        {"carol", "<other@localhost>", O, 1},
        {"carol", "<other@example.test>", O, 0},
        /* A login with a domain owns that address only. */
        {"bob@example.test", "<bob@example.test>", O, 1},
        {"bob@example.test", "<bob@localhost>", O, 0},
        {"bob@example.test", "<sales@example.test>", O, 1},
        {"bob@example.test", "<team@example.test>", O, 0},
        {"bob@example.test", "<postmaster@example.test>", O, 0},
        /* domain: any address of a local domain the user has one in. */
        {"bob@example.test", "<anyone@example.test>", D, 1},
        {"bob@example.test", "<anyone@localhost>", D, 0},
        {"alice", "<anyone@localhost>", D, 1},
        {"alice", "<anyone@example.test>", D, 1},
        {"alice", "<anyone@remote.example>", D, 0},
        {"bob@example.test", "<bob@example.test.evil>", D, 0},
        /* any: anything. */
        {"alice", "<anyone@remote.example>", A, 1},
        /* Broken logins own nothing but "<>". */
        {"", "<alice@localhost>", O, 0},
        {"@localhost", "<alice@localhost>", D, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mailaddr a;
        size_t used;
        const char *p = cases[i].sender;
        if (mailaddr_parse_path(p, strlen(p), MAILADDR_ALLOW_NULL, &a, &used) != MAILADDR_OK)
            abort();
        int got = auth_login_owns(cfg, cases[i].login, &a, cases[i].mode);
        CHECK_EQ_INT(got, cases[i].want);
        if (got != cases[i].want)
            fprintf(stderr, "  login %s, sender %s, mode %d\n", cases[i].login, p,
                    cases[i].mode);
    }
}

int main(void)
{
    check_tmpdir("test_sasl", tmpdir, sizeof tmpdir);
    test_base64_vectors();
    test_base64_strict();
    test_sasl_plain();
    test_sasl_login();
    test_passwd();
    test_authcache();
    test_authcache_threads();
    test_throttle();
    struct config cfg;
    if (load_config(&cfg) == 0) {
        test_verify(&cfg);
        test_owns(&cfg);
    } else {
        CHECK(!"config_load");
    }
    config_free(&cfg);
    return check_result("test_sasl");
}
