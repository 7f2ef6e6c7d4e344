/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend: the device side of docs/interop/vhost-user.rst,
 * serving one struct vio_device.
 *
 * Every message goes through vio_vu_recv() (size, fd count and version
 * checked against the request table before a handler runs), then through
 * the handler table below, which bounds every index and count.  A handler
 * error or a bad message ends the connection with one log line; the
 * backend then serves the next connection.
 *
 * A queue runs (has a worker) when it has a size, addresses and a kick fd,
 * features were set, and it is enabled (with VHOST_USER_F_PROTOCOL_FEATURES
 * rings start disabled until SET_VRING_ENABLE; without it a kick fd
 * enables them); with the STATUS protocol feature it also waits for the
 * driver's DRIVER_OK (VIRTIO 1.x 3.1.1: no buffers are used before it).
 * Anything that changes a running queue's rings or the guest memory
 * first stops the queue (its worker runs the device's queue_stop, which
 * completes what the device holds), then starts it again.  A new kick fd
 * goes to the running worker when the hooks can swap it (queue_kick_fd,
 * vio/run.h does); else the queue is stopped and started.  The call and
 * error fds are swapped under the queue's fd lock while the worker runs:
 * QEMU replaces the call fd on every MSI-X mask and unmask.
 *
 * Every fd the frontend hands us for a queue must be an eventfd, and is
 * made non-blocking: a full or hung-up fd never stalls a worker or the
 * control thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/vhost-user/backend_internal.h"

/* ---- device transport hooks ---- */

/* Signal one of queue idx's eventfds (*pick(q)).  Non-blocking: a full
 * eventfd (EAGAIN) already has a pending signal. */
static void signal_queue_fd(struct vio_backend *b, unsigned idx, bool err)
{
	if (idx >= b->nq)
		return;
	struct vu_queue *q = &b->q[idx];
	uint64_t one = 1;
	pthread_mutex_lock(&q->fd_lock);
	int fd = err ? q->err_fd : q->call_fd;
	int e = fd >= 0 && write(fd, &one, sizeof(one)) < 0 ? errno : 0;
	pthread_mutex_unlock(&q->fd_lock);
	if (e && e != EAGAIN)
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: %s fd of queue "
				"%u: %s",
				b->conns, err ? "error" : "call", idx,
				strerror(e));
}

static void hook_call(void *t, unsigned idx)
{
	signal_queue_fd(t, idx, false);
}

static void hook_needs_reset(void *t)
{
	(void)t; /* the frontend learns it from GET_STATUS */
}

/* A queue broke: the model sets DEVICE_NEEDS_RESET; tell the frontend
 * through the queue's error fd (SET_VRING_ERR), and the log which queue
 * and why.  (There is no backend-to-frontend channel yet.) */
static void hook_queue_broken(void *t, unsigned idx, const char *why)
{
	struct vio_backend *b = t;
	bool has_err = false;
	if (idx < b->nq) { /* the control thread may be swapping it */
		pthread_mutex_lock(&b->q[idx].fd_lock);
		has_err = b->q[idx].err_fd >= 0;
		pthread_mutex_unlock(&b->q[idx].fd_lock);
	}
	/* logged before the signal: whoever the signal wakes finds the line */
	vio_log_limited(
	    &b->rl,
	    "vhost-user: connection %lu: queue %u broken: %s (device needs "
	    "reset%s)",
	    b->conns, idx, why,
	    has_err ? "; error fd signalled" : "; no error fd");
	signal_queue_fd(b, idx, true);
}

const struct vio_device_transport vio_vu_backend_hooks = {
    .call = hook_call,
    .needs_reset = hook_needs_reset,
    .queue_broken = hook_queue_broken,
    .config_changed = vio_vu_backend_config_changed, /* backend_req.c */
};

/* ---- queues ---- */

/* Status writes that cannot fail for the value written (reset, FAILED). */
static void set_status_quiet(struct vio_device *dev, uint8_t s)
{
	if (vio_device_set_status(dev, s))
		vio_log_warn("vhost-user: status 0x%x refused", s);
}

