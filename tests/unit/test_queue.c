/* test_queue: the queue with a real loop, config, spool and Maildirs:
 * commit is acknowledged only after the sync, mail lands in the Maildir
 * and leaves the spool, commits are batched, aliases expand, and a
 * deferred recipient keeps its state across a restart. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "check.h"
#include "conf/config.h"
#include "ev/loop.h"
#include "mail/envelope.h"
#include "queue/queue.h"
#include "queue/store.h"

static char root[4096];
static struct config cfg;
static struct ev_loop *loop;
static struct queue *q;

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- running the loop until something holds ---- */

struct waiter {
    int (*cond)(void *);
    void *arg;
    uint64_t deadline; /* real_ms(), immune to clock_fake_advance */
    int met;
};

static void waiter_tick(struct ev_loop *l, void *arg)
{
    struct waiter *w = arg;
    if (w->cond(w->arg)) {
        w->met = 1;
        ev_loop_stop(l);
        return;
    }
    if (real_ms() > w->deadline) {
        ev_loop_stop(l);
        return;
    }
    ev_timer_add(l, 5, waiter_tick, w);
}

static int run_until(int (*cond)(void *), void *arg, unsigned timeout_ms)
{
    struct waiter w = {cond, arg, real_ms() + timeout_ms, 0};
    ev_timer_add(loop, 0, waiter_tick, &w);
    ev_loop_run(loop);
    return w.met;
}

static int never(void *arg)
{
    return 0;
}

static struct queue_stats stats(void)
{
    struct queue_stats st;
    queue_get_stats(q, &st);
    return st;
}

static int cond_delivered(void *arg)
{
    return stats().delivered >= *(unsigned long *)arg;
}

static int cond_idle(void *arg)
{
    return stats().active == 0;
}

static int cond_deferred(void *arg)
{
    return stats().deferred >= *(unsigned long *)arg;
}

static int cond_bounced(void *arg)
{
    return stats().bounced >= *(unsigned long *)arg;
}

/* ---- commit callbacks ---- */

struct committed {
    int called;
    int status; /* 0: OK, -1: not */
    struct result res;
    unsigned long batches_then; /* stats.batches when the callback ran */
    unsigned long committed_then;
    char qid[ENVELOPE_QID_MAX + 1];
};

static void on_committed(void *arg, const char *qid, const struct result *res)
{
    struct committed *c = arg;
    c->called++;
    c->status = res->kind == RESULT_OK ? 0 : -1;
    c->res = *res;
    c->batches_then = stats().batches;
    c->committed_then = stats().committed;
    snprintf(c->qid, sizeof c->qid, "%s", qid);
}

static int cond_called(void *arg)
{
    return ((struct committed *)arg)->called > 0;
}

/* ---- files ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Counts the files in <root>/mail/<user>/Maildir/new; -1 if missing. */
static int maildir_count(const char *user)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/mail/%s/Maildir/new", root, user);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Reads the first message in user's new/ into out. */
static int maildir_read_first(const char *user, char *out, size_t outsize)
{
    char path[4300], file[4600];
    snprintf(path, sizeof path, "%s/mail/%s/Maildir/new", root, user);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *de;
    int rc = -1;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(file, sizeof file, "%s/%s", path, de->d_name);
        int fd = open(file, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, out, outsize - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n >= 0) {
            out[n] = '\0';
            rc = 0;
        }
        break;
    }
    closedir(d);
    return rc;
}

/* Counts the segment files in the spool. */
static int segment_count(void)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/spool/seg", root);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Opens a body, writes content, commits to the given recipients. Returns
 * queue_commit's result. */
static int submit(const char *from, const char *const *rcpts, size_t n, const char *content,
                  struct committed *c)
{
    char qid[ENVELOPE_QID_MAX + 1];
    int fd = -1;
    int rc = queue_body_open(q, qid, &fd);
    if (rc < 0)
        return rc;
    size_t len = strlen(content);
    if (write(fd, content, len) != (ssize_t)len) {
        close(fd);
        return -EIO;
    }
    close(fd);
    struct envelope env;
    envelope_init(&env);
    envelope_set(&env.from, from);
    for (size_t i = 0; i < n; i++)
        envelope_add_rcpt(&env, rcpts[i], NULL, 0);
    env.size = len;
    env.arrival = clock_wall();
    envelope_set(&env.client_ip, "127.0.0.1");
    snprintf(c->qid, sizeof c->qid, "%s", qid);
    rc = queue_commit(q, qid, &env, NULL, 0, on_committed, c, &c->res);
    /* The queue took the envelope over. */
    if (env.nrcpts != 0 || env.from != NULL)
        rc = -999;
    envelope_clear(&env);
    return rc;
}

