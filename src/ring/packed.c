/* SPDX-License-Identifier: MIT */
/*
 * Packed virtqueue, VIRTIO 1.2 section 2.8: one descriptor ring written by
 * both sides, told apart by the AVAIL/USED flag bits against each side's
 * wrap counter, plus two event suppression structures.
 *
 * Driver side: buffer ids come from a private free list (next[]); state[id]
 * remembers token, length and how many ring slots the buffer took.  The
 * first head of a batch has its flags written last, at kick_prepare, so a
 * whole batch is published with one release store (2.8.21.3.1).
 *
 * Device side: a descriptor is available when AVAIL == wrap and USED !=
 * wrap; every descriptor of a chain is checked so, not only the head.  A
 * chain's head returned by pop encodes the buffer id (low 16 bits) and its
 * ring slot count (high 16 bits), which push needs to skip forward (2.8.6).
 */
#include <errno.h>

#include "ring/vq_internal.h"

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)
#define WRAP_BIT (1u << VRING_PACKED_EVENT_F_WRAP_CTR)

static inline bool is_avail(uint16_t flags, bool wrap)
{
	return !!(flags & F_AVAIL) == wrap && !!(flags & F_USED) != wrap;
}

static inline bool is_used(uint16_t flags, bool wrap)
{
	return !!(flags & F_AVAIL) == wrap && !!(flags & F_USED) == wrap;
}

static inline void set_avail_event(struct vio_vq *vq, uint16_t pos, bool wrap)
{
	VIO_STORE(&vq->device_event->off_wrap,
		  htole16((uint16_t)(pos | (wrap ? WRAP_BIT : 0))));
	if (vio_unlikely(vq->dlog != NULL))
		vio_dlog_dev(vq, 0, 4);
}

/* One 32-bit read of an event suppression structure: off_wrap, flags. */
static inline void read_event(const struct vring_packed_desc_event *ev,
			      uint16_t *off_wrap, uint16_t *flags)
{
	uint32_t v = VIO_LOAD((const uint32_t *)ev);
	v = le32toh(v);
	*off_wrap = (uint16_t)v;
	*flags = (uint16_t)(v >> 16);
}

/*
 * Should the other side be notified: the event position (off_wrap) lies
 * in [old, new) of the slots just published; positions are unwrapped
 * against the current wrap counter.  n: slots published since old.
 */
static bool need_event_packed(uint16_t size, uint16_t off_wrap, uint16_t old,
			      bool old_wrap, uint16_t new_pos, bool new_wrap,
			      uint32_t n)
{
	if (n >= size)
		return true;
	int32_t ev = off_wrap & 0x7fff;
	if (!!(off_wrap & WRAP_BIT) != new_wrap)
		ev -= size;
	int32_t o = old;
	if (old_wrap != new_wrap)
		o -= size;
	return ev >= o && ev < (int32_t)new_pos;
}

/* ---- driver ---- */

int vio_packed_init_driver(struct vio_vq *vq)
{
	vq->pdesc = vq->layout.desc;
	vq->driver_event = vq->layout.driver;
	vq->device_event = vq->layout.device;
	for (unsigned i = 0; i < vq->size; i++)
		vq->next[i] = (uint16_t)(i + 1);
	vq->free_head = 0;
	vq->num_free = vq->size;
	/* both wrap counters start at 1 (2.8.1) */
	vq->avail_wrap = vq->used_wrap = vq->kicked_wrap = true;
	if (vq->event_idx) {
		VIO_STORE(&vq->driver_event->off_wrap, htole16(WRAP_BIT));
		VIO_STORE(&vq->driver_event->flags,
			  htole16(VRING_PACKED_EVENT_FLAG_DESC));
	}
	return 0;
}

