/* Unit tests for smtp/smtp_parse: line framing, verbs, MAIL/RCPT with
 * ESMTP parameters, BDAT and EHLO/HELO arguments. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "smtp/smtp_parse.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_line_take(void)
{
    size_t ll = 99, used = 99;
    CHECK_EQ_INT(smtp_line_take(S("NOOP\r\n"), 512, 0, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 4);
    CHECK_EQ_INT(used, 6);
    /* A bare LF ends a command line too. */
    CHECK_EQ_INT(smtp_line_take(S("NOOP\nQUIT\r\n"), 512, 0, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 4);
    CHECK_EQ_INT(used, 5);
    /* Only the first line is taken. */
    CHECK_EQ_INT(smtp_line_take(S("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"), 512, 0, &ll, &used),
                 SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 15);
    CHECK_EQ_INT(used, 17);
    CHECK_EQ_INT(smtp_line_take(S("\r\n"), 512, 0, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 0);
    CHECK_EQ_INT(used, 2);
    /* A CR alone does not end a line; a CR not right before LF stays. */
    CHECK_EQ_INT(smtp_line_take(S("NOOP\r"), 512, 0, &ll, &used), SMTP_LINE_AGAIN);
    CHECK_EQ_INT(smtp_line_take(S("NO\rOP\n"), 512, 0, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 5);
    CHECK_EQ_INT(smtp_line_take(S("NOOP"), 512, 0, &ll, &used), SMTP_LINE_AGAIN);
    CHECK_EQ_INT(smtp_line_take("", 0, 512, 0, &ll, &used), SMTP_LINE_AGAIN);

    /* The limit counts the line with its CRLF (RFC 5321 §4.5.3.1.4). */
    char line[600];
    memset(line, 'x', sizeof line);
    memcpy(line + 510, "\r\n", 2); /* 512 with CRLF */
    CHECK_EQ_INT(smtp_line_take(line, 512, 512, 0, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 510);
    CHECK_EQ_INT(used, 512);
    memset(line, 'x', sizeof line);
    memcpy(line + 511, "\r\n", 2); /* 513 */
    CHECK_EQ_INT(smtp_line_take(line, 513, 512, 0, &ll, &used), SMTP_LINE_TOOLONG);
    memset(line, 'x', sizeof line);
    line[511] = '\n'; /* 511 + bare LF: counted as 511 + CRLF = 513 */
    CHECK_EQ_INT(smtp_line_take(line, 512, 512, 0, &ll, &used), SMTP_LINE_TOOLONG);
    line[510] = '\n';
    CHECK_EQ_INT(smtp_line_take(line, 511, 512, 0, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 510);
    /* No LF in the first 512 octets: too long, whatever comes later. */
    memset(line, 'x', sizeof line);
    CHECK_EQ_INT(smtp_line_take(line, 511, 512, 0, &ll, &used), SMTP_LINE_AGAIN);
    CHECK_EQ_INT(smtp_line_take(line, 512, 512, 0, &ll, &used), SMTP_LINE_TOOLONG);
    CHECK_EQ_INT(smtp_line_take(line, 600, 512, 0, &ll, &used), SMTP_LINE_TOOLONG);
    line[511] = '\r';
    CHECK_EQ_INT(smtp_line_take(line, 512, 512, 0, &ll, &used), SMTP_LINE_TOOLONG);
    /* max 0: no limit. */
    line[599] = '\n';
    CHECK_EQ_INT(smtp_line_take(line, 600, 0, 0, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(used, 600);
}

static void test_line_skip(void)
{
    int done = 7;
    CHECK_EQ_INT(smtp_line_skip(S("xxxx"), 0, &done), 4);
    CHECK_EQ_INT(done, 0);
    CHECK_EQ_INT(smtp_line_skip(S("xx\r\nNOOP\r\n"), 0, &done), 4);
    CHECK_EQ_INT(done, 1);
    CHECK_EQ_INT(smtp_line_skip(S("\nNOOP"), 0, &done), 1);
    CHECK_EQ_INT(done, 1);
    CHECK_EQ_INT(smtp_line_skip("", 0, 0, &done), 0);
    CHECK_EQ_INT(done, 0);
}

/* bare_lf = reject: a line ends at CRLF only; one with a bare LF before
 * its CRLF is reported whole, never split into two commands. */
static void test_line_take_crlf_only(void)
{
    const unsigned f = SMTP_LINE_CRLF_ONLY;
    size_t ll = 99, used = 99;
    CHECK_EQ_INT(smtp_line_take(S("NOOP\r\n"), 512, f, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 4);
    CHECK_EQ_INT(used, 6);
    CHECK_EQ_INT(smtp_line_take(S("EHLO x\nX-Injected: 1\r\nNOOP\r\n"), 512, f, &ll, &used),
                 SMTP_LINE_BARE_LF);
    CHECK_EQ_INT(ll, 20);
    CHECK_EQ_INT(used, 22);
    CHECK_EQ_INT(smtp_line_take(S("NOOP\n\r\n"), 512, f, &ll, &used), SMTP_LINE_BARE_LF);
    CHECK_EQ_INT(used, 7);
    CHECK_EQ_INT(smtp_line_take(S("\n\r\n"), 512, f, &ll, &used), SMTP_LINE_BARE_LF);
    CHECK_EQ_INT(used, 3);
    /* No CRLF yet: wait, whatever bare LFs came. */
    CHECK_EQ_INT(smtp_line_take(S("NOOP\n"), 512, f, &ll, &used), SMTP_LINE_AGAIN);
    CHECK_EQ_INT(smtp_line_take(S("NOOP\nQUIT\n\r"), 512, f, &ll, &used), SMTP_LINE_AGAIN);
    /* A bare CR stays in the line (smtp_cmd_split refuses it). */
    CHECK_EQ_INT(smtp_line_take(S("NO\rOP\r\n"), 512, f, &ll, &used), SMTP_LINE_OK);
    CHECK_EQ_INT(ll, 5);
    /* The limit counts up to the CRLF, bare LFs and all. */
    char line[600];
    memset(line, 'x', sizeof line);
    line[100] = '\n';
    memcpy(line + 510, "\r\n", 2);
    CHECK_EQ_INT(smtp_line_take(line, 512, 512, f, &ll, &used), SMTP_LINE_BARE_LF);
    memcpy(line + 510, "x\r\n", 3);
    CHECK_EQ_INT(smtp_line_take(line, 513, 512, f, &ll, &used), SMTP_LINE_TOOLONG);
    line[100] = 'x';
    memset(line + 300, '\n', 250); /* only bare LFs up to octet 600 */
    CHECK_EQ_INT(smtp_line_take(line, 600, 512, f, &ll, &used), SMTP_LINE_TOOLONG);
}

static void test_line_skip_crlf_only(void)
{
    static const struct {
        const char *in;
        size_t used;
        int done;
    } cases[] = {
        {"xx\nNOOP\r\nQUIT\r\n", 9, 1},
        {"xx\nNOOP", 7, 0},
        /* A CR at the end may begin the CRLF: kept for the next call. */
        {"xxxx\r", 4, 0},
        {"\r", 0, 0},
        {"\r\nNOOP", 2, 1},
        {"\nNOOP\r\n", 7, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int done = 7;
        size_t used = smtp_line_skip(cases[i].in, strlen(cases[i].in), SMTP_LINE_CRLF_ONLY, &done);
        CHECK_EQ_INT(used, cases[i].used);
        CHECK_EQ_INT(done, cases[i].done);
    }
}

static void split_ok(const char *line, enum smtp_verb verb, const char *arg)
{
    struct smtp_cmd c;
    int rc = smtp_cmd_split(line, strlen(line), &c);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(c.verb, verb);
    CHECK_EQ_MEM(c.arg, c.arglen, arg, strlen(arg));
}

static void test_split(void)
{
    split_ok("NOOP", SMTP_VERB_NOOP, "");
    split_ok("noop", SMTP_VERB_NOOP, "");
    split_ok("NoOp", SMTP_VERB_NOOP, "");
    split_ok("EHLO client.example", SMTP_VERB_EHLO, "client.example");
    split_ok("helo x", SMTP_VERB_HELO, "x");
    split_ok("MAIL FROM:<a@b> SIZE=10", SMTP_VERB_MAIL, "FROM:<a@b> SIZE=10");
    split_ok("rcpt to:<a@b>", SMTP_VERB_RCPT, "to:<a@b>");
    split_ok("DATA", SMTP_VERB_DATA, "");
    split_ok("BDAT 100 LAST", SMTP_VERB_BDAT, "100 LAST");
    split_ok("RSET", SMTP_VERB_RSET, "");
    split_ok("QUIT", SMTP_VERB_QUIT, "");
    split_ok("VRFY root", SMTP_VERB_VRFY, "root");
    split_ok("EXPN list", SMTP_VERB_EXPN, "list");
    split_ok("HELP", SMTP_VERB_HELP, "");
    split_ok("STARTTLS", SMTP_VERB_STARTTLS, "");
    split_ok("AUTH PLAIN AGJvYgBwdw==", SMTP_VERB_AUTH, "PLAIN AGJvYgBwdw==");
    /* Spaces after the verb are skipped, trailing spaces cut. */
    split_ok("MAIL   FROM:<a@b>  ", SMTP_VERB_MAIL, "FROM:<a@b>");
    split_ok("RSET ", SMTP_VERB_RSET, "");
    split_ok("RSET    ", SMTP_VERB_RSET, "");
    /* A verb must be followed by a space or the end. */
    split_ok("NOOPX", SMTP_VERB_UNKNOWN, "");
    split_ok("MAIL:FROM:<a@b>", SMTP_VERB_UNKNOWN, "");
    split_ok("MAI", SMTP_VERB_UNKNOWN, "");
    split_ok("", SMTP_VERB_UNKNOWN, "");
    split_ok(" NOOP", SMTP_VERB_UNKNOWN, "");
    split_ok("FOO bar", SMTP_VERB_UNKNOWN, "");
    split_ok("N\xc3\x96OP", SMTP_VERB_UNKNOWN, "");
    /* 8-bit octets are allowed in arguments (SMTPUTF8). */
    split_ok("MAIL FROM:<\xc3\xbc@x>", SMTP_VERB_MAIL, "FROM:<\xc3\xbc@x>");
    /* Controls: refused, whatever the verb. */
    struct smtp_cmd c;
    CHECK_EQ_INT(smtp_cmd_split(S("NOOP\0"), &c), -EINVAL);
    CHECK_EQ_INT(smtp_cmd_split(S("NO\0OP"), &c), -EINVAL);
    CHECK_EQ_INT(smtp_cmd_split(S("MAIL FROM:<a@b>\r"), &c), -EINVAL);
    CHECK_EQ_INT(smtp_cmd_split(S("RCPT TO:<a@b>\rDATA"), &c), -EINVAL);
    CHECK_EQ_INT(smtp_cmd_split(S("NOOP\tx"), &c), -EINVAL);
    CHECK_EQ_INT(smtp_cmd_split(S("FOO\x1b"), &c), -EINVAL);
    CHECK_EQ_INT(smtp_cmd_split(S("NOOP \x7f"), &c), -EINVAL);
    /* Bounded by len. */
    CHECK_EQ_INT(smtp_cmd_split("NOOP x", 4, &c), 0);
    CHECK_EQ_INT(c.verb, SMTP_VERB_NOOP);
    CHECK_EQ_INT(c.arglen, 0);
}

static void test_verb_name(void)
{
    CHECK_EQ_STR(smtp_verb_name(SMTP_VERB_EHLO), "ehlo");
    CHECK_EQ_STR(smtp_verb_name(SMTP_VERB_STARTTLS), "starttls");
    CHECK_EQ_STR(smtp_verb_name(SMTP_VERB_AUTH), "auth");
    CHECK_EQ_STR(smtp_verb_name(SMTP_VERB_UNKNOWN), "unknown");
    CHECK_EQ_STR(smtp_verb_name(SMTP_VERB_COUNT), "unknown");
    CHECK_EQ_STR(smtp_verb_name((enum smtp_verb)-1), "unknown");
}

static int mr(const char *arg, int is_rcpt, unsigned flags, struct mailaddr *p,
              struct smtp_params *ps)
{
    return smtp_parse_mail_rcpt(arg, strlen(arg), is_rcpt, flags, p, ps);
}

static void test_mail_rcpt(void)
{
    struct mailaddr p;
    struct smtp_params ps;
    const unsigned M = MAILADDR_ALLOW_NULL, R = MAILADDR_ALLOW_POSTMASTER;

    CHECK_EQ_INT(mr("FROM:<alice@example.org>", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_STR(p.text, "alice@example.org");
    CHECK_EQ_INT(ps.n, 0);
    CHECK_EQ_INT(mr("from:<>", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(p.flags, MAILADDR_F_NULL);
    CHECK_EQ_STR(p.text, "");
    CHECK_EQ_INT(mr("To:<postmaster>", 1, R, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(p.flags, MAILADDR_F_POSTMASTER);
    CHECK_EQ_INT(mr("TO:<>", 1, R, &p, &ps), SMTP_PATH_ESYNTAX);
    CHECK_EQ_INT(mr("FROM:<postmaster>", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    /* One space after the colon is tolerated, not two. */
    CHECK_EQ_INT(mr("FROM: <a@b>", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_STR(p.text, "a@b");
    CHECK_EQ_INT(mr("FROM:  <a@b>", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    /* The keyword. */
    CHECK_EQ_INT(mr("TO:<a@b>", 0, M, &p, &ps), SMTP_PATH_EPREFIX);
    CHECK_EQ_INT(mr("FROM:<a@b>", 1, R, &p, &ps), SMTP_PATH_EPREFIX);
    CHECK_EQ_INT(mr("FROM <a@b>", 0, M, &p, &ps), SMTP_PATH_EPREFIX);
    CHECK_EQ_INT(mr("FRO", 0, M, &p, &ps), SMTP_PATH_EPREFIX);
    CHECK_EQ_INT(mr("", 1, R, &p, &ps), SMTP_PATH_EPREFIX);
    /* The path. */
    CHECK_EQ_INT(mr("FROM:a@b", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    CHECK_EQ_INT(mr("FROM:", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    CHECK_EQ_INT(mr("FROM:<a@b>x", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    CHECK_EQ_INT(mr("FROM:<a@b>>", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    CHECK_EQ_INT(mr("TO:<a..b@c>", 1, R, &p, &ps), SMTP_PATH_ESYNTAX);
    char longp[400] = "TO:<";
    memset(longp + 4, 'a', 70);
    strcpy(longp + 74, "@b>");
    CHECK_EQ_INT(mr(longp, 1, R, &p, &ps), SMTP_PATH_ETOOLONG);
    /* Source routes are accepted and dropped. */
    CHECK_EQ_INT(mr("TO:<@relay.example:u@d.example>", 1, R, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_STR(p.text, "u@d.example");
}

static void test_params(void)
{
    struct mailaddr p;
    struct smtp_params ps;
    const unsigned M = MAILADDR_ALLOW_NULL;

    CHECK_EQ_INT(mr("FROM:<a@b> SIZE=1000 body=8BITMIME smtputf8", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(ps.n, 3);
    CHECK_EQ_STR(ps.p[0].key, "SIZE");
    CHECK_EQ_STR(ps.p[0].value, "1000");
    CHECK_EQ_INT(ps.p[0].has_value, 1);
    CHECK_EQ_STR(ps.p[1].key, "BODY"); /* uppercased keyword */
    CHECK_EQ_STR(ps.p[1].value, "8BITMIME");
    CHECK_EQ_STR(ps.p[2].key, "SMTPUTF8");
    CHECK_EQ_STR(ps.p[2].value, "");
    CHECK_EQ_INT(ps.p[2].has_value, 0);
    CHECK(smtp_params_get(&ps, "BODY") == &ps.p[1]);
    CHECK(smtp_params_get(&ps, "body") == &ps.p[1]);
    CHECK(smtp_params_get(&ps, "RET") == NULL);
    /* Extra spaces between parameters are tolerated. */
    CHECK_EQ_INT(mr("FROM:<a@b>  SIZE=1   RET=HDRS", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(ps.n, 2);
    CHECK_EQ_STR(ps.p[1].value, "HDRS");
    /* Values: %d33-60 / %d62-126, at least one octet. */
    CHECK_EQ_INT(mr("FROM:<a@b> ENVID=a+2Bb!~<>", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_STR(ps.p[0].value, "a+2Bb!~<>");
    CHECK_EQ_INT(mr("FROM:<a@b> X-Y-1=z", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_STR(ps.p[0].key, "X-Y-1");
    CHECK_EQ_INT(mr("FROM:<a@b> SIZE=", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> SIZE==1", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> SIZE=1=2", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> =1", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> -X=1", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> X_Y=1", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> X.Y", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    /* Duplicate keywords, in any case. */
    CHECK_EQ_INT(mr("FROM:<a@b> SIZE=1 SIZE=1", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> BODY=7BIT body=8BITMIME", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    /* Key and value sizes. */
    char buf[1200];
    strcpy(buf, "FROM:<a@b> ");
    memset(buf + 11, 'K', 31);
    buf[42] = '\0';
    CHECK_EQ_INT(mr(buf, 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(strlen(ps.p[0].key), 31);
    memset(buf + 11, 'K', 32);
    buf[43] = '\0';
    CHECK_EQ_INT(mr(buf, 0, M, &p, &ps), SMTP_PATH_EPARAM);
    strcpy(buf, "FROM:<a@b> V=");
    memset(buf + 13, 'v', 511);
    buf[13 + 511] = '\0';
    CHECK_EQ_INT(mr(buf, 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(strlen(ps.p[0].value), 511);
    memset(buf + 13, 'v', 512);
    buf[13 + 512] = '\0';
    CHECK_EQ_INT(mr(buf, 0, M, &p, &ps), SMTP_PATH_EPARAM);
    /* At most SMTP_PARAMS_MAX parameters. */
    strcpy(buf, "FROM:<a@b>");
    for (int i = 0; i < SMTP_PARAMS_MAX; i++)
        sprintf(buf + strlen(buf), " P%d=x", i);
    CHECK_EQ_INT(mr(buf, 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(ps.n, SMTP_PARAMS_MAX);
    strcat(buf, " ONE=more");
    CHECK_EQ_INT(mr(buf, 0, M, &p, &ps), SMTP_PATH_EPARAM);
}

static void test_utf8(void)
{
    struct mailaddr p;
    struct smtp_params ps;
    const unsigned M = MAILADDR_ALLOW_NULL;

    /* RFC 6531: a non-ASCII address needs SMTPUTF8, on this MAIL or before. */
    CHECK_EQ_INT(mr("FROM:<\xc3\xbc@x.org>", 0, M, &p, &ps), SMTP_PATH_EUTF8);
    CHECK_EQ_INT(mr("FROM:<\xc3\xbc@x.org> SMTPUTF8", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_STR(p.text, "\xc3\xbc@x.org");
    CHECK_EQ_INT(p.flags, MAILADDR_F_UTF8);
    CHECK_EQ_INT(mr("FROM:<\xc3\xbc@x.org> smtputf8 BODY=8BITMIME", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(mr("TO:<\xc3\xbc@x.org>", 1, MAILADDR_ALLOW_UTF8, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_INT(mr("TO:<\xc3\xbc@x.org>", 1, 0, &p, &ps), SMTP_PATH_EUTF8);
    /* Malformed UTF-8 is a syntax error whatever the parameters. */
    CHECK_EQ_INT(mr("FROM:<\xc3@x.org> SMTPUTF8", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    CHECK_EQ_INT(mr("FROM:<\xff@x.org>", 0, M, &p, &ps), SMTP_PATH_ESYNTAX);
    /* UTF-8 in values only with SMTPUTF8, and well-formed. */
    CHECK_EQ_INT(mr("FROM:<a@b> ENVID=\xc3\xa9", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> ENVID=\xc3\xa9 SMTPUTF8", 0, M, &p, &ps), SMTP_PATH_OK);
    CHECK_EQ_STR(ps.p[0].value, "\xc3\xa9");
    CHECK_EQ_INT(mr("FROM:<a@b> SMTPUTF8 ENVID=\xc3", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    CHECK_EQ_INT(mr("FROM:<a@b> SMTPUTF8 ENVID=\xed\xa0\x80", 0, M, &p, &ps), SMTP_PATH_EPARAM);
    /* No 8-bit octets in keywords. */
    CHECK_EQ_INT(mr("FROM:<a@b> SMTPUTF8 \xc3\xa9=1", 0, M, &p, &ps), SMTP_PATH_EPARAM);
}

static void test_bdat(void)
{
    uint64_t size = 7;
    int last = 7;
    CHECK_EQ_INT(smtp_parse_bdat(S("100"), &size, &last), 0);
    CHECK_EQ_INT(size, 100);
    CHECK_EQ_INT(last, 0);
    CHECK_EQ_INT(smtp_parse_bdat(S("0 LAST"), &size, &last), 0);
    CHECK_EQ_INT(size, 0);
    CHECK_EQ_INT(last, 1);
    CHECK_EQ_INT(smtp_parse_bdat(S("42 last"), &size, &last), 0);
    CHECK_EQ_INT(size, 42);
    CHECK_EQ_INT(last, 1);
    CHECK_EQ_INT(smtp_parse_bdat(S("42  LaSt"), &size, &last), 0);
    CHECK_EQ_INT(last, 1);
    CHECK_EQ_INT(smtp_parse_bdat(S("18446744073709551615"), &size, &last), 0);
    CHECK(size == UINT64_MAX);
    CHECK_EQ_INT(smtp_parse_bdat(S("00000000000000000007"), &size, &last), 0);
    CHECK_EQ_INT(size, 7);
    size = 5;
    last = 5;
    CHECK_EQ_INT(smtp_parse_bdat(S("18446744073709551616"), &size, &last), -EINVAL); /* 2^64 */
    CHECK_EQ_INT(smtp_parse_bdat(S("99999999999999999999"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("000000000000000000007"), &size, &last), -EINVAL); /* 21 digits */
    CHECK_EQ_INT(size, 5); /* untouched on failure */
    CHECK_EQ_INT(last, 5);
    CHECK_EQ_INT(smtp_parse_bdat("", 0, &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("x"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("-1"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("+1"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("1x"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("0x10"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("LAST"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("1 LASTX"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("1 LAS"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("1 LAST x"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("1 "), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S(" 1"), &size, &last), -EINVAL);
    CHECK_EQ_INT(smtp_parse_bdat(S("1 2"), &size, &last), -EINVAL);
}

static void test_helo(void)
{
    size_t n = 99;
    CHECK_EQ_INT(smtp_parse_helo(S("mail.example.org"), &n), 0);
    CHECK_EQ_INT(n, 16);
    CHECK_EQ_INT(smtp_parse_helo(S("[192.0.2.1]"), &n), 0);
    CHECK_EQ_INT(n, 11);
    CHECK_EQ_INT(smtp_parse_helo(S("[IPv6:2001:db8::1]"), &n), 0);
    CHECK_EQ_INT(n, 18);
    /* Tolerated as deployed servers do: bare names, underscores, odd
     * literals, words after the name. */
    CHECK_EQ_INT(smtp_parse_helo(S("DESKTOP_42"), &n), 0);
    CHECK_EQ_INT(n, 10);
    CHECK_EQ_INT(smtp_parse_helo(S("[10.0.0.1"), &n), 0);
    CHECK_EQ_INT(smtp_parse_helo(S("host.example extra words"), &n), 0);
    CHECK_EQ_INT(n, 12);
    CHECK_EQ_INT(smtp_parse_helo(S("h\xc3\xb6st"), &n), 0);
    CHECK_EQ_INT(n, 5);
    /* Refused: empty, leading space, controls anywhere. */
    n = 99;
    CHECK_EQ_INT(smtp_parse_helo("", 0, &n), -EINVAL);
    CHECK_EQ_INT(smtp_parse_helo(S(" host"), &n), -EINVAL);
    CHECK_EQ_INT(smtp_parse_helo(S("ho\0st"), &n), -EINVAL);
    CHECK_EQ_INT(smtp_parse_helo(S("host\r"), &n), -EINVAL);
    CHECK_EQ_INT(smtp_parse_helo(S("host x\ty"), &n), -EINVAL);
    CHECK_EQ_INT(smtp_parse_helo(S("\x1b[31m"), &n), -EINVAL);
    CHECK_EQ_INT(n, 99);
}

int main(void)
{
    test_line_take();
    test_line_skip();
    test_line_take_crlf_only();
    test_line_skip_crlf_only();
    test_split();
    test_verb_name();
    test_mail_rcpt();
    test_params();
    test_utf8();
    test_bdat();
    test_helo();
    return check_result("test_smtp_parse");
}
