/* SPDX-License-Identifier: MIT */
/*
 * vio/rng.h - virtio-rng (VIRTIO 1.2 section 5.4, VIRTIO_ID_RNG): an
 * entropy source.  One queue (requestq); the driver posts writable
 * buffers, the device fills them with random bytes.  No config space, no
 * device feature bits.
 *
 * Device side:
 *
 *     struct vio_rng_device_opts o = {.queue_size = 256};
 *     struct vio_rng_device *rd = vio_rng_device_new(&o, err, sizeof(err));
 *     struct vio_device *dev = vio_rng_device_dev(rd);   // getrandom(2)
 *     ... a transport (vio_inproc_new, vhost-user) serves dev ...
 *     vio_rng_device_free(rd);
 *
 * Every device type follows this pattern (vio/blk.h too):
 * vio_<type>_device_new(opts, err, errlen) returns the type's own handle,
 * vio_<type>_device_dev() the struct vio_device a transport serves, and
 * vio_<type>_device_free() frees both.  Drivers: a constant
 * vio_<type>_driver with the defaults; a type whose driver takes options
 * adds vio_<type>_driver_new(opts) / _free (blk; rng has none).
 *
 * Driver side: register vio_rng_driver on a bus; once it is bound,
 *
 *     ssize_t n = vio_rng_read(vdev, buf, len);       // blocks until len
 */
#ifndef VIO_RNG_H
#define VIO_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vio/device.h>
#include <vio/driver.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vio_rng_device_opts {
	const char *name;    /* for log lines; NULL: "rng" */
	uint16_t queue_size; /* largest queue offered; 0: 256 */
	/* Ring features offered besides VERSION_1. */
	bool packed;	   /* VIRTIO_F_RING_PACKED (default: split only) */
	bool no_event_idx; /* do not offer VIRTIO_RING_F_EVENT_IDX */
	bool no_indirect;  /* do not offer VIRTIO_RING_F_INDIRECT_DESC */
	/*
	 * Entropy source: fill len bytes at buf, return 0 or a negative
	 * errno (the buffer is then returned with the bytes filled so far).
	 * NULL: getrandom(2).  Runs on the device's thread.
	 */
	int (*fill)(void *opaque, void *buf, size_t len);
	void *fill_opaque;
};

struct vio_rng_device;
/* A virtio-rng device; opts may be NULL (defaults).  NULL with errno set
 * and a one-line reason in err (if errlen > 0). */
struct vio_rng_device *
vio_rng_device_new(const struct vio_rng_device_opts *opts, char *err,
		   size_t errlen);
/* The device to give a transport.  Owned by rd. */
struct vio_device *vio_rng_device_dev(const struct vio_rng_device *rd);
/* Free the device (after its transport is gone); NULL is ignored. */
void vio_rng_device_free(struct vio_rng_device *rd);

/* The driver: matches VIRTIO_ID_RNG from any vendor; takes every ring
 * feature the device offers (packed, EVENT_IDX, INDIRECT_DESC). */
extern const struct vio_driver vio_rng_driver;

/*
 * Read len bytes of entropy from a device bound to vio_rng_driver,
 * blocking until all of them came.  Several buffers stay in flight
 * between calls (refilled as they come back), so a stream of reads keeps
 * the device busy.  Returns len; if the queue or the device broke (or
 * the device keeps returning empty buffers), the bytes read before that,
 * or -EIO if none; -ENODEV if vdev is not bound to vio_rng_driver,
 * -EINVAL if len > SSIZE_MAX.  One thread reads a vdev at a time.
 */
ssize_t vio_rng_read(struct vio_drvdev *vdev, void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
