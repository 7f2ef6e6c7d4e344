/* SPDX-License-Identifier: MIT */
/*
 * Groups of workers (vio/run.h), the backend's hooks on them, and the
 * one-queue worker of the first API.
 *
 * A backend queue on a worker: start gives the device the worker's loop
 * (vio_device_queue_start, on the worker), kick is the backend's, stop is
 * vio_device_queue_stop (on the worker, before the detach is
 * acknowledged; the backend then reads the ring base and frees the vq).
 * Busy-poll reads vio_vq_more_avail; a queue whose kick returned false
 * with chains still available is "stalled" (the device keeps them on
 * purpose) and counts as work again only when its ring position moves.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/internal.h"
#include "util/log.h"

#define DEFAULT_POLL_US 50u
#define MAX_CPU 1023u

struct vio_run {
	unsigned n;
	unsigned group; /* queues per group (vio_run_opts.group), >= 1 */
	/* the default group: a worker is made when its first queue comes
	 * and freed when its last one goes (no thread or fd stays behind a
	 * backend that is gone) */
	bool lazy;
	unsigned users[VIO_MAX_QUEUES]; /* lazy: queues on each worker */
	bool poll;
	uint64_t poll_ns;
	pthread_mutex_t lock; /* lazy creation */
	struct rw *w[VIO_MAX_QUEUES];
};

int vio_run_parse_cpus(const char *list, unsigned *cpus, unsigned max)
{
	unsigned n = 0;
	const char *p = list;
	if (!p || !*p)
		return -EINVAL;
	for (;;) {
		char *end;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		unsigned long a = strtoul(p, &end, 10), b = a;
		if (errno)
			return -ERANGE;
		p = end;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				return -EINVAL;
			b = strtoul(p, &end, 10);
			if (errno)
				return -ERANGE;
			p = end;
		}
		if (b < a)
			return -EINVAL;
		if (b > MAX_CPU)
			return -ERANGE;
		for (unsigned long c = a; c <= b; c++) {
			bool dup = false;
			for (unsigned i = 0; i < n; i++)
				dup |= cpus[i] == c;
			if (dup)
				continue;
			if (n == max)
				return -ERANGE;
			cpus[n++] = (unsigned)c;
		}
		if (!*p)
			return (int)n;
		if (*p++ != ',')
			return -EINVAL;
	}
}

static unsigned online_cpus(void)
{
	long c = sysconf(_SC_NPROCESSORS_ONLN);
	return c > 0 ? (unsigned)c : 1;
}

struct vio_run *vio_run_new(const struct vio_run_opts *o, char *err,
			    size_t errlen)
{
	unsigned cpus[VIO_MAX_QUEUES];
	int ncpu = 0;
	if (err && errlen)
		err[0] = 0;
	if (o->threads > VIO_MAX_QUEUES) {
		snprintf(err, errlen, "%u threads: at most %u", o->threads,
			 VIO_MAX_QUEUES);
		errno = EINVAL;
		return NULL;
	}
	if (o->cpus && *o->cpus) {
		ncpu = vio_run_parse_cpus(o->cpus, cpus, VIO_MAX_QUEUES);
		if (ncpu < 0) {
			snprintf(err, errlen,
				 ncpu == -ERANGE
				     ? "CPU list '%s': CPU numbers 0..%u, at "
				       "most 64 CPUs"
				     : "CPU list '%s': expected numbers and "
				       "ranges like 0,2 or 0-3 (at most %u)",
				 o->cpus, MAX_CPU);
			errno = -ncpu;
			return NULL;
		}
	}
	struct vio_run *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	unsigned n = o->threads;
	if (!n) {
		n = o->num_queues ? o->num_queues : 1;
		if (n > online_cpus())
			n = online_cpus();
		if (n > VIO_MAX_QUEUES)
			n = VIO_MAX_QUEUES;
	}
	r->n = n;
	r->group = o->group ? o->group : 1;
	r->poll = o->poll;
	r->poll_ns =
	    (uint64_t)(o->poll_us ? o->poll_us : DEFAULT_POLL_US) * 1000u;
	pthread_mutex_init(&r->lock, NULL);
	for (unsigned k = 0; k < n; k++) {
		int cpu = ncpu ? (int)cpus[k % (unsigned)ncpu] : -1;
		r->w[k] = rw_new(r->poll, r->poll_ns, cpu);
		if (!r->w[k]) {
			int e = errno;
			if (cpu >= 0 && e == EINVAL)
				snprintf(err, errlen,
					 "cannot run a thread on CPU %d (not "
					 "online, or not allowed)",
					 cpu);
			else
				snprintf(err, errlen,
					 "cannot start a worker thread: %s",
					 strerror(e));
			vio_run_free(r);
			errno = e;
			return NULL;
		}
	}
	return r;
}

