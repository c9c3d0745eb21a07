/* Unit tests for mailauth/dmarc_from: From: fields of RFC 5322 §3.4 and
 * §4.4 (display names, comments, quoted strings, folding, groups, routes,
 * obs-local-part, UTF-8), the statuses of RFC 7489 §6.6.1 (no From,
 * several fields, several addresses, no domain), the forms that would
 * let a reader and DMARC see different authors, and the header scan. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "mailauth/dmarc_from.h"

static struct dmarc_from f;

/* Parses one field body; returns the status. */
static enum dmarc_from_status field(const char *v)
{
    dmarc_from_init(&f);
    int rc = dmarc_from_add_field(&f, v, strlen(v));
    CHECK_EQ_INT(rc, f.status == DMARC_FROM_OK ? 0 : -EINVAL);
    return f.status;
}

static void expect(const char *v, const char *d0, const char *d1)
{
    enum dmarc_from_status s = field(v);
    if (s != DMARC_FROM_OK)
        fprintf(stderr, "  not ok (%s): %s\n", dmarc_from_status_name(s), v);
    CHECK_EQ_INT(s, DMARC_FROM_OK);
    CHECK_EQ_INT(f.ndomains, d1 ? 2 : 1);
    CHECK_EQ_STR(f.domains[0], d0);
    if (d1)
        CHECK_EQ_STR(f.domains[1], d1);
}

static void expect_status(const char *v, enum dmarc_from_status want)
{
    enum dmarc_from_status s = field(v);
    if (s != want)
        fprintf(stderr, "  %s, want %s: %s\n", dmarc_from_status_name(s),
                dmarc_from_status_name(want), v);
    CHECK_EQ_INT(s, want);
}

static void test_forms(void)
{
    expect(" user@example.com", "example.com", NULL);
    expect("User@Example.COM", "example.com", NULL);
    expect(" John Doe <jdoe@example.org>", "example.org", NULL);
    expect("\"Doe, John\" <jdoe@example.org>", "example.org", NULL);
    expect("\"evil@bad.example\" <jdoe@example.org>", "example.org", NULL);
    expect("jdoe@example.org (evil@bad.example)", "example.org", NULL);
    expect("(c) jdoe (c) @ (c) example . org (c)", "example.org", NULL);
    expect("John (middle (nested) name) Doe <jdoe@example.org>", "example.org", NULL);
    expect("<jdoe@example.org>", "example.org", NULL);
    expect("John Q. Public <jqp@example.org>", "example.org", NULL); /* obs-phrase */
    expect("\"quoted local\"@example.org", "example.org", NULL);
    expect("\"a@b.example\"@example.org", "example.org", NULL);
    expect("\"a\\\"b\"@example.org", "example.org", NULL);
    expect("first.last@example.org", "example.org", NULL);
    expect("first . last@example.org", "example.org", NULL); /* obs-local-part */
    expect("a.\"b\".c@example.org", "example.org", NULL);
    expect("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", "silly.test",
           NULL);
    expect("\r\n John Doe\r\n <jdoe@example.org>\r\n", "example.org", NULL);
    expect("<@route.example,@other.example:jdoe@example.org>", "example.org", NULL);
    expect("<,@route.example,,@r2.example:jdoe@example.org>", "example.org", NULL);
    expect("\"J\xc3\xb6rg\" <j@b\xc3\xbc" "cher.example>", "b\xc3\xbc" "cher.example", NULL);
    expect("J\xc3\xb6rg <j\xc3\xb6@example.org>", "example.org", NULL);
    expect("a_b@sub_domain.example", "sub_domain.example", NULL);
    expect("localpart@localhost", "localhost", NULL);
}

static void test_several(void)
{
    expect("a@one.example, b@two.example", "one.example", "two.example");
    expect("a@one.example, B@ONE.example", "one.example", NULL);
    expect(",, a@one.example,, ,b@two.example,", "one.example", "two.example");
    /* Groups (RFC 6854). */
    expect("team: a@one.example, b@two.example;", "one.example", "two.example");
    expect("team: a@one.example; , c@three.example", "one.example", "three.example");
    expect_status("undisclosed-recipients:;", DMARC_FROM_EMPTY);
    expect_status("undisclosed-recipients: (nobody) ;", DMARC_FROM_EMPTY);
    expect_status("", DMARC_FROM_EMPTY);
    expect_status(" (only a comment) ", DMARC_FROM_EMPTY);
    /* More distinct domains than are judged. */
    expect_status("a@d1.example, a@d2.example, a@d3.example, a@d4.example, a@d5.example,"
                  " a@d6.example, a@d7.example, a@d8.example, a@d9.example",
                  DMARC_FROM_TOOMANY);
    /* Eight distinct domains are judged, repeats do not count. */
    field("a@d1.example, a@d2.example, a@d3.example, a@d4.example, a@d5.example,"
          " a@d6.example, a@d7.example, a@d8.example, b@d1.example");
    CHECK_EQ_INT(f.status, DMARC_FROM_OK);
    CHECK_EQ_INT(f.ndomains, 8);
    CHECK_EQ_INT(f.naddrs, 9);
}

