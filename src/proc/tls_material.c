/* tls_material.c: the blob is a sequence of IPC fields: per listener a
 * u32 flag then cert and key bytes, then the SNI entries. The net process
 * checks it like any other message. */
#include "proc/tls_material.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fsio.h"
#include "base/sizes.h"
#include "base/xmalloc.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"

#define TLS_PEM_MAX (256 * 1024)

int tls_material_prepare(const struct config *cfg, struct buf *err)
{
    if (!cfg->tls_selfsigned || cfg->tls_cert == NULL || cfg->tls_key == NULL)
        return 0;
    if (access(cfg->tls_cert, F_OK) == 0 && access(cfg->tls_key, F_OK) == 0)
        return 0;
    int rc = tlsctx_make_selfsigned(cfg->tls_cert, cfg->tls_key, cfg->hostname, err);
    if (rc < 0)
        return rc;
    return 1; /* made one: the caller tells the operator */
}

static int tls_material_put_file(struct buf *out, const char *path, struct buf *err)
{
    char *data = NULL;
    size_t n = 0;
    int rc = fsio_read_file(path, TLS_PEM_MAX, &data, &n);
    if (rc < 0) {
        buf_printf(err, "%s: %s\n", path, strerror(-rc));
        return rc;
    }
    ipc_put_bytes(out, data, n);
    memset(data, 0, n); /* keys should not linger in freed memory */
    free(data);
    return 0;
}

/* Appends a certificate and its key. Returns 0 or the -errno of the
 * first that cannot be read (reasons appended to err). */
static int tls_material_put_pair(struct buf *out, const char *cert, const char *key,
                                 struct buf *err)
{
    int rc = tls_material_put_file(out, cert, err);
    if (rc == 0)
        rc = tls_material_put_file(out, key, err);
    return rc;
}

int tls_material_read(const struct config *cfg, struct buf *out, struct buf *err)
{
    int first = 0;
    ipc_put_u32(out, (uint32_t)cfg->nlisteners);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const char *cert = config_listener_cert(cfg, &cfg->listeners[i]);
        const char *key = config_listener_key(cfg, &cfg->listeners[i]);
        int has = cert && key;
        ipc_put_u32(out, (uint32_t)has);
        int rc = has ? tls_material_put_pair(out, cert, key, err) : 0;
        if (rc < 0 && first == 0)
            first = rc;
    }
    ipc_put_u32(out, (uint32_t)cfg->ntls_sni);
    for (size_t i = 0; i < cfg->ntls_sni; i++) {
        ipc_put_str(out, cfg->tls_sni[i].name);
        int rc = tls_material_put_pair(out, cfg->tls_sni[i].cert, cfg->tls_sni[i].key, err);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}

static void tls_material_get_pem(struct ipc_rd *r, const char **p, size_t *n)
{
    *p = ipc_get_bytes(r, n, TLS_PEM_MAX);
}

int tls_material_build(const struct config *cfg, const char *blob, size_t len,
                       struct tlsctx **ctxs, struct buf *err)
{
    struct ipc_msg m = {0, blob, len, -1};
    struct ipc_rd r;
    ipc_rd_init(&r, &m);
    struct tlsctx_pem def[CONF_MAX_LISTENERS];
    int has[CONF_MAX_LISTENERS];
    uint32_t nl = ipc_get_u32(&r);
    if (nl != cfg->nlisteners) {
        buf_printf(err, "TLS material for %u listeners, expected %zu\n", nl, cfg->nlisteners);
        return -EBADMSG;
    }
    for (size_t i = 0; i < nl && !r.err; i++) {
        memset(&def[i], 0, sizeof def[i]);
        has[i] = ipc_get_u32(&r) != 0;
        if (has[i]) {
            tls_material_get_pem(&r, &def[i].cert, &def[i].cert_len);
            tls_material_get_pem(&r, &def[i].key, &def[i].key_len);
        }
    }
    uint32_t nsni = ipc_get_u32(&r);
    if (r.err || nsni != cfg->ntls_sni) {
        buf_puts(err, "malformed TLS material\n");
        return -EBADMSG;
    }
    struct tlsctx_pem *sni = xcalloc(nsni ? nsni : 1, sizeof *sni);
    char (*names)[DNS_NAME_MAX] = xcalloc(nsni ? nsni : 1, sizeof *names);
    for (uint32_t i = 0; i < nsni; i++) {
        ipc_get_str(&r, names[i], sizeof names[i]);
        sni[i].name = names[i];
        tls_material_get_pem(&r, &sni[i].cert, &sni[i].cert_len);
        tls_material_get_pem(&r, &sni[i].key, &sni[i].key_len);
    }
    struct tlsctx *built[CONF_MAX_LISTENERS] = {0};
    int rc = ipc_rd_end(&r);
    if (rc < 0) {
        buf_puts(err, "malformed TLS material\n");
        goto out;
    }
    rc = -EINVAL; /* what tlsctx_new refuses */
    struct tlsctx_opts opts = {cfg->tls_min_version, cfg->tls_ciphers};
    for (size_t i = 0; i < nl; i++) {
        if (!has[i])
            continue;
        built[i] = tlsctx_new(&opts, &def[i], sni, nsni, err);
        if (built[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                tlsctx_unref(built[j]);
            goto out;
        }
    }
    memcpy(ctxs, built, nl * sizeof *ctxs);
    rc = 0;
out:
    free(sni);
    free(names);
    return rc;
}

int tls_material_read_checked(const struct config *cfg, struct buf *out, struct buf *err)
{
    size_t start = out->len;
    int rc = tls_material_read(cfg, out, err);
    if (rc < 0)
        return rc;
    struct tlsctx *ctxs[CONF_MAX_LISTENERS] = {0};
    rc = tls_material_build(cfg, out->data + start, out->len - start, ctxs, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < CONF_MAX_LISTENERS; i++)
        tlsctx_unref(ctxs[i]);
    return 0;
}
