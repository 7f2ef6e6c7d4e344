/* SPDX-License-Identifier: MIT */
/*
 * The model tests' device type (test_model*.c): tdev, a device of two
 * queues and 16 bytes of config (bytes 4..5 driver-writable) whose kick
 * fills every writable byte with 0xa5, and counts what it saw.
 *
 * Each program includes it once.
 */
#ifndef VIO_TEST_MODEL_ENV_H
#define VIO_TEST_MODEL_ENV_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test.h"
#include <vio/device.h>
#include <vio/mem.h>

/* every program uses a different subset */
#pragma GCC diagnostic ignored "-Wunused-function"

#define ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define DRV VIRTIO_CONFIG_S_DRIVER
#define FOK VIRTIO_CONFIG_S_FEATURES_OK
#define DOK VIRTIO_CONFIG_S_DRIVER_OK
#define NR VIRTIO_CONFIG_S_NEEDS_RESET
#define FAIL VIRTIO_CONFIG_S_FAILED

/* ---- a device type for the tests ---- */

struct tdev {
	unsigned kicks, resets, status_calls;
	bool hold; /* kick leaves the buffers available (a receive queue) */
	bool more; /* kick says it stopped at its bound */
	int refuse_status; /* ops->status returns this for DRIVER_OK */
	uint8_t last_old, last_new;
};

static int tdev_status(struct vio_device *dev, uint8_t old, uint8_t new_status)
{
	struct tdev *t = vio_device_opaque(dev);
	t->status_calls++;
	t->last_old = old;
	t->last_new = new_status;
	if ((new_status & ~old) & DOK)
		return t->refuse_status;
	return 0;
}

static void tdev_reset(struct vio_device *dev)
{
	struct tdev *t = vio_device_opaque(dev);
	t->resets++;
	/* the contract: every queue is already freed */
	for (unsigned i = 0; i < vio_device_num_queues(dev); i++)
		CHECK(vio_device_queue(dev, i) == NULL);
}

/* Fill each writable byte with 0xa5; return chains with in_len. */
static bool tdev_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	struct tdev *t = vio_device_opaque(dev);
	struct vio_chain c;
	struct vio_iov iov[8];
	(void)idx;
	t->kicks++;
	if (t->hold)
		return t->more;
	while (vio_vq_pop(vq, &c, iov, 8) > 0) {
		for (unsigned i = 0; i < c.nr_in; i++)
			memset(c.in[i].base, 0xa5, c.in[i].len);
		CHECK_EQ(vio_vq_push(vq, c.head, c.in_len), 0);
	}
	vio_vq_call(vq);
	return false;
}

/* tdev's driver-writable config: bytes 4..5 */
static bool tdev_config_writable(struct vio_device *dev, unsigned off,
				 const void *buf, unsigned len)
{
	return off >= 4 && off + len <= 6;
}

static const struct vio_device_ops tdev_ops = {
    .config_writable = tdev_config_writable,
    .status = tdev_status,
    .reset = tdev_reset,
    .kick = tdev_kick,
};

static struct vio_device *tdev_new(struct tdev *t, const unsigned *bits,
				   unsigned nbits)
{
	static const uint8_t cfg[16] = {1, 2,  3,  4,  5,  6,  7,  8,
					9, 10, 11, 12, 13, 14, 15, 16};
	memset(t, 0, sizeof(*t));
	struct vio_device_opts c = {
	    .name = "tdev",
	    .device_id = 42,
	    .vendor_id = 7,
	    .features = vio_features_from(bits, nbits),
	    .num_queues = 2,
	    .queue_max_size = 64,
	    .config = cfg,
	    .config_size = sizeof(cfg),
	    .ops = &tdev_ops,
	    .opaque = t,
	};
	struct vio_device *dev = vio_device_new(&c);
	REQUIRE(dev);
	return dev;
}

static const unsigned ring_bits[] = {VIRTIO_F_RING_PACKED,
				     VIRTIO_RING_F_EVENT_IDX,
				     VIRTIO_RING_F_INDIRECT_DESC, 5};

#endif
