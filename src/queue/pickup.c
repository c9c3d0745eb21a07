/* pickup.c: the pickup directory's collector (see pickup.h).
 *
 * Work per loop iteration is bounded (PICKUP_STEP_READ directory entries,
 * PICKUP_STEP_FILES files), and at most PICKUP_INFLIGHT files wait for
 * their commit at once, so a directory holding a million files neither
 * stalls the loop nor fills memory. A file stays in place until its
 * message is durable: a crash in between delivers it twice at worst,
 * never loses it. */
#include "queue/pickup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mail/hdrscan.h"
#include "mail/mailaddr.h"
#include "mail/pickup_fmt.h"

#define PICKUP_STEP_READ 256
#define PICKUP_STEP_FILES 16
#define PICKUP_INFLIGHT 64
/* A "t." file older than this was left by a sendmail that died. */
#define PICKUP_STALE_TMP 86400
/* File names we take: "m." and 32 hex digits; anything up to this long. */
#define PICKUP_FNAME_MAX 64
/* The largest file read when message_size_max is 0 ("unlimited"): pickup
 * reads a file whole, so "unlimited" cannot mean any size here. */
#define PICKUP_SIZE_HARD_MAX (256ull * 1024 * 1024)
/* Files queued but not removable (remembered so as not to queue them again). */
#define PICKUP_STUCK_MAX 256

/* A file whose message waits for its commit. */
struct pickup_job {
    struct pickup *p; /* NULL once the pickup is freed */
    struct pickup_job *next;
    char name[PICKUP_FNAME_MAX + 1];
    dev_t dev; /* the file's identity, for pickup.stuck */
    ino_t ino;
};

struct pickup {
    struct ev_loop *loop;
    struct queue *q;
    const struct config *cfg;
    int dirfd, badfd, ifd;
    DIR *scan;           /* an open scan, or NULL */
    int again;           /* something arrived during the scan: scan again */
    ev_timer_id step_timer, rescan_timer;
    struct pickup_job *jobs; /* in flight */
    size_t njobs;
    /* Files already queued that could not be removed (pickup/ not ours?):
     * never taken twice. Oldest overwritten when full. */
    struct {
        dev_t dev;
        ino_t ino;
    } stuck[PICKUP_STUCK_MAX];
    size_t nstuck;
};

static void pickup_step(struct ev_loop *loop, void *arg);

int pickup_dir_path(const struct config *cfg, char *out, size_t outsize)
{
    int n = snprintf(out, outsize, "%s/pickup", cfg->spool_dir);
    return n < 0 || (size_t)n >= outsize ? -ENAMETOOLONG : 0;
}

/* The domain of addresses made from login names: the first local
 * domain, else the host name (as `tern sendmail` does). */
static const char *pickup_origin(const struct config *cfg)
{
    return cfg->nlocal_domains ? cfg->local_domains[0] : cfg->hostname;
}

/* Sets a file aside (or removes it when that fails) and logs why. */
static void pickup_reject(struct pickup *p, const char *name, long uid, const char *why)
{
    const char *how = "moved to pickup-bad";
    if (fsio_renameat(p->dirfd, name, p->badfd, name) < 0) {
        how = "removed";
        if (unlinkat(p->dirfd, name, 0) < 0 && unlinkat(p->dirfd, name, AT_REMOVEDIR) < 0) {
            log_err("pickup: %s: cannot set aside or remove: %s", strutil_esc(name),
                    strerror(errno));
            return;
        }
    }
    if (uid >= 0)
        log_warn("pickup: %s: uid=%ld: %s; %s", strutil_esc(name), uid, why, how);
    else
        log_warn("pickup: %s: %s; %s", strutil_esc(name), why, how);
}

static int pickup_inflight(const struct pickup *p, const char *name)
{
    for (const struct pickup_job *j = p->jobs; j; j = j->next)
        if (!strcmp(j->name, name))
            return 1;
    return 0;
}

static void pickup_job_unlink(struct pickup *p, struct pickup_job *job)
{
    for (struct pickup_job **jp = &p->jobs; *jp; jp = &(*jp)->next)
        if (*jp == job) {
            *jp = job->next;
            p->njobs--;
            return;
        }
}

static void pickup_kick(struct pickup *p)
{
    if (p->step_timer == 0)
        p->step_timer = ev_timer_add(p->loop, 0, pickup_step, p);
}

