/* xtext: how DSN parameter values carry arbitrary octets through an ESMTP
 * command line (RFC 3461 §4), and the two encodings of internationalised
 * addresses that RFC 6533 §3 defines for the "utf-8" address type.
 * Pure and bounded; fuzzed by tests/fuzz/fuzz_dsn_param.c. */
#ifndef TERN_MAIL_XTEXT_H
#define TERN_MAIL_XTEXT_H

#include <stddef.h>

#include "base/buf.h"

/* Appends the xtext of in[0..n): every octet from '!' (33) to '~' (126)
 * except '+' and '=' as itself, every other octet as "+XX" with two
 * uppercase hex digits. */
void xtext_encode(struct buf *out, const char *in, size_t n);

/* Decodes the xtext in[0..n) and appends the octets to out. Strict:
 * every octet must be an xchar (33..126 but '+' and '=') or a '+' with
 * two uppercase hex digits after it ("+2b" is malformed). Returns 0,
 * -EINVAL when the input is malformed or -EMSGSIZE when it decodes to
 * more than `max` octets; on an error out is as it was. The decoded octets may hold anything, NUL
 * included: the caller checks what its field allows. */
int xtext_decode(const char *in, size_t n, size_t max, struct buf *out);

/* Appends the utf-8-addr-xtext of the UTF-8 string in[0..n) (RFC 6533
 * §3): QCHARs (printable ASCII but '\\', '+', '=') as themselves, every
 * other character as "\x{HEX}", its code point in uppercase hex without
 * leading zeros. With `unitext` set, non-ASCII characters pass as UTF-8
 * (utf-8-addr-unitext, for peers that speak SMTPUTF8). Octets that are
 * not well-formed UTF-8, NUL and the controls the grammar cannot express
 * become U+FFFD, so the result always decodes. */
void xtext_utf8_encode(struct buf *out, const char *in, size_t n, int unitext);

/* Decodes utf-8-addr-xtext (or, with `unitext`, utf-8-addr-unitext,
 * which also allows UTF-8 characters as themselves) into UTF-8 appended
 * to out. Strict to RFC 6533's HEXPOINT: no leading zeros, no
 * surrogates, nothing beyond U+10FFFF, and "\x{..}" only for characters
 * that cannot stand as themselves. Returns 0, -EINVAL on malformed input
 * or -EMSGSIZE for more than `max` decoded octets, leaving out as it was. */
int xtext_utf8_decode(const char *in, size_t n, int unitext, size_t max, struct buf *out);

#endif
