/* test_dns: the pure parts of MX resolution (dns/mx_parse): wire-format
 * names and MX/A/AAAA rdata, well-formed and malformed; preference order
 * and shuffling only among equal preferences; null MX; duplicates and
 * caps; address merging; address literals; domain syntax. No DNS server:
 * answers are built by hand as libunbound would hand them over. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dns/mx_parse.h"

/* --- building answers ---------------------------------------------------- */

#define RRS_CAP 1100

struct fake {
    char *data[RRS_CAP + 1];
    int len[RRS_CAP + 1];
    size_t n;
    struct dns_answer a;
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof *f);
    f->a.status = DNS_OK;
    f->a.rcode = 0;
    f->a.qtype = DNS_TYPE_MX;
    f->a.rdata = (const char *const *)f->data;
    f->a.rdlen = f->len;
}

static void fake_raw(struct fake *f, const void *p, size_t n)
{
    f->data[f->n] = malloc(n ? n : 1);
    memcpy(f->data[f->n], p, n);
    f->len[f->n] = (int)n;
    f->n++;
    f->a.count = f->n;
}

static void fake_free(struct fake *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->data[i]);
    f->n = 0;
}

/* Encodes "a.b.c" (or "" for the root) as an uncompressed wire name. */
static size_t wire_name(const char *name, unsigned char *out)
{
    size_t o = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        out[o++] = (unsigned char)l;
        memcpy(out + o, name, l);
        o += l;
        name += l;
        if (*name == '.')
            name++;
    }
    out[o++] = 0;
    return o;
}

static void fake_mx(struct fake *f, unsigned pref, const char *name)
{
    unsigned char rd[300];
    rd[0] = (unsigned char)(pref >> 8);
    rd[1] = (unsigned char)pref;
    size_t n = 2 + wire_name(name, rd + 2);
    fake_raw(f, rd, n);
}

/* --- names and rdata ---------------------------------------------------- */

static int name_of(const void *p, size_t n, char *out, size_t outsize, size_t *used)
{
    /* An exact-size copy, so that a read past n is an ASan report. */
    unsigned char *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    int r = mx_parse_name(c, n, used, out, outsize);
    free(c);
    return r;
}

