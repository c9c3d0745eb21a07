/* test_sched: the scheduler's heap order and the retry backoff. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "queue/sched.h"

static void test_heap(void)
{
    struct sched s;
    sched_init(&s);
    struct sched_ent e;
    CHECK_EQ_INT(sched_pop(&s, &e), -ENOENT);
    CHECK_EQ_INT(sched_peek(&s, &e), -ENOENT);
    /* Pseudo-random times, many equal: popped in time order, equal times
     * in the order pushed. */
    uint32_t x = 12345;
    enum { N = 5000 };
    for (uint64_t i = 1; i <= N; i++) {
        x = x * 1103515245u + 12345u;
        sched_push(&s, (int64_t)((x >> 16) % 97), i);
    }
    CHECK_EQ_INT(sched_len(&s), N);
    int64_t last_when = -1;
    uint64_t last_key = 0;
    int bad = 0;
    for (size_t i = 0; i < N; i++) {
        struct sched_ent peeked;
        if (sched_peek(&s, &peeked) < 0 || sched_pop(&s, &e) < 0) {
            bad++;
            break;
        }
        if (peeked.key != e.key || e.when < last_when ||
            (e.when == last_when && e.key < last_key))
            bad++;
        last_when = e.when;
        last_key = e.key;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(sched_len(&s), 0);
    /* "At once" (0) comes before anything later pushed earlier. */
    sched_push(&s, 1700000000, 7);
    sched_push(&s, 0, 8);
    CHECK_EQ_INT(sched_pop(&s, &e), 0);
    CHECK_EQ_INT(e.key, 8);
    CHECK_EQ_INT(sched_pop(&s, &e), 0);
    CHECK_EQ_INT(e.key, 7);
    sched_free(&s);
}

static void test_backoff(void)
{
    /* No jitter (rnd 0): retry_min doubled per attempt, capped. */
    CHECK_EQ_INT(sched_backoff(300, 4000, 1, 0), 300);
    CHECK_EQ_INT(sched_backoff(300, 4000, 2, 0), 600);
    CHECK_EQ_INT(sched_backoff(300, 4000, 4, 0), 2400);
    CHECK_EQ_INT(sched_backoff(300, 4000, 5, 0), 4000);
    CHECK_EQ_INT(sched_backoff(300, 4000, 1000, 0), 4000);
    /* Jitter stays within 10% above. */
    int bad = 0;
    for (uint32_t r = 0; r < 100000; r += 7) {
        int64_t d = sched_backoff(300, 4000, 3, r * 2654435761u);
        if (d < 1200 || d > 1320)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* Degenerate settings never give a busy loop. */
    CHECK(sched_backoff(0, 0, 1, 0) >= 1);
    CHECK_EQ_INT(sched_backoff(10, 5, 3, 0), 10);
}

int main(void)
{
    test_heap();
    test_backoff();
    return check_result("test_sched");
}
