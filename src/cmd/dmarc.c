/* dmarc.c: `tern dmarc report`: the DMARC aggregate reports (RFC 7489
 * §7.2) of one finished UTC day, sent to each policy domain's rua.
 *
 *   1. the day's rows (<spool_dir>/dmarc/YYYY-MM-DD.rows, proc/queue_dmarc)
 *      are read and aggregated per policy domain (mailauth/dmarc_report):
 *      one report per domain and day, identical rows counted together;
 *   2. each report's destinations are the mailto: URIs of the newest
 *      record seen for the domain (mailauth/dmarc_rua); one outside the
 *      domain's Organizational Domain is used only when DNS confirms it
 *      (§7.1, dmarc_dns.c), any failure meaning "not sent";
 *   3. the XML is gzipped and sent in a MIME message per destination
 *      (§7.2.1.1, dmarc_send.c) through the pickup directory, as `tern
 *      sendmail` does: queued, retried and signed like any local mail.
 *      A message over the URI's size limit (!10m) is not sent (logged);
 *   4. rows files older than QUEUE_DMARC_KEEP_DAYS are removed.
 *
 * Run once a day (a systemd timer or cron, docs/config.md). Running it
 * again for a day sends the same reports again, under the same
 * Report-ID, which §7.2.1.1 gives receivers to drop duplicates by.
 * --dry-run DIR writes the files and the messages into DIR instead of
 * sending them and removes nothing. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "cmd/cmds.h"
#include "cmd/dmarc_priv.h"
#include "cmd/sendmail_priv.h"
#include "mail/pickup_fmt.h"
#include "mailauth/dmarc_report.h"
#include "mailauth/dmarc_rua.h"
#include "mailauth/psl.h"
#include "proc/queue_dmarc.h"

static void dmarc_usage(FILE *f)
{
    fprintf(f, "usage: tern dmarc report [--day YYYY-MM-DD] [--dry-run DIR] [-c FILE]\n"
               "  sends the DMARC aggregate reports (RFC 7489) of one UTC day (default:\n"
               "  yesterday) to each domain's rua; --dry-run writes them into DIR instead\n");
}

/* One destination of one report. */
struct dmarc_dest {
    size_t report;           /* index in the aggregation */
    struct dmarc_rua_dest d;
    ssize_t confirm;         /* index into the confirmations, -1: not needed */
};

struct dmarc_run {
    const struct config *cfg;
    const char *dry_run; /* a directory, or NULL */
    long long day;
    char from[MAILADDR_PATH_MAX + 1];
    const char *org;
    struct dmarc_report_agg *agg;
    struct dmarc_dest *dest;
    size_t ndest;
    struct dmarc_confirm *confirm;
    size_t nconfirm;
    unsigned written; /* dry run: messages written */
    int status;       /* the exit status so far */
};

/* Reads the day's rows into r->agg. 0, -ENOENT when there is no file,
 * or -errno (logged). */
static int dmarc_read_rows(struct dmarc_run *r, const char *dir)
{
    char name[QUEUE_DMARC_NAME_MAX];
    queue_dmarc_day_name(r->day, name);
    char path[PATH_MAX + QUEUE_DMARC_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        if (err != -ENOENT)
            log_err("dmarc: cannot read %s: %s", path, strerror(-err));
        return err;
    }
    struct dmarc_report_reader rd;
    dmarc_report_reader_init(&rd, r->agg, r->day, r->day + QUEUE_DMARC_DAY_SECONDS);
    char *chunk = xmalloc(65536);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            log_err("dmarc: cannot read %s: %s", path, strerror(-rc));
            break;
        }
        if (n == 0)
            break;
        dmarc_report_reader_feed(&rd, chunk, (size_t)n);
    }
    dmarc_report_reader_end(&rd);
    free(chunk);
    close(fd);
    log_info("dmarc: %s: %llu rows in %zu reports", name, (unsigned long long)rd.rows,
             dmarc_report_agg_count(r->agg));
    if (rd.malformed)
        log_warn("dmarc: %s: %llu malformed lines skipped", name,
                 (unsigned long long)rd.malformed);
    if (rd.outside)
        log_warn("dmarc: %s: %llu rows of another day skipped", name,
                 (unsigned long long)rd.outside);
    if (rd.full)
        log_warn("dmarc: %s: %llu rows past the limits of %d reports or %d records skipped",
                 name, (unsigned long long)rd.full, DMARC_REPORT_DOMAINS_MAX,
                 DMARC_REPORT_RECORDS_MAX);
    dmarc_report_reader_free(&rd);
    return rc;
}

