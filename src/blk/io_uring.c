/* SPDX-License-Identifier: MIT */
/*
 * The io_uring I/O backend (liburing): one ring per virtqueue, owned by
 * that queue's thread.
 *
 * Inline first: a read or write the page cache can serve is done in the
 * calling thread with preadv2/pwritev2(RWF_NOWAIT) and completes at once.
 * Buffered I/O submitted to io_uring that cannot complete without
 * blocking is punted to an io-wq worker thread, a hand-off and a wake-up
 * each way: on 2 CPUs that costs more than the copy (PERF-NOTES.md).
 * Only what would block (EAGAIN: a page-cache miss, a page lock, a real
 * disk) or a short inline transfer goes to the ring, whole (redoing the
 * bytes a partial transfer moved is harmless: the same data, the same
 * place).  A file system without RWF_NOWAIT support (EOPNOTSUPP: tmpfs,
 * for one) turns the attempt off for that kind of I/O on the queue.  Then
 * a file in memory (tmpfs, ramfs: nothing to wait for but a copy) is read
 * and written with preadv/pwritev in the thread, which is what io_uring
 * would do, one io-wq hand-off later; elsewhere reads go to the ring, and
 * writeback writes are still done in the thread (a page-cache copy;
 * io_uring would punt each to io-wq).
 *
 * Writethrough (FLUSH not negotiated, or the driver chose writethrough):
 * an inline write is followed by an FSYNC(DATASYNC) on the ring, the
 * request completes with it; one that goes to the ring is a WRITEV linked
 * to an FSYNC (IOSQE_IO_LINK).  FLUSH: an FSYNC(DATASYNC) on the ring; it
 * covers every write completed (pushed) before it, which is all the
 * driver may rely on (VIRTIO 1.2 5.2.6.2 leaves ordering to the driver).
 *
 * Completions: reap() reads the completion queue from memory.  With a
 * loop, an eventfd registered with the ring wakes the loop; its callback
 * runs on every busy-poll turn too, so it reads the eventfd only when the
 * completion queue has entries or may have had some since the last read
 * (efd_dirty), never when idle.  Without a loop the caller waits in
 * reap(wait).
 *
 * A short transfer from the ring, or a request with more than IOV_MAX
 * segments, is finished synchronously by blk_sync_finish().
 */
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "blk/blk_internal.h"
#include <vio/device.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define URING_MAX_ENTRIES 4096u
#define URING_MAX_CQ 65536u
#define URING_TAG_LINKED_FSYNC 1ull /* low bit of user_data */
#define URING_CANCEL_DATA 0ull	    /* a cancel SQE's user_data */
/* reap(wait) sleeps this long per call; after URING_STUCK_WAITS of them
 * with nothing completing, what is in flight is cancelled */
#define URING_WAIT_NS 1000000000ll
#define URING_STUCK_WAITS 5u

struct uring_q {
	struct io_uring ring;
	unsigned cq_entries;
	unsigned sqes; /* SQEs queued or submitted, not yet reaped */
	int efd;       /* the completion eventfd while attached, else -1 */
	struct vio_loop *loop;
	bool efd_dirty;	   /* entries were reaped since efd was last read */
	bool nowait_read;  /* RWF_NOWAIT works for reads of this file */
	bool nowait_write; /* and for writes */
	bool in_memory;	   /* the file is in tmpfs or ramfs */
	unsigned stuck;	   /* consecutive waits that saw no completion */
};

