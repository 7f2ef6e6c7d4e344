/* SPDX-License-Identifier: MIT */
/*
 * The data path's one-region lookup (library-internal).
 *
 * Most descriptors lie in one region, and a queue's buffers mostly in the
 * region its last one was in.  hint is the caller's guess (a per-queue
 * index, any value is safe: it is checked against the table as it is
 * now, so a table that changed only costs a search).
 */
#ifndef VIO_MEM_MEMTABLE_HINT_H
#define VIO_MEM_MEMTABLE_HINT_H

#include <stdint.h>

#include <vio/mem.h>

/* [addr, addr+len) in one region: its address here, *hint updated to that
 * region.  NULL when it is not mapped or crosses a region boundary (the
 * caller then takes vio_memtable_translate, which tells them apart).
 * len 0 asks for addr itself. */
void *vio_memtable_ptr_hint(const struct vio_memtable *mt, uint64_t addr,
			    uint32_t len, unsigned *hint);

#endif
