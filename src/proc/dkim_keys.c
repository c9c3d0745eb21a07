/* dkim_keys.c: the blob is IPC fields: the key count, then each key's
 * PEM bytes, in the order of the dkim_sign lines. */
#include "proc/dkim_keys.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsio.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mailauth/dkim_key.h"

/* An RSA-8192 PEM is under 7 KB; CONF_DKIM_SIGN_MAX of these fit in one
 * IPC message. */
#define DKIM_PEM_MAX (16 * 1024)
_Static_assert(CONF_DKIM_SIGN_MAX * (DKIM_PEM_MAX + 8) + 8 <= IPC_MAX_PAYLOAD,
               "the keys go to the queue in one message");

int dkim_keys_read(const struct config *cfg, struct buf *out, struct buf *err)
{
    int first = 0;
    ipc_put_u32(out, (uint32_t)cfg->ndkim_sign);
    for (size_t i = 0; i < cfg->ndkim_sign; i++) {
        char *data = NULL;
        size_t n = 0;
        int rc = fsio_read_file(cfg->dkim_sign[i].key, DKIM_PEM_MAX, &data, &n);
        if (rc < 0) {
            buf_printf(err, "%s: %s\n", cfg->dkim_sign[i].key, strerror(-rc));
            if (first == 0)
                first = rc;
            ipc_put_bytes(out, "", 0);
            continue;
        }
        ipc_put_bytes(out, data, n);
        memset(data, 0, n); /* keys should not linger in freed memory */
        free(data);
    }
    return first;
}

int dkim_keys_build(const struct config *cfg, const char *blob, size_t len,
                    struct dkim_keyring *ring, struct buf *err)
{
    memset(ring, 0, sizeof *ring);
    struct ipc_msg m = {0, blob, len, -1};
    struct ipc_rd r;
    ipc_rd_init(&r, &m);
    uint32_t n = ipc_get_u32(&r);
    if (r.err || n != cfg->ndkim_sign) {
        buf_puts(err, "malformed DKIM key material\n");
        return -EBADMSG;
    }
    struct dkim_keyring built = {xcalloc(n ? n : 1, sizeof *built.keys), 0};
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        size_t plen;
        const char *pem = ipc_get_bytes(&r, &plen, DKIM_PEM_MAX);
        if (r.err) {
            rc = -EBADMSG;
            buf_puts(err, "malformed DKIM key material\n");
            break;
        }
        const struct conf_dkim_sign *c = &cfg->dkim_sign[i];
        EVP_PKEY *key = dkim_key_from_pem(pem, plen);
        if (key == NULL) {
            rc = -EINVAL;
            buf_printf(err, "dkim_sign %s %s: %s is not an RSA (1024 bits or more) or Ed25519 "
                            "private key without a passphrase\n",
                       c->domain, c->selector, strutil_esc(c->key));
            break;
        }
        built.keys[built.n++] = (struct dkim_sign_key){key, c->domain, c->selector};
    }
    if (rc == 0 && (rc = ipc_rd_end(&r)) < 0)
        buf_puts(err, "malformed DKIM key material\n");
    if (rc < 0) {
        dkim_keyring_free(&built);
        return rc;
    }
    *ring = built;
    return 0;
}

int dkim_keys_read_checked(const struct config *cfg, struct buf *out, struct buf *err)
{
    int rc = dkim_keys_read(cfg, out, err);
    if (rc < 0)
        return rc;
    struct dkim_keyring ring;
    rc = dkim_keys_build(cfg, out->data, out->len, &ring, err);
    dkim_keyring_free(&ring);
    return rc;
}

size_t dkim_keyring_find(const struct dkim_keyring *ring, const char *domain,
                         struct dkim_sign_key *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < ring->n && k < max; i++)
        if (strcmp(ring->keys[i].domain, domain) == 0)
            out[k++] = ring->keys[i];
    return k;
}

void dkim_keyring_free(struct dkim_keyring *ring)
{
    for (size_t i = 0; i < ring->n; i++)
        EVP_PKEY_free(ring->keys[i].key);
    free(ring->keys);
    memset(ring, 0, sizeof *ring);
}
