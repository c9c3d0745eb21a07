/* smtp_session_data.c: message content of an inbound session: DATA
 * (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), the trace header (§4.4), the
 * checks made at the end of the content, and the hand-over to the queue. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/strutil.h"
#include "mail/reply.h"
#include "mailauth/authres.h"
#include "smtp/smtp_session_priv.h"

/* Content is written to the body file in blocks of this size. */
#define SMTP_BODY_BLOCK (64 * 1024)

static void smtp_body_write(struct smtp_session *s)
{
    if (s->body.len == 0)
        return;
    if (s->judged) {
        /* The checks see what is stored, without our own trace header. */
        size_t skip = s->content_skip < s->body.len ? s->content_skip : s->body.len;
        s->content_skip -= skip;
        if (s->body.len > skip)
            s->svc->mail_content(s->svc_arg, s->id, s->body.data + skip, s->body.len - skip);
    }
    if (s->body_fd >= 0 && s->body_err == 0) {
        int rc = fsio_write_all(s->body_fd, s->body.data, s->body.len);
        if (rc < 0)
            s->body_err = rc;
    }
    buf_reset(&s->body);
}

/* Submission (RFC 6409 §8.2, §8.3): a message without Date: or
 * Message-ID: gets them, inserted where the header section ends. */
static int smtp_fixes_header(const struct smtp_session *s)
{
    return s->role != CONF_ROLE_MX && !s->hdr_fixed;
}

static void smtp_fix_header(struct smtp_session *s, size_t at)
{
    s->hdr_fixed = 1;
    struct buf add = BUF_INIT;
    char id_left[ENVELOPE_QID_MAX + 24];
    snprintf(id_left, sizeof id_left, "%s.%llu", s->qid, (unsigned long long)clock_mono_ms());
    hdrscan_fixes(&s->hs, id_left, s->cfg->hostname, NULL, NULL, &add);
    if (add.len == 0) {
        buf_free(&add);
        return;
    }
    if (!(s->hs.seen & HDRSCAN_MSGID)) {
        /* The message has the identifier we added now: the log names it. */
        struct buf id = BUF_INIT;
        if (hdrscan_message_id(&s->hs, &add, &id) == 0) {
            s->hs.msgid_len = id.len < sizeof s->hs.msgid ? id.len : sizeof s->hs.msgid - 1;
            memcpy(s->hs.msgid, id.data, s->hs.msgid_len);
            s->hs.seen |= HDRSCAN_MSGID;
        }
        buf_free(&id);
    }
    struct buf *b = &s->body;
    buf_reserve(b, add.len);
    memmove(b->data + at + add.len, b->data + at, b->len - at);
    memcpy(b->data + at, add.data, add.len);
    buf_commit(b, add.len);
    buf_free(&add);
}

/* Header fixes need the header section unwritten: hold the content back
 * until its end is seen, up to a bound (then the fix is skipped). */
#define SMTP_HEADER_HOLD (1024 * 1024)

/* RFC 8601 §5: an Authentication-Results field that claims our
 * authserv-id came from outside (or from our past self on another hop)
 * and must not be believed: removed before anything reads the message. */
static bool smtp_drop_authres(void *arg, const char *name, size_t name_len, const char *f,
                              size_t n, bool complete)
{
    const struct smtp_session *s = arg;
    static const char ar[] = "Authentication-Results";
    if (name_len != sizeof ar - 1 || strncasecmp(name, ar, name_len) != 0)
        return false;
    const char *v = memchr(f, ':', n);
    if (v == NULL)
        return false;
    v++;
    /* A field too long to hold is judged on its start: an id it claims
     * comes first, and one that cannot be read is taken as ours. */
    return authres_claims_id(v, n - (size_t)(v - f), false, config_authserv_id(s->cfg)) != 0;
}

/* Passes the new content body[from..) through the header filter. */
static void smtp_filter_header(struct smtp_session *s, size_t from)
{
    if (s->hf.done || s->body.len == from)
        return;
    buf_reset(&s->scratch);
    buf_append(&s->scratch, s->body.data + from, s->body.len - from);
    s->body.len = from;
    hdrfield_feed(&s->hf, s->scratch.data, s->scratch.len, &s->body);
}

