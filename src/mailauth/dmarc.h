/* dmarc: the DMARC check of one message (RFC 7489 §4.2, §6.6) as a
 * resumable evaluator that does no I/O, in the style of mailauth/spf.h:
 * start it with the message's From domains (mailauth/dmarc_from.h) and
 * its SPF and DKIM results, then step it, answering its DNS questions
 * (mailauth/dnsq.h), until it says DMARC_STEP_DONE.
 *
 *     struct dmarc_eval *e = dmarc_eval_new();        once, reusable
 *     dmarc_eval_start(e, &params);
 *     while (dmarc_eval_step(e) == DMARC_STEP_DNS) {
 *         n = dmarc_eval_questions(e, &q);
 *         for (i < n) resolve q[i], later dmarc_eval_answer(e, i, &answer);
 *     }
 *     dmarc_eval_verdict(e), dmarc_eval_domain(e, i) for each From domain
 *
 * Per From domain (§6.6.3): TXT at _dmarc.<domain>; the records that
 * start with v=DMARC1 are kept; none there: TXT at _dmarc.<Organizational
 * Domain> (mailauth/psl.h) when that is another name; more than one at
 * either: no DMARC (none, discovery ends); one: parsed
 * (mailauth/dmarc_record.h), and an unusable one is none as well. A DNS
 * failure (not NXDOMAIN or NODATA) at either is temperror. At most two
 * batches of at most DMARC_FROM_MAX questions each.
 *
 * Then (§3.1, §4.2): the record's p applies to the domain where it was
 * found, sp to a From domain that is a subdomain of the Organizational
 * Domain whose record was used. The message passes for the domain when
 * SPF passed for a domain aligned with it (aspf: relaxed, the same
 * Organizational Domain; strict, the same name) or any DKIM signature
 * passed with a d= aligned with it (adkim); else it fails. The SPF
 * identity is RFC5321.MailFrom (§4.1 and RFC 7208 §2.4: for the null
 * reverse-path, the MAIL FROM check is of postmaster@<HELO>, so the
 * domain is the HELO name): the caller passes the result and domain of
 * the MAIL FROM check (spf_check_result(), spf_check_domain()); a HELO
 * check's result is never used for alignment.
 *
 * The disposition of a failure is the policy, with pct sampling (§6.6.4:
 * a message not sampled gets the next policy down: reject becomes
 * quarantine, quarantine becomes none). The caller provides the random
 * number, so tests can choose it.
 *
 * Several From domains (§6.6.1): each is checked; the verdict is the most
 * severe of them, fail (with the strictest disposition) over temperror
 * over permerror over none over pass, and names that domain. A message
 * whose From yields no domain to check (dmarc_from.h's statuses other
 * than OK) is permerror with disposition reject: RFC 5322 §3.6 requires
 * one, and a message without a usable author domain is where DMARC
 * could be evaded ("typically rejected", §6.6.1).
 *
 * Local exceptions (relay_networks, authenticated senders) are the
 * caller's: such messages are not evaluated at all. */
#ifndef TERN_MAILAUTH_DMARC_H
#define TERN_MAILAUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/sizes.h"
#include "mailauth/dkim_result.h"
#include "mailauth/dmarc_from.h"
#include "mailauth/dmarc_record.h"
#include "mailauth/dnsq.h"
#include "mailauth/spf_record.h"

/* The DMARC results of RFC 7489 §11.2, in RFC 8601's spelling. */
enum dmarc_result {
    DMARC_NONE,
    DMARC_PASS,
    DMARC_FAIL,
    DMARC_TEMPERROR,
    DMARC_PERMERROR,
};

/* One DKIM signature's outcome, as the DKIM verifier hands it on. */
struct dmarc_dkim {
    enum dkim_result result;
    const char *domain;   /* d= */
    const char *selector; /* s=, for reports; may be NULL */
};

#define DMARC_DKIM_MAX 16 /* signatures considered; more are ignored */

/* The inputs of one evaluation; everything is copied by start. */
struct dmarc_params {
    const struct dmarc_from *from;
    enum spf_result spf;      /* of the MAIL FROM identity */
    const char *spf_domain;   /* its <domain>: MAIL FROM's, or HELO for <> */
    const struct dmarc_dkim *dkim;
    size_t ndkim;
    unsigned sample;          /* uniform in 0..99: sampled when < pct */
};

/* The outcome for one From domain, and what its aggregate report needs. */
struct dmarc_domain {
    char from[DNS_NAME_MAX];        /* the RFC5322.From domain */
    char org[DNS_NAME_MAX];         /* its Organizational Domain */
    char policy_domain[DNS_NAME_MAX]; /* where the record was found; "" */
    bool have_record;
    struct dmarc_record rec;        /* valid when have_record */
    enum dmarc_result result;
    enum dmarc_policy policy;       /* p or sp, as applies; NONE without record */
    enum dmarc_policy disposition;  /* after pct; NONE unless fail */
    bool sampled_out;               /* pct left the policy out (§6.6.4) */
    bool spf_aligned, dkim_aligned; /* an aligned pass of each */
    int dkim_aligned_index;         /* the first aligned passing
                                     * signature, -1 if none */
    const char *reason;             /* static text, for logs and comments */
};

enum dmarc_step {
    DMARC_STEP_DONE,
    DMARC_STEP_DNS,
};

struct dmarc_eval;

/* An evaluator, owned by the caller; dmarc_eval_free() releases it. */
struct dmarc_eval *dmarc_eval_new(void);
void dmarc_eval_free(struct dmarc_eval *e);

/* Begins an evaluation, dropping any in progress. Returns 0, or -EINVAL
 * for params out of range (no from, sample over 99), which leaves the
 * evaluation done with permerror. */
int dmarc_eval_start(struct dmarc_eval *e, const struct dmarc_params *p);

/* As spf_check_step(): DMARC_STEP_DNS while questions wait. */
enum dmarc_step dmarc_eval_step(struct dmarc_eval *e);

/* The current batch (n questions, valid until the next step). */
size_t dmarc_eval_questions(const struct dmarc_eval *e, const struct dnsq_question **q);

/* Feeds the answer to question i; copied as needed. 0, or -EINVAL for an
 * index out of the batch or answered before. */
int dmarc_eval_answer(struct dmarc_eval *e, size_t i, const struct dnsq_answer *a);

/* Ends an evaluation that ran out of time: the domains still waiting
 * get temperror. */
void dmarc_eval_timeout(struct dmarc_eval *e);

/* The verdict, meaningful once step said DONE: the deciding domain's
 * outcome (the most severe, see above). For a message without a usable
 * From domain, result permerror, disposition reject, from "" and the
 * reason says why. Owned by e. */
const struct dmarc_domain *dmarc_eval_verdict(const struct dmarc_eval *e);

/* The From domains checked (0 when the From gave none) and each one's
 * outcome, for aggregate reports (one row per domain with a record).
 * Owned by e. */
size_t dmarc_eval_ndomains(const struct dmarc_eval *e);
const struct dmarc_domain *dmarc_eval_domain(const struct dmarc_eval *e, size_t i);

/* "none", "pass", "fail", "temperror", "permerror" (dkim_result_name is
 * in dkim_result.h). */
const char *dmarc_result_name(enum dmarc_result r);

/* Whether a and b are aligned in mode m (§3.1): strict, the same name;
 * relaxed, the same Organizational Domain. Case and a final dot do not
 * matter; false for names that are not valid. */
bool dmarc_aligned(const char *a, const char *b, enum dmarc_align m);

#endif
