/* libFuzzer target: mailauth/spf_record. The input is parsed as an SPF
 * record as it is, and with "v=spf1 " in front (so most inputs reach the
 * terms), twice into the same storage; and split as TXT RDATA
 * (dnsq_txt_parse), which must account for every octet. Checks what a parsed record
 * promises: spans inside the copied text, CIDR lengths in range, known
 * mechanisms and results, every domain-spec valid; and that an error
 * names a span of the input and leaves no terms. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dnsq.h"
#include "mailauth/spf_macro.h"
#include "mailauth/spf_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct spf_record rec;

static void check_span(const struct spf_record *r, struct spf_span s)
{
    if ((size_t)s.off + s.len > r->len)
        abort();
}

static void check_domain(const struct spf_record *r, struct spf_span s)
{
    check_span(r, s);
    if (s.len && spf_macro_check(spf_record_at(r, s), s.len, SPF_MACRO_DOMAIN, NULL) != 0)
        abort();
}

static void check_parse(const char *text, size_t n)
{
    struct spf_record_error err;
    memset(&err, 0, sizeof err);
    int rc = spf_record_parse(&rec, text, n, &err);
    if (rc != 0) {
        if (rc != -EINVAL || err.what == NULL || (size_t)err.term.off + err.term.len > n ||
            rec.nterms != 0)
            abort();
        return;
    }
    if (rec.len != n || memcmp(rec.text, text, n) != 0 || rec.text[n] != '\0')
        abort();
    bool all = false;
    for (size_t i = 0; i < rec.nterms; i++) {
        const struct spf_term *t = &rec.terms[i];
        if (t->mech > SPF_MECH_EXISTS || t->cidr4 > 32 || t->cidr6 > 128)
            abort();
        if (t->result != SPF_PASS && t->result != SPF_FAIL && t->result != SPF_SOFTFAIL &&
            t->result != SPF_NEUTRAL)
            abort();
        check_span(&rec, t->text);
        check_domain(&rec, t->spec);
        if (t->spec.len && (t->spec.off < t->text.off ||
                            t->spec.off + t->spec.len > t->text.off + t->text.len))
            abort();
        if ((t->mech == SPF_MECH_INCLUDE || t->mech == SPF_MECH_EXISTS) && t->spec.len == 0)
            abort();
        /* A term is printable ASCII without spaces once it parsed. */
        for (size_t k = 0; k < t->text.len; k++) {
            unsigned char c = (unsigned char)rec.text[t->text.off + k];
            if (c <= 0x20 || c >= 0x7f)
                abort();
        }
        all |= t->mech == SPF_MECH_ALL;
    }
    if (all != rec.has_all)
        abort();
    check_domain(&rec, rec.redirect);
    check_domain(&rec, rec.exp);
}

static void check_rdata(const uint8_t *data, size_t size)
{
    struct dnsq_str strs[64];
    int k = dnsq_txt_parse(data, size, strs, 64);
    if (k < 0)
        return;
    size_t total = 0;
    for (int i = 0; i < k; i++) {
        if (strs[i].p < data + total + 1 || strs[i].p + strs[i].len > data + size)
            abort();
        total += 1 + strs[i].len;
    }
    if (total != size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    check_rdata(data, size);
    if (spf_record_is_spf(text, size))
        check_parse(text, size);
    char *withv = malloc(size + 7);
    memcpy(withv, "v=spf1 ", 7);
    memcpy(withv + 7, data, size);
    check_parse(withv, size + 7);
    size_t n1 = rec.nterms;
    check_parse(withv, size + 7); /* again, into the same storage */
    if (rec.nterms != n1)
        abort();
    free(withv);
    return 0;
}
