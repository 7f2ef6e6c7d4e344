/* SPDX-License-Identifier: MIT */
/*
 * The Ceph RBD storage backend (blk_backend.h), through librbd: an image
 * named rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:KEY=VALUE]... (QEMU's syntax;
 * '\' escapes a ':' or '@' in a value).  Keys: conf (the Ceph config file;
 * default: librbd's search path, /etc/ceph/ceph.conf), id (the client id,
 * "admin" for client.admin), keyring (a keyring file); any other key is a
 * Ceph option (rados_conf_set: rbd_cache=false, mon_host=..., ...), set
 * after the config file is read.  A snapshot is served read-only.
 *
 * One image handle serves every queue (librbd is thread-safe, and an
 * image with the exclusive-lock feature wants one owner per process).
 *
 * I/O: one asynchronous librbd call per request (rbd_aio_read / writev /
 * flush / discard / write_zeroes).  Nothing of the driver's memory is
 * left to librbd after a request ended, even one that timed out (its
 * memory may be unmapped by then): librbd copies what a write sends
 * before rbd_aio_writev returns (rbd_disable_zero_copy_writes, forced
 * on), and a read lands in a buffer of the slot's (kept for the next
 * read up to RBD_BOUNCE_KEEP bytes), copied to the driver's iovecs by
 * the worker when it ends the request.  A writethrough request on an
 * image with librbd's cache on is followed by rbd_aio_flush (without the
 * cache an acknowledged write is durable).  The cache is off unless the
 * image string turns it on (rbd_cache=true): a writeback cache holds
 * acknowledged writes in this process only, which a vio restart loses
 * (tests/integration/test_blk_net_reconnect.sh).
 *
 * Completions: librbd calls back on its own threads; the callback only
 * takes the return value, pushes the request's context on the queue's
 * list (a mutex) and writes the queue's eventfd when the list was empty.
 * The eventfd is in the queue's loop: the worker drains the list and ends
 * the requests (reap).  No thread per request, nothing blocks the worker.
 *
 * Time bounds: librados fails an operation to an OSD or the monitor that
 * does not answer within rados_osd_op_timeout / rados_mon_op_timeout
 * (set to half of bd->io_timeout_ns unless the image string sets them),
 * and librbd then completes the request with that error (IOERR to the
 * driver).  Should librbd still not answer within io_timeout_ns (a timer
 * while requests are in flight), the request is ended with -ETIMEDOUT
 * anyway; its context stays held until librbd lets it go (a new request
 * on that slot meanwhile fails at once), and librbd's late answer is
 * dropped.  Opening is bounded by client_mount_timeout (io_timeout).
 *
 * Resize: rbd_update_watch tells of image changes on a librbd thread; a
 * thread of the device's (one per image, not per request) then calls
 * vio_blk_device_resize, which reads rbd_get_size and publishes a larger
 * capacity through the config-change path.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "blk/blk_internal.h"
#include "blk/io_rbd.h"
#include <vio/device.h>

/* reap(wait) sleeps at most this long per call */
#define RBD_WAIT_MS 100
/* a slot keeps its read buffer for the next read up to this size */
#define RBD_BOUNCE_KEEP (128u << 10)
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

struct rbd_q;
/* One slot's librbd call: the completion callback's argument. */
struct rbd_ctx {
	struct rbd_q *rq;
	struct rbd_ctx *next; /* the completion list */
	ssize_t ret;	      /* librbd's answer */
	uint16_t slot;
	bool held;     /* librbd has it (worker's view): not reusable */
	bool zombie;   /* its request already ended (timeout) */
	bool flushing; /* the writethrough flush after the data runs */
	/* a read's landing buffer: librbd's until it answers */
	void *bounce;
	size_t bounce_len;
};

struct rbd_q {
	struct blk_queue *q;
	struct rbd_img *img;
	int efd;
	struct vio_loop *loop;
	bool timer_on;
	uint64_t period;     /* the timeout check's period, ns */
	struct rbd_ctx *ctx; /* [nctx] */
	unsigned nctx;	     /* the queue's nreqs (rq may outlive it) */
	/* shared with librbd's threads */
	pthread_mutex_t mu;
	struct rbd_ctx *list; /* completed, newest first */
	unsigned out;	      /* calls librbd has not answered */
	bool orphan;	      /* fini ran: the last answer frees rq */
};

