/* sendmail_bs.c: `sendmail -bs`, SMTP on stdin and stdout (RFC 5321),
 * spoken by the real smtp_session as a local peer: no AUTH (the uid is
 * the identity), any recipient, the submission header fixes. Its
 * callbacks are answered here: a message's content goes to a memfd,
 * and its commit writes a pickup file, so "250" means the file is
 * durable in the pickup directory, as the daemon's 250 means the spool.
 * Answers to callbacks are delivered from the loop below, never from
 * inside the session's own call. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/fsio.h"
#include "cmd/sendmail_priv.h"
#include "smtp/smtp_session.h"

struct sm_bs {
    const struct config *cfg;
    const struct sm_opts *o;
    struct smtp_session *s;
    int paused, closed, feed;
    uint64_t timeout_ms;
    int want_body;   /* body_open asked */
    int want_commit; /* commit asked: env below */
    char qid[ENVELOPE_QID_MAX + 1];
    int body_fd;     /* our copy of the memfd, -1 */
    struct pickup_env pe;
    int commit_status;
};

static void bs_write(void *io, const void *p, size_t n)
{
    struct sm_bs *b = io;
    if (b->closed)
        return;
    if (fsio_write_all(STDOUT_FILENO, p, n) < 0)
        b->closed = 1; /* the client went away */
}

static void bs_pause(void *io, int paused)
{
    struct sm_bs *b = io;
    if (b->paused && !paused)
        b->feed = 1; /* resumed: buffered input is fed again */
    b->paused = paused;
}

static void bs_close(void *io)
{
    struct sm_bs *b = io;
    b->closed = 1;
}

static void bs_set_timeout(void *io, uint64_t ms)
{
    struct sm_bs *b = io;
    b->timeout_ms = ms;
}

static void bs_starttls(void *io)
{
    struct sm_bs *b = io;
    b->closed = 1; /* never offered: tls_offer is 0 */
}

static void bs_body_open(void *svc, uint64_t sid)
{
    struct sm_bs *b = svc;
    b->want_body = 1;
}

static void bs_commit(void *svc, uint64_t sid, const char *qid, const struct envelope *env,
                      const char *prefix, size_t prefix_len)
{
    struct sm_bs *b = svc;
    /* The session keeps env until it is answered; take what we need. */
    pickup_env_free(&b->pe);
    b->pe.has_from = 1;
    strncpy(b->pe.from, env->from ? env->from : "", sizeof b->pe.from - 1);
    if (b->o->name)
        sm_full_name(b->o->name, &b->pe);
    for (size_t i = 0; i < env->nrcpts; i++) {
        /* The session takes a bare <postmaster> (RFC 5321 §4.1.1.3); the
         * pickup file names full addresses. */
        const char *a = env->rcpts[i].addr;
        char q[MAILADDR_PATH_MAX + 1];
        if (strchr(a, '@') == NULL &&
            (size_t)snprintf(q, sizeof q, "%s@%s", a, sm_origin(b->cfg)) < sizeof q)
            a = q;
        pickup_env_add_rcpt(&b->pe, a);
    }
    b->want_commit = 1;
}

static void bs_abort(void *svc, const char *qid)
{
    struct sm_bs *b = svc;
    if (b->body_fd >= 0) {
        close(b->body_fd);
        b->body_fd = -1;
    }
}

static void bs_auth_check(void *svc, uint64_t sid, const char *mech, const char *user,
                          const char *password)
{
    /* Never reached: AUTH is not offered to a local peer. */
}

static const struct smtp_session_io bs_io = {bs_write, bs_pause, bs_close, bs_set_timeout,
                                             bs_starttls};
static const struct smtp_session_svc bs_svc = {
    .body_open = bs_body_open, .commit = bs_commit, .abort = bs_abort, .auth_check = bs_auth_check};

