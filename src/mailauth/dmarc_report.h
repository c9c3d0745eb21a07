/* dmarc_report: DMARC aggregate reports (RFC 7489 §7.2, Appendix C).
 *
 * Two pure pieces for the later `tern dmarc report` command and the
 * queue that feeds it:
 * - the row: what one evaluated message contributes to the report of one
 *   policy domain (a message with several From domains gives one row per
 *   domain that has a record). A row is one text line
 *   (dmarc_report_row_format), so the queue can append it to a daily file
 *   with one write; dmarc_report_row_parse reads it back, checking every
 *   field (the file is on disk, so treated as untrusted).
 * - the report: the XML of Appendix C from report metadata and the rows
 *   of one policy domain, identical rows counted together; escaped, and
 *   valid against the RFC's schema (tests/dmarc/: xmllint).
 *
 * The line (fields separated by one TAB, ending in LF; in a field every
 * octet below 0x21, 0x7f and '%' is written %HH, and "-" is the empty
 * field):
 *
 *   dmarc1 TIME SOURCE-IP POLICY-DOMAIN HEADER-FROM ENVELOPE-FROM
 *   ENVELOPE-TO DISPOSITION DKIM SPF REASONS P SP PCT ADKIM ASPF FO RUA
 *   SPF-SCOPE SPF-RESULT SPF-DOMAIN [DKIM-RESULT DKIM-DOMAIN SELECTOR]...
 *
 * DKIM and SPF are the aligned results (pass or fail) of
 * policy_evaluated; REASONS the override types, comma-separated; RUA the
 * URIs, comma-separated (a DMARC URI has its commas encoded, §6.4). The
 * last fields are the auth_results, uninterpreted: the SPF check and up
 * to DMARC_REPORT_DKIM_MAX signatures. */
#ifndef TERN_MAILAUTH_DMARC_REPORT_H
#define TERN_MAILAUTH_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/sizes.h"
#include "mailauth/dmarc.h"
#include "mailauth/dmarc_record.h"
#include "mailauth/spf_record.h"

#define DMARC_REPORT_DKIM_MAX 4 /* signatures kept per row */
#define DMARC_REPORT_LINE_MAX 16384 /* a row's line, LF included */

/* Override reasons (Appendix C PolicyOverrideType), as bits. */
#define DMARC_REASON_FORWARDED 0x01
#define DMARC_REASON_SAMPLED_OUT 0x02
#define DMARC_REASON_TRUSTED_FORWARDER 0x04
#define DMARC_REASON_MAILING_LIST 0x08
#define DMARC_REASON_LOCAL_POLICY 0x10 /* e.g. dmarc_policy = report */
#define DMARC_REASON_OTHER 0x20

struct dmarc_report_dkim {
    enum dkim_result result;
    char domain[DNS_NAME_MAX];
    char selector[DNS_NAME_MAX]; /* "" when unknown */
};

/* One message's contribution to one policy domain's report; no pointers,
 * so it can be copied. */
struct dmarc_report_row {
    long long time;                   /* arrival, seconds since the epoch */
    char source_ip[IP_TEXT_MAX];      /* numeric text */
    char policy_domain[DNS_NAME_MAX]; /* where the record was found */
    char header_from[DNS_NAME_MAX];
    char envelope_from[DNS_NAME_MAX]; /* RFC5321.MailFrom domain, "" for <> */
    char envelope_to[DNS_NAME_MAX];   /* a recipient domain, "" if not kept */
    enum dmarc_policy disposition;    /* what was done */
    bool dkim_pass, spf_pass;         /* aligned */
    unsigned reasons;                 /* DMARC_REASON_* */
    /* policy_published */
    enum dmarc_policy p, sp;
    unsigned pct;
    enum dmarc_align adkim, aspf;
    unsigned fo;
    struct dmarc_uri rua[DMARC_URIS_MAX];
    size_t nrua;
    /* auth_results */
    bool spf_helo;                    /* scope helo, else mfrom */
    enum spf_result spf_result;
    char spf_domain[DNS_NAME_MAX];
    struct dmarc_report_dkim dkim[DMARC_REPORT_DKIM_MAX];
    size_t ndkim;
};

/* What the session knows of a message, besides the evaluation. Strings
 * may be NULL for "". */
struct dmarc_report_msg {
    long long time;
    const char *source_ip;
    const char *envelope_from;   /* the domain of MAIL FROM, "" for <> */
    const char *envelope_to;
    enum spf_result spf_result;  /* as given to the evaluator */
    const char *spf_domain;
    bool spf_helo;               /* the SPF domain was HELO's (null path) */
    const struct dmarc_dkim *dkim;
    size_t ndkim;
    enum dmarc_policy applied;   /* the disposition actually applied */
    unsigned reasons;            /* DMARC_REASON_* besides sampled_out */
};

/* Fills *row from one From domain's outcome d (which must have a record)
 * and m. sampled_out is added from d; a disposition that differs from
 * d's adds local_policy unless m gave a reason. Strings that do not fit
 * are cut. Returns 0, or -EINVAL when d has no record or the source IP
 * is not an address. */
int dmarc_report_row_fill(struct dmarc_report_row *row, const struct dmarc_domain *d,
                          const struct dmarc_report_msg *m);

/* Appends the row's line (with its LF) to out. */
void dmarc_report_row_format(const struct dmarc_report_row *row, struct buf *out);

/* Reads one line (with or without its LF) into *row. Returns 0, or
 * -EINVAL for anything that is not a well-formed row. */
int dmarc_report_row_parse(struct dmarc_report_row *row, const char *line, size_t n);

/* The report's metadata (Appendix C ReportMetadataType). */
struct dmarc_report_meta {
    const char *org_name;
    const char *email;
    const char *extra_contact_info; /* NULL to leave out */
    const char *report_id;
    long long begin, end;           /* seconds since the epoch */
};

/* Appends the XML report of rows[0..n) to out: all rows must have the
 * same policy domain; policy_published is the last row's (the newest
 * record seen); identical rows (all but the time and the published
 * policy) become one record with their count. Returns 0, or -EINVAL for
 * no rows, mixed policy domains or missing metadata (out unchanged). */
int dmarc_report_xml(const struct dmarc_report_meta *m, const struct dmarc_report_row *rows,
                     size_t n, struct buf *out);

#endif
