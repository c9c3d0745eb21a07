/* Unit tests for proc/net_dmarc: the rows of one evaluation (one per From
 * domain with a record) go to the queue as IPC_DMARC_ROW messages that
 * read back as rows; with the queue not reading, the channel's backlog
 * stays bounded and the rows past it are dropped and counted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dnsq_zone.h"
#include "ev/loop.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mailauth/dkim_verify.h"
#include "mailauth/dmarc.h"
#include "mailauth/dmarc_report.h"
#include "mailauth/psl.h"
#include "proc/metrics_shm.h"
#include "proc/net_dmarc.h"

static struct zone z;

static void evaluate(struct dmarc_eval *ev, struct dmarc_from *from, const char *field)
{
    dmarc_from_init(from);
    dmarc_from_add_field(from, field, strlen(field));
    struct dmarc_params p = {from, SPF_PASS, "one.example", NULL, 0, 0};
    CHECK_EQ_INT(dmarc_eval_start(ev, &p), 0);
    while (dmarc_eval_step(ev) == DMARC_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = dmarc_eval_questions(ev, &q);
        for (size_t k = 0; k < n; k++) {
            struct dnsq_answer a;
            zone_answer(&z, &q[k], &a);
            CHECK_EQ_INT(dmarc_eval_answer(ev, k, &a), 0);
            free((void *)a.rrs);
        }
    }
}

static void on_msg(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
}

static void test_rows_and_backlog(void)
{
    zone_txt(&z, "_dmarc.one.example", "v=DMARC1; p=reject; rua=mailto:r@one.example");
    zone_txt(&z, "_dmarc.two.example", "v=DMARC1; p=none");
    struct dmarc_eval *ev = dmarc_eval_new();
    struct dmarc_from from;
    evaluate(ev, &from, " a@one.example, b@two.example, c@norecord.example");
    CHECK_EQ_INT(dmarc_eval_ndomains(ev), 3);
    struct dkim_verify *dk = dkim_verify_new();
    struct dkim_verify_params dp = {0};
    dkim_verify_start(dk, &dp);

    int fds[2];
    CHECK_EQ_INT(ipc_pair(fds), 0);
    struct ev_loop *loop = ev_loop_new();
    struct ipc_chan *ch = ipc_chan_new(loop, fds[0], on_msg, NULL, NULL);
    struct net_dmarc_msg m = {"192.0.2.9", "x@one.example", "one.example", SPF_PASS,
                              DMARC_POLICY_NONE};
    uint64_t dropped = metrics_get(&metrics_shm->dmarc_rows_dropped);

    /* No channel yet: dropped. */
    net_dmarc_record(ev, dk, &m);
    CHECK_EQ_INT(metrics_get(&metrics_shm->dmarc_rows_dropped), dropped + 2);
    dropped += 2;

    net_dmarc_set_channel(ch);
    net_dmarc_record(ev, dk, &m);
    CHECK_EQ_INT(metrics_get(&metrics_shm->dmarc_rows_dropped), dropped);
    char *rbuf = malloc(IPC_MAX_PAYLOAD + 64);
    struct ipc_msg msg;
    const char *domains[2] = {"one.example", "two.example"};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(ipc_recv_sync(fds[1], rbuf, IPC_MAX_PAYLOAD + 64, &msg), 1);
        CHECK_EQ_INT(msg.type, IPC_DMARC_ROW);
        struct ipc_rd r;
        ipc_rd_init(&r, &msg);
        size_t n;
        const char *line = ipc_get_bytes(&r, &n, DMARC_REPORT_LINE_MAX);
        CHECK_EQ_INT(ipc_rd_end(&r), 0);
        struct dmarc_report_row row;
        CHECK_EQ_INT(dmarc_report_row_parse(&row, line, n), 0);
        CHECK_EQ_STR(row.policy_domain, domains[i]);
        CHECK_EQ_STR(row.source_ip, "192.0.2.9");
        CHECK_EQ_STR(row.envelope_from, "one.example");
        CHECK(row.spf_pass == (i == 0));
    }

    /* The queue stops reading: the socket fills, then the backlog up to
     * its bound; every row after that is dropped, none queued. */
    size_t calls = 0;
    while (metrics_get(&metrics_shm->dmarc_rows_dropped) == dropped && calls < 200000) {
        net_dmarc_record(ev, dk, &m);
        calls++;
    }
    CHECK(calls < 200000);
    size_t backlog = ipc_chan_backlog(ch);
    CHECK(backlog > NET_DMARC_BACKLOG_MAX - 1024);
    CHECK(backlog <= NET_DMARC_BACKLOG_MAX + DMARC_REPORT_LINE_MAX + 64);
    for (int i = 0; i < 1000; i++)
        net_dmarc_record(ev, dk, &m);
    CHECK_EQ_INT(ipc_chan_backlog(ch), backlog);
    CHECK(metrics_get(&metrics_shm->dmarc_rows_dropped) >= dropped + 2000);

    net_dmarc_set_channel(NULL);
    ipc_chan_free(ch);
    close(fds[1]);
    ev_loop_free(loop);
    free(rbuf);
    dkim_verify_free(dk);
    dmarc_eval_free(ev);
    zone_clear(&z);
}

int main(void)
{
    CHECK_EQ_INT(psl_org_init(), 0);
    test_rows_and_backlog();
    return check_result("test_net_dmarc");
}
