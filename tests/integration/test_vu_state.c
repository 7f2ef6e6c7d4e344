/* SPDX-License-Identifier: MIT */
/*
 * Device state transfer (vhost-user DEVICE_STATE, docs/device-state.md):
 * vio's frontend moves a running blk device between two of vio's
 * backends (two blk devices on one image, each with its own engine and
 * control thread, in this process).
 *
 * - move_under_load: two I/O threads keep 16 requests each in flight
 *   (writes and verified reads, each slot on blocks of its own) while
 *   the device moves A -> B -> A -> B.  Every request completes exactly
 *   once with success, every read matches, and the whole disk is
 *   verified at the end, through the driver and in the image file.  The
 *   cache mode the driver chose (writeback 0 on A) is on B after the
 *   move.
 * - hostile: the blob, mangled on its way (truncated, oversized, wrong
 *   magic, format version, device type, section version, capacity,
 *   trailing bytes), is refused by the destination: the move fails with
 *   -EIO, the destination's log says why, the device goes on with the
 *   source (I/O still completes, verified).
 * - nowhere: a move to a socket nobody listens at fails at once and
 *   stops nothing.
 *
 * Both split and packed rings.  An alarm bounds the whole test.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "integration/vu_serve.h"
#include "test.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/log.h>
#include <vio/mem.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define BLK 4096u
#define NBLK 256u /* 1 MiB */
#define DISK (BLK * NBLK)
#define NTHR 2u
#define DEPTH 16u