/* A policy domain goes into a file name and header fields: letters,
 * digits, '-', '_' and dots only (what DNS names of mail domains are). */
static bool dmarc_domain_plain(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* The destinations of every report, and the confirmations they need. */
static void dmarc_collect(struct dmarc_run *r)
{
    size_t nrep = dmarc_report_agg_count(r->agg);
    r->dest = xcalloc(nrep * DMARC_URIS_MAX + 1, sizeof *r->dest);
    r->confirm = xcalloc(nrep * DMARC_URIS_MAX + 1, sizeof *r->confirm);
    for (size_t i = 0; i < nrep; i++) {
        const struct dmarc_report_row *pol = dmarc_report_agg_policy(r->agg, i);
        const char *pd = pol->policy_domain;
        if (!dmarc_domain_plain(pd)) {
            log_warn("dmarc: %s: not a plain host name; no report", strutil_esc(pd));
            continue;
        }
        if (pol->nrua == 0)
            log_info("dmarc: %s: no rua in its record; no report", pd);
        for (size_t k = 0; k < pol->nrua; k++) {
            struct dmarc_dest *d = &r->dest[r->ndest];
            int rc = dmarc_rua_mailto(&pol->rua[k], &d->d);
            if (rc < 0) {
                log_warn("dmarc: %s: rua %s %s; not used", pd, strutil_esc(pol->rua[k].uri),
                         rc == -EPROTONOSUPPORT ? "is not a mailto: URI" : "is malformed");
                continue;
            }
            bool dup = false;
            for (size_t j = 0; j < r->ndest; j++)
                if (r->dest[j].report == i && !strutil_casecmp(r->dest[j].d.addr, d->d.addr))
                    dup = true;
            if (dup)
                continue;
            d->report = i;
            d->confirm = -1;
            if (dmarc_rua_external(pd, d->d.domain)) {
                for (size_t j = 0; j < r->nconfirm && d->confirm < 0; j++)
                    if (!strcmp(r->confirm[j].policy_domain, pd) &&
                        !strcmp(r->confirm[j].dest_domain, d->d.domain))
                        d->confirm = (ssize_t)j;
                if (d->confirm < 0) {
                    struct dmarc_confirm *c = &r->confirm[r->nconfirm];
                    strutil_lcpy(c->policy_domain, pd, sizeof c->policy_domain);
                    strutil_lcpy(c->dest_domain, d->d.domain, sizeof c->dest_domain);
                    d->confirm = (ssize_t)r->nconfirm++;
                }
            }
            r->ndest++;
        }
    }
}

/* Writes one file of a dry run into its directory. */
static int dmarc_dry_write(const struct dmarc_run *r, const char *name, const void *p, size_t n)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", r->dry_run, name) >= sizeof path)
        return -ENAMETOOLONG;
    int rc = fsio_write_file_atomic(path, p, n, 0644);
    if (rc < 0)
        log_err("dmarc: cannot write %s: %s", path, strerror(-rc));
    return rc;
}