int vio_packed_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned out,
		   unsigned in, void *token)
{
	unsigned n = out + in;
	bool ind = vq->indirect && n > 1 && n <= vq->indirect_max;
	unsigned need = ind ? 1 : n;
	uint64_t in_len = 0;

	if (vq->num_free < need)
		return -ENOSPC;
	uint16_t id = vq->free_head;
	uint16_t head = vq->avail_idx, pos = head;
	bool wrap = vq->avail_wrap;
	uint16_t head_flags = 0;

	if (ind) {
		struct vring_packed_desc *t =
		    (struct vring_packed_desc *)vq->indirect_pool +
		    (size_t)id * vq->indirect_max;
		for (unsigned k = 0; k < n; k++) {
			uint64_t a =
			    vio_mem_daddr(vq->mem, sg[k].buf, sg[k].len);
			if (vio_unlikely(a == VIO_BAD_ADDR))
				return -EFAULT;
			uint16_t f = 0;
			if (k >= out) {
				f = VRING_DESC_F_WRITE;
				in_len += sg[k].len;
			}
			t[k].addr = htole64(a);
			t[k].len = htole32(sg[k].len);
			t[k].id = 0;
			t[k].flags = htole16(f);
		}
		struct vring_packed_desc *d = &vq->pdesc[pos];
		d->addr = htole64(vq->indirect_daddr +
				  (uint64_t)id * vq->indirect_max * 16);
		d->len = htole32(n * 16);
		d->id = htole16(id);
		head_flags = (uint16_t)(VRING_DESC_F_INDIRECT |
					(wrap ? F_AVAIL : F_USED));
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
	} else {
		for (unsigned k = 0; k < n; k++) {
			uint64_t a =
			    vio_mem_daddr(vq->mem, sg[k].buf, sg[k].len);
			if (vio_unlikely(a == VIO_BAD_ADDR))
				return -EFAULT;
			uint16_t f = (uint16_t)(wrap ? F_AVAIL : F_USED);
			if (k + 1 < n)
				f |= VRING_DESC_F_NEXT;
			if (k >= out) {
				f |= VRING_DESC_F_WRITE;
				in_len += sg[k].len;
			}
			struct vring_packed_desc *d = &vq->pdesc[pos];
			d->addr = htole64(a);
			d->len = htole32(sg[k].len);
			d->id = htole16(id);
			if (k == 0)
				head_flags = f;
			else
				VIO_STORE(&d->flags, htole16(f));
			if (++pos == vq->size) {
				pos = 0;
				wrap = !wrap;
			}
		}
	}
	vq->avail_idx = pos;
	vq->avail_wrap = wrap;
	vq->num_free = (uint16_t)(vq->num_free - need);
	vq->free_head = vq->next[id];
	struct vio_desc_state *st = &vq->state[id];
	st->token = token;
	st->in_len = in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)in_len;
	st->ndesc = (uint16_t)need;
	st->last = head;
	vq->num_added = (uint16_t)(vq->num_added + need);
	vq->in_flight++;
	if (!vq->have_pending) {
		/* the batch's first head: published at kick_prepare */
		vq->have_pending = true;
		vq->pending_head = head;
		vq->pending_flags = head_flags;
	} else {
		VIO_STORE(&vq->pdesc[head].flags, htole16(head_flags));
	}
	return 0;
}

bool vio_packed_kick_prepare(struct vio_vq *vq)
{
	if (!vq->have_pending)
		return false;
	VIO_STORE_REL(&vq->pdesc[vq->pending_head].flags,
		      htole16(vq->pending_flags));
	vq->have_pending = false;
	uint16_t old = vq->kicked_idx;
	bool old_wrap = vq->kicked_wrap;
	uint32_t n = vq->num_added;
	vq->kicked_idx = vq->avail_idx;
	vq->kicked_wrap = vq->avail_wrap;
	vq->num_added = 0;
	VIO_MB();
	uint16_t off_wrap, flags;
	read_event(vq->device_event, &off_wrap, &flags);
	if (flags != VRING_PACKED_EVENT_FLAG_DESC)
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	return need_event_packed(vq->size, off_wrap, old, old_wrap,
				 vq->avail_idx, vq->avail_wrap, n);
}

