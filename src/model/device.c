/* SPDX-License-Identifier: MIT */
/*
 * The device side of the model: struct vio_device.
 *
 * A transport feeds the driver's actions in (status, features, config,
 * queue setup, kicks); the device type sees them through its
 * struct vio_device_ops.  Everything the driver asks for is checked here:
 * the status transition (status.c), FEATURES_OK against the offer
 * (VIRTIO 1.2 3.1.1 step 5-6), queue setup against the device's limits,
 * and kicks before DRIVER_OK (2.1.2: queues are unusable before it).
 *
 * The status byte is read and written atomically: a device type may call
 * vio_device_needs_reset() from its own thread while the transport thread
 * writes status.  Config space has its own lock, so the device type can
 * update it while the driver reads (the generation tells the driver).
 * Everything else follows the transport's serialisation (vio/device.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "util/le.h"
#include "util/log.h"
#include <vio/device.h>

struct vio_device_queue {
	struct vio_device *dev;
	unsigned idx;
	uint16_t size;
	bool has_layout;
	bool has_base;
	uint16_t base;
	struct vio_vq_layout layout;
	const struct vio_memtable *mt;
	struct vio_vq *vq; /* non-NULL once enabled */
	bool started;	   /* ops->queue_start ran, queue_stop not yet */
};

struct vio_device {
	char name[32];
	uint32_t device_id, vendor_id;
	struct vio_features offered, acked;
	unsigned nq;
	uint16_t qmax;
	const struct vio_device_ops *ops;
	void *opaque;
	const struct vio_device_transport *t;
	void *t_opaque;
	uint8_t status; /* __atomic access only */
	struct vio_ratelimit rl;

	pthread_mutex_t cfg_lock; /* config bytes and generation */
	uint32_t generation;
	unsigned config_size;
	uint8_t config[VIO_CONFIG_MAX];
	/* the device's own config (initial, plus vio_device_config_update):
	 * reset restores it, so what one driver wrote never reaches the next */
	uint8_t config_dev[VIO_CONFIG_MAX];

	struct vio_device_queue q[]; /* [nq] */
};

static uint8_t status_load(const struct vio_device *dev)
{
	return __atomic_load_n(&dev->status, __ATOMIC_ACQUIRE);
}

struct vio_device *vio_device_new(const struct vio_device_opts *cfg)
{
	if (!cfg || cfg->num_queues < 1 || cfg->num_queues > VIO_MAX_QUEUES ||
	    cfg->queue_max_size < 1 || cfg->queue_max_size > VIO_VQ_MAX_SIZE ||
	    cfg->config_size > VIO_CONFIG_MAX ||
	    (cfg->config_size && !cfg->config)) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_device *dev =
	    calloc(1, sizeof(*dev) + cfg->num_queues * sizeof(dev->q[0]));
	if (!dev) {
		errno = ENOMEM;
		return NULL;
	}
	snprintf(dev->name, sizeof(dev->name), "%s",
		 cfg->name ? cfg->name : "vio-dev");
	dev->device_id = cfg->device_id;
	dev->vendor_id = cfg->vendor_id;
	dev->offered = cfg->features;
	/* vio is a VIRTIO 1.x implementation only: no legacy interface */
	vio_features_set(&dev->offered, VIRTIO_F_VERSION_1);
	dev->nq = cfg->num_queues;
	dev->qmax = cfg->queue_max_size;
	dev->ops = cfg->ops;
	dev->opaque = cfg->opaque;
	dev->config_size = cfg->config_size;
	if (cfg->config_size) {
		memcpy(dev->config, cfg->config, cfg->config_size);
		memcpy(dev->config_dev, cfg->config, cfg->config_size);
	}
	pthread_mutex_init(&dev->cfg_lock, NULL);
	for (unsigned i = 0; i < dev->nq; i++) {
		dev->q[i].dev = dev;
		dev->q[i].idx = i;
	}
	return dev;
}

