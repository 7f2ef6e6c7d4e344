/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the device side: one queue's in-flight table and data path.
 *
 * A request's life: pop (the kick, or a completion that found the table
 * full) -> a slot of the in-flight table (indexed by head id, one per ring
 * entry, preallocated with room for the request's iovecs) -> validated
 * (request.c) -> answered at once (a bad request, GET_ID, DISCARD,
 * WRITE_ZEROES) or handed to the I/O backend, which completes what the
 * page cache can serve inline and sends the rest to io_uring -> DONE,
 * queued in done[] in completion order -> pushed with the other DONE
 * slots of this turn (one vio_vq_push_batch, one vio_vq_call) -> FREE.
 *
 * Kick (queue idx, on that queue's thread):
 *
 *   disable notifications;
 *   loop, until a ring's worth of chains (the queue size) was popped:
 *     pop and start chains while the table has a free slot;
 *     hand the queued I/O to the kernel; collect what already finished;
 *     without a loop (queue_start got NULL, or never ran): wait for
 *     every request in flight (the devices stay usable without the
 *     engine: a kick completes what it popped);
 *     push what is DONE;
 *     a full table (only with a loop): stop, notifications stay
 *     disabled; the completion event resumes popping;
 *     an empty ring: busy-poll (cfg.poll) for poll_us, then re-enable
 *     notifications and return unless chains arrived meanwhile.
 *
 * With a loop, io_uring completions arrive through its eventfd
 * (blk_queue_event): push, then pop again if the table was full.  A
 * completion event that reaches the kick's bound continues on the next
 * loop turn (a timer of 0 ns).
 *
 * queue_stop waits for every request in flight (bounded: io_uring is
 * cancelled after a while), pushes them, and removes the fd: the ring
 * position the transport reads afterwards covers every chain popped.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_blk.h>

#include "blk/blk_internal.h"
#include <vio/device.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

/* Slot iovecs beyond seg_max: room for descriptors that cross a memory
 * region boundary (each crossing is one more piece). */
#define SLOT_IOV_EXTRA 8u

/* Single writer (the queue's thread): a relaxed load and store, no
 * locked read-modify-write; readers load relaxed. */
static void stat_add(uint64_t *p, uint64_t v)
{
	if (v)
		__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v,
				 __ATOMIC_RELAXED);
}

/* The test hook's dice: 0..99. */
static unsigned dice(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (unsigned)(*s % 100u);
}

/* n slots leave the table (pushed, or abandoned by a reset). */
static void owed_sub(struct blk_queue *q, unsigned n)
{
	/* release: drain() that reads the new value sees the push */
	__atomic_store_n(&q->owed, q->owed - n, __ATOMIC_RELEASE);
}

/* req is answered: DONE, queued for the next push. */
static void slot_done(struct blk_queue *q, struct blk_req *req)
{
	req->state = BLK_SLOT_DONE;
	q->inflight--;
	q->done[q->ndone++] = (uint16_t)(req - q->reqs);
}

void blk_req_end(struct blk_queue *q, struct blk_req *req, int err)
{
	blk_req_done(q, req, err);
	if (req->heap_vec) {
		free(req->heap_vec);
		req->heap_vec = NULL;
	}
	slot_done(q, req);
}

/* The DONE slots, in the queue's counters: one update per counter. */
static void done_count(struct blk_queue *q)
{
	struct vio_blk_queue_stats c = {.requests = q->ndone};
	for (unsigned i = 0; i < q->ndone; i++) {
		const struct blk_req *req = &q->reqs[q->done[i]];
		bool ok = req->result == VIRTIO_BLK_S_OK;
		if (req->op == BLK_OP_READ) {
			c.reads++;
			c.bytes_read += ok ? req->len : 0;
		} else if (req->op == BLK_OP_WRITE) {
			c.writes++;
			c.bytes_written += ok ? req->len : 0;
		} else if (req->op == BLK_OP_FLUSH) {
			c.flushes++;
		}
		c.errors += !ok;
	}
	struct vio_blk_queue_stats *st = &q->st;
	stat_add(&st->requests, c.requests);
	stat_add(&st->reads, c.reads);
	stat_add(&st->writes, c.writes);
	stat_add(&st->flushes, c.flushes);
	stat_add(&st->bytes_read, c.bytes_read);
	stat_add(&st->bytes_written, c.bytes_written);
	stat_add(&st->errors, c.errors);
}

/* Push every DONE slot (completion order), call, free the slots. */
static void push_done(struct blk_queue *q, struct vio_vq *vq)
{
	unsigned n = q->ndone;
	if (!n)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct blk_req *req = &q->reqs[q->done[i]];
		q->used[i].head = req->head;
		q->used[i].len = req->used_len;
	}
	/* counted before the push: a driver that sees its completion finds
	 * it counted (the push's release orders these stores before it) */
	done_count(q);
	if (vio_vq_push_batch(vq, q->used, n) < 0 && !q->broken) {
		q->broken = true;
		stat_add(&q->st.broken, 1);
	}
	for (unsigned i = 0; i < n; i++)
		q->reqs[q->done[i]].state = BLK_SLOT_FREE;
	q->ndone = 0;
	owed_sub(q, n);
	vio_vq_call(vq);
}

