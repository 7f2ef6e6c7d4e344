/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend: the driver side of docs/interop/vhost-user.rst,
 * presented as a transport (vio/transport.h), so that the model's drivers
 * run over a backend in another process unchanged.  See
 * docs/vhost-user-frontend.md.
 *
 * Addresses: the ring layer writes vio_mem device addresses into
 * descriptors and ring layouts.  Every region goes to the backend with
 * guest_phys_addr = userspace_addr = its device address, so the backend
 * translates descriptor addresses (by guest address) and ring addresses
 * (by "frontend userspace" address, as QEMU's backends do) the same way.
 *
 * Memory: regions the vio_mem has are sent at connect and whenever it
 * gained some: at queue setup and on every notify (cheap check first),
 * before the kick that may publish buffers in them.
 *
 * Connecting, the handshake and free are in frontend_connect.c.
 *
 * Status: without VHOST_USER_PROTOCOL_F_STATUS the status byte lives
 * here; FEATURES_OK is the moment SET_FEATURES goes out (checked to be a
 * subset of what was offered); a reset stops every started ring
 * (GET_VRING_BASE) and then resets the backend (SET_STATUS 0 or
 * RESET_DEVICE when negotiated).
 *
 * The backend is untrusted: every reply goes through vio_vu_recv_reply()
 * (request code, REPLY flag, exact size, no fds) and its values are
 * bounded here.  A broken, closed or silent socket marks the frontend
 * dead: every op fails cleanly from then on, waits return -ENOTCONN.
 * With a reconnect wait (cfg.reconnect_ms) it marks it down instead: the
 * next message, kick or wait connects again and each queue's ring is
 * handed to the new backend by its own thread (frontend_reconnect.c).
 *
 * Locking: f->lock serialises the socket (one request and its reply at a
 * time) and the control state.  The data path (notify, wait) takes it
 * only when memory must be sent.
 *
 * Kick and call fds: a pair of eventfds per queue, made at connect and
 * closed only by vio_frontend_free, so notify and wait use them without
 * the lock, on any thread, while another thread resets or removes the
 * device: a number they loaded is never closed and reused under them.  A
 * started ring gets the same pair each time (as QEMU does).  A stop marks
 * the queue stopped (notify then writes nothing) and signals its call fd,
 * so a thread asleep in wait wakes and returns -ECANCELED instead of
 * sleeping on a ring that is gone.
 *
 * Config size: the caller's config_size, else the bound driver's
 * (struct vio_driver.config_size), else each GET_CONFIG asks for what
 * the read needs.  The transport knows no device type's layout.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "transport/vhost-user/frontend_internal.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

/* packed rings: avail and used wrap counters start at 1 (bits 15, 31) */
#define PACKED_INITIAL_BASE 0x80008000u

/* The backend is gone or broke the protocol: stop talking to it.  The
 * socket stays open (shut down, so it polls as hung up) until free. */
void vio_fe_die(struct vio_frontend *f, const char *fmt, ...)
{
	if (is_dead(f) || is_down(f))
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	if (f->size_unacked && n >= 0 && (size_t)n < sizeof(f->why)) {
		/* no REPLY_ACK: a refused SET_VRING_NUM only shows as the
		 * connection ending a little later */
		snprintf(f->why + n, sizeof(f->why) - (size_t)n,
			 "; it may not take queue size %u: set queue_size "
			 "to its maximum",
			 f->size_unacked);
		snprintf(f->size_why, sizeof(f->size_why), "%s", f->why);
	}
	shutdown(f->sock, SHUT_RDWR);
	if (fe_reconnects(f)) {
		/* not final: frontend_reconnect.c connects again */
		if (!f->reconnecting) {
			f->down_since_ms = vio_now_ns() / 1000000u;
			vio_log_warn("vhost-user frontend: %s; waiting up to "
				     "%d ms for the backend to return",
				     f->why, f->cfg.reconnect_ms);
		}
		__atomic_store_n(&f->down, true, __ATOMIC_RELEASE);
		return;
	}
	__atomic_store_n(&f->dead, true, __ATOMIC_RELEASE);
	vio_log_warn("vhost-user frontend: %s", f->why);
}

void vio_fe_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Empty an eventfd of ours (non-blocking). */
static void drain(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));
	(void)n; /* EAGAIN: it was empty */
}