void vio_run_free(struct vio_run *r)
{
	if (!r)
		return;
	for (unsigned k = 0; k < r->n; k++)
		rw_free(r->w[k]);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

unsigned vio_run_threads(const struct vio_run *r)
{
	return r->n;
}

/* The worker of a queue (lazy: made, and counted, under the lock). */
static struct rw *worker_get(struct vio_run *r, unsigned k)
{
	if (!r->lazy)
		return r->w[k];
	pthread_mutex_lock(&r->lock);
	if (!r->w[k])
		r->w[k] = rw_new(r->poll, r->poll_ns, -1);
	struct rw *w = r->w[k];
	if (w)
		r->users[k]++;
	pthread_mutex_unlock(&r->lock);
	return w;
}

static void worker_put(struct vio_run *r, unsigned k)
{
	if (!r->lazy)
		return;
	struct rw *w = NULL;
	pthread_mutex_lock(&r->lock);
	if (!--r->users[k]) {
		w = r->w[k];
		r->w[k] = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	rw_free(w);
}

static struct vio_run_queue *attach(struct vio_run *r, unsigned k, int kick_fd,
				    const struct vio_run_queue_ops *ops,
				    void *arg)
{
	struct rw *w = worker_get(r, k);
	if (!w)
		return NULL;
	struct vio_run_queue *q = rw_attach(w, kick_fd, ops, arg);
	if (!q) {
		int e = errno;
		worker_put(r, k);
		errno = e;
	}
	return q;
}

struct vio_run_queue *vio_run_attach(struct vio_run *r, unsigned index,
				     int kick_fd,
				     const struct vio_run_queue_ops *ops,
				     void *arg)
{
	return attach(r, (index / r->group) % r->n, kick_fd, ops, arg);
}

/* ---- backend queues ---- */

struct bq {
	struct vio_run *r;
	unsigned worker; /* index in r */
	struct vio_backend *b;
	struct vio_device *dev;
	unsigned idx;
	struct vio_run_queue *q;
	/* the worker's */
	struct vio_vq *vq;
	bool stalled;
	uint16_t stalled_at;
	unsigned stall_polls;
	bool last_look; /* bq_arm looked once more at stalled_at */
};
#define STALL_RETRY 64u /* polls of a stalled queue before a kick */

static int bq_start(void *arg, struct vio_loop *loop)
{
	struct bq *q = arg;
	q->vq = vio_device_queue(q->dev, q->idx);
	if (q->vq) /* not polled until the worker says so (bq_arm) */
		vio_vq_set_polled(q->vq, false);
	return vio_device_queue_start(q->dev, q->idx, loop);
}

static bool bq_kick(void *arg)
{
	struct bq *q = arg;
	bool more = vio_backend_queue_kick(q->b, q->idx);
	/* busy-poll: chains left on purpose are not work until the device
	 * takes one (vio/run.h) */
	if (q->vq && !more) {
		bool st = vio_vq_more_avail(q->vq);
		uint16_t base = vio_vq_get_base(q->vq);
		if (!st || base != q->stalled_at)
			q->last_look = false; /* the device moved on */
		q->stalled = st;
		q->stalled_at = base;
	}
	return more;
}

static bool bq_poll(void *arg)
{
	struct bq *q = arg;
	if (!q->vq || !vio_vq_more_avail(q->vq))
		return false;
	/* chains left on purpose stay no work, but not for ever: under
	 * vio_vq_set_polled a chain the driver adds just after the
	 * device's last look brings no kick, and would look left too */
	if (q->stalled && vio_vq_get_base(q->vq) == q->stalled_at &&
	    ++q->stall_polls % STALL_RETRY)
		return false;
	q->stalled = false;
	return true;
}

static bool bq_arm(void *arg, bool sleeping)
{
	struct bq *q = arg;
	if (!q->vq)
		return false;
	if (!sleeping)
		return vio_vq_set_polled(q->vq, true);
	if (vio_vq_set_polled(q->vq, false))
		return false; /* nothing available: the driver will kick */
	if (!q->stalled || vio_vq_get_base(q->vq) != q->stalled_at)
		return true; /* work */
	/* Chains left on purpose.  Under polling a chain the driver added
	 * after the device's last look brought no kick (a generator port
	 * that ran dry waits for exactly that look), and sleeping on it
	 * would wait for a kick the driver will never send: one more look
	 * at this position first, then sleep. */
	if (q->last_look)
		return false;
	q->last_look = true;
	q->stalled = false;
	return true;
}

static void bq_stop(void *arg)
{
	struct bq *q = arg;
	vio_device_queue_stop(q->dev, q->idx);
	q->vq = NULL;
}

static const struct vio_run_queue_ops bq_ops = {
    .start = bq_start,
    .kick = bq_kick,
    .poll = bq_poll,
    .arm = bq_arm,
    .stop = bq_stop,
};

static void *hook_start(void *opaque, struct vio_backend *b, unsigned idx,
			int kick_fd)
{
	struct vio_run *r = opaque;
	struct bq *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	*q = (struct bq){.r = r,
			 .worker = (idx / r->group) % r->n,
			 .b = b,
			 .dev = vio_backend_device(b),
			 .idx = idx};
	q->q = attach(r, q->worker, kick_fd, &bq_ops, q);
	if (!q->q) {
		if (errno != ENOMEM)
			vio_log_warn("worker: queue %u: cannot start: %s", idx,
				     strerror(errno));
		free(q);
		return NULL;
	}
	return q;
}

static void hook_stop(void *opaque, void *handle)
{
	struct bq *q = handle;
	(void)opaque;
	if (!q)
		return;
	vio_run_detach(q->q);
	worker_put(q->r, q->worker);
	free(q);
}

static int hook_kick_fd(void *opaque, void *handle, int kick_fd)
{
	struct bq *q = handle;
	(void)opaque;
	return vio_run_set_kick_fd(q->q, kick_fd);
}

void vio_run_hooks(struct vio_run *r, struct vio_backend_opts *cfg)
{
	cfg->queue_start = hook_start;
	cfg->queue_stop = hook_stop;
	cfg->queue_kick_fd = hook_kick_fd;
	cfg->opaque = r;
}

/* ---- the process's default groups ---- */

static struct vio_run default_run[2] = {
    {.n = VIO_MAX_QUEUES,
     .group = 1,
     .lazy = true,
     .lock = PTHREAD_MUTEX_INITIALIZER,
     .poll_ns = DEFAULT_POLL_US * 1000u},
    {.n = VIO_MAX_QUEUES,
     .group = 1,
     .lazy = true,
     .poll = true,
     .lock = PTHREAD_MUTEX_INITIALIZER,
     .poll_ns = DEFAULT_POLL_US * 1000u},
};

void vio_run_backend_hooks(struct vio_backend_opts *cfg, bool busy_poll)
{
	vio_run_hooks(&default_run[busy_poll], cfg);
}

/* ---- one queue, one thread ---- */

struct vio_run_worker {
	struct rw *w;
	struct vio_run_queue *q;
	bool (*fn)(void *);
	void *arg;
};

static bool one_kick(void *arg)
{
	struct vio_run_worker *o = arg;
	return o->fn(o->arg);
}

static const struct vio_run_queue_ops one_ops = {.kick = one_kick};

struct vio_run_worker *vio_run_worker_start(int kick_fd, bool (*fn)(void *),
					    void *arg, bool busy_poll)
{
	struct vio_run_worker *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->fn = fn;
	o->arg = arg;
	o->w = rw_new(busy_poll, DEFAULT_POLL_US * 1000u, -1);
	if (!o->w) {
		free(o);
		return NULL;
	}
	o->q = rw_attach(o->w, kick_fd, &one_ops, o);
	if (!o->q) {
		int e = errno;
		rw_free(o->w);
		free(o);
		errno = e;
		return NULL;
	}
	return o;
}

void vio_run_worker_stop(struct vio_run_worker *o)
{
	if (!o)
		return;
	vio_run_detach(o->q);
	rw_free(o->w);
	free(o);
}
