/* http_req: the request head of HTTP/1.0 and HTTP/1.1 (RFC 9112 §2-§5),
 * for the metrics endpoint. A pure function over the bytes received so
 * far: it says "more", "complete" or which status a bad request earns.
 * It reads nothing but the head: the endpoint serves GET and HEAD only
 * and closes the connection after one answer, so a body is never read. */
#ifndef TERN_BASE_HTTP_REQ_H
#define TERN_BASE_HTTP_REQ_H

#include <stddef.h>

#define HTTP_REQ_METHOD_MAX 16  /* longer methods are not ours: 501 */
#define HTTP_REQ_PATH_MAX 255   /* longer request targets: 414 */
#define HTTP_REQ_LINE_MAX 8192  /* one header line; RFC 9112 §3 suggests >= 8000 */

struct http_req {
    char method[HTTP_REQ_METHOD_MAX + 1]; /* as sent (methods are case-sensitive) */
    char path[HTTP_REQ_PATH_MAX + 1];     /* the target up to '?' or '#' */
    int minor;                            /* HTTP/1.<minor>: 0 or 1 */
    size_t nheaders;                      /* header fields seen */
};

/* Parses the request head in p[0..n), of which at most max bytes may be
 * used (max >= 64). Returns:
 *   0   the head is not complete yet and n < max: read more;
 *   >0  the head is complete: that many bytes (through the empty line)
 *       form it and *req is filled;
 *   <0  the request is bad: the negated HTTP status to answer with
 *       (-400 syntax, -414 target too long, -431 head too large or too
 *       many fields, -501 unknown long method, -505 not HTTP/1.x).
 * Bare LF line ends are accepted (RFC 9112 §2.2); a bare CR, a NUL or
 * another control octet in the head is -400. *req is zeroed first. */
long http_req_parse(const char *p, size_t n, size_t max, struct http_req *req);

#endif
