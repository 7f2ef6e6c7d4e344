/* SPDX-License-Identifier: MIT */
/*
 * vio/types.h - the few definitions every layer shares: the result
 * annotation and the device-side segment.  It includes nothing of vio's,
 * so the memory layer (vio/mem.h) and the ring layer (vio/ring.h) both
 * build on it without including each other.
 */
#ifndef VIO_TYPES_H
#define VIO_TYPES_H

#include <stdint.h>

/* A result that must be checked (0 or a negative errno, or a pointer). */
#define VIO_MUST_CHECK __attribute__((warn_unused_result))

/* A device-side segment, already translated and bounds-checked. */
struct vio_iov {
	void *base;
	uint32_t len;
	/* Filled by vio_vq_pop(): 1 when this segment continues the
	 * descriptor of the segment before it (a descriptor that crosses
	 * memory-region boundaries becomes several segments), else 0.
	 * Other producers (vio_memtable_translate) leave it alone. */
	uint32_t cont;
};

#endif
