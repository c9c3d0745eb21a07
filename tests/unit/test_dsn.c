/* Unit tests for mail/dsn: delivery status notifications (RFC 3464)
 * taken apart again with a small MIME splitter and checked field by
 * field. xtext and the DSN parameters: test_dsn_param. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "check.h"
#include "mail/dsn.h"
#include "mail/dsn_param.h"
#include "mail/envelope.h"
#include "mail/xtext.h"

#define T0 1767225600 /* Thu, 1 Jan 2026 00:00:00 UTC */

/* ---- a small MIME reader for the reports ---- */

/* Every line ends in CRLF, no bare CR or LF, none over 998 octets. */
static int lines_ok(const char *p, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r') {
            if (i + 1 == n || p[i + 1] != '\n')
                return 0;
            i++;
            col = 0;
        } else if (p[i] == '\n') {
            return 0;
        } else if (++col > 998) {
            return 0;
        }
    }
    return n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n';
}

static int has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return 1;
    return 0;
}

struct span {
    const char *p;
    size_t n;
};

/* Splits an entity into its header (without the empty line) and body. */
static void entity_split(struct span whole, struct span *head, struct span *body)
{
    if (whole.n >= 2 && !memcmp(whole.p, "\r\n", 2)) {
        *head = (struct span){whole.p, 0};
        *body = (struct span){whole.p + 2, whole.n - 2};
        return;
    }
    const char *sep = memmem(whole.p, whole.n, "\r\n\r\n", 4);
    if (sep == NULL) {
        *head = whole;
        *body = (struct span){whole.p + whole.n, 0};
        return;
    }
    *head = (struct span){whole.p, (size_t)(sep - whole.p) + 2};
    *body = (struct span){sep + 4, whole.n - (size_t)(sep - whole.p) - 4};
}

/* The unfolded value of the nth (0-based) field called name in head, in
 * out; returns how many such fields there are. */
static int field_get(struct span head, const char *name, int nth, struct buf *out)
{
    int count = 0;
    size_t nl = strlen(name);
    buf_reset(out);
    for (size_t i = 0; i < head.n;) {
        const char *line = head.p + i;
        const char *eol = memmem(line, head.n - i, "\r\n", 2);
        size_t len = eol ? (size_t)(eol - line) : head.n - i;
        i += len + 2;
        if (len > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
            if (count++ != nth)
                continue;
            size_t v = nl + 1;
            while (v < len && line[v] == ' ')
                v++;
            buf_append(out, line + v, len - v);
            /* Continuation lines: unfolding removes the CRLF only. */
            while (i < head.n && (head.p[i] == ' ' || head.p[i] == '\t')) {
                const char *c = head.p + i;
                const char *ce = memmem(c, head.n - i, "\r\n", 2);
                size_t cl = ce ? (size_t)(ce - c) : head.n - i;
                buf_append(out, c, cl);
                i += cl + 2;
            }
        }
    }
    if (out->data == NULL)
        buf_puts(out, "");
    return count;
}

/* Finds the parameter `param` in a Content-Type value; "" when absent. */
static void ct_param(const char *ct, const char *param, struct buf *out)
{
    buf_reset(out);
    buf_puts(out, "");
    char key[64];
    snprintf(key, sizeof key, "%s=", param);
    const char *p = strstr(ct, key);
    if (p == NULL)
        return;
    p += strlen(key);
    if (*p == '"') {
        const char *q = strchr(p + 1, '"');
        if (q)
            buf_append(out, p + 1, (size_t)(q - p - 1));
    } else {
        size_t n = strcspn(p, "; \t");
        buf_append(out, p, n);
    }
}

#define MAX_PARTS 8

struct mime {
    struct span head, body;
    struct buf boundary;
    size_t nparts;
    struct span part_head[MAX_PARTS], part_body[MAX_PARTS];
    int closed; /* the close delimiter was found */
};

/* Takes a multipart message apart by its boundary (RFC 2046 §5.1.1). */
static int mime_parse(const char *msg, size_t n, struct mime *m)
{
    memset(m, 0, sizeof *m);
    entity_split((struct span){msg, n}, &m->head, &m->body);
    struct buf ct = BUF_INIT;
    if (field_get(m->head, "Content-Type", 0, &ct) != 1) {
        buf_free(&ct);
        return -1;
    }
    ct_param(ct.data, "boundary", &m->boundary);
    buf_free(&ct);
    struct buf delim = BUF_INIT;
    buf_printf(&delim, "\r\n--%s", m->boundary.data);
    /* The body starts with a preamble line; a delimiter follows a CRLF. */
    const char *p = m->body.p - 2, *end = m->body.p + m->body.n;
    const char *d = memmem(p, (size_t)(end - p), delim.data, delim.len);
    while (d) {
        const char *after = d + delim.len;
        if (end - after >= 2 && !memcmp(after, "--", 2)) {
            m->closed = 1;
            break;
        }
        if (end - after < 2 || memcmp(after, "\r\n", 2) || m->nparts == MAX_PARTS)
            break;
        const char *start = after + 2;
        const char *next = memmem(start, (size_t)(end - start), delim.data, delim.len);
        if (next == NULL)
            break;
        entity_split((struct span){start, (size_t)(next - start)}, &m->part_head[m->nparts],
                     &m->part_body[m->nparts]);
        m->nparts++;
        d = next;
    }
    buf_free(&delim);
    return 0;
}

