/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net device tests' environment (test_net_device.c,
 * test_net_ctrl.c): a vio_net_device brought up through the model, the
 * driver's end as ring layer driver vqs on shared memory; the device's
 * memory table cuts that memory into 512-byte regions adjacent in device
 * address space, so buffers cross region boundaries.  Queues are kicked
 * with vio_device_kick, without queue_start (as the inproc transport
 * does), unless a test starts them on a loop (tloop: timers the test
 * runs).  Each program includes it once.
 */
#ifndef VIO_TEST_NET_ENV_H
#define VIO_TEST_NET_ENV_H

#include <endian.h>
#include <errno.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "ring_env.h"
#include "test.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/net.h>

/* every program uses a different subset */
#pragma GCC diagnostic ignored "-Wunused-function"

#define QSZ 64u
#define STRIPE 512u
#define MAXQ (2 * VIO_NET_MAX_PAIRS + 1)

struct tenv {
	struct vio_net_device *nd;
	struct vio_net_port *port;
	struct vio_device *dev;
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *vq[MAXQ];
	unsigned nq, ctrl_idx;
	uint8_t *arena;
	size_t off;
	unsigned cfg_changes;
	bool packed;
};

static void cfg_changed(void *t)
{
	struct tenv *e = t;
	e->cfg_changes++;
}

static const struct vio_device_transport hooks = {
    .config_changed = cfg_changed,
};

/* Bring a device up: the offer minus drop[] (and packed or not). */
static int env_open_ex(struct tenv *e, struct vio_net_device_opts *o,
		       bool packed, const unsigned *drop, unsigned ndrop,
		       const unsigned *add, unsigned nadd)
{
	memset(e, 0, sizeof(*e));
	e->packed = packed;
	o->queue_size = QSZ;
	o->packed = true;
	if (!o->port)
		o->port = vio_net_port_sink_new();
	e->port = o->port;
	REQUIRE(e->port);
	char err[128] = "";
	e->nd = vio_net_device_new(o, err, sizeof(err));
	if (!e->nd)
		fprintf(stderr, "device: %s\n", err);
	REQUIRE(e->nd);
	e->dev = vio_net_device_dev(e->nd);
	CHECK(vio_net_device_from_dev(e->dev) == e->nd);
	vio_device_attach(e->dev, &hooks, e);
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 4 << 20, NULL) == 0);
	e->mt = ring_env_table(vio_mem_region(e->mem, 0), STRIPE, 1);
	struct vio_features f;
	vio_device_offered(e->dev, &f);
	if (!packed)
		vio_features_clear(&f, VIRTIO_F_RING_PACKED);
	for (unsigned i = 0; i < ndrop; i++)
		vio_features_clear(&f, drop[i]);
	for (unsigned i = 0; i < nadd; i++)
		vio_features_set(&f, add[i]);
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	s |= VIRTIO_CONFIG_S_DRIVER;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	CHECK_EQ(vio_device_set_features(e->dev, &f), 0);
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	int r = vio_device_set_status(e->dev, s);
	if (r < 0)
		return r;
	bool mq = vio_features_has(&f, VIRTIO_NET_F_MQ);
	unsigned pairs = mq ? vio_net_device_queue_pairs(e->nd) : 1;
	e->nq = 2 * pairs;
	e->ctrl_idx = UINT32_MAX;
	if (vio_features_has(&f, VIRTIO_NET_F_CTRL_VQ))
		e->ctrl_idx = e->nq++;
	for (unsigned q = 0; q < e->nq; q++) {
		struct vio_vq_opts vc = {
		    .index = (uint16_t)q,
		    .size = QSZ,
		    .packed = packed,
		    .event_idx = vio_features_has(&f, VIRTIO_RING_F_EVENT_IDX),
		    .indirect = true,
		    .name = "net-test",
		};
		e->vq[q] = vio_vq_new_driver(&vc, e->mem);
		REQUIRE(e->vq[q]);
		struct vio_vq_layout l;
		vio_vq_get_layout(e->vq[q], &l);
		CHECK_EQ(vio_device_queue_setup(e->dev, q, QSZ, &l, e->mt), 0);
		CHECK_EQ(vio_device_queue_enable(e->dev, q, true), 0);
	}
	uint64_t daddr;
	e->arena = vio_mem_alloc(e->mem, 2 << 20, 4096, &daddr);
	REQUIRE(e->arena);
	s |= VIRTIO_CONFIG_S_DRIVER_OK;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	return 0;
}

