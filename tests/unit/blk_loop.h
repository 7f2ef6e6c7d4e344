/* SPDX-License-Identifier: MIT */
/*
 * A tiny poll()-based struct vio_loop for the device tests: fds
 * (level-triggered; VIO_LOOP_POLL callbacks also run on every busy-poll
 * turn) and timers, run by the test's own thread with tloop_turn().
 * Not the engine (src/run/): just enough of the contract of vio/device.h
 * to drive a device's queue_start / callbacks / queue_stop.
 */
#ifndef VIO_TEST_BLK_LOOP_H
#define VIO_TEST_BLK_LOOP_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util/log.h"
#include <vio/device.h>

#define TLOOP_FDS 8
#define TLOOP_TIMERS 8

struct tloop {
	struct vio_loop l;
	struct {
		int fd;
		unsigned flags;
		vio_loop_fn *fn;
		void *arg;
	} fds[TLOOP_FDS];
	unsigned nfds;
	struct {
		uint64_t at;
		vio_loop_fn *fn;
		void *arg;
	} timers[TLOOP_TIMERS];
	unsigned ntimers;
	bool busy_poll;
	unsigned calls; /* callbacks run */
};

static int tloop_add_fd(struct vio_loop *l, int fd, unsigned flags,
			vio_loop_fn *fn, void *arg)
{
	struct tloop *t = l->priv;
	if (t->nfds == TLOOP_FDS)
		return -ENOSPC;
	t->fds[t->nfds].fd = fd;
	t->fds[t->nfds].flags = flags;
	t->fds[t->nfds].fn = fn;
	t->fds[t->nfds].arg = arg;
	t->nfds++;
	return 0;
}

static void tloop_del_fd(struct vio_loop *l, int fd)
{
	struct tloop *t = l->priv;
	for (unsigned i = 0; i < t->nfds; i++) {
		if (t->fds[i].fd == fd) {
			t->fds[i] = t->fds[--t->nfds];
			return;
		}
	}
}

static void tloop_cancel_timer(struct vio_loop *l, vio_loop_fn *fn, void *arg)
{
	struct tloop *t = l->priv;
	for (unsigned i = 0; i < t->ntimers; i++) {
		if (t->timers[i].fn == fn && t->timers[i].arg == arg) {
			t->timers[i] = t->timers[--t->ntimers];
			return;
		}
	}
}

static int tloop_set_timer(struct vio_loop *l, uint64_t ns, vio_loop_fn *fn,
			   void *arg)
{
	struct tloop *t = l->priv;
	tloop_cancel_timer(l, fn, arg);
	if (t->ntimers == TLOOP_TIMERS)
		return -ENOSPC;
	t->timers[t->ntimers].at = vio_now_ns() + ns;
	t->timers[t->ntimers].fn = fn;
	t->timers[t->ntimers].arg = arg;
	t->ntimers++;
	return 0;
}

static void tloop_init(struct tloop *t, bool busy_poll)
{
	memset(t, 0, sizeof(*t));
	t->l.add_fd = tloop_add_fd;
	t->l.del_fd = tloop_del_fd;
	t->l.set_timer = tloop_set_timer;
	t->l.cancel_timer = tloop_cancel_timer;
	t->l.priv = t;
	t->busy_poll = busy_poll;
}

/* One turn: due timers, then poll (up to timeout_ms; 0 when busy-polling)
 * and run the callbacks of readable fds (and every VIO_LOOP_POLL one
 * when busy-polling).  Returns the number of callbacks run. */
static unsigned tloop_turn(struct tloop *t, int timeout_ms)
{
	unsigned ran = 0;
	uint64_t now = vio_now_ns();
	for (unsigned i = 0; i < t->ntimers;) {
		if (t->timers[i].at <= now) {
			vio_loop_fn *fn = t->timers[i].fn;
			void *arg = t->timers[i].arg;
			t->timers[i] = t->timers[--t->ntimers];
			fn(arg);
			ran++;
			continue;
		}
		i++;
	}
	if (t->ntimers)
		timeout_ms = 0;
	struct pollfd pfd[TLOOP_FDS];
	unsigned n = t->nfds;
	for (unsigned i = 0; i < n; i++) {
		pfd[i].fd = t->fds[i].fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	int r = poll(pfd, n, t->busy_poll ? 0 : timeout_ms);
	for (unsigned i = 0; i < n && i < t->nfds; i++) {
		bool ready = r > 0 && (pfd[i].revents & POLLIN);
		if (ready ||
		    (t->busy_poll && (t->fds[i].flags & VIO_LOOP_POLL))) {
			t->fds[i].fn(t->fds[i].arg);
			ran++;
		}
	}
	t->calls += ran;
	return ran;
}

#endif
