/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the driver side: the slot engine of one queue (see
 * driver_internal.h for the state).  A caller's request is sent as one
 * or more pieces, one per slot:
 *
 *   submit:   (driver.c) check, then append to the queue's pending list
 *             (intrusive, through the request's private fields: no
 *             allocation);
 *   issue:    while a slot is free, cut the next piece off the pending
 *             head: data bytes up to the device's limits (seg_max
 *             segments of at most size_max bytes, 5.2.4) or the bounce
 *             buffer; add the chain, kick once for the batch;
 *   reap:     each used slot: the used length and the status byte, read
 *             once (5.2.6); copy a READ's bounce buffer out; a request
 *             whose last piece is back goes to the finished list, with
 *             the first error;
 *   deliver:  finished requests: callbacks run, or they go into poll's
 *             array.
 *
 * Chains (5.2.6): header (readable), data (readable for OUT, writable for
 * IN), status (writable, last).  Tokens are slot pointers; the ring
 * returns only tokens it was given (its shadow state), and they are
 * checked again against the slot table before use.  The device is
 * trusted with nothing else: a status other than OK, IOERR and UNSUPP is
 * an error, a used length short of what an OK answer must have written
 * fails the request, a broken ring or a device needing reset fails the
 * queue.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_blk.h>

#include "driver_internal.h"

/* ---- lists (intrusive, through priv_next) ---- */

void blkq_list_push(struct vio_blk_req **head, struct vio_blk_req **tail,
		    struct vio_blk_req *req)
{
	req->priv_next = NULL;
	if (*tail)
		(*tail)->priv_next = req;
	else
		*head = req;
	*tail = req;
}

/* Unlink req (normally the head: only the head is ever partly sent). */
static void list_unlink(struct vio_blk_req **head, struct vio_blk_req **tail,
			struct vio_blk_req *req)
{
	struct vio_blk_req *prev = NULL, *r = *head;
	while (r && r != req) {
		prev = r;
		r = r->priv_next;
	}
	if (!r)
		return;
	if (prev)
		prev->priv_next = r->priv_next;
	else
		*head = r->priv_next;
	if (*tail == r)
		*tail = prev;
	r->priv_next = NULL;
}

/* req is done (every piece back, or never sent): to the finished list. */
void blkq_finish(struct blk_q *q, struct vio_blk_req *req)
{
	req->result = req->priv_err;
	blkq_list_push(&q->fin_head, &q->fin_tail, req);
}

/* ---- the queue's engine ---- */

static void slot_put(struct blk_q *q, struct blk_slot *s)
{
	s->req = NULL;
	q->busy--;
	q->free_ids[q->nfree++] = (unsigned)(s - q->slots);
}

/*
 * The queue is broken: every request on it fails (-EIO), for good.  The
 * slots are not reused: the device may still write to them until it is
 * reset.
 */
void blkq_fail_all(struct blk_q *q, const char *why)
{
	if (!q->dead)
		vio_log_limited(&q->rl,
				"blk driver q%u: %s: failing every "
				"request",
				q->idx, why);
	q->dead = true;
	struct vio_blk_req *r = q->pend_head;
	q->pend_head = q->pend_tail = NULL;
	while (r) {
		struct vio_blk_req *next = r->priv_next;
		if (!r->priv_err)
			r->priv_err = -EIO;
		r->priv_sent = true;
		if (r->priv_pieces == 0)
			blkq_finish(q, r);
		r = next;
	}
	for (unsigned i = 0; i < q->nslots; i++) {
		struct blk_slot *s = &q->slots[i];
		struct vio_blk_req *req = s->req;
		if (!req)
			continue;
		s->req = NULL;
		q->busy--;
		if (!req->priv_err)
			req->priv_err = -EIO;
		if (--req->priv_pieces == 0 && req->priv_sent)
			blkq_finish(q, req);
	}
	q->nfree = 0;
}

/* 5.2.6: the status byte, read once. */
static int status_errno(struct blk_q *q, uint8_t st)
{
	switch (st) {
	case VIRTIO_BLK_S_OK:
		return 0;
	case VIRTIO_BLK_S_IOERR:
		return -EIO;
	case VIRTIO_BLK_S_UNSUPP:
		return -EOPNOTSUPP;
	default:
		vio_log_limited(&q->rl,
				"blk driver q%u: device returned status %u",
				q->idx, st);
		return -EIO;
	}
}

