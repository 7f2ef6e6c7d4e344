/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend's side of the backend channel (backend_chan.h):
 * when the backend offers BACKEND_REQ, the handshake makes a socketpair
 * and hands one end over (SET_BACKEND_REQ_FD); on our end the backend
 * says its config space changed (BACKEND_CONFIG_CHANGE_MSG), and the
 * bound driver's config_changed runs (vio/driver.h), which reads the
 * config again (GET_CONFIG on the main socket); then, if the backend set
 * NEED_REPLY, the ack goes back (0).  Any other request is answered 1
 * (not supported) when it asks for an answer.
 *
 * No thread of its own: the channel is served by the driver's threads,
 * where they already are, as interrupts are (vio_drvdev_wait_used):
 * - a thread waiting for used buffers (fe_wait) polls the channel too,
 *   one waiter at a time (req_polled), and serves it when it is readable;
 * - vio_frontend_serve_backend() serves it on demand, for a driver that
 *   waits on nothing (an event loop polls vio_frontend_backend_fd()).
 * The driver's config_changed thus runs on a driver thread, never
 * concurrently with its remove (which the caller runs only once no
 * data-path call is in flight: vio/vhost_user.h).
 *
 * Locks: req_lock only around reading one message and around sending an
 * answer, never across the driver's callback (which takes f->lock for
 * GET_CONFIG) or a poll, so f->lock -> req_lock (setup, reconnect) cannot
 * deadlock against a serving thread.
 *
 * A backend that misbehaves on the channel (junk, fds, a reply where a
 * request belongs, a flood, a closed end) loses the channel with one log
 * line; the device and its queues go on (config changes then show only
 * when the config is read again).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "transport/vhost-user/backend_chan.h"
#include "transport/vhost-user/frontend_internal.h"

/* Messages served per call: a flooding backend cannot hold a waiter. */
#define SERVE_MAX 16

void vio_fe_req_init(struct vio_frontend *f)
{
	pthread_mutex_init(&f->req_lock, NULL);
	f->req_fd = -1;
}

static void close_locked(struct vio_frontend *f)
{
	int fd = __atomic_exchange_n(&f->req_fd, -1, __ATOMIC_ACQ_REL);
	if (fd >= 0)
		close(fd);
}

void vio_fe_req_close(struct vio_frontend *f)
{
	pthread_mutex_lock(&f->req_lock);
	close_locked(f);
	pthread_mutex_unlock(&f->req_lock);
}

void vio_fe_req_fini(struct vio_frontend *f)
{
	vio_fe_req_close(f);
	pthread_mutex_destroy(&f->req_lock);
}

int vio_fe_req_setup_locked(struct vio_frontend *f)
{
	vio_fe_req_close(f); /* a new connection's channel replaces it */
	if (!has_pf(f, VIO_VU_PF_BACKEND_REQ))
		return 0;
	/* the backend's end stays blocking (its business); ours is not */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		vio_log_warn("vhost-user frontend: backend channel: "
			     "socketpair: %m (config changes will not be "
			     "seen)");
		return 0;
	}
	int fl = fcntl(sv[0], F_GETFL);
	if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK)) {
		vio_log_warn("vhost-user frontend: backend channel: fcntl: %m");
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	struct vio_vu_msg m;
	vio_vu_request_init(&m, VIO_VU_SET_BACKEND_REQ_FD, 0);
	m.fds[0] = sv[1];
	m.nfds = 1;
	int r = vio_fe_xfer(f, &m);
	close(sv[1]); /* the backend has its copy (or nothing) */
	if (r) {
		close(sv[0]);
		/* refused: the device works without; else dead */
		return r == -EIO ? 0 : r;
	}
	pthread_mutex_lock(&f->req_lock);
	__atomic_store_n(&f->req_fd, sv[0], __ATOMIC_RELEASE);
	pthread_mutex_unlock(&f->req_lock);
	return 0;
}

/* Drop the channel (once per channel: whoever finds it still open). */
static void drop(struct vio_frontend *f, int fd, const char *why)
{
	pthread_mutex_lock(&f->req_lock);
	bool ours = __atomic_load_n(&f->req_fd, __ATOMIC_ACQUIRE) == fd;
	if (ours)
		close_locked(f);
	pthread_mutex_unlock(&f->req_lock);
	if (ours)
		vio_log_limited(&f->rl,
				"vhost-user frontend: backend channel closed: "
				"%s (config changes are seen only when the "
				"config is read again)",
				why);
}

