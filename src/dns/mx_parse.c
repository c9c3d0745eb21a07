/* mx_parse: rdata decoding, MX ordering, null MX, address literals. Pure:
 * no I/O, nothing kept between calls. */
#include "dns/mx_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "base/xmalloc.h"

/* RFC 1035 §2.3.4: labels 63 octets, names 255 octets in wire form. */
#define NAME_WIRE_MAX 255
#define LABEL_MAX 63

static int mx_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int mx_parse_name(const unsigned char *p, size_t n, size_t *used, char *out, size_t outsize)
{
    size_t pos = 0, olen = 0;
    if (outsize == 0)
        return -ENAMETOOLONG;
    for (;;) {
        if (pos >= n)
            return -EINVAL;
        size_t len = p[pos];
        if (len == 0)
            break;
        /* 0xC0 is a compression pointer, 0x40 and 0x80 the obsolete
         * extended label types (RFC 6891 §5): none belongs here. */
        if (len > LABEL_MAX)
            return -EINVAL;
        /* This label, its length octet and the root label must fit. */
        if (pos + 1 + len >= n)
            return -EINVAL;
        if (pos + 1 + len + 1 > NAME_WIRE_MAX)
            return -ENAMETOOLONG;
        if (olen > 0) {
            if (olen + 1 >= outsize)
                return -ENAMETOOLONG;
            out[olen++] = '.';
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = p[pos + 1 + i];
            if (!mx_host_char(c))
                return -EINVAL;
            if (olen + 1 >= outsize)
                return -ENAMETOOLONG;
            out[olen++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        pos += 1 + len;
    }
    out[olen] = '\0';
    *used = pos + 1;
    return 0;
}

int mx_parse_mx_rdata(const unsigned char *p, size_t n, struct mx_rr *out)
{
    size_t used = 0;
    if (n < 3)
        return -EINVAL;
    int rc = mx_parse_name(p + 2, n - 2, &used, out->name, sizeof out->name);
    if (rc < 0)
        return rc;
    if (used != n - 2)
        return -EINVAL;
    out->pref = (unsigned)p[0] << 8 | p[1];
    return 0;
}

/* Whether a mail host may have this IPv4 address (network order). */
static int mx_ipv4_usable(const unsigned char a[4])
{
    /* 0.0.0.0/8 ("this network": Linux connects to it as this host) and
     * everything from 224.0.0.0 on (multicast, reserved, broadcast). */
    return a[0] != 0 && a[0] < 224;
}

int mx_parse_addr_rdata(int family, const unsigned char *p, size_t n,
                        struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        if (n != 4 || !mx_ipv4_usable(p))
            return -EINVAL;
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, p, 4);
        return 0;
    }
    if (family == AF_INET6) {
        static const unsigned char zero[16];
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (n != 16 || !memcmp(p, zero, 16) || p[0] == 0xff ||
            (!memcmp(p, mapped, 12) && !mx_ipv4_usable(p + 12)))
            return -EINVAL;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, p, 16);
        return 0;
    }
    return -EINVAL;
}

static uint32_t mx_rand_default(void *arg, uint32_t bound)
{
    return arc4random_uniform(bound);
}

/* A record's place in the order: preference, then position in the answer
 * (which makes qsort stable). */
struct mx_key {
    unsigned pref;
    uint32_t idx;
};

static int mx_key_cmp(const void *a, const void *b)
{
    const struct mx_key *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts by preference and shuffles each run of equal preference (RFC 5321
 * §5.1: "the sender-SMTP MUST randomize them to spread the load"). */
static void mx_keys_order(struct mx_key *k, size_t n, mx_rand_fn rnd, void *rndarg)
{
    if (rnd == NULL)
        rnd = mx_rand_default;
    qsort(k, n, sizeof *k, mx_key_cmp);
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && k[end].pref == k[start].pref)
            end++;
        /* Fisher-Yates over k[start..end). */
        for (size_t i = end - 1; i > start; i--) {
            size_t j = start + rnd(rndarg, (uint32_t)(i - start + 1));
            struct mx_key t = k[i];
            k[i] = k[j];
            k[j] = t;
        }
        start = end;
    }
}

void mx_parse_order(struct mx_rr *rrs, size_t n, mx_rand_fn rnd, void *rndarg)
{
    if (n < 2)
        return;
    struct mx_key *k = xmalloc(n * sizeof *k);
    for (size_t i = 0; i < n; i++) {
        k[i].pref = rrs[i].pref;
        k[i].idx = (uint32_t)i;
    }
    mx_keys_order(k, n, rnd, rndarg);
    struct mx_rr *tmp = xmalloc(n * sizeof *tmp);
    for (size_t i = 0; i < n; i++)
        tmp[i] = rrs[k[i].idx];
    memcpy(rrs, tmp, n * sizeof *tmp);
    free(tmp);
    free(k);
}

