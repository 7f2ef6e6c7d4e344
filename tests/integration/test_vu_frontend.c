/* SPDX-License-Identifier: MIT */
/*
 * vio's vhost-user frontend and blk driver against vio's own vhost-user
 * backend serving a vio_blk_device on a temporary image.
 *
 * - Split and packed rings, 1 and 2 queues, and with protocol features
 *   left out (CONFIGURE_MEM_SLOTS, STATUS, REPLY_ACK, MQ, RESET_DEVICE)
 *   to take the other paths: random data written through
 *   every queue (copying from malloc and zero-copy from a vio_mem region
 *   created after probe, which the frontend must share before the kick),
 *   flushed, disconnected; the image checked with pread; reconnected,
 *   everything read back and compared.
 * - Read-only export: -EROFS for writes, reads work.
 * - Not a blk device (an rng backend): the probe fails with a clear
 *   error and nothing stays on the bus; no driver for the device id.
 * - A hostile backend: replies for the wrong request, without the REPLY
 *   flag, too short or long, with fds, none at all (timeout), a closed
 *   socket, no VERSION_1, no queues, a failed ack: connect fails fast
 *   with a message that says which.
 * - Backend killed (SIGKILL, another process) with requests in flight:
 *   the frontend reports it dead, in-flight requests fail, nothing hangs.
 * - Teardown: every process started is killed by PID; every fd back;
 *   temp files removed;
 *   a watchdog (alarm) bounds the whole test.
 *
 * Seeded (VIO_TEST_SEED).
 */
#include <dirent.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "test.h"
#include "transport/vhost-user/msg.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/mem.h>
#include <vio/rng.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define DISK_SIZE (8u << 20)
#define SECTOR 512u

static char tmpdir[200];
static volatile pid_t child_pid = -1;

static void watchdog(int sig)
{
	(void)sig;
	if (child_pid > 0)
		kill(child_pid, SIGKILL);
	static const char msg[] = "test_vu_frontend: watchdog: timed out\n";
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

/* ---- a backend on a thread (or in a child process) ---- */

struct server {
	struct vio_blk_device *bd;
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

/* A blk (or, with rng, an rng) backend listening on sock. */
static int server_setup(struct server *s, const char *sock, const char *img,
			unsigned nq, bool packed, bool ro, bool rng)
{
	memset(s, 0, sizeof(*s));
	struct vio_device *dev;
	if (rng) {
		struct vio_rng_device_opts rc = {.queue_size = 256};
		s->rng = vio_rng_device_new(&rc, NULL, 0);
		if (!s->rng)
			return -1;
		dev = vio_rng_device_dev(s->rng);
	} else {
		struct vio_blk_device_opts c = {
		    .path = img,
		    .size = DISK_SIZE,
		    .num_queues = nq,
		    .readonly = ro,
		    .no_packed = !packed,
		};
		char err[256];
		s->bd = vio_blk_device_new(&c, err, sizeof(err));
		if (!s->bd) {
			fprintf(stderr, "blk device: %s\n", err);
			return -1;
		}
		dev = vio_blk_device_dev(s->bd);
	}
	struct vio_backend_opts bc = {0};
	vio_run_backend_hooks(&bc, false);
	s->be = vio_backend_new(dev, &bc);
	if (!s->be || vio_backend_listen(s->be, sock))
		return -1;
	return 0;
}

static void server_teardown(struct server *s)
{
	vio_backend_free(s->be);
	if (s->bd)
		vio_blk_device_free(s->bd);
	if (s->rng)
		vio_rng_device_free(s->rng);
}

static void server_start(struct server *s, const char *sock, const char *img,
			 unsigned nq, bool packed, bool ro, bool rng)
{
	REQUIRE(server_setup(s, sock, img, nq, packed, ro, rng) == 0);
	REQUIRE(pthread_create(&s->th, NULL, server_loop, s) == 0);
}

static void server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	pthread_join(s->th, NULL);
	server_teardown(s);
}

/* ---- the driver side ---- */

struct client {
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_frontend *f;
	struct vio_blk *b;
};

/* protocol features the next client_open leaves out */
static uint64_t proto_off;

static int client_open(struct client *c, const char *sock, bool packed,
		       uint32_t device_id, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	struct vio_blk_driver_opts dc = {.no_packed = !packed};
	c->drv = vio_blk_driver_new(&dc);
	REQUIRE(c->mem && c->bus && c->drv);
	REQUIRE(vio_bus_register(c->bus, c->drv) == 0);
	char uri[300];
	/* a plain path (test_qsd uses the "vhost-user:PATH" form) */
	snprintf(uri, sizeof(uri), "%s", sock);
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = device_id,
	    .connect_timeout_ms = 5000,
	    .reply_timeout_ms = 5000,
	    .protocol_features_off = proto_off,
	};
	c->f = vio_bus_connect(c->bus, uri, &fc, err, errlen);
	if (!c->f)
		return -errno;
	c->b = vio_blk_from_vdev(vio_frontend_vdev(c->f));
	return c->b ? 0 : -ENODEV;
}

