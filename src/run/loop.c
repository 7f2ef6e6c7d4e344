/* SPDX-License-Identifier: MIT */
/*
 * A worker: one thread, one epoll set, the struct vio_loop of vio/device.h.
 *
 * Sources live in one table (kick fds, device fds, the timerfd, the
 * control eventfd), indexed by slot; epoll carries slot and generation, so
 * an event of a source removed earlier in the same batch is dropped, not
 * delivered to whoever reused the slot.  Tables grow when a source is
 * added (control time), never per event.
 *
 * A turn: the control request (an atomic flag, memory only), the queues
 * that have work (kicked, "more", or, busy-polling, work seen in memory),
 * VIO_LOOP_POLL callbacks when busy-polling, due timers, then the wait:
 * no wait while a queue has more (a zero-timeout check of the other
 * sources), busy-polling a zero-timeout check every POLL_FD_TURNS turns,
 * else epoll_wait until the next event or timer.
 *
 * Requests: the poster takes the worker's lock, waits until no other
 * request is pending, stores its request, sets the flag, writes the
 * eventfd and waits on the condition; the worker serves it between two
 * kicks and acknowledges under the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "run/internal.h"
#include "util/log.h"

/* busy-poll: other fds are checked every POLL_FD_TURNS turns, and an
 * idle spin reads the clock every POLL_CLOCK_TURNS turns (for poll_ns).
 * Both are costs of an idle turn only, but under a paravirtualised kernel
 * a system call is several microseconds and the clock ~30 ns, and what the
 * spinning thread spends the driver's thread may lose (SMT siblings). */
#define POLL_FD_TURNS 256u
#define POLL_CLOCK_TURNS 16u
#if defined(__x86_64__) || defined(__i386__)
#define spin_pause() __builtin_ia32_pause()
#else
#define spin_pause() __asm__ __volatile__("" ::: "memory")
#endif
#define MAX_EVENTS 32

enum { SRC_FREE, SRC_CTL, SRC_TIMER, SRC_KICK, SRC_DEV };

struct src {
	int kind;
	int fd;
	uint32_t gen;
	unsigned flags;
	vio_loop_fn *fn;
	void *arg;
	struct vio_run_queue *q; /* SRC_KICK */
};

struct tmr {
	vio_loop_fn *fn; /* NULL: free slot */
	void *arg;
	uint64_t due; /* CLOCK_MONOTONIC ns */
	uint64_t seq; /* when set */
};

struct vio_run_queue {
	struct rw *w;
	const struct vio_run_queue_ops *ops;
	void *arg;
	int kick_fd;
	/* worker thread only */
	int slot; /* kick source, -1 when parked */
	bool started, kicked, more;
};

enum { REQ_ATTACH, REQ_DETACH, REQ_KICK_FD, REQ_QUIT };

struct req {
	int type;
	struct vio_run_queue *q;
	int fd;
	int result;
	bool done; /* under w->lock */
};

struct rw {
	pthread_t th;
	int ep, ctl_fd, tfd;
	bool poll;
	uint64_t poll_ns;
	struct vio_loop loop;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct req *req; /* pending, under lock */
	int req_flag;	 /* atomic: req set (checked every turn) */

	/* the worker thread's own */
	struct src *src;
	unsigned nsrc;
	struct tmr *tm;
	unsigned ntm;
	uint64_t armed;	    /* the timerfd's deadline, 0: none */
	uint64_t tseq;	    /* timers set so far */
	bool ntimers_maybe; /* a timer may be pending */
	bool progress;	    /* an fd event ran since the last turn */
	struct vio_run_queue **qs;
	unsigned nq, qcap;
	bool quit, spinning;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void drain_fd(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) > 0)
		;
}

/* ---- sources ---- */

