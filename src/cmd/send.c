/* send.c: `tern send`, a small submission client for testing a server:
 * one message to one server, from arguments, a file or stdin, in
 * plaintext, with STARTTLS or implicit TLS, with or without AUTH.
 *
 * Exit status (sysexits.h): 0 every recipient accepted; 64 usage;
 * 65 refused (5xx) for the address or the content; 66 an input file
 * cannot be opened; 68 the server's name does not resolve; 69 no
 * connection, refused at the greeting, connection lost, TLS handshake or
 * certificate check failed; 74 I/O; 75 a temporary refusal (4xx);
 * 76 refused as a protocol error (500-504, 5.5.x) or the server lacks
 * what was asked (STARTTLS, AUTH PLAIN), a malformed reply; 77 refused by policy
 * (530/535/538, 5.7.x: a wrong password, relaying denied). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sizes.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "cmd/cmds.h"
#include "cmd/send_priv.h"

#define SEND_DEFAULT_HOST "127.0.0.1"
#define SEND_DEFAULT_PORT "2525" /* the embedded default's mx listener */
#define SEND_DEFAULT_TIMEOUT 60
#define SEND_PASSWORD_MAX 1024

static void send_usage(FILE *f)
{
    fprintf(f,
            "usage: tern send [options] [RCPT...]\n"
            "  -s, --server HOST[:PORT]  server (default 127.0.0.1:2525; HOST alone: port 25,\n"
            "                            465 with --tls; [v6addr]:PORT for IPv6)\n"
            "  -f, --from ADDR           envelope sender and From: (\"\" for <>; default: the\n"
            "                            --auth user if it is an address, else LOGIN@localhost)\n"
            "  -t, --to ADDR             a recipient (repeatable; also as arguments)\n"
            "  --subject TEXT            the Subject:\n"
            "  --body TEXT               the body text\n"
            "  --body-file FILE          the body from FILE (- = stdin; the default when\n"
            "                            stdin is not a terminal)\n"
            "  --header 'Name: value'    an extra header (repeatable)\n"
            "  --data FILE               send FILE (- = stdin) as the whole message, as is\n"
            "  --helo NAME               EHLO name (default: this host's name)\n"
            "  --starttls                use STARTTLS, fail if the server does not offer it\n"
            "  --tls                     implicit TLS from the first byte (smtps, RFC 8314)\n"
            "  --auth USER               AUTH PLAIN (needs --starttls or --tls); the password\n"
            "  --password-file FILE      from the first line of FILE, or from $TERN_PASSWORD\n"
            "  --cafile FILE             trust these CA certificates instead of the system's\n"
            "  --insecure                do not check the server's certificate\n"
            "  --timeout SECS            per-step timeout (default 60)\n"
            "  -v, --verbose             print the dialogue (C: client, S: server) on stderr\n"
            "exit status: 0 sent; 64 usage; 65 refused (address/content); 68 unknown host;\n"
            "69 no connection, refused at the greeting, connection lost or TLS failed;\n"
            "75 temporary failure (4xx); 76 protocol (5.5.x, a malformed reply, STARTTLS\n"
            "or AUTH PLAIN not offered); 77 refused by policy (530, 535, 5.7.x)\n");
}

static int send_usage_error(const char *fmt, const char *arg)
{
    fputs("tern send: ", stderr);
    fprintf(stderr, fmt, arg ? strutil_esc(arg) : "");
    fputs(" (try 'tern send --help')\n", stderr);
    return SEND_EX_USAGE;
}

/* HOST, HOST:PORT, [V6]:PORT, [V6] or a bare V6 address. Returns 0 or
 * -EINVAL. */
static int send_parse_server(const char *arg, int tls, char *host, size_t hs, char *port,
                             size_t ps)
{
    const char *h = arg, *p = NULL;
    size_t hl;
    if (arg[0] == '[') {
        const char *end = strchr(arg, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return -EINVAL;
        h = arg + 1;
        hl = (size_t)(end - h);
        p = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strchr(arg, ':');
        if (colon && strchr(colon + 1, ':') == NULL) {
            hl = (size_t)(colon - arg);
            p = colon + 1;
        } else {
            hl = strlen(arg); /* no colon, or an IPv6 address without port */
        }
    }
    if (hl == 0 || hl >= hs || (p && (*p == '\0' || strlen(p) >= ps)))
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strutil_lcpy(port, p ? p : tls ? "465" : "25", ps);
    for (const char *q = port; *q; q++)
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') || *q == '-'))
            return -EINVAL;
    return 0;
}

/* An address as given ("a@b" or "<a@b>") made bare, in place (argv
 * strings are ours to change); refuses what would break the command line
 * it goes into (controls, spaces, brackets). Returns 0 or -EINVAL. */
static int send_addr(char *in, const char **out, int may_be_empty)
{
    size_t n = strlen(in);
    char *a = in;
    if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
        in[n - 1] = '\0';
        a = in + 1;
    }
    int ok = a[0] != '\0' || may_be_empty;
    for (const unsigned char *p = (const unsigned char *)a; *p && ok; p++)
        ok = *p > ' ' && *p != 0x7f && *p != '<' && *p != '>';
    if (ok)
        *out = a;
    return ok ? 0 : -EINVAL;
}

