/* libFuzzer target: mail/envelope's parser on hostile input. On success
 * the envelope serialises, that parses again, and serialising the result
 * gives the same octets; on failure the envelope is left cleared. Leaks
 * are reported by ASan's leak checker. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope e, f;
    envelope_init(&e);
    envelope_init(&f);
    if (envelope_parse((const char *)data, size, &e) < 0) {
        if (e.from || e.envid || e.client_ip || e.client_name || e.helo || e.auth_user ||
            e.rcpts || e.nrcpts || e.qid[0] || e.size || e.arrival)
            abort();
        return 0;
    }
    if (e.nrcpts > ENVELOPE_MAX_RCPTS || strlen(e.qid) > ENVELOPE_QID_MAX)
        abort();
    struct buf s1 = BUF_INIT, s2 = BUF_INIT;
    envelope_serialize(&e, &s1);
    if (envelope_parse(s1.data, s1.len, &f) < 0)
        abort();
    envelope_serialize(&f, &s2);
    if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len))
        abort();
    if (f.nrcpts != e.nrcpts)
        abort();
    buf_free(&s1);
    buf_free(&s2);
    envelope_clear(&e);
    envelope_clear(&f);
    return 0;
}