/* Sends (or, in a dry run, writes) report f to destination d. */
static void dmarc_deliver(struct dmarc_run *r, const struct dmarc_report_file *f,
                          const struct dmarc_dest *d)
{
    const char *pd = f->policy_domain;
    if (d->confirm >= 0 && !r->confirm[d->confirm].confirmed) {
        log_warn("dmarc: %s: not sent to <%s>: %s does not confirm it takes %s's reports "
                 "(RFC 7489 7.1: no v=DMARC1 record at %s._report._dmarc.%s, or no DNS answer)",
                 pd, d->d.addr, d->d.domain, pd, pd, d->d.domain);
        return;
    }
    struct buf msg = BUF_INIT;
    dmarc_send_message(f, r->from, d->d.addr, &msg);
    if (d->d.max_bytes && msg.len > d->d.max_bytes) {
        log_warn("dmarc: %s: not sent to <%s>: the report's message of %zu octets is over "
                 "the rua's limit of %llu", pd, d->d.addr, msg.len,
                 (unsigned long long)d->d.max_bytes);
        buf_free(&msg);
        return;
    }
    if (r->dry_run) {
        char name[sizeof f->name + 32];
        snprintf(name, sizeof name, "%s.%u.eml", f->name, ++r->written);
        if (dmarc_dry_write(r, name, msg.data, msg.len) == 0)
            printf("%s/%s: to <%s>, %zu octets\n", r->dry_run, name, d->d.addr, msg.len);
        else
            r->status = EX_CANTCREAT;
        buf_free(&msg);
        return;
    }
    struct pickup_env pe;
    pickup_env_init(&pe);
    pe.has_from = 1;
    strutil_lcpy(pe.from, r->from, sizeof pe.from);
    pickup_env_add_rcpt(&pe, d->d.addr);
    int rc = sm_pickup_submit(r->cfg, &pe, msg.data, msg.len);
    pickup_env_free(&pe);
    if (rc == 0)
        log_info("dmarc: %s: report of %llu messages (%zu octets) queued for <%s>", pd,
                 f->messages, msg.len, d->d.addr);
    else {
        log_err("dmarc: %s: report for <%s> not queued", pd, d->d.addr);
        r->status = EX_TEMPFAIL;
    }
    buf_free(&msg);
}

/* Builds report i and hands it to each of its destinations. */
static void dmarc_report_one(struct dmarc_run *r, size_t i)
{
    const struct dmarc_report_row *pol = dmarc_report_agg_policy(r->agg, i);
    size_t first = r->ndest;
    for (size_t k = 0; k < r->ndest && first == r->ndest; k++)
        if (r->dest[k].report == i)
            first = k;
    if (first == r->ndest)
        return; /* nowhere to go (said in dmarc_collect) */
    char ymd[16], id[DNS_NAME_MAX * 2 + 32];
    time_t t = (time_t)r->day;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ymd, sizeof ymd, "%Y%m%d", &tm);
    /* The same day and domain give the same id: a report sent twice can
     * be told for what it is (§7.2.1.1). */
    snprintf(id, sizeof id, "%s.%s@%s", ymd, pol->policy_domain, r->cfg->hostname);
    struct dmarc_report_file f = {
        .policy_domain = pol->policy_domain,
        .receiver = r->cfg->hostname,
        .report_id = id,
        .begin = r->day,
        .end = r->day + QUEUE_DMARC_DAY_SECONDS - 1,
        .messages = (unsigned long long)dmarc_report_agg_messages(r->agg, i),
    };
    buf_init(&f.gz);
    struct dmarc_report_meta meta = {r->org, r->from, NULL, id, f.begin, f.end};
    struct buf xml = BUF_INIT;
    int rc = dmarc_report_agg_xml(r->agg, i, &meta, &xml);
    if (rc == 0)
        rc = dmarc_send_pack(&f, xml.data, xml.len);
    if (rc < 0) {
        log_err("dmarc: %s: cannot make the report: %s", pol->policy_domain, strerror(-rc));
        r->status = EX_SOFTWARE;
    } else {
        if (r->dry_run && dmarc_dry_write(r, f.name, f.gz.data, f.gz.len) < 0)
            r->status = EX_CANTCREAT;
        for (size_t k = first; k < r->ndest; k++)
            if (r->dest[k].report == i)
                dmarc_deliver(r, &f, &r->dest[k]);
    }
    buf_free(&xml);
    buf_free(&f.gz);
}

