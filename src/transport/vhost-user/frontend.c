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
 * Connecting, the handshake and free are in frontend_connect.c; the
 * queues (ring setup and stop, notify, wait) in frontend_queue.c.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vhost_types.h>
#include <linux/virtio_config.h>

#include "transport/vhost-user/frontend_internal.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

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
	if (f->moving) { /* the new backend failed: the move goes back */
		__atomic_store_n(&f->down, true, __ATOMIC_RELEASE);
		return;
	}
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

/* ---- dirty log ----
 *
 * vhost-user's log is a bitmap of the frontend's address space, one bit
 * per 4 KiB page of guest (here: device) address; the regions sit at
 * their device addresses (from 4 GiB, vio/mem.h), so the log covers 0 up
 * to the end of the last region shared.  It is a memfd handed over with
 * SET_LOG_BASE (protocol feature LOG_SHMFD); the backend ORs bits in,
 * and VHOST_F_LOG_ALL in SET_FEATURES turns its logging on and off
 * without a reset.
 */
#define LOG_PAGE 4096ull

static uint64_t log_bytes(const struct vio_frontend *f)
{
	uint64_t end = 0;
	unsigned n = vio_mem_region_count(f->cfg.mem);
	for (unsigned i = 0; i < n; i++) {
		const struct vio_region *r = vio_mem_region(f->cfg.mem, i);
		if (r && r->addr + r->size > end)
			end = r->addr + r->size;
	}
	uint64_t pages = (end + LOG_PAGE - 1) / LOG_PAGE;
	/* whole pages of bitmap, at least one */
	uint64_t bytes = (pages + 7) / 8;
	bytes = (bytes + LOG_PAGE - 1) / LOG_PAGE * LOG_PAGE;
	return bytes ? bytes : LOG_PAGE;
}

static int log_send_locked(struct vio_frontend *f, int fd, uint64_t size)
{
	struct vio_vu_msg m;
	vio_vu_request_init(&m, VIO_VU_SET_LOG_BASE, 0);
	m.p.log.mmap_size = size;
	m.p.log.mmap_offset = 0;
	m.fds[0] = fd;
	m.nfds = 1;
	/* The reply (a u64) is only the backend's acknowledgement: the spec
	 * gives its value no meaning and QEMU ignores it.  libvhost-user
	 * (qemu-storage-daemon) sends back whatever the payload held, the
	 * log's size, so a non-zero value is no refusal: a backend that
	 * cannot take the log closes the connection. */
	return xfer(f, &m, 0);
}

/* A new log sized for the memory shared now, to the backend; the bits
 * of the old one carry over (the backend wrote it until its reply).
 * Caller holds lock. */
static int log_base_locked(struct vio_frontend *f)
{
	uint64_t size = log_bytes(f);
	int fd = memfd_create("vio-dirty-log", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	void *p = MAP_FAILED;
	if (ftruncate(fd, (off_t)size) == 0)
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	int r = log_send_locked(f, fd, size);
	if (r) {
		munmap(p, size);
		close(fd);
		return r;
	}
	if (f->log_map) {
		for (uint64_t i = 0; i < f->log_size; i++)
			if (f->log_map[i])
				__atomic_fetch_or((uint8_t *)p + i,
						  f->log_map[i],
						  __ATOMIC_RELAXED);
		vio_fe_log_free(f);
	}
	f->log_fd = fd;
	f->log_map = p;
	f->log_size = size;
	return 0;
}

int vio_fe_log_resend_locked(struct vio_frontend *f)
{
	if (!f->log_map || !has_pf(f, VIO_VU_PF_LOG_SHMFD))
		return 0;
	return log_send_locked(f, f->log_fd, f->log_size);
}

void vio_fe_log_free(struct vio_frontend *f)
{
	if (f->log_map)
		munmap(f->log_map, f->log_size);
	f->log_map = NULL;
	f->log_size = 0;
	vio_fe_close_fd(&f->log_fd);
}

uint64_t vio_fe_features_word(const struct vio_frontend *f)
{
	uint64_t v = f->acked & ~(1ull << VHOST_F_LOG_ALL);
	if (f->proto)
		v |= 1ull << VIO_VU_F_PROTOCOL_FEATURES;
	if (f->log_all)
		v |= 1ull << VHOST_F_LOG_ALL;
	return v;
}

int vio_frontend_dirty_log(struct vio_frontend *f, bool on)
{
	pthread_mutex_lock(&f->lock);
	int r = 0;
	if (!can_talk(f)) {
		r = -ENOTCONN;
	} else if (on && (!has_pf(f, VIO_VU_PF_LOG_SHMFD) ||
			  !(f->offered & (1ull << VHOST_F_LOG_ALL)))) {
		r = -EOPNOTSUPP;
	} else if (on != f->log_all) {
		if (on && !f->log_map)
			r = log_base_locked(f);
		bool was = f->log_all;
		f->log_all = on;
		/* before FEATURES_OK it goes with the driver's SET_FEATURES */
		if (!r && f->features_sent)
			r = vio_fe_xfer_u64(f, VIO_VU_SET_FEATURES,
					    vio_fe_features_word(f), NULL);
		if (r)
			f->log_all = was;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

uint64_t vio_frontend_dirty_pages(struct vio_frontend *f)
{
	pthread_mutex_lock(&f->lock);
	uint64_t n = 0;
	for (uint64_t i = 0; f->log_map && i < f->log_size; i++)
		n += (unsigned)__builtin_popcount(
		    __atomic_load_n(&f->log_map[i], __ATOMIC_RELAXED));
	pthread_mutex_unlock(&f->lock);
	return n;
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
	r = mem_barrier(f);
	/* the memory outgrew the dirty log: a bigger one */
	if (!r && f->log_map && log_bytes(f) > f->log_size)
		r = log_base_locked(f);
	return r;
}

/* ---- reset ---- */

static void reset_locked(struct vio_frontend *f)
{
	bool any = f->features_sent;
	for (unsigned i = 0; i < f->nq; i++) {
		any |= q_started(&f->q[i]);
		vio_fe_queue_stop_locked(f, i);
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
	/* a new device: a fresh in-flight region at the next ring setup (the
	 * old one describes rings that are gone) */
	vio_fe_inflight_drop(f);
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
	int r = vio_fe_xfer_u64(f, VIO_VU_SET_FEATURES, vio_fe_features_word(f),
				NULL);
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

int vio_fe_sync_mem(void *t)
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

bool vio_fe_sock_hung_up(const struct vio_frontend *f)
{
	struct pollfd p = {.fd = f->sock, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* the queue ops are in frontend_queue.c */
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
    .num_queues = vio_fe_num_queues,
    .queue_max_size = vio_fe_queue_max_size,
    .queue_setup = vio_fe_queue_setup,
    .queue_disable = vio_fe_queue_disable,
    .notify = vio_fe_notify,
    .wait = vio_fe_wait,
    .call_fd = vio_fe_call_fd,
    .sync_mem = vio_fe_sync_mem,
    /* release: the vdev belongs to the frontend */
};
