/* Unit tests for mailauth/authres: the Authentication-Results field tern
 * builds (layout, folding within 78 characters, quoting, comments, the
 * header.b prefix, hostile values) and the reading of arriving fields'
 * authserv-id (comments, quoted strings, versions, case, final dots,
 * ARC-Authentication-Results), with authres_claims_id() as the session
 * will use it (RFC 8601 §5). */
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mailauth/authres.h"

/* Every line of a built field: CRLF-terminated, continuation lines
 * start with a TAB, no bare CR or LF, at most `max` characters. */
static void check_lines(const struct buf *b, size_t max)
{
    CHECK(b->len >= 2 && memcmp(b->data + b->len - 2, "\r\n", 2) == 0);
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\r') {
            CHECK(i + 1 < b->len && b->data[i + 1] == '\n');
            if (i - start > max)
                fprintf(stderr, "  line of %zu: %.*s\n", i - start, (int)(i - start),
                        b->data + start);
            CHECK(i - start <= max);
            start = i + 2;
            if (start < b->len)
                CHECK(b->data[start] == '\t');
            i++;
        } else {
            CHECK(b->data[i] != '\n' && b->data[i] != '\0');
        }
    }
}

static void test_build(void)
{
    struct authres_spf spf[] = {
        {SPF_PASS, false, "bounce@example.com", "example.com: matched ip4:192.0.2.0/24"},
        {SPF_NONE, true, "mx.example.com", NULL},
    };
    struct authres_dkim dkim[] = {
        {DKIM_PASS, "example.com", "@example.com", "sel1", "rsa-sha256",
         "dGhpcyBpcyBub3QgYSBzaWduYXR1cmU=", NULL},
        {DKIM_FAIL, "example.net", NULL, "s2", NULL, "dGhpcyBpcyBhbm90aGVy", "bad sig"},
    };
    struct authres_dmarc dmarc = {DMARC_PASS, "example.com", true, DMARC_POLICY_NONE,
                                  "p=reject"};
    struct authres_arc arc = {ARC_PASS, "192.0.2.1", 1, NULL};
    struct authres_results r = {"mx.tern.example", spf, 2, dkim, 2, &dmarc, &arc};
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(authres_build(&r, &b), 0);
    const char *want = "Authentication-Results: mx.tern.example;\r\n"
                       "\tspf=pass (example.com: matched ip4:192.0.2.0/24)\r\n"
                       "\tsmtp.mailfrom=bounce@example.com;\r\n"
                       "\tspf=none smtp.helo=mx.example.com;\r\n"
                       "\tdkim=pass header.d=example.com header.i=@example.com header.s=sel1\r\n"
                       "\theader.a=rsa-sha256 header.b=dGhpcyBpcyBu;\r\n"
                       "\tdkim=fail (bad sig) header.d=example.net header.s=s2 header.b=dGhpcyBpcyBh;\r\n"
                       "\tdmarc=pass (p=reject) header.from=example.com policy.dmarc=none;\r\n"
                       "\tarc=pass smtp.remote-ip=192.0.2.1 header.oldest-pass=1\r\n";
    CHECK_EQ_STR(b.data, want);
    check_lines(&b, 78);

    /* No result at all. */
    struct authres_results none = {"mx.tern.example", NULL, 0, NULL, 0, NULL, NULL};
    buf_reset(&b);
    CHECK_EQ_INT(authres_build(&none, &b), 0);
    CHECK_EQ_STR(b.data, "Authentication-Results: mx.tern.example; none\r\n");

    /* Bad ids leave out unchanged. */
    buf_reset(&b);
    const char *bad[] = {"", "mx\r\nX-Evil: 1", "m\xc3\xa9x", NULL};
    for (size_t i = 0; i < 4; i++) {
        none.authserv_id = bad[i];
        CHECK_EQ_INT(authres_build(&none, &b), -EINVAL);
        CHECK_EQ_INT(b.len, 0);
    }
    char longid[300];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    none.authserv_id = longid;
    CHECK_EQ_INT(authres_build(&none, &b), -EINVAL);
    /* A non-token id is quoted. */
    none.authserv_id = "my host";
    CHECK_EQ_INT(authres_build(&none, &b), 0);
    CHECK_EQ_STR(b.data, "Authentication-Results: \"my host\"; none\r\n");
    buf_free(&b);
}

