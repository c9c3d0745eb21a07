/* run_dialogues: runs the scripted SMTP dialogues (*.dlg) in a folder
 * against smtp_session with fake io and a fake queue.
 *
 * Script lines:
 *   # comment
 *   !set KEY VALUE   change a setting (rcpt_max, bare_lf, message_size_max,
 *                    text_line_max, bad_commands_max, rcpt_refused_max,
 *                    cmd_line_max)
 *   !fail-open [ENOSPC]  the next body open fails (EIO, or ENOSPC)
 *   !body-full       the next body file is /dev/full: writes fail with ENOSPC
 *   !fail-commit     the next commit fails (451 4.3.0, an I/O error)
 *   !commit-result CODE ENH TEXT  the next commit's answer (kind from the code)
 *   !spool-room N    the spool takes messages up to N bytes (0: full;
 *                    "unknown", the start: no check)
 *   !role ROLE       (before the first client line) mx, submission or smtps
 *   !tls             (before the first client line) a certificate exists:
 *                    STARTTLS is offered; the fake handshake succeeds at once
 *                    and drops input received before it, as conn_tls does
 *   !relay-ok        (before the first client line) the client may relay
 *   !mailauth        (before the first client line) the fake checks mail
 *                    (svc->mail_*): answers SPF and the verdict at once
 *   !spf-refusal CODE ENH TEXT     the SPF answers refuse RCPT so
 *   !verdict-refusal CODE ENH TEXT the verdicts refuse the message so
 *   !verdict-prefix TEXT  the verdicts add these header lines (C escapes)
 *   (AUTH: the fake verifier accepts alice / secret and nothing else)
 *   > TEXT           client line, CRLF appended; consecutive lines are sent
 *                    in one write (pipelining)
 *   >> TEXT          client bytes with C escapes (\r \n \t \\ \xHH), no CRLF added
 *   < TEXT           the next reply line, exactly; a trailing '*' matches any rest
 *   =body TEXT       the last committed content after tern's Received
 *                    header, with C escapes
 *   =body~ TEXT      the last committed content contains TEXT (C escapes)
 *   =body! TEXT      the last committed content does not contain TEXT
 *   =rcpts N         the last committed envelope had N recipients
 *   =commits N       N messages were committed so far
 *   =checked N       N transactions were given to the checks (mail_start)
 *   =junk N          the last committed envelope was (1) or was not (0) junk
 *   =closed          the session closed the connection
 *   =open            the connection is still open
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/log.h"
#include "conf/config.h"
#include "smtp/smtp_session.h"

struct fake {
    struct smtp_session *s;
    struct buf in, out;
    int closed, paused;
    int want_open, want_commit, want_tls, want_auth;
    enum smtp_auth_result auth_result;
    int fail_open, fail_commit, body_full;
    struct result commit_res; /* with fail_commit: the answer */
    uint64_t spool_room;
    char qid[32];
    int fd; /* our copy of the body fd */
    unsigned qn;
    unsigned commits;
    size_t last_nrcpts;
    struct buf last_body;
    /* The fake mail checks (!mailauth). */
    int want_spf, want_verdict;
    uint32_t txn;
    unsigned checked;
    struct result spf_refusal, verdict_refusal;
    struct buf verdict_prefix, last_prefix;
    int last_junk;
};

static void f_write(void *io, const void *p, size_t n)
{
    struct fake *f = io;
    buf_append(&f->out, p, n);
}

static void f_pause(void *io, int paused)
{
    ((struct fake *)io)->paused = paused;
}

static void f_close(void *io)
{
    ((struct fake *)io)->closed = 1;
}

static void f_timeout(void *io, uint64_t ms)
{
}

static void f_body_open(void *svc, uint64_t sid)
{
    ((struct fake *)svc)->want_open = 1;
}

static void f_commit(void *svc, uint64_t sid, const char *qid, const struct envelope *env,
                     const char *prefix, size_t prefix_len)
{
    struct fake *f = svc;
    f->want_commit = 1;
    f->last_nrcpts = env->nrcpts;
    f->last_junk = env->junk;
    buf_reset(&f->last_prefix);
    buf_append(&f->last_prefix, prefix, prefix_len);
}