static void mime_free(struct mime *m)
{
    buf_free(&m->boundary);
}

/* The delivery-status body's groups: per-message fields, then one per
 * recipient, separated by empty lines. */
static size_t ds_groups(struct span body, struct span *g, size_t max)
{
    size_t n = 0;
    const char *p = body.p, *end = body.p + body.n;
    while (p < end && n < max) {
        const char *sep = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *gend = sep ? sep + 2 : end;
        if (gend > p)
            g[n++] = (struct span){p, (size_t)(gend - p)};
        p = sep ? sep + 4 : end;
        while (p + 2 <= end && !memcmp(p, "\r\n", 2))
            p += 2;
    }
    return n;
}

/* The text part as plain lines: CRLF as LF, a wrapped line joined to
 * the one before (its indent becomes one space). */
static void text_of(struct span body, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < body.n; i++) {
        if (body.p[i] == '\r' && i + 1 < body.n && body.p[i + 1] == '\n') {
            i++;
            if (i + 1 < body.n && body.p[i + 1] == ' ') {
                while (i + 1 < body.n && body.p[i + 1] == ' ')
                    i++;
                buf_putc(out, ' ');
            } else {
                buf_putc(out, '\n');
            }
        } else {
            buf_putc(out, body.p[i]);
        }
    }
    if (out->data == NULL)
        buf_puts(out, "");
}

/* Checks field `name` of span s holds exactly `want` (NULL: absent). */
#define CHECK_FIELD(s, name, want)                                                \
    do {                                                                          \
        struct buf f_ = BUF_INIT;                                                 \
        int c_ = field_get((s), (name), 0, &f_);                                  \
        if ((want) == NULL) {                                                     \
            CHECK_EQ_INT(c_, 0);                                                  \
        } else {                                                                  \
            CHECK_EQ_INT(c_, 1);                                                  \
            CHECK_EQ_STR(f_.data, (want));                                        \
        }                                                                         \
        buf_free(&f_);                                                            \
    } while (0)

/* ---- reports ---- */

static const char original[] =
    "Received: from client.example.org by mx.tern.test; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net, carol@example.net\r\n"
    "Subject: lunch\r\n"
    "Message-ID: <orig-1@example.org>\r\n"
    "\r\n"
    "Shall we meet at noon?\r\n"
    "-- \r\n"
    "Alice\r\n";

static void sample_env(struct envelope *e)
{
    envelope_init(e);
    strcpy(e->qid, "4Yx2kQ7bF3z");
    envelope_set(&e->from, "alice@example.org");
    e->arrival = T0;
    envelope_add_rcpt(e, "bob@example.net", "rfc822;bob+2Balias@example.net", 0);
    envelope_add_rcpt(e, "carol@example.net", NULL, 0);
}

static void sample_report(struct dsn_report *r, const struct envelope *e, struct dsn_rcpt *rc)
{
    memset(rc, 0, 2 * sizeof *rc);
    rc[0] = (struct dsn_rcpt){.addr = e->rcpts[0].addr,
                              .orcpt = e->rcpts[0].orcpt,
                              .action = DSN_ACTION_FAILED,
                              .status = "5.1.1",
                              .diag = "550 5.1.1 <bob@example.net>: Recipient address rejected",
                              .remote_mta = "mx.example.net",
                              .last_attempt = T0 + 60};
    rc[1] = (struct dsn_rcpt){.addr = e->rcpts[1].addr,
                              .orcpt = NULL,
                              .action = DSN_ACTION_FAILED,
                              .status = "5.2.2",
                              .diag = "552 5.2.2 Mailbox full",
                              .remote_mta = "mx.example.net",
                              .last_attempt = T0 + 61};
    *r = (struct dsn_report){.reporting_mta = "mx.tern.test",
                             .env = e,
                             .rcpts = rc,
                             .nrcpts = 2,
                             .content = original,
                             .content_len = sizeof original - 1,
                             .full_max = 0,
                             .boundary = "4Yx2kQ7bF3z/1767225700/mx.tern.test",
                             .message_id = "20260101000140.4Yx2kQ7bF3z@mx.tern.test",
                             .date = T0 + 100};
}