/* Record i of an answer, or NULL when libunbound gave nothing usable. */
static const unsigned char *mx_record(const struct dns_answer *a, size_t i, size_t *n)
{
    if (a->rdata == NULL || a->rdlen == NULL || a->rdata[i] == NULL || a->rdlen[i] < 0)
        return NULL;
    *n = (size_t)a->rdlen[i];
    return (const unsigned char *)a->rdata[i];
}

enum mx_parse_status mx_parse_mx_answer(const struct dns_answer *a, struct mx_rr *out,
                                        size_t max, size_t *nout, mx_rand_fn rnd,
                                        void *rndarg)
{
    *nout = 0;
    if (a->status != DNS_OK || a->count == 0)
        return MX_PARSE_NONE;
    size_t n = a->count < MX_PARSE_RRS_MAX ? a->count : MX_PARSE_RRS_MAX;
    struct mx_key *k = xmalloc(n * sizeof *k);
    size_t nk = 0, dots = 0;
    struct mx_rr rr;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const unsigned char *p = mx_record(a, i, &len);
        if (p == NULL || mx_parse_mx_rdata(p, len, &rr) < 0)
            continue;
        if (rr.name[0] == '\0') {
            dots++;
            continue;
        }
        k[nk].pref = rr.pref;
        k[nk].idx = (uint32_t)i;
        nk++;
    }
    if (nk == 0) {
        free(k);
        return dots ? MX_PARSE_NULLMX : MX_PARSE_NONE;
    }
    mx_keys_order(k, nk, rnd, rndarg);
    for (size_t i = 0; i < nk && *nout < max; i++) {
        size_t len = 0;
        const unsigned char *p = mx_record(a, k[i].idx, &len);
        if (p == NULL || mx_parse_mx_rdata(p, len, &rr) < 0) /* parsed fine above */
            continue;
        size_t j = 0;
        while (j < *nout && strcmp(out[j].name, rr.name) != 0)
            j++;
        if (j == *nout) /* not a duplicate of a better-placed host */
            out[(*nout)++] = rr;
    }
    free(k);
    return *nout ? MX_PARSE_OK : MX_PARSE_NONE;
}

size_t mx_parse_addr_answer(const struct dns_answer *a, int family,
                            struct sockaddr_storage *out, size_t max)
{
    size_t got = 0;
    if (a->status != DNS_OK)
        return 0;
    for (size_t i = 0; i < a->count && i < MX_PARSE_RRS_MAX && got < max; i++) {
        size_t len;
        const unsigned char *p = mx_record(a, i, &len);
        if (p != NULL && mx_parse_addr_rdata(family, p, len, &out[got]) == 0)
            got++;
    }
    return got;
}

size_t mx_parse_merge_addrs(const struct sockaddr_storage *v6, size_t n6,
                            const struct sockaddr_storage *v4, size_t n4,
                            struct sockaddr_storage *out, size_t max)
{
    size_t i6 = 0, i4 = 0, got = 0;
    while (got < max && (i6 < n6 || i4 < n4)) {
        if (i6 < n6)
            out[got++] = v6[i6++];
        if (got < max && i4 < n4)
            out[got++] = v4[i4++];
    }
    return got;
}

int mx_parse_literal(const char *s, struct sockaddr_storage *out)
{
    /* The longest literal, "IPv6:" and a 45-octet IPv6v4-full. */
    char body[64];
    unsigned char bin[16];
    if (s[0] != '[')
        return 0;
    size_t len = strlen(s);
    if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof body)
        return -EINVAL;
    memcpy(body, s + 1, len - 2);
    body[len - 2] = '\0';
    /* inet_pton() takes only the strict forms: four decimal parts without
     * leading zeros, RFC 4291 §2.2 text. */
    if (strutil_ncasecmp(body, "IPv6:", 5) == 0) {
        if (inet_pton(AF_INET6, body + 5, bin) != 1)
            return -EINVAL;
        int rc = mx_parse_addr_rdata(AF_INET6, bin, 16, out);
        return rc < 0 ? rc : 1;
    }
    if (inet_pton(AF_INET, body, bin) != 1)
        return -EINVAL;
    int rc = mx_parse_addr_rdata(AF_INET, bin, 4, out);
    return rc < 0 ? rc : 1;
}

int mx_parse_domain_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len > 0 && s[len - 1] == '.')
        len--;
    /* 253 text octets are 255 in wire form (RFC 1035 §2.3.4). */
    if (len == 0 || len > NAME_WIRE_MAX - 2)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (!mx_host_char((unsigned char)s[i]) || ++label > LABEL_MAX) {
            return 0;
        }
    }
    return label > 0;
}
