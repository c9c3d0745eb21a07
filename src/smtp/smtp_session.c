/* smtp_session.c: the command side of an inbound session. Each verb has
 * the states it is allowed in and a handler; "is this command allowed
 * now?" is the one check in smtp_dispatch(), so the 503 cases read like
 * RFC 5321 §4.1.4. Message content lives in smtp_session_data.c. */
#include "smtp/smtp_session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strutil.h"
#include "sasl/verify.h"
#include "base/xmalloc.h"
#include "mail/dsn_param.h"
#include "mail/reply.h"
#include "smtp/smtp_session_priv.h"

#define ST(x) (1u << (x))
#define ST_TXN_OK (ST(SS_GREET) | ST(SS_READY) | ST(SS_MAIL) | ST(SS_RCPT))

struct smtp_verb_rule {
    unsigned allowed; /* states in which the verb may run */
    void (*handler)(struct smtp_session *s, const struct smtp_cmd *cmd);
};

/* Whether a reply tells the client it got the protocol wrong: the errors
 * bad_commands_max bounds. Those are RFC 5321 §4.2.1's x0z syntax replies
 * (500-504), 555 (MAIL/RCPT parameters, §4.1.1.11) and AUTH's x3z (530,
 * 535, 538; RFC 4954 §6). Not errors: every 4yz, which reports a limit or
 * the server's state (452 4.5.3 for too many recipients is what
 * §4.5.3.1.10 tells a client to expect, 451 a queue file not written),
 * and the 55z verdicts on an address or a message (550, 552, 553, 554):
 * a relay with a large queue gets those in any long session. Refused
 * recipients have their own limit (rcpt_refused_max). */
static int smtp_reply_is_error(int code)
{
    int kind = code / 10 % 10;
    return code >= 500 && (kind == 0 || kind == 3 || code == 555);
}

void smtp_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    reply_append(&s->out, code, enh, text);
    if (smtp_reply_is_error(code))
        s->errors++;
}

void smtp_flush(struct smtp_session *s)
{
    if (s->out.len) {
        s->io->write(s->io_arg, s->out.data, s->out.len);
        buf_reset(&s->out);
    }
}

void smtp_close(struct smtp_session *s)
{
    smtp_flush(s);
    s->state = SS_CLOSING;
    s->io->close(s->io_arg);
}

const char *smtp_proto_name(const struct smtp_session *s)
{
    /* RFC 3848 / RFC 6531 §3.7.3 protocol names for the Received header:
     * S for TLS, A for AUTH. */
    static const char *const esmtp[] = {"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"};
    static const char *const utf8[] = {"UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"};
    int i = (s->tls_on ? 1 : 0) | (s->auth_user[0] ? 2 : 0);
    if (s->env.smtputf8)
        return utf8[i];
    if (!s->esmtp && i == 0)
        return "SMTP";
    return esmtp[i];
}

void smtp_txn_reset(struct smtp_session *s)
{
    if (s->have_body) {
        s->svc->abort(s->svc_arg, s->qid);
        s->have_body = 0;
    }
    if (s->body_fd >= 0) {
        close(s->body_fd);
        s->body_fd = -1;
    }
    envelope_clear(&s->env);
    buf_reset(&s->body);
    s->judged = 0;
    s->spf_pending = 0;
    s->qid[0] = '\0';
    s->body_err = 0;
    s->rcpt_cmds = 0;
    s->bdat_used = 0;
    s->bdat_failed = 0;
    s->bdat_left = 0;
    s->bdat_last = 0;
    s->bdat_discard = 0;
    if (s->state == SS_MAIL || s->state == SS_RCPT || s->state == SS_DATA ||
        s->state == SS_BDAT)
        s->state = SS_READY;
}

/* Logs a refused command the way Postfix's smtpd does, so pflogsumm and
 * an operator's greps find it: "NOQUEUE: reject: RCPT from host[ip]: 550
 * 5.1.1 <addr>: Recipient address rejected: ...; from=<...> to=<...>
 * proto=ESMTP helo=<...>". `addr` (the path of the refused command) and
 * `to` are raw; every peer-supplied word is escaped here, each into its
 * own buffer, with strutil_escape_word so that none can end its field
 * early or forge another one. */
