/* SPDX-License-Identifier: MIT */
/*
 * Queue sizes over vhost-user (issue 12, item 5): vhost-user has no
 * message that tells a backend's largest ring, and vio's frontend asks
 * for 256 entries by default.
 *
 * - vio's backend serving an rng device whose maximum is 128, and 64
 *   (split and packed), the frontend's queue_size left at 0: the connect
 *   learns the size (a refused SET_VRING_NUM with NEED_REPLY, which vio's
 *   backend survives), the driver gets a ring of the backend's maximum,
 *   random bytes come through.
 * - A backend that ends the connection after every refusal (as most do):
 *   the frontend connects again with half the size, until one is taken.
 * - A backend that refuses every size: connect fails and says so.
 * - Without REPLY_ACK nothing can be learnt: the connection fails with a
 *   message that names the queue size, not the device type.
 *
 * Backends run on threads of this process; sockets live in a temporary
 * directory; an alarm bounds the whole test.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "test.h"
#include "transport/vhost-user/msg.h"
#include <vio/bus.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/rng.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

static char tmpdir[200];

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_vu_queue_size: watchdog: timed out\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* ---- vio's backend with an rng device of a given maximum ---- */

struct server {
	struct vio_rng_device *rng;
	struct vio_backend *be;
	pthread_t th;
	bool stop; /* __atomic */
};

static void *server_loop(void *arg)
{
	struct server *s = arg;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = {.fd = vio_backend_fd(s->be),
				   .events = POLLIN};
		if (poll(&p, 1, 20) > 0)
			(void)vio_backend_dispatch(s->be);
	}
	return NULL;
}

static void server_start(struct server *s, const char *sock, uint16_t qmax,
			 bool packed)
{
	memset(s, 0, sizeof(*s));
	struct vio_rng_device_opts rc = {.queue_size = qmax, .packed = packed};
	s->rng = vio_rng_device_new(&rc, NULL, 0);
	REQUIRE(s->rng);
	struct vio_backend_opts bc = {0};
	vio_run_backend_hooks(&bc, false);
	s->be = vio_backend_new(vio_rng_device_dev(s->rng), &bc);
	REQUIRE(s->be && vio_backend_listen(s->be, sock) == 0);
	REQUIRE(pthread_create(&s->th, NULL, server_loop, s) == 0);
}

static void server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	pthread_join(s->th, NULL);
	vio_backend_free(s->be);
	vio_rng_device_free(s->rng);
}

/* ---- the driver side: vio's rng driver on a bus ---- */

struct client {
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_frontend *f;
};

static int client_open(struct client *c, const char *sock, uint64_t pf_off,
		       char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	REQUIRE(c->mem && c->bus);
	REQUIRE(vio_bus_register(c->bus, &vio_rng_driver) == 0);
	char uri[300];
	snprintf(uri, sizeof(uri), "vhost-user:%s", sock);
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = VIRTIO_ID_RNG,
	    .connect_timeout_ms = 5000,
	    .reply_timeout_ms = 5000,
	    .protocol_features_off = pf_off,
	};
	c->f = vio_bus_connect(c->bus, uri, &fc, err, errlen);
	return c->f ? 0 : -errno;
}

static void client_close(struct client *c)
{
	if (c->f) {
		vio_bus_remove(c->bus, vio_frontend_vdev(c->f));
		vio_frontend_free(c->f);
	}
	vio_bus_unregister(c->bus, &vio_rng_driver);
	vio_bus_free(c->bus);
	vio_mem_free(c->mem);
}