static void f_mail_start(void *svc, uint64_t sid, uint32_t txn, const char *helo, const char *from)
{
    struct fake *f = svc;
    f->want_spf = 1;
    f->txn = txn;
    f->checked++;
}

static void f_mail_content(void *svc, uint64_t sid, const char *p, size_t n)
{
}

static void f_mail_verdict(void *svc, uint64_t sid, uint32_t txn)
{
    struct fake *f = svc;
    f->want_verdict = 1;
    f->txn = txn;
}

static void f_abort(void *svc, const char *qid)
{
}

static void f_starttls(void *io)
{
    struct fake *f = io;
    f->want_tls = 1;
    buf_reset(&f->in); /* what conn_starttls does with pipelined input */
}

static void f_auth_check(void *svc, uint64_t sid, const char *mech, const char *user,
                         const char *password)
{
    struct fake *f = svc;
    f->want_auth = 1;
    f->auth_result = !strcmp(user, "alice") && !strcmp(password, "secret") ? SMTP_AUTH_OK
                                                                             : SMTP_AUTH_FAIL;
}

static const struct smtp_session_io fake_io = {f_write, f_pause, f_close, f_timeout,
                                               f_starttls};
static uint64_t f_spool_room(void *svc)
{
    return ((struct fake *)svc)->spool_room;
}

static const struct smtp_session_svc fake_svc = {.body_open = f_body_open,
                                                 .commit = f_commit,
                                                 .abort = f_abort,
                                                 .auth_check = f_auth_check,
                                                 .spool_room = f_spool_room};
static const struct smtp_session_svc fake_svc_checks = {.body_open = f_body_open,
                                                        .commit = f_commit,
                                                        .abort = f_abort,
                                                        .auth_check = f_auth_check,
                                                        .spool_room = f_spool_room,
                                                        .mail_start = f_mail_start,
                                                        .mail_content = f_mail_content,
                                                        .mail_verdict = f_mail_verdict};

/* Resolves pending queue requests and re-feeds input until nothing moves. */
static void fake_pump(struct fake *f)
{
    for (int i = 0; i < 100; i++) {
        if (f->want_tls) {
            f->want_tls = 0;
            smtp_session_tls_done(f->s, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 128);
        } else if (f->want_auth) {
            f->want_auth = 0;
            smtp_session_auth_done(f->s, f->auth_result);
            if (!f->paused)
                smtp_session_input(f->s, &f->in);
        } else if (f->want_spf) {
            f->want_spf = 0;
            smtp_session_spf_done(f->s, f->txn, &f->spf_refusal);
        } else if (f->want_verdict) {
            f->want_verdict = 0;
            int junk = f->verdict_prefix.len && strstr(f->verdict_prefix.data, "quarantine");
            smtp_session_verdict(f->s, f->txn, &f->verdict_refusal, f->verdict_prefix.data,
                                 f->verdict_prefix.len, junk);
            if (!f->paused)
                smtp_session_input(f->s, &f->in);
        } else if (f->want_open) {
            f->want_open = 0;
            if (f->fail_open) {
                smtp_session_body_failed(f->s, f->fail_open);
                f->fail_open = 0;
            } else {
                snprintf(f->qid, sizeof f->qid, "TESTQID%u", ++f->qn);
                int fd = f->body_full ? open("/dev/full", O_WRONLY | O_CLOEXEC)
                                      : memfd_create("body", MFD_CLOEXEC);
                f->body_full = 0;
                if (f->fd >= 0)
                    close(f->fd);
                f->fd = dup(fd);
                smtp_session_body_opened(f->s, f->qid, fd);
            }
            if (!f->paused)
                smtp_session_input(f->s, &f->in); /* as proc/net does on resume */
        } else if (f->want_commit) {
            f->want_commit = 0;
            struct result res;
            if (f->fail_commit) {
                f->fail_commit = 0;
                res = f->commit_res;
            } else {
                result_set(&res, RESULT_OK, 250, "2.0.0", "Ok: queued as %s", f->qid);
                f->commits++;
                buf_reset(&f->last_body);
                buf_append(&f->last_body, f->last_prefix.data, f->last_prefix.len);
                off_t end = lseek(f->fd, 0, SEEK_END);
                char *p = buf_reserve(&f->last_body, (size_t)end);
                if (end > 0 && fsio_pread_all(f->fd, p, (size_t)end, 0) == 0)
                    buf_commit(&f->last_body, (size_t)end);
                buf_reset(&f->last_prefix);
            }
            smtp_session_committed(f->s, f->qid, &res);
            if (!f->paused)
                smtp_session_input(f->s, &f->in);
        } else if (!f->paused && !f->closed && f->in.len) {
            size_t before = f->in.len;
            smtp_session_input(f->s, &f->in);
            if (f->in.len == before && !f->want_open && !f->want_commit && !f->want_spf &&
                !f->want_verdict)
                break;
        } else {
            break;
        }
    }
}