static const char *const content =
    "Received: from test by localhost\r\nSubject: hello\r\n\r\nline one\r\nline two\r\n";

static void test_basic(void)
{
    struct committed c = {0};
    const char *to[] = {"alice@localhost"};
    CHECK_EQ_INT(submit("sender@example.org", to, 1, content, &c), 0);
    CHECK_EQ_INT(strlen(c.qid), 16);
    /* Not durable yet: no callback before the loop ran the sync. */
    CHECK_EQ_INT(c.called, 0);
    CHECK_EQ_INT(stats().active, 1);
    CHECK(run_until(cond_called, &c, 10000));
    CHECK_EQ_INT(c.called, 1);
    CHECK_EQ_INT(c.status, 0);
    CHECK_EQ_INT(c.res.code, 250);
    CHECK_EQ_STR(c.res.enh, "2.0.0");
    char ok[64];
    snprintf(ok, sizeof ok, "Ok: queued as %s", c.qid);
    CHECK_EQ_STR(c.res.text, ok);
    /* The callback came from a finished batch. */
    CHECK(c.batches_then >= 1);
    CHECK_EQ_INT(c.committed_then, 1);
    unsigned long one = 1;
    CHECK(run_until(cond_delivered, &one, 10000));
    CHECK(run_until(cond_idle, NULL, 10000));
    CHECK_EQ_INT(maildir_count("alice"), 1);
    char msg[4096];
    CHECK_EQ_INT(maildir_read_first("alice", msg, sizeof msg), 0);
    CHECK(strstr(msg, "Return-Path: <sender@example.org>\n") != NULL);
    CHECK(strstr(msg, "Delivered-To: alice@localhost\n") != NULL);
    CHECK(strstr(msg, "Subject: hello\n\nline one\nline two\n") != NULL);
    CHECK(strchr(msg, '\r') == NULL);
    CHECK_EQ_INT(stats().deferred, 0);
    /* Nothing live is left in the spool: a restart recovers nothing and
     * removes the segment. */
    queue_free(q);
    q = queue_new(loop, &cfg);
    CHECK_EQ_INT(stats().recovered, 0);
    CHECK_EQ_INT(stats().active, 0);
    CHECK_EQ_INT(segment_count(), 0);

    /* Unknown, aborted and inconsistent messages are refused at once. */
    struct envelope env;
    envelope_init(&env);
    envelope_add_rcpt(&env, "alice@localhost", NULL, 0);
    CHECK_EQ_INT(queue_commit(q, "0123456789ABCDEF", &env, NULL, 0, on_committed, &c, NULL), -ENOENT);
    envelope_clear(&env);
    char qid[ENVELOPE_QID_MAX + 1];
    int fd;
    CHECK_EQ_INT(queue_body_open(q, qid, &fd), 0);
    close(fd);
    queue_body_abort(q, qid);
    envelope_init(&env);
    envelope_add_rcpt(&env, "alice@localhost", NULL, 0);
    CHECK_EQ_INT(queue_commit(q, qid, &env, NULL, 0, on_committed, &c, NULL), -ENOENT);
    envelope_clear(&env);
    CHECK_EQ_INT(queue_body_open(q, qid, &fd), 0);
    CHECK(write(fd, "abc", 3) == 3);
    close(fd);
    envelope_init(&env);
    envelope_add_rcpt(&env, "alice@localhost", NULL, 0);
    env.size = 4; /* the file holds 3 */
    CHECK_EQ_INT(queue_commit(q, qid, &env, NULL, 0, on_committed, &c, NULL), -EINVAL);
    envelope_clear(&env);
    /* Queue ids differ and are 16 uppercase hex digits. */
    char qid2[ENVELOPE_QID_MAX + 1];
    CHECK_EQ_INT(queue_body_open(q, qid2, &fd), 0);
    close(fd);
    CHECK(strcmp(qid, qid2) != 0);
    CHECK_EQ_INT(strspn(qid2, "0123456789ABCDEF"), 16);
    queue_body_abort(q, qid2);
    CHECK_EQ_INT(c.called, 1); /* none of these called back */
    CHECK_EQ_INT(stats().active, 0);
}