static void smtp_log_reject(struct smtp_session *s, const char *verb, int code, const char *enh,
                            const char *addr, const char *what, const char *to)
{
    struct buf a = BUF_INIT, f = BUF_INIT, t = BUF_INIT, h = BUF_INIT;
    /* A refused MAIL has no sender yet: its path is the from= field. */
    const char *from = s->env.from ? s->env.from : strcmp(verb, "MAIL") == 0 ? addr : "";
    strutil_escape_word(&a, addr, strlen(addr));
    strutil_escape_word(&f, from, strlen(from));
    strutil_escape_word(&t, to, strlen(to));
    strutil_escape_word_again(&h, s->helo);
    log_info("NOQUEUE: reject: %s from %s[%s]: %d %s <%s>: %s; from=<%s> to=<%s> proto=%s "
             "helo=<%s>",
             verb, s->name, s->ip, code, enh, a.data ? a.data : "", what, f.data ? f.data : "",
             t.data ? t.data : "", s->esmtp ? "ESMTP" : "SMTP", h.data ? h.data : "");
    buf_free(&a);
    buf_free(&f);
    buf_free(&t);
    buf_free(&h);
}

/* What the trace header says of the HELO name (RFC 5321 §4.4): a Domain
 * or an address literal is the From-domain, as sent. Anything else (tern
 * accepts any word, smtp_parse_helo says why) would be read as something
 * else there: "a(b)c" opens a comment, ';' ends the clauses early for a
 * reader that looks for the date, "[10.0.0.1]" fakes the client's
 * address. Such a name goes into the comment after the real address,
 * each octet other than a letter, digit, '-', '.', '_' or ':' as %HH. */
static void smtp_helo_trace(struct smtp_session *s, const char *name, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = s->helo_trace;
    if (!mailaddr_is_host(name, n)) {
        for (size_t i = 0; i < n && i < SMTP_HELO_TRACE_MAX; i++) {
            unsigned char c = (unsigned char)name[i];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == ':') {
                *o++ = (char)c;
            } else {
                *o++ = '%';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        }
    }
    *o = '\0';
}

static void smtp_cmd_helo(struct smtp_session *s, const struct smtp_cmd *cmd, int esmtp)
{
    size_t namelen;
    if (smtp_parse_helo(cmd->arg, cmd->arglen, &namelen) < 0) {
        smtp_reply(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    /* For logs and the envelope: printable ASCII only (no CR/LF, no
     * controls), bounded. */
    if (namelen > SMTP_HELO_TRACE_MAX)
        namelen = SMTP_HELO_TRACE_MAX;
    struct buf esc = BUF_INIT;
    strutil_escape(&esc, cmd->arg, namelen);
    strutil_lcpy(s->helo, esc.data ? esc.data : "", sizeof s->helo);
    buf_free(&esc);
    smtp_helo_trace(s, cmd->arg, namelen);
    smtp_txn_reset(s);
    s->esmtp = esmtp;
    s->state = SS_READY;
    s->counts[esmtp ? SMTP_VERB_EHLO : SMTP_VERB_HELO].ok++;
    const struct config *cfg = s->cfg;
    if (!esmtp) {
        reply_append(&s->out, 250, NULL, cfg->hostname);
        return;
    }
    struct buf t = BUF_INIT;
    buf_printf(&t, "%s\n", cfg->hostname);
    if (cfg->message_size_max)
        buf_printf(&t, "SIZE %llu\n", (unsigned long long)cfg->message_size_max);
    else
        buf_puts(&t, "SIZE\n");
    buf_puts(&t, "PIPELINING\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nCHUNKING\nBINARYMIME\n"
                 "DSN\n");
    if (smtp_starttls_offered(s))
        buf_puts(&t, "STARTTLS\n");
    if (smtp_auth_offered(s) && !s->auth_user[0])
        buf_puts(&t, "AUTH PLAIN LOGIN\n");
    buf_printf(&t, "LIMITS RCPTMAX=%zu", cfg->rcpt_max);
    reply_append(&s->out, 250, NULL, t.data);
    buf_free(&t);
}

static void smtp_do_ehlo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    smtp_cmd_helo(s, cmd, 1);
}

static void smtp_do_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    smtp_cmd_helo(s, cmd, 0);
}

/* *size: the SIZE parameter (RFC 1870), 0 if none. Returns 0, or -EINVAL
 * (-EMSGSIZE for a SIZE over the limit) after the reply was sent. */
