/* SPDX-License-Identifier: MIT */
/*
 * Internal to src/ring/: the virtqueue object and the per-format entry
 * points that vq.c dispatches to.  Nothing here is installed.
 */
#ifndef VIO_RING_VQ_INTERNAL_H
#define VIO_RING_VQ_INTERNAL_H

#include <endian.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "mem/memtable_hint.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/ring.h>

/* Shared-memory access.  Indices are read with acquire (they publish what
 * they index) and written with release; everything else the peer wrote is
 * copied once into a local and only the copy is looked at. */
#define VIO_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define VIO_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define VIO_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define VIO_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define VIO_MB() __atomic_thread_fence(__ATOMIC_SEQ_CST)

#define vio_likely(x) __builtin_expect(!!(x), 1)
#define vio_unlikely(x) __builtin_expect(!!(x), 0)

/* Copy n bytes of peer memory exactly once: the compiler barrier keeps
 * later uses on the copy, never re-reading the source. */
static inline void vio_copy_once(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	__asm__ __volatile__("" ::: "memory");
}

/* Driver-side shadow of one buffer (split: indexed by head descriptor;
 * packed: by buffer id). */
struct vio_desc_state {
	void *token;	 /* NULL: not in flight */
	uint32_t in_len; /* writable bytes, bound for the used length */
	uint16_t ndesc;	 /* ring descriptors the buffer occupies */
	uint16_t last;	 /* split: last descriptor of the chain */
};

enum { VIO_ROLE_DRIVER = 1, VIO_ROLE_DEVICE = 2 };

struct vio_vq {
	/* read-mostly: configuration */
	uint8_t role;
	bool packed, event_idx, indirect;
	uint16_t size, mask, index, indirect_max;
	struct vio_vq_layout layout;
	vio_vq_fn *notify, *callback, *broken_fn;
	void *opaque;
	struct vio_mem *mem;	       /* driver */
	const struct vio_memtable *mt; /* device */
	unsigned mt_hint;	       /* device: region of the last buffer */
	char name[32];

	/* split ring pointers */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	/* packed ring pointers */
	struct vring_packed_desc *pdesc;
	struct vring_packed_desc_event *driver_event, *device_event;

	/* driver side state */
	struct vio_desc_state *state; /* [size] */
	uint16_t *next;		      /* [size]: split chain / free links */
	void *indirect_pool;	      /* [size][indirect_max] descriptors */
	uint64_t indirect_daddr;
	void *ring_mem; /* from mem, released on free */
	uint16_t free_head, num_free;
	uint16_t free_tail;  /* split: the free list is a queue (detach) */
	uint16_t avail_idx;  /* split: shadow avail idx; packed: next slot */
	uint16_t kicked_idx; /* value at the last kick_prepare */
	bool kicked_wrap;    /* packed: avail_wrap at the last kick */
	uint16_t num_added;  /* since the last kick_prepare */
	uint16_t last_used;  /* split: next used idx; packed: slot */
	uint16_t used_idx_cache;    /* split: last used->idx read */
	bool avail_wrap, used_wrap; /* packed wrap counters */
	bool cb_disabled;
	uint16_t pending_head; /* packed: head whose flags wait for kick */
	uint16_t pending_flags;
	bool have_pending;
	uint16_t in_flight;

	/* device side state */
	uint16_t last_avail; /* split: next avail idx; packed: slot */
	uint16_t avail_idx_cache;
	uint16_t next_used;	 /* split: used idx; packed: slot */
	uint16_t signalled_used; /* next_used at the last call_prepare */
	bool dev_avail_wrap, dev_used_wrap;
	bool signalled_wrap;
	bool notify_disabled;
	bool polled;	   /* vio_vq_set_polled: notifications stay off */
	uint32_t pushed_n; /* slots pushed since the last call_prepare */
	/* in-flight region mirror (inflight.c); NULL: none, and then the
	 * data path costs one predictable branch per verb */
	struct vio_inflight *inf;
	/* dirty log (dirtylog.c); NULL: none, and then the data path costs
	 * one predictable branch per pop descriptor, push batch and event
	 * write */
	struct vio_vq_dlog *dlog;

	/* broken: sticky */
	bool is_broken;
	char err[192];
	struct vio_ratelimit rl;
};

/* Mark broken (first reason wins), log rate-limited, run cfg.broken. */
void vio_vq_bad(struct vio_vq *vq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), cold));