static void test_batching(void)
{
    enum { N = 40 };
    struct committed c[N];
    memset(c, 0, sizeof c);
    struct queue_stats before = stats();
    const char *to[] = {"bob@localhost"};
    /* The first commit starts a sync on its own ... */
    CHECK_EQ_INT(submit("", to, 1, content, &c[0]), 0);
    run_until(never, NULL, 2);
    /* ... the rest arrive while it may still run, all in one go. */
    for (int i = 1; i < N; i++)
        CHECK_EQ_INT(submit("", to, 1, content, &c[i]), 0);
    unsigned long want = before.delivered + N;
    CHECK(run_until(cond_delivered, &want, 20000));
    CHECK(run_until(cond_idle, NULL, 10000));
    struct queue_stats after = stats();
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += c[i].called == 1 && c[i].status == 0;
    CHECK_EQ_INT(ok, N);
    CHECK_EQ_INT(after.committed - before.committed, N);
    /* Group commit: far fewer syncs than messages. */
    CHECK(after.batches - before.batches < N);
    CHECK(after.batches - before.batches <= 3);
    CHECK_EQ_INT(maildir_count("bob"), N);
    /* The null sender becomes an empty Return-Path. */
    char msg[4096];
    CHECK_EQ_INT(maildir_read_first("bob", msg, sizeof msg), 0);
    CHECK(strstr(msg, "Return-Path: <>\n") != NULL);
}

static void test_aliases(void)
{
    struct committed c = {0};
    struct queue_stats before = stats();
    /* team -> carl, dora; dora also directly: delivered once. */
    const char *to[] = {"team@localhost", "dora@localhost"};
    CHECK_EQ_INT(submit("sender@example.org", to, 2, content, &c), 0);
    unsigned long want = before.delivered + 2;
    CHECK(run_until(cond_delivered, &want, 10000));
    CHECK(run_until(cond_idle, NULL, 10000));
    CHECK_EQ_INT(c.status, 0);
    CHECK_EQ_INT(maildir_count("carl"), 1);
    CHECK_EQ_INT(maildir_count("dora"), 1);
    CHECK_EQ_INT(maildir_count("team"), -1);
    CHECK_EQ_INT(stats().delivered - before.delivered, 2);
    char msg[4096];
    CHECK_EQ_INT(maildir_read_first("carl", msg, sizeof msg), 0);
    CHECK(strstr(msg, "Delivered-To: carl@localhost\n") != NULL);

    /* Nothing deliverable at all: refused, not acknowledged. */
    struct committed d = {0};
    const char *none[] = {"bad!name@localhost"};
    CHECK_EQ_INT(submit("sender@example.org", none, 1, content, &d), -EINVAL);
    CHECK_EQ_INT(d.called, 0);
}

/* Reads the one live record of the spool (the queue must be stopped). */
struct spool_view {
    int n;
    struct store_rec rec;
    struct store_slot slots[4];
};

static void view_cb(void *arg, struct store *st, const struct store_rec *rec,
                    const struct store_slot *slots)
{
    struct spool_view *v = arg;
    v->n++;
    v->rec = *rec;
    for (uint32_t i = 0; i < rec->nrcpt && i < 4; i++)
        v->slots[i] = slots[i];
}

