/* Unit tests for mailauth/dkim_tags: the tag=value list of RFC 6376 §3.2
 * (white space and folds, trailing ';', empty values, duplicates, names,
 * value characters, the tag limit), colon lists, base64 with FWS and
 * decimals. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "mailauth/dkim_tags.h"

static struct dkim_tags t;

static int parse(const char *s)
{
    return dkim_tags_parse(&t, s, strlen(s));
}

static const char *value(const char *name)
{
    static char out[256];
    const struct dkim_tag *tag = dkim_tags_find(&t, name);
    if (tag == NULL)
        return NULL;
    memcpy(out, tag->value, tag->value_len);
    out[tag->value_len] = '\0';
    return out;
}

static void test_tag_list(void)
{
    CHECK_EQ_INT(parse("v=1; a=rsa-sha256"), 0);
    CHECK_EQ_INT(t.n, 2);
    CHECK_EQ_STR(value("v"), "1");
    CHECK_EQ_STR(value("a"), "rsa-sha256");
    CHECK(value("b") == NULL);
    /* Folding white space around everything, a trailing ';'. */
    CHECK_EQ_INT(parse(" \tv = 1 ;\r\n a\r\n\t=\r\n x y\t z \r\n ;\r\n "), 0);
    CHECK_EQ_INT(t.n, 2);
    CHECK_EQ_STR(value("v"), "1");
    CHECK_EQ_STR(value("a"), "x y\t z"); /* inner white space is the value's */
    CHECK_EQ_INT(parse("p=;"), 0);
    CHECK_EQ_STR(value("p"), "");
    CHECK_EQ_INT(parse(""), 0);
    CHECK_EQ_INT(t.n, 0);
    CHECK_EQ_INT(parse("  "), 0);
    CHECK_EQ_INT(parse("a_1=x;B2=y"), 0);
    CHECK_EQ_STR(value("a_1"), "x");
    CHECK_EQ_STR(value("B2"), "y");
    CHECK(value("b2") == NULL); /* case-sensitive names (§3.2) */
    CHECK_EQ_INT(parse("n=caf\xc3\xa9"), 0); /* UTF-8 in a value */
    CHECK_EQ_INT(parse("h=from:to; z=From:foo@eng.example.net|To:joe@example.com"), 0);
    CHECK_EQ_STR(value("z"), "From:foo@eng.example.net|To:joe@example.com");

    const char *bad[] = {
        "v=1;;a=2",     /* an empty tag-spec */
        ";",            /* the same at the start */
        "v",            /* no '=' */
        "=1",           /* no name */
        "1v=1",         /* a name starts with a letter */
        "v-x=1",        /* '-' is no name character */
        "v=1; v=2",     /* a duplicate (§3.2) */
        "v=1\r\n",      /* a CRLF not followed by white space */
        "v=1\r\na=2",
        "v=1\n a=2",    /* a bare LF */
        "v=a\rb",       /* a bare CR */
        "v=a\x01",      /* a control character */
        "v=a\x7f",
        "v =1 x= ",     /* value "1 x=": '=' is a VALCHAR but the name "x" never comes */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = parse(bad[k]);
        if (k == sizeof bad / sizeof bad[0] - 1) {
            CHECK_EQ_INT(rc, 0); /* the last one is valid after all */
            CHECK_EQ_STR(value("v"), "1 x=");
            continue;
        }
        CHECK_EQ_INT(rc, -EINVAL);
        CHECK_EQ_INT(t.n, 0);
    }
    /* DKIM_TAGS_MAX tags and one more. */
    struct buf b = BUF_INIT;
    for (int k = 0; k < DKIM_TAGS_MAX; k++)
        buf_printf(&b, "t%d=%d;", k, k);
    CHECK_EQ_INT(dkim_tags_parse(&t, b.data, b.len), 0);
    CHECK_EQ_INT(t.n, DKIM_TAGS_MAX);
    buf_puts(&b, "one=more");
    CHECK_EQ_INT(dkim_tags_parse(&t, b.data, b.len), -E2BIG);
    CHECK_EQ_INT(t.n, 0);
    buf_free(&b);
}

static int list(const char *v, char *out, size_t outsize)
{
    size_t pos = 0, len, n = strlen(v);
    const char *item;
    int rc, count = 0;
    out[0] = '\0';
    while ((rc = dkim_list_next(v, n, &pos, &item, &len)) == 1) {
        size_t used = strlen(out);
        snprintf(out + used, outsize - used, "%s%.*s", count ? "|" : "", (int)len, item);
        count++;
    }
    return rc < 0 ? rc : count;
}

