/* dkim_msg: a message as the DKIM and ARC signers and verifiers read it
 * while it streams (dkim_verify, dkim_sign, arc_verify, arc_seal): its
 * header section kept and indexed (dkim_hdr.h), its body hashed
 * (dkim_canon.h), and the scratch their header hashes need. The reader
 * that owns one says, when the header section is complete, which body
 * hashes it wants and whether the body is to be hashed at all. */
#ifndef TERN_MAILAUTH_DKIM_MSG_H
#define TERN_MAILAUTH_DKIM_MSG_H

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mailauth/dkim_canon.h"
#include "mailauth/dkim_hdr.h"

struct dkim_msg {
    struct dkim_hdr hdr;
    struct dkim_hdr_index idx; /* the names the reader's h= lists need */
    struct dkim_body *body;    /* owned */
    EVP_MD_CTX *md;            /* owned */
    uint32_t *cursor;          /* owned: one per indexed name */
    size_t cursor_cap;
    struct buf scratch;        /* owned: for the header hashes and the reader */
    bool body_on;              /* body octets go to the hasher */
};

/* Ends the process when OpenSSL cannot give its hash states (out of memory). */
void dkim_msg_init(struct dkim_msg *m);
void dkim_msg_free(struct dkim_msg *m);

/* Forgets the message, keeping storage; a header of at most header_max
 * octets (0: DKIM_HEADER_MAX) is kept; the body is not hashed until the
 * reader sets body_on. */
void dkim_msg_reset(struct dkim_msg *m, size_t header_max);

/* Feeds n octets of content from its first header field on. When they
 * complete the header section, on_header(arg) runs (once per message)
 * before any body octet goes to the hasher, so it can ask for body
 * hashes and set body_on. on_header may be NULL. */
void dkim_msg_feed(struct dkim_msg *m, const char *p, size_t n, void (*on_header)(void *arg),
                   void *arg);

/* The content ended: a header section that never ended is what was fed
 * (on_header runs then), and the body hashes are finished. */
void dkim_msg_end(struct dkim_msg *m, void (*on_header)(void *arg), void *arg);

/* Builds the name index over the header and gives the cursor room. */
void dkim_msg_index_build(struct dkim_msg *m);

/* dkim_hdr_hash over m: the fields hlist names, then sigf[0..sign). */
void dkim_msg_hash(struct dkim_msg *m, enum dkim_canon c, const char *hlist, size_t hlen,
                   const char *sigf, size_t sign, unsigned char out[DKIM_HASH_LEN]);

#endif
