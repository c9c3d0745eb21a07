/* queue_dmarc: where DMARC aggregate-report rows are kept (RFC 7489
 * §7.2). The smtp process sends one row per evaluated message and policy
 * domain (IPC_DMARC_ROW, proc/net_dmarc); the queue process checks it as
 * untrusted input (dmarc_report_row_parse: every field), stamps it with
 * its own clock and appends its line to the file of the UTC day:
 *
 *     <spool_dir>/dmarc/YYYY-MM-DD.rows     (0600, the daemon's user)
 *
 * One write(2) per row on an O_APPEND descriptor, no fsync: a power loss
 * may lose the last rows written (the page cache), which costs a few
 * report counts and nothing else; a torn last line is refused by the
 * reader, and the next append starts on a new line. A day's file stops
 * growing at QUEUE_DMARC_DAY_MAX (rows past it are counted as failed),
 * so hostile mail cannot fill the spool's disk through it.
 *
 * `tern dmarc report` (cmd/dmarc.c) reads a finished day's file; files
 * older than QUEUE_DMARC_KEEP_DAYS are removed by it and by the queue
 * when a new day's file is opened, so they never pile up when no one
 * sends reports. */
#ifndef TERN_PROC_QUEUE_DMARC_H
#define TERN_PROC_QUEUE_DMARC_H

#include <stddef.h>

#include "conf/config.h"

#define QUEUE_DMARC_DAY_MAX (256ull * 1024 * 1024) /* about 800,000 rows */
#define QUEUE_DMARC_KEEP_DAYS 7
#define QUEUE_DMARC_DAY_SECONDS 86400
/* "YYYY-MM-DD.rows" and its NUL. */
#define QUEUE_DMARC_NAME_MAX 16

struct queue_dmarc;

/* Creates <spool_dir>/dmarc (0700) if missing and opens it. NULL after
 * logging why: rows are then counted as failed. */
struct queue_dmarc *queue_dmarc_new(const struct config *cfg);
void queue_dmarc_free(struct queue_dmarc *d);

/* One row from the smtp process: line[0..n) without its LF. Appended
 * (tern_dmarc_rows_total recorded), refused when it does not read
 * (refused, logged) or not written (failed, logged once a day). d may be
 * NULL. now: seconds since the epoch, the row's new time. */
void queue_dmarc_row(struct queue_dmarc *d, const char *line, size_t n, long long now);

/* <spool_dir>/dmarc into out. 0 or -ENAMETOOLONG. */
int queue_dmarc_dir_path(const struct config *cfg, char *out, size_t size);

/* The start of the UTC day holding t. */
long long queue_dmarc_day(long long t);
/* The file name of the UTC day starting at day: "YYYY-MM-DD.rows". */
void queue_dmarc_day_name(long long day, char out[QUEUE_DMARC_NAME_MAX]);
/* Reads "YYYY-MM-DD" (exactly; a real date, 1970 or later) into the
 * start of that UTC day. 0 or -EINVAL. */
int queue_dmarc_day_parse(const char *text, long long *day);

/* Removes the rows files in directory dirfd of days before
 * today - keep_days (today: the start of a UTC day); names that are not
 * "YYYY-MM-DD.rows" are left alone. Each removal is logged. Returns the
 * number removed, or -errno when the directory cannot be read. */
int queue_dmarc_prune(int dirfd, long long today, unsigned keep_days);

#endif
