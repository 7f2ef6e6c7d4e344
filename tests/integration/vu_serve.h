/* SPDX-License-Identifier: MIT */
/*
 * What the in-process vhost-user tests that run their own backends share:
 * a captured log (what a backend said, to assert on), a monotonic clock in
 * ms, and a backend's control thread (vio_backend_dispatch until the stop
 * eventfd is written).  Static functions: one copy per test program.
 */
#ifndef VIO_TESTS_VU_SERVE_H
#define VIO_TESTS_VU_SERVE_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vio/log.h>
#include <vio/vhost_user.h>

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the log: lines kept to check what a backend said ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 16];
static size_t log_len;

/* vio_log_set's function: echoed to stderr and kept (up to 64 KiB). */
static inline void log_fn(void *opaque, enum vio_log_level level,
			  const char *msg)
{
	(void)opaque;
	(void)level;
	fprintf(stderr, "vio: %s\n", msg);
	pthread_mutex_lock(&log_lock);
	size_t n = strlen(msg);
	if (log_len + n + 2 < sizeof(log_buf)) {
		memcpy(log_buf + log_len, msg, n);
		log_len += n;
		log_buf[log_len++] = '\n';
		log_buf[log_len] = '\0';
	}
	pthread_mutex_unlock(&log_lock);
}

static inline void log_clear(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	log_buf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

static inline bool log_has(const char *s)
{
	pthread_mutex_lock(&log_lock);
	bool r = strstr(log_buf, s) != NULL;
	pthread_mutex_unlock(&log_lock);
	return r;
}

/* ---- a backend's control thread ---- */

struct vu_ctl {
	struct vio_backend *b;
	int stop; /* an eventfd: written, the thread returns */
};

static inline void *vu_ctl_main(void *arg)
{
	struct vu_ctl *c = arg;
	for (;;) {
		struct pollfd p[2] = {
		    {.fd = vio_backend_fd(c->b), .events = POLLIN},
		    {.fd = c->stop, .events = POLLIN}};
		if (poll(p, 2, 1000) < 0)
			continue;
		if (p[1].revents)
			break;
		if (p[0].revents)
			(void)vio_backend_dispatch(c->b);
	}
	return NULL;
}

#endif
