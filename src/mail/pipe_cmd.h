/* pipe_cmd: the command of an alias's "|command" target (the aliases file
 * only, never anything from the network). The template is split into an
 * argument vector on spaces and tabs, and each ${name} in an argument is
 * replaced by its value as plain data: nothing goes through a shell, so
 * an envelope address holding `$(...)`, ';' or quotes reaches the command
 * as those bytes, in one argument. Pure: no I/O; fuzzed with the aliases
 * file (tests/fuzz/fuzz_aliases.c). */
#ifndef TERN_MAIL_PIPE_CMD_H
#define TERN_MAIL_PIPE_CMD_H

#include <stddef.h>

/* Bounds of a template: its octets and its words (the program and its
 * arguments). */
#define PIPE_CMD_MAX 1024
#define PIPE_CMD_ARGS_MAX 32

/* The values a template may name, in this order: ${sender} (the envelope
 * sender, "" for <>), ${recipient} (the address the alias was reached
 * at), ${user} (the alias's local part), ${extension} (without its
 * delimiter, "" for none), ${domain}. */
enum pipe_var {
    PIPE_VAR_SENDER = 0,
    PIPE_VAR_RECIPIENT = 1,
    PIPE_VAR_USER = 2,
    PIPE_VAR_EXTENSION = 3,
    PIPE_VAR_DOMAIN = 4,
    PIPE_VAR_N = 5
};

/* The name of a variable ("sender"), and the environment variable that
 * carries the same value to the command ("SENDER"). */
const char *pipe_cmd_var_name(enum pipe_var v);
const char *pipe_cmd_env_name(enum pipe_var v);

/* Checks a template (the text after '|'): printable ASCII and tabs only,
 * at most PIPE_CMD_MAX octets and PIPE_CMD_ARGS_MAX words, the first an
 * absolute path without a variable, every "${" starting a known
 * ${name}. Returns 0, or -EINVAL with *why saying what is wrong. */
int pipe_cmd_check(const char *tmpl, const char **why);

/* The argument vector of a template that pipe_cmd_check accepts, with
 * vals[PIPE_VAR_N] (NULL reads as "") filled in: *argv is an owned,
 * NULL-terminated array of owned strings (pipe_cmd_free). An argument
 * that expands to "" stays, empty. Returns 0 or -EINVAL. */
int pipe_cmd_expand(const char *tmpl, const char *const *vals, char ***argv);
void pipe_cmd_free(char **argv);

#endif