/*
 * Send m (payload filled, fds attached) and take its reply, if it has
 * one or REPLY_ACK asks for one.  Caller holds lock.  0; -ENOTCONN (dead
 * now or before), -EPROTO (a bad reply: dead now), -EIO (the backend
 * acked a failure: still alive).
 */
static int xfer(struct vio_frontend *f, struct vio_vu_msg *m,
		uint32_t config_size)
{
	uint32_t req = m->hdr.request;
	const struct vio_vu_request_info *info = vio_vu_request_info(req);
	if (!info)
		return -EINVAL;
	if (is_dead(f))
		return -ENOTCONN;
	/* lost: connect again first (callers see a delay, not an error);
	 * not from within the reconnect's own handshake */
	if (is_down(f) && (f->reconnecting || vio_fe_reconnect_locked(f) != 0))
		return -ENOTCONN;
	bool ack = info->reply == VIO_VU_REPLY_NONE &&
		   has_pf(f, VIO_VU_PF_REPLY_ACK) && !f->no_ack;
	if (ack)
		m->hdr.flags |= VIO_VU_FLAG_NEED_REPLY;
	m->hdr.size = vio_vu_payload_size(m);
	int r = vio_vu_send(f->sock, m);
	if (r) {
		vio_fe_die(f, "%s: cannot send: %s", info->name, strerror(-r));
		return -ENOTCONN;
	}
	if (info->reply == VIO_VU_REPLY_NONE && !ack)
		return 0;
	char why[160] = "";
	r = vio_vu_recv_reply(f->sock, req, config_size, m, why, sizeof(why));
	if (r == -EPROTO) {
		vio_fe_die(f, "bad reply from the backend: %s", why);
		return -EPROTO;
	}
	if (r == -ECONNRESET) {
		vio_fe_die(f, "backend closed the connection (during %s)",
			   info->name);
		return -ENOTCONN;
	}
	if (r) {
		vio_fe_die(f, "%s", why);
		return -ENOTCONN;
	}
	if (ack && m->p.u64 != 0) {
		snprintf(f->refused, sizeof(f->refused),
			 "backend refused %s (status %" PRIu64 ")", info->name,
			 m->p.u64);
		vio_log_limited(&f->rl, "vhost-user frontend: %s", f->refused);
		return -EIO;
	}
	return 0;
}

int vio_fe_xfer(struct vio_frontend *f, struct vio_vu_msg *m)
{
	return xfer(f, m, 0);
}

int vio_fe_xfer_u64(struct vio_frontend *f, uint32_t req, uint64_t in,
		    uint64_t *out)
{
	struct vio_vu_msg m;
	vio_vu_request_init(&m, req, 0);
	m.p.u64 = in;
	int r = xfer(f, &m, 0);
	if (r == 0 && out)
		*out = m.p.u64;
	return r;
}

static int xfer_state(struct vio_frontend *f, uint32_t req, uint32_t idx,
		      uint32_t num)
{
	struct vio_vu_msg m;
	vio_vu_request_init(&m, req, 0);
	m.p.state.index = idx;
	m.p.state.num = num;
	return xfer(f, &m, 0);
}

int vio_fe_xfer_state(struct vio_frontend *f, uint32_t req, uint32_t idx,
		      uint32_t num)
{
	return xfer_state(f, req, idx, num);
}

/* SET_VRING_KICK / SET_VRING_CALL with fd (not given away). */
static int xfer_vring_fd(struct vio_frontend *f, uint32_t req, unsigned idx,
			 int fd)
{
	struct vio_vu_msg m;
	vio_vu_request_init(&m, req, 0);
	m.p.u64 = idx & VIO_VU_VRING_IDX_MASK;
	m.fds[0] = fd;
	m.nfds = 1;
	return xfer(f, &m, 0);
}

/* ---- memory ---- */

static int region_of(struct vio_frontend *f, unsigned i,
		     struct vio_vu_region *vr, int *fd)
{
	const struct vio_region *r = vio_mem_region(f->cfg.mem, i);
	if (!r || r->fd < 0 || !r->size)
		return -EINVAL; /* only memfd regions can be shared */
	vr->gpa = r->addr;
	vr->size = r->size;
	vr->uaddr = r->addr; /* see the top of this file */
	vr->mmap_offset = r->offset;
	*fd = r->fd;
	return 0;
}

static bool mem_grew(const struct vio_frontend *f)
{
	return vio_mem_region_count(f->cfg.mem) >
	       __atomic_load_n(&f->synced, __ATOMIC_ACQUIRE);
}

