/* sasl.c: PLAIN (RFC 4616) and LOGIN responses decoded into the
 * caller's buffers. */
#include "sasl/sasl.h"

#include <errno.h>
#include <string.h>

#include "base/base64.h"
#include "base/strutil.h"

void sasl_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

const char *sasl_status_str(int status)
{
    switch (status) {
    case SASL_OK:
        return "ok";
    case SASL_EBASE64:
        return "bad base64";
    case SASL_EMALFORMED:
        return "malformed response";
    case SASL_EAUTHZID:
        return "authorization identity differs from authentication identity";
    default:
        return "unknown";
    }
}

/* Decodes b64 into out; RFC 4954 §4: "=" alone is an empty response.
 * Returns the length or a sasl_status. */
static int sasl_b64(const char *b64, size_t n, char *out, size_t outsize)
{
    if (n == 1 && b64[0] == '=')
        return 0;
    ssize_t len = base64_decode(b64, n, out, outsize);
    if (len == BASE64_EINVAL)
        return SASL_EBASE64;
    if (len < 0)
        return SASL_EMALFORMED; /* well-formed base64, too long a message */
    return (int)len;
}

/* Copies the field msg[from, to) into out (SASL_FIELD_MAX + 1 octets) if
 * it fits and is not empty (when `nonempty`). Returns 0 or -EINVAL. */
static int sasl_field(const char *msg, size_t from, size_t to, char *out, int nonempty)
{
    size_t len = to - from;
    if (len > SASL_FIELD_MAX || (nonempty && len == 0))
        return -EINVAL;
    memcpy(out, msg + from, len);
    out[len] = '\0';
    return 0;
}

int sasl_plain_decode(const char *b64, size_t n, struct sasl_creds *out)
{
    /* 3 fields of SASL_FIELD_MAX and 2 NULs; one spare octet so an
     * over-long message is seen as such. */
    char msg[3 * SASL_FIELD_MAX + 2 + 1];
    memset(out, 0, sizeof *out);
    int rc = sasl_b64(b64, n, msg, sizeof msg);
    if (rc < 0)
        goto out;
    size_t len = (size_t)rc;
    rc = SASL_EMALFORMED;
    /* RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd;
     * exactly two NULs, authcid and passwd of at least one octet. */
    const char *nul1 = memchr(msg, '\0', len);
    if (nul1 == NULL)
        goto out;
    size_t i1 = (size_t)(nul1 - msg);
    const char *nul2 = memchr(msg + i1 + 1, '\0', len - i1 - 1);
    if (nul2 == NULL)
        goto out;
    size_t i2 = (size_t)(nul2 - msg);
    if (memchr(msg + i2 + 1, '\0', len - i2 - 1))
        goto out;
    if (sasl_field(msg, 0, i1, out->authzid, 0) < 0 ||
        sasl_field(msg, i1 + 1, i2, out->authcid, 1) < 0 ||
        sasl_field(msg, i2 + 1, len, out->password, 1) < 0)
        goto out;
    /* Acting for another user (an authzid other than one's own name) is
     * not supported: refuse rather than ignore it. */
    if (out->authzid[0] && strutil_casecmp(out->authzid, out->authcid) != 0) {
        rc = SASL_EAUTHZID;
        goto out;
    }
    rc = SASL_OK;
out:
    sasl_wipe(msg, sizeof msg);
    if (rc != SASL_OK)
        sasl_wipe(out, sizeof *out);
    return rc;
}

int sasl_login_decode(const char *b64, size_t n, char *out, size_t outsize)
{
    char msg[SASL_FIELD_MAX + 1]; /* one spare octet: see too long */
    if (outsize > 0)
        out[0] = '\0';
    int rc = sasl_b64(b64, n, msg, sizeof msg);
    if (rc < 0)
        goto out;
    size_t len = (size_t)rc;
    if (len > SASL_FIELD_MAX || len >= outsize || memchr(msg, '\0', len)) {
        rc = SASL_EMALFORMED;
        goto out;
    }
    memcpy(out, msg, len);
    out[len] = '\0';
    rc = SASL_OK;
out:
    sasl_wipe(msg, sizeof msg);
    return rc;
}
