/* SPDX-License-Identifier: MIT */
/*
 * Live config changes: the backend channel (BACKEND_REQ,
 * BACKEND_CONFIG_CHANGE_MSG, REPLY_ACK on it) between vio's frontend and
 * vio's backend, blk resize, and the same over inproc.
 *
 * - Grow from the backend's control thread (as vio serve's SIGHUP): the
 *   frontend's channel becomes readable, vio_frontend_serve_backend runs
 *   the blk driver's config_changed, the driver sees the new capacity
 *   without reconnecting and reads and writes past the old end.
 * - Grow from another thread (image truncated bigger, size re-read): the
 *   backend waits for the ack; a driver thread waiting for used buffers
 *   serves the channel; the resize returns well before its ack timeout.
 * - Shrink refused: -EPERM, a clear message, both capacities unchanged.
 * - Without REPLY_ACK: no ack asked, nothing waits.
 * - A frontend without the channel (BACKEND_REQ left out): the device
 *   grows, I/O goes on, the driver sees it at its next connection.
 * - Hostile frontends (raw socket): SET_BACKEND_REQ_FD without the
 *   feature or with an eventfd ends the connection; a channel nobody
 *   reads or acks, one that answers junk, one closed: a resize never
 *   blocks beyond the ack wait, the channel is dropped, the connection
 *   still answers.
 * - A hostile backend (a fake one): unknown requests answered 1, a
 *   config change acked 0, junk drops the channel while the frontend
 *   stays alive.
 * - Inproc: a device-side config update reaches the driver's
 *   config_changed (vio_inproc_serve_config, and a waiter).
 *
 * Every thread is joined, every fd back, temp files removed; a watchdog
 * (alarm) bounds the whole test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
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

#include "test.h"
#include "transport/vhost-user/backend_chan.h"
#include "transport/vhost-user/msg.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/inproc.h>
#include <vio/mem.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define MIB (1ull << 20)
#define SECTOR 512u
#define PF(bit) (1ull << (bit))

static char tmpdir[200];

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_vu_config_change: watchdog\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

/* ---- a vio backend on its own (control) thread ---- */

struct server {
	struct vio_blk_device *bd;
	struct vio_backend *be;
	pthread_t th;
	bool stop; /* __atomic */
	/* a resize to run on the control thread: sectors, then want = 1;
	 * the thread sets result and want = 0 */
	uint64_t sectors;
	int want, result;
	char err[256];
};

static void *server_loop(void *arg)
{
	struct server *s = arg;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		if (__atomic_load_n(&s->want, __ATOMIC_ACQUIRE)) {
			s->result = vio_blk_device_resize(
			    s->bd, s->sectors, s->err, sizeof(s->err));
			__atomic_store_n(&s->want, 0, __ATOMIC_RELEASE);
		}
		struct pollfd p = {.fd = vio_backend_fd(s->be),
				   .events = POLLIN};
		if (poll(&p, 1, 10) > 0)
			(void)vio_backend_dispatch(s->be);
	}
	return NULL;
}

static void server_start(struct server *s, const char *sock, const char *img,
			 uint64_t size)
{
	memset(s, 0, sizeof(*s));
	struct vio_blk_device_opts c = {.path = img, .size = size};
	char err[256];
	s->bd = vio_blk_device_new(&c, err, sizeof(err));
	if (!s->bd)
		fprintf(stderr, "blk device: %s\n", err);
	REQUIRE(s->bd);
	struct vio_backend_opts bc = {0};
	vio_run_backend_hooks(&bc, false);
	s->be = vio_backend_new(vio_blk_device_dev(s->bd), &bc);
	REQUIRE(s->be && vio_backend_listen(s->be, sock) == 0);
	REQUIRE(pthread_create(&s->th, NULL, server_loop, s) == 0);
}

/* Resize on the control thread (as vio serve does on SIGHUP). */
static int server_resize(struct server *s, uint64_t sectors)
{
	s->sectors = sectors;
	__atomic_store_n(&s->want, 1, __ATOMIC_RELEASE);
	uint64_t deadline = now_ms() + 5000;
	while (__atomic_load_n(&s->want, __ATOMIC_ACQUIRE)) {
		REQUIRE(now_ms() < deadline);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return s->result;
}

static void server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	pthread_join(s->th, NULL);
	vio_backend_free(s->be);
	vio_blk_device_free(s->bd);
}

