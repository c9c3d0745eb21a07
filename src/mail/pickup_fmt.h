/* pickup_fmt: the file `tern sendmail` drops into the pickup directory
 * and the queue process collects (queue/pickup). Local users write these
 * files, so the parser treats them as hostile (fuzzed by
 * tests/fuzz/fuzz_pickup.c): every address goes through mailaddr, sizes
 * and counts are capped by the caller's limits.
 *
 * Layout: text lines ending in LF, then the message:
 *
 *     tern-pickup 1
 *     from alice@example.org      (optional: -f; "from <>" is the null sender)
 *     name Alice Example          (optional: -F, for a generated From:)
 *     rcpt bob@example.org        (one or more)
 *     <empty line>
 *     the message as the user gave it (LF or CRLF line ends)
 *
 * Who submitted the file is not in it: the collector takes the file's
 * owner, which a local user cannot forge. */
#ifndef TERN_MAIL_PICKUP_FMT_H
#define TERN_MAIL_PICKUP_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mail/mailaddr.h"

#define PICKUP_VERSION 1
/* A full name longer than this is refused (a display name, not a text). */
#define PICKUP_NAME_MAX 256
/* One envelope line: keyword, space, a path of at most 256 octets. */
#define PICKUP_LINE_MAX 400

struct pickup_env {
    int has_from;                      /* a "from" line was there */
    char from[MAILADDR_PATH_MAX + 1];  /* the sender as mailaddr writes it; "" = <> */
    char name[PICKUP_NAME_MAX + 1];    /* "" when absent */
    char **rcpts;                      /* owned array of owned mailbox texts */
    size_t nrcpts;
    int utf8;                          /* an address holds UTF-8 (SMTPUTF8) */
    size_t content_off;                /* where the message starts in the input */
};

void pickup_env_init(struct pickup_env *e);
void pickup_env_free(struct pickup_env *e);
/* Appends a recipient (an already validated mailbox text). */
void pickup_env_add_rcpt(struct pickup_env *e, const char *addr);

/* Appends the envelope lines and the empty line ending them to out; the
 * caller appends the message. e's fields must be valid (as the parser
 * would accept them). */
void pickup_write(const struct pickup_env *e, struct buf *out);

/* Parses in[0..len) into e (initialised; freed first). Accepts at most
 * rcpt_max recipients (and at least one) and a message of at most
 * size_max octets (0: no limit). Returns 0, -EMSGSIZE for a message over
 * size_max, or -EINVAL on anything malformed, leaving e freed: unknown
 * version or keyword, a repeated from or name, an address mailaddr
 * refuses, a control character in the name, a line over PICKUP_LINE_MAX,
 * no empty line, no recipient or more than rcpt_max. */
int pickup_parse(const char *in, size_t len, size_t rcpt_max, uint64_t size_max,
                 struct pickup_env *e);

/* What pickup_to_crlf saw in the message. */
struct pickup_text {
    size_t line_max; /* the longest line, without its line end */
    int has_8bit;    /* an octet >= 0x80 */
    int has_nul;     /* a NUL octet */
};

/* Appends in[0..len) to out with every line ending in CRLF: a bare LF or
 * a bare CR becomes CRLF, and a last line without one gets it. */
void pickup_to_crlf(const char *in, size_t len, struct buf *out, struct pickup_text *info);

#endif
