/* psl: the Organizational Domain of RFC 7489 §3.2 (DMARC's record
 * fallback and relaxed alignment), from the Public Suffix List through
 * libpsl. The list is libpsl's psl_latest(NULL): Debian's
 * /usr/share/publicsuffix/public_suffix_list.dafsa (package publicsuffix,
 * kept current by Debian's updates) when it is newer than the list built
 * into libpsl, which is the fallback when the file is missing, so a fresh
 * system with only libpsl5 still works. The ICANN and the private
 * sections both count (a.blogspot.com is its own organisation), as in
 * OpenDMARC and python3-authheaders.
 *
 * The list is loaded once per process, at psl_org_init() or at the first
 * psl_org_domain(). A process that chroots (tern-smtpd) must call
 * psl_org_init() before, or it gets only the built-in list. */
#ifndef TERN_MAILAUTH_PSL_H
#define TERN_MAILAUTH_PSL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/sizes.h"

/* Loads the list (idempotent, thread-safe). Returns 0 or -ENOMEM. */
int psl_org_init(void);

/* Where the loaded list came from, for the start-up log: the file name,
 * or "built-in". */
const char *psl_org_source(void);

/* The Organizational Domain of `domain` into out: its public suffix with
 * one more label (RFC 7489 §3.2 steps 1-3), in lower case (ASCII letters
 * only: IDNs are taken as given, A-labels or UTF-8). A final dot is
 * dropped. A name that is itself a public suffix ("co.uk", "com", or a
 * single label) is its own Organizational Domain. Returns 0, or -EINVAL
 * for a name DNS cannot hold (empty labels, over 253 octets, control
 * characters), or -ENOMEM. */
int psl_org_domain(const char *domain, char out[DNS_NAME_MAX]);

/* Whether a and b have the same Organizational Domain (relaxed alignment,
 * RFC 7489 §3.1); false when either is not a valid name. */
bool psl_org_same(const char *a, const char *b);

#endif