/* Builds r, checks the line discipline, parses it into m. */
static unsigned build_parse(const struct dsn_report *r, struct buf *out, struct mime *m)
{
    unsigned flags = 0xdead;
    buf_reset(out);
    CHECK_EQ_INT(dsn_build(r, out, &flags), 0);
    CHECK(lines_ok(out->data, out->len));
    CHECK_EQ_INT(mime_parse(out->data, out->len, m), 0);
    CHECK(m->closed);
    return flags;
}

static void test_failed_headers(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT;
    struct mime m;
    sample_env(&e);
    sample_report(&r, &e, rc);
    unsigned flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_HDRS_ONLY);
    CHECK(!has_8bit(out.data, out.len));

    /* The report's own header. */
    CHECK_FIELD(m.head, "From", "Mail Delivery System <MAILER-DAEMON@mx.tern.test>");
    CHECK_FIELD(m.head, "To", "<alice@example.org>");
    CHECK_FIELD(m.head, "Subject", "Undelivered Mail Returned to Sender");
    CHECK_FIELD(m.head, "Date", "Thu, 1 Jan 2026 00:01:40 +0000");
    CHECK_FIELD(m.head, "Message-ID", "<20260101000140.4Yx2kQ7bF3z@mx.tern.test>");
    CHECK_FIELD(m.head, "Auto-Submitted", "auto-replied");
    CHECK_FIELD(m.head, "MIME-Version", "1.0");
    CHECK_FIELD(m.head, "Content-Type",
                "multipart/report; report-type=delivery-status; "
                "boundary=\"4Yx2kQ7bF3z/1767225700/mx.tern.test\"");
    CHECK_EQ_STR(m.boundary.data, "4Yx2kQ7bF3z/1767225700/mx.tern.test");
    CHECK_EQ_INT(m.nparts, 3);

    /* Part 1: the explanation. */
    CHECK_FIELD(m.part_head[0], "Content-Type", "text/plain; charset=us-ascii");
    CHECK_FIELD(m.part_head[0], "Content-Transfer-Encoding", NULL);
    struct buf t = BUF_INIT;
    text_of(m.part_body[0], &t);
    CHECK(strstr(t.data, "mail delivery system at mx.tern.test.\n") != NULL);
    CHECK(strstr(t.data, "could not be delivered") != NULL);
    CHECK(strstr(t.data, "\n<bob@example.net> (sent to <bob+alias@example.net>): host "
                         "mx.example.net said: 550 5.1.1 <bob@example.net>: Recipient "
                         "address rejected\n") != NULL);
    CHECK(strstr(t.data, "\n<carol@example.net>: host mx.example.net said: 552 5.2.2 Mailbox"
                         " full\n") != NULL);
    CHECK(strstr(t.data, "The header of your message is attached.") != NULL);
    buf_free(&t);
    /* Lines wrapped at 76 columns, continuations indented. */
    for (const char *l = m.part_body[0].p, *end = l + m.part_body[0].n; l < end;) {
        const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
        CHECK(eol != NULL && eol - l <= 76);
        l = eol ? eol + 2 : end;
    }
    CHECK(memmem(m.part_body[0].p, m.part_body[0].n, "\r\n    ", 6) != NULL);

    /* Part 2: the status fields, group by group. */
    CHECK_FIELD(m.part_head[1], "Content-Type", "message/delivery-status");
    struct span g[8];
    size_t ng = ds_groups(m.part_body[1], g, 8);
    CHECK_EQ_INT(ng, 3);
    CHECK_FIELD(g[0], "Reporting-MTA", "dns; mx.tern.test");
    CHECK_FIELD(g[0], "Original-Envelope-Id", NULL);
    CHECK_FIELD(g[0], "Arrival-Date", "Thu, 1 Jan 2026 00:00:00 +0000");
    CHECK_FIELD(g[0], "X-Tern-Queue-ID", "4Yx2kQ7bF3z");
    CHECK_FIELD(g[1], "Final-Recipient", "rfc822; bob@example.net");
    CHECK_FIELD(g[1], "Original-Recipient", "rfc822; bob+alias@example.net");
    CHECK_FIELD(g[1], "Action", "failed");
    CHECK_FIELD(g[1], "Status", "5.1.1");
    CHECK_FIELD(g[1], "Remote-MTA", "dns; mx.example.net");
    CHECK_FIELD(g[1], "Diagnostic-Code",
                "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected");
    CHECK_FIELD(g[1], "Last-Attempt-Date", "Thu, 1 Jan 2026 00:01:00 +0000");
    CHECK_FIELD(g[1], "Will-Retry-Until", NULL);
    CHECK_FIELD(g[2], "Final-Recipient", "rfc822; carol@example.net");
    CHECK_FIELD(g[2], "Original-Recipient", NULL);
    CHECK_FIELD(g[2], "Action", "failed");
    CHECK_FIELD(g[2], "Status", "5.2.2");
    CHECK_FIELD(g[2], "Diagnostic-Code", "smtp; 552 5.2.2 Mailbox full");
    CHECK_FIELD(g[2], "Last-Attempt-Date", "Thu, 1 Jan 2026 00:01:01 +0000");
    /* RFC 3464 §2.3: Original-Recipient comes before Final-Recipient. */
    CHECK(memmem(g[1].p, g[1].n, "Original-Recipient", 18) <
          memmem(g[1].p, g[1].n, "Final-Recipient", 15));

    /* Part 3: the header section only (no RET given), as it was. */
    CHECK_FIELD(m.part_head[2], "Content-Type", "text/rfc822-headers");
    size_t hl = strstr(original, "\r\n\r\n") - original + 2;
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, original, hl);

    /* Same input, same octets. */
    struct buf again = BUF_INIT;
    CHECK_EQ_INT(dsn_build(&r, &again, NULL), 0);
    CHECK_EQ_MEM(again.data, again.len, out.data, out.len);
    /* Appends: what was in out stays. */
    buf_reset(&again);
    buf_puts(&again, "X");
    CHECK_EQ_INT(dsn_build(&r, &again, NULL), 0);
    CHECK_EQ_MEM(again.data + 1, again.len - 1, out.data, out.len);
    buf_free(&again);

    /* RET=HDRS is the same as no RET. */
    e.ret_hdrs = 1;
    buf_reset(&again);
    CHECK_EQ_INT(dsn_build(&r, &again, NULL), 0);
    CHECK_EQ_MEM(again.data, again.len, out.data, out.len);
    buf_free(&again);

    mime_free(&m);
    buf_free(&out);
    envelope_clear(&e);
}

