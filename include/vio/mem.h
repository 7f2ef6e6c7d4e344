/* SPDX-License-Identifier: MIT */
/*
 * vio/mem.h - shared memory.
 *
 * Driver side: struct vio_mem owns memfd-backed regions mapped in this
 * process and hands out (pointer, device address) pairs, as L4virtio's
 * register_ds does.  Each region has a device address range of its own;
 * regions never overlap in device address space.
 *
 *     struct vio_mem *m = vio_mem_new();
 *     vio_mem_add_region(m, 4 << 20, NULL);      // register_ds
 *     uint64_t daddr;
 *     void *p = vio_mem_alloc(m, 4096, 64, &daddr);
 *
 * Device side: struct vio_memtable maps the regions a driver shared (by fd)
 * or registers memory already mapped (in-process), and translates device
 * addresses to pointers with bounds checks.  A range may span regions that
 * are adjacent in device address space; translation splits it.
 */
#ifndef VIO_MEM_H
#define VIO_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIO_BAD_ADDR UINT64_MAX

/* One region, as the two sides exchange it. */
struct vio_region {
	uint64_t addr;	 /* device (guest physical) address of byte 0 */
	uint64_t size;	 /* bytes */
	uint64_t uaddr;	 /* frontend virtual address (vhost-user), or 0 */
	uint64_t offset; /* offset of byte 0 in fd */
	int fd;		 /* memfd, or -1 */
	void *ptr;	 /* where byte 0 is mapped in this process */
};

/* ---- driver side ---- */

struct vio_mem;
struct vio_mem *vio_mem_new(void);
/* Close every region (unmap, close fds).  Pointers die with it. */
void vio_mem_free(struct vio_mem *m);
/*
 * Create a memfd region of size bytes (rounded up to the page size), map
 * it shared, give it the next free device address range.  *out (if not
 * NULL) describes it; the fd stays owned by m.  0 or negative errno.
 */
VIO_MUST_CHECK int vio_mem_add_region(struct vio_mem *m, size_t size,
				      struct vio_region *out);
unsigned vio_mem_region_count(const struct vio_mem *m);
/* Region i, or NULL. */
const struct vio_region *vio_mem_region(const struct vio_mem *m, unsigned i);
/*
 * Allocate size bytes aligned to align (a power of two) from the regions,
 * adding a region when none has room.  Returns the pointer and stores the
 * device address in *daddr; NULL with errno on failure.  Thread-safe.
 */
void *vio_mem_alloc(struct vio_mem *m, size_t size, size_t align,
		    uint64_t *daddr);
/* Return memory from vio_mem_alloc (NULL is ignored). */
void vio_mem_release(struct vio_mem *m, void *p);
/* Device address of [p, p+len) if it lies inside one region, else
 * VIO_BAD_ADDR.  Lock-free; fast for the data path. */
uint64_t vio_mem_daddr(const struct vio_mem *m, const void *p, size_t len);

/* ---- device side ---- */

struct vio_memtable;
/* A table of at most max_regions regions (vhost-user: 509 or more). */
struct vio_memtable *vio_memtable_new(unsigned max_regions);
/* Unmap what the table mapped, close its fds. */
void vio_memtable_free(struct vio_memtable *mt);
/*
 * Map r->size bytes of r->fd at r->offset and add the region; the table
 * takes ownership of the fd (closed on failure too).  Rejects overlaps in
 * device address space, zero sizes, wrap, a full table: negative errno.
 */
VIO_MUST_CHECK int vio_memtable_map(struct vio_memtable *mt,
				    const struct vio_region *r);
/* Add memory already mapped at r->ptr (not unmapped by the table). */
VIO_MUST_CHECK int vio_memtable_add(struct vio_memtable *mt,
				    const struct vio_region *r);
/* Remove (and unmap if mapped by the table) the region that starts at
 * addr with this size.  0 or -ENOENT. */
int vio_memtable_remove(struct vio_memtable *mt, uint64_t addr, uint64_t size);
/* Remove every region. */
void vio_memtable_clear(struct vio_memtable *mt);
unsigned vio_memtable_count(const struct vio_memtable *mt);
/* Pointer to [addr, addr+len) if it lies inside one region, else NULL. */
void *vio_memtable_ptr(const struct vio_memtable *mt, uint64_t addr,
		       uint64_t len);
/* Same, by frontend virtual address (vhost-user ring addresses). */
void *vio_memtable_uptr(const struct vio_memtable *mt, uint64_t uaddr,
			uint64_t len);
/*
 * Translate [addr, addr+len) into at most max segments, splitting where
 * it crosses region boundaries.  Returns the number of segments, -EFAULT
 * (unmapped byte, or addr+len wraps), -ENOBUFS (more than max needed).
 * -EFAULT wins over -ENOBUFS: with max 1, a range that is not fully mapped
 * always says -EFAULT.  len 0 gives 0 segments.
 */
int vio_memtable_translate(const struct vio_memtable *mt, uint64_t addr,
			   uint32_t len, struct vio_iov *iov, unsigned max);

/*
 * ---- truncated guest memory (SIGBUS) ----
 *
 * A region mapped from a peer's fd faults (SIGBUS) when the peer shrinks
 * the file under it: a frontend's memory-backend-file is not sealed, and
 * a hostile one can ftruncate at any time.  Without a handler the whole
 * process dies at the next ring or buffer access, in any thread.
 *
 * vio_mem_sigbus_guard_install() sets a process-wide SIGBUS handler
 * (a process-wide choice, so the application makes it: `vio serve` does).
 * For a fault (BUS_ADRERR) inside a region some vio_memtable mapped with
 * vio_memtable_map, it maps zero-filled anonymous memory over that whole
 * region (MAP_FIXED: the faulting access completes and every later one
 * reads zeros, writes go nowhere), marks the region's table faulted and
 * shuts down the table's fault fd (vio_memtable_set_fault_fd), so the
 * table's owner sees its connection end; the process goes on.  Any other
 * SIGBUS (outside those regions, or sent by kill) goes to the handler
 * installed before (a sanitizer's, say) or, if none, kills the process as
 * it would have without the guard.  Async-signal-safe, safe with any
 * number of threads touching guest memory.  Idempotent; 0 or negative
 * errno.  Install it after anything else that handles SIGBUS, and do not
 * replace it afterwards.
 *
 * Regions are registered whether or not the guard is installed (a fixed
 * table of 4096 regions per process; when it is full, a region whose
 * file is sealed with F_SEAL_SHRINK is mapped unguarded, an unsealed one
 * is refused with -ENOSPC).  Regions added with vio_memtable_add are not
 * guarded: their owner mapped them.
 */
VIO_MUST_CHECK int vio_mem_sigbus_guard_install(void);
/*
 * Where a fault in mt's regions is reported: the handler calls
 * shutdown(fd, SHUT_RDWR) (a connected socket: both ends see it close).
 * fd -1: nobody is told but vio_memtable_faulted().  Also clears the
 * faulted state.  Call it when a new connection starts using mt, while mt
 * has no region; keep fd open until mt's regions are removed (the handler
 * may shut it down until then).
 */
void vio_memtable_set_fault_fd(struct vio_memtable *mt, int fd);
/* A region of mt faulted since the last vio_memtable_set_fault_fd (its
 * memory now reads zeros): the peer truncated it.  Lock-free. */
bool vio_memtable_faulted(const struct vio_memtable *mt);
/* Device address of the first such fault, or VIO_BAD_ADDR if none. */
uint64_t vio_memtable_fault_addr(const struct vio_memtable *mt);

#ifdef __cplusplus
}
#endif
#endif