static char tmpdir[200], img[300], sock_a[300], sock_b[300];

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_vu_state: watchdog: timed out\n";
	ssize_t r = syscall(SYS_write, 2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* ---- a backend: blk device, engine, control thread ---- */

struct server {
	const char *sock;
	struct vio_blk_device *bd;
	struct vio_run *run;
	struct vio_backend *b;
	pthread_t th;
	int stop;
	struct vu_ctl ctl;
};

static void server_start(struct server *s, const char *sock, bool packed)
{
	memset(s, 0, sizeof(*s));
	s->sock = sock;
	char err[200];
	struct vio_blk_device_opts o = {
	    .path = img, .num_queues = NTHR, .no_packed = !packed};
	s->bd = vio_blk_device_new(&o, err, sizeof(err));
	if (!s->bd)
		fprintf(stderr, "blk device: %s\n", err);
	REQUIRE(s->bd);
	struct vio_run_opts ro = {.threads = 1};
	s->run = vio_run_new(&ro, err, sizeof(err));
	REQUIRE(s->run);
	struct vio_backend_opts c = {0};
	vio_run_hooks(s->run, &c);
	s->b = vio_backend_new(vio_blk_device_dev(s->bd), &c);
	REQUIRE(s->b);
	REQUIRE(vio_backend_listen(s->b, sock) == 0);
	s->stop = eventfd(0, EFD_CLOEXEC);
	REQUIRE(s->stop >= 0);
	s->ctl = (struct vu_ctl){.b = s->b, .stop = s->stop};
	REQUIRE(pthread_create(&s->th, NULL, vu_ctl_main, &s->ctl) == 0);
}

static void server_stop(struct server *s)
{
	uint64_t one = 1;
	REQUIRE(write(s->stop, &one, sizeof(one)) == sizeof(one));
	pthread_join(s->th, NULL);
	vio_backend_free(s->b);
	vio_run_free(s->run);
	vio_blk_device_free(s->bd);
	close(s->stop);
}

/* ---- the load ---- */

/* block b's content after its seq-th write */
static void pattern(uint8_t *p, uint64_t b, uint64_t seq)
{
	uint64_t s = (b + 1) * 0x9E3779B97F4A7C15ull ^ (seq + 7);
	for (unsigned i = 0; i < BLK; i += 8)
		memcpy(p + i, &(uint64_t){test_rand(&s)}, 8);
	memcpy(p, &b, 8);
	memcpy(p + 8, &seq, 8);
}

static uint64_t shadow[NBLK]; /* each block's last completed write */

struct slot {
	struct vio_blk_req r;
	uint8_t *buf;
	unsigned t, k;
	uint64_t blk, seq, rng;
	bool write;
	int outstanding;
};

struct iothr {
	struct vio_blk *b;
	unsigned q;
	pthread_t th;
	struct slot s[DEPTH];
	uint64_t submitted, completed, failed, twice, bad_data;
};

static struct iothr io[NTHR];
static int io_stop;	       /* __atomic */
static uint64_t io_done_total; /* __atomic */

static void slot_submit(struct iothr *t, struct slot *s);

static void slot_done(struct vio_blk_req *r, int result)
{
	struct slot *s = r->user;
	struct iothr *t = &io[s->t];
	if (s->outstanding != 1) {
		t->twice++;
		return;
	}
	s->outstanding = 0;
	t->completed++;
	__atomic_add_fetch(&io_done_total, 1, __ATOMIC_RELAXED);
	if (result) {
		if (t->failed++ < 3)
			fprintf(stderr, "request failed: %s\n",
				strerror(-result));
	} else if (s->write) {
		shadow[s->blk] = s->seq;
	} else {
		uint8_t want[BLK];
		pattern(want, s->blk, shadow[s->blk]);
		if (memcmp(want, s->buf, BLK) && t->bad_data++ < 3)
			fprintf(stderr, "block %" PRIu64 ": wrong data\n",
				s->blk);
	}
	if (!__atomic_load_n(&io_stop, __ATOMIC_ACQUIRE))
		slot_submit(t, s);
}

/* The next request of slot s: its own blocks only (no two requests in
 * flight touch one block). */
static void slot_submit(struct iothr *t, struct slot *s)
{
	unsigned owner = s->t * DEPTH + s->k, stride = NTHR * DEPTH;
	s->blk = owner + stride * (test_rand(&s->rng) % (NBLK / stride));
	s->write = test_rand(&s->rng) & 1;
	s->r = (struct vio_blk_req){
	    .op = s->write ? VIO_BLK_OP_WRITE : VIO_BLK_OP_READ,
	    .offset = s->blk * BLK,
	    .buf = s->buf,
	    .len = BLK,
	    .done = slot_done,
	    .user = s,
	};
	if (s->write) {
		s->seq = shadow[s->blk] + 1;
		pattern(s->buf, s->blk, s->seq);
	}
	s->outstanding++;
	t->submitted++;
	int r = vio_blk_submit(t->b, t->q, &s->r);
	if (r) {
		s->outstanding--;
		t->failed++;
		fprintf(stderr, "submit: %s\n", strerror(-r));
	}
}

static void *io_main(void *arg)
{
	struct iothr *t = arg;
	for (unsigned k = 0; k < DEPTH; k++)
		slot_submit(t, &t->s[k]);
	while (!__atomic_load_n(&io_stop, __ATOMIC_ACQUIRE) ||
	       vio_blk_pending(t->b, t->q)) {
		int r = vio_blk_poll(t->b, t->q, NULL, 0, 200);
		if (r < 0) {
			fprintf(stderr, "poll: %s\n", strerror(-r));
			t->failed++;
			break;
		}
	}
	return NULL;
}

static void io_start(struct vio_blk *b, struct vio_mem *mem)
{
	__atomic_store_n(&io_stop, 0, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < NTHR; i++) {
		struct iothr *t = &io[i];
		memset(t, 0, sizeof(*t));
		t->b = b;
		t->q = i;
		for (unsigned k = 0; k < DEPTH; k++) {
			t->s[k].t = i;
			t->s[k].k = k;
			t->s[k].rng = test_seed() + i * 100 + k;
			t->s[k].buf = vio_mem_alloc(mem, BLK, BLK, NULL);
			REQUIRE(t->s[k].buf);
		}
		REQUIRE(pthread_create(&t->th, NULL, io_main, t) == 0);
	}
}

/* Wait until n more requests completed (bounded). */
static bool io_progress(uint64_t n)
{
	uint64_t want = __atomic_load_n(&io_done_total, __ATOMIC_RELAXED) + n;
	uint64_t dl = now_ms() + 20000;
	while (__atomic_load_n(&io_done_total, __ATOMIC_RELAXED) < want) {
		if (now_ms() > dl)
			return false;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return true;
}

static void io_finish(struct vio_mem *mem)
{
	__atomic_store_n(&io_stop, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < NTHR; i++) {
		struct iothr *t = &io[i];
		pthread_join(t->th, NULL);
		CHECK_EQ(t->failed, 0);
		CHECK_EQ(t->twice, 0);
		CHECK_EQ(t->bad_data, 0);
		CHECK_EQ(t->completed, t->submitted);
		CHECK_EQ(vio_blk_pending(t->b, t->q), 0);
		for (unsigned k = 0; k < DEPTH; k++) {
			CHECK_EQ(t->s[k].outstanding, 0);
			vio_mem_release(mem, t->s[k].buf);
		}
		printf("queue %u: %" PRIu64 " requests, each completed once\n",
		       i, t->completed);
	}
}

/* Every block, through the driver and in the file. */
static void verify_disk(struct vio_blk *b)
{
	uint8_t *got = malloc(BLK), *want = malloc(BLK);
	REQUIRE(got && want);
	int fd = open(img, O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	unsigned bad = 0;
	for (uint64_t i = 0; i < NBLK; i++) {
		pattern(want, i, shadow[i]);
		CHECK_EQ(vio_blk_read(b, 0, i * BLK, got, BLK), 0);
		bad += memcmp(got, want, BLK) != 0;
		CHECK(pread(fd, got, BLK, (off_t)(i * BLK)) == BLK);
		bad += memcmp(got, want, BLK) != 0;
	}
	CHECK_EQ(bad, 0);
	close(fd);
	free(got);
	free(want);
}

static void make_image(void)
{
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0);
	uint8_t p[BLK];
	for (uint64_t i = 0; i < NBLK; i++) {
		shadow[i] = 0;
		pattern(p, i, 0);
		REQUIRE(pwrite(fd, p, BLK, (off_t)(i * BLK)) == BLK);
	}
	close(fd);
}

/* ---- the client: vio's frontend + blk driver ---- */

struct client {
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_frontend *f;
	struct vio_blk *b;
};

static void client_open(struct client *c, const char *sock, bool packed)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	struct vio_blk_driver_opts dc = {.no_packed = !packed,
					 .queue_depth = DEPTH};
	c->drv = vio_blk_driver_new(&dc);
	REQUIRE(c->mem && c->bus && c->drv);
	REQUIRE(vio_mem_add_region(c->mem, 4u << 20, NULL) == 0);
	REQUIRE(vio_bus_register(c->bus, c->drv) == 0);
	struct vio_frontend_opts fc = {.mem = c->mem,
				       .device_id = VIRTIO_ID_BLOCK,
				       .connect_timeout_ms = 5000,
				       .reply_timeout_ms = 5000};
	char err[200];
	c->f = vio_bus_connect(c->bus, sock, &fc, err, sizeof(err));
	if (!c->f)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(c->f);
	c->b = vio_blk_from_vdev(vio_frontend_vdev(c->f));
	REQUIRE(c->b);
	CHECK_EQ(vio_blk_num_queues(c->b), NTHR);
	struct vio_blk_info info;
	vio_blk_get_info(c->b, &info);
	CHECK_EQ(info.packed, packed);
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

static int do_move(struct client *c, const char *to,
		   const struct vio_frontend_move_opts *o, char *err,
		   size_t errlen)
{
	/* (vio_blk_pending is the polling thread's: the io threads own the
	 * queues here, so no in-flight count is read from this thread) */
	uint64_t t0 = now_ms();
	int r = vio_frontend_move(c->f, to, o, err, errlen);
	printf("move to %s: %d (%s), %" PRIu64 " ms\n", strrchr(to, '/') + 1, r,
	       r ? err : "ok", now_ms() - t0);
	return r;
}

/* ---- hostile blobs ---- */

enum mangle {
	M_TRUNC,
	M_TRUNC_HDR,
	M_BIG,
	M_MAGIC,
	M_VERSION,
	M_TYPE,
	M_SECTION_VER,
	M_CAPACITY,
	M_TRAILING,
	M_FEATURES,
	M_COUNT
};

static const char *const mangle_says[M_COUNT] = {
    [M_TRUNC] = "present (truncated or padded)",
    [M_TRUNC_HDR] = "state truncated",
    [M_BIG] = "state larger than",
    [M_MAGIC] = "bad magic",
    [M_VERSION] = "state format version 9",
    [M_TYPE] = "device type 4",
    [M_SECTION_VER] = "blk state version 2",
    [M_CAPACITY] = "the source disk has",
    [M_TRAILING] = "present (truncated or padded)",
    [M_FEATURES] = "saved with features",
};

static int mangle(void *arg, uint8_t *blob, size_t *len, size_t cap)
{
	enum mangle m = *(enum mangle *)arg;
	REQUIRE(*len >= 40 + 24);
	switch (m) {
	case M_TRUNC:
		*len -= 5;
		break;
	case M_TRUNC_HDR:
		*len = 10;
		break;
	case M_BIG:
		/* a header that claims it all: bigger than any valid blob */
		REQUIRE(cap >= VIO_DEVICE_STATE_MAX + 100);
		memset(blob + *len, 0, VIO_DEVICE_STATE_MAX + 100 - *len);
		*len = VIO_DEVICE_STATE_MAX + 100;
		blob[16] = (uint8_t)((*len - 40) & 0xff);
		blob[17] = (uint8_t)((*len - 40) >> 8);
		break;
	case M_MAGIC:
		blob[0] ^= 0x20;
		break;
	case M_VERSION:
		blob[8] = 9;
		break;
	case M_TYPE:
		blob[12] = VIRTIO_ID_RNG;
		break;
	case M_SECTION_VER:
		blob[40] = 2;
		break;
	case M_CAPACITY:
		blob[40 + 8] ^= 1;
		break;
	case M_TRAILING:
		blob[(*len)++] = 0;
		break;
	case M_FEATURES:
		blob[24] ^= 1u << 4; /* a feature bit nobody negotiated */
		break;
	default:
		break;
	}
	return 0;
}

/* A blk device of its own (not served), negotiated up to FEATURES_OK
 * with CONFIG_WCE when wce. */
static struct vio_blk_device *bare_device(bool wce, bool negotiate)
{
	char err[200];
	struct vio_blk_device_opts o = {.path = img, .num_queues = NTHR};
	struct vio_blk_device *bd = vio_blk_device_new(&o, err, sizeof(err));
	REQUIRE(bd);
	struct vio_device *d = vio_blk_device_dev(bd);
	if (!negotiate)
		return bd;
	struct vio_features f = {{0, 0}};
	vio_features_set(&f, VIRTIO_F_VERSION_1);
	vio_features_set(&f, VIRTIO_BLK_F_FLUSH);
	if (wce)
		vio_features_set(&f, VIRTIO_BLK_F_CONFIG_WCE);
	CHECK_EQ(vio_device_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE), 0);
	CHECK_EQ(vio_device_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE |
					      VIRTIO_CONFIG_S_DRIVER),
		 0);
	CHECK_EQ(vio_device_set_features(d, &f), 0);
	CHECK_EQ(vio_device_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE |
					      VIRTIO_CONFIG_S_DRIVER |
					      VIRTIO_CONFIG_S_FEATURES_OK),
		 0);
	return bd;
}