static const char *op_name(int op)
{
	switch (op) {
	case VIO_BLK_OP_READ:
		return "READ";
	case VIO_BLK_OP_WRITE:
		return "WRITE";
	case VIO_BLK_OP_FLUSH:
		return "FLUSH";
	case VIO_BLK_OP_DISCARD:
		return "DISCARD";
	case VIO_BLK_OP_WRITE_ZEROES:
		return "WRITE_ZEROES";
	default:
		return "GET_ID";
	}
}

/*
 * The used length is what the device says it wrote (2.7.8, 2.8.21.4),
 * the status byte included.  res is what the status byte says.  An
 * answer that does not cover the status byte (len 0) did not write it;
 * a READ answered OK must cover its data and the status byte: anything
 * less would hand the caller bytes the device never wrote (a bounce
 * buffer holds an earlier request's data).  0 or -EIO (logged).  The
 * ring already refused a length beyond the chain's writable bytes.
 */
static int used_len_check(struct blk_q *q, const struct blk_slot *s,
			  uint32_t len, int res)
{
	const struct vio_blk_req *req = s->req;
	if (len == 0) {
		vio_log_limited(&q->rl,
				"blk driver q%u: device returned 0 bytes for "
				"a %s (no status byte): request failed",
				q->idx, op_name(req->op));
		return -EIO;
	}
	if (res == 0 && req->op == VIO_BLK_OP_READ && len - 1u < s->len) {
		vio_log_limited(&q->rl,
				"blk driver q%u: device returned %u bytes for "
				"a READ of %zu (data and status byte): "
				"request failed",
				q->idx, len, s->len + 1);
		return -EIO;
	}
	return 0;
}

/* One piece came back, len bytes written (the used length). */
static void q_complete(struct blk_q *q, struct blk_slot *s, uint32_t len)
{
	struct vio_blk_req *req = s->req;
	uint8_t st = *(volatile uint8_t *)&s->shm->status;
	int res = status_errno(q, st);
	int lres = used_len_check(q, s, len, res);
	if (lres)
		res = lres;

	if (res == 0) {
		if (req->op == VIO_BLK_OP_READ && req->priv_copy) {
			memcpy((uint8_t *)req->buf + s->off, s->bounce, s->len);
		} else if (req->op == VIO_BLK_OP_GET_ID) {
			/* the id bytes the device wrote (len less the status
			 * byte), zeroes after them */
			size_t n = req->len < VIRTIO_BLK_ID_BYTES
				       ? req->len
				       : VIRTIO_BLK_ID_BYTES;
			size_t w = len - 1u < n ? len - 1u : n;
			memcpy(req->buf, s->shm->id, w);
			memset((uint8_t *)req->buf + w, 0, n - w);
		}
	}
	slot_put(q, s);
	req->priv_pieces--;
	if (res && !req->priv_err) {
		req->priv_err = res;
		if (!req->priv_sent) { /* send no more of it */
			list_unlink(&q->pend_head, &q->pend_tail, req);
			req->priv_sent = true;
		}
	}
	if (req->priv_sent && req->priv_pieces == 0)
		blkq_finish(q, req);
}

/* A token from the ring: one of our busy slots, or the queue is broken. */
static struct blk_slot *token_slot(struct blk_q *q, void *tok)
{
	struct blk_slot *s = tok;
	uintptr_t a = (uintptr_t)tok, base = (uintptr_t)q->slots;
	if (a < base || a - base >= (uintptr_t)q->nslots * sizeof(*s) ||
	    (a - base) % sizeof(*s) || !s->req) {
		vio_vq_set_broken(q->vq, "used token %p is not a busy slot",
				  tok);
		return NULL;
	}
	return s;
}

void blkq_reap(struct blk_q *q)
{
	void *tok;
	uint32_t len;
	if (q->dead)
		return;
	while ((tok = vio_vq_get(q->vq, &len))) {
		struct blk_slot *s = token_slot(q, tok);
		if (!s)
			break;
		q_complete(q, s, len);
	}
	if (vio_vq_broken(q->vq))
		blkq_fail_all(q, vio_vq_error(q->vq));
}