static void smtp_append_content(struct smtp_session *s, size_t from)
{
    smtp_filter_header(s, from);
    hdrscan_feed(&s->hs, s->body.data, from, s->body.len);
    if (smtp_fixes_header(s)) {
        if (s->hs.done)
            smtp_fix_header(s, s->hs.end);
        else if (s->body.len < SMTP_HEADER_HOLD)
            return;
        else
            s->hdr_fixed = 1; /* a header over 1 MiB: leave it as it is */
    }
    if (s->body.len >= SMTP_BODY_BLOCK)
        smtp_body_write(s);
}

/* Whether a recipient can be written into the for clause as it is: a
 * Dot-string local part (RFC 5321 §4.1.2) and a domain or literal, so no
 * quotes, backslash, parenthesis, '<', '>', ';', ',', space or 8-bit. A
 * quoted local part is valid RFC 5322, but readers of trace headers that
 * stop at its first ')', '>' or ';' would misread the rest. */
static int smtp_trace_addr_ok(const char *a)
{
    for (; *a; a++) {
        unsigned char c = (unsigned char)*a;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-/=?^_`{|}~.@[]:", c)))
            return 0;
    }
    return 1;
}

/* The trace header of RFC 5321 §4.4, in Postfix's layout. The
 * From-domain is the HELO name when it is a Domain or an address literal,
 * else the client's address literal, the name then percent-encoded in the
 * comment (smtp_helo_trace). The recipient is named only when there is
 * exactly one, so Bcc recipients are not disclosed to each other, and
 * only when its address can be written as it is (smtp_trace_addr_ok);
 * Delivered-To names it at delivery anyway. */
static void smtp_received_header(struct smtp_session *s)
{
    if (s->local)
        return; /* the pickup collector writes it, naming the uid */
    char date[64];
    clock_rfc5322(clock_wall(), date, sizeof date);
    struct buf *b = &s->body;
    if (s->helo_trace[0])
        buf_printf(b, "Received: from [%s%s] (%s [%s] helo=%s)\r\n",
                   strchr(s->ip, ':') ? "IPv6:" : "", s->ip, s->name, s->ip, s->helo_trace);
    else
        buf_printf(b, "Received: from %s (%s [%s])\r\n", s->helo, s->name, s->ip);
    if (s->tls_on)
        buf_printf(b, "\t(using %s with cipher %s (%d/%d bits))\r\n", s->tls_version,
                   s->tls_cipher, s->tls_bits, s->tls_bits);
    buf_printf(b, "\tby %s (tern) with %s id %s", s->cfg->hostname, smtp_proto_name(s), s->qid);
    if (s->env.nrcpts == 1 && smtp_trace_addr_ok(s->env.rcpts[0].addr))
        buf_printf(b, "\r\n\tfor <%s>", s->env.rcpts[0].addr);
    buf_printf(b, "; %s\r\n", date);
}

static void smtp_wait_for(struct smtp_session *s, enum smtp_wait w)
{
    s->wait = w;
    smtp_flush(s);
    s->io->pause(s->io_arg, 1);
}

void smtp_data_cmd(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (cmd->arglen) {
        smtp_reply(s, 501, "5.5.4", "Syntax: DATA");
        return;
    }
    if (s->state == SS_MAIL) {
        smtp_reply(s, 503, "5.5.1", "Error: no valid recipients");
        return;
    }
    if (s->bdat_used) {
        smtp_reply(s, 503, "5.5.1", "Error: DATA after BDAT");
        return;
    }
    if (s->env.body == ENV_BODY_BINARYMIME) {
        /* RFC 3030 §3: BINARYMIME content can only be sent with BDAT. */
        smtp_reply(s, 503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT");
        return;
    }
    smtp_wait_for(s, SW_BODY);
    s->svc->body_open(s->svc_arg, s->id);
}

static void smtp_data_init_decoder(struct smtp_session *s, enum dotstuff_mode mode)
{
    const struct config *cfg = s->cfg;
    dotstuff_init(&s->ds, mode,
                  cfg->bare_lf == CONF_BARE_REJECT ? DOTSTUFF_REJECT : DOTSTUFF_NORMALIZE,
                  cfg->text_line_max, cfg->message_size_max);
    hdrscan_init(&s->hs);
    s->hdr_fixed = 0;
    hdrfield_free(&s->hf);
    hdrfield_init(&s->hf, smtp_drop_authres, s);
}

void smtp_data_body_opened(struct smtp_session *s, const char *qid, int fd)
{
    if (s->wait != SW_BODY) {
        /* Nobody asked (the transaction was reset meanwhile): give it back. */
        close(fd);
        s->svc->abort(s->svc_arg, qid);
        return;
    }
    s->wait = SW_NONE;
    s->body_fd = fd;
    s->have_body = 1;
    strutil_lcpy(s->qid, qid, sizeof s->qid);
    if (s->auth_user[0]) {
        struct buf u = BUF_INIT;
        strutil_escape_word(&u, s->auth_user, strlen(s->auth_user));
        log_info("%s: client=%s[%s], sasl_method=%s, sasl_username=%s", s->qid, s->name, s->ip,
                 s->auth_method, u.data);
        buf_free(&u);
    } else
        log_info("%s: client=%s[%s]", s->qid, s->name, s->ip);
    buf_reset(&s->body);
    smtp_received_header(s);
    s->content_skip = s->body.len;
    s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_data * 1000);
    if (s->state == SS_BDAT) {
        smtp_data_init_decoder(s, s->env.body == ENV_BODY_BINARYMIME ? DOTSTUFF_BINARY
                                                                     : DOTSTUFF_BDAT);
    } else {
        smtp_data_init_decoder(s, DOTSTUFF_DATA);
        s->state = SS_DATA;
        reply_append(&s->out, 354, NULL, "End data with <CR><LF>.<CR><LF>");
    }
    smtp_flush(s);
    s->io->pause(s->io_arg, 0);
}

/* "QID: message-id=<...>", as Postfix's cleanup logs it ("<>" when the
 * message has none); the identifier is peer text, escaped as a word. */
static void smtp_log_message_id(const struct smtp_session *s)
{
    struct buf id = BUF_INIT, esc = BUF_INIT;
    if (hdrscan_message_id(&s->hs, NULL, &id) == 0)
        strutil_escape_word(&esc, id.data, id.len);
    log_msg_as("tern/cleanup", LOGL_INFO, "%s: message-id=<%s>", s->qid, esc.data ? esc.data : "");
    buf_free(&id);
    buf_free(&esc);
}

/* The checks at the end of the content; on success hands the message to
 * the queue and waits for it to be durable before replying. */
static void smtp_data_end(struct smtp_session *s, enum smtp_verb verb)
{
    /* A header that is all the content ends with its last field. */
    size_t held = s->body.len;
    hdrfield_end(&s->hf, &s->body);
    hdrscan_feed(&s->hs, s->body.data, held, s->body.len);
    if (smtp_fixes_header(s)) {
        /* No empty line: the whole content is header; add at its end. */
        if (s->body.len && s->body.data[s->body.len - 1] != '\n')
            buf_puts(&s->body, "\r\n");
        smtp_fix_header(s, s->body.len);
    }
    smtp_body_write(s);
    s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_command * 1000);
    const struct dotstuff *d = &s->ds;
    int code = 0;
    const char *enh = NULL;
    struct result res;
    char text[sizeof res.text];
    int spool_error = 0;
    if (d->flags & DOTSTUFF_F_TOOBIG) {
        code = 552, enh = "5.3.4";
        snprintf(text, sizeof text, "Message size exceeds fixed limit");
    } else if ((d->flags & DOTSTUFF_F_BARE) && s->cfg->bare_lf == CONF_BARE_REJECT) {
        /* RFC 5321 §2.3.8: CR and LF only as CRLF; refused rather than
         * guessed at, so no later server can read a different message. */
        code = 554, enh = "5.6.0";
        snprintf(text, sizeof text, "Message refused: bare CR or LF in content");
    } else if (d->flags & DOTSTUFF_F_LONGLINE) {
        code = 554, enh = "5.6.0";
        snprintf(text, sizeof text, "Message refused: line longer than %zu octets",
                 s->cfg->text_line_max);
    } else if (s->hs.received > s->cfg->received_max) {
        code = 554, enh = "5.4.6";
        snprintf(text, sizeof text, "Message refused: too many hops (mail loop?)");
    } else if (s->body_err) {
        /* The body file is on the spool's file system: a full one is
         * 452 4.3.1 and the client tries again later. */
        result_spool_error(&res, s->body_err);
        code = res.code, enh = res.enh, spool_error = 1;
        snprintf(text, sizeof text, "%s", res.text);
        log_warn("%s: cannot write queue file: %s", s->qid, strerror(-s->body_err));
    }
    if (code) {
        if (!spool_error) {
            struct buf f = BUF_INIT, h = BUF_INIT;
            strutil_escape_word(&f, s->env.from ? s->env.from : "",
                                s->env.from ? strlen(s->env.from) : 0);
            strutil_escape_word_again(&h, s->helo);
            log_info("%s: reject: END-OF-MESSAGE from %s[%s]: %d %s %s; from=<%s> proto=%s "
                     "helo=<%s>",
                     s->qid, s->name, s->ip, code, enh, text, f.data ? f.data : "",
                     s->esmtp ? "ESMTP" : "SMTP", h.data ? h.data : "");
            buf_free(&f);
            buf_free(&h);
        }
        smtp_reply(s, code, enh, "%s", text);
        smtp_txn_reset(s);
        s->state = SS_READY;
        return;
    }
    struct envelope *e = &s->env;
    strutil_lcpy(e->qid, s->qid, sizeof e->qid);
    e->arrival = clock_wall();
    off_t end = lseek(s->body_fd, 0, SEEK_CUR);
    e->size = end > 0 ? (uint64_t)end : 0;
    envelope_set(&e->client_ip, s->ip);
    envelope_set(&e->client_name, s->name);
    envelope_set(&e->helo, s->helo);
    envelope_set(&e->auth_user, s->auth_user[0] ? s->auth_user : NULL);
    s->counts[verb].ok++;
    s->state = SS_READY;
    smtp_log_message_id(s);
    if (s->judged) {
        /* SPF, DKIM and DMARC have their say before the reply. */
        smtp_wait_for(s, SW_VERDICT);
        s->svc->mail_verdict(s->svc_arg, s->id, s->txn);
        return;
    }
    smtp_wait_for(s, SW_COMMIT);
    s->svc->commit(s->svc_arg, s->id, s->qid, e, NULL, 0);
}

void smtp_session_verdict(struct smtp_session *s, uint32_t txn, const struct result *refusal,
                          const char *prefix, size_t n, int junk)
{
    if (s->wait != SW_VERDICT || txn != s->txn)
        return;
    if (refusal->kind != RESULT_OK) {
        /* Refused with nothing stored: a reject is a reject, never a
         * bounce afterwards. */
        struct buf f = BUF_INIT;
        strutil_escape_word(&f, s->env.from ? s->env.from : "",
                            s->env.from ? strlen(s->env.from) : 0);
        log_info("%s: reject: END-OF-MESSAGE from %s[%s]: %d %s %s; from=<%s>", s->qid, s->name,
                 s->ip, refusal->code, refusal->enh, refusal->text, f.data ? f.data : "");
        buf_free(&f);
        smtp_reply(s, refusal->code, refusal->enh, "%s", refusal->text);
        smtp_txn_reset(s);
        smtp_resume(s);
        return;
    }
    s->env.junk = junk != 0;
    s->wait = SW_COMMIT;
    s->svc->commit(s->svc_arg, s->id, s->qid, &s->env, prefix, n);
}

void smtp_data_committed(struct smtp_session *s, const struct result *res)
{
    s->wait = SW_NONE;
    /* Either way the queue owns the outcome now: nothing to abort. */
    s->have_body = 0;
    /* The queue's answer is the reply (RFC 5321 §4.2.5: 250 only once
     * the message is ours): a refusal keeps its meaning (552 too big,
     * 550 no such recipient, 452 spool full), so the client bounces or
     * retries as it should. */
    if (res->kind != RESULT_OK)
        log_warn("%s: not queued: %d %s %s", s->qid, res->code, res->enh, res->text);
    smtp_reply(s, res->code, res->enh, "%s", res->text);
    smtp_txn_reset(s);
    s->state = SS_READY;
    smtp_flush(s);
    s->io->pause(s->io_arg, 0);
}

size_t smtp_data_feed(struct smtp_session *s, const char *in, size_t len)
{
    size_t used = 0, before = s->body.len;
    int rc = dotstuff_feed(&s->ds, in, len, &s->body, &used);
    smtp_append_content(s, before);
    if (rc == DOTSTUFF_END)
        smtp_data_end(s, SMTP_VERB_DATA);
    return used;
}

void smtp_bdat_cmd(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    uint64_t size;
    int last;
    if (smtp_parse_bdat(cmd->arg, cmd->arglen, &size, &last) < 0) {
        /* Without a valid size the chunk's end cannot be found, and its
         * content must never be read as commands: close. */
        smtp_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
        smtp_reply(s, 421, "4.7.0", "%s Error: cannot resynchronise", s->cfg->hostname);
        smtp_close(s);
        return;
    }
    s->bdat_left = size;
    s->bdat_chunk = size;
    s->bdat_last = last;
    s->bdat_discard = 0;
    if (s->state != SS_RCPT || s->bdat_failed) {
        /* RFC 3030 §2: the chunk is read and discarded all the same. */
        if (s->bdat_failed)
            smtp_reply(s, 503, "5.5.1", "Error: transaction failed, send RSET");
        else if (s->state == SS_GREET)
            smtp_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        else if (s->state == SS_READY)
            smtp_reply(s, 503, "5.5.1", "Error: need MAIL command");
        else
            smtp_reply(s, 503, "5.5.1", "Error: need RCPT command");
        s->bdat_discard = 1;
        s->resume_state = s->state;
        s->state = SS_BDAT;
        return;
    }
    s->state = SS_BDAT;
    if (!s->bdat_used) {
        s->bdat_used = 1;
        smtp_wait_for(s, SW_BODY);
        s->svc->body_open(s->svc_arg, s->id);
        return;
    }
    s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_data * 1000);
}

/* A BDAT chunk has been read completely. */
static void smtp_bdat_chunk_done(struct smtp_session *s)
{
    if (s->bdat_discard) {
        s->state = s->resume_state;
        if (s->bdat_failed && s->bdat_last)
            smtp_txn_reset(s);
        return;
    }
    if (s->bdat_last) {
        size_t before = s->body.len;
        dotstuff_finish(&s->ds, &s->body);
        smtp_append_content(s, before);
        smtp_data_end(s, SMTP_VERB_BDAT);
        return;
    }
    s->state = SS_RCPT;
    s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_command * 1000);
    if (s->ds.flags & DOTSTUFF_F_TOOBIG) {
        smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
        if (s->have_body) {
            s->svc->abort(s->svc_arg, s->qid);
            s->have_body = 0;
        }
        if (s->body_fd >= 0) {
            close(s->body_fd);
            s->body_fd = -1;
        }
        s->bdat_failed = 1;
        return;
    }
    s->counts[SMTP_VERB_BDAT].ok++;
    smtp_reply(s, 250, "2.0.0", "%llu octets received", (unsigned long long)s->bdat_chunk);
}

size_t smtp_bdat_feed(struct smtp_session *s, const char *in, size_t len)
{
    size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;
    if (!s->bdat_discard && n) {
        size_t used = 0, before = s->body.len;
        dotstuff_feed(&s->ds, in, n, &s->body, &used);
        smtp_append_content(s, before);
    }
    s->bdat_left -= n;
    if (s->bdat_left == 0)
        smtp_bdat_chunk_done(s);
    return n;
}
