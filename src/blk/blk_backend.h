/* SPDX-License-Identifier: MIT */
/*
 * Internal to src/blk: storage backends, for images that are not local
 * files (a network disk opened through its own client library: NBD with
 * libnbd, io_nbd.c; Ceph RBD with librbd, io_rbd.c).
 *
 * An image string (vio_blk_device_opts.path, `vio serve blk --image`) is
 * matched against each backend's prefixes (image.c, blk_backend_find);
 * no match: a local file or block device, served by io_uring or the
 * synchronous backend exactly as before (bd->backend NULL, bd->fd open).
 *
 * A backend's device-wide half (struct blk_backend) opens the image on
 * the caller's thread (vio_blk_device_new; it may block, bounded) and
 * says what the image offers (struct blk_image_info).  Its per-queue half
 * is an ordinary struct blk_io_ops (blk_internal.h) with these rules:
 *
 *  - submit() gets READ, WRITE, FLUSH, DISCARD and WRITE_ZEROES (the last
 *    two only for a backend: local files execute them in request.c).
 *    DISCARD / WRITE_ZEROES: one range, req->offset / req->len bytes
 *    (max_discard_seg is 1 for backends), req->unmap (WRITE_ZEROES may
 *    deallocate).  req->writethrough (WRITE, DISCARD, WRITE_ZEROES): the
 *    range must be durable before the request completes (FUA, or a flush
 *    after it).  READ / WRITE data: req->iov / req->iovcnt, valid until
 *    the request completes (the slot's own iovecs).
 *  - Every request is ended exactly once with blk_req_end(q, req, err)
 *    (err 0 or negative errno: IOERR to the driver, logged rate-limited),
 *    on the queue's thread only: inside submit (inline), reap, or the
 *    callback of the fd attach() added to the queue's loop.  A library
 *    that completes on its own threads hands completions over (a locked
 *    list + an eventfd) and ends them in reap().
 *  - attach(q, loop): add the completion fd with loop->add_fd(loop, fd,
 *    0, cb, q) (level-triggered readability; cb drains what it needs,
 *    then calls blk_queue_event(q), which calls reap(q, false) and
 *    pushes).  detach() removes it (loop->del_fd) before it is closed.
 *    Timers: loop->set_timer / cancel_timer (one per fn + arg).  Without
 *    attach (no loop), queue.c calls reap(q, true) until nothing is in
 *    flight.
 *  - reap(q, wait): end what finished; with wait, block at most about a
 *    second for progress.  Never hang: a request older than the device's
 *    io_timeout_ns (bd->io_timeout_ns) is ended with -ETIMEDOUT (or the
 *    connection it waits on is failed, which ends it), so queue_stop,
 *    which loops on reap(q, true), is bounded.
 *  - commit(): hand queued work to the library (may be a no-op).
 *  - init(q, depth) / fini(q): per-queue state in q->io_priv; q->fd is -1.
 *    init failing fails vio_blk_device_new (no fallback for backends).
 */
#ifndef VIO_BLK_BACKEND_H
#define VIO_BLK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vio_blk_device;
struct vio_blk_device_opts;
struct blk_io_ops;

/* What a backend's open() learnt about the image. */
struct blk_image_info {
	uint64_t bytes;	       /* size; rounded down to 512 by the device */
	uint32_t phys;	       /* preferred I/O size (power of 2), 0: 512 */
	bool readonly;	       /* cannot be written: served VIRTIO_BLK_F_RO */
	bool can_discard;      /* offer VIRTIO_BLK_F_DISCARD */
	bool can_write_zeroes; /* offer VIRTIO_BLK_F_WRITE_ZEROES */
	/* Queues the image can serve coherently: 0 any; 1 (say) caps
	 * num_queues, with a warning. */
	unsigned max_queues;
};

struct blk_backend {
	const char *name; /* vio_blk_device_backend(): "nbd", "rbd" */
	const char *const *prefixes; /* image strings it takes; NULL-ended */
	/*
	 * Open image (the whole string, prefix included) for bd: fill *info,
	 * keep device-wide state in bd->img.  cfg: readonly, size (0, or the
	 * size the image must have), io_timeout.  May block (bounded by
	 * bd->io_timeout_ns).  0 or negative errno, err (errlen > 0) says
	 * why in one line.  bd->nq is already set (queues may be capped
	 * through info->max_queues).
	 */
	int (*open)(struct vio_blk_device *bd, const char *image,
		    const struct vio_blk_device_opts *cfg,
		    struct blk_image_info *info, char *err, size_t errlen);
	/* Close what open() made; every queue's fini already ran. */
	void (*close)(struct vio_blk_device *bd);
	/* The image's size now, in bytes (vio_blk_device_resize with 0
	 * sectors, e.g. after a resize event).  Any thread; may block
	 * briefly.  0 or negative errno. */
	int (*size)(struct vio_blk_device *bd, uint64_t *bytes);
	/* Grow the image to bytes (vio_blk_device_resize past its end).
	 * NULL: cannot (-ENOSPC). */
	int (*grow)(struct vio_blk_device *bd, uint64_t bytes);
	const struct blk_io_ops *io; /* per queue */
};

/* The backend whose prefix starts image, or NULL (a local file). */
const struct blk_backend *blk_backend_find(const char *image);
/* Is image a network URI of a backend this build lacks (err says so)? */
bool blk_backend_missing(const char *image, char *err, size_t errlen);

#ifdef VIO_HAVE_NBD
extern const struct blk_backend blk_backend_nbd; /* io_nbd.c */
#endif
#ifdef VIO_HAVE_RBD
extern const struct blk_backend blk_backend_rbd; /* io_rbd.c */
#endif

#endif