static uint8_t dev_wce(struct vio_blk_device *bd)
{
	uint8_t v = 0xff;
	CHECK_EQ(vio_device_config_read(vio_blk_device_dev(bd),
					offsetof(struct virtio_blk_config, wce),
					&v, 1),
		 0);
	return v;
}

/* The model's save and load directly: the cache mode the driver chose
 * travels; the rules that need no transport. */
static void test_state_api(void)
{
	make_image();
	struct vio_blk_device *a = bare_device(true, true);
	struct vio_blk_device *b = bare_device(true, true);
	struct vio_device *da = vio_blk_device_dev(a);
	struct vio_device *db = vio_blk_device_dev(b);
	uint8_t zero = 0, blob[VIO_DEVICE_STATE_MAX];
	char why[200] = "";
	/* the driver chose writethrough on a (SET_CONFIG) */
	CHECK_EQ(vio_device_config_write(
		     da, offsetof(struct virtio_blk_config, wce), &zero, 1),
		 0);
	CHECK_EQ(dev_wce(b), 1);
	int n = vio_device_state_save(da, blob, sizeof(blob));
	CHECK_EQ(n, 40 + 24);
	CHECK_EQ(vio_device_state_save(da, blob, 50), -ENOSPC);
	CHECK_EQ(vio_device_state_load(db, blob, (size_t)n, why, sizeof(why)),
		 0);
	CHECK_EQ(dev_wce(b), 0);
	/* another device type's, or before FEATURES_OK */
	struct vio_blk_device *c = bare_device(true, false);
	CHECK_EQ(
	    vio_device_state_save(vio_blk_device_dev(c), blob, sizeof(blob)),
	    -EAGAIN);
	CHECK_EQ(vio_device_state_load(vio_blk_device_dev(c), blob, (size_t)n,
				       why, sizeof(why)),
		 -EAGAIN);
	CHECK(strstr(why, "FEATURES_OK") != NULL);
	/* features differ: a without CONFIG_WCE */
	struct vio_blk_device *d = bare_device(false, true);
	CHECK_EQ(vio_device_state_load(vio_blk_device_dev(d), blob, (size_t)n,
				       why, sizeof(why)),
		 -EINVAL);
	CHECK(strstr(why, "features") != NULL);
	/* every prefix of a valid blob is refused, and changes nothing */
	for (int k = 0; k < n; k++) {
		CHECK(vio_device_state_load(db, blob, (size_t)k, why,
					    sizeof(why)) < 0);
	}
	CHECK_EQ(vio_device_state_load(db, NULL, 0, why, sizeof(why)), -EINVAL);
	CHECK_EQ(dev_wce(b), 0);
	vio_blk_device_free(a);
	vio_blk_device_free(b);
	vio_blk_device_free(c);
	vio_blk_device_free(d);
}

