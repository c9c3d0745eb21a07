/* smtp_parse: the inbound command language of RFC 5321 §4.1 and its
 * extensions, as pure functions on bytes. No I/O: the session hands in
 * whatever has arrived; fuzzed by tests/fuzz/fuzz_cmd.c. */
#ifndef TERN_SMTP_SMTP_PARSE_H
#define TERN_SMTP_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "mail/mailaddr.h"

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_EHLO, SMTP_VERB_HELO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
    SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY,
    SMTP_VERB_EXPN, SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH,
    SMTP_VERB_COUNT
};

/* Lowercase verb name for logs ("ehlo"); "unknown" for SMTP_VERB_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb v);

enum smtp_line_status {
    SMTP_LINE_AGAIN = 0,   /* no complete line yet; keep the bytes, read more */
    SMTP_LINE_OK = 1,      /* *linelen octets form a line (CRLF or bare LF excluded) */
    SMTP_LINE_TOOLONG = 2, /* more than max octets without a line end: the caller
                              replies 500 and discards through the line end,
                              using smtp_line_skip() */
    SMTP_LINE_BARE_LF = 3, /* SMTP_LINE_CRLF_ONLY: the line up to its CRLF holds
                              a bare LF; *linelen and *consumed are set as for
                              SMTP_LINE_OK; the caller replies 500 5.5.2 and
                              drops the whole line */
};

/* Flags of smtp_line_take() and smtp_line_skip(). Without flags a line
 * ends at LF, CRLF or bare (bare_lf = normalize, as Postfix's
 * smtpd_forbid_bare_newline = normalize reads commands). */
#define SMTP_LINE_CRLF_ONLY 0x01 /* bare_lf = reject: only CRLF ends a line
                                    (RFC 5321 §2.3.8) */

/* Looks for one command line at the start of in[0..len). A line ends at
 * LF (at CRLF only with SMTP_LINE_CRLF_ONLY); a CR right before the LF is
 * dropped. `max` counts the whole line with its CRLF (RFC 5321
 * §4.5.3.1.4: 512). On SMTP_LINE_OK, *linelen is the length without the
 * line end and *consumed includes it. */
int smtp_line_take(const char *in, size_t len, size_t max, unsigned flags, size_t *linelen,
                   size_t *consumed);

/* While discarding an overlong line: returns the octets to drop from
 * in[0..len) and sets *done when the line's end was among them. With
 * SMTP_LINE_CRLF_ONLY a CR at the very end is left in place (it may begin
 * the CRLF), so 0 means: nothing to drop until more arrives. */
size_t smtp_line_skip(const char *in, size_t len, unsigned flags, int *done);

/* A command line split into verb and argument. The argument points into
 * the line (not NUL-terminated in general: use arglen). */
struct smtp_cmd {
    enum smtp_verb verb;
    const char *arg; /* after the verb and one or more spaces; "" if none */
    size_t arglen;
};

/* Splits a line. Verbs are matched case-insensitively; a verb must be
 * followed by end of line or a space. Returns 0, or -EINVAL when the line
 * holds a NUL octet or other control characters that no command allows
 * (the caller answers 500 5.5.2). */
int smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *out);

/* ESMTP parameters after a path (RFC 5321 §4.1.2 esmtp-param). */
#define SMTP_PARAMS_MAX 16
struct smtp_param {
    char key[32];    /* uppercased keyword */
    char value[512]; /* value as written, "" when absent */
    int has_value;
};
struct smtp_params {
    struct smtp_param p[SMTP_PARAMS_MAX];
    size_t n;
};

enum smtp_path_status {
    SMTP_PATH_OK = 0,
    SMTP_PATH_ESYNTAX = -1,  /* 501 5.5.4 (bad "FROM:"/"TO:") or 5.1.7 / 5.1.3 (bad address) */
    SMTP_PATH_ETOOLONG = -2, /* 501 5.1.3 path too long */
    SMTP_PATH_EUTF8 = -3,    /* 553 5.6.7 non-ASCII address without SMTPUTF8 */
    SMTP_PATH_EPARAM = -4,   /* 501 5.5.4 malformed or too many parameters */
    SMTP_PATH_EPREFIX = -5,  /* 501 5.5.4 "FROM:" or "TO:" missing */
};

/* Parses the argument of MAIL ("FROM:<path> params") or RCPT
 * ("TO:<path> params"). `is_rcpt` selects the keyword; `flags` are
 * MAILADDR_* parse flags (ALLOW_NULL for MAIL, ALLOW_POSTMASTER for RCPT,
 * ALLOW_UTF8 when SMTPUTF8 was given or is being given on this MAIL line:
 * the function itself allows UTF-8 when the parameters contain SMTPUTF8).
 * One space after the colon is tolerated, as deployed clients send it. */
int smtp_parse_mail_rcpt(const char *arg, size_t len, int is_rcpt, unsigned flags,
                         struct mailaddr *path, struct smtp_params *params);

/* Finds a parameter by (uppercase) keyword; NULL if absent. */
const struct smtp_param *smtp_params_get(const struct smtp_params *ps, const char *key);

/* Parses "BDAT <chunk-size> [LAST]" arguments. Returns 0 or -EINVAL. */
int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, int *last);

/* Parses an EHLO/HELO argument: a domain or an address literal. Returns 0
 * or -EINVAL; sets *namelen to the length of the name (the first word). */
int smtp_parse_helo(const char *arg, size_t len, size_t *namelen);

#endif
