/* SPDX-License-Identifier: MIT */
/*
 * Internal: log lines with a level, rate-limited for peer-caused errors,
 * delivered to the handler of vio/log.h (default: stderr).
 *
 * Levels (vio/log.h): ERROR for what vio failed to do for a local reason
 * or a caller's misuse; WARN for what a peer did wrong (the rate-limited
 * lines) and fallbacks; INFO for connections that come and go; DEBUG for
 * detail.  vio_log() is INFO and vio_log_limited() is WARN, the usual
 * levels of their call sites; the _at forms name another.
 *
 * Every function here keeps errno as it was (a format may use %m).
 */
#ifndef VIO_UTIL_LOG_H
#define VIO_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <vio/log.h>

/* One per source of peer errors (a queue, a connection).  Zero-init.
 * Updated under a lock of log.c: any thread may log through it. */
struct vio_ratelimit {
	uint64_t window_ns; /* start of the current one-second window */
	unsigned printed;   /* lines printed in this window */
	unsigned suppressed;
};

/* At most VIO_RATELIMIT_BURST lines per second per limiter; the count of
 * suppressed lines is reported with the next line printed. */
#define VIO_RATELIMIT_BURST 5

void vio_log_at(enum vio_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vio_vlog_at(enum vio_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void vio_log_limited_at(struct vio_ratelimit *rl, enum vio_log_level level,
			const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* INFO */
void vio_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vio_vlog(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));
/* WARN, rate-limited by rl */
void vio_log_limited(struct vio_ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define vio_log_err(...) vio_log_at(VIO_LOG_ERROR, __VA_ARGS__)
#define vio_log_warn(...) vio_log_at(VIO_LOG_WARN, __VA_ARGS__)
#define vio_log_info(...) vio_log_at(VIO_LOG_INFO, __VA_ARGS__)
#define vio_log_debug(...) vio_log_at(VIO_LOG_DEBUG, __VA_ARGS__)

/* Would a line of this level go anywhere?  (Skip costly formatting.) */
bool vio_log_enabled(enum vio_log_level level);

/* Drop every line, whatever the handler (tests of hostile peers).
 * VIO_LOG=quiet silences only the default handler. */
void vio_log_set_quiet(int quiet);

uint64_t vio_now_ns(void);

#endif