static void test_lists(void)
{
    char out[256];
    CHECK_EQ_INT(list("from:to", out, sizeof out), 2);
    CHECK_EQ_STR(out, "from|to");
    CHECK_EQ_INT(list("from : to :\r\n subject\t:date", out, sizeof out), 4);
    CHECK_EQ_STR(out, "from|to|subject|date");
    CHECK_EQ_INT(list("one", out, sizeof out), 1);
    CHECK_EQ_INT(list("", out, sizeof out), 0);
    CHECK_EQ_INT(list("a::b", out, sizeof out), -EINVAL);
    CHECK_EQ_INT(list("a:", out, sizeof out), -EINVAL);
    CHECK_EQ_INT(list(":a", out, sizeof out), -EINVAL);
    CHECK_EQ_INT(list("a b", out, sizeof out), -EINVAL);
    CHECK_EQ_INT(dkim_list_has("email:*", 7, "*"), 1);
    CHECK_EQ_INT(dkim_list_has("EMAIL", 5, "email"), 1);
    CHECK_EQ_INT(dkim_list_has("sha1", 4, "sha256"), 0);
    CHECK_EQ_INT(dkim_list_has("sha1::sha256", 12, "sha256"), -EINVAL);
    CHECK(dkim_text_eq("Relaxed", 7, "relaxed"));
    CHECK(!dkim_text_eq("relaxed", 6, "relaxed"));
}

static void test_base64(void)
{
    struct buf out = BUF_INIT;
    const char *v = "SGVs\r\n bG8g\t d29y bGQ=";
    CHECK_EQ_INT(dkim_b64_decode(v, strlen(v), 100, &out), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello world", 11);
    v = "SGVsbG8gd29ybGQ \r\n =";
    CHECK_EQ_INT(dkim_b64_decode(v, strlen(v), 100, &out), 0);
    CHECK_EQ_MEM(out.data, out.len, "Hello world", 11);
    CHECK_EQ_INT(dkim_b64_decode("", 0, 100, &out), 0);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(dkim_b64_decode("SGVsbG8", 7, 100, &out), -EINVAL);   /* length */
    CHECK_EQ_INT(dkim_b64_decode("SGV!bG8g", 8, 100, &out), -EINVAL);  /* alphabet */
    CHECK_EQ_INT(dkim_b64_decode("SGVs\nbG8g", 9, 100, &out), -EINVAL); /* bare LF */
    CHECK_EQ_INT(dkim_b64_decode("SGVsbG8gd29ybGQ=", 16, 10, &out), -EMSGSIZE);
    CHECK_EQ_INT(dkim_b64_decode("SGVsbG8gd29ybGQ=", 16, 11, &out), 0);
    char pre[16];
    CHECK_EQ_INT(dkim_b64_prefix("ab\r\n cd ef", 10, 5, pre, sizeof pre), 5);
    CHECK_EQ_STR(pre, "abcde");
    CHECK_EQ_INT(dkim_b64_prefix("abcdef", 6, 12, pre, 4), 3);
    CHECK_EQ_STR(pre, "abc");
    buf_free(&out);
}

static void test_decimal(void)
{
    uint64_t x;
    CHECK_EQ_INT(dkim_decimal("1528637909", 10, 12, &x), 0);
    CHECK_EQ_INT(x, 1528637909);
    CHECK_EQ_INT(dkim_decimal("0", 1, 12, &x), 0);
    CHECK_EQ_INT(x, 0);
    CHECK_EQ_INT(dkim_decimal("", 0, 12, &x), -EINVAL);
    CHECK_EQ_INT(dkim_decimal("12a", 3, 12, &x), -EINVAL);
    CHECK_EQ_INT(dkim_decimal("-1", 2, 12, &x), -EINVAL);
    CHECK_EQ_INT(dkim_decimal("1234567890123", 13, 12, &x), -EINVAL);
    const char *huge = "99999999999999999999999999999999999999999999";
    CHECK_EQ_INT(dkim_decimal(huge, strlen(huge), 76, &x), 0);
    CHECK(x == UINT64_MAX);
}

int main(void)
{
    test_tag_list();
    test_lists();
    test_base64();
    test_decimal();
    return check_result("test_dkim_tags");
}
