/* libFuzzer target: command-line framing (with bare_lf = normalize and
 * reject), verb split and the MAIL, RCPT, BDAT and EHLO/HELO argument
 * parsers (smtp/smtp_parse), as the session drives them on whatever a
 * client sends; and the host check of the trace header. Each line is
 * copied to a buffer of its exact size, so a read past its end is caught
 * by ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mailaddr.h"
#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The strings a parse fills must be terminated inside their arrays. */
static void check_addr(const struct mailaddr *a)
{
    if (!memchr(a->local, 0, sizeof a->local) || !memchr(a->domain, 0, sizeof a->domain) ||
        !memchr(a->text, 0, sizeof a->text))
        abort();
    /* The written-out form must read back as the same mailbox. */
    if (a->flags & (MAILADDR_F_NULL | MAILADDR_F_POSTMASTER))
        return;
    struct mailaddr b;
    if (mailaddr_parse_mailbox(a->text, strlen(a->text), MAILADDR_ALLOW_UTF8, &b) != MAILADDR_OK)
        abort();
    if (strcmp(a->local, b.local) || strcmp(a->domain, b.domain) || strcmp(a->text, b.text))
        abort();
}

static void check_params(const struct smtp_params *ps)
{
    if (ps->n > SMTP_PARAMS_MAX)
        abort();
    for (size_t i = 0; i < ps->n; i++) {
        const struct smtp_param *p = &ps->p[i];
        if (!memchr(p->key, 0, sizeof p->key) || !memchr(p->value, 0, sizeof p->value))
            abort();
        if (p->key[0] == '\0' || (p->has_value && p->value[0] == '\0'))
            abort();
        for (const char *k = p->key; *k; k++)
            if (*k >= 'a' && *k <= 'z')
                abort();
        if (smtp_params_get(ps, p->key) != p) /* no duplicates */
            abort();
    }
}

static void parse_args(const char *arg, size_t len, enum smtp_verb verb)
{
    struct mailaddr path;
    struct smtp_params ps;
    uint64_t bsize;
    int last;
    size_t namelen;
    switch (verb) {
    case SMTP_VERB_MAIL:
    case SMTP_VERB_RCPT: {
        int is_rcpt = verb == SMTP_VERB_RCPT;
        unsigned fl[2] = {is_rcpt ? MAILADDR_ALLOW_POSTMASTER : MAILADDR_ALLOW_NULL,
                          MAILADDR_ALLOW_UTF8 | MAILADDR_ALLOW_NULL | MAILADDR_ALLOW_POSTMASTER};
        for (int i = 0; i < 2; i++) {
            int rc = smtp_parse_mail_rcpt(arg, len, is_rcpt, fl[i], &path, &ps);
            if (rc > 0 || rc < SMTP_PATH_EPREFIX)
                abort();
            if (rc == SMTP_PATH_OK) {
                check_addr(&path);
                check_params(&ps);
                if ((path.flags & MAILADDR_F_UTF8) && !(fl[i] & MAILADDR_ALLOW_UTF8) &&
                    !smtp_params_get(&ps, "SMTPUTF8"))
                    abort();
            }
        }
        break;
    }
    case SMTP_VERB_BDAT:
        if (smtp_parse_bdat(arg, len, &bsize, &last) == 0 && last != 0 && last != 1)
            abort();
        break;
    case SMTP_VERB_EHLO:
    case SMTP_VERB_HELO:
        if (smtp_parse_helo(arg, len, &namelen) == 0 &&
            (namelen == 0 || namelen > len || memchr(arg, ' ', namelen)))
            abort();
        break;
    default:
        break;
    }
}

/* Frames in[0..size) into lines as the session does with these flags
 * (bare_lf = normalize: 0; reject: SMTP_LINE_CRLF_ONLY) and parses each. */
static void frame_lines(const char *in, size_t size, unsigned flags)
{
    const int crlf_only = (flags & SMTP_LINE_CRLF_ONLY) != 0;
    size_t pos = 0;
    int skipping = 0;
    while (pos < size) {
        size_t left = size - pos, used = 0, linelen = 0;
        if (skipping) {
            int done = 0;
            used = smtp_line_skip(in + pos, left, flags, &done);
            if (used > left || (done && in[pos + used - 1] != '\n') ||
                (done && crlf_only && (used < 2 || in[pos + used - 2] != '\r')))
                abort();
            /* Not done: all of it, or all but a CR that may begin the CRLF. */
            if (!done && used != left &&
                !(crlf_only && used == left - 1 && in[size - 1] == '\r'))
                abort();
            if (used == 0 && !done)
                break;
            skipping = !done;
            pos += used;
            continue;
        }
        int rc = smtp_line_take(in + pos, left, 512, flags, &linelen, &used);
        if (rc == SMTP_LINE_AGAIN)
            break;
        if (rc == SMTP_LINE_TOOLONG) {
            skipping = 1;
            continue;
        }
        if ((rc != SMTP_LINE_OK && !(crlf_only && rc == SMTP_LINE_BARE_LF)) || used > left ||
            linelen >= used || linelen + 2 > 512 || in[pos + used - 1] != '\n')
            abort();
        if (crlf_only && (linelen + 2 != used || in[pos + linelen] != '\r'))
            abort();
        /* A line holds an LF only when it is reported as BARE_LF. */
        if ((memchr(in + pos, '\n', linelen) != NULL) != (rc == SMTP_LINE_BARE_LF))
            abort();
        if (rc == SMTP_LINE_BARE_LF) {
            pos += used;
            continue;
        }
        char *line = malloc(linelen ? linelen : 1);
        memcpy(line, in + pos, linelen);
        struct smtp_cmd cmd;
        if (smtp_cmd_split(line, linelen, &cmd) == 0) {
            if (cmd.arglen && (cmd.arg < line || cmd.arg + cmd.arglen > line + linelen))
                abort();
            if ((unsigned)cmd.verb >= SMTP_VERB_COUNT || !smtp_verb_name(cmd.verb))
                abort();
            char *arg = malloc(cmd.arglen ? cmd.arglen : 1);
            memcpy(arg, cmd.arg, cmd.arglen);
            parse_args(arg, cmd.arglen, cmd.verb);
            free(arg);
        }
        free(line);
        pos += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    frame_lines(in, size, 0);
    frame_lines(in, size, SMTP_LINE_CRLF_ONLY);
    /* The argument parsers on the raw input too (control octets and all). */
    parse_args(in, size, SMTP_VERB_MAIL);
    parse_args(in, size, SMTP_VERB_RCPT);
    parse_args(in, size, SMTP_VERB_BDAT);
    parse_args(in, size, SMTP_VERB_HELO);
    /* What passes for a host is written into a trace header as it is: it
     * must hold nothing that could end or open a comment or a clause. */
    if (mailaddr_is_host(in, size))
        for (size_t i = 0; i < size; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]",
                        in[i]) || in[i] == '\0')
                abort();
    return 0;
}
