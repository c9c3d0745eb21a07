/* maildir.c: delivery into a Maildir (https://cr.yp.to/proto/maildir.html).
 *
 * The file is written under tmp/ with a name no other delivery can pick,
 * fsync'd, then renamed into new/ and new/ fsync'd (base/fsio does both):
 * a reader sees either nothing or the whole message, and once we report
 * success the message survives a crash. Several delivery threads run
 * this at once, so there is no static buffer here; the only shared state
 * is an atomic counter. */
#include "deliver/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fsio.h"
#include "base/sizes.h"
#include "base/xmalloc.h"

/* Makes names unique within one process within one microsecond. */
static atomic_ulong maildir_counter;

void maildir_unique_name(char *out, size_t outsize, const char *host)
{
    if (outsize == 0)
        return;
    uint64_t us = clock_wall_us();
    unsigned long n = atomic_fetch_add(&maildir_counter, 1) + 1;
    int w = snprintf(out, outsize, "%llu.M%06luP%ldQ%lu.", (unsigned long long)(us / 1000000),
                     (unsigned long)(us % 1000000), (long)getpid(), n);
    if (w < 0 || (size_t)w >= outsize)
        return; /* cut by snprintf, still NUL-terminated */
    size_t len = (size_t)w;
    /* The spec: '/' and ':' in the host name become \057 and \072, since
     * '/' cannot be in a file name and ':' starts the info part. */
    for (const char *h = host ? host : ""; *h; h++) {
        const char *piece = *h == '/' ? "\\057" : *h == ':' ? "\\072" : NULL;
        size_t plen = piece ? 4 : 1;
        if (len + plen >= outsize)
            break;
        if (piece)
            memcpy(out + len, piece, plen);
        else
            out[len] = *h;
        len += plen;
    }
    out[len] = '\0';
}

/* Maps a failure to a result (RFC 3463): a full file system is the mail
 * system's (452 4.3.1: every mailbox on it is refused), a quota the
 * mailbox's (452 4.2.2), anything else a local error (4.3.0). All
 * temporary: each may heal, and the queue retries. */
static void maildir_fail(struct result *res, const char *what, int err)
{
    char ebuf[128];
    const char *es = strerror_r(err, ebuf, sizeof ebuf);
    if (err == ENOSPC)
        result_set(res, RESULT_TEMPFAIL, 452, "4.3.1", "mail system full: %s: %s", what, es);
    else if (err == EDQUOT)
        result_set(res, RESULT_TEMPFAIL, 452, "4.2.2", "mailbox full: %s: %s", what, es);
    else if (err == EACCES || err == EPERM)
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "permission denied: %s: %s", what, es);
    else
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "maildir I/O error: %s: %s", what, es);
}

/* Creates the Maildir and its parents (0700), then the parent's entry is
 * made durable so the new directories survive a crash with the mail. */
static int maildir_create(const char *path)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    struct buf p = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < 3 && rc == 0; i++) {
        buf_reset(&p);
        buf_printf(&p, "%s/%s", path, subs[i]);
        rc = fsio_mkdirs(p.data, 0700);
    }
    if (rc == 0)
        rc = fsio_sync_dir(path);
    if (rc == 0) {
        char *parent = xstrdup(path);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            rc = fsio_sync_dir(parent);
        }
        free(parent);
    }
    buf_free(&p);
    return rc;
}

/* Header text from an envelope address: no line break may slip in. The
 * addresses were parsed already; this is a second line of defence. */
static void maildir_put_addr(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        buf_putc(b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
}

/* Converts CRLF to LF from in[0..n) into out (room for n + 1 bytes).
 * *cr carries a CR that ended the previous chunk: it is dropped if this
 * chunk starts with LF, and written out otherwise. Returns bytes out. */
static size_t maildir_crlf(const char *in, size_t n, char *out, int *cr)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (*cr) {
            *cr = 0;
            if (c != '\n')
                out[o++] = '\r';
        }
        if (c == '\r') {
            *cr = 1;
            continue;
        }
        out[o++] = c;
    }
    return o;
}

/* Writes the headers and the body to fd. Returns 0 or -errno, with *what
 * naming the step that failed. */
