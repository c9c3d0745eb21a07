/* submit_load: TLS handshakes and authenticated submissions per second
 * against an SMTP server on the loopback, with N concurrent sessions, one
 * blocking-style session per thread (non-blocking sockets under poll(), so
 * every wait is bounded by the time limit).
 *
 * Modes, one TCP connection per unit of work, never a resumed TLS session:
 *   handshake  220, EHLO, STARTTLS, 220, full TLS handshake, QUIT
 *   implicit   TLS handshake (smtps), 220, QUIT
 *   submit     220, EHLO, STARTTLS, handshake, EHLO, AUTH PLAIN, MAIL,
 *              RCPT, DATA with one message, QUIT (as a mail client submits)
 * Commands are sent one at a time (no PIPELINING), every reply code is
 * checked, certificates are not verified (the benchmark's is self-signed).
 *
 * Built by bench/tls_bench.py:
 *   cc -O2 -Wall -Wextra -o submit_load bench/submit_load.c -lssl -lcrypto -lpthread
 *   submit_load -m submit -p 2587 -s 16 -n 2000 -t 60 -u user -w secret \
 *     -f user@bench.test -r user@bench.test
 * Prints one line for people, then one JSON line (see bench/README.md).
 * Exit status: 0 every session succeeded, 1 some failed or the time limit
 * ended the run, 2 usage or set-up error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define MAX_SESSIONS 1000
#define MAX_COUNT 1000000
#define MAX_BODY (10 * 1024 * 1024)
#define LINE_MAX_LEN 1024      /* RFC 5321 §4.5.3.1.5: 512 for a reply line */
#define REPLY_LINES_MAX 100    /* an EHLO reply longer than this is broken */
#define ERRORS_SHOWN 5         /* distinct failures printed to stderr */

enum mode { MODE_HANDSHAKE, MODE_IMPLICIT, MODE_SUBMIT };
static const char *const mode_names[] = { "handshake", "implicit", "submit" };

struct opts {
    enum mode mode;
    struct sockaddr_in addr;
    const char *host;
    int sessions;
    long count;
    double time_limit;  /* seconds for the whole run */
    double io_timeout;  /* seconds for any one reply or handshake */
    const char *helo, *user, *pass, *from, *rcpt, *sni;
    long body_size;
    int quickack;  /* -Q: ACK every segment at once (TCP_QUICKACK) */
};

/* One connection: the socket, TLS once started, and a read buffer. */
struct sconn {
    int fd;
    SSL *ssl;
    double deadline;  /* no wait goes past this (the run's time limit) */
    double io_timeout;
    char buf[4096];
    size_t off, len;
};

static struct opts opt;
static SSL_CTX *ssl_ctx;
static char *body;        /* the message body, shared read-only */
static size_t body_len;
static char *auth_plain;  /* "AUTH PLAIN <base64>\r\n" */
static double run_deadline;

static atomic_long next_index;
static atomic_long n_ok, n_failed, n_aborted;
static double *latency;   /* [count]; < 0: not a success */

static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];
static int errors_shown;
static char tls_info[128];  /* version and cipher of the first handshake */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: submit_load -m handshake|implicit|submit -p PORT [-H 127.0.0.1]\n"
            "         [-s SESSIONS] [-n COUNT] [-t SECONDS] [-T IO_SECONDS] [-e EHLO_NAME]\n"
            "         [-u USER -w PASSWORD] [-f FROM] [-r RCPT] [-l BODY_BYTES] [-S SNI] [-Q]\n"
            "  -s sessions (threads) [1], -n sessions in all [100], -t time limit [60],\n"
            "  -T limit for one reply or handshake [30], -l body size [4096].\n"
            "  submit needs -u, -w, -f and -r. Only 127.0.0.0/8 is accepted as -H.\n"
            "  -Q: acknowledge every segment at once (TCP_QUICKACK) instead of the\n"
            "  delayed ACKs a real client's kernel sends.\n");
    exit(2);
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "submit_load: %s: expected an integer in %ld..%ld\n", what, lo, hi);
        exit(2);
    }
    return v;
}

