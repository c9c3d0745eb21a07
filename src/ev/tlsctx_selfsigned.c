/* tlsctx_selfsigned.c: the certificate `make run` makes for itself, so the
 * submission and smtps listeners of the embedded default work at once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "base/fsio.h"
#include "base/sizes.h"
#include "base/xmalloc.h"
#include "ev/tlsctx.h"

/* The text a memory BIO holds, as an owned NUL-terminated string. */
static char *selfsigned_bio_text(BIO *bio, size_t *len)
{
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    if (n <= 0)
        return NULL;
    *len = (size_t)n;
    return xstrndup(p, (size_t)n);
}

static int selfsigned_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -EINVAL;
}

static void selfsigned_dirname(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 1;
    if (len >= n)
        len = n - 1;
    memcpy(out, slash ? path : ".", len);
    out[len] = '\0';
}

int tlsctx_make_selfsigned(const char *cert_path, const char *key_path, const char *cn,
                           struct buf *err)
{
    int rc = -EIO; /* what OpenSSL fails with: it sets no errno */
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    char *ktext = NULL, *ctext = NULL;
    size_t klen = 0, clen = 0;
    unsigned char serial[16];
    char san[DNS_NAME_MAX + 16]; /* "DNS:" and the host name */
    if (key == NULL || x == NULL || kb == NULL || cb == NULL ||
        RAND_bytes(serial, sizeof serial) != 1)
        goto ossl;
    serial[0] &= 0x7f; /* a positive serial number */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    if (!ok || X509_set_version(x, 2) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto ossl;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, name) != 1)
        goto ossl;
    snprintf(san, sizeof san, "DNS:%s", cn);
    if (selfsigned_ext(x, NID_subject_alt_name, san) < 0 ||
        selfsigned_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        selfsigned_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
        X509_sign(x, key, EVP_sha256()) == 0)
        goto ossl;
    if (PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(cb, x) != 1)
        goto ossl;
    ktext = selfsigned_bio_text(kb, &klen);
    ctext = selfsigned_bio_text(cb, &clen);
    if (ktext == NULL || ctext == NULL)
        goto ossl;
    char dir[PATH_MAX];
    selfsigned_dirname(key_path, dir, sizeof dir);
    rc = fsio_mkpath(dir, 0755, 0700);
    if (rc == 0)
        rc = fsio_write_file_atomic(key_path, ktext, klen, 0600);
    if (rc < 0) {
        buf_printf(err, "cannot write %s\n", key_path);
        goto out;
    }
    selfsigned_dirname(cert_path, dir, sizeof dir);
    rc = fsio_mkpath(dir, 0755, 0700);
    if (rc == 0)
        rc = fsio_write_file_atomic(cert_path, ctext, clen, 0644);
    if (rc < 0) {
        buf_printf(err, "cannot write %s\n", cert_path);
        goto out;
    }
    rc = 0;
    goto out;
ossl:
    {
        const char *why = ERR_reason_error_string(ERR_get_error());
        buf_printf(err, "cannot make a self-signed certificate: %s\n",
                   why ? why : "unknown error");
        ERR_clear_error();
    }
out:
    if (ktext)
        memset(ktext, 0, klen);
    free(ktext);
    free(ctext);
    BIO_free(kb);
    BIO_free(cb);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
