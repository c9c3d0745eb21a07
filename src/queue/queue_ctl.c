/* queue_ctl.c: the operator's commands on the queue (queue_ctl.h). The
 * index holds no envelopes, so listings read each message's envelope and
 * recipient states from its segment, as a delivery attempt does. */
#include "queue/queue_ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mail/envelope.h"
#include "mail/mailaddr.h"
#include "queue/queue_priv.h"

/* One message as read from the spool for a listing. */
struct qctl_msg {
    struct envelope env;
    struct store_slot *slots; /* owned, rec.nrcpt of them */
};

static int qctl_read(struct queue *q, const struct qmsg *m, struct qctl_msg *out)
{
    envelope_init(&out->env);
    out->slots = NULL;
    int fd = store_seg_fd(q->st, m->rec.seg);
    if (fd < 0)
        return fd;
    char *envbuf = NULL;
    int rc = store_read_env(fd, &m->rec, &envbuf);
    if (rc == 0 && (envelope_parse(envbuf, m->rec.env_len, &out->env) < 0 ||
                    out->env.nrcpts != m->rec.nrcpt))
        rc = -EBADMSG;
    free(envbuf);
    if (rc == 0) {
        out->slots = xcalloc(m->rec.nrcpt ? m->rec.nrcpt : 1, sizeof *out->slots);
        rc = store_read_slots(fd, &m->rec, out->slots);
    }
    if (rc < 0) {
        envelope_clear(&out->env);
        free(out->slots);
        out->slots = NULL;
    }
    return rc;
}

static void qctl_msg_clear(struct qctl_msg *cm)
{
    envelope_clear(&cm->env);
    free(cm->slots);
    cm->slots = NULL;
}

/* The live messages' keys in arrival order (queue ids sort by arrival),
 * so a listing is stable and commands on ALL survive index changes.
 * Returns an owned array; *n its length. */
static int qctl_key_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t *qctl_keys(const struct queue *q, size_t *n)
{
    uint64_t *keys = xcalloc(q->msgs.n ? q->msgs.n : 1, sizeof *keys);
    size_t k = 0;
    for (size_t i = 0; i < q->msgs.cap && k < q->msgs.n; i++) {
        if (!q->msgs.keys[i])
            continue;
        const struct qmsg *m = q->msgs.vals[i];
        if (m->state != QM_SYNCING) /* not yet accepted: not in the queue */
            keys[k++] = q->msgs.keys[i];
    }
    qsort(keys, k, sizeof *keys, qctl_key_cmp);
    *n = k;
    return keys;
}

static void qctl_put_addr(struct buf *out, const char *addr)
{
    if (addr == NULL || addr[0] == '\0')
        buf_puts(out, "MAILER-DAEMON");
    else
        strutil_escape(out, addr, strlen(addr));
}

static void qctl_put_time(struct buf *out, int64_t t, const char *fmt)
{
    char s[64];
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || localtime_r(&tt, &tm) == NULL || strftime(s, sizeof s, fmt, &tm) == 0)
        strutil_lcpy(s, "-", sizeof s);
    buf_puts(out, s);
}

#define QCTL_INDENT "                                          " /* 42 columns */

/* ---- list ---- */

static void qctl_list_one(struct queue *q, const struct qmsg *m, const struct qctl_msg *cm,
                          struct buf *out)
{
    char mark = m->state == QM_RUNNING ? '*' : (m->flags & QMF_HELD) ? '!' : ' ';
    buf_printf(out, "%s%c %8llu  ", m->rec.qid, mark, (unsigned long long)m->rec.content_len);
    qctl_put_time(out, (int64_t)(m->rec.arrival_us / 1000000u), "%a %b %e %H:%M:%S");
    buf_puts(out, "  ");
    qctl_put_addr(out, cm->env.from);
    buf_puts(out, "\n");
    const char *last_err = NULL;
    for (uint32_t i = 0; i < m->rec.nrcpt; i++) {
        const struct store_slot *s = &cm->slots[i];
        if (s->status != STORE_PENDING)
            continue;
        const char *why = s->error[0] ? s->error : NULL;
        if (queue_paused_addr(q->paused, cm->env.rcpts[i].addr))
            why = "delivery to this domain is paused by the operator";
        if (why && (last_err == NULL || strcmp(why, last_err) != 0)) {
            buf_puts(out, QCTL_INDENT "(");
            strutil_escape(out, why, strlen(why));
            buf_puts(out, ")\n");
        }
        last_err = why;
        buf_puts(out, QCTL_INDENT);
        qctl_put_addr(out, cm->env.rcpts[i].addr);
        buf_puts(out, "\n");
    }
    buf_puts(out, "\n");
}