static int src_add(struct rw *w, int kind, int fd)
{
	unsigned i;
	for (i = 0; i < w->nsrc && w->src[i].kind != SRC_FREE; i++)
		;
	if (i == w->nsrc) {
		unsigned n = w->nsrc ? w->nsrc * 2 : 8;
		struct src *s = realloc(w->src, n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		memset(s + w->nsrc, 0, (n - w->nsrc) * sizeof(*s));
		w->src = s;
		w->nsrc = n;
	}
	struct src *s = &w->src[i];
	struct epoll_event ev = {
	    .events = EPOLLIN,
	    .data.u64 = (uint64_t)(s->gen + 1) << 32 | i,
	};
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	s->gen++;
	s->kind = kind;
	s->fd = fd;
	s->flags = 0;
	s->fn = NULL;
	s->arg = NULL;
	s->q = NULL;
	return (int)i;
}

static void src_del(struct rw *w, int i)
{
	struct src *s = &w->src[i];
	if (epoll_ctl(w->ep, EPOLL_CTL_DEL, s->fd, NULL) && errno != EBADF &&
	    errno != ENOENT)
		vio_log_warn("worker: epoll_ctl DEL fd %d: %m", s->fd);
	s->kind = SRC_FREE;
	s->gen++; /* events still queued for it are dropped */
}

/* ---- struct vio_loop ---- */

static int l_add_fd(struct vio_loop *l, int fd, unsigned flags, vio_loop_fn *fn,
		    void *arg)
{
	struct rw *w = l->priv;
	if (fd < 0 || !fn || (flags & ~(unsigned)VIO_LOOP_POLL))
		return -EINVAL;
	int i = src_add(w, SRC_DEV, fd);
	if (i < 0)
		return i;
	w->src[i].flags = flags;
	w->src[i].fn = fn;
	w->src[i].arg = arg;
	return 0;
}

static void l_del_fd(struct vio_loop *l, int fd)
{
	struct rw *w = l->priv;
	for (unsigned i = 0; i < w->nsrc; i++)
		if (w->src[i].kind == SRC_DEV && w->src[i].fd == fd)
			src_del(w, (int)i);
}

static int l_set_timer(struct vio_loop *l, uint64_t ns, vio_loop_fn *fn,
		       void *arg)
{
	struct rw *w = l->priv;
	if (!fn)
		return -EINVAL;
	struct tmr *t = NULL, *free_slot = NULL;
	for (unsigned i = 0; i < w->ntm && !t; i++) {
		if (w->tm[i].fn == fn && w->tm[i].arg == arg)
			t = &w->tm[i];
		else if (!w->tm[i].fn && !free_slot)
			free_slot = &w->tm[i];
	}
	if (!t)
		t = free_slot;
	if (!t) {
		unsigned n = w->ntm ? w->ntm * 2 : 8;
		struct tmr *m = realloc(w->tm, n * sizeof(*m));
		if (!m)
			return -ENOMEM;
		memset(m + w->ntm, 0, (n - w->ntm) * sizeof(*m));
		t = &m[w->ntm];
		w->tm = m;
		w->ntm = n;
	}
	t->fn = fn;
	t->arg = arg;
	/* 0 ns: due at once (1, before any clock reading), with no clock
	 * read: a device that reschedules itself on every turn (a traffic
	 * generator) costs no clock_gettime per turn */
	t->due = ns ? now_ns() + ns : 1;
	t->seq = ++w->tseq;
	w->ntimers_maybe = true;
	return 0;
}

static void l_cancel_timer(struct vio_loop *l, vio_loop_fn *fn, void *arg)
{
	struct rw *w = l->priv;
	for (unsigned i = 0; i < w->ntm; i++)
		if (w->tm[i].fn == fn && w->tm[i].arg == arg)
			w->tm[i].fn = NULL;
}

/* Run the timers that were due when the pass began (one set meanwhile,
 * even for 0 ns, waits for the next turn); the earliest pending deadline
 * after (0: none). */
static uint64_t run_timers(struct rw *w)
{
	if (!w->ntimers_maybe)
		return 0;
	uint64_t now = 1, seq = w->tseq, next = 0;
	for (unsigned i = 0; i < w->ntm; i++)
		if (w->tm[i].fn && w->tm[i].due > 1) {
			now = now_ns();
			break;
		}
	for (unsigned i = 0; i < w->ntm; i++) {
		struct tmr *t = &w->tm[i];
		if (!t->fn)
			continue;
		if (t->due <= now && t->seq <= seq) {
			vio_loop_fn *fn = t->fn;
			void *arg = t->arg;
			t->fn = NULL; /* one-shot; fn may set it again */
			fn(arg);      /* may grow the table: t is not kept */
		}
	}
	bool any = false;
	for (unsigned i = 0; i < w->ntm; i++) {
		struct tmr *t = &w->tm[i];
		if (!t->fn)
			continue;
		any = true;
		if (!next || t->due < next)
			next = t->due;
	}
	w->ntimers_maybe = any;
	return next;
}

static void arm_timerfd(struct rw *w, uint64_t due)
{
	if (due == w->armed)
		return;
	struct itimerspec its = {0};
	its.it_value.tv_sec = (time_t)(due / 1000000000u);
	its.it_value.tv_nsec = (long)(due % 1000000000u);
	if (!due) /* disarm */
		its.it_value.tv_nsec = 0;
	if (timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		w->armed = due;
}

/* ---- queues ---- */

static void park(struct rw *w, struct vio_run_queue *q, const char *why)
{
	vio_log_warn("worker: kick fd %s: queue waits for its stop", why);
	if (q->slot >= 0)
		src_del(w, q->slot);
	q->slot = -1;
}

static void kick_event(struct rw *w, struct vio_run_queue *q, uint32_t ev)
{
	if (ev & EPOLLIN) {
		if (w->spinning)
			return; /* busy-poll reads the ring, not the fd: the
				 * fd is drained when the worker sleeps */
		q->kicked = true;
		uint64_t v;
		if (read(q->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN &&
		    errno != EINTR)
			park(w, q, "failed");
		return; /* a hang-up with data shows on the next wait */
	}
	if (ev & (EPOLLERR | EPOLLHUP))
		/* a hung-up fd stays readable-for-epoll forever: stop
		 * watching it rather than spin */
		park(w, q, ev & EPOLLHUP ? "hung up" : "failed");
}

/* Run the queues that have work; true if any has more. */
static bool run_queues(struct rw *w, bool *progress)
{
	bool more = false;
	for (unsigned i = 0; i < w->nq; i++) {
		struct vio_run_queue *q = w->qs[i];
		bool go = q->kicked || q->more;
		if (!go && w->spinning)
			go = !q->ops->poll || q->ops->poll(q->arg);
		if (!go)
			continue;
		q->kicked = false;
		q->more = q->ops->kick(q->arg);
		*progress = true;
		more |= q->more;
	}
	return more;
}

/* Busy-poll: notifications off (false) or on before sleeping (true);
 * true if a ring has work after all. */
static bool arm_queues(struct rw *w, bool sleeping)
{
	bool work = false;
	for (unsigned i = 0; i < w->nq; i++) {
		struct vio_run_queue *q = w->qs[i];
		if (q->ops->arm && q->ops->arm(q->arg, sleeping))
			work = true;
	}
	return work;
}

/* ---- control ---- */

static int q_add(struct rw *w, struct vio_run_queue *q)
{
	if (w->nq == w->qcap) {
		unsigned n = w->qcap ? w->qcap * 2 : 4;
		struct vio_run_queue **a = realloc(w->qs, n * sizeof(*a));
		if (!a)
			return -ENOMEM;
		w->qs = a;
		w->qcap = n;
	}
	w->qs[w->nq++] = q;
	return 0;
}

static void q_remove(struct rw *w, struct vio_run_queue *q)
{
	for (unsigned i = 0; i < w->nq; i++)
		if (w->qs[i] == q) {
			w->qs[i] = w->qs[--w->nq];
			return;
		}
}

static int watch_kick(struct rw *w, struct vio_run_queue *q)
{
	int i = src_add(w, SRC_KICK, q->kick_fd);
	if (i < 0)
		return i;
	w->src[i].q = q;
	q->slot = i;
	return 0;
}

static int do_attach(struct rw *w, struct vio_run_queue *q)
{
	q->slot = -1;
	int r = q_add(w, q);
	if (r)
		return r;
	if (q->kick_fd >= 0 && (r = watch_kick(w, q))) {
		q_remove(w, q);
		return r;
	}
	if (q->ops->start && (r = q->ops->start(q->arg, &w->loop))) {
		if (q->slot >= 0)
			src_del(w, q->slot);
		q_remove(w, q);
		return r;
	}
	q->started = true;
	q->kicked = true; /* whatever waited for this queue */
	q->more = false;
	if (w->spinning && q->ops->arm)
		q->ops->arm(q->arg, false);
	return 0;
}

static void do_detach(struct rw *w, struct vio_run_queue *q)
{
	if (q->started && q->ops->stop)
		q->ops->stop(q->arg);
	q->started = false;
	if (q->slot >= 0)
		src_del(w, q->slot);
	q->slot = -1;
	q_remove(w, q);
}

static int do_kick_fd(struct rw *w, struct vio_run_queue *q, int fd)
{
	if (q->slot >= 0)
		src_del(w, q->slot);
	q->slot = -1;
	q->kick_fd = fd;
	q->kicked = true; /* a kick may have gone to the old fd */
	return fd >= 0 ? watch_kick(w, q) : 0;
}

static void serve_request(struct rw *w)
{
	if (!__atomic_load_n(&w->req_flag, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&w->lock);
	/* seen through the flag: the eventfd (written under the lock)
	 * would wake the next sleep for nothing */
	drain_fd(w->ctl_fd);
	struct req *r = w->req;
	pthread_mutex_unlock(&w->lock);
	if (!r)
		return;
	switch (r->type) {
	case REQ_ATTACH:
		r->result = do_attach(w, r->q);
		break;
	case REQ_DETACH:
		do_detach(w, r->q);
		break;
	case REQ_KICK_FD:
		r->result = do_kick_fd(w, r->q, r->fd);
		break;
	case REQ_QUIT:
		while (w->nq) {
			vio_log_warn("worker: freed with a queue attached");
			do_detach(w, w->qs[0]);
		}
		w->quit = true;
		break;
	}
	pthread_mutex_lock(&w->lock);
	w->req = NULL;
	__atomic_store_n(&w->req_flag, 0, __ATOMIC_RELAXED);
	r->done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int post(struct rw *w, struct req *r)
{
	uint64_t one = 1;
	pthread_mutex_lock(&w->lock);
	while (w->req)
		pthread_cond_wait(&w->cond, &w->lock);
	w->req = r;
	__atomic_store_n(&w->req_flag, 1, __ATOMIC_RELEASE);
	if (write(w->ctl_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vio_log_err("worker: cannot post a request: %m");
	while (!r->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return r->result;
}

/* ---- the loop ---- */

static void dispatch(struct rw *w, const struct epoll_event *ev, int n)
{
	for (int k = 0; k < n; k++) {
		unsigned i = (unsigned)ev[k].data.u64;
		uint32_t gen = (uint32_t)(ev[k].data.u64 >> 32);
		if (i >= w->nsrc || w->src[i].gen != gen)
			continue; /* removed since */
		struct src *s = &w->src[i];
		switch (s->kind) {
		case SRC_CTL:
			drain_fd(s->fd);
			serve_request(w);
			break;
		case SRC_TIMER:
			drain_fd(s->fd);
			w->armed = 0; /* expired */
			break;
		case SRC_KICK:
			kick_event(w, s->q, ev[k].events);
			break;
		case SRC_DEV:
			if (!(w->spinning && (s->flags & VIO_LOOP_POLL))) {
				w->progress = true;
				s->fn(s->arg);
			}
			break;
		}
	}
}

/* Busy-poll: every VIO_LOOP_POLL callback once. */
static void run_poll_fns(struct rw *w)
{
	for (unsigned i = 0; i < w->nsrc; i++) {
		struct src *s = &w->src[i];
		if (s->kind == SRC_DEV && (s->flags & VIO_LOOP_POLL))
			s->fn(s->arg); /* may add sources: s is not kept */
	}
}

static void *worker_main(void *p)
{
	struct rw *w = p;
	struct epoll_event ev[MAX_EVENTS];
	unsigned turn = 0, idle_turns = 0;
	uint64_t idle_since = 0;
	while (!w->quit) {
		bool progress = w->progress;
		w->progress = false;
		serve_request(w);
		if (w->quit)
			break;
		bool more = run_queues(w, &progress);
		if (w->spinning)
			run_poll_fns(w);
		uint64_t next = run_timers(w);
		int timeout = -1;
		if (w->spinning) {
			/* while work comes, no clock: idle time is measured
			 * from the first turn without work */
			uint64_t now = 0;
			if (progress || more) {
				idle_since = 0;
			} else if (!idle_since) {
				idle_since = now = now_ns();
				idle_turns = 0;
			} else if (++idle_turns % POLL_CLOCK_TURNS == 0) {
				now = now_ns();
			} else {
				/* an idle turn: let a sibling hardware thread
				 * (maybe the driver) have the core */
				spin_pause();
			}
			if (!now || now - idle_since < w->poll_ns) {
				if (++turn % POLL_FD_TURNS)
					continue; /* memory only */
				timeout = 0;
			} else if (arm_queues(w, true)) {
				/* work came meanwhile: spin on, quietly */
				arm_queues(w, false);
				idle_since = now;
				continue;
			} else {
				w->spinning = false;
			}
		}
		if (more)
			timeout = 0;
		if (timeout && next) {
			if (next <= now_ns())
				timeout = 0;
			else
				arm_timerfd(w, next);
		}
		int n = epoll_wait(w->ep, ev, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno != EINTR) {
				vio_log_err("worker: epoll_wait: %m");
				break;
			}
			continue;
		}
		dispatch(w, ev, n); /* (a sleeper's kick fds are read) */
		if (w->poll && !w->spinning && timeout) {
			/* woken from sleep: spin again */
			w->spinning = true;
			idle_since = 0;
			arm_queues(w, false);
		}
	}
	return NULL;
}

struct rw *rw_new(bool poll, uint64_t poll_ns, int cpu)
{
	struct rw *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	w->poll = poll;
	w->spinning = poll;
	w->poll_ns = poll_ns;
	w->loop = (struct vio_loop){
	    .add_fd = l_add_fd,
	    .del_fd = l_del_fd,
	    .set_timer = l_set_timer,
	    .cancel_timer = l_cancel_timer,
	    .priv = w,
	};
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	int e = ENOMEM;
	if (w->ep < 0 || w->ctl_fd < 0 || w->tfd < 0) {
		e = errno;
		goto fail;
	}
	int r = src_add(w, SRC_CTL, w->ctl_fd);
	if (r >= 0)
		r = src_add(w, SRC_TIMER, w->tfd);
	if (r < 0) {
		e = -r;
		goto fail;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET((unsigned)cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	e = pthread_create(&w->th, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (e)
		goto fail;
	return w;
fail:
	if (w->ep >= 0)
		close(w->ep);
	if (w->ctl_fd >= 0)
		close(w->ctl_fd);
	if (w->tfd >= 0)
		close(w->tfd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->src);
	free(w);
	errno = e;
	return NULL;
}

void rw_free(struct rw *w)
{
	if (!w)
		return;
	struct req r = {.type = REQ_QUIT};
	post(w, &r);
	pthread_join(w->th, NULL);
	close(w->ep);
	close(w->ctl_fd);
	close(w->tfd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->src);
	free(w->tm);
	free(w->qs);
	free(w);
}

struct vio_run_queue *rw_attach(struct rw *w, int kick_fd,
				const struct vio_run_queue_ops *ops, void *arg)
{
	struct vio_run_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	*q = (struct vio_run_queue){
	    .w = w, .ops = ops, .arg = arg, .kick_fd = kick_fd, .slot = -1};
	struct req r = {.type = REQ_ATTACH, .q = q};
	int e = post(w, &r);
	if (e) {
		free(q);
		errno = -e;
		return NULL;
	}
	return q;
}

int vio_run_set_kick_fd(struct vio_run_queue *q, int kick_fd)
{
	struct req r = {.type = REQ_KICK_FD, .q = q, .fd = kick_fd};
	return post(q->w, &r);
}

void vio_run_detach(struct vio_run_queue *q)
{
	if (!q)
		return;
	struct req r = {.type = REQ_DETACH, .q = q};
	post(q->w, &r);
	free(q);
}