static void test_name(void)
{
    char out[MX_NAME_MAX + 1];
    size_t used = 0;
    unsigned char w[300];
    size_t n = wire_name("MX1.Example.COM", w);
    CHECK_EQ_INT(name_of(w, n, out, sizeof out, &used), 0);
    CHECK_EQ_STR(out, "mx1.example.com");
    CHECK_EQ_INT(used, n);
    /* Trailing octets are left to the caller. */
    w[n] = 0x42;
    CHECK_EQ_INT(name_of(w, n + 1, out, sizeof out, &used), 0);
    CHECK_EQ_INT(used, n);

    CHECK_EQ_INT(name_of("\0", 1, out, sizeof out, &used), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(used, 1);

    n = wire_name("under_score.with-hyphen.x9", w);
    CHECK_EQ_INT(name_of(w, n, out, sizeof out, &used), 0);
    CHECK_EQ_STR(out, "under_score.with-hyphen.x9");

    /* Empty input, no root label, a label running past the end. */
    CHECK_EQ_INT(name_of("", 0, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\3abc", 4, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\5abc\0", 5, out, sizeof out, &used), -EINVAL);
    /* Compression pointers, alone and after a label; extended labels. */
    CHECK_EQ_INT(name_of("\xc0\x0c", 2, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\3abc\xc0\x0c", 6, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\x41" "abc\0", 5, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\x80\0", 2, out, sizeof out, &used), -EINVAL);
    /* Octets that are no part of a host name. */
    CHECK_EQ_INT(name_of("\3a.b\0", 5, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\3a b\0", 5, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\3a\0b\0", 5, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\3a\xc3\xa9\0", 5, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\1*\0", 3, out, sizeof out, &used), -EINVAL);
    CHECK_EQ_INT(name_of("\3a\nb\0", 5, out, sizeof out, &used), -EINVAL);

    /* Labels: 63 octets fine, 64 refused. */
    char label[70];
    memset(label, 'a', 63);
    label[63] = '\0';
    n = wire_name(label, w);
    CHECK_EQ_INT(name_of(w, n, out, sizeof out, &used), 0);
    CHECK_EQ_INT(strlen(out), 63);
    memset(label, 'a', 64);
    label[64] = '\0';
    n = wire_name(label, w);
    CHECK_EQ_INT(name_of(w, n, out, sizeof out, &used), -EINVAL);

    /* Names: 255 wire octets fine (253 in text), 256 refused. */
    char name[300];
    memset(name, 'b', sizeof name);
    for (int i = 63; i < 250; i += 64)
        name[i] = '.';
    name[253] = '\0'; /* 63.63.63.61 */
    n = wire_name(name, w);
    CHECK_EQ_INT(n, 255);
    CHECK_EQ_INT(name_of(w, n, out, sizeof out, &used), 0);
    CHECK_EQ_INT(strlen(out), 253);
    name[253] = 'b';
    name[254] = '\0';
    n = wire_name(name, w);
    CHECK_EQ_INT(n, 256);
    CHECK_EQ_INT(name_of(w, n, out, sizeof out, &used), -ENAMETOOLONG);
    /* An output buffer too small is refused, not overrun. */
    n = wire_name("abc.def", w);
    CHECK_EQ_INT(name_of(w, n, out, 7, &used), -ENAMETOOLONG);
    CHECK_EQ_INT(name_of(w, n, out, 8, &used), 0);
    CHECK_EQ_STR(out, "abc.def");
}

static void test_mx_rdata(void)
{
    struct mx_rr rr;
    unsigned char rd[300] = {0x01, 0x02};
    size_t n = 2 + wire_name("mail.example.org", rd + 2);
    CHECK_EQ_INT(mx_parse_mx_rdata(rd, n, &rr), 0);
    CHECK_EQ_INT(rr.pref, 258);
    CHECK_EQ_STR(rr.name, "mail.example.org");
    /* The name must fill the rdata exactly. */
    CHECK_EQ_INT(mx_parse_mx_rdata(rd, n + 1, &rr), -EINVAL);
    CHECK_EQ_INT(mx_parse_mx_rdata(rd, n - 1, &rr), -EINVAL);
    CHECK_EQ_INT(mx_parse_mx_rdata(rd, 2, &rr), -EINVAL);
    CHECK_EQ_INT(mx_parse_mx_rdata(rd, 1, &rr), -EINVAL);
    CHECK_EQ_INT(mx_parse_mx_rdata(rd, 0, &rr), -EINVAL);
    /* Null MX rdata: preference 0, the root. */
    CHECK_EQ_INT(mx_parse_mx_rdata((const unsigned char *)"\0\0\0", 3, &rr), 0);
    CHECK_EQ_INT(rr.pref, 0);
    CHECK_EQ_STR(rr.name, "");
    CHECK_EQ_INT(mx_parse_mx_rdata((const unsigned char *)"\xff\xff\xc0\x0c", 4, &rr), -EINVAL);
}

static int addr_is(const struct sockaddr_storage *ss, const char *text)
{
    char buf[INET6_ADDRSTRLEN];
    const void *p = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (inet_ntop(ss->ss_family, p, buf, sizeof buf) == NULL)
        return 0;
    return strcmp(buf, text) == 0;
}

static int rdata_addr(int family, const char *text, struct sockaddr_storage *out)
{
    unsigned char bin[16];
    if (inet_pton(family, text, bin) != 1)
        return -2;
    return mx_parse_addr_rdata(family, bin, family == AF_INET ? 4 : 16, out);
}

static void test_addr_rdata(void)
{
    struct sockaddr_storage ss;
    CHECK_EQ_INT(rdata_addr(AF_INET, "127.0.0.2", &ss), 0);
    CHECK_EQ_INT(ss.ss_family, AF_INET);
    CHECK(addr_is(&ss, "127.0.0.2"));
    CHECK_EQ_INT(((struct sockaddr_in *)&ss)->sin_port, 0);
    CHECK_EQ_INT(rdata_addr(AF_INET6, "::1", &ss), 0);
    CHECK_EQ_INT(ss.ss_family, AF_INET6);
    CHECK(addr_is(&ss, "::1"));
    CHECK_EQ_INT(rdata_addr(AF_INET6, "::ffff:127.0.0.1", &ss), 0);
    /* Nothing to deliver to. */
    CHECK_EQ_INT(rdata_addr(AF_INET, "0.0.0.0", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET, "0.1.2.3", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET, "224.0.0.1", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET, "240.0.0.1", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET, "255.255.255.255", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET6, "::", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET6, "ff02::1", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET6, "::ffff:0.0.0.0", &ss), -EINVAL);
    CHECK_EQ_INT(rdata_addr(AF_INET6, "::ffff:224.0.0.1", &ss), -EINVAL);
    /* Wrong lengths and families. */
    const unsigned char b[17] = {127, 0, 0, 1};
    CHECK_EQ_INT(mx_parse_addr_rdata(AF_INET, b, 3, &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_addr_rdata(AF_INET, b, 5, &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_addr_rdata(AF_INET, b, 16, &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_addr_rdata(AF_INET6, b, 4, &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_addr_rdata(AF_INET6, b, 17, &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_addr_rdata(AF_UNIX, b, 4, &ss), -EINVAL);
}

/* --- ordering ------------------------------------------------------------ */

/* A scripted random source: always the largest value allowed. */
static uint32_t rnd_max(void *arg, uint32_t bound)
{
    (*(int *)arg)++;
    return bound - 1;
}

static uint32_t rnd_zero(void *arg, uint32_t bound)
{
    return 0;
}

static void test_order(void)
{
    struct fake f;
    fake_init(&f);
    fake_mx(&f, 20, "mx2.example");
    fake_mx(&f, 10, "mx1.example");
    fake_mx(&f, 30, "mx3.example");
    struct mx_rr out[MX_HOSTS_MAX];
    size_t n = 99;
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_STR(out[0].name, "mx1.example");
    CHECK_EQ_STR(out[1].name, "mx2.example");
    CHECK_EQ_STR(out[2].name, "mx3.example");
    CHECK_EQ_INT(out[0].pref, 10);
    CHECK_EQ_INT(out[2].pref, 30);
    /* Distinct preferences never ask for a random number. */
    int calls = 0;
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, rnd_max, &calls), MX_PARSE_OK);
    CHECK_EQ_INT(calls, 0);
    fake_free(&f);

    /* Equal preferences with a scripted source: j = i every time keeps
     * the answer's order; j = start every time rotates the run. */
    fake_init(&f);
    fake_mx(&f, 10, "a.example");
    fake_mx(&f, 5, "first.example");
    fake_mx(&f, 10, "b.example");
    fake_mx(&f, 10, "c.example");
    fake_mx(&f, 50, "last.example");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, rnd_max, &calls), MX_PARSE_OK);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(calls, 2); /* one run of three */
    CHECK_EQ_STR(out[0].name, "first.example");
    CHECK_EQ_STR(out[1].name, "a.example");
    CHECK_EQ_STR(out[2].name, "b.example");
    CHECK_EQ_STR(out[3].name, "c.example");
    CHECK_EQ_STR(out[4].name, "last.example");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, rnd_zero, NULL), MX_PARSE_OK);
    CHECK_EQ_STR(out[0].name, "first.example");
    CHECK_EQ_STR(out[1].name, "b.example");
    CHECK_EQ_STR(out[2].name, "c.example");
    CHECK_EQ_STR(out[3].name, "a.example");
    CHECK_EQ_STR(out[4].name, "last.example");

    /* With the real source, many times: the order of preferences never
     * changes, every member of the run comes first sometimes, and every
     * permutation of the run shows up. */
    int first[3] = {0, 0, 0};
    int perms = 0, seen[8] = {0};
    for (int run = 0; run < 600; run++) {
        CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL),
                     MX_PARSE_OK);
        if (n != 5 || strcmp(out[0].name, "first.example") ||
            strcmp(out[4].name, "last.example") || out[1].pref != 10 || out[2].pref != 10 ||
            out[3].pref != 10) {
            CHECK(!"order across preferences changed");
            break;
        }
        int code = 0;
        for (int i = 1; i <= 3; i++) {
            int who = out[i].name[0] - 'a';
            CHECK(who >= 0 && who < 3);
            if (i == 1)
                first[who]++;
            code = code * 3 + who;
        }
        /* codes of the six permutations of {0,1,2}: 5 7 11 15 19 21 */
        int slot = code == 5 ? 0 : code == 7 ? 1 : code == 11 ? 2 : code == 15 ? 3
                 : code == 19 ? 4 : code == 21 ? 5 : 6;
        CHECK(slot < 6);
        if (!seen[slot]++)
            perms++;
    }
    CHECK(first[0] > 0 && first[1] > 0 && first[2] > 0);
    CHECK_EQ_INT(perms, 6);
    fake_free(&f);

    /* mx_parse_order on its own, with a run at each end. */
    struct mx_rr rrs[6] = {{7, "x1"}, {3, "y1"}, {7, "x2"}, {3, "y2"}, {1, "z"}, {3, "y3"}};
    mx_parse_order(rrs, 6, rnd_max, &calls);
    CHECK_EQ_STR(rrs[0].name, "z");
    CHECK_EQ_STR(rrs[1].name, "y1");
    CHECK_EQ_STR(rrs[2].name, "y2");
    CHECK_EQ_STR(rrs[3].name, "y3");
    CHECK_EQ_STR(rrs[4].name, "x1");
    CHECK_EQ_STR(rrs[5].name, "x2");
    for (int run = 0; run < 200; run++) {
        mx_parse_order(rrs, 6, NULL, NULL);
        CHECK(rrs[0].pref == 1 && rrs[1].pref == 3 && rrs[3].pref == 3 && rrs[4].pref == 7 &&
              rrs[5].pref == 7);
        CHECK(rrs[4].name[0] == 'x' && rrs[1].name[0] == 'y');
    }
}