int queue_ctl_list(struct queue *q, struct buf *out)
{
    size_t n;
    uint64_t *keys = qctl_keys(q, &n);
    if (n == 0) {
        buf_puts(out, "Mail queue is empty\n");
    } else {
        buf_puts(out, "-Queue ID--------  --Size-- ---Arrival Time---  -Sender/Recipient-------\n");
    }
    uint64_t bytes = 0;
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        const struct qmsg *m = idmap_get(&q->msgs, keys[i]);
        struct qctl_msg cm;
        int rc = qctl_read(q, m, &cm);
        if (rc < 0) {
            buf_printf(out, "%s   (cannot read the queue file: %s)\n\n", m->rec.qid,
                       strerror(-rc));
            continue;
        }
        qctl_list_one(q, m, &cm, out);
        qctl_msg_clear(&cm);
        bytes += m->rec.content_len;
        shown++;
    }
    if (n > 0)
        buf_printf(out, "-- %llu Kbytes in %zu Request%s.\n",
                   (unsigned long long)((bytes + 1023) / 1024), shown, shown == 1 ? "" : "s");
    for (size_t i = 0; i < q->paused->n; i++)
        buf_printf(out, "-- delivery to %s is paused\n", q->paused->domains[i]);
    free(keys);
    return 0;
}

/* ---- show ---- */

static const char *qctl_status_name(enum store_status s)
{
    return s == STORE_DONE ? "delivered" : s == STORE_FAILED ? "failed" : "pending";
}

static void qctl_put_notify(struct buf *out, unsigned notify)
{
    if (notify == 0) {
        buf_puts(out, "default");
        return;
    }
    const char *sep = "";
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{ENV_NOTIFY_NEVER, "NEVER"},
                 {ENV_NOTIFY_SUCCESS, "SUCCESS"},
                 {ENV_NOTIFY_FAILURE, "FAILURE"},
                 {ENV_NOTIFY_DELAY, "DELAY"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (notify & names[i].bit) {
            buf_printf(out, "%s%s", sep, names[i].name);
            sep = ",";
        }
    }
}

static void qctl_put_field(struct buf *out, const char *name, const char *value)
{
    if (value == NULL)
        return;
    buf_printf(out, "%-15s ", name);
    strutil_escape(out, value, strlen(value));
    buf_puts(out, "\n");
}

static const char *qctl_state_name(const struct queue *q, const struct qmsg *m)
{
    if (m->flags & QMF_DELETE)
        return "being delivered; deleted when this attempt ends";
    if (m->state == QM_RUNNING)
        return (m->flags & QMF_HELD) ? "being delivered; held when this attempt ends"
                                     : "being delivered";
    if (m->flags & QMF_HELD)
        return "on hold";
    if ((m->flags & QMF_PARKED) && m->next_attempt == INT64_MAX)
        return "waiting for a paused destination";
    return "waiting";
}

