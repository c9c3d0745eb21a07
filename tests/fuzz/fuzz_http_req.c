/* libFuzzer target: base/http_req, the request head a metrics scraper (or
 * anyone who reaches the loopback port) sends. The first two octets pick
 * the cap; the rest is the request. Checked: the answer is one of the
 * documented ones; a complete head ends with its empty line inside the
 * cap and parses the same on its own (no look-ahead), with a method of
 * token characters and an origin-form path; "more" is only said below
 * the cap; an error stays an error when more bytes follow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int allowed_error(long rc)
{
    return rc == -400 || rc == -414 || rc == -431 || rc == -501 || rc == -505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 64 + (((size_t)data[0] << 8 | data[1]) % 8192);
    size_t n = size - 2;
    /* An exact-size copy: any read past n is an ASan report. */
    char *in = malloc(n ? n : 1);
    memcpy(in, data + 2, n);
    struct http_req r;
    long rc = http_req_parse(in, n, max, &r);
    if (rc == 0) {
        if (n >= max)
            abort();
    } else if (rc > 0) {
        size_t used = (size_t)rc;
        if (used > n || used > max || in[used - 1] != '\n')
            abort();
        if (!(used >= 2 && in[used - 2] == '\n') &&
            !(used >= 3 && in[used - 2] == '\r' && in[used - 3] == '\n'))
            abort();
        if (r.method[0] == '\0' || strlen(r.method) > HTTP_REQ_METHOD_MAX)
            abort();
        if (r.path[0] != '/' || strlen(r.path) > HTTP_REQ_PATH_MAX || strpbrk(r.path, " ?#"))
            abort();
        if (r.minor != 0 && r.minor != 1)
            abort();
        struct http_req again;
        char *head = malloc(used);
        memcpy(head, in, used);
        if (http_req_parse(head, used, max, &again) != rc || memcmp(&again, &r, sizeof r) != 0)
            abort();
        free(head);
    } else {
        if (!allowed_error(rc))
            abort();
        /* More input cannot repair a bad head (the same cap). */
        char *more = malloc(n + 4);
        memcpy(more, in, n);
        memcpy(more + n, "\r\n\r\n", 4);
        long rc2 = http_req_parse(more, n + 4, max, &r);
        if (rc2 >= 0)
            abort();
        free(more);
    }
    free(in);
    return 0;
}
