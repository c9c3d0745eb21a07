/* http_req.c: the HTTP/1.x request head (RFC 9112), strictly. Anything
 * odd is refused rather than guessed at: the only client this serves is
 * a Prometheus scraper, which sends a plain GET. */
#include "base/http_req.h"

#include <string.h>

#define HTTP_REQ_FIELDS_MAX 100 /* header fields; a scraper sends about five */

/* RFC 9110 §5.6.2: tchar. */
static int http_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Visible ASCII (VCHAR): what a request target may hold. */
static int http_is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* The request line "METHOD SP TARGET SP HTTP/1.x" in l[0..n) (line end
 * removed). Returns 0 or the negated status. */
static long http_req_line(const char *l, size_t n, struct http_req *req)
{
    size_t i = 0;
    while (i < n && http_is_tchar((unsigned char)l[i]))
        i++;
    if (i == 0 || i >= n || l[i] != ' ')
        return -400;
    if (i > HTTP_REQ_METHOD_MAX)
        return -501; /* RFC 9112 §3: a method longer than any we know */
    memcpy(req->method, l, i);
    req->method[i] = '\0';
    size_t t0 = ++i;
    while (i < n && http_is_vchar((unsigned char)l[i]))
        i++;
    size_t tlen = i - t0;
    if (tlen == 0 || i >= n || l[i] != ' ')
        return -400;
    /* origin-form only (RFC 9112 §3.2.1): a path, then maybe a query. */
    if (l[t0] != '/')
        return -400;
    if (tlen > HTTP_REQ_PATH_MAX)
        return -414;
    size_t plen = strcspn(l + t0, "?# ");
    if (plen > tlen)
        plen = tlen;
    memcpy(req->path, l + t0, plen);
    req->path[plen] = '\0';
    i++;
    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (§2.3). */
    const char *v = l + i;
    size_t vlen = n - i;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return -505;
    req->minor = v[7] - '0';
    return 0;
}

/* One header field "name: value" in l[0..n). Returns 0 or -400. */
static long http_req_field(const char *l, size_t n)
{
    size_t i = 0;
    while (i < n && http_is_tchar((unsigned char)l[i]))
        i++;
    /* No white space before the colon (§5.1), no obs-fold (§5.2). */
    if (i == 0 || i >= n || l[i] != ':')
        return -400;
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c != '\t' && c < 0x20)
            return -400;
        if (c == 0x7f)
            return -400;
    }
    return 0;
}

long http_req_parse(const char *p, size_t n, size_t max, struct http_req *req)
{
    memset(req, 0, sizeof *req);
    size_t avail = n < max ? n : max;
    size_t pos = 0;
    /* §2.2: at least one empty line before the request line is ignored. */
    while (pos < avail && (p[pos] == '\n' || (p[pos] == '\r' && pos + 1 < avail &&
                                              p[pos + 1] == '\n')))
        pos += p[pos] == '\r' ? 2 : 1;
    int first = 1;
    for (;;) {
        const char *nl = memchr(p + pos, '\n', avail - pos);
        if (nl == NULL) {
            if (n < max && avail - pos <= HTTP_REQ_LINE_MAX)
                return 0;
            return first ? -414 : -431;
        }
        size_t len = (size_t)(nl - (p + pos));
        size_t next = pos + len + 1;
        if (len > HTTP_REQ_LINE_MAX)
            return first ? -414 : -431;
        if (len > 0 && p[pos + len - 1] == '\r')
            len--;
        if (memchr(p + pos, '\r', len) != NULL || memchr(p + pos, '\0', len) != NULL)
            return -400; /* a bare CR or a NUL: request smuggling material */
        if (first) {
            long rc = http_req_line(p + pos, len, req);
            if (rc < 0)
                return rc;
            first = 0;
        } else if (len == 0) {
            return (long)next;
        } else {
            if (++req->nheaders > HTTP_REQ_FIELDS_MAX)
                return -431;
            long rc = http_req_field(p + pos, len);
            if (rc < 0)
                return rc;
        }
        pos = next;
    }
}
