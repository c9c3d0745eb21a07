/* Unit tests for mailauth/dnsq: which names may be asked, the TXT RDATA
 * splitter an adapter uses, the type names. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "mailauth/dnsq.h"

static int name_ok(const char *s)
{
    return dnsq_name_ok(s, strlen(s));
}

static void test_names(void)
{
    CHECK(name_ok("example.com"));
    CHECK(name_ok("x"));
    CHECK(name_ok("_spf.example.com"));
    CHECK(name_ok("macro%percent  space%20url-space.example.com")); /* SPF makes these */
    CHECK(name_ok("foo:bar/baz.example.com"));
    CHECK(!name_ok(""));
    CHECK(!name_ok("."));
    CHECK(!name_ok("example.com."));
    CHECK(!name_ok(".example.com"));
    CHECK(!name_ok("a..example.com"));
    CHECK(!name_ok("tab\there.example.com"));
    CHECK(!name_ok("del\x7f.example.com"));
    CHECK(!dnsq_name_ok("nul\0.example.com", 16));
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".com");
    CHECK(!name_ok(label));
    memmove(label + 63, label + 64, strlen(label + 64) + 1);
    CHECK(name_ok(label)); /* 63 octets */
    char longest[260];
    memset(longest, 'a', 253);
    for (int i = 50; i < 253; i += 50)
        longest[i] = '.';
    longest[253] = '\0';
    CHECK(name_ok(longest));
    longest[253] = 'a';
    longest[254] = '\0';
    CHECK(!name_ok(longest));
}

static void test_txt(void)
{
    struct dnsq_str s[4];
    const unsigned char two[] = "\x06v=spf1\x05 -all";
    CHECK_EQ_INT(dnsq_txt_parse(two, sizeof two - 1, s, 4), 2);
    CHECK_EQ_MEM(s[0].p, s[0].len, "v=spf1", 6);
    CHECK_EQ_MEM(s[1].p, s[1].len, " -all", 5);
    const unsigned char empty[] = "\x00\x00";
    CHECK_EQ_INT(dnsq_txt_parse(empty, 2, s, 4), 2);
    CHECK_EQ_INT(s[0].len, 0);
    CHECK_EQ_INT(dnsq_txt_parse(empty, 0, s, 4), 0);
    const unsigned char nul[] = "\x03" "a\0b";
    CHECK_EQ_INT(dnsq_txt_parse(nul, 4, s, 4), 1);
    CHECK_EQ_MEM(s[0].p, s[0].len, "a\0b", 3);
    const unsigned char over[] = "\x05" "abc";
    CHECK_EQ_INT(dnsq_txt_parse(over, 4, s, 4), -EINVAL);
    const unsigned char five[] = "\x00\x00\x00\x00\x00";
    CHECK_EQ_INT(dnsq_txt_parse(five, 5, s, 4), -EINVAL);
    CHECK_EQ_STR(dnsq_type_name(DNSQ_TXT), "TXT");
    CHECK_EQ_STR(dnsq_type_name(DNSQ_AAAA), "AAAA");
    CHECK_EQ_STR(dnsq_type_name((enum dnsq_type)99), "?");
}

int main(void)
{
    test_names();
    test_txt();
    return check_result("test_dnsq");
}