static void queue_clear(struct vio_device_queue *q)
{
	vio_vq_free(q->vq);
	q->vq = NULL;
	q->size = 0;
	q->has_layout = false;
	q->has_base = false;
	q->base = 0;
	q->mt = NULL;
	memset(&q->layout, 0, sizeof(q->layout));
}

void vio_device_free(struct vio_device *dev)
{
	if (!dev)
		return;
	for (unsigned i = 0; i < dev->nq; i++)
		queue_clear(&dev->q[i]);
	pthread_mutex_destroy(&dev->cfg_lock);
	free(dev);
}

void vio_device_attach(struct vio_device *dev,
		       const struct vio_device_transport *t, void *opaque)
{
	dev->t = t;
	dev->t_opaque = opaque;
}

void *vio_device_opaque(const struct vio_device *dev)
{
	return dev->opaque;
}

const char *vio_device_name(const struct vio_device *dev)
{
	return dev->name;
}

uint32_t vio_device_device_id(const struct vio_device *dev)
{
	return dev->device_id;
}

uint32_t vio_device_vendor_id(const struct vio_device *dev)
{
	return dev->vendor_id;
}

unsigned vio_device_num_queues(const struct vio_device *dev)
{
	return dev->nq;
}

uint8_t vio_device_get_status(const struct vio_device *dev)
{
	return status_load(dev);
}

/* Status 0 (VIRTIO 1.2 2.4): stop every queue, forget the negotiation. */
static void dev_reset(struct vio_device *dev)
{
	__atomic_store_n(&dev->status, 0, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < dev->nq; i++)
		queue_clear(&dev->q[i]);
	memset(&dev->acked, 0, sizeof(dev->acked));
	pthread_mutex_lock(&dev->cfg_lock);
	memcpy(dev->config, dev->config_dev, dev->config_size);
	pthread_mutex_unlock(&dev->cfg_lock);
	if (dev->ops && dev->ops->reset)
		dev->ops->reset(dev);
}

/* 3.1.1 / 2.2.2: the device MUST refuse FEATURES_OK for features it did
 * not offer; vio also requires VERSION_1 (no legacy interface). */
static bool features_acceptable(struct vio_device *dev)
{
	if (!vio_features_subset(&dev->acked, &dev->offered)) {
		vio_log_limited(
		    &dev->rl,
		    "%s: FEATURES_OK refused: driver acked features "
		    "the device never offered",
		    dev->name);
		return false;
	}
	if (!vio_features_has(&dev->acked, VIRTIO_F_VERSION_1)) {
		vio_log_limited(&dev->rl,
				"%s: FEATURES_OK refused: VERSION_1 not acked",
				dev->name);
		return false;
	}
	return true;
}