void vio_vu_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void queue_stop(struct vio_backend *b, unsigned idx)
{
	struct vu_queue *q = &b->q[idx];
	if (!q->running)
		return;
	if (b->cfg.queue_stop)
		b->cfg.queue_stop(b->cfg.opaque, q->worker);
	q->worker = NULL;
	struct vio_vq *vq = vio_device_queue(b->dev, idx);
	if (vq) {
		uint16_t base = vio_vq_get_base(vq);
		/* packed: avail state low 16 bits, used state high (every
		 * popped chain is pushed before a kick returns) */
		q->base =
		    vio_vq_is_packed(vq) ? base | (uint32_t)base << 16 : base;
	}
	vio_device_queue_enable(b->dev, idx, false);
	q->running = false;
}

static void stop_all(struct vio_backend *b)
{
	for (unsigned i = 0; i < b->nq; i++)
		queue_stop(b, i);
}

/* Ring areas: translate frontend addresses, whole areas checked. */
static int ring_layout(struct vio_backend *b, struct vu_queue *q,
		       struct vio_vq_layout *l, bool packed)
{
	uint64_t n = q->num;
	uint64_t sz_desc = 16 * n;
	uint64_t sz_drv = packed ? 4 : 6 + 2 * n;
	uint64_t sz_dev = packed ? 4 : 6 + 8 * n;
	l->desc = vio_memtable_uptr(b->mt, q->addr.desc, sz_desc);
	l->driver = vio_memtable_uptr(b->mt, q->addr.avail, sz_drv);
	l->device = vio_memtable_uptr(b->mt, q->addr.used, sz_dev);
	l->desc_addr = q->addr.desc;
	l->driver_addr = q->addr.avail;
	l->device_addr = q->addr.used;
	return l->desc && l->driver && l->device ? 0 : -EFAULT;
}

/* Start queue idx if everything it needs is there.  0 if started or not
 * ready yet; negative errno if the frontend's setup is invalid. */
static int queue_try_start(struct vio_backend *b, unsigned idx)
{
	struct vu_queue *q = &b->q[idx];
	if (q->running || !q->has_num || !q->has_addr || q->kick_fd < 0 ||
	    !q->enabled || !b->features_set)
		return 0;
	bool packed = vio_device_has_feature(b->dev, VIRTIO_F_RING_PACKED);
	struct vio_vq_layout l;
	if (ring_layout(b, q, &l, packed)) {
		vio_log_warn(
		    "vhost-user: connection %lu: queue %u: ring addresses "
		    "(desc 0x%" PRIx64 " avail 0x%" PRIx64 " used 0x%" PRIx64
		    ") are not in shared memory",
		    b->conns, idx, q->addr.desc, q->addr.avail, q->addr.used);
		return -EFAULT;
	}
	uint8_t s = vio_device_get_status(b->dev);
	if (!(s & VIRTIO_CONFIG_S_DRIVER_OK)) {
		/* with STATUS the driver says when it is ready (3.1.1);
		 * without it, a started ring is the only sign.  A frontend
		 * that negotiated STATUS but never sends SET_STATUS (QEMU
		 * 7.2's vhost-user-rng) is taken as one without it */
		if ((b->protocol & (1ull << VIO_VU_PF_STATUS)) &&
		    b->status_driven)
			return 0;
		int r = vio_device_set_status(b->dev,
					      s | VIRTIO_CONFIG_S_DRIVER_OK);
		if (r)
			return r;
	}
	int r =
	    vio_device_queue_setup(b->dev, idx, (uint16_t)q->num, &l, b->mt);
	if (!r)
		r = vio_device_queue_set_base(b->dev, idx, (uint16_t)q->base);
	if (!r)
		r = vio_device_queue_enable(b->dev, idx, true);
	if (!r) /* before any pop: the in-flight region, if there is one */
		r = vio_vu_inflight_attach(b, idx);
	if (!r) /* and the dirty log, if logging is on */
		r = vio_vu_log_attach(b, idx);
	if (r) {
		vio_log_err("vhost-user: connection %lu: queue %u: cannot "
			    "start (size %u): %s",
			    b->conns, idx, q->num, strerror(-r));
		return r;
	}
	q->running = true;
	if (b->cfg.queue_start) {
		q->worker =
		    b->cfg.queue_start(b->cfg.opaque, b, idx, q->kick_fd);
		if (!q->worker) {
			vio_device_queue_enable(b->dev, idx, false);
			q->running = false;
			return -ENOMEM;
		}
	}
	return 0;
}