/* Take one message off channel fd: 1, 0 (none), or <0 (dropped). */
static int take(struct vio_frontend *f, int fd, struct vio_vu_chan_msg *m)
{
	char why[120] = "";
	pthread_mutex_lock(&f->req_lock);
	int r = __atomic_load_n(&f->req_fd, __ATOMIC_ACQUIRE) == fd
		    ? vio_vu_chan_recv(fd, m, why, sizeof(why))
		    : -EAGAIN; /* replaced or closed meanwhile */
	pthread_mutex_unlock(&f->req_lock);
	if (r == -EAGAIN)
		return 0;
	if (r == 0 && (m->hdr.flags & VIO_VU_FLAG_REPLY))
		snprintf(why, sizeof(why), "request %u with the REPLY flag",
			 m->hdr.request);
	else if (r == 0 && m->nfds)
		snprintf(why, sizeof(why), "request %u carries fds",
			 m->hdr.request);
	else if (r == 0)
		return 1;
	else if (r == -ECONNRESET)
		snprintf(why, sizeof(why), "the backend closed it");
	else if (!why[0])
		snprintf(why, sizeof(why), "%s", strerror(-r));
	drop(f, fd, why);
	return -EPROTO;
}

/* Answer m with status (if it asked). */
static void answer(struct vio_frontend *f, int fd,
		   const struct vio_vu_chan_msg *m, uint64_t status)
{
	if (!(m->hdr.flags & VIO_VU_FLAG_NEED_REPLY))
		return;
	pthread_mutex_lock(&f->req_lock);
	int r = __atomic_load_n(&f->req_fd, __ATOMIC_ACQUIRE) == fd
		    ? vio_vu_chan_send(fd, m->hdr.request, VIO_VU_FLAG_REPLY,
				       &status, sizeof(status))
		    : 0;
	pthread_mutex_unlock(&f->req_lock);
	if (r)
		drop(f, fd,
		     r == -EAGAIN ? "the backend does not read its answers"
				  : strerror(-r));
}

static int serve(struct vio_frontend *f)
{
	int fd = __atomic_load_n(&f->req_fd, __ATOMIC_ACQUIRE);
	if (fd < 0)
		return 0;
	int n = 0;
	for (; n < SERVE_MAX; n++) {
		struct vio_vu_chan_msg m;
		int r = take(f, fd, &m);
		if (r <= 0)
			return r < 0 && !n ? r : n;
		uint64_t status = 0;
		if (m.hdr.request == VIO_VU_BACKEND_CONFIG_CHANGE_MSG &&
		    m.hdr.size == 0) {
			/* the driver reads the config again (vdev is there
			 * once connected; a change before probe is seen by
			 * probe's own reads) */
			if (f->vdev)
				vio_drvdev_config_changed(f->vdev);
		} else {
			vio_log_limited(&f->rl,
					"vhost-user frontend: backend channel: "
					"request %u (%u bytes) not supported",
					m.hdr.request, m.hdr.size);
			status = 1;
		}
		answer(f, fd, &m, status);
	}
	return n;
}

int vio_fe_req_wait_begin(struct vio_frontend *f)
{
	int fd = __atomic_load_n(&f->req_fd, __ATOMIC_ACQUIRE);
	bool no = false;
	if (fd < 0 ||
	    !__atomic_compare_exchange_n(&f->req_polled, &no, true, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return -1;
	return fd;
}

void vio_fe_req_wait_end(struct vio_frontend *f, int fd, short revents)
{
	if (fd < 0)
		return;
	if (revents)
		(void)serve(f);
	__atomic_store_n(&f->req_polled, false, __ATOMIC_RELEASE);
}

/* ---- public ---- */

int vio_frontend_backend_fd(const struct vio_frontend *f)
{
	return __atomic_load_n(&f->req_fd, __ATOMIC_ACQUIRE);
}

int vio_frontend_serve_backend(struct vio_frontend *f)
{
	if (!f)
		return -EINVAL;
	return serve(f);
}