int vio_device_set_status(struct vio_device *dev, uint8_t status)
{
	if (status == 0) {
		dev_reset(dev);
		return 0;
	}
	uint8_t old = status_load(dev);
	for (;;) {
		if (!vio_status_legal(old, status, false)) {
			char a[96], b[96];
			vio_log_limited(
			    &dev->rl, "%s: illegal status write %s -> %s",
			    dev->name, vio_status_str(old, a, sizeof(a)),
			    vio_status_str(status, b, sizeof(b)));
			return -EINVAL;
		}
		if (status == old)
			return 0;
		if ((status & ~old) & VIRTIO_CONFIG_S_FEATURES_OK &&
		    !features_acceptable(dev))
			return -EINVAL; /* the bit is not kept */
		/* a concurrent DEVICE_NEEDS_RESET makes us check again */
		if (__atomic_compare_exchange_n(&dev->status, &old, status,
						false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			break;
	}
	if (dev->ops && dev->ops->status) {
		int r = dev->ops->status(dev, old, status);
		if (r < 0) {
			/* undo, keeping a DEVICE_NEEDS_RESET set meanwhile */
			uint8_t nr =
			    status_load(dev) & VIRTIO_CONFIG_S_NEEDS_RESET;
			__atomic_store_n(&dev->status, (uint8_t)(old | nr),
					 __ATOMIC_RELEASE);
			return r;
		}
	}
	return 0;
}

void vio_device_needs_reset(struct vio_device *dev, const char *reason)
{
	uint8_t old = __atomic_fetch_or(
	    &dev->status, VIRTIO_CONFIG_S_NEEDS_RESET, __ATOMIC_ACQ_REL);
	if (old & VIRTIO_CONFIG_S_NEEDS_RESET)
		return; /* already reported */
	vio_log_limited(&dev->rl, "%s: device needs reset: %s", dev->name,
			reason ? reason : "(no reason given)");
	if (dev->t && dev->t->needs_reset)
		dev->t->needs_reset(dev->t_opaque);
}

void vio_device_offered(const struct vio_device *dev, struct vio_features *out)
{
	*out = dev->offered;
}

int vio_device_set_features(struct vio_device *dev,
			    const struct vio_features *f)
{
	uint8_t s = status_load(dev);
	/* 3.1.1 step 4: features are written in state DRIVER, before
	 * FEATURES_OK; the offer is checked when FEATURES_OK is set */
	if (!f || !(s & VIRTIO_CONFIG_S_DRIVER) ||
	    (s & (VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_FAILED)))
		return -EINVAL;
	dev->acked = *f;
	return 0;
}

void vio_device_negotiated(const struct vio_device *dev,
			   struct vio_features *out)
{
	*out = dev->acked;
}

bool vio_device_has_feature(const struct vio_device *dev, unsigned bit)
{
	return vio_features_has(&dev->acked, bit);
}

/* ---- config space ---- */

static bool config_range_ok(const struct vio_device *dev, unsigned off,
			    unsigned len)
{
	return off <= dev->config_size && len <= dev->config_size - off;
}

unsigned vio_device_config_size(const struct vio_device *dev)
{
	return dev->config_size;
}

int vio_device_config_read(const struct vio_device *dev, unsigned off,
			   void *buf, unsigned len)
{
	struct vio_device *d = (struct vio_device *)dev; /* the lock only */
	if (!config_range_ok(dev, off, len) || (len && !buf))
		return -EINVAL;
	pthread_mutex_lock(&d->cfg_lock);
	memcpy(buf, dev->config + off, len);
	pthread_mutex_unlock(&d->cfg_lock);
	return 0;
}

int vio_device_config_write(struct vio_device *dev, unsigned off,
			    const void *buf, unsigned len)
{
	if (!config_range_ok(dev, off, len) || (len && !buf))
		return -EINVAL;
	if (!len)
		return 0;
	/* only the fields the device type names (and the negotiated
	 * features allow) are the driver's to write */
	if (!dev->ops || !dev->ops->config_writable ||
	    !dev->ops->config_writable(dev, off, buf, len)) {
		vio_log_limited(&dev->rl,
				"%s: driver write of %u config bytes at offset "
				"%u refused: not a writable field",
				dev->name, len, off);
		return -EPERM;
	}
	pthread_mutex_lock(&dev->cfg_lock);
	memcpy(dev->config + off, buf, len);
	pthread_mutex_unlock(&dev->cfg_lock);
	if (dev->ops && dev->ops->config_write)
		dev->ops->config_write(dev, off, len);
	return 0;
}

int vio_device_config_update(struct vio_device *dev, unsigned off,
			     const void *buf, unsigned len)
{
	if (!config_range_ok(dev, off, len) || (len && !buf))
		return -EINVAL;
	pthread_mutex_lock(&dev->cfg_lock);
	memcpy(dev->config + off, buf, len);
	memcpy(dev->config_dev + off, buf, len);
	/* 2.5.1: the generation changes with every device-side update */
	__atomic_fetch_add(&dev->generation, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&dev->cfg_lock);
	if (dev->t && dev->t->config_changed)
		dev->t->config_changed(dev->t_opaque);
	return 0;
}

uint32_t vio_device_config_generation(const struct vio_device *dev)
{
	return __atomic_load_n(&dev->generation, __ATOMIC_ACQUIRE);
}

/* ---- queues ---- */

int vio_device_queue_max_size(const struct vio_device *dev, unsigned idx)
{
	if (idx >= dev->nq)
		return -EINVAL;
	return dev->qmax;
}

int vio_device_queue_setup(struct vio_device *dev, unsigned idx, uint16_t size,
			   const struct vio_vq_layout *layout,
			   const struct vio_memtable *mt)
{
	if (idx >= dev->nq || size < 1 || size > dev->qmax || !layout || !mt)
		return -EINVAL;
	struct vio_device_queue *q = &dev->q[idx];
	if (q->vq)
		return -EBUSY;
	q->size = size;
	q->layout = *layout;
	q->mt = mt;
	q->has_layout = true;
	return 0;
}

int vio_device_queue_set_base(struct vio_device *dev, unsigned idx,
			      uint16_t base)
{
	if (idx >= dev->nq)
		return -EINVAL;
	struct vio_device_queue *q = &dev->q[idx];
	if (q->vq)
		return -EBUSY;
	q->base = base;
	q->has_base = true;
	return 0;
}

/* The vq's notify hook, device side: interrupt the driver. */
static void dev_vq_call(struct vio_vq *vq, void *opaque)
{
	struct vio_device_queue *q = opaque;
	struct vio_device *dev = q->dev;
	(void)vq;
	if (dev->t && dev->t->call)
		dev->t->call(dev->t_opaque, q->idx);
}

/* The vq's broken hook: a broken device queue needs a reset (2.1.2). */
static void dev_vq_broken(struct vio_vq *vq, void *opaque)
{
	struct vio_device_queue *q = opaque;
	struct vio_device *dev = q->dev;
	/* status first: whoever the transport tells sees NEEDS_RESET */
	vio_device_needs_reset(dev, vio_vq_error(vq));
	if (dev->t && dev->t->queue_broken)
		dev->t->queue_broken(dev->t_opaque, q->idx, vio_vq_error(vq));
}

int vio_device_queue_enable(struct vio_device *dev, unsigned idx, bool enable)
{
	if (idx >= dev->nq)
		return -EINVAL;
	struct vio_device_queue *q = &dev->q[idx];
	if (!enable) {
		/* a runner stops the queue on its own thread first; a
		 * transport that has none gets the stop here */
		vio_device_queue_stop(dev, idx);
		vio_vq_free(q->vq);
		q->vq = NULL;
		/* a later enable starts from 0 unless a base is set again */
		q->has_base = false;
		q->base = 0;
		return 0;
	}
	if (q->vq)
		return -EBUSY;
	/* queues use the negotiated ring features: after FEATURES_OK */
	uint8_t s = status_load(dev);
	if (!q->has_layout || !(s & VIRTIO_CONFIG_S_FEATURES_OK) ||
	    (s & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET)))
		return -EINVAL;

	char name[48];
	snprintf(name, sizeof(name), "%s/q%u", dev->name, idx);
	struct vio_vq_opts cfg = {
	    .index = (uint16_t)idx,
	    .size = q->size,
	    .packed = vio_device_has_feature(dev, VIRTIO_F_RING_PACKED),
	    .event_idx = vio_device_has_feature(dev, VIRTIO_RING_F_EVENT_IDX),
	    .indirect =
		vio_device_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC),
	    .notify = dev_vq_call,
	    .broken = dev_vq_broken,
	    .opaque = q,
	    .name = name,
	};
	struct vio_vq *vq = vio_vq_new_device(&cfg, &q->layout, q->mt);
	if (!vq)
		return errno ? -errno : -EINVAL;
	if (q->has_base)
		vio_vq_set_base(vq, q->base);
	q->vq = vq;
	return 0;
}

