/* smtp_client.c: the outbound transaction. Commands of one transaction
 * are a numbered sequence (MAIL, RCPT 1..n, DATA); with PIPELINING
 * (RFC 2920) all are sent at once, otherwise one per reply, and replies
 * are matched to them in order either way. With CHUNKING (RFC 3030) the
 * sequence ends at the last RCPT and the content follows as one BDAT
 * LAST chunk once the replies are in.
 *
 * Before the first command the message gets its plan (client_plan): the
 * content is read once to see what it holds, and what goes out, under
 * which BODY=, follows from that and from the server's keywords — never
 * from the envelope's BODY= alone. Every content octet then leaves
 * through mail/dotstuff_enc, which refuses what the chosen transfer
 * cannot carry. A server's LIMITS (RFC 9422) split the recipients into
 * transactions of at most RCPTMAX on the same connection, and stop at
 * MAILMAX transactions a session (the rest is left untried for a new
 * connection). */
#include "smtp/smtp_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mail/dotstuff_enc.h"
#include "mail/downgrade.h"
#include "mail/envelope.h"
#include "mail/xtext.h"

/* A reply line longer than this is a broken server (RFC 5321 §4.5.3.1.5: 512). */
#define CLIENT_LINE_MAX 4096
#define CLIENT_REPLY_LINES_MAX 100
#define CLIENT_CHUNK (64 * 1024)
#define CLIENT_WRITE_HIGH (256 * 1024)

/* RFC 5321 §4.5.3.2 client timeouts, in seconds. */
#define T_GREETING 300
#define T_MAIL 300
#define T_RCPT 300
#define T_DATA 120
#define T_BLOCK 180
#define T_DOT 600

enum cstate {
    CS_GREETING, CS_EHLO, CS_HELO, CS_STARTTLS, CS_TLS, CS_EHLO2, CS_AUTH, CS_IDLE, CS_TXN,
    CS_CONTENT, CS_DOT, CS_RSET, CS_QUIT, CS_DEAD,
};

struct smtp_client {
    char *helo;  /* owned */
    char *peer;  /* owned */
    enum smtp_client_tls tls_policy;
    const struct smtp_client_io *io;
    void *io_arg;
    enum cstate state;
    int tls_on;
    /* EHLO keywords. */
    int esmtp, pipelining, starttls, eightbitmime, smtputf8, dsn, auth_plain;
    int chunking, binarymime;
    uint64_t rcpt_max, mail_max; /* LIMITS RCPTMAX, MAILMAX (RFC 9422); 0 = none */
    unsigned txns;               /* MAIL commands sent in this session */
    char *auth_user, *auth_pass; /* owned; NULL: no AUTH */
    int authed;
    smtp_client_trace_fn trace; /* NULL: no trace */
    void *trace_arg;
    int last_code;       /* of the last complete reply, 0 before the first */
    uint64_t size_max; /* 0 = not announced */
    /* The current reply being read. */
    int rcode;
    char rtext[512];
    unsigned rlines;
    /* The transaction. */
    int have_msg;
    struct smtp_client_msg m; /* its strings and fd are the owner's */
    smtp_client_done_fn done;
    void *done_arg;
    struct result *res; /* owned, m.nrcpts */
    /* Its plan (client_plan). */
    struct buf conv;       /* the content converted for this server (downgrade) */
    int use_conv;
    int use_bdat;          /* CHUNKING: BDAT, not DATA */
    enum envelope_body label; /* the BODY= sent */
    enum dotstuff_enc_mode enc_mode;
    /* The transaction: recipients [rbase, rbase + rcount) of the message. */
    size_t rbase, rcount;
    size_t tried;          /* recipients [0, tried) were tried (MAILMAX may leave the rest) */
    size_t sent, answered; /* commands of the sequence */
    size_t accepted;       /* recipients with 2xx */
    int mail_failed;
    uint64_t content_off;  /* octets of content sent */
    struct dotstuff_enc enc; /* the content on its way out */
};

static void client_trace(struct smtp_client *c, char dir, const char *line, size_t len)
{
    if (c->trace)
        c->trace(c->trace_arg, dir, line, len);
}

static void client_timeout(struct smtp_client *c, unsigned s)
{
    c->io->set_timeout(c->io_arg, (uint64_t)s * 1000);
}

static void client_cmd(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_cmd(struct smtp_client *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > sizeof line - 3)
        n = (int)(sizeof line - 3);
    client_trace(c, 'C', line, (size_t)n);
    line[n++] = '\r';
    line[n++] = '\n';
    c->io->write(c->io_arg, line, (size_t)n);
}

