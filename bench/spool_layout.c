/* spool_layout: which spool layout makes a batch of accepted messages
 * cost close to one fsync on this disk? 16 writer threads (standing for
 * 16 SMTP sessions, each waiting for its message to be durable before it
 * sends the next) store 4 KB messages for ~3 s per layout:
 *
 *   file     a new file per message, written, fsync'd, directory fsync'd
 *            (the classic one-file-per-message queue)
 *   own      each writer appends to its own file and fdatasyncs it
 *            (the kernel's journal merges concurrent syncs)
 *   group    all writers append to one segment; one sync thread runs one
 *            fdatasync per batch; writers wait for the batch holding their
 *            message (tern's group commit, queue/commit.c)
 *   group-falloc  as group, in a file reserved with fallocate() (blocks
 *            allocated but unwritten: the first write still changes metadata)
 *   group-pre  as group, but overwriting a pre-written file, so a sync
 *            needs no metadata (size) change
 *
 * Not part of the build:
 *   cc -O2 -pthread -o /tmp/spool_layout bench/spool_layout.c
 *   /tmp/spool_layout [dir] [seconds] [layouts]
 * dir: on the disk to measure; layouts: a comma-separated subset, in the
 * order to run (default file,own,group,group-falloc,group-pre).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WRITERS 16
#define MSG_SIZE 4096

static const char *bench_dir;
static double bench_secs = 3.0;
static atomic_int bench_stop;
static atomic_ulong bench_count;
static char bench_msg[MSG_SIZE];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---- file: one new file per message ---- */

static void *w_file(void *arg)
{
    long id = (long)arg;
    char path[4096];
    int dfd = open(bench_dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        die("open dir");
    for (unsigned long n = 0; !atomic_load(&bench_stop); n++) {
        snprintf(path, sizeof path, "%s/f.%ld.%lu", bench_dir, id, n);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
            die("open");
        if (write(fd, bench_msg, MSG_SIZE) != MSG_SIZE)
            die("write");
        if (fsync(fd) < 0)
            die("fsync");
        close(fd);
        if (fsync(dfd) < 0)
            die("fsync dir");
        atomic_fetch_add(&bench_count, 1);
    }
    close(dfd);
    return NULL;
}

/* ---- own: one append-only file per writer ---- */

static void *w_own(void *arg)
{
    long id = (long)arg;
    char path[4096];
    snprintf(path, sizeof path, "%s/own.%ld", bench_dir, id);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0)
        die("open");
    while (!atomic_load(&bench_stop)) {
        if (write(fd, bench_msg, MSG_SIZE) != MSG_SIZE)
            die("write");
        if (fdatasync(fd) < 0)
            die("fdatasync");
        atomic_fetch_add(&bench_count, 1);
    }
    close(fd);
    return NULL;
}

/* ---- group: one segment, one sync thread ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work = PTHREAD_COND_INITIALIZER, g_done = PTHREAD_COND_INITIALIZER;
static int g_fd;
static off_t g_off;
static off_t g_limit; /* group-pre: wrap around inside the pre-written area */
static unsigned long g_pending = 1; /* number of the batch appends join now */
static unsigned long g_pending_n;  /* messages in it */
static unsigned long g_synced;     /* every batch <= this is durable */
static unsigned long g_batches;

static void *g_syncer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (g_pending_n == 0 && !atomic_load(&bench_stop))
            pthread_cond_wait(&g_work, &g_mu);
        if (atomic_load(&bench_stop))
            break;
        /* Later appends join the next batch. */
        unsigned long batch = g_pending++;
        g_pending_n = 0;
        pthread_mutex_unlock(&g_mu);
        if (fdatasync(g_fd) < 0)
            die("fdatasync");
        pthread_mutex_lock(&g_mu);
        g_synced = batch;
        g_batches++;
        pthread_cond_broadcast(&g_done);
    }
    pthread_cond_broadcast(&g_done);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static void *w_group(void *arg)
{
    (void)arg;
    while (!atomic_load(&bench_stop)) {
        pthread_mutex_lock(&g_mu);
        off_t off = g_off;
        g_off += MSG_SIZE;
        if (g_limit && g_off >= g_limit)
            g_off = 0;
        /* The append itself (page cache) happens under the lock, as in
         * tern where one loop thread does all appends. */
        if (pwrite(g_fd, bench_msg, MSG_SIZE, off) != MSG_SIZE)
            die("pwrite");
        unsigned long mine = g_pending;
        g_pending_n++;
        pthread_cond_signal(&g_work);
        while (g_synced < mine && !atomic_load(&bench_stop))
            pthread_cond_wait(&g_done, &g_mu);
        int ok = g_synced >= mine;
        pthread_mutex_unlock(&g_mu);
        if (ok)
            atomic_fetch_add(&bench_count, 1);
    }
    return NULL;
}

