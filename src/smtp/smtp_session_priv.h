/* Private to smtp_session*.c: the session's state, shared by the command
 * handlers (smtp_session.c) and the message-content path
 * (smtp_session_data.c). */
#ifndef TERN_SMTP_SMTP_SESSION_PRIV_H
#define TERN_SMTP_SMTP_SESSION_PRIV_H

#include "base/sizes.h"
#include "mail/dotstuff.h"
#include "mail/hdrfield.h"
#include "mail/hdrscan.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_session.h"

enum smtp_state {
    SS_GREET,    /* connected; HELO/EHLO needed */
    SS_READY,    /* after HELO/EHLO, no transaction */
    SS_MAIL,     /* MAIL accepted, no recipient yet */
    SS_RCPT,     /* at least one recipient accepted */
    SS_DATA,     /* reading DATA content */
    SS_BDAT,     /* reading a BDAT chunk */
    SS_SKIPLINE, /* discarding the rest of an overlong command line */
    SS_CLOSING,  /* reply sent, connection closing: input ignored */
    SS_AUTH,     /* AUTH sent 334: the next line is a SASL response */
    SS_TLS,      /* STARTTLS answered: waiting for the handshake */
};

/* The HELO name is kept (and logged) up to this many octets. */
#define SMTP_HELO_TRACE_MAX 200

/* RFC 4954 §4: a server must accept AUTH lines of 12288 octets. */
#define SMTP_AUTH_LINE_MAX 12288

enum smtp_auth_mech { SMTP_AUTH_NONE, SMTP_AUTH_PLAIN, SMTP_AUTH_LOGIN };

/* What the session waits for from the queue, if anything. */
enum smtp_wait { SW_NONE, SW_BODY, SW_COMMIT, SW_AUTH, SW_SPF, SW_VERDICT };

/* Counts of a verb for the disconnect log line ("rcpt=2/3"). */
struct smtp_verb_count {
    unsigned ok, total;
};

struct smtp_session {
    uint64_t id;
    const struct config *cfg;
    char *ip;   /* owned */
    char *name; /* owned */
    enum conf_role role;
    const struct smtp_session_io *io;
    void *io_arg;
    const struct smtp_session_svc *svc;
    void *svc_arg;

    enum smtp_state state;
    enum smtp_state resume_state; /* state to return to after SS_SKIPLINE */
    enum smtp_wait wait;
    int esmtp;                 /* EHLO (not HELO) was used */
    char helo[DNS_NAME_MAX];            /* sanitised HELO/EHLO name */
    /* The HELO name as the trace header's comment gives it (helo=...),
     * percent-encoded, when it is no Domain or address literal; "" when
     * it is one and is the From-domain itself (RFC 5321 §4.4). */
    char helo_trace[3 * SMTP_HELO_TRACE_MAX + 1];
    struct buf out;            /* replies not yet handed to io->write */
    /* Since the last accepted message (then forgiven, as Postfix does):
     * protocol errors, for bad_commands_max; refused recipients, for
     * rcpt_refused_max. */
    unsigned errors;
    unsigned rcpts_refused;
    struct smtp_verb_count counts[SMTP_VERB_COUNT];

    /* TLS: offered (a certificate exists), implicit (smtps), on. */
    int tls_offer, tls_implicit, tls_on;
    char tls_version[16];
    char tls_cipher[64];
    int tls_bits;
    int relay_ok; /* the client is in relay_networks (or local) */
    int local;    /* peer->local: sendmail -bs */
    int draining; /* the server stops or reloads: no new transaction */

    /* AUTH: the user once authenticated ("" before), the exchange. */
    char auth_user[AUTH_USER_MAX];
    char auth_method[8];
    char auth_name[AUTH_USER_MAX]; /* login name during the exchange */
    enum smtp_auth_mech auth_mech;
    int auth_step;
    int auth_forced_fail; /* PLAIN asked to act as another user */

    /* The header scan: Received: count (loop detection); for submission
     * the Date: and Message-ID: seen and where the header ends. */
    struct hdrscan hs;
    int hdr_fixed; /* the submission fixes were made (or skipped) */

    /* The current transaction. */
    struct envelope env;
    unsigned rcpt_cmds;        /* RCPT commands in this transaction (RCPTMAX) */
    int have_body;             /* qid + body_fd valid */
    char qid[ENVELOPE_QID_MAX + 1];
    int body_fd;               /* owned, -1 if none */
    int body_err;              /* -errno of a failed write to body_fd */
    struct buf body;           /* decoded content waiting to be written */
    struct dotstuff ds;
    int bdat_used;             /* BDAT seen in this transaction */
    int bdat_failed;           /* a BDAT failed: discard the rest */
    uint64_t bdat_left;        /* octets of the current chunk still to read */
    int bdat_last;             /* current chunk is LAST */
    int bdat_discard;          /* current chunk is read and thrown away */
    uint64_t bdat_chunk;       /* size of the current chunk, for the reply */

    /* Mail authentication of the transaction (svc->mail_*). */
    uint32_t txn;              /* numbers transactions, for late answers */
    int judged;                /* this transaction is checked */
    int spf_pending;           /* the SPF answer has not come yet */
    struct result rcpt_refusal; /* what every RCPT hears (kind OK: nothing) */
    size_t content_skip;       /* octets of body not passed to mail_content (our trace) */
    /* Arriving Authentication-Results fields that claim our authserv-id
     * are removed (RFC 8601 §5), judged or not: no sender may fake them. */
    struct hdrfield hf;
    struct buf scratch;        /* content on its way through hf */
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void smtp_flush(struct smtp_session *s);
void smtp_close(struct smtp_session *s);
void smtp_txn_reset(struct smtp_session *s);
const char *smtp_proto_name(const struct smtp_session *s);
/* Resumes after waiting for the queue or a verdict: replies flushed,
 * input read again. */
void smtp_resume(struct smtp_session *s);
/* The smtp_line_take() flags bare_lf asks for. */
unsigned smtp_line_flags(const struct smtp_session *s);
/* A command or SASL line held a bare LF (bare_lf = reject): logs, 500 5.5.2. */
void smtp_bare_lf(struct smtp_session *s);
void smtp_session_greet(struct smtp_session *s);

/* smtp_session_auth.c */
int smtp_auth_offered(const struct smtp_session *s);
int smtp_starttls_offered(const struct smtp_session *s);
void smtp_do_starttls(struct smtp_session *s, const struct smtp_cmd *cmd);
void smtp_do_auth(struct smtp_session *s, const struct smtp_cmd *cmd);
/* Reads one SASL response line in SS_AUTH; returns octets consumed. */
size_t smtp_auth_input(struct smtp_session *s, char *in, size_t len);

/* smtp_session_data.c */
void smtp_data_start(struct smtp_session *s, int bdat);
/* Feeds in[0..len) to the DATA decoder; returns octets consumed. */
size_t smtp_data_feed(struct smtp_session *s, const char *in, size_t len);
/* Feeds BDAT chunk octets; returns octets consumed. */
size_t smtp_bdat_feed(struct smtp_session *s, const char *in, size_t len);
void smtp_data_body_opened(struct smtp_session *s, const char *qid, int fd);
void smtp_data_committed(struct smtp_session *s, const struct result *res);
void smtp_data_cmd(struct smtp_session *s, const struct smtp_cmd *cmd);
void smtp_bdat_cmd(struct smtp_session *s, const struct smtp_cmd *cmd);

#endif
