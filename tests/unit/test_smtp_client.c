/* test_smtp_client: the outbound transaction against scripted server
 * replies: EHLO/HELO fallback, STARTTLS, pipelined and one-by-one
 * commands, per-recipient results, dot-stuffing, SIZE and SMTPUTF8
 * refusals, a lost connection; BDAT, what goes out for each BODY= and
 * content against each server (conversion, 5.6.3), LIMITS, tls=none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "mail/envelope.h"
#include "smtp/smtp_client.h"

struct fake {
    struct buf out;   /* what the client wrote */
    int tls_asked;
    int done;
    struct result res[16];
    size_t n;
    int closed;
};

static void f_write(void *io, const void *p, size_t n)
{
    buf_append(&((struct fake *)io)->out, p, n);
}

static size_t f_pending(void *io)
{
    return 0;
}

static void f_starttls(void *io)
{
    ((struct fake *)io)->tls_asked = 1;
}

static void f_timeout(void *io, uint64_t ms)
{
}

static const struct smtp_client_io fio = {f_write, f_pending, f_starttls, f_timeout};

static void f_done(void *arg, const struct result *res, size_t n, int closed)
{
    struct fake *f = arg;
    f->done++;
    f->n = n;
    f->closed = closed;
    memcpy(f->res, res, n * sizeof *res);
}

static void feed(struct smtp_client *c, const char *server)
{
    struct buf in = BUF_INIT;
    buf_puts(&in, server);
    smtp_client_input(c, &in);
    buf_free(&in);
}

/* Feeds server text and returns (and clears) what the client sent. */
static char *say(struct smtp_client *c, struct fake *f, const char *server)
{
    static char sent[65536];
    feed(c, server);
    snprintf(sent, sizeof sent, "%.*s", (int)f->out.len, f->out.data ? f->out.data : "");
    buf_reset(&f->out);
    return sent;
}

/* Feeds server text; what the client sent in answer is in f->out (octets
 * that say() would cut at a NUL). */
static void say_raw(struct smtp_client *c, struct fake *f, const char *server)
{
    buf_reset(&f->out);
    feed(c, server);
}

static void fake_free(struct fake *f)
{
    buf_free(&f->out);
}

static int content_fd_n(const char *text, size_t n)
{
    int fd = memfd_create("msg", MFD_CLOEXEC);
    if (write(fd, text, n) != (ssize_t)n)
        abort();
    return fd;
}

static int content_fd(const char *text)
{
    return content_fd_n(text, strlen(text));
}

/* Every CR of s[0..n) before an LF, every LF after a CR, no NUL. */
static int wire_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) ||
            (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
            return 0;
    }
    return 1;
}

/* How often t occurs in s[0..n). */
static size_t count_of(const char *s, size_t n, const char *t)
{
    size_t k = 0, tl = strlen(t);
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), t, tl)) != NULL; p++)
        k++;
    return k;
}