void *vio_packed_get(struct vio_vq *vq, uint32_t *lenp)
{
	uint16_t pos = vq->last_used;
	uint16_t flags = le16toh(VIO_LOAD_ACQ(&vq->pdesc[pos].flags));

	if (!is_used(flags, vq->used_wrap))
		return NULL;
	uint16_t id = le16toh(VIO_LOAD(&vq->pdesc[pos].id));
	uint32_t len = le32toh(VIO_LOAD(&vq->pdesc[pos].len));
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
	/* 2.8.4: "Element Length is reserved for used descriptors without
	 * the VIRTQ_DESC_F_WRITE flag, and is ignored by drivers": a buffer
	 * with nothing writable was written 0 bytes, whatever is there
	 * (DPDK's vhost leaves the driver's own length on transmit) */
	if (st->in_len == 0 && !(flags & VRING_DESC_F_WRITE))
		len = 0;
	if (vio_unlikely(len > st->in_len)) {
		vio_vq_bad(vq,
			   "used length %u larger than the %u writable bytes "
			   "of buffer %u",
			   len, st->in_len, id);
		return NULL;
	}
	void *token = st->token;
	st->token = NULL;
	vq->num_free = (uint16_t)(vq->num_free + st->ndesc);
	vq->next[id] = vq->free_head;
	vq->free_head = id;
	vq->in_flight--;
	uint32_t p = (uint32_t)pos + st->ndesc;
	if (p >= vq->size) {
		p -= vq->size;
		vq->used_wrap = !vq->used_wrap;
	}
	vq->last_used = (uint16_t)p;
	if (vq->event_idx && !vq->cb_disabled)
		VIO_STORE(
		    &vq->driver_event->off_wrap,
		    htole16((uint16_t)(p | (vq->used_wrap ? WRAP_BIT : 0))));
	if (lenp)
		*lenp = len;
	return token;
}