static void client_close(struct client *c)
{
	if (c->f) {
		vio_bus_remove(c->bus, vio_frontend_vdev(c->f));
		vio_frontend_free(c->f);
	}
	vio_bus_unregister(c->bus, c->drv);
	vio_bus_free(c->bus);
	vio_blk_driver_free(c->drv);
	vio_mem_free(c->mem);
	memset(c, 0, sizeof(*c));
}

/* ---- data round trip ---- */

static void test_roundtrip(bool packed, unsigned nq, uint64_t *seed)
{
	char sock[300], img[300], err[256] = "";
	char name[64];
	snprintf(name, sizeof(name), "rt-%s-%u.sock", packed ? "p" : "s", nq);
	path_in(sock, sizeof(sock), name);
	snprintf(name, sizeof(name), "rt-%s-%u.img", packed ? "p" : "s", nq);
	path_in(img, sizeof(img), name);
	fprintf(stderr,
		"roundtrip: %s ring, %u queue(s), protocol features off "
		"0x%llx\n",
		packed ? "packed" : "split", nq, (unsigned long long)proto_off);

	struct server s;
	server_start(&s, sock, img, nq, packed, false, false);
	uint8_t *shadow = calloc(1, DISK_SIZE);
	REQUIRE(shadow);

	struct client c;
	int r =
	    client_open(&c, sock, packed, VIRTIO_ID_BLOCK, err, sizeof(err));
	if (r)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(r == 0);
	CHECK(vio_frontend_alive(c.f));
	struct vio_blk_info in;
	vio_blk_get_info(c.b, &in);
	CHECK_EQ(in.packed, packed);
	CHECK_EQ(vio_blk_num_queues(c.b), nq);
	CHECK_EQ(vio_blk_capacity_bytes(c.b), DISK_SIZE);
	CHECK(!vio_blk_readonly(c.b));

	/* copying path: malloc'd buffers, random offsets, every queue */
	uint8_t *buf = malloc(256 << 10);
	REQUIRE(buf);
	for (unsigned i = 0; i < 64; i++) {
		unsigned q = i % nq;
		size_t len = (1 + test_rand(seed) % 512) * SECTOR;
		uint64_t off =
		    test_rand(seed) % ((DISK_SIZE - len) / SECTOR + 1) * SECTOR;
		test_fill_random(buf, len, seed);
		r = vio_blk_write(c.b, q, off, buf, len);
		CHECK_EQ(r, 0);
		if (r == 0)
			memcpy(shadow + off, buf, len);
	}
	/* zero-copy path: a region made after the queues were set up,
	 * shared by the frontend when the driver kicks */
	unsigned regions = vio_mem_region_count(c.mem);
	uint8_t *zc = vio_mem_alloc(c.mem, 6u << 20, 4096, &(uint64_t){0});
	REQUIRE(zc);
	CHECK(vio_mem_region_count(c.mem) > regions);
	test_fill_random(zc, 6u << 20, seed);
	for (unsigned q = 0; q < nq; q++) {
		uint64_t off = (uint64_t)q * (1u << 20);
		r = vio_blk_write(c.b, q, off, zc + off, 1u << 20);
		CHECK_EQ(r, 0);
		if (r == 0)
			memcpy(shadow + off, zc + off, 1u << 20);
	}
	for (unsigned q = 0; q < nq; q++)
		CHECK_EQ(vio_blk_flush(c.b, q), 0);
	CHECK(vio_frontend_alive(c.f));
	vio_mem_release(c.mem, zc);
	client_close(&c);

	/* what the backend wrote reached the file */
	CHECK(test_file_matches(img, shadow, DISK_SIZE));

	/* reconnect (a new frontend, new memory) and read everything back */
	r = client_open(&c, sock, packed, VIRTIO_ID_BLOCK, err, sizeof(err));
	if (r)
		fprintf(stderr, "reconnect: %s\n", err);
	REQUIRE(r == 0);
	uint8_t *back = malloc(DISK_SIZE);
	REQUIRE(back);
	memset(back, 0xa5, DISK_SIZE);
	size_t chunk = DISK_SIZE / 8;
	for (unsigned k = 0; k < 8; k++)
		CHECK_EQ(vio_blk_read(c.b, k % nq, k * chunk, back + k * chunk,
				      chunk),
			 0);
	CHECK(memcmp(back, shadow, DISK_SIZE) == 0);
	/* zero-copy reads too */
	zc = vio_mem_alloc(c.mem, 1u << 20, 4096, &(uint64_t){0});
	REQUIRE(zc);
	CHECK_EQ(vio_blk_read(c.b, nq - 1, 3u << 20, zc, 1u << 20), 0);
	CHECK(memcmp(zc, shadow + (3u << 20), 1u << 20) == 0);
	vio_mem_release(c.mem, zc);
	client_close(&c);

	server_stop(&s);
	unlink(img);
	free(back);
	free(buf);
	free(shadow);
}

