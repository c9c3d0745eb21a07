/* test_mx_live: mx_resolve() and the resolver on our loop against a real
 * DNS server: Debian's unbound started by tests/dns/start-unbound.sh on
 * 127.0.0.1, serving tests/dns/zone.conf.in (multi-MX, equal preferences,
 * null MX, A only, no address at all, AAAA, dual-stack, a CNAME, MX hosts
 * that do not resolve, caps, NXDOMAIN, SERVFAIL). Also: address literals,
 * cancellation at each stage, a server that never answers (our timeout),
 * and the resolver's own answers. Fails (never skips) without unbound:
 * scripts/deps.sh installs it. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "check.h"
#include "dns/mx.h"
#include "dns/resolver.h"
#include "ev/loop.h"

static struct ev_loop *g_loop;
static struct dns *g_dns;

/* --- the test server ------------------------------------------------------ */

/* A port free for both UDP and TCP on 127.0.0.1 (unbound binds both). */
static int free_port(void)
{
    for (int tries = 0; tries < 20; tries++) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof sin;
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        int t = socket(AF_INET, SOCK_STREAM, 0);
        int port = -1;
        if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&sin, sizeof sin) == 0 &&
            getsockname(u, (struct sockaddr *)&sin, &sl) == 0 &&
            bind(t, (struct sockaddr *)&sin, sizeof sin) == 0)
            port = ntohs(sin.sin_port);
        close(u);
        close(t);
        if (port > 0)
            return port;
    }
    return -1;
}

/* A UDP socket on 127.0.0.1 that is never read: a DNS server that never
 * answers. Returns the fd; *port is its port. */
static int blackhole(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
        perror("blackhole");
        exit(1);
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

static char g_srvdir[PATH_MAX];
static pid_t g_srvpid;

static void server_start(int port)
{
    /* tests/unit/test_mx_live.c -> tests/dns/start-unbound.sh */
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    if (slash == NULL) {
        fprintf(stderr, "test_mx_live: cannot find tests/dns from %s\n", __FILE__);
        exit(1);
    }
    snprintf(slash, sizeof script - (size_t)(slash - script), "/../dns/start-unbound.sh");
    check_tmpdir("mx_live", g_srvdir, sizeof g_srvdir);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' %d '%s' %d", script, port, g_srvdir, (int)getpid());
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "test_mx_live: FAILED: the test DNS server did not start (%s)\n", cmd);
        exit(1);
    }
    char pidfile[PATH_MAX + 16];
    snprintf(pidfile, sizeof pidfile, "%s/unbound.pid", g_srvdir);
    FILE *f = fopen(pidfile, "r");
    int pid = 0;
    if (f == NULL || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "test_mx_live: no pid in %s\n", pidfile);
        exit(1);
    }
    fclose(f);
    g_srvpid = (pid_t)pid;
}

static void server_stop(void)
{
    if (g_srvpid > 0)
        kill(g_srvpid, SIGTERM);
}

/* --- running requests ----------------------------------------------------- */

struct waiter {
    struct mx_result *res;
    int calls;
};

static void on_mx(void *arg, struct mx_result *res)
{
    struct waiter *w = arg;
    w->calls++;
    if (w->res) /* a second call would be a bug; keep the first */
        mx_result_free(res);
    else
        w->res = res;
    ev_loop_stop(g_loop);
}

static void stop_cb(struct ev_loop *loop, void *arg)
{
    ev_loop_stop(loop);
}

/* Runs the loop for ms milliseconds (or until something stops it). */
static void run_for(uint64_t ms)
{
    ev_timer_id t = ev_timer_add(g_loop, ms, stop_cb, NULL);
    ev_loop_run(g_loop);
    ev_timer_cancel(g_loop, t);
}

/* Resolves domain with `dns` and returns the result (caller frees). When
 * no answer comes within 10 s, that is a failed check and the result is
 * an empty one with status -1. */
static struct mx_result *resolve_with(struct dns *dns, const char *domain)
{
    struct waiter w = {0};
    struct mx_req *req = mx_resolve(dns, domain, on_mx, &w);
    CHECK(req != NULL);
    CHECK_EQ_INT(w.calls, 0); /* never from inside mx_resolve() */
    uint64_t start = clock_mono_ms();
    while (w.calls == 0 && clock_mono_ms() - start < 10000)
        run_for(10000);
    CHECK_EQ_INT(w.calls, 1);
    if (w.calls == 0) {
        fprintf(stderr, "  no answer for %s\n", domain);
        mx_cancel(req);
        w.res = calloc(1, sizeof *w.res);
        w.res->status = (enum mx_status)-1;
    }
    return w.res;
}