/* The enhanced status code of a reply text (RFC 3463), or the class default. */
static void client_result(struct result *r, int code, const char *text, const char *where,
                          const char *peer)
{
    char enh[16];
    const char *t = text;
    /* Only 2xx is success: a 3xx where none belongs (to MAIL, RCPT) is a
     * broken server, and the mail must stay queued, not count as sent. */
    enum result_kind k = code < 300 ? RESULT_OK : code < 500 ? RESULT_TEMPFAIL : RESULT_PERMFAIL;
    char cls = k == RESULT_OK ? '2' : k == RESULT_TEMPFAIL ? '4' : '5';
    size_t n = strspn(t, "0123456789.");
    if (n >= 5 && n < sizeof enh && t[n] == ' ') {
        memcpy(enh, t, n);
        enh[n] = '\0';
    }
    if (n >= 5 && n < sizeof enh && t[n] == ' ' && result_enh_valid(enh, cls)) {
        t += n + 1;
    } else {
        snprintf(enh, sizeof enh, "%c.0.0", cls);
    }
    /* Postfix's wording, "(in reply to RCPT TO command)", which log readers know. */
    result_set(r, k, code, enh, "host %s said: %d %s%s%s (in reply to %s command)", peer, code,
               enh, *t ? " " : "", t, where);
}

/* Recipients [lo, hi) without a failure of their own get this one. */
static void client_fail_range(struct smtp_client *c, size_t lo, size_t hi, enum result_kind k,
                              int code, const char *enh, const char *why)
{
    for (size_t i = lo; i < hi && i < c->m.nrcpts; i++)
        if (c->res[i].code == 0 || c->res[i].kind == RESULT_OK)
            result_set(&c->res[i], k, code, enh, "%s", why);
}

/* Every recipient not in a finished transaction: the message failed. */
static void client_fail_all(struct smtp_client *c, enum result_kind k, int code,
                            const char *enh, const char *why)
{
    client_fail_range(c, c->rbase, c->m.nrcpts, k, code, enh, why);
}

/* Ends the transaction: reports, then the client is idle (or dead). */
static void client_finish(struct smtp_client *c)
{
    if (!c->have_msg)
        return;
    c->have_msg = 0;
    struct result *res = c->res;
    size_t n = c->m.nrcpts;
    c->res = NULL;
    int closed = c->state == CS_DEAD;
    smtp_client_done_fn done = c->done;
    void *arg = c->done_arg;
    c->done = NULL;
    done(arg, res, n, closed);
    free(res);
}

static void client_die(struct smtp_client *c, enum result_kind k, int code, const char *enh,
                       const char *why)
{
    if (c->have_msg)
        client_fail_all(c, k, code, enh, why);
    c->state = CS_DEAD;
    client_finish(c);
}

static uint64_t client_content_len(const struct smtp_client *c)
{
    return c->use_conv ? c->conv.len : c->m.len;
}

/* RFC 3461 §4: NOTIFY and ORCPT of recipient i, for a server with DSN. */
static void client_dsn_rcpt(const struct smtp_client *c, size_t i, struct buf *p)
{
    unsigned n = c->m.notify ? c->m.notify[i] : 0;
    if (n & ENV_NOTIFY_NEVER) {
        buf_puts(p, " NOTIFY=NEVER");
    } else if (n) {
        static const struct {
            unsigned bit;
            const char *name;
        } kw[] = {{ENV_NOTIFY_SUCCESS, "SUCCESS"}, {ENV_NOTIFY_FAILURE, "FAILURE"},
                  {ENV_NOTIFY_DELAY, "DELAY"}};
        const char *sep = " NOTIFY=";
        for (size_t k = 0; k < 3; k++) {
            if (n & kw[k].bit) {
                buf_printf(p, "%s%s", sep, kw[k].name);
                sep = ",";
            }
        }
    }
    const char *o = c->m.orcpt ? c->m.orcpt[i] : NULL;
    if (o && strchr(o, ';')) {
        buf_printf(p, " ORCPT=%s", o); /* as the client gave it */
    } else if (o) {
        buf_puts(p, " ORCPT=rfc822;");
        xtext_encode(p, o, strlen(o));
    }
}

/* The index of the last command of the sequence: 0 MAIL, 1..rcount RCPT,
 * rcount+1 DATA (none with BDAT: the chunk waits for the replies). */
static size_t client_seq_last(const struct smtp_client *c)
{
    return c->rcount + (c->use_bdat ? 0 : 1);
}

/* Sends the transaction's next commands: all of them with PIPELINING,
 * else the next one. */
static void client_send_cmds(struct smtp_client *c)
{
    size_t last = client_seq_last(c);
    while (c->sent <= last) {
        if (!c->pipelining && c->sent > c->answered)
            return;
        struct buf params = BUF_INIT;
        if (c->sent == 0) {
            if (c->esmtp)
                buf_printf(&params, " SIZE=%llu", (unsigned long long)client_content_len(c));
            if (c->label == ENV_BODY_8BITMIME)
                buf_puts(&params, " BODY=8BITMIME");
            else if (c->label == ENV_BODY_BINARYMIME)
                buf_puts(&params, " BODY=BINARYMIME");
            if (c->m.smtputf8)
                buf_puts(&params, " SMTPUTF8");
            if (c->dsn && c->m.ret)
                buf_puts(&params, c->m.ret == 1 ? " RET=FULL" : " RET=HDRS");
            if (c->dsn && c->m.envid) {
                buf_puts(&params, " ENVID=");
                xtext_encode(&params, c->m.envid, strlen(c->m.envid));
            }
            client_cmd(c, "MAIL FROM:<%s>%s", c->m.from, params.data ? params.data : "");
            client_timeout(c, T_MAIL);
            c->txns++;
        } else if (c->sent <= c->rcount) {
            size_t i = c->rbase + c->sent - 1;
            if (c->dsn)
                client_dsn_rcpt(c, i, &params);
            client_cmd(c, "RCPT TO:<%s>%s", c->m.rcpts[i], params.data ? params.data : "");
            client_timeout(c, T_RCPT);
        } else {
            client_cmd(c, "DATA");
            client_timeout(c, T_DATA);
        }
        buf_free(&params);
        c->sent++;
    }
}