/* ---- read-only export ---- */

static void test_readonly(void)
{
	char sock[300], img[300], err[256] = "";
	path_in(sock, sizeof(sock), "ro.sock");
	path_in(img, sizeof(img), "ro.img");
	fprintf(stderr, "read-only export\n");
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, DISK_SIZE) == 0);
	close(fd);
	struct server s;
	server_start(&s, sock, img, 1, false, true, false);
	struct client c;
	int r = client_open(&c, sock, true, VIRTIO_ID_BLOCK, err, sizeof(err));
	REQUIRE(r == 0);
	CHECK(vio_blk_readonly(c.b));
	uint8_t buf[4096];
	memset(buf, 1, sizeof(buf));
	CHECK_EQ(vio_blk_write(c.b, 0, 0, buf, sizeof(buf)), -EROFS);
	CHECK_EQ(vio_blk_read(c.b, 0, 0, buf, sizeof(buf)), 0);
	CHECK(buf[0] == 0 && buf[4095] == 0);
	client_close(&c);
	server_stop(&s);
	unlink(img);
}

/* ---- the peer is not what the caller says ---- */

static void test_not_blk(void)
{
	char sock[300], err[256] = "";
	path_in(sock, sizeof(sock), "rng.sock");
	fprintf(stderr, "not a blk device\n");
	struct server s;
	server_start(&s, sock, NULL, 1, false, false, true);
	struct client c;
	int r = client_open(&c, sock, true, VIRTIO_ID_BLOCK, err, sizeof(err));
	CHECK(r != 0);
	CHECK(c.f == NULL);
	CHECK(err[0] != '\0');
	fprintf(stderr, "  (expected) %s\n", err);
	CHECK_EQ(vio_bus_count(c.bus), 0);
	client_close(&c);

	/* a device id no registered driver takes */
	err[0] = '\0';
	r = client_open(&c, sock, true, VIRTIO_ID_NET, err, sizeof(err));
	CHECK(r != 0);
	CHECK(strstr(err, "no driver") != NULL);
	fprintf(stderr, "  (expected) %s\n", err);
	client_close(&c);

	/* nothing listening */
	char none[300];
	path_in(none, sizeof(none), "nobody.sock");
	struct vio_mem *m = vio_mem_new();
	struct vio_frontend_opts fc = {.mem = m, .device_id = VIRTIO_ID_BLOCK};
	err[0] = '\0';
	struct vio_frontend *f =
	    vio_frontend_connect(none, &fc, err, sizeof(err));
	CHECK(f == NULL);
	CHECK(strstr(err, "nothing listens") != NULL);
	vio_mem_free(m);
	server_stop(&s);
}

