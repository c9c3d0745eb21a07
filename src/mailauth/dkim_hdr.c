/* dkim_hdr.c: collecting, splitting and indexing a header section. */
#include "mailauth/dkim_hdr.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/dkim_tags.h"

/* Scanner states. */
enum {
    DKIM_HS_BOL,    /* at the beginning of a line */
    DKIM_HS_LINE,   /* inside a line */
    DKIM_HS_CR,     /* a CR inside a line */
    DKIM_HS_BOL_CR, /* a CR at the beginning of a line: the end if LF follows */
};

void dkim_hdr_init(struct dkim_hdr *h)
{
    memset(h, 0, sizeof *h);
}

void dkim_hdr_free(struct dkim_hdr *h)
{
    buf_free(&h->text);
    free(h->fields);
    dkim_hdr_init(h);
}

void dkim_hdr_reset(struct dkim_hdr *h, size_t max)
{
    buf_reset(&h->text);
    h->nfields = 0;
    h->max = max ? max : DKIM_HEADER_MAX;
    if (h->max > UINT32_MAX / 2)
        h->max = UINT32_MAX / 2; /* offsets are 32 bits */
    h->fed = 0;
    h->st = DKIM_HS_BOL;
    h->done = h->overflow = false;
}

static void dkim_hdr_keep(struct dkim_hdr *h, const char *p, size_t n)
{
    h->fed += n;
    if (h->overflow)
        return;
    if (h->text.len + n > h->max) {
        h->overflow = true;
        return;
    }
    buf_append(&h->text, p, n);
}

static void dkim_hdr_add_field(struct dkim_hdr *h, size_t off, size_t end)
{
    if (h->nfields == h->fields_cap) {
        h->fields_cap = h->fields_cap ? h->fields_cap * 2 : 32;
        h->fields = xrealloc(h->fields, h->fields_cap * sizeof *h->fields);
    }
    const char *f = h->text.data + off;
    size_t len = end - off;
    const char *colon = memchr(f, ':', len);
    size_t name = colon ? (size_t)(colon - f) : len;
    while (name > 0 && (f[name - 1] == ' ' || f[name - 1] == '\t'))
        name--;
    struct dkim_field *fl = &h->fields[h->nfields++];
    fl->off = (uint32_t)off;
    fl->len = (uint32_t)len;
    fl->name_len = colon ? (uint32_t)name : 0; /* no colon: a name of nothing */
}

/* Splits text into fields at CRLFs not followed by WSP. */
static void dkim_hdr_split(struct dkim_hdr *h)
{
    h->done = true;
    h->nfields = 0;
    if (h->overflow)
        return;
    const char *t = h->text.data;
    size_t n = h->text.len, start = 0, i = 0;
    while (i < n) {
        const char *cr = memchr(t + i, '\r', n - i);
        if (cr == NULL)
            break;
        i = (size_t)(cr - t);
        if (i + 1 < n && t[i + 1] == '\n') {
            if (i + 2 < n && (t[i + 2] == ' ' || t[i + 2] == '\t')) {
                i += 3; /* a fold */
                continue;
            }
            dkim_hdr_add_field(h, start, i);
            i += 2;
            start = i;
            continue;
        }
        i++;
    }
    if (start < n)
        dkim_hdr_add_field(h, start, n); /* the last line had no CRLF */
}

