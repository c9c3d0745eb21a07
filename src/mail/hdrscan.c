/* hdrscan.c: the header-section scan and the fields a submission adds. */
#include "mail/hdrscan.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

void hdrscan_init(struct hdrscan *h)
{
    memset(h, 0, sizeof *h);
    h->bol = 1;
}

/* A field name ended (at its colon): note the ones we look for. */
static void hdrscan_name_seen(struct hdrscan *h)
{
    const char *n = h->name;
    if (!strcmp(n, "received"))
        h->received++;
    else if (!strcmp(n, "date"))
        h->seen |= HDRSCAN_DATE;
    else if (!strcmp(n, "message-id")) {
        h->in_msgid = !(h->seen & HDRSCAN_MSGID); /* the first one only */
        h->seen |= HDRSCAN_MSGID;
    }
    else if (!strcmp(n, "from"))
        h->seen |= HDRSCAN_FROM;
}

/* The line at h->line_start is no header field: the body starts there. */
static void hdrscan_body_starts(struct hdrscan *h)
{
    h->done = 1;
    h->nosep = 1;
    h->end = h->line_start;
}

void hdrscan_feed(struct hdrscan *h, const char *p, size_t from, size_t len)
{
    if (!h->fed && from < len) {
        h->fed = 1;
        h->line_start = from; /* the content may start after what the caller put first */
    }
    for (size_t i = from; i < len && !h->done; i++) {
        unsigned char c = (unsigned char)p[i];
        if (h->bol) {
            if (c == '\r' && !h->bol_cr) {
                h->bol_cr = 1; /* a CR at line start: wait for LF to decide */
                continue;
            }
            if (c == '\n') {
                h->done = 1; /* empty line: end of the header section */
                h->end = h->line_start;
                break;
            }
            if (h->bol_cr) {
                hdrscan_body_starts(h); /* CR, then no LF: no field, no empty line */
                break;
            }
            h->bol = 0;
            /* A folded line continues the previous field; the first
             * line cannot be one. */
            h->in_name = c != ' ' && c != '\t';
            if (!h->in_name && h->nfields == 0) {
                hdrscan_body_starts(h);
                break;
            }
            h->name_len = h->name_total = 0;
            h->name_ws = 0;
            if (h->in_name) {
                h->in_msgid = 0;
                h->nfields++;
            }
        }
        if (c == '\n') {
            h->bol = 1;
            h->bol_cr = 0;
            h->line_start = i + 1;
            continue;
        }
        if (!h->in_name) {
            if (h->in_msgid && c != '\r' && h->msgid_len + 1 < sizeof h->msgid)
                h->msgid[h->msgid_len++] = (char)c;
            continue;
        }
        if (c == ':' && h->name_total > 0) {
            h->name[h->name_len] = '\0';
            if (h->name_total == h->name_len)
                hdrscan_name_seen(h);
            h->in_name = 0;
        } else if ((c == ' ' || c == '\t') && h->name_total > 0) {
            h->name_ws = 1;
        } else if (c < 33 || c > 126 || c == ':' || h->name_ws) {
            hdrscan_body_starts(h); /* no field name: this line is body */
            break;
        } else {
            h->name_total++;
            if (h->name_len + 1 < sizeof h->name)
                h->name[h->name_len++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
        }
    }
}

/* RFC 5322 §3.2.4: the display name as a quoted-string; controls (and so
 * CR and LF, which would start a new field) are dropped, '"' and '\'
 * escaped. Empty after that: nothing is written. */
static void hdrscan_put_name(struct buf *out, const char *name)
{
    struct buf q = BUF_INIT;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        if (*s < 0x20 || *s == 0x7f)
            continue;
        if (*s == '"' || *s == '\\')
            buf_putc(&q, '\\');
        buf_putc(&q, (char)*s);
    }
    if (q.len) {
        buf_putc(out, '"');
        buf_append(out, q.data, q.len);
        buf_puts(out, "\" ");
    }
    buf_free(&q);
}

void hdrscan_fixes(const struct hdrscan *h, const char *id_left, const char *host,
                   const char *from_name, const char *from_addr, struct buf *out)
{
    size_t before = out->len;
    if (!(h->seen & HDRSCAN_DATE)) {
        char date[64];
        clock_rfc5322(clock_wall(), date, sizeof date);
        buf_printf(out, "Date: %s\r\n", date);
    }
    if (!(h->seen & HDRSCAN_MSGID))
        buf_printf(out, "Message-ID: <%s@%s>\r\n", id_left, host);
    if (from_addr && !(h->seen & HDRSCAN_FROM)) {
        buf_puts(out, "From: ");
        if (from_name)
            hdrscan_put_name(out, from_name);
        buf_printf(out, "<%s>\r\n", from_addr);
    }
    if (out->len > before && h->nosep)
        buf_puts(out, "\r\n"); /* what follows is body */
}

/* The identifier in v[0..n): see hdrscan_message_id. */
static int hdrscan_id_in(const char *v, size_t n, struct buf *out)
{
    const char *lt = memchr(v, '<', n);
    if (lt) {
        const char *gt = memchr(lt + 1, '>', n - (size_t)(lt + 1 - v));
        if (gt) {
            buf_append(out, lt + 1, (size_t)(gt - lt - 1));
            return 0;
        }
    }
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -ENOENT;
    buf_append(out, v, n);
    return 0;
}

int hdrscan_message_id(const struct hdrscan *h, const struct buf *added, struct buf *out)
{
    if (h->seen & HDRSCAN_MSGID)
        return hdrscan_id_in(h->msgid, h->msgid_len, out);
    static const char field[] = "Message-ID:";
    if (added == NULL || added->len == 0)
        return -ENOENT;
    for (size_t i = 0; i + sizeof field - 1 <= added->len; i++) {
        if ((i == 0 || added->data[i - 1] == '\n') &&
            memcmp(added->data + i, field, sizeof field - 1) == 0) {
            const char *v = added->data + i + sizeof field - 1;
            const char *eol = memchr(v, '\r', added->len - (size_t)(v - added->data));
            size_t n = eol ? (size_t)(eol - v) : added->len - (size_t)(v - added->data);
            return hdrscan_id_in(v, n, out);
        }
    }
    return -ENOENT;
}