static int smtp_mail_params(struct smtp_session *s, const struct smtp_params *ps, uint64_t *size)
{
    *size = 0;
    struct dsn_param_mail dm;
    dsn_param_mail_init(&dm);
    for (size_t i = 0; i < ps->n; i++) {
        const struct smtp_param *p = &ps->p[i];
        if (!s->esmtp) {
            smtp_reply(s, 555, "5.5.4", "Unsupported option: %s (no EHLO)", p->key);
            return -EINVAL;
        }
        struct dsn_param_error de;
        int d = dsn_param_mail(&dm, p->key, p->has_value ? p->value : NULL, strlen(p->value),
                               &de);
        if (d < 0) {
            smtp_reply(s, de.code, de.enh, "%s", de.text);
            return -EINVAL;
        }
        if (d > 0)
            continue; /* RET or ENVID (RFC 3461) */
        if (!strcmp(p->key, "SIZE")) {
            unsigned long long n;
            if (!p->has_value || strutil_parse_u64(p->value, &n) < 0) {
                smtp_reply(s, 501, "5.5.4", "Bad SIZE parameter");
                return -EINVAL;
            }
            if (s->cfg->message_size_max && n > s->cfg->message_size_max) {
                smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
                return -EMSGSIZE;
            }
            *size = n;
        } else if (!strcmp(p->key, "BODY")) {
            if (!p->has_value) {
                smtp_reply(s, 501, "5.5.4", "Bad BODY parameter");
                return -EINVAL;
            }
            if (!strutil_casecmp(p->value, "7BIT")) {
                s->env.body = ENV_BODY_7BIT;
            } else if (!strutil_casecmp(p->value, "8BITMIME")) {
                s->env.body = ENV_BODY_8BITMIME;
            } else if (!strutil_casecmp(p->value, "BINARYMIME")) {
                s->env.body = ENV_BODY_BINARYMIME;
            } else {
                smtp_reply(s, 504, "5.5.4", "Unsupported BODY type");
                return -EINVAL;
            }
        } else if (!strcmp(p->key, "AUTH")) {
            /* RFC 4954 §5: the submitter's identity (xtext), or <>. It is
             * accepted and not passed on: tern trusts no one's claim. */
            if (!p->has_value) {
                smtp_reply(s, 501, "5.5.4", "Bad AUTH parameter");
                return -EINVAL;
            }
        } else if (!strcmp(p->key, "SMTPUTF8")) {
            if (p->has_value) {
                smtp_reply(s, 501, "5.5.4", "SMTPUTF8 takes no value");
                return -EINVAL;
            }
            s->env.smtputf8 = 1;
        } else {
            smtp_reply(s, 555, "5.5.4", "Unsupported option: %s", p->key);
            return -EINVAL;
        }
    }
    dsn_param_mail_apply(&dm, &s->env);
    return 0;
}