/* The backend handles messages in order: once it answered a request sent
 * after the memory messages, it has mapped the memory.  With REPLY_ACK the
 * acks already said so; without, a GET_FEATURES round trip does. */
static int mem_barrier(struct vio_frontend *f)
{
	if (has_pf(f, VIO_VU_PF_REPLY_ACK))
		return 0;
	return vio_fe_xfer_u64(f, VIO_VU_GET_FEATURES, 0, NULL);
}

/* Send the regions the vio_mem gained since the last sync and wait until
 * the backend has them.  Caller holds lock. */
int vio_fe_mem_sync_locked(struct vio_frontend *f)
{
	unsigned n = vio_mem_region_count(f->cfg.mem);
	unsigned i = __atomic_load_n(&f->synced, __ATOMIC_RELAXED);
	if (i >= n)
		return 0;
	struct vio_vu_msg m;
	if (f->max_slots) {
		for (; i < n; i++) {
			if (i >= f->max_slots) {
				vio_log_limited(
				    &f->rl,
				    "vhost-user frontend: %u memory "
				    "regions, the backend has %u "
				    "slots",
				    n, f->max_slots);
				return -ENOSPC;
			}
			vio_vu_request_init(&m, VIO_VU_ADD_MEM_REG, 0);
			int r = region_of(f, i, &m.p.reg.r, &m.fds[0]);
			if (r)
				return r;
			m.nfds = 1;
			r = xfer(f, &m, 0);
			if (r)
				return r;
			__atomic_store_n(&f->synced, i + 1, __ATOMIC_RELEASE);
		}
		return mem_barrier(f);
	}
	if (n > VIO_VU_MAX_TABLE_REGIONS) {
		vio_log_limited(&f->rl,
				"vhost-user frontend: %u memory regions, but "
				"the backend takes at most %u "
				"(no CONFIGURE_MEM_SLOTS)",
				n, VIO_VU_MAX_TABLE_REGIONS);
		return -ENOSPC;
	}
	/* the whole table again: SET_MEM_TABLE replaces it */
	vio_vu_request_init(&m, VIO_VU_SET_MEM_TABLE, 0);
	m.p.mem.nregions = n;
	for (unsigned k = 0; k < n; k++) {
		int r = region_of(f, k, &m.p.mem.r[k], &m.fds[k]);
		if (r)
			return r;
	}
	m.nfds = n;
	int r = xfer(f, &m, 0);
	if (r)
		return r;
	__atomic_store_n(&f->synced, n, __ATOMIC_RELEASE);
	return mem_barrier(f);
}

/* ---- queues ---- */

static bool q_started(const struct fe_queue *q)
{
	return __atomic_load_n(&q->started, __ATOMIC_ACQUIRE);
}

/* Wake whoever waits on queue idx (it then sees the queue stopped). */
static void wake_waiters(struct vio_frontend *f, unsigned idx)
{
	uint64_t one = 1;
	ssize_t n = write(f->q[idx].call_fd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is full, a wake-up is pending */
}

/* Stop ring idx: disable it, GET_VRING_BASE (the ring stops there), wake
 * its waiters.  The fds stay (see the top).  Caller holds lock.  Errors
 * only matter while alive. */
static void queue_stop_locked(struct vio_frontend *f, unsigned idx)
{
	struct fe_queue *q = &f->q[idx];
	if (!q_started(q))
		return;
	if (can_talk(f)) {
		if (f->proto)
			(void)xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx, 0);
		struct vio_vu_msg m;
		vio_vu_request_init(&m, VIO_VU_GET_VRING_BASE, 0);
		m.p.state.index = idx;
		if (xfer(f, &m, 0) == 0 && m.p.state.index != idx)
			vio_fe_die(
			    f, "GET_VRING_BASE: reply for queue %u, asked %u",
			    m.p.state.index, idx);
	}
	__atomic_store_n(&q->started, false, __ATOMIC_RELEASE);
	wake_waiters(f, idx);
}

static void reset_locked(struct vio_frontend *f)
{
	bool any = f->features_sent;
	for (unsigned i = 0; i < f->nq; i++) {
		any |= q_started(&f->q[i]);
		queue_stop_locked(f, i);
	}
	if (any && can_talk(f)) {
		if (has_pf(f, VIO_VU_PF_STATUS))
			(void)vio_fe_xfer_u64(f, VIO_VU_SET_STATUS, 0, NULL);
		else if (has_pf(f, VIO_VU_PF_RESET_DEVICE))
			(void)vio_fe_xfer_u64(f, VIO_VU_RESET_DEVICE, 0, NULL);
		/* else: the rings are stopped; the next SET_FEATURES and ring
		 * setup configure everything again */
	}
	f->features_sent = false;
	f->acked = 0;
}

