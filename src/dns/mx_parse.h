/* mx_parse: the pure parts of MX resolution, no I/O: decoding the rdata of
 * MX, A and AAAA answers, ordering MX hosts, null MX detection, address
 * literals. Unit-tested (tests/unit/test_dns.c) and fuzzed
 * (tests/fuzz/fuzz_mx.c) without a DNS server. */
#ifndef TERN_DNS_MX_PARSE_H
#define TERN_DNS_MX_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/mx.h"
#include "dns/resolver.h"

/* At most this many records of one answer are looked at: a 64 KB answer
 * could hold thousands, and only the best MX_HOSTS_MAX are kept. */
#define MX_PARSE_RRS_MAX 512

/* One decoded MX record. */
struct mx_rr {
    unsigned pref;
    char name[MX_NAME_MAX + 1]; /* "" is the root, i.e. a null MX target */
};

/* Random numbers in [0, bound) for shuffling; arg is passed through. */
typedef uint32_t (*mx_rand_fn)(void *arg, uint32_t bound);

/* Decodes the uncompressed wire-format domain name (RFC 1035 §3.1) at
 * p[0..n) into lower-case text without the final dot ("" for the root),
 * and sets *used to the octets it took. Refuses (-EINVAL) a compression
 * pointer (libunbound hands rdata out uncompressed), a label over 63, one
 * running past n, and any octet that is not a letter, digit, '-' or '_':
 * such a name is no mail host, and would change meaning as text ('.'
 * inside a label) or in a log. Returns 0, -EINVAL, or -ENAMETOOLONG for
 * a name over 255 octets or over outsize as text. */
int mx_parse_name(const unsigned char *p, size_t n, size_t *used, char *out, size_t outsize);

/* MX rdata (RFC 1035 §3.3.9): a 16-bit preference and a name filling the
 * rest exactly. Returns 0, -EINVAL or -ENAMETOOLONG (mx_parse_name). */
int mx_parse_mx_rdata(const unsigned char *p, size_t n, struct mx_rr *out);

/* A (4 octets) or AAAA (16 octets) rdata into *out, port 0. Refuses a
 * wrong length and addresses nothing can be delivered to: unspecified
 * (0.0.0.0/8, which Linux connects to as this host, and ::), multicast,
 * broadcast. family is AF_INET or AF_INET6. Returns 0 or -EINVAL. */
int mx_parse_addr_rdata(int family, const unsigned char *p, size_t n,
                        struct sockaddr_storage *out);

enum mx_parse_status {
    MX_PARSE_OK,     /* out[0..*nout) holds the hosts to try, *nout >= 1 */
    MX_PARSE_NULLMX, /* every usable record targets "." (RFC 7505) */
    MX_PARSE_NONE,   /* no usable record (all malformed) */
};

/* Decodes the MX records of an answer (status DNS_OK) and orders them:
 * by preference, equal preferences shuffled with rnd (NULL: a real random
 * source), duplicates of a host dropped (its best preference kept), at
 * most `max` kept. Malformed records are skipped. A "." target among
 * other records is dropped: RFC 7505 §3 forbids mixing them, and "." has
 * no address. A lone "." with a preference other than 0 still counts as
 * a null MX: the domain says it takes no mail either way. */
enum mx_parse_status mx_parse_mx_answer(const struct dns_answer *a, struct mx_rr *out,
                                        size_t max, size_t *nout, mx_rand_fn rnd,
                                        void *rndarg);

/* Sorts rrs by preference, keeping the given order among equals, then
 * shuffles each run of equal preference with rnd (NULL: a real random
 * source). */
void mx_parse_order(struct mx_rr *rrs, size_t n, mx_rand_fn rnd, void *rndarg);

/* Decodes the A (family AF_INET) or AAAA (AF_INET6) records of an answer
 * into out[], skipping malformed ones; returns how many (<= max). */
size_t mx_parse_addr_answer(const struct dns_answer *a, int family,
                            struct sockaddr_storage *out, size_t max);

/* Interleaves IPv6 and IPv4 addresses, IPv6 first (RFC 8305 §4), into
 * out[] (which must not overlap the inputs); returns how many (<= max).
 * A cap then keeps both families. */
size_t mx_parse_merge_addrs(const struct sockaddr_storage *v6, size_t n6,
                            const struct sockaddr_storage *v4, size_t n4,
                            struct sockaddr_storage *out, size_t max);

/* An address literal of RFC 5321 §4.1.3 ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]", tag case-insensitive) into *out, port 0.
 * Returns 1 for a usable literal, 0 when s is no literal (does not start
 * with '['), -EINVAL for a malformed or unusable one (general literals
 * included: nothing can deliver to them). */
int mx_parse_literal(const char *s, struct sockaddr_storage *out);

/* Whether s can be asked of DNS as a mail domain: 1 to 253 octets of
 * letters, digits, '-', '_' in labels of 1 to 63, dot-separated, one
 * final dot allowed. 1 or 0. */
int mx_parse_domain_ok(const char *s);

#endif
