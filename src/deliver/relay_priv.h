/* relay_priv: what relay.c (jobs: next hops, answers) and relay_conn.c
 * (connections: connecting, reuse, limits, the SMTP client on a conn)
 * share. Not for use outside src/deliver/relay*.c. */
#ifndef TERN_DELIVER_RELAY_PRIV_H
#define TERN_DELIVER_RELAY_PRIV_H

#include <stdint.h>
#include <sys/socket.h>

#include "base/sizes.h"
#include "ev/conn.h"
#include "ev/loop.h"
#include "mail/envelope.h"
#include "mail/result.h"
#include "deliver/relay.h"
#include "smtp/smtp_client.h"

#define RELAY_TARGETS_MAX 32
#define RELAY_CONNECT_MS 30000
/* An idle connection is kept this long for the next message to the same
 * host (Postfix keeps its cached connections about as long). */
#define RELAY_IDLE_MS 5000

struct relay_target {
    struct sockaddr_storage ss;
    socklen_t sl;
    char name[RELAY_NAME_MAX]; /* "host[addr]:port": the key for reuse, and for logs */
    char host[DNS_NAME_MAX];   /* the name a verified certificate must carry */
};

struct relay_conn;

struct relay_job {
    struct relay *r;
    struct relay_job *next, *prev; /* all jobs */
    struct relay_job *wnext;       /* waiting for a connection slot */
    int waiting;
    uint64_t id;
    char domain[DNS_NAME_MAX];
    struct envelope env;
    const char **rcpts;  /* owned array; strings are env's */
    unsigned *notify;    /* owned array: DSN NOTIFY per recipient */
    const char **orcpt;  /* owned array; strings are env's */
    struct mx_req *mx;   /* an MX lookup in progress */
    int fd;              /* owned content */
    uint64_t len;
    struct relay_target targets[RELAY_TARGETS_MAX];
    size_t ntargets, cur;
    struct relay_conn *rc; /* the connection carrying it, or NULL */
    const struct conf_route *route; /* its route line (cfg's), or NULL */
    /* Recipients [0, rdone) are answered in res (owned, env.nrcpts, or
     * NULL while rdone is 0): a server's MAILMAX ended their session and
     * the rest go on a new connection (RFC 9422). */
    struct result *res;
    size_t rdone;
    char last_error[512];
    ev_timer_id deadline; /* relay_time_limit: then it is cut and deferred */
    int finished;        /* answered; freed by the reaper */
};

/* One outbound connection: connecting, busy with a job, or idle. */
struct relay_conn {
    struct relay *r;
    struct relay_conn *next, *prev;
    char target[RELAY_NAME_MAX];
    char host[DNS_NAME_MAX]; /* for SNI and certificate verification */
    int sock;            /* while connecting, else -1 */
    ev_timer_id timer;   /* connect timeout, or idle time */
    struct conn *conn;   /* owned */
    struct smtp_client *client; /* owned */
    struct relay_job *job;      /* not owned */
    const struct conf_route *route; /* TLS policy and login it was opened with */
    int handshaking;
    int dead;            /* unusable; freed by the reaper once closed */
    int closed;          /* the conn reported on_close */
};

struct relay {
    struct ev_loop *loop;
    const struct config *cfg;
    _Atomic uint64_t *counters; /* RELAY_EVENTS of them, not owned */
    relay_answer_fn answer;
    void *answer_arg;
    struct tlsctx *tls; /* client context */
    struct dns *dns;    /* not owned, may be NULL */
    struct relay_job *jobs;
    unsigned njobs;
    struct relay_conn *conns;
    unsigned nconns;    /* not dead */
    struct relay_job *wait_head, *wait_tail;
    ev_timer_id reap_timer;
};

static inline void relay_count(struct relay *r, enum relay_event e)
{
    atomic_fetch_add_explicit(&r->counters[e], 1, memory_order_relaxed);
}

/* relay.c */
void relay_answer(struct relay_job *j, const struct result *res, size_t n, const char *relay,
                  int peer_dsn);
void relay_fail_all(struct relay_job *j, enum result_kind k, int code, const char *enh,
                    const char *why);
void relay_schedule_reap(struct relay *r);
/* Takes job j off the list of jobs waiting for a connection slot. */
void relay_unwait(struct relay_job *j);
/* The transaction on the job's connection ended (res per recipient). */
void relay_job_done(struct relay_job *j, const struct result *res, size_t n, int closed);

/* relay_conn.c */
/* Sends job j to its current target: an idle connection to it, a new
 * one, or (at the limits) later. Moves on to the next target when one
 * cannot be reached; answers the job when none is left. */
void relay_try(struct relay_job *j);
/* The job's transaction is over and its connection can serve another
 * (or, at the server's MAILMAX, is closed with QUIT). */
void relay_conn_release(struct relay_conn *rc, int usable);
/* Frees dead connections (from the reaper) and, at shutdown, all. */
void relay_conns_reap(struct relay *r, int all);

#endif
