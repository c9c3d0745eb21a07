/* Unit tests for queue/queue_metrics (the histogram, the bounded table of
 * errors per domain) and proc/metrics (the exposition: escaping, the
 * "other" series, cumulative buckets). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "proc/metrics.h"
#include "proc/metrics_shm.h"
#include "queue/queue_metrics.h"

/* The value of the sample line that starts with `series ` in text, or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static size_t count_lines(const char *text, const char *prefix)
{
    size_t c = 0, n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0)
            c++;
    return c;
}

static void test_histogram(void)
{
    struct qmetrics *m = calloc(1, sizeof *m);
    qmetrics_outcome(m, RESULT_OK, "a@x.test", 5000);          /* 0.005 s */
    qmetrics_outcome(m, RESULT_OK, "a@x.test", 10000);         /* 0.01 s: le is inclusive */
    qmetrics_outcome(m, RESULT_OK, "a@x.test", 2000000);       /* 2 s */
    qmetrics_outcome(m, RESULT_OK, "a@x.test", 7200000000ull); /* 2 h: +Inf only */
    CHECK_EQ_INT(m->delivered, 4);
    CHECK_EQ_INT(m->latency_count, 4);
    CHECK_EQ_INT(m->ndomains, 0); /* successes are not errors */
    struct buf b = BUF_INIT;
    metrics_render(&b, NULL, m, 0);
    buf_putc(&b, '\0');
    CHECK(sample(b.data, "tern_delivery_latency_seconds_bucket{le=\"0.01\"}") == 2);
    CHECK(sample(b.data, "tern_delivery_latency_seconds_bucket{le=\"1\"}") == 2);
    CHECK(sample(b.data, "tern_delivery_latency_seconds_bucket{le=\"2.5\"}") == 3);
    CHECK(sample(b.data, "tern_delivery_latency_seconds_bucket{le=\"3600\"}") == 3);
    CHECK(sample(b.data, "tern_delivery_latency_seconds_bucket{le=\"+Inf\"}") == 4);
    CHECK(sample(b.data, "tern_delivery_latency_seconds_count") == 4);
    CHECK(sample(b.data, "tern_delivery_latency_seconds_sum") == 7202.015);
    CHECK(sample(b.data, "tern_recipients_delivered_total") == 4);
    CHECK_EQ_INT(count_lines(b.data, "tern_delivery_latency_seconds_bucket"), QMETRICS_BUCKETS + 1);
    buf_free(&b);
    free(m);
}

static void test_domains(void)
{
    struct qmetrics *m = calloc(1, sizeof *m);
    qmetrics_outcome(m, RESULT_TEMPFAIL, "u@Down.Test", 0);
    qmetrics_outcome(m, RESULT_TEMPFAIL, "v@down.test", 0);
    qmetrics_outcome(m, RESULT_PERMFAIL, "w@down.test", 0);
    /* Label values are escaped: a quote, a backslash (address literals
     * and quoted local parts make odd text possible). */
    qmetrics_outcome(m, RESULT_PERMFAIL, "x@we\"ird\\", 0);
    qmetrics_outcome(m, RESULT_PERMFAIL, "postmaster", 0); /* no domain */
    qmetrics_outcome(m, RESULT_TEMPFAIL, "a@other", 0);    /* joins the overflow series */
    CHECK_EQ_INT(m->ndomains, 3);
    CHECK_EQ_INT(m->deferred, 3);
    CHECK_EQ_INT(m->bounced, 3);
    struct buf b = BUF_INIT;
    metrics_render(&b, NULL, m, 0);
    buf_putc(&b, '\0');
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"down.test\",result=\"deferred\"}") == 2);
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"down.test\",result=\"bounced\"}") == 1);
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"we\\\"ird\\\\\",result=\"bounced\"}") ==
          1);
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"none\",result=\"bounced\"}") == 1);
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"other\",result=\"deferred\"}") == 1);
    CHECK_EQ_INT(count_lines(b.data, "tern_delivery_errors_total{domain=\"other\""), 1);
    buf_free(&b);

    /* The table stops at QMETRICS_DOMAINS_MAX; the rest is "other". */
    char addr[64];
    for (int i = 0; i < QMETRICS_DOMAINS_MAX + 200; i++) {
        snprintf(addr, sizeof addr, "u@d%d.test", i);
        qmetrics_outcome(m, RESULT_PERMFAIL, addr, 0);
    }
    CHECK_EQ_INT(m->ndomains, QMETRICS_DOMAINS_MAX);
    /* 3 domains were there before: 997 new ones got a series. */
    CHECK_EQ_INT(m->other_bounced, 203);
    /* A domain already in the table keeps counting in its own series. */
    qmetrics_outcome(m, RESULT_PERMFAIL, "z@down.test", 0);
    metrics_render(&b, NULL, m, 0);
    buf_putc(&b, '\0');
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"down.test\",result=\"bounced\"}") == 2);
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"other\",result=\"bounced\"}") == 203);
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"d10.test\",result=\"bounced\"}") == 1);
    CHECK(sample(b.data, "tern_delivery_errors_total{domain=\"d1100.test\",result=\"bounced\"}") ==
          -1);
    CHECK_EQ_INT(count_lines(b.data, "tern_delivery_errors_total{"), QMETRICS_DOMAINS_MAX + 1 + 2);
    buf_free(&b);
    free(m);
}

