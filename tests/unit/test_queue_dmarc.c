/* Unit tests for proc/queue_dmarc: the day's file names, the rows the
 * queue appends (checked, re-stamped with its clock, refused when
 * malformed), a torn last line kept alone after a reopen, the day's size
 * limit, and the removal of old files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "check.h"
#include "config_fixture.h"
#include "conf/config.h"
#include "mailauth/dmarc_report.h"
#include "proc/metrics_shm.h"
#include "proc/queue_dmarc.h"
#include "queue/queue_metrics.h"

static void test_days(void)
{
    long long day;
    CHECK_EQ_INT(queue_dmarc_day_parse("2024-02-29", &day), 0);
    CHECK_EQ_INT(day, 1709164800);
    char name[QUEUE_DMARC_NAME_MAX];
    queue_dmarc_day_name(day, name);
    CHECK_EQ_STR(name, "2024-02-29.rows");
    CHECK_EQ_INT(queue_dmarc_day(day + 86399), day);
    CHECK_EQ_INT(queue_dmarc_day(day + 86400), day + 86400);
    CHECK_EQ_INT(queue_dmarc_day_parse("1970-01-01", &day), 0);
    CHECK_EQ_INT(day, 0);
    static const char *const bad[] = {"2023-02-29", "2024-13-01", "2024-00-10", "2024-1-01",
                                      "24-01-01",   "2024-01-01x", "",          "yesterday",
                                      "1969-12-31", "2024/01/01", "2024-01-32", " 2024-01-01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(queue_dmarc_day_parse(bad[i], &day), -EINVAL);
}

/* A row's line (without LF) from the report module's own fill. */
static void row_line(struct buf *out, long long t)
{
    struct dmarc_domain d;
    memset(&d, 0, sizeof d);
    strcpy(d.from, "example.com");
    strcpy(d.policy_domain, "example.com");
    d.have_record = true;
    const char *rec = "v=DMARC1; p=none; rua=mailto:r@example.com";
    CHECK_EQ_INT(dmarc_record_parse(&d.rec, rec, strlen(rec), NULL), 0);
    d.result = DMARC_PASS;
    d.spf_aligned = true;
    struct dmarc_report_msg m = {t, "192.0.2.1", "example.com", NULL, SPF_PASS, "example.com",
                                 false, NULL, 0, DMARC_POLICY_NONE, 0};
    struct dmarc_report_row row;
    CHECK_EQ_INT(dmarc_report_row_fill(&row, &d, &m), 0);
    buf_reset(out);
    dmarc_report_row_format(&row, out);
    out->len--; /* as IPC_DMARC_ROW carries it */
}

static size_t read_file(const char *path, struct buf *out)
{
    buf_reset(out);
    char *p = NULL;
    size_t n = 0;
    if (fsio_read_file(path, 1 << 30, &p, &n) < 0)
        return 0;
    buf_append(out, p, n);
    free(p);
    return n;
}

