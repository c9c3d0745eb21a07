/* tls_material: the certificates and keys of every listener and of the
 * tls_sni lines. The parent reads the files (a key is often readable by
 * root only) into one blob; the net process, which opens no files, builds
 * its TLS contexts from that blob at start and again after SIGHUP. */
#ifndef TERN_PROC_TLS_MATERIAL_H
#define TERN_PROC_TLS_MATERIAL_H

#include <stddef.h>

#include "base/buf.h"
#include "conf/config.h"
#include "ev/tlsctx.h"

/* The embedded default: creates the self-signed certificate when
 * tls_selfsigned is on and the files are missing. Returns 1 when it made
 * one, 0 when there was nothing to do, or -errno with the reason in *err. */
int tls_material_prepare(const struct config *cfg, struct buf *err);

/* Reads every certificate and key into *out (appended). Returns 0, or the
 * first file's -errno with "file: reason" lines appended to *err. */
int tls_material_read(const struct config *cfg, struct buf *out, struct buf *err);

/* Builds ctxs[i] for each listener i of cfg (NULL for a listener without
 * a certificate) from a blob of tls_material_read(). Returns 0, or
 * -EBADMSG (a blob that does not read) / -EINVAL (material OpenSSL
 * refuses) with the reason in *err and nothing built (ctxs untouched). */
int tls_material_build(const struct config *cfg, const char *blob, size_t len,
                       struct tlsctx **ctxs, struct buf *err);
/* tls_material_read, then a trial build: a key that does not parse or
 * match is caught before a new smtp process would die of it. Returns 0 or
 * the -errno of either. */
int tls_material_read_checked(const struct config *cfg, struct buf *out, struct buf *err);

#endif
