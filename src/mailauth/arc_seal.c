/* arc_seal.c: the sealer (arc_seal.h). The three fields are made in the
 * order each needs the one before: the AAR (text), the AMS (a DKIM
 * signature over the message, through dkim_sign's writer), the AS (over
 * the sets, the new AAR and AMS included). */
#include "mailauth/arc_seal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/arc_set.h"
#include "mailauth/authres.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_msg.h"
#include "mailauth/dkim_sign.h"

const char *const *const arc_seal_headers_default = dkim_sign_headers_default;

static const char *const arc_dkim_signature[] = {"dkim-signature", NULL};

struct arc_sealer {
    struct arc_seal_params p;
    const char *const *headers;
    struct dkim_msg m; /* the header as it will leave (prepend and all) */
    int slot;
    struct buf hcopy, hlist, aar, ams, as, sig, tmp;
    struct dkim_span spans[ARC_INSTANCE_MAX * ARC_FIELDS + 2]; /* what a seal signs */
    bool started;
};

struct arc_sealer *arc_seal_new(void)
{
    struct arc_sealer *s = xcalloc(1, sizeof *s);
    dkim_msg_init(&s->m);
    return s;
}

void arc_seal_free(struct arc_sealer *s)
{
    if (s == NULL)
        return;
    dkim_msg_free(&s->m);
    struct buf *bufs[] = {&s->hcopy, &s->hlist, &s->aar, &s->ams, &s->as, &s->sig, &s->tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_free(bufs[i]);
    free(s);
}

/* The payload is one field's text: no octet that could end the field or
 * start another (a CRLF not followed by white space, a bare CR or LF, a
 * NUL or other control), nothing malformed in UTF-8; and it begins with
 * an authserv-id (RFC 8601 §2.2). Its length without the white space
 * around it into *len, its start into *start. */
static bool arc_payload_ok(const char *p, size_t *start, size_t *len)
{
    size_t n = strlen(p);
    if (n > ARC_SEAL_AAR_MAX)
        return false;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r') {
            if (i + 2 >= n || p[i + 1] != '\n' || (p[i + 2] != ' ' && p[i + 2] != '\t'))
                return false;
            i += 3;
        } else if (c >= 0x80) {
            size_t k = strutil_utf8_len((const unsigned char *)p + i, n - i);
            if (k == 0)
                return false;
            i += k;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        } else {
            i++;
        }
    }
    size_t a = 0, b = n;
    while (a < b && strchr(" \t\r\n", p[a]))
        a++;
    while (b > a && strchr(" \t\r\n", p[b - 1]))
        b--;
    char id[AUTHRES_ID_MAX];
    if (a == b || authres_parse_id(p + a, b - a, id) < 0)
        return false;
    *start = a;
    *len = b - a;
    return true;
}

static int arc_seal_check(const struct arc_seal_params *p)
{
    struct dkim_sign_key k = {p->key, p->domain, p->selector};
    size_t a, n;
    if (!dkim_sign_key_ok(&k) || p->t < 0 || p->cv > ARC_FAIL || p->authres == NULL ||
        !arc_payload_ok(p->authres, &a, &n))
        return -EINVAL;
    const char *const *hs = p->headers ? p->headers : arc_seal_headers_default;
    if (!dkim_sign_headers_ok(hs))
        return -EINVAL;
    for (size_t i = 0; hs[i]; i++)
        if (arc_set_unsignable(hs[i], strlen(hs[i])) || strcmp(hs[i], "dkim-signature") == 0)
            return -EINVAL; /* §4.1.2; DKIM-Signature is added as it occurs */
    return 0;
}

