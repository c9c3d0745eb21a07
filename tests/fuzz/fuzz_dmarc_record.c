/* libFuzzer target: mailauth/dmarc_record. The input is parsed as it is
 * and with "v=DMARC1; " in front (so most inputs reach the tags). Checks
 * what a parsed record promises: values in range, p=none when p was not
 * valid, sp = p when not given, fo bits that print and read back the
 * same, URIs NUL-terminated and made of URI characters only, at most
 * DMARC_URIS_MAX of them; that an input which is no DMARC record is
 * refused; and that a refusal says why. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dmarc_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_uris(const struct dmarc_uri *u, size_t n)
{
    if (n > DMARC_URIS_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(u[i].uri, DMARC_URI_MAX);
        if (len == 0 || len == DMARC_URI_MAX || strchr(u[i].uri, ':') == NULL)
            abort();
        for (size_t k = 0; k < len; k++) {
            unsigned char c = (unsigned char)u[i].uri[k];
            if (c <= 0x20 || c >= 0x7f || c == ',' || c == '!' || c == ';')
                abort();
        }
    }
}

static void check_parse(const char *text, size_t n)
{
    struct dmarc_record rec;
    const char *why = NULL;
    int rc = dmarc_record_parse(&rec, text, n, &why);
    if (!dmarc_record_is_dmarc(text, n) && rc == 0)
        abort();
    if (rc != 0) {
        if (rc != -EINVAL || why == NULL)
            abort();
        return;
    }
    if (why != NULL || rec.p > DMARC_POLICY_REJECT || rec.sp > DMARC_POLICY_REJECT ||
        rec.adkim > DMARC_ALIGN_STRICT || rec.aspf > DMARC_ALIGN_STRICT || rec.pct > 100 ||
        rec.fo == 0 || rec.fo > 0xf || rec.rf != DMARC_RF_AFRF)
        abort();
    if (!rec.p_valid && (rec.p != DMARC_POLICY_NONE || rec.nrua == 0))
        abort();
    if (!rec.sp_given && rec.sp != rec.p)
        abort();
    check_uris(rec.rua, rec.nrua);
    check_uris(rec.ruf, rec.nruf);
    /* fo prints as a valid fo value that reads back the same. */
    char fo[8], again[40];
    dmarc_record_fo_text(rec.fo, fo);
    size_t len = (size_t)snprintf(again, sizeof again, "v=DMARC1; p=none; fo=%s", fo);
    struct dmarc_record r2;
    if (dmarc_record_parse(&r2, again, len, NULL) != 0 || r2.fo != rec.fo)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 70000)
        return 0;
    check_parse((const char *)data, size);
    static const char head[] = "v=DMARC1; ";
    char *t = malloc(sizeof head - 1 + size + 1);
    memcpy(t, head, sizeof head - 1);
    memcpy(t + sizeof head - 1, data, size);
    check_parse(t, sizeof head - 1 + size);
    free(t);
    return 0;
}
