/* spf: the SPF check_host() function (RFC 7208 §4) as a resumable
 * evaluator that does no I/O. The caller starts a check, then calls
 * spf_check_step() until it says SPF_STEP_DONE; each SPF_STEP_DNS hands
 * out a batch of DNS questions (mailauth/dnsq.h) which the caller answers,
 * in any order and as they come, with spf_check_answer(). Nothing blocks,
 * so a check runs inside the smtp process's event loop; the unit tests,
 * the RFC 7208 conformance runner (tests/spf/) and the fuzzer drive it
 * with fixed DNS data.
 *
 * Use, for the MAIL FROM identity (or the HELO identity):
 *
 *     struct spf_check *c = spf_check_new();          once, reusable
 *     spf_check_start(c, &params);
 *     while (spf_check_step(c) == SPF_STEP_DNS) {
 *         const struct dnsq_question *q;
 *         size_t n = spf_check_questions(c, &q);
 *         for (i < n) resolve q[i], later spf_check_answer(c, i, &answer);
 *     }                                  (step again once all n are in)
 *     spf_check_result(c), spf_check_reason(c), spf_check_explanation(c)
 *
 * Limits (§4.6.4, §11.1): at most 10 terms that query DNS (include, a,
 * mx, ptr, exists, redirect) in the whole evaluation, includes and
 * redirects counted as one check; at most 10 MX names per "mx" (more is
 * permerror); the first 10 PTR names only; at most 2 void lookups (NOERROR
 * without records, or NXDOMAIN) by the terms a, mx, exists (the PTR
 * lookup, which the client's owner controls, and the address lookups of
 * MX and PTR names, which are bounded by 10 each, are not counted). So
 * one check asks at most about 130 questions. The elapsed-time limit
 * (§4.6.4: at least 20 s) is the caller's: spf_check_timeout().
 *
 * Choices where the RFC leaves room: the addresses of an "mx"'s hosts
 * are asked in one batch, and a match among them wins over a temporary
 * failure of another. %{i} of IPv6 is in upper-case nibbles (the RFC 4408
 * examples and the OpenSPF suite; DNS does not care). A target name that macro
 * expansion makes invalid (an empty label, a label over 63 octets) does
 * not match and costs no void lookup; for include and redirect it is
 * permerror (no record can exist there). */
#ifndef TERN_MAILAUTH_SPF_H
#define TERN_MAILAUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "mailauth/dnsq.h"
#include "mailauth/spf_record.h"

/* The SMTP client's address. An IPv4-mapped IPv6 address is IPv4 (§5). */
struct spf_ip {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* AF_INET: addr[0..4) */
};

/* *ip from a socket address; ::ffff:a.b.c.d becomes AF_INET. Returns 0 or
 * -EAFNOSUPPORT. */
int spf_ip_from_sockaddr(struct spf_ip *ip, const struct sockaddr *sa);

/* *ip from numeric text ("192.0.2.1", "2001:db8::1", "::ffff:1.2.3.4").
 * Returns 0 or -EINVAL. */
int spf_ip_parse(struct spf_ip *ip, const char *text);

enum spf_identity {
    SPF_ID_MAILFROM, /* <sender> is MAIL FROM; the null path uses HELO */
    SPF_ID_HELO,     /* <sender> is postmaster@<HELO> (§2.3) */
};

/* The inputs of one check. Strings are copied by spf_check_start(). */
struct spf_params {
    enum spf_identity identity;
    struct spf_ip ip;
    const char *mail_from; /* the reverse-path without <>, "" or NULL for
                            * the null path; unused for SPF_ID_HELO */
    const char *helo;      /* the HELO/EHLO argument as given, NULL = "" */
    const char *receiver;  /* this host's name for %{r}; NULL = "unknown" */
    long long now;         /* seconds since the epoch, for %{t} */
};

enum spf_step {
    SPF_STEP_DONE, /* the result is known */
    SPF_STEP_DNS,  /* questions wait for answers */
};

/* Which limits of §4.6.4 a check reached (spf_check_limits()). */
#define SPF_LIMIT_TERMS 0x1 /* an 11th DNS-querying term: permerror */
#define SPF_LIMIT_VOID 0x2  /* a 3rd void lookup: permerror */
#define SPF_LIMIT_MX 0x4    /* more than 10 MX names: permerror */
#define SPF_LIMIT_PTR 0x8   /* more than 10 PTR names: the rest ignored */

struct spf_check;

/* An evaluator, owned by the caller: spf_check_free() releases it. Its
 * buffers are kept across spf_check_start()s, so one per session (or per
 * thread) allocates only while records grow. */
struct spf_check *spf_check_new(void);
void spf_check_free(struct spf_check *c);

/* Begins check_host() for p, dropping any check in progress (answers
 * still owed to it must not be fed). A <domain> that is malformed or
 * single-label (§4.3) ends the check at once with none. */
void spf_check_start(struct spf_check *c, const struct spf_params *p);

/* Runs the check as far as it can. SPF_STEP_DNS: the questions of
 * spf_check_questions() need answers; while one of them has none, step
 * returns SPF_STEP_DNS again and does nothing. */
enum spf_step spf_check_step(struct spf_check *c);

/* The current batch: *q points at n questions, valid until the next
 * step. n is 0 when the check is done. */
size_t spf_check_questions(const struct spf_check *c, const struct dnsq_question **q);

/* Feeds the answer to question i of the current batch; what the check
 * needs is copied, so a and all it points to may go away on return.
 * Returns 0, or -EINVAL for an index out of the batch or answered before
 * (the answer is then ignored). */
int spf_check_answer(struct spf_check *c, size_t i, const struct dnsq_answer *a);

/* Ends a check that ran out of time: temperror (§4.6.4). */
void spf_check_timeout(struct spf_check *c);

/* The result; meaningful once step said SPF_STEP_DONE. */
enum spf_result spf_check_result(const struct spf_check *c);

/* For a fail, the explanation of the exp modifier (§6.2), expanded; NULL
 * when there is none or it could not be had (the caller then uses its
 * default). Peer-controlled text (printable ASCII and spaces, but macros
 * copy the sender): escape it before a reply or a log. Owned by c. */
const char *spf_check_explanation(const struct spf_check *c);

/* A short reason for logs and Authentication-Results comments: the term
 * that matched, or why none/temperror/permerror. Escaped, printable
 * ASCII. Owned by c. */
const char *spf_check_reason(const struct spf_check *c);

/* The <domain> that was checked (the MAIL FROM's domain or the HELO
 * name), for smtp.mailfrom / smtp.helo. Owned by c. */
const char *spf_check_domain(const struct spf_check *c);

/* SPF_LIMIT_* bits reached, and the number of DNS questions asked. */
unsigned spf_check_limits(const struct spf_check *c);
unsigned spf_check_lookups(const struct spf_check *c);

#endif