/* A field value: no control but TAB (a CR or LF would start a field of
 * its own: header injection through --subject). */
static int send_value_ok(const char *v)
{
    for (const char *p = v; *p; p++)
        if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

/* "Name: value": a field name of printable ASCII without ':' (RFC 5322
 * §2.2), a colon, a value without line breaks (folding is not ours). */
static int send_header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h)
        return 0;
    for (const char *p = h; p < colon; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return 0;
    return send_value_ok(colon + 1);
}

/* The password from --password-file (its first line) or $TERN_PASSWORD:
 * never from the command line, where every user of the machine can read
 * it (ps, /proc). Returns an owned copy or NULL after saying why. */
static char *send_password(const char *file)
{
    if (file == NULL) {
        const char *env = getenv("TERN_PASSWORD");
        if (env == NULL || env[0] == '\0') {
            fprintf(stderr, "tern send: --auth needs --password-file FILE or TERN_PASSWORD\n");
            return NULL;
        }
        return xstrdup(env);
    }
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "tern send: --password-file %s: %s\n", strutil_esc(file),
                strerror(errno));
        return NULL;
    }
    char *pw = xmalloc(SEND_PASSWORD_MAX + 1);
    size_t len = 0;
    ssize_t k;
    while (len < SEND_PASSWORD_MAX &&
           ((k = read(fd, pw + len, SEND_PASSWORD_MAX - len)) > 0 || (k < 0 && errno == EINTR)))
        if (k > 0)
            len += (size_t)k;
    close(fd);
    pw[len] = '\0';
    pw[strcspn(pw, "\r\n")] = '\0';
    if (pw[0] == '\0') {
        fprintf(stderr, "tern send: --password-file %s: no password on its first line\n",
                strutil_esc(file));
        explicit_bzero(pw, SEND_PASSWORD_MAX + 1);
        free(pw);
        return NULL;
    }
    return pw;
}

enum {
    OPT_SUBJECT = 256, OPT_BODY, OPT_BODY_FILE, OPT_DATA, OPT_HEADER, OPT_HELO, OPT_STARTTLS,
    OPT_TLS, OPT_AUTH, OPT_PASSWORD_FILE, OPT_INSECURE, OPT_CAFILE, OPT_TIMEOUT,
};

static const struct option send_longopts[] = {
    {"server", required_argument, NULL, 's'},
    {"from", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 't'},
    {"subject", required_argument, NULL, OPT_SUBJECT},
    {"body", required_argument, NULL, OPT_BODY},
    {"body-file", required_argument, NULL, OPT_BODY_FILE},
    {"data", required_argument, NULL, OPT_DATA},
    {"header", required_argument, NULL, OPT_HEADER},
    {"helo", required_argument, NULL, OPT_HELO},
    {"starttls", no_argument, NULL, OPT_STARTTLS},
    {"tls", no_argument, NULL, OPT_TLS},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cafile", required_argument, NULL, OPT_CAFILE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct send_args {
    struct send_opts o;
    const char *server;
    const char *password_file;
    char host[DNS_NAME_MAX];
    char port[32];
    char from_buf[300];
    int help; /* --help was printed: nothing to send */
};

static int send_add_rcpt(struct send_opts *o, char *arg)
{
    const char *a;
    if (send_addr(arg, &a, 0) < 0)
        return send_usage_error("bad recipient address '%s'", arg);
    o->rcpts = xrealloc(o->rcpts, (o->nrcpts + 1) * sizeof *o->rcpts);
    o->rcpts[o->nrcpts++] = a;
    return 0;
}

/* Returns 0, or an exit status after saying why (SEND_EX_OK with a->help
 * set: --help printed). */
