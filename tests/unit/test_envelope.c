/* Unit tests for mail/envelope: the in-memory envelope and its versioned
 * serialisation, parsed as hostile input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/envelope.h"

static void fill_sample(struct envelope *e)
{
    envelope_init(e);
    strcpy(e->qid, "4Yx2kQ7bF3z");
    envelope_set(&e->from, "alice@example.org");
    e->body = ENV_BODY_8BITMIME;
    e->smtputf8 = 1;
    e->ret_hdrs = 1;
    envelope_set(&e->envid, "QQ314159");
    e->size = 1234;
    e->arrival = 1767225600;
    envelope_set(&e->client_ip, "192.0.2.1");
    envelope_set(&e->client_name, "mail.example.org");
    envelope_set(&e->helo, "mail.example.org");
    envelope_set(&e->auth_user, NULL);
    envelope_add_rcpt(e, "bob@example.net", NULL, ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY);
    envelope_add_rcpt(e, "\"a b\"@example.net", "rfc822;carol@example.com", ENV_NOTIFY_NEVER);
}

static const char sample_text[] =
    "TERNENV 1\n"
    "qid 4Yx2kQ7bF3z\n"
    "from alice@example.org\n"
    "body 8bitmime\n"
    "smtputf8 1\n"
    "ret_hdrs 1\n"
    "envid QQ314159\n"
    "size 1234\n"
    "arrival 1767225600\n"
    "client_ip 192.0.2.1\n"
    "client_name mail.example.org\n"
    "helo mail.example.org\n"
    "rcpt bob@example.net\n"
    "notify 12\n"
    "rcpt \"a\\x20b\"@example.net\n"
    "orcpt rfc822;carol@example.com\n"
    "notify 1\n"
    "end\n";

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return !strcmp(a, b);
}

static int env_eq(const struct envelope *a, const struct envelope *b)
{
    if (strcmp(a->qid, b->qid) || !str_eq(a->from, b->from) || a->body != b->body ||
        a->smtputf8 != b->smtputf8 || a->ret_hdrs != b->ret_hdrs || a->ret_full != b->ret_full ||
        !str_eq(a->envid, b->envid) ||
        a->size != b->size || a->arrival != b->arrival || !str_eq(a->client_ip, b->client_ip) ||
        !str_eq(a->client_name, b->client_name) || !str_eq(a->helo, b->helo) ||
        !str_eq(a->auth_user, b->auth_user) || a->nrcpts != b->nrcpts)
        return 0;
    for (size_t i = 0; i < a->nrcpts; i++)
        if (!str_eq(a->rcpts[i].addr, b->rcpts[i].addr) ||
            !str_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt) ||
            a->rcpts[i].notify != b->rcpts[i].notify)
            return 0;
    return 1;
}

static int parse_str(const char *s, struct envelope *e)
{
    return envelope_parse(s, strlen(s), e);
}

static void test_init_set(void)
{
    struct envelope e;
    envelope_init(&e);
    CHECK(e.from == NULL && e.envid == NULL && e.helo == NULL && e.rcpts == NULL);
    CHECK_EQ_INT(e.nrcpts, 0);
    CHECK_EQ_STR(e.qid, "");
    envelope_set(&e.from, "a@b");
    CHECK_EQ_STR(e.from, "a@b");
    envelope_set(&e.from, "");
    CHECK_EQ_STR(e.from, "");
    envelope_set(&e.from, NULL);
    CHECK(e.from == NULL);
    /* envelope_set copies. */
    char tmp[8] = "x@y";
    envelope_set(&e.helo, tmp);
    tmp[0] = 'z';
    CHECK_EQ_STR(e.helo, "x@y");
    for (int i = 0; i < 100; i++)
        envelope_add_rcpt(&e, "r@x", i % 2 ? "o" : NULL, (unsigned)i & 15);
    CHECK_EQ_INT(e.nrcpts, 100);
    CHECK_EQ_STR(e.rcpts[99].addr, "r@x");
    CHECK_EQ_STR(e.rcpts[99].orcpt, "o");
    CHECK(e.rcpts[98].orcpt == NULL);
    CHECK_EQ_INT(e.rcpts[99].notify, 3);
    envelope_clear(&e);
    CHECK(e.helo == NULL && e.rcpts == NULL);
    CHECK_EQ_INT(e.nrcpts, 0);
    envelope_clear(&e); /* twice is harmless */
}

