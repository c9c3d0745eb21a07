/* smtp_session_auth.c: STARTTLS (RFC 3207) and AUTH (RFC 4954) of an
 * inbound session, and what they change: the session starting over after
 * the handshake, the submission roles' "AUTH before MAIL". */
#include <string.h>
#include <strings.h>

#include "sasl/sasl.h"
#include "base/log.h"
#include "base/strutil.h"
#include "mail/reply.h"
#include "smtp/smtp_session_priv.h"


int smtp_auth_offered(const struct smtp_session *s)
{
    if (s->role == CONF_ROLE_MX || s->local)
        return 0; /* the mx role relays for nobody; a local user is known */
    return s->tls_on || (s->cfg->auth_plaintext_loopback && config_ip_is_loopback(s->ip));
}

int smtp_starttls_offered(const struct smtp_session *s)
{
    return s->tls_offer && !s->tls_on;
}

void smtp_do_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (!smtp_starttls_offered(s) && !s->tls_on) {
        smtp_reply(s, 502, "5.5.1", "Error: command not implemented");
        return;
    }
    if (cmd->arglen) {
        smtp_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
        return;
    }
    if (s->tls_on) {
        smtp_reply(s, 503, "5.5.1", "Error: TLS already active");
        return;
    }
    if (s->state == SS_GREET) {
        smtp_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return;
    }
    if (s->state != SS_READY) {
        smtp_reply(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    s->counts[SMTP_VERB_STARTTLS].ok++;
    smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
    smtp_flush(s);
    /* Input stops here: what the client pipelined after this line is
     * dropped by io->starttls, never read as commands (CVE-2011-0411). */
    s->state = SS_TLS;
    s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_tls * 1000);
    s->io->starttls(s->io_arg);
}

void smtp_session_tls_done(struct smtp_session *s, const char *version, const char *cipher,
                           int bits)
{
    /* RFC 3207 §4.2: the session starts over; nothing from before the
     * handshake (EHLO, a transaction, AUTH) carries into it. */
    smtp_txn_reset(s);
    s->tls_on = 1;
    strutil_lcpy(s->tls_version, version ? version : "TLS", sizeof s->tls_version);
    strutil_lcpy(s->tls_cipher, cipher ? cipher : "unknown", sizeof s->tls_cipher);
    s->tls_bits = bits;
    s->helo[0] = '\0';
    s->esmtp = 0;
    s->auth_user[0] = '\0';
    s->state = SS_GREET;
    log_info("Anonymous TLS connection established from %s[%s]: %s with cipher %s (%d bits)",
             s->name, s->ip, s->tls_version, s->tls_cipher, bits);
    if (s->tls_implicit) {
        smtp_session_greet(s); /* RFC 8314 §3.3: the greeting comes over TLS */
        return;
    }
    s->io->set_timeout(s->io_arg, (uint64_t)s->cfg->timeout_command * 1000);
    smtp_flush(s);
}

static void smtp_auth_reset(struct smtp_session *s)
{
    sasl_wipe(s->auth_name, sizeof s->auth_name);
    s->auth_mech = SMTP_AUTH_NONE;
    s->auth_step = 0;
    if (s->state == SS_AUTH)
        s->state = SS_READY;
}

/* A SASL exchange ended in a syntax error: 501 and back to READY. */
static void smtp_auth_syntax(struct smtp_session *s, int rc)
{
    smtp_reply(s, 501, "5.5.2", "Error: %s", sasl_status_str(rc));
    smtp_auth_reset(s);
}

static const char *smtp_auth_mech_name(const struct smtp_session *s)
{
    return s->auth_mech == SMTP_AUTH_PLAIN ? "PLAIN" : "LOGIN";
}

/* Hands credentials to the verifier and waits for smtp_session_auth_done(). */
static void smtp_auth_check(struct smtp_session *s, const char *user, char *password,
                            size_t pwsize)
{
    strutil_lcpy(s->auth_name, user, sizeof s->auth_name);
    s->wait = SW_AUTH;
    smtp_flush(s);
    s->io->pause(s->io_arg, 1);
    s->svc->auth_check(s->svc_arg, s->id, smtp_auth_mech_name(s), user, password);
    sasl_wipe(password, pwsize);
}

/* One client response of the exchange (an initial response, or a line
 * after 334), base64 still encoded. */
static void smtp_auth_step(struct smtp_session *s, const char *b64, size_t n)
{
    if (n == 1 && b64[0] == '*') {
        smtp_reply(s, 501, "5.0.0", "Authentication cancelled");
        smtp_auth_reset(s);
        return;
    }
    if (s->auth_mech == SMTP_AUTH_PLAIN) {
        struct sasl_creds cr;
        int rc = sasl_plain_decode(b64, n, &cr);
        if (rc == SASL_EAUTHZID) {
            /* Acting for another user is refused like bad credentials,
             * and counts as a failure for the throttle. */
            s->auth_forced_fail = 1;
            smtp_auth_check(s, "", cr.password, sizeof cr.password);
            return;
        }
        if (rc != SASL_OK) {
            smtp_auth_syntax(s, rc);
            return;
        }
        smtp_auth_check(s, cr.authcid, cr.password, sizeof cr.password);
        sasl_wipe(&cr, sizeof cr);
        return;
    }
    /* LOGIN: the user name, then the password. */
    char field[SASL_FIELD_MAX + 1];
    int rc = sasl_login_decode(b64, n, field, sizeof field);
    if (rc != SASL_OK) {
        smtp_auth_syntax(s, rc);
        return;
    }
    if (s->auth_step == 0) {
        strutil_lcpy(s->auth_name, field, sizeof s->auth_name);
        s->auth_step = 1;
        s->state = SS_AUTH;
        reply_append(&s->out, 334, NULL, "UGFzc3dvcmQ6"); /* "Password:" */
        return;
    }
    char user[sizeof s->auth_name];
    strutil_lcpy(user, s->auth_name, sizeof user);
    smtp_auth_check(s, user, field, sizeof field);
}