/* Default queue_size against a backend whose maximum is qmax. */
static void test_learn(uint16_t qmax, bool packed)
{
	char sock[300], err[300] = "";
	snprintf(sock, sizeof(sock), "%s/rng%u.sock", tmpdir, qmax);
	struct server s;
	server_start(&s, sock, qmax, packed);
	struct client c;
	int r = client_open(&c, sock, 0, err, sizeof(err));
	CHECK_EQ(r, 0);
	if (r == 0) {
		struct vio_drvdev *vdev = vio_frontend_vdev(c.f);
		CHECK_EQ(vio_drvdev_queue_max_size(vdev, 0), qmax);
		uint8_t buf[4096];
		memset(buf, 0, sizeof(buf));
		CHECK_EQ(vio_rng_read(vdev, buf, sizeof(buf)),
			 (ssize_t)sizeof(buf));
		unsigned nz = 0;
		for (size_t i = 0; i < sizeof(buf); i++)
			nz += buf[i] != 0;
		CHECK(nz > sizeof(buf) / 2);
		CHECK(vio_frontend_alive(c.f));
	} else {
		fprintf(stderr, "  connect: %s\n", err);
	}
	fprintf(stderr, "  backend max %u (%s), queue_size 0: %s\n", qmax,
		packed ? "packed" : "split", r == 0 ? "works" : err);
	client_close(&c);
	server_stop(&s);
	unlink(sock);
}

/* Without REPLY_ACK: a failure that names the queue size. */
static void test_no_ack(void)
{
	char sock[300], err[300] = "";
	snprintf(sock, sizeof(sock), "%s/rng-noack.sock", tmpdir);
	struct server s;
	server_start(&s, sock, 64, false);
	struct client c;
	int r = client_open(&c, sock, 1ull << VIO_VU_PF_REPLY_ACK, err,
			    sizeof(err));
	CHECK(r != 0);
	CHECK(strstr(err, "queue size 256") != NULL);
	CHECK(strstr(err, "set queue_size") != NULL);
	CHECK(strstr(err, "device of type") == NULL);
	fprintf(stderr, "  no REPLY_ACK, backend max 64: %s\n", err);
	client_close(&c);
	server_stop(&s);
	unlink(sock);
}

/* ---- a scripted backend: takes sizes up to max, refuses the others,
 * and with close_on_refuse ends the connection after the refusal ---- */

struct fake {
	int lfd;
	uint32_t max; /* 0: refuse every size */
	bool close_on_refuse;
	bool late; /* take every size until SET_FEATURES (the probe) */
	bool features_set;
	unsigned connections, refusals;
};

static void send_reply(int fd, uint32_t req, uint64_t v)
{
	struct vio_vu_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = VIO_VU_VERSION | VIO_VU_FLAG_REPLY;
	m.hdr.size = 8;
	m.p.u64 = v;
	(void)vio_vu_send(fd, &m);
}