/* Ends the message before (another) transaction: the recipients left get
 * this result (none when why is NULL: they have theirs); the client
 * stays idle. */
static void client_refuse(struct smtp_client *c, enum result_kind k, int code, const char *enh,
                          const char *why)
{
    if (why)
        client_fail_all(c, k, code, enh, why);
    c->state = CS_IDLE;
    client_finish(c);
}

/* Reads the content (or its conversion) through a dry-run encoder in
 * TEXT mode: *flags gets what it holds (DOTSTUFF_ENC_F_*; NUL or BARE
 * means no text transfer can carry it). Returns 0, or -errno when it
 * cannot be read (-EIO: shorter than the queue said). */
static int client_scan(struct smtp_client *c, unsigned *flags)
{
    struct dotstuff_enc e;
    dotstuff_enc_init(&e, DOTSTUFF_ENC_TEXT);
    if (c->use_conv) {
        if (dotstuff_enc_feed(&e, c->conv.data ? c->conv.data : "", c->conv.len, NULL) == 0)
            dotstuff_enc_end(&e, NULL);
        *flags = e.flags;
        return 0;
    }
    char in[CLIENT_CHUNK];
    for (uint64_t off = 0; off < c->m.len;) {
        uint64_t left = c->m.len - off;
        ssize_t k = pread(c->m.fd, in, left < sizeof in ? (size_t)left : sizeof in,
                          c->m.off + (off_t)off);
        if (k < 0)
            return -errno;
        if (k == 0)
            return -EIO;
        off += (uint64_t)k;
        if (dotstuff_enc_feed(&e, in, (size_t)k, NULL) < 0)
            break; /* enough to know */
    }
    if (!e.failed)
        dotstuff_enc_end(&e, NULL);
    *flags = e.flags;
    return 0;
}

/* Converts the content into c->conv (mail/downgrade, flags DOWNGRADE_*).
 * Returns 0, or -errno with the recipients answered: 5.6.3 when it cannot
 * be done (RFC 6152 §3, RFC 3030 §3: convert or bounce; -EMSGSIZE, or
 * downgrade_convert's -EINVAL), 4.3.0 when it cannot be read (-EIO). */