static double parse_seconds(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v > 0 && v <= 86400)) {
        fprintf(stderr, "submit_load: %s: expected seconds in (0, 86400]\n", what);
        exit(2);
    }
    return v;
}

static void opts_parse(int argc, char **argv)
{
    int c, port = 0, have_mode = 0;
    opt.host = "127.0.0.1";
    opt.sessions = 1;
    opt.count = 100;
    opt.time_limit = 60;
    opt.io_timeout = 30;
    opt.helo = "client.bench.test";
    opt.body_size = 4096;
    while ((c = getopt(argc, argv, "m:H:p:s:n:t:T:e:u:w:f:r:l:S:Qh")) != -1) {
        switch (c) {
        case 'm':
            have_mode = 1;
            if (strcmp(optarg, "handshake") == 0)
                opt.mode = MODE_HANDSHAKE;
            else if (strcmp(optarg, "implicit") == 0)
                opt.mode = MODE_IMPLICIT;
            else if (strcmp(optarg, "submit") == 0)
                opt.mode = MODE_SUBMIT;
            else
                usage();
            break;
        case 'H': opt.host = optarg; break;
        case 'p': port = (int)parse_long(optarg, 1, 65535, "-p"); break;
        case 's': opt.sessions = (int)parse_long(optarg, 1, MAX_SESSIONS, "-s"); break;
        case 'n': opt.count = parse_long(optarg, 1, MAX_COUNT, "-n"); break;
        case 't': opt.time_limit = parse_seconds(optarg, "-t"); break;
        case 'T': opt.io_timeout = parse_seconds(optarg, "-T"); break;
        case 'e': opt.helo = optarg; break;
        case 'u': opt.user = optarg; break;
        case 'w': opt.pass = optarg; break;
        case 'f': opt.from = optarg; break;
        case 'r': opt.rcpt = optarg; break;
        case 'l': opt.body_size = parse_long(optarg, 0, MAX_BODY, "-l"); break;
        case 'S': opt.sni = optarg; break;
        case 'Q': opt.quickack = 1; break;
        default: usage();
        }
    }
    if (optind != argc || !have_mode || port == 0)
        usage();
    if (opt.mode == MODE_SUBMIT && (!opt.user || !opt.pass || !opt.from || !opt.rcpt))
        usage();
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons((uint16_t)port);
    /* The benchmark loads a server on this machine only: refuse anything
     * outside 127.0.0.0/8 so that a typo cannot aim it at a real host. */
    if (inet_pton(AF_INET, opt.host, &opt.addr.sin_addr) != 1 ||
        (ntohl(opt.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "submit_load: -H %s: only IPv4 loopback addresses (127.0.0.0/8)\n",
                opt.host);
        exit(2);
    }
}

/* Records a failed session: the first message is kept for the summary, a
 * few are shown as they happen. */
static void fail_note(long index, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&info_lock);
    if (first_error[0] == '\0')
        snprintf(first_error, sizeof first_error, "%s", msg);
    if (errors_shown < ERRORS_SHOWN) {
        errors_shown++;
        fprintf(stderr, "submit_load: session %ld: %s\n", index, msg);
    }
    pthread_mutex_unlock(&info_lock);
}

/* Waits until fd is ready for `events`, at most io_timeout and never past
 * the run's deadline. Returns 0 when ready, -1 on timeout (errno ETIMEDOUT)
 * or error. */