static void test_ret_full(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT;
    struct mime m;
    sample_env(&e);
    e.ret_full = 1;
    envelope_set(&e.envid, "QQ 314159");
    sample_report(&r, &e, rc);
    unsigned flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, 0);
    CHECK_EQ_INT(m.nparts, 3);
    CHECK_FIELD(m.part_head[2], "Content-Type", "message/rfc822");
    CHECK_FIELD(m.part_head[2], "Content-Transfer-Encoding", NULL);
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, original, sizeof original - 1);
    struct span g[8];
    CHECK_EQ_INT(ds_groups(m.part_body[1], g, 8), 3);
    CHECK_FIELD(g[0], "Original-Envelope-Id", "QQ 314159");
    CHECK(memmem(g[0].p, g[0].n, "Original-Envelope-Id", 20) == g[0].p); /* first */
    struct buf t = BUF_INIT;
    buf_append(&t, m.part_body[0].p, m.part_body[0].n);
    CHECK(strstr(t.data, "Your message is attached.") != NULL);
    buf_free(&t);
    mime_free(&m);

    /* LF line ends are returned as CRLF; a last line without one gets one. */
    const char *lf = "Subject: x\n\nbody\nlast";
    r.content = lf;
    r.content_len = strlen(lf);
    build_parse(&r, &out, &m);
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, "Subject: x\r\n\r\nbody\r\nlast\r\n",
                 26);
    mime_free(&m);

    /* 8-bit content goes as message/rfc822 in 8bit. */
    const char *eight = "Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; "
                        "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n";
    r.content = eight;
    r.content_len = strlen(eight);
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_8BIT);
    CHECK_FIELD(m.part_head[2], "Content-Type", "message/rfc822");
    CHECK_FIELD(m.part_head[2], "Content-Transfer-Encoding", "8bit");
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, eight, strlen(eight));
    CHECK_FIELD(m.part_head[0], "Content-Type", "text/plain; charset=us-ascii");
    mime_free(&m);

    /* 8-bit headers without RET=FULL: text/rfc822-headers in 8bit. */
    const char *h8 = "Subject: caf\xc3\xa9\r\n\r\nbody\r\n";
    e.ret_full = 0;
    r.content = h8;
    r.content_len = strlen(h8);
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_8BIT | DSN_OUT_HDRS_ONLY);
    CHECK_FIELD(m.part_head[2], "Content-Type", "text/rfc822-headers");
    CHECK_FIELD(m.part_head[2], "Content-Transfer-Encoding", "8bit");
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, "Subject: caf\xc3\xa9\r\n", 16);
    mime_free(&m);
    e.ret_full = 1;

    /* Over full_max: the header section only. */
    r.content = original;
    r.content_len = sizeof original - 1;
    r.full_max = 100;
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_HDRS_ONLY);
    CHECK_FIELD(m.part_head[2], "Content-Type", "text/rfc822-headers");
    t = (struct buf)BUF_INIT;
    buf_append(&t, m.part_body[0].p, m.part_body[0].n);
    CHECK(strstr(t.data, "The header of your message is attached.") != NULL);
    buf_free(&t);
    mime_free(&m);
    /* At the limit, it may be a copy cut there: headers only. One less
     * than the limit: whole. */
    r.full_max = sizeof original - 1;
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_HDRS_ONLY);
    mime_free(&m);
    r.full_max = sizeof original;
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, 0);
    CHECK_FIELD(m.part_head[2], "Content-Type", "message/rfc822");
    mime_free(&m);
    r.full_max = 0;
    /* A copy of the start of the message: its header section only, and
     * where that is cut, its whole lines. */
    size_t line1 = (size_t)(strchr(original, '\n') - original) + 1;
    r.content_len = line1 + 10;
    r.content_cut = 1;
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_HDRS_ONLY);
    CHECK_FIELD(m.part_head[2], "Content-Type", "text/rfc822-headers");
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, original, line1);
    mime_free(&m);
    r.content_len = sizeof original - 3; /* cut in the body */
    build_parse(&r, &out, &m);
    size_t hl0 = (size_t)(strstr(original, "\r\n\r\n") - original) + 2;
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, original, hl0);
    mime_free(&m);
    r.content_len = sizeof original - 1;
    r.content_cut = 0;

    /* Content that cannot travel as 8bit (a 2000-octet line, a NUL, a bare
     * CR) falls back to its header section, which is repaired. */
    struct buf big = BUF_INIT;
    buf_puts(&big, "Subject: ");
    for (int i = 0; i < 1200; i++)
        buf_putc(&big, 'h');
    buf_puts(&big, "\r\nX-Nul: a");
    buf_putc(&big, '\0');
    buf_puts(&big, "b\r\nX-CR: a\rb\r\n\r\n");
    for (int i = 0; i < 2000; i++)
        buf_putc(&big, 'x');
    buf_puts(&big, "\r\n");
    r.content = big.data;
    r.content_len = big.len;
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_HDRS_ONLY);
    CHECK_FIELD(m.part_head[2], "Content-Type", "text/rfc822-headers");
    struct buf sub = BUF_INIT;
    CHECK_EQ_INT(field_get(m.part_body[2], "Subject", 0, &sub), 1);
    CHECK_EQ_INT(sub.len, 1201); /* the split inserted one space */
    CHECK_FIELD(m.part_body[2], "X-Nul", "ab");
    CHECK_FIELD(m.part_body[2], "X-CR", "a b");
    buf_free(&sub);
    buf_free(&big);
    mime_free(&m);

    buf_free(&out);
    envelope_clear(&e);
}

