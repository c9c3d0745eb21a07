/* queue_memory: what N deferred messages cost the queue process in
 * memory, and how long recovering them takes. Writes N records (1 KB of
 * content, one recipient deferred until tomorrow) straight into a spool,
 * then starts a queue over it and reports heap bytes in use and RSS.
 *
 * Not part of the build (needs the static libraries of a build tree):
 *   B=build-h4; cc -O2 -D_GNU_SOURCE -Isrc -o /tmp/queue_memory bench/queue_memory.c \
 *     $B/libtern_proc.a $B/libtern_queue.a $B/libtern_deliver.a $B/libtern_conf.a \
 *     $B/libtern_ev.a $B/libtern_mail.a $B/libtern_base.a -lz -lpthread
 *   /tmp/queue_memory [dir] [N]
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "conf/config.h"
#include "ev/loop.h"
#include "mail/envelope.h"
#include "queue/queue.h"
#include "queue/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void ignore_rec(void *arg, struct store *st, const struct store_rec *rec,
                       const struct store_slot *slots)
{
}

int main(int argc, char **argv)
{
    char root[4096];
    snprintf(root, sizeof root, "%s/queue_memory.XXXXXX", argc > 1 ? argv[1] : "/var/tmp");
    long n = argc > 2 ? atol(argv[2]) : 100000;
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char spool[4200], path[4300];
    snprintf(spool, sizeof spool, "%s/spool", root);
    mkdir(spool, 0700);

    /* The spool: n deferred messages. */
    struct store *st = store_open(spool, ignore_rec, NULL);
    snprintf(path, sizeof path, "%s/content", root);
    FILE *cf = fopen(path, "w+");
    char line[80];
    memset(line, 'x', sizeof line - 2);
    line[sizeof line - 2] = '\r';
    line[sizeof line - 1] = '\n';
    fputs("Subject: deferred\r\n\r\n", cf);
    for (int i = 0; i < 12; i++)
        fwrite(line, 1, sizeof line, cf);
    fflush(cf);
    long clen = ftell(cf);
    int cfd = fileno(cf);
    struct store_slot later = {0};
    later.status = STORE_PENDING;
    later.attempts = 1;
    later.last_attempt = clock_wall();
    later.next_attempt = clock_wall() + 86400;
    snprintf(later.error, sizeof later.error, "451 4.2.0 mailbox busy");
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        char qid[17];
        snprintf(qid, sizeof qid, "%012lX0000", (0x100000000L + i) & 0xffffffffffffL);
        struct envelope env;
        envelope_init(&env);
        snprintf(env.qid, sizeof env.qid, "%s", qid);
        envelope_set(&env.from, "someone@example.org");
        envelope_add_rcpt(&env, "user@localhost", NULL, 0);
        env.size = (uint64_t)clen;
        envelope_set(&env.client_ip, "192.0.2.1");
        struct buf ser = BUF_INIT;
        envelope_serialize(&env, &ser);
        struct store_rec rec;
        if (store_append(st, qid, ser.data, (uint32_t)ser.len, 1, cfd, (uint64_t)clen,
                         clock_wall_us(), &rec) < 0 ||
            store_slot_write(st, &rec, 0, &later) < 0) {
            fprintf(stderr, "append failed\n");
            return 1;
        }
        buf_free(&ser);
        envelope_clear(&env);
    }
    store_close(st);
    fclose(cf);
    printf("wrote %ld deferred messages in %.1f s\n", n, now_s() - t0);

    struct config cfg;
    config_default(&cfg);
    free(cfg.spool_dir);
    cfg.spool_dir = strdup(spool);
    struct ev_loop *loop = ev_loop_new();
    malloc_trim(0);
    struct mallinfo2 before = mallinfo2();
    long rss0 = rss_kb();
    t0 = now_s();
    struct queue *q = queue_new(loop, &cfg);
    double t = now_s() - t0;
    malloc_trim(0);
    struct mallinfo2 after = mallinfo2();
    long rss1 = rss_kb();
    struct queue_stats qs;
    queue_get_stats(q, &qs);
    size_t heap = after.uordblks + after.hblkhd - before.uordblks - before.hblkhd;
    printf("recovered %lu messages in %.2f s\n", qs.recovered, t);
    printf("heap in use: %.1f MB (%.0f bytes a message); RSS grew %.1f MB\n", heap / 1e6,
           (double)heap / (double)(qs.recovered ? qs.recovered : 1), (rss1 - rss0) / 1e3);
    queue_free(q);
    ev_loop_free(loop);
    config_free(&cfg);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return 0;
}
