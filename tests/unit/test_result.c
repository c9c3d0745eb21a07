/* Unit tests for mail/result: results built here and results believed
 * from another process (result_valid, result_enh_valid). */
#include <string.h>

#include "check.h"
#include "mail/result.h"

static int valid(enum result_kind kind, int code, const char *enh, const char *text)
{
    struct result r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.code = code;
    strcpy(r.enh, enh);
    strcpy(r.text, text);
    return result_valid(&r);
}

static void test_set(void)
{
    struct result r;
    result_set(&r, RESULT_TEMPFAIL, 451, "4.4.2", "a\r\nb%s\x7f\xc3\xa9", "\n");
    CHECK_EQ_INT(r.kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(r.code, 451);
    CHECK_EQ_STR(r.enh, "4.4.2");
    /* One line of printable ASCII, whatever a next hop said. */
    CHECK_EQ_STR(r.text, "a  b ???");
    CHECK(result_valid(&r));
}

static void test_valid(void)
{
    CHECK(valid(RESULT_OK, 250, "2.0.0", "ok"));
    CHECK(valid(RESULT_TEMPFAIL, 451, "4.4.2", "later"));
    CHECK(valid(RESULT_PERMFAIL, 550, "5.1.10", "null MX"));
    CHECK(valid(RESULT_PERMFAIL, 554, "5.123.456", "x"));
    /* Kind, code and enhanced code must agree. */
    CHECK(!valid(RESULT_OK, 550, "2.0.0", "x"));
    CHECK(!valid(RESULT_OK, 250, "5.0.0", "x"));
    CHECK(!valid(RESULT_TEMPFAIL, 550, "5.0.0", "x"));
    CHECK(!valid((enum result_kind)3, 250, "2.0.0", "x"));
    CHECK(!valid(RESULT_OK, 199, "1.0.0", "x"));
    CHECK(!valid(RESULT_PERMFAIL, 600, "5.0.0", "x"));
    /* RFC 3463 syntax: 1-3 digits per part, nothing after. */
    CHECK(!valid(RESULT_OK, 250, "2.0", "x"));
    CHECK(!valid(RESULT_OK, 250, "2..0", "x"));
    CHECK(!valid(RESULT_OK, 250, "2.0.0 ", "x"));
    CHECK(!valid(RESULT_OK, 250, "2.1000.0", "x"));
    CHECK(!valid(RESULT_OK, 250, "", "x"));
    /* Printable ASCII only. */
    CHECK(!valid(RESULT_TEMPFAIL, 451, "4.0.0", "a\rb"));
    CHECK(!valid(RESULT_TEMPFAIL, 451, "4.0.0", "caf\xc3\xa9"));
    CHECK(result_enh_valid("4.7.24", '4'));
    CHECK(!result_enh_valid("4.7.24", '5'));
    CHECK(!result_enh_valid("4.7.2400", '4'));
}

int main(void)
{
    test_set();
    test_valid();
    return check_result("test_result");
}
