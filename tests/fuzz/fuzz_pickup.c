/* libFuzzer target: a pickup file as a hostile local user may write it.
 * mail/pickup_fmt's parser, then what the collector does with an accepted
 * file: the content's line ends converted (checked to be CRLF only) and
 * its header scanned (mail/hdrscan) for the fields to add. An accepted
 * envelope written out again parses to the same envelope. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/hdrscan.h"
#include "mail/pickup_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_crlf(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\r' && (i + 1 >= b->len || b->data[i + 1] != '\n'))
            abort();
        if (b->data[i] == '\n' && (i == 0 || b->data[i - 1] != '\r'))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct pickup_env e, f;
    pickup_env_init(&e);
    pickup_env_init(&f);
    if (pickup_parse(in, size, 8, 4096, &e) < 0) {
        if (e.rcpts || e.nrcpts || e.has_from || e.name[0])
            abort();
        return 0;
    }
    if (e.nrcpts == 0 || e.nrcpts > 8 || e.content_off > size || size - e.content_off > 4096)
        abort();
    struct buf w = BUF_INIT, text = BUF_INIT, add = BUF_INIT;
    pickup_write(&e, &w);
    if (pickup_parse(w.data, w.len, 8, 0, &f) < 0 || f.nrcpts != e.nrcpts ||
        f.has_from != e.has_from || strcmp(f.from, e.from) || strcmp(f.name, e.name) ||
        f.content_off != w.len)
        abort();
    for (size_t i = 0; i < e.nrcpts; i++)
        if (strcmp(e.rcpts[i], f.rcpts[i]))
            abort();
    struct pickup_text info;
    pickup_to_crlf(in + e.content_off, size - e.content_off, &text, &info);
    check_crlf(&text);
    struct hdrscan h;
    hdrscan_init(&h);
    hdrscan_feed(&h, text.data ? text.data : "", 0, text.len);
    if (h.done && h.end > text.len)
        abort();
    hdrscan_fixes(&h, "ID", "mx.test", e.name[0] ? e.name : NULL, e.from[0] ? e.from : NULL,
                  &add);
    check_crlf(&add);
    buf_free(&w);
    buf_free(&text);
    buf_free(&add);
    pickup_env_free(&e);
    pickup_env_free(&f);
    return 0;
}