static void test_hostile(void)
{
    /* Values a peer chose: a CRLF must not end the field, quotes and
     * parentheses must not end a value or comment early. */
    struct authres_dkim dkim = {DKIM_FAIL, "evil.example\r\nX-Injected: yes",
                                "a\"b@evil.example", "s;1", NULL, NULL,
                                "reason (with) \\ parens\r\nX-Injected: 2"};
    struct authres_spf spf = {SPF_FAIL, false, "x@evil.example;dkim=pass", NULL};
    struct authres_dmarc dmarc = {DMARC_FAIL, "b\xc3\xbc" "cher.example", false, 0, NULL};
    struct authres_results r = {"mx.tern.example", &spf, 1, &dkim, 1, &dmarc, NULL};
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(authres_build(&r, &b), 0);
    check_lines(&b, 998);
    CHECK(strstr(b.data, "\r\nX-Injected") == NULL);
    CHECK(strstr(b.data, "header.d=\"evil.example??X-Injected: yes\"") != NULL);
    CHECK(strstr(b.data, "header.i=\"a\\\"b@evil.example\"") != NULL);
    CHECK(strstr(b.data, "header.s=\"s;1\"") != NULL);
    CHECK(strstr(b.data, "smtp.mailfrom=\"x@evil.example;dkim=pass\"") != NULL);
    CHECK(strstr(b.data, "(reason \\(with\\) \\\\ parens??X-Injected: 2)") != NULL);
    CHECK(strstr(b.data, "header.from=\"b\xc3\xbc" "cher.example\"") != NULL);
    /* Bad UTF-8 becomes '?'. */
    dmarc.header_from = "b\xff.example";
    buf_reset(&b);
    CHECK_EQ_INT(authres_build(&r, &b), 0);
    CHECK(strstr(b.data, "header.from=\"b?.example\"") != NULL);
    /* Long reasons fold and are cut; long values stay whole on their line. */
    char reason[600], value[400];
    for (size_t i = 0; i < sizeof reason - 1; i++)
        reason[i] = i % 7 == 6 ? ' ' : 'r';
    reason[sizeof reason - 1] = '\0';
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    dkim.reason = reason;
    dkim.d = value;
    buf_reset(&b);
    CHECK_EQ_INT(authres_build(&r, &b), 0);
    check_lines(&b, 340);
    CHECK(strstr(b.data, "rrrrrr rrrr)") != NULL); /* cut at 200 */
    buf_free(&b);
}

static void test_b_prefix(void)
{
    struct authres_dkim dkim[] = {
        {DKIM_PASS, "a.example", NULL, NULL, NULL, "abcdefghijklmnop", NULL},
        {DKIM_PASS, "b.example", NULL, NULL, NULL, "abcdefghijXYZ", NULL},
        {DKIM_PASS, "c.example", NULL, NULL, NULL, "short", NULL},
        {DKIM_PASS, "d.example", NULL, NULL, NULL, "zzzzzzzzzzzzzzzz", NULL},
    };
    struct authres_results r = {"mx", NULL, 0, dkim, 4, NULL, NULL};
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(authres_build(&r, &b), 0);
    CHECK(strstr(b.data, "header.b=abcdefghijk;") != NULL);
    CHECK(strstr(b.data, "header.b=abcdefghijX;") != NULL);
    CHECK(strstr(b.data, "header.b=short;") != NULL);
    CHECK(strstr(b.data, "header.b=zzzzzzzz\r\n") != NULL);
    buf_free(&b);
}

static void expect_id(const char *v, const char *want)
{
    char id[AUTHRES_ID_MAX];
    int rc = authres_parse_id(v, strlen(v), id);
    if (rc != 0)
        fprintf(stderr, "  rc %d for: %s\n", rc, v);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0)
        CHECK_EQ_STR(id, want);
}