/* ---- the transport ops ---- */

static uint32_t fe_device_id(void *t)
{
	struct vio_frontend *f = t;
	return f->cfg.device_id;
}

static uint32_t fe_vendor_id(void *t)
{
	(void)t;
	return 0; /* vhost-user does not say */
}

/* A request that is safe to send again (a read) failed with the
 * connection: with reconnect, try it again (the next xfer connects
 * again first), a few times. */
static bool again_after_loss(const struct vio_frontend *f, int r,
			     unsigned *tries)
{
	return r == -ENOTCONN && fe_reconnects(f) && !is_dead(f) &&
	       (*tries)++ < 3;
}

static uint8_t fe_get_status(void *t)
{
	struct vio_frontend *f = t;
	uint8_t s = __atomic_load_n(&f->status, __ATOMIC_ACQUIRE);
	if (!s)
		return 0;
	if (is_dead(f))
		return s | VIRTIO_CONFIG_S_NEEDS_RESET;
	/* a running backend may ask for a reset (STATUS only) */
	if (has_pf(f, VIO_VU_PF_STATUS) && (s & VIRTIO_CONFIG_S_DRIVER_OK)) {
		uint64_t v = 0;
		unsigned tries = 0;
		int r;
		pthread_mutex_lock(&f->lock);
		do
			r = vio_fe_xfer_u64(f, VIO_VU_GET_STATUS, 0, &v);
		while (again_after_loss(f, r, &tries));
		pthread_mutex_unlock(&f->lock);
		if (r == 0 && v > 0xff) {
			pthread_mutex_lock(&f->lock);
			vio_fe_die(f, "GET_STATUS: value 0x%" PRIx64, v);
			pthread_mutex_unlock(&f->lock);
		}
		if (r || v > 0xff || (v & VIRTIO_CONFIG_S_NEEDS_RESET))
			s |= VIRTIO_CONFIG_S_NEEDS_RESET;
	}
	return s;
}

/* FEATURES_OK: the features go out now.  Caller holds lock. */
static int features_ok_locked(struct vio_frontend *f, uint8_t s)
{
	if (f->acked & ~f->offered)
		return -EINVAL;
	uint64_t v = f->acked;
	if (f->proto)
		v |= 1ull << VIO_VU_F_PROTOCOL_FEATURES;
	int r = vio_fe_xfer_u64(f, VIO_VU_SET_FEATURES, v, NULL);
	if (r)
		return r;
	f->features_sent = true;
	if (!has_pf(f, VIO_VU_PF_STATUS))
		return 0;
	r = vio_fe_xfer_u64(f, VIO_VU_SET_STATUS, s, NULL);
	uint64_t got = 0;
	if (!r)
		r = vio_fe_xfer_u64(f, VIO_VU_GET_STATUS, 0, &got);
	if (!r && !(got & VIRTIO_CONFIG_S_FEATURES_OK)) {
		vio_log_limited(&f->rl, "vhost-user frontend: the backend did "
					"not keep FEATURES_OK");
		r = -EIO;
	}
	return r;
}