int queue_ctl_show(struct queue *q, const char *qid, struct buf *out)
{
    uint64_t key = queue_qid_key(qid);
    struct qmsg *m = key ? idmap_get(&q->msgs, key) : NULL;
    if (m == NULL || m->state == QM_SYNCING) {
        buf_puts(out, "no such message in the queue\n");
        return -ENOENT;
    }
    struct qctl_msg cm;
    int rc = qctl_read(q, m, &cm);
    if (rc < 0) {
        buf_printf(out, "cannot read the queue file: %s\n", strerror(-rc));
        return rc;
    }
    const struct envelope *e = &cm.env;
    int64_t now = clock_wall();
    int64_t arrival = (int64_t)(m->rec.arrival_us / 1000000u);
    qctl_put_field(out, "queue id:", m->rec.qid);
    qctl_put_field(out, "state:", qctl_state_name(q, m));
    buf_printf(out, "%-15s ", "arrival:");
    qctl_put_time(out, arrival, "%Y-%m-%d %H:%M:%S %z");
    buf_printf(out, " (%lld s ago)\n", (long long)(now > arrival ? now - arrival : 0));
    if (m->state == QM_WAITING && m->next_attempt != INT64_MAX && !(m->flags & QMF_HELD)) {
        buf_printf(out, "%-15s ", "next attempt:");
        if (m->next_attempt <= now)
            buf_puts(out, "now\n");
        else {
            qctl_put_time(out, m->next_attempt, "%Y-%m-%d %H:%M:%S %z");
            buf_puts(out, "\n");
        }
    }
    buf_printf(out, "%-15s %llu\n", "size:", (unsigned long long)m->rec.content_len);
    buf_printf(out, "%-15s <", "sender:");
    strutil_escape(out, e->from ? e->from : "", e->from ? strlen(e->from) : 0);
    buf_puts(out, ">\n");
    buf_printf(out, "%-15s %s%s\n", "body:",
               e->body == ENV_BODY_8BITMIME     ? "8BITMIME"
               : e->body == ENV_BODY_BINARYMIME ? "BINARYMIME"
                                                : "7BIT",
               e->smtputf8 ? ", SMTPUTF8" : "");
    if (e->ret_full || e->ret_hdrs)
        buf_printf(out, "%-15s %s\n", "dsn ret:", e->ret_full ? "FULL" : "HDRS");
    qctl_put_field(out, "dsn envid:", e->envid);
    if (e->client_ip || e->client_name) {
        buf_printf(out, "%-15s ", "client:");
        const char *name = e->client_name ? e->client_name : "unknown";
        strutil_escape(out, name, strlen(name));
        if (e->client_ip) {
            buf_puts(out, "[");
            strutil_escape(out, e->client_ip, strlen(e->client_ip));
            buf_puts(out, "]");
        }
        buf_puts(out, "\n");
    }
    qctl_put_field(out, "helo:", e->helo);
    qctl_put_field(out, "auth user:", e->auth_user);
    for (uint32_t i = 0; i < m->rec.nrcpt; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];
        const struct store_slot *s = &cm.slots[i];
        buf_printf(out, "%-15s <", "recipient:");
        strutil_escape(out, r->addr, strlen(r->addr));
        buf_puts(out, ">\n");
        qctl_put_field(out, "  orig to:", r->orcpt);
        buf_printf(out, "%-15s ", "  notify:");
        qctl_put_notify(out, r->notify);
        buf_puts(out, "\n");
        const char *status = qctl_status_name(s->status);
        if (s->status == STORE_PENDING && queue_paused_addr(q->paused, r->addr))
            status = "pending (destination paused)";
        buf_printf(out, "%-15s %s\n", "  status:", status);
        buf_printf(out, "%-15s %u\n", "  attempts:", s->attempts);
        if (s->last_attempt > 0) {
            buf_printf(out, "%-15s ", "  last attempt:");
            qctl_put_time(out, s->last_attempt, "%Y-%m-%d %H:%M:%S %z");
            buf_puts(out, "\n");
        }
        if (s->status == STORE_PENDING && s->next_attempt > now) {
            buf_printf(out, "%-15s ", "  next attempt:");
            qctl_put_time(out, s->next_attempt, "%Y-%m-%d %H:%M:%S %z");
            buf_puts(out, "\n");
        }
        if (s->error[0])
            qctl_put_field(out, "  last error:", s->error);
    }
    qctl_msg_clear(&cm);
    return 0;
}

