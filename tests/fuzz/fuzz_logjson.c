/* libFuzzer target: base/logjson (log_format = json) on hostile text. The
 * input is split at the first two NUL bytes into host, program and message
 * (fewer NULs: all of it is the message). Whatever the bytes, the output
 * must be one valid JSON object on one line (checked by the small strict
 * validator the unit test uses), "msg" must decode to the message when the
 * message is well-formed UTF-8, and an address escaped with
 * strutil_escape_word must come back whole as the "from" field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/json_valid.h"
#include "base/buf.h"
#include "base/logjson.h"
#include "base/strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int utf8_whole(const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = strutil_utf8_len((const unsigned char *)p + i, n - i);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

/* Encodes and checks one event; `want` (may be NULL) is a member whose
 * decoded value must equal want_val[0..want_len). */
static void check(const char *host, const char *prog, const char *msg, size_t n,
                  const char *want, const char *want_val, size_t want_len)
{
    struct buf out = BUF_INIT, got = BUF_INIT;
    struct logjson_event ev = {"2026-12-02T21:39:41.123Z", host, prog, 4242, "warning", msg, n};
    logjson_encode(&out, &ev);
    if (out.len == 0 || out.data[out.len - 1] != '\n' ||
        memchr(out.data, '\n', out.len) != out.data + out.len - 1)
        abort();
    int found = 0;
    if (!json_valid_object(out.data, out.len, want, &got, &found))
        abort();
    if (want && (!found || got.len != want_len || (want_len && memcmp(got.data, want_val, want_len))))
        abort();
    buf_free(&out);
    buf_free(&got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    /* Copies with a terminating NUL (host and prog are C strings). */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *host = "mx.test", *prog = "tern/smtpd";
    char *msg = buf;
    size_t n = size;
    char *z1 = memchr(buf, '\0', size);
    char *z2 = z1 ? memchr(z1 + 1, '\0', size - (size_t)(z1 + 1 - buf)) : NULL;
    if (z2) {
        host = buf;
        prog = z1 + 1;
        msg = z2 + 1;
        n = size - (size_t)(msg - buf);
    }
    check(host, prog, msg, n, utf8_whole(msg, n) ? "msg" : NULL, msg, n);

    /* The message as an address in tern's own lines, escaped as they do. */
    struct buf w = BUF_INIT, line = BUF_INIT;
    strutil_escape_word(&w, msg, n);
    const char *esc = w.data ? w.data : "";
    buf_printf(&line, "61AD7B0398000000: from=<%s>, size=1, nrcpt=1 (queue active)", esc);
    check(host, prog, line.data, line.len, "from", esc, w.len);
    buf_reset(&line);
    buf_printf(&line, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <%s>: x; "
                      "from=<%s> to=<%s> proto=ESMTP helo=<%s>", esc, esc, esc, esc);
    check(host, prog, line.data, line.len, "helo", esc, w.len);
    buf_free(&w);
    buf_free(&line);
    free(buf);
    return 0;
}