static void test_pipelined(void)
{
    struct fake f = {0};
    const char *content = "Subject: x\r\n\r\n.leading dot\r\n..two\r\nend";
    int fd = content_fd(content);
    const char *rcpts[] = {"a@x.test", "b@x.test", "c@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 3, fd, 0, strlen(content), 0, 0, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "mx.x.test[127.0.0.2]", SMTP_TLS_MAY,
                                            &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    CHECK_EQ_STR(say(c, &f, "220 hi\r\n"), "EHLO me.test\r\n");
    CHECK_EQ_STR(say(c, &f, "250-mx\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"),
                 "MAIL FROM:<s@y.test> SIZE=38\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
                 "RCPT TO:<c@x.test>\r\nDATA\r\n");
    CHECK_EQ_STR(say(c, &f, "250 ok\r\n250 ok\r\n450 4.2.0 busy\r\n550 5.1.1 no such user\r\n"),
                 "");
    CHECK_EQ_STR(say(c, &f, "354 go\r\n"),
                 "Subject: x\r\n\r\n..leading dot\r\n...two\r\nend\r\n.\r\n");
    CHECK_EQ_INT(f.done, 0);
    CHECK_EQ_STR(say(c, &f, "250 2.0.0 queued as X\r\n"), "");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(f.n, 3);
    CHECK_EQ_INT(f.res[0].kind, RESULT_OK);
    CHECK_EQ_INT(f.res[1].kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(f.res[1].enh, "4.2.0");
    CHECK_EQ_INT(f.res[2].kind, RESULT_PERMFAIL);
    CHECK_EQ_INT(f.res[2].code, 550);
    CHECK_EQ_STR(f.res[2].enh, "5.1.1");
    CHECK(strstr(f.res[2].text, "no such user") != NULL);
    CHECK(smtp_client_idle(c));
    smtp_client_quit(c);
    CHECK_EQ_STR(say(c, &f, ""), "QUIT\r\n");
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
}

static void test_helo_fallback_one_by_one(void)
{
    struct fake f = {0};
    const char *content = "x\r\n";
    int fd = content_fd(content);
    const char *rcpts[] = {"a@x.test", "b@x.test"};
    struct smtp_client_msg m = {"", rcpts, 2, fd, 0, 3, 0, 0, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "old[127.0.0.3]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    CHECK_EQ_STR(say(c, &f, "220 old\r\n"), "EHLO me.test\r\n");
    CHECK_EQ_STR(say(c, &f, "500 what\r\n"), "HELO me.test\r\n");
    CHECK_EQ_STR(say(c, &f, "250 old\r\n"), "MAIL FROM:<>\r\n");
    CHECK_EQ_STR(say(c, &f, "250 ok\r\n"), "RCPT TO:<a@x.test>\r\n");
    CHECK_EQ_STR(say(c, &f, "550 no\r\n"), "RCPT TO:<b@x.test>\r\n");
    CHECK_EQ_STR(say(c, &f, "550 no\r\n"), "RSET\r\n");
    CHECK_EQ_STR(say(c, &f, "250 ok\r\n"), "");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(f.res[0].kind, RESULT_PERMFAIL);
    CHECK_EQ_STR(f.res[0].enh, "5.0.0");
    CHECK_EQ_INT(f.res[1].kind, RESULT_PERMFAIL);
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
}

static void test_starttls_and_limits(void)
{
    struct fake f = {0};
    int fd = content_fd("0123456789");
    const char *rcpts[] = {"a@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, 10, 0, 1, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "p[127.0.0.4]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &f, "250-p\r\n250 STARTTLS\r\n"), "STARTTLS\r\n");
    CHECK_EQ_STR(say(c, &f, "220 go ahead\r\n"), "");
    CHECK(f.tls_asked);
    smtp_client_tls_done(c, 1);
    CHECK_EQ_STR(say(c, &f, ""), "EHLO me.test\r\n");
    CHECK(smtp_client_tls(c));
    /* No SMTPUTF8 after TLS: the message cannot go (RFC 6531 §3.2). */
    CHECK_EQ_STR(say(c, &f, "250-p\r\n250 SIZE 100\r\n"), "");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(f.res[0].kind, RESULT_PERMFAIL);
    CHECK_EQ_STR(f.res[0].enh, "5.6.7");
    /* Too big for the announced SIZE: refused without sending. */
    m.smtputf8 = 0;
    m.len = 1000;
    smtp_client_send(c, &m, f_done, &f);
    CHECK_EQ_INT(f.done, 2);
    CHECK_EQ_STR(f.res[0].enh, "5.3.4");
    CHECK_EQ_STR(say(c, &f, ""), "");
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
}

static void test_required_tls_and_lost(void)
{
    struct fake f = {0};
    int fd = content_fd("x\r\n");
    const char *rcpts[] = {"a@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, 3, 0, 0, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "p[127.0.0.5]", SMTP_TLS_REQUIRE, &fio,
                                            &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &f, "250 p\r\n"), "");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(f.res[0].kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(f.res[0].enh, "4.7.4");
    CHECK(f.closed);
    smtp_client_free(c);

    struct fake g = {0};
    c = smtp_client_new("me.test", "p[127.0.0.6]", SMTP_TLS_MAY, &fio, &g);
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    say(c, &g, "250 p\r\n");
    say(c, &g, "250 ok\r\n");
    CHECK_EQ_STR(say(c, &g, "250 ok\r\n"), "DATA\r\n");
    smtp_client_lost(c, "connection reset");
    CHECK_EQ_INT(g.done, 1);
    CHECK_EQ_INT(g.res[0].kind, RESULT_TEMPFAIL);
    CHECK(strstr(g.res[0].text, "lost connection") != NULL);
    /* A garbage reply is the server's failure, temporary. */
    smtp_client_free(c);
    struct fake h = {0};
    c = smtp_client_new("me.test", "p[127.0.0.7]", SMTP_TLS_MAY, &fio, &h);
    smtp_client_send(c, &m, f_done, &h);
    say(c, &h, "hello there\r\n");
    CHECK_EQ_INT(h.done, 1);
    CHECK_EQ_INT(h.res[0].kind, RESULT_TEMPFAIL);
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
    fake_free(&h);
}

static void test_dsn_passed_on(void)
{
    struct fake f = {0};
    int fd = content_fd("x\r\n");
    const char *rcpts[] = {"a@x.test", "b@x.test"};
    const unsigned notify[] = {ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE, ENV_NOTIFY_NEVER};
    const char *orcpt[] = {"rfc822;list+40x.test", "b+c@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 2, fd, 0, 3, 0, 0, "id=1 2", 2, notify, orcpt};
    struct smtp_client *c = smtp_client_new("me.test", "p[127.0.0.8]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &f, "250-p\r\n250-PIPELINING\r\n250 DSN\r\n"),
                 "MAIL FROM:<s@y.test> SIZE=3 RET=HDRS ENVID=id+3D1+202\r\n"
                 "RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;list+40x.test\r\n"
                 "RCPT TO:<b@x.test> NOTIFY=NEVER ORCPT=rfc822;b+2Bc@x.test\r\n"
                 "DATA\r\n");
    CHECK(smtp_client_dsn(c));
    smtp_client_free(c);
    /* Without DSN at the server, nothing of it is sent. */
    struct fake g = {0};
    c = smtp_client_new("me.test", "p[127.0.0.9]", SMTP_TLS_MAY, &fio, &g);
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &g, "250-p\r\n250 PIPELINING\r\n"),
                 "MAIL FROM:<s@y.test> SIZE=3\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
                 "DATA\r\n");
    CHECK(!smtp_client_dsn(c));
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
}

static void test_smarthost_auth(void)
{
    struct fake f = {0};
    int fd = content_fd("x\r\n");
    const char *rcpts[] = {"a@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, 3, 0, 0, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "smart[127.0.0.10]:587",
                                            SMTP_TLS_REQUIRE, &fio, &f);
    smtp_client_set_auth(c, "me", "secret");
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &f, "250-smart\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"),
                 "STARTTLS\r\n");
    say(c, &f, "220 go\r\n");
    smtp_client_tls_done(c, 1);
    CHECK_EQ_STR(say(c, &f, ""), "EHLO me.test\r\n");
    /* base64("\0me\0secret") */
    CHECK_EQ_STR(say(c, &f, "250-smart\r\n250 AUTH PLAIN LOGIN\r\n"),
                 "AUTH PLAIN AG1lAHNlY3JldA==\r\n");
    CHECK_EQ_STR(say(c, &f, "235 2.7.0 ok\r\n"), "MAIL FROM:<s@y.test> SIZE=3\r\n");
    smtp_client_free(c);

    /* A refused login defers the mail; no password without TLS. */
    struct fake g = {0};
    c = smtp_client_new("me.test", "smart[127.0.0.10]:587", SMTP_TLS_MAY, &fio, &g);
    smtp_client_set_auth(c, "me", "secret");
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &g, "250-smart\r\n250 AUTH PLAIN\r\n"), "");
    CHECK_EQ_INT(g.done, 1);
    CHECK_EQ_INT(g.res[0].kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(g.res[0].enh, "4.7.0");
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
}