static void test_delayed(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT;
    struct mime m;
    sample_env(&e);
    sample_report(&r, &e, rc);
    rc[0].action = DSN_ACTION_DELAYED;
    rc[0].status = "4.4.1";
    rc[0].diag = NULL;
    rc[0].remote_mta = NULL;
    rc[0].retry_until = T0 + 5 * 86400;
    r.nrcpts = 1;
    build_parse(&r, &out, &m);
    CHECK_FIELD(m.head, "Subject", "Delayed Mail (still being retried)");
    struct span g[8];
    CHECK_EQ_INT(ds_groups(m.part_body[1], g, 8), 2);
    CHECK_FIELD(g[1], "Action", "delayed");
    CHECK_FIELD(g[1], "Status", "4.4.1");
    CHECK_FIELD(g[1], "Remote-MTA", NULL);
    CHECK_FIELD(g[1], "Diagnostic-Code", NULL);
    CHECK_FIELD(g[1], "Will-Retry-Until", "Tue, 6 Jan 2026 00:00:00 +0000");
    struct buf t = BUF_INIT;
    text_of(m.part_body[0], &t);
    CHECK(strstr(t.data, "has not reached the recipients below yet") != NULL);
    CHECK(strstr(t.data, "status 4.4.1 (trying until Tue, 6 Jan 2026 00:00:00 +0000)") != NULL);
    buf_free(&t);
    mime_free(&m);

    /* A status whose class disagrees with the action, or that is not a
     * status at all, is written as X.0.0. */
    static const struct {
        enum dsn_action a;
        const char *status, *want;
    } st[] = {
        {DSN_ACTION_DELAYED, "5.1.1", "4.0.0"},  {DSN_ACTION_FAILED, "4.4.1", "5.0.0"},
        {DSN_ACTION_FAILED, "5.1", "5.0.0"},     {DSN_ACTION_FAILED, "5.1.1234", "5.0.0"},
        {DSN_ACTION_FAILED, "5..1", "5.0.0"},    {DSN_ACTION_FAILED, NULL, "5.0.0"},
        {DSN_ACTION_FAILED, "5.1.1 ", "5.0.0"},  {DSN_ACTION_DELIVERED, "2.0.0", "2.0.0"},
        {DSN_ACTION_DELIVERED, "5.0.0", "2.0.0"}, {DSN_ACTION_FAILED, "5.123.123", "5.123.123"},
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        rc[0].action = st[i].a;
        rc[0].status = st[i].status;
        build_parse(&r, &out, &m);
        CHECK_EQ_INT(ds_groups(m.part_body[1], g, 8), 2);
        CHECK_FIELD(g[1], "Status", st[i].want);
        mime_free(&m);
    }
    /* Will-Retry-Until only with delayed. */
    rc[0].action = DSN_ACTION_FAILED;
    build_parse(&r, &out, &m);
    ds_groups(m.part_body[1], g, 8);
    CHECK_FIELD(g[1], "Will-Retry-Until", NULL);
    mime_free(&m);
    buf_free(&out);
    envelope_clear(&e);
}

