/* SPDX-License-Identifier: MIT */
/*
 * vio/ring.h - the virtqueue: one type, split and packed formats behind it.
 *
 * A struct vio_vq is either the driver's end or the device's end of one
 * virtqueue.  The format (split or packed, VIRTIO 1.2 sections 2.7 and 2.8)
 * is chosen at creation from the negotiated VIRTIO_F_RING_PACKED and never
 * shows in this API.
 *
 * Driver side (the seed's five verbs):
 *
 *     vq = vio_vq_new_driver(&cfg, mem);         // ring + indirect pool in mem
 *     vio_vq_add(vq, sg, n_out, n_in, token);    // repeat to batch
 *     vio_vq_kick(vq);                           // publish + notify if needed
 *     while ((token = vio_vq_get(vq, &len)))     // harvest used buffers
 *         ...;
 *     if (!vio_vq_enable_cb(vq)) goto again;     // restart: closes the race
 *     while ((token = vio_vq_detach_unused(vq))) // shutdown
 *         ...;
 *
 * Device side:
 *
 *     vq = vio_vq_new_device(&cfg, &layout, memtable);
 *     while ((r = vio_vq_pop(vq, &chain, iov, max_iov)) > 0 || r == -E2BIG) {
 *         if (r == -E2BIG)                       // legal, longer than iov[]
 *             written = answer_error(&chain);    // the queue stays usable
 *         else
 *             ... read chain.out[], write chain.in[] (or struct vio_cursor)
 *         vio_vq_push(vq, chain.head, written);
 *     }
 *     vio_vq_call(vq);                           // notify the driver if needed
 *
 * Threading: one thread drives each end of a queue at a time; the two ends
 * may run on different threads (or processes) concurrently.
 *
 * Trust: each end treats everything the other writes to the ring as hostile.
 * A violation makes the queue broken: a sticky state, checked first by every
 * verb, reported once through cfg.broken and a rate-limited log line, never a
 * crash.  vio_vq_error() says what was wrong.
 */
#ifndef VIO_RING_H
#define VIO_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest queue size allowed by the spec (split: power of two). */
#define VIO_VQ_MAX_SIZE 32768u

struct vio_vq;
struct vio_mem;	     /* driver-side shared memory, vio/mem.h */
struct vio_memtable; /* device-side address translation, vio/mem.h */

/* A driver-side buffer segment: must lie in memory from the vq's vio_mem. */
struct vio_sg {
	void *buf;
	uint32_t len;
};

/*
 * Where the three ring areas live.  Pointers are in this process; addresses
 * are device addresses (what the driver writes into the transport).
 * split: desc = descriptor table, driver = avail ring, device = used ring.
 * packed: desc = descriptor ring, driver = driver event suppression,
 *         device = device event suppression.
 */
struct vio_vq_layout {
	void *desc, *driver, *device;
	uint64_t desc_addr, driver_addr, device_addr;
};

struct vio_vq;
typedef void vio_vq_fn(struct vio_vq *vq, void *opaque);

struct vio_vq_opts {
	uint16_t index;	       /* queue index on its device */
	uint16_t size;	       /* 1..32768; a power of two for split */
	bool packed;	       /* VIRTIO_F_RING_PACKED negotiated */
	bool event_idx;	       /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	       /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	uint16_t indirect_max; /* driver: entries per indirect table, 0 = 32 */
	/*
	 * notify: driver side, kick the device; device side, call (interrupt)
	 * the driver.  May be NULL (then the owner polls).
	 */
	vio_vq_fn *notify;
	/*
	 * callback: run by vio_vq_interrupt(); driver side, used buffers may
	 * be pending; device side, available buffers may be pending.
	 */
	vio_vq_fn *callback;
	/* broken: run once, when the queue becomes broken.  May be NULL. */
	vio_vq_fn *broken;
	void *opaque;
	const char *name; /* for log lines; copied */
};

/* Bytes and alignment of a ring of this size and format, all three areas
 * laid out in one block (see vio_vq_layout_at). */
size_t vio_vq_ring_bytes(uint16_t size, bool packed);
/* Fill *out for a block at (base, addr) of vio_vq_ring_bytes() bytes. */
void vio_vq_layout_at(uint16_t size, bool packed, void *base, uint64_t addr,
		      struct vio_vq_layout *out);

/* ---- driver side ---- */

/* Allocate the ring and the indirect pool from mem; NULL with errno set. */
struct vio_vq *vio_vq_new_driver(const struct vio_vq_opts *cfg,
				 struct vio_mem *mem);