/* Maps a path parse failure to its reply (RFC 5321 §4.2.2, RFC 6531 §3.7.4). */
static void smtp_path_error(struct smtp_session *s, int rc, int is_rcpt)
{
    switch (rc) {
    case SMTP_PATH_ETOOLONG:
        smtp_reply(s, 501, "5.1.3", "Path too long");
        break;
    case SMTP_PATH_EUTF8:
        smtp_reply(s, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
        break;
    case SMTP_PATH_EPARAM:
        smtp_reply(s, 501, "5.5.4", "Malformed parameters");
        break;
    case SMTP_PATH_EPREFIX:
        smtp_reply(s, 501, "5.5.4", "Syntax: %s", is_rcpt ? "RCPT TO:<address>" : "MAIL FROM:<address>");
        break;
    default:
        if (is_rcpt)
            smtp_reply(s, 501, "5.1.3", "Bad recipient address syntax");
        else
            smtp_reply(s, 501, "5.1.7", "Bad sender address syntax");
        break;
    }
}

static void smtp_do_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    struct mailaddr path;
    struct smtp_params ps;
    /* RFC 6409 §4.3: submission requires AUTH before MAIL. */
    if (s->role != CONF_ROLE_MX && !s->auth_user[0] && !s->local) {
        smtp_reply(s, 530, "5.7.0", "Authentication required");
        return;
    }
    int rc = smtp_parse_mail_rcpt(cmd->arg, cmd->arglen, 0, MAILADDR_ALLOW_NULL, &path, &ps);
    if (rc != SMTP_PATH_OK) {
        smtp_path_error(s, rc, 0);
        return;
    }
    envelope_clear(&s->env);
    uint64_t size;
    if (smtp_mail_params(s, &ps, &size) < 0) {
        envelope_clear(&s->env);
        return;
    }
    if ((path.flags & MAILADDR_F_UTF8) && !s->env.smtputf8) {
        smtp_reply(s, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
        envelope_clear(&s->env);
        return;
    }
    if (s->auth_user[0] && path.text[0] &&
        !auth_login_owns(s->cfg, s->auth_user, &path, (int)s->cfg->sender_check)) {
        smtp_reply(s, 553, "5.7.1", "<%s>: Sender address not owned by user %s",
                   strutil_esc(path.text), s->auth_user);
        smtp_log_reject(s, "MAIL", 553, "5.7.1", path.text, "Sender address not owned by user",
                        "");
        envelope_clear(&s->env);
        return;
    }
    /* RFC 1870 §6.1: a message that cannot fit now is refused before
     * its data is sent, with 452 (a full spool: the client tries again
     * later); with no room at all, every MAIL is. The figure is the
     * queue's, a second old at most; the commit checks again. */
    uint64_t room = s->svc->spool_room ? s->svc->spool_room(s->svc_arg) : UINT64_MAX;
    if (room == 0 || size > room) {
        struct result res;
        result_spool_error(&res, -ENOSPC);
        smtp_reply(s, res.code, res.enh, "%s", res.text);
        smtp_log_reject(s, "MAIL", res.code, res.enh, path.text, res.text, "");
        envelope_clear(&s->env);
        return;
    }
    envelope_set(&s->env.from, path.text);
    s->state = SS_MAIL;
    s->counts[SMTP_VERB_MAIL].ok++;
    smtp_reply(s, 250, "2.1.0", "Ok");
    /* RFC 7208 §2.4: SPF judges the MAIL FROM identity (and the HELO
     * name); the next command waits for it, so that RCPT can refuse. */
    s->txn++;
    result_set(&s->rcpt_refusal, RESULT_OK, 250, "2.1.5", "Ok");
    s->judged = s->svc->mail_start && s->cfg->mail_auth_checks && !s->auth_user[0] &&
                !s->relay_ok && !s->local;
    if (s->judged) {
        s->spf_pending = 1;
        s->svc->mail_start(s->svc_arg, s->id, s->txn, s->helo, path.text);
    }
}

void smtp_session_spf_done(struct smtp_session *s, uint32_t txn, const struct result *refusal)
{
    if (!s->spf_pending || txn != s->txn)
        return;
    s->spf_pending = 0;
    s->rcpt_refusal = *refusal;
    if (s->wait == SW_SPF)
        smtp_resume(s);
}

static int smtp_rcpt_seen(const struct smtp_session *s, const char *addr)
{
    for (size_t i = 0; i < s->env.nrcpts; i++)
        if (!strutil_casecmp(s->env.rcpts[i].addr, addr))
            return 1;
    return 0;
}

static void smtp_do_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    struct mailaddr path;
    struct smtp_params ps;
    /* RFC 9422 RCPTMAX (rcpt_max) is a number of RCPT commands: every one
     * of the transaction counts, refused or naming an address again. Past
     * it, 452 and the client sends the rest later (RFC 5321 §4.5.3.1.10),
     * before the address is read: the excess reveals nothing about it. */
    if (s->rcpt_cmds >= s->cfg->rcpt_max) {
        smtp_reply(s, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    s->rcpt_cmds++;
    unsigned flags = MAILADDR_ALLOW_POSTMASTER | (s->env.smtputf8 ? MAILADDR_ALLOW_UTF8 : 0);
    int rc = smtp_parse_mail_rcpt(cmd->arg, cmd->arglen, 1, flags, &path, &ps);
    if (rc != SMTP_PATH_OK) {
        smtp_path_error(s, rc, 1);
        return;
    }
    if (s->rcpt_refusal.kind != RESULT_OK) {
        /* The sender's SPF verdict (spf_reject_fail, spf_defer_temperror). */
        const struct result *r = &s->rcpt_refusal;
        smtp_reply(s, r->code, r->enh, "%s", r->text);
        smtp_log_reject(s, "RCPT", r->code, r->enh, path.text, r->text, path.text);
        return;
    }
    struct dsn_param_rcpt dr;
    dsn_param_rcpt_init(&dr);
    for (size_t i = 0; i < ps.n; i++) {
        const struct smtp_param *p = &ps.p[i];
        struct dsn_param_error de;
        int d = dsn_param_rcpt(&dr, p->key, p->has_value ? p->value : NULL, strlen(p->value),
                               s->env.smtputf8, &de);
        if (d <= 0) {
            if (d < 0)
                smtp_reply(s, de.code, de.enh, "%s", de.text);
            else
                smtp_reply(s, 555, "5.5.4", "Unsupported option: %s", p->key);
            return;
        }
    }
    const char *to = strutil_esc(path.text);
    switch (config_rcpt_check(s->cfg, &path)) {
    case CONF_RCPT_LOCAL:
        break;
    case CONF_RCPT_UNKNOWN:
        smtp_reply(s, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown", to);
        smtp_log_reject(s, "RCPT", 550, "5.1.1", path.text,
                        "Recipient address rejected: User unknown", path.text);
        s->rcpts_refused++;
        return;
    case CONF_RCPT_REMOTE:
    default:
        /* Relaying: for authenticated users and relay_networks only. */
        if (s->auth_user[0] || s->relay_ok)
            break;
        smtp_reply(s, 554, "5.7.1", "<%s>: Relay access denied", to);
        smtp_log_reject(s, "RCPT", 554, "5.7.1", path.text, "Relay access denied", path.text);
        s->rcpts_refused++;
        return;
    }
    if (!smtp_rcpt_seen(s, path.text))
        dsn_param_rcpt_add(&dr, &s->env, path.text);
    s->state = SS_RCPT;
    s->counts[SMTP_VERB_RCPT].ok++;
    smtp_reply(s, 250, "2.1.5", "Ok");
}

static void smtp_do_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (cmd->arglen) {
        smtp_reply(s, 501, "5.5.4", "Syntax: RSET");
        return;
    }
    smtp_txn_reset(s);
    s->counts[SMTP_VERB_RSET].ok++;
    smtp_reply(s, 250, "2.0.0", "Ok");
}

static void smtp_do_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    s->counts[SMTP_VERB_NOOP].ok++;
    smtp_reply(s, 250, "2.0.0", "Ok");
}

static void smtp_do_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    s->counts[SMTP_VERB_QUIT].ok++;
    smtp_reply(s, 221, "2.0.0", "Bye");
    smtp_close(s);
}

