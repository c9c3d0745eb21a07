/* libFuzzer target: mail/dotstuff, the DATA/BDAT decoder (SMTP smuggling).
 * Input: 4 octets of settings (mode and policy, max_line, max_size, split
 * seed), then the content. Asserts with abort():
 *  - one feed, a split in two at a point derived from the data, and a
 *    feed byte by byte give the same output, status, consumed count,
 *    flags and size;
 *  - in NORMALIZE mode (DATA/BDAT) no bare CR or LF in the output;
 *  - END only in DATA mode, and only when the consumed input ends with
 *    "\r\n.\r\n" or is exactly ".\r\n"; and END at the first such point;
 *  - MORE consumes everything; the output never exceeds max_size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/dotstuff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
    struct buf out;
    int status;
    size_t consumed;
    unsigned flags;
    uint64_t size;
};

struct settings {
    enum dotstuff_mode mode;
    enum dotstuff_bare_policy bare;
    size_t max_line;
    uint64_t max_size;
};

/* Feeds in[0..len) in pieces ending at cuts[] (then len); stops at END. */
static void run(const struct settings *s, const char *in, size_t len, const size_t *cuts,
                size_t ncuts, struct result *r)
{
    struct dotstuff d;
    dotstuff_init(&d, s->mode, s->bare, s->max_line, s->max_size);
    buf_init(&r->out);
    r->status = DOTSTUFF_MORE;
    r->consumed = 0;
    size_t from = 0;
    for (size_t k = 0; k <= ncuts && r->status == DOTSTUFF_MORE; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        if (to < from)
            abort();
        /* Each piece in its own exact-size allocation. */
        size_t n = to - from;
        char *piece = malloc(n ? n : 1);
        memcpy(piece, in + from, n);
        size_t used = (size_t)-1;
        r->status = dotstuff_feed(&d, piece, n, &r->out, &used);
        free(piece);
        if (r->status != DOTSTUFF_MORE && r->status != DOTSTUFF_END)
            abort();
        if (used > n || (r->status == DOTSTUFF_MORE && used != n))
            abort();
        r->consumed += used;
        from = to;
    }
    if (s->mode != DOTSTUFF_DATA)
        dotstuff_finish(&d, &r->out);
    r->flags = d.flags;
    r->size = d.size;
}

static void same(const struct result *a, const struct result *b)
{
    if (a->status != b->status || a->consumed != b->consumed || a->flags != b->flags ||
        a->size != b->size || a->out.len != b->out.len ||
        (a->out.len && memcmp(a->out.data, b->out.data, a->out.len)))
        abort();
}

static int has_bare(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
            return 1;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return 1;
    }
    return 0;
}

/* Where DATA must end: after the first "\r\n.\r\n", or at 3 for a leading
 * ".\r\n"; 0 if nowhere. */
static size_t first_end(const char *in, size_t len)
{
    if (len >= 3 && !memcmp(in, ".\r\n", 3))
        return 3;
    for (size_t i = 0; i + 5 <= len; i++)
        if (!memcmp(in + i, "\r\n.\r\n", 5))
            return i + 5;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct settings s;
    s.mode = (enum dotstuff_mode)(data[0] % 3);
    s.bare = (data[0] & 4) ? DOTSTUFF_REJECT : DOTSTUFF_NORMALIZE;
    s.max_line = data[1];               /* 0 = no limit; small limits are interesting */
    s.max_size = (uint64_t)data[2] * 4; /* 0 = no limit */
    const char *in = (const char *)data + 4;
    size_t len = size - 4;
    /* The split point is derived from the data (seed octet and length). */
    size_t split = len ? ((size_t)data[3] * 2654435761u + len) % (len + 1) : 0;

    struct result one, two, bytes;
    run(&s, in, len, NULL, 0, &one);
    run(&s, in, len, &split, 1, &two);
    same(&one, &two);
    if (len <= 4096) {
        size_t *cuts = malloc((len ? len : 1) * sizeof *cuts);
        for (size_t k = 0; k + 1 < len; k++)
            cuts[k] = k + 1;
        run(&s, in, len, cuts, len ? len - 1 : 0, &bytes);
        same(&one, &bytes);
        buf_free(&bytes.out);
        free(cuts);
    }

    /* Past max_size the output is cut, possibly between a CR and its LF
     * (the message is refused then): only that last CR is excused. */
    size_t olen = one.out.len;
    if ((one.flags & DOTSTUFF_F_TOOBIG) && olen && one.out.data[olen - 1] == '\r')
        olen--;
    if (s.mode != DOTSTUFF_BINARY && s.bare == DOTSTUFF_NORMALIZE &&
        has_bare(one.out.data ? one.out.data : "", olen))
        abort();
    size_t end = first_end(in, len);
    if (one.status == DOTSTUFF_END) {
        if (s.mode != DOTSTUFF_DATA || end == 0 || one.consumed != end)
            abort();
    } else {
        if (one.consumed != len || (s.mode == DOTSTUFF_DATA && end != 0))
            abort();
    }
    if (s.max_size && one.out.len > s.max_size)
        abort();
    if (one.size < one.out.len || (!(one.flags & DOTSTUFF_F_TOOBIG) && one.size != one.out.len))
        abort();
    if (s.mode == DOTSTUFF_BINARY &&
        (one.size != len || (one.out.len && memcmp(one.out.data, in, one.out.len))))
        abort();
    buf_free(&one.out);
    buf_free(&two.out);
    return 0;
}