static void test_success_kinds(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT;
    struct mime m;
    sample_env(&e);
    sample_report(&r, &e, rc);
    static const struct {
        enum dsn_action a0, a1;
        const char *subject;
    } t[] = {
        {DSN_ACTION_DELIVERED, DSN_ACTION_DELIVERED, "Successful Mail Delivery Report"},
        {DSN_ACTION_RELAYED, DSN_ACTION_RELAYED, "Relayed mail"},
        {DSN_ACTION_RELAYED, DSN_ACTION_DELIVERED, "Successful Mail Delivery Report"},
        {DSN_ACTION_EXPANDED, DSN_ACTION_DELIVERED, "Successful Mail Delivery Report"},
        {DSN_ACTION_DELIVERED, DSN_ACTION_DELAYED, "Delayed Mail (still being retried)"},
        {DSN_ACTION_DELAYED, DSN_ACTION_FAILED, "Undelivered Mail Returned to Sender"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rc[0].action = t[i].a0;
        rc[1].action = t[i].a1;
        rc[0].status = rc[1].status = "2.0.0";
        build_parse(&r, &out, &m);
        CHECK_FIELD(m.head, "Subject", t[i].subject);
        struct span g[8];
        CHECK_EQ_INT(ds_groups(m.part_body[1], g, 8), 3);
        CHECK_FIELD(g[1], "Action", dsn_action_name(t[i].a0));
        CHECK_FIELD(g[2], "Action", dsn_action_name(t[i].a1));
        mime_free(&m);
    }
    buf_free(&out);
    envelope_clear(&e);
}

static void test_hostile_text(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT;
    struct mime m;
    sample_env(&e);
    sample_report(&r, &e, rc);
    /* A reply that tries to start fields of its own. */
    rc[0].diag = "550 5.1.1 no\r\nX-Injected: 1\r\n\r\nFinal-Recipient: rfc822; evil@x\n"
                 "\x01\x7f\xc3\xa9 end";
    rc[0].remote_mta = "mx.example.net\r\nX-Also: 1";
    rc[0].diag_type = "x-tern";
    build_parse(&r, &out, &m);
    CHECK(!has_8bit(out.data, out.len));
    CHECK(memmem(out.data, out.len, "\r\nX-Injected", 12) == NULL);
    CHECK(memmem(out.data, out.len, "\r\nX-Also", 8) == NULL);
    struct span g[8];
    CHECK_EQ_INT(ds_groups(m.part_body[1], g, 8), 3);
    CHECK_FIELD(g[1], "Diagnostic-Code",
                "x-tern; 550 5.1.1 no X-Injected: 1 Final-Recipient: rfc822; evil@x ? end");
    CHECK_FIELD(g[1], "Remote-MTA", "dns; mx.example.net X-Also: 1");
    CHECK(memmem(out.data, out.len, "\r\nFinal-Recipient: rfc822; evil", 31) == NULL);
    mime_free(&m);

    /* A bad diag_type falls back to smtp. */
    rc[0].diag = "550 no";
    rc[0].diag_type = "x tern;";
    build_parse(&r, &out, &m);
    ds_groups(m.part_body[1], g, 8);
    CHECK_FIELD(g[1], "Diagnostic-Code", "smtp; 550 no");
    mime_free(&m);

    /* A very long reply is folded into lines of at most 998 octets; unfolded
     * it reads as it came (spaces collapsed). */
    struct buf longdiag = BUF_INIT, want = BUF_INIT;
    buf_puts(&longdiag, "550 5.7.1");
    for (int i = 0; i < 300; i++)
        buf_printf(&longdiag, "  word%d", i);
    buf_putc(&longdiag, ' ');
    for (int i = 0; i < 2500; i++)
        buf_putc(&longdiag, 'z');
    buf_puts(&want, "smtp; 550 5.7.1");
    for (int i = 0; i < 300; i++)
        buf_printf(&want, " word%d", i);
    buf_putc(&want, ' ');
    rc[0].diag = longdiag.data;
    rc[0].diag_type = NULL;
    build_parse(&r, &out, &m);
    ds_groups(m.part_body[1], g, 8);
    struct buf f = BUF_INIT;
    CHECK_EQ_INT(field_get(g[1], "Diagnostic-Code", 0, &f), 1);
    CHECK(f.len > want.len && !memcmp(f.data, want.data, want.len));
    /* The 2500-octet word is cut in pieces, each piece on its own line. */
    size_t zs = 0;
    for (size_t i = want.len; i < f.len; i++)
        zs += f.data[i] == 'z';
    CHECK_EQ_INT(zs, 2500);
    /* Folded near 78 columns where words allow. */
    const char *ds = m.part_body[1].p;
    const char *wline = memmem(ds, m.part_body[1].n, " word100", 8);
    CHECK(wline != NULL);
    buf_free(&f);
    buf_free(&longdiag);
    buf_free(&want);
    mime_free(&m);
    buf_free(&out);
    envelope_clear(&e);
}

static void test_boundary_collision(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT, content = BUF_INIT;
    struct mime m;
    sample_env(&e);
    e.ret_full = 1;
    sample_report(&r, &e, rc);
    r.boundary = "b";
    /* Lines that start with "--b", "--b0", "--b1": the boundary becomes "b2". */
    buf_puts(&content, "Subject: x\r\n\r\n--b\r\n--b0--\r\n--b1 z\r\nxx--b\r\n");
    r.content = content.data;
    r.content_len = content.len;
    build_parse(&r, &out, &m);
    CHECK_EQ_STR(m.boundary.data, "b2");
    CHECK_EQ_INT(m.nparts, 3);
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, content.data, content.len);
    mime_free(&m);
    /* Every candidate taken on the first step: one more character. */
    buf_reset(&content);
    buf_puts(&content, "Subject: x\r\n\r\n");
    const char cand[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; i < sizeof cand - 1; i++)
        buf_printf(&content, "--b%c\r\n", cand[i]);
    r.content = content.data;
    r.content_len = content.len;
    build_parse(&r, &out, &m);
    CHECK_EQ_STR(m.boundary.data, "bz0");
    CHECK_EQ_INT(m.nparts, 3);
    mime_free(&m);
    buf_free(&content);
    buf_free(&out);
    envelope_clear(&e);
}

