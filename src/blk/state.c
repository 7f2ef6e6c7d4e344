/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk's section of a device state blob (docs/device-state.md):
 * what a destination backend needs to carry on serving a driver that
 * will not initialise the device again.  The rings, features and memory
 * travel in vhost-user messages; the disk's data is shared (the same
 * image): what is left is the cache mode the driver chose (writeback,
 * with CONFIG_WCE) and the geometry the driver read once and relies on,
 * checked to be the same on both sides.
 *
 * Version 1, 24 bytes, little-endian:
 *
 *     0  u32  section version (1)
 *     4  u16  queues of the source device
 *     6  u8   writeback (config wce): 0 writethrough, 1 writeback
 *     7  u8   flags: bit 0 read-only; other bits 0
 *     8  u64  capacity in 512-byte sectors
 *    16  u32  logical block size (config blk_size)
 *    20  u32  reserved, 0
 *
 * Loading checks every field before changing anything: capacity, block
 * size and read-only must match the destination's (a driver mid-way
 * through I/O cannot be told the disk changed), the destination must
 * have at least as many queues; then the cache mode is applied.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <endian.h>

#include <linux/virtio_blk.h>

#include "blk/blk_internal.h"
#include "util/le.h"

#define BLK_STATE_VERSION 1u
#define BLK_STATE_LEN 24u

int blk_state_save(struct vio_device *dev, void *buf, size_t cap);
int blk_state_load(struct vio_device *dev, const void *buf, size_t len,
		   char *why, size_t whylen);

static uint8_t cfg_u8(struct vio_device *dev, unsigned off)
{
	uint8_t v = 0;
	if (vio_device_config_read(dev, off, &v, 1))
		return 0;
	return v;
}

static uint32_t cfg_blk_size(struct vio_device *dev)
{
	uint32_t v = 0;
	if (vio_device_config_read(dev,
				   offsetof(struct virtio_blk_config, blk_size),
				   &v, sizeof(v)))
		return 0;
	return le32toh(v);
}

int blk_state_save(struct vio_device *dev, void *buf, size_t cap)
{
	struct vio_blk_device *bd = vio_device_opaque(dev);
	if (cap < BLK_STATE_LEN)
		return -ENOSPC;
	uint8_t *p = buf;
	memset(p, 0, BLK_STATE_LEN);
	vio_put_le(p, BLK_STATE_VERSION, 4);
	vio_put_le(p + 4, bd->nq, 2);
	p[6] = cfg_u8(dev, offsetof(struct virtio_blk_config, wce));
	p[7] = bd->readonly ? 1 : 0;
	vio_put_le(p + 8, vio_blk_device_capacity(bd), 8);
	vio_put_le(p + 16, cfg_blk_size(dev), 4);
	return BLK_STATE_LEN;
}

#define WHY(err, ...) (snprintf(why, whylen, __VA_ARGS__), (err))

int blk_state_load(struct vio_device *dev, const void *buf, size_t len,
		   char *why, size_t whylen)
{
	struct vio_blk_device *bd = vio_device_opaque(dev);
	const uint8_t *p = buf;
	char dummy[1];
	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	if (len < 4)
		return WHY(-EINVAL, "blk state truncated: %zu bytes", len);
	uint64_t ver = vio_get_le(p, 4);
	if (ver != BLK_STATE_VERSION)
		return WHY(-EPROTONOSUPPORT,
			   "blk state version %" PRIu64
			   ", this vio reads version %u",
			   ver, BLK_STATE_VERSION);
	if (len != BLK_STATE_LEN)
		return WHY(-EINVAL, "blk state of %zu bytes, version 1 has %u",
			   len, BLK_STATE_LEN);
	uint64_t nq = vio_get_le(p + 4, 2), cap = vio_get_le(p + 8, 8);
	uint64_t bs = vio_get_le(p + 16, 4), rsv = vio_get_le(p + 20, 4);
	uint8_t wce = p[6], flags = p[7];
	if (wce > 1 || (flags & ~1u) || rsv)
		return WHY(-EINVAL,
			   "blk state: writeback %u, flags 0x%x, reserved "
			   "0x%" PRIx64 ": invalid",
			   wce, flags, rsv);
	uint64_t mycap = vio_blk_device_capacity(bd);
	if (cap != mycap)
		return WHY(-EINVAL,
			   "blk state: the source disk has %" PRIu64
			   " sectors, this one %" PRIu64,
			   cap, mycap);
	if (bs != cfg_blk_size(dev))
		return WHY(-EINVAL,
			   "blk state: block size %" PRIu64 ", this disk %u",
			   bs, cfg_blk_size(dev));
	if ((flags & 1) != (bd->readonly ? 1 : 0))
		return WHY(-EINVAL,
			   "blk state: the source disk is %s, this "
			   "one is not",
			   flags & 1 ? "read-only" : "writable");
	if (nq == 0 || nq > bd->nq)
		return WHY(-EINVAL,
			   "blk state: %" PRIu64 " queues, this device has %u",
			   nq, bd->nq);
	unsigned off = offsetof(struct virtio_blk_config, wce);
	if (vio_device_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE)) {
		int r = vio_device_config_write(dev, off, &wce, 1);
		if (r)
			return WHY(r, "blk state: cannot set writeback %u: %s",
				   wce, strerror(-r));
	} else if (wce != cfg_u8(dev, off)) {
		return WHY(-EINVAL,
			   "blk state: writeback %u without CONFIG_WCE, this "
			   "device has %u",
			   wce, cfg_u8(dev, off));
	}
	return 0;
}