static void env_open(struct tenv *e, struct vio_net_device_opts *o, bool packed,
		     const unsigned *drop, unsigned ndrop)
{
	REQUIRE(env_open_ex(e, o, packed, drop, ndrop, NULL, 0) == 0);
}

static void env_close(struct tenv *e)
{
	for (unsigned q = 0; q < e->nq; q++) {
		struct vio_vq *dq = vio_device_queue(e->dev, q);
		CHECK(!dq || !vio_vq_broken(dq));
		CHECK(!vio_vq_broken(e->vq[q]));
	}
	CHECK_EQ(vio_device_set_status(e->dev, 0), 0);
	vio_net_device_free(e->nd);
	vio_net_port_free(e->port);
	for (unsigned q = 0; q < e->nq; q++)
		vio_vq_free(e->vq[q]);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
}

static void *balloc(struct tenv *e, size_t len)
{
	e->off = (e->off + 63) & ~(size_t)63;
	REQUIRE(e->off + len <= (2u << 20));
	void *p = e->arena + e->off;
	e->off += len;
	return p;
}

static void kick(struct tenv *e, unsigned q)
{
	vio_vq_kick_prepare(e->vq[q]);
	unsigned n = 0;
	while (vio_device_kick(e->dev, q) && n++ < 1000)
		;
}

/* Harvest every used buffer of queue q; returns how many. */
static unsigned reap(struct tenv *e, unsigned q)
{
	uint32_t len;
	unsigned n = 0;
	while (vio_vq_get(e->vq[q], &len))
		n++;
	return n;
}

static const uint8_t MAC_A[6] = {0x02, 0, 0, 0, 0, 0xaa};
static const uint8_t MAC_B[6] = {0x02, 0, 0, 0, 0, 0xbb};

/* An Ethernet frame of len bytes from src to dst, payload i ^ seed. */
static void make_frame(uint8_t *f, size_t len, const uint8_t *dst,
		       const uint8_t *src, uint8_t seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88; /* local experimental ethertype: not checked as IP */
	f[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i ^ seed);
}

/* Queue one frame on transmitq qp (header and frame in two segments,
 * the frame in cut pieces when cut > 0); kick; true if used came back. */
static bool tx_one(struct tenv *e, unsigned qp,
		   const struct virtio_net_hdr_v1 *hdr, const uint8_t *frame,
		   size_t len, size_t cut)
{
	unsigned q = 2 * qp + 1;
	struct vio_sg sg[3];
	unsigned n = 0;
	uint8_t *h = balloc(e, VIO_NET_HDR_LEN);
	struct virtio_net_hdr_v1 z = {0};
	memcpy(h, hdr ? hdr : &z, VIO_NET_HDR_LEN);
	sg[n++] = (struct vio_sg){h, VIO_NET_HDR_LEN};
	uint8_t *b = balloc(e, len ? len : 1);
	memcpy(b, frame, len);
	if (cut && cut < len) {
		sg[n++] = (struct vio_sg){b, (uint32_t)cut};
		sg[n++] = (struct vio_sg){b + cut, (uint32_t)(len - cut)};
	} else {
		sg[n++] = (struct vio_sg){b, (uint32_t)len};
	}
	REQUIRE(vio_vq_add(e->vq[q], sg, n, 0, b) == 0);
	kick(e, q);
	return reap(e, q) == 1;
}

/* Post n receive buffers of size bytes on receiveq qp. */
static void rx_post(struct tenv *e, unsigned qp, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		struct vio_sg sg = {balloc(e, size), size};
		REQUIRE(vio_vq_add(e->vq[2 * qp], &sg, 0, 1, sg.buf) == 0);
	}
	vio_vq_kick_prepare(e->vq[2 * qp]);
}

