/* SPDX-License-Identifier: MIT */
/*
 * Internal to src/blk: the device's per-queue state and the I/O backend
 * interface (a const ops table per backend: io_sync.c, io_uring.c for
 * local files; io_nbd.c, io_rbd.c for network images, blk_backend.h).
 *
 * A queue owes the driver every chain it popped and has not pushed: each
 * sits in a slot of the queue's in-flight table (queue.c), preallocated,
 * one slot per ring entry, indexed by the chain's head id (the low 16
 * bits: a packed head carries its descriptor count above them).  A slot
 * holds the request's state and its data iovecs: nothing is allocated
 * per request.  A slot is FREE, INFLIGHT (its I/O started) or DONE (its
 * status written, its used entry waiting for the next push); pushes are
 * batched, in completion order.
 */
#ifndef VIO_BLK_INTERNAL_H
#define VIO_BLK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_blk.h>

#include "blk/blk_backend.h"
#include "util/log.h"
#include <vio/blk.h>
#include <vio/ring.h>

enum blk_op {
	BLK_OP_NONE,  /* answered by device.c, nothing to submit */
	BLK_OP_READ,  /* preadv into iov */
	BLK_OP_WRITE, /* pwritev from iov (+ fdatasync if writethrough) */
	BLK_OP_FLUSH, /* fdatasync */
	/* network backends only (local files: executed by request.c) */
	BLK_OP_DISCARD,	     /* one range: offset, len */
	BLK_OP_WRITE_ZEROES, /* one range: offset, len, unmap */
};

enum blk_slot_state {
	BLK_SLOT_FREE,
	BLK_SLOT_INFLIGHT, /* popped, its I/O not finished */
	BLK_SLOT_DONE,	   /* answered, in done[], not pushed yet */
};

/* One request: a slot of the queue's in-flight table. */
struct blk_req {
	uint32_t head;	   /* the chain, for vio_vq_push */
	uint8_t state;	   /* enum blk_slot_state */
	bool force_async;  /* test hook: skip the inline attempt */
	uint32_t used_len; /* bytes written to the driver, status included */
	uint8_t *status;   /* the last writable byte, NULL if none */
	uint8_t op;	   /* enum blk_op */
	uint8_t result;	   /* the status answered; IOERR if none was */
	bool writethrough; /* WRITE: durable before completion */
	bool unmap;	   /* WRITE_ZEROES may deallocate */
	struct iovec *iov; /* data: vec, or the queue's scratch */
	unsigned iovcnt;
	struct iovec *vec; /* the slot's own iovecs [queue's slot_iov] */
	uint64_t offset;   /* bytes into the image */
	uint64_t len;	   /* data bytes */
	/* backend bookkeeping */
	uint64_t done; /* bytes transferred so far */
	unsigned pending;
	int err;
	uint64_t tick;		/* the backend's submission time stamp */
	struct iovec *heap_vec; /* iovecs past slot_iov (network backends) */
};

struct blk_queue;
struct vio_loop;

struct blk_io_ops {
	const char *name;
	/* Per-queue setup; 0 or negative errno (the device then falls back
	 * to the synchronous backend). */
	int (*init)(struct blk_queue *q, unsigned depth);
	void (*fini)(struct blk_queue *q);
	/* Start req (READ, WRITE or FLUSH) from its slot's iovecs; its end
	 * is reported through blk_req_done(), maybe before submit returns
	 * (inline completion). */
	void (*submit)(struct blk_queue *q, struct blk_req *req);
	/* Hand what submit queued to the kernel (one syscall, no wait). */
	void (*commit)(struct blk_queue *q);
	/* Report every finished request (blk_req_done); with wait, block
	 * until at least one finished if any is in flight.  Returns the
	 * number of requests still in flight. */
	unsigned (*reap)(struct blk_queue *q, bool wait);
	/* Completions arrive through loop (an fd that calls
	 * blk_queue_event): 0 or negative errno.  NULL: no such fd. */
	int (*attach)(struct blk_queue *q, struct vio_loop *loop);
	void (*detach)(struct blk_queue *q);
};

