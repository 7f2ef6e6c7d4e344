/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's side of the backend channel (backend_chan.h):
 * SET_BACKEND_REQ_FD keeps the frontend's socket; the model's
 * config_changed hook (vio_device_config_update, from any thread) sends
 * BACKEND_CONFIG_CHANGE_MSG on it, after which the frontend reads the
 * config space again (GET_CONFIG) and, for QEMU, interrupts the guest.
 *
 * Threads: the hook may run on any thread, at the same time as the
 * control thread handles messages or ends the connection, so everything
 * about the channel is under req_lock, and what the hook needs from the
 * connection (protocol features, its number) is copied when the channel
 * is set up.  No worker takes req_lock: the data path never waits here.
 *
 * The ack (REPLY_ACK negotiated: the message goes with NEED_REPLY).  A
 * frontend answers only after it has handled the change, and handling it
 * means a GET_CONFIG on the main socket (QEMU 7.2's vhost-user-blk does
 * exactly that before it acks).  So:
 * - on any thread but the control thread the hook waits for the ack, at
 *   most ACK_WAIT_MS (the control thread meanwhile answers GET_CONFIG);
 * - on the control thread (vio serve's SIGHUP) waiting would hold up the
 *   very GET_CONFIG the ack waits for: the message is sent and the ack is
 *   collected before the next one is sent (an error it reports is logged
 *   then).  The control thread is the one that dispatched
 *   SET_BACKEND_REQ_FD; a program that dispatches from several threads
 *   in turn at worst waits ACK_WAIT_MS for nothing.
 *
 * A frontend that misbehaves on the channel (closes it, sends junk, asks
 * something of the backend, never reads it) loses the channel, with one
 * log line; the connection and its queues go on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/vhost-user/backend_chan.h"
#include "transport/vhost-user/backend_internal.h"

/* How long the hook waits for the frontend's ack (off the control
 * thread): the frontend answers after one GET_CONFIG round trip. */
#define ACK_WAIT_MS 1000
/* Stale messages read before a send, at most (a flooding frontend loses
 * the channel rather than holding the hook). */
#define DRAIN_MAX 64

void vio_vu_backend_req_init(struct vio_backend *b)
{
	pthread_mutex_init(&b->req_lock, NULL);
	b->req_fd = -1;
}

void vio_vu_backend_req_fini(struct vio_backend *b)
{
	vio_vu_backend_req_close(b);
	pthread_mutex_destroy(&b->req_lock);
}

static void close_locked(struct vio_backend *b)
{
	vio_vu_close_fd(&b->req_fd);
	b->req_owed = 0;
}

void vio_vu_backend_req_close(struct vio_backend *b)
{
	pthread_mutex_lock(&b->req_lock);
	close_locked(b);
	pthread_mutex_unlock(&b->req_lock);
}

/* The channel is unusable: drop it (the connection goes on). */
static void drop_locked(struct vio_backend *b, const char *why)
{
	vio_log_limited(&b->rl,
			"vhost-user: connection %lu: backend channel closed: "
			"%s (config changes no longer reach the frontend "
			"until it connects again)",
			b->req_conn, why);
	close_locked(b);
}

/* SET_BACKEND_REQ_FD: the fd must be a Unix stream socket. */
int vio_vu_backend_req_set(struct vio_backend *b, struct vio_vu_msg *m)
{
	if (!(b->protocol & (1ull << VIO_VU_PF_BACKEND_REQ))) {
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: "
				"SET_BACKEND_REQ_FD without the BACKEND_REQ "
				"protocol feature",
				b->conns);
		return -EPROTO; /* vio_vu_backend_handle closes the fd */
	}
	int fd = m->fds[0], v;
	socklen_t len = sizeof(v);
	bool ok = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == 0 &&
		  v == AF_UNIX;
	len = sizeof(v);
	ok = ok && getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) == 0 &&
	     v == SOCK_STREAM;
	int fl = fcntl(fd, F_GETFL);
	if (!ok || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: "
				"SET_BACKEND_REQ_FD: not a Unix stream socket",
				b->conns);
		return -EPROTO;
	}
	m->fds[0] = -1; /* ours now */
	pthread_mutex_lock(&b->req_lock);
	close_locked(b); /* a second one replaces the first */
	b->req_fd = fd;
	b->req_ack = b->protocol & (1ull << VIO_VU_PF_REPLY_ACK);
	b->req_config = b->protocol & (1ull << VIO_VU_PF_CONFIG);
	b->req_conn = b->conns;
	b->req_ctl = pthread_self();
	pthread_mutex_unlock(&b->req_lock);
	return 0;
}

