/* dsn_param: the ESMTP parameters of the DSN extension (RFC 3461 §4):
 * RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT. Pure: the session
 * hands in each parameter as smtp_parse split it and gets either the
 * value to keep or the reply to send. Fuzzed by tests/fuzz/fuzz_dsn_param.c. */
#ifndef TERN_MAIL_DSN_PARAM_H
#define TERN_MAIL_DSN_PARAM_H

#include <stddef.h>

#include "base/buf.h"
#include "mail/envelope.h"

/* RFC 3461 §4.4: an ENVID is at most 100 characters (decoded). */
#define DSN_ENVID_MAX 100
/* RFC 3461 §4: NOTIFY and ORCPT may lengthen a RCPT line by 500
 * characters; an ORCPT value, as written, gets all of them. */
#define DSN_ORCPT_MAX 500
/* The longest addr-type we keep ("rfc822", "utf-8", "x400", ...). */
#define DSN_ADDRTYPE_MAX 32

enum dsn_ret { DSN_RET_NONE = 0, DSN_RET_FULL = 1, DSN_RET_HDRS = 2 };

/* The reply for a refused parameter: 501 5.5.4 for a malformed value or
 * a missing one, 555 5.5.4 for a parameter given twice. Strings are
 * static; send them with reply_append(). */
struct dsn_param_error {
    int code;
    const char *enh;
    const char *text;
};

/* What MAIL's DSN parameters asked for. Zeroed by dsn_param_mail_init(). */
struct dsn_param_mail {
    unsigned seen;  /* parameters already given, against repeats */
    enum dsn_ret ret;
    int has_envid;
    char envid[DSN_ENVID_MAX + 1]; /* decoded: printable ASCII and SP */
};

/* What one RCPT's DSN parameters asked for. */
struct dsn_param_rcpt {
    unsigned seen;
    unsigned notify; /* ENV_NOTIFY_* bits; 0 when NOTIFY was not given */
    char orcpt[DSN_ORCPT_MAX + 1]; /* "addr-type;xtext" exactly as given; "" if none */
};

void dsn_param_mail_init(struct dsn_param_mail *m);
void dsn_param_rcpt_init(struct dsn_param_rcpt *r);

/* Offers one MAIL parameter: `key` is its keyword (any case), `value`
 * the vlen octets after '=' or NULL when there was no '='. Returns 1
 * when it was RET or ENVID and is now in *m, 0 when the keyword is not
 * a DSN one (the caller deals with it), or -EINVAL with *err filled in:
 * RET other than FULL/HDRS, an ENVID that is not strict xtext, longer
 * than DSN_ENVID_MAX decoded or holding controls (RFC 3461 §4.4 wants
 * printable US-ASCII), a missing value (501); a repeat (555). */
int dsn_param_mail(struct dsn_param_mail *m, const char *key, const char *value, size_t vlen,
                   struct dsn_param_error *err);

/* The same for RCPT: NOTIFY (NEVER alone, or a comma list of SUCCESS,
 * FAILURE, DELAY, any case, no empty items) and ORCPT (see
 * dsn_param_orcpt_parse; `smtputf8` is whether this transaction's MAIL
 * gave SMTPUTF8, which lets a utf-8 ORCPT hold raw UTF-8). Returns 1, 0 or
 * -EINVAL as dsn_param_mail() does. */
int dsn_param_rcpt(struct dsn_param_rcpt *r, const char *key, const char *value, size_t vlen,
                   int smtputf8, struct dsn_param_error *err);

/* Stores MAIL's DSN choices in the envelope: ret_hdrs / ret_full (both
 * 0 when RET was not given) and envid (NULL when not given). */
void dsn_param_mail_apply(const struct dsn_param_mail *m, struct envelope *e);

/* Adds a recipient with its NOTIFY flags and ORCPT (NULL when none). */
void dsn_param_rcpt_add(const struct dsn_param_rcpt *r, struct envelope *e, const char *addr);

/* Parses an ORCPT value "addr-type;address" (RFC 3461 §4.2):
 * - addr-type: letters, digits and '-', 1..DSN_ADDRTYPE_MAX; written to
 *   type[] lowercased (type has room for DSN_ADDRTYPE_MAX + 1);
 * - "rfc822" and unknown types: the address is strict xtext decoding to
 *   printable US-ASCII (SP allowed, RFC 3461 §4.2), not empty;
 * - "utf-8" (RFC 6533 §3): utf-8-addr-xtext, or with `utf8` also
 *   utf-8-addr-unitext, decoding to a mailbox (mailaddr rules with UTF-8).
 * The decoded address is appended to addr (may be NULL). Returns 0 or
 * -EINVAL; on -EINVAL addr is as it was. */
int dsn_param_orcpt_parse(const char *in, size_t n, int utf8, char *type, struct buf *addr);

/* Reads a stored orcpt, which is either an ORCPT value as above or the
 * bare mailbox alias expansion keeps (queue.c): sets type[] and appends
 * the decoded address to addr; a bare mailbox reads as "rfc822", or as
 * "utf-8" when it is not ASCII. Returns 1 for an ORCPT value, 0 for a
 * bare mailbox, -EINVAL for neither (addr untouched). */
int dsn_param_orcpt_read(const char *orcpt, char *type, struct buf *addr);

/* Appends the ORCPT value to give a next hop for a stored orcpt: the
 * form the client gave (a "utf-8" one re-encoded as utf-8-addr-xtext
 * when the peer lacks SMTPUTF8), or, for the bare mailbox that alias
 * expansion stores, "rfc822;" + its xtext (or "utf-8;" + its
 * utf-8-addr-xtext/unitext when it is not ASCII). Returns 0, or -EINVAL
 * when orcpt is neither (nothing appended: send no ORCPT). */
int dsn_param_orcpt_out(struct buf *out, const char *orcpt, int peer_utf8);

#endif