struct blk_queue {
	struct vio_blk_device *bd;
	unsigned idx;
	int fd;
	const struct blk_io_ops *io;
	void *io_priv;	      /* the backend's per-queue state */
	struct blk_req *reqs; /* [nreqs]: the in-flight table */
	unsigned nreqs;
	unsigned owed;	   /* slots not FREE: __atomic stores (drain) */
	unsigned inflight; /* slots INFLIGHT */
	uint16_t *done;	   /* [nreqs]: DONE slots, in completion order */
	unsigned ndone;
	struct vio_used *used; /* [nreqs]: one push */
	struct iovec *vecs;    /* [nreqs * slot_iov]: the slots' iovecs */
	unsigned slot_iov;
	unsigned free_hint; /* where the next free-slot search starts */
	/* pop's scratch: one chain's segments and data iovecs [chain_max];
	 * a request with more data iovecs than slot_iov runs synchronously
	 * from scratch_vec */
	struct vio_iov *iov;
	struct iovec *scratch_vec;
	unsigned chain_max; /* segments one chain may need (pop's max_iov) */
	/* set by queue_start (the loop) or by each kick (vq) */
	struct vio_vq *vq;
	struct vio_loop *loop;
	bool stalled; /* popping stopped on a full table: completions resume */
	bool broken;
	/* a DISCARD / WRITE_ZEROES payload, copied here once from shared
	 * memory, then validated and executed: [max_discard_seg] */
	struct virtio_blk_discard_write_zeroes *dwz;
	struct vio_ratelimit rl;
	uint64_t rs; /* test hook's dice */
	/* written by this queue's thread only (relaxed atomic stores), read
	 * by vio_blk_device_stats from any thread (relaxed loads) */
	struct vio_blk_queue_stats st;
};

#define SECTOR 512u
/* Per DISCARD / WRITE_ZEROES segment: 2 GiB - 512, as QEMU's
 * BDRV_REQUEST_MAX_SECTORS, so every range fits an off_t and an int. */
#define BLK_DWZ_MAX_SECTORS 4194303u

struct vio_blk_device {
	struct vio_device *dev;
	int fd; /* a local image; -1 with a backend */
	/* a network image (blk_backend.h): its backend and state; NULL for a
	 * local file */
	const struct blk_backend *backend;
	void *img;
	uint64_t io_timeout_ns; /* a backend's requests fail after this */
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
	/* test hook: percent of reads and writes sent to io_uring with
	 * IOSQE_ASYNC instead of trying inline (completions in random
	 * order); 0 in production */
	unsigned test_async_pct;
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
 * (req->op stays BLK_OP_NONE; DISCARD and WRITE_ZEROES on a local image
 * are executed here, synchronously; on a network image they become
 * BLK_OP_DISCARD / BLK_OP_WRITE_ZEROES for its backend) or describe the
 * I/O for the backend.  vec has
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

/* Write req's answer from its result: err 0 or a negative errno. */
void blk_req_done(struct blk_queue *q, struct blk_req *req, int err);

/* queue.c: a backend reports that req finished (err 0 or a negative
 * errno): answered, its slot DONE and queued for the next push. */
void blk_req_end(struct blk_queue *q, struct blk_req *req, int err);
/* queue.c: the backend's completion fd fired (or a busy-poll turn):
 * push what completed, resume popping if the table was full. */
void blk_queue_event(struct blk_queue *q);
/* queue.c: the device ops of a queue. */
bool blk_queue_kick(struct blk_queue *q, struct vio_vq *vq);
int blk_queue_start(struct blk_queue *q, struct vio_vq *vq,
		    struct vio_loop *loop);
void blk_queue_stop(struct blk_queue *q, struct vio_vq *vq);
/* queue.c: allocate / free a queue's table and buffers. */
int blk_queue_init(struct vio_blk_device *bd, struct blk_queue *q, unsigned idx,
		   uint16_t qsize);
void blk_queue_fini(struct blk_queue *q);
/* queue.c: wait for what a queue has in flight, then forget it (a reset
 * of a queue that was never stopped; nothing is pushed). */
void blk_queue_abandon(struct blk_queue *q);
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
