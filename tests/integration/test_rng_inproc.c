/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng end to end over the in-process transport: the device on a
 * thread of its own, the driver bound by a bus, entropy read through the
 * ring.
 *
 * - Every ring configuration (split/packed, EVENT_IDX on/off, INDIRECT
 *   on/off, large and tiny queues): a seeded generator stands in for
 *   getrandom, so the bytes read must be exactly the generator's stream
 *   (nothing lost, repeated or reordered), read in seeded odd-sized
 *   chunks; byte counts checked.
 * - getrandom(2): the data is not zeros and does not repeat.
 * - The raw driver API on the same device: send_and_wait, a request with
 *   a readable segment (returned empty), wait timeouts, a hostile driver
 *   breaking the device's queue (DEVICE_NEEDS_RESET wakes the waiter with
 *   EIO), recovery by reset.
 * - An entropy source that fails: vio_rng_read gives -EIO, not a hang.
 * - Teardown: no fd left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test.h"
#include "util/log.h"
#include <vio/bus.h>
#include <vio/inproc.h>
#include <vio/mem.h>
#include <vio/rng.h>

/* ---- a deterministic entropy source: a byte stream from a seed ---- */

struct bytegen {
	uint64_t s, word;
	unsigned left;	/* bytes left in word */
	unsigned fails; /* fill calls that failed (fail mode) */
	bool fail;
};

static uint8_t gen_byte(struct bytegen *g)
{
	if (!g->left) {
		g->word = test_rand(&g->s);
		g->left = 8;
	}
	uint8_t b = (uint8_t)g->word;
	g->word >>= 8;
	g->left--;
	return b;
}

static int gen_fill(void *opaque, void *buf, size_t len)
{
	struct bytegen *g = opaque;
	if (g->fail) {
		g->fails++;
		return -EIO;
	}
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = gen_byte(g);
	return 0;
}

/* ---- environment: device + memory + transport + device thread ---- */

struct env {
	struct vio_rng_device *rd;
	struct vio_device *dev;
	struct vio_mem *mem;
	struct vio_inproc *ip;
	struct vio_drvdev *vdev;
	struct vio_bus *bus;
	pthread_t th;
	int thread_err;
};

static void *device_thread(void *arg)
{
	struct env *e = arg;
	int r;
	while ((r = vio_inproc_device_poll(e->ip, -1)) >= 0)
		;
	e->thread_err = r == -ECANCELED ? 0 : r;
	return NULL;
}

static void env_up(struct env *e, const struct vio_rng_device_opts *c)
{
	memset(e, 0, sizeof(*e));
	e->rd = vio_rng_device_new(c, NULL, 0);
	REQUIRE(e->rd);
	e->dev = vio_rng_device_dev(e->rd);
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	e->ip = vio_inproc_new(e->dev, e->mem);
	REQUIRE(e->ip);
	e->vdev = vio_inproc_vdev(e->ip);
	REQUIRE(e->vdev);
	CHECK(vio_inproc_device_fd(e->ip) >= 0);
	REQUIRE(pthread_create(&e->th, NULL, device_thread, e) == 0);
	e->bus = vio_bus_new();
	REQUIRE(e->bus);
}

static void env_down(struct env *e)
{
	vio_bus_remove(e->bus, e->vdev);
	CHECK_EQ(vio_bus_count(e->bus), 0);
	CHECK_EQ(vio_drvdev_get_status(e->vdev), 0);
	CHECK(vio_device_queue(e->dev, 0) == NULL);
	vio_bus_free(e->bus);
	vio_inproc_stop(e->ip);
	pthread_join(e->th, NULL);
	CHECK_EQ(e->thread_err, 0);
	/* stopped stays stopped */
	CHECK_EQ(vio_inproc_device_poll(e->ip, 0), -ECANCELED);
	vio_inproc_free(e->ip);
	vio_rng_device_free(e->rd);
	vio_mem_free(e->mem);
}

/* ---- the ring configurations ---- */

struct rcase {
	const char *name;
	bool packed, no_event_idx, no_indirect;
	uint16_t qsize;
};

