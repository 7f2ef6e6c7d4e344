/* SPDX-License-Identifier: MIT */
/*
 * The io_uring I/O backend (liburing): one ring per virtqueue, owned by
 * that queue's worker thread.  A batch's reads, flushes and writethrough
 * writes are queued as READV / FSYNC(DATASYNC) / WRITEV+FSYNC SQEs and
 * submitted with one io_uring_enter(); wait() submits and reaps until all
 * of them are done.  Writeback writes are done inline (see uring_submit).
 *
 * FLUSH: an FSYNC with IORING_FSYNC_DATASYNC, queued after every write
 * that completed before it (earlier batches are complete when a batch
 * starts); the driver must not expect a FLUSH to cover writes it has not
 * seen completed (VIRTIO 1.2 5.2.6.2 leaves ordering to the driver).
 * A writethrough write (FLUSH not negotiated) is a WRITEV linked to an
 * FSYNC (IOSQE_IO_LINK), so it completes only once durable.
 *
 * A short transfer (or a request with more than IOV_MAX segments) is
 * finished synchronously by blk_sync_finish().
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <liburing.h>

#include "blk/blk_internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define URING_MAX_ENTRIES 4096u
#define URING_TAG_LINKED_FSYNC 1ull /* low bit of user_data */

struct uring_q {
	struct io_uring ring;
	unsigned cq_entries;
	unsigned inflight; /* SQEs queued or submitted, not yet reaped */
};

static int uring_init(struct blk_queue *q, unsigned depth)
{
	struct uring_q *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	unsigned entries = 8;
	while (entries < depth && entries < URING_MAX_ENTRIES)
		entries *= 2;
	int r = io_uring_queue_init(entries, &u->ring, 0);
	if (r < 0) {
		free(u);
		return r;
	}
	u->cq_entries = u->ring.cq.ring_entries;
	q->io_priv = u;
	return 0;
}

static void uring_fini(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	free(u);
	q->io_priv = NULL;
}

static void uring_finish(struct blk_queue *q, struct blk_req *req)
{
	if (req->err) {
		blk_req_done(q, req, req->err);
		return;
	}
	if ((req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) &&
	    req->done < req->len) {
		/* short: the rest (and a cancelled linked fsync) by hand */
		blk_req_done(q, req, blk_sync_finish(q->fd, req));
		return;
	}
	blk_req_done(q, req, 0);
}

static void uring_complete(struct blk_queue *q, struct io_uring_cqe *cqe)
{
	struct uring_q *u = q->io_priv;
	uint64_t data = io_uring_cqe_get_data64(cqe);
	struct blk_req *req =
	    (struct blk_req *)(uintptr_t)(data & ~URING_TAG_LINKED_FSYNC);
	int res = cqe->res;

	u->inflight--;
	if (data & URING_TAG_LINKED_FSYNC) {
		/* cancelled after a short write: uring_finish redoes it */
		if (res < 0 && res != -ECANCELED && !req->err)
			req->err = res;
	} else if (res < 0) {
		if (!req->err)
			req->err = res;
	} else if (req->op != BLK_OP_FLUSH) {
		req->done += (uint64_t)res;
	}
	if (--req->pending == 0)
		uring_finish(q, req);
}

/* Submit what is queued, wait for wait_nr completions, reap them all. */
static void uring_reap(struct blk_queue *q, unsigned wait_nr)
{
	struct uring_q *u = q->io_priv;
	int r;
	do
		r = io_uring_submit_and_wait(&u->ring, wait_nr);
	while (r == -EINTR);
	unsigned head, n = 0;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		uring_complete(q, cqe);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	if (r < 0 && n == 0) {
		/* -EAGAIN/-ENOMEM: the kernel is short of resources; the
		 * SQEs stay queued and are retried (they reference this
		 * batch's memory, so they cannot be abandoned) */
		vio_log_limited(&q->rl, "blk q%u: io_uring_enter: %s", q->idx,
				strerror(-r));
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
}

/* Make room for n SQEs whose completions fit in the CQ. */
static void uring_reserve(struct blk_queue *q, unsigned n)
{
	struct uring_q *u = q->io_priv;
	while (io_uring_sq_space_left(&u->ring) < n ||
	       u->inflight + n > u->cq_entries)
		uring_reap(q, 1);
}

static void uring_submit(struct blk_queue *q, struct blk_req *req)
{
	struct uring_q *u = q->io_priv;

	/* Writeback writes are copies into the page cache: done inline.
	 * Filesystems without async buffered writes (ext4) make io_uring
	 * punt every one of them to an io-wq thread, which measured 1.5-3x
	 * slower on 2 cores than pwritev here.  Reads (inline when cached,
	 * async when not), flushes and writethrough writes use the ring. */
	if (req->iovcnt > IOV_MAX ||
	    (req->op == BLK_OP_WRITE && !req->writethrough)) {
		blk_req_done(q, req, blk_sync_finish(q->fd, req));
		return;
	}
	unsigned n = req->op == BLK_OP_WRITE && req->writethrough ? 2 : 1;
	uring_reserve(q, n);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	switch (req->op) {
	case BLK_OP_READ:
		io_uring_prep_readv(sqe, q->fd, req->iov, req->iovcnt,
				    req->offset);
		break;
	case BLK_OP_WRITE:
		io_uring_prep_writev(sqe, q->fd, req->iov, req->iovcnt,
				     req->offset);
		break;
	default:
		io_uring_prep_fsync(sqe, q->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data64(sqe, (uintptr_t)req);
	if (n == 2) {
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&u->ring);
		io_uring_prep_fsync(sqe, q->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, (uintptr_t)req |
						 URING_TAG_LINKED_FSYNC);
	}
	req->pending = n;
	u->inflight += n;
}

static void uring_wait(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	/* one io_uring_enter for the whole batch when it all completes
	 * together (short transfers finish synchronously, in the reap) */
	while (u->inflight)
		uring_reap(q, u->inflight);
}

const struct blk_io_ops blk_io_uring = {
    .name = "io_uring",
    .init = uring_init,
    .fini = uring_fini,
    .submit = uring_submit,
    .wait = uring_wait,
};
