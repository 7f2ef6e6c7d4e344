/* SPDX-License-Identifier: MIT */
/*
 * Queue workers: one thread per served queue.
 *
 * The loop: run the queue function; while it says there is more, run it
 * again (each run is bounded, vio/run.h); else sleep in poll() on the
 * kick fd and the stop eventfd.  The stop flag is checked before every
 * run, so vio_run_worker_stop() returns within one run's time.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include <vio/run.h>

struct vio_run_worker {
	pthread_t thread;
	int kick_fd, stop_fd;
	bool busy_poll;
	int stop; /* atomic */
	bool (*fn)(void *);
	void *arg;
};

static bool stopping(struct vio_run_worker *w)
{
	return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE);
}

/* Drain the kick eventfd; false if it is unusable. */
static bool drain_kick(struct vio_run_worker *w)
{
	uint64_t v;
	ssize_t n = read(w->kick_fd, &v, sizeof(v));
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		vio_log_warn("worker: kick fd: %m: queue waits for its stop");
		return false;
	}
	return true;
}

static void *worker_main(void *p)
{
	struct vio_run_worker *w = p;
	struct pollfd pfd[2] = {{w->stop_fd, POLLIN, 0},
				{w->kick_fd, POLLIN, 0}};
	nfds_t nfds = w->kick_fd >= 0 ? 2 : 1;
	bool more = w->fn(w->arg);

	while (!stopping(w)) {
		if (more) {
			more = w->fn(w->arg);
			continue;
		}
		if (w->busy_poll && nfds == 2) {
			if (!drain_kick(w))
				nfds = 1;
			more = w->fn(w->arg);
			continue;
		}
		int n = poll(pfd, nfds, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || pfd[0].revents)
			break;
		if (nfds < 2)
			continue;
		short ev = pfd[1].revents;
		if (ev & POLLIN) {
			if (!drain_kick(w))
				nfds = 1;
			more = w->fn(w->arg);
		} else if (ev & (POLLERR | POLLNVAL | POLLHUP)) {
			/* a hung-up kick fd stays readable-for-poll forever:
			 * stop watching it rather than spin */
			vio_log_warn(
			    "worker: kick fd %s: queue waits for its stop",
			    ev & POLLHUP ? "hung up" : "failed");
			nfds = 1;
		}
	}
	return NULL;
}

struct vio_run_worker *vio_run_worker_start(int kick_fd, bool (*fn)(void *),
					    void *arg, bool busy_poll)
{
	struct vio_run_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->kick_fd = kick_fd;
	w->fn = fn;
	w->arg = arg;
	w->busy_poll = busy_poll;
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->stop_fd < 0) {
		free(w);
		return NULL;
	}
	int r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r) {
		close(w->stop_fd);
		free(w);
		errno = r;
		return NULL;
	}
	return w;
}

void vio_run_worker_stop(struct vio_run_worker *w)
{
	if (!w)
		return;
	uint64_t one = 1;
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	if (write(w->stop_fd, &one, sizeof(one)) < 0)
		vio_log_err("worker: cannot signal stop");
	pthread_join(w->thread, NULL);
	close(w->stop_fd);
	free(w);
}

struct backend_job {
	struct vio_backend *b;
	unsigned idx;
	struct vio_run_worker *w;
};

static bool backend_kick(void *p)
{
	struct backend_job *j = p;
	return vio_backend_queue_kick(j->b, j->idx);
}

static void *hook_start(void *opaque, struct vio_backend *b, unsigned idx,
			int kick_fd)
{
	struct backend_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->b = b;
	j->idx = idx;
	j->w =
	    vio_run_worker_start(kick_fd, backend_kick, j, opaque == (void *)1);
	if (!j->w) {
		free(j);
		return NULL;
	}
	return j;
}

static void hook_stop(void *opaque, void *handle)
{
	struct backend_job *j = handle;
	if (!j)
		return;
	vio_run_worker_stop(j->w);
	free(j);
}

void vio_run_backend_hooks(struct vio_backend_opts *cfg, bool busy_poll)
{
	cfg->queue_start = hook_start;
	cfg->queue_stop = hook_stop;
	cfg->opaque = busy_poll ? (void *)1 : NULL;
}