/* ---- shape ---- */

/* Age columns in minutes, as qshape's defaults: under 5, 10, 20 ... 1280,
 * and older. */
#define QCTL_NCOLS 10

struct qctl_dom {
    char *name; /* owned, lowercased; NULL marks an empty slot */
    unsigned long total, bucket[QCTL_NCOLS];
};

struct qctl_shape {
    struct qctl_dom *v; /* open addressing, cap a power of two */
    size_t cap, n;
};

static uint64_t qctl_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 1099511628211ULL;
    }
    return h;
}

static struct qctl_dom *qctl_shape_get(struct qctl_shape *sh, const char *name)
{
    if ((sh->n + 1) * 2 > sh->cap) {
        struct qctl_shape big = {xcalloc(sh->cap ? sh->cap * 2 : 64, sizeof *big.v),
                                 sh->cap ? sh->cap * 2 : 64, sh->n};
        for (size_t i = 0; i < sh->cap; i++) {
            if (sh->v[i].name == NULL)
                continue;
            size_t k = (size_t)qctl_hash(sh->v[i].name) & (big.cap - 1);
            while (big.v[k].name)
                k = (k + 1) & (big.cap - 1);
            big.v[k] = sh->v[i];
        }
        free(sh->v);
        *sh = big;
    }
    size_t k = (size_t)qctl_hash(name) & (sh->cap - 1);
    while (sh->v[k].name && strutil_casecmp(sh->v[k].name, name) != 0)
        k = (k + 1) & (sh->cap - 1);
    if (sh->v[k].name == NULL) {
        sh->v[k].name = xstrdup(name);
        strutil_lower(sh->v[k].name);
        sh->n++;
    }
    return &sh->v[k];
}

