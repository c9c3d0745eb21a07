/* dmarc_send.c: the gzip file and the message of one aggregate report
 * (RFC 7489 §7.2.1.1). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "base/base64.h"
#include "base/clock.h"
#include "base/xmalloc.h"
#include "cmd/dmarc_priv.h"

/* The MIME boundary: base64 text and our plain part never hold "--=_". */
#define DMARC_BOUNDARY "=_tern-dmarc-report"
/* Base64 lines of 76 characters (RFC 2045 §6.8). */
#define DMARC_B64_LINE 57

int dmarc_send_pack(struct dmarc_report_file *f, const char *xml, size_t n)
{
    int len = snprintf(f->name, sizeof f->name, "%s!%s!%lld!%lld.xml.gz", f->receiver,
                       f->policy_domain, f->begin, f->end);
    if (len < 0 || (size_t)len >= sizeof f->name)
        return -ENAMETOOLONG;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 15 + 16: a gzip header and trailer around the deflate stream. */
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -EIO;
    uLong bound = deflateBound(&zs, (uLong)n);
    char *w = buf_reserve(&f->gz, bound);
    zs.next_in = (Bytef *)(uintptr_t)xml;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)w;
    zs.avail_out = (uInt)bound;
    int zr = deflate(&zs, Z_FINISH);
    size_t out = bound - zs.avail_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END)
        return -EIO;
    buf_commit(&f->gz, out);
    return 0;
}

/* The Subject of §7.2.1.1, folded at its white space when long. */
static void dmarc_send_subject(const struct dmarc_report_file *f, struct buf *out)
{
    struct buf one = BUF_INIT;
    buf_printf(&one, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n",
               f->policy_domain, f->receiver, f->report_id);
    if (one.len <= 78 + 2)
        buf_append(out, one.data, one.len);
    else
        buf_printf(out, "Subject: Report Domain: %s\r\n Submitter: %s\r\n Report-ID: <%s>\r\n",
                   f->policy_domain, f->receiver, f->report_id);
    buf_free(&one);
}

void dmarc_send_message(const struct dmarc_report_file *f, const char *from, const char *to,
                        struct buf *out)
{
    char date[64], day[32];
    clock_rfc5322(clock_wall(), date, sizeof date);
    time_t t = (time_t)f->begin;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(day, sizeof day, "%Y-%m-%d", &tm) == 0)
        snprintf(day, sizeof day, "%lld", f->begin);
    buf_printf(out, "From: %s\r\nTo: %s\r\n", from, to);
    dmarc_send_subject(f, out);
    buf_printf(out,
               "Date: %s\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=\"" DMARC_BOUNDARY "\"\r\n"
               "\r\n"
               "This is a DMARC aggregate report in MIME format.\r\n"
               "\r\n"
               "--" DMARC_BOUNDARY "\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n"
               "Content-Transfer-Encoding: 7bit\r\n"
               "\r\n"
               "DMARC aggregate report (RFC 7489) from %s for %s:\r\n"
               "%llu message(s) on %s (UTC). The report is the attached file.\r\n"
               "\r\n"
               "--" DMARC_BOUNDARY "\r\n"
               "Content-Type: application/gzip; name=\"%s\"\r\n"
               "Content-Disposition: attachment; filename=\"%s\"\r\n"
               "Content-Transfer-Encoding: base64\r\n"
               "\r\n",
               date, f->receiver, f->policy_domain, f->messages, day, f->name, f->name);
    char line[BASE64_ENCODED_SIZE(DMARC_B64_LINE)];
    for (size_t i = 0; i < f->gz.len; i += DMARC_B64_LINE) {
        size_t k = f->gz.len - i < DMARC_B64_LINE ? f->gz.len - i : DMARC_B64_LINE;
        ssize_t w = base64_encode(f->gz.data + i, k, line, sizeof line);
        if (w > 0) {
            buf_append(out, line, (size_t)w);
            buf_puts(out, "\r\n");
        }
    }
    buf_puts(out, "\r\n--" DMARC_BOUNDARY "--\r\n");
}
