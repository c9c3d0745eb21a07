/* clock: the time as the rest of tern sees it. Tests can move it. */
#ifndef TERN_BASE_CLOCK_H
#define TERN_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on a monotonic clock, for timeouts. */
uint64_t clock_mono_ms(void);
/* Wall-clock seconds since the epoch, for the spool and headers. */
time_t clock_wall(void);
/* Wall-clock microseconds since the epoch. */
uint64_t clock_wall_us(void);
/* Shifts both clocks by `seconds` (tests only). */
void clock_fake_advance(int64_t seconds);
/* Formats t as an RFC 5322 date-time ("Mon, 23 Nov 2026 01:54:44 +0000"). */
void clock_rfc5322(time_t t, char *out, size_t outsize);

#endif
