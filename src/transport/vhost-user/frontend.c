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
 *
 * Locking: f->lock serialises the socket (one request and its reply at a
 * time) and the control state.  The data path (notify, wait) takes it
 * only when memory must be sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/bus.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

#define DEFAULT_QUEUE_SIZE 256u
#define DEFAULT_REPLY_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS 20
/* protocol features this frontend uses */
#define PROTOCOL_WANTED                                                        \
	((1ull << VIO_VU_PF_MQ) | (1ull << VIO_VU_PF_REPLY_ACK) |              \
	 (1ull << VIO_VU_PF_CONFIG) | (1ull << VIO_VU_PF_RESET_DEVICE) |       \
	 (1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS) | (1ull << VIO_VU_PF_STATUS))
/* packed rings: avail and used wrap counters start at 1 (bits 15, 31) */
#define PACKED_INITIAL_BASE 0x80008000u

struct fe_queue {
	int kick_fd, call_fd;
	bool started;
};

struct vio_frontend {
	struct vio_frontend_config cfg;
	int sock;
	pthread_mutex_t lock;
	bool dead; /* __atomic */
	char why[200];
	char refused[120]; /* the last request the backend acked an error */
	uint64_t offered;  /* GET_FEATURES, without PROTOCOL_FEATURES */
	bool proto;	   /* VHOST_USER_F_PROTOCOL_FEATURES negotiated */
	uint64_t protocol;
	unsigned max_slots; /* CONFIGURE_MEM_SLOTS, else 0 */
	unsigned nq;
	unsigned config_size;
	unsigned queue_size;
	uint64_t acked;	    /* set_features */
	bool features_sent; /* SET_FEATURES since the last reset */
	uint8_t status;	    /* __atomic */
	unsigned synced;    /* regions sent: __atomic */
	struct vio_vdev *vdev;
	struct vio_ratelimit rl;
	struct fe_queue q[VIO_MAX_QUEUES];
};

static bool has_pf(const struct vio_frontend *f, unsigned bit)
{
	return f->protocol & (1ull << bit);
}

static bool is_dead(const struct vio_frontend *f)
{
	return __atomic_load_n(&f->dead, __ATOMIC_ACQUIRE);
}

/* The backend is gone or broke the protocol: stop talking to it.  The
 * socket stays open (shut down, so it polls as hung up) until free. */
