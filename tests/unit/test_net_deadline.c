/* test_net_deadline: the time limits of an inbound session on a clock of
 * the test's own: idle, a command line that trickles, the content rate
 * with its grace window, stress mode, and a clock that goes back. */
#include "check.h"
#include "proc/net_deadline.h"

static const uint64_t T0 = 1000000;

/* One look at the session: what it waits for, octets received so far, the
 * time (after T0), and the verdict expected. */
struct step {
    enum smtp_session_expect e;
    uint64_t rx, t;
    enum net_expiry want;
};

#define C SMTP_EXPECT_COMMAND
#define D SMTP_EXPECT_CONTENT
#define N SMTP_EXPECT_NOTHING

static void steps(struct net_deadline *d, const struct net_deadline_limits *l,
                  const struct step *s, size_t n, int line)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t rate = 0;
        enum net_expiry got = net_deadline_check(d, l, s[i].e, s[i].rx, T0 + s[i].t, &rate);
        if (got != s[i].want)
            fprintf(stderr, "line %d, step %zu (t=%llu): ", line, i, (unsigned long long)s[i].t);
        CHECK_EQ_INT(got, s[i].want);
    }
}

#define STEPS(d, l, ...)                                                          \
    do {                                                                          \
        const struct step s_[] = {__VA_ARGS__};                                   \
        steps((d), (l), s_, sizeof s_ / sizeof s_[0], __LINE__);                  \
    } while (0)

static void limits(struct net_deadline_limits *l, int stress)
{
    struct config cfg;
    config_default(&cfg);
    net_deadline_limits_set(l, &cfg, stress);
    config_free(&cfg);
}

static void test_limits(void)
{
    struct net_deadline_limits l;
    limits(&l, 0);
    CHECK_EQ_INT(l.line_ms, 300000);
    CHECK_EQ_INT(l.idle_cap_ms, 0);
    CHECK_EQ_INT(l.rate_min, 256);
    CHECK_EQ_INT(l.window_ms, 30000);
    limits(&l, 1);
    CHECK_EQ_INT(l.line_ms, 10000);
    CHECK_EQ_INT(l.idle_cap_ms, 10000);
}

static void test_idle(void)
{
    struct net_deadline_limits l;
    limits(&l, 0);
    struct net_deadline d;
    net_deadline_start(&d, 180000, T0);
    net_deadline_input(&d, T0 + 5000);
    /* Exactly the timeout since the last input; a TLS handshake too. */
    STEPS(&d, &l, {D, 0, 184999, NET_EXPIRY_NONE}, {D, 0, 185000, NET_EXPIRY_IDLE},
          {N, 0, 185000, NET_EXPIRY_IDLE});
    /* A restart (a new timeout, a resume after the queue) counts from then;
     * a clock that went back expires nothing. */
    net_deadline_restart(&d, 300000, T0 + 185000);
    STEPS(&d, &l, {C, 0, 484999, NET_EXPIRY_NONE}, {C, 0, 485000, NET_EXPIRY_IDLE},
          {C, 0, 0, NET_EXPIRY_NONE});
}

/* One octet a second keeps the idle timer alive for ever; the line is
 * still due within timeout_command_line of the previous reply. */
static void test_line_trickle(void)
{
    struct net_deadline_limits l;
    limits(&l, 0);
    struct net_deadline d;
    net_deadline_start(&d, 300000, T0);
    net_deadline_reply(&d, T0); /* the greeting */
    uint64_t cut = 0;
    for (uint64_t i = 1; i <= 400 && !cut; i++) {
        net_deadline_input(&d, T0 + i * 1000);
        if (net_deadline_check(&d, &l, C, i, T0 + i * 1000, NULL) == NET_EXPIRY_LINE)
            cut = i;
    }
    CHECK_EQ_INT(cut, 300);
    /* A reply (the line was complete) starts the next line's time. Content
     * and TLS handshakes have no line deadline. */
    net_deadline_start(&d, 300000, T0);
    net_deadline_reply(&d, T0 + 200000);
    net_deadline_input(&d, T0 + 499000);
    STEPS(&d, &l, {C, 0, 499999, NET_EXPIRY_NONE}, {C, 0, 500000, NET_EXPIRY_LINE},
          {N, 0, 500000, NET_EXPIRY_NONE});
    /* 0 turns it off. */
    l.line_ms = 0;
    STEPS(&d, &l, {C, 0, 500000, NET_EXPIRY_NONE});
}

