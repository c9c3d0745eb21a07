/* result: the outcome of one delivery attempt for one recipient, or of a
 * commit to the spool. Never a bare int: the scheduler, the logs, bounces
 * and the SMTP client waiting for its reply need the code, the enhanced
 * status code and the text. */
#ifndef TERN_MAIL_RESULT_H
#define TERN_MAIL_RESULT_H

enum result_kind { RESULT_OK = 0, RESULT_TEMPFAIL = 1, RESULT_PERMFAIL = 2 };

struct result {
    enum result_kind kind;
    int code;       /* SMTP reply code: 250, 451, 550, ... */
    char enh[16];   /* RFC 3463 enhanced status code: "2.0.0" */
    char text[256]; /* human text, no CR/LF */
};

/* Fills *r; text is printf-style and cut to fit, line breaks become
 * spaces and other octets that are not printable ASCII '?'. */
void result_set(struct result *r, enum result_kind kind, int code, const char *enh,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Is *r well formed: a known kind whose reply code is of its class (2xx
 * OK, 4xx TEMPFAIL, 5xx PERMFAIL), an RFC 3463 enhanced code of the same
 * class ("c.sss.ddd", 1 to 3 digits each), printable ASCII text? For
 * results read from another process, which may be hostile. */
int result_valid(const struct result *r);

/* Is enh an RFC 3463 enhanced status code of class cls ('2', '4', '5'):
 * "c.sss.ddd", 1 to 3 digits each, nothing after? */
int result_enh_valid(const char *enh, char cls);

/* The spool could not take a message (err: -errno of the failed write or
 * sync): a full file system or quota (ENOSPC, EDQUOT) is 452 4.3.1
 * "Insufficient system storage" (RFC 5321 §4.2.2, RFC 3463 X.3.1), the
 * client may try again once there is room; anything else 451 4.3.0. */
void result_spool_error(struct result *r, int err);

#endif