/* ---- the backend dies ---- */

struct done_count {
	unsigned ok, failed;
};

static void req_done(struct vio_blk_req *req, int result)
{
	struct done_count *d = req->user;
	if (result)
		d->failed++;
	else
		d->ok++;
}

static void test_backend_killed(uint64_t *seed)
{
	char sock[300], img[300], err[256] = "";
	path_in(sock, sizeof(sock), "kill.sock");
	path_in(img, sizeof(img), "kill.img");
	fprintf(stderr, "backend killed mid-way\n");

	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct server s;
		if (server_setup(&s, sock, img, 1, false, false, false))
			_exit(2);
		for (;;) {
			struct pollfd p = {.fd = vio_backend_fd(s.be),
					   .events = POLLIN};
			if (poll(&p, 1, 1000) > 0)
				(void)vio_backend_dispatch(s.be);
			if (getppid() == 1)
				_exit(0); /* orphaned: the test died */
		}
	}
	child_pid = pid;

	struct client c;
	int r = client_open(&c, sock, true, VIRTIO_ID_BLOCK, err, sizeof(err));
	if (r)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(r == 0);
	uint8_t buf[4096];
	test_fill_random(buf, sizeof(buf), seed);
	CHECK_EQ(vio_blk_write(c.b, 0, 0, buf, sizeof(buf)), 0);

	/* requests in flight, then the backend dies */
	enum { N = 64 };
	static struct vio_blk_req reqs[N];
	static uint8_t data[N][64 << 10];
	struct done_count d = {0, 0};
	for (unsigned i = 0; i < N; i++) {
		reqs[i] = (struct vio_blk_req){
		    .op = VIO_BLK_OP_WRITE,
		    .offset = (uint64_t)i * sizeof(data[0]),
		    .buf = data[i],
		    .len = sizeof(data[0]),
		    .done = req_done,
		    .user = &d,
		};
		CHECK_EQ(vio_blk_submit(c.b, 0, &reqs[i]), 0);
	}
	kill(pid, SIGKILL);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	child_pid = -1;

	uint64_t t0 = now_ms();
	while (vio_blk_pending(c.b, 0) && now_ms() - t0 < 10000)
		(void)vio_blk_poll(c.b, 0, NULL, 0, 1000);
	CHECK_EQ(vio_blk_pending(c.b, 0), 0);
	CHECK_EQ(d.ok + d.failed, N);
	fprintf(stderr, "  in flight at the kill: %u completed, %u failed\n",
		d.ok, d.failed);
	CHECK(!vio_frontend_alive(c.f));
	struct pollfd p = {.fd = vio_frontend_fd(c.f), .events = POLLRDHUP};
	CHECK(poll(&p, 1, 0) == 1);
	/* later calls fail at once, no hang */
	t0 = now_ms();
	r = vio_blk_read(c.b, 0, 0, buf, sizeof(buf));
	CHECK(r < 0);
	CHECK(now_ms() - t0 < 5000);
	fprintf(stderr, "  read after the kill: %s; frontend: %s\n",
		strerror(-r), vio_frontend_error(c.f));
	CHECK(vio_frontend_error(c.f)[0] != '\0');
	client_close(&c); /* remove + free on a dead connection */
	unlink(sock);
	unlink(img);
}

/* ---- a hostile backend: every reply is checked ---- */

enum fake_mode {
	FAKE_WRONG_REQUEST,
	FAKE_NO_REPLY_FLAG,
	FAKE_SHORT,
	FAKE_LONG,
	FAKE_WITH_FD,
	FAKE_SILENT,
	FAKE_CLOSE,
	FAKE_LEGACY,
	FAKE_NO_QUEUES,
	FAKE_ACK_FAIL,
};