static void test_defer_restart(void)
{
    /* A regular file where erin's Maildir parent should be: delivery to
     * her fails (temporarily: it can be fixed) until it is removed. */
    char blocker[4300];
    snprintf(blocker, sizeof blocker, "%s/mail/erin", root);
    write_file(blocker, "not a directory\n");
    struct committed c = {0};
    struct queue_stats before = stats();
    const char *to[] = {"fred@localhost", "erin@localhost"};
    CHECK_EQ_INT(submit("sender@example.org", to, 2, content, &c), 0);
    unsigned long want = before.deferred + 1;
    CHECK(run_until(cond_deferred, &want, 10000));
    CHECK_EQ_INT(c.status, 0);
    CHECK_EQ_INT(maildir_count("fred"), 1);
    CHECK_EQ_INT(stats().active, 1);
    CHECK_EQ_INT(stats().delivered - before.delivered, 1);

    /* Restart: the state is in the spool, not in memory. */
    queue_free(q);
    q = NULL;
    char spool[4300];
    snprintf(spool, sizeof spool, "%s/spool", root);
    struct spool_view v = {0};
    struct store *st = store_open(spool, view_cb, &v);
    CHECK(st != NULL);
    store_close(st);
    CHECK_EQ_INT(v.n, 1);
    CHECK_EQ_INT(v.rec.nrcpt, 2);
    CHECK_EQ_INT(v.slots[0].status, STORE_DONE);
    CHECK_EQ_INT(v.slots[0].attempts, 1);
    CHECK_EQ_INT(v.slots[1].status, STORE_PENDING);
    CHECK_EQ_INT(v.slots[1].attempts, 1);
    CHECK(v.slots[1].next_attempt > v.slots[1].last_attempt);
    CHECK(v.slots[1].last_attempt > 0);
    CHECK(strncmp(v.slots[1].error, "451 4.", 6) == 0);

    q = queue_new(loop, &cfg);
    CHECK(q != NULL);
    CHECK_EQ_INT(stats().recovered, 1);
    CHECK_EQ_INT(stats().active, 1);
    /* Retried after retry_min (1 s): still blocked, deferred again. */
    unsigned long one = 1;
    CHECK(run_until(cond_deferred, &one, 10000));
    queue_free(q);
    memset(&v, 0, sizeof v);
    st = store_open(spool, view_cb, &v);
    store_close(st);
    CHECK_EQ_INT(v.n, 1);
    CHECK_EQ_INT(v.slots[0].status, STORE_DONE);
    CHECK_EQ_INT(v.slots[1].attempts, 2);

    /* Fixed: the next attempt delivers erin only; fred got it once. */
    unlink(blocker);
    q = queue_new(loop, &cfg);
    CHECK_EQ_INT(stats().recovered, 1);
    CHECK(run_until(cond_delivered, &one, 10000));
    CHECK(run_until(cond_idle, NULL, 10000));
    CHECK_EQ_INT(maildir_count("erin"), 1);
    CHECK_EQ_INT(maildir_count("fred"), 1);
    queue_free(q);
    q = queue_new(loop, &cfg);
    CHECK_EQ_INT(stats().recovered, 0);
}

static void test_expire(void)
{
    char blocker[4300];
    snprintf(blocker, sizeof blocker, "%s/mail/gina", root);
    write_file(blocker, "not a directory\n");
    struct committed c = {0};
    struct queue_stats before = stats();
    const char *to[] = {"gina@localhost"};
    CHECK_EQ_INT(submit("sam@localhost", to, 1, content, &c), 0);
    /* Relayed mail is kept (deferred: this queue has no relay transport),
     * never dropped: it expires like any other. */
    struct committed r = {0};
    const char *remote[] = {"someone@example.com"};
    CHECK_EQ_INT(submit("sam@localhost", remote, 1, content, &r), 0);
    unsigned long want = before.deferred + 2;
    CHECK(run_until(cond_deferred, &want, 10000));
    CHECK_EQ_INT(r.status, 0);
    /* Settings are read at each attempt: a short lifetime, and time
     * moves past it. */
    cfg.queue_lifetime = 10;
    clock_fake_advance(20);
    unsigned long b = before.bounced + 2;
    CHECK(run_until(cond_bounced, &b, 10000));
    /* Each expiry sends the sender a notification (RFC 3464), delivered
     * here like any local mail; then the queue is empty. */
    unsigned long d = before.delivered + 2;
    CHECK(run_until(cond_delivered, &d, 10000));
    CHECK(run_until(cond_idle, NULL, 10000));
    CHECK_EQ_INT(stats().deferred, want);
    CHECK_EQ_INT(maildir_count("sam"), 2);
    char msg[8192];
    CHECK_EQ_INT(maildir_read_first("sam", msg, sizeof msg), 0);
    CHECK(strstr(msg, "Return-Path: <>\n") != NULL);
    CHECK(strstr(msg, "multipart/report") != NULL);
    CHECK(strstr(msg, "Action: failed") != NULL);
    CHECK(strstr(msg, "Final-Recipient: rfc822; gina@localhost") != NULL ||
          strstr(msg, "Final-Recipient: rfc822; someone@example.com") != NULL);
    cfg.queue_lifetime = 5 * 86400;
    unlink(blocker);
}