static void pickup_committed(void *arg, const char *qid, const struct result *res)
{
    struct pickup_job *job = arg;
    struct pickup *p = job->p;
    if (p == NULL) {
        free(job);
        return;
    }
    pickup_job_unlink(p, job);
    if (res->kind == RESULT_OK) {
        /* Durable now: the file has done its job. */
        if (unlinkat(p->dirfd, job->name, 0) < 0 && errno != ENOENT) {
            log_err("%s: pickup: cannot remove %s: %s (is the pickup directory the daemon "
                    "user's? it is not queued again while tern runs)",
                    qid, strutil_esc(job->name), strerror(errno));
            size_t k = p->nstuck++ % PICKUP_STUCK_MAX;
            p->stuck[k].dev = job->dev;
            p->stuck[k].ino = job->ino;
        }
    } else {
        log_warn("%s: pickup: %s not queued: %d %s %s; will retry", qid,
                 strutil_esc(job->name), res->code, res->enh, res->text);
    }
    free(job);
    pickup_kick(p);
}

/* The submitter's login name, or NULL (then "uid<N>" is used). */
static const char *pickup_login(uid_t uid)
{
    struct passwd *pw = getpwuid(uid);
    return pw ? pw->pw_name : NULL;
}

/* The sender of a file without "from": login@origin, checked. */
static void pickup_default_sender(const struct config *cfg, uid_t uid, const char *login,
                                  char *out, size_t outsize)
{
    char addr[MAILADDR_PATH_MAX + 64];
    struct mailaddr a;
    if (login) {
        snprintf(addr, sizeof addr, "%s@%s", login, pickup_origin(cfg));
        if (mailaddr_parse_mailbox(addr, strlen(addr), 0, &a) == MAILADDR_OK) {
            strutil_lcpy(out, a.text, outsize);
            return;
        }
    }
    snprintf(out, outsize, "uid%lu@%s", (unsigned long)uid, pickup_origin(cfg));
}

/* The full name for a generated From:: -F, else the first GECOS field. */
static void pickup_full_name(const struct pickup_env *pe, uid_t uid, char *out, size_t outsize)
{
    out[0] = '\0';
    if (pe->name[0]) {
        strutil_lcpy(out, pe->name, outsize);
        return;
    }
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_gecos) {
        strutil_lcpy(out, pw->pw_gecos, outsize);
        out[strcspn(out, ",")] = '\0';
    }
}

/* Builds the queued content of a parsed file: Received:, the message's
 * header section, the added fields, the rest. Returns 0, or -EINVAL
 * with *why saying what is wrong (the file is bad). */
static int pickup_content(struct pickup *p, const char *qid, const struct stat *st,
                          const char *login, const struct pickup_env *pe, const char *msg,
                          size_t msglen, const char *sender, struct buf *out, int *has_8bit,
                          const char **why)
{
    const struct config *cfg = p->cfg;
    struct buf text = BUF_INIT;
    struct pickup_text info;
    int rc = -EINVAL;
    pickup_to_crlf(msg, msglen, &text, &info);
    if (cfg->message_size_max && text.len > cfg->message_size_max) {
        *why = "message too big";
        goto out;
    }
    if (cfg->text_line_max && info.line_max > cfg->text_line_max) {
        *why = "line too long";
        goto out;
    }
    if (info.has_nul) {
        *why = "NUL in message";
        goto out;
    }
    struct hdrscan hs;
    hdrscan_init(&hs);
    hdrscan_feed(&hs, text.data, 0, text.len);
    if (hs.received > cfg->received_max) {
        *why = "too many Received: fields (mail loop?)";
        goto out;
    }
    char date[64];
    clock_rfc5322(clock_wall(), date, sizeof date);
    buf_printf(out, "Received: from userid %lu (", (unsigned long)st->st_uid);
    strutil_escape(out, login ? login : "unknown", strlen(login ? login : "unknown"));
    buf_printf(out, ")\r\n\tby %s (tern) id %s; %s\r\n", cfg->hostname, qid, date);
    /* No empty line: the whole message is header; the fields go at its end. */
    size_t at = hs.done ? hs.end : text.len;
    buf_append(out, text.data, at);
    char id_left[ENVELOPE_QID_MAX + 24], name[PICKUP_NAME_MAX + 1]; /* pickup_fmt.h: a full name */
    snprintf(id_left, sizeof id_left, "%s.%llu", qid, (unsigned long long)clock_mono_ms());
    pickup_full_name(pe, st->st_uid, name, sizeof name);
    /* RFC 5322 §3.6.2 wants an author; the null sender cannot be one. */
    const char *from_addr = sender[0] ? sender : NULL;
    struct buf add = BUF_INIT, id = BUF_INIT, esc = BUF_INIT;
    hdrscan_fixes(&hs, id_left, cfg->hostname, name[0] ? name : NULL, from_addr, &add);
    buf_append(out, add.data, add.len);
    buf_append(out, text.data + at, text.len - at);
    /* "QID: message-id=<...>" as for SMTP (Postfix's cleanup line). */
    if (hdrscan_message_id(&hs, &add, &id) == 0)
        strutil_escape_word(&esc, id.data, id.len);
    log_msg_as("tern/cleanup", LOGL_INFO, "%s: message-id=<%s>", qid, esc.data ? esc.data : "");
    buf_free(&add);
    buf_free(&id);
    buf_free(&esc);
    *has_8bit = info.has_8bit;
    rc = 0;
out:
    buf_free(&text);
    return rc;
}