/* Start every queue that is ready (queue_try_start decides: whether it
 * ran before does not matter). */
static int start_all(struct vio_backend *b)
{
	for (unsigned i = 0; i < b->nq; i++) {
		int r = queue_try_start(b, i);
		if (r)
			return r;
	}
	return 0;
}

void vio_vu_queues_stop(struct vio_backend *b)
{
	stop_all(b);
}

int vio_vu_queues_start(struct vio_backend *b)
{
	return start_all(b);
}

bool vio_backend_queue_kick(struct vio_backend *b, unsigned idx)
{
	return vio_device_kick(b->dev, idx);
}

struct vio_device *vio_backend_device(const struct vio_backend *b)
{
	return b->dev;
}

/* Forget everything a connection set up (not the memory). */
static void reset_queues(struct vio_backend *b)
{
	stop_all(b);
	for (unsigned i = 0; i < b->nq; i++) {
		struct vu_queue *q = &b->q[i];
		vio_vu_close_fd(&q->kick_fd);
		vio_vu_close_fd(
		    &q->call_fd); /* no worker runs: no lock needed */
		vio_vu_close_fd(&q->err_fd);
		q->has_num = q->has_addr = q->enabled = false;
		q->base = 0;
	}
	set_status_quiet(b->dev, 0);
	b->features_set = false;
	b->log_all = false;
	vio_vu_state_reset(b); /* a state loaded before SET_FEATURES */
}

void vio_vu_backend_end(struct vio_backend *b)
{
	reset_queues(b);
	vio_vu_inflight_unmap(b);
	vio_vu_log_unmap(b);
	vio_vu_state_end(b);
	vio_memtable_clear(b->mt);
	b->nreg_dup = 0;
	b->protocol = 0;
	b->protocol_acked = false;
	b->status_driven = false;
	vio_vu_backend_req_close(b);
	vio_vu_close_fd(&b->conn_fd);
}

/* ---- handlers ---- */