/*
 * Add one buffer: out readable segments then in writable ones.  token must
 * not be NULL; it comes back from vio_vq_get() or vio_vq_detach_unused().
 * Returns 0, -ENOSPC (ring full), -EINVAL (bad arguments), -EFAULT (a
 * segment outside the vio_mem), -EIO (broken).  The buffer is not visible
 * to the device until vio_vq_kick_prepare()/vio_vq_kick().
 */
VIO_MUST_CHECK int vio_vq_add(struct vio_vq *vq, const struct vio_sg *sg,
			      unsigned out, unsigned in, void *token);
/* Publish added buffers; true if the device wants a notification. */
bool vio_vq_kick_prepare(struct vio_vq *vq);
/* Notify the device (cfg.notify) unconditionally. */
void vio_vq_notify(struct vio_vq *vq);
/* kick_prepare + notify when needed; returns whether it notified. */
bool vio_vq_kick(struct vio_vq *vq);
/* Next used buffer's token and written length, or NULL (none, or broken). */
void *vio_vq_get(struct vio_vq *vq, uint32_t *len);
/* Ask the device not to interrupt (a hint). */
void vio_vq_disable_cb(struct vio_vq *vq);
/* Ask for interrupts again; false if used buffers are already pending (the
 * caller must process them and try again: the seed's restart). */
bool vio_vq_enable_cb(struct vio_vq *vq);
/* Like enable_cb, but with EVENT_IDX ask only after ~3/4 of in-flight. */
bool vio_vq_enable_cb_delayed(struct vio_vq *vq);
/* True if a used buffer is pending. */
bool vio_vq_more_used(const struct vio_vq *vq);
/* Take back one buffer the device never used (after reset): its token, or
 * NULL when none is left.  The seed's shutdown. */
void *vio_vq_detach_unused(struct vio_vq *vq);
/* Free descriptors. */
unsigned vio_vq_num_free(const struct vio_vq *vq);

/* ---- device side ---- */

/*
 * Attach to a ring whose areas the transport has translated and checked
 * to lie in mapped memory (vio_vq_ring_bytes per area).  Buffers are
 * translated through mt, which must outlive the queue.  Layout pointers
 * must be suitably aligned (16 for desc, 2/4 per spec): else NULL, EINVAL.
 * cfg.indirect is the negotiated feature: indirect descriptors without it
 * are a violation.  next_avail (split: avail index; packed: index | wrap
 * counter << 15) lets a transport resume a ring (vhost-user SET_VRING_BASE).
 */
struct vio_vq *vio_vq_new_device(const struct vio_vq_opts *cfg,
				 const struct vio_vq_layout *layout,
				 const struct vio_memtable *mt);
void vio_vq_set_base(struct vio_vq *vq, uint16_t next_avail);
uint16_t vio_vq_get_base(const struct vio_vq *vq);

/*
 * One available chain, popped and validated.  out[] are the readable
 * segments, in[] the writable ones; both point into the caller's iov array.
 * head is opaque: give it back to vio_vq_push().
 *
 * Segments are not descriptors: a descriptor whose bytes cross a boundary
 * between memory regions (adjacent in device address space) becomes one
 * segment per region it touches, the later ones marked cont.  nd_out and
 * nd_in count the buffer descriptors themselves (an indirect table's
 * pointer descriptor not included; a zero-length descriptor counts but
 * gives no segment).  Limits the spec states per descriptor ("segment" in
 * VIRTIO's words: blk's seg_max and size_max) are checked per descriptor.
 */
struct vio_chain {
	uint32_t head;
	uint16_t nr_out, nr_in; /* segments */
	uint16_t nd_out, nd_in; /* descriptors */
	uint32_t out_len, in_len;
	struct vio_iov *out, *in;
};

/*
 * Sizing max_iov.  vio_vq_iov_max(qsize) is enough for every legal chain
 * on a queue of qsize but the most contrived: one segment per descriptor
 * (a chain has at most qsize, 2.7.5.3.1) and as many again for region
 * crossings, at least VIO_CHAIN_CROSSINGS, capped at what nr_out + nr_in
 * can count.  Only a chain whose descriptors together cross more region
 * boundaries than that needs more (a driver's memory would have to be cut
 * into many small regions and its buffers laid across them).
 *
 * A device may offer less: the number of descriptors it accepts per
 * request (what it advertised, e.g. blk's seg_max + 2) plus room for
 * crossings.  A legal chain that needs more segments than max_iov does
 * not break the queue: vio_vq_pop() returns -E2BIG for it and the device
 * answers it with an error (below).  Too small a max_iov only turns
 * requests the device could have served into errors.
 */
