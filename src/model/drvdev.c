/* SPDX-License-Identifier: MIT */
/*
 * The driver side of the model: struct vio_drvdev, a device as its driver
 * sees it through a transport, with L4virtio's driver verbs
 * (driver_connect, driver_acknowledge, config_queue, send,
 * wait_for_next_used, send_and_wait) on VIRTIO 1.2's handshake (3.1.1).
 *
 * Every transport op may be NULL: the core turns that into -ENOTSUP or a
 * neutral value (status 0, no queues) and never calls it.
 *
 * Threading: one thread drives a vdev (the bus's, or the driver's own).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "model/model_internal.h"
#include "util/log.h"
#include <vio/driver.h>

/* Per queue: what the vq's hooks need (the vq has one opaque pointer,
 * so the caller's callback and opaque are kept here). */
struct vio_drvdev_queue {
	struct vio_drvdev *vdev;
	unsigned idx;
	struct vio_vq *vq;
	vio_vq_fn *cb;
	void *cb_opaque;
};

struct vio_drvdev {
	const struct vio_transport_ops *ops;
	void *t;
	struct vio_mem *mem;
	void *priv;
	const struct vio_driver *drv;
	struct vio_features features; /* negotiated */
	uint8_t shadow_status;	      /* when the transport cannot read it */
	struct vio_ratelimit rl;
	struct vio_drvdev_queue q[VIO_MAX_QUEUES];
};

/* Config reads while the generation moves: give up after this many. */
#define CONFIG_READ_RETRIES 100

struct vio_drvdev *vio_drvdev_new(const struct vio_transport_ops *ops, void *t,
				  struct vio_mem *mem)
{
	if (!ops || !mem) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_drvdev *vdev = calloc(1, sizeof(*vdev));
	if (!vdev) {
		errno = ENOMEM;
		return NULL;
	}
	vdev->ops = ops;
	vdev->t = t;
	vdev->mem = mem;
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++) {
		vdev->q[i].vdev = vdev;
		vdev->q[i].idx = i;
	}
	return vdev;
}

static void free_vqs(struct vio_drvdev *vdev)
{
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++) {
		vio_vq_free(vdev->q[i].vq);
		vdev->q[i].vq = NULL;
		vdev->q[i].cb = NULL;
		vdev->q[i].cb_opaque = NULL;
	}
}

static bool has_vqs(const struct vio_drvdev *vdev)
{
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++)
		if (vdev->q[i].vq)
			return true;
	return false;
}

static int t_set_status(struct vio_drvdev *vdev, uint8_t s)
{
	if (!vdev->ops->set_status)
		return -ENOTSUP;
	int r = vdev->ops->set_status(vdev->t, s);
	if (r == 0)
		vdev->shadow_status = s;
	return r;
}

void vio_drvdev_free(struct vio_drvdev *vdev)
{
	if (!vdev)
		return;
	/* never free rings the device may still be using */
	if (has_vqs(vdev) || vio_drvdev_get_status(vdev) != 0)
		(void)t_set_status(vdev, 0);
	free_vqs(vdev);
	if (vdev->ops->release)
		vdev->ops->release(vdev->t);
	free(vdev);
}

uint32_t vio_drvdev_device_id(const struct vio_drvdev *vdev)
{
	return vdev->ops->device_id ? vdev->ops->device_id(vdev->t) : 0;
}

uint32_t vio_drvdev_vendor_id(const struct vio_drvdev *vdev)
{
	return vdev->ops->vendor_id ? vdev->ops->vendor_id(vdev->t) : 0;
}

struct vio_mem *vio_drvdev_mem(const struct vio_drvdev *vdev)
{
	return vdev->mem;
}

void vio_drvdev_set_priv(struct vio_drvdev *vdev, void *priv)
{
	vdev->priv = priv;
}

void *vio_drvdev_priv(const struct vio_drvdev *vdev)
{
	return vdev->priv;
}

const struct vio_driver *vio_drvdev_driver(const struct vio_drvdev *vdev)
{
	return vdev->drv;
}

void vio_drvdev_bind(struct vio_drvdev *vdev, const struct vio_driver *drv)
{
	vdev->drv = drv;
}

