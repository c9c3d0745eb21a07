/* metrics_http: the Prometheus endpoint, a tiny HTTP/1.x server. The
 * parent binds the socket (metrics_listen, loopback only) before it drops
 * privileges; the queue process serves it on its own loop (docs/design.md: the
 * queue process owns metrics).
 *
 * GET or HEAD /metrics answers 200 with the exposition (proc/metrics);
 * another path 404, another method 405, a bad request 400/414/431/501/505
 * (base/http_req). One request per connection (Connection: close), the
 * request head capped at METRICS_HTTP_REQ_MAX octets and read within
 * METRICS_HTTP_TIMEOUT_MS, at most METRICS_HTTP_CLIENTS_MAX scrapers at
 * once (more are closed at once): a stuck or hostile client costs a few
 * kilobytes and cannot hold the queue process. */
#ifndef TERN_PROC_METRICS_HTTP_H
#define TERN_PROC_METRICS_HTTP_H

#include "conf/config.h"
#include "ev/loop.h"
#include "queue/queue.h"

#define METRICS_HTTP_REQ_MAX 8192
#define METRICS_HTTP_TIMEOUT_MS 5000
#define METRICS_HTTP_CLIENTS_MAX 8

/* In the parent, before the first fork: maps the shared counters
 * (proc/metrics_shm) and, when cfg->metrics_listen is set, binds it
 * (refusing a non-loopback address even if config_check was skipped).
 * Returns 0, or -errno after logging why (the daemon must not start). */
int metrics_parent_setup(const struct config *cfg);

/* In the net process: closes the inherited metrics socket. */
void metrics_http_drop(void);

struct metrics_http;

/* In the queue process, once the queue exists: points the queue at its
 * counters and serves the inherited socket, if any, on loop. Returns an
 * owned handle (metrics_http_free()). */
struct metrics_http *metrics_http_start(struct ev_loop *loop, struct queue *q);
/* Closes every scraper's connection; call before the queue is freed. */
void metrics_http_free(struct metrics_http *h);

#endif
