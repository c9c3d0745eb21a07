/* queue.c: `tern queue COMMAND [ARGS] [-c FILE]`: the operator's view of
 * and hand on the running daemon's queue, through its control socket
 * (proc/control.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/sizes.h"
#include "base/unixsock.h"
#include "cmd/cmds.h"
#include "conf/config.h"
#include "proc/control_parse.h"

static void queue_usage(FILE *f)
{
    fprintf(f,
            "usage: tern queue COMMAND [-c FILE]\n"
            "  list              the queue, like mailq ('*' being delivered, '!' on hold)\n"
            "  show ID           envelope and per-recipient state of one message\n"
            "  shape             pending recipients by destination and age (minutes)\n"
            "  flush             try every waiting message now\n"
            "  retry ID...       try these messages now\n"
            "  hold ID...        keep these messages from delivery until released\n"
            "  release ID...     let held messages go again\n"
            "  delete ID...      remove messages without delivery or notice\n"
            "                    (ID may be ALL for retry, hold, release, delete)\n"
            "  pause DOMAIN      stop delivery to DOMAIN (kept across restarts)\n"
            "  resume DOMAIN     start delivery to DOMAIN again\n");
}

/* Sends one request line and copies the answer: the body to stdout (or
 * stderr on an error). Returns the exit status. */
static int queue_request(const char *sock, const char *line)
{
    int fd = unixsock_connect(sock);
    if (fd < 0) {
        if (fd == -ENOENT || fd == -ECONNREFUSED) {
            fprintf(stderr, "tern queue: the mail system is not running (no daemon on %s)\n",
                    sock);
            return EX_UNAVAILABLE;
        }
        fprintf(stderr, "tern queue: cannot connect to %s: %s\n", sock, strerror(-fd));
        return fd == -EACCES || fd == -EPERM ? EX_NOPERM : EX_UNAVAILABLE;
    }
    int rc = fsio_write_all(fd, line, strlen(line));
    if (rc == 0)
        rc = fsio_write_all(fd, "\n", 1);
    struct buf in = BUF_INIT;
    char chunk[65536];
    while (rc == 0) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        buf_append(&in, chunk, (size_t)n);
    }
    close(fd);
    if (rc < 0 || in.len == 0) {
        fprintf(stderr, "tern queue: no answer from the daemon%s%s\n", rc < 0 ? ": " : "",
                rc < 0 ? strerror(-rc) : "");
        buf_free(&in);
        return EX_PROTOCOL;
    }
    size_t hl = 0;
    while (hl < in.len && in.data[hl] != '\n')
        hl++;
    const char *body = hl < in.len ? in.data + hl + 1 : in.data + in.len;
    size_t blen = (size_t)(in.data + in.len - body);
    int status;
    if (hl == 2 && memcmp(in.data, "OK", 2) == 0) {
        fwrite(body, 1, blen, stdout);
        status = 0;
    } else if (hl > 4 && memcmp(in.data, "ERR ", 4) == 0) {
        status = atoi(in.data + 4);
        if (status <= 0 || status > 255)
            status = EX_SOFTWARE;
        if (blen > 0) {
            fwrite(body, 1, blen, stderr);
        } else {
            const char *why = memchr(in.data + 4, ' ', hl - 4);
            fprintf(stderr, "tern queue: %.*s\n", why ? (int)(in.data + hl - why - 1) : 0,
                    why ? why + 1 : "");
        }
    } else {
        fprintf(stderr, "tern queue: unexpected answer from the daemon\n");
        status = EX_PROTOCOL;
    }
    buf_free(&in);
    fflush(stdout);
    return status;
}

int cmd_queue(int argc, char **argv)
{
    const char *path = NULL;
    struct buf line = BUF_INIT;
    int words = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            path = argv[i] + 9;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            queue_usage(stdout);
            buf_free(&line);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "tern queue: unknown option '%s'\n", argv[i]);
            buf_free(&line);
            return EX_USAGE;
        } else {
            buf_printf(&line, "%s%s", words++ ? " " : "", argv[i]);
        }
    }
    if (words == 0) {
        queue_usage(stderr);
        buf_free(&line);
        return EX_USAGE;
    }
    /* The same checks the daemon makes, for a useful message here. */
    struct control_req req;
    const char *why = NULL;
    char *copy = strdup(line.data);
    int ok = copy && line.len <= CONTROL_LINE_MAX && control_parse(copy, &req, &why) == 0;
    free(copy);
    if (!ok) {
        fprintf(stderr, "tern queue: %s: '%s'\n", why ? why : "request too long", line.data);
        queue_usage(stderr);
        buf_free(&line);
        return EX_USAGE;
    }
    struct config cfg;
    config_default(&cfg);
    if (path) {
        struct buf err = BUF_INIT;
        if (config_load_settings(&cfg, path, &err) < 0) {
            fprintf(stderr, "%s", err.data ? err.data : "configuration error\n");
            buf_free(&err);
            config_free(&cfg);
            buf_free(&line);
            return EX_CONFIG;
        }
        buf_free(&err);
    }
    char sock[PATH_MAX];
    int status;
    if (config_control_socket(&cfg, sock, sizeof sock) < 0) {
        fprintf(stderr, "tern queue: control socket path too long\n");
        status = EX_CONFIG;
    } else {
        status = queue_request(sock, line.data);
    }
    config_free(&cfg);
    buf_free(&line);
    return status;
}
