/* libFuzzer target: mailauth/authres. Octet 0 chooses:
 *
 *   even: the rest is an arriving field body: authres_parse_id(),
 *         authres_parse_arc_id() and authres_claims_id() must agree (an id
 *         read is claimed, a body that claims an unreadable id is
 *         malformed), ids NUL-terminated and shorter than AUTHRES_ID_MAX;
 *   odd:  the rest is split at LF into an authserv-id and the values of a
 *         field (SPF, two DKIM signatures, DMARC, ARC) with results from
 *         the following octets; the field is built and must be one
 *         well-formed header field (CRLF line ends, folded lines start
 *         with a TAB, no NUL, bare CR or LF, lines within 998), and the
 *         builder's id must read back the same from it and be claimed;
 *         authres_parse_result() must read back the arc and dmarc results
 *         built, and no arc result when none was built (a value a peer
 *         chose must not pose as one). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mailauth/authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const char *v, size_t n)
{
    char id[AUTHRES_ID_MAX], arc_id[AUTHRES_ID_MAX];
    unsigned inst = 0;
    int rc = authres_parse_id(v, n, id);
    if (rc != 0 && rc != -EINVAL && rc != -ENAMETOOLONG)
        abort();
    if (rc == 0) {
        if (strnlen(id, AUTHRES_ID_MAX) == AUTHRES_ID_MAX || id[0] == '\0')
            abort();
        if (authres_claims_id(v, n, false, id) != 1)
            abort();
    }
    rc = authres_parse_arc_id(v, n, &inst, arc_id);
    if (rc == 0 && (inst < 1 || inst > 50 || authres_claims_id(v, n, true, arc_id) != 1))
        abort();
    char res[16];
    rc = authres_parse_result(v, n, "arc", res, sizeof res);
    if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
        abort();
    if (rc == 0 && (res[0] == '\0' || strnlen(res, sizeof res) == sizeof res))
        abort();
    int c = authres_claims_id(v, n, false, "mx.tern.example");
    if (c != 0 && c != 1)
        abort();
}

/* The next LF-terminated piece as a NUL-terminated copy, NULL when the
 * input is used up. */
static char *piece(const char **p, const char *end)
{
    if (*p >= end)
        return NULL;
    const char *lf = memchr(*p, '\n', (size_t)(end - *p));
    const char *e = lf ? lf : end;
    size_t n = (size_t)(e - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = lf ? lf + 1 : end;
    return s;
}

static void check_field(const struct buf *b)
{
    if (b->len < 2 || b->data[b->len - 2] != '\r' || b->data[b->len - 1] != '\n' ||
        memchr(b->data, '\0', b->len) != NULL)
        abort();
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n')
            abort(); /* every LF is taken with its CR below */
        if (b->data[i] != '\r')
            continue;
        if (i + 1 >= b->len || b->data[i + 1] != '\n' || i - start > 998)
            abort();
        i++;
        start = i + 1;
        if (start < b->len && b->data[start] != '\t')
            abort();
    }
}

static void check_build(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *s[12] = {NULL};
    for (int i = 0; i < 12; i++)
        s[i] = piece(&p, end);
    unsigned r = size ? data[size - 1] : 0;
    struct authres_spf spf = {(enum spf_result)(r % 7), r & 8, s[1], s[2]};
    struct authres_dkim dkim[2] = {
        {(enum dkim_result)(r % 7), s[3], s[4], s[5], NULL, s[6], s[7]},
        {(enum dkim_result)((r >> 4) % 7), s[8], NULL, NULL, s[9], s[6], NULL},
    };
    struct authres_dmarc dmarc = {(enum dmarc_result)(r % 5), s[10], r & 16,
                                  (enum dmarc_policy)(r % 3), s[11]};
    struct authres_arc arc = {(enum arc_result)(r % 3), s[2], (int)(r % 60) - 10, s[7]};
    struct authres_results res = {s[0], &spf, 1, dkim, 2, &dmarc, r & 32 ? &arc : NULL};
    struct buf b = BUF_INIT;
    int rc = authres_build(&res, &b);
    if (rc == 0) {
        check_field(&b);
        const char *colon = memchr(b.data, ':', b.len);
        if (colon == NULL || strncmp(b.data, "Authentication-Results:", 23) != 0)
            abort();
        const char *body = colon + 1;
        size_t n = b.len - (size_t)(body - b.data) - 2;
        char id[AUTHRES_ID_MAX];
        if (authres_parse_id(body, n, id) != 0 || strcmp(id, s[0]) != 0)
            abort();
        if (authres_claims_id(body, n, false, s[0]) != 1)
            abort();
        char res[16];
        rc = authres_parse_result(body, n, "arc", res, sizeof res);
        if (r & 32 ? rc != 0 || strcmp(res, arc_result_name(arc.result)) != 0 : rc != -ENOENT)
            abort();
        if (authres_parse_result(body, n, "dmarc", res, sizeof res) != 0 ||
            strcmp(res, dmarc_result_name(dmarc.result)) != 0)
            abort();
    } else if (rc != -EINVAL || b.len != 0) {
        abort();
    }
    buf_free(&b);
    for (int i = 0; i < 12; i++)
        free(s[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 20000)
        return 0;
    if (data[0] % 2 == 0)
        check_parse((const char *)data + 1, size - 1);
    else
        check_build(data + 1, size - 1);
    return 0;
}