static void rq_free(struct rbd_q *rq)
{
	if (rq->efd >= 0)
		close(rq->efd);
	pthread_mutex_destroy(&rq->mu);
	for (unsigned i = 0; rq->ctx && i < rq->nctx; i++)
		free(rq->ctx[i].bounce);
	free(rq->ctx);
	free(rq);
}

/* ---- completions ---- */

/* librbd's thread: hand the answer to the queue's worker. */
static void aio_done(rbd_completion_t c, void *arg)
{
	struct rbd_ctx *x = arg;
	struct rbd_q *rq = x->rq;
	x->ret = rbd_aio_get_return_value(c);
	rbd_aio_release(c);
	pthread_mutex_lock(&rq->mu);
	rq->out--;
	if (rq->orphan) {
		/* the queue is gone: nobody waits for this answer */
		bool last = rq->out == 0;
		pthread_mutex_unlock(&rq->mu);
		if (last)
			rq_free(rq);
		return;
	}
	bool wake = rq->list == NULL;
	x->next = rq->list;
	rq->list = x;
	pthread_mutex_unlock(&rq->mu);
	if (wake) {
		uint64_t one = 1;
		ssize_t n = write(rq->efd, &one, sizeof(one));
		(void)n; /* a full counter is readable anyway */
	}
}

/* A landing buffer of len bytes for x's read.  0 or -ENOMEM. */
static int bounce_get(struct rbd_ctx *x, uint64_t len)
{
	if (x->bounce && x->bounce_len >= len)
		return 0;
	free(x->bounce);
	x->bounce_len = 0;
	x->bounce = len <= SIZE_MAX ? malloc(len ? len : 1) : NULL;
	if (!x->bounce)
		return -ENOMEM;
	x->bounce_len = len;
	return 0;
}

/* The read's data, from x's buffer to the driver's iovecs. */
static void bounce_out(struct rbd_ctx *x, struct blk_req *req)
{
	const uint8_t *p = x->bounce;
	uint64_t left = req->len;
	for (unsigned i = 0; i < req->iovcnt && left; i++) {
		size_t n = req->iov[i].iov_len < left ? req->iov[i].iov_len
						      : (size_t)left;
		memcpy(req->iov[i].iov_base, p, n);
		p += n;
		left -= n;
	}
	if (x->bounce_len > RBD_BOUNCE_KEEP) {
		free(x->bounce);
		x->bounce = NULL;
		x->bounce_len = 0;
	}
}

/* Start req's librbd call (its data, or its flush).  0 or negative
 * errno (nothing started). */
static int issue(struct rbd_q *rq, struct blk_req *req)
{
	struct rbd_ctx *x = &rq->ctx[req - rq->q->reqs];
	rbd_image_t im = rq->img->image;
	rbd_completion_t c;
	int r = rbd_aio_create_completion(x, aio_done, &c);
	if (r < 0)
		return r;
	pthread_mutex_lock(&rq->mu);
	rq->out++;
	pthread_mutex_unlock(&rq->mu);
	x->held = true;
	if (x->flushing || req->op == BLK_OP_FLUSH) {
		r = rbd_aio_flush(im, c);
	} else if (req->op == BLK_OP_READ) {
		r = bounce_get(x, req->len);
		if (r == 0)
			r = rbd_aio_read(im, req->offset, req->len, x->bounce,
					 c);
	} else if (req->op == BLK_OP_WRITE) {
		/* more than librbd takes: legal, never seen in practice */
		r = req->iovcnt > IOV_MAX
			? -EINVAL
			: rbd_aio_writev(im, req->iov, (int)req->iovcnt,
					 req->offset, c);
	} else if (req->op == BLK_OP_DISCARD) {
		r = rbd_aio_discard(im, req->offset, req->len, c);
	} else {
		/* without unmap the range stays allocated */
		r = rbd_aio_write_zeroes(
		    im, req->offset, req->len, c,
		    req->unmap ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION, 0);
	}
	if (r < 0) {
		/* not queued: librbd will not call back */
		rbd_aio_release(c);
		pthread_mutex_lock(&rq->mu);
		rq->out--;
		pthread_mutex_unlock(&rq->mu);
		x->held = false;
	}
	return r;
}

static bool wants_flush(const struct rbd_img *img, const struct blk_req *req)
{
	return req->writethrough && img->cache &&
	       (req->op == BLK_OP_WRITE || req->op == BLK_OP_DISCARD ||
		req->op == BLK_OP_WRITE_ZEROES);
}

