/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, device side: live resize (vio_blk_device_resize, vio/blk.h).
 *
 * The new capacity is published in two steps, in this order: the device's
 * own range check (bd->capacity, read by the queues' kicks), then the
 * config space field (vio_device_config_update), which tells the
 * transport (vhost-user: BACKEND_CONFIG_CHANGE_MSG on the backend
 * channel; inproc: the driver's config_changed).  So a driver that learns
 * of the new capacity finds the device already serving it.
 *
 * Only growing is applied.  A smaller size is refused and the capacity
 * stays: the driver (a guest's file system) may have data past the new
 * end, and requests in flight may be addressed there; QEMU's block_resize
 * refuses to shrink likewise unless told to.  An image that shrank under
 * us is reported, not followed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <endian.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>

#include "blk_internal.h"

/* Resizes of every device, one at a time (they are rare). */
static pthread_mutex_t resize_lock = PTHREAD_MUTEX_INITIALIZER;

#define ERR(...) (errlen ? snprintf(err, errlen, __VA_ARGS__) : 0)

/* The image's size in bytes now. */
static int image_bytes(struct vio_blk_device *bd, uint64_t *bytes)
{
	if (bd->backend)
		return bd->backend->size(bd, bytes);
	if (bd->is_blkdev)
		return ioctl(bd->fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	struct stat st;
	if (fstat(bd->fd, &st) < 0)
		return -errno;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

static int resize_locked(struct vio_blk_device *bd, uint64_t sectors, char *err,
			 size_t errlen)
{
	uint64_t have;
	int r = image_bytes(bd, &have);
	if (r) {
		ERR("%s: cannot read the image size: %s", bd->name,
		    strerror(-r));
		return r;
	}
	if (sectors == 0) {
		sectors = have / SECTOR;
	} else if (sectors > UINT64_MAX / SECTOR) {
		ERR("%s: %" PRIu64 " sectors is too large", bd->name, sectors);
		return -EINVAL;
	} else if (have < sectors * SECTOR) {
		/* a regular image grows (sparse); a block device cannot; a
		 * network image if its backend can */
		bool fixed = bd->backend ? !bd->backend->grow : bd->is_blkdev;
		if (fixed || bd->readonly) {
			ERR("%s: the image has %" PRIu64 " bytes, fewer than "
			    "%" PRIu64 " (%s)",
			    bd->name, have, sectors * SECTOR,
			    bd->readonly  ? "read-only"
			    : bd->backend ? "its size is fixed"
					  : "a block device");
			return -ENOSPC;
		}
		if (bd->backend) {
			r = bd->backend->grow(bd, sectors * SECTOR);
			if (r) {
				ERR("%s: cannot grow the image to %" PRIu64
				    " bytes: %s",
				    bd->name, sectors * SECTOR, strerror(-r));
				return r;
			}
		} else if (sectors * SECTOR > (uint64_t)INT64_MAX ||
			   ftruncate(bd->fd, (off_t)(sectors * SECTOR)) < 0) {
			r = sectors * SECTOR > (uint64_t)INT64_MAX ? -EFBIG
								   : -errno;
			ERR("%s: cannot grow the image to %" PRIu64
			    " bytes: %s",
			    bd->name, sectors * SECTOR, strerror(-r));
			return r;
		}
	}
	uint64_t old = __atomic_load_n(&bd->capacity, __ATOMIC_ACQUIRE);
	if (sectors == old)
		return 0;
	if (sectors < old) {
		ERR("%s: shrinking from %" PRIu64 " to %" PRIu64
		    " bytes refused: the driver may have data there "
		    "(the capacity stays %" PRIu64 " bytes)",
		    bd->name, old * SECTOR, sectors * SECTOR, old * SECTOR);
		return -EPERM;
	}
	/* the device serves the new range before anyone hears of it */
	__atomic_store_n(&bd->capacity, sectors, __ATOMIC_RELEASE);
	uint64_t le = htole64(sectors);
	r = vio_device_config_update(
	    bd->dev, offsetof(struct virtio_blk_config, capacity), &le,
	    sizeof(le));
	if (r) { /* cannot happen: the field is inside the config space */
		ERR("%s: config update: %s", bd->name, strerror(-r));
		return r;
	}
	return 0;
}

int vio_blk_device_resize(struct vio_blk_device *bd, uint64_t sectors,
			  char *err, size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	if (!bd)
		return -EINVAL;
	pthread_mutex_lock(&resize_lock);
	int r = resize_locked(bd, sectors, err, errlen);
	pthread_mutex_unlock(&resize_lock);
	return r;
}
