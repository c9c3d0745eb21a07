/* tlsctx.c: server SSL_CTXs, one per certificate, the default one
 * switching to an SNI certificate in the ClientHello callback. */
#include "ev/tlsctx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "base/strutil.h"
#include "base/xmalloc.h"

struct tlsctx_sni {
    char *name; /* owned, lowercased */
    SSL_CTX *ctx;
};

struct tlsctx {
    int refs;
    SSL_CTX *def;
    struct tlsctx_sni *sni; /* owned array */
    size_t nsni;
};

/* Appends OpenSSL's queued error reasons to err and clears the queue. */
static void tlsctx_errors(struct buf *err, const char *what, const char *name)
{
    buf_printf(err, "%s%s%s: ", what, name ? " for " : "", name ? name : "");
    unsigned long e;
    int any = 0;
    while ((e = ERR_get_error()) != 0) {
        char line[256];
        ERR_error_string_n(e, line, sizeof line);
        buf_printf(err, "%s%s", any ? "; " : "", line);
        any = 1;
    }
    if (!any)
        buf_puts(err, "unknown error");
    buf_putc(err, '\n');
}

/* Loads the certificate, its chain and the key. Returns 0, or -EINVAL
 * with OpenSSL's reasons appended to err. */
static int tlsctx_load_pem(SSL_CTX *ctx, const struct tlsctx_pem *p, struct buf *err)
{
    const char *name = p->name ? p->name : "the default certificate";
    BIO *bio = BIO_new_mem_buf(p->cert, (int)p->cert_len);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int ok = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    /* The rest of the file is the chain, sent after the leaf. */
    while (ok) {
        X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (ca == NULL) {
            ERR_clear_error(); /* the end of the file */
            break;
        }
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            ok = 0;
        }
    }
    BIO_free(bio);
    if (!ok) {
        tlsctx_errors(err, "cannot load the certificate", name);
        return -EINVAL;
    }
    bio = BIO_new_mem_buf(p->key, (int)p->key_len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) {
        tlsctx_errors(err, "cannot load the private key (or it does not match)", name);
        return -EINVAL;
    }
    return 0;
}

static SSL_CTX *tlsctx_one(const struct tlsctx_opts *o, const struct tlsctx_pem *p,
                           struct buf *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tlsctx_errors(err, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, o->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* No renegotiation (a CPU-exhaustion lever), no compression (CRIME),
     * the server's cipher order; an EOF without close_notify is a normal
     * end for SMTP clients, not an error worth a log line. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET |
                                 SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    static const unsigned char sid_ctx[] = "tern";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        tlsctx_errors(err, "tls_ciphers", NULL);
        goto fail;
    }
    if (tlsctx_load_pem(ctx, p, err) < 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Does the SNI name match pattern (exact, or "*.rest" for one label)? */
static int tlsctx_name_match(const char *pattern, const char *name)
{
    if (strutil_casecmp(pattern, name) == 0)
        return 1;
    if (strncmp(pattern, "*.", 2) != 0)
        return 0;
    const char *dot = strchr(name, '.');
    return dot && dot != name && strutil_casecmp(pattern + 1, dot) == 0;
}

static int tlsctx_on_servername(SSL *ssl, int *alert, void *arg)
{
    struct tlsctx *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (size_t i = 0; i < t->nsni; i++) {
        if (tlsctx_name_match(t->sni[i].name, name)) {
            SSL_set_SSL_CTX(ssl, t->sni[i].ctx);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* the default certificate */
}

struct tlsctx *tlsctx_new(const struct tlsctx_opts *opts, const struct tlsctx_pem *def,
                          const struct tlsctx_pem *sni, size_t nsni, struct buf *err)
{
    struct tlsctx *t = xcalloc(1, sizeof *t);
    t->refs = 1;
    t->def = tlsctx_one(opts, def, err);
    if (t->def == NULL)
        goto fail;
    t->sni = xcalloc(nsni ? nsni : 1, sizeof *t->sni);
    for (size_t i = 0; i < nsni; i++) {
        t->sni[i].ctx = tlsctx_one(opts, &sni[i], err);
        if (t->sni[i].ctx == NULL)
            goto fail;
        t->sni[i].name = xstrdup(sni[i].name);
        strutil_lower(t->sni[i].name);
        t->nsni++;
    }
    SSL_CTX_set_tlsext_servername_callback(t->def, tlsctx_on_servername);
    SSL_CTX_set_tlsext_servername_arg(t->def, t);
    return t;
fail:
    tlsctx_unref(t);
    return NULL;
}

/* Puts every certificate of the PEM text into a fresh store. Returns the
 * store (owned) or NULL with the reason in *err. */
static X509_STORE *tlsctx_ca_store(const char *pem, size_t len, struct buf *err)
{
    if (len > (size_t)0x7fffffff) {
        buf_puts(err, "CA file too large\n");
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509_STORE *st = X509_STORE_new();
    size_t n = 0;
    X509 *x;
    while (bio && st && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(st, x) == 1;
        X509_free(x);
        if (!ok)
            break;
        n++;
    }
    BIO_free(bio);
    /* The loop ends with "no start line" at the end of the text. */
    ERR_clear_error();
    if (st == NULL || n == 0) {
        X509_STORE_free(st);
        buf_puts(err, "no certificate in the CA file\n");
        return NULL;
    }
    return st;
}

struct tlsctx *tlsctx_client_new_ca(const char *ca_pem, size_t ca_len, struct buf *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        tlsctx_errors(err, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Verification is per connection (conn_tls_set_peer); the trusted
     * CAs are the system's, or only the given ones. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (ca_pem) {
        X509_STORE *st = tlsctx_ca_store(ca_pem, ca_len, err);
        if (st == NULL) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_cert_store(ctx, st); /* the ctx owns it now */
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ERR_clear_error();
    }
    struct tlsctx *t = xcalloc(1, sizeof *t);
    t->refs = 1;
    t->def = ctx;
    t->sni = xcalloc(1, sizeof *t->sni);
    return t;
}

struct tlsctx *tlsctx_client_new(struct buf *err)
{
    return tlsctx_client_new_ca(NULL, 0, err);
}

struct tlsctx *tlsctx_ref(struct tlsctx *t)
{
    t->refs++;
    return t;
}

void tlsctx_unref(struct tlsctx *t)
{
    if (t == NULL || --t->refs > 0)
        return;
    for (size_t i = 0; i < t->nsni; i++) {
        free(t->sni[i].name);
        SSL_CTX_free(t->sni[i].ctx);
    }
    free(t->sni);
    SSL_CTX_free(t->def);
    free(t);
}

void *tlsctx_ssl_ctx(const struct tlsctx *t)
{
    return t->def;
}
