/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend: connecting (the socket, with retries while a
 * backend starts), the handshake, the queues' fds, free, and the bus
 * across processes (vio_bus_connect).  The messages, memory and
 * transport ops are in frontend.c, the queues in frontend_queue.c; see
 * docs/vhost-user-frontend.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "transport/vhost-user/frontend_internal.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/bus.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

static uint64_t now_ms(void)
{
	return vio_now_ns() / 1000000u;
}

int vio_fe_sock_connect(const char *path, int timeout_ms, char *err,
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

/*
 * Queue sizes.  vhost-user has no message that tells a backend's largest
 * ring, so with REPLY_ACK each queue's SET_VRING_NUM goes out here, at
 * qmax[i] (queue_size at first) with NEED_REPLY; a refusal halves it and
 * asks again, down to 1.  What the backend takes is what the driver is
 * offered (fe_queue_max_size).  Before SET_FEATURES and without ring
 * addresses a backend only records the number (the ring setup sends it
 * again).  A backend that ends the connection after refusing (vio's
 * keeps it for this one refusal) is connected to again by
 * vio_frontend_connect, starting from the sizes not refused yet.
 * Without REPLY_ACK a refusal cannot be seen: no probe; queue setup then
 * says what probably went wrong (vio_fe_die).  Caller holds lock.
 */
static int probe_sizes(struct vio_frontend *f, const char *path, char *err,
		       size_t errlen)
{
	if (!has_pf(f, VIO_VU_PF_REPLY_ACK))
		return 0;
	for (unsigned i = 0; i < f->nq; i++) {
		unsigned asked = f->qmax[i];
		for (;;) {
			int r = vio_fe_xfer_state(f, VIO_VU_SET_VRING_NUM, i,
						  f->qmax[i]);
			if (r == 0)
				break;
			if (r != -EIO)
				return r; /* dead */
			f->size_refused = true;
			if (f->qmax[i] <= 1) {
				ERR("%s: the backend refused every queue size "
				    "for queue %u (SET_VRING_NUM %u down to 1)",
				    path, i, asked);
				return -ERANGE;
			}
			f->qmax[i] /= 2;
		}
		if (f->qmax[i] != f->queue_size)
			vio_log("vhost-user frontend: %s: queue %u: the "
				"backend takes at most %u entries (asked %u)",
				path, i, f->qmax[i], f->queue_size);
	}
	return 0;
}

static int handshake(struct vio_frontend *f, const char *path, char *err,
		     size_t errlen)
{
	uint64_t v = 0;
	int r = vio_fe_xfer_u64(f, VIO_VU_GET_FEATURES, 0, &v);
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
		r = vio_fe_xfer_u64(f, VIO_VU_GET_PROTOCOL_FEATURES, 0, &v);
		if (r)
			goto fail;
		uint64_t wanted = PROTOCOL_WANTED;
		if (fe_reconnects(f))
			wanted |= PROTOCOL_WANTED_RECONNECT;
		uint64_t want = v & wanted & ~f->cfg.protocol_features_off;
		r = vio_fe_xfer_u64(f, VIO_VU_SET_PROTOCOL_FEATURES, want,
				    NULL);
		if (r)
			goto fail;
		f->protocol = want; /* REPLY_ACK applies from here on */
	}
	/* reconnect rewrites a split ring for the next backend; a packed
	 * one it can hand over only through the backend's in-flight region
	 * (frontend_reconnect.c): without INFLIGHT_SHMFD, split rings only */
	if (fe_reconnects(f) && !has_pf(f, VIO_VU_PF_INFLIGHT_SHMFD))
		f->offered &= ~(1ull << VIRTIO_F_RING_PACKED);
	r = vio_fe_xfer_u64(f, VIO_VU_SET_OWNER, 0, NULL);
	if (r)
		goto fail;
	/* the backend channel, if offered (frontend_req.c) */
	r = vio_fe_req_setup_locked(f);
	if (r)
		goto fail;

	unsigned have = 1;
	if (has_pf(f, VIO_VU_PF_MQ)) {
		r = vio_fe_xfer_u64(f, VIO_VU_GET_QUEUE_NUM, 0, &v);
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
	r = probe_sizes(f, path, err, errlen);
	if (r == -ERANGE)
		return r;
	if (r)
		goto fail;
	if (has_pf(f, VIO_VU_PF_CONFIGURE_MEM_SLOTS)) {
		r = vio_fe_xfer_u64(f, VIO_VU_GET_MAX_MEM_SLOTS, 0, &v);
		if (r)
			goto fail;
		if (v == 0) {
			ERR("%s: the backend has no memory slot", path);
			return -ENODEV;
		}
		f->max_slots = v > 4096 ? 4096 : (unsigned)v;
	}
	r = vio_fe_mem_sync_locked(f);
	if (r) {
		if (is_dead(f))
			goto fail;
		ERR("%s: cannot share memory: %s", path, strerror(-r));
		return r;
	}
	/* the in-flight region, once, for every later connection */
	r = vio_fe_inflight_get_locked(f);
	if (r)
		goto fail;
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

/* Connect f->sock, with the reply timeouts.  0 or negative errno. */
static int open_conn(struct vio_frontend *f, const char *path, char *err,
		     size_t errlen)
{
	/* listening: 0 is no limit */
	int tmo_ms = f->cfg.connect_timeout_ms;
	if (f->lsock >= 0 && tmo_ms <= 0)
		tmo_ms = -1;
	int r = vio_fe_sock_open(f, tmo_ms, err, errlen);
	if (r < 0)
		return r;
	f->sock = r;
	int tmo = f->cfg.reply_timeout_ms > 0 ? f->cfg.reply_timeout_ms
					      : DEFAULT_REPLY_TIMEOUT_MS;
	struct timeval tv = {.tv_sec = tmo / 1000,
			     .tv_usec = (tmo % 1000) * 1000};
	if (setsockopt(f->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(f->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		r = -errno;
		ERR("setsockopt: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* Forget a connection that died in the handshake; the learnt queue sizes
 * (qmax) stay. */
static void conn_reset(struct vio_frontend *f)
{
	vio_fe_close_fd(&f->sock);
	vio_fe_req_close(f);
	__atomic_store_n(&f->dead, false, __ATOMIC_RELEASE);
	f->why[0] = f->refused[0] = '\0';
	f->offered = 0;
	f->proto = false;
	f->protocol = 0;
	f->max_slots = 0;
	f->nq = 0;
	__atomic_store_n(&f->synced, 0, __ATOMIC_RELEASE);
	f->size_refused = false;
	f->size_why[0] = '\0';
	vio_fe_inflight_drop(f);
}

struct vio_frontend *vio_frontend_connect(const char *path,
					  const struct vio_frontend_opts *cfg,
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
	unsigned cs = cfg->config_size;
	if (qs > VIO_VQ_MAX_SIZE || cs > VIO_VU_CONFIG_MAX ||
	    cfg->num_queues > VIO_MAX_QUEUES || cfg->reconnect_ms < 0) {
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
	f->sock = f->lsock = f->inf_fd = f->log_fd = -1;
	snprintf(f->path, sizeof(f->path), "%s", path);
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++) {
		f->q[i].kick_fd = f->q[i].call_fd = -1;
		f->qmax[i] = qs;
	}
	pthread_mutex_init(&f->lock, NULL);
	vio_fe_req_init(f);

	int r;
	if (cfg->listen) {
		r = vio_fe_listen(f, err, errlen);
		if (r)
			goto fail;
	}
	for (unsigned attempt = 1;; attempt++) {
		r = open_conn(f, path, err, errlen);
		if (r == 0) {
			pthread_mutex_lock(&f->lock);
			r = handshake(f, path, err, errlen);
			pthread_mutex_unlock(&f->lock);
		}
		if (r == 0)
			break;
		/* the backend ended the connection after refusing a queue
		 * size: again, from the sizes not refused yet (each round
		 * lowers one, so this ends) */
		if (!(f->size_refused && is_dead(f)) ||
		    attempt >= SIZE_PROBE_CONNECTS)
			goto fail;
		vio_log("vhost-user frontend: %s: connecting again with "
			"smaller queues",
			path);
		conn_reset(f);
	}
	err[0] = '\0';
	/* the queues' fds, for the frontend's whole life (see the top) */
	for (unsigned i = 0; i < f->nq; i++) {
		f->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		f->q[i].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (f->q[i].kick_fd < 0 || f->q[i].call_fd < 0) {
			r = -errno;
			ERR("eventfd: %s", strerror(-r));
			goto fail;
		}
	}
	f->vdev = vio_drvdev_new(&vio_fe_ops, f, cfg->mem);
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

struct vio_drvdev *vio_frontend_vdev(struct vio_frontend *f)
{
	return f->vdev;
}

bool vio_frontend_alive(const struct vio_frontend *f)
{
	/* with reconnect a hang-up is not the end: dead says when it is */
	return f && !is_dead(f) &&
	       (fe_reconnects(f) || !vio_fe_sock_hung_up(f));
}

int vio_frontend_fd(const struct vio_frontend *f)
{
	return f->sock;
}

const char *vio_frontend_error(const struct vio_frontend *f)
{
	if (!is_dead(f))
		return !fe_reconnects(f) && vio_fe_sock_hung_up(f)
			   ? "backend closed the connection"
			   : "";
	return f->why;
}

void vio_frontend_free(struct vio_frontend *f)
{
	if (!f)
		return;
	/* resets the device (rings stopped) if still live */
	vio_drvdev_free(f->vdev);
	f->vdev = NULL;
	/* nobody notifies or waits any more (the contract in the header):
	 * now the fds may go */
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++) {
		vio_fe_close_fd(&f->q[i].kick_fd);
		vio_fe_close_fd(&f->q[i].call_fd);
	}
	vio_fe_req_fini(f);
	vio_fe_inflight_drop(f);
	vio_fe_log_free(f);
	vio_fe_close_fd(&f->sock);
	vio_fe_unlisten(f);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- the bus across processes ---- */

#define URI_SCHEME "vhost-user:"

struct vio_frontend *vio_bus_connect(struct vio_bus *bus, const char *path,
				     const struct vio_frontend_opts *cfg,
				     char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!bus || !path || !*path) {
		ERR("no bus or no socket path");
		errno = EINVAL;
		return NULL;
	}
	/* the same address as vio_frontend_connect: a path; the scheme of
	 * the older "vhost-user:PATH" form is accepted and dropped */
	if (!strncmp(path, URI_SCHEME, strlen(URI_SCHEME)))
		path += strlen(URI_SCHEME);
	struct vio_frontend *f = vio_frontend_connect(path, cfg, err, errlen);
	if (!f)
		return NULL;
	int r = vio_bus_add(bus, f->vdev);
	if (r == 0)
		return f;
	/* without a match the bus touches nothing and says -ENODEV; a
	 * driver that ran leaves a status (DRIVER, or FAILED after a
	 * refused DRIVER_OK reset the device) */
	bool probed =
	    r != -ENODEV || __atomic_load_n(&f->status, __ATOMIC_ACQUIRE) != 0;
	if (!probed)
		ERR("%s: no driver on the bus for device id %u", path,
		    cfg->device_id);
	else if (f->size_why[0]) /* not the device type's fault */
		ERR("%s: the driver could not set up its queues: %s", path,
		    f->size_why);
	else
		ERR("%s: the driver refused the device: %s (is the backend a "
		    "device of type %u?)",
		    path, is_dead(f) ? f->why : strerror(-r), cfg->device_id);
	vio_bus_remove(bus, f->vdev);
	vio_frontend_free(f);
	errno = -r;
	return NULL;
}