static int send_parse_args(int argc, char **argv, struct send_args *a)
{
    struct send_opts *o = &a->o;
    o->timeout_s = SEND_DEFAULT_TIMEOUT;
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:f:t:vh", send_longopts, NULL)) != -1) {
        switch (c) {
        case 's': a->server = optarg; break;
        case 'f':
            if (send_addr(optarg, &o->from, 1) < 0)
                return send_usage_error("bad sender address '%s'", optarg);
            break;
        case 't':
            if ((rc = send_add_rcpt(o, optarg)) != 0)
                return rc;
            break;
        case OPT_SUBJECT:
            if (!send_value_ok(optarg))
                return send_usage_error("--subject may not hold line breaks or control "
                                        "characters", NULL);
            o->subject = optarg;
            break;
        case OPT_BODY: o->body = optarg; break;
        case OPT_BODY_FILE: o->body_file = optarg; break;
        case OPT_DATA: o->data_file = optarg; break;
        case OPT_HEADER:
            if (!send_header_ok(optarg))
                return send_usage_error("--header wants 'Name: value', not '%s'", optarg);
            o->headers = xrealloc(o->headers, (o->nheaders + 1) * sizeof *o->headers);
            o->headers[o->nheaders++] = optarg;
            break;
        case OPT_HELO:
            if (strutil_lcpy(o->helo, optarg, sizeof o->helo) >= sizeof o->helo)
                return send_usage_error("--helo name too long", NULL);
            for (const unsigned char *p = (const unsigned char *)o->helo; *p; p++)
                if (*p <= ' ' || *p >= 0x7f)
                    return send_usage_error("bad --helo name '%s'", optarg);
            break;
        case OPT_STARTTLS: o->starttls = 1; break;
        case OPT_TLS: o->tls = 1; break;
        case OPT_AUTH: o->auth_user = optarg; break;
        case OPT_PASSWORD_FILE: a->password_file = optarg; break;
        case OPT_INSECURE: o->insecure = 1; break;
        case OPT_CAFILE: o->cafile = optarg; break;
        case OPT_TIMEOUT: {
            unsigned long long v;
            if (strutil_parse_u64(optarg, &v) < 0 || v == 0 || v > 86400)
                return send_usage_error("--timeout wants 1 to 86400 seconds, not '%s'", optarg);
            o->timeout_s = (unsigned)v;
            break;
        }
        case 'v': o->verbose = 1; break;
        case 'h':
            send_usage(stdout);
            a->help = 1;
            return SEND_EX_OK;
        case ':': return send_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: return send_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++)
        if ((rc = send_add_rcpt(o, argv[i])) != 0)
            return rc;
    if (o->nrcpts == 0)
        return send_usage_error("no recipient (give -t ADDR or RCPT arguments)", NULL);
    if (o->tls && o->starttls)
        return send_usage_error("--tls and --starttls exclude each other", NULL);
    if (o->insecure && o->cafile)
        return send_usage_error("--insecure and --cafile exclude each other", NULL);
    if ((o->insecure || o->cafile) && !o->tls && !o->starttls)
        return send_usage_error("--insecure and --cafile need --starttls or --tls", NULL);
    if (o->data_file && (o->subject || o->body || o->body_file || o->nheaders))
        return send_usage_error("--data sends a whole message: no --subject, --body, "
                                "--body-file or --header with it", NULL);
    if (o->body && o->body_file)
        return send_usage_error("--body and --body-file exclude each other", NULL);
    if (a->password_file && !o->auth_user)
        return send_usage_error("--password-file without --auth", NULL);
    if (o->auth_user && !o->tls && !o->starttls)
        return send_usage_error("--auth sends a password: it needs --starttls or --tls", NULL);
    if (o->auth_user && (o->auth_user[0] == '\0' || strpbrk(o->auth_user, "\r\n")))
        return send_usage_error("bad --auth user name", NULL);
    if (send_parse_server(a->server ? a->server : SEND_DEFAULT_HOST ":" SEND_DEFAULT_PORT,
                          o->tls, a->host, sizeof a->host, a->port, sizeof a->port) < 0)
        return send_usage_error("bad --server '%s' (HOST[:PORT])", a->server);
    o->host = a->host;
    o->port = a->port;
    if (o->helo[0] == '\0' && (gethostname(o->helo, sizeof o->helo - 1) < 0 || !o->helo[0]))
        strutil_lcpy(o->helo, "localhost", sizeof o->helo);
    if (o->from == NULL) {
        /* A login that is an address is the natural sender (submission
         * servers check that the two match); else LOGIN@localhost, which
         * the embedded default (and most servers) count as local. */
        const char *u = getenv("USER");
        if (o->auth_user && strchr(o->auth_user, '@'))
            snprintf(a->from_buf, sizeof a->from_buf, "%s", o->auth_user);
        else
            snprintf(a->from_buf, sizeof a->from_buf, "%s@localhost",
                     o->auth_user ? o->auth_user : u && *u ? u : "tern-send");
        if (send_addr(a->from_buf, &o->from, 0) < 0)
            return send_usage_error("no usable default sender: give -f ADDR", NULL);
    }
    if (o->auth_user && (o->password = send_password(a->password_file)) == NULL)
        return SEND_EX_USAGE;
    return 0;
}