static void test_serialize_exact(void)
{
    struct envelope e;
    struct buf b = BUF_INIT;
    fill_sample(&e);
    envelope_serialize(&e, &b);
    CHECK_EQ_STR(b.data, sample_text);
    /* An empty envelope: NULL strings have no line. */
    struct envelope z;
    envelope_init(&z);
    buf_reset(&b);
    envelope_serialize(&z, &b);
    CHECK_EQ_STR(b.data, "TERNENV 1\nqid \nbody 7bit\nsmtputf8 0\nret_hdrs 0\nsize 0\n"
                         "arrival 0\nend\n");
    buf_free(&b);
    envelope_clear(&e);
}

static void test_roundtrip(void)
{
    struct envelope e, f;
    struct buf b = BUF_INIT, c = BUF_INIT;
    fill_sample(&e);
    envelope_serialize(&e, &b);
    envelope_init(&f);
    CHECK_EQ_INT(envelope_parse(b.data, b.len, &f), 0);
    CHECK(env_eq(&e, &f));
    envelope_serialize(&f, &c);
    CHECK_EQ_MEM(b.data, b.len, c.data, c.len);
    envelope_clear(&f);

    /* Every octet value in a string, "" versus NULL, negative time, the
     * largest size. */
    envelope_clear(&e);
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    envelope_set(&e.from, "");
    envelope_set(&e.helo, all);
    envelope_set(&e.auth_user, "us er\\\n");
    envelope_set(&e.client_name, "");
    e.size = UINT64_MAX;
    e.arrival = -86400;
    e.body = ENV_BODY_BINARYMIME;
    envelope_add_rcpt(&e, "", "", 0);
    envelope_add_rcpt(&e, "x@y", NULL, 15);
    buf_reset(&b);
    envelope_serialize(&e, &b);
    /* Nothing but printable ASCII and LF in the serialisation. */
    int clean = 1;
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] != '\n' && (b.data[i] < 0x20 || b.data[i] > 0x7e))
            clean = 0;
    CHECK(clean);
    CHECK(strstr(b.data, "\nauth_user us\\x20er\\x5c\\x0a\n") != NULL);
    CHECK(strstr(b.data, "\nfrom \n") != NULL);
    CHECK(strstr(b.data, "\nsize 18446744073709551615\n") != NULL);
    CHECK(strstr(b.data, "\narrival -86400\n") != NULL);
    envelope_init(&f);
    CHECK_EQ_INT(envelope_parse(b.data, b.len, &f), 0);
    CHECK(env_eq(&e, &f));
    CHECK_EQ_STR(f.helo, all);
    CHECK_EQ_STR(f.from, "");
    CHECK(f.envid == NULL);
    CHECK_EQ_STR(f.rcpts[0].orcpt, "");
    CHECK(f.rcpts[1].orcpt == NULL);
    buf_reset(&c);
    envelope_serialize(&f, &c);
    CHECK_EQ_MEM(b.data, b.len, c.data, c.len);
    envelope_clear(&f);
    envelope_clear(&e);
    buf_free(&b);
    buf_free(&c);
}

/* Each must be refused and leave the envelope cleared. */
static void expect_bad(const char *s, size_t len)
{
    struct envelope e;
    envelope_init(&e);
    envelope_set(&e.from, "stale@x"); /* parse clears what was there */
    int rc = envelope_parse(s, len, &e);
    CHECK_EQ_INT(rc, -EBADMSG);
    if (rc != -EBADMSG)
        fprintf(stderr, "  input: %.*s\n", (int)len, s);
    CHECK(e.from == NULL && e.rcpts == NULL && e.nrcpts == 0 && e.helo == NULL);
    CHECK_EQ_STR(e.qid, "");
    envelope_clear(&e);
}

#define BAD(s) expect_bad(s, strlen(s))
#define H "TERNENV 1\n"

