/* Unit tests for base/http_req: the request head of the metrics endpoint
 * (RFC 9112), complete, partial, and every way it is refused. */
#include <string.h>

#include "base/http_req.h"
#include "check.h"

static long parse(const char *s, struct http_req *r)
{
    return http_req_parse(s, strlen(s), 8192, r);
}

static void test_good(void)
{
    struct http_req r;
    const char *s = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: */*\r\n\r\n";
    CHECK_EQ_INT(parse(s, &r), (long)strlen(s));
    CHECK_EQ_STR(r.method, "GET");
    CHECK_EQ_STR(r.path, "/metrics");
    CHECK_EQ_INT(r.minor, 1);
    CHECK_EQ_INT(r.nheaders, 2);

    /* HTTP/1.0 without headers, bare LF line ends, a query string. */
    s = "HEAD /metrics?name[]=x HTTP/1.0\n\n";
    CHECK_EQ_INT(parse(s, &r), (long)strlen(s));
    CHECK_EQ_STR(r.method, "HEAD");
    CHECK_EQ_STR(r.path, "/metrics");
    CHECK_EQ_INT(r.minor, 0);

    /* Bytes after the head (a body, a pipelined request) are not counted. */
    s = "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    CHECK_EQ_INT(parse(s, &r), (long)strlen(s) - 3);
    CHECK_EQ_STR(r.method, "POST");
    CHECK_EQ_STR(r.path, "/x");

    /* RFC 9112 §2.2: an empty line before the request line is ignored. */
    s = "\r\nGET / HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse(s, &r), (long)strlen(s));
    CHECK_EQ_STR(r.path, "/");

    /* Header values may hold tabs, spaces and 8-bit octets. */
    s = "GET /metrics HTTP/1.1\r\nUser-Agent: a\tb \xc3\xa9\r\nX-Empty:\r\n\r\n";
    CHECK_EQ_INT(parse(s, &r), (long)strlen(s));
}

static void test_partial(void)
{
    struct http_req r;
    const char *full = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    /* Every prefix short of the whole head asks for more. */
    for (size_t n = 0; n < strlen(full); n++)
        CHECK_EQ_INT(http_req_parse(full, n, 8192, &r), 0);
    CHECK_EQ_INT(http_req_parse(full, strlen(full), 8192, &r), (long)strlen(full));
    /* ...unless what is there is already wrong. */
    CHECK_EQ_INT(parse("BAD LINE\r\nHo", &r), -400);
}

static void test_bad(void)
{
    struct http_req r;
    static const struct {
        const char *req;
        long want;
    } cases[] = {
        {"GET /metrics\r\n\r\n", -400},                      /* HTTP/0.9 */
        {"GET /metrics HTTP/2.0\r\n\r\n", -505},
        {"GET /metrics HTTP/1.2\r\n\r\n", -505},
        {"GET /metrics HTTP/1.1 \r\n\r\n", -400},             /* trailing space */
        {"GET /metrics http/1.1\r\n\r\n", -400},              /* case-sensitive */
        {"GET  /metrics HTTP/1.1\r\n\r\n", -400},             /* two spaces */
        {"GET metrics HTTP/1.1\r\n\r\n", -400},               /* not origin-form */
        {"GET http://x/metrics HTTP/1.1\r\n\r\n", -400},      /* absolute-form: not ours */
        {"GET * HTTP/1.1\r\n\r\n", -400},
        {" GET / HTTP/1.1\r\n\r\n", -400},
        {"G(T / HTTP/1.1\r\n\r\n", -400},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nNo colon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nName : v\r\n\r\n", -400},         /* space before the colon */
        {"GET / HTTP/1.1\r\n: v\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -400},  /* obs-fold */
        {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", -400},          /* bare CR */
        {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\r\n\r\n", -400},
        {"ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", -501},       /* 17-octet method */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long got = parse(cases[i].req, &r);
        if (got != cases[i].want)
            fprintf(stderr, "case %zu: %ld\n", i, got);
        CHECK_EQ_INT(got, cases[i].want);
    }
    /* A NUL anywhere in a line. */
    const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    CHECK_EQ_INT(http_req_parse(nul, sizeof nul - 1, 8192, &r), -400);
}

static void test_limits(void)
{
    struct http_req r;
    char big[20000];
    /* A target of 255 octets passes, 256 is 414. */
    char line[400];
    memset(line, 0, sizeof line);
    strcpy(line, "GET /");
    memset(line + 5, 'a', 254);
    strcat(line, " HTTP/1.1\r\n\r\n");
    CHECK(parse(line, &r) > 0);
    CHECK_EQ_INT(strlen(r.path), 255);
    memset(line, 0, sizeof line);
    strcpy(line, "GET /");
    memset(line + 5, 'a', 255);
    strcat(line, " HTTP/1.1\r\n\r\n");
    CHECK_EQ_INT(parse(line, &r), -414);

    /* A request line that never ends within max: 414; a header: 431. */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', sizeof big - 5);
    CHECK_EQ_INT(http_req_parse(big, sizeof big, 8192, &r), -414);
    CHECK_EQ_INT(http_req_parse(big, 8191, 8192, &r), 0);
    CHECK_EQ_INT(http_req_parse(big, 8192, 8192, &r), -414);
    const char *head = "GET / HTTP/1.1\r\nX: ";
    memcpy(big, head, strlen(head));
    memset(big + strlen(head), 'b', sizeof big - strlen(head));
    CHECK_EQ_INT(http_req_parse(big, sizeof big, 8192, &r), -431);
    CHECK_EQ_INT(http_req_parse(big, 4000, 8192, &r), 0);
    /* A complete head just inside max is fine; one octet more is not. */
    const char *ok = "GET / HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(http_req_parse(ok, strlen(ok), strlen(ok), &r), (long)strlen(ok));
    CHECK_EQ_INT(http_req_parse(ok, strlen(ok), strlen(ok) - 1, &r), -431);

    /* At most 100 header fields. */
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof big - n, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X%d: y\r\n", i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    CHECK_EQ_INT(http_req_parse(big, n, sizeof big, &r), -431);
}

int main(void)
{
    test_good();
    test_partial();
    test_bad();
    test_limits();
    return check_result("test_http_req");
}