static int client_convert(struct smtp_client *c, unsigned flags, const char *need)
{
    if (c->m.len > (uint64_t)1 << 31) {
        client_fail_all(c, RESULT_PERMFAIL, 554, "5.6.3",
                        "conversion required but the message is too large");
        return -EMSGSIZE;
    }
    size_t len = (size_t)c->m.len;
    char *raw = xmalloc(len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(c->m.fd, raw + got, len - got, c->m.off + (off_t)got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got < len) {
        free(raw);
        client_fail_all(c, RESULT_TEMPFAIL, 451, "4.3.0", "cannot read the queued message");
        return -EIO;
    }
    const char *why = NULL;
    int rc = downgrade_convert(raw, len, flags, &c->conv, &why);
    free(raw);
    if (rc < 0) {
        char text[300];
        snprintf(text, sizeof text, "%s %s and the message cannot be converted: %s", c->peer,
                 need, why ? why : "unknown reason");
        client_fail_all(c, RESULT_PERMFAIL, 554, "5.6.3", text);
        return rc;
    }
    c->use_conv = 1;
    return 0;
}

/* What goes out and how, from what the content holds and what the
 * server offers (never from the envelope's BODY= alone):
 *   - BODY=BINARYMIME content, to a server with CHUNKING and BINARYMIME:
 *     BDAT, byte for byte (RFC 3030 §3);
 *   - BODY=BINARYMIME content otherwise, and any content that holds a NUL
 *     or a bare CR or LF (which no text transfer may carry, RFC 5321
 *     §2.3.8): converted, 8-bit text kept when the server has 8BITMIME,
 *     so a NUL leaves only inside BINARYMIME content that came as such;
 *   - 8-bit octets to a server without 8BITMIME: converted to 7 bit
 *     (RFC 6152 §3);
 *   - the rest as it is.
 * BODY=8BITMIME labels whatever goes with 8-bit octets — also content
 * that arrived labelled 7BIT — and, as before, 8BITMIME content that is
 * 7-bit; BDAT is used whenever the server offers CHUNKING. Returns 0, or
 * -errno with the recipients answered. */
static int client_plan(struct smtp_client *c)
{
    unsigned f = 0;
    buf_reset(&c->conv);
    c->use_conv = 0;
    c->use_bdat = c->chunking;
    int rc = client_scan(c, &f);
    if (rc < 0) {
        client_fail_all(c, RESULT_TEMPFAIL, 451, "4.3.0", "cannot read the queued message");
        return rc;
    }
    int binary = c->m.body == ENV_BODY_BINARYMIME;
    if (binary && c->chunking && c->binarymime) {
        c->label = ENV_BODY_BINARYMIME;
        c->enc_mode = DOTSTUFF_ENC_BINARY;
        return 0;
    }
    int text = !(f & (DOTSTUFF_ENC_F_NUL | DOTSTUFF_ENC_F_BARE));
    int eight = (f & DOTSTUFF_ENC_F_8BIT) != 0;
    if (binary || !text || (eight && !c->eightbitmime)) {
        unsigned flags = (c->eightbitmime ? DOWNGRADE_KEEP_8BIT : 0) |
                         (binary ? DOWNGRADE_BINARY : 0);
        const char *need = binary ? (c->chunking ? "does not support BINARYMIME"
                                                 : "does not support CHUNKING and BINARYMIME")
                           : !text ? "cannot take a NUL, bare CR or bare LF"
                                   : "does not support 8BITMIME";
        rc = client_convert(c, flags, need);
        if (rc < 0)
            return rc;
        if (client_scan(c, &f) < 0 || (f & (DOTSTUFF_ENC_F_NUL | DOTSTUFF_ENC_F_BARE)) ||
            ((f & DOTSTUFF_ENC_F_8BIT) && !c->eightbitmime)) {
            /* downgrade_convert() promised otherwise: a broken invariant,
             * but the next hop must not pay for it. */
            client_fail_all(c, RESULT_PERMFAIL, 554, "5.6.3",
                            "conversion left octets that cannot be sent");
            return -EINVAL;
        }
        eight = (f & DOTSTUFF_ENC_F_8BIT) != 0;
    }
    c->label = eight || (c->m.body == ENV_BODY_8BITMIME && !c->use_conv && c->eightbitmime)
                   ? ENV_BODY_8BITMIME
                   : ENV_BODY_7BIT;
    c->enc_mode = c->use_bdat ? DOTSTUFF_ENC_TEXT : DOTSTUFF_ENC_DATA;
    return 0;
}

/* A transaction for the next recipients (at most RCPTMAX), or, at the
 * server's MAILMAX, none: the rest stay untried (RFC 9422 §5). */
static void client_txn_start(struct smtp_client *c)
{
    size_t n = c->m.nrcpts;
    if (c->mail_max && c->txns >= c->mail_max) {
        char why[200];
        snprintf(why, sizeof why,
                 "not sent: %s takes %llu transactions a session (LIMITS MAILMAX)", c->peer,
                 (unsigned long long)c->mail_max);
        c->tried = c->rbase;
        client_refuse(c, RESULT_TEMPFAIL, 451, "4.5.3", why);
        return;
    }
    c->rcount = n - c->rbase;
    if (c->rcpt_max && c->rcount > c->rcpt_max)
        c->rcount = (size_t)c->rcpt_max;
    c->state = CS_TXN;
    c->sent = c->answered = c->accepted = 0;
    c->mail_failed = 0;
    client_send_cmds(c);
}

/* A transaction ended (the client is idle): the next one, or the end. */
static void client_txn_end(struct smtp_client *c)
{
    size_t next = c->rbase + c->rcount;
    if (c->mail_failed || next >= c->m.nrcpts) {
        client_finish(c);
        return;
    }
    c->rbase = next;
    client_txn_start(c);
}

/* RFC 1870 §6: do not send what the server said it will refuse. 1 when
 * len fits; 0 with the message refused. */
static int client_size_ok(struct smtp_client *c, uint64_t len, const char *what)
{
    if (len == 0 || c->size_max == 0 || len <= c->size_max)
        return 1;
    char why[200];
    snprintf(why, sizeof why, "message size %llu%s exceeds the limit %llu of %s",
             (unsigned long long)len, what, (unsigned long long)c->size_max, c->peer);
    client_refuse(c, RESULT_PERMFAIL, 552, "5.3.4", why);
    return 0;
}

static void client_begin(struct smtp_client *c)
{
    if (!client_size_ok(c, c->m.len, ""))
        return;
    if (c->m.smtputf8 && !c->smtputf8) {
        /* RFC 6531 §3.2: no downgrade; the message cannot go this way. */
        char why[160];
        snprintf(why, sizeof why, "%s does not support SMTPUTF8", c->peer);
        client_refuse(c, RESULT_PERMFAIL, 553, "5.6.7", why);
        return;
    }
    if (client_plan(c) < 0) {
        client_refuse(c, RESULT_OK, 0, NULL, NULL); /* answered */
        return;
    }
    if (c->use_conv && !client_size_ok(c, c->conv.len, " after conversion"))
        return;
    client_txn_start(c);
}

/* Writes content while the connection takes it, through the encoder
 * (dot-stuffed for DATA, RFC 5321 §4.5.2), then DATA's final dot. The
 * encoder refusing an octet means the spooled content is not what the
 * plan saw: the connection is dropped with the data unended, so the
 * server keeps nothing. */
static void client_pump(struct smtp_client *c)
{
    char in[CLIENT_CHUNK];
    struct buf out = BUF_INIT;
    if (c->trace && c->content_off == 0 && c->state == CS_CONTENT) {
        char note[80];
        int k = snprintf(note, sizeof note, "(message content, %llu octets)",
                         (unsigned long long)client_content_len(c));
        client_trace(c, 'C', note, (size_t)k);
    }
    while (c->state == CS_CONTENT && c->io->pending(c->io_arg) < CLIENT_WRITE_HIGH) {
        uint64_t left = client_content_len(c) - c->content_off;
        if (left == 0) {
            if (dotstuff_enc_end(&c->enc, &out) < 0)
                break;
            if (!c->use_bdat)
                client_trace(c, 'C', ".", 1);
            c->io->write(c->io_arg, out.data, out.len);
            buf_reset(&out);
            c->state = CS_DOT;
            client_timeout(c, T_DOT);
            break;
        }
        size_t want = left < sizeof in ? (size_t)left : sizeof in;
        ssize_t k;
        if (c->use_conv) {
            memcpy(in, c->conv.data + c->content_off, want);
            k = (ssize_t)want;
        } else {
            k = pread(c->m.fd, in, want, c->m.off + (off_t)c->content_off);
        }
        if (k <= 0) {
            buf_free(&out);
            /* Not the peer's fault: the message must not end half sent. */
            client_die(c, RESULT_TEMPFAIL, 451, "4.3.0", "cannot read the queued message");
            return;
        }
        if (dotstuff_enc_feed(&c->enc, in, (size_t)k, &out) < 0)
            break;
        c->content_off += (uint64_t)k;
        c->io->write(c->io_arg, out.data, out.len);
        buf_reset(&out);
        client_timeout(c, T_BLOCK);
    }
    buf_free(&out);
    if (c->state == CS_CONTENT && c->enc.failed)
        client_die(c, RESULT_TEMPFAIL, 451, "4.3.0",
                   "the queued message changed: it holds octets that cannot be sent");
}

/* All replies to MAIL and RCPT are in (CHUNKING): the content as one
 * BDAT LAST chunk (RFC 3030 §2), or RSET when nobody was accepted. */
static void client_bdat(struct smtp_client *c)
{
    if (c->accepted == 0 || c->mail_failed) {
        c->state = CS_RSET;
        client_cmd(c, "RSET");
        client_timeout(c, T_MAIL);
        return;
    }
    client_cmd(c, "BDAT %llu LAST", (unsigned long long)client_content_len(c));
    c->state = CS_CONTENT;
    c->content_off = 0;
    dotstuff_enc_init(&c->enc, c->enc_mode);
    client_pump(c);
}

/* RFC 9422 §4: LIMITS NAME=VALUE ...; unknown names, and values that are
 * not a positive number, are ignored. */
static void client_limits(struct smtp_client *c, const char *p)
{
    char tok[64];
    while (*p) {
        while (*p == ' ')
            p++;
        size_t k = strcspn(p, " ");
        if (k > 0 && k < sizeof tok) {
            memcpy(tok, p, k);
            tok[k] = '\0';
            char *eq = strchr(tok, '=');
            unsigned long long v;
            if (eq && strutil_parse_u64(eq + 1, &v) == 0 && v > 0) {
                *eq = '\0';
                if (!strcasecmp(tok, "RCPTMAX"))
                    c->rcpt_max = v;
                else if (!strcasecmp(tok, "MAILMAX"))
                    c->mail_max = v;
            }
        }
        p += k;
    }
}

static void client_ehlo_line(struct smtp_client *c, const char *kw)
{
    if (!strncasecmp(kw, "PIPELINING", 10) && (kw[10] == '\0' || kw[10] == ' '))
        c->pipelining = 1;
    else if (!strncasecmp(kw, "STARTTLS", 8) && kw[8] == '\0')
        c->starttls = 1;
    else if (!strncasecmp(kw, "8BITMIME", 8) && kw[8] == '\0')
        c->eightbitmime = 1;
    else if (!strncasecmp(kw, "SMTPUTF8", 8) && kw[8] == '\0')
        c->smtputf8 = 1;
    else if (!strncasecmp(kw, "DSN", 3) && kw[3] == '\0')
        c->dsn = 1;
    else if (!strcasecmp(kw, "CHUNKING"))
        c->chunking = 1;
    else if (!strcasecmp(kw, "BINARYMIME"))
        c->binarymime = 1;
    else if (!strncasecmp(kw, "LIMITS", 6) && (kw[6] == '\0' || kw[6] == ' '))
        client_limits(c, kw + 6);
    else if (!strncasecmp(kw, "AUTH", 4) && (kw[4] == ' ' || kw[4] == '=')) {
        for (const char *p = kw + 5; *p; p++)
            if (!strncasecmp(p, "PLAIN", 5) && (p[5] == '\0' || p[5] == ' ') &&
                (p[-1] == ' ' || p[-1] == '='))
                c->auth_plain = 1;
    }
    else if (!strncasecmp(kw, "SIZE", 4) && (kw[4] == '\0' || kw[4] == ' ')) {
        unsigned long long v;
        if (kw[4] == ' ' && strutil_parse_u64(kw + 5, &v) == 0)
            c->size_max = v;
    }
}

static void client_send_ehlo(struct smtp_client *c, enum cstate st)
{
    c->pipelining = c->starttls = c->eightbitmime = c->smtputf8 = c->dsn = c->auth_plain = 0;
    c->chunking = c->binarymime = 0;
    c->size_max = c->rcpt_max = c->mail_max = 0;
    c->state = st;
    client_cmd(c, "EHLO %s", c->helo);
    client_timeout(c, T_GREETING);
}

/* After EHLO (or HELO): TLS first when offered, then the transaction. */
static void client_ready(struct smtp_client *c)
{
    if (!c->tls_on && c->starttls && c->io->starttls && c->tls_policy != SMTP_TLS_NONE) {
        c->state = CS_STARTTLS;
        client_cmd(c, "STARTTLS");
        client_timeout(c, T_GREETING);
        return;
    }
    if (!c->tls_on && c->tls_policy == SMTP_TLS_REQUIRE) {
        char why[160];
        snprintf(why, sizeof why, "TLS is required, but %s does not offer STARTTLS", c->peer);
        client_die(c, RESULT_TEMPFAIL, 451, "4.7.4", why);
        return;
    }
    if (c->auth_user && !c->authed) {
        char why[200];
        if (!c->tls_on || !c->auth_plain) {
            snprintf(why, sizeof why, "cannot log in to %s: %s", c->peer,
                     c->tls_on ? "no AUTH PLAIN offered" : "no TLS for the password");
            client_die(c, RESULT_TEMPFAIL, 451, "4.7.0", why);
            return;
        }
        /* RFC 4616: authzid NUL authcid NUL password, base64. */
        size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
        char *raw = xmalloc(ul + pl + 2), *b64 = xmalloc(BASE64_ENCODED_SIZE(ul + pl + 2));
        raw[0] = '\0';
        memcpy(raw + 1, c->auth_user, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, c->auth_pass, pl);
        ssize_t n = base64_encode(raw, ul + pl + 2, b64, BASE64_ENCODED_SIZE(ul + pl + 2));
        if (n > 0) {
            c->state = CS_AUTH;
            struct buf line = BUF_INIT;
            buf_printf(&line, "AUTH PLAIN %s\r\n", b64);
            client_trace(c, 'C', "AUTH PLAIN ********", 19); /* never the secret */
            c->io->write(c->io_arg, line.data, line.len);
            explicit_bzero(line.data, line.len);
            buf_free(&line);
            client_timeout(c, T_MAIL);
        }
        explicit_bzero(raw, ul + pl + 2);
        explicit_bzero(b64, BASE64_ENCODED_SIZE(ul + pl + 2));
        free(raw);
        free(b64);
        if (n <= 0)
            client_die(c, RESULT_TEMPFAIL, 451, "4.7.0", "cannot encode the AUTH credentials");
        return;
    }
    c->state = CS_IDLE;
    if (c->have_msg)
        client_begin(c);
}

/* One reply to the final dot or to BDAT LAST: the transaction's result
 * for every recipient it accepted. */
static void client_dot_reply(struct smtp_client *c)
{
    struct result r;
    client_result(&r, c->rcode, c->rtext, c->use_bdat ? "BDAT" : "end of DATA", c->peer);
    for (size_t i = c->rbase; i < c->rbase + c->rcount; i++)
        if (c->res[i].kind == RESULT_OK)
            c->res[i] = r;
    c->state = CS_IDLE;
    client_txn_end(c);
}

/* A whole reply of the transaction: the one for command `answered`. */
static void client_txn_reply(struct smtp_client *c)
{
    size_t i = c->answered++;
    size_t n = c->rcount;
    if (i == 0) {
        if (c->rcode >= 300) {
            /* The sender is refused: for this and every later transaction. */
            struct result r;
            client_result(&r, c->rcode, c->rtext, "MAIL FROM", c->peer);
            client_fail_all(c, r.kind, r.code, r.enh, r.text);
            c->mail_failed = 1;
        }
    } else if (i <= n) {
        struct result *r = &c->res[c->rbase + i - 1];
        if (c->mail_failed)
            ; /* the MAIL result stands */
        else if (c->rcode >= 200 && c->rcode < 300) {
            c->accepted++;
            result_set(r, RESULT_OK, c->rcode, "2.0.0", "accepted");
        } else {
            client_result(r, c->rcode, c->rtext, "RCPT TO", c->peer);
        }
    } else {
        /* DATA */
        if (c->rcode == 354 && c->accepted > 0 && !c->mail_failed) {
            c->state = CS_CONTENT;
            c->content_off = 0;
            dotstuff_enc_init(&c->enc, c->enc_mode);
            client_pump(c);
            return;
        }
        if (c->rcode == 354) {
            /* Nobody to deliver to (RFC 2920 §3.1): end the empty message. */
            client_cmd(c, ".");
            c->state = CS_RSET;
            return;
        }
        if (c->accepted > 0 && !c->mail_failed) {
            struct result r;
            client_result(&r, c->rcode, c->rtext, "DATA", c->peer);
            if (r.kind == RESULT_OK) /* a 2xx is no 354: the content never went */
                result_set(&r, RESULT_TEMPFAIL, 451, "4.5.0",
                           "host %s said: %d %s (in reply to DATA command, not 354)", c->peer,
                           c->rcode, c->rtext);
            client_fail_range(c, c->rbase, c->rbase + n, r.kind, r.code, r.enh, r.text);
        }
        c->state = CS_RSET;
        client_cmd(c, "RSET");
        client_timeout(c, T_MAIL);
        return;
    }
    if (c->use_bdat && c->answered == client_seq_last(c) + 1) {
        client_bdat(c);
        return;
    }
    if (!c->pipelining && c->answered == c->sent) {
        /* Without pipelining: nothing more is worth sending after a
         * failed MAIL or with no accepted recipient at the end. */
        if (c->mail_failed || (c->answered == n + 1 && c->accepted == 0)) {
            c->state = CS_RSET;
            client_cmd(c, "RSET");
            client_timeout(c, T_MAIL);
            return;
        }
        client_send_cmds(c);
    }
}

/* One complete reply (code and first line's text) in the current state. */
static void client_reply(struct smtp_client *c)
{
    char why[700];
    switch (c->state) {
    case CS_GREETING:
        if (c->rcode != 220) {
            snprintf(why, sizeof why, "host %s refused to talk to us: %d %s", c->peer, c->rcode,
                     c->rtext);
            client_die(c, RESULT_TEMPFAIL, 451, "4.4.0", why);
            return;
        }
        client_send_ehlo(c, CS_EHLO);
        return;
    case CS_EHLO:
    case CS_EHLO2:
        if (c->rcode == 250) {
            c->esmtp = 1;
            client_ready(c);
            return;
        }
        if (c->state == CS_EHLO2) {
            snprintf(why, sizeof why, "host %s refused EHLO after STARTTLS: %d %s", c->peer,
                     c->rcode, c->rtext);
            client_die(c, RESULT_TEMPFAIL, 451, "4.4.0", why);
            return;
        }
        c->state = CS_HELO; /* RFC 5321 §3.2: fall back to HELO */
        client_cmd(c, "HELO %s", c->helo);
        return;
    case CS_HELO:
        if (c->rcode != 250) {
            snprintf(why, sizeof why, "host %s refused HELO: %d %s", c->peer, c->rcode,
                     c->rtext);
            client_die(c, RESULT_TEMPFAIL, 451, "4.4.0", why);
            return;
        }
        c->esmtp = 0;
        client_ready(c);
        return;
    case CS_STARTTLS:
        if (c->rcode != 220) {
            if (c->tls_policy == SMTP_TLS_REQUIRE) {
                snprintf(why, sizeof why, "host %s refused STARTTLS: %d %s", c->peer,
                         c->rcode, c->rtext);
                client_die(c, RESULT_TEMPFAIL, 451, "4.7.4", why);
                return;
            }
            c->starttls = 0; /* opportunistic: go on in plaintext */
            client_ready(c);
            return;
        }
        c->state = CS_TLS;
        c->io->starttls(c->io_arg);
        return;
    case CS_AUTH:
        if (c->rcode != 235) {
            snprintf(why, sizeof why, "SASL authentication with %s failed: %d %s", c->peer,
                     c->rcode, c->rtext);
            client_die(c, RESULT_TEMPFAIL, 451, "4.7.0", why);
            return;
        }
        c->authed = 1;
        client_ready(c);
        return;
    case CS_TXN:
        client_txn_reply(c);
        return;
    case CS_DOT:
        client_dot_reply(c);
        return;
    case CS_RSET:
        c->state = CS_IDLE;
        client_txn_end(c);
        return;
    case CS_QUIT:
        c->state = CS_DEAD;
        return;
    default:
        return; /* CS_TLS, CS_CONTENT, CS_IDLE, CS_DEAD: a reply nobody asked for */
    }
}

struct smtp_client *smtp_client_new(const char *helo, const char *peer,
                                    enum smtp_client_tls tls, const struct smtp_client_io *io,
                                    void *io_arg)
{
    struct smtp_client *c = xcalloc(1, sizeof *c);
    c->helo = xstrdup(helo);
    c->peer = xstrdup(peer);
    c->tls_policy = tls;
    c->tls_on = tls == SMTP_TLS_IMPLICIT; /* the owner's conn is TLS from the start */
    c->io = io;
    c->io_arg = io_arg;
    c->state = CS_GREETING;
    client_timeout(c, T_GREETING);
    return c;
}

void smtp_client_set_auth(struct smtp_client *c, const char *user, const char *pass)
{
    free(c->auth_user);
    free(c->auth_pass);
    c->auth_user = xstrdup(user);
    c->auth_pass = xstrdup(pass);
}

void smtp_client_free(struct smtp_client *c)
{
    if (c == NULL)
        return;
    if (c->auth_pass)
        explicit_bzero(c->auth_pass, strlen(c->auth_pass));
    free(c->auth_user);
    free(c->auth_pass);
    free(c->res);
    buf_free(&c->conv);
    free(c->helo);
    free(c->peer);
    free(c);
}

void smtp_client_send(struct smtp_client *c, const struct smtp_client_msg *m,
                      smtp_client_done_fn done, void *arg)
{
    c->m = *m;
    c->have_msg = 1;
    c->rbase = c->rcount = 0;
    c->tried = m->nrcpts;
    c->done = done;
    c->done_arg = arg;
    free(c->res);
    c->res = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof *c->res);
    if (c->state == CS_DEAD) {
        client_die(c, RESULT_TEMPFAIL, 451, "4.4.0", "connection already closed");
        return;
    }
    if (c->state == CS_IDLE)
        client_begin(c);
}

