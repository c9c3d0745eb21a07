/* libFuzzer target: base/base64 and auth/sasl, the AUTH responses a client
 * sends. The first octet picks what the rest is fed to: a PLAIN response,
 * a LOGIN response, or raw octets to encode. Strict base64 is canonical,
 * so whatever decodes must encode back to exactly the input; whatever is
 * encoded must decode back to the octets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sasl/sasl.h"
#include "base/base64.h"
#include "base/strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

/* Is s a NUL-terminated field of at most SASL_FIELD_MAX octets? */
static size_t field_len(const char *s, size_t size)
{
    const char *nul = memchr(s, '\0', size);
    if (nul == NULL || (size_t)(nul - s) > SASL_FIELD_MAX)
        abort();
    return (size_t)(nul - s);
}

/* The status the base64 layer alone implies for in[0..n). */
static int expect_base64(const char *in, size_t n)
{
    if (n == 1 && in[0] == '=')
        return SASL_OK;
    static char scratch[BASE64_DECODED_MAX(1 << 16) + 3];
    if (n > (1 << 16))
        return SASL_OK; /* not checked: too large for scratch */
    return base64_decode(in, n, scratch, sizeof scratch) == BASE64_EINVAL ? SASL_EBASE64
                                                                          : SASL_OK;
}

/* Encodes msg and checks that it gives back the input (unless the input
 * was "=", the empty response). */
static void check_reencode(const char *msg, size_t n, const char *in, size_t inlen)
{
    if (inlen == 1 && in[0] == '=') {
        if (n != 0)
            abort();
        return;
    }
    char out[BASE64_ENCODED_SIZE(3 * SASL_FIELD_MAX + 2)];
    ssize_t w = base64_encode(msg, n, out, sizeof out);
    if (w < 0 || (size_t)w != inlen || memcmp(out, in, inlen) != 0)
        abort();
}

static void fuzz_plain(const char *in, size_t n)
{
    struct sasl_creds c;
    memset(&c, 0xa5, sizeof c);
    int rc = sasl_plain_decode(in, n, &c);
    int b = expect_base64(in, n);
    if (rc == SASL_EBASE64) {
        if (b != SASL_EBASE64)
            abort();
    } else if (b == SASL_EBASE64) {
        abort();
    }
    if (rc != SASL_OK) {
        if (rc != SASL_EBASE64 && rc != SASL_EMALFORMED && rc != SASL_EAUTHZID)
            abort();
        if (!all_zero(&c, sizeof c))
            abort();
        return;
    }
    size_t zl = field_len(c.authzid, sizeof c.authzid);
    size_t cl = field_len(c.authcid, sizeof c.authcid);
    size_t pl = field_len(c.password, sizeof c.password);
    if (cl == 0 || pl == 0)
        abort();
    if (zl && strutil_casecmp(c.authzid, c.authcid) != 0)
        abort();
    char msg[3 * SASL_FIELD_MAX + 2];
    memcpy(msg, c.authzid, zl);
    msg[zl] = '\0';
    memcpy(msg + zl + 1, c.authcid, cl);
    msg[zl + 1 + cl] = '\0';
    memcpy(msg + zl + cl + 2, c.password, pl);
    check_reencode(msg, zl + cl + 2 + pl, in, n);
    sasl_wipe(&c, sizeof c);
    if (!all_zero(&c, sizeof c))
        abort();
}

static void fuzz_login(const char *in, size_t n, size_t outsize)
{
    char *out = malloc(outsize ? outsize : 1);
    int rc = sasl_login_decode(in, n, out, outsize);
    int b = expect_base64(in, n);
    if ((rc == SASL_EBASE64) != (b == SASL_EBASE64))
        abort();
    if (rc != SASL_OK) {
        if (rc != SASL_EBASE64 && rc != SASL_EMALFORMED)
            abort();
        if (outsize && out[0] != '\0')
            abort();
    } else {
        size_t len = field_len(out, outsize);
        check_reencode(out, len, in, n);
    }
    free(out);
}

static void fuzz_encode(const uint8_t *p, size_t n)
{
    size_t need = BASE64_ENCODED_SIZE(n);
    char *enc = malloc(need);
    ssize_t w = base64_encode(p, n, enc, need);
    if (w < 0 || (size_t)w != need - 1 || enc[w] != '\0')
        abort();
    if (base64_encode(p, n, enc, need - 1) != BASE64_ENOSPC)
        abort();
    uint8_t *dec = malloc(n ? n : 1);
    if (base64_decode(enc, (size_t)w, dec, n) != (ssize_t)n || memcmp(dec, p, n) != 0)
        abort();
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    /* An exact-size copy: any read past n is an ASan report. */
    char *in = malloc(n ? n : 1);
    memcpy(in, data + 1, n);
    switch (data[0] % 4) {
    case 0:
        fuzz_plain(in, n);
        break;
    case 1:
        fuzz_login(in, n, SASL_FIELD_MAX + 1);
        break;
    case 2:
        fuzz_login(in, n, data[0] / 4); /* small outputs */
        break;
    default:
        fuzz_encode(data + 1, n);
        break;
    }
    free(in);
    return 0;
}
