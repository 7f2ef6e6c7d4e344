/* SPDX-License-Identifier: MIT */
/*
 * vio/driver.h - the driver side of the virtio model.
 *
 * struct vio_drvdev is a device as its driver sees it, reached through a
 * transport (vio/transport.h).  struct vio_driver is a driver: an id table,
 * a feature table and probe/remove, matched on a bus (vio/bus.h).  The
 * handshake is L4virtio's driver_connect / driver_acknowledge:
 *
 *     probe(vdev):                               // status is ACK|DRIVER
 *         vio_drvdev_negotiate(vdev, &wanted);     // VERSION_1, FEATURES_OK
 *         vq = vio_drvdev_setup_vq(vdev, 0, 0, cb, arg);   // config_queue
 *         return 0;                              // bus sets DRIVER_OK
 *
 *     vio_drvdev_send(vq, sg, out, in, token);     // add + kick
 *     token = vio_drvdev_wait_used(vdev, vq, &len, -1);
 *
 * Buffers handed to a vq must come from the vdev's vio_mem
 * (vio_drvdev_mem(), vio_mem_alloc()).
 */
#ifndef VIO_DRIVER_H
#define VIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <vio/device.h>
#include <vio/mem.h>
#include <vio/ring.h>
#include <vio/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIO_DEV_ANY_ID 0xffffffffu

/* Id table entry; a table ends with an entry whose device is 0. */
struct vio_device_id {
	uint32_t device;
	uint32_t vendor; /* or VIO_DEV_ANY_ID */
};

struct vio_drvdev;

struct vio_driver {
	const char *name;
	const struct vio_device_id *id_table;
	/* Feature bits (numbers) this driver knows; negotiation never acks
	 * any other bit. */
	const unsigned *feature_table;
	unsigned feature_table_size;
	/* Return 0 to bind (the bus then sets DRIVER_OK unless probe did),
	 * negative errno to refuse (the bus sets FAILED). */
	int (*probe)(struct vio_drvdev *vdev);
	void (*remove)(struct vio_drvdev *vdev);
	void (*config_changed)(struct vio_drvdev *vdev);
	/* Bytes of config space the device type has (the fields this driver
	 * may read), for transports that cannot learn it from the device
	 * (vhost-user: every GET_CONFIG asks for exactly this many, as
	 * QEMU's frontends do).  0: unknown; such a transport then asks the
	 * device for what each read needs (bytes 0 up to its end). */
	unsigned config_size;
};

/* A device behind transport (ops, t); buffers come from mem (not owned). */
struct vio_drvdev *vio_drvdev_new(const struct vio_transport_ops *ops, void *t,
				  struct vio_mem *mem);
/* Frees the vqs, calls ops->release.  The caller removed it from its bus. */
void vio_drvdev_free(struct vio_drvdev *vdev);

uint32_t vio_drvdev_device_id(const struct vio_drvdev *vdev);
uint32_t vio_drvdev_vendor_id(const struct vio_drvdev *vdev);
struct vio_mem *vio_drvdev_mem(const struct vio_drvdev *vdev);
void vio_drvdev_set_priv(struct vio_drvdev *vdev, void *priv);
void *vio_drvdev_priv(const struct vio_drvdev *vdev);
const struct vio_driver *vio_drvdev_driver(const struct vio_drvdev *vdev);

/* Reset the device (status 0) and free every vq. */
int vio_drvdev_reset(struct vio_drvdev *vdev);
uint8_t vio_drvdev_get_status(const struct vio_drvdev *vdev);
/* Add status bits; only legal transitions (vio_status_legal). */
VIO_MUST_CHECK int vio_drvdev_add_status(struct vio_drvdev *vdev, uint8_t bits);
/* driver_connect: reset, ACKNOWLEDGE, DRIVER. */
VIO_MUST_CHECK int vio_drvdev_connect(struct vio_drvdev *vdev);
/*
 * driver_acknowledge: device features & wanted (& the driver's feature
 * table if bound), VERSION_1 required (-ENODEV otherwise), acked, then
 * FEATURES_OK set and re-read: -EIO if the device did not keep it.
 */
VIO_MUST_CHECK int vio_drvdev_negotiate(struct vio_drvdev *vdev,
					const struct vio_features *wanted);
bool vio_drvdev_has_feature(const struct vio_drvdev *vdev, unsigned bit);
void vio_drvdev_features(const struct vio_drvdev *vdev,
			 struct vio_features *out);
/* Set DRIVER_OK. */
VIO_MUST_CHECK int vio_drvdev_driver_ok(struct vio_drvdev *vdev);

/* Config space, re-read while the generation changes. */
VIO_MUST_CHECK int vio_drvdev_config_read(struct vio_drvdev *vdev, unsigned off,
					  void *buf, unsigned len);
int vio_drvdev_config_write(struct vio_drvdev *vdev, unsigned off,
			    const void *buf, unsigned len);

unsigned vio_drvdev_num_queues(const struct vio_drvdev *vdev);
/* max_queue_size: 0 if the queue does not exist. */
unsigned vio_drvdev_queue_max_size(const struct vio_drvdev *vdev, unsigned idx);
/*
 * Share the regions the vdev's vio_mem gained since the last call with the
 * device (a no-op when none are new or the transport needs nothing).  Call
 * it before adding a buffer that lies in a region made after the queues
 * were set up.  0 or negative errno.
 */
int vio_drvdev_sync_mem(struct vio_drvdev *vdev);
/*
 * config_queue: a vq of size entries (0 = the device's max; rounded down
 * to a power of two for split) with the negotiated ring features, rings
 * from the vdev's memory, set up and enabled on the device.  cb runs on
 * interrupts (vio_drvdev_wait_used also drives it).  NULL with errno:
 * ENXIO (no such queue: idx not below vio_drvdev_num_queues, or the device
 * gives it no size), EBUSY (already set up), EINVAL (before FEATURES_OK,
 * after FAILED or NEEDS_RESET, size above the maximum), or the
 * transport's.
 */
struct vio_vq *vio_drvdev_setup_vq(struct vio_drvdev *vdev, unsigned idx,
				   unsigned size, vio_vq_fn *cb, void *opaque);
struct vio_vq *vio_drvdev_vq(const struct vio_drvdev *vdev, unsigned idx);

/* L4virtio helpers. */
/* send: add one buffer and kick.  Returns vio_vq_add's result. */
VIO_MUST_CHECK int vio_drvdev_send(struct vio_vq *vq, const struct vio_sg *sg,
				   unsigned out, unsigned in, void *token);
/* wait_for_next_used: the next used token (len written), waiting for an
 * interrupt up to timeout_ms (-1 forever).  NULL on timeout (errno
 * ETIMEDOUT), broken queue (errno EIO), or the transport's wait error
 * (vhost-user: ENOTCONN when the backend is gone, ECANCELED when the
 * queue was stopped: a reset or a removal). */
void *vio_drvdev_wait_used(struct vio_drvdev *vdev, struct vio_vq *vq,
			   uint32_t *len, int timeout_ms);
/* send_and_wait: send then wait for that very token; 0 or negative errno
 * (-EIO if the device returned another token first). */
VIO_MUST_CHECK int vio_drvdev_send_and_wait(struct vio_drvdev *vdev,
					    struct vio_vq *vq,
					    const struct vio_sg *sg,
					    unsigned out, unsigned in,
					    uint32_t *len, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
