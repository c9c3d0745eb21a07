/* send_msg.c: the message `tern send` submits, in a memory file with
 * CRLF line ends (RFC 5321 §2.3.8; smtp_client dot-stuffs it on the
 * way out). Either the user's whole message (--data, as is apart from
 * line ends) or one made here: From, To, Subject, Date, Message-ID, the
 * --header lines, an empty line, the body. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/strutil.h"
#include "cmd/send_priv.h"

/* A test message larger than this is a mistake (the server's own limit
 * is usually far below); it also bounds what stdin can make us hold. */
#define SEND_MSG_MAX ((uint64_t)1 << 30)
#define SEND_CHUNK (64 * 1024)

/* Line-end normalisation that survives chunk borders: a LF not after a
 * CR gets one. A lone CR stays as it is (the server decides about it). */
struct crlf_state {
    int prev_cr;
    int eightbit;
    uint64_t total;
};

static void crlf_append(struct crlf_state *st, struct buf *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\n' && !st->prev_cr)
            buf_putc(out, '\r');
        buf_putc(out, (char)ch);
        st->prev_cr = ch == '\r';
        if (ch >= 0x80)
            st->eightbit = 1;
    }
    st->total += n;
}

/* Writes all of b to fd and empties b. Returns 0 or -errno (-EIO when
 * write took nothing). */
static int msg_flush(int fd, struct buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t k = write(fd, b->data + off, b->len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return -EIO;
        off += (size_t)k;
    }
    buf_reset(b);
    return 0;
}

/* Opens FILE or "-" (stdin, not closed). Returns the fd or -errno after
 * saying why. */
static int msg_open(const char *path, const char *what)
{
    if (!strcmp(path, "-"))
        return STDIN_FILENO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fd = -errno;
        fprintf(stderr, "tern send: %s %s: %s\n", what, strutil_esc(path), strerror(-fd));
    }
    return fd;
}

/* Reads all of fd through the normaliser into out, writing out to
 * `sink` whenever it grows past a chunk (sink < 0: keep it all).
 * Returns 0 or an exit status after saying why. */
static int msg_read(int fd, const char *name, struct crlf_state *st, struct buf *out, int sink)
{
    char in[SEND_CHUNK];
    for (;;) {
        ssize_t k = read(fd, in, sizeof in);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fprintf(stderr, "tern send: reading %s: %s\n", strutil_esc(name), strerror(errno));
            return SEND_EX_IOERR;
        }
        if (k == 0)
            return 0;
        if (st->total + (uint64_t)k > SEND_MSG_MAX) {
            fprintf(stderr, "tern send: %s: larger than %llu octets\n", strutil_esc(name),
                    (unsigned long long)SEND_MSG_MAX);
            return SEND_EX_DATAERR;
        }
        crlf_append(st, out, in, (size_t)k);
        int wr = sink >= 0 && out->len >= SEND_CHUNK ? msg_flush(sink, out) : 0;
        if (wr < 0) {
            fprintf(stderr, "tern send: cannot buffer the message: %s\n", strerror(-wr));
            return SEND_EX_IOERR;
        }
    }
}

static int msg_has_header(const struct send_opts *o, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < o->nheaders; i++)
        if (!strncasecmp(o->headers[i], name, n) && o->headers[i][n] == ':')
            return 1;
    return 0;
}

/* RFC 2047 encoded-words for a Subject with non-ASCII text (UTF-8): at
 * most 42 octets per word (56 in base64, 68 with the frame, under the
 * 75 of §2), never splitting a UTF-8 sequence. */
static void msg_put_subject(struct buf *h, const char *s)
{
    size_t n = strlen(s);
    int ascii = 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            ascii = 0;
    if (ascii) {
        buf_printf(h, "Subject: %s\r\n", s);
        return;
    }
    buf_puts(h, "Subject:");
    size_t off = 0;
    while (off < n) {
        size_t k = n - off < 42 ? n - off : 42;
        while (k > 1 && off + k < n && ((unsigned char)s[off + k] & 0xC0) == 0x80)
            k--; /* s[off + k] continues a sequence: end the word before its start */
        char b64[BASE64_ENCODED_SIZE(42)];
        ssize_t e = base64_encode(s + off, k, b64, sizeof b64);
        if (e < 0)
            break;
        buf_printf(h, "%s=?UTF-8?B?%s?=", off ? "\r\n " : " ", b64);
        off += k;
    }
    buf_puts(h, "\r\n");
}

/* Date (RFC 5322 §3.3, in the C locale: English names) and a
 * Message-ID unique by time, process and 64 random bits. */
