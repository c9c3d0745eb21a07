/* queue_dkim.c: see queue_dkim.h. */
#include "proc/queue_dkim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/dkim_sign.h"
#include "mailauth/dmarc_from.h"

/* The content is read in pieces of this size: the first holds the header
 * of nearly every message, where the From field is looked for. */
#define QDKIM_CHUNK (64 * 1024)

struct queue_dkim {
    const struct config *cfg;
    struct dkim_keyring ring;
    struct dkim_signer *signer;
    char *chunk; /* QDKIM_CHUNK octets */
};

struct queue_dkim *queue_dkim_new(void)
{
    struct queue_dkim *d = xcalloc(1, sizeof *d);
    d->signer = dkim_sign_new();
    d->chunk = xmalloc(QDKIM_CHUNK);
    return d;
}

void queue_dkim_free(struct queue_dkim *d)
{
    if (d == NULL)
        return;
    dkim_keyring_free(&d->ring);
    dkim_sign_free(d->signer);
    free(d->chunk);
    free(d);
}

void queue_dkim_set(struct queue_dkim *d, const struct config *cfg, struct dkim_keyring *ring)
{
    dkim_keyring_free(&d->ring);
    d->ring = *ring;
    memset(ring, 0, sizeof *ring);
    d->cfg = cfg;
}

/* Whether the message is the sender's own: see queue_dkim.h. */
static int qdkim_eligible(const struct queue_dkim *d, const struct envelope *env)
{
    if (env->auth_user && env->auth_user[0])
        return 1;
    if (env->client_ip == NULL || env->client_ip[0] == '\0')
        return 1;
    return config_relay_allowed(d->cfg, env->client_ip);
}

/* The end of the header section in p[0..n) (the empty line included), or
 * n when it does not end there. */
static size_t qdkim_header_len(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return n;
}

void queue_dkim_sign(void *arg, const struct envelope *env, int fd, uint64_t size,
                     struct buf *out)
{
    struct queue_dkim *d = arg;
    if (d->ring.n == 0 || size == 0 || !qdkim_eligible(d, env))
        return;
    size_t first = size < QDKIM_CHUNK ? (size_t)size : QDKIM_CHUNK;
    int rc = fsio_pread_all(fd, d->chunk, first, 0);
    if (rc < 0) {
        log_warn("%s: not signed: cannot read the content: %s", env->qid, strerror(-rc));
        return;
    }
    struct dmarc_from from;
    (void)dmarc_from_parse_header(&from, d->chunk, qdkim_header_len(d->chunk, first));
    if (from.status != DMARC_FROM_OK || from.naddrs != 1)
        return; /* nobody to sign for: no From, several, or unreadable */
    char domain[DNS_NAME_MAX];
    strutil_lcpy(domain, from.domains[0], sizeof domain);
    strutil_lower(domain);
    struct dkim_sign_key keys[DKIM_SIGN_KEYS_MAX];
    size_t nkeys = dkim_keyring_find(&d->ring, domain, keys, DKIM_SIGN_KEYS_MAX);
    if (nkeys == 0)
        return;
    struct dkim_sign_params p = {.keys = keys, .nkeys = nkeys, .t = (long long)clock_wall()};
    rc = dkim_sign_start(d->signer, &p);
    if (rc < 0) {
        log_warn("%s: not signed for %s: %s", env->qid, domain, strerror(-rc));
        return;
    }
    dkim_sign_feed(d->signer, d->chunk, first);
    for (uint64_t off = first; off < size;) {
        size_t n = size - off < QDKIM_CHUNK ? (size_t)(size - off) : QDKIM_CHUNK;
        rc = fsio_pread_all(fd, d->chunk, n, (off_t)off);
        if (rc < 0) {
            log_warn("%s: not signed: cannot read the content: %s", env->qid, strerror(-rc));
            return;
        }
        dkim_sign_feed(d->signer, d->chunk, n);
        off += n;
    }
    size_t before = out->len;
    rc = dkim_sign_finish(d->signer, out);
    if (rc < 0) {
        out->len = before;
        log_warn("%s: not signed for %s: %s", env->qid, domain,
                 rc == -EMSGSIZE ? "header section too large" : "the signature failed");
        return;
    }
    for (size_t i = 0; i < nkeys; i++)
        log_info("%s: DKIM-Signature added: d=%s s=%s", env->qid, keys[i].domain,
                 keys[i].selector);
}