/* ---- vio's driver over the frontend ---- */

struct client {
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_frontend *f;
	struct vio_blk *b;
};

static void client_open(struct client *c, const char *sock, uint64_t off)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	c->drv = vio_blk_driver_new(NULL);
	REQUIRE(c->mem && c->bus && c->drv);
	REQUIRE(vio_bus_register(c->bus, c->drv) == 0);
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = VIRTIO_ID_BLOCK,
	    .connect_timeout_ms = 5000,
	    .reply_timeout_ms = 5000,
	    .protocol_features_off = off,
	};
	char err[256] = "";
	c->f = vio_bus_connect(c->bus, sock, &fc, err, sizeof(err));
	if (!c->f)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(c->f);
	c->b = vio_blk_from_vdev(vio_frontend_vdev(c->f));
	REQUIRE(c->b);
}

static void client_close(struct client *c)
{
	vio_bus_remove(c->bus, vio_frontend_vdev(c->f));
	vio_frontend_free(c->f);
	vio_bus_unregister(c->bus, c->drv);
	vio_bus_free(c->bus);
	vio_blk_driver_free(c->drv);
	vio_mem_free(c->mem);
}

/* Serve the channel on demand until the driver sees cap (5 s). */
static bool serve_until(struct client *c, uint64_t cap)
{
	uint64_t deadline = now_ms() + 5000;
	while (vio_blk_capacity_bytes(c->b) != cap) {
		if (now_ms() >= deadline)
			return false;
		struct pollfd p = {.fd = vio_frontend_backend_fd(c->f),
				   .events = POLLIN};
		if (p.fd < 0 || poll(&p, 1, 100) < 0)
			return false;
		(void)vio_frontend_serve_backend(c->f);
	}
	return true;
}

/* Write a pattern at off and read it back. */
static void io_at(struct vio_blk *b, uint64_t off, uint8_t tag)
{
	uint8_t w[4096], r[4096];
	memset(w, tag, sizeof(w));
	CHECK_EQ(vio_blk_write(b, 0, off, w, sizeof(w)), 0);
	memset(r, 0, sizeof(r));
	CHECK_EQ(vio_blk_read(b, 0, off, r, sizeof(r)), 0);
	CHECK(memcmp(w, r, sizeof(w)) == 0);
}

struct resizer {
	struct vio_blk_device *bd;
	uint64_t sectors;
	int r;
	uint64_t ms;
};

static void *resize_thread(void *arg)
{
	struct resizer *rz = arg;
	char err[256];
	uint64_t t0 = now_ms();
	rz->r = vio_blk_device_resize(rz->bd, rz->sectors, err, sizeof(err));
	rz->ms = now_ms() - t0;
	if (rz->r)
		fprintf(stderr, "resize: %s\n", err);
	return NULL;
}

