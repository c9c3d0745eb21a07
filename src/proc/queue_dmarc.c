/* queue_dmarc.c: see queue_dmarc.h. */
#include "proc/queue_dmarc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "mailauth/dmarc_report.h"
#include "proc/metrics_shm.h"

struct queue_dmarc {
    int dirfd;
    int fd;            /* the open day's file, or -1 */
    long long day;     /* its day */
    uint64_t size;     /* its size */
    long long warned;  /* the day a failure was last logged for (-1: none) */
};

enum queue_dmarc_outcome { QD_RECORDED, QD_REFUSED, QD_FAILED };

/* Counted in the queue's shared counters (without them, when the parent
 * could not map the region, these are not counted). */
static void queue_dmarc_count(enum queue_dmarc_outcome what)
{
    struct qmetrics *m = metrics_qshm;
    if (m == NULL)
        return;
    if (what == QD_RECORDED)
        m->dmarc_rows_recorded++;
    else if (what == QD_REFUSED)
        m->dmarc_rows_refused++;
    else
        m->dmarc_rows_failed++;
}

int queue_dmarc_dir_path(const struct config *cfg, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/dmarc", cfg->spool_dir);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

long long queue_dmarc_day(long long t)
{
    /* Epoch time has no leap seconds: every UTC day is 86400 of them. */
    long long r = t % QUEUE_DMARC_DAY_SECONDS;
    return t - (r < 0 ? r + QUEUE_DMARC_DAY_SECONDS : r);
}

void queue_dmarc_day_name(long long day, char out[QUEUE_DMARC_NAME_MAX])
{
    time_t t = (time_t)day;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, QUEUE_DMARC_NAME_MAX, "%Y-%m-%d.rows", &tm) != QUEUE_DMARC_NAME_MAX - 1)
        snprintf(out, QUEUE_DMARC_NAME_MAX, "invalid.rows");
}

int queue_dmarc_day_parse(const char *text, long long *day)
{
    static const char shape[] = "DDDD-DD-DD";
    if (strlen(text) != sizeof shape - 1)
        return -EINVAL;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'D' ? text[i] < '0' || text[i] > '9' : text[i] != shape[i])
            return -EINVAL;
    struct tm tm = {0};
    tm.tm_year = atoi(text) - 1900;
    tm.tm_mon = atoi(text + 5) - 1;
    tm.tm_mday = atoi(text + 8);
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return -EINVAL;
    /* timegm() normalises 2024-02-30 into March: such a date is refused. */
    char back[QUEUE_DMARC_NAME_MAX];
    queue_dmarc_day_name((long long)t, back);
    if (strncmp(back, text, sizeof shape - 1) != 0)
        return -EINVAL;
    *day = (long long)t;
    return 0;
}

struct queue_dmarc *queue_dmarc_new(const struct config *cfg)
{
    char dir[PATH_MAX];
    if (queue_dmarc_dir_path(cfg, dir, sizeof dir) < 0) {
        log_err("dmarc: spool_dir path too long");
        return NULL;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_err("dmarc: cannot create %s: %s; no report rows are kept", dir, strerror(errno));
        return NULL;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        log_err("dmarc: cannot open %s: %s; no report rows are kept", dir, strerror(errno));
        return NULL;
    }
    struct queue_dmarc *d = xcalloc(1, sizeof *d);
    d->dirfd = dfd;
    d->fd = -1;
    d->warned = -1;
    return d;
}

void queue_dmarc_free(struct queue_dmarc *d)
{
    if (d == NULL)
        return;
    if (d->fd >= 0)
        close(d->fd);
    close(d->dirfd);
    free(d);
}

/* Opens the file of `day` for appending. A file whose last line was torn
 * (a crash in the middle of a write) gets its LF first, so the torn line
 * stays alone and only it is refused by the reader. 0 or -errno. */
static int queue_dmarc_open(struct queue_dmarc *d, long long day)
{
    if (d->fd >= 0 && d->day == day)
        return 0;
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
        /* A new day: what is past keeping goes. */
        (void)queue_dmarc_prune(d->dirfd, day, QUEUE_DMARC_KEEP_DAYS);
    }
    char name[QUEUE_DMARC_NAME_MAX];
    queue_dmarc_day_name(day, name);
    int fd = openat(d->dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -EINVAL;
    if (rc == 0 && st.st_size > 0) {
        char last;
        int fdr = openat(d->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        rc = fdr < 0 ? -errno : fsio_pread_all(fdr, &last, 1, st.st_size - 1);
        if (fdr >= 0)
            close(fdr);
        if (rc == 0 && last != '\n') {
            rc = fsio_write_all(fd, "\n", 1);
            st.st_size++;
        }
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    d->fd = fd;
    d->day = day;
    d->size = (uint64_t)st.st_size;
    return 0;
}

static void queue_dmarc_failed(struct queue_dmarc *d, long long day, const char *why)
{
    queue_dmarc_count(QD_FAILED);
    if (d && d->warned == day)
        return;
    if (d)
        d->warned = day;
    char name[QUEUE_DMARC_NAME_MAX];
    queue_dmarc_day_name(day, name);
    log_warn("dmarc: report rows for %s not kept: %s (said once a day)", name, why);
}

void queue_dmarc_row(struct queue_dmarc *d, const char *line, size_t n, long long now)
{
    long long day = queue_dmarc_day(now);
    struct dmarc_report_row *row = xmalloc(sizeof *row);
    struct buf out = BUF_INIT;
    if (dmarc_report_row_parse(row, line, n) < 0) {
        queue_dmarc_count(QD_REFUSED);
        log_err("ipc: malformed DMARC report row from the smtp process");
        goto out;
    }
    if (d == NULL) {
        queue_dmarc_failed(d, day, "no dmarc directory");
        goto out;
    }
    row->time = now;
    dmarc_report_row_format(row, &out);
    int rc = queue_dmarc_open(d, day);
    if (rc < 0) {
        queue_dmarc_failed(d, day, strerror(-rc));
        goto out;
    }
    if (d->size + out.len > QUEUE_DMARC_DAY_MAX) {
        queue_dmarc_failed(d, day, "the day's file is at its size limit");
        goto out;
    }
    /* O_APPEND: one write puts the line at the end, whole. */
    rc = fsio_write_all(d->fd, out.data, out.len);
    if (rc < 0) {
        close(d->fd); /* opened again (with a fresh line end) next time */
        d->fd = -1;
        queue_dmarc_failed(d, day, strerror(-rc));
        goto out;
    }
    d->size += out.len;
    queue_dmarc_count(QD_RECORDED);
out:
    buf_free(&out);
    free(row);
}

int queue_dmarc_prune(int dirfd, long long today, unsigned keep_days)
{
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
    if (dir == NULL) {
        int err = -errno;
        if (dfd >= 0)
            close(dfd);
        return err;
    }
    long long oldest = today - (long long)keep_days * QUEUE_DMARC_DAY_SECONDS;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len != QUEUE_DMARC_NAME_MAX - 1 || strcmp(de->d_name + 10, ".rows") != 0)
            continue;
        char date[11];
        memcpy(date, de->d_name, 10);
        date[10] = '\0';
        long long day;
        if (queue_dmarc_day_parse(date, &day) < 0 || day >= oldest)
            continue;
        if (unlinkat(dirfd, de->d_name, 0) < 0) {
            log_warn("dmarc: cannot remove %s: %s", de->d_name, strerror(errno));
            continue;
        }
        log_info("dmarc: removed %s (report rows are kept %u days)", de->d_name, keep_days);
        removed++;
    }
    closedir(dir);
    return removed;
}
