/* dsn.c: RFC 3464 delivery status notifications in an RFC 6522
 * multipart/report, RFC 6533 for messages that came with SMTPUTF8.
 *
 * The report is built in three bodies first (explanation, status fields,
 * original), then the boundary is chosen so that it occurs in none of
 * them, then the header and the parts are written out. Everything that
 * comes from outside (addresses, the remote's reply, the original
 * message) is sanitised on the way: no control survives into a field,
 * 8-bit text only where the part may carry it, no line over 998 octets
 * (RFC 5322 §2.1.1). */
#include "mail/dsn.h"

#include <errno.h>
#include <string.h>

#include "base/clock.h"
#include "base/strutil.h"
#include "mail/dsn_param.h"
#include "mail/xtext.h"

/* RFC 5322 §2.1.1: at most 998 octets a line, 78 preferred. A word longer
 * than DSN_WORD_MAX is cut (with a folding space) so that a line with
 * its field name or indent stays within 998. */
#define DSN_LINE_MAX 998
#define DSN_WORD_MAX 900
#define DSN_FIELD_WIDTH 78
#define DSN_TEXT_WIDTH 76
/* RFC 2046 §5.1.1 allows 70; we take up to 60 from the caller and keep
 * the rest for what dsn_boundary_pick() may append. */
#define DSN_BOUNDARY_MAX 60
#define DSN_BOUNDARY_ROOM 70

static const char *const dsn_action_names[] = {"failed", "delayed", "delivered", "relayed",
                                               "expanded"};

const char *dsn_action_name(enum dsn_action a)
{
    if ((unsigned)a < sizeof dsn_action_names / sizeof dsn_action_names[0])
        return dsn_action_names[a];
    return "failed";
}

int dsn_should_send(const struct envelope *e, const struct envelope_rcpt *r,
                    enum dsn_action action)
{
    if (e->from == NULL || e->from[0] == '\0')
        return 0;
    /* RFC 3461 §4.1: without NOTIFY, an MTA may act as if FAILURE or
     * FAILURE,DELAY had been given; we take the latter. */
    unsigned n = r->notify ? r->notify : ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY;
    if (n & ENV_NOTIFY_NEVER)
        return 0;
    switch (action) {
    case DSN_ACTION_FAILED:
        return (n & ENV_NOTIFY_FAILURE) != 0;
    case DSN_ACTION_DELAYED:
        return (n & ENV_NOTIFY_DELAY) != 0;
    case DSN_ACTION_DELIVERED:
    case DSN_ACTION_RELAYED:
    case DSN_ACTION_EXPANDED:
        return (n & ENV_NOTIFY_SUCCESS) != 0;
    }
    return 0;
}

/* ---- text helpers ---- */

/* Appends the octets of s[0..n) fit for a field or text line: controls
 * (CR and LF included) become spaces, runs of spaces one space, leading
 * and trailing spaces go; a well-formed UTF-8 character passes when
 * `utf8` and becomes one '?' otherwise, a stray 8-bit octet '?'. */
static void dsn_clean(struct buf *out, const char *s, size_t n, int utf8)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = out->len;
    int space = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        if (p[i] < 0x20 || p[i] == 0x7F || p[i] == ' ') {
            space = 1;
            i++;
            continue;
        }
        if (space && out->len > start)
            buf_putc(out, ' ');
        space = 0;
        if (p[i] < 0x80) {
            buf_putc(out, (char)p[i]);
        } else {
            k = strutil_utf8_len(p + i, n - i);
            if (utf8 && k > 0)
                buf_append(out, s + i, k);
            else
                buf_putc(out, '?'); /* one for a whole character */
            if (k == 0)
                k = 1;
        }
        i += k;
    }
}

/* Appends s[0..n) cleaned (see dsn_clean) and folded at spaces: a line
 * holds at most `width` columns where the words allow, never more than
 * DSN_LINE_MAX; each continuation line starts with `indent`. `col` is
 * what the current line holds already. Ends without a line end. */