/* --- null MX, malformed records, duplicates, caps ------------------------ */

static void test_answer(void)
{
    struct fake f;
    struct mx_rr out[MX_HOSTS_MAX];
    size_t n = 99;

    /* RFC 7505: one MX, preference 0, target ".". */
    fake_init(&f);
    fake_mx(&f, 0, "");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_NULLMX);
    CHECK_EQ_INT(n, 0);
    fake_free(&f);
    /* A lone "." at another preference: no mail either. */
    fake_init(&f);
    fake_mx(&f, 10, "");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_NULLMX);
    fake_free(&f);
    /* "." beside real hosts is dropped; the hosts stay. */
    fake_init(&f);
    fake_mx(&f, 0, "");
    fake_mx(&f, 10, "mx.example");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_STR(out[0].name, "mx.example");
    /* ... and with a malformed record too. */
    fake_raw(&f, "\0\1\xc0\x0c", 4);
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, 1);
    fake_free(&f);

    /* Only malformed records: nothing usable (not a null MX). */
    fake_init(&f);
    fake_raw(&f, "\0\1\xc0\x0c", 4);
    fake_raw(&f, "\0", 1);
    fake_raw(&f, "", 0);
    fake_raw(&f, "\0\5\3a b\0", 7);
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_NONE);
    CHECK_EQ_INT(n, 0);
    /* A negative length or a NULL record from the resolver is skipped. */
    fake_mx(&f, 3, "ok.example");
    f.len[0] = -1;
    free(f.data[1]);
    f.data[1] = NULL;
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_STR(out[0].name, "ok.example");
    fake_free(&f);

    /* Not an OK answer, or no records at all. */
    fake_init(&f);
    fake_mx(&f, 3, "ok.example");
    f.a.status = DNS_NODATA;
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_NONE);
    f.a.status = DNS_OK;
    f.a.rdata = NULL;
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_NONE);
    f.a.rdata = (const char *const *)f.data;
    f.a.count = 0;
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_NONE);
    fake_free(&f);

    /* A host listed twice keeps its best preference, case-insensitively. */
    fake_init(&f);
    fake_mx(&f, 30, "dup.example");
    fake_mx(&f, 20, "other.example");
    fake_mx(&f, 10, "DUP.example");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(out[0].name, "dup.example");
    CHECK_EQ_INT(out[0].pref, 10);
    CHECK_EQ_STR(out[1].name, "other.example");
    fake_free(&f);

    /* More hosts than the cap: the best ones are kept. */
    fake_init(&f);
    char name[32];
    for (int i = 30; i >= 1; i--) {
        snprintf(name, sizeof name, "h%d.example", i);
        fake_mx(&f, (unsigned)i, name);
    }
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, MX_HOSTS_MAX);
    CHECK_EQ_STR(out[0].name, "h1.example");
    CHECK_EQ_STR(out[MX_HOSTS_MAX - 1].name, "h20.example");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, 2, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, 2);
    fake_free(&f);

    /* Beyond MX_PARSE_RRS_MAX records, the rest is not looked at. */
    fake_init(&f);
    for (int i = 0; i < RRS_CAP; i++)
        fake_mx(&f, i < MX_PARSE_RRS_MAX ? 100 : 1, i < MX_PARSE_RRS_MAX ? "far.example"
                                                                           : "near.example");
    CHECK_EQ_INT(mx_parse_mx_answer(&f.a, out, MX_HOSTS_MAX, &n, NULL, NULL), MX_PARSE_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_STR(out[0].name, "far.example");
    fake_free(&f);
}