#define VIO_CHAIN_CROSSINGS 1024u
static inline unsigned vio_vq_iov_max(uint16_t qsize)
{
	unsigned extra =
	    qsize > VIO_CHAIN_CROSSINGS ? qsize : VIO_CHAIN_CROSSINGS;
	unsigned n = (unsigned)qsize + extra;
	return n > UINT16_MAX ? UINT16_MAX : n;
}

/*
 * Pop the next available chain.  Returns 1 (chain filled), 0 (nothing
 * available), -EIO (the queue is broken: this call or before), or -E2BIG.
 * Every chain is checked against every rule in DESIGN.md "The peer is
 * untrusted" before it is returned; a violation anywhere in it (also
 * beyond max_iov segments) is -EIO.  The device checks its own
 * per-descriptor limits (e.g. seg_max) on nd_* and cont.
 *
 * -E2BIG: a legal chain that needs more than max_iov segments ("too many
 * segments").  It was consumed from the ring and the queue is not broken:
 * the device owes the driver this chain like any other and must push
 * c->head back (with an error status if its type has one) before the
 * driver can reuse the buffer.  Filled: head, nd_out, nd_in, out_len,
 * in_len; nr_out is 0; in[0..nr_in) cover the end of the writable area,
 * the chain's last non-empty writable descriptor (only its last byte if
 * that descriptor alone needs more than max_iov segments; nr_in 0 when
 * the chain has no writable byte or max_iov is 0), so a device whose
 * status is the chain's last byte (blk's) can still write it.
 * The used length a device pushes is its own call; vio's blk pushes 1 (the
 * IOERR status byte), rng 0.  How to size max_iov: above.
 */
VIO_MUST_CHECK int vio_vq_pop(struct vio_vq *vq, struct vio_chain *c,
			      struct vio_iov *iov, unsigned max_iov);
/*
 * Pop up to n chains of the commonest kind at once: one descriptor each
 * (no NEXT, no INDIRECT), non-empty, in one memory region.  Chain k is
 * c[k], its one segment iov[k] (out or in, by the descriptor's WRITE).
 * Stops at the first chain that is not of that kind or not available and
 * leaves it in the ring: returns how many it popped (0..n), or -EIO (the
 * queue is broken).  The caller pops the next one with vio_vq_pop(),
 * which takes every chain and also tells an empty ring apart (and
 * re-arms notifications then: a burst does not).  A chain popped here is
 * one vio_vq_pop() would have returned the same way: push and unpop take
 * it alike.  Queues with an in-flight region or a dirty log: always 0
 * (vio_vq_pop keeps their records).
 */
VIO_MUST_CHECK int vio_vq_pop_burst(struct vio_vq *vq, struct vio_chain *c,
				    struct vio_iov *iov, unsigned n);
/* Return one chain as used, len bytes written.  0 or -EIO / -EINVAL. */
int vio_vq_push(struct vio_vq *vq, uint32_t head, uint32_t len);
struct vio_used {
	uint32_t head;
	uint32_t len;
};
/* Return n chains at once: one index update (split) / first flags last
 * (packed). */
int vio_vq_push_batch(struct vio_vq *vq, const struct vio_used *u, unsigned n);
/* True if the driver wants an interrupt for what was pushed since the last
 * call_prepare (EVENT_IDX or flags).  Resets the tracking. */
bool vio_vq_call_prepare(struct vio_vq *vq);
/* call_prepare + cfg.notify when needed; returns whether it notified. */
bool vio_vq_call(struct vio_vq *vq);
/* Ask the driver not to kick (busy polling); a hint. */
void vio_vq_disable_notify(struct vio_vq *vq);
/* Ask for kicks again; false if chains are already available.  While the
 * queue is polled (below) only the second part: it asks for nothing. */
bool vio_vq_enable_notify(struct vio_vq *vq);
/* Busy polling, by whoever runs the queue (the engine's worker): on turns
 * notifications off and keeps them off through the device's own
 * enable/disable pairs (a device re-arms when it finds the ring empty,
 * which under a polling loop would only make the driver pay a system call
 * per kick); off turns them back on (vio_vq_enable_notify's answer). */
bool vio_vq_set_polled(struct vio_vq *vq, bool on);
/* True if a chain is available (may break the queue on a bad index). */
bool vio_vq_more_avail(struct vio_vq *vq);
/* True if at least n ring entries are available (n capped at the queue
 * size): split counts chains (available ring entries), packed counts
 * descriptors (each of a chain's, one for an indirect table), with one
 * load, the n-th one's flags (the driver makes them available in ring
 * order); recovered in-flight chains make it true.  For a device that
 * waits for a full batch (vio_net_device_opts.tx_wait_ns). */
