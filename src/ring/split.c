/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue, VIRTIO 1.2 section 2.7: descriptor table, available
 * ring (driver area), used ring (device area).
 *
 * Driver side: free descriptors are linked through the private next[]
 * array (never read back from shared memory), a queue: entries come back
 * into use in the order they were used; state[head] remembers each
 * buffer's token, length and chain.  Descriptors and avail slots are
 * stored only where they change (set_desc).  Buffers become visible at
 * kick_prepare, one release store of avail->idx per batch.
 *
 * Device side: avail->idx is read with acquire and its distance from our
 * position checked on every read (at most size); each head and descriptor
 * is copied once and handed to the chain walker.
 */
#include <errno.h>

#include "ring/vq_internal.h"

static inline uint16_t *used_event(struct vio_vq *vq)
{
	return (uint16_t *)&vq->avail->ring[vq->size];
}

static inline uint16_t *avail_event(struct vio_vq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/* Device writes of the used ring's own fields: avail_event, flags. */
static inline void set_avail_event(struct vio_vq *vq, uint16_t v)
{
	VIO_STORE(avail_event(vq), htole16(v));
	if (vio_unlikely(vq->dlog != NULL))
		vio_dlog_dev(vq, 4 + 8u * vq->size, 2);
}

/* only when they change: the driver reads them at every kick_prepare */
static inline void set_used_flags(struct vio_vq *vq, uint16_t v)
{
	if (VIO_LOAD(&vq->used->flags) == htole16(v))
		return;
	VIO_STORE(&vq->used->flags, htole16(v));
	if (vio_unlikely(vq->dlog != NULL))
		vio_dlog_dev(vq, 0, 2);
}

/* ---- driver ---- */

int vio_split_init_driver(struct vio_vq *vq)
{
	vq->desc = vq->layout.desc;
	vq->avail = vq->layout.driver;
	vq->used = vq->layout.device;
	for (unsigned i = 0; i < vq->size; i++)
		vq->next[i] = (uint16_t)(i + 1);
	vq->free_head = 0;
	vq->free_tail = (uint16_t)(vq->size - 1);
	vq->num_free = vq->size;
	return 0;
}

/*
 * Descriptor and avail ring stores that leave a line alone when it holds
 * the value already.  With the free list a queue, a driver that reposts
 * its buffers in the order they came back (the net driver's receive
 * ring) writes the same head into the same avail slot and the same
 * buffer into the same descriptor lap after lap: nothing but avail->idx
 * changes, and the device's reads of the ring hit the copies in its
 * cache instead of taking each line back from the driver's
 * (bench/net driver-rx, split).  What is read back from the shared ring
 * (a device could have changed it) decides only whether to store; the
 * driver's own state stays in next[] and state[].
 */
static inline void set_le16(__le16 *p, uint16_t v)
{
	__le16 x = htole16(v);
	if (VIO_LOAD(p) != x)
		VIO_STORE(p, x);
}

/* addr, len and flags (next: the caller's, only where it means something) */
static inline void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len,
			    uint16_t flags)
{
	__le64 a = htole64(addr);
	__le32 l = htole32(len);
	if (VIO_LOAD(&d->addr) != a)
		VIO_STORE(&d->addr, a);
	if (VIO_LOAD(&d->len) != l)
		VIO_STORE(&d->len, l);
	set_le16(&d->flags, flags);
}

