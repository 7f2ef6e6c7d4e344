/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend: moving a running device to another backend
 * (vio_frontend_move), with the device state transfer of vhost-user.rst
 * ("Migrating back-end state", protocol feature DEVICE_STATE).  See
 * docs/device-state.md.
 *
 * Under f->lock, so no other control message interleaves; the data path
 * goes on meanwhile: kicks accumulate in the queues' kick eventfds (the
 * same ones go to the new backend, which starts by looking at its rings)
 * and waiters sleep on the call eventfds (the same ones too).
 *
 *   1. connect to the new backend first: a missing or unsuitable one
 *      (features or protocol features the driver uses not offered) costs
 *      the running device nothing;
 *   2. stop every started ring on the old backend (SET_VRING_ENABLE 0,
 *      GET_VRING_BASE): it completes every request it holds before it
 *      answers, so what stays in flight is exactly what is available and
 *      not yet taken, from the base it returns;
 *   3. SAVE: SET_DEVICE_STATE_FD with a pipe, read to its end,
 *      CHECK_DEVICE_STATE;
 *   4. the new connection takes the socket's number (dup3, as a
 *      reconnect does) and gets the handshake again (frontend_reconnect.c:
 *      features, protocol features, the backend channel, every memory
 *      region, SET_FEATURES, the status);
 *   5. LOAD: SET_DEVICE_STATE_FD with a pipe, the blob, its end,
 *      CHECK_DEVICE_STATE: the new backend checks all of it;
 *   6. every ring that ran, from the base the old backend returned; one
 *      kick and one call per queue (a completion pushed by the old
 *      backend at its stop may not have been signalled);
 *   7. the old connection is closed (the old backend resets its device).
 *
 * Nothing is lost or done twice: the old backend used every buffer it
 * took before step 2's answer; the new one starts at that very index.
 *
 * A failure before step 4 restarts the rings on the old backend; a
 * failure in steps 4-6 (the new backend refuses the state, the features,
 * or dies) gives the old connection back its socket number, its backend
 * channel and its rings at the same bases: the old backend's device
 * never lost its state (a SAVE changes nothing) and carries on.  While
 * the move runs, a message that fails on the new connection marks the
 * frontend down (f->moving), not dead, so that the driver's threads see
 * nothing.  Only when the old backend itself is lost does the move end
 * with -ENOTCONN and a dead frontend.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "transport/vhost-user/frontend_internal.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/device.h>

#define MOVE_CONNECT_MS 5000
/* the filter's buffer: room for a blob twice the largest valid one (a
 * test can make an oversized one) */
#define BLOB_CAP (2 * (size_t)VIO_DEVICE_STATE_MAX)

static int reply_ms(const struct vio_frontend *f)
{
	return f->cfg.reply_timeout_ms > 0 ? f->cfg.reply_timeout_ms
					   : DEFAULT_REPLY_TIMEOUT_MS;
}

static uint64_t now_ms(void)
{
	return vio_now_ns() / 1000000u;
}

/* ---- the state transfer (steps 3 and 5) ---- */

/* SET_DEVICE_STATE_FD with our end of the channel (given away: closed
 * here); *fd gets the end we use: ours, or the backend's own.  0, -EIO
 * (refused: why), or as vio_fe_xfer. */