static int uring_init(struct blk_queue *q, unsigned depth)
{
	struct uring_q *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	unsigned entries = 8;
	while (entries < depth && entries < URING_MAX_ENTRIES)
		entries *= 2;
	/* a request takes at most 2 SQEs (a write and its fsync): the CQ
	 * holds every completion of a full table */
	unsigned cq = 2u * (depth > entries ? depth : entries);
	if (cq > URING_MAX_CQ)
		cq = URING_MAX_CQ;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = cq;
	int r = io_uring_queue_init_params(entries, &u->ring, &p);
	if (r == -EINVAL) /* before 5.5: the default CQ (2 * entries) */
		r = io_uring_queue_init(entries, &u->ring, 0);
	if (r < 0) {
		free(u);
		return r;
	}
	u->cq_entries = u->ring.cq.ring_entries;
	u->efd = -1;
	u->nowait_read = u->nowait_write = true;
	struct statfs sf;
	u->in_memory = fstatfs(q->fd, &sf) == 0 &&
		       (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
	q->io_priv = u;
	return 0;
}

static void uring_fini(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	if (u->efd >= 0)
		close(u->efd);
	free(u);
	q->io_priv = NULL;
}

static void uring_finish(struct blk_queue *q, struct blk_req *req)
{
	if (req->err) {
		blk_req_end(q, req, req->err);
		return;
	}
	if ((req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) &&
	    req->done < req->len) {
		/* short: the rest (and a cancelled linked fsync) by hand */
		blk_req_end(q, req, blk_sync_finish(q->fd, req));
		return;
	}
	blk_req_end(q, req, 0);
}

static void uring_complete(struct blk_queue *q, struct io_uring_cqe *cqe)
{
	struct uring_q *u = q->io_priv;
	uint64_t data = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;

	u->sqes--;
	if (data == URING_CANCEL_DATA)
		return;
	struct blk_req *req =
	    (struct blk_req *)(uintptr_t)(data & ~URING_TAG_LINKED_FSYNC);
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

/* Report every completion the CQ holds, without a syscall. */
static unsigned uring_drain_cq(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	unsigned head, n = 0;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		uring_complete(q, cqe);
		n++;
	}
	if (n) {
		io_uring_cq_advance(&u->ring, n);
		u->efd_dirty = true;
	}
	return n;
}

/* Everything in flight did not finish for a while: cancel it (a read
 * that never returns must not hold a queue stop forever). */
static void uring_cancel_all(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data64(sqe, URING_CANCEL_DATA);
	u->sqes++;
}

/* Submit what is queued and wait (bounded) for one completion. */
static void uring_wait_one(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	struct __kernel_timespec ts = {0, URING_WAIT_NS};
	struct io_uring_cqe *cqe = NULL;
	int r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	if (r >= 0 || r == -EINTR || io_uring_cq_ready(&u->ring)) {
		u->stuck = 0;
		return;
	}
	if (r == -ETIME) {
		if (++u->stuck == URING_STUCK_WAITS) {
			vio_log_warn("%s q%u: %u requests stuck for %u s: "
				     "cancelling them",
				     q->bd->name, q->idx, q->inflight,
				     URING_STUCK_WAITS);
			uring_cancel_all(q);
		}
		return;
	}
	/* -EAGAIN/-ENOMEM/-EBUSY: the kernel is short of resources; the
	 * SQEs stay queued and are retried (they reference slot memory, so
	 * they cannot be abandoned) */
	vio_log_limited(&q->rl, "%s q%u: io_uring_enter: %s", q->bd->name,
			q->idx, strerror(-r));
	struct timespec pause = {0, 100000};
	nanosleep(&pause, NULL);
}

static unsigned uring_reap(struct blk_queue *q, bool wait)
{
	struct uring_q *u = q->io_priv;
	if (uring_drain_cq(q) || !wait || !u->sqes)
		return q->inflight;
	uring_wait_one(q);
	uring_drain_cq(q);
	return q->inflight;
}

static void uring_commit(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	if (!io_uring_sq_ready(&u->ring))
		return;
	int r;
	do
		r = io_uring_submit(&u->ring);
	while (r == -EINTR);
	/* an error leaves the SQEs queued: the next commit or wait retries */
	if (r < 0)
		vio_log_limited(&q->rl, "%s q%u: io_uring_submit: %s",
				q->bd->name, q->idx, strerror(-r));
}

/* Make room for n SQEs whose completions fit in the CQ. */
static void uring_reserve(struct blk_queue *q, unsigned n)
{
	struct uring_q *u = q->io_priv;
	if (io_uring_sq_space_left(&u->ring) < n)
		uring_commit(q);
	while (io_uring_sq_space_left(&u->ring) < n ||
	       u->sqes + n > u->cq_entries) {
		if (!uring_drain_cq(q))
			uring_wait_one(q);
	}
}

/*
 * Try req in this thread without blocking.  true: it ended (completed or
 * failed; blk_req_end was called), or its data is written and only a
 * writethrough's fsync is left (req->done == req->len).  false: it goes
 * to the ring whole.
 */
static bool uring_inline(struct blk_queue *q, struct uring_q *u,
			 struct blk_req *req)
{
	bool rd = req->op == BLK_OP_READ;
	if (req->force_async)
		return false;
	if (!(rd ? u->nowait_read : u->nowait_write)) {
		/* no RWF_NOWAIT: a file in memory never waits for a disk,
		 * and a writeback write is a page-cache copy anyway */
		if (!u->in_memory && (rd || req->writethrough))
			return false;
		blk_req_end(q, req, blk_sync_finish(q->fd, req));
		return true;
	}
	ssize_t n;
	do
		n = rd ? preadv2(q->fd, req->iov, (int)req->iovcnt,
				 (off_t)req->offset, RWF_NOWAIT)
		       : pwritev2(q->fd, req->iov, (int)req->iovcnt,
				  (off_t)req->offset, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (uint64_t)n == req->len) {
		if (rd || !req->writethrough) {
			blk_req_end(q, req, 0);
			return true;
		}
		req->done = req->len; /* the fsync is left */
		return true;
	}
	if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
		if (rd)
			u->nowait_read = false;
		else
			u->nowait_write = false;
		return uring_inline(q, u, req);
	}
	if (n < 0 && errno != EAGAIN) {
		blk_req_end(q, req, -errno);
		return true;
	}
	return false; /* would block, or short: the ring does it all */
}