int vio_split_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned out,
		  unsigned in, void *token)
{
	unsigned n = out + in;
	bool ind = vq->indirect && n > 1 && n <= vq->indirect_max;
	unsigned need = ind ? 1 : n;
	uint64_t in_len = 0;

	if (vq->num_free < need)
		return -ENOSPC;
	uint16_t head = vq->free_head, last;
	if (ind) {
		struct vring_desc *t = (struct vring_desc *)vq->indirect_pool +
				       (size_t)head * vq->indirect_max;
		for (unsigned k = 0; k < n; k++) {
			uint64_t a =
			    vio_mem_daddr(vq->mem, sg[k].buf, sg[k].len);
			if (vio_unlikely(a == VIO_BAD_ADDR))
				return -EFAULT;
			uint16_t f = k + 1 < n ? VRING_DESC_F_NEXT : 0;
			if (k >= out) {
				f |= VRING_DESC_F_WRITE;
				in_len += sg[k].len;
			}
			t[k].addr = htole64(a);
			t[k].len = htole32(sg[k].len);
			t[k].flags = htole16(f);
			t[k].next = htole16((uint16_t)(k + 1));
		}
		set_desc(&vq->desc[head],
			 vq->indirect_daddr +
			     (uint64_t)head * vq->indirect_max * 16,
			 n * 16, VRING_DESC_F_INDIRECT);
		last = head;
		vq->free_head = vq->next[head];
	} else {
		uint16_t i = head;
		last = head;
		for (unsigned k = 0; k < n; k++) {
			uint64_t a =
			    vio_mem_daddr(vq->mem, sg[k].buf, sg[k].len);
			if (vio_unlikely(a == VIO_BAD_ADDR))
				return -EFAULT;
			uint16_t f = k + 1 < n ? VRING_DESC_F_NEXT : 0;
			if (k >= out) {
				f |= VRING_DESC_F_WRITE;
				in_len += sg[k].len;
			}
			set_desc(&vq->desc[i], a, sg[k].len, f);
			set_le16(&vq->desc[i].next, vq->next[i]);
			last = i;
			i = vq->next[i];
		}
		vq->free_head = i;
	}
	vq->num_free = (uint16_t)(vq->num_free - need);
	struct vio_desc_state *st = &vq->state[head];
	st->token = token;
	st->in_len = in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)in_len;
	st->ndesc = (uint16_t)need;
	st->last = last;
	set_le16(&vq->avail->ring[vq->avail_idx & vq->mask], head);
	vq->avail_idx++;
	vq->num_added++;
	vq->in_flight++;
	return 0;
}

bool vio_split_kick_prepare(struct vio_vq *vq)
{
	uint16_t old = vq->kicked_idx, new_idx = vq->avail_idx;

	if (new_idx == old)
		return false;
	/* publishes every descriptor and ring entry written before */
	VIO_STORE_REL(&vq->avail->idx, htole16(new_idx));
	vq->kicked_idx = new_idx;
	vq->num_added = 0;
	/* the device's suppression state must be read after the index is
	 * visible (2.7.10) */
	VIO_MB();
	if (vq->event_idx)
		return vio_need_event(le16toh(VIO_LOAD(avail_event(vq))),
				      new_idx, old);
	return !(le16toh(VIO_LOAD(&vq->used->flags)) & VRING_USED_F_NO_NOTIFY);
}

static void detach(struct vio_vq *vq, uint16_t head)
{
	struct vio_desc_state *st = &vq->state[head];
	st->token = NULL;
	/* to the tail: the entries come back into use in the order they
	 * were used (set_desc) */
	if (vq->num_free)
		vq->next[vq->free_tail] = head;
	else
		vq->free_head = head;
	vq->free_tail = st->last;
	vq->num_free = (uint16_t)(vq->num_free + st->ndesc);
	vq->in_flight--;
}

