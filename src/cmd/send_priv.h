/* send_priv: the parts of `tern send` (send.c: options and exit status,
 * send_msg.c: the message, send_run.c: the SMTP session). */
#ifndef TERN_CMD_SEND_PRIV_H
#define TERN_CMD_SEND_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "base/sizes.h"
#include "mail/result.h"

/* sysexits.h values, spelled out where they are decided. */
#define SEND_EX_OK 0
#define SEND_EX_USAGE 64
#define SEND_EX_DATAERR 65
#define SEND_EX_NOINPUT 66
#define SEND_EX_NOHOST 68
#define SEND_EX_UNAVAILABLE 69
#define SEND_EX_SOFTWARE 70
#define SEND_EX_IOERR 74
#define SEND_EX_TEMPFAIL 75
#define SEND_EX_PROTOCOL 76
#define SEND_EX_NOPERM 77

/* What the command line asked for. All strings point into argv or the
 * environment, except password (owned, wiped and freed by send.c). */
struct send_opts {
    const char *host;      /* a name or a numeric address, without brackets */
    const char *port;
    const char *from;      /* "" for the null reverse-path */
    const char **rcpts;    /* owned array */
    size_t nrcpts;
    const char *subject;
    const char *body;      /* --body TEXT */
    const char *body_file; /* --body-file FILE, "-" = stdin */
    const char *data_file; /* --data FILE, "-" = stdin */
    const char **headers;  /* owned array of "Name: value" */
    size_t nheaders;
    char helo[DNS_NAME_MAX];
    int starttls, tls, insecure, verbose;
    const char *auth_user;
    char *password;        /* owned; NULL without --auth */
    const char *cafile;
    unsigned timeout_s;
};

/* The message to send: content with CRLF line ends in a memory file. */
struct send_msg {
    int fd;         /* owned */
    uint64_t len;
    int eightbit;   /* an octet >= 0x80: BODY=8BITMIME */
};

/* Builds the message from --data, or from the headers, --subject and
 * the body (--body, --body-file, or stdin when it is not a terminal).
 * Returns 0, or an exit status after printing why. */
int send_msg_build(const struct send_opts *o, struct send_msg *m);
void send_msg_free(struct send_msg *m);

/* What the session ended with. */
struct send_outcome {
    struct result *res; /* owned, one per recipient; NULL if the session never ran */
    size_t n;
    int closed;         /* the session broke before it ended normally */
    int last_code;      /* the last complete server reply (0: none) */
    char last_text[512];
    int cmds_sent;      /* commands sent so far (0: refused at the greeting) */
    char why[800];      /* a local reason better than the results' text, or "" */
};

/* Connects, runs one transaction and QUIT. Returns 0 with *out filled
 * (out->res freed by send_outcome_free), or an exit status after printing
 * why (name lookup, connect, TLS set-up). */
int send_run(const struct send_opts *o, const struct send_msg *m, struct send_outcome *out);
void send_outcome_free(struct send_outcome *out);

#endif
