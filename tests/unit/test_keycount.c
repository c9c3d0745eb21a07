/* test_keycount: counts per key against a plain array as the model,
 * through growth and many removals (the backward shift must keep every
 * key reachable); and SipHash-2-4 against the paper's test vector. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/keycount.h"
#include "base/siphash.h"
#include "check.h"

static void test_siphash_vector(void)
{
    /* The paper's appendix A: key 00 01 .. 0f, message 00 01 .. 0e. */
    struct siphash_key k = {{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL}};
    unsigned char msg[15];
    for (int i = 0; i < 15; i++)
        msg[i] = (unsigned char)i;
    CHECK(siphash24(&k, msg, sizeof msg) == 0xa129ca6149be45e5ULL);
}

static void test_basic(void)
{
    struct keycount m;
    keycount_init(&m);
    CHECK_EQ_INT(keycount_get(&m, "192.0.2.1"), 0);
    CHECK_EQ_INT(keycount_remove(&m, "192.0.2.1"), 0); /* absent: nothing happens */
    CHECK_EQ_INT(keycount_add(&m, "192.0.2.1"), 1);
    CHECK_EQ_INT(keycount_add(&m, "192.0.2.1"), 2);
    CHECK_EQ_INT(keycount_add(&m, "2001:db8::1"), 1);
    CHECK_EQ_INT(keycount_get(&m, "192.0.2.1"), 2);
    CHECK_EQ_INT(keycount_get(&m, "192.0.2.10"), 0);
    CHECK_EQ_INT(keycount_size(&m), 2);
    CHECK_EQ_INT(keycount_remove(&m, "192.0.2.1"), 1);
    CHECK_EQ_INT(keycount_remove(&m, "192.0.2.1"), 0);
    CHECK_EQ_INT(keycount_get(&m, "192.0.2.1"), 0);
    CHECK_EQ_INT(keycount_size(&m), 1);
    CHECK_EQ_INT(keycount_remove(&m, "192.0.2.1"), 0);
    CHECK_EQ_INT(keycount_get(&m, "2001:db8::1"), 1);
    keycount_free(&m);
    CHECK_EQ_INT(keycount_get(&m, "2001:db8::1"), 0);
}

/* Random adds and removes over 3000 keys (the table grows to 4096 slots
 * and runs of probes get long), checked against the model each step. */
static void test_model(void)
{
    enum { KEYS = 3000, STEPS = 200000 };
    static unsigned model[KEYS];
    struct keycount m;
    keycount_init(&m);
    srand(7);
    char key[32];
    size_t distinct = 0;
    int bad = 0;
    for (int step = 0; step < STEPS && !bad; step++) {
        int k = rand() % KEYS;
        snprintf(key, sizeof key, "10.%d.%d.1", k / 256, k % 256);
        if (rand() % 3) {
            if (model[k]++ == 0)
                distinct++;
            bad |= keycount_add(&m, key) != model[k];
        } else {
            if (model[k] > 0 && --model[k] == 0)
                distinct--;
            bad |= keycount_remove(&m, key) != model[k];
        }
        if (step % 1000 == 0) {
            for (int j = 0; j < KEYS; j++) {
                snprintf(key, sizeof key, "10.%d.%d.1", j / 256, j % 256);
                bad |= keycount_get(&m, key) != model[j];
            }
            bad |= keycount_size(&m) != distinct;
        }
    }
    CHECK(!bad);
    /* Everything removed: empty again, every key gone. */
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "10.%d.%d.1", k / 256, k % 256);
        while (model[k] > 0)
            bad |= keycount_remove(&m, key) != --model[k];
    }
    CHECK(!bad);
    CHECK_EQ_INT(keycount_size(&m), 0);
    for (size_t i = 0; i < m.cap; i++)
        CHECK(m.slots[i].key == NULL);
    keycount_free(&m);
}

int main(void)
{
    test_siphash_vector();
    test_basic();
    test_model();
    return check_result("test_keycount");
}
