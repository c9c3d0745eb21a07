/* log: one line per event, in Postfix's shape ("Nov 23 01:54:44 host
 * tern/smtpd[123]: QUEUEID: key=value, ...") so that an operator's grep
 * habits and pflogsumm (--syslog-name=tern) carry over; or, with
 * log_format = json, the same event as one JSON object per line
 * (base/logjson). Callers escape peer-supplied strings (strutil_escape,
 * strutil_escape_word for addresses) before they reach a log line. */
#ifndef TERN_BASE_LOG_H
#define TERN_BASE_LOG_H

#include <stdarg.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };
enum log_format { LOG_FORMAT_LINE, LOG_FORMAT_JSON };
enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERR, LOGL_FATAL };

/* Sets where lines go and the host name printed on stderr lines. */
void log_open(enum log_target target, const char *hostname);
void log_set_format(enum log_format format);
/* Sets the program part of each line, e.g. "tern/smtpd" (copied): the
 * process's default. With syslog it is also the syslog ident. */
void log_set_ident(const char *ident);
void log_set_debug(int on);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);
/* The same with the program named per line, as Postfix's delivery agents
 * name themselves: "tern/local", "tern/smtp", "tern/bounce",
 * "tern/cleanup". NULL means the process's default. Thread-safe. */
void log_msg_as(const char *prog, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg_as(const char *prog, enum log_level level, const char *fmt, va_list ap);

#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOGL_ERR, __VA_ARGS__)

/* For start-up errors, out-of-memory and broken invariants only. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
