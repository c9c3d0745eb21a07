/* downgrade: an 8-bit message (BODY=8BITMIME) made 7-bit for a next hop
 * that does not offer 8BITMIME, by MIME content-transfer-encodings (RFC
 * 6152 §3, RFC 2045 §6). Pure: message in, message out, no I/O; fuzzed by
 * tests/fuzz/fuzz_downgrade.c.
 *
 * What is converted, entity by entity (the message, each part of a
 * multipart, each message/rfc822 inside), and only where its content
 * holds an 8-bit octet, a NUL or a line over 998 octets — everything else
 * is copied octet for octet:
 *   - text/..., no Content-Type, message/global, message/global-headers,
 *     message/global-delivery-status (RFC 6532 §3.5, RFC 6533 §6 allow
 *     them an encoding): quoted-printable (RFC 2045 §6.7). An entity
 *     without Content-Type gets "text/plain; charset=utf-8" when its
 *     content is well-formed UTF-8, "charset=unknown-8bit" (RFC 1428)
 *     when not (us-ascii when it was 7-bit and only too long or with a
 *     NUL); a message gets MIME-Version: 1.0 when it had none;
 *   - any other leaf type (application/..., image/..., ...): base64 (RFC 2045
 *     §6.8), whose octets then decode exactly as they were;
 *   - multipart/... (RFC 2046 §5.1): each part, recursively; multipart/digest
 *     parts without Content-Type are message/rfc822;
 *   - message/rfc822: the enclosed message, recursively.
 * A composite entity that was labelled "8bit" is relabelled "7bit".
 *
 * Refused (the caller bounces with 554 5.6.3): an 8-bit octet, a NUL or a
 * line over 998 octets in a header section — the message's or a part's
 * (RFC 6152 converts bodies only; UTF-8 header fields need SMTPUTF8) — or
 * in a multipart's preamble, epilogue or delimiter lines (not content
 * that any encoding applies to); content to convert that is declared
 * binary, base64, quoted-printable or an unknown encoding (it cannot be
 * made 7-bit without decoding it first, and 8-bit octets in base64 are
 * broken anyway); a second Content-Type or Content-Transfer-Encoding
 * field; a Content-Type whose type/subtype does not parse; a multipart
 * without a usable boundary parameter or without any delimiter line;
 * message/partial, message/external-body and other message/... types with
 * 8-bit content; nesting deeper than DOWNGRADE_DEPTH_MAX. */
#ifndef TERN_MAIL_DOWNGRADE_H
#define TERN_MAIL_DOWNGRADE_H

#include <stddef.h>

#include "base/buf.h"

/* Entities nested deeper than this (multiparts and enclosed messages
 * counted together) are refused rather than followed. */
#define DOWNGRADE_DEPTH_MAX 20

/* 1 when the body of msg[0..len) (what follows the first empty line; a
 * message without one has no body) holds an octet >= 0x80 or a NUL, so
 * that a next hop without 8BITMIME needs downgrade_convert(); 0 when not. */
int downgrade_needed(const char *msg, size_t len);

/* Appends to out msg[0..len) made 7-bit as described above. Lines end in
 * CRLF as tern stores them (a bare LF also ends a line when looking for
 * header ends and boundaries). Every octet of the result is below 0x80
 * and not NUL, and every line of its body holds at most 998 octets (76
 * in what was encoded). A message with nothing to convert comes out
 * unchanged. Quoted-printable keeps CRLF as hard line breaks and encodes
 * a bare CR or LF, so decoding gives back the original octets exactly;
 * a '-' that starts an encoded line is encoded too, so that no encoded
 * line can be mistaken for a boundary delimiter. DKIM signatures over
 * the body do not survive, as with any such conversion.
 *
 * Returns 0, or -1 with nothing appended and *why (may be NULL) set to a
 * static text saying what made conversion impossible, for the log and
 * the bounce. */
int downgrade_convert(const char *msg, size_t len, struct buf *out, const char **why);

#endif