static void test_syntax(void)
{
    static const char *const bad[] = {
        "jdoe",                          /* no '@' */
        "John Doe",                      /* a phrase alone */
        "<a@one.example> <b@two.example>", /* two angle addresses */
        "<a@one.example>b@two.example",  /* text after '>' */
        "a@one.example b@two.example",   /* no comma */
        "a@b@two.example",               /* two '@' */
        "John <a@one.example",           /* unterminated angle */
        "a@one.example>",
        "\"unterminated@one.example",
        "a@one.example (unterminated",
        "a@one.example )",
        "a@one.example.",                /* trailing dot */
        "a@.one.example",
        "a@one..example",
        "a..b@one.example",
        ".a@one.example",
        "a.@one.example",
        "a@",
        "@one.example",
        "a@one.example;",                /* ';' outside a group */
        "team: a@one.example",           /* unterminated group */
        "team: inner: a@one.example;;",  /* nested group */
        ". <a@one.example>",             /* a phrase starts with a word */
        "a\\b@one.example",
        "a@one.example\x01",
        "a@[1.2.3.4",
        "a@one.exa\xff" "mple",          /* malformed UTF-8 */
        "a@one.exa\xc0\xafmple",         /* overlong */
        "<>",
        "<@route.example:>",
        "<@route.example jdoe@example.org>",
        "a@one.example, ]",
        "\"\xff\"@one.example",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_status(bad[i], DMARC_FROM_SYNTAX);
    static const char nul[] = "a@one.example\0b@two.example";
    dmarc_from_init(&f);
    CHECK_EQ_INT(dmarc_from_add_field(&f, nul, sizeof nul - 1), -EINVAL);
    CHECK_EQ_INT(f.status, DMARC_FROM_SYNTAX);
}

static void test_nodomain(void)
{
    expect_status("a@[192.0.2.1]", DMARC_FROM_NODOMAIN);
    expect_status("a@[IPv6:2001:db8::1]", DMARC_FROM_NODOMAIN);
    expect_status("a@one.example, b@[192.0.2.1]", DMARC_FROM_NODOMAIN);
    char v[400];
    memset(v, 'a', sizeof v);
    memcpy(v, "x@", 2);
    v[sizeof v - 1] = '\0';
    expect_status(v, DMARC_FROM_NODOMAIN); /* over 253 octets */
    char l[100] = "x@";
    memset(l + 2, 'b', 64);
    memcpy(l + 66, ".example", 9);
    expect_status(l, DMARC_FROM_NODOMAIN); /* a label over 63 */
    /* Syntax is worse than no domain. */
    expect_status("a@[192.0.2.1], b", DMARC_FROM_SYNTAX);
}

static void test_fields(void)
{
    /* Several From fields: every domain counts, errors stick. */
    dmarc_from_init(&f);
    CHECK_EQ_INT(f.status, DMARC_FROM_ABSENT);
    CHECK_EQ_INT(dmarc_from_add_field(&f, " undisclosed:;", 14), -EINVAL);
    CHECK_EQ_INT(f.status, DMARC_FROM_EMPTY);
    CHECK_EQ_INT(dmarc_from_add_field(&f, " a@one.example", 14), 0);
    CHECK_EQ_INT(dmarc_from_add_field(&f, " a@two.example", 14), 0);
    CHECK_EQ_INT(f.nfields, 3);
    CHECK_EQ_INT(f.ndomains, 2);
    CHECK_EQ_INT(dmarc_from_add_field(&f, " bad", 4), -EINVAL);
    CHECK_EQ_INT(dmarc_from_add_field(&f, " a@three.example", 16), -EINVAL);
    CHECK_EQ_INT(f.status, DMARC_FROM_SYNTAX);
}

static void test_header(void)
{
    const char *h = "Received: from x\r\n\tby y\r\n"
                    "from: Someone\r\n <a@one.example>\r\n"
                    "Subject: From: b@evil.example\r\n"
                    "X-From: c@evil.example\r\n"
                    "Resent-From: d@evil.example\r\n"
                    "FROM : e@two.example\r\n"
                    "\r\n"
                    "From: f@body.example\r\n";
    CHECK_EQ_INT(dmarc_from_parse_header(&f, h, strlen(h)), 0);
    CHECK_EQ_INT(f.nfields, 2);
    CHECK_EQ_INT(f.ndomains, 2);
    CHECK_EQ_STR(f.domains[0], "one.example");
    CHECK_EQ_STR(f.domains[1], "two.example");

    const char *lf = "Subject: x\nFrom: a@one.example\n\tb@x\n\n";
    CHECK_EQ_INT(dmarc_from_parse_header(&f, lf, strlen(lf)), -EINVAL);
    CHECK_EQ_INT(f.status, DMARC_FROM_SYNTAX); /* the fold joined "a@one.example b@x" */

    const char *none = "Subject: x\r\nTo: a@b.example\r\n\r\n";
    CHECK_EQ_INT(dmarc_from_parse_header(&f, none, strlen(none)), -EINVAL);
    CHECK_EQ_INT(f.status, DMARC_FROM_ABSENT);

    /* A line that is no field ends the header (as hdrscan decides). */
    const char *nosep = "Subject: x\r\nthis is body\r\nFrom: a@one.example\r\n";
    CHECK_EQ_INT(dmarc_from_parse_header(&f, nosep, strlen(nosep)), -EINVAL);
    CHECK_EQ_INT(f.status, DMARC_FROM_ABSENT);

    /* No final line end; a leading continuation line is skipped. */
    const char *tail = " junk\r\nFrom: a@one.example";
    CHECK_EQ_INT(dmarc_from_parse_header(&f, tail, strlen(tail)), 0);
    CHECK_EQ_STR(f.domains[0], "one.example");

    CHECK_EQ_INT(dmarc_from_parse_header(&f, "", 0), -EINVAL);
    CHECK_EQ_INT(f.status, DMARC_FROM_ABSENT);
}

int main(void)
{
    test_forms();
    test_several();
    test_syntax();
    test_nodomain();
    test_fields();
    test_header();
    return check_result("test_dmarc_from");
}
