/* libFuzzer target: mailauth/dkim_tags, dkim_sig and dkim_key, the parsers
 * of what a message (a DKIM-Signature field) and DNS (a key record) hand
 * the verifier. The input is parsed as a tag list, as a signature's value
 * and as a key record. Asserts with abort():
 *  - a tag list's tags lie inside the input, have valid names, no two the
 *    same, values without white space at either end; an error leaves none;
 *  - a signature's texts lie inside the input, b= where b_off says, its key
 *    name a DNS name, h= with From, sizes within their limits, x= after t=;
 *    an error has a reason;
 *  - a key is revoked exactly when it has no OpenSSL key, has a size, and
 *    an error leaves nothing; colon lists and base64 terminate. */
#include <errno.h>
#include <openssl/err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim_key.h"
#include "mailauth/dkim_sig.h"
#include "mailauth/dkim_tags.h"
#include "mailauth/dnsq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct buf tmp, out;

static void inside(const char *base, size_t n, const char *p, size_t len)
{
    if (len && (p < base || p + len > base + n))
        abort();
}

static bool wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct dkim_tags t;
    int rc = dkim_tags_parse(&t, p, size);
    if (rc != 0) {
        if ((rc != -EINVAL && rc != -E2BIG) || t.n != 0)
            abort();
    }
    for (size_t i = 0; i < t.n; i++) {
        const struct dkim_tag *tag = &t.tag[i];
        inside(p, size, tag->name, tag->name_len);
        inside(p, size, tag->value, tag->value_len);
        if (tag->name_len == 0 || !((tag->name[0] | 0x20) >= 'a' && (tag->name[0] | 0x20) <= 'z'))
            abort();
        if (tag->value_len && (wsp(tag->value[0]) || wsp(tag->value[tag->value_len - 1])))
            abort();
        for (size_t k = 0; k < i; k++)
            if (t.tag[k].name_len == tag->name_len &&
                memcmp(t.tag[k].name, tag->name, tag->name_len) == 0)
                abort();
        /* Every value through the value parsers. */
        size_t pos = 0, len;
        const char *item;
        int steps = 0;
        while (dkim_list_next(tag->value, tag->value_len, &pos, &item, &len) == 1) {
            inside(tag->value, tag->value_len, item, len);
            if (len == 0 || ++steps > (int)tag->value_len)
                abort();
        }
        if (dkim_b64_decode(tag->value, tag->value_len, 4096, &out) == 0 &&
            out.len > tag->value_len)
            abort();
        uint64_t x;
        dkim_decimal(tag->value, tag->value_len, 76, &x);
    }

    struct dkim_sig sig;
    const char *why = NULL;
    rc = dkim_sig_parse(&sig, p, size, &tmp, &why);
    if (rc == 0) {
        inside(p, size, sig.d, sig.d_len);
        inside(p, size, sig.s, sig.s_len);
        inside(p, size, sig.i, sig.i_len);
        inside(p, size, sig.h, sig.h_len);
        inside(p, size, sig.b, sig.b_len);
        if (sig.b != p + sig.b_off || sig.b_len == 0 || sig.sig_len == 0 ||
            sig.sig_len > DKIM_SIG_BYTES_MAX || sig.h_from == 0 || sig.nh > DKIM_H_MAX ||
            sig.nh < sig.h_from + sig.h_subject || sig.i_len > DKIM_AUID_MAX ||
            (sig.bh_len != DKIM_HASH_LEN && sig.bh_len != 20) ||
            !dnsq_name_ok(sig.qname, strlen(sig.qname)) ||
            (sig.has_t && sig.has_x && sig.x <= sig.t) || sig.alg > DKIM_ALG_RSA_SHA1 ||
            sig.hcanon > DKIM_CANON_RELAXED || sig.bcanon > DKIM_CANON_RELAXED)
            abort();
        size_t pos = 0, len, n = 0;
        const char *name;
        while (dkim_sig_h_next(&sig, &pos, &name, &len) == 1)
            n++;
        if (n != sig.nh)
            abort();
    } else if (rc != -EINVAL || why == NULL) {
        abort();
    }

    struct dkim_key key = {0};
    rc = dkim_key_parse(&key, p, size, &tmp, &why);
    if (rc == 0) {
        if (key.revoked != (key.pkey == NULL) || (!key.revoked && key.bits == 0) ||
            key.bits > DKIM_RSA_BITS_MAX)
            abort();
    } else if ((rc != -EINVAL && rc != -ENOENT && rc != -ENOTSUP) || key.pkey || !why) {
        abort();
    }
    dkim_key_clear(&key);
    ERR_clear_error();
    return 0;
}
