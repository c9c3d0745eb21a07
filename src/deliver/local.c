/* local.c: see local.h. */
#include "deliver/local.h"

#include "base/sizes.h"
#include "deliver/maildir.h"
#include "deliver/mbox.h"
#include "deliver/pipe.h"
#include "deliver/redeliver.h"

static void local_deliver_maildir(const struct local_req *req, struct result *res)
{
    if (req->check) {
        char name[MAILDIR_NAME_MAX];
        if (redeliver_find(req->path, req->qid, req->delivered_to, req->since, req->pid, name,
                           sizeof name)) {
            result_set(res, RESULT_OK, 250, "2.0.0", "delivered to maildir as %s before a restart",
                       name);
            return;
        }
    }
    struct maildir_msg msg = {
        .return_path = req->return_path,
        .delivered_to = req->delivered_to,
        .body_fd = req->fd,
        .body_off = req->off,
        .body_len = req->len,
    };
    if (maildir_deliver(req->path, &msg, res) < 0 && res->kind == RESULT_OK)
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "maildir delivery failed");
}

static void local_deliver_mbox(const struct local_req *req, struct result *res)
{
    struct mbox_msg msg = {req->return_path, req->delivered_to, req->fd, req->off, req->len};
    struct mbox_look look = {req->qid, req->since};
    if (mbox_deliver(req->path, &msg, req->check ? &look : NULL, req->lock_wait, res) < 0 &&
        res->kind == RESULT_OK)
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "mbox delivery failed");
}

static void local_deliver_pipe(const struct local_req *req, struct result *res)
{
    struct pipe_req p = {
        .cmd = req->pipe[0] == '|' ? req->pipe + 1 : req->pipe,
        .vals = {req->return_path, req->delivered_to, req->user, req->extension, req->domain},
        .home = req->home,
        .return_path = req->return_path,
        .delivered_to = req->delivered_to,
        .body_fd = req->fd,
        .body_off = req->off,
        .body_len = req->len,
        .time_limit = req->time_limit,
    };
    if (pipe_deliver(&p, res) < 0 && res->kind == RESULT_OK)
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "command delivery failed");
}

void local_deliver(const struct local_req *req, struct result *res)
{
    switch (req->kind) {
    case LOCAL_MBOX:
        local_deliver_mbox(req, res);
        return;
    case LOCAL_PIPE:
        local_deliver_pipe(req, res);
        return;
    case LOCAL_MAILDIR:
        break;
    }
    local_deliver_maildir(req, res);
}
