/* SPDX-License-Identifier: MIT */
/*
 * In-flight tracking: a device-side queue's mirror of what it owes the
 * driver, in a shared region that outlives the process (vhost-user
 * INFLIGHT_SHMFD; layout and algorithm from QEMU's
 * docs/interop/vhost-user.rst, "Inflight I/O tracking").
 *
 * While the process lives, the local state below is the truth and the
 * region is written, never read back: a frontend scribbling on it cannot
 * steer this process.  The region is read once, when a queue attaches
 * it, and everything read is checked (indices, links, counts) before any
 * of it is used.
 *
 * Write ordering.  A store the process executed before it died is in the
 * region afterwards, one it did not execute is not: what matters is
 * program order, which ORDER() (a release fence: earlier stores before
 * later ones) and the ring's own release stores keep from the compiler
 * and the CPU.  The numbers are the document's steps.
 *
 * Split ring (QueueRegionSplit).
 *   pop:  the chain is walked and checked; then
 *         S1  desc[head].counter = counter++           (document 2-3)
 *         ORDER
 *         S2  desc[head].inflight = 1                  (document 4)
 *         Only after S2 does the device see the chain.  Death before S2:
 *         the chain is not counted, the restart's avail position (used
 *         idx + marked chains) is before it, and it is popped again.
 *   push: (after checking every head is ours and in flight)
 *         P1  for each head: desc[h].next = last_batch_head,
 *             last_batch_head = h                      (document 1-3)
 *         P2  used ring entries, used->idx release store (5: one index
 *             update per batch; the release orders P1 before it)
 *         ORDER
 *         P3  desc[h].inflight = 0 for each           (6)
 *         ORDER
 *         P4  used_idx = used->idx                     (7)
 *         Death before P2: nothing was used, every mark stands.  Between
 *         P2 and P4: used_idx != used->idx, and the restart clears the
 *         marks of the (used->idx - used_idx) heads of the list from
 *         last_batch_head (the document's reconnect step 1).
 *   unpop: desc[head].inflight = 0 (the avail position is local).
 *
 * Packed ring (QueueRegionPacked).  Chains are copied into region entries
 * taken from a free list (free_head, linked by next); old_free_head,
 * old_used_idx and old_used_wrap_counter are the committed state, the
 * other three the state being changed.
 *   pop:  K1  each descriptor, as the walk reads it: addr, len, id, flags
 *             into the next entry of the free list, which stays free
 *             (the walk may still refuse the chain)    (document 5)
 *         K2  head entry: num, last, counter           (2a-c, 3, 4)
 *         ORDER
 *         K3  head entry: inflight = 1                 (2d)
 *         ORDER
 *         K4  free_head = the entry after the chain    (6)
 *         ORDER
 *         K5  old_free_head = free_head                (7: commit)
 *         The document marks the head before copying; marking after the
 *         copies is equivalent under its reconnect rule: until K5 the
 *         restart rolls free_head back to old_free_head, the head entry
 *         is on the free list again and its mark is cleared.
 *   push: Q1  for each chain: desc[last].next = free_head,
 *             free_head = head entry                   (1-4)
 *         Q2  used_idx, used_wrap_counter: the new used position (5)
 *         Q3  used descriptors, the batch's first flags last with a
 *             release store (6; orders Q1-Q2 before it)
 *         ORDER
 *         Q4  inflight = 0 for each head entry         (7)
 *         ORDER
 *         Q5  old_free_head = free_head                (8)
 *         ORDER
 *         Q6  old_used_wrap_counter, old_used_idx      (8: commit)
 *         Restart: (used_idx, wrap) != (old_used_idx, old wrap) means a
 *         push was under way; the ring slot at old_used_idx tells whether
 *         Q3 happened (it no longer holds an available descriptor of the
 *         old lap): then commit (old_* = current), else roll back.  Q5
 *         precedes Q6 so that a matching pair always comes with the
 *         matching old_free_head.
 *   unpop: the chain's entries go back on the free list: desc[last].next
 *         = free_head, free_head = head (ORDER) old_free_head = head
 *         (commit; ORDER) inflight = 0.  Before the commit the restart
 *         rolls back and the chain is still in flight; after it the
 *         entry is on the free list, whose marks the restart clears.
 *
 * Resume (a previous owner died): repair as above, clear the marks of
 * the free list (packed), then the marked chains are the ones in flight.
 * The avail position is the used position plus what they took (split:
 * one avail entry each; packed: their ring slots), and pop returns them
 * by counter, from the descriptor table (split: the driver leaves an
 * in-flight chain's descriptors alone) or the region's copies (packed),
 * through the same chain walker as every chain.  Their marks stay: a
 * second death before they complete finds them again.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "ring/vq_internal.h"

/* ---- the region, as the document lays it out (native byte order) ---- */