static void test_grow_and_shrink(void)
{
	char sock[300], img[300];
	path_in(sock, sizeof(sock), "grow.sock");
	path_in(img, sizeof(img), "grow.img");
	fprintf(stderr, "grow and shrink, vio frontend <-> vio backend\n");
	struct server s;
	server_start(&s, sock, img, 8 * MIB);
	struct client c;
	client_open(&c, sock, 0);
	CHECK(vio_frontend_backend_fd(c.f) >= 0);
	CHECK_EQ(vio_blk_capacity_bytes(c.b), 8 * MIB);
	/* past the end: refused by the driver before anything is sent */
	uint8_t buf[4096] = {0};
	CHECK_EQ(vio_blk_read(c.b, 0, 8 * MIB, buf, sizeof(buf)), -ERANGE);

	/* 1. from the control thread: no ack wait there */
	CHECK_EQ(server_resize(&s, 16 * MIB / SECTOR), 0);
	CHECK_EQ(vio_blk_device_capacity(s.bd), 16 * MIB / SECTOR);
	CHECK(serve_until(&c, 16 * MIB));
	io_at(c.b, 16 * MIB - 4096, 0xa5);
	struct vio_blk_info in;
	vio_blk_get_info(c.b, &in);
	CHECK_EQ(in.capacity, 16 * MIB / SECTOR);
	CHECK(vio_frontend_alive(c.f));

	/* 2. from another thread, the image grown under us (size re-read);
	 * a driver thread waiting for used buffers serves the channel, so
	 * the ack comes well within the backend's 1 s wait */
	REQUIRE(truncate(img, (off_t)(24 * MIB)) == 0);
	struct vio_drvdev *vdev = vio_frontend_vdev(c.f);
	struct vio_vq *vq = vio_drvdev_vq(vdev, 0);
	REQUIRE(vq);
	struct resizer rz = {.bd = s.bd, .sectors = 0};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, resize_thread, &rz) == 0);
	uint64_t deadline = now_ms() + 5000;
	while (vio_blk_capacity_bytes(c.b) != 24 * MIB && now_ms() < deadline) {
		uint32_t len;
		/* nothing in flight: each wait sleeps, serving the channel */
		CHECK(vio_drvdev_wait_used(vdev, vq, &len, 50) == NULL);
	}
	pthread_join(th, NULL);
	CHECK_EQ(rz.r, 0);
	CHECK_EQ(vio_blk_capacity_bytes(c.b), 24 * MIB);
	/* acked: the backend did not sit out its 1 s ack wait */
	CHECK(rz.ms < 900);
	io_at(c.b, 24 * MIB - 4096, 0x5a);

	/* 3. shrink: refused, said why, nothing changes anywhere */
	char err[256] = "";
	CHECK_EQ(
	    vio_blk_device_resize(s.bd, 4 * MIB / SECTOR, err, sizeof(err)),
	    -EPERM);
	fprintf(stderr, "  shrink: %s\n", err);
	CHECK(strstr(err, "shrinking from 25165824 to 4194304 bytes refused"));
	CHECK_EQ(vio_blk_device_capacity(s.bd), 24 * MIB / SECTOR);
	REQUIRE(truncate(img, (off_t)(20 * MIB)) == 0); /* shrunk under us */
	CHECK_EQ(vio_blk_device_resize(s.bd, 0, err, sizeof(err)), -EPERM);
	CHECK_EQ(vio_blk_device_capacity(s.bd), 24 * MIB / SECTOR);
	CHECK_EQ(vio_frontend_serve_backend(c.f), 0); /* nothing was sent */
	CHECK_EQ(vio_blk_capacity_bytes(c.b), 24 * MIB);
	/* the same size again: nothing to do, nothing sent */
	CHECK_EQ(
	    vio_blk_device_resize(s.bd, 24 * MIB / SECTOR, err, sizeof(err)),
	    0);
	CHECK_EQ(vio_frontend_serve_backend(c.f), 0);
	io_at(c.b, 0, 0x11);
	CHECK(vio_frontend_alive(c.f));
	client_close(&c);

	/* 4. without REPLY_ACK: no ack asked, a resize on another thread
	 * returns at once */
	client_open(&c, sock, PF(VIO_VU_PF_REPLY_ACK));
	CHECK(vio_frontend_backend_fd(c.f) >= 0);
	uint64_t t0 = now_ms();
	CHECK_EQ(
	    vio_blk_device_resize(s.bd, 32 * MIB / SECTOR, err, sizeof(err)),
	    0);
	CHECK(now_ms() - t0 < 500);
	CHECK(serve_until(&c, 32 * MIB));
	io_at(c.b, 32 * MIB - 4096, 0x77);
	client_close(&c);

	/* 5. a frontend without the channel: the device grows, the driver
	 * goes on with what it knows and sees the rest when it connects */
	client_open(&c, sock, PF(VIO_VU_PF_BACKEND_REQ));
	CHECK_EQ(vio_frontend_backend_fd(c.f), -1);
	CHECK_EQ(vio_frontend_serve_backend(c.f), 0);
	t0 = now_ms();
	CHECK_EQ(
	    vio_blk_device_resize(s.bd, 40 * MIB / SECTOR, err, sizeof(err)),
	    0);
	CHECK(now_ms() - t0 < 500);
	CHECK_EQ(vio_blk_capacity_bytes(c.b), 32 * MIB);
	io_at(c.b, 32 * MIB - 4096, 0x78);
	client_close(&c);
	client_open(&c, sock, 0);
	CHECK_EQ(vio_blk_capacity_bytes(c.b), 40 * MIB);
	client_close(&c);

	server_stop(&s);
	unlink(img);
}

