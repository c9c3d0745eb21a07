/* authres: the Authentication-Results header field (RFC 8601): building
 * the one tern adds, and reading the authserv-id of one that arrives, so
 * that a field claiming tern's id can be removed first (§5: a border MTA
 * "MUST delete" such fields, which would otherwise be forged verdicts).
 * The same reading serves ARC-Authentication-Results (RFC 8617 §4.1.1),
 * whose payload follows an "i=N;". Pure; unit-tested in
 * tests/unit/test_authres.c (with a cross-check by python3-authres in
 * tests/dmarc/), fuzzed by tests/fuzz/fuzz_authres.c.
 *
 * Methods and properties are the registered ones only (IANA "Email
 * Authentication Parameters"): spf with smtp.mailfrom or smtp.helo; dkim
 * with header.d, header.i, header.s, header.a, header.b (RFC 6008: a
 * prefix of b=, here the shortest of at least 8 characters that tells the
 * message's signatures apart); dmarc with header.from and policy.dmarc
 * (the disposition applied, registered by DMARCbis; RFC 7489 registered
 * header.from only); arc with smtp.remote-ip and header.oldest-pass. A
 * reason goes into a comment after the result. */
#ifndef TERN_MAILAUTH_AUTHRES_H
#define TERN_MAILAUTH_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/sizes.h"
#include "mailauth/arc_result.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf_record.h"

/* An authserv-id tern reads back: longer ones are never ours. */
#define AUTHRES_ID_MAX DNS_NAME_MAX

/* One SPF check: of MAIL FROM (smtp.mailfrom) or of HELO (smtp.helo). */
struct authres_spf {
    enum spf_result result;
    bool helo;            /* the HELO identity was checked */
    const char *identity; /* the value: the MAIL FROM address (or domain),
                           * or the HELO name; NULL for none */
    const char *reason;   /* a comment, or NULL */
};

/* One DKIM signature; NULL fields are left out. */
struct authres_dkim {
    enum dkim_result result;
    const char *d, *i, *s, *a, *b; /* b: the whole b= value */
    const char *reason;
};

struct authres_dmarc {
    enum dmarc_result result;
    const char *header_from; /* the RFC5322.From domain, or NULL */
    bool has_policy;         /* policy.dmarc is given */
    enum dmarc_policy policy;
    const char *reason;
};

struct authres_arc {
    enum arc_result result;
    const char *remote_ip; /* smtp.remote-ip, or NULL */
    int oldest_pass;       /* header.oldest-pass, or -1 */
    const char *reason;
};

/* What one Authentication-Results field reports; pointers may be NULL
 * (counts 0) for methods not run. */
struct authres_results {
    const char *authserv_id; /* this host's (the hostname setting) */
    const struct authres_spf *spf;
    size_t nspf;
    const struct authres_dkim *dkim;
    size_t ndkim;
    const struct authres_dmarc *dmarc;
    const struct authres_arc *arc;
};

/* Appends the whole field to out, "Authentication-Results: id;" and one
 * result per line, folded (CRLF and a TAB) so that lines stay within 78
 * characters where a value allows, never over 998, ending in CRLF; with
 * no result, "id; none". Values that are not tokens (or local@domain) are
 * quoted; text is kept to printable ASCII and well-formed UTF-8 (controls
 * and bad octets become '?'), so nothing a peer chose can end the field
 * or start another. Returns 0, or -EINVAL for an authserv-id that is
 * empty, too long or not printable (out unchanged). */
int authres_build(const struct authres_results *r, struct buf *out);

/* Reads the authserv-id of an Authentication-Results field body v[0..n)
 * (after the colon): CFWS, a token or quoted string (unquoted), then a
 * version, ';' or the end. Into id (NUL-terminated, as found). Returns 0,
 * -EINVAL for a body that has no readable id or continues with anything
 * else, -ENAMETOOLONG for an id of AUTHRES_ID_MAX or more octets. */
int authres_parse_id(const char *v, size_t n, char id[AUTHRES_ID_MAX]);

/* The same for an ARC-Authentication-Results body: "i=" 1 to 50 into
 * *instance, ';', then the payload as above. */
int authres_parse_arc_id(const char *v, size_t n, unsigned *instance, char id[AUTHRES_ID_MAX]);

/* Only the instance of an ARC-Authentication-Results body: "i=" 1 to 50
 * into *instance, ';', and where what follows it (the authres-payload)
 * starts into *payload. 0 or -EINVAL. */
int authres_parse_arc_instance(const char *v, size_t n, unsigned *instance, size_t *payload);

/* The result of `method` (lowercase, e.g. "arc") in an Authentication-
 * Results field body v[0..n) (after the colon): the first resinfo at the
 * top level whose method is `method`, ignoring ASCII case (quoted strings
 * and comments are skipped whole, so a value cannot pose as a resinfo).
 * Into result (NUL-terminated, lowercased). Returns 0, -ENOENT when no
 * resinfo has that method, -EINVAL for a body that does not read. */
int authres_parse_result(const char *v, size_t n, const char *method, char *result,
                         size_t cap);

/* Whether a field body claims the authserv-id `ours` (a host name): its
 * id is ours ignoring ASCII case and a final dot, whatever follows it; a
 * body whose id cannot be read counts as claiming it (it is malformed,
 * and a lenient reader downstream might take it for ours). arc selects
 * the ARC-Authentication-Results form. 1 or 0. */
int authres_claims_id(const char *v, size_t n, bool arc, const char *ours);

/* Appends s[0..n): well-formed UTF-8 characters as they are, each ASCII
 * octet through ascii() (which escapes it as its format needs), malformed
 * octets as '?'. Shared by the builder and the aggregate report's XML. */
void authres_text(struct buf *out, const char *s, size_t n,
                  void (*ascii)(struct buf *out, unsigned char c, const void *arg),
                  const void *arg);

#endif