static void unescape(const char *s, struct buf *out)
{
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) {
            buf_putc(out, *s);
            continue;
        }
        s++;
        switch (*s) {
        case 'r': buf_putc(out, '\r'); break;
        case 'n': buf_putc(out, '\n'); break;
        case 't': buf_putc(out, '\t'); break;
        case 'x': {
            char hex[3] = {s[1], s[1] ? s[2] : 0, 0};
            buf_putc(out, (char)strtol(hex, NULL, 16));
            s += 2;
            break;
        }
        default: buf_putc(out, *s); break;
        }
    }
}

/* Skips tern's own Received header (first field and its continuation lines). */
static size_t skip_received(const struct buf *b)
{
    size_t i = 0;
    if (b->len < 9 || strncmp(b->data, "Received:", 9))
        return 0;
    while (i < b->len) {
        char *nl = memchr(b->data + i, '\n', b->len - i);
        if (nl == NULL)
            return b->len;
        i = (size_t)(nl - b->data) + 1;
        if (i >= b->len || (b->data[i] != ' ' && b->data[i] != '\t'))
            break;
    }
    return i;
}

/* Takes the next reply line from out into line (without CRLF). */
static int next_reply(struct fake *f, char *line, size_t size)
{
    char *nl = f->out.data ? memchr(f->out.data, '\n', f->out.len) : NULL;
    if (nl == NULL)
        return -1;
    size_t n = (size_t)(nl - f->out.data);
    size_t len = n && f->out.data[n - 1] == '\r' ? n - 1 : n;
    snprintf(line, size, "%.*s", (int)len, f->out.data);
    buf_consume(&f->out, n + 1);
    return 0;
}

static int set_option(struct config *cfg, const char *key, const char *val)
{
    unsigned long long v = strtoull(val, NULL, 10);
    if (!strcmp(key, "rcpt_max")) cfg->rcpt_max = v;
    else if (!strcmp(key, "message_size_max")) cfg->message_size_max = v;
    else if (!strcmp(key, "text_line_max")) cfg->text_line_max = v;
    else if (!strcmp(key, "cmd_line_max")) cfg->cmd_line_max = v;
    else if (!strcmp(key, "bad_commands_max")) cfg->bad_commands_max = (unsigned)v;
    else if (!strcmp(key, "rcpt_refused_max")) cfg->rcpt_refused_max = (unsigned)v;
    else if (!strcmp(key, "received_max")) cfg->received_max = v;
    else if (!strcmp(key, "bare_lf"))
        cfg->bare_lf = !strcmp(val, "reject") ? CONF_BARE_REJECT : CONF_BARE_NORMALIZE;
    else return -1;
    return 0;
}

