/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page logging (dirtylog.h): the bitmap, and the per-queue record
 * of what each popped chain lets the device write.
 *
 * Why records: a packed ring's descriptors are overwritten by used
 * write-backs of other chains while a chain is still in flight, so its
 * writable descriptors cannot be read again at push time; they are copied
 * (address, length) when the chain is walked, only while a log is
 * attached.  Split rings use the same record, so a resubmitted chain (the
 * in-flight region) and a driver that rewrites an in-flight chain behave
 * alike.  An indirect table is recorded as itself and walked again at
 * push (the device only reads tables; the driver keeps them while the
 * chain is in flight): a table entry per record could need queue-size
 * records per chain.
 *
 * Bounds: a well-behaved driver has at most queue-size ring descriptors
 * in flight, each at most one record; the pool holds twice that.  A
 * chain popped again under the same id (a driver reusing an id in
 * flight) replaces the old records.  A driver that still exhausts the
 * pool, or uses a buffer id >= the queue size (packed), breaks the queue
 * while logging: its writes could not be logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "ring/dirtylog.h"
#include "ring/vq_internal.h"

#define NONE UINT32_MAX
#define IND_BIT (1u << 31)
#define NEXT_MASK (IND_BIT - 1)

uint64_t vio_dirty_log_range(const struct vio_dirty_log *log, uint64_t gpa,
			     uint64_t len)
{
	if (!len || !log->bits)
		return 0;
	uint64_t last = gpa + len - 1;
	if (last < gpa)
		last = UINT64_MAX;
	uint64_t p = gpa >> VIO_LOG_PAGE_SHIFT, pe = last >> VIO_LOG_PAGE_SHIFT;
	uint64_t npages = log->size * 8, missed = 0;
	if (pe >= npages) {
		missed = pe - (p > npages ? p : npages) + 1;
		if (p >= npages)
			return missed;
		pe = npages - 1;
	}
	/* the writes this covers happen before the bits (the frontend
	 * clears a bit, then copies the page) */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	while (p <= pe) {
		unsigned sh = p & 7;
		uint64_t n = pe - p + 1;
		uint8_t mask = n >= 8 - sh ? (uint8_t)(0xffu << sh)
					   : (uint8_t)(((1u << n) - 1) << sh);
		__atomic_fetch_or(&log->bits[p >> 3], mask, __ATOMIC_RELAXED);
		p += 8 - sh;
	}
	return missed;
}

bool vio_dirty_log_test(const struct vio_dirty_log *log, uint64_t gpa)
{
	uint64_t p = gpa >> VIO_LOG_PAGE_SHIFT;
	if (!log->bits || p >= log->size * 8)
		return false;
	return __atomic_load_n(&log->bits[p >> 3], __ATOMIC_RELAXED) &
	       (1u << (p & 7));
}

void vio_dlog_log(struct vio_vq *vq, uint64_t gpa, uint64_t len)
{
	struct vio_vq_dlog *d = vq->dlog;
	struct vio_dirty_log l = {d->bits, d->size};
	uint64_t m = vio_dirty_log_range(&l, gpa, len);
	if (vio_unlikely(m)) {
		if (!d->missed)
			vio_log_limited(&vq->rl,
					"%s: dirty log: write at 0x%" PRIx64
					"+%" PRIu64
					" is past the log's end (%" PRIu64
					" bytes): not logged",
					vq->name, gpa, len, d->size);
		d->missed += m;
	}
}

void vio_dlog_free(struct vio_vq *vq)
{
	struct vio_vq_dlog *d = vq->dlog;
	if (!d)
		return;
	free(d->first);
	free(d->rec);
	free(d);
	vq->dlog = NULL;
}

