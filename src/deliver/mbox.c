/* mbox.c: see mbox.h. One writer renders the entry both to the file and,
 * for the search after a crash, to a count of its octets, so the length
 * looked for is the length written. */
#include "deliver/mbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fsio.h"
#include "base/xmalloc.h"
#include "deliver/local_write.h"
#include "deliver/maildir.h"
#include "deliver/mbox_lock.h"
#include "deliver/redeliver.h"
#include "mail/mboxrd.h"

/* Where the rendered entry goes: written at fd from off on, or (fd < 0)
 * only counted. */
struct mbox_out {
    int fd;
    off_t off;
    uint64_t count;
};

static int mbox_out_flush(struct mbox_out *o, struct buf *b)
{
    if (b->len == 0)
        return 0;
    if (o->fd >= 0) {
        int rc = fsio_pwrite_all(o->fd, b->data, b->len, o->off);
        if (rc < 0)
            return rc;
        o->off += (off_t)b->len;
    }
    o->count += b->len;
    buf_reset(b);
    return 0;
}

/* Renders the entry (separator dated t, headers, the quoted message, the
 * empty line) to o. Returns 0 or -errno with *what naming the step. */
static int mbox_render(const struct mbox_msg *msg, int64_t t, struct mbox_out *o,
                       const char **what)
{
    struct buf out = BUF_INIT, head = BUF_INIT;
    struct mboxrd q;
    mboxrd_init(&q);
    mboxrd_from_line(&out, msg->return_path, t);
    local_write_head(&head, msg->return_path, msg->delivered_to);
    mboxrd_feed(&q, head.data, head.len, &out);
    buf_free(&head);
    char *in = xmalloc(MAILDIR_READ_CHUNK);
    int rc = 0;
    uint64_t left = msg->body_len;
    off_t off = msg->body_off;
    while (left && rc == 0) {
        size_t n = left < MAILDIR_READ_CHUNK ? (size_t)left : MAILDIR_READ_CHUNK;
        rc = fsio_pread_all(msg->body_fd, in, n, off);
        if (rc < 0) {
            *what = "reading the message";
            break;
        }
        mboxrd_feed(&q, in, n, &out);
        off += (off_t)n;
        left -= n;
        /* One write per chunk read, or a little more (quoting). */
        rc = mbox_out_flush(o, &out);
        if (rc < 0)
            *what = "writing";
    }
    if (rc == 0) {
        mboxrd_finish(&q, &out);
        rc = mbox_out_flush(o, &out);
        if (rc < 0)
            *what = "writing";
    }
    free(in);
    buf_free(&out);
    return rc;
}

/* Opens the mbox read-write, creating it (and its directory) if needed;
 * *created says whether this call made the file. Returns the fd or -errno. */
static int mbox_open(const char *path, int *created)
{
    const int flags = O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
    *created = 0;
    for (int tries = 0; tries < 4; tries++) {
        int fd = open(path, flags);
        if (fd >= 0 || errno != ENOENT)
            return fd >= 0 ? fd : -errno;
        fd = open(path, flags | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            *created = 1;
            return fd;
        }
        if (errno == EEXIST)
            continue; /* made by someone else meanwhile: open that */
        if (errno != ENOENT)
            return -errno;
        /* The directory is missing (a %d/%u template): make it. */
        char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        int rc = -ENOENT;
        if (slash && slash != dir) {
            *slash = '\0';
            rc = fsio_mkdirs(dir, 0700);
        }
        free(dir);
        if (rc < 0)
            return rc;
    }
    return -ENOENT;
}

/* Makes a new mbox's directory entry durable with its first message. */
static int mbox_sync_parent(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        rc = fsio_sync_dir(dir);
    }
    free(dir);
    return rc;
}

/* Opens and locks the mbox; a file that a mail reader replaced while we
 * waited for its locks is opened again. Returns the fd or -errno, with
 * *what and *created. */
