/* SPDX-License-Identifier: MIT */
#include "util/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* -1: not yet read from the environment.  The one piece of process state
 * in the library: where log lines go is a process-wide decision. */
static atomic_int quiet_state = -1;

void vio_log_set_quiet(int quiet)
{
	atomic_store(&quiet_state, quiet ? 1 : 0);
}

static int quiet(void)
{
	int q = atomic_load(&quiet_state);
	if (q < 0) {
		const char *e = getenv("VIO_LOG");
		q = e && strcmp(e, "quiet") == 0;
		atomic_store(&quiet_state, q);
	}
	return q;
}

uint64_t vio_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vio_vlog(const char *fmt, va_list ap)
{
	char line[512];
	if (quiet())
		return;
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* one write per line so lines from threads do not interleave */
	fprintf(stderr, "vio: %s\n", line);
}

void vio_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vio_vlog(fmt, ap);
	va_end(ap);
}

void vio_log_limited(struct vio_ratelimit *rl, const char *fmt, ...)
{
	uint64_t now = vio_now_ns();
	if (now - rl->window_ns >= 1000000000ull) {
		rl->window_ns = now;
		rl->printed = 0;
	}
	if (rl->printed >= VIO_RATELIMIT_BURST) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	if (rl->suppressed) {
		vio_log("(%u similar messages suppressed)", rl->suppressed);
		rl->suppressed = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	vio_vlog(fmt, ap);
	va_end(ap);
}
