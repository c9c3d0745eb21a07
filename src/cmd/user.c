/* user.c: `tern user add|passwd|del|list`, the users file's passwords
 * (the AUTH logins of the submission and smtps listeners).
 *
 *   tern user add NAME [--stdin] [-c FILE]
 *   tern user passwd NAME [--stdin] [-c FILE]
 *   tern user del NAME [-c FILE]
 *   tern user list [-c FILE]
 *
 * The file is edited as text: comments, blank lines and every other line
 * stay as they are; it is replaced atomically (base/fsio), mode 0640.
 * Exit codes (sysexits.h): 0 ok, 64 usage, 65 bad name, user exists (add),
 * no such user (passwd, del), bad password input, 74 I/O, 78 config. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "sasl/passwd.h"
#include "sasl/sasl.h"
#include "base/buf.h"
#include "base/fsio.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "cmd/cmds.h"
#include "conf/config.h"
/* For conf_name_safe(): names are checked by the very rule the users
 * file's loader applies. */
#include "conf/config_priv.h"

#define USER_EX_USAGE 64
#define USER_EX_DATAERR 65
#define USER_EX_IOERR 74
#define USER_EX_CONFIG 78

#define USER_FILE_MODE 0640
#define USER_FILE_MAX (64u << 20)

enum user_op { USER_ADD, USER_PASSWD, USER_DEL, USER_LIST };

static const struct {
    const char *name;
    enum user_op op;
} user_ops[] = {
    {"add", USER_ADD}, {"passwd", USER_PASSWD}, {"del", USER_DEL}, {"list", USER_LIST}};

struct user_args {
    enum user_op op;
    const char *name;   /* NULL for list */
    const char *config; /* -c FILE, or NULL */
    int from_stdin;
};

static void user_usage(FILE *f)
{
    fprintf(f, "usage: tern user add NAME [--stdin] [-c FILE]\n"
                    "       tern user passwd NAME [--stdin] [-c FILE]\n"
                    "       tern user del NAME [-c FILE]\n"
                    "       tern user list [-c FILE]\n");
}

/* Returns 0, or -EINVAL (after saying why, but for a missing command);
 * the caller prints the usage. */
static int user_parse_args(int argc, char **argv, struct user_args *a)
{
    memset(a, 0, sizeof *a);
    if (argc < 2)
        return -EINVAL;
    size_t i;
    for (i = 0; i < sizeof user_ops / sizeof user_ops[0]; i++)
        if (!strcmp(argv[1], user_ops[i].name))
            break;
    if (i == sizeof user_ops / sizeof user_ops[0]) {
        fprintf(stderr, "tern user: unknown command '%s'\n", argv[1]);
        return -EINVAL;
    }
    a->op = user_ops[i].op;
    for (int j = 2; j < argc; j++) {
        const char *s = argv[j];
        if ((!strcmp(s, "-c") || !strcmp(s, "--config")) && j + 1 < argc) {
            a->config = argv[++j];
        } else if (!strncmp(s, "--config=", 9)) {
            a->config = s + 9;
        } else if (!strcmp(s, "--stdin") && (a->op == USER_ADD || a->op == USER_PASSWD)) {
            a->from_stdin = 1;
        } else if (s[0] == '-' && s[1] != '\0') {
            fprintf(stderr, "tern user %s: unknown option '%s'\n", argv[1], s);
            return -EINVAL;
        } else if (a->name == NULL && a->op != USER_LIST) {
            a->name = s;
        } else {
            fprintf(stderr, "tern user %s: unexpected argument '%s'\n", argv[1], s);
            return -EINVAL;
        }
    }
    if (a->op != USER_LIST && a->name == NULL) {
        fprintf(stderr, "tern user %s: missing NAME\n", argv[1]);
        return -EINVAL;
    }
    return 0;
}

/* Checks NAME as the users file's loader would ("local" or
 * "local@<a local domain>") and writes its lowercased form to out.
 * Returns 0, or -ENAMETOOLONG / -EINVAL after saying why. */