static void smtp_do_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (cmd->arglen == 0) {
        smtp_reply(s, 501, "5.5.4", "Syntax: VRFY address");
        return;
    }
    /* Never discloses whether a user exists (RFC 5321 §3.5.3, §7.3). */
    s->counts[SMTP_VERB_VRFY].ok++;
    smtp_reply(s, 252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void smtp_do_expn(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    smtp_reply(s, 502, "5.5.1", "EXPN command disabled");
}

static void smtp_do_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    s->counts[SMTP_VERB_HELP].ok++;
    smtp_reply(s, 214, "2.0.0",
               "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
}

static const struct smtp_verb_rule smtp_rules[SMTP_VERB_COUNT] = {
    [SMTP_VERB_EHLO] = {ST_TXN_OK, smtp_do_ehlo},
    [SMTP_VERB_HELO] = {ST_TXN_OK, smtp_do_helo},
    [SMTP_VERB_MAIL] = {ST(SS_READY), smtp_do_mail},
    [SMTP_VERB_RCPT] = {ST(SS_MAIL) | ST(SS_RCPT), smtp_do_rcpt},
    [SMTP_VERB_DATA] = {ST(SS_MAIL) | ST(SS_RCPT), smtp_data_cmd},
    [SMTP_VERB_BDAT] = {ST_TXN_OK, smtp_bdat_cmd}, /* checks its own state: must skip the chunk */
    [SMTP_VERB_RSET] = {ST_TXN_OK, smtp_do_rset},
    [SMTP_VERB_NOOP] = {ST_TXN_OK, smtp_do_noop},
    [SMTP_VERB_QUIT] = {ST_TXN_OK, smtp_do_quit},
    [SMTP_VERB_VRFY] = {ST_TXN_OK, smtp_do_vrfy},
    [SMTP_VERB_EXPN] = {ST_TXN_OK, smtp_do_expn},
    [SMTP_VERB_HELP] = {ST_TXN_OK, smtp_do_help},
    [SMTP_VERB_STARTTLS] = {ST_TXN_OK, smtp_do_starttls}, /* 502 before 503 */
    [SMTP_VERB_AUTH] = {ST(SS_READY) | ST(SS_MAIL) | ST(SS_RCPT), smtp_do_auth},
};

/* The 503 reply for a verb used out of sequence (RFC 5321 §4.1.4). */
static void smtp_sequence_error(struct smtp_session *s, enum smtp_verb v)
{
    if (s->state == SS_GREET)
        smtp_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
    else if (v == SMTP_VERB_MAIL)
        smtp_reply(s, 503, "5.5.1", "Error: nested MAIL command");
    else if (s->state == SS_READY)
        smtp_reply(s, 503, "5.5.1", "Error: need MAIL command");
    else
        smtp_reply(s, 503, "5.5.1", "Error: need RCPT command");
}

/* Between transactions, waiting for nobody: a drain may close it now. */
static int smtp_session_idle(const struct smtp_session *s)
{
    return s->wait == SW_NONE && (s->state == SS_GREET || s->state == SS_READY);
}

static void smtp_drain_close(struct smtp_session *s)
{
    smtp_reply(s, 421, "4.3.2", "%s Service shutting down, try again later",
               s->cfg->hostname);
    smtp_close(s);
}

/* Ends a session that reached one of its limits since the last accepted
 * message: protocol errors (bad_commands_max), or refused recipients
 * (rcpt_refused_max: a directory-harvest or relay probe; higher, as a list
 * server's stale addresses are refused too). */
static void smtp_check_limits(struct smtp_session *s, enum smtp_verb v)
{
    const char *what;
    if (s->state == SS_CLOSING)
        return;
    if (s->errors >= s->cfg->bad_commands_max)
        what = "errors";
    else if (s->rcpts_refused >= s->cfg->rcpt_refused_max)
        what = "refused recipients";
    else
        return;
    smtp_reply(s, 421, "4.7.0", "%s Error: too many %s", s->cfg->hostname, what);
    log_info("too many %s after %s from %s[%s]", what, smtp_verb_name(v), s->name, s->ip);
    smtp_close(s);
}

static void smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
    struct smtp_cmd cmd;
    if (smtp_cmd_split(line, len, &cmd) < 0) {
        s->counts[SMTP_VERB_UNKNOWN].total++;
        smtp_reply(s, 500, "5.5.2", "Error: bad syntax");
    } else if (cmd.verb == SMTP_VERB_UNKNOWN) {
        s->counts[SMTP_VERB_UNKNOWN].total++;
        smtp_reply(s, 500, "5.5.2", "Error: command not recognized");
    } else {
        const struct smtp_verb_rule *r = &smtp_rules[cmd.verb];
        s->counts[cmd.verb].total++;
        if (r->allowed & ST(s->state))
            r->handler(s, &cmd);
        else
            smtp_sequence_error(s, cmd.verb);
    }
    smtp_check_limits(s, cmd.verb);
}

