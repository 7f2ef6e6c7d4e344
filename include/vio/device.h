/* SPDX-License-Identifier: MIT */
/*
 * vio/device.h - the device side of the virtio model, and what both sides
 * share: feature sets, the status state machine.
 *
 * A struct vio_device is a virtio device implementation: its identity, the
 * features it offers, its config space, its queues and its status byte.
 * A device type (rng, blk, ...) fills a struct vio_device_opts with its ops;
 * a transport (inproc, vhost-user backend) feeds the driver's actions in
 * (vio_device_set_status, vio_device_set_features, vio_device_queue_*) and gets
 * the device's notifications out through struct vio_device_transport.
 *
 *     dev = vio_device_new(&cfg);                 // device type
 *     vio_device_attach(dev, &hooks, t);          // transport
 *     ... transport calls vio_device_set_status(dev, ...) etc.
 *     ... transport calls vio_device_kick(dev, i) on each kick
 *     vio_device_free(dev);
 *
 * Threads.  The library owns no thread; the transport calls the ops and
 * promises this (vio/vhost_user.h, vio/inproc.h, vio/run.h say how):
 *
 * - Control ops (status, reset, config_writable, config_write) run on the
 *   control thread, one at a time: over vhost-user the thread that calls
 *   vio_backend_dispatch() (and vio_backend_free()'s caller); over inproc
 *   the driver's thread, the caller of the vdev's functions (vio/driver.h).
 * - kick(dev, idx, vq) runs on the thread serving queue idx, and so do
 *   ops->queue_start, ops->queue_stop and the callbacks the device added
 *   to that queue's loop.  vhost-user: the worker that the backend's
 *   queue_start hook gave that queue; with vio/run.h, a worker serves a
 *   group of queues (vio serve --threads), so kicks of queues in
 *   different groups run at the same time on different threads, and
 *   queues of one group take turns on one thread.  A worker outlives a
 *   queue's stop and start and a kick fd change.  inproc: the thread that
 *   calls vio_inproc_device_poll(), every queue in turn, with no loop.
 *   Kicks of one queue never overlap.
 * - What overlaps.  vhost-user: reset, and every status change but the
 *   driver's FAILED, run while no worker runs (the backend stops them
 *   all first); DRIVER_OK comes before any worker starts.  FAILED,
 *   config_writable and config_write may run while any queue's kick runs:
 *   a config field a kick reads needs atomic access or the device's own
 *   lock.  inproc: all ops of a device run under the transport's one lock,
 *   never two at once.
 * - From queue i's kick a device uses queue i's vq only.  Another queue's
 *   vq belongs to that queue's thread, and the control thread frees it when
 *   that queue stops (stopping its worker, not queue i's).  State shared
 *   by queues (counters, a backend connection) needs the device's own
 *   locking.  Safe from any thread: vio_device_config_read,
 *   vio_device_config_update, vio_device_get_status, vio_device_needs_reset,
 *   vio_device_opaque, and vio_device_has_feature (fixed while queues run).
 * - Chains held across kicks (asynchronous completion, receive buffers
 *   waiting for data) are allowed when the queue has a loop: the device
 *   completes them from its loop callbacks, and ops->queue_stop completes
 *   or hands back (vio_vq_unpop) every held chain, so the ring position a
 *   vhost-user backend hands to the frontend at a stop is exact.  Without
 *   a loop (queue_start got NULL) a kick pushes every chain it popped
 *   before it returns.
 * - ops->reset may come several times per connection, with no queue and
 *   no status change in between: vio_drvdev_connect resets first, a
 *   vhost-user SET_FEATURES, SET_STATUS 0, RESET_DEVICE and the end of a
 *   connection each reset.  Every queue is already freed; a reset of a
 *   device that is already reset must be harmless.
 * - The transport's hooks (struct vio_device_transport) run on the thread
 *   that caused them: call and queue_broken on the kick's thread,
 *   needs_reset on the caller of vio_device_needs_reset.
 */
#ifndef VIO_DEVICE_H
#define VIO_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_config.h>
#include <vio/mem.h>
#include <vio/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- features: at least 128 bits; F_ constants are bit numbers ---- */

#define VIO_FEATURE_BITS 128u
struct vio_features {
	uint64_t w[VIO_FEATURE_BITS / 64];
};
static inline bool vio_features_has(const struct vio_features *f, unsigned bit)
{
	return bit < VIO_FEATURE_BITS && (f->w[bit / 64] >> (bit % 64)) & 1;
}
static inline void vio_features_set(struct vio_features *f, unsigned bit)
{
	if (bit < VIO_FEATURE_BITS)
		f->w[bit / 64] |= 1ull << (bit % 64);
}
static inline void vio_features_clear(struct vio_features *f, unsigned bit)
{
	if (bit < VIO_FEATURE_BITS)
		f->w[bit / 64] &= ~(1ull << (bit % 64));
}
/* true if every bit of a is in b */
bool vio_features_subset(const struct vio_features *a,
			 const struct vio_features *b);
