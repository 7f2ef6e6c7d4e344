/* SPDX-License-Identifier: MIT */
/* Internal: log lines to stderr, rate-limited for peer-caused errors. */
#ifndef VIO_UTIL_LOG_H
#define VIO_UTIL_LOG_H

#include <stdarg.h>
#include <stdint.h>

/* One per source of peer errors (a queue, a connection).  Zero-init. */
struct vio_ratelimit {
	uint64_t window_ns; /* start of the current one-second window */
	unsigned printed;   /* lines printed in this window */
	unsigned suppressed;
};

/* At most VIO_RATELIMIT_BURST lines per second per limiter; the count of
 * suppressed lines is reported with the next line printed. */
#define VIO_RATELIMIT_BURST 5

void vio_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vio_vlog(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));
void vio_log_limited(struct vio_ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Quiet all logging (tests of hostile peers); VIO_LOG=quiet does it too. */
void vio_log_set_quiet(int quiet);

uint64_t vio_now_ns(void);

#endif
