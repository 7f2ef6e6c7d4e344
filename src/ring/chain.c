/* SPDX-License-Identifier: MIT */
/*
 * The device side's one descriptor-chain walker, for both ring formats.
 *
 * split.c and packed.c find a chain's ring descriptors (their index
 * arithmetic, wrap counters and availability differ) and feed each one,
 * already copied out of shared memory, to vio_walk_desc().  Every rule of
 * DESIGN.md "The peer is untrusted" is applied here and only here:
 *   - at most queue-size descriptors per chain, indirect entries included
 *     (VIRTIO 1.2 2.7.5.3.1: no chain longer than the queue size);
 *   - indirect only when negotiated, never with NEXT, never nested, at most
 *     one per chain, its length a non-zero multiple of 16 (2.7.5.3);
 *   - in an indirect table, next < table entries and no loops;
 *   - no readable descriptor after a writable one (2.7.4.2);
 *   - no address + length wrap; every byte in a mapped region;
 *   - readable and writable totals each fit in 32 bits (used.len is 32).
 * A descriptor that crosses region boundaries becomes several segments;
 * the walker marks the later ones (vio_iov.cont) and counts descriptors
 * apart from segments (vio_chain.nd_*), so a device checks limits the
 * spec puts on descriptors on descriptors, whatever the memory layout.
 *
 * A legal chain with more segments than the caller's max_iov is not a
 * violation: the walker stops storing segments (w->over), goes on
 * checking every rule on the rest of the chain (an unmapped byte further
 * on still breaks the queue), and vio_walk_finish() gives the device the
 * totals, the descriptor counts and the end of the writable area, so it
 * can answer the request with an error (vio_vq_pop's -E2BIG).
 * (Index range and the avail-index distance are the format code's part:
 * they are properties of the ring, not of the chain.)
 */
#include <errno.h>
#include <inttypes.h>

#include "ring/vq_internal.h"

void vio_walk_init(struct vio_walk *w, struct vio_vq *vq, struct vio_iov *iov,
		   unsigned max_iov)
{
	w->vq = vq;
	w->iov = iov;
	w->max_iov = max_iov;
	w->n = 0;
	w->nr_out = w->nr_in = 0;
	w->nd_out = w->nd_in = 0;
	w->out_len = w->in_len = 0;
	w->hops = 0;
	w->saw_indirect = false;
	w->saw_write = false;
	w->over = false;
	w->tail_addr = 0;
	w->tail_len = 0;
	w->rec = vq->dlog != NULL;
	w->log_mode = false;
}

/* Past max_iov: only check that every byte is mapped.  translate with no
 * room reports an unmapped byte as -EFAULT before the lack of room. */
static int check_mapped(struct vio_walk *w, uint64_t addr, uint32_t len)
{
	int r = vio_memtable_translate(w->vq->mt, addr, len, NULL, 0);
	return r == -EFAULT ? -EFAULT : 0;
}

static int walk_seg(struct vio_walk *w, uint64_t addr, uint32_t len, bool write)
{
	struct vio_vq *vq = w->vq;

	if (write) {
		w->saw_write = true;
		w->in_len += len;
	} else {
		if (vio_unlikely(w->saw_write)) {
			vio_vq_bad(vq, "readable descriptor after a writable "
				       "one");
			return -EIO;
		}
		w->out_len += len;
	}
	if (vio_unlikely(w->out_len > UINT32_MAX || w->in_len > UINT32_MAX)) {
		vio_vq_bad(vq, "chain longer than 4 GiB");
		return -EIO;
	}
	if (vio_unlikely(len && addr + len - 1 < addr)) {
		vio_vq_bad(vq,
			   "descriptor address 0x%" PRIx64 " + length %" PRIu32
			   " wraps",
			   addr, len);
		return -EIO;
	}
	if (vio_unlikely(w->log_mode)) {
		/* an indirect table walked again at push (dirtylog.c) */
		if (write)
			vio_dlog_log(vq, addr, len);
		return 0;
	}
	int r = 0;
	if (!w->over) {
		r = vio_memtable_translate(vq->mt, addr, len, w->iov + w->n,
					   w->max_iov - w->n);
		if (r == -ENOBUFS) {
			/* legal, but more than the caller can take: keep
			 * checking, stop storing */
			w->over = true;
			r = 0;
		}
	} else {
		r = check_mapped(w, addr, len);
	}
	if (vio_unlikely(r < 0)) {
		vio_vq_bad(vq,
			   "descriptor 0x%" PRIx64 "+%" PRIu32
			   " is not in mapped memory",
			   addr, len);
		return -EIO;
	}
	if (!w->over) {
		/* one descriptor, r segments: the later ones say so, so
		 * that per-descriptor limits (blk's seg_max, size_max)
		 * stay checkable */
		for (int k = 0; k < r; k++)
			w->iov[w->n + (unsigned)k].cont = k > 0;
		w->n += (unsigned)r;
		if (write)
			w->nr_in += (unsigned)r;
		else
			w->nr_out += (unsigned)r;
	}
	if (write) {
		w->nd_in++;
		if (len) { /* the end of the writable area, so far */
			w->tail_addr = addr;
			w->tail_len = len;
		}
	} else {
		w->nd_out++;
	}
	return 0;
}