static int state_fd_locked(struct vio_frontend *f, uint32_t dir, int theirs,
			   int ours, int *fd, char *why, size_t n)
{
	struct vio_vu_msg m;
	vio_vu_request_init(&m, VIO_VU_SET_DEVICE_STATE_FD, 0);
	m.p.xfer.direction = dir;
	m.p.xfer.phase = VIO_VU_STATE_PHASE_STOPPED;
	m.fds[0] = theirs;
	m.nfds = 1;
	int r = vio_fe_xfer(f, &m);
	close(theirs); /* the backend has its copy */
	if (r) {
		snprintf(why, n, "SET_DEVICE_STATE_FD: %s",
			 r == -EIO ? f->refused : f->why);
		close(ours);
		return r;
	}
	int given = m.nfds ? m.fds[0] : -1;
	if (m.p.u64 & 0xff) {
		snprintf(why, n,
			 "the backend refused to %s its state (error %" PRIu64
			 "; its log says why)",
			 dir == VIO_VU_STATE_SAVE ? "save" : "load",
			 m.p.u64 & 0xff);
		if (given >= 0)
			close(given);
		close(ours);
		return -EIO;
	}
	if (!(m.p.u64 & VIO_VU_STATE_REPLY_NOFD)) {
		if (given < 0) {
			snprintf(why, n,
				 "SET_DEVICE_STATE_FD: the reply says "
				 "it carries an fd, and has none");
			close(ours);
			return -EIO;
		}
		close(ours);
		ours = given;
	} else if (given >= 0) {
		close(given);
	}
	int fl = fcntl(ours, F_GETFL);
	if (fl < 0 || fcntl(ours, F_SETFL, fl | O_NONBLOCK)) {
		snprintf(why, n, "fcntl: %s", strerror(errno));
		close(ours);
		return -EIO;
	}
	*fd = ours;
	return 0;
}

/* CHECK_DEVICE_STATE: 0, -EIO (the backend says it failed), or as
 * vio_fe_xfer. */
static int state_check_locked(struct vio_frontend *f, const char *what,
			      char *why, size_t n)
{
	uint64_t v = 0;
	int r = vio_fe_xfer_u64(f, VIO_VU_CHECK_DEVICE_STATE, 0, &v);
	if (r)
		snprintf(why, n, "CHECK_DEVICE_STATE: %s", f->why);
	else if (v) {
		snprintf(why, n,
			 "the backend says the state %s failed (error %" PRIu64
			 "; its log says why)",
			 what, v);
		r = -EIO;
	}
	return r;
}

/* Wait until fd is ready for ev, until deadline.  0 or -ETIMEDOUT. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
	uint64_t now = now_ms();
	if (now >= deadline)
		return -ETIMEDOUT;
	struct pollfd p = {.fd = fd, .events = ev};
	int r = poll(&p, 1, (int)(deadline - now));
	return r == 0 ? -ETIMEDOUT : 0;
}

/* Step 3: the old backend's state into buf (at most cap bytes). */
static int save_locked(struct vio_frontend *f, uint8_t *buf, size_t cap,
		       size_t *len, char *why, size_t n)
{
	int p[2], fd = -1;
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(why, n, "pipe: %s", strerror(errno));
		return -errno;
	}
	int r = state_fd_locked(f, VIO_VU_STATE_SAVE, p[1], p[0], &fd, why, n);
	if (r)
		return r;
	size_t got = 0;
	uint64_t deadline = now_ms() + (uint64_t)reply_ms(f);
	for (;;) {
		ssize_t k = read(fd, buf + got, cap - got);
		if (k > 0) {
			got += (size_t)k;
			if (got == cap) {
				snprintf(why, n,
					 "the saved state is larger "
					 "than %zu bytes",
					 cap);
				r = -EMSGSIZE;
				break;
			}
			continue;
		}
		if (k == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || wait_fd(fd, POLLIN, deadline)) {
			snprintf(why, n, "reading the saved state: %s",
				 errno == EAGAIN ? "no end of it in time"
						 : strerror(errno));
			r = -EIO;
			break;
		}
	}
	close(fd);
	/* a failed read still asks: the backend's answer ends the transfer */
	int c = state_check_locked(f, "save", r ? NULL : why, r ? 0 : n);
	if (!r)
		r = c;
	*len = got;
	return r;
}