struct inf_split_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct inf_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct inf_split_desc desc[];
};

struct inf_packed_desc {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct inf_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct inf_packed_desc desc[];
};

_Static_assert(sizeof(struct inf_split_desc) == 16, "DescStateSplit");
_Static_assert(offsetof(struct inf_split, desc) == 16, "QueueRegionSplit");
_Static_assert(sizeof(struct inf_packed_desc) == 32, "DescStatePacked");
_Static_assert(offsetof(struct inf_packed, desc) == 32, "QueueRegionPacked");

#define INF_VERSION 1
#define ORDER() __atomic_thread_fence(__ATOMIC_RELEASE)
/* Region words: single stores and loads the compiler neither tears nor
 * drops (the region is another process's memory as well). */
#define PUT(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define GET(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define TENTATIVE 0x80000000u

struct vio_inflight {
	struct inf_split *s; /* one of the two, by vq->packed */
	struct inf_packed *p;
	uint16_t size;
	uint64_t counter; /* the next pop's */
	/* split: 1 while head h is in flight.  packed: while buffer id is
	 * in flight, its head entry + 1.  TENTATIVE: in the push being
	 * checked. */
	uint32_t *held;
	/* chains found in flight at attach, by counter (split: heads;
	 * packed: head entries); pop hands out [next_resub, nresub) */
	uint16_t *resub;
	uint32_t nresub, next_resub;
	/* new chains popped and not handed back (unpop: while there are,
	 * the latest pop is one of them, not a recovered chain) */
	uint64_t new_pops;
	uint16_t last_batch_head; /* split: the region's, mirrored */
	/* packed: the region's links, mirrored; per head entry: the
	 * chain's last entry, its ring slots and its buffer id */
	uint16_t *next, *last, *num, *hid;
	uint16_t free_head;
	/* packed: the chain being popped (vio_inflight_packed_desc) */
	uint16_t cursor, taken_last;
	uint32_t taken;
	bool overflow;
};

size_t vio_inflight_queue_bytes(uint16_t size, bool packed)
{
	if (size == 0 || size > VIO_VQ_MAX_SIZE)
		return 0;
	size_t b = packed ? sizeof(struct inf_packed) +
				(size_t)size * sizeof(struct inf_packed_desc)
			  : sizeof(struct inf_split) +
				(size_t)size * sizeof(struct inf_split_desc);
	return (b + 63) & ~(size_t)63;
}

static inline bool slot_avail(uint16_t flags, bool wrap)
{
	return !!(flags & (1u << VRING_PACKED_DESC_F_AVAIL)) == wrap &&
	       !!(flags & (1u << VRING_PACKED_DESC_F_USED)) != wrap;
}