/* Resolves domain with the test server and checks status and host count. */
static struct mx_result *expect(const char *domain, enum mx_status status, size_t nhosts)
{
    struct mx_result *r = resolve_with(g_dns, domain);
    if (r->status != status || r->nhosts != nhosts)
        fprintf(stderr, "  %s: status %d, %zu hosts (%s)\n", domain, (int)r->status,
                r->nhosts, r->why);
    CHECK_EQ_INT(r->status, status);
    CHECK_EQ_INT(r->nhosts, nhosts);
    return r;
}

/* The address in text form, in a static buffer. */
static const char *addr_text(const struct sockaddr_storage *ss)
{
    static char buf[INET6_ADDRSTRLEN];
    const void *p = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (inet_ntop(ss->ss_family, p, buf, sizeof buf) == NULL)
        buf[0] = '\0';
    return buf;
}

static int addr_is(const struct sockaddr_storage *ss, const char *text)
{
    const char *buf = addr_text(ss);
    if (strcmp(buf, text) != 0) {
        fprintf(stderr, "  address %s, expected %s\n", buf, text);
        return 0;
    }
    return 1;
}

/* Checks host i: name, preference, and a single address. */
static void check_host1(const struct mx_result *r, size_t i, const char *name, unsigned pref,
                        const char *addr)
{
    CHECK(i < r->nhosts);
    if (i >= r->nhosts)
        return;
    CHECK_EQ_STR(r->hosts[i].name, name);
    CHECK_EQ_INT(r->hosts[i].pref, pref);
    CHECK_EQ_INT(r->hosts[i].naddrs, 1);
    CHECK(addr_is(&r->hosts[i].addrs[0], addr));
}

/* --- the cases ------------------------------------------------------------ */