static int qctl_dom_cmp(const void *a, const void *b)
{
    const struct qctl_dom *x = a, *y = b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void qctl_shape_row(struct buf *out, const char *name, const struct qctl_dom *d)
{
    buf_printf(out, "%30s %6lu", name, d->total);
    for (int b = 0; b < QCTL_NCOLS; b++)
        buf_printf(out, " %5lu", d->bucket[b]);
    buf_puts(out, "\n");
}

int queue_ctl_shape(struct queue *q, struct buf *out)
{
    size_t n;
    uint64_t *keys = qctl_keys(q, &n);
    struct qctl_shape sh = {NULL, 0, 0};
    struct qctl_dom total;
    memset(&total, 0, sizeof total);
    int64_t now = clock_wall();
    for (size_t i = 0; i < n; i++) {
        const struct qmsg *m = idmap_get(&q->msgs, keys[i]);
        struct qctl_msg cm;
        if (qctl_read(q, m, &cm) < 0)
            continue;
        int64_t arrival = (int64_t)(m->rec.arrival_us / 1000000u);
        int64_t age_min = now > arrival ? (now - arrival) / 60 : 0;
        int b = 0;
        for (int64_t limit = 5; b < QCTL_NCOLS - 1 && age_min >= limit; limit *= 2)
            b++;
        for (uint32_t r = 0; r < m->rec.nrcpt; r++) {
            if (cm.slots[r].status != STORE_PENDING)
                continue;
            const char *at = strrchr(cm.env.rcpts[r].addr, '@');
            struct qctl_dom *d = qctl_shape_get(&sh, at ? at + 1 : "(local)");
            d->total++;
            d->bucket[b]++;
            total.total++;
            total.bucket[b]++;
        }
        qctl_msg_clear(&cm);
    }
    free(keys);
    buf_printf(out, "%30s %6s", "", "T");
    static const char *heads[QCTL_NCOLS] = {"5",   "10",  "20",  "40",   "80",
                                            "160", "320", "640", "1280", "1280+"};
    for (int b = 0; b < QCTL_NCOLS; b++)
        buf_printf(out, " %5s", heads[b]);
    buf_puts(out, "\n");
    qctl_shape_row(out, "TOTAL", &total);
    /* Compact the table, then the busiest destinations first. */
    size_t k = 0;
    for (size_t i = 0; i < sh.cap; i++)
        if (sh.v[i].name)
            sh.v[k++] = sh.v[i];
    qsort(sh.v, k, sizeof *sh.v, qctl_dom_cmp);
    for (size_t i = 0; i < k; i++) {
        qctl_shape_row(out, sh.v[i].name, &sh.v[i]);
        free(sh.v[i].name);
    }
    free(sh.v);
    return 0;
}

/* ---- changes ---- */

/* Reads m's slots and rewrites its hold marks. */
static int qctl_set_hold(struct queue *q, struct qmsg *m, int held)
{
    int fd = store_seg_fd(q->st, m->rec.seg);
    if (fd < 0)
        return fd;
    struct store_slot *slots = xcalloc(m->rec.nrcpt ? m->rec.nrcpt : 1, sizeof *slots);
    int rc = store_read_slots(fd, &m->rec, slots);
    if (rc == 0)
        rc = store_slots_set_held(q->st, &m->rec, slots, held);
    free(slots);
    return rc;
}

static void qctl_due_now(struct queue *q, struct qmsg *m)
{
    m->next_attempt = 0;
    m->flags &= (uint8_t)~QMF_PARKED;
    queue_dispatch_schedule(q, m);
}

int queue_ctl_flush(struct queue *q, struct buf *out)
{
    size_t n, count = 0;
    uint64_t *keys = qctl_keys(q, &n);
    for (size_t i = 0; i < n; i++) {
        struct qmsg *m = idmap_get(&q->msgs, keys[i]);
        if (m->state != QM_WAITING || (m->flags & QMF_HELD))
            continue;
        qctl_due_now(q, m);
        count++;
    }
    free(keys);
    log_info("queue: flush requested by the operator: %zu messages", count);
    buf_printf(out, "%zu message%s queued for delivery now\n", count, count == 1 ? "" : "s");
    queue_dispatch_run(q);
    return 0;
}

/* Applies op to m; the text says what happened. Returns 0, or -EBUSY /
 * -EALREADY when the message is not in a state the op applies to. */
static int qctl_apply(struct queue *q, struct qmsg *m, enum queue_ctl_op op, struct buf *out)
{
    int running = m->state == QM_RUNNING;
    int rc = 0;
    switch (op) {
    case QCTL_RETRY:
        if (m->flags & QMF_HELD) {
            buf_printf(out, "%s: on hold (release it first)\n", m->rec.qid);
            return -EBUSY;
        }
        if (running) {
            buf_printf(out, "%s: being delivered now\n", m->rec.qid);
            return 0;
        }
        qctl_due_now(q, m);
        buf_printf(out, "%s: queued for delivery now\n", m->rec.qid);
        return 0;
    case QCTL_HOLD:
        if (m->flags & QMF_HELD) {
            buf_printf(out, "%s: already on hold\n", m->rec.qid);
            return -EALREADY;
        }
        /* A running attempt owns the slots: its end writes the marks. */
        if (!running)
            rc = qctl_set_hold(q, m, 1);
        if (rc < 0) {
            buf_printf(out, "%s: cannot write the hold: %s\n", m->rec.qid, strerror(-rc));
            return rc;
        }
        m->flags |= QMF_HELD;
        log_info("%s: held by the operator", m->rec.qid);
        buf_printf(out, "%s: %s\n", m->rec.qid,
                   running ? "on hold once the running attempt ends" : "on hold");
        return 0;
    case QCTL_RELEASE:
        if (!(m->flags & QMF_HELD)) {
            buf_printf(out, "%s: not on hold\n", m->rec.qid);
            return -EALREADY;
        }
        if (!running)
            rc = qctl_set_hold(q, m, 0);
        if (rc < 0) {
            buf_printf(out, "%s: cannot clear the hold: %s\n", m->rec.qid, strerror(-rc));
            return rc;
        }
        m->flags &= (uint8_t)~QMF_HELD;
        log_info("%s: released by the operator", m->rec.qid);
        if (!running)
            qctl_due_now(q, m);
        buf_printf(out, "%s: released\n", m->rec.qid);
        return 0;
    case QCTL_DELETE:
        if (running) {
            m->flags |= QMF_DELETE;
            buf_printf(out, "%s: deleted once the running attempt ends\n", m->rec.qid);
            return 0;
        }
        buf_printf(out, "%s: deleted\n", m->rec.qid);
        log_info("%s: deleted by the operator", m->rec.qid);
        queue_msg_finish(q, m); /* frees m */
        return 0;
    }
    return -EINVAL;
}

int queue_ctl_message(struct queue *q, enum queue_ctl_op op, const char *qid, struct buf *out)
{
    if (strcmp(qid, "ALL") != 0) {
        uint64_t key = queue_qid_key(qid);
        struct qmsg *m = key ? idmap_get(&q->msgs, key) : NULL;
        if (m == NULL || m->state == QM_SYNCING) {
            buf_puts(out, "no such message in the queue: ");
            strutil_escape(out, qid, strlen(qid));
            buf_puts(out, "\n");
            return -ENOENT;
        }
        int rc = qctl_apply(q, m, op, out);
        queue_dispatch_run(q);
        return rc == -EALREADY ? 0 : rc;
    }
    size_t n, done = 0;
    uint64_t *keys = qctl_keys(q, &n);
    struct buf scratch = BUF_INIT;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        struct qmsg *m = idmap_get(&q->msgs, keys[i]);
        if (m == NULL)
            continue;
        buf_reset(&scratch);
        int rc = qctl_apply(q, m, op, &scratch);
        if (rc == 0)
            done++;
        else if (rc != -EALREADY && rc != -EBUSY && err == 0)
            err = rc;
    }
    buf_free(&scratch);
    free(keys);
    static const char *verbs[] = {"queued for delivery now", "put on hold", "released",
                                  "deleted"};
    buf_printf(out, "%zu message%s %s\n", done, done == 1 ? "" : "s", verbs[op]);
    queue_dispatch_run(q);
    return err;
}

