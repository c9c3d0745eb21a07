#include "base/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/logjson.h"
#include "base/sizes.h"

static enum log_target log_target = LOG_TO_STDERR;
static enum log_format log_format = LOG_FORMAT_LINE;
static char log_ident[64] = "tern";
static char log_host[DNS_NAME_MAX] = "localhost";
static int log_debug_on;

/* syslog(3) prints the ident given to openlog(), and keeps the pointer:
 * this buffer. Lines that name another program reopen with that name,
 * under the lock, since delivery and AUTH threads log too. */
static pthread_mutex_t log_syslog_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_syslog_ident[64];

void log_open(enum log_target target, const char *hostname)
{
    log_target = target;
    if (hostname)
        snprintf(log_host, sizeof log_host, "%s", hostname);
    if (target == LOG_TO_SYSLOG) {
        /* Connect now (LOG_NDELAY): the smtp process is chrooted later. */
        pthread_mutex_lock(&log_syslog_lock);
        snprintf(log_syslog_ident, sizeof log_syslog_ident, "%s", log_ident);
        openlog(log_syslog_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
        pthread_mutex_unlock(&log_syslog_lock);
    }
}

void log_set_format(enum log_format format)
{
    log_format = format;
}

void log_set_ident(const char *ident)
{
    snprintf(log_ident, sizeof log_ident, "%s", ident);
}

void log_set_debug(int on)
{
    log_debug_on = on;
}

static int log_syslog_prio(enum log_level level)
{
    switch (level) {
    case LOGL_DEBUG: return LOG_DEBUG;
    case LOGL_INFO: return LOG_INFO;
    case LOGL_WARN: return LOG_WARNING;
    case LOGL_ERR: return LOG_ERR;
    case LOGL_FATAL: return LOG_CRIT;
    }
    return LOG_INFO;
}

/* Postfix's words before the text of a line that is not informational. */
static const char *log_prefix(enum log_level level)
{
    switch (level) {
    case LOGL_WARN: return "warning: ";
    case LOGL_ERR: return "error: ";
    case LOGL_FATAL: return "fatal: ";
    default: return "";
    }
}

static const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOGL_DEBUG: return "debug";
    case LOGL_INFO: return "info";
    case LOGL_WARN: return "warning";
    case LOGL_ERR: return "error";
    case LOGL_FATAL: return "fatal";
    }
    return "info";
}

/* The event as a JSON object (no line end) into `out`. */
static void log_json(struct buf *out, const char *prog, enum log_level level, const char *body)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[48], date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof stamp, "%s.%03ldZ", date, ts.tv_nsec / 1000000L);
    struct logjson_event ev = {
        .ts = stamp,
        .host = log_host,
        .prog = prog,
        .pid = (long)getpid(),
        .level = log_level_name(level),
        .msg = body,
        .msglen = strlen(body),
    };
    logjson_encode(out, &ev);
    if (out->len && out->data[out->len - 1] == '\n')
        out->data[--out->len] = '\0';
}

static void log_to_syslog(const char *prog, enum log_level level, const char *body)
{
    struct buf j = BUF_INIT;
    if (log_format == LOG_FORMAT_JSON)
        log_json(&j, prog, level, body);
    pthread_mutex_lock(&log_syslog_lock);
    if (strcmp(log_syslog_ident, prog) != 0) {
        snprintf(log_syslog_ident, sizeof log_syslog_ident, "%s", prog);
        openlog(log_syslog_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
    if (j.data)
        syslog(log_syslog_prio(level), "%s", j.data);
    else
        syslog(log_syslog_prio(level), "%s%s", log_prefix(level), body);
    pthread_mutex_unlock(&log_syslog_lock);
    buf_free(&j);
}

void log_vmsg_as(const char *prog, enum log_level level, const char *fmt, va_list ap)
{
    if (level == LOGL_DEBUG && !log_debug_on)
        return;
    if (prog == NULL)
        prog = log_ident;
    char body[2048];
    vsnprintf(body, sizeof body, fmt, ap);
    if (log_target == LOG_TO_SYSLOG) {
        log_to_syslog(prog, level, body);
        return;
    }
    /* One write per line so lines of concurrent processes never interleave. */
    if (log_format == LOG_FORMAT_JSON) {
        struct buf j = BUF_INIT;
        log_json(&j, prog, level, body);
        buf_putc(&j, '\n');
        ssize_t w = write(STDERR_FILENO, j.data, j.len);
        (void)w;
        buf_free(&j);
        return;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    char line[2400];
    int n = snprintf(line, sizeof line, "%s %s %s[%ld]: %s%s\n", stamp, log_host, prog,
                     (long)getpid(), log_prefix(level), body);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    log_vmsg_as(NULL, level, fmt, ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg_as(NULL, level, fmt, ap);
    va_end(ap);
}

void log_msg_as(const char *prog, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg_as(prog, level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char body[1024];
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    log_msg(LOGL_FATAL, "%s", body);
    exit(1);
}