static void uring_submit(struct blk_queue *q, struct blk_req *req)
{
	struct uring_q *u = q->io_priv;

	if (req->iovcnt > IOV_MAX) {
		blk_req_end(q, req, blk_sync_finish(q->fd, req));
		return;
	}
	bool fsync_only = false;
	if (req->op != BLK_OP_FLUSH && uring_inline(q, u, req)) {
		if (req->op != BLK_OP_WRITE || !req->writethrough ||
		    req->state != BLK_SLOT_INFLIGHT)
			return;	   /* ended */
		fsync_only = true; /* data written inline, now durable */
	}
	unsigned n =
	    req->op == BLK_OP_WRITE && req->writethrough && !fsync_only ? 2 : 1;
	uring_reserve(q, n);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (req->op == BLK_OP_READ)
		io_uring_prep_readv(sqe, q->fd, req->iov, req->iovcnt,
				    req->offset);
	else if (req->op == BLK_OP_WRITE && !fsync_only)
		io_uring_prep_writev(sqe, q->fd, req->iov, req->iovcnt,
				     req->offset);
	else
		io_uring_prep_fsync(sqe, q->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, (uintptr_t)req);
	if (req->force_async)
		sqe->flags |= IOSQE_ASYNC;
	if (n == 2) {
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&u->ring);
		io_uring_prep_fsync(sqe, q->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, (uintptr_t)req |
						 URING_TAG_LINKED_FSYNC);
	}
	req->pending = n;
	u->sqes += n;
}

/* The loop's callback: also run on busy-poll turns without the fd being
 * readable, so it looks at memory first. */
static void uring_event(void *arg)
{
	struct blk_queue *q = arg;
	struct uring_q *u = q->io_priv;
	if (!u->efd_dirty && !io_uring_cq_ready(&u->ring))
		return;
	/* read first: a completion posted after this read signals again */
	uint64_t v;
	if (read(u->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		vio_log_limited(&q->rl, "%s q%u: completion eventfd: %s",
				q->bd->name, q->idx, strerror(errno));
	u->efd_dirty = false;
	blk_queue_event(q);
}

static int uring_attach(struct blk_queue *q, struct vio_loop *loop)
{
	struct uring_q *u = q->io_priv;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	int r = io_uring_register_eventfd(&u->ring, efd);
	if (r < 0) {
		close(efd);
		return r;
	}
	u->efd = efd;
	u->efd_dirty = true; /* completions reaped before now signalled it */
	r = loop->add_fd(loop, efd, VIO_LOOP_POLL, uring_event, q);
	if (r < 0) {
		io_uring_unregister_eventfd(&u->ring);
		close(efd);
		u->efd = -1;
		return r;
	}
	u->loop = loop;
	return 0;
}

static void uring_detach(struct blk_queue *q)
{
	struct uring_q *u = q->io_priv;
	if (u->efd < 0)
		return;
	if (u->loop)
		u->loop->del_fd(u->loop, u->efd);
	io_uring_unregister_eventfd(&u->ring);
	close(u->efd);
	u->efd = -1;
	u->loop = NULL;
}

const struct blk_io_ops blk_io_uring = {
    .name = "io_uring",
    .init = uring_init,
    .fini = uring_fini,
    .submit = uring_submit,
    .commit = uring_commit,
    .reap = uring_reap,
    .attach = uring_attach,
    .detach = uring_detach,
};
