/* SPDX-License-Identifier: MIT */
/*
 * The public virtqueue API: creation, the broken state, and dispatch to
 * the split (split.c) or packed (packed.c) format.  Callers never see the
 * format.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ring/vq_internal.h"

#define AREA_ALIGN 64 /* each area on its own cache lines */

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Area sizes, VIRTIO 1.2 2.7 (split, with the event index words) and 2.8
 * (packed). */
static void area_sizes(uint16_t size, bool packed, size_t s[3])
{
	if (packed) {
		s[0] = 16u * size;
		s[1] = sizeof(struct vring_packed_desc_event);
		s[2] = sizeof(struct vring_packed_desc_event);
	} else {
		s[0] = 16u * size;
		s[1] = 4 + 2u * size + 2;
		s[2] = 4 + 8u * size + 2;
	}
}

size_t vio_vq_ring_bytes(uint16_t size, bool packed)
{
	size_t s[3], total = 0;
	area_sizes(size, packed, s);
	for (int i = 0; i < 3; i++)
		total += align_up(s[i], AREA_ALIGN);
	return total;
}

void vio_vq_layout_at(uint16_t size, bool packed, void *base, uint64_t addr,
		      struct vio_vq_layout *out)
{
	size_t s[3], off = 0, offs[3];
	area_sizes(size, packed, s);
	for (int i = 0; i < 3; i++) {
		offs[i] = off;
		off += align_up(s[i], AREA_ALIGN);
	}
	out->desc = (uint8_t *)base + offs[0];
	out->driver = (uint8_t *)base + offs[1];
	out->device = (uint8_t *)base + offs[2];
	out->desc_addr = addr + offs[0];
	out->driver_addr = addr + offs[1];
	out->device_addr = addr + offs[2];
}

static bool size_ok(uint16_t size, bool packed)
{
	if (size == 0)
		return false;
	return packed || (size & (size - 1)) == 0;
}

static struct vio_vq *vq_alloc(const struct vio_vq_opts *cfg, int role)
{
	struct vio_vq *vq;
	if (!cfg || !size_ok(cfg->size, cfg->packed) ||
	    cfg->size > VIO_VQ_MAX_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	if (posix_memalign((void **)&vq, 64, sizeof(*vq))) {
		errno = ENOMEM;
		return NULL;
	}
	memset(vq, 0, sizeof(*vq));
	vq->role = (uint8_t)role;
	vq->packed = cfg->packed;
	vq->event_idx = cfg->event_idx;
	vq->indirect = cfg->indirect;
	vq->size = cfg->size;
	vq->mask = (uint16_t)(cfg->size - 1);
	vq->index = cfg->index;
	vq->notify = cfg->notify;
	vq->callback = cfg->callback;
	vq->broken_fn = cfg->broken;
	vq->opaque = cfg->opaque;
	snprintf(vq->name, sizeof(vq->name), "%s",
		 cfg->name ? cfg->name : "vq");
	return vq;
}

struct vio_vq *vio_vq_new_driver(const struct vio_vq_opts *cfg,
				 struct vio_mem *mem)
{
	if (!mem) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_vq *vq = vq_alloc(cfg, VIO_ROLE_DRIVER);
	if (!vq)
		return NULL;
	vq->mem = mem;
	vq->indirect_max = cfg->indirect_max ? cfg->indirect_max : 32;
	/* a chain is never longer than the queue (2.7.5.3.1) */
	if (vq->indirect_max > vq->size)
		vq->indirect_max = vq->size;

