/* Unit tests for mail/pickup_fmt (the pickup file: writer, hostile-input
 * parser, line-end conversion) and mail/hdrscan (the header scan and the
 * fields a submission adds), which the pickup collector uses together. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/hdrscan.h"
#include "mail/pickup_fmt.h"

static int parse(const char *s, size_t rcpt_max, uint64_t size_max, struct pickup_env *e)
{
    return pickup_parse(s, strlen(s), rcpt_max, size_max, e);
}

static void test_roundtrip(void)
{
    struct pickup_env e, f;
    pickup_env_init(&e);
    pickup_env_init(&f);
    e.has_from = 1;
    strcpy(e.from, "bounces@example.org");
    strcpy(e.name, "Cron Daemon");
    pickup_env_add_rcpt(&e, "alice@example.test");
    pickup_env_add_rcpt(&e, "\"a b\"@example.test");
    struct buf b = BUF_INIT;
    pickup_write(&e, &b);
    CHECK_EQ_STR(b.data, "tern-pickup 1\nfrom bounces@example.org\nname Cron Daemon\n"
                         "rcpt alice@example.test\nrcpt \"a b\"@example.test\n\n");
    buf_puts(&b, "Subject: x\n\nbody\n");
    CHECK_EQ_INT(pickup_parse(b.data, b.len, 100, 1000, &f), 0);
    CHECK(f.has_from);
    CHECK_EQ_STR(f.from, "bounces@example.org");
    CHECK_EQ_STR(f.name, "Cron Daemon");
    CHECK_EQ_INT(f.nrcpts, 2);
    CHECK_EQ_STR(f.rcpts[1], "\"a b\"@example.test");
    CHECK_EQ_STR(b.data + f.content_off, "Subject: x\n\nbody\n");
    CHECK(!f.utf8);
    pickup_env_free(&e);
    pickup_env_free(&f);
    buf_free(&b);
}

static void test_null_sender_and_defaults(void)
{
    struct pickup_env e;
    pickup_env_init(&e);
    CHECK_EQ_INT(parse("tern-pickup 1\nfrom <>\nrcpt a@x.test\n\n", 10, 0, &e), 0);
    CHECK(e.has_from);
    CHECK_EQ_STR(e.from, "");
    CHECK_EQ_INT(e.content_off, strlen("tern-pickup 1\nfrom <>\nrcpt a@x.test\n\n"));
    CHECK_EQ_INT(parse("tern-pickup 1\nrcpt a@x.test\n\n", 10, 0, &e), 0);
    CHECK(!e.has_from);
    CHECK_EQ_STR(e.name, "");
    CHECK_EQ_INT(parse("tern-pickup 1\nrcpt j\xc3\xb6rg@b\xc3\xbc.test\n\n", 10, 0, &e), 0);
    CHECK(e.utf8);
    /* 17 recipients: the array grows past its first 8 and 16. */
    struct buf b = BUF_INIT;
    buf_puts(&b, "tern-pickup 1\n");
    for (int i = 0; i < 17; i++)
        buf_printf(&b, "rcpt u%d@x.test\n", i);
    buf_puts(&b, "\n");
    CHECK_EQ_INT(pickup_parse(b.data, b.len, 17, 0, &e), 0);
    CHECK_EQ_INT(e.nrcpts, 17);
    CHECK_EQ_STR(e.rcpts[16], "u16@x.test");
    CHECK_EQ_INT(pickup_parse(b.data, b.len, 16, 0, &e), -EINVAL); /* over rcpt_max */
    CHECK_EQ_INT(e.nrcpts, 0);
    CHECK(e.rcpts == NULL);
    buf_free(&b);
    pickup_env_free(&e);
}

static void test_hostile(void)
{
    static const char *const bad[] = {
        "",
        "tern-pickup 1",                                   /* no line end */
        "tern-pickup 1\nrcpt a@x.test\n",                  /* no empty line */
        "tern-pickup 2\nrcpt a@x.test\n\n",                /* unknown version */
        "tern-pickup 1 \nrcpt a@x.test\n\n",
        "tern-pickup 1\n\n",                               /* no recipient */
        "tern-pickup 1\nrcpt a@x.test\nfrom a@x.test\nfrom b@x.test\n\n", /* from twice */
        "tern-pickup 1\nname A\nname B\nrcpt a@x.test\n\n",
        "tern-pickup 1\nname \nrcpt a@x.test\n\n",
        "tern-pickup 1\nname A\rBcc: x\nrcpt a@x.test\n\n", /* header injection */
        "tern-pickup 1\nrcpt not an address\n\n",
        "tern-pickup 1\nrcpt <a@x.test>\n\n",
        "tern-pickup 1\nrcpt postmaster\n\n",
        "tern-pickup 1\nrcpt a@x.test\nrcpt a@@x.test\n\n",
        "tern-pickup 1\nfrom nobody\nrcpt a@x.test\n\n",
        "tern-pickup 1\nrcpt a@x.test\nbcc b@x.test\n\n",  /* unknown keyword */
        "tern-pickup 1\nrcpt\n\n",
        "tern-pickup 1\r\nrcpt a@x.test\r\n\r\n",         /* CRLF is not the format */
        "tern-pickup 1\nrcpt a@x.test\n\n12345678901",      /* content over size_max: last */
    };
    size_t nbad = sizeof bad / sizeof bad[0];
    struct pickup_env e;
    pickup_env_init(&e);
    for (size_t i = 0; i < nbad; i++) {
        int rc = parse(bad[i], 10, 10, &e), want = i == nbad - 1 ? -EMSGSIZE : -EINVAL;
        if (rc != want)
            fprintf(stderr, "bad input %zu: %d\n", i, rc);
        CHECK_EQ_INT(rc, want);
        CHECK_EQ_INT(e.nrcpts, 0);
    }
    /* A NUL inside an envelope line. */
    static const char nul[] = "tern-pickup 1\nrcpt a@x.test\0b\n\n";
    CHECK_EQ_INT(pickup_parse(nul, sizeof nul - 1, 10, 0, &e), -EINVAL);
    /* An overlong line is refused without reading past it. */
    struct buf b = BUF_INIT;
    buf_puts(&b, "tern-pickup 1\nname ");
    for (int i = 0; i < PICKUP_LINE_MAX; i++)
        buf_putc(&b, 'n');
    buf_puts(&b, "\nrcpt a@x.test\n\n");
    CHECK_EQ_INT(pickup_parse(b.data, b.len, 10, 0, &e), -EINVAL);
    buf_free(&b);
    /* Exactly at size_max is fine. */
    CHECK_EQ_INT(parse("tern-pickup 1\nrcpt a@x.test\n\n1234567890", 10, 10, &e), 0);
    pickup_env_free(&e);
}