void vio_features_and(struct vio_features *dst, const struct vio_features *a,
		      const struct vio_features *b);
/* Build a set from a list of bit numbers. */
struct vio_features vio_features_from(const unsigned *bits, unsigned n);

/* ---- status ---- */

/*
 * The one transition function (both sides).  Legal: anything -> 0 (reset);
 * adding exactly the next bit of ACKNOWLEDGE, DRIVER, FEATURES_OK,
 * DRIVER_OK in that order; adding FAILED at any time; adding
 * DEVICE_NEEDS_RESET (device only, by_device true).  Bits are never
 * cleared except by reset.  Returns true if old -> new is legal.
 */
bool vio_status_legal(uint8_t old, uint8_t new_status, bool by_device);
/* "ACKNOWLEDGE|DRIVER|..." into buf; returns buf. */
const char *vio_status_str(uint8_t status, char *buf, size_t len);

/* ---- the event loop a queue runs on (the device engine, vio/run.h) ---- */

/*
 * A loop is one thread's wait over event sources: the kick fds of the
 * queues it serves, the devices' own fds and timers, its control fd.
 * A device gets the loop of a queue in ops->queue_start and adds its own
 * sources to it (io_uring's completion eventfd, a tap fd, a socket).
 * Callbacks run on the loop's thread, the thread of that queue's kicks,
 * never concurrently with them: a callback may pop and push on the queue
 * like a kick does.  Callbacks must not block.  Every function of a loop
 * is called from the loop's own thread (a device's queue_start, kick,
 * callback, queue_stop), never from another.
 *
 * Busy-poll: a loop in busy-poll mode does not sleep.  It calls the
 * queue's kick, and every callback added with VIO_LOOP_POLL, on each turn
 * whether or not its fd is readable: such a callback checks memory (a
 * ring's completion queue) and returns when nothing is ready.  Other fds
 * are polled without blocking every few turns.
 */
struct vio_loop;
typedef void vio_loop_fn(void *arg);

enum {
	/* fn may be called on every busy-poll turn without the fd being
	 * readable (it checks memory, not the fd) */
	VIO_LOOP_POLL = 1u << 0,
};

struct vio_loop {
	/* Watch fd for readability: fn(arg) runs on this loop's thread while
	 * it is readable (level-triggered: read or drain it).  0 or
	 * negative errno. */
	int (*add_fd)(struct vio_loop *l, int fd, unsigned flags,
		      vio_loop_fn *fn, void *arg);
	/* Stop watching fd (before closing it). */
	void (*del_fd)(struct vio_loop *l, int fd);
	/* Run fn(arg) once, ns nanoseconds from now (0: on the next turn,
	 * before sleeping); a timer with the same fn and arg is replaced.
	 * 0 or negative errno. */
	int (*set_timer)(struct vio_loop *l, uint64_t ns, vio_loop_fn *fn,
			 void *arg);
	/* Cancel a pending timer of fn and arg (none: no effect). */
	void (*cancel_timer)(struct vio_loop *l, vio_loop_fn *fn, void *arg);
	void *priv; /* the loop implementation's */
};

/* ---- the device ---- */

#define VIO_CONFIG_MAX 256u
#define VIO_MAX_QUEUES 64u

struct vio_device;

