/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng device unit tests.  The driver's end is a ring layer driver
 * vq on shared memory; the device's memory table splits that memory into
 * 512-byte regions adjacent in device address space, so buffers cross
 * region boundaries; the device is brought up through the model and
 * kicked with vio_device_kick.  A counter stands in for getrandom, so every
 * byte the driver gets is known.  Both ring formats.
 *
 * - Descriptors across many regions: a 64 KiB buffer (129 regions) and a
 *   chain of queue-size descriptors, each over 2 or 3 regions, are served
 *   whole, the queue not broken.
 * - A kick is bounded: the driver refills the ring from another thread
 *   as fast as the device returns buffers (the transport's call hook
 *   waits for the refill, so a device that keeps popping always finds
 *   more); one kick returns after at most a ring's worth of chains, and
 *   calling again until vio_device_kick() says false serves the rest.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "ring_env.h"
#include "test.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/rng.h>

#define QSZ 64u
#define STRIPE 512u
#define FLOOD_TOTAL (16u * QSZ)

struct tenv {
	struct vio_rng_device *rd;
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_device *dev;
	struct vio_vq *drv;
	uint8_t *arena;
	uint8_t next; /* the generator: byte i of the stream is (uint8_t)i */
	struct flood *flood;
};

static int gen_fill(void *opaque, void *buf, size_t len)
{
	struct tenv *e = opaque;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = e->next++;
	return 0;
}

static void env_open(struct tenv *e, bool packed,
		     const struct vio_device_transport *t)
{
	memset(e, 0, sizeof(*e));
	struct vio_rng_device_opts c = {
	    .queue_size = QSZ,
	    .packed = true,
	    .fill = gen_fill,
	    .fill_opaque = e,
	};
	e->rd = vio_rng_device_new(&c, NULL, 0);
	REQUIRE(e->rd);
	e->dev = vio_rng_device_dev(e->rd);
	vio_device_attach(e->dev, t, e);
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 4 << 20, NULL) == 0);
	e->mt = ring_env_table(vio_mem_region(e->mem, 0), STRIPE, 1);

	struct vio_features f;
	vio_device_offered(e->dev, &f);
	if (!packed)
		vio_features_clear(&f, VIRTIO_F_RING_PACKED);
	/* no EVENT_IDX: the device calls after every batch */
	vio_features_clear(&f, VIRTIO_RING_F_EVENT_IDX);
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	s |= VIRTIO_CONFIG_S_DRIVER;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	CHECK_EQ(vio_device_set_features(e->dev, &f), 0);
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	struct vio_vq_opts vc = {
	    .size = QSZ,
	    .packed = packed,
	    .indirect = true,
	    .name = "rng-test",
	};
	e->drv = vio_vq_new_driver(&vc, e->mem);
	REQUIRE(e->drv);
	struct vio_vq_layout l;
	vio_vq_get_layout(e->drv, &l);
	CHECK_EQ(vio_device_queue_setup(e->dev, 0, QSZ, &l, e->mt), 0);
	CHECK_EQ(vio_device_queue_enable(e->dev, 0, true), 0);
	uint64_t daddr;
	e->arena = vio_mem_alloc(e->mem, 1 << 20, 4096, &daddr);
	REQUIRE(e->arena);
	s |= VIRTIO_CONFIG_S_DRIVER_OK;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
}

static void env_close(struct tenv *e)
{
	CHECK(!vio_vq_broken(vio_device_queue(e->dev, 0)));
	CHECK(!vio_vq_broken(e->drv));
	vio_rng_device_free(e->rd);
	vio_vq_free(e->drv);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
}

static const struct vio_device_transport no_hooks = {0};

/* The stream continues at *from: n bytes of p are its next bytes. */
static bool stream_ok(const uint8_t *p, size_t n, uint8_t *from)
{
	bool ok = true;
	for (size_t i = 0; i < n; i++)
		ok &= p[i] == (uint8_t)(*from + i);
	*from = (uint8_t)(*from + n);
	return ok;
}

