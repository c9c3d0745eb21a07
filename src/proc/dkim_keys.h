/* dkim_keys: the private keys of the dkim_sign lines. The parent reads the
 * files (a key may be readable by root only, like a TLS key) into a blob;
 * the queue process, which signs, builds its keyring from the blob at
 * start and after SIGHUP. The smtp process never holds them: the blob is
 * read after the delivery process is started and wiped before the smtp
 * process is (proc/parent.c). */
#ifndef TERN_PROC_DKIM_KEYS_H
#define TERN_PROC_DKIM_KEYS_H

#include <openssl/types.h>
#include <stddef.h>

#include "base/buf.h"
#include "conf/config.h"
#include "mailauth/dkim_sign.h"

struct dkim_keyring {
    struct dkim_sign_key *keys; /* owned array: each key owned (EVP_PKEY_free),
                                 * domain and selector borrowed from the config */
    size_t n;
};

/* Appends every dkim_sign key file of cfg to *out. Returns 0, or the first
 * file's -errno with "file: reason" lines appended to *err. */
int dkim_keys_read(const struct config *cfg, struct buf *out, struct buf *err);

/* Builds *ring from a blob of dkim_keys_read() for the same cfg (which
 * must outlive the ring). Returns 0; -EBADMSG for a blob that does not
 * read, -EINVAL for a key that is not a PEM RSA (1024 bits or more) or
 * Ed25519 private key, with "dkim_sign DOMAIN SELECTOR: reason" in *err
 * and *ring empty. */
int dkim_keys_build(const struct config *cfg, const char *blob, size_t len,
                    struct dkim_keyring *ring, struct buf *err);

/* dkim_keys_read, then a trial build: a key that would not load is
 * caught before the queue process is given it. */
int dkim_keys_read_checked(const struct config *cfg, struct buf *out, struct buf *err);

/* The keys of domain (lowercase, no final dot) into out[0..max): their
 * number. */
size_t dkim_keyring_find(const struct dkim_keyring *ring, const char *domain,
                         struct dkim_sign_key *out, size_t max);

void dkim_keyring_free(struct dkim_keyring *ring);

#endif