void *vio_split_get(struct vio_vq *vq, uint32_t *lenp)
{
	uint16_t last = vq->last_used;

	if (last == vq->used_idx_cache) {
		uint16_t idx = le16toh(VIO_LOAD_ACQ(&vq->used->idx));
		if (vio_unlikely((uint16_t)(idx - last) > vq->in_flight)) {
			vio_vq_bad(vq,
				   "used index jumped from %u to %u with %u "
				   "buffers in flight",
				   last, idx, vq->in_flight);
			return NULL;
		}
		vq->used_idx_cache = idx;
		if (idx == last)
			return NULL;
	}
	struct vring_used_elem e;
	vio_copy_once(&e, &vq->used->ring[last & vq->mask], sizeof(e));
	uint32_t id = le32toh(e.id), len = le32toh(e.len);
	if (vio_unlikely(id >= vq->size)) {
		vio_vq_bad(vq, "used id %u out of range (size %u)", id,
			   vq->size);
		return NULL;
	}
	struct vio_desc_state *st = &vq->state[id];
	if (vio_unlikely(!st->token)) {
		vio_vq_bad(vq, "used id %u is not in flight", id);
		return NULL;
	}
	if (vio_unlikely(len > st->in_len)) {
		vio_vq_bad(vq,
			   "used length %u larger than the %u writable bytes "
			   "of buffer %u",
			   len, st->in_len, id);
		return NULL;
	}
	void *token = st->token;
	detach(vq, (uint16_t)id);
	vq->last_used = (uint16_t)(last + 1);
	if (vq->event_idx && !vq->cb_disabled)
		VIO_STORE(used_event(vq), htole16(vq->last_used));
	if (lenp)
		*lenp = len;
	return token;
}

void vio_split_disable_cb(struct vio_vq *vq)
{
	vq->cb_disabled = true;
	if (vq->event_idx)
		VIO_STORE(used_event(vq),
			  htole16((uint16_t)(vq->last_used + 0x8000)));
	else
		VIO_STORE(&vq->avail->flags,
			  htole16(VRING_AVAIL_F_NO_INTERRUPT));
}

bool vio_split_enable_cb(struct vio_vq *vq, uint16_t delay)
{
	vq->cb_disabled = false;
	if (vq->event_idx)
		VIO_STORE(used_event(vq),
			  htole16((uint16_t)(vq->last_used + delay)));
	else
		VIO_STORE(&vq->avail->flags, 0);
	VIO_MB();
	uint16_t pending =
	    (uint16_t)(le16toh(VIO_LOAD_ACQ(&vq->used->idx)) - vq->last_used);
	return pending <= delay;
}

bool vio_split_more_used(const struct vio_vq *vq)
{
	return vq->last_used != vq->used_idx_cache ||
	       vq->last_used != le16toh(VIO_LOAD_ACQ(&vq->used->idx));
}

void *vio_split_detach(struct vio_vq *vq)
{
	for (unsigned i = 0; i < vq->size; i++) {
		void *token = vq->state[i].token;
		if (token) {
			detach(vq, (uint16_t)i);
			return token;
		}
	}
	return NULL;
}

/* ---- device ---- */

int vio_split_init_device(struct vio_vq *vq)
{
	vq->desc = vq->layout.desc;
	vq->avail = vq->layout.driver;
	vq->used = vq->layout.device;
	VIO_STORE(&vq->used->flags, 0);
	return 0;
}

/* Read avail->idx (acquire) and check its distance: at most size ahead. */
static bool read_avail(struct vio_vq *vq)
{
	uint16_t idx = le16toh(VIO_LOAD_ACQ(&vq->avail->idx));
	if (vio_unlikely((uint16_t)(idx - vq->last_avail) > vq->size)) {
		vio_vq_bad(vq,
			   "available index jumped from %u to %u (queue size "
			   "%u)",
			   vq->last_avail, idx, vq->size);
		return false;
	}
	vq->avail_idx_cache = idx;
	return idx != vq->last_avail;
}

bool vio_split_more_avail(struct vio_vq *vq)
{
	return vq->last_avail != vq->avail_idx_cache || read_avail(vq);
}

bool vio_split_avail_at_least(struct vio_vq *vq, unsigned n)
{
	if ((uint16_t)(vq->avail_idx_cache - vq->last_avail) >= n)
		return true;
	read_avail(vq);
	return (uint16_t)(vq->avail_idx_cache - vq->last_avail) >= n;
}