static int dmarc_report_run(struct dmarc_run *r)
{
    char dir[PATH_MAX];
    if (queue_dmarc_dir_path(r->cfg, dir, sizeof dir) < 0) {
        fprintf(stderr, "tern dmarc: spool_dir path too long\n");
        return EX_CONFIG;
    }
    r->agg = dmarc_report_agg_new();
    int rc = dmarc_read_rows(r, dir);
    if (rc == -ENOENT) {
        char name[QUEUE_DMARC_NAME_MAX];
        queue_dmarc_day_name(r->day, name);
        log_info("dmarc: %s: no report rows for that day", name);
    } else if (rc < 0) {
        r->status = EX_NOINPUT;
    }
    if (dmarc_report_agg_count(r->agg)) {
        (void)psl_org_init();
        dmarc_collect(r);
        dmarc_dns_confirm(r->cfg, r->confirm, r->nconfirm);
        for (size_t i = 0; i < dmarc_report_agg_count(r->agg); i++)
            dmarc_report_one(r, i);
    }
    if (r->dry_run == NULL) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)queue_dmarc_prune(dfd, queue_dmarc_day(clock_wall()), QUEUE_DMARC_KEEP_DAYS);
            close(dfd);
        }
    }
    dmarc_report_agg_free(r->agg);
    free(r->dest);
    free(r->confirm);
    return r->status;
}

int cmd_dmarc(int argc, char **argv)
{
    if (argc < 2 || cmd_is_help(argv[1])) {
        dmarc_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EX_USAGE : 0;
    }
    if (strcmp(argv[1], "report") != 0) {
        fprintf(stderr, "tern dmarc: unknown command '%s'\n", argv[1]);
        dmarc_usage(stderr);
        return EX_USAGE;
    }
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"day", required_argument, NULL, 'd'},
        {"dry-run", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *path = NULL, *dayarg = NULL, *dry = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'd':
            dayarg = optarg;
            break;
        case 'n':
            dry = optarg;
            break;
        case 'h':
            dmarc_usage(stdout);
            return 0;
        default:
            dmarc_usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc - 1) {
        dmarc_usage(stderr);
        return EX_USAGE;
    }
    long long today = queue_dmarc_day(clock_wall()), day = today - QUEUE_DMARC_DAY_SECONDS;
    if (dayarg && queue_dmarc_day_parse(dayarg, &day) < 0) {
        fprintf(stderr, "tern dmarc: --day '%s' is not a date YYYY-MM-DD\n",
                strutil_esc(dayarg));
        return EX_USAGE;
    }
    /* Today's rows are still being written: only an explicit --day asks
     * for them (a report of the day so far). */
    if (day > today) {
        fprintf(stderr, "tern dmarc: --day %s has not begun (UTC)\n", dayarg);
        return EX_USAGE;
    }
    struct config cfg;
    config_default(&cfg);
    struct buf err = BUF_INIT;
    if (path && config_load_settings(&cfg, path, &err) < 0) {
        fprintf(stderr, "%s", err.data ? err.data : "tern dmarc: bad configuration\n");
        buf_free(&err);
        config_free(&cfg);
        return EX_CONFIG;
    }
    buf_free(&err);
    log_set_ident("tern/dmarc");
    struct dmarc_run r = {.cfg = &cfg, .dry_run = dry, .day = day};
    r.org = cfg.dmarc_report_org ? cfg.dmarc_report_org : cfg.hostname;
    if (cfg.dmarc_report_from)
        strutil_lcpy(r.from, cfg.dmarc_report_from, sizeof r.from);
    else
        snprintf(r.from, sizeof r.from, "noreply-dmarc@%s", cfg.hostname);
    int rc = dmarc_report_run(&r);
    config_free(&cfg);
    return rc;
}