/* Step 5: buf into the new backend. */
static int load_locked(struct vio_frontend *f, const uint8_t *buf, size_t len,
		       char *why, size_t n)
{
	int p[2], fd = -1;
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(why, n, "pipe: %s", strerror(errno));
		return -errno;
	}
	int r = state_fd_locked(f, VIO_VU_STATE_LOAD, p[0], p[1], &fd, why, n);
	if (r)
		return r;
	/* a backend that closed its end must not kill this process: SIGPIPE
	 * (sent to this thread by the write) blocked, and taken back */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	bool epipe = false;
	size_t done = 0;
	uint64_t deadline = now_ms() + (uint64_t)reply_ms(f);
	while (done < len) {
		ssize_t k = write(fd, buf + done, len - done);
		if (k > 0) {
			done += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		/* a backend that stopped reading (or reads only at the
		 * check, and the channel is full): what was written goes */
		if (k < 0 && errno == EAGAIN &&
		    wait_fd(fd, POLLOUT, deadline) == 0)
			continue;
		epipe = k < 0 && errno == EPIPE;
		break;
	}
	if (epipe && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
		       errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(fd); /* the end of the blob */
	return state_check_locked(f, "load", why, n);
}

/* ---- the move ---- */

/* Step 1's check: the new backend offers what this frontend uses.  Raw
 * messages on fd (nothing is negotiated yet).  0 or -EPROTO with why. */
static int precheck(struct vio_frontend *f, int fd, char *why, size_t n)
{
	uint64_t v[2] = {0, 0};
	uint32_t req[2] = {VIO_VU_GET_FEATURES, VIO_VU_GET_PROTOCOL_FEATURES};
	for (unsigned i = 0; i < 2; i++) {
		struct vio_vu_msg m;
		char w[160] = "";
		vio_vu_request_init(&m, req[i], 0);
		m.hdr.size = vio_vu_payload_size(&m);
		int r = vio_vu_send(fd, &m);
		if (!r)
			r = vio_vu_recv_reply(fd, req[i], 0, &m, w, sizeof(w));
		if (r) {
			snprintf(why, n, "the new backend: %s",
				 w[0] ? w : strerror(-r));
			return -EPROTO;
		}
		v[i] = m.p.u64;
		if (i == 0 && !(v[0] & (1ull << VIO_VU_F_PROTOCOL_FEATURES))) {
			snprintf(why, n,
				 "the new backend has no protocol "
				 "features");
			return -EPROTO;
		}
	}
	uint64_t need = f->features_sent ? f->acked : 0;
	if (need & ~v[0]) {
		snprintf(why, n,
			 "the new backend lacks features 0x%" PRIx64
			 " the driver uses",
			 need & ~v[0]);
		return -EPROTO;
	}
	if (f->protocol & ~v[1]) {
		snprintf(why, n,
			 "the new backend lacks protocol features 0x%" PRIx64
			 " (bit %d: DEVICE_STATE)",
			 f->protocol & ~v[1], VIO_VU_PF_DEVICE_STATE);
		return -EPROTO;
	}
	return 0;
}

/* Stop every started ring (step 2), bases in base[]; stopped[i] says
 * which.  0, or -ENOTCONN (the old backend is lost). */
static int stop_rings_locked(struct vio_frontend *f, uint32_t *base,
			     bool *stopped)
{
	for (unsigned i = 0; i < f->nq; i++) {
		stopped[i] = false;
		if (!q_started(&f->q[i]))
			continue;
		int r = 0;
		if (f->proto)
			r = vio_fe_xfer_state(f, VIO_VU_SET_VRING_ENABLE, i, 0);
		struct vio_vu_msg m;
		vio_vu_request_init(&m, VIO_VU_GET_VRING_BASE, 0);
		m.p.state.index = i;
		if (!r)
			r = vio_fe_xfer(f, &m);
		if (!r && m.p.state.index != i) {
			vio_fe_die(f,
				   "GET_VRING_BASE: reply for queue %u, "
				   "asked %u",
				   m.p.state.index, i);
			r = -EPROTO;
		}
		if (r)
			return -ENOTCONN;
		base[i] = m.p.state.num;
		stopped[i] = true;
	}
	return 0;
}

/* Rings stopped[] again from base[] (step 6, or the old backend's
 * restart), then a kick and a call each. */
static int start_rings_locked(struct vio_frontend *f, const uint32_t *base,
			      const bool *stopped)
{
	for (unsigned i = 0; i < f->nq; i++) {
		if (!stopped[i])
			continue;
		int r = vio_fe_ring_setup_locked(f, i, base[i]);
		if (r)
			return r;
	}
	uint64_t one = 1;
	for (unsigned i = 0; i < f->nq; i++) {
		if (!stopped[i])
			continue;
		ssize_t w = write(f->q[i].kick_fd, &one, sizeof(one));
		w = write(f->q[i].call_fd, &one, sizeof(one));
		(void)w; /* EAGAIN: one is pending */
	}
	return 0;
}

/* Socket fd (already connected): reply timeouts, close-on-exec. */
static int sock_timeouts(const struct vio_frontend *f, int fd)
{
	int tmo = reply_ms(f);
	struct timeval tv = {.tv_sec = tmo / 1000,
			     .tv_usec = (tmo % 1000) * 1000};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

/* Steps 4-6 on the new connection nfd (taken: given to f->sock or
 * closed); the old one stays open at ofd.  0 or negative errno. */
static int switch_locked(struct vio_frontend *f, int nfd, const uint8_t *blob,
			 size_t len, const uint32_t *base, const bool *stopped,
			 char *why, size_t n)
{
	int r = vio_fe_take_sock(f, nfd);
	if (r) {
		snprintf(why, n, "socket: %s", strerror(-r));
		return r;
	}
	r = vio_fe_handshake_again(f, why, n);
	if (r) {
		if (!why[0])
			snprintf(why, n, "handshake with the new backend: %s",
				 r == -EIO ? f->refused : f->why);
		return r;
	}
	r = load_locked(f, blob, len, why, n);
	if (!r) {
		r = start_rings_locked(f, base, stopped);
		if (r)
			snprintf(why, n, "the new backend's rings: %s",
				 r == -EIO ? f->refused : f->why);
	}
	return r;
}

int vio_frontend_move(struct vio_frontend *f, const char *path,
		      const struct vio_frontend_move_opts *opts, char *err,
		      size_t errlen)
{
	char why[240] = "";
	char tmp[1];
	if (!err || !errlen) {
		err = tmp;
		errlen = sizeof(tmp);
	}
	err[0] = '\0';
	if (!f || !path || strlen(path) >= sizeof(f->path)) {
		snprintf(err, errlen, "no frontend, or a bad path");
		return -EINVAL;
	}
	int cto = opts && opts->connect_timeout_ms > 0
		      ? opts->connect_timeout_ms
		      : MOVE_CONNECT_MS;
	pthread_mutex_lock(&f->lock);
	int r = 0;
	if (is_down(f))
		(void)vio_fe_reconnect_locked(f);
	if (!can_talk(f)) {
		snprintf(err, errlen, "the backend is gone: %s", f->why);
		r = -ENOTCONN;
	} else if (f->lsock >= 0) {
		snprintf(err, errlen, "a listening frontend cannot move");
		r = -EOPNOTSUPP;
	} else if (!has_pf(f, VIO_VU_PF_DEVICE_STATE)) {
		snprintf(err, errlen,
			 "the backend at %s does not offer device state "
			 "transfer (protocol feature DEVICE_STATE)",
			 f->path);
		r = -EOPNOTSUPP;
	} else if (!f->features_sent) {
		snprintf(err, errlen, "no driver runs the device yet");
		r = -EAGAIN;
	}
	if (r) {
		pthread_mutex_unlock(&f->lock);
		return r;
	}
	/* 1: the new backend, before anything stops */
	int nfd = vio_fe_sock_connect(path, cto, why, sizeof(why));
	if (nfd >= 0 && (r = sock_timeouts(f, nfd)) != 0)
		snprintf(why, sizeof(why), "socket: %s", strerror(-r));
	if (nfd >= 0 && !r)
		r = precheck(f, nfd, why, sizeof(why));
	if (nfd < 0 || r) {
		if (nfd >= 0)
			close(nfd);
		snprintf(err, errlen, "%s", why);
		pthread_mutex_unlock(&f->lock);
		return nfd < 0 ? nfd : r;
	}
	uint32_t base[VIO_MAX_QUEUES];
	bool stopped[VIO_MAX_QUEUES];
	uint8_t *blob = malloc(BLOB_CAP);
	size_t len = 0;
	uint64_t t0 = vio_now_ns();
	/* 2 and 3 */
	r = blob ? stop_rings_locked(f, base, stopped) : -ENOMEM;
	if (r == -ENOTCONN) {
		snprintf(err, errlen, "the old backend is gone: %s", f->why);
		goto out;
	}
	if (!r)
		r = save_locked(f, blob, VIO_DEVICE_STATE_MAX + 1, &len, why,
				sizeof(why));
	if (!r && opts && opts->state_filter) {
		r = opts->state_filter(opts->arg, blob, &len, BLOB_CAP);
		if (r || len > BLOB_CAP) {
			snprintf(why, sizeof(why), "the state filter: %s",
				 strerror(r ? -r : EMSGSIZE));
			r = r ? r : -EMSGSIZE;
		}
	}
	if (r) {
		snprintf(err, errlen, "%s", why);
		if (!can_talk(f))
			r = -ENOTCONN;
		else if (start_rings_locked(f, base, stopped))
			r = -ENOTCONN; /* lost meanwhile */
		goto out;
	}
	/* 4-6: on the new connection; the old one kept at ofd */
	int ofd = fcntl(f->sock, F_DUPFD_CLOEXEC, 0);
	if (ofd < 0) {
		r = -errno;
		snprintf(err, errlen, "dup: %s", strerror(-r));
		(void)start_rings_locked(f, base, stopped);
		goto out;
	}
	char opath[sizeof(f->path)];
	memcpy(opath, f->path, sizeof(opath));
	snprintf(f->path, sizeof(f->path), "%s", path);
	bool was_reconnecting = f->reconnecting;
	/* what the new connection's handshake changes, for a way back */
	bool inf_sent = f->inf_sent;
	unsigned max_slots = f->max_slots;
	f->moving = true;
	f->reconnecting = true; /* a failure here reconnects nowhere */
	why[0] = '\0';
	r = switch_locked(f, nfd, blob, len, base, stopped, why, sizeof(why));
	nfd = -1;
	if (r) {
		/* back to the old backend: its socket, channel and rings */
		snprintf(err, errlen, "%s; the device stays at %s", why, opath);
		memcpy(f->path, opath, sizeof(opath));
		__atomic_store_n(&f->down, false, __ATOMIC_RELEASE);
		f->why[0] = '\0';
		f->inf_sent = inf_sent;
		f->max_slots = max_slots;
		int d = dup3(ofd, f->sock, O_CLOEXEC);
		f->moving = false;
		f->reconnecting = was_reconnecting;
		int e = d < 0 ? -errno : vio_fe_req_setup_locked(f);
		if (!e)
			e = start_rings_locked(f, base, stopped);
		if (e) {
			vio_fe_die(f, "moving back to %s: %s", opath,
				   strerror(-e));
			r = -ENOTCONN;
		}
	} else {
		f->moving = false;
		f->reconnecting = was_reconnecting;
		vio_log("vhost-user frontend: device moved from %s to %s "
			"(%zu bytes of state, rings stopped for %" PRIu64
			" us)",
			opath, path, len, (vio_now_ns() - t0) / 1000u);
	}
	close(ofd); /* the old backend sees the end of its connection */
out:
	if (nfd >= 0)
		close(nfd);
	free(blob);
	pthread_mutex_unlock(&f->lock);
	return r;
}
