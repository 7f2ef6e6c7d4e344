/* SPDX-License-Identifier: MIT */
/*
 * Log lines (vio/log.h, util/log.h).  The one piece of process state in
 * the library: where log lines go is a process-wide decision.
 *
 * A line's path: level check (cheap, before anything else) -> rate limit
 * (per source, under rl_lock) -> format into a stack buffer -> the handler,
 * called under the read side of handler_lock so that
 * vio_log_set_handler() (the write side) returns only once no call of the
 * old handler runs.
 */
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static atomic_int max_level = VIO_LOG_INFO;
static atomic_int quiet_all;	 /* vio_log_set_quiet */
static atomic_int quiet_default; /* VIO_LOG=quiet */

/* Writers first: threads that log without pause must not starve
 * vio_log_set_handler.  (Non-recursive: a handler must not log.) */
#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
static pthread_rwlock_t handler_lock =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
#else
static pthread_rwlock_t handler_lock = PTHREAD_RWLOCK_INITIALIZER;
#endif
static vio_log_fn *handler; /* NULL: the default; under handler_lock */
static void *handler_opaque;

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
    [VIO_LOG_ERROR] = "error",
    [VIO_LOG_WARN] = "warn",
    [VIO_LOG_INFO] = "info",
    [VIO_LOG_DEBUG] = "debug",
};

/* VIO_LOG: "quiet", or a level name; read once, before the first line
 * and before an explicit setting (which then wins). */
static void read_env(void)
{
	const char *e = getenv("VIO_LOG");
	if (!e)
		return;
	if (strcmp(e, "quiet") == 0) {
		atomic_store(&quiet_default, 1);
		return;
	}
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++)
		if (strcasecmp(e, level_names[i]) == 0)
			atomic_store(&max_level, (int)i);
}

static void env_init(void)
{
	pthread_once(&env_once, read_env);
}

const char *vio_log_level_name(enum vio_log_level level)
{
	unsigned i = (unsigned)level;
	return i < sizeof(level_names) / sizeof(level_names[0]) ? level_names[i]
								: "?";
}

void vio_log_set_quiet(int quiet)
{
	atomic_store(&quiet_all, quiet ? 1 : 0);
}

void vio_log_set_level(enum vio_log_level max)
{
	env_init();
	int l = (int)max;
	if (l < VIO_LOG_ERROR)
		l = VIO_LOG_ERROR;
	if (l > VIO_LOG_DEBUG)
		l = VIO_LOG_DEBUG;
	atomic_store(&max_level, l);
}

enum vio_log_level vio_log_get_level(void)
{
	env_init();
	return (enum vio_log_level)atomic_load(&max_level);
}

void vio_log_set_handler(vio_log_fn *fn, void *opaque)
{
	pthread_rwlock_wrlock(&handler_lock);
	handler = fn;
	handler_opaque = opaque;
	pthread_rwlock_unlock(&handler_lock);
}

bool vio_log_enabled(enum vio_log_level level)
{
	env_init();
	return !atomic_load_explicit(&quiet_all, memory_order_relaxed) &&
	       (int)level <=
		   atomic_load_explicit(&max_level, memory_order_relaxed);
}

uint64_t vio_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Hand one formatted line to the handler.  Caller checked the level. */
static void deliver(enum vio_log_level level, const char *msg)
{
	pthread_rwlock_rdlock(&handler_lock);
	if (handler)
		handler(handler_opaque, level, msg);
	else if (!atomic_load(&quiet_default))
		/* one call per line: stdio's lock keeps lines whole */
		fprintf(stderr, "vio: %s\n", msg);
	pthread_rwlock_unlock(&handler_lock);
}

/* Format and deliver; errno is the caller's for %m.  Keeps errno. */
static void emit(enum vio_log_level level, int saved_errno, const char *fmt,
		 va_list ap) __attribute__((format(printf, 3, 0)));
static void emit(enum vio_log_level level, int saved_errno, const char *fmt,
		 va_list ap)
{
	char line[VIO_LOG_MSG_MAX];
	errno = saved_errno;
	if (vsnprintf(line, sizeof(line), fmt, ap) >= 0)
		deliver(level, line);
	errno = saved_errno;
}

void vio_vlog_at(enum vio_log_level level, const char *fmt, va_list ap)
{
	int e = errno;
	if (vio_log_enabled(level))
		emit(level, e, fmt, ap);
	errno = e;
}

void vio_log_at(enum vio_log_level level, const char *fmt, ...)
{
	int e = errno;
	if (!vio_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(level, e, fmt, ap);
	va_end(ap);
}

void vio_vlog(const char *fmt, va_list ap)
{
	vio_vlog_at(VIO_LOG_INFO, fmt, ap);
}

void vio_log(const char *fmt, ...)
{
	int e = errno;
	if (!vio_log_enabled(VIO_LOG_INFO))
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(VIO_LOG_INFO, e, fmt, ap);
	va_end(ap);
}

/* Count a line against rl: true to let it through; *dropped is the number
 * suppressed before it, to report first. */
static bool ratelimit_pass(struct vio_ratelimit *rl, unsigned *dropped)
{
	uint64_t now = vio_now_ns();
	bool pass = false;
	*dropped = 0;
	pthread_mutex_lock(&rl_lock);
	if (now - rl->window_ns >= 1000000000ull) {
		rl->window_ns = now;
		rl->printed = 0;
	}
	if (rl->printed >= VIO_RATELIMIT_BURST) {
		rl->suppressed++;
	} else {
		rl->printed++;
		*dropped = rl->suppressed;
		rl->suppressed = 0;
		pass = true;
	}
	pthread_mutex_unlock(&rl_lock);
	return pass;
}

static void vlog_limited(struct vio_ratelimit *rl, enum vio_log_level level,
			 int saved_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void vlog_limited(struct vio_ratelimit *rl, enum vio_log_level level,
			 int saved_errno, const char *fmt, va_list ap)
{
	unsigned dropped;
	if (!vio_log_enabled(level) || !ratelimit_pass(rl, &dropped))
		return;
	if (dropped) {
		char note[64];
		snprintf(note, sizeof(note), "(%u similar messages suppressed)",
			 dropped);
		deliver(level, note);
	}
	emit(level, saved_errno, fmt, ap);
}

void vio_log_limited_at(struct vio_ratelimit *rl, enum vio_log_level level,
			const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog_limited(rl, level, e, fmt, ap);
	va_end(ap);
	errno = e;
}

void vio_log_limited(struct vio_ratelimit *rl, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog_limited(rl, VIO_LOG_WARN, e, fmt, ap);
	va_end(ap);
	errno = e;
}