static int mbox_open_locked(const char *path, unsigned lock_wait, struct mbox_lock *lk,
                            const char **what, int *created)
{
    for (int tries = 0; tries < 3; tries++) {
        *what = "opening the mailbox";
        int fd = mbox_open(path, created);
        if (fd < 0)
            return fd;
        struct stat a, b;
        int rc = fstat(fd, &a) < 0 ? -errno : 0;
        /* Only a plain file of one name: a hard link would let a
         * mailbox name another user's file. */
        if (rc == 0 && (!S_ISREG(a.st_mode) || a.st_nlink != 1)) {
            *what = "the mailbox is not a regular file of one link";
            rc = -EPERM;
        }
        if (rc == 0) {
            *what = "locking the mailbox";
            rc = mbox_lock_take(lk, path, fd, lock_wait * 1000u);
        }
        if (rc < 0) {
            close(fd);
            return rc;
        }
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            return fd;
        mbox_lock_drop(lk);
        close(fd);
    }
    *what = "the mailbox keeps being replaced";
    return -ESTALE;
}

int mbox_deliver(const char *path, const struct mbox_msg *msg, const struct mbox_look *look,
                 unsigned lock_wait, struct result *res)
{
    struct mbox_lock lk = {NULL, -1};
    const char *what = "opening the mailbox";
    int created = 0;
    int fd = mbox_open_locked(path, lock_wait, &lk, &what, &created);
    if (fd < 0) {
        if (fd == -ETIMEDOUT)
            result_set(res, RESULT_TEMPFAIL, 451, "4.2.0",
                       "mailbox locked by another program for %u s", lock_wait);
        else
            local_write_fail(res, what, -fd);
        return fd;
    }
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    uint64_t size = rc == 0 ? (uint64_t)st.st_size : 0;
    if (rc == 0 && look) {
        struct mbox_out count = {-1, 0, 0};
        what = "reading the message";
        rc = mbox_render(msg, 0, &count, &what);
        uint64_t cut = UINT64_MAX;
        if (rc == 0 && redeliver_find_mbox(fd, size, look->qid, msg->delivered_to, look->since,
                                           count.count, &cut)) {
            result_set(res, RESULT_OK, 250, "2.0.0", "delivered to mbox before a restart");
            goto out;
        }
        if (rc == 0 && cut != UINT64_MAX) {
            /* Half an entry of ours that a crash left: away with it. */
            what = "removing a delivery a crash cut short";
            rc = ftruncate(fd, (off_t)cut) < 0 ? -errno : fsio_datasync(fd);
            if (rc == 0)
                size = cut;
        }
    }
    if (rc < 0) {
        local_write_fail(res, what, -rc);
        goto out;
    }
    /* A separator must start a line; a file that does not end with one
     * (another writer's fault) gets its line end first. */
    struct mbox_out o = {fd, (off_t)size, 0};
    char last = '\n';
    if (size > 0 && fsio_pread_all(fd, &last, 1, (off_t)(size - 1)) < 0)
        last = '\n';
    what = "writing";
    if (last != '\n') {
        rc = fsio_pwrite_all(fd, "\n", 1, o.off);
        o.off++;
    }
    if (rc == 0)
        rc = mbox_render(msg, clock_wall(), &o, &what);
    if (rc == 0) {
        what = "fsync";
        rc = fsio_datasync(fd);
    }
    if (rc == 0 && created) {
        what = "syncing the mailbox's directory";
        rc = mbox_sync_parent(path);
    }
    if (rc < 0) {
        /* Take back every octet of this attempt: on a full disk a
         * truncation still works, and readers see the mailbox as it was. */
        if (ftruncate(fd, (off_t)size) == 0)
            (void)fsio_datasync(fd);
        local_write_fail(res, what, -rc);
        goto out;
    }
    result_set(res, RESULT_OK, 250, "2.0.0", "delivered to mbox at offset %llu",
               (unsigned long long)(o.off - (off_t)o.count));
out:
    mbox_lock_drop(&lk);
    close(fd);
    return rc;
}