static void run_case(const struct rcase *rc, uint64_t seed)
{
	int fds = test_count_fds();
	struct bytegen dev_gen = {.s = seed}, ref_gen = {.s = seed};
	struct vio_rng_device_opts c = {
	    .name = rc->name,
	    .queue_size = rc->qsize,
	    .packed = rc->packed,
	    .no_event_idx = rc->no_event_idx,
	    .no_indirect = rc->no_indirect,
	    .fill = gen_fill,
	    .fill_opaque = &dev_gen,
	};
	struct env e;
	env_up(&e, &c);
	CHECK_EQ(vio_bus_register(e.bus, &vio_rng_driver), 0);
	CHECK_EQ(vio_bus_add(e.bus, e.vdev), 0);
	CHECK(vio_drvdev_driver(e.vdev) == &vio_rng_driver);
	CHECK_EQ(vio_drvdev_get_status(e.vdev),
		 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK_EQ(vio_drvdev_has_feature(e.vdev, VIRTIO_F_RING_PACKED),
		 rc->packed);
	CHECK_EQ(vio_drvdev_has_feature(e.vdev, VIRTIO_RING_F_EVENT_IDX),
		 !rc->no_event_idx);
	CHECK_EQ(vio_drvdev_has_feature(e.vdev, VIRTIO_RING_F_INDIRECT_DESC),
		 !rc->no_indirect);

	const size_t total = (3u << 20) + 12345;
	uint8_t *buf = malloc(total);
	REQUIRE(buf);
	memset(buf, 0, total);
	uint64_t rs = seed ^ 0x9e3779b97f4a7c15ull;
	size_t done = 0;
	unsigned reads = 0;
	while (done < total) {
		size_t n = 1 + (size_t)(test_rand(&rs) % 200000);
		if (reads % 7 == 0)
			n = 1 + (size_t)(test_rand(&rs) % 16); /* tiny */
		if (n > total - done)
			n = total - done;
		ssize_t r = vio_rng_read(e.vdev, buf + done, n);
		CHECK_EQ(r, (ssize_t)n);
		if (r != (ssize_t)n)
			break;
		done += n;
		reads++;
	}
	CHECK_EQ(done, total);
	CHECK_EQ(vio_rng_read(e.vdev, buf, 0), 0);
	/* exactly the generator's stream, in order */
	size_t bad = total;
	for (size_t i = 0; i < done; i++)
		if (buf[i] != gen_byte(&ref_gen)) {
			bad = i;
			break;
		}
	if (bad != total)
		fprintf(stderr, "%s: stream differs at byte %zu\n", rc->name,
			bad);
	CHECK_EQ(bad, total);
	free(buf);

	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
	printf("%s: %zu bytes in %u reads ok\n", rc->name, total, reads);
}

/* ---- getrandom: not zeros, not repeating ---- */

static void test_getrandom(void)
{
	int fds = test_count_fds();
	struct env e;
	env_up(&e, NULL);
	CHECK_EQ(vio_bus_register(e.bus, &vio_rng_driver), 0);
	CHECK_EQ(vio_bus_add(e.bus, e.vdev), 0);
	const size_t total = 1u << 20;
	uint8_t *buf = malloc(total);
	REQUIRE(buf);
	memset(buf, 0, total);
	CHECK_EQ(vio_rng_read(e.vdev, buf, total), (ssize_t)total);

	/* every byte value, none far above its share (4096 expected) */
	unsigned hist[256] = {0};
	for (size_t i = 0; i < total; i++)
		hist[buf[i]]++;
	unsigned lo = UINT32_MAX, hi = 0;
	for (unsigned v = 0; v < 256; v++) {
		lo = hist[v] < lo ? hist[v] : lo;
		hi = hist[v] > hi ? hist[v] : hi;
	}
	CHECK(lo > 2048);
	CHECK(hi < 8192);
	/* no 64-byte block repeats its neighbour or the block one driver
	 * buffer (64 KiB) later */
	unsigned repeats = 0;
	for (size_t off = 0; off + 64 + 65536 <= total; off += 64)
		repeats += memcmp(buf + off, buf + off + 64, 64) == 0 ||
			   memcmp(buf + off, buf + off + 65536, 64) == 0;
	CHECK_EQ(repeats, 0);
	free(buf);
	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
}

/* ---- the raw driver API against the rng device ---- */

static void test_raw_vdev(void)
{
	int fds = test_count_fds();
	struct env e;
	env_up(&e, NULL);
	/* no driver registered: the device stays unbound */
	CHECK_EQ(vio_bus_add(e.bus, e.vdev), -ENODEV);
	uint8_t tmp[16];
	CHECK_EQ(vio_rng_read(e.vdev, tmp, sizeof(tmp)), -ENODEV);
	CHECK_EQ(vio_drvdev_device_id(e.vdev), 4); /* VIRTIO_ID_RNG */

	unsigned wb[] = {VIRTIO_RING_F_EVENT_IDX};
	struct vio_features want = vio_features_from(wb, 1);
	CHECK_EQ(vio_drvdev_connect(e.vdev), 0);
	CHECK_EQ(vio_drvdev_negotiate(e.vdev, &want), 0);
	struct vio_vq *vq = vio_drvdev_setup_vq(e.vdev, 0, 16, NULL, NULL);
	REQUIRE(vq);
	CHECK_EQ(vio_drvdev_driver_ok(e.vdev), 0);

	uint64_t da;
	uint8_t *b = vio_mem_alloc(e.mem, 8192, 64, &da);
	REQUIRE(b);
	memset(b, 0, 8192);
	struct vio_sg sg[2] = {{b, 4096}, {b + 4096, 4096}};
	uint32_t len = 0;
	CHECK_EQ(vio_drvdev_send_and_wait(e.vdev, vq, sg, 0, 1, &len, 5000), 0);
	CHECK_EQ(len, 4096);
	unsigned zeros = 0;
	for (unsigned i = 0; i < 4096; i++)
		zeros += b[i] == 0;
	CHECK(zeros < 100);

	/* a readable segment: a driver error, returned with length 0 */
	memset(b + 4096, 0, 4096);
	len = 77;
	vio_log_set_quiet(1);
	CHECK_EQ(vio_drvdev_send_and_wait(e.vdev, vq, sg, 1, 1, &len, 5000), 0);
	vio_log_set_quiet(0);
	CHECK_EQ(len, 0);
	CHECK_EQ(b[4096] | b[4097] | b[8191], 0);

	/* nothing in flight: a bounded wait times out */
	uint64_t t0 = vio_now_ns();
	errno = 0;
	CHECK(vio_drvdev_wait_used(e.vdev, vq, &len, 30) == NULL);
	CHECK_EQ(errno, ETIMEDOUT);
	CHECK(vio_now_ns() - t0 >= 25000000ull);

	/* a hostile driver: avail->idx 1000 ahead.  The device breaks the
	 * queue, needs a reset, and the waiter wakes with EIO */
	struct vio_vq_layout l;
	vio_vq_get_layout(vq, &l);
	struct vring_avail *avail = l.driver;
	uint16_t idx = le16toh(__atomic_load_n(&avail->idx, __ATOMIC_RELAXED));
	__atomic_store_n(&avail->idx, htole16((uint16_t)(idx + 1000)),
			 __ATOMIC_RELEASE);
	vio_log_set_quiet(1);
	vio_vq_notify(vq);
	t0 = vio_now_ns();
	errno = 0;
	CHECK(vio_drvdev_wait_used(e.vdev, vq, &len, 5000) == NULL);
	CHECK_EQ(errno, EIO);
	CHECK(vio_now_ns() - t0 < 4000000000ull);
	vio_log_set_quiet(0);
	CHECK(vio_drvdev_get_status(e.vdev) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* recovery: reset, handshake again, fresh queue, data flows */
	CHECK_EQ(vio_drvdev_connect(e.vdev), 0);
	CHECK_EQ(vio_drvdev_negotiate(e.vdev, &want), 0);
	vq = vio_drvdev_setup_vq(e.vdev, 0, 0, NULL, NULL);
	REQUIRE(vq);
	CHECK_EQ(vio_vq_size(vq), 256);
	CHECK_EQ(vio_drvdev_driver_ok(e.vdev), 0);
	memset(b, 0, 4096);
	CHECK_EQ(vio_drvdev_send_and_wait(e.vdev, vq, sg, 0, 1, &len, 5000), 0);
	CHECK_EQ(len, 4096);

	vio_mem_release(e.mem, b);
	CHECK_EQ(vio_drvdev_reset(e.vdev), 0);
	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
}

/* ---- an entropy source that fails ---- */

static void test_fill_fails(void)
{
	struct bytegen g = {.s = 1, .fail = true};
	struct vio_rng_device_opts c = {.fill = gen_fill, .fill_opaque = &g};
	struct env e;
	env_up(&e, &c);
	CHECK_EQ(vio_bus_register(e.bus, &vio_rng_driver), 0);
	CHECK_EQ(vio_bus_add(e.bus, e.vdev), 0);
	uint8_t buf[100];
	vio_log_set_quiet(1);
	CHECK_EQ(vio_rng_read(e.vdev, buf, sizeof(buf)), -EIO);
	vio_log_set_quiet(0);
	env_down(&e);
	CHECK(g.fails >= 8);
}

int main(void)
{
	int fds = test_count_fds();
	uint64_t seed = test_seed();
	static const struct rcase cases[] = {
	    {"split", false, false, false, 0},
	    {"split-no-event-idx", false, true, false, 0},
	    {"packed", true, false, false, 0},
	    {"packed-no-event-idx", true, true, false, 0},
	    {"split-no-indirect-q4", false, false, true, 4},
	    {"packed-q3", true, false, false, 3},
	    {"packed-no-event-idx-q1", true, true, true, 1},
	    {"split-q1", false, true, false, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], seed + i);
	test_getrandom();
	test_raw_vdev();
	test_fill_fails();
	CHECK_EQ(test_count_fds(), fds);
	return test_result("rng_inproc");
}