static void dsn_fold(struct buf *out, size_t col, const char *s, size_t n, int utf8,
                     size_t width, const char *indent)
{
    struct buf c = BUF_INIT;
    dsn_clean(&c, s, n, utf8);
    size_t ind = strlen(indent);
    int line_has_word = 0;
    for (size_t i = 0; i < c.len;) {
        size_t j = i;
        while (j < c.len && c.data[j] != ' ')
            j++;
        const char *w = c.data + i;
        size_t wl = j - i;
        if (line_has_word && col + 1 + wl > width) {
            buf_printf(out, "\r\n%s", indent);
            col = ind;
            line_has_word = 0;
        }
        if (line_has_word) {
            buf_putc(out, ' ');
            col++;
        }
        /* A word longer than a line can hold is cut, at a UTF-8
         * character boundary. */
        while (wl > DSN_WORD_MAX) {
            size_t take = DSN_WORD_MAX;
            while (take > 1 && ((unsigned char)w[take] & 0xC0) == 0x80)
                take--;
            buf_append(out, w, take);
            buf_printf(out, "\r\n%s", indent);
            col = ind;
            w += take;
            wl -= take;
        }
        buf_append(out, w, wl);
        col += wl;
        line_has_word = 1;
        i = j < c.len ? j + 1 : j;
    }
    buf_free(&c);
}

/* Appends a field "Name: value" with its CRLF, the value cleaned and
 * folded (continuation lines start with one space, RFC 5322 §2.2.3). */
static void dsn_field(struct buf *out, const char *name, const char *value, int utf8)
{
    buf_printf(out, "%s: ", name);
    dsn_fold(out, strlen(name) + 2, value, strlen(value), utf8, DSN_FIELD_WIDTH, " ");
    buf_puts(out, "\r\n");
}

/* Appends a field whose value is a date-time. */
static void dsn_field_date(struct buf *out, const char *name, time_t t)
{
    char d[64];
    clock_rfc5322(t, d, sizeof d);
    buf_printf(out, "%s: %s\r\n", name, d);
}

static int dsn_has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* A typed address for a delivery-status field (RFC 3464 §2.1.2): an
 * ASCII address is "rfc822; addr"; a UTF-8 one is "utf-8; addr" in a
 * global report and "utf-8; " + utf-8-addr-xtext otherwise (RFC 6533
 * §3), so a message/delivery-status part stays 7-bit. `type` is the
 * address type already known (from an ORCPT), or NULL. */
static void dsn_typed_addr(struct buf *out, const char *type, const char *addr, size_t n,
                           int global)
{
    if (type == NULL || !strcmp(type, "rfc822") || !strcmp(type, "utf-8"))
        type = dsn_has_8bit(addr, n) || (type && !strcmp(type, "utf-8")) ? "utf-8" : "rfc822";
    buf_printf(out, "%s; ", type);
    if (!strcmp(type, "utf-8") && !global)
        xtext_utf8_encode(out, addr, n, 0);
    else
        buf_append(out, addr, n);
}

/* Whether s is a word we may put in a field as it is: 1..max octets of
 * printable ASCII other than SP and the characters in `not`. */
static int dsn_word_ok(const char *s, size_t max, const char *not)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F || strchr(not, s[i]))
            return 0;
    return 1;
}

/* An RFC 3463 status "class.subject.detail" (subject and detail 1-3
 * digits) whose class fits the action: 5 for failed, 4 for delayed, 2
 * for the others. */
static int dsn_status_ok(const char *s, enum dsn_action a)
{
    char want = a == DSN_ACTION_FAILED ? '5' : a == DSN_ACTION_DELAYED ? '4' : '2';
    if (s == NULL || s[0] != want || s[1] != '.')
        return 0;
    s += 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (s[d] >= '0' && s[d] <= '9')
            d++;
        if (d < 1 || d > 3)
            return 0;
        s += d;
        if (part == 0 && *s++ != '.')
            return 0;
    }
    return *s == '\0';
}

/* ---- the original message ---- */

/* One line of a text: where it starts and its length without the line
 * end (LF or CRLF). */
struct dsn_line {
    size_t start, len;
};

/* Takes the line of p[0..n) at *pos into *l and moves *pos past its line
 * end; returns 0 when there is none left. */