/* The one chain walker (chain.c).  The format code feeds it every ring
 * descriptor of a chain; it applies every rule and fills the segments. */
struct vio_walk {
	struct vio_vq *vq;
	struct vio_iov *iov;
	unsigned max_iov, n;
	unsigned nr_out, nr_in; /* segments */
	unsigned nd_out, nd_in; /* descriptors (<= queue size) */
	uint64_t out_len, in_len;
	unsigned hops; /* descriptors seen, direct and indirect */
	bool saw_indirect;
	bool saw_write;
	bool over;	    /* needs more than max_iov segments */
	uint64_t tail_addr; /* last non-empty writable descriptor */
	uint32_t tail_len;
	bool rec;      /* a dirty log is attached: record writable ranges */
	bool log_mode; /* re-walk of an indirect table at push: log, no iov */
};
void vio_walk_init(struct vio_walk *w, struct vio_vq *vq, struct vio_iov *iov,
		   unsigned max_iov);
/* One ring descriptor (flags in CPU order, split bits: NEXT, WRITE,
 * INDIRECT; for packed the caller maps its bits the same way).  Returns
 * 0 or -EIO (broken, reason recorded). */
int vio_walk_desc(struct vio_walk *w, uint64_t addr, uint32_t len,
		  uint16_t flags);
/* Fill *c from a finished walk: 1, or -E2BIG (legal, but more than
 * max_iov segments: see vio_vq_pop).  The chain is consumed either way. */
int vio_walk_finish(struct vio_walk *w, struct vio_chain *c, uint32_t head);

/*
 * The common chain without the walker: one ring descriptor, neither NEXT
 * nor INDIRECT, no dirty log, non-empty, in one region.  Fills *c and
 * iov[0] and returns true; false changes nothing and sends the caller to
 * the walker (which applies every rule and reports what is wrong).  Same
 * result as the walker for the chains it takes.
 */
static inline bool vio_walk_one(struct vio_vq *vq, struct vio_chain *c,
				struct vio_iov *iov, unsigned max_iov,
				uint64_t addr, uint32_t len, bool write,
				uint32_t head)
{
	if (vio_unlikely(len == 0 || max_iov == 0 || vq->dlog != NULL))
		return false;
	void *p = vio_memtable_ptr_hint(vq->mt, addr, len, &vq->mt_hint);
	if (vio_unlikely(p == NULL))
		return false;
	iov[0].base = p;
	iov[0].len = len;
	iov[0].cont = 0;
	c->head = head;
	c->out = iov;
	c->nr_out = c->nd_out = write ? 0 : 1;
	c->nr_in = c->nd_in = write ? 1 : 0;
	c->out_len = write ? 0 : len;
	c->in_len = write ? len : 0;
	c->in = write ? iov : iov + 1;
	return true;
}

/* split.c */
int vio_split_init_driver(struct vio_vq *vq);
int vio_split_init_device(struct vio_vq *vq);
int vio_split_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned out,
		  unsigned in, void *token);
bool vio_split_kick_prepare(struct vio_vq *vq);
void *vio_split_get(struct vio_vq *vq, uint32_t *len);
void vio_split_disable_cb(struct vio_vq *vq);
bool vio_split_enable_cb(struct vio_vq *vq, uint16_t delay);
bool vio_split_more_used(const struct vio_vq *vq);
void *vio_split_detach(struct vio_vq *vq);
int vio_split_pop(struct vio_vq *vq, struct vio_chain *c, struct vio_iov *iov,
		  unsigned max_iov);
int vio_split_pop_burst(struct vio_vq *vq, struct vio_chain *c,
			struct vio_iov *iov, unsigned n);
int vio_split_push(struct vio_vq *vq, const struct vio_used *u, unsigned n);
bool vio_split_call_prepare(struct vio_vq *vq);
void vio_split_park_event(struct vio_vq *vq);
void vio_split_set_notify(struct vio_vq *vq, bool enable);
bool vio_split_more_avail(struct vio_vq *vq);
bool vio_split_avail_at_least(struct vio_vq *vq, unsigned n);

/* packed.c */
int vio_packed_init_driver(struct vio_vq *vq);
int vio_packed_init_device(struct vio_vq *vq);
int vio_packed_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned out,
		   unsigned in, void *token);
