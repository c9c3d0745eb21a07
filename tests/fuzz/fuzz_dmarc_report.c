/* libFuzzer target: mailauth/dmarc_report's row lines (the daily file a
 * report is made from is on disk, so untrusted). The input is read as a
 * row; a row that reads must format to a line that reads back to the same
 * line, and make a report that is well-formed enough: one <feedback>
 * element, no octet XML 1.0 cannot hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "fuzz_xml_text.h"
#include "mailauth/dmarc_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > DMARC_REPORT_LINE_MAX + 10)
        return 0;
    static struct dmarc_report_row row, back;
    if (dmarc_report_row_parse(&row, (const char *)data, size) != 0)
        return 0;
    struct buf line = BUF_INIT, again = BUF_INIT, x = BUF_INIT;
    dmarc_report_row_format(&row, &line);
    if (dmarc_report_row_parse(&back, line.data, line.len) != 0)
        abort();
    dmarc_report_row_format(&back, &again);
    if (again.len != line.len || memcmp(again.data, line.data, line.len) != 0)
        abort();
    struct dmarc_report_meta meta = {"org", "a@b.example", NULL, "id", 0, 1};
    struct dmarc_report_row rows[2] = {row, back};
    if (dmarc_report_xml(&meta, rows, 2, &x) != 0)
        abort();
    if (strstr(x.data, "<feedback>") == NULL || strstr(x.data, "</feedback>\n") == NULL ||
        strstr(x.data, "<count>2</count>") == NULL)
        abort();
    fuzz_xml_text_check(x.data, x.len);
    buf_free(&line);
    buf_free(&again);
    buf_free(&x);
    return 0;
}