static void test_8bit_downgrade(void)
{
    struct fake f = {0};
    const char *content = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
    const char *body8 = "Subject: x\r\n\r\nna\xc3\xafve\r\n";
    int fd = content_fd(body8);
    const char *rcpts[] = {"a@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, strlen(body8), 1, 0, NULL, 0,
                                NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "p[127.0.0.11]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    /* No 8BITMIME: no BODY=8BITMIME, and the body goes quoted-printable. */
    const char *cmds = say(c, &f, "250-p\r\n250 PIPELINING\r\n");
    CHECK(strstr(cmds, "BODY=8BITMIME") == NULL);
    say(c, &f, "250 ok\r\n250 ok\r\n");
    const char *data = say(c, &f, "354 go\r\n");
    CHECK(strstr(data, "Content-Transfer-Encoding: quoted-printable") != NULL);
    CHECK(strstr(data, "na=C3=AFve") != NULL);
    for (const char *p = data; *p; p++)
        CHECK((unsigned char)*p < 0x80);
    smtp_client_free(c);
    close(fd);
    /* 8-bit in the header cannot be converted: bounced, nothing sent. */
    struct fake g = {0};
    fd = content_fd(content);
    m.fd = fd;
    m.len = strlen(content);
    c = smtp_client_new("me.test", "p[127.0.0.11]", SMTP_TLS_MAY, &fio, &g);
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &g, "250 p\r\n"), "");
    CHECK_EQ_INT(g.done, 1);
    CHECK_EQ_INT(g.res[0].kind, RESULT_PERMFAIL);
    CHECK_EQ_STR(g.res[0].enh, "5.6.3");
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
}

