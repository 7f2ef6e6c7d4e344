/* SPDX-License-Identifier: MIT */
/*
 * Interop: vio's vhost-user frontend and blk driver against a real
 * backend, qemu-storage-daemon's vhost-user-blk export (QEMU's
 * libvhost-user), serving a temporary image file.
 *
 * - 2 queues offered: the driver uses both, then only 1 (num_queues),
 *   then both without CONFIGURE_MEM_SLOTS and REPLY_ACK;
 *   random data written (copying from malloc and zero-copy from a
 *   vio_mem region created after probe: ADD_MEM_REG or a new
 *   SET_MEM_TABLE before the kick), flushed, disconnected; the image
 *   file compared with pread; reconnected, everything read back.
 * - qemu-storage-daemon killed (SIGKILL) with requests in flight: the
 *   frontend reports it dead, the requests fail, nothing hangs; a new
 *   daemon on the same socket and a new connection bring the disk back.
 * - A read-only export (writable=off): VIRTIO_BLK_F_RO, writes refused
 *   with -EROFS, reads work.
 *
 * Every daemon started is killed by PID (an alarm watchdog too); temp
 * files removed.  Exit 77 (SKIP) only when qemu-storage-daemon is not
 * installed.  Seeded (VIO_TEST_SEED).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "test.h"
#include "transport/vhost-user/msg.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

#define DISK_SIZE (16u << 20)
#define SECTOR 512u

static char tmpdir[200];
static char qsd_bin[512];
static volatile pid_t qsd_pid = -1;

static void watchdog(int sig)
{
	(void)sig;
	if (qsd_pid > 0)
		kill(qsd_pid, SIGKILL);
	static const char msg[] = "test_qsd: watchdog: timed out\n";
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

static bool find_qsd(void)
{
	const char *env = getenv("VIO_QSD");
	if (env && *env) {
		snprintf(qsd_bin, sizeof(qsd_bin), "%s", env);
		return access(qsd_bin, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/local/bin",
		 path ? path : "");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(qsd_bin, sizeof(qsd_bin), "%s/qemu-storage-daemon", d);
		if (access(qsd_bin, X_OK) == 0)
			return true;
	}
	return false;
}

/* Start qemu-storage-daemon exporting img at sock; its output goes to
 * tmpdir/qsd.log. */
static pid_t qsd_start(const char *img, const char *sock, bool writable,
		       unsigned nq)
{
	char blockdev[400], export[500], logp[300];
	snprintf(blockdev, sizeof(blockdev),
		 "driver=file,node-name=f,filename=%s", img);
	snprintf(export, sizeof(export),
		 "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,"
		 "addr.path=%s,writable=%s,num-queues=%u",
		 sock, writable ? "on" : "off", nq);
	snprintf(logp, sizeof(logp), "%s/qsd.log", tmpdir);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execl(qsd_bin, qsd_bin, "--blockdev", blockdev, "--export", export,
	      (char *)NULL);
	_exit(127);
}

static void qsd_stop(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	kill(pid, sig);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	qsd_pid = -1;
}

/* REQUIRE exits: no daemon outlives the test */
static void kill_qsd_at_exit(void)
{
	if (qsd_pid > 0)
		qsd_stop(qsd_pid, SIGKILL);
}

static void dump_log(void)
{
	char logp[300];
	snprintf(logp, sizeof(logp), "%s/qsd.log", tmpdir);
	FILE *f = fopen(logp, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "  qsd: %s", line);
	fclose(f);
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

static int client_open(struct client *c, const char *sock, unsigned nq,
		       char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	c->drv = vio_blk_driver_new(NULL);
	REQUIRE(c->mem && c->bus && c->drv);
	REQUIRE(vio_bus_register(c->bus, c->drv) == 0);
	char uri[300];
	snprintf(uri, sizeof(uri), "vhost-user:%s", sock);
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = VIRTIO_ID_BLOCK,
	    .num_queues = nq,
	    .connect_timeout_ms = 10000, /* the daemon is starting */
	    .reply_timeout_ms = 10000,
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

static void make_image(const char *img)
{
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, DISK_SIZE) == 0);
	close(fd);
}

/* Write through nq queues, flush, disconnect, check the file, reconnect,
 * read back.  shadow holds the disk's expected content. */
