/* main.c: the `tern` command and its subcommands. */
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
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this text"},
};

static int cmd_help(int argc, char **argv)
{
    printf("usage: tern COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
        printf("  %-14s %s\n", cmd_table[i].name, cmd_table[i].summary);
    printf("\noptions:\n"
           "  -c, --config FILE   configuration file (serve, check-config, user); without it\n"
           "                      tern runs its embedded local-development default:\n"
           "                      127.0.0.1:2525, local domain localhost, any user,\n"
           "                      mail to var/mail/<user>/Maildir, spool in var/spool\n"
           "\nusers (the users file of -c FILE, else var/users):\n"
           "  tern user add NAME [--stdin] [-c FILE]     add a user, asking for a password\n"
           "  tern user passwd NAME [--stdin] [-c FILE]  set a new password\n"
           "  tern user del NAME [-c FILE]               remove a user\n"
           "  tern user list [-c FILE]                   list the users\n"
           "  (--stdin reads the password from one line of standard input)\n"
           "\nsee docs/config.md for the configuration reference\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cmd_help(0, NULL);
        return 64; /* EX_USAGE */
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help"))
        name = "help";
    if (!strcmp(name, "-V") || !strcmp(name, "--version"))
        name = "version";
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
        if (!strcmp(name, cmd_table[i].name))
            return cmd_table[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tern: unknown command '%s' (try 'tern help')\n", argv[1]);
    return 64;
}
