/* dnsq: the DNS questions of the mail-authentication evaluators (SPF now;
 * DKIM, DMARC and ARC later), and the answers they are fed. The evaluators
 * do no I/O: a step function says "I need the answers to these questions"
 * and returns; whoever runs them (the smtp process over dns/resolver, the
 * unit tests and the conformance runner over an in-memory zone, the fuzzer
 * over its input) resolves each question and hands the answer back.
 *
 * Questions come in batches of at most DNSQ_BATCH_MAX that may all be in
 * flight at once and be answered in any order (an SPF "mx" asks for the
 * addresses of its up to 10 hosts in one batch); an evaluator asks for its
 * next batch only when every question of the current one has an answer.
 *
 * Ownership: a question lives in its evaluator and stays valid until the
 * evaluator's next step. An answer and everything it points to belong to
 * the caller and need only live for the call that feeds it: evaluators copy
 * whatever they keep. */
#ifndef TERN_MAILAUTH_DNSQ_H
#define TERN_MAILAUTH_DNSQ_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/sizes.h"

/* The record types asked for, with their RFC 1035/3596 codes. */
enum dnsq_type {
    DNSQ_A = 1,
    DNSQ_PTR = 12,
    DNSQ_MX = 15,
    DNSQ_TXT = 16,
    DNSQ_AAAA = 28,
};

enum dnsq_status {
    DNSQ_OK,       /* NOERROR with at least one record of the type */
    DNSQ_NODATA,   /* NOERROR, no record of the type (count is 0) */
    DNSQ_NXDOMAIN, /* RCODE 3, Name Error */
    DNSQ_TEMPFAIL, /* anything else: SERVFAIL, REFUSED, a timeout, a
                    * bogus DNSSEC answer, a resolver out of memory */
};

/* At most this many questions in one batch. */
#define DNSQ_BATCH_MAX 10

/* One question. `name` is text without a final dot, 1 to 253 octets, in
 * labels of 1 to 63 split at every '.'; there are no escapes, so a label
 * may hold a space, '%' or '\' taken literally (SPF macros put such things
 * there). An adapter that goes through a presentation-format parser must
 * escape them; NUL and other control characters never appear. */
struct dnsq_question {
    enum dnsq_type type;
    char name[DNS_NAME_MAX];
};

/* One character-string of a TXT record (RFC 1035 §3.3.14): 0 to 255
 * octets, any value, NUL included. */
struct dnsq_str {
    const unsigned char *p;
    size_t len;
};

/* One resource record, decoded. Names (MX, PTR) are text as in a
 * question, with or without a final dot; the adapter drops a record whose
 * name it cannot put so (a label holding '.' or NUL). */
struct dnsq_rr {
    union {
        struct {
            const struct dnsq_str *strs; /* the RR's character-strings */
            size_t n;                    /* 0 is possible, if malformed */
        } txt;
        unsigned char addr[16]; /* A: addr[0..4), AAAA: addr[0..16) */
        struct {
            unsigned pref;
            const char *name; /* "" or "." is a null MX (RFC 7505) */
        } mx;
        const char *ptr;
    } u;
};

/* The answer to one question: the status and, for DNSQ_OK, the records
 * of the question's type after CNAMEs are followed, in the order received.
 * `count` is 0 unless status is DNSQ_OK. */
struct dnsq_answer {
    enum dnsq_status status;
    size_t count;
    const struct dnsq_rr *rrs;
};

/* Splits the wire-format RDATA of one TXT record (RFC 1035 §3.3.14: each
 * character-string a length octet and that many octets) into out[], which
 * points into rd. For an adapter over a resolver that hands out RDATA.
 * Returns the number of strings, or -EINVAL when a string runs past n or
 * there are more than max. */
int dnsq_txt_parse(const unsigned char *rd, size_t n, struct dnsq_str *out, size_t max);

/* Replaces out's contents with the TXT RR's strings joined without a
 * separator: one record, as SPF (RFC 7208 §3.3), DKIM (RFC 6376 §3.6.2.2)
 * and DMARC read it. */
void dnsq_txt_join(struct buf *out, const struct dnsq_rr *rr);

/* "TXT", "A", ...: for logs. */
const char *dnsq_type_name(enum dnsq_type t);

/* Whether `name` can be asked as a question: 1 to 253 octets, labels of 1
 * to 63, no control character (0x00-0x1f, 0x7f), no final dot. 1 or 0. */
int dnsq_name_ok(const char *name, size_t len);

#endif