static int dsn_line_next(const char *p, size_t n, size_t *pos, struct dsn_line *l)
{
    if (*pos >= n)
        return 0;
    const char *nl = memchr(p + *pos, '\n', n - *pos);
    size_t end = nl ? (size_t)(nl - p) : n;
    l->start = *pos;
    l->len = end - *pos;
    if (l->len > 0 && p[end - 1] == '\r')
        l->len--;
    *pos = nl ? end + 1 : n;
    return 1;
}

/* What a look through the original found. */
struct dsn_scan {
    size_t hdr_len; /* octets of the header section, its last line end included */
    int fit;        /* every line <= 998 octets, no NUL, no bare CR: may go as 8bit */
};

/* Looks through p[0..n). When `cut` (p is only the start of the message)
 * and the header section does not end within it, the header section
 * ends with the last whole line. */
static void dsn_scan_content(const char *p, size_t n, int cut, struct dsn_scan *sc)
{
    int in_hdr = 1;
    sc->hdr_len = n;
    if (cut) {
        const char *last = memrchr(p, '\n', n);
        sc->hdr_len = last ? (size_t)(last - p) + 1 : 0;
    }
    sc->fit = 1;
    struct dsn_line l;
    for (size_t pos = 0; dsn_line_next(p, n, &pos, &l);) {
        if (in_hdr && l.len == 0) {
            sc->hdr_len = l.start;
            in_hdr = 0;
        }
        if (l.len > DSN_LINE_MAX || memchr(p + l.start, '\0', l.len) ||
            memchr(p + l.start, '\r', l.len))
            sc->fit = 0;
    }
}

/* Appends the lines of p[0..n) with CRLF line ends (a last line without
 * one gets one). With `repair` (header sections), NUL octets go, a bare
 * CR becomes a space and a line over 998 octets is split, the rest
 * continuing on a line that starts with a space. */
static void dsn_put_lines(struct buf *out, const char *p, size_t n, int repair)
{
    struct dsn_line l;
    for (size_t pos = 0; dsn_line_next(p, n, &pos, &l);) {
        if (!repair) {
            buf_append(out, p + l.start, l.len);
        } else {
            size_t col = 0;
            for (size_t k = l.start; k < l.start + l.len; k++) {
                char c = p[k];
                if (c == '\0')
                    continue;
                if (col == DSN_WORD_MAX) {
                    buf_puts(out, "\r\n ");
                    col = 1;
                }
                buf_putc(out, c == '\r' ? ' ' : c);
                col++;
            }
        }
        buf_puts(out, "\r\n");
    }
}

/* ---- the three parts ---- */

/* The grouping of the explanation, gravest first. */
static const struct {
    enum dsn_action action;
    const char *intro;
} dsn_groups[] = {
    {DSN_ACTION_FAILED, "Your message could not be delivered to the recipients below. "
                        "No more attempts will be made for them."},
    {DSN_ACTION_DELAYED, "Your message has not reached the recipients below yet. "
                         "Delivery is still being tried; there is no need to send it again."},
    {DSN_ACTION_DELIVERED, "Your message was delivered to the recipients below."},
    {DSN_ACTION_RELAYED, "Your message was passed on for the recipients below to a system "
                         "that does not send delivery reports; no further notice will come."},
    {DSN_ACTION_EXPANDED, "Your message was delivered for the recipients below to an alias "
                          "or list, which passed it on to its members."},
};

/* One recipient's line of the explanation. */
static void dsn_text_rcpt(struct buf *out, const struct dsn_rcpt *rc, int utf8)
{
    struct buf t = BUF_INIT;
    buf_printf(&t, "<%s>", rc->addr);
    if (rc->orcpt) {
        char type[DSN_ADDRTYPE_MAX + 1];
        struct buf oa = BUF_INIT;
        if (dsn_param_orcpt_read(rc->orcpt, type, &oa) >= 0 && strcmp(oa.data, rc->addr))
            buf_printf(&t, " (sent to <%s>)", oa.data);
        buf_free(&oa);
    }
    buf_puts(&t, ": ");
    if (rc->diag && rc->remote_mta)
        buf_printf(&t, "host %s said: %s", rc->remote_mta, rc->diag);
    else if (rc->diag)
        buf_puts(&t, rc->diag);
    else
        buf_printf(&t, "status %s", rc->status ? rc->status : "");
    if (rc->action == DSN_ACTION_DELAYED && rc->retry_until) {
        char d[64];
        clock_rfc5322(rc->retry_until, d, sizeof d);
        buf_printf(&t, " (trying until %s)", d);
    }
    dsn_fold(out, 0, t.data, t.len, utf8, DSN_TEXT_WIDTH, "    ");
    buf_puts(out, "\r\n");
    buf_free(&t);
}