void vio_drvdev_config_changed(struct vio_drvdev *vdev)
{
	if (vdev->drv && vdev->drv->config_changed)
		vdev->drv->config_changed(vdev);
}

/* ---- status ---- */

void vio_drvdev_stop(struct vio_drvdev *vdev)
{
	(void)t_set_status(vdev, 0);
}

int vio_drvdev_reset(struct vio_drvdev *vdev)
{
	/* the device first, so it stops using the rings we free */
	int r = t_set_status(vdev, 0);
	free_vqs(vdev);
	memset(&vdev->features, 0, sizeof(vdev->features));
	return r;
}

uint8_t vio_drvdev_get_status(const struct vio_drvdev *vdev)
{
	if (vdev->ops->get_status)
		return vdev->ops->get_status(vdev->t);
	return vdev->shadow_status;
}

int vio_drvdev_add_status(struct vio_drvdev *vdev, uint8_t bits)
{
	uint8_t old = vio_drvdev_get_status(vdev);
	uint8_t s = old | bits;
	if (!vio_status_legal(old, s, false))
		return -EINVAL;
	if (s == old)
		return 0;
	return t_set_status(vdev, s);
}

static void set_failed(struct vio_drvdev *vdev)
{
	int r = vio_drvdev_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
	(void)r; /* best effort: the caller reports the real error */
}

int vio_drvdev_connect(struct vio_drvdev *vdev)
{
	int r = vio_drvdev_reset(vdev);
	if (r == 0)
		r = vio_drvdev_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	if (r == 0)
		r = vio_drvdev_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);
	return r;
}

/*
 * Bits a bound driver may ack beyond its feature table: the transport
 * and ring features, which the model and the ring layer implement for
 * every device type.  They are acked only when the caller wants them.
 */
static const unsigned transport_bits[] = {
    VIRTIO_F_VERSION_1,
    VIRTIO_F_RING_PACKED,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
};
#define N_TRANSPORT_BITS (sizeof(transport_bits) / sizeof(transport_bits[0]))