bool vio_vq_avail_at_least(struct vio_vq *vq, unsigned n);

/*
 * Hand back the most recently popped chain (head as pop gave it): the
 * device did not use it, and the next pop (or the next owner of the ring,
 * through vio_vq_get_base) sees it again.  Last in, first out: head must
 * be the latest chain popped that was neither pushed nor handed back, and
 * every chain popped after it must have been handed back already (a
 * receive queue that holds buffers in the order it popped them gives
 * them back, newest first, at a stop).  With an in-flight region its
 * mark is cleared.  0, -EINVAL (not the latest chain), -EIO (broken).
 */
int vio_vq_unpop(struct vio_vq *vq, uint32_t head);

/*
 * In-flight tracking (vhost-user INFLIGHT_SHMFD, QEMU's
 * docs/interop/vhost-user.rst "Inflight I/O tracking"): a device-side
 * queue mirrors what it owes the driver into a region of shared memory
 * that outlives the process, in that document's layout (QueueRegionSplit
 * or QueueRegionPacked, native byte order).  Every pop marks its chain in
 * flight with a counter, every push clears the marks, in an order that
 * keeps the region recoverable at any instant the process may die.
 *
 * vio_inflight_queue_bytes: bytes of one queue's region for a ring of
 * size entries and that format (64-byte multiple); 0 if size is 0 or
 * above VIO_VQ_MAX_SIZE.
 *
 * vio_vq_set_inflight: attach region (8-byte aligned, at least
 * vio_inflight_queue_bytes(size, packed) bytes, not owned: it must stay
 * mapped until the vq is freed or detached) before the first pop, after
 * vio_vq_set_base.  region NULL detaches.  Without resume, or when the
 * region was never initialised (version 0), it is initialised for this
 * ring's current position.  With resume and an initialised region it
 * holds a previous owner's state (a backend that died): it is repaired
 * as the document says (split: last_batch_head; packed: the old_* roll
 * back or commit), the ring position is set from it (split: used_idx +
 * chains in flight; packed: used_idx + their ring slots), and the next
 * pops return the chains that were in flight, by counter, each once,
 * before any new chain.  0; -EINVAL if the region contradicts the ring
 * (size, version, indices, links; logged, nothing attached); -EBUSY if
 * one is attached; -ENOMEM.  Cost without a region: one predictable
 * branch per pop, push and more_avail (and per packed descriptor).
 */
size_t vio_inflight_queue_bytes(uint16_t size, bool packed);
VIO_MUST_CHECK int vio_vq_set_inflight(struct vio_vq *vq, void *region,
				       bool resume);
/* Chains found in flight by the last vio_vq_set_inflight (resubmitted or
 * still to be). */
unsigned vio_vq_inflight_recovered(const struct vio_vq *vq);

/* ---- both sides ---- */

/* Transport entry: the peer notified us; runs cfg.callback. */
void vio_vq_interrupt(struct vio_vq *vq);
/* Mark broken from outside (e.g. the transport saw a bad message). */
void vio_vq_set_broken(struct vio_vq *vq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool vio_vq_broken(const struct vio_vq *vq);
/* What broke the queue, or "" if it is not broken. */
const char *vio_vq_error(const struct vio_vq *vq);
uint16_t vio_vq_size(const struct vio_vq *vq);
uint16_t vio_vq_index(const struct vio_vq *vq);
bool vio_vq_is_packed(const struct vio_vq *vq);
void *vio_vq_opaque(const struct vio_vq *vq);
void vio_vq_get_layout(const struct vio_vq *vq, struct vio_vq_layout *out);
void vio_vq_free(struct vio_vq *vq);

/* ---- bounded cursors over a popped chain (device side) ---- */

struct vio_cursor {
	const struct vio_iov *iov;
	unsigned n, i;
	uint32_t off; /* offset in iov[i] */
	size_t left;  /* bytes left in the whole cursor */
};
void vio_cursor_init(struct vio_cursor *cur, const struct vio_iov *iov,
		     unsigned n);
/* Copy up to len bytes; returns bytes copied (short at the end). */
size_t vio_cursor_read(struct vio_cursor *cur, void *dst, size_t len);
size_t vio_cursor_write(struct vio_cursor *cur, const void *src, size_t len);
/* Advance without copying; returns bytes skipped. */
size_t vio_cursor_skip(struct vio_cursor *cur, size_t len);

#ifdef __cplusplus
}
#endif
#endif
