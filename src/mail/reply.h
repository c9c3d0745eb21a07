/* reply: every SMTP reply tern sends is built here, from a code, an
 * enhanced status code (RFC 3463) and text. */
#ifndef TERN_MAIL_REPLY_H
#define TERN_MAIL_REPLY_H

#include "base/buf.h"

/* Appends a reply to `out`. `enh` may be NULL (greeting, 220/221 before
 * EHLO, 334); otherwise it is written after the code on every line.
 * `text` may hold several lines separated by '\n'; all but the last get
 * "code-". CR, LF and other controls inside a line are replaced, so peer
 * text echoed in a reply can never start a new reply line. */
void reply_append(struct buf *out, int code, const char *enh, const char *text);

/* The same with printf-style text. */
void reply_appendf(struct buf *out, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