struct vio_vq *vio_device_queue(const struct vio_device *dev, unsigned idx)
{
	return idx < dev->nq ? dev->q[idx].vq : NULL;
}

bool vio_device_kick(struct vio_device *dev, unsigned idx)
{
	if (idx >= dev->nq)
		return false;
	uint8_t s = status_load(dev);
	if (!(s & VIRTIO_CONFIG_S_DRIVER_OK) ||
	    (s & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)))
		return false;
	struct vio_vq *vq = dev->q[idx].vq;
	if (!vq || vio_vq_broken(vq) || !dev->ops || !dev->ops->kick)
		return false;
	/* true: the device stopped at its batch bound with work left */
	bool more = dev->ops->kick(dev, idx, vq);
	return more && !vio_vq_broken(vq);
}

int vio_device_queue_start(struct vio_device *dev, unsigned idx,
			   struct vio_loop *loop)
{
	if (idx >= dev->nq || !dev->q[idx].vq)
		return -EINVAL;
	struct vio_device_queue *q = &dev->q[idx];
	if (q->started)
		return -EBUSY;
	if (dev->ops && dev->ops->queue_start) {
		int r = dev->ops->queue_start(dev, idx, q->vq, loop);
		if (r)
			return r;
	}
	q->started = true;
	return 0;
}

