/* SPDX-License-Identifier: MIT */
/*
 * vio blk: the device and the driver (tools/blk.h).  The device is a
 * vhost-user backend behind a Unix socket, reached through the vhost-user
 * frontend, or an image file served in this process by vio's own blk
 * device over the in-process transport (tools/devthread.h); either way a
 * bus binds vio's blk driver, whose public API the verbs use.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <linux/virtio_ids.h>

#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

#include "blk.h"
#include "util.h"

static int open_image(struct blk_ctx *c, const struct blk_opts *o, unsigned nq)
{
	struct vio_blk_device_opts dc = {
	    .path = o->image,
	    .size = o->size,
	    .num_queues = nq,
	    .queue_size = (uint16_t)(o->queue_size ? o->queue_size : 0),
	    .readonly = o->readonly,
	    .no_packed = o->no_packed,
	    .no_event_idx = o->no_event_idx,
	    .no_indirect = o->no_indirect,
	};
	char err[256] = "";
	c->bd = vio_blk_device_new(&dc, err, sizeof(err));
	if (!c->bd) {
		/* the reason may already start with the path */
		const char *why = err[0] ? err : strerror(errno);
		size_t pl = strlen(o->image);
		if (strncmp(why, o->image, pl) == 0 && why[pl] == ':' &&
		    why[pl + 1] == ' ')
			why += pl + 2;
		tool_err("--image %s: %s", o->image, why);
		return TOOL_EXIT_FAIL;
	}
	int r = tool_devthread_start(&c->dt, vio_blk_device_dev(c->bd), c->mem);
	if (r)
		return r;
	c->vdev = tool_devthread_vdev(&c->dt);
	return 0;
}

/* The vhost-user path: connect to the backend at o->conn.socket. */
static int open_socket(struct blk_ctx *c, const struct blk_opts *o)
{
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = VIRTIO_ID_BLOCK,
	    .num_queues = o->queues,
	};
	c->fe = tool_conn_connect(&o->conn, &fc);
	if (!c->fe)
		return TOOL_EXIT_FAIL;
	c->vdev = vio_frontend_vdev(c->fe);
	return 0;
}

int blk_open(struct blk_ctx *c, const struct blk_opts *o, unsigned want_queues)
{
	c->where = o->conn.socket ? o->conn.socket : o->image;
	c->mem = vio_mem_new();
	if (!c->mem) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	int ret =
	    o->conn.socket ? open_socket(c, o) : open_image(c, o, want_queues);
	if (ret)
		return ret;

	struct vio_blk_driver_opts dc = {
	    .queue_depth = o->queue_depth,
	    .num_queues = o->queues,
	    .queue_size = o->queue_size,
	    .no_packed = o->no_packed,
	    .no_event_idx = o->no_event_idx,
	    .no_indirect = o->no_indirect,
	};
	if (o->verb == V_BENCH && dc.queue_depth < o->iodepth)
		dc.queue_depth = o->iodepth;
	c->drv = vio_blk_driver_new(&dc);
	c->bus = vio_bus_new();
	if (!c->drv || !c->bus || vio_bus_register(c->bus, c->drv) < 0) {
		tool_err("cannot set up the driver: %s", strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	int r = vio_bus_add(c->bus, c->vdev);
	if (r == -ENODEV && vio_drvdev_driver(c->vdev) == NULL &&
	    vio_drvdev_device_id(c->vdev) != VIRTIO_ID_BLOCK) {
		tool_err("%s: not a virtio-blk device (device id %u)", c->where,
			 vio_drvdev_device_id(c->vdev));
		c->added = true;
		return TOOL_EXIT_FAIL;
	}
	c->added = true;
	if (r < 0) {
		tool_err("%s: not a usable virtio-blk device: the driver's "
			 "probe failed: %s",
			 c->where, strerror(-r));
		return TOOL_EXIT_FAIL;
	}
	c->b = vio_blk_from_vdev(c->vdev);
	if (!c->b) {
		tool_err("%s: the blk driver did not bind", c->where);
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

void blk_close(struct blk_ctx *c)
{
	if (c->bus) {
		if (c->added)
			vio_bus_remove(c->bus, c->vdev);
		vio_bus_free(c->bus);
	}
	vio_blk_driver_free(c->drv);
	tool_devthread_stop(&c->dt);
	vio_blk_device_free(c->bd);
	if (c->fe)
		vio_frontend_free(c->fe);
	vio_mem_free(c->mem);
}

/* Zero-copy I/O buffer in the shared memory; message on failure. */
void *blk_shm_alloc(struct blk_ctx *c, size_t size)
{
	uint64_t daddr;
	void *p = vio_mem_alloc(c->mem, size, 4096, &daddr);
	if (!p)
		tool_err("cannot allocate %zu bytes of shared memory: %s", size,
			 strerror(errno));
	return p;
}

/* offset + len must be sector-aligned (offset) and inside the device. */
int blk_check_range(struct blk_ctx *c, uint64_t offset, uint64_t len)
{
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	if (offset % SECTOR) {
		tool_err("offset %" PRIu64 " is not a multiple of 512", offset);
		return TOOL_EXIT_FAIL;
	}
	if (offset > cap || (offset == cap && len)) {
		tool_err("offset %" PRIu64 " is past the capacity (%" PRIu64
			 " bytes)",
			 offset, cap);
		return TOOL_EXIT_FAIL;
	}
	if (len > cap - offset) {
		tool_err("offset %" PRIu64 " + length %" PRIu64
			 " goes past the capacity (%" PRIu64 " bytes)",
			 offset, len, cap);
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

int blk_io_err(const char *what, uint64_t offset, int r)
{
	tool_err("%s at offset %" PRIu64 " failed: %s", what, offset,
		 r == -EROFS ? "device is read-only" : strerror(-r));
	return TOOL_EXIT_FAIL;
}