size_t dkim_hdr_feed(struct dkim_hdr *h, const char *p, size_t n)
{
    if (h->done)
        return 0;
    size_t i = 0;
    bool end = false;
    while (i < n && !end) {
        switch (h->st) {
        case DKIM_HS_BOL:
            if (p[i] == '\r') {
                h->st = DKIM_HS_BOL_CR;
                i++;
                break;
            }
            h->st = DKIM_HS_LINE;
            /* fall through */
        case DKIM_HS_LINE: {
            /* To the next CR in one step. */
            const char *cr = memchr(p + i, '\r', n - i);
            if (cr == NULL) {
                i = n;
                break;
            }
            i = (size_t)(cr - p) + 1;
            h->st = DKIM_HS_CR;
            break;
        }
        case DKIM_HS_CR:
            h->st = p[i] == '\n' ? DKIM_HS_BOL : p[i] == '\r' ? DKIM_HS_CR : DKIM_HS_LINE;
            i++;
            break;
        case DKIM_HS_BOL_CR:
            if (p[i] == '\n') {
                end = true; /* the empty line */
            } else {
                h->st = p[i] == '\r' ? DKIM_HS_CR : DKIM_HS_LINE;
            }
            i++;
            break;
        }
    }
    dkim_hdr_keep(h, p, i);
    if (end) {
        if (!h->overflow) {
            h->text.len -= 2; /* the empty line is no part of the header */
            h->text.data[h->text.len] = '\0';
        }
        dkim_hdr_split(h);
    }
    return i;
}

void dkim_hdr_end(struct dkim_hdr *h)
{
    if (!h->done)
        dkim_hdr_split(h);
}

bool dkim_hdr_is(const struct dkim_hdr *h, size_t i, const char *lname)
{
    size_t len = strlen(lname);
    return h->fields[i].name_len == len && strutil_ncasecmp(dkim_hdr_at(h, i), lname, len) == 0;
}

/* ---- the name index ---- */

void dkim_hdr_index_free(struct dkim_hdr_index *x)
{
    free(x->names);
    free(x->inst);
    memset(x, 0, sizeof *x);
}

void dkim_hdr_index_reset(struct dkim_hdr_index *x)
{
    x->nnames = 0;
    x->built = false;
}

void dkim_hdr_index_add(struct dkim_hdr_index *x, const char *name, size_t len)
{
    if (x->nnames == x->names_cap) {
        x->names_cap = x->names_cap ? x->names_cap * 2 : 16;
        x->names = xrealloc(x->names, x->names_cap * sizeof *x->names);
    }
    struct dkim_hdr_name *nm = &x->names[x->nnames++];
    nm->p = name;
    nm->len = (uint32_t)len;
    nm->first = nm->count = 0;
}

static int dkim_name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];
        if (ca >= 'A' && ca <= 'Z')
            ca = (unsigned char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (unsigned char)(cb - 'A' + 'a');
        if (ca != cb)
            return ca < cb ? -1 : 1;
    }
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static int dkim_name_qcmp(const void *a, const void *b)
{
    const struct dkim_hdr_name *x = a, *y = b;
    return dkim_name_cmp(x->p, x->len, y->p, y->len);
}

int dkim_hdr_index_find(const struct dkim_hdr_index *x, const char *name, size_t len)
{
    size_t lo = 0, hi = x->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = dkim_name_cmp(x->names[mid].p, x->names[mid].len, name, len);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -ENOENT;
}

void dkim_hdr_index_build(struct dkim_hdr_index *x, const struct dkim_hdr *h)
{
    qsort(x->names, x->nnames, sizeof *x->names, dkim_name_qcmp);
    size_t k = 0;
    for (size_t i = 0; i < x->nnames; i++)
        if (k == 0 || dkim_name_qcmp(&x->names[k - 1], &x->names[i]) != 0)
            x->names[k++] = x->names[i];
    x->nnames = k;
    /* Count per name, then place: instances of a name stay in header
     * order. A field's id is looked up once, then reused for the placing
     * pass through a temporary kept in inst's second half. */
    if (x->inst_cap < 2 * h->nfields + 1) {
        x->inst_cap = 2 * h->nfields + 1;
        x->inst = xrealloc(x->inst, x->inst_cap * sizeof *x->inst);
    }
    uint32_t *ids = x->inst + h->nfields;
    for (size_t i = 0; i < h->nfields; i++) {
        const struct dkim_field *f = &h->fields[i];
        int id = f->name_len ? dkim_hdr_index_find(x, dkim_hdr_at(h, i), f->name_len) : -ENOENT;
        ids[i] = id < 0 ? UINT32_MAX : (uint32_t)id;
        if (id >= 0)
            x->names[id].count++;
    }
    uint32_t at = 0;
    for (size_t n = 0; n < x->nnames; n++) {
        x->names[n].first = at;
        at += x->names[n].count;
        x->names[n].count = 0;
    }
    for (size_t i = 0; i < h->nfields; i++) {
        if (ids[i] == UINT32_MAX)
            continue;
        struct dkim_hdr_name *nm = &x->names[ids[i]];
        x->inst[nm->first + nm->count++] = (uint32_t)i;
    }
    x->built = true;
}