void vio_device_queue_stop(struct vio_device *dev, unsigned idx)
{
	if (idx >= dev->nq)
		return;
	struct vio_device_queue *q = &dev->q[idx];
	if (!q->started)
		return;
	q->started = false;
	if (q->vq && dev->ops && dev->ops->queue_stop)
		dev->ops->queue_stop(dev, idx, q->vq);
}

/* ---- device state transfer (docs/device-state.md) ---- */

/* The blob's header, little-endian on the wire. */
#define STATE_MAGIC "VIOSTATE"
#define STATE_VERSION 1u
#define STATE_HDR 40u

int vio_device_state_save(struct vio_device *dev, void *buf, size_t cap)
{
	if (!dev || !buf)
		return -EINVAL;
	if (!(status_load(dev) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EAGAIN;
	if (cap > VIO_DEVICE_STATE_MAX)
		cap = VIO_DEVICE_STATE_MAX;
	if (cap < STATE_HDR)
		return -ENOSPC;
	uint8_t *p = buf;
	int n = 0;
	if (dev->ops && dev->ops->state_save) {
		n = dev->ops->state_save(dev, p + STATE_HDR, cap - STATE_HDR);
		if (n < 0)
			return n;
		if ((size_t)n > cap - STATE_HDR)
			return -ENOSPC;
	}
	memset(p, 0, STATE_HDR);
	memcpy(p, STATE_MAGIC, 8);
	vio_put_le(p + 8, STATE_VERSION, 2);
	vio_put_le(p + 10, STATE_HDR, 2);
	vio_put_le(p + 12, dev->device_id, 4);
	vio_put_le(p + 16, (uint32_t)n, 4);
	/* p + 20: flags, 0 */
	vio_put_le(p + 24, dev->acked.w[0], 8);
	vio_put_le(p + 32, dev->acked.w[1], 8);
	return (int)(STATE_HDR + (size_t)n);
}

/* Fill why (may be NULL) and return err. */
static int state_why(char *why, size_t whylen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int state_why(char *why, size_t whylen, int err, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}
#define STATE_WHY(err, ...) state_why(why, whylen, err, __VA_ARGS__)

/* Everything the negotiation does not decide: size, magic, version,
 * header size, device type, section length, flags, and the features the
 * blob was saved with (ones this device offers, VERSION_1 among them:
 * else no driver could ever negotiate them here).  0 with the section's
 * length in *n, or negative errno with why. */
static int state_check_header(const struct vio_device *dev, const uint8_t *p,
			      size_t len, uint64_t *n, char *why, size_t whylen)
{
	if (!dev || (!p && len))
		return STATE_WHY(-EINVAL, "no state");
	if (len > VIO_DEVICE_STATE_MAX)
		return STATE_WHY(-EMSGSIZE,
				 "state of %zu bytes, more than the %u allowed",
				 len, VIO_DEVICE_STATE_MAX);
	if (len < 12)
		return STATE_WHY(-EINVAL, "state truncated: %zu bytes", len);
	if (memcmp(p, STATE_MAGIC, 8))
		return STATE_WHY(-EINVAL, "not a vio device state (bad magic)");
	uint64_t ver = vio_get_le(p + 8, 2), hdr = vio_get_le(p + 10, 2);
	if (ver != STATE_VERSION)
		return STATE_WHY(-EPROTONOSUPPORT,
				 "state format version %" PRIu64
				 ", this vio reads version %u",
				 ver, STATE_VERSION);
	if (hdr != STATE_HDR || len < STATE_HDR)
		return STATE_WHY(
		    -EINVAL,
		    "state truncated or malformed: header of %" PRIu64
		    " bytes in %zu (version 1 has %u)",
		    hdr, len, STATE_HDR);
	uint64_t id = vio_get_le(p + 12, 4), flags = vio_get_le(p + 20, 4);
	*n = vio_get_le(p + 16, 4);
	if (id != dev->device_id)
		return STATE_WHY(-ENODEV,
				 "state of device type %" PRIu64
				 ", this device is type %u",
				 id, dev->device_id);
	if (*n != len - STATE_HDR)
		return STATE_WHY(-EINVAL,
				 "state section of %" PRIu64
				 " bytes, %zu present (truncated or padded)",
				 *n, len - STATE_HDR);
	if (flags)
		return STATE_WHY(-EINVAL, "state flags 0x%" PRIx64 " unknown",
				 flags);
	struct vio_features f = {
	    {vio_get_le(p + 24, 8), vio_get_le(p + 32, 8)}};
	if (!vio_features_subset(&f, &dev->offered) ||
	    !vio_features_has(&f, VIRTIO_F_VERSION_1))
		return STATE_WHY(
		    -EINVAL,
		    "state saved with features 0x%" PRIx64 ":%016" PRIx64
		    ", this device offers 0x%" PRIx64 ":%016" PRIx64
		    " (and requires VERSION_1)",
		    f.w[1], f.w[0], dev->offered.w[1], dev->offered.w[0]);
	if (*n && !(dev->ops && dev->ops->state_load))
		return STATE_WHY(-EINVAL,
				 "state section of %" PRIu64
				 " bytes for a device type without state",
				 *n);
	return 0;
}

int vio_device_state_check(const struct vio_device *dev, const void *buf,
			   size_t len, char *why, size_t whylen)
{
	uint64_t n;
	return state_check_header(dev, buf, len, &n, why, whylen);
}

int vio_device_state_load(struct vio_device *dev, const void *buf, size_t len,
			  char *why, size_t whylen)
{
	const uint8_t *p = buf;
	uint64_t n;
	int r = state_check_header(dev, p, len, &n, why, whylen);
	if (r)
		return r;
	if (!(status_load(dev) & VIRTIO_CONFIG_S_FEATURES_OK))
		return STATE_WHY(-EAGAIN, "features not negotiated yet: the "
					  "state loads after FEATURES_OK");
	uint64_t f0 = vio_get_le(p + 24, 8), f1 = vio_get_le(p + 32, 8);
	if (f0 != dev->acked.w[0] || f1 != dev->acked.w[1])
		return STATE_WHY(-EINVAL,
				 "state saved with features 0x%" PRIx64
				 ":%016" PRIx64 ", negotiated here 0x%" PRIx64
				 ":%016" PRIx64,
				 f1, f0, dev->acked.w[1], dev->acked.w[0]);
	if (dev->ops && dev->ops->state_load)
		return dev->ops->state_load(dev, p + STATE_HDR, (size_t)n, why,
					    whylen);
	return 0;
}
