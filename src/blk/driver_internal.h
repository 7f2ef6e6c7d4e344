/* SPDX-License-Identifier: MIT */
/*
 * Internal to the virtio-blk driver side (src/blk/driver*.c): the state
 * of a bound device and of its queues, shared by three files:
 *
 *   driver_queue.c  the slot engine of one queue: build and add pieces,
 *                   reap used slots (status byte, used length), deliver
 *                   finished requests, sleep, fail the queue;
 *   driver.c        the public request API (submit, poll, synchronous
 *                   calls) and the getters of what probe found;
 *   driver_probe.c  the driver object and its instances, config space,
 *                   probe (limits, slots, rings) and remove.
 *
 * Per queue, probe preallocates depth request slots.  A slot owns, in the
 * vdev's shared memory, a 64-byte block (struct blk_shm: the request
 * header, a DISCARD/WRITE_ZEROES range, the GET_ID answer and the status
 * byte) and a bounce buffer; the scatter list used to build a chain is
 * per queue.  A slot carries one virtio request ("piece"); a caller's
 * request (struct vio_blk_req) is sent as one or more pieces.
 *
 * Threading: everything per queue is touched only by that queue's thread
 * (one at a time); the rest of struct vio_blk is read-only after probe.
 */
#ifndef VIO_BLK_DRIVER_INTERNAL_H
#define VIO_BLK_DRIVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_blk.h>

#include "util/log.h"
#include <vio/blk.h>
#include <vio/driver.h>

#define SECTOR 512u

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
	struct vio_drvdev *vdev;
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

/* ---- driver_queue.c: the slot engine ---- */

/* Append req to a list (intrusive, through priv_next). */
void blkq_list_push(struct vio_blk_req **head, struct vio_blk_req **tail,
		    struct vio_blk_req *req);
/* req is done (every piece back, or never sent): to the finished list. */
void blkq_finish(struct blk_q *q, struct vio_blk_req *req);
/* Harvest every used slot; a broken ring fails the queue. */
void blkq_reap(struct blk_q *q);
/* Send pending pieces into free slots; one kick for the batch. */
void blkq_issue(struct blk_q *q);
/* Hand finished requests over: callbacks run, the others go into
 * done[] (at most max).  Returns how many were handed over. */
int blkq_deliver(struct blk_q *q, struct vio_blk_req **done, unsigned max);
/* Sleep until the device uses a buffer (or timeout_ms), then take it. */
void blkq_wait(struct blk_q *q, int timeout_ms);
/* The queue is broken: every request on it fails (-EIO), for good. */
void blkq_fail_all(struct blk_q *q, const char *why);

static inline bool blkq_busy(const struct blk_q *q)
{
	return q->busy || q->pend_head;
}

#endif