static void msg_put_date_id(const struct send_opts *o, struct buf *h)
{
    time_t now = time(NULL);
    struct tm tm;
    char date[64];
    if (!msg_has_header(o, "Date") && localtime_r(&now, &tm) &&
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm) > 0)
        buf_printf(h, "Date: %s\r\n", date);
    if (!msg_has_header(o, "Message-ID")) {
        unsigned long long r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (unsigned long long)clock() ^ ((unsigned long long)getpid() << 32);
        const char *dom = strchr(o->helo, '.') ? o->helo : "tern-send.invalid";
        buf_printf(h, "Message-ID: <%llx.%d.%016llx@%s>\r\n", (unsigned long long)now,
                   (int)getpid(), r, dom);
    }
}

/* The generated header block, ending with the empty line. */
static void msg_put_headers(const struct send_opts *o, int eightbit, struct buf *h)
{
    if (o->from[0] && !msg_has_header(o, "From"))
        buf_printf(h, "From: <%s>\r\n", o->from);
    if (!msg_has_header(o, "To")) {
        buf_puts(h, "To: ");
        for (size_t i = 0; i < o->nrcpts; i++)
            buf_printf(h, "%s<%s>", i ? ",\r\n " : "", o->rcpts[i]);
        buf_puts(h, "\r\n");
    }
    if (o->subject && !msg_has_header(o, "Subject"))
        msg_put_subject(h, o->subject);
    msg_put_date_id(o, h);
    if (eightbit && !msg_has_header(o, "MIME-Version") && !msg_has_header(o, "Content-Type")) {
        /* RFC 6152: 8-bit text needs a charset to be read right. */
        buf_puts(h, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n");
    }
    for (size_t i = 0; i < o->nheaders; i++)
        buf_printf(h, "%s\r\n", o->headers[i]);
    buf_puts(h, "\r\n");
}

/* The body into *body (CRLF lines, ending with CRLF unless empty). */
static int msg_read_body(const struct send_opts *o, struct crlf_state *st, struct buf *body)
{
    if (o->body) {
        crlf_append(st, body, o->body, strlen(o->body));
    } else {
        const char *path = o->body_file;
        if (path == NULL && isatty(STDIN_FILENO))
            return 0; /* nothing given and nobody piping: an empty body */
        if (path == NULL)
            path = "-";
        int fd = msg_open(path, "body file");
        if (fd < 0)
            return SEND_EX_NOINPUT;
        int rc = msg_read(fd, !strcmp(path, "-") ? "standard input" : path, st, body, -1);
        if (fd != STDIN_FILENO)
            close(fd);
        if (rc)
            return rc;
    }
    if (body->len && body->data[body->len - 1] != '\n')
        buf_puts(body, "\r\n");
    return 0;
}

int send_msg_build(const struct send_opts *o, struct send_msg *m)
{
    memset(m, 0, sizeof *m);
    m->fd = memfd_create("tern-send", MFD_CLOEXEC);
    if (m->fd < 0) {
        fprintf(stderr, "tern send: memfd_create: %s\n", strerror(errno));
        return SEND_EX_SOFTWARE;
    }
    struct crlf_state st = {0};
    struct buf out = BUF_INIT;
    int rc = 0;
    if (o->data_file) {
        int fd = msg_open(o->data_file, "message file");
        if (fd < 0) {
            rc = SEND_EX_NOINPUT;
            goto out;
        }
        rc = msg_read(fd, !strcmp(o->data_file, "-") ? "standard input" : o->data_file, &st,
                      &out, m->fd);
        if (fd != STDIN_FILENO)
            close(fd);
    } else {
        struct buf body = BUF_INIT;
        rc = msg_read_body(o, &st, &body);
        if (rc == 0) {
            int eight = st.eightbit;
            msg_put_headers(o, eight, &out);
            for (size_t i = 0; i < out.len; i++)
                st.eightbit |= (unsigned char)out.data[i] >= 0x80;
            buf_append(&out, body.data ? body.data : "", body.len);
        }
        buf_free(&body);
    }
    int wr = rc == 0 ? msg_flush(m->fd, &out) : 0;
    if (wr < 0) {
        fprintf(stderr, "tern send: cannot buffer the message: %s\n", strerror(-wr));
        rc = SEND_EX_IOERR;
    }
    if (rc == 0) {
        off_t end = lseek(m->fd, 0, SEEK_END);
        if (end < 0) {
            rc = SEND_EX_IOERR;
        } else {
            m->len = (uint64_t)end;
            m->eightbit = st.eightbit;
        }
    }
out:
    buf_free(&out);
    if (rc)
        send_msg_free(m);
    return rc;
}

void send_msg_free(struct send_msg *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}
