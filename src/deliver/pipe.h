/* pipe: delivery to an alias's command ("|/usr/bin/procmail -a
 * ${extension}", the aliases file only). The command runs as the mail
 * user (the delivery process's user) with execve semantics: an argument
 * vector (mail/pipe_cmd), no shell; a fixed environment (SENDER,
 * RECIPIENT, USER, EXTENSION, DOMAIN, HOME, PATH=/usr/bin:/bin, nothing
 * inherited); the working directory "/"; every signal at its default;
 * its own process group, killed whole at the time limit. The message
 * (Return-Path: and Delivered-To: above it, LF line ends) is its
 * standard input; what it writes to stdout and stderr is kept (the first
 * PIPE_OUTPUT_KEPT octets) for the result. Blocking: delivery threads. */
#ifndef TERN_DELIVER_PIPE_H
#define TERN_DELIVER_PIPE_H

#include <stdint.h>
#include <sys/types.h>

#include "mail/pipe_cmd.h"
#include "mail/result.h"

#define PIPE_OUTPUT_KEPT 160

struct pipe_req {
    const char *cmd;                /* the template, without the '|' */
    const char *vals[PIPE_VAR_N];   /* its variables (mail/pipe_cmd.h) */
    const char *home;               /* HOME for the command */
    const char *return_path;        /* for the header lines above the message */
    const char *delivered_to;
    int body_fd;                    /* the stored message, CRLF line ends */
    off_t body_off;
    uint64_t body_len;
    unsigned time_limit;            /* seconds, then the group is killed */
};

/* Runs the command and fills *res from how it ended (pipe_status_result;
 * past the time limit: TEMPFAIL). Returns 0, or the -errno of a step
 * that kept it from running (then *res is a TEMPFAIL). */
int pipe_deliver(const struct pipe_req *req, struct result *res);

/* The result of a command that ended with wait status `status` and wrote
 * out[0..n) (sysexits.h): 0 delivered; EX_TEMPFAIL deferred (4.3.0); the
 * other codes from 64 to 78 bounced with their RFC 3463 code (EX_NOUSER
 * 5.1.1, EX_NOHOST 5.1.2, EX_CANTCREAT 5.2.0, EX_DATAERR 5.6.0,
 * EX_PROTOCOL 5.5.0, EX_NOPERM 5.7.0, EX_CONFIG 5.3.5, the rest 5.3.0);
 * any other exit status bounced as 5.3.0; a signal deferred (4.3.0). The
 * text names the program and carries the output, control characters
 * made harmless. */
void pipe_status_result(const char *prog, int status, const char *out, size_t n,
                        struct result *res);

#endif
