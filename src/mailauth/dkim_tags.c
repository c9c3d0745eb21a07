/* dkim_tags.c: the tag=value list of RFC 6376 §3.2 and the value syntaxes
 * the DKIM tags share (colon lists, base64, decimals), all with folding
 * white space as a header field carries it: WSP, or CRLF followed by WSP.
 * A bare CR or LF, or a CRLF not followed by WSP, is no white space and
 * makes the text malformed. */
#include "mailauth/dkim_tags.h"

#include <errno.h>
#include <string.h>

#include "base/base64.h"
#include "base/strutil.h"

static bool dkim_is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool dkim_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool dkim_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The length of the FWS at p[i..n), 0 when there is none. */
static size_t dkim_fws_len(const char *p, size_t n, size_t i)
{
    size_t start = i;
    while (i < n) {
        if (dkim_is_wsp(p[i]))
            i++;
        else if (p[i] == '\r' && n - i >= 3 && p[i + 1] == '\n' && dkim_is_wsp(p[i + 2]))
            i += 3;
        else
            break;
    }
    return i - start;
}

/* VALCHAR = %x21-3A / %x3C-7E; octets above %x7F too (RFC 8616 §4 lets
 * UTF-8 into i=; a tag this verifier does not know may hold it). */
static bool dkim_is_valchar(unsigned char c)
{
    return (c >= 0x21 && c <= 0x7e && c != ';') || c >= 0x80;
}

int dkim_tags_parse(struct dkim_tags *t, const char *p, size_t n)
{
    t->n = 0;
    size_t i = 0;
    for (;;) {
        i += dkim_fws_len(p, n, i);
        if (i == n)
            return 0; /* an empty list, or a ';' at the end */
        size_t name = i;
        if (!dkim_is_alpha(p[i]))
            goto bad;
        while (i < n && (dkim_is_alpha(p[i]) || dkim_is_digit(p[i]) || p[i] == '_'))
            i++;
        size_t name_len = i - name;
        i += dkim_fws_len(p, n, i);
        if (i == n || p[i] != '=')
            goto bad;
        i++;
        i += dkim_fws_len(p, n, i);
        size_t value = i, end = i;
        while (i < n && p[i] != ';') {
            if (dkim_is_valchar((unsigned char)p[i])) {
                end = ++i;
                continue;
            }
            size_t w = dkim_fws_len(p, n, i);
            if (w == 0)
                goto bad;
            i += w;
        }
        for (size_t k = 0; k < t->n; k++)
            if (t->tag[k].name_len == name_len && memcmp(t->tag[k].name, p + name, name_len) == 0)
                goto bad; /* §3.2: a duplicate invalidates the whole list */
        if (t->n == DKIM_TAGS_MAX) {
            t->n = 0;
            return -E2BIG;
        }
        struct dkim_tag *tag = &t->tag[t->n++];
        tag->name = p + name;
        tag->name_len = name_len;
        tag->value = p + value;
        tag->value_len = end - value;
        if (i == n)
            return 0;
        i++; /* the ';' */
    }
bad:
    t->n = 0;
    return -EINVAL;
}

const struct dkim_tag *dkim_tags_find(const struct dkim_tags *t, const char *name)
{
    size_t len = strlen(name);
    for (size_t k = 0; k < t->n; k++)
        if (t->tag[k].name_len == len && memcmp(t->tag[k].name, name, len) == 0)
            return &t->tag[k];
    return NULL;
}

bool dkim_text_eq(const char *v, size_t n, const char *s)
{
    return strlen(s) == n && strutil_ncasecmp(v, s, n) == 0;
}

int dkim_list_next(const char *v, size_t n, size_t *pos, const char **item, size_t *len)
{
    size_t i = *pos;
    if (i > n || (i == 0 && n == 0))
        return 0; /* past the last element, or an empty value */
    i += dkim_fws_len(v, n, i);
    size_t start = i;
    while (i < n && v[i] != ':' && !dkim_is_wsp(v[i]) && v[i] != '\r' && v[i] != '\n')
        i++;
    size_t end = i;
    i += dkim_fws_len(v, n, i);
    if (end == start || (i < n && v[i] != ':'))
        return -EINVAL; /* "a::b", "a:" (caught on the next call), "a b" */
    *pos = i < n ? i + 1 : n + 1;
    *item = v + start;
    *len = end - start;
    return 1;
}

int dkim_list_has(const char *v, size_t n, const char *s)
{
    size_t pos = 0, len;
    const char *item;
    int found = 0, rc;
    while ((rc = dkim_list_next(v, n, &pos, &item, &len)) == 1)
        if (dkim_text_eq(item, len, s))
            found = 1;
    return rc < 0 ? rc : found;
}

int dkim_b64_decode(const char *v, size_t n, size_t max, struct buf *out)
{
    /* The value without its white space, then the octets after it in the
     * same storage, then moved to the front. */
    buf_reset(out);
    char *w = buf_reserve(out, n + BASE64_DECODED_MAX(n) + 2);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t fws = dkim_fws_len(v, n, i);
        if (fws) {
            i += fws;
            continue;
        }
        w[k++] = v[i++];
    }
    if (k % 4 != 0)
        return -EINVAL;
    if (BASE64_DECODED_MAX(k) > max + 2) /* more than max octets, whatever the padding */
        return -EMSGSIZE;
    ssize_t got = base64_decode(w, k, w + k, BASE64_DECODED_MAX(k) + 1);
    if (got < 0)
        return -EINVAL;
    if ((size_t)got > max)
        return -EMSGSIZE;
    memmove(w, w + k, (size_t)got);
    buf_commit(out, (size_t)got);
    return 0;
}

size_t dkim_b64_prefix(const char *v, size_t n, size_t want, char *out, size_t outsize)
{
    size_t k = 0;
    if (outsize == 0)
        return 0;
    for (size_t i = 0; i < n && k < want && k + 1 < outsize; i++)
        if (!dkim_is_wsp(v[i]) && v[i] != '\r' && v[i] != '\n')
            out[k++] = v[i];
    out[k] = '\0';
    return k;
}

int dkim_decimal(const char *v, size_t n, size_t digits, uint64_t *out)
{
    if (n == 0 || n > digits)
        return -EINVAL;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!dkim_is_digit(v[i]))
            return -EINVAL;
        unsigned d = (unsigned)(v[i] - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *out = x;
    return 0;
}