int vio_drvdev_negotiate(struct vio_drvdev *vdev,
			 const struct vio_features *wanted)
{
	const uint8_t hs =
	    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	    VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
	uint8_t s = vio_drvdev_get_status(vdev);
	if (!wanted ||
	    (s & hs) != (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER))
		return -EINVAL;
	if (!vdev->ops->get_features || !vdev->ops->set_features)
		return -ENOTSUP;

	struct vio_features offered, f;
	int r = vdev->ops->get_features(vdev->t, &offered);
	if (r < 0) {
		set_failed(vdev);
		return r;
	}
	if (!vio_features_has(&offered, VIRTIO_F_VERSION_1)) {
		/* a legacy-only device: vio has no legacy interface */
		set_failed(vdev);
		return -ENODEV;
	}
	vio_features_and(&f, &offered, wanted);
	if (vdev->drv) {
		struct vio_features allowed = vio_features_from(
		    vdev->drv->feature_table, vdev->drv->feature_table_size);
		for (unsigned i = 0; i < N_TRANSPORT_BITS; i++)
			vio_features_set(&allowed, transport_bits[i]);
#ifndef NDEBUG
		/* wanting an undeclared bit is a driver bug */
		if (!vio_features_subset(wanted, &allowed))
			vio_log_limited(&vdev->rl,
					"driver %s wants feature bits missing "
					"from its feature_table: not acked",
					vdev->drv->name ? vdev->drv->name
							: "?");
#endif
		vio_features_and(&f, &f, &allowed);
	}
	vio_features_set(&f, VIRTIO_F_VERSION_1);

	r = vdev->ops->set_features(vdev->t, &f);
	if (r < 0) {
		set_failed(vdev);
		return r;
	}
	/*
	 * 3.1.1 step 5-6: set FEATURES_OK, then re-read: the device clears
	 * (does not keep) it if it refuses the subset.  A transport may also
	 * report the refusal as an error: either way the re-read decides.
	 */
	r = vio_drvdev_add_status(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
	(void)r;
	if (!(vio_drvdev_get_status(vdev) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		set_failed(vdev);
		return -EIO;
	}
	vdev->features = f;
	return 0;
}

bool vio_drvdev_has_feature(const struct vio_drvdev *vdev, unsigned bit)
{
	return vio_features_has(&vdev->features, bit);
}

void vio_drvdev_features(const struct vio_drvdev *vdev,
			 struct vio_features *out)
{
	*out = vdev->features;
}

int vio_drvdev_driver_ok(struct vio_drvdev *vdev)
{
	return vio_drvdev_add_status(vdev, VIRTIO_CONFIG_S_DRIVER_OK);
}

/* ---- config space ---- */

int vio_drvdev_config_read(struct vio_drvdev *vdev, unsigned off, void *buf,
			   unsigned len)
{
	const struct vio_transport_ops *ops = vdev->ops;
	if (!ops->config_read)
		return -ENOTSUP;
	if (!ops->config_generation)
		return ops->config_read(vdev->t, off, buf, len);
	/* 2.5.1 / 4.1.4.3.1: re-read until the generation holds still */
	for (unsigned i = 0; i < CONFIG_READ_RETRIES; i++) {
		uint32_t g = ops->config_generation(vdev->t);
		int r = ops->config_read(vdev->t, off, buf, len);
		if (r < 0)
			return r;
		if (ops->config_generation(vdev->t) == g)
			return 0;
	}
	return -EAGAIN;
}

int vio_drvdev_config_write(struct vio_drvdev *vdev, unsigned off,
			    const void *buf, unsigned len)
{
	if (!vdev->ops->config_write)
		return -ENOTSUP;
	return vdev->ops->config_write(vdev->t, off, buf, len);
}

/* ---- queues ---- */

unsigned vio_drvdev_num_queues(const struct vio_drvdev *vdev)
{
	if (!vdev->ops->num_queues)
		return 0;
	unsigned n = vdev->ops->num_queues(vdev->t);
	return n > VIO_MAX_QUEUES ? VIO_MAX_QUEUES : n;
}

unsigned vio_drvdev_queue_max_size(const struct vio_drvdev *vdev, unsigned idx)
{
	if (idx >= vio_drvdev_num_queues(vdev) || !vdev->ops->queue_max_size)
		return 0;
	int r = vdev->ops->queue_max_size(vdev->t, idx);
	if (r <= 0)
		return 0;
	return r > (int)VIO_VQ_MAX_SIZE ? VIO_VQ_MAX_SIZE : (unsigned)r;
}

int vio_drvdev_sync_mem(struct vio_drvdev *vdev)
{
	if (!vdev || !vdev->ops->sync_mem)
		return 0;
	return vdev->ops->sync_mem(vdev->t);
}

/* The vq's notify hook, driver side: kick the device. */
static void vdev_vq_notify(struct vio_vq *vq, void *opaque)
{
	struct vio_drvdev_queue *q = opaque;
	(void)vq;
	if (q->vdev->ops->notify)
		q->vdev->ops->notify(q->vdev->t, q->idx);
}

/* The vq's callback: the caller's, with the caller's opaque. */
static void vdev_vq_callback(struct vio_vq *vq, void *opaque)
{
	struct vio_drvdev_queue *q = opaque;
	if (q->cb)
		q->cb(vq, q->cb_opaque);
}

static unsigned round_down_pow2(unsigned v)
{
	while (v & (v - 1))
		v &= v - 1;
	return v;
}

struct vio_vq *vio_drvdev_setup_vq(struct vio_drvdev *vdev, unsigned idx,
				   unsigned size, vio_vq_fn *cb, void *opaque)
{
	if (idx >= vio_drvdev_num_queues(vdev)) {
		errno = ENXIO; /* no such queue */
		return NULL;
	}
	struct vio_drvdev_queue *q = &vdev->q[idx];
	if (q->vq) {
		errno = EBUSY;
		return NULL;
	}
	/* 3.1.1 step 7: queues come after FEATURES_OK */
	uint8_t s = vio_drvdev_get_status(vdev);
	if (!(s & VIRTIO_CONFIG_S_FEATURES_OK) ||
	    (s & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET))) {
		errno = EINVAL;
		return NULL;
	}
	if (!vdev->ops->queue_setup) {
		errno = ENOTSUP;
		return NULL;
	}
	unsigned max = vio_drvdev_queue_max_size(vdev, idx);
	if (max == 0) {
		errno = ENXIO; /* no such queue */
		return NULL;
	}
	if (size == 0)
		size = max;
	if (size > max) {
		errno = EINVAL;
		return NULL;
	}
	bool packed = vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED);
	if (!packed)
		size = round_down_pow2(size); /* 2.7: split sizes */

	char name[32];
	snprintf(name, sizeof(name), "vdev/q%u", idx);
	struct vio_vq_opts cfg = {
	    .index = (uint16_t)idx,
	    .size = (uint16_t)size,
	    .packed = packed,
	    .event_idx = vio_drvdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX),
	    .indirect =
		vio_drvdev_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC),
	    .notify = vdev_vq_notify,
	    .callback = vdev_vq_callback,
	    .opaque = q,
	    .name = name,
	};
	q->cb = cb;
	q->cb_opaque = opaque;
	struct vio_vq *vq = vio_vq_new_driver(&cfg, vdev->mem);
	if (!vq)
		return NULL;
	struct vio_vq_layout layout;
	vio_vq_get_layout(vq, &layout);
	int r = vdev->ops->queue_setup(vdev->t, idx, (uint16_t)size, &layout);
	if (r < 0) {
		vio_vq_free(vq);
		errno = -r;
		return NULL;
	}
	q->vq = vq;
	return vq;
}