static void test_crlf(void)
{
    struct buf b = BUF_INIT;
    struct pickup_text t;
    static const char in[] = "a\nbb\r\nccc\rdddd\r\n\nlast";
    pickup_to_crlf(in, sizeof in - 1, &b, &t);
    static const char want[] = "a\r\nbb\r\nccc\r\ndddd\r\n\r\nlast\r\n";
    CHECK_EQ_MEM(b.data, b.len, want, sizeof want - 1);
    CHECK_EQ_INT(t.line_max, 4);
    CHECK(!t.has_8bit && !t.has_nul);
    buf_reset(&b);
    static const char in2[] = "caf\xc3\xa9\0x\n";
    pickup_to_crlf(in2, sizeof in2 - 1, &b, &t);
    CHECK(t.has_8bit && t.has_nul);
    CHECK_EQ_INT(b.len, sizeof in2 - 1 + 1);
    buf_reset(&b);
    pickup_to_crlf("", 0, &b, &t);
    CHECK_EQ_INT(b.len, 0);
    buf_free(&b);
}

static void test_hdrscan(void)
{
    struct hdrscan h;
    hdrscan_init(&h);
    static const char m[] = "Received: a\r\nDATE: now\r\nX-Long-Header-Name-Over-16: y\r\n"
                            "Subject: s\r\n from: not a field (folded)\r\n\r\nFrom: body\r\n";
    /* Fed in two parts, split inside a name. */
    hdrscan_feed(&h, m, 0, 20);
    hdrscan_feed(&h, m, 20, sizeof m - 1);
    CHECK(h.done);
    CHECK_EQ_INT(h.end, strstr(m, "\r\n\r\n") + 2 - m);
    CHECK_EQ_INT(h.seen, HDRSCAN_DATE);
    CHECK_EQ_INT(h.received, 1);
    struct buf b = BUF_INIT;
    hdrscan_fixes(&h, "ID.1", "mx.test", "J \"Q\" \\ \x01" "Doe", "j@x.test", &b);
    CHECK(strstr(b.data, "Date:") == NULL);
    CHECK(strstr(b.data, "Message-ID: <ID.1@mx.test>\r\n") != NULL);
    CHECK(strstr(b.data, "From: \"J \\\"Q\\\" \\\\ Doe\" <j@x.test>\r\n") != NULL);
    buf_reset(&b);
    /* LF line ends, no empty line; From: seen: not added again. */
    hdrscan_init(&h);
    static const char m2[] = "from: a@b\nmessage-id: <x@y>\n";
    hdrscan_feed(&h, m2, 0, sizeof m2 - 1);
    CHECK(!h.done);
    CHECK_EQ_INT(h.seen, HDRSCAN_FROM | HDRSCAN_MSGID);
    hdrscan_fixes(&h, "ID", "mx.test", NULL, "j@x.test", &b);
    CHECK(strncmp(b.data, "Date: ", 6) == 0);
    CHECK(strstr(b.data, "From:") == NULL && strstr(b.data, "Message-ID") == NULL);
    buf_reset(&b);
    /* No From: and no name, or no author at all (from_addr NULL). */
    hdrscan_init(&h);
    hdrscan_feed(&h, "\n", 0, 1);
    CHECK(h.done && h.end == 0);
    hdrscan_fixes(&h, "ID", "h", "", "a@b", &b);
    CHECK(strstr(b.data, "From: <a@b>\r\n") != NULL);
    buf_reset(&b);
    hdrscan_fixes(&h, "ID", "h", "N", NULL, &b);
    CHECK(strstr(b.data, "From:") == NULL);
    buf_free(&b);
}

int main(void)
{
    test_roundtrip();
    test_null_sender_and_defaults();
    test_hostile();
    test_crlf();
    test_hdrscan();
    return check_result("test_pickup_fmt");
}
