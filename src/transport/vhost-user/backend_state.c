/* SPDX-License-Identifier: MIT */
/*
 * Device state transfer (vhost-user.rst, "Migrating back-end state";
 * protocol feature DEVICE_STATE): SET_DEVICE_STATE_FD and
 * CHECK_DEVICE_STATE.  The blob is the model's (vio_device_state_save /
 * _load, docs/device-state.md).
 *
 * Only with every ring stopped (the source after GET_VRING_BASE of each
 * queue, the destination before its rings start): a running queue makes
 * SET_DEVICE_STATE_FD fail (error in the reply, the connection goes on).
 * Only the phase STOPPED exists.  The frontend's fd is used (the reply
 * says so: bit 8); the backend never hands out one of its own.
 *
 * No thread, and the control thread never waits on the channel: a blob
 * is at most VIO_DEVICE_STATE_MAX (16 KiB) and a pipe holds 64 KiB.
 *
 *   SAVE: the state is taken at SET_DEVICE_STATE_FD, written into the
 *         fd without blocking (all of it fits) and the fd closed (the
 *         frontend's end of file) before the reply goes out; a channel
 *         that cannot take it all fails the transfer.
 *   LOAD: the fd is kept; the frontend writes the blob after the reply
 *         and closes its end, then sends CHECK_DEVICE_STATE: only then is
 *         it read, without blocking, for at most STATE_READ_MS for the
 *         end of file, and at most VIO_DEVICE_STATE_MAX + 1 bytes (more
 *         is refused as oversized).  The blob is hostile input: the
 *         model checks all of it before the device changes.
 *
 * CHECK_DEVICE_STATE answers 0 when the last transfer worked, else an
 * error code (1: failed; the log line says why); the connection and the
 * device go on either way: a refused blob leaves the device as it was.
 * A transfer left open (no CHECK) is dropped at the next
 * SET_DEVICE_STATE_FD or at the end of the connection.
 *
 * A LOAD before the features are negotiated (QEMU 8.2+'s incoming
 * migration loads the state before it starts the vhost device, i.e.
 * before SET_FEATURES): CHECK_DEVICE_STATE checks what can be checked
 * without them (vio_device_state_check), keeps a copy of the blob
 * pending and answers 0.  SET_FEATURES applies it once FEATURES_OK is
 * accepted and before any ring starts (vio_vu_state_features_ok); if
 * the device then refuses it (other features, another geometry) the
 * device needs a reset (DEVICE_NEEDS_RESET, GET_STATUS shows it, the
 * log says why) and no ring starts on it: a device never runs with a
 * state it refused or half of one.  A reset (SET_STATUS 0, RESET_DEVICE,
 * RESET_OWNER), the next LOAD or the end of the connection drops a
 * pending blob.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "transport/vhost-user/backend_internal.h"
#include "util/log.h"

/* how long CHECK_DEVICE_STATE waits for the rest of a blob and its end */
#define STATE_READ_MS 1000
/* the reply's error code (bits 0-7) */
#define STATE_EFAIL 1u

struct vu_state_xfer {
	bool open; /* a transfer since the last CHECK */
	bool load; /* its direction */
	int fd;	   /* LOAD: the channel, read at CHECK; else -1 */
	int err;   /* SAVE: how it went (0 or negative errno) */
	char why[200];
	/* a LOAD checked before FEATURES_OK, applied at it: a copy of the
	 * blob (at most VIO_DEVICE_STATE_MAX bytes), or NULL */
	uint8_t *pending;
	size_t pending_len;
};

static struct vu_state_xfer *xfer_of(struct vio_backend *b)
{
	if (!b->state) {
		b->state = calloc(1, sizeof(*b->state));
		if (b->state)
			b->state->fd = -1;
	}
	return b->state;
}

void vio_vu_state_end(struct vio_backend *b)
{
	if (!b->state)
		return;
	vio_vu_close_fd(&b->state->fd);
	free(b->state->pending);
	free(b->state);
	b->state = NULL;
}

static bool any_running(const struct vio_backend *b)
{
	for (unsigned i = 0; i < b->nq; i++)
		if (b->q[i].running)
			return true;
	return false;
}

/* Write all of buf into fd without blocking (fd is non-blocking).  A
 * pipe whose reader is gone must not kill the process: SIGPIPE (sent to
 * this thread by the write) is blocked meanwhile and taken back. */
