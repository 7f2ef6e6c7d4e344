/* SPDX-License-Identifier: MIT */
/*
 * vio/blk.h - virtio-blk (VIRTIO 1.2 section 5.2, VIRTIO_ID_BLOCK): a disk.
 *
 * Device side: a struct vio_blk_device serves an image file or a block
 * device through a struct vio_device, which a transport (vhost-user backend,
 * inproc) exposes to a driver:
 *
 *     struct vio_blk_device_opts c = {
 *         .path = "disk.img", .size = 1 << 30, .num_queues = 2,
 *     };
 *     char err[256];
 *     struct vio_blk_device *bd = vio_blk_device_new(&c, err, sizeof(err));
 *     struct vio_device *dev = vio_blk_device_dev(bd);
 *     ... a transport serves dev; each queue's kick runs on its own thread ...
 *     vio_blk_device_drain(bd, 5000);   // SIGTERM: let in-flight finish
 *     ... stop the transport ...
 *     vio_blk_device_free(bd);
 *
 * Requests: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES; anything else is
 * answered VIRTIO_BLK_S_UNSUPP.  Every request is validated (header, status
 * byte, data direction, sector range, length, segment limits) and a bad
 * one is answered VIRTIO_BLK_S_IOERR, never trusted.  See docs/blk.md.
 * Cache: writeback with FLUSH negotiated, else writethrough; with
 * VIRTIO_BLK_F_CONFIG_WCE (offered) the driver may switch by writing 0 or
 * 1 to the config field writeback (struct virtio_blk_config.wce), the one
 * config byte it may write.
 *
 * Threading: the kick for queue i touches only queue i's state, so the
 * queues of one device may be served by different threads concurrently.
 * Completion: requests complete in any order (reads and writes the page
 * cache serves at once, the rest through io_uring).  On a queue started
 * with an event loop (vio_device_queue_start, as vio/run.h does) they
 * stay in flight across kicks and are pushed as they complete; the
 * queue's stop completes and pushes all of them.  Without a loop a kick
 * returns only when every request it popped has completed and been
 * pushed back to the driver.
 *
 * Driver side: struct vio_blk, bound by a vio_blk driver on a vio_bus;
 * see "driver side" below and docs/blk.md.
 */
#ifndef VIO_BLK_H
#define VIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/device.h>
#include <vio/driver.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device side ---- */

#define VIO_BLK_DEFAULT_SEG_MAX 126u

