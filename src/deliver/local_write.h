/* local_write: what the writers of mailboxes (deliver/maildir,
 * deliver/mbox) share: the header lines they put above a message, and the
 * result of a failed write. */
#ifndef TERN_DELIVER_LOCAL_WRITE_H
#define TERN_DELIVER_LOCAL_WRITE_H

#include <stddef.h>

#include "base/buf.h"
#include "mail/result.h"

/* Appends "Return-Path: <sender>" and "Delivered-To: recipient" lines (LF
 * ends); a control character in an address becomes '?', so no line break
 * can slip in (the addresses were parsed already: a second defence). */
void local_write_head(struct buf *b, const char *return_path, const char *delivered_to);

/* Converts CRLF to LF from in[0..n) into out (room for n + 1 octets).
 * *cr carries a CR that ended the previous chunk: it is dropped if this
 * chunk starts with LF, and written out otherwise. Returns octets out. */
size_t local_write_lf(const char *in, size_t n, char *out, int *cr);

/* A failed mailbox write as a result (RFC 3463): a full file system is
 * the mail system's (452 4.3.1: every mailbox on it is refused), a quota
 * the mailbox's (452 4.2.2), anything else a local error (451 4.3.0).
 * All temporary: each may heal, and the queue retries. `what` names the
 * step, err is a positive errno. */
void local_write_fail(struct result *res, const char *what, int err);

#endif