/* The trace copy for `tern send -v`: every line both ways, the AUTH
 * secret masked, the content summarised; implicit TLS (no STARTTLS,
 * AUTH at once); the reply that ended the session kept for the caller. */
static void t_trace(void *arg, char dir, const char *line, size_t len)
{
    buf_printf(arg, "%c: %.*s\n", dir, (int)len, line);
}

static void test_trace_and_implicit_tls(void)
{
    struct fake f = {0};
    struct buf tr = BUF_INIT;
    int fd = content_fd("x\r\n");
    const char *rcpts[] = {"a@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, 3, 0, 0, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "smtps[127.0.0.12]:465",
                                            SMTP_TLS_IMPLICIT, &fio, &f);
    smtp_client_set_trace(c, t_trace, &tr);
    smtp_client_set_auth(c, "me", "secret");
    CHECK_EQ_INT(smtp_client_last_reply(c, NULL), 0);
    CHECK(smtp_client_tls(c));
    smtp_client_send(c, &m, f_done, &f);
    CHECK_EQ_STR(say(c, &f, "220 hi\r\n"), "EHLO me.test\r\n");
    CHECK_EQ_STR(say(c, &f, "250-smtps\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
                 "AUTH PLAIN AG1lAHNlY3JldA==\r\n");
    CHECK_EQ_INT(f.tls_asked, 0);
    CHECK_EQ_STR(say(c, &f, "235 2.7.0 ok\r\n"), "MAIL FROM:<s@y.test> SIZE=3\r\n");
    say(c, &f, "250 ok\r\n");
    CHECK_EQ_STR(say(c, &f, "250 ok\r\n"), "DATA\r\n");
    say(c, &f, "354 go\r\n");
    const char *text = NULL;
    CHECK_EQ_INT(smtp_client_last_reply(c, &text), 354);
    say(c, &f, "250 2.0.0 queued as Q1\r\n");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(smtp_client_last_reply(c, &text), 250);
    CHECK_EQ_STR(text, "2.0.0 queued as Q1");
    CHECK_EQ_STR(tr.data, "S: 220 hi\nC: EHLO me.test\nS: 250-smtps\nS: 250-STARTTLS\n"
                          "S: 250 AUTH PLAIN\nC: AUTH PLAIN ********\nS: 235 2.7.0 ok\n"
                          "C: MAIL FROM:<s@y.test> SIZE=3\nS: 250 ok\nC: RCPT TO:<a@x.test>\n"
                          "S: 250 ok\nC: DATA\nS: 354 go\nC: (message content, 3 octets)\n"
                          "C: .\nS: 250 2.0.0 queued as Q1\n");
    smtp_client_free(c);

    /* A refused login: the 535 stays readable after the session died. */
    struct fake g = {0};
    c = smtp_client_new("me.test", "smtps[127.0.0.12]:465", SMTP_TLS_IMPLICIT, &fio, &g);
    smtp_client_set_auth(c, "me", "secret");
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    say(c, &g, "250-smtps\r\n250 AUTH PLAIN\r\n");
    say(c, &g, "535 5.7.8 bad\r\n");
    CHECK_EQ_INT(g.done, 1);
    CHECK_EQ_INT(g.closed, 1);
    CHECK_EQ_INT(smtp_client_last_reply(c, &text), 535);
    CHECK_EQ_STR(text, "5.7.8 bad");
    smtp_client_free(c);
    close(fd);
    buf_free(&tr);
    fake_free(&f);
    fake_free(&g);
}

/* Only a 2xx is a success: a 354 to RCPT or a 250 to DATA means the
 * content never went, so the mail must stay queued (fuzz_smtp_client's
 * find: both were reported delivered). */
static void test_odd_codes_are_not_success(void)
{
    struct fake f = {0};
    int fd = content_fd("x\r\n");
    const char *rcpts[] = {"a@x.test", "b@x.test"};
    struct smtp_client_msg m = {"s@y.test", rcpts, 2, fd, 0, 3, 0, 0, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", "odd[127.0.0.13]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    say(c, &f, "250-odd\r\n250 PIPELINING\r\n");
    CHECK_EQ_STR(say(c, &f, "250 ok\r\n354 what\r\n354 what\r\n354 go\r\n"), ".\r\n");
    say(c, &f, "250 ok\r\n");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(f.res[0].kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(f.res[1].kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(f.res[0].enh, "4.0.0");
    smtp_client_free(c);

    struct fake g = {0};
    c = smtp_client_new("me.test", "odd[127.0.0.13]", SMTP_TLS_MAY, &fio, &g);
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    say(c, &g, "250-odd\r\n250 PIPELINING\r\n");
    CHECK_EQ_STR(say(c, &g, "250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 sure\r\n"), "RSET\r\n");
    say(c, &g, "250 ok\r\n");
    CHECK_EQ_INT(g.done, 1);
    CHECK_EQ_INT(g.res[0].kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(g.res[1].kind, RESULT_TEMPFAIL);
    CHECK(strstr(g.res[0].text, "not 354") != NULL);
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
}

/* A BINARYMIME message: byte for byte in one BDAT LAST to a server with
 * CHUNKING and BINARYMIME; converted for one with CHUNKING only (BDAT,
 * no BODY=BINARYMIME); converted for DATA, whose wire is CRLF-only with
 * one end of data. */
static const char smuggle[] = "Subject: x\r\n\r\nhello\r.\r\nMAIL FROM:<ceo@bank.test>\r\n"
                              "RCPT TO:<v@x.test>\r\nDATA\r\n\r\nbad\r\n.\r\nbye\n\0";

static struct smtp_client *binary_session(struct fake *f, int *fd, const char *ehlo,
                                          const char *policy_note)
{
    static const char *rcpts[] = {"a@x.test"};
    *fd = content_fd_n(smuggle, sizeof smuggle - 1);
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, *fd, 0, sizeof smuggle - 1,
                                ENV_BODY_BINARYMIME, 0, NULL, 0, NULL, NULL};
    struct smtp_client *c = smtp_client_new("me.test", policy_note, SMTP_TLS_MAY, &fio, f);
    smtp_client_send(c, &m, f_done, f);
    say(c, f, "220 hi\r\n");
    say_raw(c, f, ehlo);
    return c;
}

static void test_binarymime(void)
{
    struct fake f = {0};
    int fd;
    struct smtp_client *c = binary_session(
        &f, &fd, "250-p\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 BINARYMIME\r\n", "p[1]");
    CHECK_EQ_STR(f.out.data,
                 "MAIL FROM:<s@y.test> SIZE=91 BODY=BINARYMIME\r\nRCPT TO:<a@x.test>\r\n");
    say_raw(c, &f, "250 ok\r\n250 ok\r\n");
    struct buf want = BUF_INIT;
    buf_puts(&want, "BDAT 91 LAST\r\n");
    buf_append(&want, smuggle, sizeof smuggle - 1);
    CHECK_EQ_MEM(f.out.data, f.out.len, want.data, want.len);
    buf_free(&want);
    buf_reset(&f.out);
    CHECK_EQ_STR(say(c, &f, "250 2.0.0 queued\r\n"), "");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(f.res[0].kind, RESULT_OK);
    CHECK(strstr(f.res[0].text, "in reply to BDAT command") != NULL);
    smtp_client_free(c);
    close(fd);

    /* CHUNKING without BINARYMIME (Postfix): converted, 8BITMIME kept out
     * of it as the result is 7-bit. */
    struct fake g = {0};
    c = binary_session(&g, &fd, "250-p\r\n250-8BITMIME\r\n250 CHUNKING\r\n", "p[2]");
    CHECK(strstr(g.out.data, "BODY=") == NULL);
    CHECK(strstr(g.out.data, "MAIL FROM:<s@y.test> SIZE=") == g.out.data);
    say_raw(c, &g, "250 ok\r\n");
    say_raw(c, &g, "250 ok\r\n");
    CHECK(strncmp(g.out.data, "BDAT ", 5) == 0);
    const char *body = strstr(g.out.data, "\r\n") + 2;
    size_t bl = g.out.len - (size_t)(body - g.out.data);
    CHECK_EQ_INT(strtoul(g.out.data + 5, NULL, 10), bl);
    CHECK(wire_clean(body, bl));
    CHECK(count_of(body, bl, "hello=0D.\r\n") == 1);
    CHECK(count_of(body, bl, "bye=0A=00") == 1);
    buf_reset(&g.out);
    say(c, &g, "250 ok\r\n");
    CHECK_EQ_INT(g.done, 1);
    CHECK_EQ_INT(g.res[0].kind, RESULT_OK);
    smtp_client_free(c);
    close(fd);

    /* No CHUNKING: DATA, CRLF only, and one end of data: the last. */
    struct fake h = {0};
    c = binary_session(&h, &fd, "250-p\r\n250 8BITMIME\r\n", "p[3]");
    CHECK(strncmp(h.out.data, "MAIL FROM:<s@y.test> SIZE=", 26) == 0);
    CHECK(strstr(h.out.data, "BODY=") == NULL);
    say(c, &h, "250 ok\r\n");
    say(c, &h, "250 ok\r\n");
    say_raw(c, &h, "354 go\r\n");
    CHECK(wire_clean(h.out.data, h.out.len));
    CHECK_EQ_INT(count_of(h.out.data, h.out.len, "\r\n.\r\n"), 1);
    CHECK(h.out.len > 5 && !memcmp(h.out.data + h.out.len - 5, "\r\n.\r\n", 5));
    buf_reset(&h.out);
    say(c, &h, "250 ok\r\n");
    CHECK_EQ_INT(h.res[0].kind, RESULT_OK);
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
    fake_free(&h);
}

/* The label follows the content: a 7BIT message with 8-bit octets goes
 * as BODY=8BITMIME (or quoted-printable); a NUL in it is encoded, even
 * for a server that would take BINARYMIME; a BINARYMIME message that
 * cannot be converted is refused with 5.6.3 before MAIL. */
static void test_labels(void)
{
    const char *rcpts[] = {"a@x.test"};
    const char *eight = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n";
    int fd = content_fd(eight);
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, strlen(eight), ENV_BODY_7BIT, 0,
                                NULL, 0, NULL, NULL};
    struct fake f = {0};
    struct smtp_client *c = smtp_client_new("me.test", "p[4]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &f, "250-p\r\n250 8BITMIME\r\n"),
                 "MAIL FROM:<s@y.test> SIZE=21 BODY=8BITMIME\r\n");
    smtp_client_free(c);
    close(fd);

    static const char nul[] = "Subject: x\r\n\r\na\0b\r\n";
    fd = content_fd_n(nul, sizeof nul - 1);
    m.fd = fd;
    m.len = sizeof nul - 1;
    struct fake g = {0};
    c = smtp_client_new("me.test", "p[5]", SMTP_TLS_MAY, &fio, &g);
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    const char *cmd = say(c, &g, "250-p\r\n250-CHUNKING\r\n250 BINARYMIME\r\n");
    CHECK(strstr(cmd, "BODY=") == NULL);
    say(c, &g, "250 ok\r\n");
    say_raw(c, &g, "250 ok\r\n");
    CHECK(memmem(g.out.data, g.out.len, "a=00b", 5) != NULL);
    CHECK(memchr(g.out.data, '\0', g.out.len) == NULL);
    smtp_client_free(c);
    close(fd);

    static const char hdr[] = "Subject: a\rb\r\n\r\nbody\r\n";
    fd = content_fd_n(hdr, sizeof hdr - 1);
    m.fd = fd;
    m.len = sizeof hdr - 1;
    m.body = ENV_BODY_BINARYMIME;
    struct fake h = {0};
    c = smtp_client_new("me.test", "p[6]", SMTP_TLS_MAY, &fio, &h);
    smtp_client_send(c, &m, f_done, &h);
    say(c, &h, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &h, "250-p\r\n250 CHUNKING\r\n"), "");
    CHECK_EQ_INT(h.done, 1);
    CHECK_EQ_INT(h.res[0].kind, RESULT_PERMFAIL);
    CHECK_EQ_STR(h.res[0].enh, "5.6.3");
    CHECK(strstr(h.res[0].text, "does not support BINARYMIME") != NULL);
    CHECK(smtp_client_idle(c)); /* the connection can carry the next message */
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
    fake_free(&h);
}

/* The spooled content changed between the plan and the transfer (a NUL
 * where there was none): the data is never ended, the session dies. */
static void test_content_changed(void)
{
    const char *rcpts[] = {"a@x.test"};
    const char *text = "Subject: x\r\n\r\nabc\r\n";
    int fd = content_fd(text);
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, strlen(text), ENV_BODY_7BIT, 0,
                                NULL, 0, NULL, NULL};
    struct fake f = {0};
    struct smtp_client *c = smtp_client_new("me.test", "p[7]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    say(c, &f, "250-p\r\n250 PIPELINING\r\n");
    if (pwrite(fd, "\r", 1, 15) != 1)
        abort();
    say_raw(c, &f, "250 ok\r\n250 ok\r\n354 go\r\n");
    CHECK(memmem(f.out.data ? f.out.data : "", f.out.len, "\r\n.\r\n", 5) == NULL);
    CHECK(wire_clean(f.out.data ? f.out.data : "", f.out.len));
    CHECK_EQ_INT(f.done, 1);
    CHECK(f.closed);
    CHECK_EQ_INT(f.res[0].kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(f.res[0].enh, "4.3.0");
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
}

/* RFC 9422: RCPTMAX=2 splits five recipients into transactions of two on
 * one connection, each result kept; MAILMAX=2 stops after two: the fifth
 * is left untried and the session can only be closed. */
static void test_limits(void)
{
    const char *rcpts[] = {"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test"};
    int fd = content_fd("x\r\n");
    struct smtp_client_msg m = {"s@y.test", rcpts, 5, fd, 0, 3, ENV_BODY_7BIT, 0, NULL, 0, NULL,
                                NULL};
    struct fake f = {0};
    struct smtp_client *c = smtp_client_new("me.test", "lim[8]", SMTP_TLS_MAY, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &f, "250-p\r\n250-PIPELINING\r\n250-LIMITS RCPTMAX=2 MAILMAX=2 "
                            "RCPTDOMAINMAX=1\r\n250 CHUNKING\r\n"),
                 "MAIL FROM:<s@y.test> SIZE=3\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n");
    CHECK_EQ_STR(say(c, &f, "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n"), "BDAT 3 LAST\r\nx\r\n");
    CHECK_EQ_STR(say(c, &f, "250 2.0.0 one\r\n"),
                 "MAIL FROM:<s@y.test> SIZE=3\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n");
    CHECK_EQ_INT(f.done, 0);
    CHECK_EQ_STR(say(c, &f, "250 ok\r\n450 4.2.0 busy\r\n250 ok\r\n"), "BDAT 3 LAST\r\nx\r\n");
    CHECK_EQ_STR(say(c, &f, "250 2.0.0 two\r\n"), "");
    CHECK_EQ_INT(f.done, 1);
    CHECK_EQ_INT(f.n, 5);
    CHECK_EQ_INT(f.closed, 0);
    CHECK_EQ_INT(f.res[0].kind, RESULT_OK);
    CHECK(strstr(f.res[0].text, "one") != NULL);
    CHECK_EQ_INT(f.res[1].kind, RESULT_PERMFAIL);
    CHECK_EQ_INT(f.res[2].kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(f.res[2].enh, "4.2.0");
    CHECK_EQ_INT(f.res[3].kind, RESULT_OK);
    CHECK(strstr(f.res[3].text, "two") != NULL);
    CHECK_EQ_INT(f.res[4].kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(f.res[4].enh, "4.5.3");
    CHECK_EQ_INT(smtp_client_tried(c), 4);
    CHECK(smtp_client_spent(c));
    CHECK(!smtp_client_idle(c));
    smtp_client_quit(c);
    CHECK_EQ_STR(say(c, &f, ""), "QUIT\r\n");
    smtp_client_free(c);

    /* Without pipelining, a refused sender ends the message: every later
     * recipient gets the MAIL reply; values that are no positive number
     * are ignored. */
    struct fake g = {0};
    c = smtp_client_new("me.test", "lim[9]", SMTP_TLS_MAY, &fio, &g);
    m.nrcpts = 3;
    smtp_client_send(c, &m, f_done, &g);
    say(c, &g, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &g, "250-p\r\n250 LIMITS MAILMAX=0 RCPTMAX=1 X=2 RCPTMAX\r\n"),
                 "MAIL FROM:<s@y.test> SIZE=3\r\n");
    CHECK_EQ_STR(say(c, &g, "250 ok\r\n"), "RCPT TO:<a@x.test>\r\n");
    CHECK_EQ_STR(say(c, &g, "250 ok\r\n"), "DATA\r\n");
    say(c, &g, "354 go\r\n");
    CHECK_EQ_STR(say(c, &g, "250 ok\r\n"), "MAIL FROM:<s@y.test> SIZE=3\r\n");
    CHECK_EQ_STR(say(c, &g, "451 4.3.2 later\r\n"), "RSET\r\n");
    CHECK_EQ_STR(say(c, &g, "250 ok\r\n"), "");
    CHECK_EQ_INT(g.done, 1);
    CHECK_EQ_INT(g.res[0].kind, RESULT_OK);
    CHECK_EQ_STR(g.res[1].enh, "4.3.2");
    CHECK_EQ_STR(g.res[2].enh, "4.3.2");
    CHECK_EQ_INT(smtp_client_tried(c), 3);
    CHECK(smtp_client_idle(c));
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
    fake_free(&g);
}

/* tls=none: STARTTLS is never sent, even when offered. */
static void test_tls_none(void)
{
    const char *rcpts[] = {"a@x.test"};
    int fd = content_fd("x\r\n");
    struct smtp_client_msg m = {"s@y.test", rcpts, 1, fd, 0, 3, ENV_BODY_7BIT, 0, NULL, 0, NULL,
                                NULL};
    struct fake f = {0};
    struct smtp_client *c = smtp_client_new("me.test", "p[10]", SMTP_TLS_NONE, &fio, &f);
    smtp_client_send(c, &m, f_done, &f);
    say(c, &f, "220 hi\r\n");
    CHECK_EQ_STR(say(c, &f, "250-p\r\n250 STARTTLS\r\n"), "MAIL FROM:<s@y.test> SIZE=3\r\n");
    CHECK_EQ_INT(f.tls_asked, 0);
    CHECK(!smtp_client_tls(c));
    smtp_client_free(c);
    close(fd);
    fake_free(&f);
}

int main(void)
{
    test_binarymime();
    test_labels();
    test_content_changed();
    test_limits();
    test_tls_none();
    test_odd_codes_are_not_success();
    test_trace_and_implicit_tls();
    test_8bit_downgrade();
    test_smarthost_auth();
    test_dsn_passed_on();
    test_pipelined();
    test_helo_fallback_one_by_one();
    test_starttls_and_limits();
    test_required_tls_and_lost();
    return check_result("test_smtp_client");
}
