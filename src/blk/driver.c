/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the driver side (VIRTIO 1.2 section 5.2), over any transport.
 *
 * Per queue, probe preallocates depth request slots.  A slot owns, in the
 * vdev's shared memory, a 64-byte block (struct blk_shm: the request
 * header, a DISCARD/WRITE_ZEROES range, the GET_ID answer and the status
 * byte) and a bounce buffer; the scatter list used to build a chain is
 * per queue.  A slot carries one virtio request ("piece"); a caller's
 * request (struct vio_blk_req) is sent as one or more pieces:
 *
 *   submit:   check, then append to the queue's pending list (intrusive,
 *             through the request's private fields: no allocation);
 *   issue:    while a slot is free, cut the next piece off the pending
 *             head: data bytes up to the device's limits (seg_max
 *             segments of at most size_max bytes, 5.2.4) or the bounce
 *             buffer; add the chain, kick once for the batch;
 *   reap:     each used slot: the status byte, read once (5.2.6); copy
 *             a READ's bounce buffer out; a request whose last piece is
 *             back goes to the finished list, with the first error;
 *   deliver:  finished requests: callbacks run, or they go into poll's
 *             array.
 *
 * Chains (5.2.6): header (readable), data (readable for OUT, writable for
 * IN), status (writable, last).  Tokens are slot pointers; the ring
 * returns only tokens it was given (its shadow state), and they are
 * checked again against the slot table before use.  The device is
 * trusted with nothing else: a status other than OK, IOERR and UNSUPP is
 * an error, a broken ring or a device needing reset fails the queue.
 *
 * Threading: everything per queue is touched only by that queue's thread
 * (one at a time); the rest of struct vio_blk is read-only after probe.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "util/log.h"
#include <vio/blk.h>
#include <vio/driver.h>

#define SECTOR 512u
#define BLK_DEFAULT_DEPTH 32u
#define BLK_DEFAULT_BOUNCE (128u << 10)
#define BLK_MAX_BOUNCE (64u << 20)
/* Entries per indirect table: the ring's default (vio_vq_config), which
 * vio_vdev_setup_vq uses.  Chains up to this long take one descriptor. */
#define BLK_INDIRECT_MAX 32u
/* Data segments per request, whatever the device allows (IOV_MAX). */
#define BLK_SEG_CAP 1024u
/* Data bytes per virtio request, whatever the device allows: keeps every
 * length in 32 bits with room to spare. */
#define BLK_PIECE_CAP (1u << 30)

/* Per slot, in shared memory. */
struct blk_shm {
	struct virtio_blk_outhdr hdr;		    /* readable */
	struct virtio_blk_discard_write_zeroes dwz; /* readable */
	uint8_t id[VIRTIO_BLK_ID_BYTES];	    /* writable (GET_ID) */
	uint8_t status;				    /* writable, last */
	uint8_t pad[11];
};
_Static_assert(sizeof(struct blk_shm) == 64, "one cache line per slot");

struct blk_slot {
	struct blk_shm *shm;
	uint8_t *bounce;
	struct vio_blk_req *req; /* NULL when free */
	size_t off;		 /* the piece: bytes into req */
	size_t len;
};

struct blk_q {
	struct vio_blk *b;
	struct vio_vq *vq;
	unsigned idx;
	struct blk_slot *slots; /* [nslots] */
	unsigned nslots;
	unsigned *free_ids; /* [nslots], a stack */
	unsigned nfree;
	unsigned busy;	   /* slots on the ring */
	struct vio_sg *sg; /* [segs + 2]: the chain being built */
	/* requests with pieces left to send, in order */
	struct vio_blk_req *pend_head, *pend_tail;
	/* requests finished, not yet delivered */
	struct vio_blk_req *fin_head, *fin_tail;
	unsigned pending; /* submitted, not yet delivered */
	unsigned regions; /* vio_mem regions the transport has */
	bool in_poll;	  /* delivering: submit only queues */
	bool dead;	  /* broken: everything fails with -EIO */
	struct blk_shm *shm_block;
	uint8_t *bounce_block;
	struct vio_ratelimit rl;
};

struct vio_blk {
	struct vio_vdev *vdev;
	struct vio_mem *mem;
	struct vio_blk_info info;
	uint64_t cap_bytes;
	bool ro, flush, discard, wz;
	uint32_t seg_bytes; /* bytes per data segment */
	size_t max_zc, max_copy;
	uint64_t max_discard_bytes, max_wz_bytes;
	unsigned nq;
	struct blk_q *q; /* [nq] */
};