struct vio_blk_device_opts {
	/*
	 * Image: a regular file or a block device, or a network image by
	 * URI (docs/blk.md "Network images"): nbd://HOST[:PORT]/EXPORT,
	 * nbd+unix:///EXPORT?socket=PATH (NBD, libnbd), rbd:POOL/IMAGE
	 * (Ceph, librbd), when vio was built with that library.
	 */
	const char *path;
	/*
	 * Bytes (a non-zero multiple of 512).  0: the image must exist, its
	 * size is used.  Non-zero: a missing regular file is created with
	 * this size; an existing image must have exactly this size (never
	 * resized: a mismatch is an error).
	 */
	uint64_t size;
	const char *name;    /* for log lines; NULL: "blk" */
	const char *serial;  /* GET_ID answer (at most 20 bytes used); NULL:
			      * "vio-blk-" + a hash of the path */
	unsigned num_queues; /* 0: 1; more than 1 offers VIRTIO_BLK_F_MQ */
	uint16_t queue_size; /* largest queue offered, 4..32768; 0: 256 */
	uint32_t blk_size;   /* logical block size: 512 (0) or 4096 */
	/* Data segments per request (VIRTIO_BLK_F_SEG_MAX); 0: queue_size
	 * - 2, at most VIO_BLK_DEFAULT_SEG_MAX (126).  A driver's rings
	 * must hold seg_max + 2 descriptors: QEMU's vhost-user-blk-pci
	 * rings are 128 (queue-size=) by default.  A segment is a descriptor
	 * holding data, however many memory regions its bytes touch. */
	uint32_t seg_max;
	/* Bytes per data segment (VIRTIO_BLK_F_SIZE_MAX), per descriptor
	 * as for seg_max; 0: 1 MiB. */
	uint32_t size_max;
	/* Segments per DISCARD / WRITE_ZEROES request; 0: 32. */
	uint32_t max_discard_seg;
	bool readonly;	 /* VIRTIO_BLK_F_RO; OUT, DISCARD, WRITE_ZEROES fail */
	bool no_discard; /* do not offer VIRTIO_BLK_F_DISCARD */
	bool no_write_zeroes; /* do not offer VIRTIO_BLK_F_WRITE_ZEROES */
	/* Ring features offered besides VERSION_1 (default: all three). */
	bool no_packed;	   /* VIRTIO_F_RING_PACKED */
	bool no_event_idx; /* VIRTIO_RING_F_EVENT_IDX */
	bool no_indirect;  /* VIRTIO_RING_F_INDIRECT_DESC */
	/*
	 * Busy-poll: once a queue is empty, keep polling it for poll_us
	 * microseconds (0: 50) before re-enabling notifications and returning
	 * from the kick.  Trades a core for latency.  A kick still returns
	 * after a ring's worth of requests (vio_device_kick() then says more
	 * are waiting).
	 */
	bool poll;
	unsigned poll_us;
	/* Force the synchronous I/O backend (preadv/pwritev/fdatasync) even
	 * when io_uring works (tests, seccomp'd sandboxes). */
	bool no_io_uring;
	/* Network images: a request not answered by the storage within
	 * io_timeout seconds fails (VIRTIO_BLK_S_IOERR) and the connection
	 * is dropped (made again for the next request); 0: 30. */
	unsigned io_timeout;
};

struct vio_blk_device;

/*
 * Open (or create) the image and build the device.  NULL on failure, with
 * errno set and a one-line reason in err (if errlen > 0).  io_uring is
 * used when built in and io_uring_queue_init works; otherwise the
 * synchronous backend (the reason goes to the log).
 */
struct vio_blk_device *vio_blk_device_new(const struct vio_blk_device_opts *cfg,
					  char *err, size_t errlen);
/* The virtio device, to hand to a transport.  Owned by bd. */
struct vio_device *vio_blk_device_dev(const struct vio_blk_device *bd);
/* Capacity in 512-byte sectors (0 for NULL). */
uint64_t vio_blk_device_capacity(const struct vio_blk_device *bd);
/*
 * Live resize (docs/blk.md "Resizing"): the capacity becomes sectors
 * (512 bytes each), or with sectors 0 the image's current size (rounded
 * down to a sector: after `truncate -s` or `lvextend`).  A regular image
 * smaller than sectors is grown (sparse).  Growing is applied at once:
 * the device accepts the new range, then the config space changes and
 * the transport tells the driver (vhost-user: BACKEND_CONFIG_CHANGE_MSG;
 * a Linux guest's /sys/block/vdX/size follows).  Shrinking is refused
 * with -EPERM and the capacity stays: the driver may have data there.
 * 0 (also when nothing changed), -EPERM, -ENOSPC (a block device or
 * read-only image smaller than asked), or the I/O error; err (if errlen
 * > 0) says why in one line.  Any thread; resizes are serialised.
 */
int vio_blk_device_resize(struct vio_blk_device *bd, uint64_t sectors,
			  char *err, size_t errlen);
/* "io_uring" or "sync" (local images), "nbd" or "rbd" (network). */
const char *vio_blk_device_backend(const struct vio_blk_device *bd);
/*
 * Wait until no kick is running and no request is in flight: every
 * request popped so far has completed (and, for FLUSH, is durable) and
 * was pushed to the driver (in flight between kicks, a queue's loop
 * completes it meanwhile).
 * Busy-polling kicks are told to return early.  Call it from any thread
 * (e.g. after SIGTERM), then stop the transport so no new kick starts.
 * timeout_ms < 0 waits forever.  0 or -ETIMEDOUT.
 */
