/* Unit tests for mail/result: results built here and results believed
 * from another process. */
#include <string.h>

#include "check.h"
#include "mail/result.h"

static int from_peer(uint32_t kind, int32_t code, const char *enh, const char *text,
                     struct result *r)
{
    memset(r, 0, sizeof *r);
    strcpy(r->enh, enh);
    strcpy(r->text, text);
    return result_from_peer(r, kind, code);
}

static void test_set(void)
{
    struct result r;
    result_set(&r, RESULT_TEMPFAIL, 451, "4.4.2", "a\r\nb%s", "\n");
    CHECK_EQ_INT(r.kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(r.code, 451);
    CHECK_EQ_STR(r.enh, "4.4.2");
    CHECK_EQ_STR(r.text, "a  b "); /* no line break reaches a log or a notice */
}

static void test_from_peer(void)
{
    struct result r;
    CHECK_EQ_INT(from_peer(RESULT_OK, 250, "2.0.0", "ok", &r), 0);
    CHECK_EQ_INT(r.kind, RESULT_OK);
    CHECK_EQ_INT(r.code, 250);
    CHECK_EQ_INT(from_peer(RESULT_TEMPFAIL, 451, "4.4.2", "later", &r), 0);
    CHECK_EQ_INT(from_peer(RESULT_PERMFAIL, 550, "5.1.10", "null MX", &r), 0);
    CHECK_EQ_INT(from_peer(RESULT_PERMFAIL, 554, "5.123.456", "x", &r), 0);
    /* Kind, code and enhanced code must agree. */
    CHECK_EQ_INT(from_peer(RESULT_OK, 550, "2.0.0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_OK, 250, "5.0.0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_TEMPFAIL, 550, "5.0.0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(3, 250, "2.0.0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_OK, 199, "1.0.0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_PERMFAIL, 600, "5.0.0", "x", &r), -1);
    /* RFC 3463 syntax: 1-3 digits per part, nothing after. */
    CHECK_EQ_INT(from_peer(RESULT_OK, 250, "2.0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_OK, 250, "2..0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_OK, 250, "2.0.0 ", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_OK, 250, "2.1000.0", "x", &r), -1);
    CHECK_EQ_INT(from_peer(RESULT_OK, 250, "", "x", &r), -1);
    /* The text goes into logs and notices: printable ASCII only. */
    CHECK_EQ_INT(from_peer(RESULT_TEMPFAIL, 451, "4.0.0", "a\rb\nc\x7f\xc3\xa9", &r), 0);
    CHECK_EQ_STR(r.text, "a?b?c???");
}

int main(void)
{
    test_set();
    test_from_peer();
    return check_result("test_result");
}