/*
 * The slot for head: its id (low 16 bits) when that slot is free.  A
 * driver may reuse a head id only after it was pushed (split), and
 * packed ids are the driver's choice (any 16-bit value, unique among
 * buffers in flight): an id past the table or already in it (a driver
 * error) takes any free slot, so the table never refuses a chain the
 * ring gave.  The caller checked that one is free.
 */
static struct blk_req *slot_take(struct blk_queue *q, uint32_t head)
{
	unsigned id = head & 0xffffu;
	if (id >= q->nreqs || q->reqs[id].state != BLK_SLOT_FREE) {
		id = q->free_hint;
		while (q->reqs[id].state != BLK_SLOT_FREE)
			id = id + 1 == q->nreqs ? 0 : id + 1;
		q->free_hint = id + 1 == q->nreqs ? 0 : id + 1;
	}
	struct blk_req *req = &q->reqs[id];
	req->state = BLK_SLOT_INFLIGHT;
	q->inflight++;
	__atomic_store_n(&q->owed, q->owed + 1, __ATOMIC_RELAXED);
	return req;
}

/* A validated READ/WRITE/FLUSH: from the slot's own iovecs when they
 * fit, else synchronously from the scratch ones (a chain cut into more
 * pieces than seg_max + SLOT_IOV_EXTRA, by region crossings). */
static void req_submit(struct blk_queue *q, struct blk_req *req)
{
	if (req->iovcnt > q->slot_iov) {
		if (!q->bd->backend) {
			blk_req_end(q, req, blk_sync_finish(q->fd, req));
			return;
		}
		/* a network backend is asynchronous: its own copy (rare) */
		req->heap_vec = malloc(req->iovcnt * sizeof(*req->heap_vec));
		if (!req->heap_vec) {
			blk_req_end(q, req, -ENOMEM);
			return;
		}
		memcpy(req->heap_vec, req->iov,
		       req->iovcnt * sizeof(*req->heap_vec));
		req->iov = req->heap_vec;
		q->io->submit(q, req);
		return;
	}
	if (req->iovcnt) {
		memcpy(req->vec, req->iov, req->iovcnt * sizeof(*req->vec));
		req->iov = req->vec;
	}
	if (q->bd->test_async_pct)
		req->force_async = dice(&q->rs) < q->bd->test_async_pct;
	q->io->submit(q, req);
}

/*
 * Pop and start chains while the table has room, at most max.  Returns
 * the number popped, or -EIO (the queue is broken).
 */
static int pop_some(struct blk_queue *q, struct vio_vq *vq,
		    const struct blk_neg *neg, unsigned max)
{
	unsigned n = 0;
	while (n < max && q->owed < q->nreqs) {
		struct vio_chain c;
		int r = vio_vq_pop(vq, &c, q->iov, q->chain_max);
		if (r == 0)
			break;
		if (r < 0 && r != -E2BIG)
			return -EIO;
		struct blk_req *req = slot_take(q, c.head);
		n++;
		if (r == -E2BIG) {
			/* legal but too many segments: IOERR, queue kept */
			blk_req_too_long(q, req, &c);
			slot_done(q, req);
			continue;
		}
		blk_req_start(q, req, &c, q->scratch_vec, neg);
		if (req->op == BLK_OP_NONE)
			slot_done(q, req); /* answered by request.c */
		else
			req_submit(q, req);
	}
	return (int)n;
}

