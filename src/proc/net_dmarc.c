/* net_dmarc.c: see net_dmarc.h. */
#include "proc/net_dmarc.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/xmalloc.h"
#include "ipc/ipc_types.h"
#include "mailauth/dmarc_report.h"
#include "proc/metrics_shm.h"

/* One per smtp process, as its channel is (the process-wide counters of
 * metrics_shm are the same kind of thing). */
static struct ipc_chan *net_dmarc_chan;

void net_dmarc_set_channel(struct ipc_chan *ch)
{
    net_dmarc_chan = ch;
}

void net_dmarc_record(const struct dmarc_eval *e, const struct dkim_verify *dkim,
                      const struct net_dmarc_msg *m)
{
    struct dmarc_dkim sigs[DKIM_SIGS_MAX];
    size_t nsigs = 0;
    for (size_t i = 0; i < dkim_verify_count(dkim) && nsigs < DKIM_SIGS_MAX; i++) {
        const struct dkim_sig_result *r = dkim_verify_result(dkim, i);
        if (r->parsed)
            sigs[nsigs++] = (struct dmarc_dkim){r->result, r->d, r->s};
    }
    const char *at = strrchr(m->mail_from, '@');
    struct dmarc_report_msg rm = {
        .time = (long long)clock_wall(),
        .source_ip = m->source_ip,
        .envelope_from = m->mail_from[0] && at ? at + 1 : "",
        .spf_result = m->spf,
        .spf_domain = m->spf_domain,
        .spf_helo = m->mail_from[0] == '\0',
        .dkim = sigs,
        .ndkim = nsigs,
        .applied = m->applied,
    };
    struct dmarc_report_row *row = xmalloc(sizeof *row);
    struct buf line = BUF_INIT, b = BUF_INIT;
    for (size_t i = 0; i < dmarc_eval_ndomains(e); i++) {
        const struct dmarc_domain *d = dmarc_eval_domain(e, i);
        if (!d->have_record || dmarc_report_row_fill(row, d, &rm) < 0)
            continue;
        if (net_dmarc_chan == NULL || ipc_chan_backlog(net_dmarc_chan) > NET_DMARC_BACKLOG_MAX) {
            metrics_inc(&metrics_shm->dmarc_rows_dropped);
            continue;
        }
        buf_reset(&line);
        buf_reset(&b);
        dmarc_report_row_format(row, &line);
        if (line.len > DMARC_REPORT_LINE_MAX) { /* hostile record and signatures */
            metrics_inc(&metrics_shm->dmarc_rows_dropped);
            continue;
        }
        ipc_put_bytes(&b, line.data, line.len - 1); /* without the LF */
        if (ipc_send(net_dmarc_chan, IPC_DMARC_ROW, &b, -1) < 0)
            metrics_inc(&metrics_shm->dmarc_rows_dropped);
    }
    buf_free(&line);
    buf_free(&b);
    free(row);
}
