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

/* One region, as translation sees it (memtable.c keeps them sorted). */
struct mt_hot {
	uint64_t addr; /* device address of byte 0 */
	uint64_t end;  /* addr + size, exclusive */
	uint8_t *host; /* byte 0 in this process */
};

/* The first member of struct vio_memtable (memtable.c): what the inline
 * lookup below reads. */
struct vio_mt_head {
	unsigned max, n;
	struct mt_hot *hot;
};

/* The search behind a wrong hint (memtable.c). */
void *vio_memtable_ptr_find(const struct vio_memtable *mt, uint64_t addr,
			    uint32_t len, unsigned *hint);

/* [addr, addr+len) in one region: its address here, *hint updated to that
 * region.  NULL when it is not mapped or crosses a region boundary (the
 * caller then takes vio_memtable_translate, which tells them apart).
 * len 0 asks for addr itself.  Inline: a right hint costs two compares. */
static inline void *vio_memtable_ptr_hint(const struct vio_memtable *mt,
					  uint64_t addr, uint32_t len,
					  unsigned *hint)
{
	const struct vio_mt_head *t = (const struct vio_mt_head *)mt;
	unsigned i = *hint;
	if (__builtin_expect(i < t->n, 1)) {
		const struct mt_hot *h = &t->hot[i];
		/* addr in h, then addr + len cannot wrap past h->end */
		if (__builtin_expect(addr - h->addr < h->end - h->addr, 1))
			return len <= h->end - addr ? h->host + (addr - h->addr)
						    : NULL;
	}
	return vio_memtable_ptr_find(mt, addr, len, hint);
}

#endif