/* Data bytes of the next piece of req. */
static size_t piece_len(const struct vio_blk *b, const struct vio_blk_req *req)
{
	size_t left = req->len - req->priv_issued, max;
	switch (req->op) {
	case VIO_BLK_OP_READ:
	case VIO_BLK_OP_WRITE:
		max = req->priv_copy ? b->max_copy : b->max_zc;
		break;
	case VIO_BLK_OP_DISCARD:
		max = (size_t)b->max_discard_bytes;
		break;
	case VIO_BLK_OP_WRITE_ZEROES:
		max = (size_t)b->max_wz_bytes;
		break;
	default:
		return 0;
	}
	return left < max ? left : max;
}

/* Cut [p, p + len) into segments of at most seg_bytes at sg. */
static unsigned add_segs(const struct vio_blk *b, struct vio_sg *sg, uint8_t *p,
			 size_t len)
{
	unsigned n = 0;
	while (len) {
		uint32_t l = len < b->seg_bytes ? (uint32_t)len : b->seg_bytes;
		sg[n].buf = p;
		sg[n].len = l;
		n++;
		p += l;
		len -= l;
	}
	return n;
}

/*
 * Build the next piece of req in slot s and add it to the ring.  0,
 * -ENOSPC (no room: try again when pieces come back), or another
 * vio_vq_add error.
 */
static int piece_add(struct blk_q *q, struct vio_blk_req *req,
		     struct blk_slot *s)
{
	const struct vio_blk *b = q->b;
	struct blk_shm *m = s->shm;
	struct vio_sg *sg = q->sg;
	size_t off = req->priv_issued;
	size_t len = piece_len(b, req); /* 0 for FLUSH, GET_ID */
	unsigned out = 1, in = 0;
	uint32_t type;
	uint64_t sector = (req->offset + off) / SECTOR;

	sg[0].buf = &m->hdr;
	sg[0].len = sizeof(m->hdr);
	switch (req->op) {
	case VIO_BLK_OP_READ: {
		uint8_t *p =
		    req->priv_copy ? s->bounce : (uint8_t *)req->buf + off;
		type = VIRTIO_BLK_T_IN;
		in = add_segs(b, sg + 1, p, len);
		break;
	}
	case VIO_BLK_OP_WRITE: {
		uint8_t *p = (uint8_t *)req->buf + off;
		if (req->priv_copy) {
			memcpy(s->bounce, p, len);
			p = s->bounce;
		}
		type = VIRTIO_BLK_T_OUT;
		out += add_segs(b, sg + 1, p, len);
		break;
	}
	case VIO_BLK_OP_FLUSH:
		type = VIRTIO_BLK_T_FLUSH;
		sector = 0;
		break;
	case VIO_BLK_OP_GET_ID:
		type = VIRTIO_BLK_T_GET_ID;
		sector = 0;
		memset(m->id, 0, sizeof(m->id));
		sg[1].buf = m->id;
		sg[1].len = sizeof(m->id);
		in = 1;
		break;
	default: { /* DISCARD, WRITE_ZEROES: one range per request */
		bool wz = req->op == VIO_BLK_OP_WRITE_ZEROES;
		type = wz ? VIRTIO_BLK_T_WRITE_ZEROES : VIRTIO_BLK_T_DISCARD;
		m->dwz.sector = htole64(sector);
		m->dwz.num_sectors = htole32((uint32_t)(len / SECTOR));
		m->dwz.flags = htole32(wz && (req->flags & VIO_BLK_REQ_UNMAP)
					   ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
					   : 0);
		/* 5.2.6: the header's sector is unused for these */
		sector = 0;
		sg[1].buf = &m->dwz;
		sg[1].len = sizeof(m->dwz);
		out = 2;
		break;
	}
	}
	m->hdr.type = htole32(type);
	m->hdr.ioprio = 0;
	m->hdr.sector = htole64(sector);
	m->status = 0xff; /* not a status: a device that never wrote it */
	sg[out + in].buf = &m->status;
	sg[out + in].len = 1;
	in++;