int vio_blk_device_drain(struct vio_blk_device *bd, int timeout_ms);
/* Close the image and free the device; its transport must be gone. */
void vio_blk_device_free(struct vio_blk_device *bd);

/*
 * Counters of one queue since the device was made (across connections
 * and resets).  Each is written only by the thread that runs the queue's
 * kick, once per batch, with relaxed atomics: counting costs no lock and
 * no syscall.  A snapshot taken while the queue runs may be a batch
 * behind, and its fields need not be from the same instant.
 */
struct vio_blk_queue_stats {
	uint64_t requests;	/* chains answered, of any type */
	uint64_t reads;		/* VIRTIO_BLK_T_IN handed to the I/O backend */
	uint64_t writes;	/* VIRTIO_BLK_T_OUT handed to the I/O backend */
	uint64_t flushes;	/* VIRTIO_BLK_T_FLUSH */
	uint64_t bytes_read;	/* data bytes of reads that succeeded */
	uint64_t bytes_written; /* data bytes of writes that succeeded */
	/* answered other than VIRTIO_BLK_S_OK (I/O errors, bad or
	 * unsupported requests), or not answerable (no status byte) */
	uint64_t errors;
	uint64_t broken; /* times the queue broke (ring protocol violation) */
};
/* Copy queue q's counters to *out.  0, or -EINVAL if q is out of range. */
int vio_blk_device_stats(const struct vio_blk_device *bd, unsigned q,
			 struct vio_blk_queue_stats *out);
/* Queues the device has (vio_blk_device_opts.num_queues, or 1). */
unsigned vio_blk_device_num_queues(const struct vio_blk_device *bd);

/* ---- driver side ---- */

/*
 * The driver (src/blk/driver.c) drives any virtio-blk device through any
 * transport: vio's own device over inproc, qemu-storage-daemon over the
 * vhost-user frontend.  Each program makes its own driver instance:
 *
 *     struct vio_blk_driver_opts dc = {.queue_depth = 32};
 *     struct vio_driver *drv = vio_blk_driver_new(&dc);
 *     vio_bus_register(bus, drv);
 *     vio_bus_add(bus, vdev);                       // probe: negotiate,
 *     struct vio_blk *b = vio_blk_from_vdev(vdev);  // config, queues
 *
 *     vio_blk_read(b, 0, offset, buf, len);         // synchronous
 *
 *     struct vio_blk_req r = {.op = VIO_BLK_OP_READ, .offset = off,
 *                             .buf = buf, .len = len, .done = cb};
 *     vio_blk_submit(b, q, &r);                     // asynchronous
 *     vio_blk_poll(b, q, NULL, 0, -1);              // runs cb(&r, result)
 *
 *     vio_bus_remove(bus, vdev); ... vio_blk_driver_free(drv);
 *
 * Requests: offsets and lengths are bytes, multiples of 512 (else
 * -EINVAL), inside the capacity (else -ERANGE).  A request longer than
 * one virtio request carries (seg_max * size_max; with indirect
 * descriptors at most 30 segments, the ring's indirect table of 32
 * less header and status; or the slot's bounce buffer) is split into
 * several virtio requests, transparently, in both APIs.  Writes, discards and
 * write-zeroes on a read-only device (VIRTIO_BLK_F_RO) fail with -EROFS before
 * anything is sent; DISCARD and WRITE_ZEROES without their feature with
 * -EOPNOTSUPP; FLUSH without VIRTIO_BLK_F_FLUSH succeeds at once (the device is
 * writethrough). Device status VIRTIO_BLK_S_IOERR gives -EIO,
 * VIRTIO_BLK_S_UNSUPP -EOPNOTSUPP.  The used length is checked: a device
 * that reports fewer bytes than a READ's data plus the status byte (or 0
 * for any other request: no status written) fails that request with -EIO
 * and a log line; nothing it did not say it wrote reaches the caller's
 * buffer.  A broken queue (a device that violated the
 * ring protocol, or asked for a reset) fails everything on it with -EIO, for
 * good.
 *
 * Buffers: a buffer that lies inside one region of the vdev's vio_mem
 * (vio_mem_alloc(vio_drvdev_mem(vdev), ...)) is handed to the device as is
 * (zero-copy).  Any other buffer is copied through bounce buffers
 * preallocated per request slot at probe.  Nothing is allocated per
 * request.  Allocate zero-copy buffers before starting I/O when you can:
 * a transport learns of new memory regions only when it is notified.
 *
 * Threading: each queue is driven by one thread at a time; different
 * queues may be driven by different threads concurrently.  Probe and
 * remove (the bus's thread) must not run while any queue is in use.
 */