/* ---- hostile frontends: a raw socket ---- */

static int raw_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	REQUIRE(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	struct timeval tv = {.tv_sec = 5};
	REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	return fd;
}

/* Send req (u64 payload if its size rule has one, fd if >= 0), with
 * NEED_REPLY if ack; 0 and *ack (a request with a reply, or acked), or
 * the reply's error (-ECONNRESET: the backend ended the connection). */
static int raw_xfer(int sock, uint32_t req, uint64_t v, int fd, uint64_t *ack)
{
	struct vio_vu_msg m;
	vio_vu_request_init(&m, req, ack ? VIO_VU_FLAG_NEED_REPLY : 0);
	m.p.u64 = v;
	m.hdr.size = vio_vu_payload_size(&m);
	if (fd >= 0) {
		m.fds[0] = fd;
		m.nfds = 1;
	}
	int r = vio_vu_send(sock, &m);
	if (r || (!ack && vio_vu_request_info(req)->reply == VIO_VU_REPLY_NONE))
		return r;
	char why[160];
	r = vio_vu_recv_reply(sock, req, 0, &m, why, sizeof(why));
	if (r == 0 && ack)
		*ack = m.p.u64;
	return r;
}

static bool raw_alive(int fd);

/* A connection with the channel set up: our end in *chan. */
static int raw_with_channel(const char *sock, uint64_t proto, int *chan,
			    int sndbuf)
{
	int fd = raw_connect(sock);
	/* REPLY_ACK applies from the next message on */
	CHECK_EQ(raw_xfer(fd, VIO_VU_SET_PROTOCOL_FEATURES, proto, -1, NULL),
		 0);
	bool acks = proto & PF(VIO_VU_PF_REPLY_ACK);
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	if (sndbuf)
		REQUIRE(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf,
				   sizeof(sndbuf)) == 0);
	uint64_t ack = 0;
	CHECK_EQ(raw_xfer(fd, VIO_VU_SET_BACKEND_REQ_FD, 0, sv[1],
			  acks ? &ack : NULL),
		 0);
	CHECK_EQ(ack, 0);
	close(sv[1]);
	CHECK(raw_alive(fd)); /* handled by now */
	*chan = sv[0];
	return fd;
}

/* The connection still answers. */
static bool raw_alive(int fd)
{
	uint64_t v = 0;
	return raw_xfer(fd, VIO_VU_GET_FEATURES, 0, -1, &v) == 0 &&
	       (v & PF(VIRTIO_F_VERSION_1));
}

static uint64_t grow(struct server *s, uint64_t sectors, int *r)
{
	char err[256];
	uint64_t t0 = now_ms();
	*r = vio_blk_device_resize(s->bd, sectors, err, sizeof(err));
	return now_ms() - t0;
}

