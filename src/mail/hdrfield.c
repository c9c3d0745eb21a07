/* hdrfield.c: see hdrfield.h. */
#include "mail/hdrfield.h"

#include <string.h>

void hdrfield_init(struct hdrfield *h, hdrfield_drop_fn drop, void *arg)
{
    memset(h, 0, sizeof *h);
    buf_init(&h->held);
    h->bol = true;
    h->drop = drop;
    h->arg = arg;
}

void hdrfield_free(struct hdrfield *h)
{
    buf_free(&h->held);
}

/* The length of the field name at the start of f[0..n) when its first
 * line is a field (RFC 5322 §3.6.8 ftext, then optional white space, the
 * obsolete form, then ':'), or 0 when it is not (or not yet known: no
 * colon within n). */
static size_t hdrfield_name(const char *f, size_t n)
{
    size_t i = 0;
    while (i < n && (unsigned char)f[i] > 32 && (unsigned char)f[i] < 127 && f[i] != ':')
        i++;
    size_t name = i;
    while (i < n && (f[i] == ' ' || f[i] == '\t'))
        i++;
    return name > 0 && i < n && f[i] == ':' ? name : 0;
}

/* The held field is complete (or over the hold, complete = false): pass
 * or drop it. Returns false when it turns out to be no field at all: the
 * header ended before it, and it is passed. */
static bool hdrfield_judge(struct hdrfield *h, struct buf *out, bool complete)
{
    const char *f = h->held.data;
    size_t n = h->held.len;
    size_t name = hdrfield_name(f, n);
    if (name == 0) {
        h->done = true;
        buf_append(out, f, n);
        buf_reset(&h->held);
        return false;
    }
    bool drop = h->drop && h->drop(h->arg, f, name, f, n, complete);
    if (!drop)
        buf_append(out, f, n);
    buf_reset(&h->held);
    if (!complete) {
        h->streaming = true;
        h->dropping = drop;
    }
    return true;
}

void hdrfield_feed(struct hdrfield *h, const char *in, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        if (h->done) {
            buf_append(out, in + i, n - i);
            return;
        }
        char c = in[i];
        if (h->bol) {
            h->bol = false;
            bool cont = c == ' ' || c == '\t';
            if (h->streaming && !cont)
                h->streaming = false; /* the long field ended */
            if (h->held.len && !cont && !hdrfield_judge(h, out, true))
                continue; /* the header ended: pass from here on */
            if (!h->streaming && !h->held.len && (c == '\r' || c == '\n')) {
                h->done = true; /* the empty line ends the header */
                continue;
            }
        }
        if (h->streaming) {
            /* The rest of a field over the hold, up to its line's end. */
            const char *nl = memchr(in + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (in + i)) + 1 : n - i;
            if (!h->dropping)
                buf_append(out, in + i, take);
            i += take;
            h->bol = nl != NULL;
            continue;
        }
        const char *nl = memchr(in + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (in + i)) + 1 : n - i;
        if (h->held.len + take > HDRFIELD_HOLD_MAX) {
            take = HDRFIELD_HOLD_MAX - h->held.len;
            buf_append(&h->held, in + i, take);
            i += take;
            /* A name as long as the hold is no field; otherwise judge the
             * start, the rest follows (streaming). */
            hdrfield_judge(h, out, false);
            continue;
        }
        buf_append(&h->held, in + i, take);
        i += take;
        if (nl) {
            h->bol = true;
            /* A first line that is no field ends the header at once. */
            if (memchr(h->held.data, '\n', h->held.len - 1) == NULL &&
                hdrfield_name(h->held.data, h->held.len) == 0) {
                h->done = true;
                buf_append(out, h->held.data, h->held.len);
                buf_reset(&h->held);
            }
        }
    }
}

void hdrfield_end(struct hdrfield *h, struct buf *out)
{
    if (h->held.len)
        hdrfield_judge(h, out, true);
    h->done = true;
}

bool hdrfield_block_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    size_t i = 0;
    while (i < n) {
        /* A line: a field's first line or a continuation. */
        const char *nl = memchr(p + i, '\n', n - i);
        if (nl == NULL)
            return false;
        size_t len = (size_t)(nl - (p + i));
        if (len < 2 || p[i + len - 1] != '\r')
            return false; /* an empty line, or a bare LF */
        const char *l = p + i;
        size_t body = len - 1;
        if (l[0] == ' ' || l[0] == '\t') {
            if (i == 0)
                return false; /* a block cannot start with a continuation */
        } else {
            size_t name = 0;
            while (name < body && (unsigned char)l[name] > 32 && (unsigned char)l[name] < 127 &&
                   l[name] != ':')
                name++;
            if (name == 0 || name == body || l[name] != ':')
                return false;
        }
        for (size_t k = 0; k < body; k++) {
            unsigned char c = (unsigned char)l[k];
            if ((c < 32 && c != '\t') || c == 127)
                return false; /* NUL, a bare CR, other controls */
        }
        i += len + 1;
    }
    return true;
}
