/* dkim_sign.c: the signer. A signature field is built up to "b=", folded;
 * that text (b= empty, as a verifier sees it after deleting the value,
 * RFC 6376 §3.7) ends the header hash; the signature's base64 follows,
 * folded across lines. */
#include "mailauth/dkim_sign.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/dkim_key.h"
#include "mailauth/dkim_tags.h"

/* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters. */
#define DKIM_LINE_MAX 78

const char *const dkim_sign_headers_default[] = {
    "from",     "reply-to",    "subject",      "date",
    "to",       "cc",          "message-id",   "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding",
    "content-id", "content-description", "content-disposition", NULL,
};

struct dkim_signer {
    struct dkim_sign_params p;
    const char *const *headers;
    struct dkim_msg m;
    int slot;
    struct buf hlist, field, sig;
    bool started;
};

struct dkim_signer *dkim_sign_new(void)
{
    struct dkim_signer *s = xcalloc(1, sizeof *s);
    dkim_msg_init(&s->m);
    return s;
}

void dkim_sign_free(struct dkim_signer *s)
{
    if (s == NULL)
        return;
    dkim_msg_free(&s->m);
    buf_free(&s->hlist);
    buf_free(&s->field);
    buf_free(&s->sig);
    free(s);
}

static bool dkim_sign_pkey_ok(EVP_PKEY *k)
{
    if (k == NULL)
        return false;
    int id = EVP_PKEY_get_base_id(k);
    if (id == EVP_PKEY_ED25519)
        return true;
    int bits = EVP_PKEY_get_bits(k);
    return id == EVP_PKEY_RSA && bits >= DKIM_RSA_BITS_MIN && bits <= DKIM_RSA_BITS_MAX;
}

/* The domain after the last '@' of i= is d or under it (§3.5 i=). */
static bool dkim_sign_auid_ok(const char *auid, const char *d)
{
    const char *at = strrchr(auid, '@');
    if (at == NULL || strlen(auid) > DKIM_AUID_MAX)
        return false;
    for (const char *c = auid; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == ';' || (unsigned char)*c == 0x7f)
            return false; /* it goes into a tag value as it is */
    size_t n = strlen(at + 1), dl = strlen(d);
    if (n < dl || strutil_casecmp(at + 1 + n - dl, d) != 0)
        return false;
    return n == dl || at[n - dl] == '.';
}

bool dkim_sign_key_ok(const struct dkim_sign_key *key)
{
    return dkim_sign_pkey_ok(key->key) && key->domain != NULL && key->selector != NULL &&
           dkim_name_ok(key->domain, strlen(key->domain)) &&
           dkim_name_ok(key->selector, strlen(key->selector)) &&
           strlen(key->selector) + 12 + strlen(key->domain) <= 253;
}

bool dkim_sign_headers_ok(const char *const *hs)
{
    bool from = false;
    size_t nh = 0;
    for (size_t i = 0; hs[i]; i++, nh++) {
        size_t len = strlen(hs[i]);
        if (len == 0 || strcspn(hs[i], ": \t\r\n") != len)
            return false;
        if (strcmp(hs[i], "from") == 0)
            from = true;
    }
    return from && nh <= DKIM_H_MAX / 2;
}