/* One answer from librbd, on the worker. */
static void finish(struct rbd_q *rq, struct rbd_ctx *x)
{
	struct blk_queue *q = rq->q;
	x->held = false;
	if (x->zombie) {
		x->zombie = false; /* ended already; the slot is usable */
		return;
	}
	struct blk_req *req = &q->reqs[x->slot];
	int err = 0;
	if (x->ret < 0)
		err = (int)x->ret;
	else if (req->op == BLK_OP_READ && !x->flushing &&
		 (uint64_t)x->ret != req->len)
		err = -EIO; /* short: past the end of a shrunk image */
	else if (req->op == BLK_OP_READ)
		bounce_out(x, req);
	if (err) {
		vio_log_limited(&q->rl,
				"%s q%u: RBD %s: %s at byte %llu (%llu bytes) "
				"failed: %s",
				q->bd->name, q->idx, rq->img->spec,
				x->flushing		    ? "flush"
				: req->op == BLK_OP_READ    ? "read"
				: req->op == BLK_OP_WRITE   ? "write"
				: req->op == BLK_OP_FLUSH   ? "flush"
				: req->op == BLK_OP_DISCARD ? "discard"
							    : "write-zeroes",
				(unsigned long long)req->offset,
				(unsigned long long)req->len, strerror(-err));
	} else if (!x->flushing && wants_flush(rq->img, req)) {
		x->flushing = true;
		err = issue(rq, req);
		if (err == 0)
			return;
	}
	blk_req_end(q, req, err);
}

/* End what librbd answered.  The eventfd is read before (by the caller). */
static void drain(struct rbd_q *rq)
{
	pthread_mutex_lock(&rq->mu);
	struct rbd_ctx *l = rq->list;
	rq->list = NULL;
	pthread_mutex_unlock(&rq->mu);
	/* oldest first */
	struct rbd_ctx *rev = NULL;
	while (l) {
		struct rbd_ctx *n = l->next;
		l->next = rev;
		rev = l;
		l = n;
	}
	while (rev) {
		struct rbd_ctx *n = rev->next;
		finish(rq, rev);
		rev = n;
	}
}

static void efd_read(struct rbd_q *rq)
{
	uint64_t v;
	ssize_t n = read(rq->efd, &v, sizeof(v));
	(void)n; /* EAGAIN: nothing was signalled */
}

/* Requests older than the timeout end now (librbd did not answer). */
static void expire(struct rbd_q *rq)
{
	struct blk_queue *q = rq->q;
	if (!q->inflight)
		return;
	uint64_t now = vio_now_ns(), limit = q->bd->io_timeout_ns;
	for (unsigned i = 0; i < q->nreqs && q->inflight; i++) {
		struct blk_req *req = &q->reqs[i];
		if (req->state != BLK_SLOT_INFLIGHT || now - req->tick < limit)
			continue;
		vio_log_limited(&q->rl,
				"%s q%u: RBD %s: no answer from librbd within "
				"%llu s: request at byte %llu failed",
				q->bd->name, q->idx, rq->img->spec,
				(unsigned long long)(limit / 1000000000u),
				(unsigned long long)req->offset);
		if (rq->ctx[i].held)
			rq->ctx[i].zombie = true;
		blk_req_end(q, req, -ETIMEDOUT);
	}
}

/* The timeout check, while requests are in flight (with a loop). */
static void tick(void *arg)
{
	struct blk_queue *q = arg;
	struct rbd_q *rq = q->io_priv;
	rq->timer_on = false;
	expire(rq);
	blk_queue_event(q); /* push what failed */
	if (q->inflight && rq->loop &&
	    rq->loop->set_timer(rq->loop, rq->period, tick, q) == 0)
		rq->timer_on = true;
}

static void timer_arm(struct rbd_q *rq)
{
	if (rq->loop && !rq->timer_on && rq->q->inflight &&
	    rq->loop->set_timer(rq->loop, rq->period, tick, rq->q) == 0)
		rq->timer_on = true;
}

/* ---- struct blk_io_ops ---- */