static void test_hostile_frontend(void)
{
	char sock[300], img[300];
	path_in(sock, sizeof(sock), "hf.sock");
	path_in(img, sizeof(img), "hf.img");
	fprintf(stderr, "hostile frontends\n");
	struct server s;
	server_start(&s, sock, img, 1 * MIB);
	uint64_t sectors = 1 * MIB / SECTOR;
	uint64_t bcr = PF(VIO_VU_PF_BACKEND_REQ) | PF(VIO_VU_PF_CONFIG) |
		       PF(VIO_VU_PF_REPLY_ACK);
	int r, sv[2];

	/* the channel without the feature: the connection ends */
	int fd = raw_connect(sock);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	uint64_t ack;
	CHECK_EQ(raw_xfer(fd, VIO_VU_SET_BACKEND_REQ_FD, 0, sv[1], &ack),
		 -ECONNRESET);
	close(sv[0]);
	close(sv[1]);
	close(fd);

	/* an eventfd for a socket: the connection ends */
	fd = raw_connect(sock);
	CHECK_EQ(raw_xfer(fd, VIO_VU_SET_PROTOCOL_FEATURES, bcr, -1, NULL), 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(efd >= 0);
	CHECK_EQ(raw_xfer(fd, VIO_VU_SET_BACKEND_REQ_FD, 0, efd, &ack), 0);
	CHECK_EQ(ack, 1); /* refused, then the connection ends */
	char c0;
	CHECK_EQ(recv(fd, &c0, 1, 0), 0);
	close(efd);
	close(fd);

	/* a frontend that never acks: bounded wait; then junk on the
	 * channel: dropped; the connection goes on */
	int chan;
	fd = raw_with_channel(sock, bcr, &chan, 0);
	uint64_t ms = grow(&s, ++sectors, &r);
	CHECK_EQ(r, 0);
	CHECK(ms >= 800 && ms < 3000);
	struct vio_vu_chan_msg m;
	char why[120];
	CHECK_EQ(vio_vu_chan_recv(chan, &m, why, sizeof(why)), 0);
	CHECK_EQ(m.hdr.request, VIO_VU_BACKEND_CONFIG_CHANGE_MSG);
	CHECK(m.hdr.flags & VIO_VU_FLAG_NEED_REPLY);
	CHECK_EQ(m.hdr.size, 0);
	static const uint8_t junk[12] = {2, 0, 0, 0, 0x06, 0, 0, 0, 8, 0, 0, 0};
	CHECK_EQ(write(chan, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	ms = grow(&s, ++sectors, &r);
	CHECK_EQ(r, 0);
	CHECK(ms < 500);
	char c1;
	CHECK_EQ(recv(chan, &c1, 1, MSG_DONTWAIT), 0); /* dropped: EOF */
	CHECK(raw_alive(fd));
	CHECK_EQ(vio_blk_device_capacity(s.bd), sectors);
	close(chan);
	close(fd);

	/* a frontend that never reads its channel (a tiny buffer): every
	 * resize returns at once */
	fd =
	    raw_with_channel(sock, bcr & ~PF(VIO_VU_PF_REPLY_ACK), &chan, 4096);
	uint64_t t0 = now_ms();
	for (unsigned i = 0; i < 64; i++) {
		(void)grow(&s, ++sectors, &r);
		CHECK_EQ(r, 0);
	}
	CHECK(now_ms() - t0 < 3000);
	CHECK(raw_alive(fd));
	/* then it closes its end: the next one drops the channel */
	close(chan);
	ms = grow(&s, ++sectors, &r);
	CHECK_EQ(r, 0);
	CHECK(ms < 500);
	CHECK(raw_alive(fd));
	close(fd);

	server_stop(&s);
	unlink(img);
}

/* ---- a hostile backend: a fake one ---- */

struct fake {
	int listen_fd;
	pthread_t th;
	int chan; /* __atomic: the backend channel, once given */
};

static void *fake_loop(void *arg)
{
	struct fake *fk = arg;
	int c = accept4(fk->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return NULL;
	for (;;) {
		struct vio_vu_msg m;
		char why[160];
		if (vio_vu_recv(c, &m, why, sizeof(why)))
			break;
		bool reply = true;
		switch (m.hdr.request) {
		case VIO_VU_GET_FEATURES:
			m.p.u64 = PF(VIRTIO_F_VERSION_1) |
				  PF(VIO_VU_F_PROTOCOL_FEATURES);
			break;
		case VIO_VU_GET_PROTOCOL_FEATURES:
			m.p.u64 =
			    PF(VIO_VU_PF_BACKEND_REQ) | PF(VIO_VU_PF_CONFIG);
			break;
		case VIO_VU_GET_STATUS:
			m.p.u64 = 0;
			break;
		case VIO_VU_GET_VRING_BASE:
			break;
		case VIO_VU_SET_BACKEND_REQ_FD:
			__atomic_store_n(&fk->chan, m.fds[0], __ATOMIC_RELEASE);
			m.nfds = 0;
			reply = false;
			break;
		default:
			reply = false;
			break;
		}
		vio_vu_close_fds(&m);
		if (!reply)
			continue;
		m.hdr.flags = VIO_VU_VERSION | VIO_VU_FLAG_REPLY;
		m.hdr.size = vio_vu_payload_size(&m);
		if (vio_vu_send(c, &m))
			break;
	}
	close(c);
	return NULL;
}

/* The backend asks something; the frontend serves it (*answer: the
 * ack's value, or -1 if none came). */
static int ask(struct vio_frontend *f, int chan, uint32_t req, uint32_t flags,
	       uint32_t size, long long *answer)
{
	uint8_t payload[64] = {0};
	REQUIRE(vio_vu_chan_send(chan, req, flags, payload, size) == 0);
	struct pollfd p = {.fd = vio_frontend_backend_fd(f), .events = POLLIN};
	REQUIRE(poll(&p, 1, 5000) == 1);
	int n = vio_frontend_serve_backend(f);
	*answer = -1;
	struct vio_vu_chan_msg m;
	char why[120];
	if (poll(&(struct pollfd){.fd = chan, .events = POLLIN}, 1, 100) == 1 &&
	    vio_vu_chan_recv(chan, &m, why, sizeof(why)) == 0 &&
	    m.hdr.request == req && (m.hdr.flags & VIO_VU_FLAG_REPLY) &&
	    m.hdr.size == 8)
		*answer = (long long)m.p.u64;
	return n;
}

static void test_hostile_backend(void)
{
	char sock[300];
	path_in(sock, sizeof(sock), "fake.sock");
	fprintf(stderr, "hostile backend\n");
	struct fake fk = {.chan = -1};
	fk.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	REQUIRE(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	REQUIRE(fk.listen_fd >= 0 &&
		bind(fk.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		listen(fk.listen_fd, 1) == 0);
	REQUIRE(pthread_create(&fk.th, NULL, fake_loop, &fk) == 0);
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct vio_frontend_opts fc = {.mem = mem,
				       .device_id = VIRTIO_ID_BLOCK,
				       .connect_timeout_ms = 5000,
				       .reply_timeout_ms = 5000};
	char err[256] = "";
	struct vio_frontend *f =
	    vio_frontend_connect(sock, &fc, err, sizeof(err));
	if (!f)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(f);
	/* no REPLY_ACK: the fake may not have read it yet */
	int chan;
	uint64_t deadline = now_ms() + 5000;
	while ((chan = __atomic_load_n(&fk.chan, __ATOMIC_ACQUIRE)) < 0 &&
	       now_ms() < deadline)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	REQUIRE(chan >= 0);
	CHECK(vio_frontend_backend_fd(f) >= 0);
	long long a;
	/* a config change (no driver bound: nothing to run), acked 0 */
	CHECK_EQ(ask(f, chan, VIO_VU_BACKEND_CONFIG_CHANGE_MSG,
		     VIO_VU_FLAG_NEED_REPLY, 0, &a),
		 1);
	CHECK_EQ(a, 0);
	/* unknown requests: answered 1 when asked, else nothing */
	CHECK_EQ(ask(f, chan, 77, VIO_VU_FLAG_NEED_REPLY, 8, &a), 1);
	CHECK_EQ(a, 1);
	CHECK_EQ(
	    ask(f, chan, VIO_VU_BACKEND_VRING_HOST_NOTIFIER_MSG, 0, 24, &a), 1);
	CHECK_EQ(a, -1);
	/* a reply where a request belongs: the channel goes, f stays */
	CHECK(ask(f, chan, VIO_VU_BACKEND_CONFIG_CHANGE_MSG, VIO_VU_FLAG_REPLY,
		  0, &a) < 0);
	CHECK_EQ(vio_frontend_backend_fd(f), -1);
	CHECK(vio_frontend_alive(f));
	char c1;
	CHECK_EQ(recv(chan, &c1, 1, MSG_DONTWAIT), 0); /* closed: EOF */
	CHECK_EQ(vio_frontend_serve_backend(f), 0);
	vio_frontend_free(f);
	pthread_join(fk.th, NULL);
	close(chan);
	close(fk.listen_fd);
	unlink(sock);
	vio_mem_free(mem);
}

/* ---- inproc ---- */

struct inproc_env {
	struct vio_inproc *ip;
	pthread_t th;
};

static void *inproc_device(void *arg)
{
	struct inproc_env *e = arg;
	while (vio_inproc_device_poll(e->ip, -1) >= 0)
		;
	return NULL;
}

static void test_inproc(void)
{
	char img[300];
	path_in(img, sizeof(img), "inproc.img");
	fprintf(stderr, "inproc\n");
	struct vio_blk_device_opts dc = {.path = img, .size = 2 * MIB};
	char err[256];
	struct vio_blk_device *bd = vio_blk_device_new(&dc, err, sizeof(err));
	REQUIRE(bd);
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct inproc_env e = {.ip =
				   vio_inproc_new(vio_blk_device_dev(bd), mem)};
	REQUIRE(e.ip);
	REQUIRE(pthread_create(&e.th, NULL, inproc_device, &e) == 0);
	struct vio_bus *bus = vio_bus_new();
	struct vio_driver *drv = vio_blk_driver_new(NULL);
	REQUIRE(bus && drv && vio_bus_register(bus, drv) == 0);
	struct vio_drvdev *vdev = vio_inproc_vdev(e.ip);
	REQUIRE(vio_bus_add(bus, vdev) == 0);
	struct vio_blk *b = vio_blk_from_vdev(vdev);
	REQUIRE(b);
	CHECK_EQ(vio_blk_capacity_bytes(b), 2 * MIB);
	CHECK_EQ(vio_inproc_serve_config(e.ip), 0); /* nothing pending */

	/* on demand */
	CHECK_EQ(vio_blk_device_resize(bd, 3 * MIB / SECTOR, err, sizeof(err)),
		 0);
	struct pollfd p = {.fd = vio_inproc_config_fd(e.ip), .events = POLLIN};
	CHECK_EQ(poll(&p, 1, 0), 1);
	CHECK_EQ(vio_inproc_serve_config(e.ip), 1);
	CHECK_EQ(vio_blk_capacity_bytes(b), 3 * MIB);
	io_at(b, 3 * MIB - 4096, 0x33);

	/* a waiter serves it */
	CHECK_EQ(vio_blk_device_resize(bd, 4 * MIB / SECTOR, err, sizeof(err)),
		 0);
	struct vio_vq *vq = vio_drvdev_vq(vdev, 0);
	REQUIRE(vq);
	uint32_t len;
	CHECK(vio_drvdev_wait_used(vdev, vq, &len, 50) == NULL);
	CHECK_EQ(vio_blk_capacity_bytes(b), 4 * MIB);
	io_at(b, 4 * MIB - 4096, 0x44);
	/* shrink refused here too */
	CHECK_EQ(vio_blk_device_resize(bd, 1, err, sizeof(err)), -EPERM);
	CHECK_EQ(vio_inproc_serve_config(e.ip), 0);
	CHECK_EQ(vio_blk_capacity_bytes(b), 4 * MIB);

	vio_bus_remove(bus, vdev);
	vio_bus_free(bus);
	vio_blk_driver_free(drv);
	vio_inproc_stop(e.ip);
	pthread_join(e.th, NULL);
	vio_inproc_free(e.ip);
	vio_blk_device_free(bd);
	vio_mem_free(mem);
	unlink(img);
}

int main(void)
{
	signal(SIGALRM, watchdog);
	alarm(100);
	signal(SIGPIPE, SIG_IGN);
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-vucfg-XXXXXX",
		 base && *base ? base : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	int fds = test_count_fds();
	test_grow_and_shrink();
	test_hostile_frontend();
	test_hostile_backend();
	test_inproc();
	CHECK_EQ(test_count_fds(), fds);
	rmdir(tmpdir);
	return test_result("vu_config_change");
}