static void test_smtputf8(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT;
    struct mime m;
    envelope_init(&e);
    envelope_set(&e.from, "j\xc3\xbcrgen@example.org");
    e.smtputf8 = 1;
    e.arrival = T0;
    envelope_add_rcpt(&e, "\xe7\x94\xa8\xe6\x88\xb7@example.net",
                      "utf-8;\\x{7528}\\x{6237}@example.net", 0);
    const char *orig = "From: j\xc3\xbcrgen@example.org\r\nSubject: Gr\xc3\xbc\xc3\x9f"
                       "e\r\n\r\nHallo\r\n";
    memset(rc, 0, sizeof rc);
    rc[0] = (struct dsn_rcpt){.addr = e.rcpts[0].addr,
                              .orcpt = e.rcpts[0].orcpt,
                              .action = DSN_ACTION_FAILED,
                              .status = "5.1.1",
                              .diag = "550 5.1.1 \xe7\x94\xa8\xe6\x88\xb7 unknown",
                              .remote_mta = "mx.example.net"};
    r = (struct dsn_report){.reporting_mta = "mx.tern.test",
                            .env = &e,
                            .rcpts = rc,
                            .nrcpts = 1,
                            .content = orig,
                            .content_len = strlen(orig),
                            .boundary = "B",
                            .message_id = "x@mx.tern.test",
                            .date = T0};
    unsigned flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_8BIT | DSN_OUT_UTF8 | DSN_OUT_HDRS_ONLY);
    CHECK_FIELD(m.head, "To", "<j\xc3\xbcrgen@example.org>");
    CHECK_FIELD(m.head, "Content-Type",
                "multipart/report; report-type=global-delivery-status; boundary=\"B\"");
    CHECK_EQ_INT(m.nparts, 3);
    CHECK_FIELD(m.part_head[0], "Content-Type", "text/plain; charset=utf-8");
    CHECK_FIELD(m.part_head[0], "Content-Transfer-Encoding", "8bit");
    CHECK_FIELD(m.part_head[1], "Content-Type", "message/global-delivery-status");
    CHECK_FIELD(m.part_head[2], "Content-Type", "message/global-headers");
    struct span g[8];
    CHECK_EQ_INT(ds_groups(m.part_body[1], g, 8), 2);
    CHECK_FIELD(g[1], "Final-Recipient", "utf-8; \xe7\x94\xa8\xe6\x88\xb7@example.net");
    CHECK_FIELD(g[1], "Original-Recipient", "utf-8; \xe7\x94\xa8\xe6\x88\xb7@example.net");
    CHECK_FIELD(g[1], "Diagnostic-Code", "smtp; 550 5.1.1 \xe7\x94\xa8\xe6\x88\xb7 unknown");
    mime_free(&m);

    /* RET=FULL: message/global. */
    e.ret_full = 1;
    build_parse(&r, &out, &m);
    CHECK_FIELD(m.part_head[2], "Content-Type", "message/global");
    CHECK_FIELD(m.part_head[2], "Content-Transfer-Encoding", "8bit");
    CHECK_EQ_MEM(m.part_body[2].p, m.part_body[2].n, orig, strlen(orig));
    mime_free(&m);

    /* Without SMTPUTF8 (say an alias led to a UTF-8 mailbox), the report
     * stays 7-bit: utf-8-addr-xtext, and '?' for 8-bit reply text. */
    e.smtputf8 = 0;
    e.ret_full = 0;
    envelope_set(&e.from, "juergen@example.org");
    r.content = original;
    r.content_len = sizeof original - 1;
    flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, DSN_OUT_HDRS_ONLY);
    CHECK(!has_8bit(out.data, out.len));
    CHECK_FIELD(m.head, "Content-Type",
                "multipart/report; report-type=delivery-status; boundary=\"B\"");
    CHECK_FIELD(m.part_head[1], "Content-Type", "message/delivery-status");
    ds_groups(m.part_body[1], g, 8);
    CHECK_FIELD(g[1], "Final-Recipient", "utf-8; \\x{7528}\\x{6237}@example.net");
    CHECK_FIELD(g[1], "Original-Recipient", "utf-8; \\x{7528}\\x{6237}@example.net");
    CHECK_FIELD(g[1], "Diagnostic-Code", "smtp; 550 5.1.1 ?? unknown");
    mime_free(&m);

    /* A UTF-8 sender needs SMTPUTF8 on the original: refused otherwise. */
    envelope_set(&e.from, "j\xc3\xbcrgen@example.org");
    CHECK_EQ_INT(dsn_build(&r, &out, NULL), -EINVAL);
    buf_free(&out);
    envelope_clear(&e);
}