void smtp_client_input(struct smtp_client *c, struct buf *in)
{
    while (in->len && c->state != CS_DEAD) {
        char *nl = memchr(in->data, '\n', in->len);
        if (nl == NULL) {
            if (in->len > CLIENT_LINE_MAX) {
                client_die(c, RESULT_TEMPFAIL, 451, "4.4.0", "reply line too long");
                return;
            }
            return;
        }
        size_t len = (size_t)(nl - in->data);
        size_t used = len + 1;
        if (len && in->data[len - 1] == '\r')
            len--;
        client_trace(c, 'S', in->data, len); /* also a malformed line: the watcher sees why */
        int code = 0, ok = len >= 3;
        for (size_t i = 0; ok && i < 3; i++) {
            ok = in->data[i] >= '0' && in->data[i] <= '9';
            code = code * 10 + (in->data[i] - '0');
        }
        char sep = len > 3 ? in->data[3] : ' ';
        if (!ok || code < 200 || code > 599 || (sep != ' ' && sep != '-') ||
            (c->rlines > 0 && code != c->rcode) || len > CLIENT_LINE_MAX) {
            client_die(c, RESULT_TEMPFAIL, 451, "4.4.0", "malformed reply from the server");
            return;
        }
        const char *text = len > 4 ? in->data + 4 : "";
        size_t tlen = len > 4 ? len - 4 : 0;
        if (c->rlines == 0) {
            c->rcode = code;
            struct buf esc = BUF_INIT;
            strutil_escape(&esc, text, tlen > 400 ? 400 : tlen);
            strutil_lcpy(c->rtext, esc.data ? esc.data : "", sizeof c->rtext);
            buf_free(&esc);
        } else if (c->state == CS_EHLO || c->state == CS_EHLO2) {
            char kw[128];
            size_t k = tlen < sizeof kw - 1 ? tlen : sizeof kw - 1;
            memcpy(kw, text, k);
            kw[k] = '\0';
            client_ehlo_line(c, kw);
        }
        c->rlines++;
        buf_consume(in, used);
        if (c->rlines > CLIENT_REPLY_LINES_MAX) {
            client_die(c, RESULT_TEMPFAIL, 451, "4.4.0", "reply too long");
            return;
        }
        if (sep == ' ') {
            c->rlines = 0;
            c->last_code = c->rcode;
            client_reply(c);
            if (c->state == CS_TLS)
                return; /* bytes after the 220 are not TLS: dropped by the owner */
        }
    }
}