static void roundtrip(const char *sock, const char *img, unsigned nq,
		      uint8_t *shadow, uint64_t *seed)
{
	char err[256] = "";
	fprintf(stderr,
		"roundtrip over %u queue(s), protocol features off 0x%llx\n",
		nq, (unsigned long long)proto_off);
	struct client c;
	int r = client_open(&c, sock, nq, err, sizeof(err));
	if (r)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(r == 0);
	CHECK(vio_frontend_alive(c.f));
	struct vio_blk_info in;
	vio_blk_get_info(c.b, &in);
	CHECK_EQ(vio_blk_num_queues(c.b), nq);
	CHECK_EQ(in.device_queues, 2);
	CHECK_EQ(vio_blk_capacity_bytes(c.b), DISK_SIZE);
	CHECK(!vio_blk_readonly(c.b));
	CHECK(!in.packed); /* libvhost-user has split rings only */

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
	unsigned regions = vio_mem_region_count(c.mem);
	uint8_t *zc = vio_mem_alloc(c.mem, 6u << 20, 4096, &(uint64_t){0});
	REQUIRE(zc);
	CHECK(vio_mem_region_count(c.mem) > regions);
	test_fill_random(zc, 6u << 20, seed);
	for (unsigned q = 0; q < nq; q++) {
		uint64_t off = (uint64_t)(q + 1) * (2u << 20);
		r = vio_blk_write(c.b, q, off, zc + q * (2u << 20), 2u << 20);
		CHECK_EQ(r, 0);
		if (r == 0)
			memcpy(shadow + off, zc + q * (2u << 20), 2u << 20);
	}
	for (unsigned q = 0; q < nq; q++)
		CHECK_EQ(vio_blk_flush(c.b, q), 0);
	char id[21] = "";
	CHECK_EQ(vio_blk_get_id(c.b, 0, id), 0);
	CHECK(id[0] != '\0');
	CHECK(vio_frontend_alive(c.f));
	vio_mem_release(c.mem, zc);
	client_close(&c);

	/* flushed: in the image file */
	CHECK(test_file_matches(img, shadow, DISK_SIZE));

	r = client_open(&c, sock, nq, err, sizeof(err));
	if (r)
		fprintf(stderr, "reconnect: %s\n", err);
	REQUIRE(r == 0);
	uint8_t *back = malloc(DISK_SIZE);
	REQUIRE(back);
	memset(back, 0xa5, DISK_SIZE);
	size_t chunk = DISK_SIZE / 16;
	for (unsigned k = 0; k < 16; k++)
		CHECK_EQ(vio_blk_read(c.b, k % nq, k * chunk, back + k * chunk,
				      chunk),
			 0);
	CHECK(memcmp(back, shadow, DISK_SIZE) == 0);
	zc = vio_mem_alloc(c.mem, 1u << 20, 4096, &(uint64_t){0});
	REQUIRE(zc);
	CHECK_EQ(vio_blk_read(c.b, nq - 1, 5u << 20, zc, 1u << 20), 0);
	CHECK(memcmp(zc, shadow + (5u << 20), 1u << 20) == 0);
	vio_mem_release(c.mem, zc);
	client_close(&c);
	free(back);
	free(buf);
}

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

