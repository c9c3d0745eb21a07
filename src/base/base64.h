/* base64: RFC 4648 §4 base64 with the standard alphabet and padding.
 * The decoder is strict, as RFC 4954 §4 wants of SASL responses: any
 * character outside the alphabet (white space and line ends included), a
 * length that is not a multiple of 4, misplaced padding or non-zero pad
 * bits (RFC 4648 §3.5) make the whole input invalid. Output buffers
 * belong to the caller and are never written beyond their size. */
#ifndef TERN_BASE_BASE64_H
#define TERN_BASE_BASE64_H

#include <errno.h>
#include <stddef.h>
#include <sys/types.h>

/* Octets base64_encode() needs for n input octets, the NUL included. */
#define BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)
/* The most octets n base64 characters can decode to. */
#define BASE64_DECODED_MAX(n) (((n) / 4) * 3)

#define BASE64_EINVAL (-EINVAL) /* not strict base64 */
#define BASE64_ENOSPC (-ENOSPC) /* valid, but the output buffer is too small */

/* Encodes n octets of in into out as a NUL-terminated string. Returns its
 * length, or BASE64_ENOSPC (out untouched) when outsize is smaller than
 * BASE64_ENCODED_SIZE(n). */
ssize_t base64_encode(const void *in, size_t n, char *out, size_t outsize);

/* Decodes the n characters at in (no NUL needed; "" decodes to nothing)
 * into out. Returns the number of octets written, BASE64_EINVAL when the
 * input is not strict base64, or BASE64_ENOSPC when it is but its octets
 * do not fit in outsize. On an error nothing is written to out. */
ssize_t base64_decode(const char *in, size_t n, void *out, size_t outsize);

#endif
