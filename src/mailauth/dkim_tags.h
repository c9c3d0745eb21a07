/* dkim_tags: the tag=value list of RFC 6376 §3.2, which the DKIM-Signature
 * field (§3.5), the key record (§3.6.1) and, later, the ARC fields (RFC
 * 8617 §4.1) share; and the pieces of tag values they share: colon lists
 * with folding white space, base64 with folding white space, decimals.
 * Pure, no copies: a parsed tag points into the text it came from, which
 * must outlive it. Unit-tested in tests/unit/test_dkim_tags.c, fuzzed by
 * tests/fuzz/fuzz_dkim_tags.c. */
#ifndef TERN_MAILAUTH_DKIM_TAGS_H
#define TERN_MAILAUTH_DKIM_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* At most this many tags in one list: a signature has 14 defined tags, a
 * key record 7; the rest is room for tags a later RFC adds (which a
 * verifier must ignore, §3.2). More is malformed, so a hostile field
 * cannot make a verifier walk an unbounded list. */
#define DKIM_TAGS_MAX 64

/* One tag-spec: its name and value, both inside the parsed text. The value
 * has the folding white space around it dropped; inside it is kept as it
 * was (folds and all), for the tag's own syntax to read. */
struct dkim_tag {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len; /* 0 for an empty value ("p=") */
};

struct dkim_tags {
    struct dkim_tag tag[DKIM_TAGS_MAX];
    size_t n;
};

/* Parses p[0..n) as a tag-list (§3.2):
 *   tag-list = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 * where FWS is white space, or CRLF followed by white space (a folded
 * header field); a tag-name is ALPHA *(ALPHA / DIGIT / "_"); a tag-value
 * is VALCHARs (%x21-3A / %x3C-7E, and octets above %x7F for RFC 8616's
 * UTF-8) with FWS between them. A name given twice makes the whole list
 * invalid (§3.2). An empty text is a list of no tags.
 * Returns 0, -EINVAL when malformed, -E2BIG for more than DKIM_TAGS_MAX
 * tags. On an error t->n is 0. */
int dkim_tags_parse(struct dkim_tags *t, const char *p, size_t n);

/* The tag called `name` (case-sensitive, §3.2: "Tags MUST be interpreted
 * in a case-sensitive manner"), or NULL. */
const struct dkim_tag *dkim_tags_find(const struct dkim_tags *t, const char *name);

/* Whether v[0..n) is exactly the NUL-terminated s, ASCII case ignored. */
bool dkim_text_eq(const char *v, size_t n, const char *s);

/* Steps through a colon-separated list with optional FWS around each
 * element ("h=from : to", "s=email:*", "t=y:s"). *pos starts at 0. Sets
 * *item and *len to the next element without white space and returns 1;
 * returns 0 at the end; -EINVAL for an empty element ("a::b", "a:")
 * or one holding white space ("a b"). */
int dkim_list_next(const char *v, size_t n, size_t *pos, const char **item, size_t *len);

/* Whether the colon list v[0..n) holds s (ASCII case ignored), and is
 * well-formed: 1, 0, or -EINVAL. */
int dkim_list_has(const char *v, size_t n, const char *s);

/* Decodes a base64 value with FWS anywhere in it (RFC 6376 §2.4:
 * base64string = ALPHADIGITPS *([FWS] ALPHADIGITPS) [[FWS] "=" [[FWS]
 * "="]]) into out (reset first, owned by the caller), at most max octets.
 * Returns 0, -EINVAL for anything not base64, -EMSGSIZE for more than
 * max octets (found before anything that large is allocated). */
int dkim_b64_decode(const char *v, size_t n, size_t max, struct buf *out);

/* The first `want` base64 characters of v[0..n), white space skipped,
 * into out[0..outsize) with a NUL (for header.b, RFC 6008 §4). Returns
 * the characters copied. */
size_t dkim_b64_prefix(const char *v, size_t n, size_t want, char *out, size_t outsize);

/* Parses 1 to `digits` decimal digits, the whole of v[0..n). Values past
 * UINT64_MAX saturate (an l= of 76 digits means "all of it"). 0 or
 * -EINVAL. */
int dkim_decimal(const char *v, size_t n, size_t digits, uint64_t *out);

#endif
