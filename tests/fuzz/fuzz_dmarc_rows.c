/* libFuzzer target: a DMARC rows file (proc/queue_dmarc writes it from
 * what the untrusted smtp process sent; `tern dmarc report` reads it) as
 * mailauth/dmarc_report's reader takes it: in pieces whose sizes the
 * first octet chooses, into the aggregation, then every report's XML.
 * Checked: the reader's counts add up to the lines, the same text in one
 * piece gives the same counts, each report counts exactly the messages
 * the aggregation says, and the XML holds only what XML 1.0 can. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "fuzz_xml_text.h"
#include "mailauth/dmarc_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_read(struct dmarc_report_agg *a, struct dmarc_report_reader *r,
                      const char *p, size_t n, size_t piece)
{
    dmarc_report_reader_init(r, a, 0, 4000000000LL);
    for (size_t i = 0; i < n; i += piece)
        dmarc_report_reader_feed(r, p + i, n - i < piece ? n - i : piece);
    dmarc_report_reader_end(r);
}

static unsigned long long fuzz_counts(const char *x)
{
    unsigned long long sum = 0;
    for (const char *p = x; (p = strstr(p, "<count>")) != NULL; p += 7)
        sum += strtoull(p + 7, NULL, 10);
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4 * DMARC_REPORT_LINE_MAX)
        return 0;
    size_t piece = (size_t)data[0] % 64 + 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    struct dmarc_report_agg *a = dmarc_report_agg_new(), *whole = dmarc_report_agg_new();
    struct dmarc_report_reader r, w;
    fuzz_read(a, &r, text, n, piece);
    fuzz_read(whole, &w, text, n, n ? n : 1);
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    if (n && text[n - 1] != '\n')
        lines++; /* a torn last line */
    if (r.rows + r.malformed + r.outside + r.full != lines || r.rows != w.rows ||
        r.malformed != w.malformed || dmarc_report_agg_count(a) != dmarc_report_agg_count(whole))
        abort();
    uint64_t total = 0;
    struct dmarc_report_meta meta = {"org", "a@b.example", NULL, "id", 0, 1};
    for (size_t i = 0; i < dmarc_report_agg_count(a); i++) {
        struct buf x = BUF_INIT;
        if (dmarc_report_agg_xml(a, i, &meta, &x) != 0)
            abort();
        if (fuzz_counts(x.data) != dmarc_report_agg_messages(a, i))
            abort();
        total += dmarc_report_agg_messages(a, i);
        fuzz_xml_text_check(x.data, x.len);
        buf_free(&x);
    }
    if (total != r.rows)
        abort();
    dmarc_report_reader_free(&r);
    dmarc_report_reader_free(&w);
    dmarc_report_agg_free(a);
    dmarc_report_agg_free(whole);
    return 0;
}