	int r = vio_vq_add(q->vq, sg, out, in, s);
	if (r < 0)
		return r;
	s->req = req;
	s->off = off;
	s->len = len;
	req->priv_issued = off + len;
	req->priv_pieces++;
	if (req->priv_issued == req->len || req->op == VIO_BLK_OP_FLUSH ||
	    req->op == VIO_BLK_OP_GET_ID)
		req->priv_sent = true;
	return 0;
}

/*
 * vio_mem regions created since the queues were set up (a caller's
 * zero-copy buffers) must reach the device before a chain that points
 * into them is added: the device may be polling the ring, so a notify
 * after the add is too late.  One atomic load when nothing changed.
 */
static void q_sync_mem(struct blk_q *q)
{
	unsigned n = vio_mem_region_count(q->b->mem);
	if (n != q->regions && vio_drvdev_sync_mem(q->b->vdev) == 0)
		q->regions = n;
}

void blkq_issue(struct blk_q *q)
{
	unsigned added = 0;
	if (q->pend_head)
		q_sync_mem(q);
	while (q->pend_head && q->nfree && !q->dead) {
		struct vio_blk_req *req = q->pend_head;
		struct blk_slot *s = &q->slots[q->free_ids[q->nfree - 1]];
		int r = piece_add(q, req, s);
		if (r == -ENOSPC)
			break; /* descriptors come back with the pieces */
		if (r == -EIO) {
			blkq_fail_all(q, vio_vq_error(q->vq));
			break;
		}
		if (r < 0) {
			/* -EFAULT: the buffer left the shared memory (the
			 * caller released it); this request only */
			req->priv_err = r;
			req->priv_sent = true;
			list_unlink(&q->pend_head, &q->pend_tail, req);
			if (req->priv_pieces == 0)
				blkq_finish(q, req);
			continue;
		}
		q->nfree--;
		q->busy++;
		added++;
		if (req->priv_sent)
			list_unlink(&q->pend_head, &q->pend_tail, req);
	}
	if (added)
		vio_vq_kick(q->vq);
}

/*
 * Hand finished requests over: callbacks run, callback-less ones go into
 * done[] (at most max; the others stay first in line).  Callbacks may
 * submit (in_poll: queued only) and so add to the finished list.
 */
int blkq_deliver(struct blk_q *q, struct vio_blk_req **done, unsigned max)
{
	struct vio_blk_req *r = q->fin_head;
	struct vio_blk_req *keep_head = NULL, *keep_tail = NULL;
	unsigned stored = 0;
	int n = 0;

	q->fin_head = q->fin_tail = NULL;
	while (r) {
		struct vio_blk_req *next = r->priv_next;
		r->priv_next = NULL;
		if (r->done) {
			q->pending--;
			n++;
			r->done(r, r->result);
		} else if (stored < max) {
			q->pending--;
			n++;
			done[stored++] = r;
		} else {
			blkq_list_push(&keep_head, &keep_tail, r);
		}
		r = next;
	}
	if (keep_head) {
		keep_tail->priv_next = q->fin_head;
		if (!q->fin_head)
			q->fin_tail = keep_tail;
		q->fin_head = keep_head;
	}
	return n;
}

/* Sleep until the device uses a buffer (or timeout_ms): then take it. */
void blkq_wait(struct blk_q *q, int timeout_ms)
{
	uint32_t len;
	errno = 0;
	void *tok = vio_drvdev_wait_used(q->b->vdev, q->vq, &len, timeout_ms);
	int e = errno;
	/* awake: no interrupts while we are busy anyway (a hint) */
	vio_vq_disable_cb(q->vq);
	if (tok) {
		struct blk_slot *s = token_slot(q, tok);
		if (s)
			q_complete(q, s, len);
		return;
	}
	if (e == ETIMEDOUT)
		return;
	if (vio_vq_broken(q->vq))
		blkq_fail_all(q, vio_vq_error(q->vq));
	else if (e == EIO)
		blkq_fail_all(q, "the device needs a reset");
	else
		blkq_fail_all(q, strerror(e ? e : EIO));
}
