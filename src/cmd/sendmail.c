/* sendmail.c: `tern sendmail`, also run as `sendmail`, `mailq` and
 * `newaliases` through a symlink (see main.c): the command line that
 * cron, PHP's mail(), git send-email, mutt and scripts expect of an MTA.
 * The message is dropped into the pickup directory, so this works while
 * the daemon is down; the daemon collects it (queue/pickup).
 *
 * Exit codes are sysexits.h's: EX_USAGE for the command line, EX_DATAERR
 * for a bad address or message, EX_NOINPUT when stdin cannot be read,
 * EX_CANTCREAT / EX_TEMPFAIL when the pickup file cannot be written,
 * EX_CONFIG for the configuration. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "cmd/cmds.h"
#include "cmd/sendmail_priv.h"

/* The configuration a packaged tern installs; used when neither -C nor
 * $TERN_CONFIG names one and it exists (cron runs plain `sendmail`). */
#define SM_SYSTEM_CONFIG "/etc/tern/tern.conf"

enum sm_mode { SM_MAIL, SM_SMTP, SM_LIST, SM_FLUSH, SM_ALIASES };

static void sm_usage(void)
{
    fprintf(stderr,
            "usage: sendmail [-t] [-i] [-f sender] [-F name] [-C config] [--] [recipient ...]\n"
            "       sendmail -bs | -bp | -bi | -q   (SMTP on stdin, mailq, newaliases, flush)\n"
            "other sendmail options (-oem, -oee, -odi, -B8BITMIME, -N, -R, -V ...) are\n"
            "accepted and ignored\n");
}

/* -b MODE. Returns 0, or -EINVAL for a mode tern does not have. */
static int sm_parse_mode(const char *m, enum sm_mode *mode)
{
    if (!strcmp(m, "m"))
        *mode = SM_MAIL;
    else if (!strcmp(m, "s"))
        *mode = SM_SMTP;
    else if (!strcmp(m, "p"))
        *mode = SM_LIST;
    else if (!strcmp(m, "i"))
        *mode = SM_ALIASES;
    else
        return -EINVAL;
    return 0;
}

/* Parses the command line into *o and *mode; EX_USAGE after a message. */
static int sm_parse_args(int argc, char **argv, struct sm_opts *o, enum sm_mode *mode)
{
    /* "+": options end at the first recipient, as sendmail's do. Options
     * taking an argument that tern ignores are listed so their argument
     * is not taken for a recipient. */
    static const char optstring[] = "+A:B:b:C:c:F:f:Gh:iL:mN:no:p:q::R:r:tUV:vX:";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt(argc, argv, optstring)) != -1) {
        switch (c) {
        case 't':
            o->extract = 1;
            break;
        case 'i':
            o->ignore_dots = 1;
            break;
        case 'f':
        case 'r':
            o->sender = optarg;
            break;
        case 'F':
            o->name = optarg;
            break;
        case 'C':
        case 'c':
            o->config = optarg;
            break;
        case 'b':
            if (sm_parse_mode(optarg, mode) < 0) {
                fprintf(stderr, "sendmail: -b%s is not supported\n", optarg);
                return EX_USAGE;
            }
            break;
        case 'q':
            /* -q, -q30m (an interval: tern's scheduler keeps its own), -qR...:
             * all mean "attempt the queue now". */
            *mode = SM_FLUSH;
            break;
        case 'o':
            /* -oi is -i; -oem, -oee, -odb, -odi, -oQ..., -o7 ...: accepted
             * and ignored, as other MTAs do. */
            if (!strcmp(optarg, "i"))
                o->ignore_dots = 1;
            break;
        case 'A': case 'B': case 'G': case 'h': case 'L': case 'm': case 'N': case 'n':
        case 'p': case 'R': case 'U': case 'V': case 'v': case 'X':
            break; /* body type, DSN, hop count, verbosity ...: ignored */
        case '?':
        default:
            if (optopt && strchr(optstring, optopt))
                fprintf(stderr, "sendmail: option -%c needs an argument\n", optopt);
            else
                fprintf(stderr, "sendmail: unknown option -%c\n", optopt ? optopt : '?');
            sm_usage();
            return EX_USAGE;
        }
    }
    o->rcpts = argv + optind;
    o->nrcpts = argc - optind;
    return 0;
}

/* The configuration: -C, $TERN_CONFIG, /etc/tern/tern.conf if present,
 * else the embedded default. Users and aliases are not read: the user
 * running this need not be allowed to (the daemon resolves recipients). */
static int sm_load_config(struct sm_opts *o, struct config *cfg)
{
    if (o->config == NULL) {
        const char *env = getenv("TERN_CONFIG");
        if (env && env[0])
            o->config = env;
        else if (access(SM_SYSTEM_CONFIG, F_OK) == 0)
            o->config = SM_SYSTEM_CONFIG;
    }
    config_default(cfg);
    if (o->config) {
        struct buf err = BUF_INIT;
        if (config_load_settings(cfg, o->config, &err) < 0) {
            fprintf(stderr, "%s", err.data ? err.data : "sendmail: configuration error\n");
            buf_free(&err);
            config_free(cfg);
            return EX_CONFIG;
        }
        buf_free(&err);
    }
    /* -bs: recipients are the daemon's to judge (it bounces unknown ones),
     * since this process has not read the users and aliases. */
    cfg->accept_any_user = 1;
    return 0;
}

/* -bp and -q: `tern queue list` / `tern queue flush` with our config. */
static int sm_queue(const struct sm_opts *o, const char *what)
{
    char *qargv[5] = {"queue", (char *)what, NULL, NULL, NULL};
    int qargc = 2;
    if (o->config) {
        qargv[qargc++] = "-c";
        qargv[qargc++] = (char *)o->config;
    }
    return cmd_queue(qargc, qargv);
}

int cmd_sendmail(int argc, char **argv)
{
    struct sm_opts o = {0};
    enum sm_mode mode = SM_MAIL;
    int rc = sm_parse_args(argc, argv, &o, &mode);
    if (rc)
        return rc;
    if (mode == SM_ALIASES)
        return EX_OK; /* tern reads its aliases at start and on reload */
    if (mode != SM_MAIL && (o.nrcpts || o.extract)) {
        fprintf(stderr, "sendmail: recipients and -t go with mail mode only\n");
        sm_usage();
        return EX_USAGE;
    }
    struct config cfg;
    rc = sm_load_config(&o, &cfg);
    if (rc)
        return rc;
    /* The -bs session's log lines go where the daemon's would (Postfix's
     * sendmail logs to syslog too); what the user must see is printed. */
    log_set_ident("tern/sendmail");
    log_open(LOG_TO_SYSLOG, cfg.hostname);
    switch (mode) {
    case SM_SMTP:
        rc = sm_smtp(&cfg, &o);
        break;
    case SM_LIST:
        rc = sm_queue(&o, "list");
        break;
    case SM_FLUSH:
        rc = sm_queue(&o, "flush");
        break;
    default:
        rc = sm_mail(&cfg, &o);
        break;
    }
    config_free(&cfg);
    return rc;
}
