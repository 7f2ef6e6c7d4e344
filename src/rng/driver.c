/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng, the driver side (VIRTIO 1.2 5.4): keep RNG_NBUF writable
 * buffers of RNG_BUF_SIZE bytes in flight on the requestq; vio_rng_read()
 * copies out of each buffer as it comes back and posts it again at once,
 * so the device refills while the caller consumes.
 *
 * The buffers are allocated from the vdev's vio_mem at probe, before any
 * kick: no allocation on the data path, and (for transports that map the
 * driver's memory lazily) no region appears while I/O runs.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <vio/rng.h>

#define RNG_NBUF 8
#define RNG_BUF_SIZE (64u * 1024u)
/* Give up after this many empty buffers in a row (a device whose
 * entropy source fails returns them with length 0). */
#define RNG_MAX_EMPTY 64

struct rng_drv {
	struct vio_vq *vq;
	unsigned nbuf;
	void *buf[RNG_NBUF];
	/* the buffer being copied out (not on the ring) */
	uint8_t *cur;
	uint32_t cur_off, cur_len;
	bool need_kick; /* posted at probe: kick once DRIVER_OK is set */
};

static const unsigned rng_features[] = {
    VIRTIO_F_VERSION_1,
    VIRTIO_F_RING_PACKED,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
};

static const struct vio_device_id rng_ids[] = {
    {VIRTIO_ID_RNG, VIO_DEV_ANY_ID},
    {0, 0},
};

static int post(struct rng_drv *st, void *b)
{
	struct vio_sg sg = {.buf = b, .len = RNG_BUF_SIZE};
	return vio_vq_add(st->vq, &sg, 0, 1, b);
}

/* tok is one of our buffers. */
static bool rng_own(const struct rng_drv *st, const void *tok)
{
	for (unsigned i = 0; i < st->nbuf; i++)
		if (st->buf[i] == tok)
			return true;
	return false;
}

static void rng_free_state(struct vio_drvdev *vdev, struct rng_drv *st)
{
	struct vio_mem *mem = vio_drvdev_mem(vdev);
	for (unsigned i = 0; i < st->nbuf; i++)
		vio_mem_release(mem, st->buf[i]);
	free(st);
	vio_drvdev_set_priv(vdev, NULL);
}

static int rng_probe(struct vio_drvdev *vdev)
{
	struct vio_features wanted = vio_features_from(
	    rng_features, sizeof(rng_features) / sizeof(rng_features[0]));
	int r = vio_drvdev_negotiate(vdev, &wanted);
	if (r < 0)
		return r;
	struct rng_drv *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	vio_drvdev_set_priv(vdev, st);
	st->vq = vio_drvdev_setup_vq(vdev, 0, 0, NULL, NULL);
	if (!st->vq) {
		r = errno ? -errno : -EIO;
		goto fail;
	}
	unsigned n = vio_vq_size(st->vq);
	st->nbuf = n < RNG_NBUF ? n : RNG_NBUF;
	for (unsigned i = 0; i < st->nbuf; i++) {
		uint64_t daddr;
		st->buf[i] = vio_mem_alloc(vio_drvdev_mem(vdev), RNG_BUF_SIZE,
					   64, &daddr);
		if (!st->buf[i]) {
			st->nbuf = i;
			r = -ENOMEM;
			goto fail;
		}
		r = post(st, st->buf[i]);
		if (r < 0) {
			st->nbuf = i + 1;
			goto fail;
		}
	}
	/* 3.1.1: no notification before DRIVER_OK; the first read kicks */
	st->need_kick = true;
	return 0;
fail:
	/* the bus sets FAILED; the vq goes with the next reset */
	rng_free_state(vdev, st);
	return r;
}

/* The bus stopped the device before calling us: take the buffers back. */
static void rng_remove(struct vio_drvdev *vdev)
{
	struct rng_drv *st = vio_drvdev_priv(vdev);
	if (!st)
		return;
	while (vio_vq_detach_unused(st->vq))
		;
	rng_free_state(vdev, st);
}

const struct vio_driver vio_rng_driver = {
    .name = "virtio-rng",
    .id_table = rng_ids,
    .feature_table = rng_features,
    .feature_table_size = sizeof(rng_features) / sizeof(rng_features[0]),
    .probe = rng_probe,
    .remove = rng_remove,
};

ssize_t vio_rng_read(struct vio_drvdev *vdev, void *buf, size_t len)
{
	if (!vdev || vio_drvdev_driver(vdev) != &vio_rng_driver)
		return -ENODEV;
	struct rng_drv *st = vio_drvdev_priv(vdev);
	if (!st)
		return -ENODEV;
	if (len > SSIZE_MAX || (len && !buf))
		return -EINVAL;

	uint8_t *out = buf;
	size_t done = 0;
	unsigned empty = 0;
	while (done < len) {
		if (st->cur) {
			size_t n = st->cur_len - st->cur_off;
			if (n > len - done)
				n = len - done;
			memcpy(out + done, st->cur + st->cur_off, n);
			done += n;
			st->cur_off += (uint32_t)n;
			if (st->cur_off == st->cur_len) {
				/* back to the device at once: it refills
				 * while we copy the next one */
				if (post(st, st->cur) == 0)
					vio_vq_kick(st->vq);
				st->cur = NULL;
			}
			continue;
		}
		if (st->need_kick) {
			vio_vq_kick(st->vq);
			st->need_kick = false;
		}
		uint32_t ulen = 0;
		void *tok = vio_drvdev_wait_used(vdev, st->vq, &ulen, -1);
		if (!tok)
			return done ? (ssize_t)done : -EIO;
		/* hand out only what the device says it wrote: the ring
		 * refuses a length beyond the buffer's RNG_BUF_SIZE and a
		 * token it was not given; checked again here, as a bound
		 * for the copy */
		if (!rng_own(st, tok) || ulen > RNG_BUF_SIZE) {
			vio_vq_set_broken(st->vq,
					  "used buffer %p, length %u: not one "
					  "of ours",
					  tok, ulen);
			return done ? (ssize_t)done : -EIO;
		}
		if (ulen == 0) {
			if (++empty >= RNG_MAX_EMPTY)
				return done ? (ssize_t)done : -EIO;
			if (post(st, tok) == 0)
				vio_vq_kick(st->vq);
			continue;
		}
		empty = 0;
		st->cur = tok;
		st->cur_off = 0;
		st->cur_len = ulen;
	}
	return (ssize_t)done;
}