static void dsn_text_part(struct buf *out, const struct dsn_report *r, int utf8, int attached)
{
    struct buf t = BUF_INIT;
    buf_printf(&t, "This is the mail delivery system at %s.", r->reporting_mta);
    dsn_fold(out, 0, t.data, t.len, utf8, DSN_TEXT_WIDTH, "");
    buf_puts(out, "\r\n");
    for (size_t g = 0; g < sizeof dsn_groups / sizeof dsn_groups[0]; g++) {
        int any = 0;
        for (size_t i = 0; i < r->nrcpts; i++) {
            if (r->rcpts[i].action != dsn_groups[g].action)
                continue;
            if (!any) {
                buf_puts(out, "\r\n");
                dsn_fold(out, 0, dsn_groups[g].intro, strlen(dsn_groups[g].intro), 0,
                         DSN_TEXT_WIDTH, "");
                buf_puts(out, "\r\n\r\n");
                any = 1;
            }
            dsn_text_rcpt(out, &r->rcpts[i], utf8);
        }
    }
    if (attached) {
        buf_puts(out, "\r\n");
        buf_puts(out, attached == 2 ? "Your message is attached.\r\n"
                                    : "The header of your message is attached.\r\n");
    }
    buf_free(&t);
}

static void dsn_status_part(struct buf *out, const struct dsn_report *r, int global)
{
    const struct envelope *e = r->env;
    struct buf v = BUF_INIT;
    /* Per-message fields in RFC 3464 §2.2's order. */
    if (e->envid && e->envid[0])
        dsn_field(out, "Original-Envelope-Id", e->envid, 0);
    buf_reset(&v);
    buf_printf(&v, "dns; %s", r->reporting_mta);
    dsn_field(out, "Reporting-MTA", v.data, 0);
    if (e->arrival)
        dsn_field_date(out, "Arrival-Date", e->arrival);
    if (e->qid[0])
        dsn_field(out, "X-Tern-Queue-ID", e->qid, 0);
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        buf_puts(out, "\r\n");
        if (rc->orcpt) {
            char type[DSN_ADDRTYPE_MAX + 1];
            struct buf oa = BUF_INIT;
            if (dsn_param_orcpt_read(rc->orcpt, type, &oa) >= 0) {
                buf_reset(&v);
                dsn_typed_addr(&v, type, oa.data, oa.len, global);
                dsn_field(out, "Original-Recipient", v.data, global);
            }
            buf_free(&oa);
        }
        buf_reset(&v);
        dsn_typed_addr(&v, NULL, rc->addr, strlen(rc->addr), global);
        dsn_field(out, "Final-Recipient", v.data, global);
        dsn_field(out, "Action", dsn_action_name(rc->action), 0);
        if (dsn_status_ok(rc->status, rc->action)) {
            dsn_field(out, "Status", rc->status, 0);
        } else {
            buf_reset(&v);
            buf_printf(&v, "%c.0.0", rc->action == DSN_ACTION_FAILED    ? '5'
                                     : rc->action == DSN_ACTION_DELAYED ? '4'
                                                                        : '2');
            dsn_field(out, "Status", v.data, 0);
        }
        if (rc->remote_mta && rc->remote_mta[0]) {
            buf_reset(&v);
            buf_printf(&v, "dns; %s", rc->remote_mta);
            dsn_field(out, "Remote-MTA", v.data, 0);
        }
        if (rc->diag && rc->diag[0]) {
            buf_reset(&v);
            buf_printf(&v, "%s; %s", dsn_word_ok(rc->diag_type, 32, "();:<>@,\"\\[]") ?
                       rc->diag_type : "smtp", rc->diag);
            dsn_field(out, "Diagnostic-Code", v.data, global);
        }
        if (rc->last_attempt)
            dsn_field_date(out, "Last-Attempt-Date", rc->last_attempt);
        if (rc->action == DSN_ACTION_DELAYED && rc->retry_until)
            dsn_field_date(out, "Will-Retry-Until", rc->retry_until);
    }
    buf_free(&v);
}