static void test_parse(void)
{
    expect_id(" mx.example.org; spf=pass smtp.mailfrom=a@b", "mx.example.org");
    expect_id("mx.example.org;spf=pass", "mx.example.org");
    expect_id(" mx.example.org 1; none", "mx.example.org");
    expect_id(" mx.example.org (comment) 1 (c) ; none", "mx.example.org");
    expect_id(" (comment (nested) \\) ) mx.example.org; none", "mx.example.org");
    expect_id("\r\n\tmx.example.org\r\n\t; none", "mx.example.org");
    expect_id(" \"mx.example.org\"; none", "mx.example.org");
    expect_id(" \"mx.ex\\ample.org\"; none", "mx.example.org");
    expect_id(" \"my host\"; none", "my host");
    expect_id(" MX.Example.ORG.; none", "MX.Example.ORG.");
    expect_id(" mx.example.org", "mx.example.org");
    expect_id(" b\xc3\xbc" "cher.example; none", "b\xc3\xbc" "cher.example");
    char id[AUTHRES_ID_MAX];
    static const char *const bad[] = {
        "",          " ",          "; spf=pass",   " (unterminated mx.example.org; none",
        " \"mx.example.org; none", " mx.example.org junk; none", " mx.example.org 1 2; none",
        " mx.example.org/1; none", " @mx; none", " mx.example.org 1x; none",
        " \"\" 2; none", /* an empty id (fuzz_authres) */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = authres_parse_id(bad[i], strlen(bad[i]), id);
        if (rc != -EINVAL)
            fprintf(stderr, "  rc %d for: %s\n", rc, bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
    }
    char longv[400] = " ";
    memset(longv + 1, 'a', 300);
    memcpy(longv + 301, "; none", 7);
    CHECK_EQ_INT(authres_parse_id(longv, strlen(longv), id), -ENAMETOOLONG);
    static const char nul[] = " \"mx\0x\"; none";
    CHECK_EQ_INT(authres_parse_id(nul, sizeof nul - 1, id), -EINVAL);

    /* ARC-Authentication-Results. */
    unsigned inst = 0;
    const char *aar = " i=1; mx.example.org; spf=pass";
    CHECK_EQ_INT(authres_parse_arc_id(aar, strlen(aar), &inst, id), 0);
    CHECK_EQ_INT(inst, 1);
    CHECK_EQ_STR(id, "mx.example.org");
    aar = " i = 50 (c) ;\r\n\t\"mx.example.org\" 1; none";
    CHECK_EQ_INT(authres_parse_arc_id(aar, strlen(aar), &inst, id), 0);
    CHECK_EQ_INT(inst, 50);
    static const char *const badarc[] = {" i=0; mx", " i=51; mx", " i=100; mx", " mx; none",
                                         " i=1 mx; none", " I=1; mx", " i=; mx"};
    for (size_t i = 0; i < sizeof badarc / sizeof badarc[0]; i++)
        CHECK_EQ_INT(authres_parse_arc_id(badarc[i], strlen(badarc[i]), &inst, id), -EINVAL);
}

static void test_claims(void)
{
    const char *ours = "mx.tern.example";
    static const char *const yes[] = {
        " mx.tern.example; spf=pass",
        " MX.TERN.EXAMPLE; dkim=pass",
        " mx.tern.example.; dkim=pass",
        " (forged) mx.tern.example 1; dmarc=pass",
        " \"mx.tern.example\"; dmarc=pass",
        " \"MX.tern\\.example.\"; dmarc=pass",
        " mx.tern.example junk; dmarc=pass", /* malformed after our id */
        " (unterminated mx.tern.example; dmarc=pass",
        "",
        "; dmarc=pass",
    };
    static const char *const no[] = {
        " other.example; spf=pass",
        " other.example (mx.tern.example); spf=pass",
        " mx.tern.example.evil.example; spf=pass",
        " evil-mx.tern.example; spf=pass",
        " \"mx.tern.example \"; spf=pass",
        " mx.tern.exampl; spf=pass",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (authres_claims_id(yes[i], strlen(yes[i]), false, ours) != 1)
            fprintf(stderr, "  not claimed: %s\n", yes[i]);
        CHECK_EQ_INT(authres_claims_id(yes[i], strlen(yes[i]), false, ours), 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (authres_claims_id(no[i], strlen(no[i]), false, ours) != 0)
            fprintf(stderr, "  claimed: %s\n", no[i]);
        CHECK_EQ_INT(authres_claims_id(no[i], strlen(no[i]), false, ours), 0);
    }
    CHECK_EQ_INT(authres_claims_id(" i=2; MX.tern.example; arc=pass", 31, true, ours), 1);
    CHECK_EQ_INT(authres_claims_id(" i=2; other.example; arc=pass", 29, true, ours), 0);
    CHECK_EQ_INT(authres_claims_id(" mx.tern.example; arc=pass", 26, true, ours), 1);
    /* An id too long to be a host name is not ours. */
    char longv[400] = " ";
    memset(longv + 1, 'a', 300);
    memcpy(longv + 301, "; none", 7);
    CHECK_EQ_INT(authres_claims_id(longv, strlen(longv), false, ours), 0);
}

static void test_round_trip(void)
{
    /* What tern builds, tern reads back. */
    static const char *const ids[] = {"mx.tern.example", "my host", "a\"b\\c", "x",
                                      "mx.tern@example" /* no token: quoted (fuzz_authres) */};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct authres_dmarc d = {DMARC_NONE, "example.com", false, 0, NULL};
        struct authres_results r = {ids[i], NULL, 0, NULL, 0, &d, NULL};
        struct buf b = BUF_INIT;
        CHECK_EQ_INT(authres_build(&r, &b), 0);
        const char *body = b.data + strlen("Authentication-Results:");
        char id[AUTHRES_ID_MAX];
        CHECK_EQ_INT(authres_parse_id(body, b.len - (size_t)(body - b.data) - 2, id), 0);
        CHECK_EQ_STR(id, ids[i]);
        CHECK_EQ_INT(authres_claims_id(body, strlen(body), false, ids[i]), 1);
        buf_free(&b);
    }
}

static void expect_result(const char *v, const char *method, int want_rc, const char *want)
{
    char res[16] = "";
    int rc = authres_parse_result(v, strlen(v), method, res, sizeof res);
    if (rc != want_rc)
        fprintf(stderr, "  rc %d for %s in: %s\n", rc, method, v);
    CHECK_EQ_INT(rc, want_rc);
    if (rc == 0 && want_rc == 0)
        CHECK_EQ_STR(res, want);
}

static void test_parse_result(void)
{
    const char *ar = " mx.tern.example;\r\n\tspf=pass smtp.mailfrom=a@x.example;\r\n"
                     "\tdkim=fail (bad signature) header.d=x.example;\r\n"
                     "\tarc=pass smtp.remote-ip=192.0.2.1 header.oldest-pass=0";
    expect_result(ar, "arc", 0, "pass");
    expect_result(ar, "ARC", 0, "pass");
    expect_result(ar, "dkim", 0, "fail");
    expect_result(ar, "dmarc", -ENOENT, "");
    expect_result(" mx 1; Arc/1 = (c) FAIL (r)", "arc", 0, "fail");
    expect_result(" mx; none", "arc", -ENOENT, "");
    /* What a peer chose (quoted values, comments) is no resinfo. */
    expect_result(" mx; spf=pass smtp.mailfrom=\"x;arc=pass\"@y", "arc", -ENOENT, "");
    expect_result(" mx; dkim=fail (x; arc=pass) header.d=y", "arc", -ENOENT, "");
    expect_result(" mx; spf=pass smtp.mailfrom=\"x\\\";arc=pass\"@y; arc=fail", "arc", 0, "fail");
    /* Bodies that do not read. */
    expect_result("", "arc", -EINVAL, "");
    expect_result(" mx; arc=", "arc", -EINVAL, "");
    expect_result(" mx; spf=pass (open", "arc", -EINVAL, "");
    expect_result(" mx; spf=pass smtp.mailfrom=\"open", "arc", -EINVAL, "");
    expect_result(" mx x; arc=pass", "arc", -EINVAL, "");
    expect_result(" mx; arc=passpasspasspasspass", "arc", -EINVAL, "");
}

int main(void)
{
    test_build();
    test_hostile();
    test_b_prefix();
    test_parse();
    test_claims();
    test_round_trip();
    test_parse_result();
    return check_result("test_authres");
}