/* The chain at head (< size), through the walker: 1, -E2BIG or -EIO. */
static inline int walk_chain(struct vio_vq *vq, uint16_t head,
			     struct vio_chain *c, struct vio_iov *iov,
			     unsigned max_iov)
{
	/* each descriptor copied once: the fast path's copy of the head is
	 * the walker's too */
	struct vring_desc d;
	vio_copy_once(&d, &vq->desc[head], sizeof(d));
	uint16_t flags = le16toh(d.flags);
	if (!(flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) &&
	    vio_walk_one(vq, c, iov, max_iov, le64toh(d.addr), le32toh(d.len),
			 flags & VRING_DESC_F_WRITE, head))
		return 1;
	struct vio_walk w;
	vio_walk_init(&w, vq, iov, max_iov);
	for (;;) {
		if (vio_walk_desc(&w, le64toh(d.addr), le32toh(d.len), flags))
			return -EIO;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		uint16_t i = le16toh(d.next);
		if (vio_unlikely(i >= vq->size)) {
			vio_vq_bad(vq, "next descriptor %u out of range", i);
			return -EIO;
		}
		vio_copy_once(&d, &vq->desc[i], sizeof(d));
		flags = le16toh(d.flags);
	}
	return vio_walk_finish(&w, c, head);
}

int vio_split_walk(struct vio_vq *vq, uint16_t head, struct vio_chain *c,
		   struct vio_iov *iov, unsigned max_iov)
{
	return walk_chain(vq, head, c, iov, max_iov);
}

int vio_split_pop(struct vio_vq *vq, struct vio_chain *c, struct vio_iov *iov,
		  unsigned max_iov)
{
	uint16_t last = vq->last_avail;

	if (last == vq->avail_idx_cache && !read_avail(vq)) {
		if (vq->is_broken)
			return -EIO;
		if (!vq->event_idx || vq->notify_disabled)
			return 0;
		/* re-arm, then look again, so an empty answer is final:
		 * the driver will kick for the next buffer (2.7.10) */
		set_avail_event(vq, last);
		VIO_MB();
		if (!read_avail(vq))
			return vq->is_broken ? -EIO : 0;
	}
	uint16_t head = le16toh(VIO_LOAD(&vq->avail->ring[last & vq->mask]));
	if (vio_unlikely(head >= vq->size)) {
		vio_vq_bad(vq, "available head %u out of range (size %u)", head,
			   vq->size);
		return -EIO;
	}
	int ret = walk_chain(vq, head, c, iov, max_iov);
	if (ret == -EIO)
		return -EIO;
	vq->last_avail = (uint16_t)(last + 1);
	if (vq->event_idx && !vq->notify_disabled)
		set_avail_event(vq, vq->last_avail);
	return ret;
}

/*
 * Chains of one descriptor, many at once (vio_vq_pop_burst): the avail
 * index read once for the lot (only when the cached one is short), then
 * head after head as vio_split_pop's fast path takes them.  Stops at the
 * first head that is not a one-descriptor chain vio_walk_one takes (out
 * of range too: vio_split_pop reports that one).
 */
int vio_split_pop_burst(struct vio_vq *vq, struct vio_chain *c,
			struct vio_iov *iov, unsigned n)
{
	uint16_t last = vq->last_avail;
	if ((uint16_t)(vq->avail_idx_cache - last) < n && !read_avail(vq))
		return vq->is_broken ? -EIO : 0;
	unsigned have = (uint16_t)(vq->avail_idx_cache - last);
	if (have > n)
		have = n;
	unsigned got = 0;
	for (; got < have; got++) {
		uint16_t head = le16toh(VIO_LOAD(
		    &vq->avail->ring[(uint16_t)(last + got) & vq->mask]));
		if (vio_unlikely(head >= vq->size))
			break;
		struct vring_desc d;
		vio_copy_once(&d, &vq->desc[head], sizeof(d));
		uint16_t flags = le16toh(d.flags);
		if ((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) ||
		    !vio_walk_one(vq, &c[got], &iov[got], 1, le64toh(d.addr),
				  le32toh(d.len), flags & VRING_DESC_F_WRITE,
				  head))
			break;
	}
	if (got) {
		vq->last_avail = (uint16_t)(last + got);
		if (vq->event_idx && !vq->notify_disabled)
			set_avail_event(vq, vq->last_avail);
	}
	return (int)got;
}

