/* tlsctx: the server side of TLS (OpenSSL 3) for STARTTLS and implicit
 * TLS. A tlsctx holds a listener's default certificate plus the SNI
 * certificates; it is built from PEM text in memory, because the
 * network process reads no files (the parent reads them and passes the
 * text, at start and on SIGHUP). Reference counted: a connection in its
 * handshake keeps the tlsctx it started with alive across a reload. */
#ifndef TERN_EV_TLSCTX_H
#define TERN_EV_TLSCTX_H

#include <stddef.h>

#include "base/buf.h"

struct tlsctx;

/* One certificate: the chain (leaf first, as in certbot's fullchain.pem)
 * and its private key, as PEM text. name is the SNI host name it serves
 * ("*.example.org" matches one label), or NULL for the default. */
struct tlsctx_pem {
    const char *name;
    const char *cert;
    size_t cert_len;
    const char *key;
    size_t key_len;
};

struct tlsctx_opts {
    int min_version;     /* 12 (TLS 1.2) or 13 */
    const char *ciphers; /* OpenSSL list for TLS 1.2; TLS 1.3 keeps OpenSSL's suites */
};

/* Builds a context from def and the SNI certificates. Returns an owned
 * reference (tlsctx_unref() releases it), or NULL with the reason
 * appended to *err (a bad PEM, a key that does not match its cert). */
struct tlsctx *tlsctx_new(const struct tlsctx_opts *opts, const struct tlsctx_pem *def,
                          const struct tlsctx_pem *sni, size_t nsni, struct buf *err);
/* A context for outbound SMTP: TLS 1.2 or newer, opportunistic (RFC 7435:
 * no certificate check; a verifying policy is a later step). Owned. */
struct tlsctx *tlsctx_client_new(struct buf *err);
/* The same, trusting only the CA certificates of the PEM text (one or
 * more; a self-signed server certificate works as its own CA) instead
 * of the system's, for `tern send --cafile`. NULL with the reason in *err. */
struct tlsctx *tlsctx_client_new_ca(const char *ca_pem, size_t ca_len, struct buf *err);
struct tlsctx *tlsctx_ref(struct tlsctx *t);
void tlsctx_unref(struct tlsctx *t);

/* The OpenSSL SSL_CTX of the default certificate (for ev/conn_tls only). */
void *tlsctx_ssl_ctx(const struct tlsctx *t);

/* Writes a new self-signed certificate for cn (ECDSA P-256, valid ten
 * years) to cert_path and its key to key_path (mode 0600), creating the
 * directories. For the embedded default only. Returns 0, or -errno (-EIO
 * when OpenSSL failed) with the reason appended to *err. */
int tlsctx_make_selfsigned(const char *cert_path, const char *key_path, const char *cn,
                           struct buf *err);

#endif