struct vio_blk_driver_opts {
	/*
	 * Request slots per queue: virtio requests in flight at once (a
	 * split request uses one slot per piece).  0: 32.  At most the
	 * queue size.
	 */
	unsigned queue_depth;
	/* Queues to use; 0: every queue the device has (VIRTIO_BLK_F_MQ). */
	unsigned num_queues;
	/* Descriptors per queue; 0: the device's maximum. */
	unsigned queue_size;
	/* Bounce buffer bytes per slot (copying path); 0: 128 KiB.
	 * Rounded up to a multiple of 4096. */
	size_t bounce_size;
	/* Ring features the driver would otherwise take when offered. */
	bool no_packed;	   /* VIRTIO_F_RING_PACKED */
	bool no_event_idx; /* VIRTIO_RING_F_EVENT_IDX */
	bool no_indirect;  /* VIRTIO_RING_F_INDIRECT_DESC */
};

/*
 * A driver instance that matches VIRTIO_ID_BLOCK from any vendor, with
 * its own copy of cfg (NULL: defaults).  Register it on a bus; free it
 * after it is unregistered from every bus.  NULL with errno (EINVAL for
 * a bad config, ENOMEM).
 */
struct vio_driver *vio_blk_driver_new(const struct vio_blk_driver_opts *cfg);
void vio_blk_driver_free(struct vio_driver *drv);
/* The same driver with the default config. */
extern const struct vio_driver vio_blk_driver;

struct vio_blk;
/* The driver state of a vdev bound to a vio_blk driver, else NULL. */
struct vio_blk *vio_blk_from_vdev(struct vio_drvdev *vdev);
struct vio_drvdev *vio_blk_vdev(const struct vio_blk *b);

/* ---- what probe found (config space, 5.2.4, and negotiation) ---- */

uint64_t vio_blk_capacity_bytes(const struct vio_blk *b);
unsigned vio_blk_num_queues(const struct vio_blk *b);
uint32_t vio_blk_block_size(const struct vio_blk *b);
bool vio_blk_readonly(const struct vio_blk *b);
/* A negotiated feature bit (VIRTIO_BLK_F_*, VIRTIO_F_*, ...). */
bool vio_blk_has_feature(const struct vio_blk *b, unsigned bit);

struct vio_blk_info {
	uint64_t capacity; /* 512-byte sectors */
	uint32_t blk_size; /* logical block size, 512 without BLK_SIZE */
	uint32_t seg_max;  /* 1 without SEG_MAX */
	uint32_t size_max; /* 0: no limit (no SIZE_MAX, or 0) */
	/* TOPOLOGY (zero without it) */
	uint8_t physical_block_exp, alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint16_t device_queues; /* num_queues in config space (MQ), else 1 */
	/* DISCARD / WRITE_ZEROES (zero without them) */
	uint32_t max_discard_sectors, max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
	bool write_zeroes_may_unmap;
	/* what the driver set up */
	unsigned num_queues;   /* queues in use */
	unsigned queue_size;   /* descriptors per queue */
	unsigned queue_depth;  /* request slots per queue */
	unsigned segs_per_req; /* data segments per virtio request */
	size_t bounce_size;    /* bytes per slot */
	size_t max_zc_bytes;   /* data bytes per virtio request, zero-copy */
	size_t max_copy_bytes; /* data bytes per virtio request, copying */
	bool packed, event_idx, indirect;
};
void vio_blk_get_info(const struct vio_blk *b, struct vio_blk_info *out);