static void fe_die(struct vio_frontend *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fe_die(struct vio_frontend *f, const char *fmt, ...)
{
	if (is_dead(f))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	__atomic_store_n(&f->dead, true, __ATOMIC_RELEASE);
	shutdown(f->sock, SHUT_RDWR);
	vio_log("vhost-user frontend: %s", f->why);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
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
	bool ack =
	    info->reply == VIO_VU_REPLY_NONE && has_pf(f, VIO_VU_PF_REPLY_ACK);
	if (ack)
		m->hdr.flags |= VIO_VU_FLAG_NEED_REPLY;
	m->hdr.size = vio_vu_payload_size(m);
	int r = vio_vu_send(f->sock, m);
	if (r) {
		fe_die(f, "%s: cannot send: %s", info->name, strerror(-r));
		return -ENOTCONN;
	}
	if (info->reply == VIO_VU_REPLY_NONE && !ack)
		return 0;
	char why[160] = "";
	r = vio_vu_recv_reply(f->sock, req, config_size, m, why, sizeof(why));
	if (r == -EPROTO) {
		fe_die(f, "bad reply from the backend: %s", why);
		return -EPROTO;
	}
	if (r == -ECONNRESET) {
		fe_die(f, "backend closed the connection (during %s)",
		       info->name);
		return -ENOTCONN;
	}
	if (r) {
		fe_die(f, "%s", why);
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

/* A request without payload or with a u64 one, answered by a u64. */
static int xfer_u64(struct vio_frontend *f, uint32_t req, uint64_t in,
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
	return xfer_u64(f, VIO_VU_GET_FEATURES, 0, NULL);
}

/* Send the regions the vio_mem gained since the last sync and wait until
 * the backend has them.  Caller holds lock. */
static int mem_sync_locked(struct vio_frontend *f)
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

/* Stop ring idx: disable it, GET_VRING_BASE (the ring stops there),
 * close our ends.  Caller holds lock.  Errors only matter while alive. */
static void queue_stop_locked(struct vio_frontend *f, unsigned idx)
{
	struct fe_queue *q = &f->q[idx];
	if (q->started && !is_dead(f)) {
		if (f->proto)
			(void)xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx, 0);
		struct vio_vu_msg m;
		vio_vu_request_init(&m, VIO_VU_GET_VRING_BASE, 0);
		m.p.state.index = idx;
		if (xfer(f, &m, 0) == 0 && m.p.state.index != idx)
			fe_die(f,
			       "GET_VRING_BASE: reply for queue %u, asked %u",
			       m.p.state.index, idx);
	}
	q->started = false;
	close_fd(&q->kick_fd);
	close_fd(&q->call_fd);
}

static void reset_locked(struct vio_frontend *f)
{
	bool any = f->features_sent;
	for (unsigned i = 0; i < f->nq; i++) {
		any |= f->q[i].started;
		queue_stop_locked(f, i);
	}
	if (any && !is_dead(f)) {
		if (has_pf(f, VIO_VU_PF_STATUS))
			(void)xfer_u64(f, VIO_VU_SET_STATUS, 0, NULL);
		else if (has_pf(f, VIO_VU_PF_RESET_DEVICE))
			(void)xfer_u64(f, VIO_VU_RESET_DEVICE, 0, NULL);
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
		pthread_mutex_lock(&f->lock);
		int r = xfer_u64(f, VIO_VU_GET_STATUS, 0, &v);
		pthread_mutex_unlock(&f->lock);
		if (r == 0 && v > 0xff) {
			pthread_mutex_lock(&f->lock);
			fe_die(f, "GET_STATUS: value 0x%" PRIx64, v);
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
	int r = xfer_u64(f, VIO_VU_SET_FEATURES, v, NULL);
	if (r)
		return r;
	f->features_sent = true;
	if (!has_pf(f, VIO_VU_PF_STATUS))
		return 0;
	r = xfer_u64(f, VIO_VU_SET_STATUS, s, NULL);
	uint64_t got = 0;
	if (!r)
		r = xfer_u64(f, VIO_VU_GET_STATUS, 0, &got);
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
		r = xfer_u64(f, VIO_VU_SET_STATUS, s, NULL);
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

static bool config_range(const struct vio_frontend *f, unsigned off,
			 unsigned len)
{
	return off <= f->config_size && len <= f->config_size - off;
}

/* The whole config space is read every time: some backends ignore the
 * offset (they always answer from byte 0), so only offset 0 is asked. */
static int fe_config_read(void *t, unsigned off, void *buf, unsigned len)
{
	struct vio_frontend *f = t;
	if (!has_pf(f, VIO_VU_PF_CONFIG))
		return -ENOTSUP;
	if (!config_range(f, off, len))
		return -EINVAL;
	if (!len)
		return 0;
	struct vio_vu_msg m;
	vio_vu_request_init(&m, VIO_VU_GET_CONFIG, 0);
	m.p.config.offset = 0;
	m.p.config.size = f->config_size;
	pthread_mutex_lock(&f->lock);
	int r = xfer(f, &m, f->config_size);
	if (r == 0 && m.hdr.size == 0) {
		vio_log_limited(&f->rl,
				"vhost-user frontend: backend refused "
				"GET_CONFIG of %u bytes",
				f->config_size);
		r = -EIO;
	} else if (r == 0 && (m.p.config.offset != 0 ||
			      m.p.config.size != f->config_size)) {
		fe_die(f, "GET_CONFIG: reply for offset %u size %u, asked 0 %u",
		       m.p.config.offset, m.p.config.size, f->config_size);
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
	if (!config_range(f, off, len) || !len)
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
	return idx < f->nq ? (int)f->queue_size : 0;
}

static int fe_queue_setup(void *t, unsigned idx, uint16_t size,
			  const struct vio_vq_layout *layout)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq || !layout || !size || size > f->queue_size)
		return -EINVAL;
	struct fe_queue *q = &f->q[idx];
	pthread_mutex_lock(&f->lock);
	int r = -ENOTCONN;
	if (is_dead(f))
		goto out;
	queue_stop_locked(f, idx);
	r = mem_sync_locked(f);
	if (r)
		goto out;
	q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kick_fd < 0 || q->call_fd < 0) {
		r = -errno;
		goto fail;
	}
	bool packed = f->acked & (1ull << VIRTIO_F_RING_PACKED);
	r = xfer_state(f, VIO_VU_SET_VRING_NUM, idx, size);
	if (!r)
		r = xfer_state(f, VIO_VU_SET_VRING_BASE, idx,
			       packed ? PACKED_INITIAL_BASE : 0);
	if (!r) {
		struct vio_vu_msg m;
		vio_vu_request_init(&m, VIO_VU_SET_VRING_ADDR, 0);
		m.p.addr.index = idx;
		m.p.addr.desc = layout->desc_addr;
		m.p.addr.avail = layout->driver_addr;
		m.p.addr.used = layout->device_addr;
		r = xfer(f, &m, 0);
	}
	/* the call fd before the kick fd: without protocol features the
	 * kick fd starts the ring */
	if (!r)
		r = xfer_vring_fd(f, VIO_VU_SET_VRING_CALL, idx, q->call_fd);
	if (!r)
		r = xfer_vring_fd(f, VIO_VU_SET_VRING_KICK, idx, q->kick_fd);
	q->started = true; /* from here on a stop is needed */
	if (!r && f->proto)
		r = xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx, 1);
	if (!r)
		goto out;
fail:
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
	int r = mem_sync_locked(f);
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
	int fd = f->q[idx].kick_fd;
	uint64_t one = 1;
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vio_log_limited(&f->rl, "vhost-user frontend: kick: %m");
}

static bool sock_hung_up(const struct vio_frontend *f)
{
	struct pollfd p = {.fd = f->sock, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static int fe_wait(void *t, unsigned idx, int timeout_ms)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq || f->q[idx].call_fd < 0)
		return -EINVAL;
	if (is_dead(f))
		return -ENOTCONN;
	/* the backend never writes to the socket unasked: a hang-up there
	 * is the only other thing worth waking for */
	struct pollfd p[2] = {{.fd = f->q[idx].call_fd, .events = POLLIN},
			      {.fd = f->sock, .events = POLLRDHUP}};
	int r = poll(p, 2, timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	if (p[0].revents & POLLIN) {
		uint64_t v;
		ssize_t n = read(f->q[idx].call_fd, &v, sizeof(v));
		(void)n; /* EAGAIN: another waiter took it */
		return 0;
	}
	if (p[1].revents) {
		pthread_mutex_lock(&f->lock);
		fe_die(f, "backend closed the connection");
		pthread_mutex_unlock(&f->lock);
		return -ENOTCONN;
	}
	return 0;
}

static int fe_call_fd(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	return idx < f->nq ? f->q[idx].call_fd : -1;
}

static const struct vio_transport_ops frontend_ops = {
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

/* ---- connecting ---- */

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

static uint64_t now_ms(void)
{
	return vio_now_ns() / 1000000u;
}

static int sock_connect(const char *path, int timeout_ms, char *err,
			size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
		ERR("socket path %s", path && *path ? "too long" : "empty");
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	uint64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			int e = errno;
			ERR("socket: %s", strerror(e));
			return -e;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int e = errno;
		close(fd);
		bool retry = e == ENOENT || e == ECONNREFUSED || e == EAGAIN;
		if (!retry || now_ms() >= deadline) {
			if (e == ENOENT || e == ECONNREFUSED)
				ERR("nothing listens at %s (%s)", path,
				    strerror(e));
			else
				ERR("cannot connect to %s: %s", path,
				    strerror(e));
			return -e;
		}
		struct timespec ts = {0, CONNECT_RETRY_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Config space bytes to ask for when the caller does not say: the fields
 * vio's drivers read, which every backend of that type has (a larger
 * size than the backend knows makes some refuse GET_CONFIG). */
static unsigned default_config_size(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK:
		/* up to write_zeroes_may_unmap and its padding (VIRTIO 1.1) */
		return offsetof(struct virtio_blk_config, unused1) +
		       sizeof(((struct virtio_blk_config *)0)->unused1);
	case VIRTIO_ID_NET:
		return offsetof(struct virtio_net_config, mtu) +
		       sizeof(((struct virtio_net_config *)0)->mtu);
	default:
		return 0;
	}
}

static int handshake(struct vio_frontend *f, const char *path, char *err,
		     size_t errlen)
{
	uint64_t v = 0;
	int r = xfer_u64(f, VIO_VU_GET_FEATURES, 0, &v);
	if (r)
		goto fail;
	f->proto = v & (1ull << VIO_VU_F_PROTOCOL_FEATURES);
	f->offered = v & ~(1ull << VIO_VU_F_PROTOCOL_FEATURES);
	if (!(f->offered & (1ull << VIRTIO_F_VERSION_1))) {
		ERR("%s: the backend does not offer VIRTIO_F_VERSION_1 "
		    "(features 0x%" PRIx64 "): legacy devices are not "
		    "supported",
		    path, v);
		return -ENODEV;
	}
	if (f->proto) {
		r = xfer_u64(f, VIO_VU_GET_PROTOCOL_FEATURES, 0, &v);
		if (r)
			goto fail;
		uint64_t want =
		    v & PROTOCOL_WANTED & ~f->cfg.protocol_features_off;
		r = xfer_u64(f, VIO_VU_SET_PROTOCOL_FEATURES, want, NULL);
		if (r)
			goto fail;
		f->protocol = want; /* REPLY_ACK applies from here on */
	}
	r = xfer_u64(f, VIO_VU_SET_OWNER, 0, NULL);
	if (r)
		goto fail;

	unsigned have = 1;
	if (has_pf(f, VIO_VU_PF_MQ)) {
		r = xfer_u64(f, VIO_VU_GET_QUEUE_NUM, 0, &v);
		if (r)
			goto fail;
		if (v == 0) {
			ERR("%s: the backend has no queue (GET_QUEUE_NUM 0)",
			    path);
			return -ENODEV;
		}
		have = v > VIO_MAX_QUEUES ? VIO_MAX_QUEUES : (unsigned)v;
		f->nq = f->cfg.num_queues ? f->cfg.num_queues : have;
	} else {
		/* without MQ the backend cannot say: trust the caller */
		f->nq = f->cfg.num_queues ? f->cfg.num_queues : 1;
		have = f->nq;
	}
	if (f->nq > have || f->nq > VIO_MAX_QUEUES) {
		ERR("%s: %u queues asked, the backend has %u", path, f->nq,
		    have);
		return -EINVAL;
	}
	if (has_pf(f, VIO_VU_PF_CONFIGURE_MEM_SLOTS)) {
		r = xfer_u64(f, VIO_VU_GET_MAX_MEM_SLOTS, 0, &v);
		if (r)
			goto fail;
		if (v == 0) {
			ERR("%s: the backend has no memory slot", path);
			return -ENODEV;
		}
		f->max_slots = v > 4096 ? 4096 : (unsigned)v;
	}
	r = mem_sync_locked(f);
	if (r) {
		if (is_dead(f))
			goto fail;
		ERR("%s: cannot share memory: %s", path, strerror(-r));
		return r;
	}
	return 0;
fail:
	if (is_dead(f))
		ERR("%s: %s", path, f->why);
	else if (r == -EIO && f->refused[0])
		ERR("%s: handshake failed: %s", path, f->refused);
	else
		ERR("%s: handshake failed: %s", path, strerror(-r));
	return r;
}

struct vio_frontend *vio_frontend_connect(const char *path,
					  const struct vio_frontend_config *cfg,
					  char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!cfg || !cfg->mem || !path) {
		ERR("no memory, configuration or path");
		errno = EINVAL;
		return NULL;
	}
	unsigned qs = cfg->queue_size ? cfg->queue_size : DEFAULT_QUEUE_SIZE;
	unsigned cs = cfg->config_size ? cfg->config_size
				       : default_config_size(cfg->device_id);
	if (qs > VIO_VQ_MAX_SIZE || cs > VIO_VU_CONFIG_MAX ||
	    cfg->num_queues > VIO_MAX_QUEUES) {
		ERR("bad configuration (queue size %u, config size %u, "
		    "%u queues)",
		    qs, cs, cfg->num_queues);
		errno = EINVAL;
		return NULL;
	}
	struct vio_frontend *f = calloc(1, sizeof(*f));
	if (!f) {
		ERR("out of memory");
		errno = ENOMEM;
		return NULL;
	}
	f->cfg = *cfg;
	f->queue_size = qs;
	f->config_size = cs;
	f->sock = -1;
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++)
		f->q[i].kick_fd = f->q[i].call_fd = -1;
	pthread_mutex_init(&f->lock, NULL);

	int r = sock_connect(path, cfg->connect_timeout_ms, err, errlen);
	if (r < 0)
		goto fail;
	f->sock = r;
	int tmo = cfg->reply_timeout_ms > 0 ? cfg->reply_timeout_ms
					    : DEFAULT_REPLY_TIMEOUT_MS;
	struct timeval tv = {.tv_sec = tmo / 1000,
			     .tv_usec = (tmo % 1000) * 1000};
	if (setsockopt(f->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(f->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		r = -errno;
		ERR("setsockopt: %s", strerror(-r));
		goto fail;
	}
	pthread_mutex_lock(&f->lock);
	r = handshake(f, path, err, errlen);
	pthread_mutex_unlock(&f->lock);
	if (r)
		goto fail;
	f->vdev = vio_vdev_new(&frontend_ops, f, cfg->mem);
	if (!f->vdev) {
		r = -errno;
		ERR("out of memory");
		goto fail;
	}
	return f;
fail:
	vio_frontend_free(f);
	errno = r == -EPROTO || r == -ENOTCONN ? ECONNRESET : -r;
	return NULL;
}

struct vio_vdev *vio_frontend_vdev(struct vio_frontend *f)
{
	return f->vdev;
}

bool vio_frontend_alive(const struct vio_frontend *f)
{
	return f && !is_dead(f) && !sock_hung_up(f);
}

int vio_frontend_fd(const struct vio_frontend *f)
{
	return f->sock;
}

const char *vio_frontend_error(const struct vio_frontend *f)
{
	if (!is_dead(f))
		return sock_hung_up(f) ? "backend closed the connection" : "";
	return f->why;
}

void vio_frontend_free(struct vio_frontend *f)
{
	if (!f)
		return;
	/* resets the device (rings stopped) if still live */
	vio_vdev_free(f->vdev);
	f->vdev = NULL;
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++) {
		f->q[i].started = false;
		close_fd(&f->q[i].kick_fd);
		close_fd(&f->q[i].call_fd);
	}
	pthread_mutex_unlock(&f->lock);
	close_fd(&f->sock);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- the bus across processes ---- */

#define URI_SCHEME "vhost-user:"

struct vio_frontend *vio_bus_connect(struct vio_bus *bus, const char *uri,
				     const struct vio_frontend_config *cfg,
				     char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!bus || !uri || strncmp(uri, URI_SCHEME, strlen(URI_SCHEME))) {
		ERR("%s: not a vhost-user:PATH address", uri ? uri : "(null)");
		errno = EINVAL;
		return NULL;
	}
	const char *path = uri + strlen(URI_SCHEME);
	struct vio_frontend *f = vio_frontend_connect(path, cfg, err, errlen);
	if (!f)
		return NULL;
	int r = vio_bus_add(bus, f->vdev);
	if (r == 0)
		return f;
	/* the bus sets DRIVER before a probe, and nothing without a match */
	bool probed = __atomic_load_n(&f->status, __ATOMIC_ACQUIRE) &
		      VIRTIO_CONFIG_S_DRIVER;
	if (!probed)
		ERR("%s: no driver on the bus for device id %u", path,
		    cfg->device_id);
	else
		ERR("%s: the driver refused the device: %s (is the backend a "
		    "device of type %u?)",
		    path, is_dead(f) ? f->why : strerror(-r), cfg->device_id);
	vio_bus_remove(bus, f->vdev);
	vio_frontend_free(f);
	errno = -r;
	return NULL;
}