struct fake {
	int lfd;
	enum fake_mode mode;
};

static void send_raw(int fd, uint32_t req, uint32_t flags, const void *p,
		     uint32_t size, int pass_fd)
{
	struct vio_vu_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = flags;
	m.hdr.size = size;
	if (size)
		memcpy(&m.p, p, size);
	if (pass_fd >= 0) {
		m.fds[0] = pass_fd;
		m.nfds = 1;
	}
	(void)vio_vu_send(fd, &m);
}

/* Answer like a blk backend (MQ, REPLY_ACK), except where mode says. */
static void *fake_backend(void *arg)
{
	struct fake *fk = arg;
	int c = accept4(fk->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return NULL;
	const uint32_t R = VIO_VU_VERSION | VIO_VU_FLAG_REPLY;
	for (;;) {
		struct vio_vu_msg m;
		char why[160];
		if (vio_vu_recv(c, &m, why, sizeof(why)))
			break;
		vio_vu_close_fds(&m);
		uint64_t v = 0;
		uint32_t req = m.hdr.request;
		if (fk->mode == FAKE_CLOSE)
			break;
		if (fk->mode == FAKE_SILENT)
			continue;
		switch (req) {
		case VIO_VU_GET_FEATURES:
			v = 1ull << VIRTIO_F_VERSION_1 |
			    1ull << VIO_VU_F_PROTOCOL_FEATURES;
			if (fk->mode == FAKE_LEGACY)
				v = 1ull << VIO_VU_F_PROTOCOL_FEATURES;
			if (fk->mode == FAKE_WRONG_REQUEST)
				req = VIO_VU_GET_PROTOCOL_FEATURES;
			if (fk->mode == FAKE_SHORT) {
				send_raw(c, req, R, &v, 4, -1);
				continue;
			}
			if (fk->mode == FAKE_LONG) {
				uint64_t two[2] = {v, v};
				send_raw(c, req, R, two, 16, -1);
				continue;
			}
			/* the fd passed: one this thread owns (fd 0 need
			 * not be open under a test runner) */
			send_raw(c, req,
				 fk->mode == FAKE_NO_REPLY_FLAG ? VIO_VU_VERSION
								: R,
				 &v, 8, fk->mode == FAKE_WITH_FD ? c : -1);
			continue;
		case VIO_VU_GET_PROTOCOL_FEATURES:
			v = 1ull << VIO_VU_PF_MQ | 1ull << VIO_VU_PF_REPLY_ACK |
			    1ull << VIO_VU_PF_CONFIG;
			break;
		case VIO_VU_GET_QUEUE_NUM:
			v = fk->mode == FAKE_NO_QUEUES ? 0 : 1;
			break;
		default:
			if (!(m.hdr.flags & VIO_VU_FLAG_NEED_REPLY))
				continue;
			/* an ack: refuse SET_OWNER in that mode */
			v = fk->mode == FAKE_ACK_FAIL && req == VIO_VU_SET_OWNER
				? 1
				: 0;
			break;
		}
		send_raw(c, req, R, &v, 8, -1);
	}
	close(c);
	return NULL;
}

/* the reply timeouts of the hostile cases (see below) */
#define SILENT_TIMEOUT_MS 300
#define REPLY_TIMEOUT_MS 5000

static void test_hostile_replies(void)
{
	static const struct {
		enum fake_mode mode;
		const char *what;
		const char *expect; /* in the error message */
	} cases[] = {
	    {FAKE_WRONG_REQUEST, "reply for another request", "request"},
	    {FAKE_NO_REPLY_FLAG, "no REPLY flag", "REPLY flag"},
	    {FAKE_SHORT, "4-byte payload", "expected 8"},
	    {FAKE_LONG, "16-byte payload", "expected 8"},
	    {FAKE_WITH_FD, "an fd in a reply", "fds"},
	    {FAKE_SILENT, "no reply at all", "no reply"},
	    {FAKE_CLOSE, "closes at once", "closed"},
	    {FAKE_LEGACY, "no VERSION_1", "VERSION_1"},
	    {FAKE_NO_QUEUES, "GET_QUEUE_NUM 0", "no queue"},
	    {FAKE_ACK_FAIL, "SET_OWNER acked with an error",
	     "refused SET_OWNER"},
	};
	char sock[300];
	path_in(sock, sizeof(sock), "fake.sock");
	fprintf(stderr, "hostile replies\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unlink(sock);
		struct fake fk = {.mode = cases[i].mode};
		fk.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		REQUIRE(strlen(sock) < sizeof(sa.sun_path));
		memcpy(sa.sun_path, sock, strlen(sock) + 1);
		REQUIRE(fk.lfd >= 0 &&
			bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
			listen(fk.lfd, 1) == 0);
		pthread_t th;
		REQUIRE(pthread_create(&th, NULL, fake_backend, &fk) == 0);
		/* Only the silent backend is about the reply timeout: it
		 * gets a short one.  Every other fake does answer, and the
		 * answer (on another thread) must never lose a race with the
		 * timeout: a loaded machine can stall a thread for more than
		 * 300 ms, which turned "bad reply" into "no reply".  Those
		 * get a timeout far above any stall, and must fail on the
		 * reply, well before it. */
		bool silent = cases[i].mode == FAKE_SILENT;
		int tmo = silent ? SILENT_TIMEOUT_MS : REPLY_TIMEOUT_MS;
		struct vio_mem *m = vio_mem_new();
		struct vio_frontend_opts fc = {.mem = m,
					       .device_id = VIRTIO_ID_BLOCK,
					       .reply_timeout_ms = tmo};
		char err[256] = "";
		uint64_t t0 = now_ms();
		struct vio_frontend *f =
		    vio_frontend_connect(sock, &fc, err, sizeof(err));
		uint64_t took = now_ms() - t0;
		CHECK(f == NULL);
		/* silent: ended by the short timeout (the library's default
		 * is 10 s); the others: by the reply, not a timeout */
		CHECK(took < (silent ? 10000u : (unsigned)tmo));
		bool ok = strstr(err, cases[i].expect) != NULL;
		CHECK(ok);
		fprintf(stderr, "  %s: %s%s\n", cases[i].what, err,
			ok ? "" : "  <-- unexpected message");
		vio_frontend_free(f);
		vio_mem_free(m);
		shutdown(fk.lfd, SHUT_RDWR);
		pthread_join(th, NULL);
		close(fk.lfd);
	}
	unlink(sock);
}

int main(void)
{
	uint64_t seed = test_seed();
	signal(SIGALRM, watchdog);
	alarm(100);
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-vufe-XXXXXX",
		 base && *base ? base : "/tmp");
	REQUIRE(mkdtemp(tmpdir));

	unsigned fds = test_count_fds();
	/* first, while this process has no thread: it forks */
	test_backend_killed(&seed);
	for (int packed = 0; packed <= 1; packed++)
		for (unsigned nq = 1; nq <= 2; nq++)
			test_roundtrip(packed, nq, &seed);
	/* the other code paths: SET_MEM_TABLE (re-sent when memory grows)
	 * instead of ADD_MEM_REG, the status byte kept by the frontend, no
	 * acks, RESET_DEVICE instead of SET_STATUS 0 */
	proto_off = 1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS |
		    1ull << VIO_VU_PF_STATUS | 1ull << VIO_VU_PF_REPLY_ACK;
	test_roundtrip(false, 2, &seed);
	proto_off = 1ull << VIO_VU_PF_STATUS;
	test_roundtrip(true, 1, &seed);
	/* no MQ: the caller's queue count (1) */
	proto_off = 1ull << VIO_VU_PF_MQ | 1ull << VIO_VU_PF_RESET_DEVICE;
	test_roundtrip(false, 1, &seed);
	proto_off = 0;
	test_readonly();
	test_not_blk();
	test_hostile_replies();

	CHECK_EQ(test_count_fds(), fds); /* every fd back */
	/* every file was removed (the backends remove their sockets) */
	CHECK(rmdir(tmpdir) == 0);
	return test_result("vu_frontend");
}