static int write_all_now(int fd, const uint8_t *buf, size_t len)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	size_t done = 0;
	int r = 0;
	while (done < len) {
		ssize_t w = write(fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = errno == EAGAIN ? -ENOBUFS : -errno;
			break;
		}
		if (w == 0) {
			r = -EIO;
			break;
		}
		done += (size_t)w;
	}
	if (r == -EPIPE && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
		       errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static bool features_negotiated(const struct vio_backend *b)
{
	return vio_device_get_status(b->dev) & VIRTIO_CONFIG_S_FEATURES_OK;
}

/* Forget a blob waiting for FEATURES_OK; the log says so and why. */
static void drop_pending(struct vio_backend *b, const char *why)
{
	struct vu_state_xfer *x = b->state;
	if (!x || !x->pending)
		return;
	free(x->pending);
	x->pending = NULL;
	vio_log("vhost-user: connection %lu: the device state loaded before "
		"SET_FEATURES is dropped: %s",
		b->conns, why);
	x->pending_len = 0;
}

void vio_vu_state_reset(struct vio_backend *b)
{
	drop_pending(b, "device reset");
}

int vio_vu_state_features_ok(struct vio_backend *b)
{
	struct vu_state_xfer *x = b->state;
	if (!x || !x->pending)
		return 0;
	char why[160] = "";
	int r = vio_device_state_load(b->dev, x->pending, x->pending_len, why,
				      sizeof(why));
	free(x->pending);
	x->pending = NULL;
	x->pending_len = 0;
	if (!r) {
		vio_log("vhost-user: connection %lu: device state loaded "
			"(checked before SET_FEATURES, applied at it)",
			b->conns);
		return 0;
	}
	/* the type's state_load changes nothing when it refuses: the
	 * device is as a reset left it, but not as the source left it */
	vio_log_warn("vhost-user: connection %lu: the device state loaded "
		     "before SET_FEATURES is refused now that the features "
		     "are negotiated: %s; the device needs a reset, no ring "
		     "starts",
		     b->conns, why);
	char reason[200];
	snprintf(reason, sizeof(reason), "device state refused: %s", why);
	vio_device_needs_reset(b->dev, reason);
	return r;
}

static int save_now(struct vio_backend *b, struct vu_state_xfer *x, int fd)
{
	uint8_t *buf = malloc(VIO_DEVICE_STATE_MAX);
	if (!buf) {
		snprintf(x->why, sizeof(x->why), "out of memory");
		return -ENOMEM;
	}
	int n = vio_device_state_save(b->dev, buf, VIO_DEVICE_STATE_MAX);
	int r = n < 0 ? n : 0;
	if (r)
		snprintf(x->why, sizeof(x->why), "cannot save the state: %s",
			 n == -EAGAIN ? "features not negotiated"
				      : strerror(-n));
	if (!r) {
		r = write_all_now(fd, buf, (size_t)n);
		if (r)
			snprintf(x->why, sizeof(x->why),
				 "writing %d bytes of state: %s", n,
				 r == -ENOBUFS ? "the channel is full"
					       : strerror(-r));
	}
	free(buf);
	return r;
}

int vio_vu_h_set_device_state_fd(struct vio_backend *b, struct vio_vu_msg *m)
{
	struct vu_state_xfer *x = xfer_of(b);
	uint32_t dir = m->p.xfer.direction, phase = m->p.xfer.phase;
	uint64_t reply = VIO_VU_STATE_REPLY_NOFD;
	if (!x)
		return -ENOMEM;
	vio_vu_close_fd(&x->fd); /* an earlier transfer nobody checked */
	x->open = true;
	x->load = dir == VIO_VU_STATE_LOAD;
	if (x->load)
		drop_pending(b, "a new LOAD");
	x->err = 0;
	x->why[0] = '\0';
	int fd = m->fds[0]; /* the table lets exactly one through */
	m->fds[0] = -1;
	if (!(b->protocol & (1ull << VIO_VU_PF_DEVICE_STATE))) {
		snprintf(x->why, sizeof(x->why), "DEVICE_STATE not negotiated");
		x->err = -EPROTO;
	} else if (dir > VIO_VU_STATE_LOAD ||
		   phase != VIO_VU_STATE_PHASE_STOPPED) {
		snprintf(x->why, sizeof(x->why),
			 "direction %u, phase %u: only SAVE (0) or LOAD (1) "
			 "in phase STOPPED (0)",
			 dir, phase);
		x->err = -EINVAL;
	} else if (any_running(b)) {
		snprintf(x->why, sizeof(x->why),
			 "a ring still runs (stop every ring first)");
		x->err = -EBUSY;
	} else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
		x->err = -errno;
		snprintf(x->why, sizeof(x->why), "fcntl: %s",
			 strerror(-x->err));
	} else if (x->load) {
		/* room for a whole blob and one byte more, if it is a pipe */
		int sz = fcntl(fd, F_GETPIPE_SZ);
		if (sz >= 0 && sz < 2 * (int)VIO_DEVICE_STATE_MAX)
			(void)fcntl(fd, F_SETPIPE_SZ,
				    2 * (int)VIO_DEVICE_STATE_MAX);
		x->fd = fd;
		fd = -1;
	} else {
		x->err = save_now(b, x, fd);
	}
	if (fd >= 0)
		close(fd); /* SAVE: the frontend's end of file */
	if (x->err) {
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: "
				"SET_DEVICE_STATE_FD: %s",
				b->conns, x->why);
		reply |= STATE_EFAIL;
	}
	m->p.u64 = reply;
	return 0;
}

