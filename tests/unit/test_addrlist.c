/* Unit tests for mail/addrlist: the addresses of To:/Cc:/Bcc: bodies. */
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/addrlist.h"

static int collect(void *arg, const char *addr, size_t n)
{
    struct buf *b = arg;
    if (strlen(addr) != n)
        return 99;
    buf_printf(b, "[%s]", addr);
    return 0;
}

static void expect(const char *in, int rc, const char *want)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "");
    int got = addrlist_parse(in, strlen(in), collect, &b);
    CHECK_EQ_INT(got, rc);
    if (rc == 0)
        CHECK_EQ_STR(b.data ? b.data : "", want);
    buf_free(&b);
}

static int stop_at_second(void *arg, const char *addr, size_t n)
{
    int *count = arg;
    return ++*count == 2 ? 7 : 0;
}

int main(void)
{
    expect(" alice", 0, "[alice]");
    expect("a@x.test, b@y.test", 0, "[a@x.test][b@y.test]");
    expect("Alice <alice>, \"Carol, C.\" <carol@x.test>", 0, "[alice][carol@x.test]");
    expect("(comment) bob@x.test (another (nested))", 0, "[bob@x.test]");
    expect("dave@x.test,\r\n\terin", 0, "[dave@x.test][erin]");
    expect("team: a@x.test, b@x.test;, c@x.test", 0, "[a@x.test][b@x.test][c@x.test]");
    expect("undisclosed-recipients:;", 0, "");
    expect("", 0, "");
    expect(" , ,", 0, "");
    expect("\"a b\"@x.test", 0, "[\"a b\"@x.test]");
    expect("\"q\\\"x\"@x.test", 0, "[\"q\\\"x\"@x.test]");
    expect("<@r1,@r2:u@x.test>", 0, "[u@x.test]");
    expect("u@[IPv6:2001:db8::1]", 0, "[u@[IPv6:2001:db8::1]]");
    expect("Name <a@x.test", -EINVAL, "");
    expect("\"open", -EINVAL, "");
    expect("(open", -EINVAL, "");
    expect("a>b", -EINVAL, "");
    expect("<a<b>>", -EINVAL, "");
    /* An address over ADDRLIST_ADDR_MAX is refused. */
    char big[ADDRLIST_ADDR_MAX + 10];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect(big, -ENAMETOOLONG, "");
    /* The callback's value stops the walk. */
    int count = 0;
    CHECK_EQ_INT(addrlist_parse("a, b, c", 7, stop_at_second, &count), 7);
    CHECK_EQ_INT(count, 2);
    return check_result("test_addrlist");
}
