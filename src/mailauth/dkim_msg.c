/* dkim_msg.c: see dkim_msg.h. */
#include "mailauth/dkim_msg.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"

void dkim_msg_init(struct dkim_msg *m)
{
    memset(m, 0, sizeof *m);
    dkim_hdr_init(&m->hdr);
    m->body = dkim_body_new();
    m->md = EVP_MD_CTX_new();
    if (m->md == NULL)
        fatal("dkim: out of memory");
}

void dkim_msg_free(struct dkim_msg *m)
{
    dkim_hdr_free(&m->hdr);
    dkim_hdr_index_free(&m->idx);
    dkim_body_free(m->body);
    EVP_MD_CTX_free(m->md);
    free(m->cursor);
    buf_free(&m->scratch);
    memset(m, 0, sizeof *m);
}

void dkim_msg_reset(struct dkim_msg *m, size_t header_max)
{
    dkim_hdr_reset(&m->hdr, header_max);
    dkim_hdr_index_reset(&m->idx);
    dkim_body_reset(m->body);
    m->body_on = false;
}

void dkim_msg_feed(struct dkim_msg *m, const char *p, size_t n, void (*on_header)(void *arg),
                   void *arg)
{
    if (!m->hdr.done) {
        size_t used = dkim_hdr_feed(&m->hdr, p, n);
        if (m->hdr.done && on_header)
            on_header(arg);
        p += used;
        n -= used;
    }
    if (m->body_on && n > 0)
        dkim_body_feed(m->body, p, n);
}

void dkim_msg_end(struct dkim_msg *m, void (*on_header)(void *arg), void *arg)
{
    if (!m->hdr.done) {
        dkim_hdr_end(&m->hdr);
        if (on_header)
            on_header(arg);
    }
    if (m->body_on)
        dkim_body_finish(m->body);
}

void dkim_msg_index_build(struct dkim_msg *m)
{
    dkim_hdr_index_build(&m->idx, &m->hdr);
    if (m->cursor_cap < m->idx.nnames) {
        m->cursor_cap = m->idx.nnames;
        m->cursor = xrealloc(m->cursor, m->cursor_cap * sizeof *m->cursor);
    }
}

void dkim_msg_hash(struct dkim_msg *m, enum dkim_canon c, const char *hlist, size_t hlen,
                   const char *sigf, size_t sign, unsigned char out[DKIM_HASH_LEN])
{
    dkim_hdr_hash(&m->hdr, &m->idx, m->cursor, c, hlist, hlen, sigf, sign, m->md, &m->scratch,
                  out);
}