void vio_packed_disable_cb(struct vio_vq *vq)
{
	vq->cb_disabled = true;
	VIO_STORE(&vq->driver_event->flags,
		  htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
}

bool vio_packed_enable_cb(struct vio_vq *vq, uint16_t delay)
{
	vq->cb_disabled = false;
	if (vq->event_idx) {
		uint32_t p = (uint32_t)vq->last_used + delay;
		bool w = vq->used_wrap;
		if (p >= vq->size) {
			p -= vq->size;
			w = !w;
		}
		VIO_STORE(&vq->driver_event->off_wrap,
			  htole16((uint16_t)(p | (w ? WRAP_BIT : 0))));
		VIO_STORE_REL(&vq->driver_event->flags,
			      htole16(VRING_PACKED_EVENT_FLAG_DESC));
	} else {
		VIO_STORE_REL(&vq->driver_event->flags,
			      htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
	}
	VIO_MB();
	return !vio_packed_more_used(vq);
}

bool vio_packed_more_used(const struct vio_vq *vq)
{
	uint16_t flags = le16toh(VIO_LOAD_ACQ(&vq->pdesc[vq->last_used].flags));
	return is_used(flags, vq->used_wrap);
}

void *vio_packed_detach(struct vio_vq *vq)
{
	for (unsigned i = 0; i < vq->size; i++) {
		struct vio_desc_state *st = &vq->state[i];
		if (st->token) {
			void *token = st->token;
			st->token = NULL;
			vq->num_free = (uint16_t)(vq->num_free + st->ndesc);
			vq->next[i] = vq->free_head;
			vq->free_head = (uint16_t)i;
			vq->in_flight--;
			return token;
		}
	}
	return NULL;
}

/* ---- device ---- */

int vio_packed_init_device(struct vio_vq *vq)
{
	vq->pdesc = vq->layout.desc;
	vq->driver_event = vq->layout.driver;
	vq->device_event = vq->layout.device;
	vq->dev_avail_wrap = vq->dev_used_wrap = vq->signalled_wrap = true;
	vio_packed_set_notify(vq, true);
	return 0;
}

bool vio_packed_more_avail(struct vio_vq *vq)
{
	uint16_t flags =
	    le16toh(VIO_LOAD_ACQ(&vq->pdesc[vq->last_avail].flags));
	return is_avail(flags, vq->dev_avail_wrap);
}

/* The n-th descriptor from last_avail (n <= size): the driver makes them
 * available in ring order, so that one's flags say whether it reached it
 * (one load, on the line it wrote last) */
bool vio_packed_avail_at_least(struct vio_vq *vq, unsigned n)
{
	uint32_t pos = (uint32_t)vq->last_avail + n - 1;
	bool wrap = vq->dev_avail_wrap;
	if (pos >= vq->size) {
		pos -= vq->size;
		wrap = !wrap;
	}
	uint16_t flags = le16toh(VIO_LOAD_ACQ(&vq->pdesc[pos].flags));
	return is_avail(flags, wrap);
}

int vio_packed_pop(struct vio_vq *vq, struct vio_chain *c, struct vio_iov *iov,
		   unsigned max_iov)
{
	uint16_t pos = vq->last_avail;
	bool wrap = vq->dev_avail_wrap;
	uint16_t flags = le16toh(VIO_LOAD_ACQ(&vq->pdesc[pos].flags));

	if (!is_avail(flags, wrap)) {
		if (!vq->event_idx || vq->notify_disabled)
			return 0;
		/* re-arm, then look again, so an empty answer is final */
		set_avail_event(vq, pos, wrap);
		VIO_MB();
		flags = le16toh(VIO_LOAD_ACQ(&vq->pdesc[pos].flags));
		if (!is_avail(flags, wrap))
			return 0;
	}
	/* each descriptor copied once: the fast path's copy of the head is
	 * the walker's too (its flags were read once, with acquire, above) */
	struct vring_packed_desc d;
	vio_copy_once(&d, &vq->pdesc[pos], sizeof(d));
	if (vq->inf == NULL &&
	    !(flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) &&
	    vio_walk_one(vq, c, iov, max_iov, le64toh(d.addr), le32toh(d.len),
			 flags & VRING_DESC_F_WRITE,
			 (uint32_t)le16toh(d.id) | 1u << 16)) {
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
		vq->last_avail = pos;
		vq->dev_avail_wrap = wrap;
		if (vq->event_idx && !vq->notify_disabled)
			set_avail_event(vq, pos, wrap);
		return 1;
	}
	struct vio_walk w;
	vio_walk_init(&w, vq, iov, max_iov);
	uint16_t id = 0;
	int ret = 1;
	for (uint32_t ndesc = 1;; ndesc++) {
		if (ndesc > 1) {
			vio_copy_once(&d, &vq->pdesc[pos], sizeof(d));
			flags = le16toh(d.flags);
			if (vio_unlikely(ndesc > vq->size)) {
				vio_vq_bad(vq,
					   "chain longer than the queue "
					   "size %u",
					   vq->size);
				return -EIO;
			}
			if (vio_unlikely(!is_avail(flags, wrap))) {
				vio_vq_bad(vq,
					   "descriptor %u of a chain is not "
					   "available (flags 0x%x, wrap %d)",
					   pos, flags, wrap);
				return -EIO;
			}
		}
		/* an in-flight region keeps a copy (used entries will
		 * overwrite this slot while the chain is still in flight) */
		if (vio_unlikely(vq->inf != NULL))
			vio_inflight_packed_desc(vq, &d, flags);
		if (vio_walk_desc(&w, le64toh(d.addr), le32toh(d.len),
				  flags &
				      (VRING_DESC_F_NEXT | VRING_DESC_F_WRITE |
				       VRING_DESC_F_INDIRECT)))
			return -EIO;
		id = le16toh(d.id); /* the last descriptor's id counts */
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
		if (!(flags & VRING_DESC_F_NEXT)) {
			ret =
			    vio_walk_finish(&w, c, (uint32_t)id | ndesc << 16);
			break;
		}
	}
	vq->last_avail = pos;
	vq->dev_avail_wrap = wrap;
	if (vq->event_idx && !vq->notify_disabled)
		set_avail_event(vq, pos, wrap);
	return ret;
}

/*
 * Chains of one descriptor, many at once (vio_vq_pop_burst).  Where the
 * position is at the start of a cache line of descriptors (4 of 16 bytes)
 * the line's four flags are read first and, when all four are available
 * one-descriptor chains, the four bodies are copied in one go:
 * one look at a line the driver writes instead of four.  Elsewhere, and
 * when a line is not like that, one descriptor at a time.  Stops at the
 * first descriptor that is not available or not a one-descriptor chain
 * vio_walk_one takes; vio_packed_pop takes it from there.
 */
int vio_packed_pop_burst(struct vio_vq *vq, struct vio_chain *c,
			 struct vio_iov *iov, unsigned n)
{
	const uint16_t multi = VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT;
	uint16_t pos = vq->last_avail;
	bool wrap = vq->dev_avail_wrap;
	unsigned got = 0;

	while (got < n) {
		if ((pos & 3) == 0 && n - got >= 4 && pos + 4u <= vq->size) {
			const struct vring_packed_desc *l = &vq->pdesc[pos];
			uint16_t f[4];
			bool all = true;
			/* each flag an acquire: the bodies are read after
			 * the flags that publish them (a relaxed load and a
			 * fence is the same order, but ThreadSanitizer does
			 * not model fences; on x86 both are plain loads) */
			for (unsigned i = 0; i < 4; i++) {
				f[i] = le16toh(VIO_LOAD_ACQ(&l[i].flags));
				all &= is_avail(f[i], wrap) && !(f[i] & multi);
			}
			if (all) {
				struct vring_packed_desc d[4];
				vio_copy_once(d, l, sizeof(d));
				unsigned i = 0;
				for (; i < 4; i++)
					if (!vio_walk_one(
						vq, &c[got + i], &iov[got + i],
						1, le64toh(d[i].addr),
						le32toh(d[i].len),
						f[i] & VRING_DESC_F_WRITE,
						(uint32_t)le16toh(d[i].id) |
						    1u << 16))
						break;
				got += i;
				pos = (uint16_t)(pos + i);
				if (pos == vq->size) {
					pos = 0;
					wrap = !wrap;
				}
				if (i < 4)
					break;
				continue;
			}
		}
		uint16_t flags = le16toh(VIO_LOAD_ACQ(&vq->pdesc[pos].flags));
		if (!is_avail(flags, wrap) || (flags & multi))
			break;
		struct vring_packed_desc d;
		vio_copy_once(&d, &vq->pdesc[pos], sizeof(d));
		if (!vio_walk_one(vq, &c[got], &iov[got], 1, le64toh(d.addr),
				  le32toh(d.len), flags & VRING_DESC_F_WRITE,
				  (uint32_t)le16toh(d.id) | 1u << 16))
			break;
		got++;
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
	}
	if (got) {
		vq->last_avail = pos;
		vq->dev_avail_wrap = wrap;
		if (vq->event_idx && !vq->notify_disabled)
			set_avail_event(vq, pos, wrap);
	}
	return (int)got;
}

/* Hand back the chain popped last: head encodes its id and ring slots
 * (vio_packed_pop); those slots end at our avail position, lie between
 * the used and avail positions, and the last one carries the id.  No
 * used entry was written there (they go below the used position). */
int vio_packed_unpop(struct vio_vq *vq, uint32_t head)
{
	uint32_t nd = head >> 16;
	int32_t held = (int32_t)vq->last_avail - vq->next_used;
	if (vq->dev_avail_wrap != vq->dev_used_wrap)
		held += vq->size;
	if (nd == 0 || (int32_t)nd > held)
		return -EINVAL;
	int32_t pos = (int32_t)vq->last_avail - (int32_t)nd;
	bool wrap = vq->dev_avail_wrap;
	if (pos < 0) {
		pos += vq->size;
		wrap = !wrap;
	}
	uint32_t tail = ((uint32_t)pos + nd - 1) % vq->size;
	uint16_t flags = le16toh(VIO_LOAD(&vq->pdesc[pos].flags));
	if (!is_avail(flags, wrap) ||
	    le16toh(VIO_LOAD(&vq->pdesc[tail].id)) != (uint16_t)head)
		return -EINVAL;
	vq->last_avail = (uint16_t)pos;
	vq->dev_avail_wrap = wrap;
	if (vq->event_idx && !vq->notify_disabled)
		set_avail_event(vq, (uint16_t)pos, wrap);
	return 0;
}

/* logged: constant in each caller, so the unlogged path has no test */
static inline __attribute__((always_inline)) int
push(struct vio_vq *vq, const struct vio_used *u, unsigned n, bool logged)
{
	uint32_t total = 0;
	for (unsigned k = 0; k < n; k++) {
		uint32_t nd = u[k].head >> 16;
		if (nd == 0 || nd > vq->size)
			return -EINVAL;
		total += nd;
	}
	if (total > vq->size)
		return -EINVAL;
	/* the buffers' bits (recorded at pop: the ring copies may be gone),
	 * before the used descriptors are visible */
	if (logged)
		for (unsigned k = 0; k < n; k++)
			if (vio_dlog_buffer(vq, u[k].head & 0xffff))
				return -EIO;
	uint16_t pos = vq->next_used, first = pos;
	bool wrap = vq->dev_used_wrap;
	uint16_t first_flags = 0;
	for (unsigned k = 0; k < n; k++) {
		struct vring_packed_desc *d = &vq->pdesc[pos];
		/* 2.8.4: F_WRITE says the device wrote len bytes (a used
		 * length without it is reserved, ignored by drivers) */
		uint16_t f = (uint16_t)((wrap ? (F_AVAIL | F_USED) : 0) |
					(u[k].len ? VRING_DESC_F_WRITE : 0));
		VIO_STORE(&d->id, htole16((uint16_t)u[k].head));
		VIO_STORE(&d->len, htole32(u[k].len));
		if (k == 0)
			first_flags = f;
		else
			VIO_STORE(&d->flags, htole16(f));
		if (logged && k > 0)
			vio_dlog_desc(vq, 16u * pos, 16);
		uint32_t p = (uint32_t)pos + (u[k].head >> 16);
		if (p >= vq->size) {
			p -= vq->size;
			wrap = !wrap;
		}
		pos = (uint16_t)p;
	}
	/* the first used descriptor's flags go last: one release publishes
	 * the whole batch (2.8.21.3.1 applied to the used side) */
	VIO_STORE_REL(&vq->pdesc[first].flags, htole16(first_flags));
	if (logged)
		vio_dlog_desc(vq, 16u * first, 16);
	vq->next_used = pos;
	vq->dev_used_wrap = wrap;
	vq->pushed_n += total;
	return 0;
}

int vio_packed_push(struct vio_vq *vq, const struct vio_used *u, unsigned n)
{
	if (vio_unlikely(vq->dlog != NULL))
		return push(vq, u, n, true);
	return push(vq, u, n, false);
}

bool vio_packed_call_prepare(struct vio_vq *vq)
{
	if (!vq->pushed_n)
		return false;
	uint16_t old = vq->signalled_used;
	bool old_wrap = vq->signalled_wrap;
	uint32_t n = vq->pushed_n;
	vq->signalled_used = vq->next_used;
	vq->signalled_wrap = vq->dev_used_wrap;
	vq->pushed_n = 0;
	VIO_MB();
	uint16_t off_wrap, flags;
	read_event(vq->driver_event, &off_wrap, &flags);
	if (flags != VRING_PACKED_EVENT_FLAG_DESC)
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	return need_event_packed(vq->size, off_wrap, old, old_wrap,
				 vq->next_used, vq->dev_used_wrap, n);
}

/*
 * The device event flags, stored only when they change.  The driver reads
 * them at every kick_prepare (DPDK's virtio PMD: every transmit burst),
 * and the transmit path turns notifications off at every kick: storing
 * the value the line already holds took the line from the driver's cache
 * each time, and the driver's next read missed.
 */
static inline void set_event_flags(struct vio_vq *vq, uint16_t f)
{
	if (VIO_LOAD(&vq->device_event->flags) == htole16(f))
		return;
	VIO_STORE_REL(&vq->device_event->flags, htole16(f));
	if (vio_unlikely(vq->dlog != NULL))
		vio_dlog_dev(vq, 0, 4);
}

void vio_packed_set_notify(struct vio_vq *vq, bool enable)
{
	vq->notify_disabled = !enable;
	if (!enable) {
		set_event_flags(vq, VRING_PACKED_EVENT_FLAG_DISABLE);
	} else if (vq->event_idx) {
		/* off_wrap (logged there) before the flags that ask for it */
		set_avail_event(vq, vq->last_avail, vq->dev_avail_wrap);
		set_event_flags(vq, VRING_PACKED_EVENT_FLAG_DESC);
	} else {
		set_event_flags(vq, VRING_PACKED_EVENT_FLAG_ENABLE);
	}
}