struct vio_device_ops {
	/* Status changed (after the transition was accepted).  DRIVER_OK is
	 * where a type starts its queues.  Return <0 to refuse (-> FAILED is
	 * not set; the transition is undone and the error returned). */
	int (*status)(struct vio_device *dev, uint8_t old, uint8_t new_status);
	/* Reset: every queue is already freed; drop in-flight state.  Comes
	 * several times per connection, also with nothing to drop (see
	 * Threads above). */
	void (*reset)(struct vio_device *dev);
	/* The driver wrote config bytes (already stored).  May be NULL. */
	void (*config_write)(struct vio_device *dev, unsigned off,
			     unsigned len);
	/*
	 * May the driver write these len bytes (buf) at off of the config
	 * space, with the features negotiated now?  Asked before anything is
	 * stored; false refuses the whole write (logged by the model).  NULL:
	 * the config space is read-only to the driver.  Each device type
	 * names its writable fields (blk: writeback, with CONFIG_WCE).
	 */
	bool (*config_writable)(struct vio_device *dev, unsigned off,
				const void *buf, unsigned len);
	/*
	 * Queue idx has available buffers (a kick, or the transport polls).
	 * Must return after a bounded amount of work (one batch, at most a
	 * ring's worth of chains) even while the driver keeps adding: the
	 * transport stops queues only between kicks.  Return true when it
	 * stopped at that bound with work left (notifications still
	 * disabled): vio_device_kick() returns it and the caller calls again.
	 * Return false otherwise, including when buffers stay available on
	 * purpose (a receive queue's buffers wait for data): the next kick
	 * or the device's own event brings it back.
	 */
	bool (*kick)(struct vio_device *dev, unsigned idx, struct vio_vq *vq);
	/*
	 * Queue idx starts running on loop (the event loop of the thread
	 * that will run its kicks; see struct vio_loop), after the vq was
	 * created and before its first kick, on that thread.  loop is NULL
	 * when the queue's caller has no event loop (inproc, or a
	 * vhost-user backend driven by the application's own threads): the
	 * device then completes every request within the kick that popped
	 * it.  Return 0, or negative errno to refuse (the queue does not
	 * start).  May be NULL.
	 */
	int (*queue_start)(struct vio_device *dev, unsigned idx,
			   struct vio_vq *vq, struct vio_loop *loop);
	/*
	 * Queue idx stops (a GET_VRING_BASE, a memory table change, a
	 * reset, the end of a connection), on the queue's thread, before the
	 * vq is freed.  Return only when the device holds no chain popped
	 * from vq: each is pushed (its work completed first, in bounded
	 * time) or handed back with vio_vq_unpop().  Remove the fds and
	 * timers added to the loop.  May be NULL (a device that never holds
	 * a chain after its kick returns).
	 */
	void (*queue_stop)(struct vio_device *dev, unsigned idx,
			   struct vio_vq *vq);
	/*
	 * Device state transfer (docs/device-state.md): the device type's
	 * section of a state blob.  state_save writes at most cap bytes of
	 * it into buf (control thread, no queue running) and returns its
	 * length or negative errno.  state_load gets a section a peer saved
	 * (hostile input: its length is exactly len, nothing else is
	 * checked), with the features negotiated; it validates all of it
	 * before changing anything, applies it, and returns 0, or negative
	 * errno with a one-line reason in why.  Both NULL: the type has no
	 * state of its own (its section is empty).
	 */
	int (*state_save)(struct vio_device *dev, void *buf, size_t cap);
	int (*state_load)(struct vio_device *dev, const void *buf, size_t len,
			  char *why, size_t whylen);
};

/* What a transport provides to a device. */
struct vio_device_transport {
	/* interrupt the driver for queue idx */
	void (*call)(void *t, unsigned idx);
	/* config space changed (device side update) */
	void (*config_changed)(void *t);
	/* the device needs a reset (status got DEVICE_NEEDS_RESET) */
	void (*needs_reset)(void *t);
	/* queue idx broke (a protocol violation, why says which); the
	 * device needs a reset too.  May be NULL. */
	void (*queue_broken)(void *t, unsigned idx, const char *why);
};

struct vio_device_opts {
	const char *name;
	uint32_t device_id, vendor_id;
	struct vio_features features; /* offered; VERSION_1 is added */
	unsigned num_queues;	      /* 1..VIO_MAX_QUEUES */
	uint16_t queue_max_size;      /* per queue, 1..32768 */
	const void *config;	      /* initial config space, copied */
	unsigned config_size;	      /* <= VIO_CONFIG_MAX */
	const struct vio_device_ops *ops;
	void *opaque;
};

struct vio_device *vio_device_new(const struct vio_device_opts *cfg);
void vio_device_free(struct vio_device *dev);
void vio_device_attach(struct vio_device *dev,
		       const struct vio_device_transport *t, void *opaque);
void *vio_device_opaque(const struct vio_device *dev);
const char *vio_device_name(const struct vio_device *dev);
uint32_t vio_device_device_id(const struct vio_device *dev);
uint32_t vio_device_vendor_id(const struct vio_device *dev);
unsigned vio_device_num_queues(const struct vio_device *dev);

uint8_t vio_device_get_status(const struct vio_device *dev);
/* The driver writes status: checked by vio_status_legal; 0 resets the
 * device (queues freed, features cleared).  FEATURES_OK is refused
 * (-EINVAL, bit not kept) if the acked features are not a subset of the
 * offered ones or lack VERSION_1.  Returns 0 or negative errno. */
VIO_MUST_CHECK int vio_device_set_status(struct vio_device *dev,
					 uint8_t status);
/* The device itself needs a reset: sets DEVICE_NEEDS_RESET, tells the
 * transport.  reason goes to the (rate-limited) log. */
void vio_device_needs_reset(struct vio_device *dev, const char *reason);