static void rbd_submit(struct blk_queue *q, struct blk_req *req)
{
	struct rbd_q *rq = q->io_priv;
	struct rbd_ctx *x = &rq->ctx[req - q->reqs];
	req->tick = vio_now_ns();
	if (x->held) {
		/* the slot's last request timed out and librbd still has it */
		vio_log_limited(&q->rl,
				"%s q%u: RBD %s: slot %u still held by librbd "
				"(a request that timed out): request failed",
				q->bd->name, q->idx, rq->img->spec,
				(unsigned)(req - q->reqs));
		blk_req_end(q, req, -ETIMEDOUT);
		return;
	}
	x->flushing = false;
	x->zombie = false;
	int r = issue(rq, req);
	if (r < 0) {
		vio_log_limited(&q->rl, "%s q%u: RBD %s: request refused: %s",
				q->bd->name, q->idx, rq->img->spec,
				strerror(-r));
		blk_req_end(q, req, r);
		return;
	}
	timer_arm(rq);
}

static void rbd_commit(struct blk_queue *q)
{
	(void)q; /* librbd starts each call as it is made */
}

static unsigned rbd_reap(struct blk_queue *q, bool wait)
{
	struct rbd_q *rq = q->io_priv;
	if (wait && q->inflight) {
		uint64_t left = q->bd->io_timeout_ns;
		int ms = RBD_WAIT_MS;
		if (left / 1000000u < (uint64_t)ms)
			ms = (int)(left / 1000000u) + 1;
		struct pollfd p = {.fd = rq->efd, .events = POLLIN};
		if (poll(&p, 1, ms) > 0)
			efd_read(rq);
	}
	drain(rq);
	if (wait)
		expire(rq);
	return q->inflight;
}

/* The loop's callback: librbd answered. */
static void rbd_event(void *arg)
{
	struct blk_queue *q = arg;
	struct rbd_q *rq = q->io_priv;
	efd_read(rq);
	blk_queue_event(q); /* reap(false): drain, then push */
	timer_arm(rq);
}

static int rbd_attach(struct blk_queue *q, struct vio_loop *loop)
{
	struct rbd_q *rq = q->io_priv;
	int r = loop->add_fd(loop, rq->efd, 0, rbd_event, q);
	if (r < 0)
		return r;
	rq->loop = loop;
	timer_arm(rq);
	return 0;
}

static void rbd_detach(struct blk_queue *q)
{
	struct rbd_q *rq = q->io_priv;
	if (!rq->loop)
		return;
	rq->loop->cancel_timer(rq->loop, tick, q);
	rq->loop->del_fd(rq->loop, rq->efd);
	rq->loop = NULL;
	rq->timer_on = false;
}

static void rbd_fini(struct blk_queue *q)
{
	struct rbd_q *rq = q->io_priv;
	if (!rq)
		return;
	q->io_priv = NULL;
	pthread_mutex_lock(&rq->mu);
	if (rq->out) {
		/* requests that timed out, still in librbd: the last answer
		 * frees rq; the image cannot be closed (rbd_close would
		 * wait for them) */
		rq->orphan = true;
		rq->img->stuck = true;
		vio_log_warn("%s q%u: RBD %s: %u request%s still in librbd "
			     "at shutdown: left to it",
			     q->bd->name, q->idx, rq->img->spec, rq->out,
			     rq->out == 1 ? "" : "s");
		pthread_mutex_unlock(&rq->mu);
		return;
	}
	pthread_mutex_unlock(&rq->mu);
	rq_free(rq);
}

static int rbd_init(struct blk_queue *q, unsigned depth)
{
	struct vio_blk_device *bd = q->bd;
	struct rbd_q *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	(void)depth; /* one context per slot: q->nreqs */
	rq->q = q;
	rq->img = bd->img;
	rq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&rq->mu, NULL);
	rq->ctx = calloc(q->nreqs, sizeof(*rq->ctx));
	if (rq->efd < 0 || !rq->ctx) {
		int r = rq->efd < 0 ? -errno : -ENOMEM;
		rq_free(rq);
		return r;
	}
	rq->nctx = q->nreqs;
	for (unsigned i = 0; i < q->nreqs; i++) {
		rq->ctx[i].rq = rq;
		rq->ctx[i].slot = (uint16_t)i;
	}
	rq->period = bd->io_timeout_ns / 4 < 1000000000u ? bd->io_timeout_ns / 4
							 : 1000000000u;
	if (rq->period < 10000000u)
		rq->period = 10000000u;
	q->io_priv = rq;
	return 0;
}

const struct blk_io_ops blk_rbd_io = {
    .name = "rbd",
    .init = rbd_init,
    .fini = rbd_fini,
    .submit = rbd_submit,
    .commit = rbd_commit,
    .reap = rbd_reap,
    .attach = rbd_attach,
    .detach = rbd_detach,
};
