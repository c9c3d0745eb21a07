/* cmds: the subcommands of `tern`, one file each. Each takes its own
 * argv (argv[0] is the subcommand name) and returns the exit status. */
#ifndef TERN_CMD_CMDS_H
#define TERN_CMD_CMDS_H

int cmd_serve(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_sendmail(int argc, char **argv);
int cmd_dkim(int argc, char **argv);
int cmd_dmarc(int argc, char **argv);

/* Is arg a request for help (-h, --help)? */
int cmd_is_help(const char *arg);

/* Shared option parsing for `tern NAME [-c FILE]`: finds -c/--config
 * FILE and returns 0; returns 1 after printing the usage on stdout for
 * -h/--help, -EINVAL after printing a usage error for an unknown option. */
int cmd_parse_config_opt(int argc, char **argv, const char **path);

#endif
