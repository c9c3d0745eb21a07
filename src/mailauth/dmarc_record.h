/* dmarc_record: parsing one DMARC policy record (RFC 7489 §6.3, the ABNF
 * of §6.4, the error rules of §6.6.3). Pure; unit-tested in
 * tests/unit/test_dmarc_record.c, fuzzed by tests/fuzz/fuzz_dmarc_record.c.
 *
 * The rules, where the RFC leaves a choice:
 * - A record starts with "v=DMARC1" ("v" in any case, WSP around the '=',
 *   "DMARC1" in upper case as the ABNF's %x codes say), followed by a ';'
 *   or the end; anything else is no DMARC record (§6.6.3 step 4).
 * - Tag names and the keyword values are matched without regard to case
 *   (ABNF strings); unknown tags are ignored (§6.3); a tag given twice
 *   counts the first time only.
 * - A missing or invalid "p", or an invalid "sp" (§6.6.3 step 6): when
 *   "rua" holds at least one valid URI the record reads as p=none (and
 *   p_valid is false), else the record is unusable (-EINVAL).
 * - Any other tag with an invalid value takes its default (§6.3: "syntax
 *   errors in the remainder of the record SHOULD be discarded in favor of
 *   default values"): adkim and aspf r, pct 100 (also above 100), fo 0,
 *   rf afrf, ri 86400; an invalid URI of rua or ruf is skipped alone.
 * - "p" need not be the second tag (the ABNF's order is not enforced, as
 *   no implementation does).
 * - At most DMARC_URIS_MAX URIs of each list are kept (§6.2: receivers
 *   MUST support at least two); a URI longer than DMARC_URI_MAX is
 *   invalid. */
#ifndef TERN_MAILAUTH_DMARC_RECORD_H
#define TERN_MAILAUTH_DMARC_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dmarc_policy {
    DMARC_POLICY_NONE,
    DMARC_POLICY_QUARANTINE,
    DMARC_POLICY_REJECT,
};

enum dmarc_align {
    DMARC_ALIGN_RELAXED,
    DMARC_ALIGN_STRICT,
};

/* fo: failure reporting options (§6.3), as bits. */
#define DMARC_FO_0 0x1 /* all mechanisms failed to align (the default) */
#define DMARC_FO_1 0x2 /* any mechanism failed */
#define DMARC_FO_D 0x4 /* a DKIM signature failed */
#define DMARC_FO_S 0x8 /* SPF failed */

/* rf: failure report formats, as bits; afrf is the only one registered. */
#define DMARC_RF_AFRF 0x1

#define DMARC_URIS_MAX 4
#define DMARC_URI_MAX 512 /* with the NUL */

/* One reporting URI with its size limit. */
struct dmarc_uri {
    char uri[DMARC_URI_MAX]; /* as published, without "!size" */
    uint64_t max_bytes;      /* 0: no limit; k, m, g, t are 2^10 steps,
                              * saturating at UINT64_MAX */
};

/* A parsed record; self-contained (no pointers), so it can be copied. */
struct dmarc_record {
    enum dmarc_policy p;
    enum dmarc_policy sp;       /* p when not given */
    bool p_valid;               /* false: read as p=none by §6.6.3 step 6 */
    bool sp_given;
    enum dmarc_align adkim, aspf;
    unsigned pct;               /* 0 to 100 */
    unsigned fo;                /* DMARC_FO_* bits */
    unsigned rf;                /* DMARC_RF_* bits */
    uint32_t ri;                /* seconds */
    struct dmarc_uri rua[DMARC_URIS_MAX], ruf[DMARC_URIS_MAX];
    size_t nrua, nruf;
};

/* Whether text[0..n) starts a DMARC record (§6.6.3 step 4). */
bool dmarc_record_is_dmarc(const char *text, size_t n);

/* Parses text[0..n) into *rec. Returns 0, or -EINVAL when it is no DMARC
 * record or unusable (no valid p and no valid rua), with *why set to a
 * static reason when why is not NULL. */
int dmarc_record_parse(struct dmarc_record *rec, const char *text, size_t n,
                       const char **why);

/* "none", "quarantine", "reject"; "r", "s". */
const char *dmarc_policy_name(enum dmarc_policy p);
const char *dmarc_align_name(enum dmarc_align a);

/* The fo tag as published, "0", "1:d", ... into out (at least 8 octets). */
void dmarc_record_fo_text(unsigned fo, char out[8]);

#endif