/* Copy indirect entry i (16 bytes) once; the table may straddle regions
 * that are adjacent in device address space, then it is read piecewise. */
static int read_entry(struct vio_walk *w, const uint8_t *tbl, uint64_t addr,
		      unsigned i, void *out)
{
	if (vio_likely(tbl != NULL)) {
		vio_copy_once(out, tbl + (size_t)i * 16, 16);
		return 0;
	}
	struct vio_iov part[16];
	int n = vio_memtable_translate(w->vq->mt, addr + (uint64_t)i * 16, 16,
				       part, 16);
	if (n < 0)
		return -EFAULT;
	uint8_t *o = out;
	for (int k = 0; k < n; k++) {
		vio_copy_once(o, part[k].base, part[k].len);
		o += part[k].len;
	}
	return 0;
}

static int walk_indirect(struct vio_walk *w, uint64_t addr, uint32_t len)
{
	struct vio_vq *vq = w->vq;

	if (vio_unlikely(!vq->indirect)) {
		vio_vq_bad(vq, "indirect descriptor, but VIRTIO_RING_F_"
			       "INDIRECT_DESC was not negotiated");
		return -EIO;
	}
	if (vio_unlikely(w->saw_indirect)) {
		vio_vq_bad(vq, "two indirect descriptors in one chain");
		return -EIO;
	}
	w->saw_indirect = true;
	if (vio_unlikely(len == 0 || len % 16)) {
		vio_vq_bad(vq,
			   "indirect table length %" PRIu32
			   " is not a non-zero multiple of 16",
			   len);
		return -EIO;
	}
	if (vio_unlikely(addr + len - 1 < addr)) {
		vio_vq_bad(vq, "indirect table 0x%" PRIx64 " wraps", addr);
		return -EIO;
	}
	uint32_t count = len / 16;
	/* the pointer descriptor itself is not a buffer descriptor */
	w->hops--;
	if (vio_unlikely(w->hops + count > vq->size)) {
		vio_vq_bad(vq,
			   "chain of %u descriptors with an indirect table of "
			   "%" PRIu32 " is longer than the queue size %u",
			   w->hops, count, vq->size);
		return -EIO;
	}
	const uint8_t *tbl = vio_memtable_ptr(vq->mt, addr, len);
	if (vio_unlikely(!tbl)) {
		/* Not in one region: it may straddle adjacent ones and is
		 * then read entry by entry, but every byte of it must be
		 * mapped, also entries a split walk never reaches.
		 * translate reports an unmapped byte (-EFAULT) before a
		 * short iov array (-ENOBUFS). */
		struct vio_iov part[1];
		if (vio_memtable_translate(vq->mt, addr, len, part, 1) ==
		    -EFAULT) {
			vio_vq_bad(vq,
				   "indirect table 0x%" PRIx64 "+%" PRIu32
				   " is not in mapped memory",
				   addr, len);
			return -EIO;
		}
	}
	uint32_t i = 0;
	for (uint32_t steps = 0;; steps++) {
		uint8_t raw[16];
		uint64_t daddr;
		uint32_t dlen;
		uint16_t flags, next;

		if (vio_unlikely(steps >= count)) {
			vio_vq_bad(vq, "loop in indirect table");
			return -EIO;
		}
		if (vio_unlikely(read_entry(w, tbl, addr, i, raw) < 0)) {
			vio_vq_bad(vq,
				   "indirect table 0x%" PRIx64 "+%" PRIu32
				   " is not in mapped memory",
				   addr, len);
			return -EIO;
		}
		memcpy(&daddr, raw, 8);
		memcpy(&dlen, raw + 8, 4);
		daddr = le64toh(daddr);
		dlen = le32toh(dlen);
		if (vq->packed) {
			/* packed table: { addr, len, id, flags }, sequential */
			memcpy(&flags, raw + 14, 2);
			flags = le16toh(flags);
			next = (uint16_t)(i + 1);
			if (i + 1 < count)
				flags |= VRING_DESC_F_NEXT;
			else
				flags &= (uint16_t)~VRING_DESC_F_NEXT;
		} else {
			/* split table: { addr, len, flags, next } */
			memcpy(&flags, raw + 12, 2);
			memcpy(&next, raw + 14, 2);
			flags = le16toh(flags);
			next = le16toh(next);
		}
		w->hops++;
		if (vio_unlikely(flags & VRING_DESC_F_INDIRECT)) {
			vio_vq_bad(vq, "nested indirect descriptor");
			return -EIO;
		}
		int r = walk_seg(w, daddr, dlen, flags & VRING_DESC_F_WRITE);
		if (r)
			return r;
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		if (vio_unlikely(next >= count)) {
			vio_vq_bad(vq,
				   "indirect next %u out of range (table of "
				   "%" PRIu32 ")",
				   next, count);
			return -EIO;
		}
		i = next;
	}
}

