/* sendmail_msg.c: `tern sendmail`'s message path: stdin read as the
 * classic sendmail does (a lone "." ends it unless -i), recipients from
 * the command line and with -t from To:/Cc:/Bcc: (Bcc: then removed, as
 * Postfix does: command-line recipients are added to the header's), and
 * the durable drop into the pickup directory:
 *
 *   t.<128-bit random hex>, O_EXCL, mode 0604, written and fsync'd,
 *   renamed to m.<same hex>, then syncfs() for the rename
 *
 * (the directory is mode 1733: a user cannot open it to fsync it). The
 * daemon takes only m.* files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/fsio.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "cmd/sendmail_priv.h"
#include "mail/addrlist.h"
#include "mail/mailaddr.h"
#include "queue/pickup.h"

const char *sm_origin(const struct config *cfg)
{
    return cfg->nlocal_domains ? cfg->local_domains[0] : cfg->hostname;
}

/* Checks one address (qualified with the origin when it has no '@').
 * Returns 0, -ENAMETOOLONG or -EINVAL. */
static int sm_check_addr(const struct config *cfg, const char *a, size_t n, struct mailaddr *out)
{
    char q[ADDRLIST_ADDR_MAX + MAILADDR_DOMAIN_MAX + 2];
    if (n > ADDRLIST_ADDR_MAX)
        return -ENAMETOOLONG;
    memcpy(q, a, n);
    q[n] = '\0';
    if (memchr(a, '@', n) == NULL)
        snprintf(q + n, sizeof q - n, "@%s", sm_origin(cfg));
    if (mailaddr_parse_mailbox(q, strlen(q), MAILADDR_ALLOW_UTF8, out) != MAILADDR_OK)
        return -EINVAL;
    return out->flags & (MAILADDR_F_NULL | MAILADDR_F_POSTMASTER) ? -EINVAL : 0;
}

int sm_envelope_sender(const struct config *cfg, const struct sm_opts *o, struct pickup_env *pe)
{
    if (o->sender) {
        const char *s = o->sender;
        size_t n = strlen(s);
        /* "-f <addr>" and "-f '<>'" are both seen in the wild. */
        if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
            s++, n -= 2;
        pe->has_from = 1;
        if (n == 0) {
            pe->from[0] = '\0';
        } else {
            struct mailaddr a;
            if (sm_check_addr(cfg, s, n, &a) < 0) {
                fprintf(stderr, "sendmail: bad sender address: %s\n", strutil_esc(o->sender));
                return EX_DATAERR;
            }
            strutil_lcpy(pe->from, a.text, sizeof pe->from);
        }
    }
    if (o->name)
        sm_full_name(o->name, pe);
    return 0;
}

void sm_full_name(const char *name, struct pickup_env *pe)
{
    /* Control characters would end the header line: dropped. */
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p >= 0x20 && *p != 0x7f && k < PICKUP_NAME_MAX)
            pe->name[k++] = (char)*p;
    pe->name[k] = '\0';
}

struct sm_rcpt_ctx {
    const struct config *cfg;
    struct pickup_env *pe;
};

static int sm_rcpt_one(void *arg, const char *addr, size_t n)
{
    struct sm_rcpt_ctx *c = arg;
    struct mailaddr a;
    if (sm_check_addr(c->cfg, addr, n, &a) < 0) {
        fprintf(stderr, "sendmail: bad recipient address: %s\n", strutil_esc(addr));
        return EX_DATAERR;
    }
    for (size_t i = 0; i < c->pe->nrcpts; i++)
        if (!strutil_casecmp(c->pe->rcpts[i], a.text))
            return 0;
    pickup_env_add_rcpt(c->pe, a.text);
    return 0;
}

int sm_add_rcpts(const struct config *cfg, struct pickup_env *pe, const char *list, size_t n)
{
    struct sm_rcpt_ctx c = {cfg, pe};
    int rc = addrlist_parse(list, n, sm_rcpt_one, &c);
    if (rc < 0) {
        fprintf(stderr, "sendmail: bad address list: %.*s\n", (int)(n > 200 ? 200 : n), list);
        return EX_DATAERR;
    }
    return rc;
}