#define BAD(fmt, ...)                                                          \
	(vio_log_limited(&b->rl, "vhost-user: connection %lu: " fmt, b->conns, \
			 ##__VA_ARGS__),                                       \
	 -EPROTO)

static struct vu_queue *state_queue(struct vio_backend *b, uint32_t idx)
{
	return idx < b->nq ? &b->q[idx] : NULL;
}

static int h_get_features(struct vio_backend *b, struct vio_vu_msg *m)
{
	struct vio_features f;
	vio_device_offered(b->dev, &f);
	m->p.u64 = f.w[0] | 1ull << VIO_VU_F_PROTOCOL_FEATURES;
	m->p.u64 |= 1ull << VHOST_F_LOG_ALL; /* dirty logging: backend_log.c */
	return 0;
}

static int h_set_features(struct vio_backend *b, struct vio_vu_msg *m)
{
	uint64_t want = m->p.u64;
	b->protocol_acked = want & (1ull << VIO_VU_F_PROTOCOL_FEATURES);
	want &= ~(1ull << VIO_VU_F_PROTOCOL_FEATURES);
	/* VHOST_F_LOG_ALL is vhost's, not the device's: logging goes on or
	 * off without a reset; the queues stop (completing what they hold,
	 * logged as before) and start again with or without the log */
	bool log_all = want & (1ull << VHOST_F_LOG_ALL);
	want &= ~(1ull << VHOST_F_LOG_ALL);
	if (b->features_set && want == b->features) {
		if (log_all == b->log_all)
			return 0;
		stop_all(b);
		b->log_all = log_all;
		return start_all(b);
	}
	bool was_ok = vio_device_get_status(b->dev) & VIRTIO_CONFIG_S_DRIVER_OK;
	stop_all(b);
	set_status_quiet(b->dev, 0);
	struct vio_features f = {{want, 0}};
	int r = vio_device_set_status(b->dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	if (!r)
		r = vio_device_set_status(b->dev, VIRTIO_CONFIG_S_ACKNOWLEDGE |
						      VIRTIO_CONFIG_S_DRIVER);
	if (!r)
		r = vio_device_set_features(b->dev, &f);
	if (!r)
		r = vio_device_set_status(b->dev,
					  VIRTIO_CONFIG_S_ACKNOWLEDGE |
					      VIRTIO_CONFIG_S_DRIVER |
					      VIRTIO_CONFIG_S_FEATURES_OK);
	if (r)
		return BAD("SET_FEATURES 0x%" PRIx64
			   " refused (not offered, or no VERSION_1)",
			   want);
	/* a device state loaded before SET_FEATURES (QEMU's incoming
	 * migration) applies now, before any ring starts; refused, the
	 * device needs a reset and no ring starts (backend_state.c) */
	(void)vio_vu_state_features_ok(b);
	/* a feature change on a running device (vhost's LOG_ALL) keeps it
	 * running: the driver said DRIVER_OK once already */
	if (was_ok)
		set_status_quiet(b->dev, VIRTIO_CONFIG_S_ACKNOWLEDGE |
					     VIRTIO_CONFIG_S_DRIVER |
					     VIRTIO_CONFIG_S_FEATURES_OK |
					     VIRTIO_CONFIG_S_DRIVER_OK);
	b->features = want;
	b->features_set = true;
	b->log_all = log_all;
	/* without PROTOCOL_FEATURES rings are enabled on kick */
	if (!b->protocol_acked)
		for (unsigned i = 0; i < b->nq; i++)
			b->q[i].enabled = true;
	return start_all(b);
}

static int h_nop(struct vio_backend *b, struct vio_vu_msg *m)
{
	return 0;
}

static int h_reset(struct vio_backend *b, struct vio_vu_msg *m)
{
	reset_queues(b);
	return 0;
}

static int h_get_protocol(struct vio_backend *b, struct vio_vu_msg *m)
{
	m->p.u64 = PROTOCOL_OFFERED;
	return 0;
}

static int h_set_protocol(struct vio_backend *b, struct vio_vu_msg *m)
{
	if (m->p.u64 & ~PROTOCOL_OFFERED)
		return BAD("SET_PROTOCOL_FEATURES 0x%" PRIx64
			   ": bits never offered",
			   m->p.u64);
	b->protocol = m->p.u64;
	return 0;
}

static int h_get_queue_num(struct vio_backend *b, struct vio_vu_msg *m)
{
	m->p.u64 = b->nq;
	return 0;
}

static int h_get_slots(struct vio_backend *b, struct vio_vu_msg *m)
{
	m->p.u64 = b->cfg.max_mem_slots;
	return 0;
}

static int h_vring_num(struct vio_backend *b, struct vio_vu_msg *m)
{
	struct vu_queue *q = state_queue(b, m->p.state.index);
	if (!q)
		return BAD("SET_VRING_NUM: queue %u of %u", m->p.state.index,
			   b->nq);
	int max = vio_device_queue_max_size(b->dev, m->p.state.index);
	if (m->p.state.num == 0 || m->p.state.num > VIO_VQ_MAX_SIZE)
		return BAD("SET_VRING_NUM: size %u (max %d)", m->p.state.num,
			   max);
	/* a size the spec allows but this device does not: -ERANGE, which
	 * vio_vu_backend_handle forgives when the frontend asked for an
	 * ack (it then knows and may ask for less) */
	if (m->p.state.num > (uint32_t)max) {
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: SET_VRING_NUM: "
				"size %u (max %d)",
				b->conns, m->p.state.num, max);
		return -ERANGE;
	}
	/* split rings are a power of two (2.7); packed may be any size */
	if (b->features_set &&
	    !(b->features & (1ull << VIRTIO_F_RING_PACKED)) &&
	    (m->p.state.num & (m->p.state.num - 1)))
		return BAD("SET_VRING_NUM: size %u of a split ring is not a "
			   "power of 2",
			   m->p.state.num);
	if (q->running)
		return BAD("SET_VRING_NUM on running queue %u",
			   m->p.state.index);
	q->num = m->p.state.num;
	q->has_num = true;
	return 0;
}

static int h_vring_addr(struct vio_backend *b, struct vio_vu_msg *m)
{
	unsigned idx = m->p.addr.index;
	struct vu_queue *q = state_queue(b, idx);
	if (!q)
		return BAD("SET_VRING_ADDR: queue %u of %u", idx, b->nq);
	queue_stop(b, idx);
	q->addr = m->p.addr;
	q->has_addr = true;
	return queue_try_start(b, idx);
}

static int h_vring_base(struct vio_backend *b, struct vio_vu_msg *m)
{
	struct vu_queue *q = state_queue(b, m->p.state.index);
	if (!q)
		return BAD("SET_VRING_BASE: queue %u of %u", m->p.state.index,
			   b->nq);
	if (q->running)
		return BAD("SET_VRING_BASE on running queue %u",
			   m->p.state.index);
	q->base = m->p.state.num;
	return 0;
}

static int h_get_vring_base(struct vio_backend *b, struct vio_vu_msg *m)
{
	unsigned idx = m->p.state.index;
	struct vu_queue *q = state_queue(b, idx);
	if (!q)
		return BAD("GET_VRING_BASE: queue %u of %u", idx, b->nq);
	/* the ring stops here (vhost-user.rst) */
	queue_stop(b, idx);
	vio_vu_close_fd(&q->kick_fd);
	if (b->protocol_acked)
		q->enabled = false;
	m->p.state.num = q->base;
	return 0;
}

/* Is fd an eventfd?  Anything else (a pipe nobody reads, a socket, a
 * file) could block or hang up under the data path.  Without /proc the
 * check is skipped (non-blocking mode still holds). */
static bool is_eventfd(int fd)
{
	char path[40], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return errno == ENOENT || errno == EACCES;
	link[n] = 0;
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

static int h_vring_fd(struct vio_backend *b, struct vio_vu_msg *m)
{
	unsigned idx = (unsigned)(m->p.u64 & VIO_VU_VRING_IDX_MASK);
	struct vu_queue *q = state_queue(b, idx);
	const char *name = vio_vu_request_name(m->hdr.request);
	if (!q || (m->p.u64 >> 9))
		return BAD("%s: payload 0x%" PRIx64, name, m->p.u64);
	int fd = m->nfds ? m->fds[0] : -1;
	if (fd >= 0 && !is_eventfd(fd))
		return BAD("%s of queue %u: the fd is not an eventfd", name,
			   idx); /* handle() closes it */
	if (m->nfds)
		m->fds[0] = -1;
	if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
		close(fd);
		return BAD("%s of queue %u: fcntl: %s", name, idx,
			   strerror(errno));
	}
	if (m->hdr.request == VIO_VU_SET_VRING_KICK) {
		if (fd < 0)
			return BAD("SET_VRING_KICK without an fd (polling "
				   "mode is not supported)");
		if (!b->protocol_acked)
			q->enabled = true;
		/* a running worker takes the new fd without stopping (if
		 * its hooks can); else it is stopped and started again */
		if (q->running && b->cfg.queue_kick_fd &&
		    b->cfg.queue_kick_fd(b->cfg.opaque, q->worker, fd) == 0) {
			vio_vu_close_fd(&q->kick_fd);
			q->kick_fd = fd;
			return 0;
		}
		queue_stop(b, idx); /* the worker polls the kick fd */
		vio_vu_close_fd(&q->kick_fd);
		q->kick_fd = fd;
		return queue_try_start(b, idx);
	}
	/* call or error fd: swapped under the running worker */
	bool call = m->hdr.request == VIO_VU_SET_VRING_CALL;
	pthread_mutex_lock(&q->fd_lock);
	int *slot = call ? &q->call_fd : &q->err_fd;
	int old = *slot;
	*slot = fd;
	pthread_mutex_unlock(&q->fd_lock);
	if (old >= 0)
		close(old);
	int r = queue_try_start(b, idx);
	/* used buffers pushed while there was no call fd (or while the old
	 * one was being replaced) were maybe never signalled: one (maybe
	 * spurious) call catches up */
	if (!r && call && q->running && fd >= 0)
		signal_queue_fd(b, idx, false);
	return r;
}

static int h_vring_enable(struct vio_backend *b, struct vio_vu_msg *m)
{
	unsigned idx = m->p.state.index;
	struct vu_queue *q = state_queue(b, idx);
	if (!q || m->p.state.num > 1)
		return BAD("SET_VRING_ENABLE: queue %u of %u, num %u", idx,
			   b->nq, m->p.state.num);
	q->enabled = m->p.state.num;
	if (!q->enabled) {
		queue_stop(b, idx);
		return 0;
	}
	return queue_try_start(b, idx);
}

static int h_get_config(struct vio_backend *b, struct vio_vu_msg *m)
{
	uint32_t off = m->p.config.offset, size = m->p.config.size;
	unsigned len = vio_device_config_size(b->dev);
	if (off > len || size > len - off)
		return BAD("GET_CONFIG offset %u size %u outside config space "
			   "(%u bytes)",
			   off, size, len);
	if (vio_device_config_read(b->dev, off, m->p.config.data, size))
		return BAD("GET_CONFIG failed");
	return 0;
}

static int h_set_config(struct vio_backend *b, struct vio_vu_msg *m)
{
	uint32_t off = m->p.config.offset, size = m->p.config.size;
	int r = vio_device_config_write(b->dev, off, m->p.config.data, size);
	if (r == -EPERM)
		return BAD("SET_CONFIG offset %u size %u: not a field the "
			   "driver may write",
			   off, size);
	if (r)
		return BAD("SET_CONFIG offset %u size %u outside config space",
			   off, size);
	return 0;
}

static int h_set_status(struct vio_backend *b, struct vio_vu_msg *m)
{
	if (m->p.u64 > 0xff)
		return BAD("SET_STATUS 0x%" PRIx64, m->p.u64);
	uint8_t want = (uint8_t)m->p.u64;
	b->status_driven = true;
	if (want == 0) {
		/* QEMU 7.2 stops a device (vhost_dev_stop, also at the end of
		 * a migration) with SET_STATUS 0 before GET_VRING_BASE: the
		 * rings' positions, saved as the queues stop, must survive
		 * the reset for GET_VRING_BASE to report them (a start sets
		 * them again with SET_VRING_BASE) */
		uint32_t base[VIO_MAX_QUEUES];
		stop_all(b);
		for (unsigned i = 0; i < b->nq; i++)
			base[i] = b->q[i].base;
		reset_queues(b);
		for (unsigned i = 0; i < b->nq; i++)
			b->q[i].base = base[i];
		return 0;
	}
	uint8_t s = vio_device_get_status(b->dev);
	/* ACKNOWLEDGE, DRIVER and FEATURES_OK came with SET_FEATURES */
	if ((want & VIRTIO_CONFIG_S_FAILED) && !(s & VIRTIO_CONFIG_S_FAILED))
		set_status_quiet(b->dev, s | VIRTIO_CONFIG_S_FAILED);
	else if ((want & VIRTIO_CONFIG_S_DRIVER_OK) &&
		 !(s & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (!(s & VIRTIO_CONFIG_S_FEATURES_OK))
			return BAD("SET_STATUS DRIVER_OK before SET_FEATURES");
		if (vio_device_set_status(b->dev,
					  s | VIRTIO_CONFIG_S_DRIVER_OK))
			return BAD("SET_STATUS DRIVER_OK refused");
		return start_all(b);
	}
	return 0;
}

static int h_get_status(struct vio_backend *b, struct vio_vu_msg *m)
{
	m->p.u64 = vio_device_get_status(b->dev);
	return 0;
}

typedef int vu_handler(struct vio_backend *b, struct vio_vu_msg *m);

static vu_handler *const handlers[VIO_VU_REQUEST_MAX] = {
    [VIO_VU_GET_FEATURES] = h_get_features,
    [VIO_VU_SET_FEATURES] = h_set_features,
    [VIO_VU_SET_OWNER] = h_nop,
    [VIO_VU_RESET_OWNER] = h_reset,
    [VIO_VU_SET_MEM_TABLE] = vio_vu_h_set_mem_table,
    [VIO_VU_SET_VRING_NUM] = h_vring_num,
    [VIO_VU_SET_VRING_ADDR] = h_vring_addr,
    [VIO_VU_SET_VRING_BASE] = h_vring_base,
    [VIO_VU_GET_VRING_BASE] = h_get_vring_base,
    [VIO_VU_SET_VRING_KICK] = h_vring_fd,
    [VIO_VU_SET_VRING_CALL] = h_vring_fd,
    [VIO_VU_SET_VRING_ERR] = h_vring_fd,
    [VIO_VU_GET_PROTOCOL_FEATURES] = h_get_protocol,
    [VIO_VU_SET_PROTOCOL_FEATURES] = h_set_protocol,
    [VIO_VU_GET_QUEUE_NUM] = h_get_queue_num,
    [VIO_VU_SET_VRING_ENABLE] = h_vring_enable,
    [VIO_VU_SET_BACKEND_REQ_FD] = vio_vu_backend_req_set,
    [VIO_VU_GET_CONFIG] = h_get_config,
    [VIO_VU_SET_CONFIG] = h_set_config,
    [VIO_VU_GET_INFLIGHT_FD] = vio_vu_h_get_inflight,
    [VIO_VU_SET_INFLIGHT_FD] = vio_vu_h_set_inflight,
    [VIO_VU_RESET_DEVICE] = h_reset,
    [VIO_VU_GET_MAX_MEM_SLOTS] = h_get_slots,
    [VIO_VU_ADD_MEM_REG] = vio_vu_h_add_mem_reg,
    [VIO_VU_REM_MEM_REG] = vio_vu_h_rem_mem_reg,
    [VIO_VU_SET_STATUS] = h_set_status,
    [VIO_VU_GET_STATUS] = h_get_status,
    [VIO_VU_SET_LOG_BASE] = vio_vu_h_set_log_base,
    [VIO_VU_SET_LOG_FD] = vio_vu_h_set_log_fd,
    [VIO_VU_SET_DEVICE_STATE_FD] = vio_vu_h_set_device_state_fd,
    [VIO_VU_CHECK_DEVICE_STATE] = vio_vu_h_check_device_state,
};

/* Handle one checked message; send its reply.  <0 ends the connection. */
int vio_vu_backend_handle(struct vio_backend *b, struct vio_vu_msg *m)
{
	const struct vio_vu_request_info *info =
	    vio_vu_request_info(m->hdr.request);
	vu_handler *h = handlers[m->hdr.request];
	if (!h)
		return BAD("%s is not supported", info->name);
	bool need_ack = (m->hdr.flags & VIO_VU_FLAG_NEED_REPLY) &&
			(b->protocol & (1ull << VIO_VU_PF_REPLY_ACK)) &&
			info->reply == VIO_VU_REPLY_NONE;
	/* VIO_LOG=debug: every request and its outcome (a frontend that
	 * hangs waiting for an answer shows which one it was) */
	vio_log_debug("vhost-user: connection %lu: %s%s", b->conns, info->name,
		      need_ack ? " (ack wanted)" : "");
	int r = h(b, m);
	vio_log_debug("vhost-user: connection %lu: %s: %s", b->conns,
		      info->name, r ? strerror(r < 0 ? -r : r) : "done");
	vio_vu_close_fds(m); /* whatever the handler did not take */
	if (info->reply == VIO_VU_REPLY_NONE && !need_ack)
		return r;
	if (info->reply == VIO_VU_REPLY_NONE)
		m->p.u64 = r ? 1 : 0;
	m->hdr.flags = VIO_VU_VERSION | VIO_VU_FLAG_REPLY;
	m->hdr.size = vio_vu_payload_size(m);
	m->nfds = 0;
	if (b->has_reply_fd) { /* GET_INFLIGHT_FD's region rides along */
		b->has_reply_fd = false;
		m->fds[m->nfds++] = b->reply_fd;
	}
	if (r == 0 || need_ack) {
		int s = vio_vu_send(b->conn_fd, m);
		vio_vu_close_fds(m);
		if (s)
			return s;
	}
	vio_vu_close_fds(m);
	/* The one refusal a connection survives: SET_VRING_NUM above the
	 * device's maximum (but within the spec's), acked as refused.
	 * vhost-user has no message that tells the maximum; a frontend
	 * learns it this way and asks for less (vio's frontend halves).
	 * Without NEED_REPLY the frontend would never know: the connection
	 * ends, as for every other bad message. */
	if (r == -ERANGE && need_ack)
		return 0;
	return r;
}