static int sconn_wait(struct sconn *c, short events)
{
    double end = now_s() + c->io_timeout;
    if (end > c->deadline)
        end = c->deadline;
    /* The kernel leaves quick-ACK mode by itself: re-arm it before each
     * wait for data. */
    if (opt.quickack && (events & POLLIN)) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    for (;;) {
        double left = end - now_s();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = { .fd = c->fd, .events = events };
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int sconn_connect(struct sconn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -1;
    if (sconn_wait(c, POLLOUT) < 0)
        return -1;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* After an SSL call returned r <= 0: waits as OpenSSL asks. Returns 0 to
 * retry, -1 when the call failed for good. */
static int sconn_ssl_retry(struct sconn *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return sconn_wait(c, POLLIN);
    case SSL_ERROR_WANT_WRITE:
        return sconn_wait(c, POLLOUT);
    default:
        return -1;
    }
}

static int sconn_write(struct sconn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (c->ssl) {
            size_t w = 0;
            int r = SSL_write_ex(c->ssl, data, len, &w);
            if (r <= 0) {
                if (sconn_ssl_retry(c, r) < 0)
                    return -1;
                continue;
            }
            n = (ssize_t)w;
        } else {
            n = send(c->fd, data, len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN || sconn_wait(c, POLLOUT) < 0)
                    return -1;
                continue;
            }
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads more bytes into the buffer (compacting it first). Returns 0, or -1
 * on error, timeout or end of stream (errno 0 for the last). */
static int sconn_fill(struct sconn *c)
{
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == sizeof c->buf) {
        errno = EMSGSIZE;
        return -1;
    }
    for (;;) {
        if (c->ssl) {
            size_t got = 0;
            int r = SSL_read_ex(c->ssl, c->buf + c->len, sizeof c->buf - c->len, &got);
            if (r > 0) {
                c->len += got;
                return 0;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN) {
                errno = 0;
                return -1;
            }
            if (sconn_ssl_retry(c, r) < 0)
                return -1;
        } else {
            ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (n > 0) {
                c->len += (size_t)n;
                return 0;
            }
            if (n == 0) {
                errno = 0;
                return -1;
            }
            if (errno != EINTR && (errno != EAGAIN || sconn_wait(c, POLLIN) < 0))
                return -1;
        }
    }
}

/* One reply line without its CRLF into line[LINE_MAX_LEN]. */
static int sconn_read_line(struct sconn *c, char *line)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (c->buf + c->off));
            if (n > 0 && c->buf[c->off + n - 1] == '\r')
                n--;
            if (n >= LINE_MAX_LEN) {
                errno = EMSGSIZE;
                return -1;
            }
            memcpy(line, c->buf + c->off, n);
            line[n] = '\0';
            c->off = (size_t)(nl - c->buf) + 1;
            return 0;
        }
        if (c->len - c->off >= LINE_MAX_LEN) {
            errno = EMSGSIZE;
            return -1;
        }
        if (sconn_fill(c) < 0)
            return -1;
    }
}

static const char *errno_text(void)
{
    return errno == 0 ? "connection closed" : strerror(errno);
}

/* Reads a whole (possibly multi-line) reply and checks its code. `need`,
 * when not NULL, is a keyword that one line's text must start with (an
 * EHLO extension: STARTTLS, AUTH). Returns 0 or -1 (reason noted). */
static int sconn_expect(struct sconn *c, long index, const char *step, int code,
                        const char *need)
{
    char line[LINE_MAX_LEN];
    int found = need == NULL;
    for (int i = 0; i < REPLY_LINES_MAX; i++) {
        if (sconn_read_line(c, line) < 0) {
            fail_note(index, "%s: reading the reply: %s", step, errno_text());
            return -1;
        }
        size_t n = strlen(line);
        if (n < 3 || line[0] < '2' || line[0] > '5' || (n > 3 && line[3] != ' ' &&
                                                        line[3] != '-')) {
            fail_note(index, "%s: malformed reply line '%.200s'", step, line);
            return -1;
        }
        int got = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (got != code) {
            fail_note(index, "%s: expected %d, got '%.200s'", step, code, line);
            return -1;
        }
        if (!found && n > 4 && strncasecmp(line + 4, need, strlen(need)) == 0)
            found = 1;
        if (n == 3 || line[3] == ' ') {
            if (!found) {
                fail_note(index, "%s: %s not advertised", step, need);
                return -1;
            }
            return 0;
        }
    }
    fail_note(index, "%s: reply longer than %d lines", step, REPLY_LINES_MAX);
    return -1;
}