/* Cache mode and request types, as negotiated (and configured) now. */
static void neg_read(struct vio_blk_device *bd, struct blk_neg *neg)
{
	struct vio_device *dev = bd->dev;
	bool writeback = vio_device_has_feature(dev, VIRTIO_BLK_F_FLUSH);
	if (writeback && vio_device_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE)) {
		uint8_t wce = 1;
		(void)vio_device_config_read(
		    dev, offsetof(struct virtio_blk_config, wce), &wce, 1);
		writeback = wce != 0;
	}
	neg->writethrough = !writeback;
	neg->discard = vio_device_has_feature(dev, VIRTIO_BLK_F_DISCARD);
	neg->write_zeroes =
	    vio_device_has_feature(dev, VIRTIO_BLK_F_WRITE_ZEROES);
}

/* Collect finished I/O (without a loop: all of it) and push. */
static void settle(struct blk_queue *q, struct vio_vq *vq)
{
	if (q->inflight) {
		q->io->commit(q);
		unsigned left = q->io->reap(q, false);
		while (left && !q->loop)
			left = q->io->reap(q, true);
	}
	push_done(q, vq);
}

/*
 * The data path of one queue (a kick, or a completion resuming a full
 * table): bounded by a ring's worth of chains.  true: stopped at the
 * bound with chains waiting (notifications stay disabled).
 */
static bool run(struct blk_queue *q, struct vio_vq *vq)
{
	struct vio_blk_device *bd = q->bd;
	struct blk_neg neg;
	neg_read(bd, &neg);
	/* at most a ring's worth of chains per call (vio/device.h) */
	unsigned budget = vio_vq_size(vq);
	uint64_t poll_end = 0;
	bool more = false;

	q->stalled = false;
	vio_vq_disable_notify(vq);
	for (;;) {
		if (budget == 0) {
			/* bound reached: re-arm only if nothing waits, else
			 * stay disabled and let the caller call again */
			if (!vio_vq_enable_notify(vq)) {
				vio_vq_disable_notify(vq);
				more = true;
			}
			break;
		}
		int n = pop_some(q, vq, &neg, budget);
		settle(q, vq);
		if (n < 0) {
			/* broken: the model asks for a reset */
			if (!q->broken) {
				q->broken = true;
				stat_add(&q->st.broken, 1);
			}
			break;
		}
		budget -= (unsigned)n;
		if (q->owed == q->nreqs) {
			/* full (only with a loop: without one everything
			 * completed in settle): the completion event pops
			 * again; kicks meanwhile would find no room */
			q->stalled = true;
			break;
		}
		if (n > 0) {
			poll_end = 0;
			continue;
		}
		if (bd->poll_ns &&
		    !__atomic_load_n(&bd->draining, __ATOMIC_ACQUIRE)) {
			uint64_t now = vio_now_ns();
			if (!poll_end)
				poll_end = now + bd->poll_ns;
			if (now < poll_end) {
				cpu_relax();
				continue;
			}
		}
		/* 2.7.10: re-arm, then look once more to close the race */
		if (vio_vq_enable_notify(vq))
			break;
		vio_vq_disable_notify(vq);
		poll_end = 0;
	}
	return more;
}

bool blk_queue_kick(struct blk_queue *q, struct vio_vq *vq)
{
	struct vio_blk_device *bd = q->bd;
	__atomic_add_fetch(&bd->active, 1, __ATOMIC_SEQ_CST);
	q->vq = vq;
	bool more = run(q, vq);
	__atomic_sub_fetch(&bd->active, 1, __ATOMIC_SEQ_CST);
	return more;
}

/* A completion event that reached the bound continues on the next turn. */
static void resume(void *arg)
{
	struct blk_queue *q = arg;
	if (!q->vq || !q->loop)
		return;
	__atomic_add_fetch(&q->bd->active, 1, __ATOMIC_SEQ_CST);
	bool more = run(q, q->vq);
	/* no timer (the loop is out of them): finish here, unbounded */
	while (more && q->loop->set_timer(q->loop, 0, resume, q) < 0)
		more = run(q, q->vq);
	__atomic_sub_fetch(&q->bd->active, 1, __ATOMIC_SEQ_CST);
}

