/* SPDX-License-Identifier: MIT */
/*
 * What the tests that put a driver's ring and a device's ring on one
 * memory share: the device's memory table over the driver's memory
 * (cut into regions, so buffers cross region boundaries), and the pair
 * of queues on one layout.  Included by the ring, dirty log, rng, blk and
 * net device tests.
 */
#ifndef VIO_TEST_RING_ENV_H
#define VIO_TEST_RING_ENV_H

#include "test.h"
#include <vio/mem.h>
#include <vio/ring.h>

/* every program uses a different subset */
#pragma GCC diagnostic ignored "-Wunused-function"

/*
 * The device's table of the driver's region r: stripe 0, the region
 * whole (in a table of room entries); else regions of stripe bytes,
 * adjacent in device address space.  The descriptor is not the device's
 * (fd -1).
 */
static struct vio_memtable *ring_env_table(const struct vio_region *r,
					   uint32_t stripe, unsigned room)
{
	struct vio_region rr = *r;
	rr.fd = -1;
	unsigned n = stripe ? (unsigned)(rr.size / stripe) : 1;
	struct vio_memtable *mt = vio_memtable_new(n > room ? n : room);
	REQUIRE(mt);
	for (unsigned i = 0; i < n; i++) {
		struct vio_region s = rr;
		if (stripe) {
			s.addr = rr.addr + (uint64_t)i * stripe;
			s.ptr = (uint8_t *)rr.ptr + (size_t)i * stripe;
			s.size = stripe;
			s.uaddr =
			    rr.uaddr ? rr.uaddr + (uint64_t)i * stripe : 0;
		}
		REQUIRE(vio_memtable_add(mt, &s) == 0);
	}
	return mt;
}

/* A driver queue on mem and the device's on its layout through mt, both
 * from o; the device's notify callback is dev_notify when o has one. */
static void ring_env_pair(const struct vio_vq_opts *o, vio_vq_fn *dev_notify,
			  struct vio_mem *mem, struct vio_memtable *mt,
			  struct vio_vq **drv, struct vio_vq **dev)
{
	*drv = vio_vq_new_driver(o, mem);
	REQUIRE(*drv);
	struct vio_vq_layout l;
	vio_vq_get_layout(*drv, &l);
	struct vio_vq_opts d = *o;
	if (dev_notify)
		d.notify = dev_notify;
	*dev = vio_vq_new_device(&d, &l, mt);
	REQUIRE(*dev);
}

#endif
