/* mboxrd.c: see mboxrd.h. */
#include "mail/mboxrd.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static const char mboxrd_from[] = "From ";

void mboxrd_init(struct mboxrd *q)
{
    q->cr = 0;
    q->bol = 1;
    q->from = 0;
    q->last = -1;
}

static void mboxrd_put(struct mboxrd *q, struct buf *out, const char *s, size_t n)
{
    if (n == 0)
        return;
    buf_append(out, s, n);
    q->last = (unsigned char)s[n - 1];
}

/* One octet of the message after CRLF conversion. */
static void mboxrd_octet(struct mboxrd *q, char c, struct buf *out)
{
    if (q->bol) {
        /* A '>' added anywhere in the leading run quotes the line as well
         * as one in front: so the run goes out as it comes, and only a
         * partial "From " is held back. */
        if (q->from == 0 && c == '>') {
            mboxrd_put(q, out, &c, 1);
            return;
        }
        if (c == mboxrd_from[q->from]) {
            if (++q->from == sizeof mboxrd_from - 1) {
                mboxrd_put(q, out, ">From ", 6);
                q->from = 0;
                q->bol = 0;
            }
            return;
        }
        mboxrd_put(q, out, mboxrd_from, q->from);
        q->from = 0;
        q->bol = 0;
    }
    mboxrd_put(q, out, &c, 1);
    if (c == '\n')
        q->bol = 1;
}

void mboxrd_feed(struct mboxrd *q, const char *in, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (q->cr) {
            q->cr = 0;
            if (c != '\n')
                mboxrd_octet(q, '\r', out);
        }
        if (c == '\r') {
            q->cr = 1;
            continue;
        }
        mboxrd_octet(q, c, out);
    }
}

void mboxrd_finish(struct mboxrd *q, struct buf *out)
{
    if (q->cr) { /* a CR at the very end has no LF to pair with: kept */
        q->cr = 0;
        mboxrd_octet(q, '\r', out);
    }
    mboxrd_put(q, out, mboxrd_from, q->from);
    q->from = 0;
    if (q->last != '\n')
        mboxrd_put(q, out, "\n", 1);
    mboxrd_put(q, out, "\n", 1);
    q->bol = 1;
}

void mboxrd_from_line(struct buf *out, const char *sender, int64_t t)
{
    buf_puts(out, "From ");
    if (sender == NULL || sender[0] == '\0')
        sender = "MAILER-DAEMON";
    for (const char *s = sender; *s; s++) {
        unsigned char c = (unsigned char)*s;
        buf_putc(out, (c <= 0x20 || c == 0x7f) ? '_' : (char)c);
    }
    /* asctime's layout, always 24 octets; UTC, so no time zone file. */
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1000) {
        /* Out of asctime's four-digit years: the epoch, so the line keeps
         * its layout (readers do not look at the date). */
        tt = 0;
        gmtime_r(&tt, &tm);
    }
    buf_printf(out, " %.3s %.3s %2d %02d:%02d:%02d %04d\n", days + 3 * tm.tm_wday,
               months + 3 * tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               tm.tm_year + 1900);
}

int mboxrd_from_time(const char *line, size_t n, int64_t *t)
{
    if (n < 5 + MBOXRD_DATE_LEN + 1 || memcmp(line, mboxrd_from, 5) != 0 ||
        line[n - MBOXRD_DATE_LEN - 1] != ' ')
        return -EINVAL;
    char d[MBOXRD_DATE_LEN + 1];
    memcpy(d, line + n - MBOXRD_DATE_LEN, MBOXRD_DATE_LEN);
    d[MBOXRD_DATE_LEN] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(d, "%a %b %e %H:%M:%S %Y", &tm);
    if (end == NULL || *end != '\0')
        return -EINVAL;
    *t = (int64_t)timegm(&tm);
    return 0;
}