static void test_crossing(bool packed)
{
	struct tenv e;
	env_open(&e, packed, &no_hooks);
	uint8_t from = 0;
	int tok;
	uint32_t len;

	/* one descriptor of 64 KiB from 100 bytes into a region */
	struct vio_sg sg[QSZ];
	sg[0].buf = e.arena + 100;
	sg[0].len = 64 << 10;
	memset(sg[0].buf, 0, sg[0].len);
	REQUIRE(vio_vq_add(e.drv, sg, 0, 1, &tok) == 0);
	vio_vq_kick_prepare(e.drv);
	while (vio_device_kick(e.dev, 0))
		;
	CHECK(vio_vq_get(e.drv, &len) == &tok);
	CHECK_EQ(len, 64u << 10);
	CHECK(stream_ok(sg[0].buf, sg[0].len, &from));

	/* queue-size descriptors of 700 bytes, each over 2 or 3 regions */
	uint8_t *p = e.arena + (128 << 10) + 300;
	for (unsigned i = 0; i < QSZ; i++) {
		sg[i].buf = p + i * 1000;
		sg[i].len = 700;
	}
	REQUIRE(vio_vq_add(e.drv, sg, 0, QSZ, &tok) == 0);
	vio_vq_kick_prepare(e.drv);
	while (vio_device_kick(e.dev, 0))
		;
	CHECK(vio_vq_get(e.drv, &len) == &tok);
	CHECK_EQ(len, QSZ * 700u);
	bool same = true;
	for (unsigned i = 0; i < QSZ; i++)
		same &= stream_ok(sg[i].buf, 700, &from);
	CHECK(same);
	env_close(&e);
}

/* ---- bounded kick ---- */

struct flood {
	struct tenv *e;
	struct vio_sg sg[QSZ];
	bool busy[QSZ];
	unsigned added, got, bad; /* added: __atomic */
	int stop;		  /* __atomic */
};

static void flood_harvest(struct flood *f)
{
	uint32_t len;
	void *t;
	while ((t = vio_vq_get(f->e->drv, &len))) {
		unsigned k = (unsigned)((struct vio_sg *)t - f->sg);
		f->got++;
		f->bad += k >= QSZ || !f->busy[k] || len != f->sg[k].len;
		if (k < QSZ)
			f->busy[k] = false;
	}
}

static void flood_fill(struct flood *f)
{
	for (unsigned k = 0; k < QSZ; k++) {
		if (f->busy[k] || f->added >= FLOOD_TOTAL)
			continue;
		REQUIRE(vio_vq_add(f->e->drv, &f->sg[k], 0, 1, &f->sg[k]) == 0);
		f->busy[k] = true;
		__atomic_add_fetch(&f->added, 1, __ATOMIC_RELEASE);
	}
	vio_vq_kick_prepare(f->e->drv);
}

static void *flood_thread(void *p)
{
	struct flood *f = p;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&f->added, __ATOMIC_ACQUIRE) < FLOOD_TOTAL) {
		flood_harvest(f);
		flood_fill(f);
	}
	return NULL;
}

/* The device interrupts the driver after a batch: wait (bounded) until
 * the driver thread has put more on the ring, so a device that pops
 * again would find it. */
static void flood_call(void *t, unsigned idx)
{
	struct tenv *e = t;
	struct flood *f = e->flood;
	(void)idx;
	unsigned was = __atomic_load_n(&f->added, __ATOMIC_ACQUIRE);
	uint64_t end = vio_now_ns() + 2000000000ull;
	while (was < FLOOD_TOTAL &&
	       __atomic_load_n(&f->added, __ATOMIC_ACQUIRE) == was &&
	       !__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) &&
	       vio_now_ns() < end) {
		struct timespec ts = {0, 20000};
		nanosleep(&ts, NULL);
	}
}

static void test_bounded_kick(bool packed)
{
	static const struct vio_device_transport hooks = {.call = flood_call};
	static struct flood f;
	struct tenv e;
	env_open(&e, packed, &hooks);
	memset(&f, 0, sizeof(f));
	f.e = &e;
	e.flood = &f;
	for (unsigned k = 0; k < QSZ; k++) {
		f.sg[k].buf = e.arena + k * 4096 + 500;
		f.sg[k].len = 64;
	}
	flood_fill(&f);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, flood_thread, &f) == 0);
	bool more = vio_device_kick(e.dev, 0);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	/* only that kick ran: every completion is one of its chains */
	flood_harvest(&f);
	printf("rng bounded kick (%s): %u chains in one kick (ring %u), "
	       "more %d\n",
	       packed ? "packed" : "split", f.got, QSZ, more);
	CHECK(f.got >= 1);
	CHECK(f.got <= QSZ);
	/* what waited when the kick returned still waits (the driver may
	 * have added more since) */
	CHECK(!more || vio_vq_more_avail(vio_device_queue(e.dev, 0)));
	unsigned kicks = 0;
	while (vio_device_kick(e.dev, 0))
		kicks++;
	CHECK(kicks <= FLOOD_TOTAL / QSZ + 1);
	flood_harvest(&f);
	CHECK_EQ(f.got, f.added);
	CHECK_EQ(f.bad, 0);
	env_close(&e);
}

int main(void)
{
	for (int packed = 0; packed < 2; packed++) {
		test_crossing(packed);
		test_bounded_kick(packed);
	}
	return test_result("rng_device");
}
