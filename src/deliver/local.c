/* local.c: see local.h. */
#include "deliver/local.h"

#include "base/sizes.h"
#include "deliver/maildir.h"
#include "deliver/redeliver.h"

void local_deliver(const struct local_req *req, struct result *res)
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
