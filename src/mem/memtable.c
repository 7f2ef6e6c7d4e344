/* SPDX-License-Identifier: MIT */
/*
 * Device-side memory table: the regions a driver shared with us, and the
 * translation from device addresses (and, for vhost-user, frontend
 * virtual addresses) to pointers in this process, with bounds checks.
 *
 * Regions sit in a fixed array of max_regions entries sorted by device
 * address and never overlapping there, so translation is a binary search
 * and a range that crosses into the next region can only continue in the
 * next entry.  Every region has end = addr + size <= UINT64_MAX (regions
 * that would wrap are refused), so no bound check below can overflow.
 *
 * Threading: the lookups (vio_memtable_ptr, _uptr, _translate) only read
 * the table; any number of threads may run them at once.  Changes (map,
 * add, remove, clear, free) must not run concurrently with anything else
 * on the table: the owner quiesces the queues that use it first (as a
 * vhost-user backend must on SET_MEM_TABLE anyway).  The lookups make no
 * system call and allocate nothing.
 *
 * Truncation: every region this table maps (not the ones it is given by
 * vio_memtable_add) is registered with the SIGBUS guard (guard.c) before
 * the table returns it, and unregistered before it is unmapped.  With the
 * guard installed, a fault in one of them replaces the region with zeros,
 * records the fault in mt->guard and shuts down mt->guard.fault_fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/guard.h"
#include "mem/memtable_hint.h"
#include <vio/mem.h>

/* Far beyond any vhost-user limit (509 today); keeps sizes sane. */
#define MT_MAX_REGIONS 65536u

/* What translation touches (struct mt_hot, memtable_hint.h) is packed
 * for the binary search. */

/* The rest, in a parallel array (same index). */
struct mt_meta {
	uint64_t uaddr; /* frontend virtual address of byte 0 */
	bool has_uaddr; /* uaddr was given (non-zero) */
	void *map_base; /* what we mmap'ed, or NULL (vio_memtable_add) */
	size_t map_len;
	int fd;		/* owned, or -1 */
	int guard_slot; /* SIGBUS guard registration, or -1 */
};

struct vio_memtable {
	struct vio_mt_head h; /* max, n, hot[]: first (memtable_hint.h) */
	struct mt_meta *meta;
	struct vio_mem_guard_owner guard; /* written by the SIGBUS handler */
};

struct vio_memtable *vio_memtable_new(unsigned max_regions)
{
	if (max_regions == 0 || max_regions > MT_MAX_REGIONS) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_memtable *mt = calloc(1, sizeof(*mt));
	if (!mt)
		return NULL;
	mt->h.max = max_regions;
	mt->guard.fault_fd = -1;
	mt->guard.fault_addr = VIO_BAD_ADDR;
	mt->h.hot = calloc(max_regions, sizeof(*mt->h.hot));
	mt->meta = calloc(max_regions, sizeof(*mt->meta));
	if (!mt->h.hot || !mt->meta) {
		free(mt->h.hot);
		free(mt->meta);
		free(mt);
		errno = ENOMEM;
		return NULL;
	}
	return mt;
}

static void release(struct mt_meta *m)
{
	/* no handler may touch the mapping once it is gone */
	vio_mem_guard_unregister(m->guard_slot);
	m->guard_slot = -1;
	if (m->map_base)
		munmap(m->map_base, m->map_len);
	if (m->fd >= 0)
		close(m->fd);
	m->map_base = NULL;
	m->fd = -1;
}

void vio_memtable_clear(struct vio_memtable *mt)
{
	if (!mt)
		return;
	for (unsigned i = 0; i < mt->h.n; i++)
		release(&mt->meta[i]);
	mt->h.n = 0;
}

void vio_memtable_free(struct vio_memtable *mt)
{
	if (!mt)
		return;
	vio_memtable_clear(mt);
	free(mt->h.hot);
	free(mt->meta);
	free(mt);
}

unsigned vio_memtable_count(const struct vio_memtable *mt)
{
	return mt ? mt->h.n : 0;
}

