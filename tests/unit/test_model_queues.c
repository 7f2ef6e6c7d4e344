/* SPDX-License-Identifier: MIT */
/*
 * Model layer unit tests (src/model/): config space, queues and kicks.
 * The device type is model_env.h's tdev.
 *
 * - Config space: bounds, the generation re-read (a stub whose
 *   generation moves between the driver's reads), -EAGAIN when it never
 *   settles, device-side updates.
 * - Queues and kicks: no kick reaches the device before DRIVER_OK or
 *   after DEVICE_NEEDS_RESET; reset frees queues and features; a broken
 *   device queue sets DEVICE_NEEDS_RESET and tells the transport.
 * - Missing transport ops become -ENOTSUP or neutral values.
 * Status, features and negotiation: test_model.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "model_env.h"
#include "stub_transport.h"
#include "test.h"
#include "util/log.h"
#include <vio/device.h>
#include <vio/driver.h>
#include <vio/mem.h>

/* ---- config space ---- */

struct gen_stub {
	uint8_t data[8];
	uint32_t gen;
	unsigned reads, gen_reads;
	unsigned updates_left; /* device updates after each read */
};

static uint32_t gs_generation(void *t)
{
	struct gen_stub *g = t;
	g->gen_reads++;
	return g->gen;
}

static int gs_read(void *t, unsigned off, void *buf, unsigned len)
{
	struct gen_stub *g = t;
	if (off > sizeof(g->data) || len > sizeof(g->data) - off)
		return -EINVAL;
	memcpy(buf, g->data + off, len);
	g->reads++;
	if (g->updates_left) {
		/* the device updates between the driver's read and its
		 * second look at the generation */
		g->updates_left--;
		for (unsigned i = 0; i < sizeof(g->data); i++)
			g->data[i]++;
		g->gen++;
	}
	return 0;
}

static const struct vio_transport_ops gen_ops = {
    .name = "gen",
    .config_read = gs_read,
    .config_generation = gs_generation,
};

static void test_config_generation(void)
{
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct gen_stub g = {.data = {10, 10, 10, 10, 10, 10, 10, 10}};
	struct vio_drvdev *vdev = vio_drvdev_new(&gen_ops, &g, mem);
	REQUIRE(vdev);
	uint8_t buf[8];

	/* steady: one read, generation read twice */
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, buf, 8), 0);
	CHECK_EQ(g.reads, 1);
	CHECK_EQ(g.gen_reads, 2);
	CHECK_EQ(buf[0], 10);

	/* three updates land between reads: four reads, the last values */
	g.reads = 0;
	g.updates_left = 3;
	CHECK_EQ(vio_drvdev_config_read(vdev, 2, buf, 4), 0);
	CHECK_EQ(g.reads, 4);
	CHECK_EQ(buf[0], 13);
	CHECK_EQ(buf[3], 13);
	CHECK_EQ(g.data[0], 13);

	/* it never settles: bounded, -EAGAIN */
	g.reads = 0;
	g.updates_left = 100000;
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, buf, 1), -EAGAIN);
	CHECK(g.reads >= 2 && g.reads <= 1000);

	/* errors pass through */
	g.updates_left = 0;
	CHECK_EQ(vio_drvdev_config_read(vdev, 4, buf, 8), -EINVAL);
	/* no config_write op */
	CHECK_EQ(vio_drvdev_config_write(vdev, 0, buf, 1), -ENOTSUP);
	vio_drvdev_free(vdev);
	vio_mem_free(mem);
}

