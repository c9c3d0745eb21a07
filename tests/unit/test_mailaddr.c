/* Unit tests for mail/mailaddr: RFC 5321 §4.1.2 paths, §4.5.3.1 limits,
 * RFC 6531 UTF-8. */
#include <string.h>

#include "check.h"
#include "mail/mailaddr.h"

/* Parses a NUL-terminated path; returns the status, fills *a and *used. */
static int parse(const char *s, unsigned flags, struct mailaddr *a, size_t *used)
{
    *used = 0;
    return mailaddr_parse_path(s, strlen(s), flags, a, used);
}

/* Expects success with the given parts. */
static void ok_path(const char *s, unsigned flags, const char *local, const char *domain,
                    const char *text, unsigned rflags)
{
    struct mailaddr a;
    size_t used;
    int rc = parse(s, flags, &a, &used);
    CHECK_EQ_INT(rc, MAILADDR_OK);
    if (rc != MAILADDR_OK) {
        fprintf(stderr, "  input: %s\n", s);
        return;
    }
    CHECK_EQ_STR(a.local, local);
    CHECK_EQ_STR(a.domain, domain);
    CHECK_EQ_STR(a.text, text);
    CHECK_EQ_INT(a.flags, rflags);
    CHECK_EQ_INT(used, strlen(s));
}

static void bad_path(const char *s, unsigned flags, int want)
{
    struct mailaddr a;
    size_t used;
    int rc = parse(s, flags, &a, &used);
    CHECK_EQ_INT(rc, want);
    if (rc != want)
        fprintf(stderr, "  input: %s\n", s);
    /* A failed parse leaves nothing behind that looks like an address. */
    CHECK_EQ_STR(a.text, "");
}

static void test_basic(void)
{
    ok_path("<user@example.org>", 0, "user", "example.org", "user@example.org", 0);
    ok_path("<a.b.c@x>", 0, "a.b.c", "x", "a.b.c@x", 0);
    ok_path("<!#$%&'*+-/=?^_`{|}~@a-b.c0>", 0, "!#$%&'*+-/=?^_`{|}~", "a-b.c0",
            "!#$%&'*+-/=?^_`{|}~@a-b.c0", 0);
    /* The domain is kept as written; comparison ignores case. */
    ok_path("<User@Example.ORG>", 0, "User", "Example.ORG", "User@Example.ORG", 0);
    CHECK(mailaddr_domain_eq("Example.ORG", "example.org"));
    CHECK(!mailaddr_domain_eq("example.org", "example.org."));
    CHECK(!mailaddr_domain_eq("example.org", "example.or"));
    /* Numeric labels and single labels are domains. */
    ok_path("<x@123.example>", 0, "x", "123.example", "x@123.example", 0);
    ok_path("<x@localhost>", 0, "x", "localhost", "x@localhost", 0);
}

static void test_consumed(void)
{
    struct mailaddr a;
    size_t used;
    const char *s = "<a@b.c> SIZE=10";
    CHECK_EQ_INT(mailaddr_parse_path(s, strlen(s), 0, &a, &used), MAILADDR_OK);
    CHECK_EQ_INT(used, 7);
    /* Never reads past len: the '>' is outside the view. */
    CHECK_EQ_INT(mailaddr_parse_path("<a@b.c>", 6, 0, &a, &used), MAILADDR_ESYNTAX);
    CHECK_EQ_INT(mailaddr_parse_path("<", 1, 0, &a, &used), MAILADDR_ESYNTAX);
    CHECK_EQ_INT(mailaddr_parse_path("", 0, MAILADDR_ALLOW_NULL, &a, &used), MAILADDR_ESYNTAX);
    CHECK_EQ_INT(mailaddr_parse_path("<>", 1, MAILADDR_ALLOW_NULL, &a, &used), MAILADDR_ESYNTAX);
}

static void test_syntax_errors(void)
{
    bad_path("user@example.org", 0, MAILADDR_ESYNTAX); /* no brackets */
    bad_path("<user@example.org", 0, MAILADDR_ESYNTAX);
    bad_path("<user>", 0, MAILADDR_ESYNTAX);
    bad_path("<@example.org>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@>", 0, MAILADDR_ESYNTAX);
    bad_path("<.user@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<user.@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<us..er@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<us er@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<us(er@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<a@b@c>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@-x.org>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@x-.org>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@x..org>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@.x.org>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@x.org.>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@x_y.org>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@x.org >", 0, MAILADDR_ESYNTAX);
    bad_path("< user@x.org>", 0, MAILADDR_ESYNTAX);
    bad_path("<user@x.org\r\n>", 0, MAILADDR_ESYNTAX);
    struct mailaddr a;
    size_t used;
    CHECK_EQ_INT(mailaddr_parse_path("<us\0er@x>", 9, 0, &a, &used), MAILADDR_ESYNTAX);
    CHECK_EQ_INT(mailaddr_parse_path("<user@x\0>", 9, 0, &a, &used), MAILADDR_ESYNTAX);
}