/* Answers that are only a status (and whether the MX was implicit). */
static void test_statuses(void)
{
    static const struct {
        const char *domain;
        enum mx_status status;
        int implicit;
    } cases[] = {
        {"nullmx.test", MX_NULLMX, 0},    /* RFC 7505 */
        {"nothing.test", MX_NOHOSTS, 1},  /* neither MX nor address */
        {"badhost.test", MX_NOHOSTS, 0},  /* the only MX host: NXDOMAIN */
        {"missing.test", MX_NXDOMAIN, 0},
        {"servfail.test", MX_TEMPFAIL, 0},
        {"[127.0.0.256]", MX_NXDOMAIN, 0}, /* no usable literal */
        {"[IPv6:::]", MX_NXDOMAIN, 0},
        /* Not names at all: refused before any DNS. */
        {"", MX_NXDOMAIN, 0},
        {"a..b", MX_NXDOMAIN, 0},
        {"sp ace.test", MX_NXDOMAIN, 0},
        {"x\xc3\xa9.test", MX_NXDOMAIN, 0},
        {".test", MX_NXDOMAIN, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t start = clock_mono_ms();
        struct mx_result *r = expect(cases[i].domain, cases[i].status, 0);
        CHECK_EQ_INT(r->implicit, cases[i].implicit);
        CHECK(clock_mono_ms() - start < 8000); /* SERVFAIL comes quickly */
        if (cases[i].status == MX_NULLMX)
            CHECK(strstr(r->why, "null MX") != NULL);
        if (cases[i].status == MX_TEMPFAIL)
            CHECK(strstr(r->why, "SERVFAIL") != NULL);
        mx_result_free(r);
    }
}

static void test_multi(void)
{
    /* Case and a final dot make no difference. */
    const char *names[] = {"multi.test", "MULTI.Test."};
    for (size_t i = 0; i < 2; i++) {
        struct mx_result *r = expect(names[i], MX_OK, 3);
        CHECK_EQ_INT(r->implicit, 0);
        CHECK_EQ_STR(r->canon, ""); /* no CNAME there */
        check_host1(r, 0, "mx1.multi.test", 10, "127.0.0.2");
        check_host1(r, 1, "mx2.multi.test", 20, "127.0.0.3");
        check_host1(r, 2, "mx3.multi.test", 30, "127.0.0.4");
        if (r->nhosts > 0)
            CHECK_EQ_INT(((struct sockaddr_in *)&r->hosts[0].addrs[0])->sin_port, 0);
        mx_result_free(r);
    }
}

static void test_equal(void)
{
    int a_first = 0, b_first = 0;
    for (int i = 0; i < 40 && (a_first == 0 || b_first == 0 || i < 10); i++) {
        struct mx_result *r = expect("equal.test", MX_OK, 3);
        check_host1(r, 0, "first.equal.test", 5, "127.0.0.5");
        if (r->nhosts == 3 && !strcmp(r->hosts[1].name, "a.equal.test")) {
            a_first++;
            check_host1(r, 1, "a.equal.test", 10, "127.0.0.6");
            check_host1(r, 2, "b.equal.test", 10, "127.0.0.7");
        } else {
            b_first++;
            check_host1(r, 1, "b.equal.test", 10, "127.0.0.7");
            check_host1(r, 2, "a.equal.test", 10, "127.0.0.6");
        }
        mx_result_free(r);
    }
    /* 2^-39 odds of a false failure. */
    CHECK(a_first > 0);
    CHECK(b_first > 0);
}

/* No MX, cases that resolve to one host: implicit MX, AAAA only, CNAME,
 * a best MX host that does not exist, address literals. */
static void test_one_host(void)
{
    static const struct {
        const char *domain, *host;
        unsigned pref;
        const char *addr;
        int implicit;
        const char *canon;
    } cases[] = {
        {"aonly.test", "aonly.test", 0, "127.0.0.9", 1, ""},
        {"v6.test", "host6.v6.test", 10, "::1", 0, ""},
        {"cname.test", "mx.real.test", 10, "127.0.0.12", 0, "real.test"},
        {"partial.test", "ok.partial.test", 20, "127.0.0.13", 0, ""},
        {"[127.0.0.1]", "[127.0.0.1]", 0, "127.0.0.1", 0, ""},
        {"[IPv6:::1]", "[IPv6:::1]", 0, "::1", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mx_result *r = expect(cases[i].domain, MX_OK, 1);
        check_host1(r, 0, cases[i].host, cases[i].pref, cases[i].addr);
        CHECK_EQ_INT(r->implicit, cases[i].implicit);
        CHECK_EQ_STR(r->canon, cases[i].canon);
        mx_result_free(r);
    }
}

static void test_dual(void)
{
    struct mx_result *r = expect("dual.test", MX_OK, 1);
    if (r->nhosts == 1) {
        const struct mx_host *h = &r->hosts[0];
        CHECK_EQ_STR(h->name, "host.dual.test");
        CHECK_EQ_INT(h->naddrs, 3);
        CHECK(addr_is(&h->addrs[0], "::1"));
        CHECK_EQ_INT(h->addrs[1].ss_family, AF_INET);
        CHECK_EQ_INT(h->addrs[2].ss_family, AF_INET);
        /* The order of the A records is the server's. */
        char a1[INET6_ADDRSTRLEN];
        snprintf(a1, sizeof a1, "%s", addr_text(&h->addrs[1]));
        const char *a2 = addr_text(&h->addrs[2]);
        CHECK((!strcmp(a1, "127.0.0.10") && !strcmp(a2, "127.0.0.11")) ||
              (!strcmp(a1, "127.0.0.11") && !strcmp(a2, "127.0.0.10")));
    }
    mx_result_free(r);
}

static void test_caps(void)
{
    struct mx_result *r = expect("many.test", MX_OK, MX_HOSTS_MAX);
    if (r->nhosts == MX_HOSTS_MAX) {
        CHECK_EQ_STR(r->hosts[0].name, "big.many.test");
        CHECK_EQ_INT(r->hosts[0].naddrs, MX_ADDRS_MAX);
        for (size_t i = 0; i < r->hosts[0].naddrs; i++) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&r->hosts[0].addrs[i];
            CHECK_EQ_INT(sin->sin_family, AF_INET);
            CHECK_EQ_INT(ntohl(sin->sin_addr.s_addr) >> 8, 0x7f0002);
        }
        for (size_t i = 1; i < MX_HOSTS_MAX; i++) {
            char name[32], addr[32];
            snprintf(name, sizeof name, "h%zu.many.test", i + 1);
            snprintf(addr, sizeof addr, "127.0.1.%zu", i + 1);
            check_host1(r, i, name, (unsigned)(i + 1), addr);
        }
    }
    mx_result_free(r);
}

/* Cancels the request once its address lookups are in flight: checked
 * before each wait of the loop. When libunbound answers the MX and every
 * address in one batch (all cached), the request completes first; then
 * the test tries again. */
static struct mx_req *g_cancel_req;
static int g_cancelled_mid, g_completed;

static void cancel_hook(struct ev_loop *loop, void *arg)
{
    if (g_cancel_req != NULL && dns_pending(g_dns) > 1) {
        mx_cancel(g_cancel_req);
        g_cancel_req = NULL;
        g_cancelled_mid = 1;
    }
}

static void on_mx_cancel(void *arg, struct mx_result *res)
{
    g_cancel_req = NULL; /* its handle is dead now */
    g_completed++;
    mx_result_free(res);
    ev_loop_stop(g_loop);
}

static void test_cancel(void)
{
    struct waiter w = {0};
    /* At once, while the MX query is out. */
    struct mx_req *req = mx_resolve(g_dns, "multi.test", on_mx, &w);
    mx_cancel(req);
    CHECK_EQ_INT(dns_pending(g_dns), 0);
    /* A literal, whose answer waits on a timer. */
    req = mx_resolve(g_dns, "[127.0.0.1]", on_mx, &w);
    mx_cancel(req);
    mx_cancel(NULL);
    run_for(300);
    CHECK_EQ_INT(w.calls, 0);

    /* While the address lookups are out (many.test has 20 hosts). */
    ev_hook_add(g_loop, cancel_hook, NULL);
    for (int tries = 0; tries < 50 && !g_cancelled_mid; tries++) {
        g_cancel_req = mx_resolve(g_dns, "many.test", on_mx_cancel, NULL);
        uint64_t start = clock_mono_ms();
        while (g_cancel_req != NULL && clock_mono_ms() - start < 5000)
            run_for(50);
        CHECK(g_cancel_req == NULL);
    }
    CHECK(g_cancelled_mid);
    CHECK_EQ_INT(dns_pending(g_dns), 0);
    int completed = g_completed;
    run_for(300); /* late answers arrive and are dropped */
    CHECK_EQ_INT(g_completed, completed);
    CHECK_EQ_INT(dns_pending(g_dns), 0);

    /* Still working afterwards. */
    mx_result_free(expect("multi.test", MX_OK, 3));
}

/* --- the resolver on its own ---------------------------------------------- */

struct qwait {
    int calls;
    enum dns_status status;
    size_t count;
    int rdlen0;
    char why[64];
    char canon[64];
};

static void on_query(void *arg, const struct dns_answer *a)
{
    struct qwait *q = arg;
    q->calls++;
    q->status = a->status;
    q->count = a->count;
    q->rdlen0 = a->count ? a->rdlen[0] : -1;
    snprintf(q->why, sizeof q->why, "%s", a->why ? a->why : "");
    snprintf(q->canon, sizeof q->canon, "%s", a->canonname ? a->canonname : "");
    ev_loop_stop(g_loop);
}

static struct qwait query(struct dns *dns, const char *name, int type)
{
    struct qwait q = {0};
    struct dns_query *h = dns_query(dns, name, type, on_query, &q);
    CHECK(h != NULL);
    CHECK_EQ_INT(q.calls, 0);
    uint64_t start = clock_mono_ms();
    while (h && q.calls == 0 && clock_mono_ms() - start < 10000)
        run_for(10000);
    CHECK_EQ_INT(q.calls, 1);
    return q;
}

static void test_resolver(void)
{
    struct qwait q = query(g_dns, "aonly.test", DNS_TYPE_A);
    CHECK_EQ_INT(q.status, DNS_OK);
    CHECK_EQ_INT(q.count, 1);
    CHECK_EQ_INT(q.rdlen0, 4);
    q = query(g_dns, "host6.v6.test", DNS_TYPE_AAAA);
    CHECK_EQ_INT(q.status, DNS_OK);
    CHECK_EQ_INT(q.rdlen0, 16);
    q = query(g_dns, "nothing.test", DNS_TYPE_A);
    CHECK_EQ_INT(q.status, DNS_NODATA);
    CHECK_EQ_INT(q.count, 0);
    q = query(g_dns, "missing.test", DNS_TYPE_A);
    CHECK_EQ_INT(q.status, DNS_NXDOMAIN);
    q = query(g_dns, "servfail.test", DNS_TYPE_A);
    CHECK_EQ_INT(q.status, DNS_TEMPFAIL);
    CHECK_EQ_STR(q.why, "SERVFAIL");
    q = query(g_dns, "cname.test", DNS_TYPE_A);
    CHECK_EQ_INT(q.status, DNS_NODATA); /* real.test has an MX, no A */
    CHECK_EQ_STR(q.canon, "real.test.");
    /* Outside the test zone the server refuses: libunbound says SERVFAIL. */
    q = query(g_dns, "example.com", DNS_TYPE_MX);
    CHECK_EQ_INT(q.status, DNS_TEMPFAIL);

    /* Cancelled queries never call back. */
    struct qwait c = {0};
    struct dns_query *h1 = dns_query(g_dns, "multi.test", DNS_TYPE_MX, on_query, &c);
    struct dns_query *h2 = dns_query(g_dns, "equal.test", DNS_TYPE_MX, on_query, &c);
    CHECK_EQ_INT(dns_pending(g_dns), 2);
    dns_cancel(h1);
    dns_cancel(h2);
    dns_cancel(NULL);
    CHECK_EQ_INT(dns_pending(g_dns), 0);
    run_for(200);
    CHECK_EQ_INT(c.calls, 0);
}

/* A server that never answers: our timeout turns it into TEMPFAIL. */
static void test_timeout(void)
{
    int port;
    int fd = blackhole(&port);
    char server[64];
    snprintf(server, sizeof server, "127.0.0.1:%d", port);
    struct buf err = BUF_INIT;
    struct dns *dns = dns_new(g_loop, server, &err);
    CHECK(dns != NULL);
    if (dns == NULL) {
        fprintf(stderr, "dns_new: %s\n", err.data ? err.data : "?");
        buf_free(&err);
        close(fd);
        return;
    }
    dns_set_timeout(dns, 300);
    uint64_t start = clock_mono_ms();
    struct mx_result *r = resolve_with(dns, "multi.test");
    uint64_t took = clock_mono_ms() - start;
    CHECK_EQ_INT(r->status, MX_TEMPFAIL);
    CHECK(strstr(r->why, "timeout") != NULL);
    CHECK(took >= 290 && took < 3000);
    mx_result_free(r);
    /* Freed with a cancelled query that libunbound still works on. */
    struct qwait q = {0};
    CHECK(dns_query(dns, "aonly.test", DNS_TYPE_A, on_query, &q) != NULL);
    dns_free(dns);
    run_for(100);
    CHECK_EQ_INT(q.calls, 0);
    close(fd);
}

static void test_new(void)
{
    const char *bad[] = {"", "nonsense", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:53x", "[::1", "[::1]x", "1.2.3:53", "[]:53"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct buf err = BUF_INIT;
        struct dns *dns = dns_new(g_loop, bad[i], &err);
        CHECK(dns == NULL);
        if (dns != NULL)
            fprintf(stderr, "  accepted server %s\n", bad[i]);
        CHECK(err.len > 0);
        dns_free(dns);
        buf_free(&err);
    }
    const char *good[] = {"127.0.0.1", "127.0.0.1:5353", "[::1]:5353", "::1", NULL};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct buf err = BUF_INIT;
        struct dns *dns = dns_new(g_loop, good[i], &err);
        CHECK(dns != NULL);
        if (dns == NULL)
            fprintf(stderr, "  refused server %s: %s\n", good[i] ? good[i] : "(resolv.conf)",
                    err.data ? err.data : "?");
        dns_free(dns);
        buf_free(&err);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int port = free_port();
    if (port < 0) {
        fprintf(stderr, "test_mx_live: no free port\n");
        return 1;
    }
    server_start(port);
    atexit(server_stop);

    g_loop = ev_loop_new();
    char server[64];
    snprintf(server, sizeof server, "127.0.0.1:%d", port);
    struct buf err = BUF_INIT;
    g_dns = dns_new(g_loop, server, &err);
    if (g_dns == NULL) {
        fprintf(stderr, "test_mx_live: dns_new: %s\n", err.data ? err.data : "?");
        return 1;
    }
    buf_free(&err);

    test_new();
    test_resolver();
    test_statuses();
    test_multi();
    test_equal();
    test_one_host();
    test_dual();
    test_caps();
    test_cancel();
    test_timeout();

    dns_free(g_dns);
    ev_loop_free(g_loop);
    return check_result("test_mx_live");
}
