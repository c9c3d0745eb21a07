/* queue_pause.c: destinations the operator paused (`tern queue pause
 * DOMAIN`). The set is kept in <spool>/paused, one domain a line, so a
 * restart does not silently resume delivery the operator stopped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mail/mailaddr.h"
#include "queue/queue_priv.h"

/* More than this is an operator's mistake, not a plan. */
#define QUEUE_PAUSED_MAX 1000

static struct qpaused *queue_paused_new(void)
{
    struct qpaused *p = xcalloc(1, sizeof *p);
    p->refs = 1;
    return p;
}

struct qpaused *queue_paused_ref(struct qpaused *p)
{
    p->refs++;
    return p;
}

void queue_paused_unref(struct qpaused *p)
{
    if (p == NULL || --p->refs > 0)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->domains[i]);
    free(p->domains);
    free(p);
}

int queue_paused_has(const struct qpaused *p, const char *domain)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (strutil_casecmp(p->domains[i], domain) == 0)
            return 1;
    return 0;
}

int queue_paused_addr(const struct qpaused *p, const char *addr)
{
    if (p == NULL || p->n == 0)
        return 0;
    const char *at = strrchr(addr, '@');
    return at && queue_paused_has(p, at + 1);
}

static void queue_paused_push(struct qpaused *p, const char *domain)
{
    p->domains = xrealloc(p->domains, (p->n + 1) * sizeof *p->domains);
    char *d = xstrdup(domain);
    strutil_lower(d);
    p->domains[p->n++] = d;
}

int queue_paused_load(struct queue *q)
{
    struct qpaused *p = queue_paused_new();
    char *data = NULL;
    size_t len = 0;
    int rc = fsio_read_file(q->paused_path, 1 << 20, &data, &len);
    if (rc == -ENOENT)
        rc = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        size_t e = i;
        while (e < len && data[e] != '\n')
            e++;
        char line[MAILADDR_DOMAIN_MAX + 1];
        size_t l = e - i;
        if (l > 0 && l <= MAILADDR_DOMAIN_MAX && p->n < QUEUE_PAUSED_MAX) {
            memcpy(line, data + i, l);
            line[l] = '\0';
            if (!queue_paused_has(p, line))
                queue_paused_push(p, line);
        }
        i = e + 1;
    }
    free(data);
    if (rc < 0) {
        queue_paused_unref(p);
        return rc;
    }
    queue_paused_unref(q->paused);
    q->paused = p;
    for (size_t i = 0; i < p->n; i++)
        log_info("queue: delivery to %s is paused", p->domains[i]);
    return 0;
}

int queue_paused_change(struct queue *q, const char *domain, int add)
{
    if (queue_paused_has(q->paused, domain) == add)
        return 0;
    if (add && q->paused->n >= QUEUE_PAUSED_MAX)
        return -ENOSPC;
    /* A new snapshot: jobs still running keep the one they started with. */
    struct qpaused *p = queue_paused_new();
    for (size_t i = 0; i < q->paused->n; i++)
        if (strutil_casecmp(q->paused->domains[i], domain) != 0)
            queue_paused_push(p, q->paused->domains[i]);
    if (add)
        queue_paused_push(p, domain);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < p->n; i++)
        buf_printf(&b, "%s\n", p->domains[i]);
    int rc = fsio_write_file_atomic(q->paused_path, b.data ? b.data : "", b.len, 0600);
    buf_free(&b);
    if (rc < 0) {
        queue_paused_unref(p);
        return rc;
    }
    queue_paused_unref(q->paused);
    q->paused = p;
    return 1;
}
