/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the driver side (VIRTIO 1.2 section 5.2), over any
 * transport: the public request API (vio/blk.h).  Requests are checked
 * here, then queued and driven by the slot engine (driver_queue.c);
 * probe and remove are in driver_probe.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/virtio_blk.h>

#include "driver_internal.h"

static struct blk_q *get_q(const struct vio_blk *b, unsigned qi)
{
	return b && qi < b->nq ? &b->q[qi] : NULL;
}

/* ---- the API ---- */

/* Checks that need no queue state; 0 or the errno of vio_blk_submit. */
static int req_check(const struct vio_blk *b, const struct vio_blk_req *req)
{
	bool range = true;
	switch (req->op) {
	case VIO_BLK_OP_READ:
	case VIO_BLK_OP_WRITE:
		if (req->flags || (req->len && !req->buf))
			return -EINVAL;
		if (req->op == VIO_BLK_OP_WRITE && b->ro)
			return -EROFS;
		break;
	case VIO_BLK_OP_DISCARD:
	case VIO_BLK_OP_WRITE_ZEROES: {
		bool wz = req->op == VIO_BLK_OP_WRITE_ZEROES;
		if (req->flags & ~(wz ? VIO_BLK_REQ_UNMAP : 0u))
			return -EINVAL;
		if (b->ro)
			return -EROFS;
		if (!(wz ? b->wz : b->discard))
			return -EOPNOTSUPP;
		break;
	}
	case VIO_BLK_OP_FLUSH:
		if (req->flags)
			return -EINVAL;
		range = false;
		break;
	case VIO_BLK_OP_GET_ID:
		if (req->flags || !req->buf || !req->len)
			return -EINVAL;
		range = false;
		break;
	default:
		return -EINVAL;
	}
	if (!range)
		return 0;
	if (req->offset % SECTOR || req->len % SECTOR)
		return -EINVAL;
	/* the capacity may grow under us (blk_config_changed) */
	uint64_t cap = __atomic_load_n(&b->cap_bytes, __ATOMIC_ACQUIRE);
	if (req->offset > cap || (uint64_t)req->len > cap - req->offset)
		return -ERANGE;
	return 0;
}

int vio_blk_submit(struct vio_blk *b, unsigned qi, struct vio_blk_req *req)
{
	struct blk_q *q = get_q(b, qi);
	if (!q)
		return -ENXIO; /* no such queue */
	if (!req)
		return -EINVAL;
	int r = req_check(b, req);
	if (r < 0)
		return r;
	if (q->dead)
		return -EIO;

	req->result = 0;
	req->priv_next = NULL;
	req->priv_issued = 0;
	req->priv_pieces = 0;
	req->priv_err = 0;
	req->priv_sent = false;
	req->priv_copy =
	    (req->op == VIO_BLK_OP_READ || req->op == VIO_BLK_OP_WRITE) &&
	    req->len &&
	    vio_mem_daddr(b->mem, req->buf, req->len) == VIO_BAD_ADDR;
	q->pending++;

	bool nothing = false;
	switch (req->op) {
	case VIO_BLK_OP_FLUSH:
		/* 5.2.5.1: without FLUSH the device is writethrough */
		nothing = !b->flush;
		break;
	case VIO_BLK_OP_GET_ID:
		break;
	default:
		nothing = req->len == 0;
		break;
	}
	if (nothing) {
		req->priv_sent = true;
		blkq_finish(q, req);
		return 0;
	}
	blkq_list_push(&q->pend_head, &q->pend_tail, req);
	if (!q->in_poll)
		blkq_issue(q);
	return 0;
}

int vio_blk_poll(struct vio_blk *b, unsigned qi, struct vio_blk_req **done,
		 unsigned max, int timeout_ms)
{
	struct blk_q *q = get_q(b, qi);
	if (!q)
		return -ENXIO; /* no such queue */
	if (max && !done)
		return -EINVAL;
	if (q->in_poll)
		return -EDEADLK;
	q->in_poll = true;

	uint64_t deadline = 0;
	if (timeout_ms > 0)
		deadline = vio_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int n;
	for (;;) {
		blkq_reap(q);
		blkq_issue(q); /* into the slots just freed */
		n = blkq_deliver(q, done, max);
		/* nothing on the ring after issue: nothing is pending either
		 * (a lone piece always fits an empty ring) */
		if (n || timeout_ms == 0 || !q->busy)
			break;
		int ms = -1;
		if (timeout_ms > 0) {
			uint64_t now = vio_now_ns();
			if (now >= deadline)
				break;
			ms = (int)((deadline - now + 999999u) / 1000000u);
		}
		blkq_wait(q, ms);
	}
	blkq_issue(q); /* what the callbacks submitted */
	q->in_poll = false;
	return n == 0 && q->dead ? -EIO : n;
}