static int maildir_write(int fd, const struct maildir_msg *msg, const char **what)
{
    struct buf head = BUF_INIT;
    buf_puts(&head, "Return-Path: <");
    maildir_put_addr(&head, msg->return_path ? msg->return_path : "");
    buf_puts(&head, ">\nDelivered-To: ");
    maildir_put_addr(&head, msg->delivered_to ? msg->delivered_to : "");
    buf_putc(&head, '\n');

    char *in = xmalloc(MAILDIR_READ_CHUNK);
    /* The headers go out with the first chunk of the body: one write. */
    size_t outcap = head.len + MAILDIR_READ_CHUNK + 1;
    char *out = xmalloc(outcap);
    size_t olen = head.len;
    memcpy(out, head.data, head.len);
    buf_free(&head);

    int rc = 0, cr = 0;
    uint64_t left = msg->body_len;
    off_t off = msg->body_off;
    while (left) {
        size_t n = left < MAILDIR_READ_CHUNK ? (size_t)left : MAILDIR_READ_CHUNK;
        rc = fsio_pread_all(msg->body_fd, in, n, off);
        if (rc < 0) {
            *what = "reading the message";
            goto out;
        }
        olen += maildir_crlf(in, n, out + olen, &cr);
        rc = fsio_write_all(fd, out, olen);
        if (rc < 0) {
            *what = "writing";
            goto out;
        }
        olen = 0;
        off += (off_t)n;
        left -= n;
    }
    if (cr) /* a CR at the very end has no LF to pair with: keep it */
        out[olen++] = '\r';
    if (olen) {
        rc = fsio_write_all(fd, out, olen);
        if (rc < 0)
            *what = "writing";
    }
out:
    free(in);
    free(out);
    return rc;
}

int maildir_deliver(const char *path, const struct maildir_msg *msg, struct result *res)
{
    char host[DNS_NAME_MAX];
    if (gethostname(host, sizeof host) < 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';

    struct buf tmp = BUF_INIT, dst = BUF_INIT, newdir = BUF_INIT;
    char name[MAILDIR_NAME_MAX];
    const char *what = "creating the file in tmp/";
    int fd = -1, rc = 0, created = 0;
    buf_printf(&newdir, "%s/new", path);

    /* O_EXCL: a name that exists (which a correct unique name never does)
     * is never overwritten; a fresh name is tried instead. */
    for (int tries = 0; fd < 0 && tries < 5; tries++) {
        maildir_unique_name(name, sizeof name, host);
        buf_reset(&tmp);
        buf_printf(&tmp, "%s/tmp/%s", path, name);
        fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            break;
        rc = -errno;
        if (rc == -ENOENT && !created) {
            /* First delivery to this mailbox: make it, then try again. */
            created = 1;
            rc = maildir_create(path);
            if (rc < 0) {
                what = "creating the Maildir";
                goto fail_noname;
            }
            continue;
        }
        if (rc != -EEXIST)
            goto fail_noname;
    }
    if (fd < 0) {
        if (rc == 0) /* the Maildir was made on the last try */
            rc = -EEXIST;
        goto fail_noname;
    }

    rc = maildir_write(fd, msg, &what);
    if (rc == 0) {
        rc = fsio_sync(fd);
        what = "fsync";
    }
    if (close(fd) < 0 && rc == 0) {
        rc = -errno;
        what = "close";
    }
    fd = -1;
    if (rc < 0)
        goto fail;

    buf_printf(&dst, "%s/new/%s", path, name);
    rc = fsio_rename_durable(tmp.data, dst.data, newdir.data);
    if (rc == -ENOENT && access(newdir.data, F_OK) < 0 && errno == ENOENT) {
        /* tmp/ is there but new/ is not: an earlier creation stopped
         * half way (a full disk), and would never heal by itself. */
        rc = maildir_create(path);
        if (rc == 0)
            rc = fsio_rename_durable(tmp.data, dst.data, newdir.data);
    }
    if (rc < 0) {
        what = "moving into new/";
        /* If the rename happened but new/ could not be synced, the mail
         * is not known to be durable: take it back so the queue's retry
         * cannot deliver it twice. */
        if (access(tmp.data, F_OK) < 0 && errno == ENOENT)
            unlink(dst.data);
        goto fail;
    }
    result_set(res, RESULT_OK, 250, "2.0.0", "delivered to maildir as %s", name);
    buf_free(&tmp);
    buf_free(&dst);
    buf_free(&newdir);
    return 0;

fail:
    unlink(tmp.data);
fail_noname:
    maildir_fail(res, what, -rc);
    buf_free(&tmp);
    buf_free(&dst);
    buf_free(&newdir);
    return rc;
}