int arc_seal_start(struct arc_sealer *s, const struct arc_seal_params *p)
{
    s->started = false;
    int rc = arc_seal_check(p);
    if (rc < 0)
        return rc;
    s->p = *p;
    dkim_msg_reset(&s->m, p->header_max);
    s->slot = dkim_body_want(s->m.body, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    s->m.body_on = true;
    s->started = true;
    return 0;
}

void arc_seal_feed(struct arc_sealer *s, const char *p, size_t n)
{
    if (s->started)
        dkim_msg_feed(&s->m, p, n, NULL, NULL);
}

/* Feeds text that must hold whole fields and no end of the header:
 * false when it does not. */
static bool arc_feed_fields(struct dkim_hdr *h, const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n')
        return false;
    return dkim_hdr_feed(h, p, n) == n && !h->done;
}

/* The header as it will leave, into s->m (header must not be its text). */
static int arc_seal_load(struct arc_sealer *s, const char *prepend, size_t pn,
                         const char *header, size_t hn)
{
    dkim_msg_reset(&s->m, s->p.header_max);
    if (!arc_feed_fields(&s->m.hdr, prepend, pn) || !arc_feed_fields(&s->m.hdr, header, hn))
        return -EINVAL;
    dkim_hdr_feed(&s->m.hdr, "\r\n", 2);
    return s->m.hdr.overflow ? -EMSGSIZE : 0;
}

/* §5.1 steps 1 and 2: the instance of the new set, if there is one. */
static int arc_seal_instance(struct arc_sealer *s, const struct arc_chain *c, unsigned *inst)
{
    enum arc_result cv = s->p.cv;
    if (c->n > 0 && c->at[c->n][ARC_FIELD_AS] != UINT32_MAX) {
        uint32_t f = c->at[c->n][ARC_FIELD_AS];
        const char *t = dkim_hdr_at(&s->m.hdr, f);
        const char *colon = memchr(t, ':', s->m.hdr.fields[f].len);
        struct arc_set_seal seal;
        const char *why;
        size_t off = (size_t)(colon + 1 - t);
        if (arc_set_parse_seal(&seal, t + off, s->m.hdr.fields[f].len - off, &s->tmp, &why) ==
                0 &&
            seal.cv == ARC_FAIL)
            return -EPERM; /* §5.1 step 1: sealed as failed already */
    }
    if (c->n >= ARC_INSTANCE_MAX)
        return -E2BIG;
    if ((c->fields == 0) != (cv == ARC_NONE))
        return -EINVAL; /* cv=none is for a message without ARC fields only */
    if (cv == ARC_PASS && c->why)
        return -EINVAL; /* a chain of that form cannot have passed */
    *inst = c->n + 1;
    return 0;
}

static void arc_seal_aar(struct arc_sealer *s, unsigned inst)
{
    size_t a, n;
    (void)arc_payload_ok(s->p.authres, &a, &n); /* checked at the start */
    buf_reset(&s->aar);
    buf_printf(&s->aar, "ARC-Authentication-Results: i=%u; ", inst);
    buf_append(&s->aar, s->p.authres + a, n);
    buf_append(&s->aar, "\r\n", 2);
}

static void arc_seal_tags_common(struct dkim_fold *f, unsigned inst, bool ed)
{
    char num[24];
    snprintf(num, sizeof num, "%u", inst);
    dkim_fold_tag(f, "i", num);
    dkim_fold_tag(f, "a", ed ? "ed25519-sha256" : "rsa-sha256");
}

static int arc_seal_ams(struct arc_sealer *s, unsigned inst, const unsigned char *bh)
{
    const char *const *hs = s->p.headers ? s->p.headers : arc_seal_headers_default;
    struct dkim_hdr_index *x = &s->m.idx;
    dkim_hdr_index_reset(x);
    for (size_t i = 0; hs[i]; i++)
        dkim_hdr_index_add(x, hs[i], strlen(hs[i]));
    dkim_hdr_index_add(x, arc_dkim_signature[0], strlen(arc_dkim_signature[0]));
    dkim_msg_index_build(&s->m);
    buf_reset(&s->hlist);
    dkim_hdr_hlist(x, hs, true, &s->hlist);
    dkim_hdr_hlist(x, arc_dkim_signature, false, &s->hlist);

    bool ed = EVP_PKEY_get_base_id(s->p.key) == EVP_PKEY_ED25519;
    char b64[BASE64_ENCODED_SIZE(DKIM_HASH_LEN)], num[24];
    base64_encode(bh, DKIM_HASH_LEN, b64, sizeof b64);
    buf_reset(&s->ams);
    struct dkim_fold f;
    dkim_fold_start(&f, &s->ams, &s->m.scratch, "ARC-Message-Signature");
    arc_seal_tags_common(&f, inst, ed);
    dkim_fold_tag(&f, "c", "relaxed/relaxed");
    dkim_fold_tag(&f, "d", s->p.domain);
    dkim_fold_tag(&f, "s", s->p.selector);
    if (s->p.t) {
        snprintf(num, sizeof num, "%lld", s->p.t);
        dkim_fold_tag(&f, "t", num);
    }
    dkim_fold_hlist(&f, s->hlist.data, s->hlist.len);
    dkim_fold_tag(&f, "bh", b64);
    dkim_fold_b(&f);
    unsigned char hh[DKIM_HASH_LEN];
    dkim_msg_hash(&s->m, DKIM_CANON_RELAXED, s->hlist.data, s->hlist.len, s->ams.data,
                  s->ams.len, hh);
    if (dkim_sign_digest(s->p.key, hh, &s->sig) < 0)
        return -EIO;
    dkim_fold_sig(&f, (const unsigned char *)s->sig.data, s->sig.len);
    return 0;
}

static int arc_seal_as(struct arc_sealer *s, const struct arc_chain *c, unsigned inst)
{
    bool ed = EVP_PKEY_get_base_id(s->p.key) == EVP_PKEY_ED25519;
    char num[24];
    buf_reset(&s->as);
    struct dkim_fold f;
    dkim_fold_start(&f, &s->as, &s->m.scratch, "ARC-Seal");
    arc_seal_tags_common(&f, inst, ed);
    if (s->p.t) {
        snprintf(num, sizeof num, "%lld", s->p.t);
        dkim_fold_tag(&f, "t", num);
    }
    dkim_fold_tag(&f, "cv", arc_result_name(s->p.cv));
    dkim_fold_tag(&f, "d", s->p.domain);
    dkim_fold_tag(&f, "s", s->p.selector);
    dkim_fold_b(&f);
    /* §5.1.1: every set in order, then the new AAR and AMS; for a failed
     * chain the new set only (§5.1.2). */
    struct dkim_span *spans = s->spans;
    size_t n = s->p.cv == ARC_PASS ? arc_set_fields(c, &s->m.hdr, c->n, spans) : 0;
    spans[n++] = (struct dkim_span){s->aar.data, s->aar.len - 2};
    spans[n++] = (struct dkim_span){s->ams.data, s->ams.len - 2};
    unsigned char hh[DKIM_HASH_LEN];
    dkim_hdr_hash_spans(spans, n, DKIM_CANON_RELAXED, s->as.data, s->as.len, s->m.md,
                        &s->m.scratch, hh);
    if (dkim_sign_digest(s->p.key, hh, &s->sig) < 0)
        return -EIO;
    dkim_fold_sig(&f, (const unsigned char *)s->sig.data, s->sig.len);
    return 0;
}

/* The set over the header in s->m. */
static int arc_seal_make(struct arc_sealer *s, const unsigned char *bh, struct buf *out)
{
    int rc;
    struct arc_chain c;
    arc_set_collect(&c, &s->m.hdr);
    unsigned inst;
    if ((rc = arc_seal_instance(s, &c, &inst)) < 0)
        return rc;
    arc_seal_aar(s, inst);
    if ((rc = arc_seal_ams(s, inst, bh)) < 0 || (rc = arc_seal_as(s, &c, inst)) < 0)
        return rc;
    buf_append(out, s->as.data, s->as.len);
    buf_append(out, s->ams.data, s->ams.len);
    buf_append(out, s->aar.data, s->aar.len);
    return 0;
}

int arc_seal_header(struct arc_sealer *s, const struct arc_seal_params *p, const char *prepend,
                    size_t pn, const char *header, size_t hn,
                    const unsigned char bh[DKIM_HASH_LEN], struct buf *out)
{
    s->started = false;
    int rc = arc_seal_check(p);
    if (rc < 0)
        return rc;
    s->p = *p;
    unsigned char h[DKIM_HASH_LEN];
    memcpy(h, bh, DKIM_HASH_LEN); /* bh may be a digest of s->m's own */
    rc = arc_seal_load(s, prepend, pn, header, hn);
    return rc < 0 ? rc : arc_seal_make(s, h, out);
}

int arc_seal_finish(struct arc_sealer *s, const char *prepend, size_t pn, struct buf *out)
{
    if (!s->started)
        return -EINVAL;
    s->started = false;
    dkim_msg_end(&s->m, NULL, NULL);
    if (s->m.hdr.overflow)
        return -EMSGSIZE;
    unsigned char bh[DKIM_HASH_LEN];
    memcpy(bh, dkim_body_digest(s->m.body, s->slot), DKIM_HASH_LEN);
    if (pn > 0) { /* the header again, below what goes on top of it */
        buf_reset(&s->hcopy);
        buf_append(&s->hcopy, s->m.hdr.text.data, s->m.hdr.text.len);
        int rc = arc_seal_load(s, prepend, pn, s->hcopy.data, s->hcopy.len);
        if (rc < 0)
            return rc;
    }
    return arc_seal_make(s, bh, out);
}