static int fe_set_status(void *t, uint8_t s)
{
	struct vio_frontend *f = t;
	pthread_mutex_lock(&f->lock);
	int r = 0;
	uint8_t old = __atomic_load_n(&f->status, __ATOMIC_RELAXED);
	if (s == 0) {
		reset_locked(f); /* local cleanup even when dead */
	} else if (is_dead(f)) {
		/* giving up (FAILED) needs no backend */
		r = (s & VIRTIO_CONFIG_S_FAILED) ? 0 : -ENOTCONN;
	} else if ((s & VIRTIO_CONFIG_S_FEATURES_OK) &&
		   !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		r = features_ok_locked(f, s);
	} else if (has_pf(f, VIO_VU_PF_STATUS) && s != old) {
		r = vio_fe_xfer_u64(f, VIO_VU_SET_STATUS, s, NULL);
	}
	if (r == 0)
		__atomic_store_n(&f->status, s, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int fe_get_features(void *t, struct vio_features *out)
{
	struct vio_frontend *f = t;
	memset(out, 0, sizeof(*out));
	out->w[0] = f->offered;
	return 0;
}

static int fe_set_features(void *t, const struct vio_features *feat)
{
	struct vio_frontend *f = t;
	/* vhost-user features are 64 bits; nothing beyond was offered */
	if (feat->w[1] || (feat->w[0] & ~f->offered))
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	int r = 0;
	if (__atomic_load_n(&f->status, __ATOMIC_RELAXED) &
	    VIRTIO_CONFIG_S_FEATURES_OK)
		r = -EBUSY;
	else
		f->acked = feat->w[0];
	pthread_mutex_unlock(&f->lock);
	return r;
}

/*
 * The config space size: the caller's, else the one the bound driver
 * declares for its device type; 0 when neither says (each read then asks
 * for bytes 0 up to its end, which a backend of any type answers if it
 * has them).  The transport knows no device type's layout.
 */
static unsigned config_size(const struct vio_frontend *f)
{
	if (f->config_size)
		return f->config_size;
	const struct vio_driver *drv =
	    f->vdev ? vio_drvdev_driver(f->vdev) : NULL;
	if (!drv || !drv->config_size)
		return 0;
	return drv->config_size < VIO_VU_CONFIG_MAX ? drv->config_size
						    : VIO_VU_CONFIG_MAX;
}

/* [off, off + len) inside the config space: true with *ask, the bytes
 * GET_CONFIG asks for; else false, logged (the caller gets -EINVAL). */
static bool config_range(struct vio_frontend *f, unsigned off, unsigned len,
			 unsigned *ask)
{
	unsigned size = config_size(f);
	unsigned lim = size ? size : VIO_VU_CONFIG_MAX;
	if (off <= lim && len <= lim - off) {
		*ask = size ? size : off + len;
		return true;
	}
	vio_log_limited(&f->rl,
			"vhost-user frontend: config access of %u bytes at "
			"offset %u is outside the config space (%u bytes: %s)",
			len, off, lim,
			f->config_size ? "vio_frontend_opts.config_size"
			: size	       ? "the driver's config_size"
				       : "the vhost-user maximum");
	return false;
}

/* From offset 0 every time: some backends ignore the offset (they always
 * answer from byte 0).  The bytes asked: see config_size(). */
static int fe_config_read(void *t, unsigned off, void *buf, unsigned len)
{
	struct vio_frontend *f = t;
	if (!has_pf(f, VIO_VU_PF_CONFIG))
		return -ENOTSUP;
	unsigned ask;
	if (!config_range(f, off, len, &ask))
		return -EINVAL;
	if (!len)
		return 0;
	struct vio_vu_msg m;
	unsigned tries = 0;
	int r;
	pthread_mutex_lock(&f->lock);
	do {
		vio_vu_request_init(&m, VIO_VU_GET_CONFIG, 0);
		m.p.config.offset = 0;
		m.p.config.size = ask;
		r = xfer(f, &m, ask);
	} while (again_after_loss(f, r, &tries));
	if (r == 0 && m.hdr.size == 0) {
		vio_log_limited(&f->rl,
				"vhost-user frontend: backend refused "
				"GET_CONFIG of %u bytes",
				ask);
		r = -EIO;
	} else if (r == 0 &&
		   (m.p.config.offset != 0 || m.p.config.size != ask)) {
		vio_fe_die(
		    f, "GET_CONFIG: reply for offset %u size %u, asked 0 %u",
		    m.p.config.offset, m.p.config.size, ask);
		r = -EPROTO;
	}
	pthread_mutex_unlock(&f->lock);
	if (r == 0)
		memcpy(buf, m.p.config.data + off, len);
	return r;
}

static int fe_config_write(void *t, unsigned off, const void *buf, unsigned len)
{
	struct vio_frontend *f = t;
	if (!has_pf(f, VIO_VU_PF_CONFIG))
		return -ENOTSUP;
	unsigned ask;
	if (!len || !config_range(f, off, len, &ask))
		return -EINVAL;
	struct vio_vu_msg m;
	vio_vu_request_init(&m, VIO_VU_SET_CONFIG, 0);
	m.p.config.offset = off;
	m.p.config.size = len;
	m.p.config.flags = 0; /* VHOST_SET_CONFIG_TYPE_FRONTEND */
	memcpy(m.p.config.data, buf, len);
	pthread_mutex_lock(&f->lock);
	int r = xfer(f, &m, 0);
	pthread_mutex_unlock(&f->lock);
	return r;
}

static uint32_t fe_config_generation(void *t)
{
	(void)t;
	return 0; /* vhost-user has none */
}

static unsigned fe_num_queues(void *t)
{
	struct vio_frontend *f = t;
	return f->nq;
}

static int fe_queue_max_size(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	return idx < f->nq ? (int)f->qmax[idx] : 0;
}

/* The ring messages of queue idx, from its recorded size and layout:
 * NUM, BASE, ADDR, CALL, KICK.  Caller holds lock. */
static int ring_msgs_locked(struct vio_frontend *f, unsigned idx, uint32_t base)
{
	struct fe_queue *q = &f->q[idx];
	int r = xfer_state(f, VIO_VU_SET_VRING_NUM, idx, q->size);
	if (r == -EIO) {
		/* refused although the connect probe accepted it (or could
		 * not probe): say so, not just "refused" */
		snprintf(f->size_why, sizeof(f->size_why),
			 "backend refused queue size %u at SET_VRING_NUM "
			 "(queue %u); set queue_size to its maximum",
			 q->size, idx);
		vio_log_limited(&f->rl, "vhost-user frontend: %s", f->size_why);
	}
	if (!r)
		r = xfer_state(f, VIO_VU_SET_VRING_BASE, idx, base);
	if (!r) {
		struct vio_vu_msg m;
		vio_vu_request_init(&m, VIO_VU_SET_VRING_ADDR, 0);
		m.p.addr.index = idx;
		m.p.addr.desc = q->layout.desc_addr;
		m.p.addr.avail = q->layout.driver_addr;
		m.p.addr.used = q->layout.device_addr;
		r = xfer(f, &m, 0);
	}
	/* the call fd before the kick fd: without protocol features the
	 * kick fd starts the ring */
	if (!r)
		r = xfer_vring_fd(f, VIO_VU_SET_VRING_CALL, idx, q->call_fd);
	if (!r)
		r = xfer_vring_fd(f, VIO_VU_SET_VRING_KICK, idx, q->kick_fd);
	return r;
}

int vio_fe_ring_setup_locked(struct vio_frontend *f, unsigned idx,
			     uint32_t base)
{
	int r = ring_msgs_locked(f, idx, base);
	if (!r && f->proto)
		r = xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx, 1);
	return r;
}

static int fe_queue_setup(void *t, unsigned idx, uint16_t size,
			  const struct vio_vq_layout *layout)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq || !layout || !size || size > f->qmax[idx])
		return -EINVAL;
	struct fe_queue *q = &f->q[idx];
	pthread_mutex_lock(&f->lock);
	int r = -ENOTCONN;
	if (is_down(f))
		(void)vio_fe_reconnect_locked(f);
	if (!can_talk(f))
		goto out;
	queue_stop_locked(f, idx);
	r = vio_fe_mem_sync_locked(f);
	if (r)
		goto out;
	/* no stale kick for the new ring; the call fd is left alone: a
	 * wake-up left from the last stop is at worst one spurious return
	 * of a wait, while emptying it could take one a waiter still needs */
	drain(q->kick_fd);
	bool packed = f->acked & (1ull << VIRTIO_F_RING_PACKED);
	if (!has_pf(f, VIO_VU_PF_REPLY_ACK))
		f->size_unacked = size; /* until the ring is set up */
	q->size = size;
	q->layout = *layout;
	/* this connection has the ring (reconnect: see fe_needs_restore) */
	__atomic_store_n(&q->gen, __atomic_load_n(&f->gen, __ATOMIC_RELAXED),
			 __ATOMIC_RELEASE);
	r = ring_msgs_locked(f, idx, packed ? PACKED_INITIAL_BASE : 0);
	/* from here on a stop is needed */
	__atomic_store_n(&q->started, true, __ATOMIC_RELEASE);
	if (!r && f->proto)
		r = xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx, 1);
	if (!r && f->size_unacked)
		/* a message with a reply after SET_VRING_NUM: the backend
		 * handled it, so it took the size */
		r = vio_fe_xfer_u64(f, VIO_VU_GET_FEATURES, 0, NULL);
	f->size_unacked = 0;
	if (r)
		queue_stop_locked(f, idx);
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int fe_queue_disable(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	queue_stop_locked(f, idx);
	pthread_mutex_unlock(&f->lock);
	return is_dead(f) ? -ENOTCONN : 0;
}