static void test_stress(void)
{
    struct net_deadline_limits l;
    limits(&l, 1);
    struct net_deadline d;
    net_deadline_start(&d, 300000, T0);
    STEPS(&d, &l, {C, 0, 9999, NET_EXPIRY_NONE}, {C, 0, 10000, NET_EXPIRY_IDLE});
    /* Input keeps the idle timer alive; the line is still due in 10 s. */
    net_deadline_input(&d, T0 + 9000);
    STEPS(&d, &l, {C, 0, 10000, NET_EXPIRY_LINE});
    /* Message content in stress: idle at most 10 s too. */
    net_deadline_restart(&d, 180000, T0);
    STEPS(&d, &l, {D, 0, 10000, NET_EXPIRY_IDLE});
    /* Stress never lengthens a shorter timeout. */
    net_deadline_restart(&d, 3000, T0);
    STEPS(&d, &l, {C, 0, 3000, NET_EXPIRY_IDLE});
}

static void test_rate(void)
{
    struct net_deadline_limits l;
    limits(&l, 0); /* 256 octets/s over 30 s windows */
    struct net_deadline d;
    net_deadline_start(&d, 180000, T0);
    /* The first look starts the first window, a grace: no octet in it is
     * fine. The second must bring 256 * 30 octets and brings exactly that;
     * the third one octet less. */
    STEPS(&d, &l, {D, 1000, 0, NET_EXPIRY_NONE}, {D, 1000, 29999, NET_EXPIRY_NONE},
          {D, 1000, 30000, NET_EXPIRY_NONE}, {D, 1000 + 7680, 60000, NET_EXPIRY_NONE});
    uint64_t rate = 0;
    CHECK_EQ_INT(net_deadline_check(&d, &l, D, 1000 + 2 * 7680 - 1, T0 + 90000, &rate),
                 NET_EXPIRY_RATE);
    CHECK_EQ_INT(rate, 255);
    /* A window that ran long (the sweep was late) is averaged over its length. */
    net_deadline_start(&d, 180000, T0);
    STEPS(&d, &l, {D, 0, 0, NET_EXPIRY_NONE}, {D, 0, 30000, NET_EXPIRY_NONE},
          {D, 256 * 45, 75000, NET_EXPIRY_NONE});
    CHECK_EQ_INT(net_deadline_check(&d, &l, D, 256 * 85 - 1, T0 + 115000, &rate),
                 NET_EXPIRY_RATE);
    CHECK_EQ_INT(rate, 255);
    /* Content that stops (a BDAT chunk ends) gives the next stretch a new
     * grace; so does a restart (resumed after the queue). */
    net_deadline_start(&d, 180000, T0);
    STEPS(&d, &l, {D, 0, 0, NET_EXPIRY_NONE}, {D, 0, 30000, NET_EXPIRY_NONE},
          {C, 0, 31000, NET_EXPIRY_NONE}, {D, 0, 32000, NET_EXPIRY_NONE},
          {D, 0, 62000, NET_EXPIRY_NONE}, {D, 0, 92000, NET_EXPIRY_RATE});
    net_deadline_restart(&d, 180000, T0 + 92000);
    STEPS(&d, &l, {D, 0, 92000, NET_EXPIRY_NONE}, {D, 0, 122000, NET_EXPIRY_NONE});
    /* data_rate_min = 0: no rate at all. */
    l.rate_min = 0;
    STEPS(&d, &l, {D, 0, 200000, NET_EXPIRY_NONE});
}

int main(void)
{
    test_limits();
    test_idle();
    test_line_trickle();
    test_stress();
    test_rate();
    return check_result("test_net_deadline");
}