/* A batch whose sync cannot happen: its message is refused (the client
 * would hear 451) and never delivered, now or after a restart. */
static void test_sync_failure(void)
{
    /* A fresh start, one message to open a segment, then quiet until the
     * in-place rewrites are flushed: nothing is noted for the next sync. */
    queue_free(q);
    q = queue_new(loop, &cfg);
    struct committed first = {0};
    const char *to[] = {"kate@localhost"};
    CHECK_EQ_INT(submit("sender@example.org", to, 1, content, &first), 0);
    CHECK(run_until(cond_idle, NULL, 10000));
    run_until(never, NULL, 1500);
    CHECK_EQ_INT(first.status, 0);
    struct committed c = {0};
    struct queue_stats before = stats();
    char qid[ENVELOPE_QID_MAX + 1];
    int fd;
    CHECK_EQ_INT(queue_body_open(q, qid, &fd), 0);
    size_t len = strlen(content);
    CHECK(write(fd, content, len) == (ssize_t)len);
    close(fd);
    struct envelope env;
    envelope_init(&env);
    envelope_set(&env.from, "sender@example.org");
    envelope_add_rcpt(&env, "hank@localhost", NULL, 0);
    env.size = len;
    /* The segment exists (earlier tests); noting it for the sync needs a
     * new descriptor, and there is none. */
    struct rlimit rl, low;
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
    int probe = dup(0);
    close(probe);
    low = rl;
    low.rlim_cur = (rlim_t)probe;
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
    int rc = queue_commit(q, qid, &env, NULL, 0, on_committed, &c, NULL);
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
    envelope_clear(&env);
    CHECK_EQ_INT(rc, 0);
    CHECK(run_until(cond_called, &c, 10000));
    CHECK(c.status < 0);
    CHECK_EQ_INT(c.res.code, 451);
    CHECK_EQ_STR(c.res.enh, "4.3.0");
    run_until(never, NULL, 300);
    CHECK_EQ_INT(stats().active, 0);
    CHECK_EQ_INT(stats().committed, before.committed);
    CHECK_EQ_INT(maildir_count("hank"), -1);
    queue_free(q);
    q = queue_new(loop, &cfg);
    CHECK_EQ_INT(stats().recovered, 0);
    run_until(never, NULL, 300);
    CHECK_EQ_INT(maildir_count("hank"), -1);
}

/* Each way a commit can be refused gives the reply its cause calls for,
 * at once, with nothing left in the spool. */
