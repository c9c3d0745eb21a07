/* envelope: what SMTP says about a message besides its content: sender,
 * recipients, their ESMTP parameters and where it came from. One
 * serialisation, versioned, used on IPC between processes and in the
 * spool; the parser treats its input as hostile (fuzzed). */
#ifndef TERN_MAIL_ENVELOPE_H
#define TERN_MAIL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"

#define ENVELOPE_VERSION 1
#define ENVELOPE_QID_MAX 24
#define ENVELOPE_MAX_RCPTS 10000

enum envelope_body { ENV_BODY_7BIT = 0, ENV_BODY_8BITMIME = 1, ENV_BODY_BINARYMIME = 2 };

/* DSN NOTIFY flags (RFC 3461), kept now so the spool format need not change later. */
#define ENV_NOTIFY_NEVER 0x01
#define ENV_NOTIFY_SUCCESS 0x02
#define ENV_NOTIFY_FAILURE 0x04
#define ENV_NOTIFY_DELAY 0x08

struct envelope_rcpt {
    char *addr;  /* owned; the mailbox as written out ("user@domain") */
    char *orcpt; /* owned, may be NULL: the original recipient (alias source or DSN ORCPT) */
    unsigned notify;
};

struct envelope {
    char qid[ENVELOPE_QID_MAX + 1];
    char *from;   /* owned; "" for the null reverse-path */
    enum envelope_body body;
    int smtputf8; /* SMTPUTF8 given at MAIL */
    int ret_hdrs; /* DSN RET=HDRS */
    int ret_full; /* DSN RET=FULL; neither flag: RET not given (headers are returned) */
    char *envid;  /* owned, may be NULL: DSN ENVID */
    uint64_t size; /* content octets as stored */
    time_t arrival;
    char *client_ip;   /* owned, may be NULL */
    char *client_name; /* owned, may be NULL: rDNS or "unknown" */
    char *helo;        /* owned, may be NULL */
    char *auth_user;   /* owned, may be NULL */
    int junk;          /* DMARC quarantine: delivered into the Junk folder */
    struct envelope_rcpt *rcpts; /* owned array of nrcpts */
    size_t nrcpts;
    size_t rcpts_cap;
    /* Not stored: a local submission (sendmail), which had no RCPT to
     * refuse an unknown recipient, wants one that has no mailbox queued
     * to bounce even when no other is deliverable (queue_commit). */
    int bounce_unknown;
};

void envelope_init(struct envelope *e);
/* Frees everything the envelope owns and re-initialises it. */
void envelope_clear(struct envelope *e);
/* Replaces a string field with an owned copy of s (NULL allowed). */
void envelope_set(char **field, const char *s);
/* Appends a recipient (copies addr and orcpt). */
void envelope_add_rcpt(struct envelope *e, const char *addr, const char *orcpt, unsigned notify);

/* Appends the versioned serialisation of e to out. */
void envelope_serialize(const struct envelope *e, struct buf *out);
/* Parses a serialisation into e (which must be initialised; it is cleared
 * first). Returns 0, or -EBADMSG on any malformed, truncated, oversized
 * or unknown-version input, leaving e cleared. */
int envelope_parse(const char *in, size_t len, struct envelope *e);

#endif