unsigned smtp_line_flags(const struct smtp_session *s)
{
    return s->cfg->bare_lf == CONF_BARE_REJECT ? SMTP_LINE_CRLF_ONLY : 0;
}

void smtp_bare_lf(struct smtp_session *s)
{
    log_info("bare LF in a command line from %s[%s]", s->name, s->ip);
    smtp_reply(s, 500, "5.5.2", "Error: bare LF received");
}

void smtp_resume(struct smtp_session *s)
{
    s->wait = SW_NONE;
    smtp_flush(s);
    s->io->pause(s->io_arg, 0);
}

void smtp_session_input(struct smtp_session *s, struct buf *in)
{
    while (s->state != SS_CLOSING && s->state != SS_TLS && s->wait == SW_NONE) {
        if (s->spf_pending && s->state == SS_MAIL) {
            /* The command after MAIL waits for the sender's SPF verdict. */
            s->wait = SW_SPF;
            smtp_flush(s);
            s->io->pause(s->io_arg, 1);
            break;
        }
        /* A BDAT chunk of 0 octets completes without input. */
        if (in->len == 0 && !(s->state == SS_BDAT && s->bdat_left == 0))
            break;
        size_t used = 0;
        if (s->draining && smtp_session_idle(s) &&
            !(in->len >= 4 && !strncasecmp(in->data, "QUIT", 4))) {
            smtp_drain_close(s);
            break;
        }
        if (s->state == SS_DATA) {
            used = smtp_data_feed(s, in->data, in->len);
        } else if (s->state == SS_BDAT) {
            used = smtp_bdat_feed(s, in->data, in->len);
        } else if (s->state == SS_AUTH) {
            used = smtp_auth_input(s, in->data, in->len);
            if (used == 0 && s->state == SS_AUTH)
                break; /* a partial line: wait for more */
        } else if (s->state == SS_SKIPLINE) {
            int done = 0;
            used = smtp_line_skip(in->data, in->len, smtp_line_flags(s), &done);
            if (done)
                s->state = s->resume_state;
            else if (used == 0)
                break; /* a CR that may begin the CRLF: wait for more */
        } else {
            size_t linelen;
            /* RFC 4954 §4: an AUTH line (initial response) may be 12288 octets. */
            int auth = in->len >= 5 && !strncasecmp(in->data, "AUTH ", 5);
            size_t max = auth && s->cfg->cmd_line_max < SMTP_AUTH_LINE_MAX + 2
                             ? SMTP_AUTH_LINE_MAX + 2
                             : s->cfg->cmd_line_max;
            int rc = smtp_line_take(in->data, in->len, max, smtp_line_flags(s), &linelen, &used);
            if (rc == SMTP_LINE_AGAIN)
                break;
            if (rc == SMTP_LINE_TOOLONG) {
                /* RFC 5321 §4.5.3.1.4: 500 and the rest of the line is dropped. */
                enum smtp_verb v = auth ? SMTP_VERB_AUTH : SMTP_VERB_UNKNOWN;
                s->counts[v].total++;
                if (auth)
                    smtp_reply(s, 500, "5.5.6", "Authentication exchange line is too long");
                else
                    smtp_reply(s, 500, "5.5.2", "Error: line too long");
                s->resume_state = s->state;
                s->state = SS_SKIPLINE;
                used = 0;
                smtp_check_limits(s, v);
            } else if (rc == SMTP_LINE_BARE_LF) {
                enum smtp_verb v = auth ? SMTP_VERB_AUTH : SMTP_VERB_UNKNOWN;
                s->counts[v].total++;
                if (auth)
                    explicit_bzero(in->data, used);
                buf_consume(in, used);
                used = 0;
                smtp_bare_lf(s);
                smtp_check_limits(s, v);
            } else {
                /* Copy: handlers may consume `in` indirectly (none do today). */
                char *line = xstrndup(in->data, linelen);
                if (auth) /* an initial response holds a password */
                    explicit_bzero(in->data, linelen);
                buf_consume(in, used);
                used = 0;
                smtp_dispatch(s, line, linelen);
                if (auth)
                    explicit_bzero(line, linelen);
                free(line);
            }
        }
        if (used)
            buf_consume(in, used);
    }
    smtp_flush(s);
}

