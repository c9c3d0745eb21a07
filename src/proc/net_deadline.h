/* net_deadline: the time limits of one inbound session, as functions of a
 * clock the caller passes, so that they can be tested without waiting
 * (proc/net applies them to every session once a second):
 *
 *  - idle: nothing read for the session's idle timeout (timeout_command,
 *    timeout_data or timeout_tls, whatever the session waits for);
 *  - command line: a whole command line must arrive within
 *    timeout_command_line of our previous reply, however it trickles (an
 *    idle timer re-armed by every byte let one byte every few seconds hold
 *    a session for ever);
 *  - content rate: message content (DATA, a BDAT chunk) must come at
 *    data_rate_min octets/s or more, averaged over windows of
 *    data_rate_window; the first window of each stretch of content is a
 *    grace, so a slow start on a bad link is not held against anyone.
 *
 * Under stress (most of sessions_max in use) the idle timeout and the
 * command line deadline shrink to timeout_stress, as Postfix's stress
 * mode shrinks smtpd_timeout: idle clients then make room for others. */
#ifndef TERN_PROC_NET_DEADLINE_H
#define TERN_PROC_NET_DEADLINE_H

#include <stdint.h>

#include "conf/config.h"
#include "smtp/smtp_session.h"

struct net_deadline {
    uint64_t idle_ms;   /* the session's idle timeout, 0 = none */
    uint64_t last_ms;   /* the last input (or a restart of the wait) */
    uint64_t reply_ms;  /* our last reply: the current command line is due from then */
    uint64_t window_ms; /* start of the current content window, 0 = not in content */
    uint64_t window_rx; /* octets received when it started */
    int grace;          /* the current window is the first of its stretch */
};

/* The limits of every session, from the settings and the stress state. */
struct net_deadline_limits {
    uint64_t line_ms;      /* timeout_command_line (under stress at most timeout_stress) */
    uint64_t idle_cap_ms;  /* timeout_stress under stress, else 0 (no cap) */
    uint64_t rate_min;     /* data_rate_min octets/s, 0 = none */
    uint64_t window_ms;    /* data_rate_window */
    int stress;
};

enum net_expiry {
    NET_EXPIRY_NONE = 0,
    NET_EXPIRY_IDLE,      /* idle (or stress) timeout */
    NET_EXPIRY_LINE,      /* the command line deadline */
    NET_EXPIRY_RATE,      /* content slower than data_rate_min */
};

void net_deadline_limits_set(struct net_deadline_limits *l, const struct config *cfg, int stress);

/* A new session at now_ms, with the idle timeout idle_ms. */
void net_deadline_start(struct net_deadline *d, uint64_t idle_ms, uint64_t now_ms);
/* Input arrived. */
void net_deadline_input(struct net_deadline *d, uint64_t now_ms);
/* We replied (the next command line is due from now). */
void net_deadline_reply(struct net_deadline *d, uint64_t now_ms);
/* The wait starts over: a new idle timeout, or input resumed after a
 * pause (time spent waiting for the queue is not the client's). */
void net_deadline_restart(struct net_deadline *d, uint64_t idle_ms, uint64_t now_ms);

/* Which limit the session has passed at now_ms, if any. `expects` is what
 * the session waits for (the idle timeout applies to everything, a TLS
 * handshake too; the caller skips sessions paused for the queue); rx_total
 * the octets received so far on the connection. On NET_EXPIRY_RATE *rate is the window's octets/s. Also
 * moves the content window along: call it regularly (once a second). */
enum net_expiry net_deadline_check(struct net_deadline *d, const struct net_deadline_limits *l,
                                   enum smtp_session_expect expects, uint64_t rx_total,
                                   uint64_t now_ms, uint64_t *rate);

#endif
