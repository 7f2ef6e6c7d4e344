/* SPDX-License-Identifier: MIT */
/*
 * A synchronous transport for model tests: the driver's ops call straight
 * into a struct vio_device on the same thread (a kick runs the device at
 * once; the device's call is recorded and consumed by wait).  Memory is
 * shared without re-mapping (vio_memtable_add).  Knobs let a test make
 * the transport lie, to reach the driver side's refusal paths.
 */
#ifndef VIO_TEST_STUB_TRANSPORT_H
#define VIO_TEST_STUB_TRANSPORT_H

#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>

#include <vio/device.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/transport.h>

struct stub {
	struct vio_device *dev;
	struct vio_mem *mem;
	struct vio_memtable *mt;
	unsigned synced;
	/* knobs */
	bool hide_version_1; /* get_features drops VERSION_1 */
	int extra_offer;     /* get_features adds this bit (-1: none) */
	/* counters */
	unsigned calls[VIO_MAX_QUEUES]; /* pending device->driver calls */
	unsigned needs_reset, config_changed, released;
};

static int stub_sync(struct stub *s)
{
	unsigned n = vio_mem_region_count(s->mem);
	for (; s->synced < n; s->synced++) {
		struct vio_region r = *vio_mem_region(s->mem, s->synced);
		int e = vio_memtable_add(s->mt, &r);
		if (e < 0)
			return e;
	}
	return 0;
}

static uint32_t stub_device_id(void *t)
{
	return vio_device_device_id(((struct stub *)t)->dev);
}
static uint32_t stub_vendor_id(void *t)
{
	return vio_device_vendor_id(((struct stub *)t)->dev);
}
static uint8_t stub_get_status(void *t)
{
	return vio_device_get_status(((struct stub *)t)->dev);
}
static int stub_set_status(void *t, uint8_t st)
{
	return vio_device_set_status(((struct stub *)t)->dev, st);
}
static int stub_get_features(void *t, struct vio_features *out)
{
	struct stub *s = t;
	vio_device_offered(s->dev, out);
	if (s->hide_version_1)
		vio_features_clear(out, VIRTIO_F_VERSION_1);
	if (s->extra_offer >= 0)
		vio_features_set(out, (unsigned)s->extra_offer);
	return 0;
}
static int stub_set_features(void *t, const struct vio_features *f)
{
	return vio_device_set_features(((struct stub *)t)->dev, f);
}
static int stub_config_read(void *t, unsigned off, void *buf, unsigned len)
{
	return vio_device_config_read(((struct stub *)t)->dev, off, buf, len);
}
static int stub_config_write(void *t, unsigned off, const void *buf,
			     unsigned len)
{
	return vio_device_config_write(((struct stub *)t)->dev, off, buf, len);
}
static uint32_t stub_config_generation(void *t)
{
	return vio_device_config_generation(((struct stub *)t)->dev);
}
static unsigned stub_num_queues(void *t)
{
	return vio_device_num_queues(((struct stub *)t)->dev);
}
static int stub_queue_max_size(void *t, unsigned idx)
{
	return vio_device_queue_max_size(((struct stub *)t)->dev, idx);
}
static int stub_queue_setup(void *t, unsigned idx, uint16_t size,
			    const struct vio_vq_layout *l)
{
	struct stub *s = t;
	int r = stub_sync(s);
	if (r < 0)
		return r;
	bool packed = vio_device_has_feature(s->dev, VIRTIO_F_RING_PACKED);
	struct vio_vq_layout dl = *l;
	dl.desc = vio_memtable_ptr(s->mt, l->desc_addr, 16ull * size);
	dl.driver = vio_memtable_ptr(s->mt, l->driver_addr,
				     packed ? 4 : 6 + 2ull * size);
	dl.device = vio_memtable_ptr(s->mt, l->device_addr,
				     packed ? 4 : 6 + 8ull * size);
	if (!dl.desc || !dl.driver || !dl.device)
		return -EFAULT;
	r = vio_device_queue_setup(s->dev, idx, size, &dl, s->mt);
	return r ? r : vio_device_queue_enable(s->dev, idx, true);
}
static int stub_queue_disable(void *t, unsigned idx)
{
	return vio_device_queue_enable(((struct stub *)t)->dev, idx, false);
}
static void stub_notify(void *t, unsigned idx)
{
	struct stub *s = t;
	if (stub_sync(s) == 0)
		while (vio_device_kick(s->dev, idx))
			; /* synchronous: serve everything now */
}
static int stub_wait(void *t, unsigned idx, int timeout_ms)
{
	struct stub *s = t;
	(void)timeout_ms;
	if (idx >= VIO_MAX_QUEUES || !s->calls[idx])
		return -ETIMEDOUT; /* nothing can arrive later: synchronous */
	s->calls[idx] = 0;
	return 0;
}
static void stub_release(void *t)
{
	((struct stub *)t)->released++;
}

static const struct vio_transport_ops stub_ops = {
    .name = "stub",
    .device_id = stub_device_id,
    .vendor_id = stub_vendor_id,
    .get_status = stub_get_status,
    .set_status = stub_set_status,
    .get_features = stub_get_features,
    .set_features = stub_set_features,
    .config_read = stub_config_read,
    .config_write = stub_config_write,
    .config_generation = stub_config_generation,
    .num_queues = stub_num_queues,
    .queue_max_size = stub_queue_max_size,
    .queue_setup = stub_queue_setup,
    .queue_disable = stub_queue_disable,
    .notify = stub_notify,
    .wait = stub_wait,
    .release = stub_release,
};

static void stub_hook_call(void *t, unsigned idx)
{
	struct stub *s = t;
	if (idx < VIO_MAX_QUEUES)
		s->calls[idx]++;
}
static void stub_hook_config_changed(void *t)
{
	((struct stub *)t)->config_changed++;
}
static void stub_hook_needs_reset(void *t)
{
	((struct stub *)t)->needs_reset++;
}
static const struct vio_device_transport stub_hooks = {
    .call = stub_hook_call,
    .config_changed = stub_hook_config_changed,
    .needs_reset = stub_hook_needs_reset,
};

/* A stub around dev with memory mem; returns the vdev (NULL on error). */
static inline struct vio_drvdev *
stub_init(struct stub *s, struct vio_device *dev, struct vio_mem *mem)
{
	memset(s, 0, sizeof(*s));
	s->dev = dev;
	s->mem = mem;
	s->extra_offer = -1;
	s->mt = vio_memtable_new(64);
	if (!s->mt)
		return NULL;
	vio_device_attach(dev, &stub_hooks, s);
	return vio_drvdev_new(&stub_ops, s, mem);
}

static inline void stub_fini(struct stub *s)
{
	vio_memtable_free(s->mt);
	s->mt = NULL;
}

#endif
