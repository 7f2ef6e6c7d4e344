/* SPDX-License-Identifier: MIT */
/*
 * The synchronous I/O backend: preadv/pwritev/fdatasync on the queue's
 * worker thread, one request after the other.  Used when io_uring is not
 * built in, does not work (seccomp, old kernel), or is turned off; and by
 * the io_uring backend to finish a short transfer.
 */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "blk/blk_internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Drop the first n bytes of (*iov, *cnt), in place. */
static void iov_advance(struct iovec **iov, unsigned *cnt, uint64_t n)
{
	while (*cnt && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt && n) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

static int sync_rw(int fd, struct blk_req *req)
{
	struct iovec *iov = req->iov;
	unsigned cnt = req->iovcnt;

	iov_advance(&iov, &cnt, req->done);
	while (req->done < req->len && cnt) {
		int n_iov = cnt > IOV_MAX ? IOV_MAX : (int)cnt;
		off_t off = (off_t)(req->offset + req->done);
		ssize_t n = req->op == BLK_OP_READ
				? preadv(fd, iov, n_iov, off)
				: pwritev(fd, iov, n_iov, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* end of file: the image shrank */
		req->done += (uint64_t)n;
		iov_advance(&iov, &cnt, (uint64_t)n);
	}
	return req->done == req->len ? 0 : -EIO;
}

static int sync_datasync(int fd)
{
	while (fdatasync(fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int blk_sync_finish(int fd, struct blk_req *req)
{
	int r = 0;
	if (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE)
		r = sync_rw(fd, req);
	if (r == 0 && (req->op == BLK_OP_FLUSH ||
		       (req->op == BLK_OP_WRITE && req->writethrough)))
		r = sync_datasync(fd);
	return r;
}

static int sync_init(struct blk_queue *q, unsigned depth)
{
	(void)q;
	(void)depth;
	return 0;
}

static void sync_fini(struct blk_queue *q)
{
	(void)q;
}

static void sync_submit(struct blk_queue *q, struct blk_req *req)
{
	blk_req_end(q, req, blk_sync_finish(q->fd, req));
}

static void sync_commit(struct blk_queue *q)
{
	(void)q; /* everything completed in submit */
}

static unsigned sync_reap(struct blk_queue *q, bool wait)
{
	(void)q;
	(void)wait;
	return 0;
}

const struct blk_io_ops blk_io_sync = {
    .name = "sync",
    .init = sync_init,
    .fini = sync_fini,
    .submit = sync_submit,
    .commit = sync_commit,
    .reap = sync_reap,
};