int dkim_sign_start(struct dkim_signer *s, const struct dkim_sign_params *p)
{
    s->started = false;
    if (p->nkeys == 0 || p->nkeys > DKIM_SIGN_KEYS_MAX)
        return -EINVAL;
    for (size_t k = 0; k < p->nkeys; k++) {
        const struct dkim_sign_key *key = &p->keys[k];
        if (!dkim_sign_key_ok(key))
            return -EINVAL;
        if (p->auid && !dkim_sign_auid_ok(p->auid, key->domain))
            return -EINVAL;
    }
    if (p->t < 0 || p->x < 0 || (p->x && p->x <= p->t))
        return -EINVAL;
    const char *const *hs = p->headers ? p->headers : dkim_sign_headers_default;
    if (!dkim_sign_headers_ok(hs))
        return -EINVAL;
    s->p = *p;
    s->headers = hs;
    dkim_msg_reset(&s->m, p->header_max);
    s->slot = dkim_body_want(s->m.body, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    s->m.body_on = true;
    s->started = true;
    return 0;
}

void dkim_sign_feed(struct dkim_signer *s, const char *p, size_t n)
{
    if (s->started)
        dkim_msg_feed(&s->m, p, n, NULL, NULL);
}

int dkim_sign_digest(EVP_PKEY *key, const unsigned char digest[DKIM_HASH_LEN],
                     struct buf *out)
{
    buf_reset(out);
    size_t len = 0;
    int ok = 0;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        if (m && EVP_DigestSignInit(m, NULL, NULL, NULL, key) == 1 &&
            EVP_DigestSign(m, NULL, &len, digest, DKIM_HASH_LEN) == 1) {
            unsigned char *w = (unsigned char *)buf_reserve(out, len);
            ok = EVP_DigestSign(m, w, &len, digest, DKIM_HASH_LEN) == 1;
        }
        EVP_MD_CTX_free(m);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
        if (c && EVP_PKEY_sign_init(c) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
            EVP_PKEY_CTX_set_signature_md(c, dkim_sha256()) == 1 &&
            EVP_PKEY_sign(c, NULL, &len, digest, DKIM_HASH_LEN) == 1) {
            unsigned char *w = (unsigned char *)buf_reserve(out, len);
            ok = EVP_PKEY_sign(c, w, &len, digest, DKIM_HASH_LEN) == 1;
        }
        EVP_PKEY_CTX_free(c);
    }
    if (!ok) {
        ERR_clear_error();
        return -EIO;
    }
    buf_commit(out, len);
    return 0;
}

/* ---- folding ---- */

void dkim_fold_start(struct dkim_fold *f, struct buf *out, struct buf *scratch, const char *name)
{
    f->out = out;
    f->scratch = scratch;
    buf_puts(out, name);
    buf_putc(out, ':');
    f->col = strlen(name) + 1;
}

/* Appends a word, after a space (sp) or right after what came before;
 * folds first when the word would make the line too long. A fold is
 * white space, so a word that follows nothing (an h= name after its
 * colon) can be moved to the next line too. */
static void dkim_fold_word(struct dkim_fold *f, const char *w, size_t n, bool sp)
{
    if (f->col + (sp ? 1 : 0) + n > DKIM_LINE_MAX && f->col > 1) {
        buf_append(f->out, "\r\n ", 3);
        f->col = 1;
    } else if (sp) {
        buf_putc(f->out, ' ');
        f->col++;
    }
    buf_append(f->out, w, n);
    f->col += n;
}

void dkim_fold_tag(struct dkim_fold *f, const char *name, const char *value)
{
    struct buf *w = f->scratch;
    buf_reset(w);
    buf_printf(w, "%s=%s;", name, value);
    dkim_fold_word(f, w->data, w->len, true);
}

void dkim_fold_hlist(struct dkim_fold *f, const char *h, size_t hn)
{
    size_t at = 0;
    bool first = true;
    while (at < hn) {
        const char *colon = memchr(h + at, ':', hn - at);
        size_t end = colon ? (size_t)(colon - h) + 1 : hn;
        buf_reset(f->scratch);
        if (first)
            buf_puts(f->scratch, "h=");
        buf_append(f->scratch, h + at, end - at);
        if (!colon)
            buf_putc(f->scratch, ';');
        dkim_fold_word(f, f->scratch->data, f->scratch->len, first);
        first = false;
        at = end;
    }
}

void dkim_fold_b(struct dkim_fold *f)
{
    if (f->col + 1 + 2 + 8 > DKIM_LINE_MAX) {
        buf_append(f->out, "\r\n ", 3);
        f->col = 1;
    } else {
        buf_putc(f->out, ' ');
        f->col++;
    }
    buf_puts(f->out, "b=");
    f->col += 2;
}