/* ---- synchronous API: 0 or negative errno (vio/error.h); a q not below
 * vio_blk_num_queues is -ENXIO ---- */

int vio_blk_read(struct vio_blk *b, unsigned q, uint64_t offset, void *buf,
		 size_t len);
int vio_blk_write(struct vio_blk *b, unsigned q, uint64_t offset,
		  const void *buf, size_t len);
/* Every write completed before the call is durable when it returns. */
int vio_blk_flush(struct vio_blk *b, unsigned q);
/* Deallocate a range (a hint: reads may return old data or zeroes). */
int vio_blk_discard(struct vio_blk *b, unsigned q, uint64_t offset,
		    uint64_t len);
/* Zero a range; unmap: the device may deallocate it too. */
int vio_blk_write_zeroes(struct vio_blk *b, unsigned q, uint64_t offset,
			 uint64_t len, bool unmap);
/* The device's id string (VIRTIO_BLK_T_GET_ID), NUL-terminated. */
int vio_blk_get_id(struct vio_blk *b, unsigned q, char id[21]);

/* ---- asynchronous API ---- */

enum vio_blk_op {
	VIO_BLK_OP_READ,
	VIO_BLK_OP_WRITE,
	VIO_BLK_OP_FLUSH,
	VIO_BLK_OP_DISCARD,
	VIO_BLK_OP_WRITE_ZEROES,
	VIO_BLK_OP_GET_ID, /* buf gets up to min(len, 20) id bytes */
};
/* WRITE_ZEROES: the device may deallocate the range. */
#define VIO_BLK_REQ_UNMAP 1u

/*
 * One request, owned by the caller, which must keep it (and buf) alive
 * and untouched from vio_blk_submit until it completes.  Requests are
 * linked through their private fields: submitting never allocates and
 * never fails for lack of room (what does not fit in the slots waits in
 * the queue and goes out as slots free up).
 */
struct vio_blk_req {
	int op;		/* enum vio_blk_op */
	uint32_t flags; /* VIO_BLK_REQ_* */
	uint64_t offset;
	void *buf;
	size_t len;
	/* Run from vio_blk_poll (or a synchronous call's wait) on the
	 * queue's thread.  NULL: the request is returned in poll's array. */
	void (*done)(struct vio_blk_req *req, int result);
	void *user;
	int result; /* 0 or negative errno, set before completion */
	/* private: the driver's between submit and completion */
	struct vio_blk_req *priv_next;
	size_t priv_issued;   /* bytes sent so far */
	unsigned priv_pieces; /* virtio requests in flight */
	int priv_err;
	bool priv_copy; /* through bounce buffers */
	bool priv_sent; /* every piece sent */
};

/*
 * Queue req on queue q and send what fits.  0, or before anything is
 * queued: -EINVAL (bad op, alignment, NULL buf), -ERANGE (past the
 * capacity), -EROFS, -EOPNOTSUPP, -ENXIO (no such queue), -EIO (the
 * queue is broken).  From a completion callback, requests are sent when
 * the callback returns.
 */
int vio_blk_submit(struct vio_blk *b, unsigned q, struct vio_blk_req *req);
/*
 * Send what waits, harvest what the device finished, complete requests:
 * callbacks run, callback-less requests go into done[] (at most max; the
 * rest wait for the next poll).  If nothing completed, wait up to
 * timeout_ms (0: not at all, -1: as long as something is in flight) for
 * the device.  Returns the number of requests completed (callbacks run
 * plus entries stored), 0 (timeout, or nothing in flight), -EIO if the
 * queue broke and nothing could be completed, -EDEADLK from inside a
 * callback of this queue, -ENXIO (no such queue).
 */
int vio_blk_poll(struct vio_blk *b, unsigned q, struct vio_blk_req **done,
		 unsigned max, int timeout_ms);
/* Requests submitted on q and not yet completed by poll. */
unsigned vio_blk_pending(const struct vio_blk *b, unsigned q);

#ifdef __cplusplus
}
#endif
#endif
