/* libFuzzer target: mailauth/spf_macro. The first octet picks the kind of
 * string; the rest is the macro string, then after each NUL the values of
 * s, l, o, d, h, p (what a sender, a HELO and DNS control). Checks that
 * the check and the expansion agree, that only the letters a kind admits
 * are reported, that an expansion stays under its cap and leaves the
 * output as it was when refused, and that spf_macro_domain() only makes
 * names DNS can be asked. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mailauth/dnsq.h"
#include "mailauth/spf_macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum spf_macro_kind kind = (enum spf_macro_kind)(data[0] % 3);
    /* Exact-size copy: a read past the string is an ASan report. */
    size_t n = size - 1;
    char *all = malloc(n + 1);
    memcpy(all, data + 1, n);
    all[n] = '\0';
    size_t slen = strlen(all);
    char *s = malloc(slen ? slen : 1);
    memcpy(s, all, slen);
    const char *vals[6] = {"", "", "", "", "", NULL};
    const char *p = all + slen;
    for (int i = 0; i < 6 && p < all + n; i++) {
        p++;
        vals[i] = p;
        p += strlen(p);
    }
    struct spf_macro_vars v = {
        .s = vals[0], .l = vals[1], .o = vals[2], .d = vals[3], .h = vals[4], .p = vals[5],
        .i = "192.0.2.1", .v = "in-addr", .c = "192.0.2.1", .r = NULL, .t = "1",
    };

    uint32_t letters = 0;
    int ck = spf_macro_check(s, slen, kind, &letters);
    if (ck != 0 && ck != -EINVAL)
        abort();
    uint32_t allowed = 0;
    for (const char *l = kind == SPF_MACRO_DOMAIN ? "slodiphv" : "slodiphvcrt"; *l; l++)
        allowed |= SPF_MACRO_BIT(*l);
    if (ck == 0 && (letters & ~allowed))
        abort();

    struct buf out = BUF_INIT;
    buf_puts(&out, "pre");
    int rc = spf_macro_expand(s, slen, kind, &v, &out);
    if (ck != 0 && rc != -EINVAL)
        abort();
    if (ck == 0 && rc != 0 && rc != -E2BIG)
        abort();
    if (rc != 0 && (out.len != 3 || memcmp(out.data, "pre", 3) != 0))
        abort();
    if (rc == 0 && (out.len < 3 || out.len - 3 > SPF_MACRO_OUT_MAX))
        abort();
    if (kind == SPF_MACRO_DOMAIN) {
        char name[DNS_NAME_MAX];
        int d = spf_macro_domain(s, slen, &v, &out, name);
        if (ck != 0 && d != -EINVAL)
            abort();
        if (ck == 0 && d != 0 && d != -EDOM)
            abort();
        if (d == 0 && !dnsq_name_ok(name, strlen(name)))
            abort();
    }
    buf_free(&out);
    free(s);
    free(all);
    return 0;
}
