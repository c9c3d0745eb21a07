/* mbox_lock.c: see mbox_lock.h.
 *
 * Order: the dot-lock first, then fcntl, as Dovecot writes; mutt takes
 * fcntl first. Neither side waits holding one lock for the other: a
 * failed second lock releases the first and the attempt starts again, so
 * the two orders cannot deadlock, only retry.
 *
 * A stale dot-lock is removed by name. Two deliverers that both judged
 * it stale could race (the second removing the first's fresh lock); the
 * fcntl lock, which dies with its process and never goes stale, still
 * keeps them apart. */
#include "deliver/mbox_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xmalloc.h"

static int64_t mbox_lock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mbox_lock_stale(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    char text[32];
    ssize_t n = -1;
    int stale = 0;
    if (fstat(fd, &st) == 0) {
        time_t now = time(NULL);
        stale = st.st_mtime + MBOX_DOTLOCK_STALE_S < now;
        n = read(fd, text, sizeof text - 1);
    }
    close(fd);
    if (!stale && n > 0) {
        /* liblockfile's and tern's dot-locks hold the maker's pid. */
        text[n] = '\0';
        char *end = NULL;
        long pid = strtol(text, &end, 10);
        if (end != text && (*end == '\n' || *end == '\0') && pid > 0 &&
            kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            stale = 1;
    }
    return stale;
}

/* One try at the dot-lock: 0 (held), -EEXIST (someone has it), -errno. */
static int mbox_lock_dot(const char *dot)
{
    int fd = open(dot, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    /* The pid only helps others judge staleness: a short write is no
     * reason to fail. */
    ssize_t w = write(fd, text, (size_t)n);
    (void)w;
    close(fd);
    return 0;
}

/* One try at the fcntl lock: 0, -EAGAIN (someone has it) or -errno. */
static int mbox_lock_fcntl(int fd, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET; /* the whole file, however it grows */
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
        return errno == EACCES ? -EAGAIN : -errno;
    return 0;
}

int mbox_lock_take(struct mbox_lock *l, const char *path, int fd, unsigned wait_ms)
{
    l->dotlock = NULL;
    l->fd = -1;
    struct buf dot = BUF_INIT;
    buf_printf(&dot, "%s.lock", path);
    int64_t deadline = mbox_lock_now_ms() + wait_ms;
    long pause_ms = 20;
    int rc;
    for (;;) {
        rc = mbox_lock_dot(dot.data);
        if (rc == -EEXIST && mbox_lock_stale(dot.data)) {
            if (unlink(dot.data) < 0 && errno != ENOENT) {
                rc = -errno;
                break;
            }
            continue;
        }
        if (rc == 0) {
            rc = mbox_lock_fcntl(fd, F_WRLCK);
            if (rc == 0) {
                l->dotlock = buf_steal(&dot);
                l->fd = fd;
                return 0;
            }
            unlink(dot.data);
        }
        if (rc != -EEXIST && rc != -EAGAIN)
            break;
        int64_t left = deadline - mbox_lock_now_ms();
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        /* A mail reader holds it for a moment (a rewrite of the file, a
         * new-mail check): look again soon, less often the longer it is. */
        long ms = pause_ms < left ? pause_ms : (long)left;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (pause_ms < 200)
            pause_ms *= 2;
    }
    buf_free(&dot);
    return rc;
}

void mbox_lock_drop(struct mbox_lock *l)
{
    if (l->fd >= 0)
        (void)mbox_lock_fcntl(l->fd, F_UNLCK);
    l->fd = -1;
    if (l->dotlock) {
        unlink(l->dotlock);
        free(l->dotlock);
        l->dotlock = NULL;
    }
}