/* The daemon dies under load; a new one brings the disk back. */
static void killed(const char *sock, const char *img, uint64_t *seed)
{
	char err[256] = "";
	fprintf(stderr, "qemu-storage-daemon killed with requests in flight\n");
	struct client c;
	int r = client_open(&c, sock, 0, err, sizeof(err));
	if (r)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(r == 0);
	enum { N = 64 };
	static struct vio_blk_req reqs[N];
	static uint8_t data[N][64 << 10];
	test_fill_random(&data[0][0], sizeof(data), seed);
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
		CHECK_EQ(vio_blk_submit(c.b, i % 2, &reqs[i]), 0);
	}
	qsd_stop(qsd_pid, SIGKILL);

	uint64_t t0 = now_ms();
	for (unsigned q = 0; q < 2; q++)
		while (vio_blk_pending(c.b, q) && now_ms() - t0 < 15000)
			(void)vio_blk_poll(c.b, q, NULL, 0, 1000);
	CHECK_EQ(vio_blk_pending(c.b, 0) + vio_blk_pending(c.b, 1), 0);
	CHECK_EQ(d.ok + d.failed, N);
	fprintf(stderr, "  in flight at the kill: %u completed, %u failed\n",
		d.ok, d.failed);
	CHECK(!vio_frontend_alive(c.f));
	struct pollfd p = {.fd = vio_frontend_fd(c.f), .events = POLLRDHUP};
	CHECK(poll(&p, 1, 0) == 1);
	uint8_t buf[4096];
	t0 = now_ms();
	r = vio_blk_read(c.b, 0, 0, buf, sizeof(buf));
	CHECK(r < 0);
	CHECK(now_ms() - t0 < 5000);
	fprintf(stderr, "  read after the kill: %s; frontend: %s\n",
		strerror(-r), vio_frontend_error(c.f));
	client_close(&c); /* the program's reaction: remove, free */

	/* a new daemon, a new connection: the disk is back */
	qsd_pid = qsd_start(img, sock, true, 2);
	REQUIRE(qsd_pid > 0);
	r = client_open(&c, sock, 0, err, sizeof(err));
	if (r)
		fprintf(stderr, "reconnect: %s\n", err);
	REQUIRE(r == 0);
	test_fill_random(buf, sizeof(buf), seed);
	CHECK_EQ(vio_blk_write(c.b, 1, 12u << 20, buf, sizeof(buf)), 0);
	CHECK_EQ(vio_blk_flush(c.b, 1), 0);
	uint8_t back[4096];
	CHECK_EQ(vio_blk_read(c.b, 0, 12u << 20, back, sizeof(back)), 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	client_close(&c);
	qsd_stop(qsd_pid, SIGTERM);
}

static void readonly(const char *sock, const char *img)
{
	char err[256] = "";
	fprintf(stderr, "read-only export (writable=off)\n");
	qsd_pid = qsd_start(img, sock, false, 1);
	REQUIRE(qsd_pid > 0);
	struct client c;
	int r = client_open(&c, sock, 0, err, sizeof(err));
	if (r)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(r == 0);
	CHECK(vio_blk_readonly(c.b));
	CHECK(vio_blk_has_feature(c.b, VIRTIO_BLK_F_RO));
	uint8_t buf[4096];
	memset(buf, 7, sizeof(buf));
	r = vio_blk_write(c.b, 0, 0, buf, sizeof(buf));
	CHECK_EQ(r, -EROFS);
	fprintf(stderr, "  write: %s (expected)\n", strerror(-r));
	CHECK_EQ(vio_blk_read(c.b, 0, 0, buf, sizeof(buf)), 0);
	client_close(&c);
	qsd_stop(qsd_pid, SIGTERM);
}

int main(void)
{
	if (!find_qsd()) {
		fprintf(stderr,
			"SKIP: qemu-storage-daemon is not installed: the "
			"interop test against a real vhost-user-blk backend "
			"did NOT run (Debian: apt-get install "
			"qemu-system-common; scripts/deps.sh check installs "
			"it)\n");
		return 77;
	}
	uint64_t seed = test_seed();
	signal(SIGALRM, watchdog);
	alarm(150);
	atexit(kill_qsd_at_exit);
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-qsd-XXXXXX",
		 base && *base ? base : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	char sock[300], img[300], logp[300];
	snprintf(sock, sizeof(sock), "%s/qsd.sock", tmpdir);
	snprintf(img, sizeof(img), "%s/disk.img", tmpdir);
	snprintf(logp, sizeof(logp), "%s/qsd.log", tmpdir);
	make_image(img);
	uint8_t *shadow = calloc(1, DISK_SIZE);
	REQUIRE(shadow);

	fprintf(stderr, "using %s\n", qsd_bin);
	qsd_pid = qsd_start(img, sock, true, 2);
	REQUIRE(qsd_pid > 0);
	roundtrip(sock, img, 2, shadow, &seed);
	roundtrip(sock, img, 1, shadow, &seed);
	/* SET_MEM_TABLE (the whole table again when memory grows, rings
	 * running) instead of ADD_MEM_REG; no acks */
	proto_off =
	    1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS | 1ull << VIO_VU_PF_REPLY_ACK;
	roundtrip(sock, img, 2, shadow, &seed);
	proto_off = 0;
	killed(sock, img, &seed);
	readonly(sock, img);

	if (test_failures)
		dump_log();
	free(shadow);
	unlink(sock);
	unlink(img);
	unlink(logp);
	CHECK(rmdir(tmpdir) == 0);
	return test_result("qsd");
}