/* Reads stdin into msg. Without -i a line of a lone "." ends it. */
static int sm_read_input(const struct config *cfg, const struct sm_opts *o, struct buf *msg)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (!o->ignore_dots && line[0] == '.' &&
            (n == 1 || (n == 2 && line[1] == '\n') ||
             (n == 3 && line[1] == '\r' && line[2] == '\n')))
            break;
        if (cfg->message_size_max && msg->len + (size_t)n > cfg->message_size_max) {
            fprintf(stderr, "sendmail: message is larger than the limit of %llu octets\n",
                    (unsigned long long)cfg->message_size_max);
            rc = EX_DATAERR;
            break;
        }
        buf_append(msg, line, (size_t)n);
    }
    if (rc == 0 && ferror(stdin)) {
        fprintf(stderr, "sendmail: cannot read the message: %s\n", strerror(errno));
        rc = EX_NOINPUT;
    }
    free(line);
    return rc;
}

/* One header field of the message: [start, end) including its line
 * end(s) and folded lines; name and value point into it. */
struct sm_field {
    size_t start, end;
    size_t name_len;
    size_t value; /* offset after the colon */
};

/* The next header field at `pos`, or 0 at the header's end (an empty
 * line, the end of input, or a line that is not a field). A field name is
 * printable ASCII but ':', white space may come before the colon (RFC
 * 5322 §4.5.2): the same rule as the daemon's (mail/hdrscan), so that a
 * Bcc: -t removes is one the daemon would count as header. */
static int sm_next_field(const char *m, size_t len, size_t pos, struct sm_field *f)
{
    size_t i = pos;
    while (i < len && (unsigned char)m[i] > 32 && (unsigned char)m[i] < 127 && m[i] != ':')
        i++;
    size_t name_end = i;
    while (i < len && (m[i] == ' ' || m[i] == '\t'))
        i++;
    if (name_end == pos || i >= len || m[i] != ':')
        return 0;
    f->start = pos;
    f->name_len = name_end - pos;
    f->value = i + 1;
    /* The field ends at a line end not followed by white space. */
    for (;;) {
        const char *nl = memchr(m + i, '\n', len - i);
        if (nl == NULL) {
            i = len;
            break;
        }
        i = (size_t)(nl - m) + 1;
        if (i >= len || (m[i] != ' ' && m[i] != '\t'))
            break;
    }
    f->end = i;
    return 1;
}

/* -t: adds the recipients of To:, Cc: and Bcc: and copies the message
 * to out without its Bcc: fields. */
static int sm_extract(const struct config *cfg, const struct buf *msg, struct pickup_env *pe,
                      struct buf *out)
{
    const char *m = msg->data ? msg->data : "";
    size_t pos = 0;
    struct sm_field f;
    while (sm_next_field(m, msg->len, pos, &f)) {
        const char *name = m + f.start;
        int bcc = f.name_len == 3 && !strutil_ncasecmp(name, "bcc", 3);
        int to = (f.name_len == 2 && (!strutil_ncasecmp(name, "to", 2) ||
                                      !strutil_ncasecmp(name, "cc", 2)));
        if (bcc || to) {
            int rc = sm_add_rcpts(cfg, pe, m + f.value, f.end - f.value);
            if (rc)
                return rc;
        }
        if (!bcc)
            buf_append(out, m + f.start, f.end - f.start);
        pos = f.end;
    }
    buf_append(out, m + pos, msg->len - pos);
    return 0;
}

int sm_mail(const struct config *cfg, const struct sm_opts *o)
{
    struct pickup_env pe;
    struct buf msg = BUF_INIT, out = BUF_INIT;
    pickup_env_init(&pe);
    int rc = sm_envelope_sender(cfg, o, &pe);
    for (int i = 0; rc == 0 && i < o->nrcpts; i++)
        rc = sm_add_rcpts(cfg, &pe, o->rcpts[i], strlen(o->rcpts[i]));
    if (rc == 0)
        rc = sm_read_input(cfg, o, &msg);
    if (rc == 0 && o->extract)
        rc = sm_extract(cfg, &msg, &pe, &out);
    if (rc == 0 && pe.nrcpts == 0) {
        fprintf(stderr, "sendmail: no recipients given%s\n",
                o->extract ? " (none in To:, Cc: or Bcc:)" : " (use -t or name them)");
        rc = EX_USAGE;
    }
    const struct buf *body = o->extract ? &out : &msg;
    if (rc == 0)
        rc = sm_pickup_submit(cfg, &pe, body->data ? body->data : "", body->len);
    pickup_env_free(&pe);
    buf_free(&msg);
    buf_free(&out);
    return rc;
}