/* One received frame (reassembled) into out; its length, or -1. */
static long rx_frame(struct tenv *e, unsigned qp, uint8_t *out, size_t cap,
		     struct virtio_net_hdr_v1 *hdr)
{
	uint32_t len;
	uint8_t *b = vio_vq_get(e->vq[2 * qp], &len);
	if (!b)
		return -1;
	if (len < VIO_NET_HDR_LEN)
		return -2;
	memcpy(hdr, b, VIO_NET_HDR_LEN);
	unsigned nb = le16toh(hdr->num_buffers);
	size_t got = len - VIO_NET_HDR_LEN;
	REQUIRE(got <= cap);
	memcpy(out, b + VIO_NET_HDR_LEN, got);
	for (unsigned i = 1; i < nb; i++) {
		b = vio_vq_get(e->vq[2 * qp], &len);
		if (!b)
			return -3;
		REQUIRE(got + len <= cap);
		memcpy(out + got, b, len);
		got += len;
	}
	return (long)got;
}

/* A control command; the ack byte (0xee: no answer). */
static uint8_t ctrl(struct tenv *e, uint8_t cls, uint8_t cmd, const void *data,
		    size_t dlen)
{
	REQUIRE(e->ctrl_idx != UINT32_MAX);
	struct vio_sg sg[3];
	unsigned n = 0;
	uint8_t *h = balloc(e, 2);
	h[0] = cls;
	h[1] = cmd;
	sg[n++] = (struct vio_sg){h, 2};
	if (dlen) {
		uint8_t *d = balloc(e, dlen);
		memcpy(d, data, dlen);
		sg[n++] = (struct vio_sg){d, (uint32_t)dlen};
	}
	uint8_t *ack = balloc(e, 1);
	*ack = 0xee;
	sg[n++] = (struct vio_sg){ack, 1};
	REQUIRE(vio_vq_add(e->vq[e->ctrl_idx], sg, n - 1, 1, ack) == 0);
	kick(e, e->ctrl_idx);
	uint32_t len = 0;
	void *t = vio_vq_get(e->vq[e->ctrl_idx], &len);
	CHECK(t == ack);
	CHECK_EQ(len, 1);
	return *ack;
}

static struct vio_net_stats stats(struct tenv *e)
{
	struct vio_net_stats s;
	CHECK_EQ(vio_net_device_stats(e->nd, VIO_NET_MAX_PAIRS, &s), 0);
	return s;
}

/* ---- loops ---- */

static int fake_add_fd(struct vio_loop *l, int fd, unsigned flags,
		       vio_loop_fn *fn, void *arg)
{
	return 0;
}
static void fake_del_fd(struct vio_loop *l, int fd)
{
}
static int fake_set_timer(struct vio_loop *l, uint64_t ns, vio_loop_fn *fn,
			  void *arg)
{
	return 0;
}
static void fake_cancel(struct vio_loop *l, vio_loop_fn *fn, void *arg)
{
}

/* A loop that only records timers; the test runs them. */
/* A loop that only records timers; the test runs them. */
struct tloop {
	struct vio_loop l;
	vio_loop_fn *fn[8];
	void *arg[8];
	unsigned n;
};

static int tl_set_timer(struct vio_loop *l, uint64_t ns, vio_loop_fn *fn,
			void *arg)
{
	struct tloop *t = (struct tloop *)l;
	(void)ns;
	for (unsigned i = 0; i < t->n; i++)
		if (t->fn[i] == fn && t->arg[i] == arg)
			return 0;
	if (t->n == 8)
		return -ENOSPC;
	t->fn[t->n] = fn;
	t->arg[t->n++] = arg;
	return 0;
}

static void tl_cancel(struct vio_loop *l, vio_loop_fn *fn, void *arg)
{
	struct tloop *t = (struct tloop *)l;
	for (unsigned i = 0; i < t->n; i++)
		if (t->fn[i] == fn && t->arg[i] == arg) {
			t->fn[i] = t->fn[--t->n];
			t->arg[i] = t->arg[t->n];
			return;
		}
}

/* Run timers until none is left (bounded); returns how many ran. */
static unsigned tl_run(struct tloop *t)
{
	unsigned ran = 0;
	while (t->n && ran < 1000) {
		vio_loop_fn *fn = t->fn[0];
		void *arg = t->arg[0];
		t->fn[0] = t->fn[--t->n];
		t->arg[0] = t->arg[t->n];
		fn(arg);
		ran++;
	}
	return ran;
}

#endif
