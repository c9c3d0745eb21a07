/* conn_tls.c: TLS under conn's interface (docs/design.md: only ev/conn_tls and
 * ev/tlsctx include OpenSSL). The socket stays non-blocking; OpenSSL's
 * WANT_READ / WANT_WRITE become the events conn asks the loop for. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "base/strutil.h"
#include "ev/conn_priv.h"

void conn_starttls(struct conn *c, struct tlsctx *t)
{
    if (c->state != CONN_OPEN || c->tls_state != CONN_TLS_NONE || c->tls_start)
        return;
    /* RFC 3207 §4.2 (CVE-2011-0411): what the client sent before the
     * handshake is not part of the TLS session; it is dropped unread. */
    buf_reset(&c->rbuf);
    c->tls = tlsctx_ref(t);
    c->tls_start = 1;
    if (c->wbuf.len - c->woff == 0) {
        conn_tls_begin(c);
        return;
    }
    conn_watch(c); /* stops reading until the 220 is out */
}

void conn_starttls_client(struct conn *c, struct tlsctx *t)
{
    c->tls_client = 1;
    conn_starttls(c, t);
}

void conn_tls_set_peer(struct conn *c, const char *name, int verify)
{
    free(c->tls_peer);
    c->tls_peer = name ? strdup(name) : NULL;
    c->tls_verify = verify && c->tls_peer != NULL;
}

/* SNI and, when asked, certificate checks for an outbound handshake.
 * Returns 0, or -EINVAL when OpenSSL refuses the peer's name. */
static int conn_tls_client_peer(struct conn *c, SSL *ssl)
{
    if (c->tls_peer == NULL)
        return 0;
    unsigned char bin[16];
    int numeric = inet_pton(AF_INET, c->tls_peer, bin) == 1 ||
                  inet_pton(AF_INET6, c->tls_peer, bin) == 1;
    if (!numeric && SSL_set_tlsext_host_name(ssl, c->tls_peer) != 1)
        return -EINVAL;
    if (!c->tls_verify)
        return 0;
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    if (numeric)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->tls_peer) == 1 ? 0
                                                                                   : -EINVAL;
    return SSL_set1_host(ssl, c->tls_peer) == 1 ? 0 : -EINVAL;
}

void conn_tls_begin(struct conn *c)
{
    c->tls_start = 0;
    SSL *ssl = SSL_new(tlsctx_ssl_ctx(c->tls));
    if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        conn_finish(c, -ENOMEM);
        return;
    }
    if (c->tls_client) {
        SSL_set_connect_state(ssl);
        int rc = conn_tls_client_peer(c, ssl);
        if (rc < 0) {
            SSL_free(ssl);
            ERR_clear_error();
            conn_finish(c, rc);
            return;
        }
    } else {
        SSL_set_accept_state(ssl);
    }
    c->ssl = ssl;
    c->tls_state = CONN_TLS_HANDSHAKE;
    /* A server waits for the ClientHello; a client sends it first. */
    c->tls_want = c->tls_client ? EV_WRITE : EV_READ;
    conn_watch(c);
}

/* Maps an OpenSSL result to what conn understands; remembers which
 * direction OpenSSL is waiting for. */
static ssize_t conn_tls_result(struct conn *c, int r, int reading)
{
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->tls_want = EV_READ;
        c->tls_rw_swap = !reading;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->tls_want = EV_WRITE;
        c->tls_rw_swap = reading;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return errno ? -errno : 0;
    default: {
        unsigned long err = ERR_get_error();
        char why[160];
        ERR_error_string_n(err, why, sizeof why);
        log_debug("tls: %s", why);
        if (c->tls_state == CONN_TLS_HANDSHAKE)
            strutil_lcpy(c->tls_err, why, sizeof c->tls_err);
        ERR_clear_error();
        return -EPROTO;
    }
    }
}

void conn_tls_handshake(struct conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1 && c->state != CONN_OPEN) {
        conn_finish(c, 0);
        return;
    }
    if (r == 1) {
        c->tls_state = CONN_TLS_ON;
        c->tls_want = 0;
        c->tls_rw_swap = 0;
        conn_watch(c);
        if (c->cb.on_tls && c->state == CONN_OPEN) {
            c->depth++;
            c->cb.on_tls(c, c->arg, 0);
            c->depth--;
        }
        return;
    }
    ssize_t k = conn_tls_result(c, r, 1);
    if (k == -EAGAIN) {
        conn_watch(c);
        return;
    }
    long v = c->tls_client ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (v != X509_V_OK) /* more telling than "certificate verify failed" */
        snprintf(c->tls_err, sizeof c->tls_err, "certificate verification failed: %s",
                 X509_verify_cert_error_string(v));
    conn_finish(c, k == 0 ? -ECONNRESET : (int)k);
}

ssize_t conn_tls_send(struct conn *c, const char *p, size_t n)
{
    ERR_clear_error();
    size_t done = 0;
    c->tls_rw_swap = 0;
    while (done < n) {
        size_t w = 0;
        int r = SSL_write_ex(c->ssl, p + done, n - done, &w);
        if (r == 1) {
            done += w;
            continue;
        }
        ssize_t k = conn_tls_result(c, r, 0);
        if (k == -EAGAIN)
            break;
        return k == 0 ? -EPIPE : k;
    }
    return (ssize_t)done;
}

ssize_t conn_tls_recv(struct conn *c, char *p, size_t n)
{
    ERR_clear_error();
    size_t got = 0;
    c->tls_rw_swap = 0;
    int r = SSL_read_ex(c->ssl, p, n, &got);
    if (r == 1)
        return (ssize_t)got;
    return conn_tls_result(c, r, 1);
}

const char *conn_tls_error(const struct conn *c)
{
    return c->tls_err;
}

int conn_tls_pending(const struct conn *c)
{
    return c->ssl && c->tls_state == CONN_TLS_ON && SSL_pending(c->ssl) > 0;
}

void conn_tls_end(struct conn *c, int clean)
{
    if (c->ssl) {
        if (clean && c->tls_state == CONN_TLS_ON && c->fd >= 0) {
            (void)SSL_shutdown(c->ssl); /* one try: the socket is non-blocking */
            ERR_clear_error();
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    tlsctx_unref(c->tls);
    c->tls = NULL;
    free(c->tls_peer);
    c->tls_peer = NULL;
    c->tls_state = CONN_TLS_NONE;
    c->tls_start = 0;
}

int conn_is_tls(const struct conn *c)
{
    return c->tls_state == CONN_TLS_ON;
}

const char *conn_tls_version(const struct conn *c)
{
    return c->ssl && c->tls_state == CONN_TLS_ON ? SSL_get_version(c->ssl) : NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
    return c->ssl && c->tls_state == CONN_TLS_ON ? SSL_get_cipher_name(c->ssl) : NULL;
}

int conn_tls_bits(const struct conn *c)
{
    return c->ssl && c->tls_state == CONN_TLS_ON ? SSL_get_cipher_bits(c->ssl, NULL) : 0;
}
