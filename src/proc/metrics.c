/* metrics.c: the Prometheus exposition (metrics.h). */
#include "proc/metrics.h"

#include <inttypes.h>
#include <string.h>

#include "conf/config.h"
#include "proc/metrics_shm.h"

static const char *const metrics_auth_names[METRICS_AUTH_RESULTS] = {
    "success", "failure", "tempfail", "blocked"};
static const char *const metrics_timeout_names[METRICS_TIMEOUTS] = {"idle", "command_line",
                                                                     "data_rate"};

void metrics_put_label(struct buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(out, "\\\\");
        else if (*s == '"')
            buf_puts(out, "\\\"");
        else if (*s == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *s);
    }
}

static void metrics_family(struct buf *out, const char *name, const char *type,
                           const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *metrics_role_name(unsigned r)
{
    return config_role_name((enum conf_role)r);
}

/* Seconds with microsecond precision, as Prometheus floats. */
static void metrics_put_seconds(struct buf *out, uint64_t us)
{
    buf_printf(out, "%" PRIu64 ".%06" PRIu64, us / 1000000u, us % 1000000u);
}

static void metrics_render_net(struct buf *out)
{
    const struct metrics_shm *m = metrics_shm;
    metrics_family(out, "tern_smtp_connections_total", "counter",
                   "Inbound SMTP connections accepted, by listener role (also those "
                   "refused over a limit).");
    for (unsigned r = 0; r < METRICS_ROLES; r++)
        buf_printf(out, "tern_smtp_connections_total{role=\"%s\"} %" PRIu64 "\n",
                   metrics_role_name(r), metrics_get(&m->connections[r]));
    metrics_family(out, "tern_smtp_sessions_open", "gauge",
                   "Inbound SMTP sessions open now, by listener role.");
    for (unsigned r = 0; r < METRICS_ROLES; r++)
        buf_printf(out, "tern_smtp_sessions_open{role=\"%s\"} %" PRIu64 "\n",
                   metrics_role_name(r), metrics_shm_open(r));
    metrics_family(out, "tern_smtp_sessions_total", "counter",
                   "Inbound SMTP sessions ended, by listener role, whether TLS was used and "
                   "whether the client authenticated.");
    for (unsigned r = 0; r < METRICS_ROLES; r++)
        for (unsigned t = 0; t < 2; t++)
            for (unsigned a = 0; a < 2; a++)
                buf_printf(out,
                           "tern_smtp_sessions_total{role=\"%s\",tls=\"%s\",auth=\"%s\"} "
                           "%" PRIu64 "\n",
                           metrics_role_name(r), t ? "yes" : "no", a ? "yes" : "no",
                           metrics_get(&m->sessions[r][t][a]));
    metrics_family(out, "tern_smtp_tls_handshakes_total", "counter",
                   "Inbound TLS handshakes (STARTTLS and implicit TLS), by listener role and "
                   "result.");
    for (unsigned r = 0; r < METRICS_ROLES; r++)
        for (unsigned k = 0; k < 2; k++)
            buf_printf(out, "tern_smtp_tls_handshakes_total{role=\"%s\",result=\"%s\"} %" PRIu64
                            "\n",
                       metrics_role_name(r), k ? "failed" : "ok", metrics_get(&m->tls[r][k]));
    metrics_family(out, "tern_smtp_auth_total", "counter",
                   "SMTP AUTH attempts, by listener role and result.");
    for (unsigned r = 0; r < METRICS_ROLES; r++)
        for (unsigned k = 0; k < METRICS_AUTH_RESULTS; k++)
            buf_printf(out, "tern_smtp_auth_total{role=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                       metrics_role_name(r), metrics_auth_names[k], metrics_get(&m->auth[r][k]));
    metrics_family(out, "tern_smtp_timeouts_total", "counter",
                   "Inbound SMTP sessions ended by a time limit, by limit.");
    for (unsigned k = 0; k < METRICS_TIMEOUTS; k++)
        buf_printf(out, "tern_smtp_timeouts_total{limit=\"%s\"} %" PRIu64 "\n",
                   metrics_timeout_names[k], metrics_get(&m->timeouts[k]));
    metrics_family(out, "tern_smtp_stress", "gauge",
                   "1 while the SMTP server is in stress mode (most of sessions_max in use).");
    buf_printf(out, "tern_smtp_stress %" PRIu64 "\n", metrics_shm_stress());
    metrics_family(out, "tern_relay_connections_total", "counter",
                   "Outbound SMTP connections to next hops, by result.");
    buf_printf(out, "tern_relay_connections_total{result=\"ok\"} %" PRIu64 "\n",
               metrics_get(&m->relay[RELAY_EV_CONNECT_OK]));
    buf_printf(out, "tern_relay_connections_total{result=\"failed\"} %" PRIu64 "\n",
               metrics_get(&m->relay[RELAY_EV_CONNECT_FAILED]));
    metrics_family(out, "tern_relay_tls_handshakes_total", "counter",
                   "Outbound STARTTLS handshakes, by result.");
    buf_printf(out, "tern_relay_tls_handshakes_total{result=\"ok\"} %" PRIu64 "\n",
               metrics_get(&m->relay[RELAY_EV_TLS_OK]));
    buf_printf(out, "tern_relay_tls_handshakes_total{result=\"failed\"} %" PRIu64 "\n",
               metrics_get(&m->relay[RELAY_EV_TLS_FAILED]));
}

static void metrics_counter(struct buf *out, const char *name, const char *help, uint64_t v)
{
    metrics_family(out, name, "counter", help);
    buf_printf(out, "%s %" PRIu64 "\n", name, v);
}

static void metrics_gauge(struct buf *out, const char *name, const char *help, uint64_t v)
{
    metrics_family(out, name, "gauge", help);
    buf_printf(out, "%s %" PRIu64 "\n", name, v);
}

static void metrics_render_queue(struct buf *out, const struct qmetrics *qm)
{
    static const struct qmetrics zero;
    if (qm == NULL)
        qm = &zero;
    metrics_counter(out, "tern_messages_received_total",
                    "Messages accepted into the queue (durably committed).", qm->received);
    metrics_counter(out, "tern_recipients_received_total",
                    "Recipients of the messages accepted, after alias expansion.",
                    qm->received_rcpts);
    metrics_counter(out, "tern_recipients_delivered_total",
                    "Recipients delivered (to a mailbox or to the next hop).", qm->delivered);
    metrics_counter(out, "tern_recipients_deferred_total",
                    "Delivery attempts that failed temporarily (retried later).",
                    qm->deferred);
    metrics_counter(out, "tern_recipients_bounced_total",
                    "Recipients that failed for good (refused, or expired in the queue).",
                    qm->bounced);

    metrics_family(out, "tern_delivery_latency_seconds", "histogram",
                   "Time from a message's arrival to the delivery of one recipient.");
    uint64_t cum = 0;
    for (size_t b = 0; b < QMETRICS_BUCKETS; b++) {
        cum += qm->latency_bucket[b];
        buf_printf(out, "tern_delivery_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                   qmetrics_bounds[b], cum);
    }
    cum += qm->latency_bucket[QMETRICS_BUCKETS];
    buf_printf(out, "tern_delivery_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    buf_puts(out, "tern_delivery_latency_seconds_sum ");
    metrics_put_seconds(out, qm->latency_sum_us);
    buf_printf(out, "\ntern_delivery_latency_seconds_count %" PRIu64 "\n", qm->latency_count);

    metrics_family(out, "tern_delivery_errors_total", "counter",
                   "Failed delivery attempts by recipient domain and result; domains beyond "
                   "the first 1000 are counted as \"other\".");
    for (size_t i = 0; i < QMETRICS_SLOTS; i++) {
        const struct qmetrics_domain *d = &qm->domains[i];
        if (d->name[0] == '\0' || memchr(d->name, '\0', sizeof d->name) == NULL)
            continue;
        static const char *const kinds[2] = {"deferred", "bounced"};
        const uint64_t v[2] = {d->deferred, d->bounced};
        for (int k = 0; k < 2; k++) {
            if (v[k] == 0)
                continue;
            buf_puts(out, "tern_delivery_errors_total{domain=\"");
            metrics_put_label(out, d->name);
            buf_printf(out, "\",result=\"%s\"} %" PRIu64 "\n", kinds[k], v[k]);
        }
    }
    if (qm->other_deferred)
        buf_printf(out, "tern_delivery_errors_total{domain=\"other\",result=\"deferred\"} %" PRIu64
                        "\n", qm->other_deferred);
    if (qm->other_bounced)
        buf_printf(out, "tern_delivery_errors_total{domain=\"other\",result=\"bounced\"} %" PRIu64
                        "\n", qm->other_bounced);
    metrics_family(out, "tern_dmarc_rows_total", "counter",
                   "DMARC aggregate-report rows (one per evaluated message and policy domain), "
                   "by what became of them: recorded in the day's file, dropped by the smtp "
                   "process (the queue's channel was backed up), refused as malformed, or "
                   "failed (an I/O error, or the day's file at its size limit).");
    buf_printf(out, "tern_dmarc_rows_total{result=\"recorded\"} %" PRIu64 "\n",
               qm->dmarc_rows_recorded);
    buf_printf(out, "tern_dmarc_rows_total{result=\"dropped\"} %" PRIu64 "\n",
               metrics_get(&metrics_shm->dmarc_rows_dropped));
    buf_printf(out, "tern_dmarc_rows_total{result=\"refused\"} %" PRIu64 "\n",
               qm->dmarc_rows_refused);
    buf_printf(out, "tern_dmarc_rows_total{result=\"failed\"} %" PRIu64 "\n",
               qm->dmarc_rows_failed);
}

void metrics_render(struct buf *out, const struct queue *q, const struct qmetrics *qm,
                    uint64_t now_us)
{
    metrics_family(out, "tern_build_info", "gauge", "The running tern's version (always 1).");
    buf_printf(out, "tern_build_info{version=\"%s\"} 1\n", TERN_VERSION);
    metrics_render_net(out);
    metrics_render_queue(out, qm);
    struct queue_depth d = {0};
    if (q)
        queue_get_depth(q, &d);
    metrics_gauge(out, "tern_queue_messages", "Messages in the queue now (not yet finished).",
                  d.messages);
    metrics_gauge(out, "tern_queue_recipients", "Recipients in the queue waiting for delivery.",
                  d.recipients);
    metrics_family(out, "tern_queue_oldest_age_seconds", "gauge",
                   "Age of the oldest message in the queue (0 when it is empty).");
    buf_puts(out, "tern_queue_oldest_age_seconds ");
    metrics_put_seconds(out, d.oldest_arrival_us && now_us > d.oldest_arrival_us
                                 ? now_us - d.oldest_arrival_us : 0);
    buf_putc(out, '\n');
}