/* Reads a whole regular file (size from st) into a new buffer. */
static int pickup_read(int fd, const struct stat *st, struct buf *out)
{
    size_t n = (size_t)st->st_size;
    char *w = buf_reserve(out, n + 1);
    int rc = fsio_pread_all(fd, w, n, 0);
    if (rc < 0)
        return rc;
    buf_commit(out, n);
    return 0;
}

/* Takes one "m." file. Returns 1 if a commit is now pending, 0 if the
 * file was dealt with (or left for a retry). */
static int pickup_take(struct pickup *p, const char *name)
{
    const struct config *cfg = p->cfg;
    /* O_NOFOLLOW: a symlink is not followed to a file its owner could not
     * read; O_NONBLOCK: opening a FIFO does not wait for a writer. */
    int fd = openat(p->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ELOOP)
            pickup_reject(p, name, -1, "a symbolic link");
        else
            log_warn("pickup: %s: cannot open: %s", strutil_esc(name), strerror(errno));
        return 0;
    }
    struct stat st;
    struct buf file = BUF_INIT, content = BUF_INIT;
    struct pickup_env pe;
    struct envelope env;
    pickup_env_init(&pe);
    envelope_init(&env);
    int pending = 0;
    const char *why = NULL;
    /* The header of a file with rcpt_max recipients, and some. */
    uint64_t hdr_max = (uint64_t)(cfg->rcpt_max + 4) * (PICKUP_LINE_MAX + 1);
    if (fstat(fd, &st) < 0) {
        log_warn("pickup: %s: cannot stat: %s", strutil_esc(name), strerror(errno));
        goto out;
    }
    size_t nstuck = p->nstuck < PICKUP_STUCK_MAX ? p->nstuck : PICKUP_STUCK_MAX;
    for (size_t k = 0; k < nstuck; k++)
        if (p->stuck[k].dev == st.st_dev && p->stuck[k].ino == st.st_ino)
            goto out; /* queued already */
    uint64_t size_max = cfg->message_size_max ? cfg->message_size_max : PICKUP_SIZE_HARD_MAX;
    if (!S_ISREG(st.st_mode)) {
        why = "not a regular file";
    } else if (st.st_nlink != 1) {
        /* A hard link to a file its submitter does not own would make
         * the daemon read it on their behalf. */
        why = "a file with more than one link";
    } else if ((uint64_t)st.st_size > size_max + hdr_max) {
        why = "file too big";
    } else if (pickup_read(fd, &st, &file) < 0) {
        log_warn("pickup: %s: cannot read; will retry", strutil_esc(name));
        goto out;
    } else if (pickup_parse(file.data, file.len, cfg->rcpt_max, cfg->message_size_max, &pe) <
               0) {
        why = "malformed pickup file";
    }
    if (why) {
        pickup_reject(p, name, (long)st.st_uid, why);
        goto out;
    }
    const char *login = pickup_login(st.st_uid);
    char sender[MAILADDR_PATH_MAX + 1];
    if (pe.has_from)
        strutil_lcpy(sender, pe.from, sizeof sender);
    else
        pickup_default_sender(cfg, st.st_uid, login, sender, sizeof sender);
    char qid[ENVELOPE_QID_MAX + 1];
    int bfd = -1;
    int rc = queue_body_open(p->q, qid, &bfd);
    if (rc < 0) {
        log_warn("pickup: %s: cannot create a queue file: %s; will retry", strutil_esc(name),
                 strerror(-rc));
        goto out;
    }
    int has_8bit = 0;
    if (pickup_content(p, qid, &st, login, &pe, file.data + pe.content_off,
                       file.len - pe.content_off, sender, &content, &has_8bit, &why) < 0) {
        close(bfd);
        queue_body_abort(p->q, qid);
        pickup_reject(p, name, (long)st.st_uid, why);
        goto out;
    }
    rc = fsio_write_all(bfd, content.data, content.len);
    close(bfd);
    if (rc < 0) {
        queue_body_abort(p->q, qid);
        log_warn("%s: pickup: cannot write queue file: %s; will retry", qid, strerror(-rc));
        goto out;
    }
    envelope_set(&env.from, sender);
    for (size_t i = 0; i < pe.nrcpts; i++)
        envelope_add_rcpt(&env, pe.rcpts[i], NULL, 0);
    env.body = has_8bit ? ENV_BODY_8BITMIME : ENV_BODY_7BIT;
    env.smtputf8 = pe.utf8;
    env.bounce_unknown = 1; /* sendmail exited 0: an unknown recipient must bounce */
    env.size = content.len;
    env.arrival = clock_wall();
    strutil_lcpy(env.qid, qid, sizeof env.qid);
    log_info("%s: uid=%lu from=<%s>", qid, (unsigned long)st.st_uid, strutil_esc(sender));
    struct pickup_job *job = xcalloc(1, sizeof *job);
    job->p = p;
    strutil_lcpy(job->name, name, sizeof job->name);
    job->dev = st.st_dev;
    job->ino = st.st_ino;
    struct result refused;
    rc = queue_commit(p->q, qid, &env, NULL, 0, pickup_committed, job, &refused);
    if (rc < 0) {
        free(job);
        /* What a client would hear as 5xx will never be queued; a full
         * spool or an I/O error may heal. */
        if (refused.kind == RESULT_PERMFAIL)
            pickup_reject(p, name, (long)st.st_uid, "refused by the queue");
        else
            log_warn("%s: pickup: %s not queued: %d %s %s; will retry", qid, strutil_esc(name),
                     refused.code, refused.enh, refused.text);
        goto out;
    }
    job->next = p->jobs;
    p->jobs = job;
    p->njobs++;
    pending = 1;
