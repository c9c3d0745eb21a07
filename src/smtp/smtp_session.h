/* smtp_session: one inbound SMTP session as a state machine (RFC 5321 and
 * the extensions tern advertises). It does no I/O of its own: bytes come
 * in through smtp_session_input(), replies go out through the io
 * callbacks, and the queue is reached through the svc callbacks, whose
 * answers come back asynchronously (smtp_session_body_opened() etc.).
 * proc/net implements svc over IPC; tests/smtp implements it with fakes. */
#ifndef TERN_SMTP_SMTP_SESSION_H
#define TERN_SMTP_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "conf/config.h"
#include "mail/envelope.h"
#include "mail/result.h"

struct smtp_session;

struct smtp_session_io {
    /* Sends bytes (replies) to the client. */
    void (*write)(void *io, const void *p, size_t n);
    /* Stops (1) or resumes (0) input; on resume buffered input is fed
     * again through smtp_session_input(). */
    void (*pause)(void *io, int paused);
    /* Flushes what was written, then closes the connection. */
    void (*close)(void *io);
    /* Sets the idle timeout in milliseconds for what the session now
     * waits for (a command, or the next block of message data). */
    void (*set_timeout)(void *io, uint64_t ms);
    /* Starts TLS once the 220 just written is sent; input received
     * before the handshake is discarded. Answer with
     * smtp_session_tls_done(), or the connection closes. */
    void (*starttls)(void *io);
};

enum smtp_auth_result {
    SMTP_AUTH_OK = 0,
    SMTP_AUTH_FAIL = 1,     /* 535 5.7.8 */
    SMTP_AUTH_TEMPFAIL = 2, /* 454 4.7.0 */
    SMTP_AUTH_BLOCKED = 3,  /* too many failures: 421 4.7.0 and close */
};

struct smtp_session_svc {
    /* A new message needs a body file: answer with
     * smtp_session_body_opened() or smtp_session_body_failed(). */
    void (*body_open)(void *svc, uint64_t sid);
    /* Make the message durable: answer with smtp_session_committed().
     * prefix[0..prefix_len) are header fields to store above the content
     * (Authentication-Results): complete CRLF lines, or none. */
    void (*commit)(void *svc, uint64_t sid, const char *qid, const struct envelope *env,
                   const char *prefix, size_t prefix_len);
    /* The message qid will not be committed. */
    void (*abort)(void *svc, const char *qid);
    /* Checks a login and password (mech for the log): answer later, from
     * the loop, with smtp_session_auth_done(). The session wipes the
     * password when this returns. */
    void (*auth_check)(void *svc, uint64_t sid, const char *mech, const char *user,
                       const char *password);
    /* The largest message the spool can take now, in bytes (0: none at
     * all; UINT64_MAX: not known). MAIL is refused with 452 4.3.1 when
     * it is 0 or its SIZE is larger. May be NULL (no such check). */
    uint64_t (*spool_room)(void *svc);
    /* Mail authentication (SPF, DKIM, DMARC) of a transaction from a
     * client that is neither authenticated nor in relay_networks, when
     * mail_auth_checks is on; all three NULL: nothing is judged.
     * mail_start: MAIL was accepted (from: the reverse path, "" for <>);
     * the session reads no further command until
     * smtp_session_spf_done(). content: the message as it is stored,
     * without tern's own trace header, as it arrives. verdict: the content
     * ended and passed the session's own checks; answer with
     * smtp_session_verdict(). txn tells the answers' transaction. */
    void (*mail_start)(void *svc, uint64_t sid, uint32_t txn, const char *helo,
                       const char *from);
    void (*mail_content)(void *svc, uint64_t sid, const char *p, size_t n);
    void (*mail_verdict)(void *svc, uint64_t sid, uint32_t txn);
};

struct smtp_session_peer {
    const char *ip;   /* numeric client address */
    const char *name; /* reverse DNS name, or "unknown" */
    enum conf_role role;
    int tls_offer;    /* a certificate is there: STARTTLS may be offered */
    int tls_implicit; /* smtps: TLS first, the greeting after the handshake */
    /* A local user speaking SMTP on a pipe (`sendmail -bs`): the uid is
     * the identity, so no AUTH is asked or offered and any recipient is
     * taken; with role submission the header fixes apply. The trace
     * header is left to the pickup collector, which knows the uid. */
    int local;
};