struct smtp_session *smtp_session_new(uint64_t sid, const struct config *cfg,
                                      const struct smtp_session_peer *peer,
                                      const struct smtp_session_io *io, void *io_arg,
                                      const struct smtp_session_svc *svc, void *svc_arg)
{
    struct smtp_session *s = xcalloc(1, sizeof *s);
    s->id = sid;
    s->cfg = cfg;
    s->ip = xstrdup(peer->ip);
    s->name = xstrdup(peer->name ? peer->name : "unknown");
    s->role = peer->role;
    s->tls_offer = peer->tls_offer;
    s->tls_implicit = peer->tls_implicit;
    s->local = peer->local;
    s->relay_ok = peer->local || config_relay_allowed(cfg, s->ip);
    s->io = io;
    s->io_arg = io_arg;
    s->svc = svc;
    s->svc_arg = svc_arg;
    s->state = SS_GREET;
    s->body_fd = -1;
    buf_init(&s->out);
    buf_init(&s->body);
    buf_init(&s->scratch);
    hdrfield_init(&s->hf, NULL, NULL);
    envelope_init(&s->env);
    return s;
}

void smtp_session_greet(struct smtp_session *s)
{
    reply_appendf(&s->out, 220, NULL, "%s ESMTP tern", s->cfg->hostname);
    s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_command * 1000);
    smtp_flush(s);
}

void smtp_session_start(struct smtp_session *s)
{
    if (s->tls_implicit) {
        /* RFC 8314: the handshake first; smtp_session_tls_done() greets. */
        s->state = SS_TLS;
        s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_tls * 1000);
        s->io->starttls(s->io_arg);
        return;
    }
    smtp_session_greet(s);
}

void smtp_session_refuse(struct smtp_session *s, const char *text)
{
    reply_appendf(&s->out, 421, "4.7.0", "%s %s", s->cfg->hostname, text);
    smtp_close(s);
}