static void test_config_device(void)
{
	struct tdev t;
	struct vio_device *dev = tdev_new(&t, NULL, 0);
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct stub s;
	struct vio_drvdev *vdev = stub_init(&s, dev, mem);
	REQUIRE(vdev);
	uint8_t b[16];

	CHECK_EQ(vio_device_config_size(dev), 16);
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, b, 16), 0);
	CHECK_EQ(b[0], 1);
	CHECK_EQ(b[15], 16);
	CHECK_EQ(vio_drvdev_config_read(vdev, 15, b, 2), -EINVAL);
	CHECK_EQ(vio_drvdev_config_read(vdev, 17, b, 0), -EINVAL);
	CHECK_EQ(vio_drvdev_config_read(vdev, 16, b, 0), 0);
	CHECK_EQ(vio_drvdev_config_read(vdev, 0xffffffffu, b, 2), -EINVAL);

	/* driver writes: stored, no generation change */
	uint32_t g0 = vio_device_config_generation(dev);
	uint8_t w[2] = {0xee, 0xff};
	CHECK_EQ(vio_drvdev_config_write(vdev, 4, w, 2), 0);
	CHECK_EQ(vio_device_config_generation(dev), g0);
	CHECK_EQ(vio_device_config_read(dev, 4, b, 2), 0);
	CHECK_EQ(b[0], 0xee);
	CHECK_EQ(vio_drvdev_config_write(vdev, 15, w, 2), -EINVAL);
	/* not a writable field (issue 7.3): refused, nothing stored */
	CHECK_EQ(vio_drvdev_config_write(vdev, 0, w, 2), -EPERM);
	CHECK_EQ(vio_drvdev_config_write(vdev, 5, w, 2), -EPERM);
	CHECK_EQ(vio_device_config_read(dev, 0, b, 8), 0);
	CHECK_EQ(b[0], 1);
	CHECK_EQ(b[6], 7);
	CHECK_EQ(b[5], 0xff);
	/* reset gives the next driver the device's config, not ours */
	REQUIRE(vio_device_set_status(dev, 0) == 0);
	CHECK_EQ(vio_device_config_read(dev, 4, b, 2), 0);
	CHECK_EQ(b[0], 5);
	CHECK_EQ(b[1], 6);

	/* device updates: generation moves, transport told */
	uint8_t u = 0x77;
	CHECK_EQ(vio_device_config_update(dev, 0, &u, 1), 0);
	CHECK(vio_device_config_generation(dev) != g0);
	CHECK_EQ(s.config_changed, 1);
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, b, 1), 0);
	CHECK_EQ(b[0], 0x77);
	CHECK_EQ(vio_device_config_update(dev, 16, &u, 1), -EINVAL);
	CHECK_EQ(s.config_changed, 1);
	/* ... and survive a reset: they are the device's own */
	REQUIRE(vio_device_set_status(dev, 0) == 0);
	CHECK_EQ(vio_device_config_read(dev, 0, b, 1), 0);
	CHECK_EQ(b[0], 0x77);

	vio_drvdev_free(vdev);
	vio_device_free(dev);
	stub_fini(&s);
	vio_mem_free(mem);
}

/* ---- queues and kicks ---- */

static unsigned cb_runs;
static void *cb_arg;
static struct vio_vq *cb_vq;

static void test_cb(struct vio_vq *vq, void *opaque)
{
	cb_runs++;
	cb_arg = opaque;
	cb_vq = vq;
}