unsigned vio_blk_pending(const struct vio_blk *b, unsigned qi)
{
	const struct blk_q *q = get_q(b, qi);
	return q ? q->pending : 0;
}

/* ---- synchronous calls: one request, waited for ---- */

static void sync_done(struct vio_blk_req *req, int result)
{
	(void)result;
	*(bool *)req->user = true;
}

static int sync_run(struct vio_blk *b, unsigned qi, struct vio_blk_req *req)
{
	struct blk_q *q = get_q(b, qi);
	if (!q)
		return -ENXIO; /* no such queue */
	if (q->in_poll)
		return -EDEADLK; /* a callback of this queue */
	bool finished = false;
	req->done = sync_done;
	req->user = &finished;
	int r = vio_blk_submit(b, qi, req);
	if (r < 0)
		return r;
	while (!finished) {
		r = vio_blk_poll(b, qi, NULL, 0, -1);
		/* cannot happen while req is queued; never spin */
		if (r <= 0 && !finished && !blkq_busy(q) && !q->fin_head)
			return r < 0 ? r : -EIO;
	}
	return req->result;
}

int vio_blk_read(struct vio_blk *b, unsigned q, uint64_t offset, void *buf,
		 size_t len)
{
	struct vio_blk_req r = {
	    .op = VIO_BLK_OP_READ, .offset = offset, .buf = buf, .len = len};
	return sync_run(b, q, &r);
}

int vio_blk_write(struct vio_blk *b, unsigned q, uint64_t offset,
		  const void *buf, size_t len)
{
	struct vio_blk_req r = {.op = VIO_BLK_OP_WRITE,
				.offset = offset,
				.buf = (void *)(uintptr_t)buf,
				.len = len};
	return sync_run(b, q, &r);
}

int vio_blk_flush(struct vio_blk *b, unsigned q)
{
	struct vio_blk_req r = {.op = VIO_BLK_OP_FLUSH};
	return sync_run(b, q, &r);
}

int vio_blk_discard(struct vio_blk *b, unsigned q, uint64_t offset,
		    uint64_t len)
{
	if (len > SIZE_MAX)
		return -ERANGE;
	struct vio_blk_req r = {
	    .op = VIO_BLK_OP_DISCARD, .offset = offset, .len = (size_t)len};
	return sync_run(b, q, &r);
}

int vio_blk_write_zeroes(struct vio_blk *b, unsigned q, uint64_t offset,
			 uint64_t len, bool unmap)
{
	if (len > SIZE_MAX)
		return -ERANGE;
	struct vio_blk_req r = {.op = VIO_BLK_OP_WRITE_ZEROES,
				.flags = unmap ? VIO_BLK_REQ_UNMAP : 0,
				.offset = offset,
				.len = (size_t)len};
	return sync_run(b, q, &r);
}

int vio_blk_get_id(struct vio_blk *b, unsigned q, char id[21])
{
	if (!id)
		return -EINVAL;
	memset(id, 0, VIRTIO_BLK_ID_BYTES + 1);
	struct vio_blk_req r = {
	    .op = VIO_BLK_OP_GET_ID, .buf = id, .len = VIRTIO_BLK_ID_BYTES};
	int ret = sync_run(b, q, &r);
	id[VIRTIO_BLK_ID_BYTES] = '\0';
	return ret;
}

/* ---- what probe found ---- */

uint64_t vio_blk_capacity_bytes(const struct vio_blk *b)
{
	return __atomic_load_n(&b->cap_bytes, __ATOMIC_ACQUIRE);
}

unsigned vio_blk_num_queues(const struct vio_blk *b)
{
	return b->nq;
}

uint32_t vio_blk_block_size(const struct vio_blk *b)
{
	return b->info.blk_size;
}

bool vio_blk_readonly(const struct vio_blk *b)
{
	return b->ro;
}

bool vio_blk_has_feature(const struct vio_blk *b, unsigned bit)
{
	return vio_drvdev_has_feature(b->vdev, bit);
}

void vio_blk_get_info(const struct vio_blk *b, struct vio_blk_info *out)
{
	*out = b->info;
	/* the one field a config change updates (blk_config_changed) */
	out->capacity =
	    __atomic_load_n(&b->cap_bytes, __ATOMIC_ACQUIRE) / SECTOR;
}
