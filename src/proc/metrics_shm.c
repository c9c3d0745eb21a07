/* metrics_shm.c: the shared counter regions (metrics_shm.h). */
#include "proc/metrics_shm.h"

#include <errno.h>
#include <sys/mman.h>

static struct metrics_shm metrics_shm_private;

struct metrics_shm *metrics_shm = &metrics_shm_private;
struct qmetrics *metrics_qshm;

/* The region is shared between processes: the counters must be atomic
 * instructions on the memory itself, never a lock inside the process. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 || ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free for a shared mapping");

static void *metrics_shm_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int metrics_shm_create(void)
{
    if (metrics_shm != &metrics_shm_private)
        return 0; /* made once: counters survive the children's restarts */
    /* Anonymous mappings are zero-filled: every counter starts at 0, and
     * pages of the domain table nobody touches cost no memory. */
    struct metrics_shm *n = metrics_shm_map(sizeof *n);
    if (n == NULL)
        return -errno;
    struct qmetrics *q = metrics_shm_map(sizeof *q);
    if (q == NULL) {
        int e = errno;
        munmap(n, sizeof *n);
        return -e;
    }
    metrics_shm = n;
    metrics_qshm = q;
    return 0;
}

void metrics_shm_net_start(void)
{
    for (unsigned i = 0; i < METRICS_ROLES; i++)
        atomic_store_explicit(&metrics_shm->open[i], 0, memory_order_relaxed);
    if (metrics_qshm) {
        munmap(metrics_qshm, sizeof *metrics_qshm);
        metrics_qshm = NULL;
    }
}
