/* Unit tests for mail/reply: RFC 5321 §4.2 reply lines with RFC 3463
 * enhanced status codes. */
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/reply.h"

static void expect(int code, const char *enh, const char *text, const char *want)
{
    struct buf b = BUF_INIT;
    reply_append(&b, code, enh, text);
    CHECK_EQ_MEM(b.data, b.len, want, strlen(want));
    buf_free(&b);
}

static void test_single(void)
{
    expect(250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n");
    expect(220, NULL, "mx.test ESMTP tern", "220 mx.test ESMTP tern\r\n");
    expect(554, "5.7.1", "<a@b>: Relay access denied", "554 5.7.1 <a@b>: Relay access denied\r\n");
    /* Empty text still carries the code (and the enhanced code). */
    expect(250, "2.0.0", "", "250 2.0.0\r\n");
    expect(250, NULL, "", "250 \r\n");
    expect(250, NULL, NULL, "250 \r\n");
}

static void test_multi(void)
{
    expect(250, NULL, "mx.test\nPIPELINING\nSIZE 100",
           "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
    /* The enhanced code on every line (RFC 2034 §4). */
    expect(550, "5.1.1", "no such user\nreally", "550-5.1.1 no such user\r\n550 5.1.1 really\r\n");
    /* Empty lines, including a trailing one, get the code. */
    expect(250, "2.0.0", "a\n\nb", "250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 b\r\n");
    expect(250, NULL, "a\n", "250-a\r\n250 \r\n");
    expect(214, "2.0.0", "\n", "214-2.0.0\r\n214 2.0.0\r\n");
}

static void test_controls(void)
{
    /* Peer text can never end a line early nor start a new reply: CR and
     * other controls are replaced; only '\n' separates lines, and each
     * line gets the code. */
    expect(501, "5.1.3", "<a\rb>", "501 5.1.3 <a?b>\r\n");
    expect(501, "5.1.3", "x\r\n250 ok", "501-5.1.3 x?\r\n501 5.1.3 250 ok\r\n");
    expect(500, NULL, "a\x01\x1b[2Jb\x7f", "500 a??[2Jb?\r\n");
    /* HT is allowed in textstring; 8-bit octets are not. */
    expect(250, NULL, "a\tb", "250 a\tb\r\n");
    expect(553, "5.6.7", "caf\xc3\xa9", "553 5.6.7 caf??\r\n");
    /* The enhanced code is filtered too. */
    expect(250, "2.0\r\n0", "x", "250 2.0??0 x\r\n");
}

static void test_appendf(void)
{
    struct buf b = BUF_INIT;
    reply_appendf(&b, 250, "2.0.0", "Ok: queued as %s", "ABC123");
    reply_appendf(&b, 221, "2.0.0", "%s", "Bye");
    CHECK_EQ_STR(b.data, "250 2.0.0 Ok: queued as ABC123\r\n221 2.0.0 Bye\r\n");
    buf_reset(&b);
    reply_appendf(&b, 250, NULL, "%s\n%s %d", "host", "SIZE", 10);
    CHECK_EQ_STR(b.data, "250-host\r\n250 SIZE 10\r\n");
    buf_free(&b);
}

static void test_limits(void)
{
    /* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets. */
    char text[2000];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    struct buf b = BUF_INIT;
    reply_append(&b, 550, "5.1.1", text);
    CHECK_EQ_INT(b.len, 512);
    CHECK(!memcmp(b.data, "550 5.1.1 xxx", 13));
    CHECK(!memcmp(b.data + 510, "\r\n", 2));
    buf_reset(&b);
    reply_append(&b, 550, NULL, text);
    CHECK_EQ_INT(b.len, 512);
    buf_reset(&b);
    /* Exactly fitting text is not cut. */
    text[512 - 2 - 4] = '\0';
    reply_append(&b, 250, NULL, text);
    CHECK_EQ_INT(b.len, 512);
    CHECK_EQ_INT(b.data[509], 'x');
    buf_free(&b);
    /* A code outside 2xx-5xx is a bug: answered as a local error. */
    expect(99, NULL, "x", "451 x\r\n");
    expect(1250, NULL, "x", "451 x\r\n");
}

int main(void)
{
    test_single();
    test_multi();
    test_controls();
    test_appendf();
    test_limits();
    return check_result("test_reply");
}