void smtp_client_drained(struct smtp_client *c)
{
    if (c->state == CS_CONTENT)
        client_pump(c);
}

void smtp_client_tls_done(struct smtp_client *c, int ok)
{
    if (c->state != CS_TLS)
        return;
    if (!ok) {
        char why[160];
        snprintf(why, sizeof why, "TLS handshake with %s failed", c->peer);
        client_die(c, RESULT_TEMPFAIL, 451, "4.7.5", why);
        return;
    }
    c->tls_on = 1;
    client_send_ehlo(c, CS_EHLO2); /* RFC 3207 §4.2: everything anew */
}

void smtp_client_lost(struct smtp_client *c, const char *why)
{
    if (c->state == CS_DEAD)
        return;
    char text[300];
    snprintf(text, sizeof text, "lost connection with %s: %s", c->peer, why);
    client_die(c, RESULT_TEMPFAIL, 451, "4.4.2", text);
}

void smtp_client_quit(struct smtp_client *c)
{
    if (c->state != CS_IDLE)
        return;
    client_cmd(c, "QUIT");
    c->state = CS_QUIT;
}

int smtp_client_spent(const struct smtp_client *c)
{
    return c->state == CS_IDLE && c->mail_max && c->txns >= c->mail_max;
}

int smtp_client_idle(const struct smtp_client *c)
{
    return c->state == CS_IDLE && !c->have_msg && !smtp_client_spent(c);
}

size_t smtp_client_tried(const struct smtp_client *c)
{
    return c->tried;
}

int smtp_client_dsn(const struct smtp_client *c)
{
    return c->dsn;
}

void smtp_client_set_trace(struct smtp_client *c, smtp_client_trace_fn fn, void *arg)
{
    c->trace = fn;
    c->trace_arg = arg;
}

int smtp_client_last_reply(const struct smtp_client *c, const char **text)
{
    if (text)
        *text = c->last_code ? c->rtext : "";
    return c->last_code;
}

int smtp_client_tls(const struct smtp_client *c)
{
    return c->tls_on;
}