struct vio_vq *vio_drvdev_vq(const struct vio_drvdev *vdev, unsigned idx)
{
	return idx < VIO_MAX_QUEUES ? vdev->q[idx].vq : NULL;
}

/* ---- L4virtio helpers ---- */

int vio_drvdev_send(struct vio_vq *vq, const struct vio_sg *sg, unsigned out,
		    unsigned in, void *token)
{
	int r = vio_vq_add(vq, sg, out, in, token);
	if (r == 0)
		vio_vq_kick(vq);
	return r;
}

void *vio_drvdev_wait_used(struct vio_drvdev *vdev, struct vio_vq *vq,
			   uint32_t *len, int timeout_ms)
{
	unsigned idx = vio_vq_index(vq);
	uint64_t deadline = 0;
	bool woke = false;

	if (timeout_ms >= 0)
		deadline = vio_now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		void *token = vio_vq_get(vq, len);
		if (token)
			return token;
		if (vio_vq_broken(vq)) {
			errno = EIO;
			return NULL;
		}
		/* woken with nothing used: the device may have given up */
		if (woke && (vio_drvdev_get_status(vdev) &
			     VIRTIO_CONFIG_S_NEEDS_RESET)) {
			errno = EIO;
			return NULL;
		}
		/* restart: if used buffers slipped in, take them first
		 * rather than sleep on an interrupt that already fired */
		if (!vio_vq_enable_cb(vq))
			continue;
		int wait_ms = -1;
		if (timeout_ms >= 0) {
			uint64_t now = vio_now_ns();
			if (now >= deadline) {
				errno = ETIMEDOUT;
				return NULL;
			}
			wait_ms = (int)((deadline - now + 999999u) / 1000000u);
		}
		if (!vdev->ops->wait) {
			errno = ENOTSUP;
			return NULL;
		}
		int r = vdev->ops->wait(vdev->t, idx, wait_ms);
		if (r == -EINTR)
			continue;
		if (r < 0) {
			errno = -r;
			return NULL;
		}
		woke = true;
		vio_vq_interrupt(vq);
	}
}

int vio_drvdev_send_and_wait(struct vio_drvdev *vdev, struct vio_vq *vq,
			     const struct vio_sg *sg, unsigned out, unsigned in,
			     uint32_t *len, int timeout_ms)
{
	/* the sg array itself is the token: unique while it is in flight */
	void *token = (void *)(uintptr_t)sg;
	int r = vio_drvdev_send(vq, sg, out, in, token);
	if (r < 0)
		return r;
	void *got = vio_drvdev_wait_used(vdev, vq, len, timeout_ms);
	if (!got)
		return -errno;
	return got == token ? 0 : -EIO;
}