static void test_null_and_postmaster(void)
{
    ok_path("<>", MAILADDR_ALLOW_NULL, "", "", "", MAILADDR_F_NULL);
    bad_path("<>", 0, MAILADDR_ESYNTAX);
    bad_path("<>", MAILADDR_ALLOW_POSTMASTER, MAILADDR_ESYNTAX);
    ok_path("<postmaster>", MAILADDR_ALLOW_POSTMASTER, "postmaster", "", "postmaster",
            MAILADDR_F_POSTMASTER);
    ok_path("<PostMaster>", MAILADDR_ALLOW_POSTMASTER, "postmaster", "", "postmaster",
            MAILADDR_F_POSTMASTER);
    bad_path("<postmaster>", 0, MAILADDR_ESYNTAX);
    bad_path("<postmaster>", MAILADDR_ALLOW_NULL, MAILADDR_ESYNTAX);
    bad_path("<postmasters>", MAILADDR_ALLOW_POSTMASTER, MAILADDR_ESYNTAX);
    /* With a domain it is an ordinary mailbox. */
    ok_path("<Postmaster@x.org>", 0, "Postmaster", "x.org", "Postmaster@x.org", 0);
    struct mailaddr a;
    size_t used;
    CHECK_EQ_INT(mailaddr_parse_path("<> x", 4, MAILADDR_ALLOW_NULL, &a, &used), MAILADDR_OK);
    CHECK_EQ_INT(used, 2);
    CHECK_EQ_INT(mailaddr_parse_path("<postmaster> x", 14, MAILADDR_ALLOW_POSTMASTER, &a, &used),
                 MAILADDR_OK);
    CHECK_EQ_INT(used, 12);
}

static void test_quoted(void)
{
    /* A quoted local part that is a valid Dot-string is written unquoted. */
    ok_path("<\"john\"@x.org>", 0, "john", "x.org", "john@x.org", MAILADDR_F_QUOTED);
    ok_path("<\"a b\"@x.org>", 0, "a b", "x.org", "\"a b\"@x.org", MAILADDR_F_QUOTED);
    ok_path("<\"a..b\"@x>", 0, "a..b", "x", "\"a..b\"@x", MAILADDR_F_QUOTED);
    ok_path("<\".a\"@x>", 0, ".a", "x", "\".a\"@x", MAILADDR_F_QUOTED);
    /* Quoted-pairs are resolved; '"' and '\\' are escaped again in text. */
    ok_path("<\"a\\\"b\"@x>", 0, "a\"b", "x", "\"a\\\"b\"@x", MAILADDR_F_QUOTED);
    ok_path("<\"a\\\\b\"@x>", 0, "a\\b", "x", "\"a\\\\b\"@x", MAILADDR_F_QUOTED);
    ok_path("<\"\\a\\b\"@x>", 0, "ab", "x", "ab@x", MAILADDR_F_QUOTED);
    ok_path("<\"a@b<c>\"@x>", 0, "a@b<c>", "x", "\"a@b<c>\"@x", MAILADDR_F_QUOTED);
    ok_path("<\"\"@x>", 0, "", "x", "\"\"@x", MAILADDR_F_QUOTED);
    bad_path("<\"abc@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<\"a\"b@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<\"a\\\"@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<\"a\tb\"@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<\"a\\\tb\"@x>", 0, MAILADDR_ESYNTAX);
    bad_path("<\"a\rb\"@x>", 0, MAILADDR_ESYNTAX);
}