/* ---- the whole report ---- */

static const char *dsn_subject(const struct dsn_report *r)
{
    int failed = 0, delayed = 0, relayed = 0;
    for (size_t i = 0; i < r->nrcpts; i++) {
        failed |= r->rcpts[i].action == DSN_ACTION_FAILED;
        delayed |= r->rcpts[i].action == DSN_ACTION_DELAYED;
        relayed += r->rcpts[i].action == DSN_ACTION_RELAYED;
    }
    if (failed)
        return "Undelivered Mail Returned to Sender";
    if (delayed)
        return "Delayed Mail (still being retried)";
    if ((size_t)relayed == r->nrcpts)
        return "Relayed mail";
    return "Successful Mail Delivery Report";
}

/* RFC 2046 §5.1.1 bchars, not ending in a space. */
static int dsn_boundary_ok(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    if (n == 0 || n > DSN_BOUNDARY_MAX || b[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("'()+_,-./:=? ", c)))
            return 0;
    }
    return 1;
}

/* A sender fit for the To field as it is: no controls, 8-bit only in a
 * message that came with SMTPUTF8, short enough for one line. */
static int dsn_sender_ok(const struct envelope *e)
{
    size_t n = strlen(e->from);
    if (n == 0 || n > DSN_WORD_MAX)
        return 0; /* never to the null reverse-path */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)e->from[i];
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && !e->smtputf8))
            return 0;
    }
    return 1;
}

static int dsn_input_ok(const struct dsn_report *r)
{
    if (r->env == NULL || r->env->from == NULL || !dsn_sender_ok(r->env))
        return 0;
    if (r->nrcpts == 0 || r->rcpts == NULL || !dsn_boundary_ok(r->boundary))
        return 0;
    if (!dsn_word_ok(r->reporting_mta, 255, "<>()[];:,@\"\\") ||
        !dsn_word_ok(r->message_id, 250, "<>()[];:,\"\\"))
        return 0;
    for (size_t i = 0; i < r->nrcpts; i++)
        if (r->rcpts[i].addr == NULL || r->rcpts[i].addr[0] == '\0' ||
            (unsigned)r->rcpts[i].action > DSN_ACTION_EXPANDED)
            return 0;
    return 1;
}

/* Appends one part: its delimiter, header fields and body. */
static void dsn_put_part(struct buf *out, const char *boundary, const char *type,
                         const char *desc, const struct buf *body)
{
    buf_printf(out, "\r\n--%s\r\n", boundary);
    if (desc)
        buf_printf(out, "Content-Description: %s\r\n", desc);
    buf_printf(out, "Content-Type: %s\r\n", type);
    if (dsn_has_8bit(body->data, body->len))
        buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
    buf_puts(out, "\r\n");
    buf_append(out, body->data, body->len);
}

/* Makes b[] (room for cap octets) a boundary that no line of the bodies
 * starts with after "--" (RFC 2046 §5.1.1: the delimiter must not occur
 * in an encapsulated part): while some line does, appends the first
 * character of [0-9A-Za-z] that no such line has next. A content that
 * blocks k appended characters needs 62^k lines, so this ends after a
 * pass or two. */
