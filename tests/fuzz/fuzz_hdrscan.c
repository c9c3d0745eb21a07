/* libFuzzer target: mail/hdrscan, where a submitted message's header
 * section ends (untrusted content from SMTP submission and sendmail).
 * Asserts with abort():
 *  - one feed, a split at a point derived from the data, and a feed byte
 *    by byte agree on done, end, nosep, seen, the Received: count and the
 *    Message-ID kept;
 *  - an end is inside the content, at a line start; without nosep an
 *    empty line is there, with nosep a line that is not empty;
 *  - the lines hdrscan_fixes makes (if any) end in CRLF, hold no other
 *    CR or LF, and end with an empty line exactly when nosep. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct hdrscan *a, const struct hdrscan *b)
{
    if (a->done != b->done || a->nosep != b->nosep || (a->done && a->end != b->end) ||
        a->seen != b->seen || a->received != b->received || a->msgid_len != b->msgid_len ||
        memcmp(a->msgid, b->msgid, a->msgid_len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct hdrscan whole, split, bytes;
    hdrscan_init(&whole);
    hdrscan_feed(&whole, p, 0, size);
    size_t cut = size ? data[0] % (size + 1) : 0;
    hdrscan_init(&split);
    hdrscan_feed(&split, p, 0, cut);
    hdrscan_feed(&split, p, cut, size);
    hdrscan_init(&bytes);
    for (size_t i = 0; i < size; i++)
        hdrscan_feed(&bytes, p, i, i + 1);
    same(&whole, &split);
    same(&whole, &bytes);
    if (whole.done) {
        size_t e = whole.end;
        if (e >= size || (e > 0 && p[e - 1] != '\n'))
            abort();
        int empty = p[e] == '\n' || (p[e] == '\r' && e + 1 < size && p[e + 1] == '\n');
        if (whole.nosep == empty)
            abort();
    } else if (whole.nosep) {
        abort();
    }
    struct buf add = BUF_INIT;
    hdrscan_fixes(&whole, "id", "mx.test", "A \"Name\"\r\nX: y", "a@mx.test", &add);
    if (add.len > 0) { /* nothing is added when Date, Message-ID and From were all there */
        if (add.len < 2 || add.data[add.len - 2] != '\r' || add.data[add.len - 1] != '\n')
            abort();
        for (size_t i = 0; i < add.len; i++) {
            if (add.data[i] == '\n' && (i == 0 || add.data[i - 1] != '\r'))
                abort();
            if (add.data[i] == '\r' && (i + 1 >= add.len || add.data[i + 1] != '\n'))
                abort();
        }
        int blank = add.len >= 4 && memcmp(add.data + add.len - 4, "\r\n\r\n", 4) == 0;
        if (blank != whole.nosep)
            abort();
    }
    buf_free(&add);
    return 0;
}