/* Read the blob (LOAD) until end of file: at most max + 1 bytes, within
 * STATE_READ_MS.  Its length, or negative errno with why. */
static ssize_t read_blob(struct vu_state_xfer *x, uint8_t *buf, size_t max)
{
	size_t got = 0;
	uint64_t deadline = vio_now_ns() / 1000000u + STATE_READ_MS;
	for (;;) {
		ssize_t n = read(x->fd, buf + got, max + 1 - got);
		if (n > 0) {
			got += (size_t)n;
			if (got > max) {
				snprintf(x->why, sizeof(x->why),
					 "state larger than %zu bytes", max);
				return -EMSGSIZE;
			}
			continue;
		}
		if (n == 0)
			return (ssize_t)got;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			int e = errno;
			snprintf(x->why, sizeof(x->why),
				 "reading the state: %s", strerror(e));
			return -e;
		}
		uint64_t now = vio_now_ns() / 1000000u;
		if (now >= deadline) {
			snprintf(x->why, sizeof(x->why),
				 "the state channel was not closed (%zu bytes "
				 "read): truncated",
				 got);
			return -ETIMEDOUT;
		}
		struct pollfd p = {.fd = x->fd, .events = POLLIN};
		(void)poll(&p, 1, (int)(deadline - now));
	}
}

int vio_vu_h_check_device_state(struct vio_backend *b, struct vio_vu_msg *m)
{
	struct vu_state_xfer *x = b->state;
	m->p.u64 = 0;
	if (!x || !x->open) {
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: "
				"CHECK_DEVICE_STATE without a transfer",
				b->conns);
		m->p.u64 = STATE_EFAIL;
		return 0;
	}
	x->open = false;
	if (x->load && !x->err) {
		uint8_t *buf = malloc(VIO_DEVICE_STATE_MAX + 1);
		ssize_t n =
		    buf ? read_blob(x, buf, VIO_DEVICE_STATE_MAX) : -ENOMEM;
		vio_vu_close_fd(&x->fd);
		if (n >= 0 && any_running(b)) {
			snprintf(x->why, sizeof(x->why),
				 "a ring started before CHECK_DEVICE_STATE");
			n = -EBUSY;
		}
		bool early = !features_negotiated(b);
		if (n >= 0) {
			char why[160] = "";
			int r =
			    early
				? vio_device_state_check(b->dev, buf, (size_t)n,
							 why, sizeof(why))
				: vio_device_state_load(b->dev, buf, (size_t)n,
							why, sizeof(why));
			if (r)
				snprintf(x->why, sizeof(x->why),
					 "state refused: %s", why);
			else if (early) { /* kept: SET_FEATURES applies it */
				x->pending = buf;
				x->pending_len = (size_t)n;
				buf = NULL;
			}
			n = r;
		}
		free(buf);
		x->err = (int)(n < 0 ? n : 0);
	}
	if (x->err) {
		/* not rate-limited: once per transfer, and the one place
		 * that says why (the reply has only a code) */
		vio_log_warn("vhost-user: connection %lu: "
			     "CHECK_DEVICE_STATE: %s transfer failed: %s",
			     b->conns, x->load ? "LOAD" : "SAVE", x->why);
		m->p.u64 = STATE_EFAIL;
	} else if (x->load && x->pending) {
		vio_log("vhost-user: connection %lu: device state checked, "
			"pending: it loads at SET_FEATURES",
			b->conns);
	} else {
		vio_log("vhost-user: connection %lu: device state %s", b->conns,
			x->load ? "loaded" : "saved");
	}
	return 0;
}
