/* dsn: delivery status notifications (RFC 3464) as the multipart/report
 * of RFC 6522, and the NOTIFY rules of RFC 3461 that decide whether one
 * is sent. Pure: everything, dates and the boundary included, comes from
 * the caller, so the same input gives the same octets. */
#ifndef TERN_MAIL_DSN_H
#define TERN_MAIL_DSN_H

#include <stddef.h>
#include <time.h>

#include "base/buf.h"
#include "mail/envelope.h"

/* RFC 3464 §2.3.3. */
enum dsn_action {
    DSN_ACTION_FAILED = 0,
    DSN_ACTION_DELAYED = 1,
    DSN_ACTION_DELIVERED = 2,
    DSN_ACTION_RELAYED = 3,  /* to a next hop without DSN: no more notices from there */
    DSN_ACTION_EXPANDED = 4, /* delivered to an alias or list that forwarded it on */
};

/* Lowercase action name as written in the report ("failed"). */
const char *dsn_action_name(enum dsn_action a);

/* RFC 3461 §4.1 and §5: whether a notice with this action goes out for
 * this recipient. NOTIFY absent (0) means FAILURE,DELAY; NEVER sends
 * nothing; relayed, delivered and expanded need SUCCESS. Never for the
 * null reverse-path (from "" or NULL): a notice about a notice could
 * loop (RFC 5321 §4.5.5). */
int dsn_should_send(const struct envelope *e, const struct envelope_rcpt *r,
                    enum dsn_action action);

/* One recipient's part of a report. Strings are borrowed; any may hold
 * peer text (they are sanitised on output). */
struct dsn_rcpt {
    const char *addr;  /* final recipient (envelope_rcpt.addr) */
    const char *orcpt; /* NULL or envelope_rcpt.orcpt (ORCPT value or bare mailbox) */
    enum dsn_action action;
    const char *status; /* RFC 3463 "5.1.1"; a malformed one, or one whose class
                           disagrees with the action, is written as X.0.0 */
    /* The diagnostic: usually the remote's reply ("550 5.1.1 No such
     * user", lines joined by '\n' or not); NULL for none. Controls
     * become spaces, long text is folded. */
    const char *diag;
    const char *diag_type;  /* NULL means "smtp"; e.g. "x-tern" for local errors */
    const char *remote_mta; /* NULL or the host name that answered ("mx.example") */
    time_t last_attempt;    /* 0: no Last-Attempt-Date */
    time_t retry_until;     /* delayed only; 0: no Will-Retry-Until */
};

struct dsn_report {
    const char *reporting_mta;     /* our host name, for Reporting-MTA and From */
    const struct envelope *env;    /* from, envid, arrival, ret_hdrs/ret_full, smtputf8, qid */
    const struct dsn_rcpt *rcpts;  /* at least one */
    size_t nrcpts;
    const char *content;  /* the original message as stored (CRLF or LF lines) */
    size_t content_len;
    int content_cut;      /* content is only the start of the message: headers only */
    size_t full_max;      /* RET=FULL returns the whole message when it is shorter
                             than this (so a copy cut at full_max octets never
                             passes for whole), headers only otherwise; 0: no limit */
    const char *boundary; /* 1..60 RFC 2046 bchars, not ending in a space */
    const char *message_id; /* without angle brackets: "20260101.abc@host" */
    time_t date;
};

/* Flags dsn_build() reports about what it wrote. */
#define DSN_OUT_8BIT 0x01     /* 8-bit content: send with BODY=8BITMIME */
#define DSN_OUT_UTF8 0x02     /* UTF-8 header fields or addresses: needs SMTPUTF8 */
#define DSN_OUT_HDRS_ONLY 0x04 /* only the header section was returned */

/* Appends a report to out: the RFC 5322 header (From "Mail Delivery
 * System" <MAILER-DAEMON@reporting_mta>, To the envelope sender, a
 * Subject after the gravest action, Date, Message-ID, Auto-Submitted:
 * auto-replied (RFC 3834 §5), MIME-Version, Content-Type:
 * multipart/report), then three parts: a text/plain explanation per
 * recipient, the message/delivery-status fields, and the original —
 * text/rfc822-headers unless RET=FULL was given, message/rfc822 (8bit
 * when it has 8-bit octets) with RET=FULL. A message that arrived with
 * SMTPUTF8 gets the RFC 6533 types (message/global-delivery-status,
 * message/global-headers, message/global). The full message falls back
 * to its headers when it was cut, is not shorter than full_max, or is
 * not fit to travel as 8bit (NUL, a bare CR, a line over 998 octets).
 *
 * Every line ends in CRLF and is at most 998 octets; long fields are
 * folded. When a line of the parts starts with "--" and the boundary,
 * characters from [0-9A-Za-z] are appended to it until none does.
 * Returns 0 and sets *flags (may be NULL) to
 * DSN_OUT_* bits, or -EINVAL (nothing appended) when the sender is null,
 * there are no recipients, or a caller-supplied string is missing or
 * malformed. */
int dsn_build(const struct dsn_report *r, struct buf *out, unsigned *flags);

#endif