static void test_net_and_format(void)
{
    /* Before the parent maps the region, counting goes to a private one. */
    metrics_inc(&metrics_shm->connections[metrics_role(CONF_ROLE_SUBMISSION)]);
    metrics_inc(&metrics_shm->sessions[metrics_role(CONF_ROLE_SMTPS)][1][1]);
    metrics_inc(&metrics_shm->auth[metrics_role((enum conf_role)7)][METRICS_AUTH_BLOCKED]);
    struct buf b = BUF_INIT;
    metrics_render(&b, NULL, NULL, 1000000);
    buf_putc(&b, '\0');
    CHECK(sample(b.data, "tern_smtp_connections_total{role=\"submission\"}") == 1);
    CHECK(sample(b.data, "tern_smtp_sessions_total{role=\"smtps\",tls=\"yes\",auth=\"yes\"}") == 1);
    CHECK(sample(b.data, "tern_smtp_auth_total{role=\"mx\",result=\"blocked\"}") == 1);
    CHECK(sample(b.data, "tern_queue_messages") == 0);
    CHECK(sample(b.data, "tern_queue_oldest_age_seconds") == 0);
    /* Every family: HELP then TYPE, and the text ends with a newline. */
    CHECK_EQ_INT(count_lines(b.data, "# HELP "), count_lines(b.data, "# TYPE "));
    CHECK(b.len >= 2 && b.data[b.len - 2] == '\n');
    buf_free(&b);

    struct buf l = BUF_INIT;
    metrics_put_label(&l, "a\"b\\c\nd");
    CHECK_EQ_MEM(l.data, l.len, "a\\\"b\\\\c\\nd", 10);
    buf_free(&l);
}

/* DMARC report rows: the queue's outcomes and the smtp process's drops
 * in one family. */
static void test_dmarc_rows(void)
{
    struct qmetrics *m = calloc(1, sizeof *m);
    m->dmarc_rows_recorded = 7;
    m->dmarc_rows_refused = 2;
    m->dmarc_rows_failed = 1;
    uint64_t dropped = metrics_get(&metrics_shm->dmarc_rows_dropped);
    metrics_inc(&metrics_shm->dmarc_rows_dropped);
    struct buf b = BUF_INIT;
    metrics_render(&b, NULL, m, 0);
    buf_putc(&b, '\0');
    CHECK(sample(b.data, "tern_dmarc_rows_total{result=\"recorded\"}") == 7);
    CHECK(sample(b.data, "tern_dmarc_rows_total{result=\"refused\"}") == 2);
    CHECK(sample(b.data, "tern_dmarc_rows_total{result=\"failed\"}") == 1);
    CHECK(sample(b.data, "tern_dmarc_rows_total{result=\"dropped\"}") == (double)dropped + 1);
    CHECK_EQ_INT(count_lines(b.data, "# TYPE tern_dmarc_rows_total counter"), 1);
    buf_free(&b);
    free(m);
}

int main(void)
{
    test_histogram();
    test_domains();
    test_net_and_format();
    test_dmarc_rows();
    return check_result("test_metrics");
}