/* Answers body_open: a new memfd, the session gets a duplicate. */
static void bs_answer_body(struct sm_bs *b)
{
    b->want_body = 0;
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        smtp_session_body_failed(b->s, -EIO);
        return;
    }
    snprintf(b->qid, sizeof b->qid, "%02X%02X%02X%02X%02X%02X%02X%02X", r[0], r[1], r[2], r[3],
             r[4], r[5], r[6], r[7]);
    if (b->body_fd >= 0)
        close(b->body_fd);
    b->body_fd = memfd_create("tern-sendmail", MFD_CLOEXEC);
    int theirs = b->body_fd >= 0 ? dup(b->body_fd) : -1;
    if (theirs < 0) {
        smtp_session_body_failed(b->s, -errno);
        return;
    }
    smtp_session_body_opened(b->s, b->qid, theirs);
}

/* Answers commit: the content as the session wrote it, into a pickup file. */
static void bs_answer_commit(struct sm_bs *b)
{
    b->want_commit = 0;
    int status = -EIO;
    struct buf content = BUF_INIT;
    off_t end = b->body_fd >= 0 ? lseek(b->body_fd, 0, SEEK_END) : -1;
    if (end >= 0) {
        char *w = buf_reserve(&content, (size_t)end + 1);
        if (fsio_pread_all(b->body_fd, w, (size_t)end, 0) == 0) {
            buf_commit(&content, (size_t)end);
            int rc = sm_pickup_submit(b->cfg, &b->pe, content.data ? content.data : "",
                                      content.len);
            status = rc == 0 ? 0 : rc == EX_DATAERR ? -EINVAL : -EIO;
        }
    }
    buf_free(&content);
    if (b->body_fd >= 0) {
        close(b->body_fd);
        b->body_fd = -1;
    }
    pickup_env_free(&b->pe);
    /* Handed to the pickup directory, which is durable (sm_pickup_submit
     * syncs it): the daemon queues it from there. */
    struct result res;
    if (status == 0)
        result_set(&res, RESULT_OK, 250, "2.0.0", "Ok: queued as %s", b->qid);
    else
        result_spool_error(&res, status);
    smtp_session_committed(b->s, b->qid, &res);
}

int sm_smtp(const struct config *cfg, const struct sm_opts *o)
{
    struct sm_bs b = {.cfg = cfg, .o = o, .body_fd = -1, .timeout_ms = 300000};
    pickup_env_init(&b.pe);
    signal(SIGPIPE, SIG_IGN); /* a client gone away is a write error (bs_write) */
    /* A local peer on a pipe: "localhost", 127.0.0.1 for the log lines. */
    struct smtp_session_peer peer = {"127.0.0.1", "localhost", CONF_ROLE_SUBMISSION, 0, 0, 1};
    b.s = smtp_session_new(1, cfg, &peer, &bs_io, &b, &bs_svc, &b);
    struct buf in = BUF_INIT;
    int eof = 0;
    smtp_session_start(b.s);
    while (!b.closed) {
        if (b.want_body) {
            bs_answer_body(&b);
            continue;
        }
        if (b.want_commit) {
            bs_answer_commit(&b);
            continue;
        }
        if (!b.paused && b.feed) {
            b.feed = 0;
            smtp_session_input(b.s, &in);
            continue;
        }
        if (eof || b.paused)
            break; /* the client is gone, or nothing will resume us */
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        int pr = poll(&pfd, 1, b.timeout_ms > 3600000 ? 3600000 : (int)b.timeout_ms);
        if (pr == 0) {
            smtp_session_timeout(b.s, NULL);
            continue;
        }
        if (pr < 0 && errno == EINTR)
            continue;
        char tmp[65536];
        ssize_t n = pr < 0 ? -1 : read(STDIN_FILENO, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            eof = 1;
            continue;
        }
        buf_append(&in, tmp, (size_t)n);
        b.feed = 1;
    }
    smtp_session_free(b.s);
    if (b.body_fd >= 0)
        close(b.body_fd);
    pickup_env_free(&b.pe);
    buf_free(&in);
    return EX_OK;
}