static void test_malformed(void)
{
    struct envelope e;
    envelope_init(&e);
    CHECK_EQ_INT(parse_str(H "end\n", &e), 0);
    CHECK_EQ_INT(parse_str(H "rcpt a@b\nend\n", &e), 0);
    CHECK_EQ_INT(e.nrcpts, 1);
    CHECK_EQ_INT(e.rcpts[0].notify, 0);
    envelope_clear(&e);

    BAD("");
    BAD("end\n");
    BAD("TERNENV 2\nend\n");  /* unknown version */
    BAD("TERNENV 0\nend\n");
    BAD("TERNENV 01\nend\n");
    BAD("TERNENV\nend\n");
    BAD("TERNENV 1 \nend\n");
    BAD("ternenv 1\nend\n");
    BAD(H);                   /* truncated: no end */
    BAD(H "end");             /* truncated: no LF */
    BAD(H "from a@b\n");
    BAD(H "end\nend\n");      /* nothing after end */
    BAD(H "end\nfrom a@b\n");
    BAD(H "end\n\n");
    BAD(H "\nend\n");         /* empty line */
    BAD(H "from a@b\r\nend\n");
    BAD(H "from\nend\n");     /* no space */
    BAD(H "color blue\nend\n"); /* unknown key */
    BAD(H "From a@b\nend\n");
    BAD(H "from a@b\nfrom c@d\nend\n"); /* duplicate */
    BAD(H "size 1\nsize 1\nend\n");
    BAD(H "from a b\nend\n");  /* unescaped space */
    BAD(H "from a\tb\nend\n");
    BAD(H "from a\x80\nend\n");
    BAD(H "from a\\x0\nend\n"); /* short escape */
    BAD(H "from a\\\nend\n");
    BAD(H "from a\\y20\nend\n");
    BAD(H "from a\\x4G\nend\n");
    BAD(H "from a\\x0A\nend\n"); /* uppercase hex is not what we write */
    BAD(H "from a\\x00b\nend\n"); /* NUL would cut the string */
    BAD(H "from a\\x41\nend\n"); /* 'A' needs no escape: not canonical */
    BAD(H "body 9bit\nend\n");
    BAD(H "body 1\nend\n");
    BAD(H "smtputf8 2\nend\n");
    BAD(H "smtputf8 \nend\n");
    BAD(H "ret_hdrs yes\nend\n");
    BAD(H "ret_full 2\nend\n");
    BAD(H "ret_full 1\nret_full 1\nend\n");
    BAD(H "ret_hdrs 1\nret_full 1\nend\n"); /* RET is FULL or HDRS, not both */
    BAD(H "size -1\nend\n");
    BAD(H "size 01\nend\n");
    BAD(H "size 1x\nend\n");
    BAD(H "size \nend\n");
    BAD(H "size 18446744073709551616\nend\n"); /* 2^64 */
    BAD(H "size 99999999999999999999\nend\n");
    BAD(H "arrival 9223372036854775808\nend\n");
    BAD(H "arrival -0\nend\n");
    BAD(H "arrival --1\nend\n");
    BAD(H "notify 1\nend\n");   /* before any rcpt */
    BAD(H "orcpt x\nend\n");
    BAD(H "rcpt a@b\nnotify 1\nnotify 1\nend\n");
    BAD(H "rcpt a@b\norcpt x\norcpt x\nend\n");
    BAD(H "rcpt a@b\nnotify 16\nend\n");
    BAD(H "rcpt a b\nend\n");
    BAD(H "qid ../../etc\nend\n"); /* a queue ID names files */
    BAD(H "qid a/b\nend\n");
    BAD(H "qid .hidden\nend\n");
    BAD(H "qid 1234567890123456789012345\nend\n"); /* 25 > ENVELOPE_QID_MAX */
    CHECK_EQ_INT(parse_str(H "qid 123456789012345678901234\nend\n", &e), 0);
    CHECK_EQ_STR(e.qid, "123456789012345678901234");
    envelope_clear(&e);
    /* An embedded NUL octet in the input. */
    expect_bad(H "from a\0b\nend\n", sizeof(H "from a\0b\nend\n") - 1);
    /* Per-recipient fields go with the last rcpt; a new rcpt may have its own. */
    CHECK_EQ_INT(parse_str(H "rcpt a@b\nnotify 1\nrcpt c@d\nnotify 2\norcpt z\nend\n", &e), 0);
    CHECK_EQ_INT(e.nrcpts, 2);
    CHECK_EQ_INT(e.rcpts[0].notify, 1);
    CHECK(e.rcpts[0].orcpt == NULL);
    CHECK_EQ_INT(e.rcpts[1].notify, 2);
    CHECK_EQ_STR(e.rcpts[1].orcpt, "z");
    envelope_clear(&e);
    /* RET=FULL: a line only when set; it reads back. */
    envelope_init(&e);
    e.ret_full = 1;
    struct buf rb = BUF_INIT;
    envelope_serialize(&e, &rb);
    CHECK(strstr(rb.data, "\nret_hdrs 0\nret_full 1\n") != NULL);
    envelope_clear(&e);
    CHECK_EQ_INT(envelope_parse(rb.data, rb.len, &e), 0);
    CHECK_EQ_INT(e.ret_full, 1);
    CHECK_EQ_INT(e.ret_hdrs, 0);
    envelope_clear(&e);
    CHECK_EQ_INT(parse_str(H "ret_full 0\nend\n", &e), 0);
    CHECK_EQ_INT(e.ret_full, 0);
    envelope_clear(&e);
    buf_free(&rb);
}