/* --- addresses ----------------------------------------------------------- */

static void test_addrs(void)
{
    struct fake f;
    fake_init(&f);
    f.a.qtype = DNS_TYPE_A;
    unsigned char a4[4] = {127, 0, 0, 0};
    for (int i = 1; i <= 12; i++) {
        a4[3] = (unsigned char)i;
        fake_raw(&f, a4, 4);
    }
    fake_raw(&f, "\0\0\0\0", 4);  /* 0.0.0.0: skipped */
    fake_raw(&f, "\x7f\0\0", 3);  /* short: skipped */
    struct sockaddr_storage v4[MX_ADDRS_MAX + 4], v6[MX_ADDRS_MAX], out[MX_ADDRS_MAX];
    size_t n4 = mx_parse_addr_answer(&f.a, AF_INET, v4, MX_ADDRS_MAX + 4);
    CHECK_EQ_INT(n4, 12);
    CHECK(addr_is(&v4[0], "127.0.0.1"));
    CHECK(addr_is(&v4[11], "127.0.0.12"));
    CHECK_EQ_INT(mx_parse_addr_answer(&f.a, AF_INET, v4, 5), 5);
    CHECK_EQ_INT(mx_parse_addr_answer(&f.a, AF_INET6, v6, MX_ADDRS_MAX), 0);
    f.a.status = DNS_NXDOMAIN;
    CHECK_EQ_INT(mx_parse_addr_answer(&f.a, AF_INET, v4, 5), 0);
    fake_free(&f);

    fake_init(&f);
    f.a.qtype = DNS_TYPE_AAAA;
    unsigned char a6[16] = {0};
    a6[15] = 1;
    fake_raw(&f, a6, 16);
    a6[0] = 0x20;
    a6[1] = 0x01;
    fake_raw(&f, a6, 16);
    size_t n6 = mx_parse_addr_answer(&f.a, AF_INET6, v6, MX_ADDRS_MAX);
    CHECK_EQ_INT(n6, 2);
    CHECK(addr_is(&v6[0], "::1"));
    CHECK(addr_is(&v6[1], "2001::1"));
    fake_free(&f);

    /* Interleaved, IPv6 first; a cap keeps both families. */
    n4 = 12;
    size_t n = mx_parse_merge_addrs(v6, n6, v4, n4, out, MX_ADDRS_MAX);
    CHECK_EQ_INT(n, MX_ADDRS_MAX);
    CHECK(addr_is(&out[0], "::1"));
    CHECK(addr_is(&out[1], "127.0.0.1"));
    CHECK(addr_is(&out[2], "2001::1"));
    CHECK(addr_is(&out[3], "127.0.0.2"));
    CHECK(addr_is(&out[4], "127.0.0.3"));
    CHECK(addr_is(&out[9], "127.0.0.8"));
    CHECK_EQ_INT(mx_parse_merge_addrs(v6, n6, v4, 0, out, MX_ADDRS_MAX), 2);
    CHECK_EQ_INT(mx_parse_merge_addrs(v6, 0, v4, 3, out, MX_ADDRS_MAX), 3);
    CHECK(addr_is(&out[2], "127.0.0.3"));
    CHECK_EQ_INT(mx_parse_merge_addrs(v6, 0, v4, 0, out, MX_ADDRS_MAX), 0);
    CHECK_EQ_INT(mx_parse_merge_addrs(v6, n6, v4, n4, out, 1), 1);
    CHECK(addr_is(&out[0], "::1"));
}

