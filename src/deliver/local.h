/* local: the local transport's work on one recipient: look whether a
 * crash interrupted a delivery that reached the Maildir after all, then
 * deliver. The queue runs it itself (unit tests, no delivery process) or
 * hands it to the delivery process, which runs as the virtual-mail user
 * (proc/deliver_proc). Blocking; delivery threads only. */
#ifndef TERN_DELIVER_LOCAL_H
#define TERN_DELIVER_LOCAL_H

#include <stdint.h>
#include <sys/types.h>

#include "mail/result.h"

struct local_req {
    const char *path;         /* the Maildir */
    const char *return_path;  /* "" for the null sender */
    const char *delivered_to; /* the recipient */
    int fd;                   /* the content: fd at off, len octets (CRLF) */
    off_t off;
    uint64_t len;
    int check;                /* an earlier attempt may have delivered it: look first */
    const char *qid;          /* for the look: the queue id, */
    int64_t since;            /* when that attempt started, */
    uint32_t pid;             /* and the pid its Maildir file is named by */
};

/* Fills *res: OK (delivered now or found delivered), or TEMPFAIL. */
void local_deliver(const struct local_req *req, struct result *res);

/* What a transport knows of a TEMPFAIL it reports: whether the delivery
 * did not happen, or whether nobody can tell (the delivery process died
 * or did not answer), so that the next attempt must look first. */
enum { LOCAL_KNOWN = 0, LOCAL_UNKNOWN = 1 };

/* A transport that does local_deliver elsewhere (another process);
 * thread-safe, blocking. Fills *res and returns LOCAL_KNOWN or
 * LOCAL_UNKNOWN. */
typedef int (*local_transport_fn)(void *arg, const struct local_req *req, struct result *res);

#endif