/* One message from the frontend: an ack of ours is fine (0), anything
 * else drops the channel (<0). */
static int take_ack(struct vio_backend *b, const struct vio_vu_chan_msg *m)
{
	if (m->hdr.request != VIO_VU_BACKEND_CONFIG_CHANGE_MSG ||
	    !(m->hdr.flags & VIO_VU_FLAG_REPLY) || m->hdr.size != 8 ||
	    m->nfds) {
		char why[96];
		snprintf(why, sizeof(why),
			 "the frontend sent request %u (flags 0x%x, %u bytes, "
			 "%u fds), not an ack",
			 m->hdr.request, m->hdr.flags, m->hdr.size, m->nfds);
		drop_locked(b, why);
		return -EPROTO;
	}
	if (b->req_owed)
		b->req_owed--;
	if (m->p.u64)
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: the frontend "
				"failed to handle a config change (status "
				"%" PRIu64 ")",
				b->req_conn, m->p.u64);
	return 0;
}

/* Read what the frontend sent since the last send (late acks). */
static int drain_locked(struct vio_backend *b)
{
	for (unsigned i = 0; i < DRAIN_MAX; i++) {
		struct vio_vu_chan_msg m;
		char why[120] = "";
		int r = vio_vu_chan_recv(b->req_fd, &m, why, sizeof(why));
		if (r == -EAGAIN)
			return 0;
		if (r == -ECONNRESET) {
			drop_locked(b, "the frontend closed it");
			return r;
		}
		if (r) {
			drop_locked(b, why[0] ? why : strerror(-r));
			return r;
		}
		r = take_ack(b, &m);
		if (r)
			return r;
	}
	drop_locked(b, "the frontend floods it");
	return -EPROTO;
}

/* Wait (bounded) for the ack of the message just sent. */
static void wait_ack_locked(struct vio_backend *b)
{
	uint64_t deadline = vio_now_ns() + ACK_WAIT_MS * 1000000ull;
	for (;;) {
		uint64_t now = vio_now_ns();
		if (now >= deadline)
			break;
		struct pollfd p = {.fd = b->req_fd, .events = POLLIN};
		int ms = (int)((deadline - now + 999999u) / 1000000u);
		int n = poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		unsigned owed = b->req_owed;
		if (drain_locked(b))
			return;
		if (b->req_owed < owed)
			return; /* ours (acks come in order) */
	}
	vio_log_limited(&b->rl,
			"vhost-user: connection %lu: the frontend did not ack "
			"the config change within %d ms",
			b->req_conn, ACK_WAIT_MS);
}

/* The model's config_changed hook: any thread. */
void vio_vu_backend_config_changed(void *t)
{
	struct vio_backend *b = t;
	pthread_mutex_lock(&b->req_lock);
	if (b->req_fd < 0 || !b->req_config) {
		pthread_mutex_unlock(&b->req_lock);
		/* the frontend learns it when it reads the config again (a
		 * new connection does) */
		vio_log_info("vhost-user: config space changed; the frontend "
			     "has no backend channel (protocol features "
			     "BACKEND_REQ and CONFIG) to be told");
		return;
	}
	if (drain_locked(b)) {
		pthread_mutex_unlock(&b->req_lock);
		return;
	}
	uint32_t flags = b->req_ack ? VIO_VU_FLAG_NEED_REPLY : 0;
	int r = vio_vu_chan_send(b->req_fd, VIO_VU_BACKEND_CONFIG_CHANGE_MSG,
				 flags, NULL, 0);
	if (r == -EAGAIN) {
		/* it has not read the last ones: it will read the config
		 * then anyway; never block here */
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: the frontend does "
				"not read its backend channel: config change "
				"not sent",
				b->req_conn);
	} else if (r) {
		drop_locked(b, strerror(-r));
	} else {
		vio_log_info("vhost-user: connection %lu: config space "
			     "changed: frontend told",
			     b->req_conn);
		if (b->req_ack) {
			b->req_owed++;
			if (!pthread_equal(pthread_self(), b->req_ctl))
				wait_ack_locked(b);
		}
	}
	pthread_mutex_unlock(&b->req_lock);
}