static void dsn_boundary_pick(char *b, size_t cap, const struct buf *bodies, size_t nb)
{
    static const char cand[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (;;) {
        size_t bl = strlen(b);
        unsigned char used[256] = {0};
        int hit = 0;
        for (size_t i = 0; i < nb; i++) {
            struct dsn_line l;
            for (size_t pos = 0; dsn_line_next(bodies[i].data, bodies[i].len, &pos, &l);) {
                const char *p = bodies[i].data + l.start;
                if (l.len >= 2 + bl && p[0] == '-' && p[1] == '-' && !memcmp(p + 2, b, bl)) {
                    hit = 1;
                    if (l.len > 2 + bl)
                        used[(unsigned char)p[2 + bl]] = 1;
                }
            }
        }
        if (!hit || bl + 1 >= cap)
            return;
        size_t k = 0;
        while (cand[k + 1] && used[(unsigned char)cand[k]])
            k++;
        b[bl] = cand[k];
        b[bl + 1] = '\0';
    }
}

int dsn_build(const struct dsn_report *r, struct buf *out, unsigned *flags)
{
    if (!dsn_input_ok(r))
        return -EINVAL;
    const struct envelope *e = r->env;
    int global = e->smtputf8 != 0;
    unsigned fl = 0;

    /* The original: the whole message only if RET=FULL asked for it and
     * it can travel as it is; otherwise its header section. */
    struct buf part[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
    int attached = 0;
    const char *orig_type = NULL, *orig_desc = NULL;
    if (r->content && r->content_len) {
        struct dsn_scan sc;
        dsn_scan_content(r->content, r->content_len, r->content_cut, &sc);
        if (e->ret_full && sc.fit && !r->content_cut &&
            (r->full_max == 0 || r->content_len < r->full_max)) {
            dsn_put_lines(&part[2], r->content, r->content_len, 0);
            orig_type = global ? "message/global" : "message/rfc822";
            orig_desc = "Original message";
            attached = 2;
        } else {
            dsn_put_lines(&part[2], r->content, sc.hdr_len, 1);
            orig_type = global ? "message/global-headers" : "text/rfc822-headers";
            orig_desc = "Original message header";
            attached = 1;
            fl |= DSN_OUT_HDRS_ONLY;
        }
    }
    dsn_text_part(&part[0], r, global, attached);
    dsn_status_part(&part[1], r, global);

    char boundary[DSN_BOUNDARY_ROOM + 1];
    strutil_lcpy(boundary, r->boundary, sizeof boundary);
    dsn_boundary_pick(boundary, sizeof boundary, part, 3);

    char date[64];
    clock_rfc5322(r->date, date, sizeof date);
    size_t start = out->len;
    buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->reporting_mta);
    /* The sender as the envelope has it (checked by dsn_input_ok): a
     * quoted local part keeps its spaces. */
    buf_printf(out, "To: <%s>\r\n", e->from);
    buf_printf(out, "Subject: %s\r\n", dsn_subject(r));
    buf_printf(out, "Date: %s\r\n", date);
    buf_printf(out, "Message-ID: <%s>\r\n", r->message_id);
    /* RFC 3834 §5: an automatic response, not to be answered in kind. */
    buf_puts(out, "Auto-Submitted: auto-replied\r\n");
    buf_puts(out, "MIME-Version: 1.0\r\n");
    buf_printf(out, "Content-Type: multipart/report; report-type=%s;\r\n boundary=\"%s\"\r\n",
               global ? "global-delivery-status" : "delivery-status", boundary);
    if (dsn_has_8bit(out->data + start, out->len - start))
        fl |= DSN_OUT_UTF8;
    buf_puts(out, "\r\nThis is a MIME-encapsulated delivery status notification.\r\n");

    dsn_put_part(out, boundary,
                 dsn_has_8bit(part[0].data, part[0].len) ? "text/plain; charset=utf-8"
                                                         : "text/plain; charset=us-ascii",
                 "Notification", &part[0]);
    dsn_put_part(out, boundary,
                 global ? "message/global-delivery-status" : "message/delivery-status",
                 "Delivery report", &part[1]);
    if (orig_type)
        dsn_put_part(out, boundary, orig_type, orig_desc, &part[2]);
    buf_printf(out, "\r\n--%s--\r\n", boundary);

    for (size_t i = 0; i < 3; i++) {
        if (dsn_has_8bit(part[i].data, part[i].len))
            fl |= DSN_OUT_8BIT;
        buf_free(&part[i]);
    }
    if (flags)
        *flags = fl;
    return 0;
}
