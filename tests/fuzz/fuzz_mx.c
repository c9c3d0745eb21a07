/* libFuzzer target: dns/mx_parse. The input is a list of records, each a
 * 2-octet big-endian length and that many octets, as libunbound would
 * hand over an answer's rdata; the first octet caps the hosts kept. The
 * records are decoded as MX, A and AAAA answers, and each one also as a
 * wire-format name, an address literal and a domain. Checks what the
 * results promise: ordered preferences, no duplicate or empty hosts,
 * names of host characters only, caps kept. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/mx_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_RRS 64

/* Deterministic "random" numbers taken from the input itself. */
struct fuzz_rnd {
    const uint8_t *p;
    size_t n, i;
};

static uint32_t fuzz_rand(void *arg, uint32_t bound)
{
    struct fuzz_rnd *r = arg;
    if (bound == 0)
        abort();
    uint32_t v = r->n ? r->p[r->i++ % r->n] : 0;
    return v % bound;
}

static void check_name(const char *s)
{
    size_t len = strlen(s);
    if (len > MX_NAME_MAX - 2)
        abort();
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            abort();
    }
    if (len && (s[0] == '.' || s[len - 1] == '.' || strstr(s, "..")))
        abort();
}

static void check_addrs(const struct sockaddr_storage *a, size_t n, int family)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].ss_family != family)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = 1 + data[0] % MX_HOSTS_MAX;
    char *rd[FUZZ_RRS];
    int len[FUZZ_RRS];
    size_t nrr = 0, pos = 1;
    while (pos + 2 <= size && nrr < FUZZ_RRS) {
        size_t l = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (l > size - pos)
            l = size - pos;
        /* Exact-size copies: a read past a record is an ASan report. */
        rd[nrr] = malloc(l ? l : 1);
        memcpy(rd[nrr], data + pos, l);
        len[nrr] = (int)l;
        nrr++;
        pos += l;
    }

    struct dns_answer a;
    memset(&a, 0, sizeof a);
    a.status = DNS_OK;
    a.count = nrr;
    a.rdata = (const char *const *)rd;
    a.rdlen = len;

    struct mx_rr out[MX_HOSTS_MAX];
    size_t n = 0;
    struct fuzz_rnd r = {data, size, 0};
    enum mx_parse_status st = mx_parse_mx_answer(&a, out, max, &n, fuzz_rand, &r);
    if (n > max || (st == MX_PARSE_OK) != (n > 0))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (out[i].name[0] == '\0' || out[i].pref > 65535)
            abort();
        check_name(out[i].name);
        if (i > 0 && out[i].pref < out[i - 1].pref)
            abort();
        for (size_t j = 0; j < i; j++)
            if (!strcmp(out[i].name, out[j].name))
                abort();
    }

    struct sockaddr_storage v4[MX_ADDRS_MAX], v6[MX_ADDRS_MAX], all[MX_ADDRS_MAX];
    size_t n4 = mx_parse_addr_answer(&a, AF_INET, v4, MX_ADDRS_MAX);
    size_t n6 = mx_parse_addr_answer(&a, AF_INET6, v6, MX_ADDRS_MAX);
    check_addrs(v4, n4, AF_INET);
    check_addrs(v6, n6, AF_INET6);
    /* all[] holds MX_ADDRS_MAX: the cap given must never exceed it. */
    size_t amax = max < MX_ADDRS_MAX ? max : MX_ADDRS_MAX;
    size_t nall = mx_parse_merge_addrs(v6, n6, v4, n4, all, amax);
    if (nall > amax || nall > n4 + n6 || (nall < amax && nall != n4 + n6))
        abort();

    for (size_t i = 0; i < nrr; i++) {
        char name[MX_NAME_MAX + 1];
        size_t used = 0;
        if (mx_parse_name((const unsigned char *)rd[i], (size_t)len[i], &used, name,
                          sizeof name) == 0) {
            if (used == 0 || used > (size_t)len[i])
                abort();
            check_name(name);
        }
        /* The same octets as text. */
        char *s = malloc((size_t)len[i] + 1);
        memcpy(s, rd[i], (size_t)len[i]);
        s[len[i]] = '\0';
        struct sockaddr_storage ss;
        int lit = mx_parse_literal(s, &ss);
        if ((lit < 0 && lit != -EINVAL) || lit > 1 || (lit == 1 && ss.ss_family != AF_INET &&
                                    ss.ss_family != AF_INET6))
            abort();
        if (mx_parse_domain_ok(s) && strlen(s) > 254)
            abort();
        free(s);
        free(rd[i]);
    }
    return 0;
}
