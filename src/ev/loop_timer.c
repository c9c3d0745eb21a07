/* loop_timer: the loop's one-shot timers in a binary min-heap keyed by
 * (deadline, creation order); add and cancel are O(log n). */
#include <limits.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "ev/loop_priv.h"

static int ev_heap_less(const struct ev_loop *loop, uint32_t a, uint32_t b)
{
    const struct ev_tslot *x = &loop->ts[a], *y = &loop->ts[b];
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline;
    return x->seq < y->seq;
}

static void ev_heap_place(struct ev_loop *loop, uint32_t pos, uint32_t slot)
{
    loop->heap[pos] = slot;
    loop->ts[slot].heap_pos = pos;
}

static void ev_heap_up(struct ev_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!ev_heap_less(loop, slot, loop->heap[parent]))
            break;
        ev_heap_place(loop, pos, loop->heap[parent]);
        pos = parent;
    }
    ev_heap_place(loop, pos, slot);
}

static void ev_heap_down(struct ev_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= loop->nheap)
            break;
        if (child + 1 < loop->nheap && ev_heap_less(loop, loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!ev_heap_less(loop, loop->heap[child], slot))
            break;
        ev_heap_place(loop, pos, loop->heap[child]);
        pos = child;
    }
    ev_heap_place(loop, pos, slot);
}

/* Removes the heap entry at pos and returns its slot to the free list. */
static void ev_timer_remove(struct ev_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    uint32_t last = loop->heap[--loop->nheap];
    if (pos < loop->nheap) {
        ev_heap_place(loop, pos, last);
        ev_heap_down(loop, pos);
        ev_heap_up(loop, loop->ts[last].heap_pos);
    }
    struct ev_tslot *t = &loop->ts[slot];
    t->heap_pos = TSLOT_FREE;
    t->cb = NULL;
    t->arg = NULL;
    if (++t->gen == 0) /* keeps ids non-zero */
        t->gen = 1;
    t->next_free = loop->free_ts;
    loop->free_ts = slot;
}

ev_timer_id ev_timer_add(struct ev_loop *loop, uint64_t ms, ev_timer_cb cb, void *arg)
{
    uint32_t slot = loop->free_ts;
    if (slot == TSLOT_FREE) {
        if (loop->nts == TSLOT_FREE - 1)
            fatal("ev_timer_add: too many timers");
        uint32_t n = loop->nts ? loop->nts * 2 : 64;
        if (n >= TSLOT_FREE || n < loop->nts)
            n = TSLOT_FREE - 1;
        loop->ts = xrealloc(loop->ts, (size_t)n * sizeof *loop->ts);
        loop->heap = xrealloc(loop->heap, (size_t)n * sizeof *loop->heap);
        for (uint32_t i = n; i > loop->nts; i--) {
            struct ev_tslot *t = &loop->ts[i - 1];
            memset(t, 0, sizeof *t);
            t->gen = 1;
            t->heap_pos = TSLOT_FREE;
            t->next_free = loop->free_ts;
            loop->free_ts = i - 1;
        }
        loop->nts = n;
        slot = loop->free_ts;
    }
    struct ev_tslot *t = &loop->ts[slot];
    loop->free_ts = t->next_free;
    uint64_t now = clock_mono_ms();
    t->deadline = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
    t->seq = ++loop->seq;
    t->cb = cb;
    t->arg = arg;
    loop->heap[loop->nheap] = slot;
    t->heap_pos = loop->nheap++;
    ev_heap_up(loop, t->heap_pos);
    return ((uint64_t)t->gen << 32) | slot;
}

void ev_timer_cancel(struct ev_loop *loop, ev_timer_id id)
{
    uint32_t slot = (uint32_t)id;
    if (id == 0 || slot >= loop->nts)
        return;
    struct ev_tslot *t = &loop->ts[slot];
    if (t->gen != (uint32_t)(id >> 32) || t->heap_pos == TSLOT_FREE)
        return;
    ev_timer_remove(loop, t->heap_pos);
}

/* Fires the due timers. Timers added by these callbacks wait for the next
 * iteration (seq limit), so a callback re-adding a 0 ms timer cannot
 * starve I/O. */
void ev_timer_run_due(struct ev_loop *loop)
{
    uint64_t now = clock_mono_ms();
    uint64_t limit = loop->seq;
    while (loop->nheap > 0 && !loop->stop) {
        uint32_t slot = loop->heap[0];
        struct ev_tslot *t = &loop->ts[slot];
        if (t->deadline > now || t->seq > limit)
            break;
        ev_timer_cb cb = t->cb;
        void *arg = t->arg;
        ev_timer_remove(loop, 0);
        cb(loop, arg);
    }
}

int ev_timer_next_wait(const struct ev_loop *loop)
{
    if (loop->nheap == 0)
        return EV_WAIT_FOREVER;
    uint64_t deadline = loop->ts[loop->heap[0]].deadline;
    uint64_t now = clock_mono_ms();
    if (deadline <= now)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