/* First index whose region starts at or after addr. */
static unsigned lower_bound(const struct vio_memtable *mt, uint64_t addr)
{
	unsigned lo = 0, hi = mt->h.n;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (mt->h.hot[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the region holding device address addr, or -1. */
static inline int find(const struct vio_memtable *mt, uint64_t addr)
{
	unsigned lo = 0, hi = mt->h.n;
	/* first region starting after addr; the one before may hold it */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (mt->h.hot[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr >= mt->h.hot[lo - 1].end)
		return -1;
	return (int)(lo - 1);
}

/*
 * Checks shared by map and add; on success *pos is where the region goes.
 * -EINVAL: zero size, addr + size or uaddr + size wraps (a region may not
 * end at 2^64 either), size beyond the address space; -ENOSPC: table full;
 * -EEXIST: overlaps a region in device address space.
 */
static int check(const struct vio_memtable *mt, const struct vio_region *r,
		 unsigned *pos)
{
	if (r->size == 0 || r->size > UINT64_MAX - r->addr ||
	    r->size > SIZE_MAX || (r->uaddr && r->size > UINT64_MAX - r->uaddr))
		return -EINVAL;
	if (mt->h.n >= mt->h.max)
		return -ENOSPC;
	unsigned i = lower_bound(mt, r->addr);
	uint64_t end = r->addr + r->size;
	if ((i < mt->h.n && mt->h.hot[i].addr < end) ||
	    (i > 0 && mt->h.hot[i - 1].end > r->addr))
		return -EEXIST;
	*pos = i;
	return 0;
}

static void insert(struct vio_memtable *mt, unsigned i,
		   const struct vio_region *r, uint8_t *host, void *map_base,
		   size_t map_len, int fd, int guard_slot)
{
	unsigned tail = mt->h.n - i;
	memmove(&mt->h.hot[i + 1], &mt->h.hot[i], tail * sizeof(*mt->h.hot));
	memmove(&mt->meta[i + 1], &mt->meta[i], tail * sizeof(*mt->meta));
	mt->h.hot[i] = (struct mt_hot){
	    .addr = r->addr, .end = r->addr + r->size, .host = host};
	mt->meta[i] = (struct mt_meta){.uaddr = r->uaddr,
				       .has_uaddr = r->uaddr != 0,
				       .map_base = map_base,
				       .map_len = map_len,
				       .fd = fd,
				       .guard_slot = guard_slot};
	mt->h.n++;
}

int vio_memtable_map(struct vio_memtable *mt, const struct vio_region *r)
{
	int fd = r ? r->fd : -1;
	unsigned pos;
	int e;

	if (!mt || !r) {
		e = -EINVAL;
		goto fail;
	}
	if (fd < 0) {
		e = -EBADF;
		goto fail;
	}
	e = check(mt, r, &pos);
	if (e)
		goto fail;
	if (r->offset > (uint64_t)INT64_MAX ||
	    r->size > (uint64_t)INT64_MAX - r->offset) {
		e = -EINVAL;
		goto fail;
	}

	struct stat st;
	if (fstat(fd, &st) < 0) {
		e = -errno;
		goto fail;
	}
	/* Touching a shared mapping beyond the end of its file raises
	 * SIGBUS: refuse a region that claims more than the file holds. */
	if (S_ISREG(st.st_mode) && r->offset + r->size > (uint64_t)st.st_size) {
		e = -EINVAL;
		goto fail;
	}
	/*
	 * mmap wants a page-aligned offset (a huge-page-aligned one, and
	 * length, on hugetlbfs, whose st_blksize is the huge page size);
	 * the frontend's offset need not be.  Map from the aligned offset
	 * below it and point past the difference.
	 */
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t gran = pg > 0 ? (uint64_t)pg : 4096;
	uint64_t bs = (uint64_t)st.st_blksize;
	if (bs > gran && !(bs & (bs - 1)) && bs <= (1ull << 30))
		gran = bs;
	uint64_t map_off = r->offset & ~(gran - 1);
	uint64_t delta = r->offset - map_off;
	uint64_t len = delta + r->size; /* < 2^63 + 2^30: no wrap */
	if (len > UINT64_MAX - gran || len + gran - 1 > SIZE_MAX) {
		e = -EINVAL;
		goto fail;
	}
	size_t map_len = (size_t)((len + gran - 1) & ~(gran - 1));
	void *base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			  (off_t)map_off);
	if (base == MAP_FAILED) {
		e = -errno;
		goto fail;
	}
	/*
	 * Guard it against truncation.  Every mapped region is registered,
	 * sealed or not (a hole in a hugetlbfs or full tmpfs file faults
	 * too).  With no slot left, a region whose file is sealed against
	 * shrinking (F_SEAL_SHRINK, as QEMU's memfds are) is still taken;
	 * an unsealed one is refused.
	 */
	int slot =
	    vio_mem_guard_register(base, map_len, (uint8_t *)base + delta,
				   r->addr, r->size, &mt->guard);
	if (slot < 0) {
		int seals = fcntl(fd, F_GET_SEALS);
		if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
			munmap(base, map_len);
			e = slot;
			goto fail;
		}
	}
	insert(mt, pos, r, (uint8_t *)base + delta, base, map_len, fd, slot);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return e;
}

int vio_memtable_add(struct vio_memtable *mt, const struct vio_region *r)
{
	unsigned pos;

	if (!mt || !r || !r->ptr)
		return -EINVAL;
	if (r->size - 1 > UINTPTR_MAX - (uintptr_t)r->ptr)
		return -EINVAL;
	int e = check(mt, r, &pos);
	if (e)
		return e;
	/* r->fd is not ours: the memory's owner keeps it (and the mapping) */
	insert(mt, pos, r, r->ptr, NULL, 0, -1, -1);
	return 0;
}

int vio_memtable_remove(struct vio_memtable *mt, uint64_t addr, uint64_t size)
{
	if (!mt)
		return -ENOENT;
	unsigned i = lower_bound(mt, addr);
	if (i >= mt->h.n || mt->h.hot[i].addr != addr ||
	    mt->h.hot[i].end - addr != size)
		return -ENOENT;
	release(&mt->meta[i]);
	unsigned tail = mt->h.n - i - 1;
	memmove(&mt->h.hot[i], &mt->h.hot[i + 1], tail * sizeof(*mt->h.hot));
	memmove(&mt->meta[i], &mt->meta[i + 1], tail * sizeof(*mt->meta));
	mt->h.n--;
	return 0;
}

/* len 0 asks for addr itself to be mapped. */
void *vio_memtable_ptr(const struct vio_memtable *mt, uint64_t addr,
		       uint64_t len)
{
	int i = find(mt, addr);
	if (i < 0)
		return NULL;
	const struct mt_hot *h = &mt->h.hot[i];
	if (len > h->end - addr)
		return NULL;
	return h->host + (addr - h->addr);
}

/* Linear: used when rings are set up, not per request.  Regions given no
 * uaddr (0) never match.  len 0 asks for uaddr itself to be mapped. */
void *vio_memtable_uptr(const struct vio_memtable *mt, uint64_t uaddr,
			uint64_t len)
{
	for (unsigned i = 0; i < mt->h.n; i++) {
		const struct mt_meta *m = &mt->meta[i];
		uint64_t size = mt->h.hot[i].end - mt->h.hot[i].addr;
		if (!m->has_uaddr || uaddr - m->uaddr >= size)
			continue;
		uint64_t off = uaddr - m->uaddr;
		if (len > size - off)
			return NULL;
		return mt->h.hot[i].host + off;
	}
	return NULL;
}

void *vio_memtable_ptr_find(const struct vio_memtable *mt, uint64_t addr,
			    uint32_t len, unsigned *hint)
{
	int f = find(mt, addr);
	if (f < 0)
		return NULL;
	*hint = (unsigned)f;
	const struct mt_hot *h = &mt->h.hot[f];
	/* addr is in h: addr + len cannot wrap past h->end */
	if (len > h->end - addr)
		return NULL;
	return h->host + (addr - h->addr);
}

int vio_memtable_translate(const struct vio_memtable *mt, uint64_t addr,
			   uint32_t len, struct vio_iov *iov, unsigned max)
{
	if (len == 0)
		return 0;
	if (addr > UINT64_MAX - (len - 1))
		return -EFAULT;
	int i = find(mt, addr);
	if (i < 0)
		return -EFAULT;

	/* Walk to the end even past max segments: an unmapped byte is
	 * -EFAULT whatever the segment count. */
	unsigned n = 0;
	uint32_t left = len;
	for (;;) {
		const struct mt_hot *h = &mt->h.hot[i];
		uint64_t room = h->end - addr;
		uint32_t seg = left < room ? left : (uint32_t)room;
		if (n < max) {
			iov[n].base = h->host + (addr - h->addr);
			iov[n].len = seg;
		}
		n++;
		left -= seg;
		if (left == 0)
			break;
		addr = h->end;
		/* regions are sorted and disjoint: only the next one can
		 * continue the range, and only if it starts right here */
		if ((unsigned)++i >= mt->h.n || mt->h.hot[i].addr != addr)
			return -EFAULT;
	}
	return n > max ? -ENOBUFS : (int)n;
}

void vio_memtable_set_fault_fd(struct vio_memtable *mt, int fd)
{
	if (!mt)
		return;
	__atomic_store_n(&mt->guard.fault_fd, fd, __ATOMIC_SEQ_CST);
	__atomic_store_n(&mt->guard.fault_addr, VIO_BAD_ADDR, __ATOMIC_SEQ_CST);
}

bool vio_memtable_faulted(const struct vio_memtable *mt)
{
	return vio_memtable_fault_addr(mt) != VIO_BAD_ADDR;
}

uint64_t vio_memtable_fault_addr(const struct vio_memtable *mt)
{
	return mt ? __atomic_load_n(&mt->guard.fault_addr, __ATOMIC_SEQ_CST)
		  : VIO_BAD_ADDR;
}