void vio_device_offered(const struct vio_device *dev, struct vio_features *out);
/* The driver acks features: only in state DRIVER (before FEATURES_OK). */
VIO_MUST_CHECK int vio_device_set_features(struct vio_device *dev,
					   const struct vio_features *f);
void vio_device_negotiated(const struct vio_device *dev,
			   struct vio_features *out);
bool vio_device_has_feature(const struct vio_device *dev, unsigned bit);

/* Config space.  Reads/writes past config_size fail with -EINVAL. */
unsigned vio_device_config_size(const struct vio_device *dev);
int vio_device_config_read(const struct vio_device *dev, unsigned off,
			   void *buf, unsigned len);
/* From the driver: stored, then ops->config_write. */
int vio_device_config_write(struct vio_device *dev, unsigned off,
			    const void *buf, unsigned len);
/* From the device type: stored, generation bumped, transport told. */
int vio_device_config_update(struct vio_device *dev, unsigned off,
			     const void *buf, unsigned len);
uint32_t vio_device_config_generation(const struct vio_device *dev);

/* Queues (config_queue on the device side). */
int vio_device_queue_max_size(const struct vio_device *dev, unsigned idx);
/* Set size and ring location (pointers already translated by the
 * transport and checked with vio_vq_ring_bytes), before enable. */
int vio_device_queue_setup(struct vio_device *dev, unsigned idx, uint16_t size,
			   const struct vio_vq_layout *layout,
			   const struct vio_memtable *mt);
/* Set the next avail index/wrap to resume at (before enable). */
int vio_device_queue_set_base(struct vio_device *dev, unsigned idx,
			      uint16_t base);
/* Create (enable) or free (disable) the vq; creation uses the negotiated
 * features.  Returns 0 or negative errno. */
int vio_device_queue_enable(struct vio_device *dev, unsigned idx, bool enable);
/* The live vq of queue idx, or NULL if not enabled. */
struct vio_vq *vio_device_queue(const struct vio_device *dev, unsigned idx);
/* Transport: the driver kicked queue idx.  Ignored unless DRIVER_OK and
 * the queue is enabled and not broken.  Returns true when the device
 * stopped at its batch bound with work left (ops->kick said so): call
 * again, after checking whether the queue must stop. */
bool vio_device_kick(struct vio_device *dev, unsigned idx);
/* Transport or runner, on the thread that will run queue idx's kicks,
 * after vio_device_queue_enable(true): ops->queue_start with loop (NULL
 * when there is none).  0 or the device's negative errno. */
int vio_device_queue_start(struct vio_device *dev, unsigned idx,
			   struct vio_loop *loop);
/* The same thread, before vio_device_queue_enable(false): ops->queue_stop
 * (the device completes or hands back every chain it holds).  A queue
 * that was never started is not stopped; harmless twice. */
void vio_device_queue_stop(struct vio_device *dev, unsigned idx);

/* ---- device state transfer (docs/device-state.md) ---- */

/* The largest state blob, header included. */
#define VIO_DEVICE_STATE_MAX 16384u
/*
 * Save the device's state (the features negotiated and the device type's
 * section) into buf, at most cap bytes: its length, or -EAGAIN (the
 * features are not negotiated: status lacks FEATURES_OK), -ENOSPC, or
 * the type's error.  Control thread, no queue running.
 */
int vio_device_state_save(struct vio_device *dev, void *buf, size_t cap);
/*
 * Load a blob another device saved (hostile input: every field checked:
 * magic, format version, header size, device id, lengths, the features
 * equal to those negotiated here, then the type's section).  The device
 * is changed only when all of it is valid.  0, or negative errno with a
 * one-line reason in why: -EAGAIN (no features negotiated yet: load
 * after FEATURES_OK), -EINVAL (malformed), -EPROTONOSUPPORT (a format
 * version this vio does not know), -ENODEV (another device type),
 * -EMSGSIZE (larger than VIO_DEVICE_STATE_MAX), the type's errors.
 */
VIO_MUST_CHECK int vio_device_state_load(struct vio_device *dev,
					 const void *buf, size_t len, char *why,
					 size_t whylen);
/*
 * Check what of a blob can be checked before the features are
 * negotiated, changing nothing: everything vio_device_state_load checks
 * except the features' equality to the negotiated ones and the type's
 * section (which may depend on them); the blob's features must be ones
 * this device offers, VERSION_1 among them.  A transport that gets a
 * state before FEATURES_OK (QEMU's incoming migration) keeps a blob
 * that passes and loads it at FEATURES_OK.  0, or negative errno with a
 * one-line reason in why (the errors of vio_device_state_load).
 */
VIO_MUST_CHECK int vio_device_state_check(const struct vio_device *dev,
					  const void *buf, size_t len,
					  char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
