/* test_smtp_client: the outbound transaction against scripted server
 * replies: EHLO/HELO fallback, STARTTLS, pipelined and one-by-one
 * commands, per-recipient results, dot-stuffing, SIZE and SMTPUTF8
 * refusals, a lost connection. */
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
    struct result res[8];
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

/* Feeds server text and returns (and clears) what the client sent. */
static char *say(struct smtp_client *c, struct fake *f, const char *server)
{
    static char sent[65536];
    struct buf in = BUF_INIT;
    buf_puts(&in, server);
    smtp_client_input(c, &in);
    buf_free(&in);
    snprintf(sent, sizeof sent, "%.*s", (int)f->out.len, f->out.data ? f->out.data : "");
    buf_reset(&f->out);
    return sent;
}

static void fake_free(struct fake *f)
{
    buf_free(&f->out);
}

static int content_fd(const char *text)
{
    int fd = memfd_create("msg", MFD_CLOEXEC);
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        abort();
    return fd;
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

int main(void)
{
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
