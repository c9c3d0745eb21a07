/* main.c: the `tern` command and its subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmds.h"

struct cmd_entry {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static int cmd_help(int argc, char **argv);

static const struct cmd_entry cmd_table[] = {
    {"serve", cmd_serve, "run the mail server (foreground)"},
    {"check-config", cmd_check_config, "validate a configuration file"},
    {"user", cmd_user, "manage AUTH users: add, passwd, del, list"},
    {"queue", cmd_queue, "see and steer the queue: list, show, flush, hold, pause, shape ..."},
    {"dkim", cmd_dkim, "DKIM signing keys: keygen, check (tern dkim --help)"},
    {"send", cmd_send, "send a test message to a server (tern send --help)"},
    {"sendmail", cmd_sendmail, "the sendmail command line: -t -i -f -F -bs -bp -q (also as `sendmail`)"},
    {"dmarc", cmd_dmarc, "DMARC aggregate reports: report [--day YYYY-MM-DD] [--dry-run DIR]"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this text"},
};

static int cmd_help(int argc, char **argv)
{
    printf("usage: tern COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
        printf("  %-14s %s\n", cmd_table[i].name, cmd_table[i].summary);
    printf("\noptions:\n"
           "  -c, --config FILE   configuration file (serve, check-config, user, queue); without it\n"
           "                      tern runs its embedded local-development default:\n"
           "                      127.0.0.1:2525, local domain localhost, any user,\n"
           "                      mail to var/mail/<user>/Maildir, spool in var/spool\n"
           "\nusers (the users file of -c FILE, else var/users):\n"
           "  tern user add NAME [--stdin] [-c FILE]     add a user, asking for a password\n"
           "  tern user passwd NAME [--stdin] [-c FILE]  set a new password\n"
           "  tern user del NAME [-c FILE]               remove a user\n"
           "  tern user list [-c FILE]                   list the users\n"
           "  (--stdin reads the password from one line of standard input)\n"
           "\nqueue (through the running daemon's control socket; root or its user):\n"
           "  tern queue list | show ID | shape | flush [-c FILE]\n"
           "  tern queue retry|hold|release|delete ID...|ALL [-c FILE]\n"
           "  tern queue pause|resume DOMAIN [-c FILE]\n"
           "\ndkim (the keys of dkim_sign lines):\n"
           "  tern dkim keygen DOMAIN SELECTOR [--rsa BITS | --ed25519] [-o FILE]\n"
           "  tern dkim check DOMAIN SELECTOR [-c FILE]   is the DNS record the key's?\n"
           "\nsendmail (also run as sendmail, mailq, newaliases; works while tern is down):\n"
           "  tern sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [RCPT...] < message\n"
           "  tern sendmail -bs | -bp | -q   (SMTP on stdin/stdout, mailq, flush)\n"
           "  (config: -C FILE, else $TERN_CONFIG, else /etc/tern/tern.conf if present)\n"
           "\ndmarc (RFC 7489 aggregate reports of a UTC day, default yesterday; daily from\n"
           "a timer):\n"
           "  tern dmarc report [--day YYYY-MM-DD] [--dry-run DIR] [-c FILE]\n"
           "\nsee docs/config.md for the configuration reference\n");
    return 0;
}

static const struct cmd_entry *cmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
        if (!strcmp(name, cmd_table[i].name))
            return &cmd_table[i];
    return NULL;
}

/* Called by another name (make install links sendmail, mailq and newaliases
 * to tern, as every MTA does): runs `tern sendmail ARGS`, `tern sendmail -bp
 * ARGS` or `tern sendmail -bi ARGS`. Returns the exit status, or -ENOENT
 * when the name is tern's own. */
static int run_as_link(int argc, char **argv)
{
    const char *base = argv[0] ? strrchr(argv[0], '/') : NULL;
    base = base ? base + 1 : argv[0];
    const char *mode = NULL;
    if (!base || !strcmp(base, "tern"))
        return -ENOENT;
    if (!strcmp(base, "mailq"))
        mode = "-bp";
    else if (!strcmp(base, "newaliases"))
        mode = "-bi";
    else if (strcmp(base, "sendmail"))
        return -ENOENT;
    const struct cmd_entry *c = cmd_find("sendmail");
    if (!c) {
        fprintf(stderr, "%s: this tern has no sendmail command\n", base);
        return 69; /* EX_UNAVAILABLE */
    }
    /* The new argv: "sendmail", the mode, then the args (theirs, borrowed). */
    char **av = calloc((size_t)argc + 2, sizeof *av);
    if (!av) {
        fprintf(stderr, "%s: out of memory\n", base);
        return 71; /* EX_OSERR */
    }
    int n = 0;
    av[n++] = (char *)"sendmail";
    if (mode)
        av[n++] = (char *)mode;
    for (int i = 1; i < argc; i++)
        av[n++] = argv[i];
    int rc = c->run(n, av);
    free(av);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = run_as_link(argc, argv);
    if (rc >= 0)
        return rc;
    if (argc < 2) {
        cmd_help(0, NULL);
        return 64; /* EX_USAGE */
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help"))
        name = "help";
    if (!strcmp(name, "-V") || !strcmp(name, "--version"))
        name = "version";
    const struct cmd_entry *c = cmd_find(name);
    if (c)
        return c->run(argc - 1, argv + 1);
    fprintf(stderr, "tern: unknown command '%s' (try 'tern help')\n", argv[1]);
    return 64;
}