static int run_script(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        perror(path);
        return 1;
    }
    struct config cfg;
    config_default(&cfg);
    free(cfg.hostname);
    cfg.hostname = strdup("mx.test");
    struct fake f;
    memset(&f, 0, sizeof f);
    f.fd = -1;
    f.spool_room = UINT64_MAX;
    result_set(&f.spf_refusal, RESULT_OK, 250, "2.1.5", "Ok");
    result_set(&f.verdict_refusal, RESULT_OK, 250, "2.0.0", "Ok");
    const struct smtp_session_svc *svc = &fake_svc;
    struct smtp_session_peer peer = {"192.0.2.1", "unknown", CONF_ROLE_MX, 0, 0, 0};
    int started = 0, fails = 0, lineno = 0;
    char raw[8192];
    int sending = 0;
    while (fgets(raw, sizeof raw, fp)) {
        lineno++;
        raw[strcspn(raw, "\n")] = '\0';
        if (raw[0] == '#' || raw[0] == '\0')
            continue;
        if (!strncmp(raw, "!set ", 5)) {
            char key[64], val[256];
            if (sscanf(raw + 5, "%63s %255s", key, val) != 2 || set_option(&cfg, key, val) < 0) {
                fprintf(stderr, "%s:%d: bad !set\n", path, lineno);
                fails++;
            }
            continue;
        }
        if (!strncmp(raw, "!role ", 6) && !started) {
            peer.role = !strcmp(raw + 6, "submission") ? CONF_ROLE_SUBMISSION
                        : !strcmp(raw + 6, "smtps")    ? CONF_ROLE_SMTPS
                                                       : CONF_ROLE_MX;
            peer.tls_implicit = peer.role == CONF_ROLE_SMTPS;
            continue;
        }
        if (!strcmp(raw, "!tls") && !started) {
            peer.tls_offer = 1;
            continue;
        }
        if (!strcmp(raw, "!mailauth") && !started) {
            svc = &fake_svc_checks;
            continue;
        }
        if (!strcmp(raw, "!relay-ok") && !started) {
            static const struct conf_cidr all = {{0}, AF_INET, 0}; /* 0.0.0.0/0 */
            cfg.relay_networks = malloc(sizeof all);
            cfg.relay_networks[0] = all;
            cfg.nrelay_networks = 1;
            continue;
        }
        if (!started) {
            f.s = smtp_session_new(1, &cfg, &peer, &fake_io, &f, svc, &f);
            smtp_session_start(f.s);
            started = 1;
            fake_pump(&f); /* smtps: the handshake before the greeting */
        }
        if (!strcmp(raw, "!fail-open") || !strcmp(raw, "!fail-open ENOSPC")) {
            f.fail_open = raw[10] ? -ENOSPC : -EIO;
            continue;
        }
        if (!strcmp(raw, "!body-full")) {
            f.body_full = 1;
            continue;
        }
        if (!strcmp(raw, "!fail-commit")) {
            f.fail_commit = 1;
            result_spool_error(&f.commit_res, -EIO);
            continue;
        }
        if (!strncmp(raw, "!spf-refusal ", 13) || !strncmp(raw, "!verdict-refusal ", 17)) {
            int spf = raw[1] == 's';
            const char *arg = raw + (spf ? 13 : 17);
            int code, used = 0;
            char enh[16];
            if (sscanf(arg, "%d %15s %n", &code, enh, &used) < 2 || used == 0) {
                fprintf(stderr, "%s:%d: bad %s\n", path, lineno, raw);
                fails++;
                continue;
            }
            enum result_kind k = code < 300 ? RESULT_OK : code < 500 ? RESULT_TEMPFAIL
                                                                    : RESULT_PERMFAIL;
            result_set(spf ? &f.spf_refusal : &f.verdict_refusal, k, code, enh, "%s", arg + used);
            continue;
        }
        if (!strncmp(raw, "!verdict-prefix ", 16)) {
            buf_reset(&f.verdict_prefix);
            unescape(raw + 16, &f.verdict_prefix);
            continue;
        }
        if (!strncmp(raw, "!commit-result ", 15)) {
            int code, used = 0;
            char enh[16];
            if (sscanf(raw + 15, "%d %15s %n", &code, enh, &used) < 2 || used == 0) {
                fprintf(stderr, "%s:%d: bad !commit-result\n", path, lineno);
                fails++;
                continue;
            }
            enum result_kind k = code < 300 ? RESULT_OK : code < 500 ? RESULT_TEMPFAIL
                                                                    : RESULT_PERMFAIL;
            result_set(&f.commit_res, k, code, enh, "%s", raw + 15 + used);
            f.fail_commit = 1;
            continue;
        }
        if (!strncmp(raw, "!spool-room ", 12)) {
            f.spool_room = !strcmp(raw + 12, "unknown") ? UINT64_MAX
                                                        : strtoull(raw + 12, NULL, 10);
            continue;
        }
        if (raw[0] == '>') {
            if (raw[1] == '>') {
                unescape(raw + 2 + (raw[2] == ' '), &f.in);
            } else {
                buf_puts(&f.in, raw + 1 + (raw[1] == ' '));
                buf_puts(&f.in, "\r\n");
            }
            sending = 1;
            continue;
        }
        if (sending) {
            fake_pump(&f);
            sending = 0;
        }
        if (raw[0] == '<') {
            const char *want = raw + 1 + (raw[1] == ' ');
            char got[2048];
            if (next_reply(&f, got, sizeof got) < 0) {
                fprintf(stderr, "%s:%d: expected \"%s\", got no reply\n", path, lineno, want);
                fails++;
                continue;
            }
            size_t wl = strlen(want);
            int ok = (wl && want[wl - 1] == '*') ? !strncmp(got, want, wl - 1) : !strcmp(got, want);
            if (!ok) {
                fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", path, lineno, want, got);
                fails++;
            }
        } else if (!strncmp(raw, "=body ", 6)) {
            struct buf want = BUF_INIT;
            unescape(raw + 6, &want);
            size_t off = skip_received(&f.last_body);
            size_t gl = f.last_body.len - off;
            if (gl != want.len || memcmp(f.last_body.data + off, want.data, gl)) {
                fprintf(stderr, "%s:%d: body differs: got \"%.*s\"\n", path, lineno, (int)gl,
                        f.last_body.data ? f.last_body.data + off : "");
                fails++;
            }
            buf_free(&want);
        } else if (!strncmp(raw, "=body~ ", 7) || !strncmp(raw, "=body! ", 7)) {
            struct buf want = BUF_INIT;
            unescape(raw + 7, &want);
            int has = f.last_body.len >= want.len &&
                      memmem(f.last_body.data, f.last_body.len, want.data, want.len);
            if (has != (raw[5] == '~')) {
                fprintf(stderr, "%s:%d: body %s \"%s\"\n", path, lineno,
                        has ? "holds" : "lacks", raw + 7);
                fails++;
            }
            buf_free(&want);
        } else if (!strncmp(raw, "=rcpts ", 7)) {
            if (f.last_nrcpts != strtoul(raw + 7, NULL, 10)) {
                fprintf(stderr, "%s:%d: rcpts %zu\n", path, lineno, f.last_nrcpts);
                fails++;
            }
        } else if (!strncmp(raw, "=checked ", 9)) {
            if (f.checked != strtoul(raw + 9, NULL, 10)) {
                fprintf(stderr, "%s:%d: checked %u\n", path, lineno, f.checked);
                fails++;
            }
        } else if (!strncmp(raw, "=junk ", 6)) {
            if (f.last_junk != (int)strtol(raw + 6, NULL, 10)) {
                fprintf(stderr, "%s:%d: junk %d\n", path, lineno, f.last_junk);
                fails++;
            }
        } else if (!strncmp(raw, "=commits ", 9)) {
            if (f.commits != strtoul(raw + 9, NULL, 10)) {
                fprintf(stderr, "%s:%d: commits %u\n", path, lineno, f.commits);
                fails++;
            }
        } else if (!strcmp(raw, "=closed") || !strcmp(raw, "=open")) {
            if (f.closed != (raw[1] == 'c')) {
                fprintf(stderr, "%s:%d: connection is %s\n", path, lineno,
                        f.closed ? "closed" : "open");
                fails++;
            }
        } else {
            fprintf(stderr, "%s:%d: unknown script line\n", path, lineno);
            fails++;
        }
    }
    if (sending)
        fake_pump(&f);
    char extra[2048];
    while (next_reply(&f, extra, sizeof extra) == 0) {
        fprintf(stderr, "%s: unexpected reply at end: \"%s\"\n", path, extra);
        fails++;
    }
    fclose(fp);
    smtp_session_free(f.s);
    if (f.fd >= 0)
        close(f.fd);
    buf_free(&f.in);
    buf_free(&f.out);
    buf_free(&f.last_body);
    buf_free(&f.verdict_prefix);
    buf_free(&f.last_prefix);
    config_free(&cfg);
    return fails;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return 1;
    }
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 512) {
        size_t l = strlen(de->d_name);
        if (l > 4 && !strcmp(de->d_name + l - 4, ".dlg"))
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    log_open(LOG_TO_STDERR, "test");
    int failed = 0, passed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (run_script(path))
            failed++;
        else
            passed++;
        free(names[i]);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}
