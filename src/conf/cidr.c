/* cidr.c: relay_networks, and which client addresses are inside them. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "conf/config_priv.h"

int conf_parse_cidr(const char *s, struct conf_cidr *c)
{
    char a[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof a)
        return -EINVAL;
    memcpy(a, s, alen);
    a[alen] = '\0';
    memset(c, 0, sizeof *c);
    c->family = strchr(a, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(c->family, a, c->addr) != 1)
        return -EINVAL;
    unsigned max = c->family == AF_INET ? 32 : 128;
    c->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        unsigned v = 0;
        if (*p == '\0' || strlen(p) > 3)
            return -EINVAL;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > max)
            return -EINVAL;
        c->prefix = v;
    }
    return 0;
}

/* Does the first `prefix` bits of a equal those of b? */
static int cidr_match(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address. */
static int cidr_addr(const char *ip, unsigned char *out, int *family)
{
    if (inet_pton(AF_INET, ip, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, out) != 1)
        return -EINVAL;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out, mapped, 12) == 0) {
        memmove(out, out + 12, 4);
        *family = AF_INET;
    } else {
        *family = AF_INET6;
    }
    return 0;
}

int config_relay_allowed(const struct config *cfg, const char *ip)
{
    unsigned char a[16];
    int family;
    if (cidr_addr(ip, a, &family) < 0)
        return 0;
    for (size_t i = 0; i < cfg->nrelay_networks; i++) {
        const struct conf_cidr *c = &cfg->relay_networks[i];
        if (c->family == family && cidr_match(a, c->addr, c->prefix))
            return 1;
    }
    return 0;
}

int config_ip_is_loopback(const char *ip)
{
    unsigned char a[16];
    int family;
    if (cidr_addr(ip, a, &family) < 0)
        return 0;
    if (family == AF_INET)
        return a[0] == 127;
    static const unsigned char one[16] = {[15] = 1};
    return memcmp(a, one, 16) == 0;
}