/* A driver instance: the vio_driver and its config. */
struct blk_driver {
	struct vio_driver drv;
	struct vio_blk_driver_config cfg;
};

static int blk_probe(struct vio_vdev *vdev);
static void blk_remove(struct vio_vdev *vdev);

static const unsigned blk_features[] = {
    VIRTIO_BLK_F_SIZE_MAX,
    VIRTIO_BLK_F_SEG_MAX,
    VIRTIO_BLK_F_BLK_SIZE,
    VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_TOPOLOGY,
    VIRTIO_BLK_F_MQ,
    VIRTIO_BLK_F_DISCARD,
    VIRTIO_BLK_F_WRITE_ZEROES,
    VIRTIO_BLK_F_RO,
    VIRTIO_F_VERSION_1,
    VIRTIO_F_RING_PACKED,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
};
#define N_BLK_FEATURES (sizeof(blk_features) / sizeof(blk_features[0]))

static const struct vio_device_id blk_ids[] = {
    {VIRTIO_ID_BLOCK, VIO_DEV_ANY_ID},
    {0, 0},
};

const struct vio_driver vio_blk_driver = {
    .name = "virtio-blk",
    .id_table = blk_ids,
    .feature_table = blk_features,
    .feature_table_size = N_BLK_FEATURES,
    .probe = blk_probe,
    .remove = blk_remove,
};

static const struct vio_blk_driver_config default_cfg;

static const struct vio_blk_driver_config *
drv_config(const struct vio_driver *drv)
{
	if (!drv || drv == &vio_blk_driver)
		return &default_cfg;
	const struct blk_driver *bd =
	    (const struct blk_driver *)(const void *)((const char *)drv -
						      offsetof(
							  struct blk_driver,
							  drv));
	return &bd->cfg;
}

struct vio_driver *vio_blk_driver_new(const struct vio_blk_driver_config *cfg)
{
	if (cfg && (cfg->queue_depth > VIO_VQ_MAX_SIZE ||
		    cfg->queue_size > VIO_VQ_MAX_SIZE ||
		    cfg->num_queues > VIO_MAX_QUEUES ||
		    cfg->bounce_size > BLK_MAX_BOUNCE)) {
		errno = EINVAL;
		return NULL;
	}
	struct blk_driver *bd = calloc(1, sizeof(*bd));
	if (!bd) {
		errno = ENOMEM;
		return NULL;
	}
	bd->drv = vio_blk_driver;
	if (cfg)
		bd->cfg = *cfg;
	return &bd->drv;
}

void vio_blk_driver_free(struct vio_driver *drv)
{
	if (!drv || drv == &vio_blk_driver)
		return;
	free((char *)drv - offsetof(struct blk_driver, drv));
}

struct vio_blk *vio_blk_from_vdev(struct vio_vdev *vdev)
{
	if (!vdev)
		return NULL;
	const struct vio_driver *drv = vio_vdev_driver(vdev);
	if (!drv || drv->probe != blk_probe)
		return NULL;
	return vio_vdev_priv(vdev);
}

struct vio_vdev *vio_blk_vdev(const struct vio_blk *b)
{
	return b->vdev;
}

/* ---- lists (intrusive, through priv_next) ---- */