int smtp_session_drain(struct smtp_session *s)
{
    s->draining = 1;
    if (s->state == SS_CLOSING)
        return 1;
    if (!smtp_session_idle(s))
        return 0;
    smtp_drain_close(s);
    smtp_flush(s);
    return 1;
}

void smtp_session_timeout(struct smtp_session *s, const char *why)
{
    if (s->state == SS_CLOSING)
        return;
    const char *sep = why ? ": " : "";
    why = why ? why : "";
    if (s->state == SS_TLS) {
        /* No reply can be sent in the middle of a handshake. */
        log_info("timeout during TLS handshake from %s[%s]%s%s", s->name, s->ip, sep, why);
        s->state = SS_CLOSING;
        s->io->close(s->io_arg);
        return;
    }
    log_info("timeout after %s from %s[%s]%s%s",
             s->state == SS_DATA || s->state == SS_BDAT ? "DATA" : "command", s->name, s->ip,
             sep, why);
    smtp_reply(s, 421, "4.4.2", "%s Error: timeout exceeded", s->cfg->hostname);
    smtp_close(s);
}

enum smtp_session_expect smtp_session_expects(const struct smtp_session *s)
{
    if (s->wait != SW_NONE)
        return SMTP_EXPECT_NOTHING;
    switch (s->state) {
    case SS_DATA:
    case SS_BDAT:
        return SMTP_EXPECT_CONTENT;
    case SS_CLOSING:
    case SS_TLS:
        return SMTP_EXPECT_NOTHING;
    default:
        return SMTP_EXPECT_COMMAND;
    }
}

uint64_t smtp_session_id(const struct smtp_session *s)
{
    return s->id;
}

const char *smtp_session_qid(const struct smtp_session *s)
{
    return s->qid;
}

int smtp_session_authenticated(const struct smtp_session *s)
{
    return s->auth_user[0] != '\0';
}

void smtp_session_body_opened(struct smtp_session *s, const char *qid, int fd)
{
    smtp_data_body_opened(s, qid, fd);
}

void smtp_session_body_failed(struct smtp_session *s, int err)
{
    s->wait = SW_NONE;
    log_warn("cannot open a queue file for %s[%s]: %s", s->name, s->ip, strerror(-err));
    if (s->state == SS_BDAT) {
        /* The chunk still has to be read: discard it. */
        s->bdat_discard = 1;
        s->bdat_failed = 1;
    }
    struct result res;
    result_spool_error(&res, err);
    smtp_reply(s, res.code, res.enh, "%s", res.text);
    s->io->pause(s->io_arg, 0);
    smtp_flush(s);
}

void smtp_session_committed(struct smtp_session *s, const char *qid, const struct result *res)
{
    if (s->wait != SW_COMMIT || strcmp(qid, s->qid))
        return;
    if (res->kind == RESULT_OK) {
        /* A message accepted: the errors before it are forgiven, so a
         * relay's long session is not cut for a few in each transaction. */
        s->errors = 0;
        s->rcpts_refused = 0;
    }
    smtp_data_committed(s, res);
}

void smtp_session_free(struct smtp_session *s)
{
    if (s == NULL)
        return;
    smtp_txn_reset(s);
    /* Postfix's disconnect line: "ehlo=1 mail=1 rcpt=0/1 ... commands=N". */
    struct buf line = BUF_INIT;
    unsigned ok = 0, total = 0;
    for (int v = 1; v < SMTP_VERB_COUNT; v++) {
        const struct smtp_verb_count *c = &s->counts[v];
        if (c->total == 0)
            continue;
        ok += c->ok;
        total += c->total;
        if (c->ok == c->total)
            buf_printf(&line, " %s=%u", smtp_verb_name((enum smtp_verb)v), c->ok);
        else
            buf_printf(&line, " %s=%u/%u", smtp_verb_name((enum smtp_verb)v), c->ok, c->total);
    }
    if (s->counts[0].total) {
        total += s->counts[0].total;
        buf_printf(&line, " unknown=0/%u", s->counts[0].total);
    }
    if (ok == total)
        buf_printf(&line, " commands=%u", total);
    else
        buf_printf(&line, " commands=%u/%u", ok, total);
    log_info("disconnect from %s[%s]%s", s->name, s->ip, line.data);
    buf_free(&line);
    envelope_clear(&s->env);
    hdrfield_free(&s->hf);
    buf_free(&s->scratch);
    buf_free(&s->out);
    buf_free(&s->body);
    free(s->ip);
    free(s->name);
    free(s);
}
