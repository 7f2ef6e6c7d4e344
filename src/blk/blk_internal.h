/* SPDX-License-Identifier: MIT */
/*
 * Internal to src/blk: the device's per-queue state and the I/O backend
 * interface (a const ops table per backend: io_sync.c, io_uring.c).
 *
 * A queue processes requests in batches: device.c pops up to queue-size
 * chains, validates each and hands the reads, writes and flushes to the
 * backend (submit), then waits for all of them (wait), writes the status
 * bytes and pushes the batch back.  Every slot and iovec a batch needs is
 * preallocated per queue: nothing is allocated per request.
 */
#ifndef VIO_BLK_INTERNAL_H
#define VIO_BLK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_blk.h>

#include "util/log.h"
#include <vio/blk.h>
#include <vio/ring.h>

enum blk_op {
	BLK_OP_NONE,  /* answered by device.c, nothing to submit */
	BLK_OP_READ,  /* preadv into iov */
	BLK_OP_WRITE, /* pwritev from iov (+ fdatasync if writethrough) */
	BLK_OP_FLUSH, /* fdatasync */
};

/* One request of a batch. */
struct blk_req {
	uint32_t head;	   /* the chain, for vio_vq_push */
	uint32_t used_len; /* bytes written to the driver, status included */
	uint8_t *status;   /* the last writable byte, NULL if none */
	uint8_t op;	   /* enum blk_op */
	uint8_t result;	   /* the status answered; IOERR if none was */
	bool writethrough; /* WRITE: durable before completion */
	struct iovec *iov; /* data, in the queue's vec[] */
	unsigned iovcnt;
	uint64_t offset; /* bytes into the image */
	uint64_t len;	 /* data bytes */
	/* backend bookkeeping */
	uint64_t done; /* bytes transferred so far */
	unsigned pending;
	int err;
};

struct blk_queue;

struct blk_io_ops {
	const char *name;
	/* Per-queue setup; 0 or negative errno (the device then falls back
	 * to the synchronous backend). */
	int (*init)(struct blk_queue *q, unsigned depth);
	void (*fini)(struct blk_queue *q);
	/* Start req (READ, WRITE or FLUSH); its end is reported through
	 * blk_req_done(), at the latest from wait(). */
	void (*submit)(struct blk_queue *q, struct blk_req *req);
	/* Return only when every submitted request is done. */
	void (*wait)(struct blk_queue *q);
};

struct blk_queue {
	struct vio_blk_device *bd;
	unsigned idx;
	int fd;
	const struct blk_io_ops *io;
	void *io_priv;	      /* the backend's per-queue state */
	struct blk_req *reqs; /* [nreqs]: one batch */
	unsigned nreqs;
	struct vio_iov *iov; /* [iov_cap]: popped chains of one batch */
	struct iovec *vec;   /* [iov_cap]: their data, as iovecs */
	unsigned iov_cap;
	unsigned chain_max;    /* segments one chain may need (pop's max_iov) */
	struct vio_used *used; /* [nreqs] */
	/* a DISCARD / WRITE_ZEROES payload, copied here once from shared
	 * memory, then validated and executed: [max_discard_seg] */
	struct virtio_blk_discard_write_zeroes *dwz;
	struct vio_ratelimit rl;
	/* written by this queue's kick only (relaxed atomic stores), read
	 * by vio_blk_device_stats from any thread (relaxed loads) */
	struct vio_blk_queue_stats st;
};

#define SECTOR 512u
/* Per DISCARD / WRITE_ZEROES segment: 2 GiB - 512, as QEMU's
 * BDRV_REQUEST_MAX_SECTORS, so every range fits an off_t and an int. */
#define BLK_DWZ_MAX_SECTORS 4194303u

struct vio_blk_device {
	struct vio_device *dev;
	int fd;
	bool readonly;
	bool is_blkdev;
	uint64_t capacity; /* 512-byte sectors */
	uint32_t seg_max, size_max, dwz_seg;
	uint64_t poll_ns;
	const struct blk_io_ops *io;
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	char name[32];
	int active;   /* kicks running: __atomic access */
	int draining; /* drain calls waiting: __atomic access */
	unsigned nq;
	struct blk_queue q[]; /* [nq] */
};

/* What the driver negotiated (and the cache mode it chose), read once
 * per kick. */
struct blk_neg {
	bool writethrough; /* every write durable before completion */
	bool discard, write_zeroes;
};

/*
 * Validate one popped chain (request.c) and either answer it at once
 * (req->op stays BLK_OP_NONE; DISCARD and WRITE_ZEROES are executed
 * here, synchronously) or describe the I/O for the backend.  vec has
 * room for the chain's segments.
 */
void blk_req_start(struct blk_queue *q, struct blk_req *req,
		   const struct vio_chain *c, struct iovec *vec,
		   const struct blk_neg *neg);

/*
 * A chain vio_vq_pop() returned with -E2BIG (legal, more segments than
 * the queue's chain_max): answered IOERR with used length 1 through the
 * status byte, the last byte of c->in[] (the end of the writable area),
 * or with used length 0 if the chain has no writable byte.
 */
void blk_req_too_long(struct blk_queue *q, struct blk_req *req,
		      const struct vio_chain *c);

/* A backend reports that req finished: err 0 or a negative errno. */
void blk_req_done(struct blk_queue *q, struct blk_req *req, int err);
/*
 * Finish req synchronously from req->done bytes on (the whole of it when
 * done is 0): preadv/pwritev in IOV_MAX pieces, then fdatasync for FLUSH
 * and writethrough writes.  0 or negative errno (-EIO at end of file).
 * Advances req->iov in place.
 */
int blk_sync_finish(int fd, struct blk_req *req);

extern const struct blk_io_ops blk_io_sync;
#ifdef VIO_HAVE_LIBURING
extern const struct blk_io_ops blk_io_uring;
#endif

#endif