static void test_literals(void)
{
    ok_path("<u@[192.0.2.1]>", 0, "u", "[192.0.2.1]", "u@[192.0.2.1]", MAILADDR_F_LITERAL);
    ok_path("<u@[0.0.0.0]>", 0, "u", "[0.0.0.0]", "u@[0.0.0.0]", MAILADDR_F_LITERAL);
    ok_path("<u@[255.255.255.255]>", 0, "u", "[255.255.255.255]", "u@[255.255.255.255]",
            MAILADDR_F_LITERAL);
    bad_path("<u@[256.0.0.1]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[1.2.3]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[1.2.3.4.5]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[1.2.3.]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[01.2.3.4]>", 0, MAILADDR_ESYNTAX); /* octal to some readers */
    bad_path("<u@[1234.2.3.4]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[1.2.3.4>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[1.2.3.4]x>", 0, MAILADDR_ESYNTAX);
    ok_path("<u@[IPv6:2001:db8::1]>", 0, "u", "[IPv6:2001:db8::1]", "u@[IPv6:2001:db8::1]",
            MAILADDR_F_LITERAL);
    ok_path("<u@[ipv6:::1]>", 0, "u", "[ipv6:::1]", "u@[ipv6:::1]", MAILADDR_F_LITERAL);
    ok_path("<u@[IPv6:1:2:3:4:5:6:7:8]>", 0, "u", "[IPv6:1:2:3:4:5:6:7:8]",
            "u@[IPv6:1:2:3:4:5:6:7:8]", MAILADDR_F_LITERAL);
    ok_path("<u@[IPv6:::ffff:192.0.2.1]>", 0, "u", "[IPv6:::ffff:192.0.2.1]",
            "u@[IPv6:::ffff:192.0.2.1]", MAILADDR_F_LITERAL);
    bad_path("<u@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[IPv6:2001:db8::1::2]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[IPv6:12345::1]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[IPv6:]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[IPv6:g::1]>", 0, MAILADDR_ESYNTAX);
    bad_path("<u@[2001:db8::1]>", 0, MAILADDR_ESYNTAX); /* the tag is required */
    bad_path("<u@[x-tag:content]>", 0, MAILADDR_ESYNTAX); /* general literal refused */
    bad_path("<u@[1.2.3.4 ]>", 0, MAILADDR_ESYNTAX);
}

static void test_route(void)
{
    ok_path("<@a.b,@c.d:user@e.f>", 0, "user", "e.f", "user@e.f", 0);
    ok_path("<@a:user@e.f>", 0, "user", "e.f", "user@e.f", 0);
    bad_path("<@a.b,c.d:user@e.f>", 0, MAILADDR_ESYNTAX);
    bad_path("<@a.b:>", 0, MAILADDR_ESYNTAX);
    bad_path("<@a.b user@e.f>", 0, MAILADDR_ESYNTAX);
    bad_path("<@-a:user@e.f>", 0, MAILADDR_ESYNTAX);
    bad_path("<@:user@e.f>", 0, MAILADDR_ESYNTAX);
    bad_path("<@a.b,:user@e.f>", 0, MAILADDR_ESYNTAX);
}

/* Builds a string of n copies of c. */
static void fill(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
}

/* A valid domain of exactly n octets: labels of 50 octets and dots. */
static void make_domain(char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (i % 51 == 50 && i + 1 < n) ? '.' : 'd';
    dst[n] = '\0';
}

static void test_lengths(void)
{
    char local[200], path[700], label[100], dom[400];
    struct mailaddr a;
    size_t used;

    /* Local part: 64 octets pass, 65 do not (§4.5.3.1.1). */
    fill(local, 'l', 64);
    snprintf(path, sizeof path, "<%s@x.org>", local);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_OK);
    CHECK_EQ_INT(strlen(a.local), 64);
    fill(local, 'l', 65);
    snprintf(path, sizeof path, "<%s@x.org>", local);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ETOOLONG);
    /* Quoted: counted as written, quotes included. */
    fill(local, 'q', 62);
    snprintf(path, sizeof path, "<\"%s\"@x.org>", local);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_OK);
    fill(local, 'q', 63);
    snprintf(path, sizeof path, "<\"%s\"@x.org>", local);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ETOOLONG);
    /* A long run with no end at all is still only "too long". */
    fill(path + 1, 'z', 600);
    path[0] = '<';
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ETOOLONG);

    /* Label: 63 octets pass, 64 do not (RFC 1035). */
    fill(label, 'd', 63);
    snprintf(path, sizeof path, "<u@%s.org>", label);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_OK);
    fill(label, 'd', 64);
    snprintf(path, sizeof path, "<u@%s.org>", label);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ESYNTAX);

    /* Domain of 255 octets: the domain fits, but with "<u@" ">" the path
     * is 259 > 256. The largest mailbox is 254 octets. */
    make_domain(dom, 255);
    snprintf(path, sizeof path, "<u@%s>", dom);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ETOOLONG);
    CHECK_EQ_INT(mailaddr_parse_mailbox(path + 1, strlen(path) - 2, 0, &a), MAILADDR_ETOOLONG);
    /* 256-octet domain: too long as a domain. */
    make_domain(dom, 256);
    snprintf(path, sizeof path, "<u@%s>", dom);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ETOOLONG);
    /* Mailbox of exactly 254 octets: the path is 256, accepted. */
    make_domain(dom, 252);
    snprintf(path, sizeof path, "<u@%s>", dom);
    CHECK_EQ_INT(strlen(path), 256);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_OK);
    CHECK_EQ_INT(used, 256);
    CHECK_EQ_INT(strlen(a.text), 254);
    CHECK_EQ_STR(a.domain, dom);
    CHECK_EQ_INT(mailaddr_parse_mailbox(path + 1, 254, 0, &a), MAILADDR_OK);
    /* One more octet in the local part: path 257. */
    snprintf(path, sizeof path, "<uu@%s>", dom);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ETOOLONG);
    CHECK_EQ_INT(mailaddr_parse_mailbox(path + 1, 255, 0, &a), MAILADDR_ETOOLONG);
    /* A source route counts toward the 256 too. */
    make_domain(dom, 200);
    snprintf(path, sizeof path, "<@a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z:u@%s>", dom);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_ETOOLONG);
    snprintf(path, sizeof path, "<@a.b:u@%s>", dom);
    CHECK_EQ_INT(parse(path, 0, &a, &used), MAILADDR_OK);
}

