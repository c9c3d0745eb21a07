/* net_relay_ipc.c: see net_relay_ipc.h. */
#include "proc/net_relay_ipc.h"

#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/sizes.h"
#include "ipc/ipc_types.h"
#include "proc/metrics_shm.h"

static void net_relay_ipc_answer(void *arg, uint64_t id, const struct result *res, size_t n,
                                 const char *relay, int peer_dsn)
{
    struct ipc_chan *ipc = arg;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, id);
    ipc_put_str(&b, relay);
    ipc_put_u32(&b, peer_dsn ? 1 : 0);
    ipc_put_u32(&b, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        ipc_put_result(&b, &res[i]);
    if (ipc_send(ipc, IPC_RELAY_DONE, &b, -1) < 0)
        log_err("relay: cannot answer the queue for request %llu", (unsigned long long)id);
    buf_free(&b);
}

struct relay *net_relay_ipc_new(struct ev_loop *loop, const struct config *cfg,
                                struct ipc_chan *ipc, struct dns *dns)
{
    return relay_new(loop, cfg, dns, metrics_shm->relay, net_relay_ipc_answer, ipc);
}

void net_relay_ipc_job(struct relay *r, struct ipc_msg *msg)
{
    struct ipc_rd rd;
    ipc_rd_init(&rd, msg);
    uint64_t id = ipc_get_u64(&rd);
    char domain[DNS_NAME_MAX];
    ipc_get_str(&rd, domain, sizeof domain);
    uint64_t len = ipc_get_u64(&rd);
    size_t elen;
    const char *ep = ipc_get_bytes(&rd, &elen, IPC_MAX_PAYLOAD);
    int fd = msg->fd;
    msg->fd = -1;
    struct envelope env;
    envelope_init(&env);
    if (ipc_rd_end(&rd) < 0 || envelope_parse(ep, elen, &env) < 0) {
        /* relay_submit answers for a request it cannot use: no recipient
         * is known, so the queue defers them all. */
        envelope_clear(&env);
        domain[0] = '\0';
    }
    relay_submit(r, id, domain, &env, fd, len);
}