static void test_rows(void)
{
    static struct qmetrics qm;
    metrics_qshm = &qm;
    struct config cfg;
    config_default(&cfg);
    free(cfg.spool_dir);
    cfg.spool_dir = strdup(tmpdir);
    long long day = 1709164800, now = day + 3600;
    struct queue_dmarc *d = queue_dmarc_new(&cfg);
    CHECK(d != NULL);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/dmarc/2024-02-29.rows", tmpdir);
    struct buf line = BUF_INIT, file = BUF_INIT;
    row_line(&line, 12345); /* the smtp process's time is not believed */
    queue_dmarc_row(d, line.data, line.len, now);
    queue_dmarc_row(d, line.data, line.len, now + 1);
    queue_dmarc_row(d, "dmarc1\tjunk", 11, now + 2);
    queue_dmarc_row(d, line.data, line.len - 3, now + 3); /* a field cut short */
    CHECK_EQ_INT(qm.dmarc_rows_recorded, 2);
    CHECK_EQ_INT(qm.dmarc_rows_refused, 2);
    read_file(path, &file);
    struct dmarc_report_agg *a = dmarc_report_agg_new();
    struct dmarc_report_reader r;
    dmarc_report_reader_init(&r, a, day, day + 86400);
    dmarc_report_reader_feed(&r, file.data, file.len);
    dmarc_report_reader_end(&r);
    CHECK_EQ_INT(r.rows, 2);
    CHECK_EQ_INT(r.malformed, 0);
    CHECK_EQ_INT(dmarc_report_agg_policy(a, 0)->time, now + 1);
    dmarc_report_reader_free(&r);
    dmarc_report_agg_free(a);
    struct stat st;
    CHECK_EQ_INT(stat(path, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    queue_dmarc_free(d);

    /* A torn last line (a crash mid-write): after a reopen the next row
     * starts a line of its own. */
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_EQ_INT(fsio_write_all(fd, line.data, 20), 0);
    close(fd);
    d = queue_dmarc_new(&cfg);
    queue_dmarc_row(d, line.data, line.len, now + 4);
    read_file(path, &file);
    a = dmarc_report_agg_new();
    dmarc_report_reader_init(&r, a, day, day + 86400);
    dmarc_report_reader_feed(&r, file.data, file.len);
    dmarc_report_reader_end(&r);
    CHECK_EQ_INT(r.rows, 3);
    CHECK_EQ_INT(r.malformed, 1);
    dmarc_report_reader_free(&r);
    dmarc_report_agg_free(a);

    /* The next day's file, and the day's size limit (a sparse file at
     * the limit already). */
    char next[PATH_MAX + 64];
    snprintf(next, sizeof next, "%s/dmarc/2024-03-01.rows", tmpdir);
    fd = open(next, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ_INT(ftruncate(fd, (off_t)QUEUE_DMARC_DAY_MAX - 10), 0);
    CHECK_EQ_INT(pwrite(fd, "\n", 1, (off_t)QUEUE_DMARC_DAY_MAX - 11), 1);
    close(fd);
    uint64_t failed = qm.dmarc_rows_failed;
    queue_dmarc_row(d, line.data, line.len, now + 86400);
    CHECK_EQ_INT(qm.dmarc_rows_failed, failed + 1);
    CHECK_EQ_INT(stat(next, &st), 0);
    CHECK_EQ_INT(st.st_size, (off_t)QUEUE_DMARC_DAY_MAX - 10);
    queue_dmarc_free(d);
    CHECK_EQ_INT(unlink(next), 0);

    /* No directory: counted as failed, nothing else. */
    failed = qm.dmarc_rows_failed;
    queue_dmarc_row(NULL, line.data, line.len, now);
    CHECK_EQ_INT(qm.dmarc_rows_failed, failed + 1);
    buf_free(&line);
    buf_free(&file);
    config_free(&cfg);
    metrics_qshm = NULL;
}

static void test_prune(void)
{
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/prune", tmpdir);
    CHECK_EQ_INT(mkdir(dir, 0700), 0);
    static const char *const names[] = {"2024-02-20.rows", "2024-02-21.rows", "2024-02-22.rows",
                                        "2024-02-29.rows", "2024-02-20.txt",  "notes",
                                        "2024-02-30.rows", "2024-02-1.rows"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[PATH_MAX + 128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        CHECK_EQ_INT(fsio_write_file_atomic(p, "", 0, 0600), 0);
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    long long today;
    CHECK_EQ_INT(queue_dmarc_day_parse("2024-02-29", &today), 0);
    /* Kept: 7 days before 02-29 is 02-22, the first day kept. */
    CHECK_EQ_INT(queue_dmarc_prune(dfd, today, 7), 2);
    CHECK_EQ_INT(faccessat(dfd, "2024-02-20.rows", F_OK, 0), -1);
    CHECK_EQ_INT(faccessat(dfd, "2024-02-21.rows", F_OK, 0), -1);
    CHECK_EQ_INT(faccessat(dfd, "2024-02-22.rows", F_OK, 0), 0);
    CHECK_EQ_INT(faccessat(dfd, "2024-02-29.rows", F_OK, 0), 0);
    CHECK_EQ_INT(faccessat(dfd, "2024-02-20.txt", F_OK, 0), 0);
    CHECK_EQ_INT(faccessat(dfd, "notes", F_OK, 0), 0);
    CHECK_EQ_INT(faccessat(dfd, "2024-02-30.rows", F_OK, 0), 0);
    CHECK_EQ_INT(queue_dmarc_prune(dfd, today, 7), 0);
    close(dfd);
}

int main(void)
{
    make_tmpdir();
    test_days();
    test_rows();
    test_prune();
    return check_result("test_queue_dmarc");
}