static void test_bad_input(void)
{
    struct envelope e;
    struct dsn_rcpt rc[2];
    struct dsn_report r;
    struct buf out = BUF_INIT;
    sample_env(&e);
    sample_report(&r, &e, rc);
    buf_puts(&out, "keep");
#define EXPECT_REFUSED()                                                          \
    do {                                                                          \
        CHECK_EQ_INT(dsn_build(&r, &out, NULL), -EINVAL);                              \
        CHECK_EQ_STR(out.data, "keep");                                           \
    } while (0)
    /* Never to the null sender. */
    envelope_set(&e.from, "");
    EXPECT_REFUSED();
    envelope_set(&e.from, NULL);
    EXPECT_REFUSED();
    envelope_set(&e.from, "a\r\nb@x");
    EXPECT_REFUSED();
    envelope_set(&e.from, "alice@example.org");
    r.nrcpts = 0;
    EXPECT_REFUSED();
    r.nrcpts = 2;
    r.boundary = "";
    EXPECT_REFUSED();
    r.boundary = "a b ";
    EXPECT_REFUSED();
    r.boundary = "a\"b";
    EXPECT_REFUSED();
    r.boundary = "0123456789012345678901234567890123456789012345678901234567890";
    EXPECT_REFUSED();
    r.boundary = "ok";
    r.reporting_mta = "mx tern";
    EXPECT_REFUSED();
    r.reporting_mta = NULL;
    EXPECT_REFUSED();
    r.reporting_mta = "mx.tern.test";
    r.message_id = "<x@y>";
    EXPECT_REFUSED();
    r.message_id = "x@y";
    rc[1].addr = "";
    EXPECT_REFUSED();
    rc[1].addr = "carol@example.net";
    CHECK_EQ_INT(dsn_build(&r, &out, NULL), 0);
    /* No content: two parts. */
    struct mime m;
    r.content = NULL;
    r.content_len = 0;
    unsigned flags = build_parse(&r, &out, &m);
    CHECK_EQ_INT(flags, 0);
    CHECK_EQ_INT(m.nparts, 2);
    mime_free(&m);
    buf_free(&out);
    envelope_clear(&e);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    test_failed_headers();
    test_ret_full();
    test_delayed();
    test_success_kinds();
    test_hostile_text();
    test_boundary_collision();
    test_smtputf8();
    test_bad_input();
    return check_result("test_dsn");
}