void smtp_do_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (s->role == CONF_ROLE_MX || s->local) {
        smtp_reply(s, 502, "5.5.1", "Error: authentication not enabled");
        return;
    }
    if (!s->esmtp) {
        smtp_reply(s, 503, "5.5.1", "Error: send EHLO first");
        return;
    }
    if (s->auth_user[0]) {
        smtp_reply(s, 503, "5.5.1", "Error: already authenticated");
        return;
    }
    if (s->state != SS_READY) {
        smtp_reply(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    if (!smtp_auth_offered(s)) {
        smtp_reply(s, 538, "5.7.11", "Encryption required for requested authentication mechanism");
        return;
    }
    const char *sp = memchr(cmd->arg, ' ', cmd->arglen);
    size_t mlen = sp ? (size_t)(sp - cmd->arg) : cmd->arglen;
    const char *ir = sp ? sp + 1 : NULL;
    size_t irlen = sp ? cmd->arglen - mlen - 1 : 0;
    if (mlen == 0 || (ir && (irlen == 0 || memchr(ir, ' ', irlen)))) {
        smtp_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
        return;
    }
    if (mlen == 5 && !strncasecmp(cmd->arg, "PLAIN", 5)) {
        s->auth_mech = SMTP_AUTH_PLAIN;
    } else if (mlen == 5 && !strncasecmp(cmd->arg, "LOGIN", 5)) {
        s->auth_mech = SMTP_AUTH_LOGIN;
    } else {
        smtp_reply(s, 504, "5.5.4", "Error: unsupported authentication mechanism");
        return;
    }
    s->auth_step = 0;
    s->auth_forced_fail = 0;
    if (ir) {
        smtp_auth_step(s, ir, irlen);
        return;
    }
    s->state = SS_AUTH;
    /* PLAIN: an empty challenge; LOGIN: "Username:" (RFC 4954 §4). */
    reply_append(&s->out, 334, NULL, s->auth_mech == SMTP_AUTH_PLAIN ? "" : "VXNlcm5hbWU6");
}

size_t smtp_auth_input(struct smtp_session *s, char *in, size_t len)
{
    size_t linelen, used;
    int rc = smtp_line_take(in, len, SMTP_AUTH_LINE_MAX + 2, smtp_line_flags(s), &linelen, &used);
    if (rc == SMTP_LINE_AGAIN)
        return 0;
    if (rc == SMTP_LINE_BARE_LF) {
        smtp_bare_lf(s);
        smtp_auth_reset(s);
        explicit_bzero(in, used); /* may hold a password */
        return used;
    }
    if (rc == SMTP_LINE_TOOLONG) {
        smtp_reply(s, 500, "5.5.6", "Authentication exchange line is too long");
        smtp_auth_reset(s);
        s->resume_state = SS_READY;
        s->state = SS_SKIPLINE;
        return 0;
    }
    s->state = SS_READY; /* smtp_auth_step re-enters SS_AUTH for LOGIN's second step */
    smtp_auth_step(s, in, linelen);
    /* The line is base64 of a password: do not leave it in the buffer. */
    explicit_bzero(in, linelen);
    return used;
}

void smtp_session_auth_done(struct smtp_session *s, enum smtp_auth_result r)
{
    if (s->wait != SW_AUTH)
        return;
    s->wait = SW_NONE;
    const char *mech = smtp_auth_mech_name(s);
    if (s->auth_forced_fail && r == SMTP_AUTH_OK)
        r = SMTP_AUTH_FAIL;
    switch (r) {
    case SMTP_AUTH_OK:
        strutil_lcpy(s->auth_user, s->auth_name, sizeof s->auth_user);
        strutil_lower(s->auth_user);
        strutil_lcpy(s->auth_method, mech, sizeof s->auth_method);
        s->counts[SMTP_VERB_AUTH].ok++;
        {
            struct buf u = BUF_INIT;
            strutil_escape_word(&u, s->auth_user, strlen(s->auth_user));
            log_info("%s[%s]: sasl_method=%s, sasl_username=%s", s->name, s->ip, mech,
                     u.data ? u.data : "");
            buf_free(&u);
        }
        smtp_reply(s, 235, "2.7.0", "Authentication successful");
        break;
    case SMTP_AUTH_TEMPFAIL:
        log_warn("%s[%s]: SASL %s authentication failed: temporary failure", s->name, s->ip,
                 mech);
        smtp_reply(s, 454, "4.7.0", "Temporary authentication failure");
        break;
    case SMTP_AUTH_BLOCKED:
        log_warn("%s[%s]: SASL %s authentication refused: too many failures", s->name, s->ip,
                 mech);
        smtp_reply(s, 421, "4.7.0", "%s Error: too many failed authentications",
                   s->cfg->hostname);
        smtp_auth_reset(s);
        smtp_close(s);
        return;
    case SMTP_AUTH_FAIL:
    default:
        log_warn("%s[%s]: SASL %s authentication failed", s->name, s->ip, mech);
        smtp_reply(s, 535, "5.7.8", "Authentication credentials invalid");
        break;
    }
    smtp_auth_reset(s);
    smtp_flush(s);
    s->io->pause(s->io_arg, 0);
}