static void run(const char *name, void *(*fn)(void *), int group)
{
    pthread_t th[WRITERS], syncer;
    atomic_store(&bench_stop, 0);
    atomic_store(&bench_count, 0);
    g_batches = 0;
    g_pending = 1;
    g_pending_n = 0;
    g_synced = 0;
    if (group)
        pthread_create(&syncer, NULL, g_syncer, NULL);
    double t0 = now_s();
    for (long i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, fn, (void *)i);
    struct timespec ts = {(time_t)bench_secs, (long)((bench_secs - (time_t)bench_secs) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&bench_stop, 1);
    unsigned long n = atomic_load(&bench_count);
    double t = now_s() - t0;
    if (group) {
        pthread_mutex_lock(&g_mu);
        pthread_cond_broadcast(&g_work);
        pthread_cond_broadcast(&g_done);
        pthread_mutex_unlock(&g_mu);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    if (group)
        pthread_join(syncer, NULL);
    printf("%-12s %8.0f messages/s", name, (double)n / t);
    if (group)
        printf("   %lu syncs, %.1f messages per sync", g_batches,
               g_batches ? (double)n / (double)g_batches : 0.0);
    printf("\n");
    fflush(stdout);
}

/* Sets up and runs one layout by name. */
static void run_layout(const char *name)
{
    char path[4200];
    static char zero[1 << 20];
    if (strcmp(name, "file") == 0) {
        run("file", w_file, 0);
        return;
    }
    if (strcmp(name, "own") == 0) {
        run("own", w_own, 0);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", bench_dir, name);
    g_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (g_fd < 0)
        die("open segment");
    g_off = 0;
    g_limit = 0;
    if (strcmp(name, "group-falloc") == 0) {
        /* Large enough never to wrap within a run: every append lands in
         * a block that is allocated but was never written. */
        if (fallocate(g_fd, 0, 0, (off_t)4 << 30) < 0 || fsync(g_fd) < 0)
            die("fallocate");
    } else if (strcmp(name, "group-pre") == 0) {
        for (int i = 0; i < 64; i++)
            if (write(g_fd, zero, sizeof zero) != (ssize_t)sizeof zero)
                die("write");
        if (fsync(g_fd) < 0)
            die("fsync");
        g_limit = (off_t)64 << 20;
    } else if (strcmp(name, "group") != 0) {
        fprintf(stderr, "unknown layout %s\n", name);
        exit(2);
    }
    run(name, w_group, 1);
    close(g_fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    char tmpl[4096];
    if (argc > 1) {
        snprintf(tmpl, sizeof tmpl, "%s/spool_layout.XXXXXX", argv[1]);
    } else {
        snprintf(tmpl, sizeof tmpl, "/var/tmp/spool_layout.XXXXXX");
    }
    if (argc > 2)
        bench_secs = atof(argv[2]);
    if (mkdtemp(tmpl) == NULL)
        die("mkdtemp");
    bench_dir = tmpl;
    memset(bench_msg, 'm', sizeof bench_msg);
    printf("%d writers, %d-byte messages, %.1f s each, in %s\n", WRITERS, MSG_SIZE, bench_secs,
           bench_dir);

    const char *layouts = argc > 3 ? argv[3] : "file,own,group,group-falloc,group-pre";
    char *list = strdup(layouts), *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save))
        run_layout(name);
    free(list);

    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", bench_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", bench_dir);
    return 0;
}
