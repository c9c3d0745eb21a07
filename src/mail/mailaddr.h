/* mailaddr: RFC 5321 §4.1.2 paths ("<local@domain>") and their parts.
 * Pure parsing, no I/O: fuzzed by tests/fuzz/fuzz_path.c. */
#ifndef TERN_MAIL_MAILADDR_H
#define TERN_MAIL_MAILADDR_H

#include <stddef.h>

/* RFC 5321 §4.5.3.1: local part 64 octets, domain 255, path 256. */
#define MAILADDR_LOCAL_MAX 64
#define MAILADDR_DOMAIN_MAX 255
#define MAILADDR_PATH_MAX 256

/* Parse flags. */
#define MAILADDR_ALLOW_NULL 0x01       /* "<>" accepted (MAIL FROM) */
#define MAILADDR_ALLOW_POSTMASTER 0x02 /* "<postmaster>" accepted (RCPT TO) */
#define MAILADDR_ALLOW_UTF8 0x04       /* RFC 6531 UTF-8 in local part and domain */

/* Result flags. */
#define MAILADDR_F_NULL 0x01       /* the null path "<>" */
#define MAILADDR_F_POSTMASTER 0x02 /* "<postmaster>" without a domain */
#define MAILADDR_F_QUOTED 0x04     /* local part was a quoted-string */
#define MAILADDR_F_LITERAL 0x08    /* domain is an address literal [..] */
#define MAILADDR_F_UTF8 0x10       /* contains octets >= 0x80 */

enum mailaddr_status {
    MAILADDR_OK = 0,
    MAILADDR_ESYNTAX = -1,  /* not a path per §4.1.2 */
    MAILADDR_ETOOLONG = -2, /* a part or the path exceeds §4.5.3.1 */
    MAILADDR_EUTF8 = -3,    /* 8-bit octets without MAILADDR_ALLOW_UTF8 */
};

struct mailaddr {
    unsigned flags;
    /* The local part decoded: quotes removed and quoted-pairs resolved. */
    char local[MAILADDR_LOCAL_MAX + 1];
    /* The domain as written (an address literal keeps its brackets);
     * empty for the null path and bare postmaster. */
    char domain[MAILADDR_DOMAIN_MAX + 1];
    /* The mailbox as it is written out again (for headers, logs, the
     * spool): the local part re-quoted when it needs quoting, "@", the
     * domain. "" for the null path, "postmaster" for bare postmaster. */
    char text[MAILADDR_PATH_MAX + 1];
};

/* Parses a path starting at in[0] (which must be '<'). On success fills
 * *out, sets *consumed to the octets used (through the closing '>') and
 * returns MAILADDR_OK; otherwise returns a negative mailaddr_status.
 * A source route ("<@a,@b:user@c>") is accepted and ignored (§4.1.2,
 * Appendix C). Never reads beyond in[len-1]. */
int mailaddr_parse_path(const char *in, size_t len, unsigned flags, struct mailaddr *out,
                        size_t *consumed);

/* Parses a bare mailbox ("local@domain", no brackets), as found in config
 * files and aliases. Same result and rules as mailaddr_parse_path. */
int mailaddr_parse_mailbox(const char *in, size_t len, unsigned flags, struct mailaddr *out);

/* Whether in[0..len), as a whole, is an ASCII Domain or an IPv4 or IPv6
 * address literal (RFC 5321 §4.1.2, §4.1.3; general literals refused):
 * what EHLO should name (§4.1.1.1) and a trace header's From-domain must
 * be (§4.4). Returns 1 or 0. */
int mailaddr_is_host(const char *in, size_t len);

/* Case-insensitive comparison of two domains (ASCII only). */
int mailaddr_domain_eq(const char *a, const char *b);

#endif
