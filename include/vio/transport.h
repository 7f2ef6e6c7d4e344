/* SPDX-License-Identifier: MIT */
/*
 * vio/transport.h - how a driver reaches a device.
 *
 * A transport is a const ops table plus an opaque pointer.  The model
 * (vio/driver.h) calls through it; an op left NULL is turned into -ENOTSUP
 * (or a neutral value) by the core, never called.  Implementations:
 * vio/inproc.h (same process), vio/vhost_user.h (frontend).
 */
#ifndef VIO_TRANSPORT_H
#define VIO_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <vio/device.h>
#include <vio/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vio_transport_ops {
	const char *name;
	uint32_t (*device_id)(void *t);
	uint32_t (*vendor_id)(void *t);
	uint8_t (*get_status)(void *t);
	int (*set_status)(void *t, uint8_t status);
	int (*get_features)(void *t, struct vio_features *out); /* offered */
	int (*set_features)(void *t, const struct vio_features *f);
	int (*config_read)(void *t, unsigned off, void *buf, unsigned len);
	int (*config_write)(void *t, unsigned off, const void *buf,
			    unsigned len);
	uint32_t (*config_generation)(void *t);
	unsigned (*num_queues)(void *t);
	int (*queue_max_size)(void *t, unsigned idx);
	/* Tell the device where queue idx lives and enable it. */
	int (*queue_setup)(void *t, unsigned idx, uint16_t size,
			   const struct vio_vq_layout *layout);
	int (*queue_disable)(void *t, unsigned idx);
	/* Kick queue idx (the vq's notify hook lands here). */
	void (*notify)(void *t, unsigned idx);
	/* Block until queue idx is interrupted or timeout_ms passes (-1:
	 * forever).  0 on interrupt, -ETIMEDOUT, or negative errno. */
	int (*wait)(void *t, unsigned idx, int timeout_ms);
	/* fd that becomes readable when queue idx is interrupted, or -1. */
	int (*call_fd)(void *t, unsigned idx);
	/* Make every region the vdev's vio_mem has now reachable by the
	 * device.  Called before a descriptor that points into a new region
	 * is published (a notify comes too late: the device may be polling
	 * the ring already).  0 or negative errno. */
	int (*sync_mem)(void *t);
	void (*release)(void *t); /* the vdev is freed */
};

#ifdef __cplusplus
}
#endif
#endif