static void test_queues_and_kicks(void)
{
	struct tdev t;
	struct vio_device *dev = tdev_new(&t, ring_bits, 4);
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct stub s;
	struct vio_drvdev *vdev = stub_init(&s, dev, mem);
	REQUIRE(vdev);
	static const unsigned wb[] = {VIRTIO_RING_F_EVENT_IDX};
	struct vio_features want = vio_features_from(wb, 1);

	CHECK_EQ(vio_drvdev_num_queues(vdev), 2);
	CHECK_EQ(vio_drvdev_queue_max_size(vdev, 0), 64);
	CHECK_EQ(vio_drvdev_queue_max_size(vdev, 2), 0);

	/* no queue before FEATURES_OK */
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	errno = 0;
	CHECK(vio_drvdev_setup_vq(vdev, 0, 0, NULL, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want), 0);
	errno = 0;
	CHECK(vio_drvdev_setup_vq(vdev, 2, 0, NULL, NULL) == NULL);
	CHECK_EQ(errno, ENXIO);
	CHECK(vio_drvdev_setup_vq(vdev, 0, 65, NULL, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	/* split: rounded down to a power of two */
	struct vio_vq *vq = vio_drvdev_setup_vq(vdev, 0, 48, NULL, NULL);
	REQUIRE(vq);
	CHECK_EQ(vio_vq_size(vq), 32);
	CHECK(vio_drvdev_vq(vdev, 0) == vq);
	CHECK(vio_device_queue(dev, 0) != NULL);
	CHECK(vio_drvdev_setup_vq(vdev, 0, 0, NULL, NULL) == NULL);
	CHECK_EQ(errno, EBUSY);

	uint64_t da;
	uint8_t *buf = vio_mem_alloc(mem, 256, 64, &da);
	REQUIRE(buf);
	struct vio_sg sg = {buf, 256};
	/* a kick before DRIVER_OK does not reach the device */
	CHECK_EQ(vio_drvdev_send(vq, &sg, 0, 1, buf), 0);
	CHECK_EQ(t.kicks, 0);
	CHECK(vio_vq_get(vq, NULL) == NULL);
	CHECK_EQ(vio_drvdev_driver_ok(vdev), 0);
	vio_vq_notify(vq);
	CHECK_EQ(t.kicks, 1);
	uint32_t len = 0;
	CHECK(vio_drvdev_wait_used(vdev, vq, &len, 0) == buf);
	CHECK_EQ(len, 256);
	CHECK_EQ(buf[255], 0xa5);

	/* send_and_wait */
	memset(buf, 0, 256);
	len = 0;
	CHECK_EQ(vio_drvdev_send_and_wait(vdev, vq, &sg, 0, 1, &len, 100), 0);
	CHECK_EQ(len, 256);
	CHECK_EQ(buf[0], 0xa5);
	/* nothing in flight: timeout */
	errno = 0;
	CHECK(vio_drvdev_wait_used(vdev, vq, &len, 10) == NULL);
	CHECK_EQ(errno, ETIMEDOUT);

	/* a device that leaves buffers available on purpose (a receive
	 * queue) is not called again: only its own "more" counts */
	t.hold = true;
	CHECK_EQ(vio_drvdev_send(vq, &sg, 0, 1, buf), 0);
	CHECK(!vio_device_kick(dev, 0));
	t.more = true;
	CHECK(vio_device_kick(dev, 0));
	t.hold = t.more = false;
	CHECK(!vio_device_kick(dev, 0));
	CHECK(vio_drvdev_wait_used(vdev, vq, &len, 0) == buf);

	/* the callback gets the caller's opaque (queue 1) */
	int marker;
	struct vio_vq *vq1 = vio_drvdev_setup_vq(vdev, 1, 0, test_cb, &marker);
	REQUIRE(vq1);
	CHECK_EQ(vio_vq_size(vq1), 64);
	vio_vq_interrupt(vq1);
	CHECK_EQ(cb_runs, 1);
	CHECK(cb_arg == &marker);
	CHECK(cb_vq == vq1);

	/* DEVICE_NEEDS_RESET: kicks are ignored */
	unsigned k = t.kicks;
	vio_log_set_quiet(1);
	vio_device_needs_reset(dev, "test");
	vio_log_set_quiet(0);
	CHECK_EQ(vio_drvdev_send(vq, &sg, 0, 1, buf), 0);
	vio_vq_notify(vq);
	CHECK_EQ(t.kicks, k);

	/* reset: queues freed (ops->reset checks), features cleared */
	unsigned resets = t.resets;
	CHECK_EQ(vio_drvdev_reset(vdev), 0);
	CHECK_EQ(t.resets, resets + 1);
	CHECK(vio_device_queue(dev, 0) == NULL);
	CHECK(vio_drvdev_vq(vdev, 0) == NULL);
	CHECK(!vio_device_has_feature(dev, VIRTIO_RING_F_EVENT_IDX));
	CHECK(!vio_drvdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX));
	vio_mem_release(mem, buf);

	vio_drvdev_free(vdev);
	vio_device_free(dev);
	stub_fini(&s);
	vio_mem_free(mem);
}

/* A device queue that sees a protocol violation breaks, the device sets
 * DEVICE_NEEDS_RESET and the transport hears of it; the other queue and
 * the driver side are untouched. */
static void test_broken_queue(void)
{
	struct tdev t;
	struct vio_device *dev = tdev_new(&t, NULL, 0);
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct stub s;
	struct vio_drvdev *vdev = stub_init(&s, dev, mem);
	REQUIRE(vdev);
	struct vio_features none = vio_features_from(NULL, 0);
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	CHECK_EQ(vio_drvdev_negotiate(vdev, &none), 0);
	struct vio_vq *vq = vio_drvdev_setup_vq(vdev, 0, 8, NULL, NULL);
	REQUIRE(vq);
	CHECK_EQ(vio_drvdev_driver_ok(vdev), 0);
	CHECK(!vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED));

	/* a hostile driver: avail->idx runs 1000 entries ahead */
	struct vio_vq_layout l;
	vio_vq_get_layout(vq, &l);
	struct vring_avail *avail = l.driver;
	__atomic_store_n(&avail->idx, htole16(1000), __ATOMIC_RELEASE);
	vio_log_set_quiet(1);
	vio_vq_notify(vq);
	vio_log_set_quiet(0);
	CHECK_EQ(t.kicks, 1);
	CHECK(vio_device_queue(dev, 0) &&
	      vio_vq_broken(vio_device_queue(dev, 0)));
	CHECK(vio_device_get_status(dev) & NR);
	CHECK_EQ(s.needs_reset, 1);
	/* from now on kicks are ignored */
	vio_vq_notify(vq);
	CHECK_EQ(t.kicks, 1);
	/* the driver can still only reset (or fail) */
	CHECK_EQ(vio_drvdev_add_status(vdev, DOK), 0); /* already set */
	CHECK_EQ(vio_drvdev_add_status(vdev, FAIL), 0);
	CHECK_EQ(vio_drvdev_reset(vdev), 0);
	CHECK_EQ(vio_device_get_status(dev), 0);
	CHECK(vio_device_queue(dev, 0) == NULL);

	vio_drvdev_free(vdev);
	vio_device_free(dev);
	stub_fini(&s);
	vio_mem_free(mem);
}