static void run(bool packed)
{
	printf("--- %s rings ---\n", packed ? "packed" : "split");
	make_image();
	struct server a, b;
	server_start(&a, sock_a, packed);
	server_start(&b, sock_b, packed);
	struct client c;
	client_open(&c, sock_a, packed);
	io_start(c.b, c.mem);
	CHECK(io_progress(300));
	char err[300];
	/* A -> B -> A -> B under load */
	const char *path[3] = {sock_b, sock_a, sock_b};
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(do_move(&c, path[i], NULL, err, sizeof(err)), 0);
		CHECK(vio_frontend_alive(c.f));
		CHECK(io_progress(300));
	}

	/* hostile blobs B -> A: refused by A, B carries on */
	for (enum mangle m = 0; m < M_COUNT; m++) {
		log_clear();
		struct vio_frontend_move_opts o = {.state_filter = mangle,
						   .arg = &m};
		int r = do_move(&c, sock_a, &o, err, sizeof(err));
		CHECK_EQ(r, -EIO);
		CHECK(strstr(err, "stays at") != NULL);
		CHECK(log_has("LOAD transfer failed"));
		if (!log_has(mangle_says[m])) {
			fprintf(stderr, "case %d: the log lacks '%s'\n", m,
				mangle_says[m]);
			CHECK(0);
		}
		CHECK(vio_frontend_alive(c.f));
		CHECK(io_progress(100));
	}

	/* nowhere: fails before anything stops */
	char nowhere[320];
	snprintf(nowhere, sizeof(nowhere), "%s/nobody.sock", tmpdir);
	struct vio_frontend_move_opts o = {.connect_timeout_ms = 1};
	int r = do_move(&c, nowhere, &o, err, sizeof(err));
	CHECK(r == -ENOENT || r == -ECONNREFUSED);
	CHECK(io_progress(100));

	/* and a last good move with the load still on */
	CHECK_EQ(do_move(&c, sock_a, NULL, err, sizeof(err)), 0);
	CHECK(io_progress(200));
	io_finish(c.mem);
	verify_disk(c.b);
	client_close(&c);
	server_stop(&a);
	server_stop(&b);
}

int main(void)
{
	signal(SIGALRM, watchdog);
	alarm(100);
	signal(SIGPIPE, SIG_IGN);
	vio_log_set_handler(log_fn, NULL);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vio-state-XXXXXX");
	REQUIRE(mkdtemp(tmpdir));
	snprintf(img, sizeof(img), "%s/disk.img", tmpdir);
	snprintf(sock_a, sizeof(sock_a), "%s/a.sock", tmpdir);
	snprintf(sock_b, sizeof(sock_b), "%s/b.sock", tmpdir);
	int fds = test_count_fds();
	test_state_api();
	run(false);
	run(true);
	CHECK_EQ(test_count_fds(), fds);
	unlink(img);
	rmdir(tmpdir);
	vio_log_set_handler(NULL, NULL);
	return test_result("vu_state");
}