static inline __attribute__((always_inline)) int
walk_desc(struct vio_walk *w, uint64_t addr, uint32_t len, uint16_t flags)
{
	if (vio_unlikely(++w->hops > w->vq->size)) {
		vio_vq_bad(w->vq, "chain longer than the queue size %u",
			   w->vq->size);
		return -EIO;
	}
	if (flags & VRING_DESC_F_INDIRECT) {
		if (vio_unlikely(flags & VRING_DESC_F_NEXT)) {
			vio_vq_bad(w->vq, "indirect descriptor with NEXT set");
			return -EIO;
		}
		return walk_indirect(w, addr, len);
	}
	if (vio_unlikely(w->saw_indirect)) {
		vio_vq_bad(w->vq, "descriptor after an indirect table");
		return -EIO;
	}
	return walk_seg(w, addr, len, flags & VRING_DESC_F_WRITE);
}

/* A dirty log keeps what the device may write: this ring descriptor, or
 * the table it points to (walked again at push).  Its own path: logging
 * off, a walk pays one test per descriptor. */
static __attribute__((noinline)) int walk_desc_logged(struct vio_walk *w,
						      uint64_t addr,
						      uint32_t len,
						      uint16_t flags)
{
	if (len && (flags & (VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT)) &&
	    vio_dlog_record(w->vq, addr, len, flags & VRING_DESC_F_INDIRECT))
		return -EIO;
	return walk_desc(w, addr, len, flags);
}

int vio_walk_desc(struct vio_walk *w, uint64_t addr, uint32_t len,
		  uint16_t flags)
{
	if (vio_unlikely(w->rec))
		return walk_desc_logged(w, addr, len, flags);
	return walk_desc(w, addr, len, flags);
}

/*
 * Too many segments: the whole iov array is free again and holds the end
 * of the writable area, the chain's last non-empty writable descriptor
 * (checked mapped by the walk), or only its last byte if that descriptor
 * alone needs more than max_iov segments.  Returns the segments stored.
 */
static unsigned fill_tail(struct vio_walk *w)
{
	if (w->in_len == 0 || w->max_iov == 0)
		return 0;
	int r = vio_memtable_translate(w->vq->mt, w->tail_addr, w->tail_len,
				       w->iov, w->max_iov);
	if (r == -ENOBUFS)
		r = vio_memtable_translate(
		    w->vq->mt, w->tail_addr + w->tail_len - 1, 1, w->iov, 1);
	if (r < 0) /* cannot be: the walk translated these bytes */
		return 0;
	for (int k = 0; k < r; k++)
		w->iov[k].cont = k > 0;
	return (unsigned)r;
}

int vio_walk_finish(struct vio_walk *w, struct vio_chain *c, uint32_t head)
{
	if (vio_unlikely(w->rec) && vio_dlog_commit(w->vq, head & 0xffff))
		return -EIO;
	c->head = head;
	c->nd_out = (uint16_t)w->nd_out;
	c->nd_in = (uint16_t)w->nd_in;
	c->out_len = (uint32_t)w->out_len;
	c->in_len = (uint32_t)w->in_len;
	c->out = w->iov;
	if (vio_unlikely(w->over)) {
		c->nr_out = 0;
		c->nr_in = (uint16_t)fill_tail(w);
		c->in = w->iov;
		return -E2BIG;
	}
	c->nr_out = (uint16_t)w->nr_out;
	c->nr_in = (uint16_t)w->nr_in;
	c->in = w->iov + w->nr_out;
	return 1;
}
