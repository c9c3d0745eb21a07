/* downgrade: a message made fit for a next hop that cannot take it as it
 * is, by MIME content-transfer-encodings: 8-bit content (BODY=8BITMIME)
 * for a next hop without 8BITMIME (RFC 6152 §3, RFC 2045 §6), binary
 * content (BODY=BINARYMIME, or octets that no text transfer may carry)
 * for a next hop without BINARYMIME (RFC 3030 §3). Pure: message in,
 * message out, no I/O; fuzzed by tests/fuzz/fuzz_downgrade.c.
 *
 * What a body must not hold to be copied as it is: a NUL, a bare CR, a
 * bare LF, a line over 998 octets and, unless DOWNGRADE_KEEP_8BIT, an
 * octet >= 0x80. What is converted, entity by entity (the message, each
 * part of a multipart, each message/rfc822 inside), and only where its
 * content holds such an octet — everything else is copied octet for
 * octet:
 *   - text/..., no Content-Type, message/global, message/global-headers,
 *     message/global-delivery-status (RFC 6532 §3.5, RFC 6533 §6 allow
 *     them an encoding): quoted-printable (RFC 2045 §6.7). An entity
 *     without Content-Type gets "text/plain; charset=utf-8" when its
 *     content is well-formed UTF-8, "charset=unknown-8bit" (RFC 1428)
 *     when not (us-ascii when it was 7-bit and only too long or with a
 *     NUL or bare CR/LF); a message gets MIME-Version: 1.0 when it had
 *     none;
 *   - any other leaf type (application/..., image/..., ...): base64 (RFC 2045
 *     §6.8), whose octets then decode exactly as they were;
 *   - multipart/... (RFC 2046 §5.1): each part, recursively; multipart/digest
 *     parts without Content-Type are message/rfc822;
 *   - message/rfc822: the enclosed message, recursively.
 * Content labelled "binary" is encoded like any other. A composite entity
 * labelled "8bit" or "binary" is relabelled "7bit" ("8bit" with
 * DOWNGRADE_KEEP_8BIT for one labelled "binary"). Line ends that are a
 * bare LF in a header section or between parts become CRLF.
 *
 * Refused (the caller bounces with 554 5.6.3): a NUL, a bare CR, a line
 * over 998 octets or (unless DOWNGRADE_KEEP_8BIT) an 8-bit octet in a
 * header section — the message's or a part's (RFC 6152 converts bodies
 * only; UTF-8 header fields need SMTPUTF8) — or in a multipart's
 * preamble, epilogue or delimiter lines (not content that any encoding
 * applies to); content to convert that is declared base64,
 * quoted-printable or an unknown encoding (it cannot be made fit without
 * decoding it first, and such octets in base64 are broken anyway); a
 * second Content-Type or Content-Transfer-Encoding field; a Content-Type
 * whose type/subtype does not parse; a multipart without a usable
 * boundary parameter or without any delimiter line; message/partial,
 * message/external-body and other message/... types with content to
 * convert; nesting deeper than DOWNGRADE_DEPTH_MAX. */
#ifndef TERN_MAIL_DOWNGRADE_H
#define TERN_MAIL_DOWNGRADE_H

#include <stddef.h>

#include "base/buf.h"

/* Entities nested deeper than this (multiparts and enclosed messages
 * counted together) are refused rather than followed. */
#define DOWNGRADE_DEPTH_MAX 20

/* downgrade_convert() flags. */
/* The next hop offers 8BITMIME: 8-bit octets may stay (in bodies, and in
 * headers as for any 8BITMIME message); only what no text transfer may
 * carry is encoded. */
#define DOWNGRADE_KEEP_8BIT 0x01
/* The message came as BODY=BINARYMIME: a leaf labelled "binary" is
 * encoded even when its octets would fit, and composites are walked for
 * such leaves, so that no "binary" label goes where BINARYMIME is not
 * offered (a structure that cannot be walked is copied when it fits). */
#define DOWNGRADE_BINARY 0x02

/* 1 when the body of msg[0..len) (what follows the first empty line; a
 * message without one has no body) holds an octet that the flags' target
 * cannot carry — a NUL, a bare CR or LF, or (without DOWNGRADE_KEEP_8BIT)
 * an octet >= 0x80 — so that downgrade_convert() has work; 0 when not.
 * Long lines are not counted. */
int downgrade_needed(const char *msg, size_t len, unsigned flags);

/* Appends to out msg[0..len) converted as described above (flags:
 * DOWNGRADE_*). Lines are found at LF or CRLF (a bare LF also ends a
 * line when looking for header ends and boundaries). The result holds no
 * NUL and no bare CR or LF, every octet is below 0x80 (unless
 * DOWNGRADE_KEEP_8BIT), and every line of its body holds at most 998
 * octets (76 in what was encoded). A message with nothing to convert (no
 * line end a bare LF either) comes out unchanged, but for the "binary"
 * labels DOWNGRADE_BINARY replaces. Quoted-printable keeps CRLF as
 * hard line breaks and encodes a bare CR or LF, so decoding gives back
 * the original octets exactly; a '-' that starts an encoded line is
 * encoded too, so that no encoded line can be mistaken for a boundary
 * delimiter. DKIM signatures over the body do not survive, as with any
 * such conversion.
 *
 * Returns 0, or -EINVAL with nothing appended and *why (may be NULL) set to a
 * static text saying what made conversion impossible, for the log and
 * the bounce. */
int downgrade_convert(const char *msg, size_t len, unsigned flags, struct buf *out,
                      const char **why);

#endif