bool vio_packed_kick_prepare(struct vio_vq *vq);
void *vio_packed_get(struct vio_vq *vq, uint32_t *len);
void vio_packed_disable_cb(struct vio_vq *vq);
bool vio_packed_enable_cb(struct vio_vq *vq, uint16_t delay);
bool vio_packed_more_used(const struct vio_vq *vq);
void *vio_packed_detach(struct vio_vq *vq);
int vio_packed_pop(struct vio_vq *vq, struct vio_chain *c, struct vio_iov *iov,
		   unsigned max_iov);
int vio_packed_pop_burst(struct vio_vq *vq, struct vio_chain *c,
			 struct vio_iov *iov, unsigned n);
int vio_packed_push(struct vio_vq *vq, const struct vio_used *u, unsigned n);
bool vio_packed_call_prepare(struct vio_vq *vq);
void vio_packed_set_notify(struct vio_vq *vq, bool enable);
bool vio_packed_more_avail(struct vio_vq *vq);
bool vio_packed_avail_at_least(struct vio_vq *vq, unsigned n);

/* split.c: walk the chain at head (a resubmitted one: inflight.c);
 * 1, -E2BIG or -EIO as vio_vq_pop.  unpop: see vio_vq_unpop. */
int vio_split_walk(struct vio_vq *vq, uint16_t head, struct vio_chain *c,
		   struct vio_iov *iov, unsigned max_iov);
int vio_split_unpop(struct vio_vq *vq, uint32_t head);
/* packed.c */
int vio_packed_unpop(struct vio_vq *vq, uint32_t head);

/* inflight.c: the verbs with a region attached (vq->inf), and the packed
 * pop's per-descriptor hook (the region keeps copies of packed
 * descriptors: used entries overwrite them in the ring). */
struct vio_inflight;
int vio_inflight_pop(struct vio_vq *vq, struct vio_chain *c,
		     struct vio_iov *iov, unsigned max_iov);
int vio_inflight_push(struct vio_vq *vq, const struct vio_used *u, unsigned n);
int vio_inflight_unpop(struct vio_vq *vq, uint32_t head);
bool vio_inflight_pending(const struct vio_vq *vq);
void vio_inflight_packed_desc(struct vio_vq *vq,
			      const struct vring_packed_desc *d,
			      uint16_t flags);
void vio_inflight_free(struct vio_vq *vq);

/* dirtylog.c: the log attached to a device queue (vq->dlog).  Records:
 * the writable ring descriptors and indirect tables of each popped chain,
 * by buffer id (split head, packed id), kept until the chain is pushed. */
struct vio_dlog_rec {
	uint64_t addr;
	uint32_t len;
	uint32_t next; /* bit 31: an indirect table; low bits: next rec */
};
struct vio_vq_dlog {
	uint8_t *bits;
	uint64_t size;
	bool ring;
	uint64_t dev_gpa, desc_gpa;
	uint64_t missed;
	uint32_t *first;	  /* [vq->size]: id -> first rec, or NONE */
	struct vio_dlog_rec *rec; /* [nrec] */
	uint32_t nrec, free_head, pending;
};
/* A walk (pop) saw a writable descriptor or an indirect table: record it
 * for the chain being walked.  0, or -EIO (queue broken). */
int vio_dlog_record(struct vio_vq *vq, uint64_t addr, uint32_t len,
		    bool indirect);
/* The walk finished: its records belong to buffer id. */
int vio_dlog_commit(struct vio_vq *vq, uint32_t id);
/* Push of buffer id: log what it recorded, forget it.  -EIO if an
 * indirect table became invalid (queue broken). */
int vio_dlog_buffer(struct vio_vq *vq, uint32_t id);
/* The device wrote [gpa, gpa+len) (a buffer). */
void vio_dlog_log(struct vio_vq *vq, uint64_t gpa, uint64_t len);
/* The device wrote [off, off+len) of its device area / descriptor ring. */
void vio_dlog_dev(struct vio_vq *vq, uint64_t off, uint64_t len);
void vio_dlog_desc(struct vio_vq *vq, uint64_t off, uint64_t len);
/* Free vq->dlog. */
void vio_dlog_free(struct vio_vq *vq);

/* The spec's event index test (2.7.7.2 / 2.8.10): true if event_idx lies
 * in [old, new_idx), all modulo 2^16. */
static inline bool vio_need_event(uint16_t event_idx, uint16_t new_idx,
				  uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

#endif