	uint64_t daddr;
	size_t bytes = vio_vq_ring_bytes(vq->size, vq->packed);
	vq->ring_mem = vio_mem_alloc(mem, bytes, 4096, &daddr);
	vq->state = calloc(vq->size, sizeof(*vq->state));
	vq->next = calloc(vq->size, sizeof(*vq->next));
	if (!vq->ring_mem || !vq->state || !vq->next)
		goto fail;
	memset(vq->ring_mem, 0, bytes);
	vio_vq_layout_at(vq->size, vq->packed, vq->ring_mem, daddr,
			 &vq->layout);
	if (vq->indirect) {
		size_t ib = (size_t)vq->size * vq->indirect_max * 16;
		vq->indirect_pool =
		    vio_mem_alloc(mem, ib, 64, &vq->indirect_daddr);
		if (!vq->indirect_pool)
			goto fail;
	}
	int r =
	    vq->packed ? vio_packed_init_driver(vq) : vio_split_init_driver(vq);
	if (r) {
		errno = -r;
		goto fail;
	}
	return vq;
fail:;
	int e = errno ? errno : ENOMEM;
	vio_vq_free(vq);
	errno = e;
	return NULL;
}

struct vio_vq *vio_vq_new_device(const struct vio_vq_opts *cfg,
				 const struct vio_vq_layout *layout,
				 const struct vio_memtable *mt)
{
	if (!layout || !mt || !layout->desc || !layout->driver ||
	    !layout->device) {
		errno = EINVAL;
		return NULL;
	}
	/* alignment, VIRTIO 1.2 2.7 / 2.8: desc 16, avail 2, used 4,
	 * packed event structures 4 */
	if ((uintptr_t)layout->desc % 16 ||
	    (uintptr_t)layout->driver % (cfg && cfg->packed ? 4 : 2) ||
	    (uintptr_t)layout->device % 4) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_vq *vq = vq_alloc(cfg, VIO_ROLE_DEVICE);
	if (!vq)
		return NULL;
	vq->mt = mt;
	vq->layout = *layout;
	int r =
	    vq->packed ? vio_packed_init_device(vq) : vio_split_init_device(vq);
	if (r) {
		vio_vq_free(vq);
		errno = -r;
		return NULL;
	}
	return vq;
}

void vio_vq_free(struct vio_vq *vq)
{
	if (!vq)
		return;
	if (vq->mem) {
		vio_mem_release(vq->mem, vq->indirect_pool);
		vio_mem_release(vq->mem, vq->ring_mem);
	}
	if (vq->inf)
		vio_inflight_free(vq);
	vio_dlog_free(vq);
	free(vq->state);
	free(vq->next);
	free(vq);
}

void vio_vq_bad(struct vio_vq *vq, const char *fmt, ...)
{
	if (vq->is_broken)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vq->err, sizeof(vq->err), fmt, ap);
	va_end(ap);
	vq->is_broken = true;
	vio_log_limited(&vq->rl, "%s: %s queue %u broken: %s", vq->name,
			vq->role == VIO_ROLE_DRIVER ? "driver" : "device",
			vq->index, vq->err);
	if (vq->broken_fn)
		vq->broken_fn(vq, vq->opaque);
}

void vio_vq_set_broken(struct vio_vq *vq, const char *fmt, ...)
{
	char buf[sizeof(vq->err)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vio_vq_bad(vq, "%s", buf);
}

bool vio_vq_broken(const struct vio_vq *vq)
{
	return vq->is_broken;
}

const char *vio_vq_error(const struct vio_vq *vq)
{
	return vq->err;
}

uint16_t vio_vq_size(const struct vio_vq *vq)
{
	return vq->size;
}

uint16_t vio_vq_index(const struct vio_vq *vq)
{
	return vq->index;
}

bool vio_vq_is_packed(const struct vio_vq *vq)
{
	return vq->packed;
}

void *vio_vq_opaque(const struct vio_vq *vq)
{
	return vq->opaque;
}

void vio_vq_get_layout(const struct vio_vq *vq, struct vio_vq_layout *out)
{
	*out = vq->layout;
}

void vio_vq_interrupt(struct vio_vq *vq)
{
	if (vq->callback)
		vq->callback(vq, vq->opaque);
}

/* ---- driver verbs ---- */

#define DRIVER_ONLY(vq, ret)                                                   \
	do {                                                                   \
		if (vio_unlikely((vq)->role != VIO_ROLE_DRIVER))               \
			return ret;                                            \
	} while (0)
#define DEVICE_ONLY(vq, ret)                                                   \
	do {                                                                   \
		if (vio_unlikely((vq)->role != VIO_ROLE_DEVICE))               \
			return ret;                                            \
	} while (0)

int vio_vq_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned out,
	       unsigned in, void *token)
{
	DRIVER_ONLY(vq, -EINVAL);
	if (vio_unlikely(vq->is_broken))
		return -EIO;
	if (vio_unlikely(!token || !sg || out + in == 0 || out + in > vq->size))
		return -EINVAL;
	return vq->packed ? vio_packed_add(vq, sg, out, in, token)
			  : vio_split_add(vq, sg, out, in, token);
}

bool vio_vq_kick_prepare(struct vio_vq *vq)
{
	DRIVER_ONLY(vq, false);
	if (vio_unlikely(vq->is_broken))
		return false;
	return vq->packed ? vio_packed_kick_prepare(vq)
			  : vio_split_kick_prepare(vq);
}

void vio_vq_notify(struct vio_vq *vq)
{
	if (vq->notify)
		vq->notify(vq, vq->opaque);
}

bool vio_vq_kick(struct vio_vq *vq)
{
	if (!vio_vq_kick_prepare(vq))
		return false;
	vio_vq_notify(vq);
	return true;
}