static int user_name_check(const struct config *cfg, const char *name, char *out,
                           size_t outsize)
{
    /* A login must fit in a SASL field (RFC 4616 §2) to be usable. */
    if (strutil_lcpy(out, name, outsize) >= outsize || strlen(out) > SASL_FIELD_MAX) {
        fprintf(stderr, "tern user: name too long: %s\n", strutil_esc(name));
        return -ENAMETOOLONG;
    }
    strutil_lower(out);
    char *at = strchr(out, '@');
    if (at)
        *at = '\0';
    int ok = conf_name_safe(out);
    const char *domain = at ? at + 1 : NULL;
    if (at)
        *at = '@';
    if (!ok) {
        fprintf(stderr,
                "tern user: bad name '%s': a local part may only hold a-z 0-9 . _ + - "
                "(not first '.'), at most 64 octets\n",
                strutil_esc(name));
        return -EINVAL;
    }
    if (domain && !config_is_local_domain(cfg, domain)) {
        fprintf(stderr, "tern user: bad name '%s': the domain is not in local_domains\n",
                strutil_esc(name));
        return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------ *
 * The file as lines                                                  *
 * ------------------------------------------------------------------ */

/* One line of the users file, as offsets into it. */
struct user_line {
    size_t start, end; /* the text, without its line end */
    size_t next;       /* where the next line starts */
    size_t name0, name1; /* the name; name0 == name1: no user on this line */
    size_t tail;         /* where the hash part ends: white space and a comment follow */
    int has_hash;
};

static int user_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Splits the line at data[pos] the way conf/lines.c and table_load.c read
 * it: a '#' that starts the line or follows white space begins a comment,
 * then "name [: hash]". */
static void user_line_parse(const char *data, size_t len, size_t pos, struct user_line *l)
{
    memset(l, 0, sizeof *l);
    const char *nl = memchr(data + pos, '\n', len - pos);
    l->start = pos;
    l->end = nl ? (size_t)(nl - data) : len;
    l->next = nl ? l->end + 1 : len;
    size_t stop = l->end;
    for (size_t i = l->start; i < l->end; i++) {
        if (data[i] == '#' && (i == l->start || user_space(data[i - 1]))) {
            stop = i;
            break;
        }
    }
    while (stop > l->start && user_space(data[stop - 1]))
        stop--;
    size_t b = l->start;
    while (b < stop && user_space(data[b]))
        b++;
    l->tail = stop;
    l->name0 = l->name1 = b;
    const char *colon = memchr(data + b, ':', stop - b);
    size_t e = colon ? (size_t)(colon - data) : stop;
    l->has_hash = colon != NULL && (size_t)(colon - data) + 1 < stop;
    while (e > b && user_space(data[e - 1]))
        e--;
    l->name1 = e;
}

static int user_line_is(const char *data, const struct user_line *l, const char *name)
{
    size_t n = l->name1 - l->name0;
    return n > 0 && n == strlen(name) && strutil_ncasecmp(data + l->name0, name, n) == 0;
}

/* Reads the users file; a missing one is empty. Returns 0 or -errno. */
static int user_file_read(const char *path, char **data, size_t *len)
{
    int rc = fsio_read_file(path, USER_FILE_MAX, data, len);
    if (rc == -ENOENT) {
        *data = xstrdup("");
        *len = 0;
        rc = 0;
    }
    return rc;
}

/* Applies op for name (lowercased) to the file's text, into out: add
 * appends "name: hash", passwd puts hash in each line of name, del drops
 * them. Returns 0, or an exit code after saying what is wrong. */
static int user_edit(const char *data, size_t len, enum user_op op, const char *name,
                     const char *hash, struct buf *out)
{
    int found = 0;
    buf_reset(out);
    for (size_t pos = 0; pos < len;) {
        struct user_line l;
        user_line_parse(data, len, pos, &l);
        pos = l.next;
        if (!user_line_is(data, &l, name)) {
            buf_append(out, data + l.start, l.next - l.start);
            continue;
        }
        found = 1;
        if (op == USER_PASSWD) {
            /* Keep the name as written, and what follows the hash. */
            buf_append(out, data + l.start, l.name1 - l.start);
            buf_printf(out, ": %s", hash);
            buf_append(out, data + l.tail, l.next - l.tail);
        } else if (op == USER_ADD) {
            buf_append(out, data + l.start, l.next - l.start);
        }
    }
    if (op == USER_ADD && found) {
        fprintf(stderr, "tern user: user '%s' exists\n", name);
        return USER_EX_DATAERR;
    }
    if (op != USER_ADD && !found) {
        fprintf(stderr, "tern user: no such user '%s'\n", name);
        return USER_EX_DATAERR;
    }
    if (op == USER_ADD) {
        if (len && data[len - 1] != '\n')
            buf_putc(out, '\n');
        buf_printf(out, "%s: %s\n", name, hash);
    }
    return 0;
}

static int user_list(const char *data, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        struct user_line l;
        user_line_parse(data, len, pos, &l);
        pos = l.next;
        if (l.name1 > l.name0)
            printf("%.*s%s\n", (int)(l.name1 - l.name0), data + l.name0,
                   l.has_hash ? "" : "  (no password)");
    }
    return 0;
}

/* ------------------------------------------------------------------ *
 * Passwords                                                          *
 * ------------------------------------------------------------------ */

/* The terminal's settings while echo is off, for a signal handler that
 * must put them back before the process dies. */
static int user_tty_fd = -1;
static struct termios user_tty_saved;

static void user_tty_restore(void)
{
    if (user_tty_fd >= 0)
        tcsetattr(user_tty_fd, TCSAFLUSH, &user_tty_saved);
}

static void user_tty_signal(int sig)
{
    user_tty_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line from fd into out (the line end removed, CRLF too).
 * Returns its length, -ENODATA on EOF before any octet, -EINVAL if it
 * does not fit or holds a NUL (the rest of the line is read and dropped),
 * or read's -errno. */
static ssize_t user_read_line(int fd, char *out, size_t outsize)
{
    size_t n = 0;
    int bad = 0, any = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0) {
            if (!any)
                return -ENODATA;
            break;
        }
        any = 1;
        if (c == '\n')
            break;
        if (c == '\0' || n + 1 >= outsize)
            bad = 1;
        else
            out[n++] = c;
    }
    if (n && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    return bad ? -EINVAL : (ssize_t)n;
}

/* Asks for a password on the terminal, echo off. Returns the length or
 * what user_read_line() returns (or the prompt's -errno). */
static ssize_t user_tty_ask(int fd, const char *prompt, char *out, size_t outsize)
{
    int rc = fsio_write_all(fd, prompt, strlen(prompt));
    if (rc < 0)
        return rc;
    struct termios quiet = user_tty_saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
        return -errno;
    ssize_t n = user_read_line(fd, out, outsize);
    user_tty_restore();
    return n;
}

/* Reads the new password into pw (SASL_FIELD_MAX + 1 octets): one line
 * of stdin, or twice from the terminal. Returns 0 or an exit code. */
static int user_get_password(int from_stdin, char *pw, size_t pwsize)
{
    ssize_t n;
    int mismatch = 0;
    if (from_stdin) {
        n = user_read_line(0, pw, pwsize);
    } else {
        int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || tcgetattr(fd, &user_tty_saved) < 0) {
            fprintf(stderr, "tern user: no terminal to ask for the password (use --stdin)\n");
            if (fd >= 0)
                close(fd);
            return USER_EX_IOERR;
        }
        user_tty_fd = fd;
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], user_tty_signal);
        char again[SASL_FIELD_MAX + 1];
        n = user_tty_ask(fd, "Password: ", pw, pwsize);
        if (n > 0) {
            ssize_t m = user_tty_ask(fd, "Retype password: ", again, sizeof again);
            if (m < 0)
                n = m;
            else if (m != n || memcmp(pw, again, (size_t)n) != 0)
                mismatch = 1;
        }
        sasl_wipe(again, sizeof again);
        user_tty_fd = -1;
        close(fd);
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
    }
    if (mismatch) {
        fprintf(stderr, "tern user: the passwords do not match\n");
        return USER_EX_DATAERR;
    }
    if (n == -ENODATA || n == 0) {
        fprintf(stderr, "tern user: empty password\n");
        return USER_EX_DATAERR;
    }
    if (n == -EINVAL) {
        fprintf(stderr, "tern user: the password must be at most %d octets, without NUL\n",
                SASL_FIELD_MAX);
        return USER_EX_DATAERR;
    }
    if (n < 0) {
        fprintf(stderr, "tern user: cannot read the password: %s\n", strerror((int)-n));
        return USER_EX_IOERR;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

/* A users file root creates is the daemon's group's to read (root:tern
 * 0640): the queue process, running as that user, checks passwords. An
 * existing file keeps its owner and group (fsio_replace_file). */
static int user_file_group(const struct config *cfg, const char *path)
{
    struct passwd *pw = geteuid() == 0 ? getpwnam(cfg->run_user) : NULL;
    if (pw == NULL)
        return 0;
    return chown(path, 0, pw->pw_gid) < 0 ? -errno : 0;
}

/* The users file of -c FILE's config, or of the embedded default (made
 * relative to the working directory, its directory created on demand
 * when something is written). Returns 0 or an exit code. */
static int user_config(const struct user_args *a, struct config *cfg)
{
    config_default(cfg);
    if (a->config) {
        struct buf err = BUF_INIT;
        int rc = config_load(cfg, a->config, &err);
        /* A new installation: the users file the config names does not
         * exist yet. `add` creates it (empty, 0640), then loads again. */
        if (rc < 0 && a->op == USER_ADD && cfg->users_file &&
            access(cfg->users_file, F_OK) != 0 && errno == ENOENT &&
            fsio_replace_file(cfg->users_file, "", 0, USER_FILE_MODE) == 0 &&
            user_file_group(cfg, cfg->users_file) == 0) {
            config_free(cfg);
            config_default(cfg);
            buf_reset(&err);
            rc = config_load(cfg, a->config, &err);
        }
        if (rc < 0)
            fprintf(stderr, "%s", err.data ? err.data : "configuration error\n");
        buf_free(&err);
        if (rc < 0)
            return USER_EX_CONFIG;
    }
    if (cfg->users_file == NULL) {
        fprintf(stderr, "tern user: %s sets no users_file\n",
                a->config ? a->config : "the embedded default");
        return USER_EX_CONFIG;
    }
    return 0;
}

/* Creates the directory of path (for var/users of the default). */
static int user_mkdir_for(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return 0;
    char *dir = xstrndup(path, (size_t)(slash - path));
    int rc = fsio_mkdirs(dir, 0755); /* the users file protects itself (0640) */
    free(dir);
    return rc;
}

static int user_run(const struct user_args *a, const struct config *cfg)
{
    const char *path = cfg->users_file;
    char name[SASL_FIELD_MAX + 2];
    if (a->name && user_name_check(cfg, a->name, name, sizeof name) < 0)
        return USER_EX_DATAERR;
    char *data = NULL;
    size_t len = 0;
    struct buf out = BUF_INIT;
    char pw[SASL_FIELD_MAX + 1] = "";
    char *hash = NULL;
    int rc = user_file_read(path, &data, &len);
    if (rc < 0) {
        fprintf(stderr, "tern user: cannot read %s: %s\n", path, strerror(-rc));
        rc = USER_EX_IOERR;
        goto out;
    }
    if (a->op == USER_LIST) {
        rc = user_list(data, len);
        goto out;
    }
    /* Say "exists" or "no such user" before asking for a password. */
    rc = user_edit(data, len, a->op, name, "x", &out);
    if (rc != 0 || a->op == USER_DEL)
        goto write;
    rc = user_get_password(a->from_stdin, pw, sizeof pw);
    if (rc != 0)
        goto out;
    hash = passwd_hash_new(pw);
    if (hash == NULL) {
        fprintf(stderr, "tern user: cannot hash the password: %s\n", strerror(errno));
        rc = USER_EX_IOERR;
        goto out;
    }
    /* Typing took a while: apply the change to the file as it is now. */
    free(data);
    data = NULL;
    rc = user_file_read(path, &data, &len);
    if (rc < 0) {
        fprintf(stderr, "tern user: cannot read %s: %s\n", path, strerror(-rc));
        rc = USER_EX_IOERR;
        goto out;
    }
    rc = user_edit(data, len, a->op, name, hash, &out);
write:
    if (rc != 0)
        goto out;
    rc = user_mkdir_for(path);
    struct stat before;
    int existed = rc == 0 && stat(path, &before) == 0;
    if (rc == 0)
        rc = fsio_replace_file(path, out.data ? out.data : "", out.len, USER_FILE_MODE);
    if (rc == 0 && !existed)
        rc = user_file_group(cfg, path);
    if (rc < 0) {
        fprintf(stderr, "tern user: cannot write %s: %s\n", path, strerror(-rc));
        rc = USER_EX_IOERR;
        goto out;
    }
    if (a->op == USER_ADD)
        printf("tern user: added %s to %s\n", name, path);
    else if (a->op == USER_DEL)
        printf("tern user: removed %s from %s\n", name, path);
    else
        printf("tern user: new password for %s in %s\n", name, path);
out:
    sasl_wipe(pw, sizeof pw);
    free(hash);
    free(data);
    buf_free(&out);
    return rc;
}

int cmd_user(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (cmd_is_help(argv[i])) {
            user_usage(stdout);
            return 0;
        }
    }
    struct user_args a;
    if (user_parse_args(argc, argv, &a) < 0) {
        user_usage(stderr);
        return USER_EX_USAGE;
    }
    struct config cfg;
    int rc = user_config(&a, &cfg);
    if (rc == 0)
        rc = user_run(&a, &cfg);
    config_free(&cfg);
    return rc;
}
