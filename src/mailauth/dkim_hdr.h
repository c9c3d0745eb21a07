/* dkim_hdr: a message's header section as DKIM reads it, for the verifier
 * and the signer: collected from the streamed content up to the empty line
 * that ends it (RFC 5322 §2.1), split into fields (a line that begins with
 * WSP continues the field before it, §2.2.3), and indexed by name so that
 * the instances an h= list names are found bottom up (RFC 6376 §5.4.2)
 * in time linear in the header's size, however hostile.
 *
 * Line ends are CRLF, as tern stores content; a bare CR or LF is an
 * ordinary octet of a line. A field's name is the text before its first
 * colon without white space before the colon (the obsolete "From :" of
 * RFC 5322 §4.5 is a From field); a line without a colon is a field
 * whose name matches nothing.
 *
 * Memory: the header section is copied, up to a limit (DKIM_HEADER_MAX by
 * default); beyond it the scanner only looks for the end, and the header
 * is marked as overflowing. The body is never copied. */
#ifndef TERN_MAILAUTH_DKIM_HDR_H
#define TERN_MAILAUTH_DKIM_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "base/buf.h"
#include "mailauth/dkim_canon.h"

/* The header section kept by default: far above real mail (a few KB, tens
 * of KB with long Received chains), small enough for a session. */
#define DKIM_HEADER_MAX (1024 * 1024)

struct dkim_field {
    uint32_t off;      /* in dkim_hdr.text */
    uint32_t len;      /* the field with its folds, without its final CRLF */
    uint32_t name_len; /* its name, white space before the colon dropped */
};

struct dkim_hdr {
    struct buf text;           /* owned: the header section, line ends included */
    struct dkim_field *fields; /* owned: valid once done */
    size_t nfields, fields_cap;
    size_t max;
    size_t fed;    /* header octets seen, kept or not */
    uint8_t st;    /* scanner: where in a line it is */
    bool done;     /* the header section is complete and split */
    bool overflow; /* it was larger than max: nothing of it is usable */
};

/* Zero-initialising a struct dkim_hdr is the same as dkim_hdr_init(). */
void dkim_hdr_init(struct dkim_hdr *h);
void dkim_hdr_free(struct dkim_hdr *h);

/* Forgets the message, keeping storage; keeps at most max octets (0:
 * DKIM_HEADER_MAX). */
void dkim_hdr_reset(struct dkim_hdr *h, size_t max);

/* Feeds content from its first octet on. Returns how many of the n octets
 * belong to the header section (the empty line included); the rest is
 * body. Once done, returns 0. */
size_t dkim_hdr_feed(struct dkim_hdr *h, const char *p, size_t n);

/* The content ended (a message that is all header): the header section
 * is what was fed. */
void dkim_hdr_end(struct dkim_hdr *h);

/* Field i's text (name, colon, value with folds, no final CRLF). */
static inline const char *dkim_hdr_at(const struct dkim_hdr *h, size_t i)
{
    return h->text.data + h->fields[i].off;
}

/* Whether field i's name is `lname` (lowercase), ASCII case ignored. */
bool dkim_hdr_is(const struct dkim_hdr *h, size_t i, const char *lname);

/* An index of the fields that bear some names: add the names (from h=
 * lists; pointers must stay valid until the next reset), build it over a
 * header, then look instances up. */
struct dkim_hdr_name {
    const char *p; /* not NUL-terminated; borrowed */
    uint32_t len;
    uint32_t first; /* its instances: inst[first .. first+count), top down */
    uint32_t count;
};

struct dkim_hdr_index {
    struct dkim_hdr_name *names; /* owned */
    size_t nnames, names_cap;
    uint32_t *inst;              /* owned: field indices */
    size_t inst_cap;
    bool built;
};

void dkim_hdr_index_free(struct dkim_hdr_index *x);
void dkim_hdr_index_reset(struct dkim_hdr_index *x);

/* Adds a name to look for (case ignored); duplicates are fine. */
void dkim_hdr_index_add(struct dkim_hdr_index *x, const char *name, size_t len);

/* Sorts the names and finds every field that bears one: O(fields × log
 * names). */
void dkim_hdr_index_build(struct dkim_hdr_index *x, const struct dkim_hdr *h);

/* The id of a name added before the build, or -ENOENT. */
int dkim_hdr_index_find(const struct dkim_hdr_index *x, const char *name, size_t len);

/* Instances of name id, and the k-th of them counted from the bottom
 * (k = 0 is the last field of that name in the header). */
static inline uint32_t dkim_hdr_index_count(const struct dkim_hdr_index *x, int id)
{
    return x->names[id].count;
}

static inline uint32_t dkim_hdr_index_from_bottom(const struct dkim_hdr_index *x, int id,
                                                  uint32_t k)
{
    const struct dkim_hdr_name *nm = &x->names[id];
    return x->inst[nm->first + nm->count - 1 - k];
}

/* Appends to out (after a ':' when out is not empty) an h= list: each
 * name of the NULL-terminated names[] (lowercase; added to x, which is
 * built) as many times as the header has fields of that name, and, with
 * oversign, once more (RFC 6376 §8.15: an instance added later, or one
 * added where none was, then breaks the signature); without oversign a
 * name the header lacks is left out. */
void dkim_hdr_hlist(const struct dkim_hdr_index *x, const char *const *names, bool oversign,
                    struct buf *out);

/* The header hash of RFC 6376 §3.7, into out: the fields the colon list
 * hlist[0..hlen) names (an h= value), in its order, each instance taken
 * from the bottom up past those taken before for the same name (a name
 * with no instance left adds nothing, §5.4.2), canonicalised in c; then
 * the signature's own field sigf[0..sign) (name, colon, value with b='s
 * value deleted), canonicalised, without its final CRLF. Every name of
 * hlist must have been added to x, which is built over h. cursor has room
 * for x->nnames; md and scratch are the caller's scratch. */
void dkim_hdr_hash(const struct dkim_hdr *h, const struct dkim_hdr_index *x, uint32_t *cursor,
                   enum dkim_canon c, const char *hlist, size_t hlen, const char *sigf,
                   size_t sign, EVP_MD_CTX *md, struct buf *scratch,
                   unsigned char out[DKIM_HASH_LEN]);

/* A piece of text: a header field (name, colon, value with folds, no
 * final CRLF). */
struct dkim_span {
    const char *p;
    size_t n;
};

/* The same hash over fields given one by one rather than by an h= list:
 * f[0..n) in that order, canonicalised in c, then the signature's own
 * field sigf[0..sign) without its final CRLF. The ARC-Seal's hash (RFC
 * 8617 §5.1.1) is of this kind: every ARC set in instance order. */
void dkim_hdr_hash_spans(const struct dkim_span *f, size_t n, enum dkim_canon c,
                         const char *sigf, size_t sign, EVP_MD_CTX *md, struct buf *scratch,
                         unsigned char out[DKIM_HASH_LEN]);

#endif
