/* fuzz_xml_text.h: what the DMARC report fuzz targets check of the XML
 * they made: only characters XML 1.0 can hold (whole UTF-8 sequences,
 * no control octet but TAB, LF, CR). Aborts otherwise. */
#ifndef TERN_FUZZ_XML_TEXT_H
#define TERN_FUZZ_XML_TEXT_H

#include <stdlib.h>

#include "base/strutil.h"

static void fuzz_xml_text_check(const char *x, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)x[i];
        if (c >= 0x80) {
            size_t k = strutil_utf8_len((const unsigned char *)x + i, n - i);
            if (k == 0)
                abort();
            i += k;
            continue;
        }
        if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f)
            abort();
        i++;
    }
}

#endif
