/* local: the local transport's work on one recipient: look whether a
 * crash interrupted a delivery that reached the mailbox after all, then
 * deliver (to a Maildir, an mbox file, or an alias's command). The queue runs it itself (unit tests, no delivery process) or
 * hands it to the delivery process, which runs as the virtual-mail user
 * (proc/deliver_proc). Blocking; delivery threads only. */
#ifndef TERN_DELIVER_LOCAL_H
#define TERN_DELIVER_LOCAL_H

#include <stdint.h>
#include <sys/types.h>

#include "mail/result.h"

/* Where a recipient's mail goes. */
enum local_kind {
    LOCAL_MAILDIR = 0, /* a Maildir (deliver/maildir) */
    LOCAL_MBOX = 1,    /* an mbox file (deliver/mbox) */
    LOCAL_PIPE = 2,    /* an alias's command (deliver/pipe) */
};

struct local_req {
    enum local_kind kind;
    const char *path;         /* the Maildir or the mbox file; "" for a command */
    const char *return_path;  /* "" for the null sender */
    const char *delivered_to; /* the recipient (a command's: without the '|') */
    int fd;                   /* the content: fd at off, len octets (CRLF) */
    off_t off;
    uint64_t len;
    int check;                /* an earlier attempt may have delivered it: look first */
    const char *qid;          /* for the look: the queue id, */
    int64_t since;            /* when that attempt started, */
    uint32_t pid;             /* and the pid its Maildir file is named by */
    unsigned lock_wait;       /* mbox: seconds to wait for the locks */
    /* A command (LOCAL_PIPE): the alias's "|command", the alias's local
     * part, the extension (without its delimiter), the domain, the time
     * limit in seconds, and HOME for it. */
    const char *pipe;
    const char *user;
    const char *extension;
    const char *domain;
    unsigned time_limit;
    const char *home;
};

/* Fills *res: OK (delivered now or found delivered), TEMPFAIL, or (a
 * command's exit status) PERMFAIL. A command cannot be looked for: after
 * a crash it runs again (at least once). */
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