/* A destination as the operator types it: a domain name or an address
 * literal, nothing that could not appear after '@'. */
static int qctl_domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > MAILADDR_DOMAIN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '[' || c == ']' || c == ':'))
            return 0;
    }
    return 1;
}

int queue_ctl_pause(struct queue *q, const char *domain, int pause, struct buf *out)
{
    if (!qctl_domain_ok(domain)) {
        buf_puts(out, "not a domain name: ");
        strutil_escape(out, domain, strlen(domain));
        buf_puts(out, "\n");
        return -EINVAL;
    }
    int rc = queue_paused_change(q, domain, pause);
    if (rc < 0) {
        buf_printf(out, "cannot change the paused destinations: %s\n", strerror(-rc));
        return rc;
    }
    if (rc == 0) {
        buf_printf(out, "delivery to %s %s\n", domain,
                   pause ? "was already paused" : "was not paused");
        return 0;
    }
    log_info("queue: delivery to %s %s by the operator", domain, pause ? "paused" : "resumed");
    buf_printf(out, "delivery to %s %s\n", domain, pause ? "paused" : "resumed");
    if (pause)
        return 0;
    /* Messages that waited only for a paused domain are tried again. */
    size_t n;
    uint64_t *keys = qctl_keys(q, &n);
    for (size_t i = 0; i < n; i++) {
        struct qmsg *m = idmap_get(&q->msgs, keys[i]);
        if (m->state == QM_WAITING && (m->flags & QMF_PARKED) && !(m->flags & QMF_HELD))
            qctl_due_now(q, m);
    }
    free(keys);
    queue_dispatch_run(q);
    return 0;
}