/* --- literals and domains ------------------------------------------------ */

static void test_literal(void)
{
    struct sockaddr_storage ss;
    CHECK_EQ_INT(mx_parse_literal("[127.0.0.1]", &ss), 1);
    CHECK_EQ_INT(ss.ss_family, AF_INET);
    CHECK(addr_is(&ss, "127.0.0.1"));
    CHECK_EQ_INT(mx_parse_literal("[IPv6:::1]", &ss), 1);
    CHECK_EQ_INT(ss.ss_family, AF_INET6);
    CHECK(addr_is(&ss, "::1"));
    CHECK_EQ_INT(mx_parse_literal("[ipv6:2001:db8::25]", &ss), 1);
    CHECK(addr_is(&ss, "2001:db8::25"));
    CHECK_EQ_INT(mx_parse_literal("[IPv6:::ffff:127.0.0.1]", &ss), 1);

    CHECK_EQ_INT(mx_parse_literal("example.com", &ss), 0);
    CHECK_EQ_INT(mx_parse_literal("", &ss), 0);
    CHECK_EQ_INT(mx_parse_literal("[", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[127.0.0.1", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[127.0.0.1]x", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[1.2.3]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[01.2.3.4]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[1.2.3.256]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[ 127.0.0.1]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[0.0.0.0]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[224.0.0.1]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[::1]", &ss), -EINVAL); /* the tag is required */
    CHECK_EQ_INT(mx_parse_literal("[IPv6:]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[IPv6:::]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[IPv6:1.2.3.4]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[IPv6:ff02::1]", &ss), -EINVAL);
    CHECK_EQ_INT(mx_parse_literal("[x-tag:content]", &ss), -EINVAL);
    char longlit[200];
    memset(longlit, '1', sizeof longlit);
    longlit[0] = '[';
    longlit[198] = ']';
    longlit[199] = '\0';
    CHECK_EQ_INT(mx_parse_literal(longlit, &ss), -EINVAL);
}

static void test_domain_ok(void)
{
    CHECK(mx_parse_domain_ok("example.com"));
    CHECK(mx_parse_domain_ok("example.com."));
    CHECK(mx_parse_domain_ok("localhost"));
    CHECK(mx_parse_domain_ok("_x-1.test"));
    CHECK(!mx_parse_domain_ok(""));
    CHECK(!mx_parse_domain_ok("."));
    CHECK(!mx_parse_domain_ok(".example.com"));
    CHECK(!mx_parse_domain_ok("example..com"));
    CHECK(!mx_parse_domain_ok("example.com.."));
    CHECK(!mx_parse_domain_ok("exa mple.com"));
    CHECK(!mx_parse_domain_ok("ex\xc3\xa4mple.com"));
    CHECK(!mx_parse_domain_ok("[127.0.0.1]"));
    char name[300];
    memset(name, 'a', 63);
    name[63] = '\0';
    CHECK(mx_parse_domain_ok(name));
    name[63] = 'a';
    name[64] = '\0';
    CHECK(!mx_parse_domain_ok(name));
    memset(name, 'b', sizeof name);
    for (int i = 63; i < 250; i += 64)
        name[i] = '.';
    name[253] = '\0';
    CHECK(mx_parse_domain_ok(name));
    name[253] = 'b';
    name[254] = '\0';
    CHECK(!mx_parse_domain_ok(name));
}

int main(void)
{
    test_name();
    test_mx_rdata();
    test_addr_rdata();
    test_order();
    test_answer();
    test_addrs();
    test_literal();
    test_domain_ok();
    return check_result("test_dns");
}