void dkim_fold_sig(struct dkim_fold *f, const unsigned char *sig, size_t n)
{
    size_t b64n = BASE64_ENCODED_SIZE(n);
    struct buf *sc = f->scratch;
    buf_reset(sc);
    char *enc = buf_reserve(sc, b64n);
    ssize_t len = base64_encode(sig, n, enc, b64n);
    buf_commit(sc, (size_t)len);
    size_t i = 0;
    while (i < (size_t)len) {
        size_t room = DKIM_LINE_MAX - f->col;
        size_t take = (size_t)len - i < room ? (size_t)len - i : room;
        buf_append(f->out, sc->data + i, take);
        i += take;
        if (i < (size_t)len) {
            buf_append(f->out, "\r\n ", 3);
            f->col = 1;
        }
    }
    buf_append(f->out, "\r\n", 2);
}

/* One signature field for key k into out. */
static int dkim_sign_one(struct dkim_signer *s, const struct dkim_sign_key *k,
                         const char *bh, struct buf *out)
{
    bool ed = EVP_PKEY_get_base_id(k->key) == EVP_PKEY_ED25519;
    struct buf *fb = &s->field;
    buf_reset(fb);
    struct dkim_fold f;
    dkim_fold_start(&f, fb, &s->m.scratch, "DKIM-Signature");
    char num[24];
    dkim_fold_tag(&f, "v", "1");
    dkim_fold_tag(&f, "a", ed ? "ed25519-sha256" : "rsa-sha256");
    dkim_fold_tag(&f, "c", "relaxed/relaxed");
    dkim_fold_tag(&f, "d", k->domain);
    dkim_fold_tag(&f, "s", k->selector);
    if (s->p.auid)
        dkim_fold_tag(&f, "i", s->p.auid);
    if (s->p.t) {
        snprintf(num, sizeof num, "%lld", s->p.t);
        dkim_fold_tag(&f, "t", num);
    }
    if (s->p.x) {
        snprintf(num, sizeof num, "%lld", s->p.x);
        dkim_fold_tag(&f, "x", num);
    }
    dkim_fold_hlist(&f, s->hlist.data, s->hlist.len);
    dkim_fold_tag(&f, "bh", bh);
    dkim_fold_b(&f);

    /* The header hash sees the field as it is now: b= with no value. */
    unsigned char hh[DKIM_HASH_LEN];
    dkim_msg_hash(&s->m, DKIM_CANON_RELAXED, s->hlist.data, s->hlist.len, fb->data, fb->len, hh);
    if (dkim_sign_digest(k->key, hh, &s->sig) < 0)
        return -EIO;
    dkim_fold_sig(&f, (const unsigned char *)s->sig.data, s->sig.len);
    buf_append(out, fb->data, fb->len);
    return 0;
}

int dkim_sign_finish(struct dkim_signer *s, struct buf *out)
{
    if (!s->started)
        return -EINVAL;
    s->started = false;
    dkim_msg_end(&s->m, NULL, NULL);
    if (s->m.hdr.overflow)
        return -EMSGSIZE;
    for (size_t i = 0; s->headers[i]; i++)
        dkim_hdr_index_add(&s->m.idx, s->headers[i], strlen(s->headers[i]));
    dkim_msg_index_build(&s->m);
    buf_reset(&s->hlist);
    dkim_hdr_hlist(&s->m.idx, s->headers, true, &s->hlist);
    char bh[BASE64_ENCODED_SIZE(DKIM_HASH_LEN)];
    base64_encode(dkim_body_digest(s->m.body, s->slot), DKIM_HASH_LEN, bh, sizeof bh);
    size_t mark = out->len;
    for (size_t k = 0; k < s->p.nkeys; k++) {
        if (dkim_sign_one(s, &s->p.keys[k], bh, out) < 0) {
            out->len = mark;
            if (out->data)
                out->data[mark] = '\0';
            return -EIO;
        }
    }
    return 0;
}

const char *dkim_sign_header(const struct dkim_signer *s, size_t *len)
{
    *len = s->m.hdr.text.len;
    return s->m.hdr.text.data ? s->m.hdr.text.data : "";
}

const unsigned char *dkim_sign_body_hash(const struct dkim_signer *s)
{
    return dkim_body_digest(s->m.body, s->slot);
}
