/* dnsq.c: helpers of the evaluators' DNS question interface (dnsq.h). */
#include "mailauth/dnsq.h"

#include <errno.h>

const char *dnsq_type_name(enum dnsq_type t)
{
    switch (t) {
    case DNSQ_A:
        return "A";
    case DNSQ_PTR:
        return "PTR";
    case DNSQ_MX:
        return "MX";
    case DNSQ_TXT:
        return "TXT";
    case DNSQ_AAAA:
        return "AAAA";
    }
    return "?";
}

int dnsq_name_ok(const char *name, size_t len)
{
    /* RFC 1035 §2.3.4: 63 octets a label, 255 on the wire, which is 253
     * in text without the final dot. */
    if (len == 0 || len > DNS_NAME_MAX - 3)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (++label > 63) {
            return 0;
        }
    }
    return label > 0;
}

int dnsq_txt_parse(const unsigned char *rd, size_t n, struct dnsq_str *out, size_t max)
{
    size_t i = 0, k = 0;
    while (i < n) {
        size_t len = rd[i];
        if (len > n - i - 1 || k == max)
            return -EINVAL;
        out[k].p = rd + i + 1;
        out[k].len = len;
        k++;
        i += 1 + len;
    }
    return (int)k;
}

void dnsq_txt_join(struct buf *out, const struct dnsq_rr *rr)
{
    buf_reset(out);
    for (size_t s = 0; s < rr->u.txt.n; s++)
        buf_append(out, rr->u.txt.strs[s].p, rr->u.txt.strs[s].len);
}
