/* net_dmarc: the smtp process's half of DMARC aggregate reports (RFC 7489
 * §7.2): after each DMARC evaluation, one row per From domain that has a
 * record goes to the queue process (IPC_DMARC_ROW), which keeps them in
 * the day's rows file (proc/queue_dmarc) for `tern dmarc report`.
 *
 * Fire and forget, and bounded: a row is sent only while the queue's
 * channel holds less than NET_DMARC_BACKLOG_MAX octets not yet taken by
 * the socket; otherwise it is dropped and counted
 * (tern_dmarc_rows_total{result="dropped"}). A queue that stops reading
 * costs report rows, never memory or a session's time. */
#ifndef TERN_PROC_NET_DMARC_H
#define TERN_PROC_NET_DMARC_H

#include "ipc/ipc.h"
#include "mailauth/dkim_verify.h"
#include "mailauth/dmarc.h"
#include "mailauth/dmarc_record.h"
#include "mailauth/spf_record.h"

/* A row is about 300 octets; the socket buffer (ipc_pair) takes 4 MB
 * before anything is queued at all, so this is several thousand rows
 * behind on top of that. */
#define NET_DMARC_BACKLOG_MAX (256 * 1024)

/* The channel rows go to: the smtp process's one channel to the queue
 * (net_main sets it once it exists, and NULL before freeing it). */
void net_dmarc_set_channel(struct ipc_chan *ch);

/* What the session knows of the message (strings the caller's). */
struct net_dmarc_msg {
    const char *source_ip;
    const char *mail_from;     /* the reverse path, "" for <> */
    const char *spf_domain;    /* the MAIL FROM check's domain (HELO's for <>) */
    enum spf_result spf;       /* its result */
    enum dmarc_policy applied; /* what was done: none unless enforced */
};

/* Sends the rows of evaluation e (done), with the signatures of dkim. */
void net_dmarc_record(const struct dmarc_eval *e, const struct dkim_verify *dkim,
                      const struct net_dmarc_msg *m);

#endif