void blk_queue_event(struct blk_queue *q)
{
	struct vio_vq *vq = q->vq;
	if (!vq)
		return;
	/* spurious calls (busy-poll turns, a drained fd) find nothing; an
	 * entry with nothing in flight (a late cancel's) is reaped too */
	q->io->reap(q, false);
	push_done(q, vq);
	if (q->stalled && q->owed < q->nreqs && !q->broken)
		resume(q);
}

int blk_queue_start(struct blk_queue *q, struct vio_vq *vq,
		    struct vio_loop *loop)
{
	q->vq = vq;
	q->loop = NULL;
	q->stalled = false;
	q->broken = false;
	if (!loop || !q->io->attach)
		return 0; /* kicks complete what they pop */
	int r = q->io->attach(q, loop);
	if (r < 0) {
		vio_log_warn("%s q%u: no completion events (%s): each kick "
			     "waits for its requests",
			     q->bd->name, q->idx, strerror(-r));
		return 0;
	}
	q->loop = loop;
	return 0;
}

/* Wait for every request in flight (the backend bounds the wait). */
static void wait_all(struct blk_queue *q)
{
	if (!q->inflight)
		return;
	q->io->commit(q);
	unsigned left = q->io->reap(q, false);
	while (left)
		left = q->io->reap(q, true);
}

void blk_queue_stop(struct blk_queue *q, struct vio_vq *vq)
{
	if (q->loop)
		q->loop->cancel_timer(q->loop, resume, q);
	wait_all(q);
	push_done(q, vq);
	if (q->loop && q->io->detach)
		q->io->detach(q);
	q->loop = NULL;
	q->vq = NULL;
	q->stalled = false;
}

void blk_queue_abandon(struct blk_queue *q)
{
	if (!q->owed)
		return;
	/* a queue freed without queue_stop: its memory is gone, nothing can
	 * be pushed; the I/O must still end before the slots are reused */
	vio_log_warn("%s q%u: %u requests dropped (queue freed unstopped)",
		     q->bd->name, q->idx, q->owed);
	wait_all(q);
	for (unsigned i = 0; i < q->nreqs; i++)
		q->reqs[i].state = BLK_SLOT_FREE;
	q->ndone = 0;
	owed_sub(q, q->owed);
	if (q->loop && q->io->detach)
		q->io->detach(q);
	q->loop = NULL;
	q->vq = NULL;
	q->stalled = false;
}

int blk_queue_init(struct vio_blk_device *bd, struct blk_queue *q, unsigned idx,
		   uint16_t qsize)
{
	q->bd = bd;
	q->idx = idx;
	q->fd = bd->fd;
	q->nreqs = qsize;
	q->rs = 0x9e3779b97f4a7c15ull ^ idx;
	/* segments per chain: its descriptors (at most qsize, 2.7.5.3.1)
	 * plus room for the region boundaries they cross; seg_max and
	 * size_max are checked per descriptor, whatever the pieces */
	q->chain_max = vio_vq_iov_max(qsize);
	q->slot_iov = bd->seg_max + SLOT_IOV_EXTRA;
	q->reqs = calloc(q->nreqs, sizeof(*q->reqs));
	q->done = calloc(q->nreqs, sizeof(*q->done));
	q->used = calloc(q->nreqs, sizeof(*q->used));
	q->vecs = calloc((size_t)q->nreqs * q->slot_iov, sizeof(*q->vecs));
	q->iov = calloc(q->chain_max, sizeof(*q->iov));
	q->scratch_vec = calloc(q->chain_max, sizeof(*q->scratch_vec));
	q->dwz =
	    calloc(bd->dwz_seg, sizeof(struct virtio_blk_discard_write_zeroes));
	if (!q->reqs || !q->done || !q->used || !q->vecs || !q->iov ||
	    !q->scratch_vec || !q->dwz)
		return -ENOMEM;
	for (unsigned i = 0; i < q->nreqs; i++)
		q->reqs[i].vec = q->vecs + (size_t)i * q->slot_iov;
	return 0;
}

void blk_queue_fini(struct blk_queue *q)
{
	if (q->io) {
		blk_queue_abandon(q);
		if (q->io->fini)
			q->io->fini(q);
	}
	q->io = NULL;
	free(q->reqs);
	free(q->done);
	free(q->used);
	free(q->vecs);
	free(q->iov);
	free(q->scratch_vec);
	free(q->dwz);
}
