/* SPDX-License-Identifier: MIT */
/*
 * vio/blk.h - virtio-blk (VIRTIO 1.2 section 5.2, VIRTIO_ID_BLOCK): a disk.
 *
 * Device side: a struct vio_blk_device serves an image file or a block
 * device through a struct vio_dev, which a transport (vhost-user backend,
 * inproc) exposes to a driver:
 *
 *     struct vio_blk_device_config c = {
 *         .path = "disk.img", .size = 1 << 30, .num_queues = 2,
 *     };
 *     char err[256];
 *     struct vio_blk_device *bd = vio_blk_device_new(&c, err, sizeof(err));
 *     struct vio_dev *dev = vio_blk_device_dev(bd);
 *     ... a transport serves dev; each queue's kick runs on its own thread ...
 *     vio_blk_device_drain(bd, 5000);   // SIGTERM: let in-flight finish
 *     ... stop the transport ...
 *     vio_blk_device_free(bd);
 *
 * Requests: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES; anything else is
 * answered VIRTIO_BLK_S_UNSUPP.  Every request is validated (header, status
 * byte, data direction, sector range, length, segment limits) and a bad
 * one is answered VIRTIO_BLK_S_IOERR, never trusted.  See docs/blk.md.
 *
 * Threading: the kick for queue i touches only queue i's state, so the
 * queues of one device may be served by different threads concurrently.
 * A kick returns only when every request it popped has completed and been
 * pushed back to the driver ("a kick drains its own batch").
 */
#ifndef VIO_BLK_H
#define VIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/device.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device side ---- */

struct vio_blk_device_config {
	/* Image: a regular file or a block device. */
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
	 * - 2 as QEMU does, at most 1024 (IOV_MAX). */
	uint32_t seg_max;
	/* Bytes per data segment (VIRTIO_BLK_F_SIZE_MAX); 0: 1 MiB. */
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
	 * from the kick.  Trades a core for latency.
	 */
	bool poll;
	unsigned poll_us;
	/* Force the synchronous I/O backend (preadv/pwritev/fdatasync) even
	 * when io_uring works (tests, seccomp'd sandboxes). */
	bool no_io_uring;
};

struct vio_blk_device;

/*
 * Open (or create) the image and build the device.  NULL on failure, with
 * errno set and a one-line reason in err (if errlen > 0).  io_uring is
 * used when built in and io_uring_queue_init works; otherwise the
 * synchronous backend (the reason goes to the log).
 */
struct vio_blk_device *
vio_blk_device_new(const struct vio_blk_device_config *cfg, char *err,
		   size_t errlen);
/* The virtio device, to hand to a transport.  Owned by bd. */
struct vio_dev *vio_blk_device_dev(const struct vio_blk_device *bd);
/* Capacity in 512-byte sectors. */
uint64_t vio_blk_device_capacity(const struct vio_blk_device *bd);
/* "io_uring" or "sync". */
const char *vio_blk_device_backend(const struct vio_blk_device *bd);
/*
 * Wait until no kick is running: every request popped so far has
 * completed (and, for FLUSH, is durable) and was pushed to the driver.
 * Busy-polling kicks are told to return early.  Call it from any thread
 * (e.g. after SIGTERM), then stop the transport so no new kick starts.
 * timeout_ms < 0 waits forever.  0 or -ETIMEDOUT.
 */
int vio_blk_device_drain(struct vio_blk_device *bd, int timeout_ms);
/* Close the image and free the device; its transport must be gone. */
void vio_blk_device_free(struct vio_blk_device *bd);

/* ---- driver side ---- */

/* (reserved: the virtio-blk driver's API goes here) */

#ifdef __cplusplus
}
#endif
#endif
