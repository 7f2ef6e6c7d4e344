/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend's queues: the ring messages (setup, the stop
 * with GET_VRING_BASE) and the data path (notify, wait), as transport
 * ops.  The messages, memory, status, config and the ops table are in
 * frontend.c; see docs/vhost-user-frontend.md.
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
 * Locking: ring setup and stop hold f->lock (they talk on the socket);
 * notify and wait take it only when memory must be sent or the
 * connection was lost.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "transport/vhost-user/frontend_internal.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"

/* packed rings: avail and used wrap counters start at 1 (bits 15, 31) */
#define PACKED_INITIAL_BASE 0x80008000u

/* Empty an eventfd of ours (non-blocking). */
static void drain(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));
	(void)n; /* EAGAIN: it was empty */
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
	return vio_fe_xfer(f, &m);
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
void vio_fe_queue_stop_locked(struct vio_frontend *f, unsigned idx)
{
	struct fe_queue *q = &f->q[idx];
	if (!q_started(q))
		return;
	if (can_talk(f)) {
		if (f->proto)
			(void)vio_fe_xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx,
						0);
		struct vio_vu_msg m;
		vio_vu_request_init(&m, VIO_VU_GET_VRING_BASE, 0);
		m.p.state.index = idx;
		if (vio_fe_xfer(f, &m) == 0 && m.p.state.index != idx)
			vio_fe_die(
			    f, "GET_VRING_BASE: reply for queue %u, asked %u",
			    m.p.state.index, idx);
	}
	__atomic_store_n(&q->started, false, __ATOMIC_RELEASE);
	wake_waiters(f, idx);
}

/* ---- the transport ops for queues ---- */

unsigned vio_fe_num_queues(void *t)
{
	struct vio_frontend *f = t;
	return f->nq;
}

int vio_fe_queue_max_size(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	return idx < f->nq ? (int)f->qmax[idx] : 0;
}

/* The ring messages of queue idx, from its recorded size and layout:
 * NUM, BASE, ADDR, CALL, KICK.  Caller holds lock. */
static int ring_msgs_locked(struct vio_frontend *f, unsigned idx, uint32_t base)
{
	struct fe_queue *q = &f->q[idx];
	int r = vio_fe_xfer_state(f, VIO_VU_SET_VRING_NUM, idx, q->size);
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
		r = vio_fe_xfer_state(f, VIO_VU_SET_VRING_BASE, idx, base);
	if (!r) {
		struct vio_vu_msg m;
		vio_vu_request_init(&m, VIO_VU_SET_VRING_ADDR, 0);
		m.p.addr.index = idx;
		m.p.addr.desc = q->layout.desc_addr;
		m.p.addr.avail = q->layout.driver_addr;
		m.p.addr.used = q->layout.device_addr;
		r = vio_fe_xfer(f, &m);
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
		r = vio_fe_xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx, 1);
	return r;
}

int vio_fe_queue_setup(void *t, unsigned idx, uint16_t size,
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
	vio_fe_queue_stop_locked(f, idx);
	r = vio_fe_mem_sync_locked(f);
	if (r)
		goto out;
	/* no stale kick for the new ring; the call fd is left alone: a
	 * wake-up left from the last stop is at worst one spurious return
	 * of a wait, while emptying it could take one a waiter still needs */
	drain(q->kick_fd);
	bool packed = f->acked & (1ull << VIRTIO_F_RING_PACKED);
	r = vio_fe_inflight_prepare_locked(f, idx);
	if (r)
		goto out;
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
		r = vio_fe_xfer_state(f, VIO_VU_SET_VRING_ENABLE, idx, 1);
	if (!r && f->size_unacked)
		/* a message with a reply after SET_VRING_NUM: the backend
		 * handled it, so it took the size */
		r = vio_fe_xfer_u64(f, VIO_VU_GET_FEATURES, 0, NULL);
	f->size_unacked = 0;
	if (r)
		vio_fe_queue_stop_locked(f, idx);
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}

int vio_fe_queue_disable(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	vio_fe_queue_stop_locked(f, idx);
	pthread_mutex_unlock(&f->lock);
	return is_dead(f) ? -ENOTCONN : 0;
}

void vio_fe_notify(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	if (idx >= f->nq || is_dead(f))
		return;
	/* for drivers that did not sync before adding */
	(void)vio_fe_sync_mem(f);
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

int vio_fe_wait(void *t, unsigned idx, int timeout_ms)
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
		/* a new connection may already be in place (a reconnect, or
		 * vio_frontend_move: this poll saw the old one end) */
		bool hup = vio_fe_sock_hung_up(f);
		if (hup)
			vio_fe_die(f, "backend closed the connection");
		pthread_mutex_unlock(&f->lock);
		if (fe_reconnects(f))
			return vio_fe_restore(f, idx);
		return hup || is_dead(f) ? -ENOTCONN : 0;
	}
	return 0;
}

/* Valid, and the same number, from connect until vio_frontend_free. */
int vio_fe_call_fd(void *t, unsigned idx)
{
	struct vio_frontend *f = t;
	return idx < f->nq ? f->q[idx].call_fd : -1;
}
