/* SPDX-License-Identifier: MIT */
/*
 * Driver-side shared memory: memfd regions mapped in this process, each
 * with a device address range of its own, and an allocator over them.
 *
 * Device addresses start at 4 GiB and each region is placed after the
 * previous one with a gap of at least one page, aligned to 2 MiB (or the
 * region's alignment, if larger), so that a pointer passed where a device
 * address is expected (or the reverse) misses every region instead of
 * silently hitting one.
 *
 * The region's mapping is aligned in the virtual address space exactly as
 * its device address is, so an offset aligned to A (A <= the region's
 * alignment) is aligned in both spaces: vio_mem_alloc's alignment holds
 * for the pointer and the device address alike.
 *
 * Threading: regions live in a fixed array that never moves; an entry is
 * filled, then the count is published with a release store, so
 * vio_mem_daddr() and vio_mem_region() read it lock-free (acquire).
 * Adding regions and the allocator take m->lock.
 *
 * The allocator keeps its bookkeeping in private memory, never in the
 * shared regions: the device can write those, and must not be able to
 * corrupt the driver's heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vio/mem.h>

#include "util/log.h"

#define MEM_MAX_REGIONS 64u
#define MEM_DADDR_BASE 0x100000000ull /* 4 GiB */
#define MEM_REGION_ALIGN (2ull << 20) /* 2 MiB */
#define MEM_GROW_MIN (4ull << 20)     /* 4 MiB */
#define MEM_GRANULE 16u		      /* allocation unit and min align */

/* An extent [off, off + len) of a region. */
struct mem_extent {
	size_t off;
	size_t len;
};

/*
 * Per region: free extents (sorted by offset, never adjacent: coalesced)
 * and used extents (sorted by offset).  Capacity invariant, kept by
 * vio_mem_alloc before it changes anything: free_cap >= nfree + nused, so
 * vio_mem_release (which moves at most one extent from used to free)
 * never needs to allocate and cannot fail.
 */
struct mem_heap {
	struct mem_extent *free, *used;
	size_t nfree, nused;
	size_t free_cap, used_cap;
	size_t align; /* both base pointer and device address aligned so */
};

/* The hot part of a region, read lock-free by vio_mem_daddr(). */
struct mem_span {
	uintptr_t va;
	uint64_t size;
	uint64_t daddr;
};

struct vio_mem {
	/* published count of filled entries: __atomic acquire/release */
	unsigned count;
	struct mem_span span[MEM_MAX_REGIONS];
	struct vio_region region[MEM_MAX_REGIONS];
	pthread_mutex_t lock; /* adds, alloc, release */
	struct mem_heap heap[MEM_MAX_REGIONS];
	uint64_t next_daddr;
	size_t page;
	bool warned_release;
};