/* logged: constant in each caller, so the unlogged path has no test */
static inline __attribute__((always_inline)) int
push(struct vio_vq *vq, const struct vio_used *u, unsigned n, bool logged)
{
	for (unsigned k = 0; k < n; k++)
		if (u[k].head >= vq->size)
			return -EINVAL;
	/* the buffers' bits: after the device filled them, before the used
	 * entries that hand them back are visible */
	if (logged)
		for (unsigned k = 0; k < n; k++)
			if (vio_dlog_buffer(vq, u[k].head))
				return -EIO;
	uint16_t idx = vq->next_used;
	for (unsigned k = 0; k < n; k++) {
		uint16_t slot = (uint16_t)(idx + k) & vq->mask;
		struct vring_used_elem *e = &vq->used->ring[slot];
		VIO_STORE(&e->id, htole32(u[k].head));
		VIO_STORE(&e->len, htole32(u[k].len));
		if (logged)
			vio_dlog_dev(vq, 4 + 8u * slot, 8);
	}
	vq->next_used = (uint16_t)(idx + n);
	VIO_STORE_REL(&vq->used->idx, htole16(vq->next_used));
	if (logged)
		vio_dlog_dev(vq, 2, 2);
	vq->pushed_n += n;
	return 0;
}

int vio_split_push(struct vio_vq *vq, const struct vio_used *u, unsigned n)
{
	if (vio_unlikely(vq->dlog != NULL))
		return push(vq, u, n, true);
	return push(vq, u, n, false);
}

/* Hand back the chain popped last: its head is the avail entry just
 * before our position, and something popped is not yet used (split: the
 * distance between the avail and used positions counts those). */
int vio_split_unpop(struct vio_vq *vq, uint32_t head)
{
	uint16_t pos = (uint16_t)(vq->last_avail - 1);
	if (vq->last_avail == vq->next_used ||
	    le16toh(VIO_LOAD(&vq->avail->ring[pos & vq->mask])) != head)
		return -EINVAL;
	vq->last_avail = pos;
	if (vq->event_idx && !vq->notify_disabled)
		set_avail_event(vq, pos);
	return 0;
}

bool vio_split_call_prepare(struct vio_vq *vq)
{
	if (!vq->pushed_n)
		return false;
	uint16_t old = vq->signalled_used, new_idx = vq->next_used;
	vq->signalled_used = new_idx;
	vq->pushed_n = 0;
	/* the used index store must be visible before we read the
	 * driver's suppression state (2.7.10) */
	VIO_MB();
	if (vq->event_idx)
		return vio_need_event(le16toh(VIO_LOAD(used_event(vq))),
				      new_idx, old);
	return !(le16toh(VIO_LOAD(&vq->avail->flags)) &
		 VRING_AVAIL_F_NO_INTERRUPT);
}

/* EVENT_IDX has no "off": avail_event one behind our position is one the
 * driver has passed already, so it asks for no kick until its index comes
 * round again, 65536 buffers later (vio_vq_set_polled). */
void vio_split_park_event(struct vio_vq *vq)
{
	if (vq->event_idx)
		set_avail_event(vq, (uint16_t)(vq->last_avail - 1));
}

void vio_split_set_notify(struct vio_vq *vq, bool enable)
{
	vq->notify_disabled = !enable;
	if (vq->event_idx) {
		if (enable)
			set_avail_event(vq, vq->last_avail);
		return;
	}
	set_used_flags(vq, enable ? 0 : VRING_USED_F_NO_NOTIFY);
}