static void test_utf8(void)
{
    /* "ü" is C3 BC; "日本" is E6 97 A5 E6 9C AC. */
    bad_path("<\xc3\xbc@x.org>", 0, MAILADDR_EUTF8);
    bad_path("<u@\xe6\x97\xa5\xe6\x9c\xac.jp>", 0, MAILADDR_EUTF8);
    bad_path("<\"\xc3\xbc\"@x.org>", 0, MAILADDR_EUTF8);
    ok_path("<\xc3\xbc@x.org>", MAILADDR_ALLOW_UTF8, "\xc3\xbc", "x.org", "\xc3\xbc@x.org",
            MAILADDR_F_UTF8);
    ok_path("<j\xc3\xbcrgen@\xe6\x97\xa5\xe6\x9c\xac.jp>", MAILADDR_ALLOW_UTF8,
            "j\xc3\xbcrgen", "\xe6\x97\xa5\xe6\x9c\xac.jp",
            "j\xc3\xbcrgen@\xe6\x97\xa5\xe6\x9c\xac.jp", MAILADDR_F_UTF8);
    ok_path("<\"a \xc3\xbc\"@x>", MAILADDR_ALLOW_UTF8, "a \xc3\xbc", "x", "\"a \xc3\xbc\"@x",
            MAILADDR_F_UTF8 | MAILADDR_F_QUOTED);
    ok_path("<\xf0\x9f\x98\x80@x>", MAILADDR_ALLOW_UTF8, "\xf0\x9f\x98\x80", "x",
            "\xf0\x9f\x98\x80@x", MAILADDR_F_UTF8);
    /* Malformed UTF-8 is refused even when UTF-8 is allowed. */
    bad_path("<\xc3@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);        /* truncated */
    bad_path("<\xc0\xaf@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);    /* overlong '/' */
    bad_path("<\xe0\x80\xaf@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);/* overlong */
    bad_path("<\xed\xa0\x80@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);/* surrogate */
    bad_path("<\xf4\x90\x80\x80@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX); /* > U+10FFFF */
    bad_path("<\xbc@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);        /* lone continuation */
    bad_path("<\xff@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);
    bad_path("<u@x\xc3>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);
    /* No UTF-8 inside a quoted-pair or an address literal. */
    bad_path("<\"\\\xc3\xbc\"@x>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);
    bad_path("<u@[\xc3\xbc]>", MAILADDR_ALLOW_UTF8, MAILADDR_ESYNTAX);
    /* 64 octets of local part as 32 two-octet characters pass; 33 do not. */
    char path[300] = "<";
    for (int i = 0; i < 32; i++)
        strcat(path, "\xc3\xbc");
    strcat(path, "@x>");
    struct mailaddr a;
    size_t used;
    CHECK_EQ_INT(parse(path, MAILADDR_ALLOW_UTF8, &a, &used), MAILADDR_OK);
    strcpy(path, "<");
    for (int i = 0; i < 33; i++)
        strcat(path, "\xc3\xbc");
    strcat(path, "@x>");
    CHECK_EQ_INT(parse(path, MAILADDR_ALLOW_UTF8, &a, &used), MAILADDR_ETOOLONG);
    /* A three-octet character straddling the limit: still too long. */
    strcpy(path, "<");
    for (int i = 0; i < 63; i++)
        strcat(path, "a");
    strcat(path, "\xe6\x97\xa5@x>");
    CHECK_EQ_INT(parse(path, MAILADDR_ALLOW_UTF8, &a, &used), MAILADDR_ETOOLONG);
}

static void test_mailbox(void)
{
    struct mailaddr a;
    const char *s = "user@example.org";
    CHECK_EQ_INT(mailaddr_parse_mailbox(s, strlen(s), 0, &a), MAILADDR_OK);
    CHECK_EQ_STR(a.local, "user");
    CHECK_EQ_STR(a.domain, "example.org");
    CHECK_EQ_STR(a.text, "user@example.org");
    s = "\"a b\"@[192.0.2.1]";
    CHECK_EQ_INT(mailaddr_parse_mailbox(s, strlen(s), 0, &a), MAILADDR_OK);
    CHECK_EQ_STR(a.local, "a b");
    CHECK_EQ_STR(a.text, "\"a b\"@[192.0.2.1]");
    CHECK_EQ_INT(a.flags, MAILADDR_F_QUOTED | MAILADDR_F_LITERAL);
    /* Nothing may follow; no brackets, no null or postmaster forms. */
    s = "user@example.org ";
    CHECK_EQ_INT(mailaddr_parse_mailbox(s, strlen(s), 0, &a), MAILADDR_ESYNTAX);
    CHECK_EQ_STR(a.text, "");
    s = "<user@example.org>";
    CHECK_EQ_INT(mailaddr_parse_mailbox(s, strlen(s), 0, &a), MAILADDR_ESYNTAX);
    CHECK_EQ_INT(mailaddr_parse_mailbox("", 0, MAILADDR_ALLOW_NULL, &a), MAILADDR_ESYNTAX);
    s = "postmaster";
    CHECK_EQ_INT(mailaddr_parse_mailbox(s, strlen(s), MAILADDR_ALLOW_POSTMASTER, &a),
                 MAILADDR_ESYNTAX);
    s = "\xc3\xbc@x";
    CHECK_EQ_INT(mailaddr_parse_mailbox(s, strlen(s), 0, &a), MAILADDR_EUTF8);
    CHECK_EQ_INT(mailaddr_parse_mailbox(s, strlen(s), MAILADDR_ALLOW_UTF8, &a), MAILADDR_OK);
    CHECK_EQ_INT(a.flags, MAILADDR_F_UTF8);
    /* Bounded by len, not by a NUL. */
    CHECK_EQ_INT(mailaddr_parse_mailbox("a@bc", 3, 0, &a), MAILADDR_OK);
    CHECK_EQ_STR(a.domain, "b");
}

/* A whole string that is a Domain or an IPv4/IPv6 literal (a HELO name
 * fit for the trace header's From-domain), and strings that are not. */
static void test_is_host(void)
{
    static const char *const yes[] = {
        "mail.example.org", "Mail-1.Example.ORG", "localhost", "a", "0a.b-c.d",
        "[192.0.2.1]", "[IPv6:2001:db8::1]", "[ipv6:::1]", "[IPv6:::ffff:192.0.2.1]",
    };
    static const char *const no[] = {
        "", "a(b)c;d<e>", "host.example.", ".host", "a..b", "-a.b", "a-.b", "under_score",
        "h\xc3\xb6st", "[192.0.2.1", "192.0.2.1]", "[192.0.2.256]", "[010.0.0.1]",
        "[x:a)(b]", "[IPv6:zz::1]", "[IPv6:2001:db8::1]x", "a b", "a\"b", "a\\b", "[]",
    };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        int r = mailaddr_is_host(yes[i], strlen(yes[i]));
        if (r != 1)
            fprintf(stderr, "not taken for a host: %s\n", yes[i]);
        CHECK_EQ_INT(r, 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        int r = mailaddr_is_host(no[i], strlen(no[i]));
        if (r != 0)
            fprintf(stderr, "taken for a host: %s\n", no[i]);
        CHECK_EQ_INT(r, 0);
    }
    /* Only the given octets count: a valid prefix is not a host. */
    CHECK_EQ_INT(mailaddr_is_host("host.example", 4), 1);
    char big[300];
    memset(big, 'a', sizeof big);
    CHECK_EQ_INT(mailaddr_is_host(big, 63), 1);
    CHECK_EQ_INT(mailaddr_is_host(big, 64), 0); /* a label of 64 octets */
}

int main(void)
{
    test_basic();
    test_consumed();
    test_syntax_errors();
    test_null_and_postmaster();
    test_quoted();
    test_literals();
    test_route();
    test_lengths();
    test_utf8();
    test_mailbox();
    test_is_host();
    return check_result("test_mailaddr");
}
