/* queue_commit: accepted messages per second through the real queue
 * (queue_body_open, content written, queue_commit, wait for the
 * callback), with S concurrent "sessions" in one loop as the queue
 * process sees them, while the delivery threads deliver everything to
 * Maildirs at the same time. Prints messages/s and messages per sync.
 *
 * Not part of the build (needs the static libraries of a build tree):
 *   B=build-h4; cc -O2 -D_GNU_SOURCE -Isrc -o /tmp/queue_commit bench/queue_commit.c \
 *     $B/libtern_proc.a $B/libtern_queue.a $B/libtern_deliver.a $B/libtern_conf.a \
 *     $B/libtern_ev.a $B/libtern_mail.a $B/libtern_base.a -lz -lpthread
 *   /tmp/queue_commit [dir] [seconds] [sessions] [nodeliver]
 * "nodeliver" points the Maildirs below a regular file, so every
 * delivery fails at once (deferred, no fsync): the spool alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "conf/config.h"
#include "ev/loop.h"
#include "mail/envelope.h"
#include "queue/queue.h"

static struct queue *q;
static struct ev_loop *loop;
static char body[4096];
static unsigned long accepted, failed;
static int stopping;
static unsigned inflight;

static void session_next(void *arg);

static void on_committed(void *arg, const char *qid, const struct result *res)
{
    inflight--;
    if (res->kind == RESULT_OK)
        accepted++;
    else
        failed++;
    if (!stopping)
        session_next(arg);
}

/* One message of one session: as proc/queue does on IPC_BODY_OPEN and
 * IPC_COMMIT (the content is written here instead of by the net process). */
static void session_next(void *arg)
{
    char qid[ENVELOPE_QID_MAX + 1];
    int fd;
    if (queue_body_open(q, qid, &fd) < 0 || write(fd, body, sizeof body) != sizeof body) {
        fprintf(stderr, "body failed\n");
        exit(1);
    }
    close(fd);
    struct envelope env;
    envelope_init(&env);
    envelope_set(&env.from, "sender@example.org");
    envelope_add_rcpt(&env, "user@localhost", NULL, 0);
    env.size = sizeof body;
    env.arrival = clock_wall();
    inflight++;
    if (queue_commit(q, qid, &env, NULL, 0, on_committed, arg, NULL) < 0) {
        fprintf(stderr, "commit refused\n");
        exit(1);
    }
    envelope_clear(&env);
}

static void on_stop(struct ev_loop *l, void *arg)
{
    stopping = 1;
    ev_loop_stop(l);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char root[4096];
    snprintf(root, sizeof root, "%s/queue_commit.XXXXXX", argc > 1 ? argv[1] : "/var/tmp");
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    int sessions = argc > 3 ? atoi(argv[3]) : 16;
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    /* Per-message log lines go to stderr: run with 2>/dev/null. */
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : 'x';
    struct config cfg;
    config_default(&cfg);
    char p[4300];
    free(cfg.spool_dir);
    snprintf(p, sizeof p, "%s/spool", root);
    cfg.spool_dir = strdup(p);
    free(cfg.maildir);
    int nodeliver = argc > 4 && strcmp(argv[4], "nodeliver") == 0;
    snprintf(p, sizeof p, "%s/mail/%%u/Maildir", root);
    if (nodeliver) {
        snprintf(p, sizeof p, "%s/file", root);
        FILE *f = fopen(p, "w");
        if (f)
            fclose(f);
        snprintf(p, sizeof p, "%s/file/%%u/Maildir", root);
    }
    cfg.maildir = strdup(p);
    loop = ev_loop_new();
    q = queue_new(loop, &cfg);
    if (q == NULL)
        return 1;
    double t0 = now_s();
    for (int i = 0; i < sessions; i++)
        session_next(NULL);
    ev_timer_add(loop, (uint64_t)(secs * 1000), on_stop, NULL);
    ev_loop_run(loop);
    double t = now_s() - t0;
    struct queue_stats st;
    queue_get_stats(q, &st);
    printf("%d sessions, 4 KB messages, %.1f s: %.0f messages/s accepted, %lu syncs "
           "(%.1f messages a sync), %lu delivered meanwhile, %lu failed\n",
           sessions, t, (double)accepted / t, st.batches,
           st.batches ? (double)st.committed / (double)st.batches : 0.0, st.delivered, failed);
    queue_free(q);
    ev_loop_free(loop);
    config_free(&cfg);
    snprintf(p, sizeof p, "rm -rf '%s'", root);
    if (system(p) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return 0;
}
