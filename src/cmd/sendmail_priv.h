/* sendmail_priv.h: what the parts of `tern sendmail` share: the options,
 * the message path (sendmail_msg.c) and SMTP on stdin (sendmail_bs.c). */
#ifndef TERN_CMD_SENDMAIL_PRIV_H
#define TERN_CMD_SENDMAIL_PRIV_H

#include <stddef.h>

#include "base/buf.h"
#include "conf/config.h"
#include "mail/pickup_fmt.h"

struct sm_opts {
    int extract;         /* -t: recipients from To:, Cc:, Bcc: */
    int ignore_dots;     /* -i, -oi: a lone "." is not the end */
    const char *sender;  /* -f / -r, or NULL */
    const char *name;    /* -F, or NULL */
    const char *config;  /* -C / -c, else $TERN_CONFIG, else /etc/tern/tern.conf if there */
    char **rcpts;        /* the command line's recipients (argv's own) */
    int nrcpts;
};

/* The domain given to addresses without one (cron's "To: root"): the
 * first local domain, else the host name. queue/pickup uses the same. */
const char *sm_origin(const struct config *cfg);
/* -F's full name into pe->name, without the control characters that
 * would end the From: line it goes into. */
void sm_full_name(const char *name, struct pickup_env *pe);

/* Fills pe->from/has_from and pe->name from -f and -F. Returns 0, or
 * EX_DATAERR after printing why. */
int sm_envelope_sender(const struct config *cfg, const struct sm_opts *o, struct pickup_env *pe);

/* Adds each address of the address list `list` (a command-line argument
 * or a header field's body) to pe, qualified with the origin, checked by
 * mailaddr, without duplicates. Returns 0, or EX_DATAERR after printing
 * the bad address. */
int sm_add_rcpts(const struct config *cfg, struct pickup_env *pe, const char *list, size_t n);

/* Writes pickup files for pe and the message (split in files of rcpt_max
 * recipients). Returns 0 or a sysexits code after printing why. */
int sm_pickup_submit(const struct config *cfg, const struct pickup_env *pe, const char *msg,
                     size_t len);

/* The default mode (-bm): reads the message from stdin and submits it. */
int sm_mail(const struct config *cfg, const struct sm_opts *o);

/* -bs: SMTP on stdin and stdout through smtp_session; each message
 * accepted becomes a pickup file. */
int sm_smtp(const struct config *cfg, const struct sm_opts *o);

#endif
