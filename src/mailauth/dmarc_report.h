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
 *   valid against the RFC's schema (tests/dmarc/: xmllint). The rows of a
 *   day are aggregated per policy domain (dmarc_report_agg) by
 *   `tern dmarc report` (cmd/dmarc.c).
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
 * are cut; an envelope or SPF domain that dnsq_name_ok refuses (an
 * empty label, an odd HELO) is left empty and a DKIM signature whose d=
 * it refuses is left out, so the row's line always reads back. Returns 0, or
 * -EINVAL when d has no record or the source IP is not an address. */
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
 * same policy domain; as dmarc_report_agg_xml over them. Returns 0, or
 * -EINVAL for no rows, mixed policy domains or missing metadata, -ENOSPC
 * past the aggregation's limits (out unchanged). */
int dmarc_report_xml(const struct dmarc_report_meta *m, const struct dmarc_report_row *rows,
                     size_t n, struct buf *out);

/* ---- aggregation (§7.2.1): one report per policy domain and period ----
 *
 * Rows are counted per policy domain, identical rows (all but the time
 * and the published policy) as one record with their count. Memory
 * follows the distinct records, not the rows, and is bounded: a row that
 * would make more than DMARC_REPORT_DOMAINS_MAX reports or
 * DMARC_REPORT_RECORDS_MAX records in all is refused (-ENOSPC), so a day
 * of hostile mail cannot take the reporting command's memory (each
 * domain keeps one whole row, about 6 KB; a record its key line). */
#define DMARC_REPORT_DOMAINS_MAX 10000
#define DMARC_REPORT_RECORDS_MAX 200000

struct dmarc_report_agg;

/* An empty aggregation; dmarc_report_agg_free() releases it. */
struct dmarc_report_agg *dmarc_report_agg_new(void);
void dmarc_report_agg_free(struct dmarc_report_agg *a);

/* Counts *row (copied as needed). 0, or -ENOSPC (not counted). */
int dmarc_report_agg_add(struct dmarc_report_agg *a, const struct dmarc_report_row *row);

/* One line of a rows file (with or without its LF): read by
 * dmarc_report_row_parse and counted when its time is in [begin, end).
 * 0, -EINVAL for a line that is no row, -ERANGE for a time outside,
 * -ENOSPC as above. */
int dmarc_report_agg_add_line(struct dmarc_report_agg *a, const char *line, size_t n,
                              long long begin, long long end);

/* A rows file read as it comes, in pieces of any size: each line ending
 * in LF goes to dmarc_report_agg_add_line and is counted by its outcome;
 * a line longer than DMARC_REPORT_LINE_MAX is malformed without being
 * held (memory stays bounded whatever the file holds), and so is a last
 * line without its LF (torn by a crash while it was written). The file
 * is written by the queue from what the smtp process sent: untrusted
 * (fuzzed by tests/fuzz/fuzz_dmarc_rows.c). */
struct dmarc_report_reader {
    struct dmarc_report_agg *agg; /* not owned */
    long long begin, end;         /* the period: rows outside are not counted */
    struct buf line;              /* owned: the line so far */
    bool overlong;                /* the line so far went past the limit */
    uint64_t rows, malformed, outside, full;
};

void dmarc_report_reader_init(struct dmarc_report_reader *r, struct dmarc_report_agg *a,
                              long long begin, long long end);
void dmarc_report_reader_feed(struct dmarc_report_reader *r, const char *p, size_t n);
/* The end of the file. */
void dmarc_report_reader_end(struct dmarc_report_reader *r);
void dmarc_report_reader_free(struct dmarc_report_reader *r);

/* The reports: their number, and for report i (in the order its policy
 * domain was first seen) the newest row (by time; of equal times the
 * last counted), whose policy_domain, published policy and rua the
 * report uses; the messages it counts and its distinct records. NULL
 * and 0 for an i out of range. */
size_t dmarc_report_agg_count(const struct dmarc_report_agg *a);
const struct dmarc_report_row *dmarc_report_agg_policy(const struct dmarc_report_agg *a,
                                                       size_t i);
uint64_t dmarc_report_agg_messages(const struct dmarc_report_agg *a, size_t i);
size_t dmarc_report_agg_records(const struct dmarc_report_agg *a, size_t i);

/* Appends report i's XML (Appendix C) to out: the metadata, the newest
 * row's policy_published, one <record> per distinct row with its count,
 * in a fixed order (the same rows in any order give the same report).
 * Returns 0, or -EINVAL for an i out of range or missing metadata (out
 * unchanged). */
int dmarc_report_agg_xml(const struct dmarc_report_agg *a, size_t i,
                         const struct dmarc_report_meta *m, struct buf *out);

#endif
