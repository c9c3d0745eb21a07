/* net_deadline.c: the limits are checked lazily: activity only stamps a
 * time, and net_deadline_check() compares. A clock that goes back (it is
 * monotonic, but tests pass any) never expires anything. */
#include "proc/net_deadline.h"

/* A limit shortened to cap; 0 (none) stays none, a cap of 0 changes nothing. */
static uint64_t net_deadline_cap(uint64_t limit, uint64_t cap)
{
    return limit != 0 && cap != 0 && cap < limit ? cap : limit;
}

void net_deadline_limits_set(struct net_deadline_limits *l, const struct config *cfg, int stress)
{
    uint64_t stress_ms = (uint64_t)cfg->timeout_stress * 1000;
    l->idle_cap_ms = stress ? stress_ms : 0;
    l->line_ms = net_deadline_cap((uint64_t)cfg->timeout_command_line * 1000, l->idle_cap_ms);
    l->rate_min = cfg->data_rate_min;
    l->window_ms = (uint64_t)cfg->data_rate_window * 1000;
    l->stress = stress;
}

void net_deadline_start(struct net_deadline *d, uint64_t idle_ms, uint64_t now_ms)
{
    d->window_rx = 0;
    d->grace = 0;
    net_deadline_restart(d, idle_ms, now_ms);
}

void net_deadline_input(struct net_deadline *d, uint64_t now_ms)
{
    d->last_ms = now_ms;
}

void net_deadline_reply(struct net_deadline *d, uint64_t now_ms)
{
    d->reply_ms = now_ms;
}

void net_deadline_restart(struct net_deadline *d, uint64_t idle_ms, uint64_t now_ms)
{
    d->idle_ms = idle_ms;
    d->last_ms = now_ms;
    d->reply_ms = now_ms;
    d->window_ms = 0;
}

static int net_deadline_passed(uint64_t since, uint64_t limit, uint64_t now)
{
    return limit != 0 && now >= since && now - since >= limit;
}

enum net_expiry net_deadline_check(struct net_deadline *d, const struct net_deadline_limits *l,
                                   enum smtp_session_expect expects, uint64_t rx_total,
                                   uint64_t now_ms, uint64_t *rate)
{
    uint64_t idle = net_deadline_cap(d->idle_ms, l->idle_cap_ms);
    if (expects != SMTP_EXPECT_CONTENT)
        d->window_ms = 0; /* the next stretch of content starts with a grace */
    if (net_deadline_passed(d->last_ms, idle, now_ms))
        return NET_EXPIRY_IDLE;
    if (expects == SMTP_EXPECT_COMMAND)
        return net_deadline_passed(d->reply_ms, l->line_ms, now_ms) ? NET_EXPIRY_LINE
                                                                    : NET_EXPIRY_NONE;
    if (l->rate_min == 0 || l->window_ms == 0)
        return NET_EXPIRY_NONE;
    if (d->window_ms == 0 || now_ms < d->window_ms || rx_total < d->window_rx) {
        d->window_ms = now_ms ? now_ms : 1;
        d->window_rx = rx_total;
        d->grace = 1;
        return NET_EXPIRY_NONE;
    }
    uint64_t span = now_ms - d->window_ms;
    if (span < l->window_ms)
        return NET_EXPIRY_NONE;
    /* Octets and milliseconds stay far below 2^44 here: no overflow. */
    uint64_t got = rx_total - d->window_rx;
    if (!d->grace && got * 1000 < l->rate_min * span) {
        if (rate)
            *rate = got * 1000 / span;
        return NET_EXPIRY_RATE;
    }
    d->window_ms = now_ms;
    d->window_rx = rx_total;
    d->grace = 0;
    return NET_EXPIRY_NONE;
}
