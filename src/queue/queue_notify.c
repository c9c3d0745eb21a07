/* queue_notify.c: delivery status notifications (RFC 3464) about a
 * job's recipients: failed, relayed or delivered, delayed. The sender's
 * NOTIFY (RFC 3461) decides who is named; the notification re-enters the
 * spool as a new message (bounce.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fsio.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "queue/bounce.h"
#include "queue/queue_job.h"

/* The host part of "host[addr]:port", for Remote-MTA. */
static void qjob_remote_mta(const char *relay, char *out, size_t n)
{
    size_t l = strcspn(relay, "[");
    if (l >= n)
        l = n - 1;
    memcpy(out, relay, l);
    out[l] = '\0';
}

void qjob_notify(struct queue *q, struct qjob *j, const size_t *entries, size_t count,
                 enum dsn_action what)
{
    struct dsn_rcpt *dr = xcalloc(count, sizeof *dr);
    char (*mta)[DNS_NAME_MAX] = xcalloc(count, sizeof *mta);
    char (*diag)[300] = xcalloc(count, sizeof *diag);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const struct qjob_rcpt *r = &j->r[entries[i]];
        const struct envelope_rcpt *rc = &j->env.rcpts[r->idx];
        enum dsn_action action = what == DSN_ACTION_DELIVERED && r->remote ? DSN_ACTION_RELAYED
                                                                           : what;
        /* Our own failed notification goes to postmaster (bounce.h);
         * everything else as RFC 3461 says. */
        int ours = action == DSN_ACTION_FAILED && j->env.client_name &&
                   !strcmp(j->env.client_name, BOUNCE_MARK);
        if (!ours && !dsn_should_send(&j->env, rc, action))
            continue;
        /* The remote server's own reply when there was one (RFC 3464
         * §2.3.6): smtp_client words it "host H said: REPLY (in reply to
         * CMD)"; anything else is tern's own diagnostic. */
        const char *said = strstr(r->res.text, " said: ");
        int remote = r->remote && strcmp(r->relay, "none") != 0 && said != NULL;
        if (remote) {
            qjob_remote_mta(r->relay, mta[n], sizeof mta[n]);
            said += 7;
            const char *end = strstr(said, " (in reply to ");
            int len = end ? (int)(end - said) : (int)strlen(said);
            snprintf(diag[n], sizeof diag[n], "%.*s", len, said);
        } else {
            snprintf(diag[n], sizeof diag[n], "%d %s %s", r->res.code, r->res.enh, r->res.text);
        }
        dr[n] = (struct dsn_rcpt){
            .addr = rc->addr,
            .orcpt = rc->orcpt,
            .action = action,
            .status = r->res.enh,
            .diag = diag[n],
            .diag_type = remote ? "smtp" : "x-tern",
            .remote_mta = remote ? mta[n] : NULL,
            .last_attempt = (time_t)(r->t1_us / 1000000u),
            .retry_until = action == DSN_ACTION_DELAYED
                               ? (time_t)(j->rec.arrival_us / 1000000u) + q->cfg->queue_lifetime
                               : 0,
        };
        n++;
    }
    if (n > 0) {
        size_t len = j->rec.content_len > BOUNCE_FULL_MAX ? BOUNCE_FULL_MAX
                                                          : (size_t)j->rec.content_len;
        char *content = xmalloc(len + 1);
        int fd = open(j->segpath, O_RDONLY | O_CLOEXEC);
        int rc = fd < 0 ? -errno
                        : fsio_pread_all(fd, content, len, (off_t)store_content_off(&j->rec));
        if (fd >= 0)
            close(fd);
        if (rc == 0)
            rc = queue_bounce(q, &j->env, content, len, len < j->rec.content_len, dr, n);
        if (rc < 0)
            log_err("%s: cannot queue the notification to the sender: %s", j->rec.qid,
                    strerror(-rc));
        free(content);
    }
    free(dr);
    free(mta);
    free(diag);
}
