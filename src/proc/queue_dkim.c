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
#include "proc/queue_arc.h"
#include "mailauth/arc_seal.h"
#include "mailauth/dkim_sign.h"
#include "mailauth/dmarc_from.h"

/* The content is read in pieces of this size: the first holds the header
 * of nearly every message, where the From field is looked for. */
#define QDKIM_CHUNK (64 * 1024)

struct queue_dkim {
    const struct config *cfg;
    struct dkim_keyring ring;
    struct dkim_signer *signer;
    struct arc_sealer *sealer;
    struct queue_arc_in arc; /* the seal being made */
    struct buf fields;       /* the DKIM-Signature fields being made */
    char *chunk;             /* QDKIM_CHUNK octets */
};

struct queue_dkim *queue_dkim_new(void)
{
    struct queue_dkim *d = xcalloc(1, sizeof *d);
    d->signer = dkim_sign_new();
    d->sealer = arc_seal_new();
    d->chunk = xmalloc(QDKIM_CHUNK);
    return d;
}

void queue_dkim_free(struct queue_dkim *d)
{
    if (d == NULL)
        return;
    dkim_keyring_free(&d->ring);
    dkim_sign_free(d->signer);
    arc_seal_free(d->sealer);
    buf_free(&d->arc.aar);
    buf_free(&d->fields);
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

/* Starts the DKIM signer for mail that is the sender's own and whose From
 * domain has keys; the first chunk holds the header. Returns whether it
 * signs; the keys go to keys[0..*nkeys). */
static bool qdkim_sign_start(struct queue_dkim *d, const struct envelope *env, size_t first,
                             struct dkim_sign_key *keys, size_t *nkeys)
{
    *nkeys = 0;
    if (!qdkim_eligible(d, env))
        return false;
    struct dmarc_from from;
    (void)dmarc_from_parse_header(&from, d->chunk, qdkim_header_len(d->chunk, first));
    if (from.status != DMARC_FROM_OK || from.naddrs != 1)
        return false; /* nobody to sign for: no From, several, or unreadable */
    char domain[DNS_NAME_MAX];
    strutil_lcpy(domain, from.domains[0], sizeof domain);
    strutil_lower(domain);
    *nkeys = dkim_keyring_find(&d->ring, domain, keys, DKIM_SIGN_KEYS_MAX);
    if (*nkeys == 0)
        return false;
    struct dkim_sign_params p = {.keys = keys, .nkeys = *nkeys, .t = (long long)clock_wall()};
    int rc = dkim_sign_start(d->signer, &p);
    if (rc < 0)
        log_warn("%s: not signed for %s: %s", env->qid, domain, strerror(-rc));
    return rc == 0;
}

/* Starts the sealer for forwarded mail (proc/queue_arc.h). */
static bool qdkim_seal_start(struct queue_dkim *d, const struct envelope *env,
                             const char *prefix, size_t plen, struct arc_seal_params *p)
{
    if (!queue_arc_wanted(d->cfg, &d->ring, env, prefix, plen, &d->arc))
        return false;
    *p = (struct arc_seal_params){.key = d->arc.key.key, .domain = d->arc.key.domain,
                                  .selector = d->arc.key.selector,
                                  .t = (long long)clock_wall(), .cv = d->arc.cv,
                                  .authres = d->arc.aar.data};
    int rc = arc_seal_start(d->sealer, p);
    if (rc < 0)
        log_warn("%s: not sealed for %s: %s", env->qid, p->domain, strerror(-rc));
    return rc == 0;
}

/* Ends the seal: the set goes to out, above the DKIM fields (RFC 8617
 * §5.1: every change, DKIM signatures included, comes before the seal)
 * and the receiving side's fields. */
static void qdkim_seal_finish(struct queue_dkim *d, const struct envelope *env,
                              const struct arc_seal_params *p, const char *prefix, size_t plen,
                              struct buf *out)
{
    buf_append(&d->fields, prefix, plen);
    int rc = arc_seal_finish(d->sealer, d->fields.data, d->fields.len, out);
    d->fields.len -= plen;
    if (rc == -EPERM || rc == -E2BIG)
        log_info("%s: not sealed: %s", env->qid,
                 rc == -EPERM ? "the ARC chain failed before" : "the ARC chain is full");
    else if (rc < 0)
        log_warn("%s: not sealed for %s: %s", env->qid, p->domain,
                 rc == -EMSGSIZE ? "header section too large" : "the seal failed");
    else
        log_info("%s: ARC set added: d=%s s=%s cv=%s", env->qid, p->domain, p->selector,
                 arc_result_name(p->cv));
}

void queue_dkim_sign(void *arg, const struct envelope *env, const char *prefix, size_t plen,
                     int fd, uint64_t size, struct buf *out)
{
    struct queue_dkim *d = arg;
    if (d->ring.n == 0 || size == 0)
        return;
    size_t first = size < QDKIM_CHUNK ? (size_t)size : QDKIM_CHUNK;
    int rc = fsio_pread_all(fd, d->chunk, first, 0);
    if (rc < 0) {
        log_warn("%s: not signed: cannot read the content: %s", env->qid, strerror(-rc));
        return;
    }
    struct dkim_sign_key keys[DKIM_SIGN_KEYS_MAX];
    size_t nkeys;
    struct arc_seal_params ap;
    bool sign = qdkim_sign_start(d, env, first, keys, &nkeys);
    bool seal = qdkim_seal_start(d, env, prefix, plen, &ap);
    if (!sign && !seal)
        return;
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < QDKIM_CHUNK ? (size_t)(size - off) : QDKIM_CHUNK;
        rc = off == 0 ? 0 : fsio_pread_all(fd, d->chunk, n, (off_t)off);
        if (rc < 0) {
            log_warn("%s: not signed: cannot read the content: %s", env->qid, strerror(-rc));
            return;
        }
        if (sign)
            dkim_sign_feed(d->signer, d->chunk, n);
        if (seal)
            arc_seal_feed(d->sealer, d->chunk, n);
        off += n;
    }
    buf_reset(&d->fields);
    if (sign && (rc = dkim_sign_finish(d->signer, &d->fields)) < 0) {
        buf_reset(&d->fields);
        log_warn("%s: not signed for %s: %s", env->qid, keys[0].domain,
                 rc == -EMSGSIZE ? "header section too large" : "the signature failed");
        sign = false;
    }
    if (seal)
        qdkim_seal_finish(d, env, &ap, prefix, plen, out);
    buf_append(out, d->fields.data, d->fields.len);
    for (size_t i = 0; sign && i < nkeys; i++)
        log_info("%s: DKIM-Signature added: d=%s s=%s", env->qid, keys[i].domain,
                 keys[i].selector);
}