/* Missing transport ops: -ENOTSUP or neutral values, never a call. */
static uint32_t only_id(void *t)
{
	(void)t;
	return 9;
}

static void test_null_ops(void)
{
	static const struct vio_transport_ops bare = {.device_id = only_id};
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct vio_drvdev *vdev = vio_drvdev_new(&bare, NULL, mem);
	REQUIRE(vdev);
	uint8_t b[4];
	struct vio_features f = vio_features_from(NULL, 0);
	CHECK_EQ(vio_drvdev_device_id(vdev), 9);
	CHECK_EQ(vio_drvdev_vendor_id(vdev), 0);
	CHECK_EQ(vio_drvdev_get_status(vdev), 0);
	CHECK_EQ(vio_drvdev_add_status(vdev, ACK), -ENOTSUP);
	CHECK_EQ(vio_drvdev_connect(vdev), -ENOTSUP);
	CHECK_EQ(vio_drvdev_reset(vdev), -ENOTSUP);
	CHECK_EQ(vio_drvdev_negotiate(vdev, &f), -EINVAL);
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, b, 4), -ENOTSUP);
	CHECK_EQ(vio_drvdev_config_write(vdev, 0, b, 4), -ENOTSUP);
	CHECK_EQ(vio_drvdev_num_queues(vdev), 0);
	CHECK_EQ(vio_drvdev_queue_max_size(vdev, 0), 0);
	errno = 0;
	CHECK(vio_drvdev_setup_vq(vdev, 0, 0, NULL, NULL) == NULL);
	CHECK(errno != 0);
	CHECK(vio_drvdev_vq(vdev, 0) == NULL);
	CHECK(vio_drvdev_vq(vdev, VIO_MAX_QUEUES) == NULL);
	CHECK(vio_drvdev_mem(vdev) == mem);
	int p;
	vio_drvdev_set_priv(vdev, &p);
	CHECK(vio_drvdev_priv(vdev) == &p);
	CHECK(vio_drvdev_driver(vdev) == NULL);
	vio_drvdev_free(vdev);
	CHECK(vio_drvdev_new(NULL, NULL, mem) == NULL);
	CHECK(vio_drvdev_new(&bare, NULL, NULL) == NULL);
	vio_mem_free(mem);
}

static void test_dev_new_args(void)
{
	struct vio_device_opts c = {.num_queues = 1, .queue_max_size = 8};
	struct vio_device *dev = vio_device_new(&c);
	REQUIRE(dev);
	CHECK(strcmp(vio_device_name(dev), "vio-dev") == 0);
	CHECK_EQ(vio_device_queue_max_size(dev, 0), 8);
	CHECK_EQ(vio_device_queue_max_size(dev, 1), -EINVAL);
	/* no ops at all: kicks and status still work */
	CHECK_EQ(vio_device_set_status(dev, ACK), 0);
	vio_device_kick(dev, 0);
	vio_device_kick(dev, 99);
	CHECK_EQ(vio_device_queue_enable(dev, 0, true), -EINVAL); /* no setup */
	CHECK_EQ(vio_device_queue_set_base(dev, 1, 0), -EINVAL);
	vio_device_free(dev);
	vio_device_free(NULL);

	struct vio_device_opts bad[] = {
	    {.num_queues = 0, .queue_max_size = 8},
	    {.num_queues = VIO_MAX_QUEUES + 1, .queue_max_size = 8},
	    {.num_queues = 1, .queue_max_size = 0},
	    {.num_queues = 1,
	     .queue_max_size = 8,
	     .config_size = VIO_CONFIG_MAX + 1},
	    {.num_queues = 1, .queue_max_size = 8, .config_size = 4},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		CHECK(vio_device_new(&bad[i]) == NULL);
		CHECK_EQ(errno, EINVAL);
	}
	CHECK(vio_device_new(NULL) == NULL);
}

int main(void)
{
	test_config_generation();
	test_config_device();
	test_queues_and_kicks();
	test_broken_queue();
	test_null_ops();
	test_dev_new_args();
	return test_result("model_queues");
}