static int fe_sync_mem(void *t)
{
	struct vio_frontend *f = t;
	if (is_dead(f))
		return -ENOTCONN;
	if (!mem_grew(f))
		return 0;
	pthread_mutex_lock(&f->lock);
	int r = vio_fe_mem_sync_locked(f);
	pthread_mutex_unlock(&f->lock);
	if (r)
		vio_log_limited(&f->rl,
				"vhost-user frontend: cannot share new "
				"memory: %s",
				strerror(-r));
	return r;
}

static void fe_notify(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq || is_dead(f))
		return;
	/* for drivers that did not sync before adding */
	(void)fe_sync_mem(f);
	const struct fe_queue *q = &f->q[idx];
	if (!q_started(q))
		return; /* no ring: nobody to kick */
	/* a new backend first gets the ring (this is the vq's thread) */
	if (fe_needs_restore(f, idx) && vio_fe_restore(f, idx) != 0)
		return;
	/* a stop may come now: the fd stays ours (see the top) */
	uint64_t one = 1;
	if (write(q->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vio_log_limited(&f->rl, "vhost-user frontend: kick: %m");
}

bool vio_fe_sock_hung_up(const struct vio_frontend *f)
{
	struct pollfd p = {.fd = f->sock, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static int fe_wait(void *t, unsigned idx, int timeout_ms)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq)
		return -EINVAL;
	const struct fe_queue *q = &f->q[idx];
	if (is_dead(f))
		return -ENOTCONN;
	if (!q_started(q))
		return -ECANCELED;
	/* reconnect: a new backend gets the ring first (this is the vq's
	 * thread); then the caller looks at the used ring again */
	if (fe_needs_restore(f, idx))
		return vio_fe_restore(f, idx);
	/* the backend never writes to the socket unasked: a hang-up there
	 * is the only other thing worth waking for.  A stop after the check
	 * above signals the call fd: the poll cannot miss it. */
	/* and the backend channel, if this waiter serves it (frontend_req.c;
	 * -1 else): a config change alone wakes with 0, as an interrupt */
	int rfd = vio_fe_req_wait_begin(f);
	struct pollfd p[3] = {{.fd = q->call_fd, .events = POLLIN},
			      {.fd = f->sock, .events = POLLRDHUP},
			      {.fd = rfd, .events = POLLIN}};
	int r = poll(p, 3, timeout_ms);
	int e = errno;
	vio_fe_req_wait_end(f, rfd, r > 0 ? p[2].revents : 0);
	if (r < 0)
		return -e;
	if (r == 0)
		return -ETIMEDOUT;
	if (p[0].revents & POLLIN) {
		uint64_t v;
		ssize_t n = read(q->call_fd, &v, sizeof(v));
		(void)n; /* EAGAIN: another waiter took it */
		if (q_started(q))
			return 0;
		/* stopped: pass the wake-up on to the other waiters */
		wake_waiters(f, idx);
		return -ECANCELED;
	}
	if (p[1].revents) {
		pthread_mutex_lock(&f->lock);
		/* reconnect: a new connection may already be in place */
		if (!fe_reconnects(f) || vio_fe_sock_hung_up(f))
			vio_fe_die(f, "backend closed the connection");
		pthread_mutex_unlock(&f->lock);
		if (fe_reconnects(f))
			return vio_fe_restore(f, idx);
		return -ENOTCONN;
	}
	return 0;
}

/* Valid, and the same number, from connect until vio_frontend_free. */
static int fe_call_fd(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	return idx < f->nq ? f->q[idx].call_fd : -1;
}

const struct vio_transport_ops vio_fe_ops = {
    .name = "vhost-user",
    .device_id = fe_device_id,
    .vendor_id = fe_vendor_id,
    .get_status = fe_get_status,
    .set_status = fe_set_status,
    .get_features = fe_get_features,
    .set_features = fe_set_features,
    .config_read = fe_config_read,
    .config_write = fe_config_write,
    .config_generation = fe_config_generation,
    .num_queues = fe_num_queues,
    .queue_max_size = fe_queue_max_size,
    .queue_setup = fe_queue_setup,
    .queue_disable = fe_queue_disable,
    .notify = fe_notify,
    .wait = fe_wait,
    .call_fd = fe_call_fd,
    .sync_mem = fe_sync_mem,
    /* release: the vdev belongs to the frontend */
};