void *vio_vq_get(struct vio_vq *vq, uint32_t *len)
{
	DRIVER_ONLY(vq, NULL);
	if (vio_unlikely(vq->is_broken))
		return NULL;
	return vq->packed ? vio_packed_get(vq, len) : vio_split_get(vq, len);
}

void vio_vq_disable_cb(struct vio_vq *vq)
{
	DRIVER_ONLY(vq, );
	if (vq->packed)
		vio_packed_disable_cb(vq);
	else
		vio_split_disable_cb(vq);
}

bool vio_vq_enable_cb(struct vio_vq *vq)
{
	DRIVER_ONLY(vq, false);
	if (vio_unlikely(vq->is_broken))
		return true; /* nothing will ever be pending */
	return vq->packed ? vio_packed_enable_cb(vq, 0)
			  : vio_split_enable_cb(vq, 0);
}

bool vio_vq_enable_cb_delayed(struct vio_vq *vq)
{
	DRIVER_ONLY(vq, false);
	if (vio_unlikely(vq->is_broken))
		return true;
	uint16_t delay = (uint16_t)(vq->in_flight * 3 / 4);
	return vq->packed ? vio_packed_enable_cb(vq, delay)
			  : vio_split_enable_cb(vq, delay);
}

bool vio_vq_more_used(const struct vio_vq *vq)
{
	DRIVER_ONLY(vq, false);
	if (vio_unlikely(vq->is_broken))
		return false;
	return vq->packed ? vio_packed_more_used(vq) : vio_split_more_used(vq);
}

void *vio_vq_detach_unused(struct vio_vq *vq)
{
	DRIVER_ONLY(vq, NULL);
	return vq->packed ? vio_packed_detach(vq) : vio_split_detach(vq);
}

unsigned vio_vq_num_free(const struct vio_vq *vq)
{
	return vq->role == VIO_ROLE_DRIVER ? vq->num_free : 0;
}

/* ---- device verbs ---- */

void vio_vq_set_base(struct vio_vq *vq, uint16_t next_avail)
{
	DEVICE_ONLY(vq, );
	if (vq->packed) {
		uint16_t slot = next_avail & 0x7fff;
		bool wrap = next_avail >> 15;
		if (slot >= vq->size) {
			vio_vq_bad(vq, "base %u out of range", slot);
			return;
		}
		vq->last_avail = vq->next_used = vq->signalled_used = slot;
		vq->dev_avail_wrap = vq->dev_used_wrap = vq->signalled_wrap =
		    wrap;
	} else {
		vq->last_avail = vq->avail_idx_cache = next_avail;
		vq->next_used = vq->signalled_used = next_avail;
	}
}

uint16_t vio_vq_get_base(const struct vio_vq *vq)
{
	if (vq->packed)
		return (uint16_t)(vq->last_avail |
				  (vq->dev_avail_wrap ? 0x8000 : 0));
	return vq->last_avail;
}

int vio_vq_pop(struct vio_vq *vq, struct vio_chain *c, struct vio_iov *iov,
	       unsigned max_iov)
{
	DEVICE_ONLY(vq, -EINVAL);
	if (vio_unlikely(vq->is_broken))
		return -EIO;
	if (max_iov > UINT16_MAX)
		max_iov = UINT16_MAX;
	if (vio_unlikely(vq->inf != NULL))
		return vio_inflight_pop(vq, c, iov, max_iov);
	return vq->packed ? vio_packed_pop(vq, c, iov, max_iov)
			  : vio_split_pop(vq, c, iov, max_iov);
}

int vio_vq_pop_burst(struct vio_vq *vq, struct vio_chain *c,
		     struct vio_iov *iov, unsigned n)
{
	DEVICE_ONLY(vq, -EINVAL);
	if (vio_unlikely(vq->is_broken))
		return -EIO;
	/* a region or a log attached: their bookkeeping is vio_vq_pop's */
	if (vq->inf != NULL || vq->dlog != NULL)
		return 0;
	return vq->packed ? vio_packed_pop_burst(vq, c, iov, n)
			  : vio_split_pop_burst(vq, c, iov, n);
}

int vio_vq_unpop(struct vio_vq *vq, uint32_t head)
{
	DEVICE_ONLY(vq, -EINVAL);
	if (vio_unlikely(vq->is_broken))
		return -EIO;
	if (vq->inf)
		return vio_inflight_unpop(vq, head);
	return vq->packed ? vio_packed_unpop(vq, head)
			  : vio_split_unpop(vq, head);
}

int vio_vq_push(struct vio_vq *vq, uint32_t head, uint32_t len)
{
	struct vio_used u = {head, len};
	return vio_vq_push_batch(vq, &u, 1);
}

