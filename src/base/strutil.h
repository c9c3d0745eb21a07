/* strutil: bounded string helpers and escaping of untrusted text. */
#ifndef TERN_BASE_STRUTIL_H
#define TERN_BASE_STRUTIL_H

#include <stddef.h>

#include "base/buf.h"

/* Copies at most dstsize-1 bytes and NUL-terminates; returns strlen(src)
 * so truncation shows as a result >= dstsize. */
size_t strutil_lcpy(char *dst, const char *src, size_t dstsize);
/* ASCII case-insensitive comparisons, locale-independent. */
int strutil_casecmp(const char *a, const char *b);
int strutil_ncasecmp(const char *a, const char *b, size_t n);
/* Lowercases ASCII letters in place. */
void strutil_lower(char *s);
/* Appends `n` bytes of untrusted `s` to `out`, fit for a log line or a
 * header comment: printable ASCII passes, everything else (CR, LF, NUL,
 * controls, 8-bit) becomes \xHH and backslash becomes \\. */
void strutil_escape(struct buf *out, const char *s, size_t n);
/* The same, and also space, '<', '>', ',' and ';' become \xHH: for a
 * peer-supplied word inside a log line's key=<value> or key=value (an
 * address, a login name), so the value cannot end early or forge another
 * field for pflogsumm or log_format = json. */
void strutil_escape_word(struct buf *out, const char *s, size_t n);
/* For a string strutil_escape made before (a session's HELO): escapes the
 * separators strutil_escape_word does, and nothing twice. */
void strutil_escape_word_again(struct buf *out, const char *escaped);
/* Returns a pointer to a static buffer holding the escaped form of s, cut
 * to a few hundred bytes; for log arguments only (not reentrant). */
const char *strutil_esc(const char *s);
/* Length of the well-formed UTF-8 character (RFC 3629 §4) at p[0..n), or 0
 * when it is malformed, overlong, a surrogate or beyond U+10FFFF. */
size_t strutil_utf8_len(const unsigned char *p, size_t n);
/* Parses a decimal unsigned integer spanning the whole string. Returns 0,
 * -EINVAL when s is not all digits, or -ERANGE when it exceeds 64 bits. */
int strutil_parse_u64(const char *s, unsigned long long *out);

#endif