out:
    close(fd);
    buf_free(&file);
    buf_free(&content);
    pickup_env_free(&pe);
    envelope_clear(&env);
    return pending;
}

/* Removes a "t." file its writer left behind long ago. */
static void pickup_stale_tmp(struct pickup *p, const char *name)
{
    struct stat st;
    if (fstatat(p->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    /* ctime: its owner can set the mtime into the future, not the ctime. */
    if (st.st_ctime + PICKUP_STALE_TMP < clock_wall())
        pickup_reject(p, name, (long)st.st_uid, "left unfinished by its writer");
}

static void pickup_scan_start(struct pickup *p)
{
    if (p->scan) {
        p->again = 1;
        return;
    }
    int dfd = openat(p->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (p->scan = fdopendir(dfd)) == NULL) {
        log_err("pickup: cannot read the pickup directory: %s", strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return;
    }
    p->again = 0;
    pickup_kick(p);
}

static void pickup_step(struct ev_loop *loop, void *arg)
{
    struct pickup *p = arg;
    p->step_timer = 0;
    if (p->scan == NULL)
        return;
    unsigned nread = 0, ntaken = 0;
    while (nread < PICKUP_STEP_READ && ntaken < PICKUP_STEP_FILES) {
        if (p->njobs >= PICKUP_INFLIGHT)
            return; /* a commit callback kicks the scan on */
        errno = 0;
        struct dirent *de = readdir(p->scan);
        if (de == NULL) {
            closedir(p->scan);
            p->scan = NULL;
            if (p->again)
                pickup_scan_start(p);
            return;
        }
        nread++;
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        if (strlen(n) > PICKUP_FNAME_MAX) {
            pickup_reject(p, n, -1, "unexpected name");
        } else if (!strncmp(n, "m.", 2)) {
            if (!pickup_inflight(p, n)) {
                (void)pickup_take(p, n);
                ntaken++;
            }
        } else if (!strncmp(n, "t.", 2)) {
            pickup_stale_tmp(p, n);
        } else {
            pickup_reject(p, n, -1, "unexpected name");
        }
    }
    pickup_kick(p);
}

static void pickup_on_inotify(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct pickup *p = arg;
    char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int any = 0;
    for (;;) {
        ssize_t n = read(fd, ev, sizeof ev);
        if (n <= 0)
            break;
        any = 1; /* any event (an overflow too) means: look again */
    }
    if (any)
        pickup_scan_start(p);
}

static void pickup_on_rescan(struct ev_loop *loop, void *arg)
{
    struct pickup *p = arg;
    p->rescan_timer = ev_timer_add(loop, PICKUP_RESCAN_MS, pickup_on_rescan, p);
    pickup_scan_start(p);
}

/* mkdir with an exact mode (the umask would take the bits 1733 needs). */
static int pickup_mkdir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (st.st_uid == geteuid() && (st.st_mode & 07777) != mode && chmod(path, mode) < 0)
        return -errno;
    return 0;
}

/* Local users reach pickup/ through spool_dir: it needs search (x) for
 * them, not read. What else is in the spool is 0700 or 0600 and the
 * control socket checks its peer, so this opens nothing else. */
static void pickup_spool_searchable(const char *spool)
{
    struct stat st;
    if (stat(spool, &st) < 0 || (st.st_mode & 0011) == 0011)
        return;
    mode_t mode = (st.st_mode & 07777) | 0011;
    if (st.st_uid != geteuid() || chmod(spool, mode) < 0)
        log_warn("pickup: %s is not searchable by other users: sendmail works only for "
                 "its owner", spool);
    else
        log_info("pickup: %s made searchable (mode %04o) so that sendmail reaches pickup/",
                 spool, (unsigned)mode);
}

struct pickup *pickup_new(struct ev_loop *loop, struct queue *q, const struct config *cfg)
{
    char dir[PATH_MAX], bad[PATH_MAX];
    if (pickup_dir_path(cfg, dir, sizeof dir) < 0 ||
        (size_t)snprintf(bad, sizeof bad, "%s-bad", dir) >= sizeof bad) {
        log_err("pickup: spool_dir path too long");
        return NULL;
    }
    int rc = pickup_mkdir(dir, PICKUP_DIR_MODE);
    if (rc == 0)
        rc = pickup_mkdir(bad, 0700);
    if (rc < 0) {
        log_err("pickup: cannot create %s: %s", dir, strerror(-rc));
        return NULL;
    }
    pickup_spool_searchable(cfg->spool_dir);
    struct pickup *p = xcalloc(1, sizeof *p);
    p->loop = loop;
    p->q = q;
    p->cfg = cfg;
    p->ifd = -1;
    p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    p->badfd = open(bad, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->dirfd < 0 || p->badfd < 0) {
        log_err("pickup: cannot open %s: %s", dir, strerror(errno));
        pickup_free(p);
        return NULL;
    }
    p->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (p->ifd < 0 || inotify_add_watch(p->ifd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0 ||
        ev_io_add(loop, p->ifd, EV_READ, pickup_on_inotify, p) < 0) {
        /* The periodic rescan still collects everything, only later. */
        log_warn("pickup: no inotify watch (%s); rescanning every %d s", strerror(errno),
                 PICKUP_RESCAN_MS / 1000);
        if (p->ifd >= 0)
            close(p->ifd);
        p->ifd = -1;
    }
    p->rescan_timer = ev_timer_add(loop, PICKUP_RESCAN_MS, pickup_on_rescan, p);
    pickup_scan_start(p);
    return p;
}

void pickup_free(struct pickup *p)
{
    if (p == NULL)
        return;
    for (struct pickup_job *j = p->jobs; j; j = j->next)
        j->p = NULL; /* freed by its callback, if it comes */
    ev_timer_cancel(p->loop, p->step_timer);
    ev_timer_cancel(p->loop, p->rescan_timer);
    if (p->ifd >= 0) {
        ev_io_del(p->loop, p->ifd);
        close(p->ifd);
    }
    if (p->scan)
        closedir(p->scan);
    if (p->dirfd >= 0)
        close(p->dirfd);
    if (p->badfd >= 0)
        close(p->badfd);
    free(p);
}

void pickup_set_config(struct pickup *p, const struct config *cfg)
{
    p->cfg = cfg;
}