static void list_push(struct vio_blk_req **head, struct vio_blk_req **tail,
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
static void req_finish(struct blk_q *q, struct vio_blk_req *req)
{
	req->result = req->priv_err;
	list_push(&q->fin_head, &q->fin_tail, req);
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
static void q_fail_all(struct blk_q *q, const char *why)
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
			req_finish(q, r);
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
			req_finish(q, req);
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

/* One piece came back. */
static void q_complete(struct blk_q *q, struct blk_slot *s)
{
	struct vio_blk_req *req = s->req;
	uint8_t st = *(volatile uint8_t *)&s->shm->status;
	int res = status_errno(q, st);

	if (res == 0) {
		if (req->op == VIO_BLK_OP_READ && req->priv_copy) {
			memcpy((uint8_t *)req->buf + s->off, s->bounce, s->len);
		} else if (req->op == VIO_BLK_OP_GET_ID) {
			size_t n = req->len < VIRTIO_BLK_ID_BYTES
				       ? req->len
				       : VIRTIO_BLK_ID_BYTES;
			memcpy(req->buf, s->shm->id, n);
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
		req_finish(q, req);
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

static void q_reap(struct blk_q *q)
{
	void *tok;
	uint32_t len;
	if (q->dead)
		return;
	while ((tok = vio_vq_get(q->vq, &len))) {
		struct blk_slot *s = token_slot(q, tok);
		if (!s)
			break;
		q_complete(q, s);
	}
	if (vio_vq_broken(q->vq))
		q_fail_all(q, vio_vq_error(q->vq));
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
	if (n != q->regions && vio_vdev_sync_mem(q->b->vdev) == 0)
		q->regions = n;
}

static void q_issue(struct blk_q *q)
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
			q_fail_all(q, vio_vq_error(q->vq));
			break;
		}
		if (r < 0) {
			/* -EFAULT: the buffer left the shared memory (the
			 * caller released it); this request only */
			req->priv_err = r;
			req->priv_sent = true;
			list_unlink(&q->pend_head, &q->pend_tail, req);
			if (req->priv_pieces == 0)
				req_finish(q, req);
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
static int q_deliver(struct blk_q *q, struct vio_blk_req **done, unsigned max)
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
			list_push(&keep_head, &keep_tail, r);
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
static void q_wait(struct blk_q *q, int timeout_ms)
{
	uint32_t len;
	errno = 0;
	void *tok = vio_vdev_wait_used(q->b->vdev, q->vq, &len, timeout_ms);
	int e = errno;
	/* awake: no interrupts while we are busy anyway (a hint) */
	vio_vq_disable_cb(q->vq);
	if (tok) {
		struct blk_slot *s = token_slot(q, tok);
		if (s)
			q_complete(q, s);
		return;
	}
	if (e == ETIMEDOUT)
		return;
	if (vio_vq_broken(q->vq))
		q_fail_all(q, vio_vq_error(q->vq));
	else if (e == EIO)
		q_fail_all(q, "the device needs a reset");
	else
		q_fail_all(q, strerror(e ? e : EIO));
}

static bool q_busy(const struct blk_q *q)
{
	return q->busy || q->pend_head;
}

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
	if (req->offset > b->cap_bytes ||
	    (uint64_t)req->len > b->cap_bytes - req->offset)
		return -ERANGE;
	return 0;
}

int vio_blk_submit(struct vio_blk *b, unsigned qi, struct vio_blk_req *req)
{
	struct blk_q *q = get_q(b, qi);
	if (!q)
		return -ENOENT;
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
		req_finish(q, req);
		return 0;
	}
	list_push(&q->pend_head, &q->pend_tail, req);
	if (!q->in_poll)
		q_issue(q);
	return 0;
}

int vio_blk_poll(struct vio_blk *b, unsigned qi, struct vio_blk_req **done,
		 unsigned max, int timeout_ms)
{
	struct blk_q *q = get_q(b, qi);
	if (!q)
		return -ENOENT;
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
		q_reap(q);
		q_issue(q); /* into the slots just freed */
		n = q_deliver(q, done, max);
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
		q_wait(q, ms);
	}
	q_issue(q); /* what the callbacks submitted */
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
		return -ENOENT;
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
		if (r <= 0 && !finished && !q_busy(q) && !q->fin_head)
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
	return b->cap_bytes;
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
	return vio_vdev_has_feature(b->vdev, bit);
}

void vio_blk_get_info(const struct vio_blk *b, struct vio_blk_info *out)
{
	*out = b->info;
}

/* ---- probe and remove ---- */

#define CFG_OFF(field) offsetof(struct virtio_blk_config, field)

/* Little-endian config fields; *v keeps its fallback if the read fails
 * (a config space shorter than the field). */
static int cfg_u8(struct vio_vdev *vdev, unsigned off, uint8_t *v)
{
	return vio_vdev_config_read(vdev, off, v, 1);
}

static int cfg_u16(struct vio_vdev *vdev, unsigned off, uint16_t *v)
{
	uint16_t x;
	int r = vio_vdev_config_read(vdev, off, &x, sizeof(x));
	if (r == 0)
		*v = le16toh(x);
	return r;
}

static int cfg_u32(struct vio_vdev *vdev, unsigned off, uint32_t *v)
{
	uint32_t x;
	int r = vio_vdev_config_read(vdev, off, &x, sizeof(x));
	if (r == 0)
		*v = le32toh(x);
	return r;
}

static int cfg_u64(struct vio_vdev *vdev, unsigned off, uint64_t *v)
{
	uint64_t x;
	int r = vio_vdev_config_read(vdev, off, &x, sizeof(x));
	if (r == 0)
		*v = le64toh(x);
	return r;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* 5.2.4: the fields each negotiated feature guards.  Only capacity is
 * required; every value is peer data, checked before use. */
static int read_config(struct vio_blk *b)
{
	struct vio_vdev *vdev = b->vdev;
	struct vio_blk_info *in = &b->info;
	int r = cfg_u64(vdev, CFG_OFF(capacity), &in->capacity);
	if (r < 0) {
		vio_log("blk driver: cannot read the capacity from the config "
			"space (%s): is the device a virtio-blk device?",
			strerror(-r));
		return r;
	}
	if (in->capacity == 0) {
		vio_log("blk driver: the config space says capacity 0: not a "
			"usable disk (is the device a virtio-blk device?)");
		return -ENODEV;
	}
	if (in->capacity > UINT64_MAX / SECTOR)
		in->capacity = UINT64_MAX / SECTOR;
	b->cap_bytes = in->capacity * SECTOR;

	in->blk_size = SECTOR;
	if (vio_vdev_has_feature(vdev, VIRTIO_BLK_F_BLK_SIZE)) {
		uint32_t v = 0;
		(void)cfg_u32(vdev, CFG_OFF(blk_size), &v);
		if (is_pow2(v) && v >= SECTOR && v <= 65536)
			in->blk_size = v;
		else
			vio_log("blk driver: block size %u ignored: using 512",
				v);
	}
	in->seg_max = 1; /* without SEG_MAX: one data segment, as Linux */
	if (vio_vdev_has_feature(vdev, VIRTIO_BLK_F_SEG_MAX)) {
		uint32_t v = 0;
		(void)cfg_u32(vdev, CFG_OFF(seg_max), &v);
		in->seg_max = v ? v : 1;
	}
	if (vio_vdev_has_feature(vdev, VIRTIO_BLK_F_SIZE_MAX))
		(void)cfg_u32(vdev, CFG_OFF(size_max), &in->size_max);
	if (vio_vdev_has_feature(vdev, VIRTIO_BLK_F_TOPOLOGY)) {
		(void)cfg_u8(vdev, CFG_OFF(physical_block_exp),
			     &in->physical_block_exp);
		(void)cfg_u8(vdev, CFG_OFF(alignment_offset),
			     &in->alignment_offset);
		(void)cfg_u16(vdev, CFG_OFF(min_io_size), &in->min_io_size);
		(void)cfg_u32(vdev, CFG_OFF(opt_io_size), &in->opt_io_size);
	}
	in->device_queues = 1;
	if (vio_vdev_has_feature(vdev, VIRTIO_BLK_F_MQ)) {
		uint16_t v = 1;
		(void)cfg_u16(vdev, CFG_OFF(num_queues), &v);
		in->device_queues = v ? v : 1;
	}
	if (b->discard) {
		(void)cfg_u32(vdev, CFG_OFF(max_discard_sectors),
			      &in->max_discard_sectors);
		(void)cfg_u32(vdev, CFG_OFF(max_discard_seg),
			      &in->max_discard_seg);
		(void)cfg_u32(vdev, CFG_OFF(discard_sector_alignment),
			      &in->discard_sector_alignment);
	}
	if (b->wz) {
		uint8_t u = 0;
		(void)cfg_u32(vdev, CFG_OFF(max_write_zeroes_sectors),
			      &in->max_write_zeroes_sectors);
		(void)cfg_u32(vdev, CFG_OFF(max_write_zeroes_seg),
			      &in->max_write_zeroes_seg);
		(void)cfg_u8(vdev, CFG_OFF(write_zeroes_may_unmap), &u);
		in->write_zeroes_may_unmap = u != 0;
	}
	return 0;
}

/* Bytes per DISCARD / WRITE_ZEROES request: max sectors (0: no limit),
 * rounded down to the alignment (in sectors) when that leaves any. */
static uint64_t range_max(uint32_t max_sectors, uint32_t align)
{
	uint64_t m = max_sectors ? max_sectors : UINT32_MAX;
	if (align > 1 && m >= align)
		m -= m % align;
	return m * SECTOR;
}

static size_t round_down(size_t v, size_t a)
{
	return v - v % a;
}

static void free_state(struct vio_vdev *vdev, struct vio_blk *b)
{
	for (unsigned i = 0; b->q && i < b->nq; i++) {
		struct blk_q *q = &b->q[i];
		vio_mem_release(b->mem, q->shm_block);
		vio_mem_release(b->mem, q->bounce_block);
		free(q->slots);
		free(q->free_ids);
		free(q->sg);
	}
	free(b->q);
	free(b);
	vio_vdev_set_priv(vdev, NULL);
}

/* Slots, their shared memory and the scatter list of queue i. */
static int queue_alloc(struct vio_blk *b, unsigned i, unsigned depth,
		       unsigned segs)
{
	struct blk_q *q = &b->q[i];
	uint64_t daddr;
	size_t bounce = b->info.bounce_size;

	q->b = b;
	q->idx = i;
	q->nslots = depth;
	q->slots = calloc(depth, sizeof(*q->slots));
	q->free_ids = calloc(depth, sizeof(*q->free_ids));
	q->sg = calloc(segs + 2u, sizeof(*q->sg));
	if (!q->slots || !q->free_ids || !q->sg)
		return -ENOMEM;
	q->shm_block =
	    vio_mem_alloc(b->mem, depth * sizeof(struct blk_shm), 64, &daddr);
	q->bounce_block = vio_mem_alloc(b->mem, depth * bounce, 4096, &daddr);
	if (!q->shm_block || !q->bounce_block)
		return -ENOMEM;
	memset(q->shm_block, 0, depth * sizeof(struct blk_shm));
	for (unsigned k = 0; k < depth; k++) {
		q->slots[k].shm = &q->shm_block[k];
		q->slots[k].bounce = q->bounce_block + (size_t)k * bounce;
		/* slot 0 on top of the stack */
		q->free_ids[k] = depth - 1 - k;
	}
	q->nfree = depth;
	return 0;
}

static unsigned round_down_pow2(unsigned v)
{
	while (v & (v - 1))
		v &= v - 1;
	return v;
}

static int blk_probe(struct vio_vdev *vdev)
{
	const struct vio_blk_driver_config *cfg =
	    drv_config(vio_vdev_driver(vdev));
	struct vio_features want =
	    vio_features_from(blk_features, N_BLK_FEATURES);
	if (cfg->no_packed)
		vio_features_clear(&want, VIRTIO_F_RING_PACKED);
	if (cfg->no_event_idx)
		vio_features_clear(&want, VIRTIO_RING_F_EVENT_IDX);
	if (cfg->no_indirect)
		vio_features_clear(&want, VIRTIO_RING_F_INDIRECT_DESC);
	int r = vio_vdev_negotiate(vdev, &want);
	if (r < 0)
		return r;

	struct vio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vdev = vdev;
	b->mem = vio_vdev_mem(vdev);
	b->ro = vio_vdev_has_feature(vdev, VIRTIO_BLK_F_RO);
	b->flush = vio_vdev_has_feature(vdev, VIRTIO_BLK_F_FLUSH);
	b->discard = vio_vdev_has_feature(vdev, VIRTIO_BLK_F_DISCARD);
	b->wz = vio_vdev_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES);
	vio_vdev_set_priv(vdev, b);
	r = read_config(b);
	if (r < 0)
		goto fail;

	struct vio_blk_info *in = &b->info;
	in->packed = vio_vdev_has_feature(vdev, VIRTIO_F_RING_PACKED);
	in->event_idx = vio_vdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX);
	in->indirect = vio_vdev_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC);

	/* queues: what the config says, what the transport has, what the
	 * caller asked for */
	unsigned nq = in->device_queues;
	if (nq > vio_vdev_num_queues(vdev))
		nq = vio_vdev_num_queues(vdev);
	if (cfg->num_queues && nq > cfg->num_queues)
		nq = cfg->num_queues;
	/* the smallest ring decides the per-request limits of all */
	unsigned qsize = VIO_VQ_MAX_SIZE;
	for (unsigned i = 0; i < nq; i++) {
		unsigned s = vio_vdev_queue_max_size(vdev, i);
		if (cfg->queue_size && s > cfg->queue_size)
			s = cfg->queue_size;
		if (!in->packed)
			s = round_down_pow2(s);
		if (s < qsize)
			qsize = s;
	}
	if (nq == 0 || qsize < 3) {
		vio_log("blk driver: %s", nq ? "queues shorter than the 3 "
					       "descriptors of a request"
					     : "no queue");
		r = -ENODEV;
		goto fail;
	}
	in->num_queues = nq;
	in->queue_size = qsize;

	/* data segments per request: the device's seg_max, the ring (a
	 * chain fits the queue, 2.7.5.3.1; with indirect descriptors it
	 * fits one indirect table so it takes one descriptor) */
	unsigned segs = in->seg_max < BLK_SEG_CAP ? in->seg_max : BLK_SEG_CAP;
	unsigned ring_segs =
	    (in->indirect && qsize >= BLK_INDIRECT_MAX ? BLK_INDIRECT_MAX
						       : qsize) -
	    2u;
	if (segs > ring_segs)
		segs = ring_segs;
	in->segs_per_req = segs;
	b->seg_bytes = in->size_max && in->size_max < BLK_PIECE_CAP
			   ? in->size_max
			   : BLK_PIECE_CAP;
	uint64_t zc = (uint64_t)segs * b->seg_bytes;
	if (zc > BLK_PIECE_CAP)
		zc = BLK_PIECE_CAP;
	b->max_zc = round_down((size_t)zc, SECTOR);
	if (b->max_zc >= in->blk_size)
		b->max_zc = round_down(b->max_zc, in->blk_size);
	if (b->max_zc == 0) {
		vio_log("blk driver: device limits (seg_max %u, size_max %u) "
			"leave no room for one sector",
			in->seg_max, in->size_max);
		r = -ENODEV;
		goto fail;
	}
	size_t bounce =
	    cfg->bounce_size ? cfg->bounce_size : BLK_DEFAULT_BOUNCE;
	bounce = (bounce + 4095u) & ~(size_t)4095u;
	in->bounce_size = bounce;
	b->max_copy =
	    bounce < b->max_zc ? round_down(bounce, SECTOR) : b->max_zc;
	in->max_zc_bytes = b->max_zc;
	in->max_copy_bytes = b->max_copy;
	b->max_discard_bytes =
	    range_max(in->max_discard_sectors, in->discard_sector_alignment);
	b->max_wz_bytes = range_max(in->max_write_zeroes_sectors, 0);

	unsigned depth =
	    cfg->queue_depth ? cfg->queue_depth : BLK_DEFAULT_DEPTH;
	if (depth > qsize)
		depth = qsize;
	in->queue_depth = depth;

	/* every queue's memory first, then the rings: all of it exists
	 * before the device is told where the rings are */
	b->q = calloc(nq, sizeof(*b->q));
	if (!b->q) {
		r = -ENOMEM;
		goto fail;
	}
	b->nq = nq;
	for (unsigned i = 0; i < nq; i++) {
		r = queue_alloc(b, i, depth, segs);
		if (r < 0)
			goto fail;
	}
	for (unsigned i = 0; i < nq; i++) {
		struct blk_q *q = &b->q[i];
		q->vq = vio_vdev_setup_vq(vdev, i, qsize, NULL, NULL);
		if (!q->vq) {
			r = errno ? -errno : -EIO;
			vio_log("blk driver: queue %u: %s", i, strerror(-r));
			goto fail;
		}
		/* interrupts only when we sleep (q_wait re-enables) */
		vio_vq_disable_cb(q->vq);
	}
	for (unsigned i = 0; i < nq; i++)
		b->q[i].regions = vio_mem_region_count(b->mem);
	return 0;
fail:
	/* the bus sets FAILED; the vqs go with the next reset */
	free_state(vdev, b);
	return r;
}

/*
 * The bus stopped the device (status 0) before calling us: nothing is
 * used any more.  Requests still queued complete with -ENODEV (their
 * callbacks run here, on the bus's thread).
 */
static void blk_remove(struct vio_vdev *vdev)
{
	struct vio_blk *b = vio_vdev_priv(vdev);
	if (!b)
		return;
	for (unsigned i = 0; i < b->nq; i++) {
		struct blk_q *q = &b->q[i];
		q->dead = true; /* no log line: this is not a failure */
		for (struct vio_blk_req *r = q->pend_head; r; r = r->priv_next)
			if (!r->priv_err)
				r->priv_err = -ENODEV;
		for (unsigned k = 0; k < q->nslots; k++)
			if (q->slots[k].req && !q->slots[k].req->priv_err)
				q->slots[k].req->priv_err = -ENODEV;
		q_fail_all(q, "device removed");
		while (q->vq && vio_vq_detach_unused(q->vq))
			;
		q->in_poll = true;
		(void)q_deliver(q, NULL, 0);
		q->in_poll = false;
	}
	free_state(vdev, b);
}