/* ---- the header hash ---- */

static void dkim_hdr_md(EVP_MD_CTX *md, const void *p, size_t n)
{
    if (EVP_DigestUpdate(md, p, n) != 1)
        fatal("dkim: SHA-256 failed");
}

void dkim_hdr_hlist(const struct dkim_hdr_index *x, const char *const *names, bool oversign,
                    struct buf *out)
{
    for (size_t i = 0; names[i]; i++) {
        int id = dkim_hdr_index_find(x, names[i], strlen(names[i]));
        uint32_t n = id < 0 ? 0 : dkim_hdr_index_count(x, id);
        for (uint32_t k = 0; k < n + (oversign ? 1 : 0); k++) {
            if (out->len)
                buf_putc(out, ':');
            buf_puts(out, names[i]);
        }
    }
}

static void dkim_hdr_hash_init(EVP_MD_CTX *md)
{
    if (EVP_DigestInit_ex(md, dkim_sha256(), NULL) != 1)
        fatal("dkim: SHA-256 init failed");
}

/* One field, canonicalised, into the hash. */
static void dkim_hdr_hash_field(EVP_MD_CTX *md, enum dkim_canon c, const char *f, size_t n,
                                struct buf *scratch)
{
    buf_reset(scratch);
    dkim_canon_header(c, f, n, scratch);
    dkim_hdr_md(md, scratch->data, scratch->len);
}

/* The signature's own field, without its final CRLF, and the digest. */
static void dkim_hdr_hash_final(EVP_MD_CTX *md, enum dkim_canon c, const char *sigf, size_t sign,
                                struct buf *scratch, unsigned char out[DKIM_HASH_LEN])
{
    buf_reset(scratch);
    dkim_canon_header(c, sigf, sign, scratch);
    dkim_hdr_md(md, scratch->data, scratch->len - 2);
    if (EVP_DigestFinal_ex(md, out, NULL) != 1)
        fatal("dkim: SHA-256 failed");
}

void dkim_hdr_hash(const struct dkim_hdr *h, const struct dkim_hdr_index *x, uint32_t *cursor,
                   enum dkim_canon c, const char *hlist, size_t hlen, const char *sigf,
                   size_t sign, EVP_MD_CTX *md, struct buf *scratch,
                   unsigned char out[DKIM_HASH_LEN])
{
    dkim_hdr_hash_init(md);
    memset(cursor, 0, x->nnames * sizeof *cursor);
    size_t pos = 0, len;
    const char *name;
    while (dkim_list_next(hlist, hlen, &pos, &name, &len) == 1) {
        int id = dkim_hdr_index_find(x, name, len);
        if (id < 0 || cursor[id] >= dkim_hdr_index_count(x, id))
            continue;
        uint32_t f = dkim_hdr_index_from_bottom(x, id, cursor[id]++);
        dkim_hdr_hash_field(md, c, dkim_hdr_at(h, f), h->fields[f].len, scratch);
    }
    dkim_hdr_hash_final(md, c, sigf, sign, scratch, out);
}

void dkim_hdr_hash_spans(const struct dkim_span *f, size_t n, enum dkim_canon c,
                         const char *sigf, size_t sign, EVP_MD_CTX *md, struct buf *scratch,
                         unsigned char out[DKIM_HASH_LEN])
{
    dkim_hdr_hash_init(md);
    for (size_t i = 0; i < n; i++)
        dkim_hdr_hash_field(md, c, f[i].p, f[i].n, scratch);
    dkim_hdr_hash_final(md, c, sigf, sign, scratch, out);
}