/* Sends one command line (CRLF added) and checks the reply. */
static int sconn_cmd(struct sconn *c, long index, const char *step, const char *cmd,
                     int code, const char *need)
{
    char line[LINE_MAX_LEN + 2];
    int n = snprintf(line, sizeof line, "%s\r\n", cmd);
    if (n < 0 || (size_t)n >= sizeof line) {
        fail_note(index, "%s: command too long", step);
        return -1;
    }
    if (sconn_write(c, line, (size_t)n) < 0) {
        fail_note(index, "%s: sending: %s", step, errno_text());
        return -1;
    }
    return sconn_expect(c, index, step, code, need);
}

/* A full handshake on a fresh SSL object: never a resumed session. */
static int sconn_tls(struct sconn *c, long index)
{
    if (c->off != c->len) {
        /* Bytes after the 220 would be injected into the TLS stream. */
        fail_note(index, "TLS: server sent data before the handshake");
        return -1;
    }
    c->ssl = SSL_new(ssl_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        fail_note(index, "TLS: SSL_new failed");
        return -1;
    }
    if (opt.sni != NULL)
        SSL_set_tlsext_host_name(c->ssl, opt.sni);
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            break;
        if (sconn_ssl_retry(c, r) < 0) {
            unsigned long e = ERR_peek_last_error();
            char why[256];
            ERR_error_string_n(e, why, sizeof why);
            fail_note(index, "TLS handshake: %s", e != 0 ? why : errno_text());
            return -1;
        }
    }
    if (SSL_session_reused(c->ssl)) {
        fail_note(index, "TLS: session resumed, expected a full handshake");
        return -1;
    }
    if (tls_info[0] == '\0') {
        pthread_mutex_lock(&info_lock);
        const char *group = SSL_group_to_name(c->ssl, SSL_get_negotiated_group(c->ssl));
        snprintf(tls_info, sizeof tls_info, "%s %s %s", SSL_get_version(c->ssl),
                 SSL_get_cipher_name(c->ssl), group != NULL ? group : "?");
        pthread_mutex_unlock(&info_lock);
    }
    return 0;
}

