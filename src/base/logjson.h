/* logjson: one log event as one line of JSON (log_format = json). Pure:
 * no clock, no I/O, so the unit test and the fuzzer can drive it with any
 * bytes. The message text may hold whatever a peer sent (addresses, HELO,
 * remote replies); the output is valid JSON whatever it holds. */
#ifndef TERN_BASE_LOGJSON_H
#define TERN_BASE_LOGJSON_H

#include <stddef.h>

#include "base/buf.h"

struct logjson_event {
    const char *ts;    /* RFC 3339, e.g. "2026-12-02T21:39:41.123Z" */
    const char *host;  /* the configured host name */
    const char *prog;  /* "tern/smtpd", "tern/qmgr" ... */
    long pid;
    const char *level; /* "info", "warning", "error", "fatal", "debug" */
    const char *msg;   /* the text of the line format, after "prog[pid]: " */
    size_t msglen;
};

/* Appends to `out` a JSON string literal (quotes included) holding s[0..n):
 * '"', '\\' and every control character (and DEL) escaped, well-formed
 * UTF-8 (RFC 3629) copied, every byte that is not part of well-formed
 * UTF-8 written as \u00XX (its Latin-1 reading), so the output is always
 * valid UTF-8 and valid JSON (RFC 8259 §7). */
void logjson_string(struct buf *out, const char *s, size_t n);

/* Length of the queue id that starts `msg` ("61AD7B0398000000: ..."), or
 * 0 when the message does not start with one. A queue id is 8-24
 * characters of [0-9A-Z] holding at least one digit, so "NOQUEUE",
 * "warning" and "spool" are not queue ids. */
size_t logjson_qid_len(const char *msg, size_t n);

/* Appends to `out` the event as one JSON object and a "\n": ts, host,
 * prog, pid, level, msg, then "qid" when the message starts with a queue
 * id, then the Postfix-style key=value fields of the message that have a
 * fixed meaning (from, to, orig_to, relay, delay, delays, dsn, status,
 * size, nrcpt, client, message-id, proto, helo, sasl_method,
 * sasl_username), each at most once; size and nrcpt as numbers. */
void logjson_encode(struct buf *out, const struct logjson_event *ev);

#endif
