/* base64.c: RFC 4648 §4 encoding and strict decoding. */
#include "base/base64.h"

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of one character of the alphabet, or -EINVAL. Comparisons
 * rather than a 256-entry table: what passes through here is often a
 * password. */
static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -EINVAL;
}

ssize_t base64_encode(const void *in, size_t n, char *out, size_t outsize)
{
    const unsigned char *p = in;
    if (outsize < BASE64_ENCODED_SIZE(n))
        return BASE64_ENOSPC;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        unsigned v = (unsigned)p[i] << 16;
        if (left > 1)
            v |= (unsigned)p[i + 1] << 8;
        if (left > 2)
            v |= p[i + 2];
        out[o++] = base64_alphabet[(v >> 18) & 63];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = left > 1 ? base64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? base64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* Octets the input decodes to, or BASE64_EINVAL. Checks everything before
 * the decoder writes a byte. */
static ssize_t base64_check(const unsigned char *in, size_t n)
{
    if (n % 4)
        return BASE64_EINVAL;
    if (n == 0)
        return 0;
    size_t pad = 0;
    if (in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (base64_value(in[i]) < 0)
            return BASE64_EINVAL;
    /* RFC 4648 §3.5: the bits a pad stands in for must be zero, or two
     * different strings would decode to the same octets. */
    int last = base64_value(in[n - pad - 1]);
    if ((pad == 1 && (last & 3)) || (pad == 2 && (last & 15)))
        return BASE64_EINVAL;
    return (ssize_t)(n / 4 * 3 - pad);
}

ssize_t base64_decode(const char *in, size_t n, void *out, size_t outsize)
{
    const unsigned char *s = (const unsigned char *)in;
    ssize_t len = base64_check(s, n);
    if (len < 0)
        return len;
    if ((size_t)len > outsize)
        return BASE64_ENOSPC;
    unsigned char *o = out;
    size_t w = 0;
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = s[i + j] == '=' ? 0 : base64_value(s[i + j]);
            v = (v << 6) | (unsigned)d;
        }
        unsigned char b[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8),
                              (unsigned char)v};
        for (size_t j = 0; j < 3 && w < (size_t)len; j++)
            o[w++] = b[j];
    }
    return len;
}