int vio_vq_push_batch(struct vio_vq *vq, const struct vio_used *u, unsigned n)
{
	DEVICE_ONLY(vq, -EINVAL);
	if (vio_unlikely(vq->is_broken))
		return -EIO;
	if (n == 0)
		return 0;
	if (n > vq->size)
		return -EINVAL;
	if (vio_unlikely(vq->inf != NULL))
		return vio_inflight_push(vq, u, n);
	return vq->packed ? vio_packed_push(vq, u, n)
			  : vio_split_push(vq, u, n);
}

bool vio_vq_call_prepare(struct vio_vq *vq)
{
	DEVICE_ONLY(vq, false);
	if (vio_unlikely(vq->is_broken))
		return false;
	return vq->packed ? vio_packed_call_prepare(vq)
			  : vio_split_call_prepare(vq);
}

bool vio_vq_call(struct vio_vq *vq)
{
	if (!vio_vq_call_prepare(vq))
		return false;
	vio_vq_notify(vq);
	return true;
}

void vio_vq_disable_notify(struct vio_vq *vq)
{
	DEVICE_ONLY(vq, );
	if (vq->is_broken)
		return;
	if (vq->packed)
		vio_packed_set_notify(vq, false);
	else
		vio_split_set_notify(vq, false);
}

bool vio_vq_set_polled(struct vio_vq *vq, bool on)
{
	DEVICE_ONLY(vq, false);
	vq->polled = on;
	if (!on)
		return vio_vq_enable_notify(vq);
	vio_vq_disable_notify(vq);
	if (!vq->packed && !vq->is_broken)
		vio_split_park_event(vq);
	return false;
}

bool vio_vq_enable_notify(struct vio_vq *vq)
{
	DEVICE_ONLY(vq, false);
	if (vq->is_broken)
		return true;
	if (vq->polled) /* the poller reads the ring; no kick wanted */
		return !vio_vq_more_avail(vq);
	if (vq->packed)
		vio_packed_set_notify(vq, true);
	else
		vio_split_set_notify(vq, true);
	VIO_MB();
	return !vio_vq_more_avail(vq);
}

bool vio_vq_avail_at_least(struct vio_vq *vq, unsigned n)
{
	DEVICE_ONLY(vq, false);
	if (vq->is_broken)
		return false;
	if (n == 0)
		return true;
	if (n == 1)
		return vio_vq_more_avail(vq);
	if (n > vq->size)
		n = vq->size;
	if (vio_unlikely(vq->inf != NULL) && vio_inflight_pending(vq))
		return true; /* recovered chains wait to be popped again */
	return vq->packed ? vio_packed_avail_at_least(vq, n)
			  : vio_split_avail_at_least(vq, n);
}

bool vio_vq_more_avail(struct vio_vq *vq)
{
	DEVICE_ONLY(vq, false);
	if (vq->is_broken)
		return false;
	if (vio_unlikely(vq->inf != NULL) && vio_inflight_pending(vq))
		return true; /* recovered chains wait to be popped again */
	return vq->packed ? vio_packed_more_avail(vq)
			  : vio_split_more_avail(vq);
}

/* ---- cursors ---- */

void vio_cursor_init(struct vio_cursor *cur, const struct vio_iov *iov,
		     unsigned n)
{
	cur->iov = iov;
	cur->n = n;
	cur->i = 0;
	cur->off = 0;
	cur->left = 0;
	for (unsigned k = 0; k < n; k++)
		cur->left += iov[k].len;
}

static size_t cursor_move(struct vio_cursor *cur, void *dst, const void *src,
			  size_t len)
{
	size_t done = 0;
	while (done < len && cur->i < cur->n) {
		const struct vio_iov *v = &cur->iov[cur->i];
		size_t chunk = v->len - cur->off;
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *p = (uint8_t *)v->base + cur->off;
		if (dst)
			memcpy((uint8_t *)dst + done, p, chunk);
		else if (src)
			memcpy(p, (const uint8_t *)src + done, chunk);
		done += chunk;
		cur->off += (uint32_t)chunk;
		if (cur->off == v->len) {
			cur->i++;
			cur->off = 0;
		}
	}
	cur->left -= done;
	return done;
}

size_t vio_cursor_read(struct vio_cursor *cur, void *dst, size_t len)
{
	return cursor_move(cur, dst, NULL, len);
}

size_t vio_cursor_write(struct vio_cursor *cur, const void *src, size_t len)
{
	return cursor_move(cur, NULL, src, len);
}

size_t vio_cursor_skip(struct vio_cursor *cur, size_t len)
{
	return cursor_move(cur, NULL, NULL, len);
}