static void test_limits(void)
{
    struct envelope e;
    struct buf b = BUF_INIT;
    /* A field of 1024 octets passes, 1025 does not (decoded length). */
    char *big = malloc(1026);
    memset(big, 'x', 1025);
    big[1024] = '\0';
    buf_printf(&b, H "helo %s\nend\n", big);
    envelope_init(&e);
    CHECK_EQ_INT(envelope_parse(b.data, b.len, &e), 0);
    CHECK_EQ_INT(strlen(e.helo), 1024);
    envelope_clear(&e);
    big[1024] = 'x';
    big[1025] = '\0';
    buf_reset(&b);
    buf_printf(&b, H "helo %s\nend\n", big);
    expect_bad(b.data, b.len);
    /* Escaped octets count once each: 1024 of them pass. */
    buf_reset(&b);
    buf_puts(&b, H "helo ");
    for (int i = 0; i < 1024; i++)
        buf_puts(&b, "\\x20");
    buf_puts(&b, "\nend\n");
    CHECK_EQ_INT(envelope_parse(b.data, b.len, &e), 0);
    CHECK_EQ_INT(strlen(e.helo), 1024);
    envelope_clear(&e);
    free(big);

    /* ENVELOPE_MAX_RCPTS recipients pass, one more does not. */
    buf_reset(&b);
    buf_puts(&b, H);
    for (int i = 0; i < ENVELOPE_MAX_RCPTS; i++)
        buf_printf(&b, "rcpt u%d@x\nnotify 4\n", i);
    size_t mark = b.len;
    buf_puts(&b, "end\n");
    CHECK_EQ_INT(envelope_parse(b.data, b.len, &e), 0);
    CHECK_EQ_INT(e.nrcpts, ENVELOPE_MAX_RCPTS);
    CHECK_EQ_STR(e.rcpts[ENVELOPE_MAX_RCPTS - 1].addr, "u9999@x");
    envelope_clear(&e);
    b.len = mark;
    buf_puts(&b, "rcpt one@more\nend\n");
    expect_bad(b.data, b.len);
    buf_free(&b);

    /* Every truncation of a valid serialisation is refused. */
    struct envelope s;
    fill_sample(&s);
    buf_init(&b);
    envelope_serialize(&s, &b);
    int accepted = 0;
    for (size_t n = 0; n < b.len; n++) {
        envelope_init(&e);
        if (envelope_parse(b.data, n, &e) == 0)
            accepted++;
        envelope_clear(&e);
    }
    CHECK_EQ_INT(accepted, 0);
    envelope_clear(&s);
    buf_free(&b);
}

int main(void)
{
    test_init_set();
    test_serialize_exact();
    test_roundtrip();
    test_malformed();
    test_limits();
    return check_result("test_envelope");
}