static void test_commit_results(void)
{
    struct queue_stats before = stats();
    const char *alice[] = {"alice@localhost"};
    struct committed c = {0};
    /* Larger than message_size_max (a reload lowered it since the
     * session checked): 552 5.3.4. */
    uint64_t size_max = cfg.message_size_max;
    cfg.message_size_max = 100;
    char *big = malloc(70000);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    CHECK_EQ_INT(submit("sender@example.org", alice, 1, big, &c), -EMSGSIZE);
    cfg.message_size_max = size_max;
    free(big);
    CHECK_EQ_INT(c.res.kind, RESULT_PERMFAIL);
    CHECK_EQ_INT(c.res.code, 552);
    CHECK_EQ_STR(c.res.enh, "5.3.4");
    /* No recipient left after the aliases (a name no mailbox can have
     * here; a user removed by a reload in the integration tests): 550
     * 5.1.1. */
    const char *nobody[] = {"no/such@localhost"};
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(submit("sender@example.org", nobody, 1, content, &c), -EINVAL);
    CHECK_EQ_INT(c.res.kind, RESULT_PERMFAIL);
    CHECK_EQ_INT(c.res.code, 550);
    CHECK_EQ_STR(c.res.enh, "5.1.1");
    /* The spool would keep less than queue_minfree: 452 4.3.1, and the
     * room told to the smtp process is 0. */
    CHECK(queue_spool_room(q) > 0);
    memset(&c, 0, sizeof c);
    uint64_t minfree = cfg.queue_minfree;
    cfg.queue_minfree = UINT64_MAX / 2;
    CHECK_EQ_INT(queue_spool_room(q), 0);
    CHECK_EQ_INT(submit("sender@example.org", alice, 1, content, &c), -ENOSPC);
    cfg.queue_minfree = minfree;
    CHECK_EQ_INT(c.res.kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(c.res.code, 452);
    CHECK_EQ_STR(c.res.enh, "4.3.1");
    CHECK(result_valid(&c.res));
    /* An unknown queue id (a broken smtp process): 451 4.3.0. */
    struct envelope env;
    envelope_init(&env);
    envelope_add_rcpt(&env, "alice@localhost", NULL, 0);
    CHECK_EQ_INT(queue_commit(q, "0123456789ABCDEF", &env, NULL, 0, on_committed, &c, &c.res), -ENOENT);
    envelope_clear(&env);
    CHECK_EQ_INT(c.res.code, 451);
    CHECK_EQ_STR(c.res.enh, "4.3.0");
    CHECK_EQ_INT(c.called, 0);
    run_until(never, NULL, 200);
    CHECK_EQ_INT(c.called, 0);
    CHECK_EQ_INT(stats().active, before.active);
    CHECK_EQ_INT(stats().committed, before.committed);
}

/* Two records with one queue id (e.g. a copy restored by hand): the
 * later one wins, the earlier is never delivered. */
static void test_duplicate(void)
{
    queue_free(q);
    q = NULL;
    char spool[4300];
    snprintf(spool, sizeof spool, "%s/spool", root);
    struct store *st = store_open(spool, view_cb, &(struct spool_view){0});
    CHECK(st != NULL);
    int fd = open(root, O_TMPFILE | O_RDWR, 0600);
    size_t len = strlen(content);
    CHECK(write(fd, content, len) == (ssize_t)len);
    const char *who[] = {"ivan@localhost", "jane@localhost"};
    for (int i = 0; i < 2; i++) {
        struct envelope env;
        envelope_init(&env);
        snprintf(env.qid, sizeof env.qid, "%s", "00000000000D0D0D");
        envelope_set(&env.from, "sender@example.org");
        envelope_add_rcpt(&env, who[i], NULL, 0);
        env.size = len;
        struct buf ser = BUF_INIT;
        envelope_serialize(&env, &ser);
        struct store_rec rec;
        CHECK_EQ_INT(store_append(st, "00000000000D0D0D", ser.data, (uint32_t)ser.len, 1, fd,
                                  len, clock_wall_us(), &rec),
                     0);
        buf_free(&ser);
        envelope_clear(&env);
    }
    close(fd);
    store_close(st);
    q = queue_new(loop, &cfg);
    CHECK_EQ_INT(stats().recovered, 1);
    unsigned long one = 1;
    CHECK(run_until(cond_delivered, &one, 10000));
    CHECK(run_until(cond_idle, NULL, 10000));
    CHECK_EQ_INT(maildir_count("jane"), 1);
    CHECK_EQ_INT(maildir_count("ivan"), -1);
    queue_free(q);
    q = queue_new(loop, &cfg);
    CHECK_EQ_INT(stats().recovered, 0);
}

/* Writes a spool record for lena as a crashed process would leave it:
 * the delivery intent in the slot (pid 4242, now), and, if `delivered`, the
 * file that delivery made in her Maildir. */
static void crash_leftover(const char *qid, int delivered)
{
    queue_free(q);
    q = NULL;
    char spool[4300], path[4400];
    snprintf(spool, sizeof spool, "%s/spool", root);
    struct store *st = store_open(spool, view_cb, &(struct spool_view){0});
    char text[512];
    snprintf(text, sizeof text,
             "Received: from test (unknown [127.0.0.1])\r\n\tby mx (tern) with ESMTP id %s;"
             " Mon, 23 Nov 2026 01:54:44 +0000\r\nSubject: crash\r\n\r\nbody\r\n",
             qid);
    int fd = open(root, O_TMPFILE | O_RDWR, 0600);
    size_t len = strlen(text);
    CHECK(write(fd, text, len) == (ssize_t)len);
    struct envelope env;
    envelope_init(&env);
    snprintf(env.qid, sizeof env.qid, "%s", qid);
    envelope_set(&env.from, "sender@example.org");
    envelope_add_rcpt(&env, "lena@localhost", NULL, 0);
    env.size = len;
    struct buf ser = BUF_INIT;
    envelope_serialize(&env, &ser);
    struct store_rec rec;
    CHECK_EQ_INT(store_append(st, qid, ser.data, (uint32_t)ser.len, 1, fd, len,
                              clock_wall_us(), &rec), 0);
    struct store_slot slot = {0};
    slot.status = STORE_PENDING;
    slot.flags = STORE_SLOT_INFLIGHT;
    slot.attempt_pid = 4242;
    slot.last_attempt = clock_wall();
    CHECK_EQ_INT(store_slot_write(st, &rec, 0, &slot), 0);
    buf_free(&ser);
    envelope_clear(&env);
    close(fd);
    store_close(st);
    if (delivered) {
        static const char *const dirs[] = {"lena", "lena/Maildir", "lena/Maildir/new",
                                           "lena/Maildir/cur", "lena/Maildir/tmp"};
        for (size_t i = 0; i < 5; i++) {
            snprintf(path, sizeof path, "%s/mail/%s", root, dirs[i]);
            mkdir(path, 0700);
        }
        snprintf(path, sizeof path, "%s/mail/lena/Maildir/new/%lld.M5P4242Q7.testhost", root,
                 (long long)clock_wall());
        FILE *f = fopen(path, "w");
        fprintf(f, "Return-Path: <sender@example.org>\nDelivered-To: lena@localhost\n"
                   "Received: from test (unknown [127.0.0.1])\n\tby mx (tern) with ESMTP id %s;"
                   " Mon, 23 Nov 2026 01:54:44 +0000\nSubject: crash\n\nbody\n",
                qid);
        fclose(f);
    }
    q = queue_new(loop, &cfg);
}

/* A crash between a Maildir delivery and the record of its success: the
 * restart finds the delivered file and does not deliver again; without
 * such a file it delivers. */
static void test_crash_intent(void)
{
    crash_leftover("00000000000C1A51", 1);
    CHECK_EQ_INT(stats().recovered, 1);
    unsigned long one = 1;
    CHECK(run_until(cond_delivered, &one, 10000));
    CHECK(run_until(cond_idle, NULL, 10000));
    CHECK_EQ_INT(maildir_count("lena"), 1);

    /* The intent was written but the delivery never happened. */
    crash_leftover("00000000000C1A52", 0);
    CHECK(run_until(cond_delivered, &one, 10000));
    CHECK(run_until(cond_idle, NULL, 10000));
    CHECK_EQ_INT(maildir_count("lena"), 2);
}

int main(void)
{
    const char *base = getenv("TERN_TEST_TMP");
    if (base == NULL || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(root, sizeof root, "%s/test_queue.XXXXXX", base);
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char path[4300], conf[4300], text[20000];
    snprintf(path, sizeof path, "%s/aliases", root);
    write_file(path, "team: carl, dora\n");
    snprintf(path, sizeof path, "%s/mail", root);
    mkdir(path, 0700);
    snprintf(conf, sizeof conf, "%s/tern.conf", root);
    snprintf(text, sizeof text,
             "spool_dir = %s/spool\n"
             "maildir = %s/mail/%%u/Maildir\n"
             "aliases_file = %s/aliases\n"
             "retry_min = 1\n"
             "retry_max = 2\n"
             "delivery_threads = 2\n"
             "accept_any_user = yes\n",
             root, root, root);
    write_file(conf, text);
    config_default(&cfg);
    struct buf err = BUF_INIT;
    if (config_load(&cfg, conf, &err) < 0) {
        fprintf(stderr, "config: %s\n", err.data ? err.data : "?");
        return 1;
    }
    buf_free(&err);

    loop = ev_loop_new();
    q = queue_new(loop, &cfg);
    CHECK(q != NULL);
    if (q == NULL)
        return check_result("test_queue");
    CHECK_EQ_INT(stats().recovered, 0);
    test_basic();
    test_batching();
    test_aliases();
    test_defer_restart();
    test_expire();
    test_sync_failure();
    test_commit_results();
    test_duplicate();
    test_crash_intent();
    queue_free(q);
    ev_loop_free(loop);
    config_free(&cfg);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return check_result("test_queue");
}
