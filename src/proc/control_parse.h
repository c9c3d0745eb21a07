/* control_parse: the request line of the control socket ("hold ID ID",
 * "pause example.org"). A pure function: the peer is an operator, but a
 * parser of bytes from another process is fuzzed all the same. */
#ifndef TERN_PROC_CONTROL_PARSE_H
#define TERN_PROC_CONTROL_PARSE_H

#include <stddef.h>

#define CONTROL_LINE_MAX 8192
#define CONTROL_ARGS_MAX 256

enum control_cmd {
    CTL_LIST,
    CTL_SHOW,
    CTL_SHAPE,
    CTL_FLUSH,
    CTL_RETRY,
    CTL_HOLD,
    CTL_RELEASE,
    CTL_DELETE,
    CTL_PAUSE,
    CTL_RESUME,
};

struct control_req {
    enum control_cmd cmd;
    size_t nargs;
    char *args[CONTROL_ARGS_MAX]; /* point into the caller's line */
};

/* Parses line (NUL-terminated, no line end; modified in place: words are
 * cut with NULs). Returns 0, or -EINVAL with a reason in *why (static text). */
int control_parse(char *line, struct control_req *req, const char **why);

/* The command word of cmd ("list"), and the usage of them all. */
const char *control_cmd_name(enum control_cmd cmd);
extern const char control_usage[];

#endif