static inline uint64_t align_up64(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline bool is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

struct vio_mem *vio_mem_new(void)
{
	struct vio_mem *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	long pg = sysconf(_SC_PAGESIZE);
	m->page = pg > 0 ? (size_t)pg : 4096;
	m->next_daddr = MEM_DADDR_BASE;
	int r = pthread_mutex_init(&m->lock, NULL);
	if (r) {
		free(m);
		errno = r;
		return NULL;
	}
	return m;
}

void vio_mem_free(struct vio_mem *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->count; i++) {
		munmap(m->region[i].ptr, m->region[i].size);
		close(m->region[i].fd);
		free(m->heap[i].free);
		free(m->heap[i].used);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/*
 * Map size bytes of fd shared at an address aligned to align: reserve
 * size + align bytes of address space, map the fd over the aligned part
 * of the reservation, give the rest back.
 */
static void *map_aligned(int fd, size_t size, size_t align)
{
	if (size > SIZE_MAX - align) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	size_t total = size + align;
	uint8_t *res = mmap(NULL, total, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	uint8_t *p = (uint8_t *)(uintptr_t)align_up64((uintptr_t)res, align);
	void *q = mmap(p, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       fd, 0);
	if (q == MAP_FAILED) {
		int e = errno;
		munmap(res, total);
		errno = e;
		return MAP_FAILED;
	}
	if (p > res)
		munmap(res, (size_t)(p - res));
	if (res + total > p + size)
		munmap(p + size, (size_t)(res + total - (p + size)));
	return p;
}

/* Caller holds m->lock.  Adds a region of at least size bytes whose
 * pointer and device address are both aligned to align (a power of two,
 * at least 2 MiB).  Returns its index or a negative errno. */
static int add_region_locked(struct vio_mem *m, size_t size, size_t align)
{
	unsigned i = m->count;

	if (size == 0)
		return -EINVAL;
	if (i >= MEM_MAX_REGIONS)
		return -ENOSPC;
	if (size > SIZE_MAX - m->page)
		return -ENOMEM;
	size = (size_t)align_up64(size, m->page);
	/* device address range: aligned, after a gap of at least a page */
	uint64_t da = align_up64(m->next_daddr, align);
	if (da < m->next_daddr || size > UINT64_MAX - da ||
	    da + size > UINT64_MAX - m->page)
		return -ENOSPC;

	struct mem_heap *h = &m->heap[i];
	memset(h, 0, sizeof(*h));
	h->free = malloc(4 * sizeof(*h->free));
	h->used = malloc(4 * sizeof(*h->used));
	if (!h->free || !h->used) {
		free(h->free);
		free(h->used);
		h->free = h->used = NULL;
		return -ENOMEM;
	}
	h->free_cap = h->used_cap = 4;

	int fd = memfd_create("vio-mem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto fail_errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail_errno;
	/* The peer gets this fd: it must not be able to shrink it under us
	 * (our accesses past the new end would raise SIGBUS), grow it or
	 * change the seals.  Required: memfds have had seals as long as
	 * they have existed, so a failure here is an error, not a kernel
	 * without the feature. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
	    0)
		goto fail_errno;
	void *p = map_aligned(fd, size, align);
	if (p == MAP_FAILED)
		goto fail_errno;

	m->next_daddr = da + size + m->page;
	h->free[0] = (struct mem_extent){.off = 0, .len = size};
	h->nfree = 1;
	uint64_t both = (uint64_t)(uintptr_t)p | da;
	h->align = (size_t)(both & -both);
	if (h->align > ((size_t)1 << 62))
		h->align = (size_t)1 << 62;

	m->span[i] =
	    (struct mem_span){.va = (uintptr_t)p, .size = size, .daddr = da};
	m->region[i] = (struct vio_region){.addr = da,
					   .size = size,
					   .uaddr = (uint64_t)(uintptr_t)p,
					   .offset = 0,
					   .fd = fd,
					   .ptr = p};
	/* publish: the entry is complete before readers can see it */
	__atomic_store_n(&m->count, i + 1, __ATOMIC_RELEASE);
	return (int)i;

fail_errno:;
	int e = errno ? errno : ENOMEM;
	if (fd >= 0)
		close(fd);
	free(h->free);
	free(h->used);
	memset(h, 0, sizeof(*h));
	return -e;
}

int vio_mem_add_region(struct vio_mem *m, size_t size, struct vio_region *out)
{
	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	int r = add_region_locked(m, size, MEM_REGION_ALIGN);
	if (r >= 0 && out)
		*out = m->region[r];
	pthread_mutex_unlock(&m->lock);
	return r < 0 ? r : 0;
}

unsigned vio_mem_region_count(const struct vio_mem *m)
{
	return m ? __atomic_load_n(&m->count, __ATOMIC_ACQUIRE) : 0;
}

const struct vio_region *vio_mem_region(const struct vio_mem *m, unsigned i)
{
	if (!m || i >= __atomic_load_n(&m->count, __ATOMIC_ACQUIRE))
		return NULL;
	return &m->region[i];
}

uint64_t vio_mem_daddr(const struct vio_mem *m, const void *p, size_t len)
{
	if (!m)
		return VIO_BAD_ADDR;
	unsigned n = __atomic_load_n(&m->count, __ATOMIC_ACQUIRE);
	uintptr_t a = (uintptr_t)p;

	for (unsigned i = 0; i < n; i++) {
		const struct mem_span *s = &m->span[i];
		/* a in [va, va + size), then len fits in what is left;
		 * written so nothing can overflow */
		if (a - s->va < s->size) {
			uint64_t off = a - s->va;
			if ((uint64_t)len > s->size - off)
				return VIO_BAD_ADDR;
			return s->daddr + off;
		}
	}
	return VIO_BAD_ADDR;
}

/* ---- allocator (caller holds m->lock) ---- */

static bool grow(struct mem_extent **a, size_t *cap, size_t need)
{
	if (need <= *cap)
		return true;
	size_t c = *cap ? *cap : 4;
	while (c < need)
		c *= 2;
	struct mem_extent *n = realloc(*a, c * sizeof(*n));
	if (!n)
		return false;
	*a = n;
	*cap = c;
	return true;
}

/* First index in e[0..n) whose off is >= off. */
static size_t lower_bound(const struct mem_extent *e, size_t n, size_t off)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ext_insert(struct mem_extent *e, size_t *n, size_t at,
		       struct mem_extent x)
{
	memmove(&e[at + 1], &e[at], (*n - at) * sizeof(*e));
	e[at] = x;
	(*n)++;
}

static void ext_remove(struct mem_extent *e, size_t *n, size_t at)
{
	memmove(&e[at], &e[at + 1], (*n - at - 1) * sizeof(*e));
	(*n)--;
}

/* First fit in heap h.  Returns the offset, or SIZE_MAX (no room, or no
 * memory for bookkeeping: *enomem set). */
static size_t heap_alloc(struct mem_heap *h, size_t size, size_t align,
			 bool *enomem)
{
	if (align > h->align)
		return SIZE_MAX;
	for (size_t i = 0; i < h->nfree; i++) {
		struct mem_extent f = h->free[i];
		size_t a = (size_t)align_up64(f.off, align);
		if (a < f.off || a - f.off >= f.len ||
		    size > f.len - (a - f.off))
			continue;
		/* reserve first, so nothing below can fail half-way */
		if (!grow(&h->free, &h->free_cap, h->nfree + h->nused + 2) ||
		    !grow(&h->used, &h->used_cap, h->nused + 1)) {
			*enomem = true;
			return SIZE_MAX;
		}
		size_t pad = a - f.off;
		size_t tail = f.len - pad - size;
		ext_remove(h->free, &h->nfree, i);
		size_t at = i;
		if (pad)
			ext_insert(h->free, &h->nfree, at++,
				   (struct mem_extent){f.off, pad});
		if (tail)
			ext_insert(h->free, &h->nfree, at,
				   (struct mem_extent){a + size, tail});
		size_t u = lower_bound(h->used, h->nused, a);
		ext_insert(h->used, &h->nused, u, (struct mem_extent){a, size});
		return a;
	}
	return SIZE_MAX;
}

/* Give back the used extent at off; false if there is none. */
static bool heap_release(struct mem_heap *h, size_t off)
{
	size_t u = lower_bound(h->used, h->nused, off);
	if (u >= h->nused || h->used[u].off != off)
		return false;
	struct mem_extent x = h->used[u];
	ext_remove(h->used, &h->nused, u);

	size_t i = lower_bound(h->free, h->nfree, x.off);
	bool left = i > 0 && h->free[i - 1].off + h->free[i - 1].len == x.off;
	bool right = i < h->nfree && x.off + x.len == h->free[i].off;
	if (left && right) {
		h->free[i - 1].len += x.len + h->free[i].len;
		ext_remove(h->free, &h->nfree, i);
	} else if (left) {
		h->free[i - 1].len += x.len;
	} else if (right) {
		h->free[i].off = x.off;
		h->free[i].len += x.len;
	} else {
		/* capacity reserved by heap_alloc (see struct mem_heap) */
		ext_insert(h->free, &h->nfree, i, x);
	}
	return true;
}

void *vio_mem_alloc(struct vio_mem *m, size_t size, size_t align,
		    uint64_t *daddr)
{
	if (!m || size == 0 || !is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	if (align < MEM_GRANULE)
		align = MEM_GRANULE;
	if (size > SIZE_MAX - MEM_GRANULE ||
	    align > ((size_t)1 << (sizeof(size_t) * 8 - 2))) {
		errno = ENOMEM;
		return NULL;
	}
	size = (size_t)align_up64(size, MEM_GRANULE);

	pthread_mutex_lock(&m->lock);
	bool enomem = false;
	unsigned n = m->count;
	unsigned i;
	size_t off = SIZE_MAX;
	for (i = 0; i < n && !enomem; i++) {
		off = heap_alloc(&m->heap[i], size, align, &enomem);
		if (off != SIZE_MAX)
			break;
	}
	if (off == SIZE_MAX && !enomem) {
		/* nothing fits: grow by a region of max(size + align, 4 MiB) */
		size_t rsize = size > SIZE_MAX - align ? 0 : size + align;
		if (rsize && rsize < MEM_GROW_MIN)
			rsize = MEM_GROW_MIN;
		size_t ralign =
		    align > MEM_REGION_ALIGN ? align : MEM_REGION_ALIGN;
		int r = rsize ? add_region_locked(m, rsize, ralign) : -ENOMEM;
		if (r < 0) {
			pthread_mutex_unlock(&m->lock);
			errno = r == -ENOSPC ? ENOMEM : -r;
			return NULL;
		}
		i = (unsigned)r;
		off = heap_alloc(&m->heap[i], size, align, &enomem);
	}
	if (off == SIZE_MAX) {
		pthread_mutex_unlock(&m->lock);
		errno = ENOMEM;
		return NULL;
	}
	if (daddr)
		*daddr = m->span[i].daddr + off;
	void *p = (uint8_t *)m->region[i].ptr + off;
	pthread_mutex_unlock(&m->lock);
	return p;
}

void vio_mem_release(struct vio_mem *m, void *p)
{
	if (!m || !p)
		return;
	uintptr_t a = (uintptr_t)p;
	bool ok = false;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->count; i++) {
		const struct mem_span *s = &m->span[i];
		if (a - s->va < s->size) {
			ok = heap_release(&m->heap[i], (size_t)(a - s->va));
			break;
		}
	}
	bool warn = !ok && !m->warned_release;
	if (warn)
		m->warned_release = true;
	pthread_mutex_unlock(&m->lock);
	/* a caller bug, not peer data: said once per vio_mem, then ignored */
	if (warn)
		vio_log_err(
		    "vio_mem_release: %p was not allocated by this vio_mem "
		    "(ignored)",
		    p);
}
