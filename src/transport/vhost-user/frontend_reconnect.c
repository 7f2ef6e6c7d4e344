/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend: reconnect (vio_frontend_opts.reconnect_ms;
 * docs/vhost-user-frontend.md "Reconnect").
 *
 * A lost connection (a hang-up seen by a waiter, a message that fails)
 * marks the frontend down (vio_fe_die), not dead.  Whoever next needs the
 * backend (a kick, a wait, a control call, all under f->lock) connects
 * again at the same path, within reconnect_ms of the loss:
 *
 *   1. the socket: a new connection is dup3()ed onto the old socket's
 *      number, so vio_frontend_fd() and the waiters' polls keep one fd;
 *   2. the handshake again: every feature negotiated before must be
 *      offered again, and every protocol feature, and the queues; else
 *      the frontend is dead for good, with the reason;
 *   3. the backend channel (frontend_req.c) and the memory: every
 *      region again (the same memfds);
 *   4. features and status: SET_FEATURES with what the driver acked,
 *      and with STATUS the status byte (FEATURES_OK, then DRIVER_OK);
 *   5. the connection generation goes up and every queue's waiters are
 *      woken.
 *
 * The rings follow one by one, each on the thread that owns its vq (in
 * its next notify or wait: nobody else may touch a driver vq), because
 * the driver's ring is rewritten: "resubmit" (no in-flight region
 * needed, so it works with qemu-storage-daemon).  For a split ring the
 * descriptor table is the driver's alone and intact; what a dead backend
 * leaves is a used index U (used->idx in memory) behind the driver's
 * avail index A.  The buffers still in flight are the driver's busy heads
 * (the vq's shadow state) less those already in used[last_used, U) (used,
 * not yet harvested: the driver takes them as usual).  There are A - U of
 * them (one used entry per available one); they are written into
 * avail[U, A), oldest first as far as the ring still shows the order,
 * and the new backend gets SET_VRING_BASE U: it finds exactly those
 * buffers available, and its used index (whether it takes it from the
 * base, as vio's backend does, or from used->idx, as libvhost-user does)
 * is U, where the driver reads next.  Each is redone (a read reads again,
 * a write writes again: the caller's request must be idempotent, blk's
 * are), and the driver sees one completion per buffer.  Then one kick,
 * in case the backend waits for one.
 *
 * Packed rings cannot be rewritten: used elements overwrite descriptors
 * of buffers still in flight (completion out of order).  They are handed
 * over through the backend's in-flight region instead (INFLIGHT_SHMFD;
 * without it the frontend with a reconnect wait does not offer
 * RING_PACKED): GET_INFLIGHT_FD once after the first handshake (every
 * queue, at the largest ring size offered), the fd and its description
 * kept for the frontend's life; SET_INFLIGHT_FD with it on the first
 * connection before the first packed ring is set up, and on every new
 * connection before any ring.  The backend copies every chain it pops
 * into the region; a new one, given the region, pops the chains the dead
 * one left in flight from there and takes its used position from it, so
 * the ring is given back unchanged.  A ring the driver sets up (not a
 * restore) starts from an empty part of the region; a device reset asks
 * for a new region (as QEMU does).
 *
 * Split rings keep the rewrite even when a region exists (the region is
 * then not given to the backend): it works the same with backends
 * without INFLIGHT_SHMFD (qemu-storage-daemon), and a backend resuming
 * from a region would not look at the rewritten avail ring, so the two
 * cannot be mixed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "ring/vq_internal.h"
#include "transport/vhost-user/frontend_internal.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/driver.h>
#include <vio/mem.h>

/* a mismatch a new connection cannot fix: give up at once */
#define E_MISMATCH (-EPROTONOSUPPORT)

static uint64_t now_ms(void)
{
	return vio_now_ns() / 1000000u;
}

static void wake_all(struct vio_frontend *f)
{
	uint64_t one = 1;
	for (unsigned i = 0; i < f->nq; i++) {
		ssize_t n = write(f->q[i].call_fd, &one, sizeof(one));
		(void)n; /* EAGAIN: a wake-up is pending anyway */
	}
}