int vio_vq_set_log(struct vio_vq *vq, const struct vio_vq_log_opts *o)
{
	if (vq->role != VIO_ROLE_DEVICE)
		return -EINVAL;
	vio_dlog_free(vq);
	if (!o || !o->log || !o->log->bits)
		return 0;
	struct vio_vq_dlog *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->nrec = 2u * vq->size;
	d->first = malloc(sizeof(*d->first) * vq->size);
	d->rec = malloc(sizeof(*d->rec) * d->nrec);
	if (!d->first || !d->rec) {
		free(d->first);
		free(d->rec);
		free(d);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < vq->size; i++)
		d->first[i] = NONE;
	for (uint32_t i = 0; i < d->nrec; i++)
		d->rec[i].next = i + 1 < d->nrec ? i + 1 : NONE & NEXT_MASK;
	d->free_head = 0;
	d->pending = NONE & NEXT_MASK;
	d->bits = o->log->bits;
	d->size = o->log->size;
	d->ring = o->ring;
	d->dev_gpa = o->device_gpa;
	d->desc_gpa = o->desc_gpa;
	vq->dlog = d;
	/* the queue's set-up wrote its device area (used->flags, event
	 * suppression) before the log was there */
	vio_dlog_dev(vq, 0, vq->packed ? 4 : 4 + 8u * vq->size + 2);
	return 0;
}

uint64_t vio_vq_log_missed(const struct vio_vq *vq)
{
	return vq->dlog ? vq->dlog->missed : 0;
}

#define END (NONE & NEXT_MASK)

static void free_list(struct vio_vq_dlog *d, uint32_t i)
{
	while (i != END) {
		uint32_t next = d->rec[i].next & NEXT_MASK;
		d->rec[i].next = d->free_head;
		d->free_head = i;
		i = next;
	}
}

int vio_dlog_record(struct vio_vq *vq, uint64_t addr, uint32_t len,
		    bool indirect)
{
	struct vio_vq_dlog *d = vq->dlog;
	uint32_t i = d->free_head;
	if (vio_unlikely(i == END)) {
		vio_vq_bad(vq,
			   "dirty log: more than %u writable descriptors in "
			   "flight: their writes cannot be logged",
			   d->nrec);
		return -EIO;
	}
	d->free_head = d->rec[i].next & NEXT_MASK;
	d->rec[i].addr = addr;
	d->rec[i].len = len;
	d->rec[i].next = d->pending | (indirect ? IND_BIT : 0);
	d->pending = i;
	return 0;
}

int vio_dlog_commit(struct vio_vq *vq, uint32_t id)
{
	struct vio_vq_dlog *d = vq->dlog;
	if (vio_unlikely(id >= vq->size)) {
		free_list(d, d->pending);
		d->pending = END;
		vio_vq_bad(vq,
			   "dirty log: buffer id %u out of range (queue size "
			   "%u): its writes cannot be logged",
			   id, vq->size);
		return -EIO;
	}
	uint32_t old = d->first[id];
	if (old != NONE) /* the id popped again while in flight */
		free_list(d, old);
	d->first[id] = d->pending == END ? NONE : d->pending;
	d->pending = END;
	return 0;
}

/* Walk an indirect table again, logging its writable entries. */
static int log_table(struct vio_vq *vq, uint64_t addr, uint32_t len)
{
	struct vio_walk w;
	vio_walk_init(&w, vq, NULL, 0);
	w.rec = false;
	w.log_mode = true;
	return vio_walk_desc(&w, addr, len, VRING_DESC_F_INDIRECT);
}

int vio_dlog_buffer(struct vio_vq *vq, uint32_t id)
{
	struct vio_vq_dlog *d = vq->dlog;
	if (id >= vq->size || d->first[id] == NONE)
		return 0;
	uint32_t i = d->first[id];
	d->first[id] = NONE;
	int r = 0;
	for (uint32_t k = i; k != END; k = d->rec[k].next & NEXT_MASK) {
		const struct vio_dlog_rec *e = &d->rec[k];
		if (e->next & IND_BIT) {
			if (!r && log_table(vq, e->addr, e->len))
				r = -EIO;
		} else {
			vio_dlog_log(vq, e->addr, e->len);
		}
	}
	free_list(d, i);
	return r;
}

void vio_dlog_dev(struct vio_vq *vq, uint64_t off, uint64_t len)
{
	if (vq->dlog->ring)
		vio_dlog_log(vq, vq->dlog->dev_gpa + off, len);
}

void vio_dlog_desc(struct vio_vq *vq, uint64_t off, uint64_t len)
{
	if (vq->dlog->ring)
		vio_dlog_log(vq, vq->dlog->desc_gpa + off, len);
}