/* pos + n ring slots, with the wrap counter */
static void advance(const struct vio_vq *vq, uint16_t *pos, bool *wrap,
		    uint32_t n)
{
	uint32_t p = (uint32_t)*pos + n;
	while (p >= vq->size) {
		p -= vq->size;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

void vio_inflight_free(struct vio_vq *vq)
{
	struct vio_inflight *f = vq->inf;
	vq->inf = NULL;
	if (!f)
		return;
	free(f->held);
	free(f->resub);
	free(f->next);
	free(f->last);
	free(f->num);
	free(f->hid);
	free(f);
}

/* ---- attach: a fresh region ---- */

static void fresh_split(struct vio_vq *vq, struct vio_inflight *f)
{
	struct inf_split *s = f->s;
	PUT(&s->version, 0); /* a death while initialising: fresh again */
	ORDER();
	memset(s->desc, 0, (size_t)vq->size * sizeof(s->desc[0]));
	PUT(&s->features, 0);
	PUT(&s->desc_num, vq->size);
	PUT(&s->last_batch_head, 0);
	PUT(&s->used_idx, vq->next_used);
	ORDER();
	PUT(&s->version, INF_VERSION);
}

static void fresh_packed(struct vio_vq *vq, struct vio_inflight *f)
{
	struct inf_packed *p = f->p;
	PUT(&p->version, 0);
	ORDER();
	memset(p->desc, 0, (size_t)vq->size * sizeof(p->desc[0]));
	for (uint32_t i = 0; i < vq->size; i++) {
		/* the free list: every entry; size ends it */
		f->next[i] = (uint16_t)(i + 1);
		PUT(&p->desc[i].next, f->next[i]);
	}
	f->free_head = 0;
	PUT(&p->features, 0);
	PUT(&p->desc_num, vq->size);
	PUT(&p->free_head, 0);
	PUT(&p->old_free_head, 0);
	PUT(&p->used_idx, vq->next_used);
	PUT(&p->old_used_idx, vq->next_used);
	PUT(&p->used_wrap_counter, vq->dev_used_wrap);
	PUT(&p->old_used_wrap_counter, vq->dev_used_wrap);
	ORDER();
	PUT(&p->version, INF_VERSION);
}

/* ---- attach: resume a dead owner's region ---- */

struct by_counter {
	uint64_t counter;
	uint16_t idx;
};

static int cmp_counter(const void *a, const void *b)
{
	const struct by_counter *x = a, *y = b;
	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sort the n recovered chains by counter into f->resub; the next
 * counter follows the largest. */
static void order_resub(struct vio_inflight *f, struct by_counter *v,
			uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_counter);
	f->counter = 1;
	for (uint32_t i = 0; i < n; i++) {
		f->resub[i] = v[i].idx;
		if (v[i].counter >= f->counter)
			f->counter = v[i].counter + 1;
	}
	f->nresub = n;
	f->next_resub = 0;
}

#define REFUSE(...) (snprintf(why, whylen, __VA_ARGS__), -EINVAL)

static int resume_split(struct vio_vq *vq, struct vio_inflight *f,
			struct by_counter *v, char *why, size_t whylen)
{
	struct inf_split *s = f->s;
	uint16_t ring_idx = le16toh(VIO_LOAD_ACQ(&vq->used->idx));
	uint16_t used = GET(&s->used_idx);
	if (used != ring_idx) {
		/* died between P2 and P4: the batch just used is the head
		 * of the list at last_batch_head */
		uint16_t batch = (uint16_t)(ring_idx - used);
		if (batch > vq->size)
			return REFUSE("used index %u, region's %u: %u apart",
				      ring_idx, used, batch);
		uint16_t h = GET(&s->last_batch_head);
		for (uint16_t k = 0; k < batch; k++) {
			if (h >= vq->size || f->held[h])
				return REFUSE("last batch list broken at %u "
					      "(entry %u of %u)",
					      h, k, batch);
			f->held[h] = 1; /* visited */
			PUT(&s->desc[h].inflight, 0);
			h = GET(&s->desc[h].next);
		}
		memset(f->held, 0, (size_t)vq->size * sizeof(f->held[0]));
		ORDER();
		PUT(&s->used_idx, ring_idx);
	}
	uint32_t n = 0;
	for (uint32_t h = 0; h < vq->size; h++) {
		if (!GET(&s->desc[h].inflight))
			continue;
		f->held[h] = 1;
		v[n].counter = GET(&s->desc[h].counter);
		v[n].idx = (uint16_t)h;
		n++;
	}
	order_resub(f, v, n);
	vq->next_used = vq->signalled_used = ring_idx;
	vq->last_avail = vq->avail_idx_cache = (uint16_t)(ring_idx + n);
	return 0;
}

static int resume_packed(struct vio_vq *vq, struct vio_inflight *f,
			 struct by_counter *v, char *why, size_t whylen)
{
	struct inf_packed *p = f->p;
	uint16_t size = vq->size;
	uint16_t fh = GET(&p->free_head), ofh = GET(&p->old_free_head);
	uint16_t ui = GET(&p->used_idx), oui = GET(&p->old_used_idx);
	uint8_t uw = GET(&p->used_wrap_counter);
	uint8_t ouw = GET(&p->old_used_wrap_counter);
	if (ui >= size || oui >= size || uw > 1 || ouw > 1 || fh > size ||
	    ofh > size)
		return REFUSE("used %u/%u wrap %u/%u free head %u/%u out of "
			      "range",
			      ui, oui, uw, ouw, fh, ofh);
	if (ui != oui || uw != ouw) {
		/* a push was under way: did its used descriptors reach the
		 * ring (Q3)?  Then the slot at old_used_idx no longer holds
		 * an available descriptor of that lap */
		uint16_t fl = le16toh(VIO_LOAD_ACQ(&vq->pdesc[oui].flags));
		if (!slot_avail(fl, ouw)) {
			ofh = fh;
			oui = ui;
			ouw = uw;
			PUT(&p->old_free_head, ofh);
			ORDER();
			PUT(&p->old_used_wrap_counter, ouw);
			PUT(&p->old_used_idx, oui);
		}
	}
	/* roll back whatever was not committed */
	PUT(&p->free_head, ofh);
	PUT(&p->used_idx, oui);
	PUT(&p->used_wrap_counter, ouw);
	ORDER();
	/* the free list: clear its marks (held[] as "seen" for now) */
	uint32_t nfree = 0;
	for (uint16_t e = ofh; e < size; e = f->next[e]) {
		if (f->held[e])
			return REFUSE("free list loops at entry %u", e);
		f->held[e] = 1;
		PUT(&p->desc[e].inflight, 0);
		uint16_t nx = GET(&p->desc[e].next);
		f->next[e] = nx > size ? size : nx;
		nfree++;
	}
	/* every other marked entry heads a chain in flight */
	uint32_t n = 0, slots = 0;
	for (uint32_t h = 0; h < size; h++) {
		if (f->held[h] || !GET(&p->desc[h].inflight))
			continue;
		uint16_t num = GET(&p->desc[h].num);
		if (num == 0 || num > size)
			return REFUSE("entry %u: chain of %u", h, num);
		uint16_t e = (uint16_t)h;
		for (uint16_t k = 0;; k++) {
			if (f->held[e])
				return REFUSE("entry %u in two lists", e);
			f->held[e] = 1;
			if (k + 1 == num)
				break;
			uint16_t nx = GET(&p->desc[e].next);
			if (nx >= size)
				return REFUSE("chain at %u: link %u", h, nx);
			f->next[e] = nx;
			e = nx;
		}
		if (GET(&p->desc[h].last) != e)
			return REFUSE("chain at %u ends at %u, not %u", h, e,
				      GET(&p->desc[h].last));
		f->next[e] = size;
		f->last[h] = e;
		f->num[h] = num;
		f->hid[h] = GET(&p->desc[e].id);
		v[n].counter = GET(&p->desc[h].counter);
		v[n].idx = (uint16_t)h;
		n++;
		slots += num;
	}
	if (nfree + slots != size)
		return REFUSE("%u free entries and %u in flight of %u", nfree,
			      slots, size);
	/* held[] becomes what it means at run time: id -> head entry + 1 */
	memset(f->held, 0, (size_t)size * sizeof(f->held[0]));
	for (uint32_t i = 0; i < n; i++) {
		uint16_t h = v[i].idx, id = f->hid[h];
		if (id >= size || f->held[id])
			return REFUSE("buffer id %u of entry %u: out of range "
				      "or twice in flight",
				      id, h);
		f->held[id] = (uint32_t)h + 1;
	}
	order_resub(f, v, n);
	f->free_head = ofh;
	vq->next_used = vq->signalled_used = oui;
	vq->dev_used_wrap = vq->signalled_wrap = ouw;
	uint16_t pos = oui;
	bool wrap = ouw;
	advance(vq, &pos, &wrap, slots);
	vq->last_avail = pos;
	vq->dev_avail_wrap = wrap;
	return 0;
}

static struct vio_inflight *inflight_alloc(uint16_t size, bool packed)
{
	struct vio_inflight *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->size = size;
	f->held = calloc(size, sizeof(*f->held));
	f->resub = calloc(size, sizeof(*f->resub));
	bool ok = f->held && f->resub;
	if (packed) {
		f->next = calloc(size, sizeof(*f->next));
		f->last = calloc(size, sizeof(*f->last));
		f->num = calloc(size, sizeof(*f->num));
		f->hid = calloc(size, sizeof(*f->hid));
		ok = ok && f->next && f->last && f->num && f->hid;
	}
	if (!ok) {
		struct vio_vq tmp = {.inf = f};
		vio_inflight_free(&tmp);
		return NULL;
	}
	return f;
}

int vio_vq_set_inflight(struct vio_vq *vq, void *region, bool resume)
{
	if (vq->role != VIO_ROLE_DEVICE)
		return -EINVAL;
	if (!region) {
		vio_inflight_free(vq);
		return 0;
	}
	if (vq->inf)
		return -EBUSY;
	if ((uintptr_t)region % 8)
		return -EINVAL;
	struct vio_inflight *f = inflight_alloc(vq->size, vq->packed);
	if (!f)
		return -ENOMEM;
	f->s = vq->packed ? NULL : region;
	f->p = vq->packed ? region : NULL;
	const uint16_t *ver = vq->packed ? &f->p->version : &f->s->version;
	const uint16_t *num = vq->packed ? &f->p->desc_num : &f->s->desc_num;
	char why[128] = "";
	size_t whylen = sizeof(why);
	int r = 0;
	if (!resume || GET(ver) == 0) {
		if (vq->packed)
			fresh_packed(vq, f);
		else
			fresh_split(vq, f);
		f->counter = 1;
	} else if (GET(ver) != INF_VERSION) {
		r = REFUSE("version %u", GET(ver));
	} else if (GET(num) != vq->size) {
		r = REFUSE("%u entries for a ring of %u", GET(num), vq->size);
	} else {
		struct by_counter *v = calloc(vq->size, sizeof(*v));
		if (!v)
			r = -ENOMEM;
		else if (vq->packed)
			r = resume_packed(vq, f, v, why, whylen);
		else
			r = resume_split(vq, f, v, why, whylen);
		free(v);
	}
	if (r) {
		if (r == -EINVAL)
			vio_log_warn("%s: queue %u: in-flight region refused: "
				     "%s",
				     vq->name, vq->index, why);
		struct vio_vq tmp = {.inf = f};
		vio_inflight_free(&tmp);
		return r;
	}
	vq->inf = f;
	return 0;
}

unsigned vio_vq_inflight_recovered(const struct vio_vq *vq)
{
	return vq->inf ? vq->inf->nresub : 0;
}

bool vio_inflight_pending(const struct vio_vq *vq)
{
	return vq->inf->next_resub < vq->inf->nresub;
}

/* ---- pop ---- */

/* A recovered chain, again (its mark and counter stay). */
static int resubmit(struct vio_vq *vq, struct vio_chain *c, struct vio_iov *iov,
		    unsigned max_iov)
{
	struct vio_inflight *f = vq->inf;
	uint16_t h = f->resub[f->next_resub++];
	if (!vq->packed)
		return vio_split_walk(vq, h, c, iov, max_iov);
	struct vio_walk w;
	vio_walk_init(&w, vq, iov, max_iov);
	uint16_t e = h;
	for (uint16_t k = 0; k < f->num[h]; k++, e = f->next[e]) {
		struct inf_packed_desc d;
		vio_copy_once(&d, &f->p->desc[e], sizeof(d));
		if (vio_walk_desc(&w, d.addr, d.len,
				  d.flags &
				      (VRING_DESC_F_NEXT | VRING_DESC_F_WRITE |
				       VRING_DESC_F_INDIRECT)))
			return -EIO;
	}
	return vio_walk_finish(&w, c, (uint32_t)f->hid[h] | f->num[h] << 16);
}

void vio_inflight_packed_desc(struct vio_vq *vq,
			      const struct vring_packed_desc *d, uint16_t flags)
{
	struct vio_inflight *f = vq->inf;
	uint16_t e = f->cursor;
	if (f->overflow || e >= vq->size) {
		f->overflow = true;
		return;
	}
	struct inf_packed_desc *r = &f->p->desc[e]; /* K1: a free entry */
	PUT(&r->addr, le64toh(d->addr));
	PUT(&r->len, le32toh(d->len));
	PUT(&r->id, le16toh(d->id));
	PUT(&r->flags, flags);
	f->taken_last = e;
	f->taken++;
	f->cursor = f->next[e];
}

static int mark_split(struct vio_vq *vq, uint16_t h)
{
	struct vio_inflight *f = vq->inf;
	if (vio_unlikely(f->held[h])) {
		vio_vq_bad(vq, "available head %u is already in flight", h);
		return -EIO;
	}
	f->held[h] = 1;
	struct inf_split_desc *d = &f->s->desc[h];
	PUT(&d->counter, f->counter++); /* S1 */
	ORDER();
	PUT(&d->inflight, 1); /* S2 */
	return 0;
}

static int mark_packed(struct vio_vq *vq, uint32_t head)
{
	struct vio_inflight *f = vq->inf;
	uint16_t id = (uint16_t)head, nd = (uint16_t)(head >> 16);
	uint16_t h = f->free_head, last = f->taken_last;
	if (vio_unlikely(f->overflow || f->taken != nd || h >= vq->size)) {
		vio_vq_bad(vq, "more ring slots in flight than the queue "
			       "size");
		return -EIO;
	}
	/* held[] has one entry per ring slot: a driver's buffer id past
	 * the queue size (found by fuzz_inflight) would index past it */
	if (vio_unlikely(id >= vq->size)) {
		vio_vq_bad(vq,
			   "buffer id %u is not below the queue size %u "
			   "(in-flight tracking is on)",
			   id, vq->size);
		return -EIO;
	}
	if (vio_unlikely(f->held[id])) {
		vio_vq_bad(vq, "buffer id %u is already in flight", id);
		return -EIO;
	}
	struct inf_packed_desc *d = &f->p->desc[h];
	PUT(&d->num, nd); /* K2 */
	PUT(&d->last, last);
	PUT(&d->counter, f->counter++);
	ORDER();
	PUT(&d->inflight, 1); /* K3 */
	ORDER();
	PUT(&f->p->free_head, f->cursor); /* K4 */
	ORDER();
	PUT(&f->p->old_free_head, f->cursor); /* K5 */
	f->free_head = f->cursor;
	f->held[id] = (uint32_t)h + 1;
	f->last[h] = last;
	f->num[h] = nd;
	f->hid[h] = id;
	return 0;
}

int vio_inflight_pop(struct vio_vq *vq, struct vio_chain *c,
		     struct vio_iov *iov, unsigned max_iov)
{
	struct vio_inflight *f = vq->inf;
	if (f->next_resub < f->nresub)
		return resubmit(vq, c, iov, max_iov);
	int r;
	if (vq->packed) {
		f->cursor = f->free_head;
		f->taken = 0;
		f->overflow = false;
		r = vio_packed_pop(vq, c, iov, max_iov);
	} else {
		r = vio_split_pop(vq, c, iov, max_iov);
	}
	if (r != 1 && r != -E2BIG)
		return r;
	int m = vq->packed ? mark_packed(vq, c->head)
			   : mark_split(vq, (uint16_t)c->head);
	f->new_pops++;
	return m ? m : r;
}

/* ---- push ---- */

/* Every head in flight, once per batch; TENTATIVE marks the batch (and
 * comes off again on refusal).  Returns 0 or -EINVAL. */
static int check_batch(struct vio_vq *vq, const struct vio_used *u, unsigned n)
{
	struct vio_inflight *f = vq->inf;
	unsigned k;
	for (k = 0; k < n; k++) {
		uint32_t key = vq->packed ? (uint16_t)u[k].head : u[k].head;
		if (key >= vq->size)
			break;
		uint32_t v = f->held[key];
		if (!v || (v & TENTATIVE))
			break;
		if (vq->packed && f->num[v - 1] != u[k].head >> 16)
			break;
		f->held[key] = v | TENTATIVE;
	}
	if (k == n)
		return 0;
	while (k--) {
		uint32_t key = vq->packed ? (uint16_t)u[k].head : u[k].head;
		f->held[key] &= ~TENTATIVE;
	}
	return -EINVAL;
}

static int push_split(struct vio_vq *vq, const struct vio_used *u, unsigned n)
{
	struct vio_inflight *f = vq->inf;
	struct inf_split *s = f->s;
	for (unsigned k = 0; k < n; k++) { /* P1 */
		uint16_t h = (uint16_t)u[k].head;
		PUT(&s->desc[h].next, f->last_batch_head);
		PUT(&s->last_batch_head, h);
		f->last_batch_head = h;
	}
	int r = vio_split_push(vq, u, n); /* P2 */
	ORDER();
	for (unsigned k = 0; k < n; k++) { /* P3 */
		uint16_t h = (uint16_t)u[k].head;
		PUT(&s->desc[h].inflight, 0);
		f->held[h] = 0;
	}
	ORDER();
	PUT(&s->used_idx, vq->next_used); /* P4 */
	return r;
}

static int push_packed(struct vio_vq *vq, const struct vio_used *u, unsigned n)
{
	struct vio_inflight *f = vq->inf;
	struct inf_packed *p = f->p;
	uint16_t pos = vq->next_used;
	bool wrap = vq->dev_used_wrap;
	for (unsigned k = 0; k < n; k++) { /* Q1 */
		uint16_t h =
		    (uint16_t)((f->held[(uint16_t)u[k].head] & ~TENTATIVE) - 1);
		uint16_t last = f->last[h];
		f->next[last] = f->free_head;
		PUT(&p->desc[last].next, f->free_head);
		f->free_head = h;
		PUT(&p->free_head, h);
		advance(vq, &pos, &wrap, u[k].head >> 16);
	}
	PUT(&p->used_idx, pos); /* Q2 */
	PUT(&p->used_wrap_counter, (uint8_t)wrap);
	int r = vio_packed_push(vq, u, n); /* Q3 */
	ORDER();
	for (unsigned k = 0; k < n; k++) { /* Q4 */
		uint16_t id = (uint16_t)u[k].head;
		uint16_t h = (uint16_t)((f->held[id] & ~TENTATIVE) - 1);
		PUT(&p->desc[h].inflight, 0);
		f->held[id] = 0;
	}
	ORDER();
	PUT(&p->old_free_head, f->free_head); /* Q5 */
	ORDER();
	PUT(&p->old_used_wrap_counter, (uint8_t)wrap); /* Q6 */
	PUT(&p->old_used_idx, pos);
	return r;
}

int vio_inflight_push(struct vio_vq *vq, const struct vio_used *u, unsigned n)
{
	if (check_batch(vq, u, n))
		return -EINVAL;
	return vq->packed ? push_packed(vq, u, n) : push_split(vq, u, n);
}

/* ---- hand back ---- */

int vio_inflight_unpop(struct vio_vq *vq, uint32_t head)
{
	struct vio_inflight *f = vq->inf;
	uint16_t key = (uint16_t)head;
	if (f->new_pops == 0) {
		/* nothing new popped: the latest is a recovered chain */
		if (f->next_resub == 0)
			return -EINVAL;
		uint16_t h = f->resub[f->next_resub - 1];
		if (vq->packed ? f->hid[h] != key || f->num[h] != head >> 16
			       : h != head)
			return -EINVAL;
		f->next_resub--;
		return 0;
	}
	if (key >= vq->size || !f->held[key] || (!vq->packed && head != key))
		return -EINVAL;
	if (!vq->packed) {
		int r = vio_split_unpop(vq, head);
		if (r)
			return r;
		PUT(&f->s->desc[key].inflight, 0);
		f->held[key] = 0;
		f->new_pops--;
		return 0;
	}
	uint16_t h = (uint16_t)(f->held[key] - 1);
	if (f->num[h] != head >> 16)
		return -EINVAL;
	int r = vio_packed_unpop(vq, head);
	if (r)
		return r;
	struct inf_packed *p = f->p;
	uint16_t last = f->last[h];
	f->next[last] = f->free_head;
	PUT(&p->desc[last].next, f->free_head);
	f->free_head = h;
	PUT(&p->free_head, h);
	ORDER();
	PUT(&p->old_free_head, h); /* commit */
	ORDER();
	PUT(&p->desc[h].inflight, 0);
	f->held[key] = 0;
	f->new_pops--;
	return 0;
}
