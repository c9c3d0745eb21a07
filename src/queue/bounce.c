/* bounce.c: building the report (mail/dsn) and committing it through the
 * same path as received mail: a body file, then the group commit. */
#include "queue/bounce.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "queue/queue_priv.h"

static void bounce_committed(void *arg, const char *qid, const struct result *res)
{
    if (res->kind != RESULT_OK)
        log_err("%s: the delivery status notification could not be queued: %d %s %s", qid,
                res->code, res->enh, res->text);
}

int queue_bounce(struct queue *q, const struct envelope *orig, const char *content,
                 size_t len, int cut, const struct dsn_rcpt *rcpts, size_t n)
{
    if (n == 0)
        return 0;
    const char *to = orig->from;
    const char *mark = BOUNCE_MARK;
    char pm[DNS_NAME_MAX + 16]; /* postmaster@host */
    if (to == NULL || to[0] == '\0') {
        /* RFC 5321 §4.5.5 / RFC 3461 §6.2: no notification to <>; but
         * when our own notification fails, postmaster hears of it once. */
        int ours = orig->client_name && !strcmp(orig->client_name, BOUNCE_MARK);
        if (!ours || rcpts[0].action != DSN_ACTION_FAILED) {
            log_msg_as("tern/bounce", LOGL_INFO, "%s: no notification: the sender is <>",
                       orig->qid);
            return 0;
        }
        snprintf(pm, sizeof pm, "postmaster@%s",
                 q->cfg->nlocal_domains ? q->cfg->local_domains[0] : q->cfg->hostname);
        to = pm;
        mark = BOUNCE_MARK_DOUBLE;
    }
    /* The report is addressed to `to` (its To: field comes from the
     * envelope sender it is given). */
    struct envelope about = *orig; /* shallow: nothing of it is freed */
    about.from = (char *)to;
    char qid[ENVELOPE_QID_MAX + 1];
    int fd = -1;
    int rc = queue_body_open(q, qid, &fd);
    if (rc < 0)
        return rc;
    char boundary[64], msgid[DNS_NAME_MAX + 32]; /* QID.dsn@host */
    snprintf(boundary, sizeof boundary, "%s.%llu/tern", qid,
             (unsigned long long)clock_wall());
    snprintf(msgid, sizeof msgid, "%s.dsn@%s", qid, q->cfg->hostname);
    struct dsn_report rep = {
        .reporting_mta = q->cfg->hostname,
        .env = &about,
        .rcpts = rcpts,
        .nrcpts = n,
        .content = content,
        .content_len = len,
        .content_cut = cut,
        .full_max = BOUNCE_FULL_MAX,
        .boundary = boundary,
        .message_id = msgid,
        .date = clock_wall(),
    };
    struct buf out = BUF_INIT;
    unsigned flags = 0;
    rc = dsn_build(&rep, &out, &flags);
    if (rc == 0)
        rc = fsio_write_all(fd, out.data, out.len);
    close(fd);
    if (rc < 0) {
        buf_free(&out);
        queue_body_abort(q, qid);
        return rc;
    }
    struct envelope env;
    envelope_init(&env);
    envelope_set(&env.from, "");
    env.body = (flags & DSN_OUT_8BIT) ? ENV_BODY_8BITMIME : ENV_BODY_7BIT;
    env.smtputf8 = (flags & DSN_OUT_UTF8) != 0;
    env.size = out.len;
    env.arrival = clock_wall();
    envelope_set(&env.client_name, mark);
    /* NOTIFY=NEVER: a notification about a notification would loop. */
    envelope_add_rcpt(&env, to, NULL, ENV_NOTIFY_NEVER);
    /* A sender at a local domain without a mailbox: the notification is
     * queued all the same, so that its failure reaches postmaster (the
     * double bounce above) instead of nobody. */
    env.bounce_unknown = 1;
    buf_free(&out);
    const char *what = rcpts[0].action == DSN_ACTION_DELAYED     ? "delay"
                       : rcpts[0].action == DSN_ACTION_DELIVERED || rcpts[0].action == DSN_ACTION_RELAYED ? "success"
                                                                 : "non-delivery";
    log_msg_as("tern/bounce", LOGL_INFO, "%s: %s %s notification: %s", orig->qid,
             strcmp(mark, BOUNCE_MARK) ? "postmaster" : "sender", what, qid);
    /* A notification may use the spool's reserve (queue_minfree): it is
     * about mail that was accepted, and kept for it. */
    rc = queue_commit_msg(q, qid, &env, NULL, 0, 1, bounce_committed, NULL, NULL);
    envelope_clear(&env);
    return rc;
}
