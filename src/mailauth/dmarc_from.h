/* dmarc_from: the RFC5322.From domains a DMARC evaluation judges (RFC
 * 7489 §3.1, §6.6.1), from the From: fields of a message's header.
 *
 * The parser is strict RFC 5322 (§3.4 mailbox-list and address-list with
 * groups, as RFC 6854 allows in From:; display names of words and the
 * obs-phrase '.', quoted strings, nested comments, folding, obs-route,
 * obs-local-part, obs-domain, the empty elements of obs-mbox-list) with
 * RFC 6532's UTF-8 (well-formed only) where the grammar has atext or
 * qtext. It does not reuse mail/addrlist, which is lenient on purpose
 * (`sendmail -t` takes what it can): for DMARC an address the parser
 * reads one way and a mail reader shows another is the attack (two angle
 * addresses, text after '>', an '@' outside a quoted local part), so
 * anything outside the grammar is a syntax error here.
 *
 * What the message comes to (dmarc_from.status):
 * - DMARC_FROM_OK: every address of every From: field has a DNS domain;
 *   the distinct domains (lower case, as given otherwise: A-labels or
 *   UTF-8) are in domains[]. Several fields or several addresses are
 *   judged each (RFC 7489 §6.6.1: "apply the DMARC check using each of
 *   those domains"), the strictest outcome wins (mailauth/dmarc.h).
 * - Otherwise no domain can be judged: no From: field (ABSENT), fields
 *   with no address (EMPTY: "From: undisclosed:;"), a syntax error
 *   (SYNTAX), an address whose domain is a literal or no DNS name
 *   (NODOMAIN), or more than DMARC_FROM_MAX distinct domains (TOOMANY).
 *   RFC 5322 §3.6 requires one From: with a usable address, so the
 *   evaluator gives these permerror with a reject disposition (dmarc.h). */
#ifndef TERN_MAILAUTH_DMARC_FROM_H
#define TERN_MAILAUTH_DMARC_FROM_H

#include <stddef.h>

#include "base/sizes.h"

#define DMARC_FROM_MAX 8 /* distinct domains judged; bounds the DNS work */

enum dmarc_from_status {
    DMARC_FROM_OK,
    DMARC_FROM_ABSENT,
    DMARC_FROM_EMPTY,
    DMARC_FROM_SYNTAX,
    DMARC_FROM_NODOMAIN,
    DMARC_FROM_TOOMANY,
};

struct dmarc_from {
    enum dmarc_from_status status;
    unsigned nfields; /* From: fields seen */
    unsigned naddrs;  /* addresses in them */
    size_t ndomains;
    char domains[DMARC_FROM_MAX][DNS_NAME_MAX];
};

/* An empty result: status ABSENT until a field is added. */
void dmarc_from_init(struct dmarc_from *f);

/* Adds one From: field's body v[0..n) (after the colon; folds allowed).
 * Returns 0, or -EINVAL when this field makes the status anything but OK
 * (the status says what). */
int dmarc_from_add_field(struct dmarc_from *f, const char *v, size_t n);

/* Initialises f and adds every From: field of the header section
 * h[0..n) (lines ending in CRLF or LF; it ends at an empty line, at a
 * line that is no field, or at n). Returns 0 or -EINVAL as above. */
int dmarc_from_parse_header(struct dmarc_from *f, const char *h, size_t n);

/* "ok", "no From field", ...: for reasons and logs. */
const char *dmarc_from_status_name(enum dmarc_from_status s);

#endif