/* The exit status for a refusal by the server. */
static int send_exit_for_reply(int code, const char *enh)
{
    if (code < 400)
        return SEND_EX_OK;
    if (code < 500)
        return SEND_EX_TEMPFAIL;
    if (code == 530 || code == 535 || code == 538 || !strncmp(enh, "5.7.", 4))
        return SEND_EX_NOPERM;
    if ((code >= 500 && code <= 504) || !strncmp(enh, "5.5.", 4))
        return SEND_EX_PROTOCOL;
    return SEND_EX_DATAERR;
}

/* The enhanced code at the start of a reply text ("5.7.8 ..."), or "". */
static void send_enh_of(const char *text, char *enh, size_t size)
{
    size_t n = strspn(text, "0123456789.");
    if (n >= 5 && n < size && text[1] == '.') {
        memcpy(enh, text, n);
        enh[n] = '\0';
    } else {
        enh[0] = '\0';
    }
}

/* The exit status for one failed recipient. A server's reply inside the
 * transaction reaches us as smtp_client made it ("host PEER said: 550
 * ..."); the failures of the session itself (greeting, STARTTLS, AUTH,
 * a lost connection) come as 451 with a code of smtp_client's own, for
 * the relay to retry: there the server's reply that ended the session
 * counts, or, with none, what went wrong here. */
static int send_exit_for(const struct send_outcome *out, const struct result *r)
{
    int said = !strncmp(r->text, "host ", 5) && strstr(r->text, " said: ") != NULL;
    if (said || !out->closed)
        return send_exit_for_reply(r->code, r->enh);
    if (out->last_code >= 400 && out->cmds_sent == 0)
        return SEND_EX_UNAVAILABLE; /* refused at the greeting */
    if (out->last_code >= 400) {
        char enh[16];
        send_enh_of(out->last_text, enh, sizeof enh);
        return send_exit_for_reply(out->last_code, enh);
    }
    if (!strcmp(r->enh, "4.7.4") || !strcmp(r->enh, "4.7.0") || !strcmp(r->enh, "4.4.0"))
        return SEND_EX_PROTOCOL; /* no STARTTLS or AUTH PLAIN offered, a malformed reply */
    if (!strcmp(r->enh, "4.3.0"))
        return SEND_EX_IOERR; /* the message could not be read back */
    return SEND_EX_UNAVAILABLE; /* TLS handshake, lost connection, timeout */
}

/* Which status wins when recipients failed differently: a refusal that
 * will not change on a retry before one that may. */
static int send_exit_rank(int st)
{
    static const int order[] = {SEND_EX_NOPERM, SEND_EX_PROTOCOL, SEND_EX_DATAERR,
                                SEND_EX_UNAVAILABLE, SEND_EX_IOERR, SEND_EX_TEMPFAIL};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (order[i] == st)
            return (int)i;
    return 99;
}

/* Prints the outcome: the final reply when something was accepted, and
 * the failure once for a session that failed as a whole, else one line
 * per refused recipient. Returns the exit status. */
static int send_report(const struct send_opts *o, const struct send_outcome *out)
{
    size_t failed = 0, first = 0;
    int same = 1;
    for (size_t i = 0; i < out->n; i++) {
        if (out->res[i].kind == RESULT_OK)
            continue;
        if (failed++ == 0)
            first = i;
        else if (strcmp(out->res[i].text, out->res[first].text))
            same = 0;
    }
    if (failed < out->n && out->last_code)
        printf("%d %s\n", out->last_code, out->last_text);
    if (failed == 0)
        return SEND_EX_OK;
    int st = SEND_EX_OK;
    if (failed == out->n && same) {
        fprintf(stderr, "tern send: %s\n", out->why[0] ? out->why : out->res[first].text);
        st = send_exit_for(out, &out->res[first]);
    } else {
        for (size_t i = 0; i < out->n; i++) {
            if (out->res[i].kind == RESULT_OK)
                continue;
            fprintf(stderr, "tern send: <%s>: %s\n", o->rcpts[i], out->res[i].text);
            int s = send_exit_for(out, &out->res[i]);
            if (st == SEND_EX_OK || send_exit_rank(s) < send_exit_rank(st))
                st = s;
        }
    }
    return st;
}

int cmd_send(int argc, char **argv)
{
    struct send_args a;
    memset(&a, 0, sizeof a);
    int rc = send_parse_args(argc, argv, &a);
    struct send_msg m = {.fd = -1};
    struct send_outcome out = {0};
    if (rc != 0 || a.help)
        goto done;
    if ((rc = send_msg_build(&a.o, &m)) != 0)
        goto done;
    if ((rc = send_run(&a.o, &m, &out)) != 0)
        goto done;
    rc = out.res ? send_report(&a.o, &out) : SEND_EX_SOFTWARE;
done:
    fflush(stdout);
    send_outcome_free(&out);
    send_msg_free(&m);
    if (a.o.password) {
        explicit_bzero(a.o.password, strlen(a.o.password));
        free(a.o.password);
    }
    free(a.o.rcpts);
    free(a.o.headers);
    return rc;
}