/* Dead for good: the reason, logged; waiters woken (they see dead). */
static void give_up(struct vio_frontend *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void give_up(struct vio_frontend *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	shutdown(f->sock, SHUT_RDWR);
	__atomic_store_n(&f->dead, true, __ATOMIC_RELEASE);
	__atomic_store_n(&f->down, false, __ATOMIC_RELEASE);
	vio_log_warn("vhost-user frontend: %s", f->why);
	wake_all(f);
}

/* The new connection onto f->sock's number, with the reply timeouts. */
static int take_sock(struct vio_frontend *f, int fd)
{
	int tmo = f->cfg.reply_timeout_ms > 0 ? f->cfg.reply_timeout_ms
					      : DEFAULT_REPLY_TIMEOUT_MS;
	struct timeval tv = {.tv_sec = tmo / 1000,
			     .tv_usec = (tmo % 1000) * 1000};
	int r = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    dup3(fd, f->sock, O_CLOEXEC) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* ---- the in-flight region (packed rings; see the top) ---- */

static bool region_wanted(const struct vio_frontend *f)
{
	return fe_reconnects(f) && has_pf(f, VIO_VU_PF_INFLIGHT_SHMFD) &&
	       (f->acked & (1ull << VIRTIO_F_RING_PACKED));
}

int vio_fe_inflight_get_locked(struct vio_frontend *f)
{
	/* only packed rings use it: a backend without them (libvhost-user's)
	 * is not asked */
	if (!fe_reconnects(f) || !has_pf(f, VIO_VU_PF_INFLIGHT_SHMFD) ||
	    !(f->offered & (1ull << VIRTIO_F_RING_PACKED)))
		return 0;
	vio_fe_inflight_drop(f);
	unsigned qs = 0;
	for (unsigned i = 0; i < f->nq; i++)
		qs = f->qmax[i] > qs ? f->qmax[i] : qs;
	struct vio_vu_msg m;
	vio_vu_request_init(&m, VIO_VU_GET_INFLIGHT_FD, 0);
	m.p.inflight.num_queues = (uint16_t)f->nq;
	m.p.inflight.queue_size = (uint16_t)qs;
	int r = vio_fe_xfer(f, &m);
	if (r == -EIO)
		return 0; /* refused: no region (packed rings then cannot be
			   * restored: such a queue fails at the reconnect) */
	if (r)
		return r;
	/* a region too small for the queues asked for is no region */
	size_t need =
	    (size_t)f->nq * vio_inflight_queue_bytes((uint16_t)qs, true);
	if (m.p.inflight.num_queues != f->nq || m.p.inflight.queue_size != qs ||
	    m.p.inflight.mmap_size < need) {
		vio_log_warn("vhost-user frontend: %s: in-flight region of "
			     "%" PRIu64 " bytes for %u queues of %u, asked "
			     "%u of %u: not used",
			     f->path, m.p.inflight.mmap_size,
			     m.p.inflight.num_queues, m.p.inflight.queue_size,
			     f->nq, qs);
		close(m.fds[0]);
		return 0;
	}
	f->inf_fd = m.fds[0];
	f->inf = m.p.inflight;
	return 0;
}

void vio_fe_inflight_drop(struct vio_frontend *f)
{
	vio_fe_close_fd(&f->inf_fd);
	memset(&f->inf, 0, sizeof(f->inf));
	f->inf_sent = false;
}

/* SET_INFLIGHT_FD on this connection, once, if a packed ring needs it.
 * Caller holds lock; no ring runs.  0 or as vio_fe_xfer_u64. */
static int inflight_set_locked(struct vio_frontend *f)
{
	if (f->inf_sent || f->inf_fd < 0 || !region_wanted(f))
		return 0;
	struct vio_vu_msg m;
	vio_vu_request_init(&m, VIO_VU_SET_INFLIGHT_FD, 0);
	m.p.inflight = f->inf;
	m.fds[0] = f->inf_fd;
	m.nfds = 1;
	int r = vio_fe_xfer(f, &m);
	if (r == 0)
		f->inf_sent = true;
	return r;
}

int vio_fe_inflight_prepare_locked(struct vio_frontend *f, unsigned idx)
{
	if (!region_wanted(f))
		return 0;
	int r = 0;
	if (f->inf_fd < 0) /* after a reset: a fresh region */
		r = vio_fe_inflight_get_locked(f);
	if (!r && f->inf_sent) {
		/* a new ring: its part must not describe the old one (the
		 * backend reads a part only when the ring starts, and this
		 * ring is stopped) */
		size_t part = vio_inflight_queue_bytes(f->inf.queue_size, true);
		static const char zero[4096];
		off_t at = (off_t)(f->inf.mmap_offset + (uint64_t)idx * part);
		for (size_t done = 0; done < part;) {
			size_t k = part - done < sizeof(zero) ? part - done
							      : sizeof(zero);
			ssize_t w =
			    pwrite(f->inf_fd, zero, k, at + (off_t)done);
			if (w <= 0) {
				vio_log_warn("vhost-user frontend: in-flight "
					     "region: %s: not used",
					     strerror(w < 0 ? errno : EIO));
				vio_fe_inflight_drop(f);
				return 0;
			}
			done += (size_t)w;
		}
	} else if (!r) {
		r = inflight_set_locked(f);
	}
	return r == -EIO ? 0 : r; /* refused: as without a region */
}

/*
 * The handshake on a new connection, checked against the first: 0,
 * -ENOTCONN/-EPROTO (the connection died: try again), E_MISMATCH (this
 * backend can never carry on: reason in *why), or -EIO (it refused a
 * request: try again).
 */
static int handshake_again_(struct vio_frontend *f, uint64_t protocol,
			    char *why, size_t n)
{
	uint64_t v = 0;
	int r = vio_fe_xfer_u64(f, VIO_VU_GET_FEATURES, 0, &v);
	if (r)
		return r;
	bool proto = v & (1ull << VIO_VU_F_PROTOCOL_FEATURES);
	uint64_t feat = v & ~(1ull << VIO_VU_F_PROTOCOL_FEATURES);
	uint64_t need = f->features_sent ? f->acked : 0;
	if ((need & ~feat) || (f->proto && !proto)) {
		uint64_t lost = need & ~feat;
		if (f->proto && !proto)
			lost |= 1ull << VIO_VU_F_PROTOCOL_FEATURES;
		snprintf(why, n,
			 "the backend came back with features 0x%" PRIx64
			 ", without 0x%" PRIx64 " negotiated before",
			 v, lost);
		return E_MISMATCH;
	}
	if (f->proto) {
		r = vio_fe_xfer_u64(f, VIO_VU_GET_PROTOCOL_FEATURES, 0, &v);
		if (r)
			return r;
		if (protocol & ~v) {
			snprintf(why, n,
				 "the backend came back without protocol "
				 "features 0x%" PRIx64 " negotiated before",
				 protocol & ~v);
			return E_MISMATCH;
		}
		r = vio_fe_xfer_u64(f, VIO_VU_SET_PROTOCOL_FEATURES, protocol,
				    NULL);
		if (r)
			return r;
		f->no_ack = false; /* REPLY_ACK applies from here on */
	}
	r = vio_fe_xfer_u64(f, VIO_VU_SET_OWNER, 0, NULL);
	if (r)
		return r;
	/* the backend channel again, if offered (frontend_req.c) */
	r = vio_fe_req_setup_locked(f);
	if (r)
		return r;
	if (has_pf(f, VIO_VU_PF_MQ)) {
		r = vio_fe_xfer_u64(f, VIO_VU_GET_QUEUE_NUM, 0, &v);
		if (r)
			return r;
		if (v < f->nq) {
			snprintf(why, n,
				 "the backend came back with %" PRIu64
				 " queues, %u in use",
				 v, f->nq);
			return E_MISMATCH;
		}
	}
	if (has_pf(f, VIO_VU_PF_CONFIGURE_MEM_SLOTS)) {
		r = vio_fe_xfer_u64(f, VIO_VU_GET_MAX_MEM_SLOTS, 0, &v);
		if (r)
			return r;
		f->max_slots = v > 4096 ? 4096 : (unsigned)v;
	}
	/* every region again: the same memfds */
	__atomic_store_n(&f->synced, 0, __ATOMIC_RELEASE);
	r = vio_fe_mem_sync_locked(f);
	if (r == -ENOSPC || r == -EINVAL) {
		snprintf(why, n, "cannot share the memory again: %s",
			 strerror(-r));
		return E_MISMATCH;
	}
	/* the dirty log, before LOG_ALL turns it on (vio_fe_features_word) */
	if (!r)
		r = vio_fe_log_resend_locked(f);
	if (r || !f->features_sent)
		return r;
	/* packed rings: the in-flight region, before any ring */
	r = inflight_set_locked(f);
	if (r == -EIO) {
		snprintf(why, n, "the backend refused the in-flight region");
		return E_MISMATCH;
	}
	if (r)
		return r;
	r = vio_fe_xfer_u64(f, VIO_VU_SET_FEATURES, vio_fe_features_word(f),
			    NULL);
	if (r || !has_pf(f, VIO_VU_PF_STATUS))
		return r;
	uint8_t s = __atomic_load_n(&f->status, __ATOMIC_RELAXED);
	r = vio_fe_xfer_u64(f, VIO_VU_SET_STATUS,
			    s & ~VIRTIO_CONFIG_S_DRIVER_OK, NULL);
	if (!r && (s & VIRTIO_CONFIG_S_DRIVER_OK))
		r = vio_fe_xfer_u64(f, VIO_VU_SET_STATUS, s, NULL);
	return r;
}

static int handshake_again(struct vio_frontend *f, char *why, size_t n)
{
	f->inf_sent = false; /* a new backend has no region yet */
	/* a new backend has no protocol feature until SET_PROTOCOL_FEATURES
	 * (no REPLY_ACK before it: xfer looks at no_ack) */
	f->no_ack = true;
	int r = handshake_again_(f, f->protocol, why, n);
	f->no_ack = false;
	return r;
}

int vio_fe_reconnect_locked(struct vio_frontend *f)
{
	if (is_dead(f))
		return -ENOTCONN;
	if (!is_down(f))
		return 0;
	uint64_t deadline = f->down_since_ms + (uint64_t)f->cfg.reconnect_ms;
	char err[200] = "", why[200] = "";
	unsigned tries = 0;
	f->reconnecting = true;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			break;
		tries++;
		int fd = vio_fe_sock_open(f, (int)(deadline - now), err,
					  sizeof(err));
		if (fd < 0) {
			if (fd == -ENOENT || fd == -ECONNREFUSED ||
			    fd == -EAGAIN || fd == -ETIMEDOUT)
				continue; /* it waited until the deadline */
			struct timespec ts = {0, CONNECT_RETRY_MS * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		int r = take_sock(f, fd);
		if (r) {
			snprintf(err, sizeof(err), "socket: %s", strerror(-r));
			continue;
		}
		__atomic_store_n(&f->down, false, __ATOMIC_RELEASE);
		f->refused[0] = '\0';
		r = handshake_again(f, why, sizeof(why));
		if (r == 0)
			break;
		if (r == E_MISMATCH) {
			f->reconnecting = false;
			give_up(f, "%s: %s", f->path, why);
			return -ENOTCONN;
		}
		/* it died again (down again), or refused a request */
		snprintf(err, sizeof(err), "%s",
			 r == -EIO && f->refused[0] ? f->refused : f->why);
		if (!is_down(f))
			vio_fe_die(f, "reconnect: %s", err);
		struct timespec ts = {0, CONNECT_RETRY_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	f->reconnecting = false;
	if (is_down(f)) {
		give_up(f,
			"backend gone: nothing carried on at %s within %d ms "
			"(%s)",
			f->path, f->cfg.reconnect_ms,
			err[0] ? err : "no connection");
		return -ENOTCONN;
	}
	f->why[0] = '\0';
	unsigned gen = __atomic_load_n(&f->gen, __ATOMIC_RELAXED) + 1;
	__atomic_store_n(&f->gen, gen, __ATOMIC_RELEASE);
	vio_log("vhost-user frontend: %s: backend back after %" PRIu64
		" ms (connection %u, %u tries); the queues carry on",
		f->path, now_ms() - f->down_since_ms, gen + 1, tries);
	wake_all(f);
	return 0;
}

/* ---- listening (cfg.listen: the backend connects, vio serve --client) */

int vio_fe_listen(struct vio_frontend *f, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!f->path[0] || strlen(f->path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s",
			 f->path[0] ? "too long" : "empty");
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, f->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	struct stat st;
	if (lstat(f->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(f->path); /* stale, or a listener we take over */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(f->path, 0600) || listen(fd, 4)) {
		int e = errno;
		snprintf(err, errlen, "listen at %s: %s", f->path, strerror(e));
		close(fd);
		return -e;
	}
	f->lsock = fd;
	return 0;
}

void vio_fe_unlisten(struct vio_frontend *f)
{
	if (f->lsock < 0)
		return;
	vio_fe_close_fd(&f->lsock);
	unlink(f->path);
}

int vio_fe_sock_open(struct vio_frontend *f, int timeout_ms, char *err,
		     size_t errlen)
{
	if (f->lsock < 0)
		return vio_fe_sock_connect(
		    f->path, timeout_ms > 0 ? timeout_ms : 0, err, errlen);
	struct pollfd p = {.fd = f->lsock, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		snprintf(err, errlen, "no backend connected to %s within %d ms",
			 f->path, timeout_ms);
		return -ETIMEDOUT;
	}
	int fd = r < 0 ? -1 : accept4(f->lsock, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "accept at %s: %s", f->path, strerror(e));
		return -e;
	}
	return fd;
}

static bool bit_get(const uint64_t *b, unsigned i)
{
	return b[i / 64] & (1ull << (i % 64));
}

/*
 * Rewrite split ring vq for a new backend (see the top): *base is the
 * index it starts at.  0, or -EPROTO with the reason in why.  Runs on the
 * vq's thread, the backend dead or not yet started on it.
 */
static int rebase_split(struct vio_vq *vq, uint32_t *base, char *why, size_t n)
{
	uint16_t size = vq->size, mask = vq->mask;
	uint16_t a = vq->avail_idx, last = vq->last_used;
	uint16_t u = le16toh(VIO_LOAD_ACQ(&vq->used->idx));
	if ((uint16_t)(u - last) > size || (uint16_t)(a - u) > size) {
		snprintf(why, n,
			 "used index %u is not between %u (next to take) "
			 "and %u (available)",
			 u, last, a);
		return -EPROTO;
	}
	uint64_t *busy = calloc((size + 63u) / 64u, sizeof(*busy));
	uint16_t *list = calloc(size, sizeof(*list));
	if (!busy || !list) {
		free(busy);
		free(list);
		snprintf(why, n, "out of memory");
		return -EPROTO;
	}
	unsigned k = 0;
	for (unsigned h = 0; h < size; h++)
		if (vq->state[h].token) {
			busy[h / 64] |= 1ull << (h % 64);
			k++;
		}
	/* used but not yet taken by the driver: not in flight */
	for (uint16_t i = last; i != u; i++) {
		uint32_t h = le32toh(VIO_LOAD(&vq->used->ring[i & mask].id));
		if (h < size && bit_get(busy, h)) {
			busy[h / 64] &= ~(1ull << (h % 64));
			k--;
		}
	}
	int r = 0;
	if (k != (uint16_t)(a - u)) {
		snprintf(why, n,
			 "%u buffers in flight but the ring says %u "
			 "(available %u, used %u)",
			 k, (uint16_t)(a - u), a, u);
		r = -EPROTO;
		goto out;
	}
	/* in the order they were made available, as far as the avail
	 * ring still shows it, then the rest */
	unsigned j = 0;
	for (unsigned c = 0; c < size; c++) {
		uint16_t p = (uint16_t)(a - size + c);
		uint16_t h = le16toh(VIO_LOAD(&vq->avail->ring[p & mask]));
		if (h < size && bit_get(busy, h)) {
			busy[h / 64] &= ~(1ull << (h % 64));
			list[j++] = h;
		}
	}
	for (unsigned h = 0; h < size; h++)
		if (bit_get(busy, h))
			list[j++] = (uint16_t)h;
	for (unsigned i = 0; i < j; i++)
		VIO_STORE(&vq->avail->ring[(uint16_t)(u + i) & mask],
			  htole16(list[i]));
	/* everything added is available (a kick later changes nothing) */
	VIO_STORE_REL(&vq->avail->idx, htole16(a));
	*base = u;
	if (k)
		vio_log("vhost-user frontend: queue %u: %u requests in flight "
			"are redone",
			vq->index, k);
out:
	free(busy);
	free(list);
	return r;
}

/* Give the new backend queue idx's ring.  Caller holds lock, on the vq's
 * thread.  0, or -ENOTCONN (lost again, or dead). */
static int ring_restore_locked(struct vio_frontend *f, unsigned idx)
{
	struct fe_queue *q = &f->q[idx];
	unsigned gen = __atomic_load_n(&f->gen, __ATOMIC_RELAXED);
	struct vio_vq *vq = f->vdev ? vio_drvdev_vq(f->vdev, idx) : NULL;
	uint32_t base = 0;
	char why[200] = "";
	int r = 0;
	if (vq && vio_vq_is_packed(vq) && !f->inf_sent) {
		snprintf(why, sizeof(why),
			 "a packed ring cannot be restored without the "
			 "backend's in-flight region");
		r = -EPROTO;
	} else if (vq && vio_vq_is_packed(vq)) {
		/* unchanged: the backend resumes from the region (its used
		 * position too).  The base is only for a backend that finds
		 * this queue's part empty (it never started the ring: nothing
		 * was taken): avail and used where the driver reads next */
		uint32_t pos = vq->last_used | (uint32_t)vq->used_wrap << 15;
		base = pos | pos << 16;
		vio_log("vhost-user frontend: queue %u: packed ring handed "
			"over with the in-flight region",
			vq->index);
	} else if (vq) {
		r = rebase_split(vq, &base, why, sizeof(why));
	}
	if (r) {
		/* this queue only: the driver sees it broken */
		__atomic_store_n(&q->gen, gen, __ATOMIC_RELEASE);
		vio_log_warn("vhost-user frontend: queue %u: %s", idx, why);
		vio_vq_set_broken(vq, "reconnect: %s", why);
		return 0;
	}
	r = vio_fe_ring_setup_locked(f, idx, base);
	if (r == -EIO) {
		__atomic_store_n(&q->gen, gen, __ATOMIC_RELEASE);
		if (vq)
			vio_vq_set_broken(vq, "reconnect: the backend "
					      "refused the ring");
		return 0;
	}
	if (r)
		return -ENOTCONN;
	__atomic_store_n(&q->gen, gen, __ATOMIC_RELEASE);
	uint64_t one = 1;
	ssize_t w = write(q->kick_fd, &one, sizeof(one));
	(void)w; /* EAGAIN: a kick is pending */
	return 0;
}

int vio_fe_restore(struct vio_frontend *f, unsigned idx)
{
	pthread_mutex_lock(&f->lock);
	int r = 0;
	for (;;) {
		if (is_dead(f)) {
			r = -ENOTCONN;
			break;
		}
		if (is_down(f) && vio_fe_reconnect_locked(f)) {
			r = -ENOTCONN;
			break;
		}
		if (!__atomic_load_n(&f->q[idx].started, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&f->q[idx].gen, __ATOMIC_RELAXED) ==
			__atomic_load_n(&f->gen, __ATOMIC_RELAXED))
			break;
		if (ring_restore_locked(f, idx) == 0)
			break;
		/* lost again while restoring: reconnect again */
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

int vio_fe_take_sock(struct vio_frontend *f, int fd)
{
	return take_sock(f, fd);
}

int vio_fe_handshake_again(struct vio_frontend *f, char *why, size_t n)
{
	return handshake_again(f, why, n);
}