/* Creates a session; copies peer strings. cfg must outlive it. Returns an
 * owned session: free with smtp_session_free() outside its callbacks. */
struct smtp_session *smtp_session_new(uint64_t sid, const struct config *cfg,
                                      const struct smtp_session_peer *peer,
                                      const struct smtp_session_io *io, void *io_arg,
                                      const struct smtp_session_svc *svc, void *svc_arg);
/* Aborts an open message (svc->abort), logs the disconnect line, frees. */
void smtp_session_free(struct smtp_session *s);

/* Sends the greeting. */
void smtp_session_start(struct smtp_session *s);
/* Consumes what it can of in (commands, message data), writing replies.
 * Unconsumed bytes stay in `in` for the next call. */
void smtp_session_input(struct smtp_session *s, struct buf *in);

/* Answers to svc requests. The session takes ownership of fd. A failed
 * body open (err: -errno) is 452 4.3.1 for a full spool, else 451 4.3.0.
 * The commit's result is the reply the client hears, as it is (OK only
 * once the message is durable). */
void smtp_session_body_opened(struct smtp_session *s, const char *qid, int fd);
void smtp_session_body_failed(struct smtp_session *s, int err);
void smtp_session_committed(struct smtp_session *s, const char *qid, const struct result *res);

/* The SPF verdict of transaction txn (svc->mail_start): `refusal` of kind
 * OK lets recipients through; any other is the reply every RCPT of the
 * transaction gets (spf_reject_fail: 550 5.7.23; spf_defer_temperror: 451
 * 4.7.24). A late answer (another transaction) is ignored. */
void smtp_session_spf_done(struct smtp_session *s, uint32_t txn, const struct result *refusal);
/* The verdict of transaction txn (svc->mail_verdict): a refusal of kind
 * OK commits the message with the header fields prefix[0..n) above it
 * (Authentication-Results; complete CRLF lines) and, with junk set, marked
 * for the Junk folder (DMARC quarantine); any other is the reply, and
 * nothing is stored (DMARC reject: 550 5.7.1). */
void smtp_session_verdict(struct smtp_session *s, uint32_t txn, const struct result *refusal,
                          const char *prefix, size_t n, int junk);

/* The TLS handshake finished: the session starts over (and greets, for
 * implicit TLS). The strings are copied. */
void smtp_session_tls_done(struct smtp_session *s, const char *version, const char *cipher,
                           int bits);
/* The answer to svc->auth_check. */
void smtp_session_auth_done(struct smtp_session *s, enum smtp_auth_result r);

/* A time limit passed (idle, the command line deadline, the content
 * rate): 421 4.4.2 and close, logged "timeout after DATA from ..." with
 * `why` (NULL for none) at the end of the line. */
void smtp_session_timeout(struct smtp_session *s, const char *why);

/* What the session waits for from the client, for proc/net's time limits:
 * a command line (also a SASL response, or the rest of an overlong line),
 * message content (DATA, a BDAT chunk), or nothing to time by its rate or
 * line (a TLS handshake, an answer from the queue, closing). */
enum smtp_session_expect {
    SMTP_EXPECT_NOTHING = 0,
    SMTP_EXPECT_COMMAND = 1,
    SMTP_EXPECT_CONTENT = 2,
};
enum smtp_session_expect smtp_session_expects(const struct smtp_session *s);
/* Refuses the connection at once (limits): 421 with enhanced code and text, close. */
void smtp_session_refuse(struct smtp_session *s, const char *text);
/* The server is stopping or reloading (RFC 5321 §3.8): a session between
 * transactions hears 421 4.3.2 now; one inside a transaction finishes it
 * and hears 421 at its next command other than QUIT. Returns 1 once the
 * session is closing. */
int smtp_session_drain(struct smtp_session *s);

uint64_t smtp_session_id(const struct smtp_session *s);
/* The queue id of the message being received, "" outside one. */
const char *smtp_session_qid(const struct smtp_session *s);
/* Non-zero once AUTH succeeded in this session (for metrics). */
int smtp_session_authenticated(const struct smtp_session *s);

#endif
