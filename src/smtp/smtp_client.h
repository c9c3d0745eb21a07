/* smtp_client: one outbound SMTP transaction (RFC 5321 client side) as a
 * state machine. Like smtp_session it does no I/O of its own: server
 * replies come in through smtp_client_input(), commands and content go
 * out through the io callbacks, and the message content is read from a
 * descriptor the owner gives (pread, never the spool itself). It reports
 * one result per recipient, then the connection can carry another
 * transaction (smtp_client_send) or be closed (smtp_client_quit).
 *
 * What it sends holds whatever the content holds only where the server
 * can take it: BINARYMIME content byte for byte only with BDAT to a server
 * that offers CHUNKING and BINARYMIME; everything else converted where it
 * must be (mail/downgrade) or refused with 5.6.3; nothing sent with DATA
 * ever holds a NUL, a bare CR or a bare LF, or ends the data early. */
#ifndef TERN_SMTP_SMTP_CLIENT_H
#define TERN_SMTP_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "mail/envelope.h"
#include "mail/result.h"

struct smtp_client;

struct smtp_client_io {
    /* Sends bytes to the server. */
    void (*write)(void *io, const void *p, size_t n);
    /* Bytes written and not yet sent (flow control of the content). */
    size_t (*pending)(void *io);
    /* Starts TLS as the client; answer with smtp_client_tls_done(). */
    void (*starttls)(void *io);
    /* Idle timeout for what the client now waits for (RFC 5321 §4.5.3.2). */
    void (*set_timeout)(void *io, uint64_t ms);
};

/* MAY: STARTTLS when offered (and io->starttls is set); REQUIRE: fail
 * rather than go on in plaintext; IMPLICIT: the owner runs TLS from the
 * first byte (RFC 8314 smtps), so no STARTTLS and AUTH may go at once;
 * NONE: never STARTTLS, even when offered (a next hop whose TLS is known
 * to be broken; no AUTH then, as without TLS). */
enum smtp_client_tls {
    SMTP_TLS_MAY = 0,
    SMTP_TLS_REQUIRE = 1,
    SMTP_TLS_IMPLICIT = 2,
    SMTP_TLS_NONE = 3,
};

/* One message for one destination. Strings and the fd stay the owner's
 * and must live until the done callback. */
struct smtp_client_msg {
    const char *from;      /* "" for the null reverse-path */
    const char *const *rcpts;
    size_t nrcpts;
    int fd;                /* the content: pread at off, len octets */
    off_t off;
    uint64_t len;
    /* The BODY= it came with: what it may hold. What it does hold is
     * looked at too (a 7BIT label on 8-bit content is no reason to send
     * it unlabelled). */
    enum envelope_body body;
    int smtputf8;          /* needs SMTPUTF8 */
    /* DSN (RFC 3461), passed on when the server offers DSN. */
    const char *envid;     /* decoded ENVID, or NULL */
    int ret;               /* 0 none, 1 FULL, 2 HDRS */
    const unsigned *notify;    /* per recipient ENV_NOTIFY_* bits (0: not given), or NULL */
    const char *const *orcpt;  /* per recipient "type;xtext" or a bare address, or NULL */
};

/* The outcome of a message: res[i] for rcpts[i]. The client is idle
 * again afterwards unless closed is set (the connection is unusable) or
 * smtp_client_spent(). A server's RCPTMAX (RFC 9422) splits the
 * recipients into several transactions on the connection, each
 * recipient with its own result; at its MAILMAX the rest are left
 * untried (see smtp_client_tried). */
typedef void (*smtp_client_done_fn)(void *arg, const struct result *res, size_t n,
                                    int closed);

/* Creates a client for a new connection to `peer` (a name for texts,
 * e.g. "mx.example.org[192.0.2.1]"), speaking as `helo`. Owned: free with
 * smtp_client_free(). */
struct smtp_client *smtp_client_new(const char *helo, const char *peer,
                                    enum smtp_client_tls tls, const struct smtp_client_io *io,
                                    void *io_arg);
void smtp_client_free(struct smtp_client *c);
/* Logs in with AUTH PLAIN (RFC 4954) after STARTTLS, before the first
 * transaction (a smarthost). Never without TLS: the session fails then.
 * The strings are copied; the password is wiped on free. */
void smtp_client_set_auth(struct smtp_client *c, const char *user, const char *pass);

/* A copy of the dialogue for a person watching (`tern send -v`): dir is
 * 'C' for what the client sends, 'S' for each server reply line; line
 * has no CRLF and is not NUL-terminated. The AUTH credentials are masked
 * and the message content is summarised, never passed. */
typedef void (*smtp_client_trace_fn)(void *arg, char dir, const char *line, size_t len);
void smtp_client_set_trace(struct smtp_client *c, smtp_client_trace_fn fn, void *arg);

/* Starts a transaction: on a fresh connection after the greeting and
 * EHLO (queued until then), on an idle one at once. */
void smtp_client_send(struct smtp_client *c, const struct smtp_client_msg *m,
                      smtp_client_done_fn done, void *arg);
/* Feeds server bytes; consumes complete reply lines. */
void smtp_client_input(struct smtp_client *c, struct buf *in);
/* The write queue drained: more content may go. */
void smtp_client_drained(struct smtp_client *c);
/* The TLS handshake finished (ok) or failed. */
void smtp_client_tls_done(struct smtp_client *c, int ok);
/* The connection broke or timed out: a running transaction fails
 * temporarily with `why`. */
void smtp_client_lost(struct smtp_client *c, const char *why);
/* Sends QUIT (when idle). */
void smtp_client_quit(struct smtp_client *c);
/* Is the connection idle and usable for another transaction? */
int smtp_client_idle(const struct smtp_client *c);
/* Has the session had the server's MAILMAX transactions (RFC 9422)?
 * Then it can only be closed (smtp_client_quit). */
int smtp_client_spent(const struct smtp_client *c);
/* In or after the done callback: recipients [0, n) of the message were
 * tried. The others (TEMPFAIL 4.5.3, "not sent") were not, because the
 * session reached the server's MAILMAX first: they may go at once on a
 * new connection. */
size_t smtp_client_tried(const struct smtp_client *c);
/* Did the server offer DSN? (Then it sends the notices from now on.) */
int smtp_client_dsn(const struct smtp_client *c);
/* The last complete reply: its code (0 before the first) and, in *text,
 * its first line after the code (escaped; valid until the next input).
 * Lets a client tool tell a refusal by the server (a 535 after AUTH)
 * from a local failure (no STARTTLS offered, a lost connection). */
int smtp_client_last_reply(const struct smtp_client *c, const char **text);
/* Did the session use TLS? (for the log and Received) */
int smtp_client_tls(const struct smtp_client *c);

#endif