static void sconn_close(struct sconn *c)
{
    if (c->ssl != NULL) {
        /* Sends close_notify without waiting for the peer's, as clients do. */
        if (c->fd >= 0)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* The message: a header (with a Message-ID unique to this session) and the
 * shared body, then the end-of-data line. */
static int send_message(struct sconn *c, long index)
{
    char hdr[1024];
    int n = snprintf(hdr, sizeof hdr,
                     "From: <%s>\r\nTo: <%s>\r\nSubject: submit_load %ld\r\n"
                     "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
                     "Message-ID: <%ld.%ld@submit-load.bench.test>\r\n\r\n",
                     opt.from, opt.rcpt, index, (long)getpid(), index);
    if (n < 0 || (size_t)n >= sizeof hdr) {
        fail_note(index, "DATA: header too long");
        return -1;
    }
    if (sconn_write(c, hdr, (size_t)n) < 0 || sconn_write(c, body, body_len) < 0 ||
        sconn_write(c, ".\r\n", 3) < 0) {
        fail_note(index, "DATA: sending the message: %s", errno_text());
        return -1;
    }
    return sconn_expect(c, index, "end of DATA", 250, NULL);
}

/* One session of the chosen mode. Returns 0 when every reply was the
 * expected one. */
static int session_run(long index)
{
    struct sconn c = { .fd = -1, .deadline = run_deadline, .io_timeout = opt.io_timeout };
    char cmd[LINE_MAX_LEN];
    int rc = -1;

    if (sconn_connect(&c) < 0) {
        fail_note(index, "connect: %s", errno_text());
        goto out;
    }
    if (opt.mode == MODE_IMPLICIT) {
        if (sconn_tls(&c, index) < 0 || sconn_expect(&c, index, "greeting", 220, NULL) < 0)
            goto out;
    } else {
        snprintf(cmd, sizeof cmd, "EHLO %s", opt.helo);
        if (sconn_expect(&c, index, "greeting", 220, NULL) < 0 ||
            sconn_cmd(&c, index, "EHLO", cmd, 250, "STARTTLS") < 0 ||
            sconn_cmd(&c, index, "STARTTLS", "STARTTLS", 220, NULL) < 0 ||
            sconn_tls(&c, index) < 0)
            goto out;
    }
    if (opt.mode == MODE_SUBMIT) {
        if (sconn_cmd(&c, index, "EHLO after TLS", cmd, 250, "AUTH") < 0)
            goto out;
        if (sconn_write(&c, auth_plain, strlen(auth_plain)) < 0) {
            fail_note(index, "AUTH: sending: %s", errno_text());
            goto out;
        }
        if (sconn_expect(&c, index, "AUTH PLAIN", 235, NULL) < 0)
            goto out;
        snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>", opt.from);
        if (sconn_cmd(&c, index, "MAIL", cmd, 250, NULL) < 0)
            goto out;
        snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", opt.rcpt);
        if (sconn_cmd(&c, index, "RCPT", cmd, 250, NULL) < 0 ||
            sconn_cmd(&c, index, "DATA", "DATA", 354, NULL) < 0 || send_message(&c, index) < 0)
            goto out;
    }
    if (sconn_cmd(&c, index, "QUIT", "QUIT", 221, NULL) < 0)
        goto out;
    rc = 0;
out:
    sconn_close(&c);
    return rc;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        if (now_s() >= run_deadline)
            break;
        long i = atomic_fetch_add(&next_index, 1);
        if (i >= opt.count)
            break;
        double t0 = now_s();
        int rc = session_run(i);
        double t1 = now_s();
        if (rc == 0) {
            latency[i] = t1 - t0;
            atomic_fetch_add(&n_ok, 1);
        } else if (t1 >= run_deadline) {
            atomic_fetch_add(&n_aborted, 1);  /* cut off by the time limit */
        } else {
            atomic_fetch_add(&n_failed, 1);
        }
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of the sorted v[n] (nearest rank), in milliseconds. */
static double quantile_ms(const double *v, long n, double q)
{
    if (n == 0)
        return 0;
    long k = (long)(q * (double)n + 0.999999) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return v[k] * 1000;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void setup_payload(void)
{
    /* The body: lines of 76 characters plus CRLF, none starting with a dot,
     * cut to body_size bytes and ended with CRLF. */
    body_len = (size_t)opt.body_size;
    body = malloc(body_len + 3);
    if (body == NULL) {
        perror("malloc");
        exit(2);
    }
    for (size_t i = 0; i < body_len; i++) {
        size_t col = i % 78;
        body[i] = col == 76 ? '\r' : col == 77 ? '\n' : (char)('a' + (i / 78 + col) % 26);
    }
    if (body_len >= 2) {
        body[body_len - 2] = '\r';
        body[body_len - 1] = '\n';
        if (body_len >= 3 && body[body_len - 3] == '\r')
            body[body_len - 3] = 'z';  /* no stray CR before the final CRLF */
    } else if (body_len > 0) {
        strcpy(body, "\r\n");
        body_len = 2;
    }
    if (opt.mode != MODE_SUBMIT)
        return;
    /* RFC 4616: authzid NUL authcid NUL passwd, in base64 (RFC 4954 §4). */
    size_t ul = strlen(opt.user), pl = strlen(opt.pass);
    if (ul + pl > 600) {
        fprintf(stderr, "submit_load: user name and password too long\n");
        exit(2);
    }
    unsigned char raw[620];
    raw[0] = '\0';
    memcpy(raw + 1, opt.user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, opt.pass, pl);
    int rawlen = (int)(2 + ul + pl);
    unsigned char b64[900];
    int blen = EVP_EncodeBlock(b64, raw, rawlen);
    auth_plain = malloc((size_t)blen + 16);
    if (auth_plain == NULL) {
        perror("malloc");
        exit(2);
    }
    snprintf(auth_plain, (size_t)blen + 16, "AUTH PLAIN %s\r\n", (char *)b64);
}

static void setup_tls(void)
{
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (ssl_ctx == NULL) {
        fprintf(stderr, "submit_load: SSL_CTX_new failed\n");
        exit(2);
    }
    /* Self-signed certificate: no verification. No session cache and no
     * tickets: every connection pays for a full handshake. */
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    /* Whole records per read(2): the generator shares the CPU with the
     * servers, so it should spend little of it. */
    SSL_CTX_set_read_ahead(ssl_ctx, 1);
}

int main(int argc, char **argv)
{
    opts_parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);  /* OpenSSL writes to the socket with write(2) */
    setup_payload();
    setup_tls();
    latency = malloc(sizeof *latency * (size_t)opt.count);
    if (latency == NULL) {
        perror("malloc");
        return 2;
    }
    for (long i = 0; i < opt.count; i++)
        latency[i] = -1;

    int nthreads = opt.sessions < opt.count ? opt.sessions : (int)opt.count;
    pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
    if (tid == NULL) {
        perror("calloc");
        return 2;
    }
    double t0 = now_s();
    run_deadline = t0 + opt.time_limit;
    int started = 0;
    for (; started < nthreads; started++) {
        int e = pthread_create(&tid[started], NULL, worker, NULL);
        if (e != 0) {
            fprintf(stderr, "submit_load: pthread_create: %s\n", strerror(e));
            run_deadline = 0;  /* the started ones stop at once */
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    double elapsed = now_s() - t0;
    if (started < nthreads)
        return 2;

    long ok = atomic_load(&n_ok), failed = atomic_load(&n_failed);
    long aborted = atomic_load(&n_aborted);
    long not_started = opt.count - ok - failed - aborted;
    int timed_out = ok + failed < opt.count;
    double *lat = malloc(sizeof *lat * (size_t)(ok > 0 ? ok : 1));
    long nl = 0;
    if (lat == NULL) {
        perror("malloc");
        return 2;
    }
    for (long i = 0; i < opt.count; i++)
        if (latency[i] >= 0)
            lat[nl++] = latency[i];
    qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
    double rate = elapsed > 0 ? (double)ok / elapsed : 0;

    printf("%s: %d sessions, %ld/%ld ok, %ld failed, %ld cut off by the time limit, in %.3f s"
           " = %.1f/s; session latency p50 %.1f ms, p99 %.1f ms; %s\n",
           mode_names[opt.mode], nthreads, ok, opt.count, failed, aborted + not_started,
           elapsed, rate, quantile_ms(lat, nl, 0.5), quantile_ms(lat, nl, 0.99),
           tls_info[0] ? tls_info : "no TLS session");
    if (first_error[0])
        printf("first failure: %s\n", first_error);
    printf("{\"mode\": \"%s\", \"sessions\": %d, \"count\": %ld, \"ok\": %ld, \"failed\": %ld, "
           "\"cut_off\": %ld, \"timed_out\": %s, \"seconds\": %.6f, \"rate\": %.3f, "
           "\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
           "\"tls\": ",
           mode_names[opt.mode], nthreads, opt.count, ok, failed, aborted + not_started,
           timed_out ? "true" : "false", elapsed, rate, quantile_ms(lat, nl, 0.5),
           quantile_ms(lat, nl, 0.9), quantile_ms(lat, nl, 0.99), quantile_ms(lat, nl, 1.0));
    json_string(tls_info);
    printf(", \"first_error\": ");
    if (first_error[0])
        json_string(first_error);
    else
        printf("null");
    printf("}\n");
    fflush(stdout);
    SSL_CTX_free(ssl_ctx);
    free(lat);
    free(latency);
    free(tid);
    free(body);
    free(auth_plain);
    return ok == opt.count ? 0 : 1;
}