/* The pickup directory; created (mode 1733) when missing and we may. */
static int sm_pickup_dir(const struct config *cfg, char *dir, size_t size)
{
    if (pickup_dir_path(cfg, dir, size) < 0) {
        fprintf(stderr, "sendmail: spool_dir path too long\n");
        return EX_CONFIG;
    }
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    if (errno == ENOENT && mkdir(dir, PICKUP_DIR_MODE) == 0) {
        (void)chmod(dir, PICKUP_DIR_MODE); /* the umask took some bits */
        return 0;
    }
    if (errno == EEXIST)
        return 0;
    fprintf(stderr, "sendmail: no pickup directory %s (is tern installed and started once?)\n",
            dir);
    return EX_CANTCREAT;
}

/* One pickup file: the envelope lines of pe, then msg. */
static int sm_pickup_file(const char *dir, const struct pickup_env *pe, const char *msg,
                          size_t len)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        fprintf(stderr, "sendmail: getrandom: %s\n", strerror(errno));
        return EX_OSERR;
    }
    char hex[2 * sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    char tmp[PATH_MAX + 64], fin[PATH_MAX + 64]; /* dir, "/t.", the random part */
    snprintf(tmp, sizeof tmp, "%s/t.%s", dir, hex);
    snprintf(fin, sizeof fin, "%s/m.%s", dir, hex);
    /* 0604: the daemon's user reads it; owner is the submitter's proof. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0604);
    if (fd < 0) {
        fprintf(stderr, "sendmail: cannot create %s: %s\n", tmp, strerror(errno));
        return EX_CANTCREAT;
    }
    struct buf hdr = BUF_INIT;
    pickup_write(pe, &hdr);
    int rc = fchmod(fd, 0604) < 0 ? -errno : 0;
    if (rc == 0)
        rc = fsio_write_all(fd, hdr.data, hdr.len);
    if (rc == 0)
        rc = fsio_write_all(fd, msg, len);
    if (rc == 0)
        rc = fsio_sync(fd);
    if (rc == 0)
        rc = fsio_rename_syncfs(tmp, fin, fd);
    buf_free(&hdr);
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "sendmail: cannot write %s: %s\n", tmp, strerror(-rc));
        unlink(tmp);
        return EX_TEMPFAIL;
    }
    return 0;
}

int sm_pickup_submit(const struct config *cfg, const struct pickup_env *pe, const char *msg,
                     size_t len)
{
    /* The daemon refuses what SMTP would refuse; say so now, not never. */
    struct buf text = BUF_INIT;
    struct pickup_text info;
    pickup_to_crlf(msg, len, &text, &info);
    int rc = 0;
    if (cfg->message_size_max && text.len > cfg->message_size_max) {
        fprintf(stderr, "sendmail: message is larger than the limit of %llu octets\n",
                (unsigned long long)cfg->message_size_max);
        rc = EX_DATAERR;
    } else if (cfg->text_line_max && info.line_max > cfg->text_line_max) {
        fprintf(stderr, "sendmail: a line is longer than %zu octets (RFC 5322 §2.1.1)\n",
                cfg->text_line_max);
        rc = EX_DATAERR;
    } else if (info.has_nul) {
        fprintf(stderr, "sendmail: the message contains a NUL octet\n");
        rc = EX_DATAERR;
    }
    char dir[PATH_MAX];
    if (rc == 0)
        rc = sm_pickup_dir(cfg, dir, sizeof dir);
    if (rc) {
        buf_free(&text);
        return rc;
    }
    /* The daemon takes at most rcpt_max recipients per file, as an SMTP
     * client sends more than a server's limit in several transactions. */
    size_t per = cfg->rcpt_max ? cfg->rcpt_max : pe->nrcpts;
    for (size_t i = 0; i < pe->nrcpts; i += per) {
        struct pickup_env part = *pe;
        part.rcpts = pe->rcpts + i;
        part.nrcpts = pe->nrcpts - i < per ? pe->nrcpts - i : per;
        rc = sm_pickup_file(dir, &part, text.data ? text.data : "", text.len);
        if (rc)
            break;
    }
    buf_free(&text);
    return rc;
}
