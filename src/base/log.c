#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_target log_target = LOG_TO_STDERR;
static char log_ident[64] = "tern";
static char log_host[256] = "localhost";
static int log_debug_on;

void log_open(enum log_target target, const char *hostname)
{
    log_target = target;
    if (hostname)
        snprintf(log_host, sizeof log_host, "%s", hostname);
    if (target == LOG_TO_SYSLOG)
        openlog("tern", LOG_PID | LOG_NDELAY, LOG_MAIL);
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
    }
    return LOG_INFO;
}

static const char *log_prefix(enum log_level level)
{
    switch (level) {
    case LOGL_WARN: return "warning: ";
    case LOGL_ERR: return "error: ";
    default: return "";
    }
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    if (level == LOGL_DEBUG && !log_debug_on)
        return;
    char body[2048];
    vsnprintf(body, sizeof body, fmt, ap);
    if (log_target == LOG_TO_SYSLOG) {
        syslog(log_syslog_prio(level), "%s%s", log_prefix(level), body);
        return;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    /* One write per line so lines of concurrent processes never interleave. */
    char line[2400];
    int n = snprintf(line, sizeof line, "%s %s %s[%ld]: %s%s\n", stamp, log_host,
                     log_ident, (long)getpid(), log_prefix(level), body);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char body[1024];
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    log_msg(LOGL_ERR, "fatal: %s", body);
    exit(1);
}