static void *fake_backend(void *arg)
{
	struct fake *fk = arg;
	for (;;) {
		int c = accept4(fk->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return NULL; /* shut down: the test is over */
		fk->connections++;
		for (;;) {
			struct vio_vu_msg m;
			char why[160];
			if (vio_vu_recv(c, &m, why, sizeof(why)))
				break;
			vio_vu_close_fds(&m);
			uint32_t req = m.hdr.request;
			uint64_t v = 0;
			bool refuse = false;
			switch (req) {
			case VIO_VU_GET_FEATURES:
				v = 1ull << VIRTIO_F_VERSION_1 |
				    1ull << VIO_VU_F_PROTOCOL_FEATURES;
				break;
			case VIO_VU_GET_PROTOCOL_FEATURES:
				v = 1ull << VIO_VU_PF_MQ |
				    1ull << VIO_VU_PF_REPLY_ACK;
				break;
			case VIO_VU_GET_QUEUE_NUM:
				v = 1;
				break;
			case VIO_VU_GET_VRING_BASE:
				v = 0; /* queue 0, base 0 */
				break;
			case VIO_VU_SET_FEATURES:
				fk->features_set = true;
				if (!(m.hdr.flags & VIO_VU_FLAG_NEED_REPLY))
					continue;
				break;
			case VIO_VU_SET_VRING_NUM:
				refuse = m.p.state.num > fk->max &&
					 (!fk->late || fk->features_set);
				/* fallthrough */
			default:
				if (!(m.hdr.flags & VIO_VU_FLAG_NEED_REPLY))
					continue;
				v = refuse ? 1 : 0;
				break;
			}
			send_reply(c, req, v);
			if (refuse) {
				fk->refusals++;
				if (fk->close_on_refuse)
					break;
			}
		}
		close(c);
	}
}

static void test_fake(uint32_t max, bool close_on_refuse, uint32_t want)
{
	char sock[300], err[300] = "";
	snprintf(sock, sizeof(sock), "%s/fake.sock", tmpdir);
	unlink(sock);
	struct fake fk = {.max = max, .close_on_refuse = close_on_refuse};
	fk.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	REQUIRE(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	REQUIRE(fk.lfd >= 0 &&
		bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		listen(fk.lfd, 4) == 0);
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, fake_backend, &fk) == 0);
	struct vio_mem *mem = vio_mem_new();
	struct vio_frontend_opts fc = {
	    .mem = mem, .device_id = VIRTIO_ID_RNG, .reply_timeout_ms = 2000};
	struct vio_frontend *f =
	    vio_frontend_connect(sock, &fc, err, sizeof(err));
	if (want) {
		CHECK(f != NULL);
		if (f)
			CHECK_EQ(
			    vio_drvdev_queue_max_size(vio_frontend_vdev(f), 0),
			    want);
		else
			fprintf(stderr, "  connect: %s\n", err);
	} else {
		CHECK(f == NULL);
		CHECK(strstr(err, "refused every queue size") != NULL);
	}
	vio_frontend_free(f);
	vio_mem_free(mem);
	shutdown(fk.lfd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(fk.lfd);
	unlink(sock);
	fprintf(stderr,
		"  scripted backend, max %u, %s: %u connection(s), %u "
		"refusal(s): %s\n",
		max, close_on_refuse ? "closes on refusal" : "stays",
		fk.connections, fk.refusals, f ? "connected" : err);
	if (want && close_on_refuse)
		CHECK_EQ(fk.connections, fk.refusals + 1);
	if (want && !close_on_refuse)
		CHECK_EQ(fk.connections, 1);
}

/* The probe's size taken, the ring setup's refused (a backend that
 * changed its mind): the bus says so, and does not blame the type. */
static void test_refused_at_setup(void)
{
	char sock[300], err[300] = "";
	snprintf(sock, sizeof(sock), "%s/late.sock", tmpdir);
	unlink(sock);
	struct fake fk = {.max = 64, .late = true};
	fk.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	REQUIRE(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	REQUIRE(fk.lfd >= 0 &&
		bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		listen(fk.lfd, 4) == 0);
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, fake_backend, &fk) == 0);
	struct client c;
	int r = client_open(&c, sock, 0, err, sizeof(err));
	CHECK(r != 0);
	CHECK(strstr(err, "refused queue size 256 at SET_VRING_NUM") != NULL);
	CHECK(strstr(err, "set queue_size") != NULL);
	CHECK(strstr(err, "device of type") == NULL);
	fprintf(stderr, "  refused at ring setup: %s\n", err);
	client_close(&c);
	shutdown(fk.lfd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(fk.lfd);
	unlink(sock);
}

int main(void)
{
	signal(SIGALRM, watchdog);
	alarm(60);
	signal(SIGPIPE, SIG_IGN);
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-vuqs-XXXXXX",
		 base && *base ? base : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	unsigned fds = test_count_fds();

	fprintf(stderr, "queue sizes\n");
	test_learn(128, false);
	test_learn(64, false);
	test_learn(128, true);
	test_learn(256, false);
	test_no_ack();
	test_fake(32, true, 32);
	test_fake(16, false, 16);
	test_fake(0, false, 0);
	test_refused_at_setup();

	CHECK_EQ(test_count_fds(), fds);
	CHECK(rmdir(tmpdir) == 0);
	return test_result("vu_queue_size");
}
