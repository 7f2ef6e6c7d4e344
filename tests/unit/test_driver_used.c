/* SPDX-License-Identifier: MIT */
/*
 * The drivers against a device that lies about the used length (issue 7,
 * item 8).  A hostile virtio-blk and a hostile virtio-rng device, written
 * here, sit behind the synchronous stub transport (stub_transport.h): a
 * kick runs the device at once, and it answers each chain as the test's
 * knobs say (status byte, bytes actually written, used length).
 *
 * blk: an OK answer must account for what it claims: READ len >= data +
 * 1, every other request len >= 1; otherwise the request fails with -EIO
 * and the caller's buffer gets nothing (no stale bounce-buffer bytes of
 * an earlier request).  GET_ID hands out only the id bytes the used
 * length covers.  A short answer fails that request, not the queue.
 * Split and packed rings, copying and zero-copy reads.
 *
 * rng: the driver hands out exactly the bytes each used length says were
 * written, never more than the buffer; a length beyond the buffer breaks
 * the queue (the ring's check) and the read fails.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "stub_transport.h"
#include "test.h"
#include "util/log.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/device.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/rng.h>

#define CAP_SECTORS 2048u
#define MAX_IOV 64u

/* How the hostile device answers the next chains. */
enum len_mode {
	LEN_HONEST, /* data written + 1 */
	LEN_FIXED,  /* hd.fixed_len */
	LEN_MINUS,  /* honest - hd.minus */
	LEN_HUGE,   /* more than the chain's writable bytes */
};

struct hostile {
	uint8_t status;	 /* written into the status byte */
	bool write_data; /* fill the writable data with fill */
	uint8_t fill;
	enum len_mode mode;
	uint32_t fixed_len, minus;
	unsigned lie_from; /* answers before this one are honest */
	unsigned answered;
};
static struct hostile hd;

static const char test_id[VIRTIO_BLK_ID_BYTES] = "ABCDEFGHIJKLMNOPQRST";

static uint32_t answer_len(uint32_t honest, uint32_t in_len)
{
	if (hd.answered < hd.lie_from)
		return honest;
	switch (hd.mode) {
	case LEN_FIXED:
		return hd.fixed_len;
	case LEN_MINUS:
		return honest > hd.minus ? honest - hd.minus : 0;
	case LEN_HUGE:
		return in_len + 1;
	default:
		return honest;
	}
}

static bool blk_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	(void)dev;
	(void)idx;
	struct vio_iov iov[MAX_IOV];
	struct vio_chain c;
	while (vio_vq_pop(vq, &c, iov, MAX_IOV) == 1) {
		struct virtio_blk_outhdr h;
		struct vio_cursor cur;
		vio_cursor_init(&cur, c.out, c.nr_out);
		REQUIRE(vio_cursor_read(&cur, &h, sizeof(h)) == sizeof(h));
		REQUIRE(c.in_len >= 1);
		uint32_t data = c.in_len - 1, honest = 1;
		struct vio_cursor w;
		vio_cursor_init(&w, c.in, c.nr_in);
		if (le32toh(h.type) == VIRTIO_BLK_T_IN && hd.write_data) {
			for (uint32_t k = 0; k < data; k++)
				vio_cursor_write(&w, &hd.fill, 1);
			honest += data;
		} else if (le32toh(h.type) == VIRTIO_BLK_T_GET_ID) {
			vio_cursor_write(&w, test_id, sizeof(test_id));
			honest += sizeof(test_id);
		}
		const struct vio_iov *last = &c.in[c.nr_in - 1];
		((uint8_t *)last->base)[last->len - 1] = hd.status;
		REQUIRE(vio_vq_push(vq, c.head, answer_len(honest, c.in_len)) ==
			0);
		hd.answered++;
	}
	vio_vq_call(vq);
	return false;
}

static int ok_status(struct vio_device *dev, uint8_t o, uint8_t n)
{
	(void)dev;
	(void)o;
	(void)n;
	return 0;
}

static void no_reset(struct vio_device *dev)
{
	(void)dev;
}

static const struct vio_device_ops blk_ops = {
    .status = ok_status, .reset = no_reset, .kick = blk_kick};

static struct vio_device *blk_dev_new(bool packed)
{
	static const unsigned bits[] = {
	    VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_BLK_F_FLUSH,
	    VIRTIO_F_RING_PACKED};
	struct virtio_blk_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = htole64(CAP_SECTORS);
	struct vio_device_opts c = {
	    .name = "hostile-blk",
	    .device_id = VIRTIO_ID_BLOCK,
	    .features = vio_features_from(bits, packed ? 4 : 3),
	    .num_queues = 1,
	    .queue_max_size = 64,
	    .config = &cfg,
	    .config_size = sizeof(cfg),
	    .ops = &blk_ops,
	};
	return vio_device_new(&c);
}

struct rig {
	struct vio_mem *mem;
	struct vio_device *dev;
	struct stub st;
	struct vio_drvdev *vdev;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_blk *b;
};

static void rig_up(struct rig *r, bool packed)
{
	memset(r, 0, sizeof(*r));
	memset(&hd, 0, sizeof(hd));
	r->mem = vio_mem_new();
	r->dev = blk_dev_new(packed);
	REQUIRE(r->mem && r->dev);
	r->vdev = stub_init(&r->st, r->dev, r->mem);
	r->bus = vio_bus_new();
	struct vio_blk_driver_opts dc = {.queue_depth = 4, .bounce_size = 4096};
	r->drv = vio_blk_driver_new(&dc);
	REQUIRE(r->vdev && r->bus && r->drv);
	REQUIRE(vio_bus_register(r->bus, r->drv) == 0);
	REQUIRE(vio_bus_add(r->bus, r->vdev) == 0);
	r->b = vio_blk_from_vdev(r->vdev);
	REQUIRE(r->b);
	CHECK_EQ(vio_blk_has_feature(r->b, VIRTIO_F_RING_PACKED), packed);
}

static void rig_down(struct rig *r)
{
	vio_bus_remove(r->bus, r->vdev);
	vio_bus_unregister(r->bus, r->drv);
	vio_bus_free(r->bus);
	vio_blk_driver_free(r->drv);
	vio_drvdev_free(r->vdev);
	vio_device_free(r->dev);
	stub_fini(&r->st);
	vio_mem_free(r->mem);
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void honest(void)
{
	hd.status = VIRTIO_BLK_S_OK;
	hd.write_data = true;
	hd.mode = LEN_HONEST;
}

/* A READ through the bounce buffers: an earlier read left 0xaa in the
 * slot's bounce buffer; a lying device must not hand it out again. */
static void test_blk_read_copy(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	uint8_t buf[4096];

	honest();
	hd.fill = 0xaa;
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, sizeof(buf)), 0);
	CHECK(all_bytes(buf, sizeof(buf), 0xaa));

	struct {
		bool write_data;
		enum len_mode mode;
		uint32_t fixed, minus;
	} lies[] = {
	    {false, LEN_FIXED, 1, 0},	/* only the status byte */
	    {false, LEN_FIXED, 0, 0},	/* nothing at all */
	    {true, LEN_MINUS, 0, 1},	/* one byte short */
	    {false, LEN_FIXED, 513, 0}, /* one sector of eight */
	};
	vio_log_set_quiet(1);
	for (unsigned i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		hd.status = VIRTIO_BLK_S_OK;
		hd.write_data = lies[i].write_data;
		hd.fill = 0x55;
		hd.mode = lies[i].mode;
		hd.fixed_len = lies[i].fixed;
		hd.minus = lies[i].minus;
		memset(buf, 0, sizeof(buf));
		int res = vio_blk_read(r.b, 0, 0, buf, sizeof(buf));
		if (res != -EIO)
			fprintf(stderr, "%s lie %u: read returned %d\n",
				packed ? "packed" : "split", i, res);
		CHECK_EQ(res, -EIO);
		/* nothing copied out: neither stale 0xaa nor partial data */
		CHECK(all_bytes(buf, sizeof(buf), 0));
	}
	vio_log_set_quiet(0);

	/* the request failed, not the queue */
	honest();
	hd.fill = 0x77;
	CHECK_EQ(vio_blk_read(r.b, 0, 512, buf, sizeof(buf)), 0);
	CHECK(all_bytes(buf, sizeof(buf), 0x77));

	/* a status other than OK with the length of the status alone is a
	 * normal failure */
	hd.status = VIRTIO_BLK_S_IOERR;
	hd.write_data = false;
	hd.mode = LEN_FIXED;
	hd.fixed_len = 1;
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, sizeof(buf)), -EIO);

	/* a length beyond the chain breaks the queue (the ring's check) */
	honest();
	hd.mode = LEN_HUGE;
	vio_log_set_quiet(1);
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, sizeof(buf)), -EIO);
	vio_log_set_quiet(0);
	honest();
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, sizeof(buf)), -EIO);
	rig_down(&r);
}

/* A request cut into pieces (4 KiB bounce): only the last piece lies. */
static void test_blk_read_pieces(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	static uint8_t buf[16384];
	honest();
	hd.fill = 0x33;
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, sizeof(buf)), 0);
	CHECK(all_bytes(buf, sizeof(buf), 0x33));
	CHECK_EQ(hd.answered, 4);

	honest();
	hd.fill = 0x44;
	hd.answered = 0;
	hd.lie_from = 3;
	hd.mode = LEN_MINUS;
	hd.minus = 512;
	vio_log_set_quiet(1);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, sizeof(buf)), -EIO);
	vio_log_set_quiet(0);
	CHECK_EQ(hd.answered, 4);
	/* the lying piece (the last 4 KiB) was not copied out */
	CHECK(all_bytes(buf + 12288, 4096, 0));
	rig_down(&r);
}

/* A READ into the vdev's own memory (zero-copy): a short length fails
 * it too (the caller's buffer holds whatever the device wrote). */
static void test_blk_read_zc(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	uint64_t daddr;
	uint8_t *buf = vio_mem_alloc(r.mem, 4096, 4096, &daddr);
	REQUIRE(buf);
	honest();
	hd.fill = 0x21;
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, 4096), 0);
	CHECK(all_bytes(buf, 4096, 0x21));
	hd.mode = LEN_FIXED;
	hd.fixed_len = 1;
	vio_log_set_quiet(1);
	CHECK_EQ(vio_blk_read(r.b, 0, 0, buf, 4096), -EIO);
	vio_log_set_quiet(0);
	vio_mem_release(r.mem, buf);
	rig_down(&r);
}

/* WRITE, FLUSH: an OK answer with length 0 did not write the status. */
static void test_blk_write_flush(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	uint8_t buf[1024];
	memset(buf, 0x5a, sizeof(buf));
	honest();
	CHECK_EQ(vio_blk_write(r.b, 0, 0, buf, sizeof(buf)), 0);
	CHECK_EQ(vio_blk_flush(r.b, 0), 0);
	hd.mode = LEN_FIXED;
	hd.fixed_len = 0;
	vio_log_set_quiet(1);
	CHECK_EQ(vio_blk_write(r.b, 0, 0, buf, sizeof(buf)), -EIO);
	CHECK_EQ(vio_blk_flush(r.b, 0), -EIO);
	vio_log_set_quiet(0);
	/* a longer length than the status byte is not a lie for a write
	 * (the device wrote the status; the length is only a hint) */
	hd.fixed_len = 1;
	CHECK_EQ(vio_blk_write(r.b, 0, 0, buf, sizeof(buf)), 0);
	rig_down(&r);
}

/* GET_ID: only the id bytes the length covers. */
static void test_blk_get_id(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	char id[21];
	honest();
	CHECK_EQ(vio_blk_get_id(r.b, 0, id), 0);
	CHECK(strcmp(id, "ABCDEFGHIJKLMNOPQRST") == 0);
	hd.mode = LEN_FIXED;
	hd.fixed_len = 6; /* five id bytes and the status */
	CHECK_EQ(vio_blk_get_id(r.b, 0, id), 0);
	CHECK(strcmp(id, "ABCDE") == 0);
	hd.fixed_len = 1; /* an empty id */
	CHECK_EQ(vio_blk_get_id(r.b, 0, id), 0);
	CHECK_EQ(id[0], 0);
	hd.fixed_len = 0;
	vio_log_set_quiet(1);
	CHECK_EQ(vio_blk_get_id(r.b, 0, id), -EIO);
	vio_log_set_quiet(0);
	CHECK_EQ(id[0], 0);
	rig_down(&r);
}

/* ---- rng ---- */

/* Each buffer: filled entirely with the next letter, answered with the
 * next length of rng_lens (cycling). */
static const uint32_t *rng_lens;
static unsigned rng_nlens, rng_next;
static uint8_t rng_letter;

static bool rng_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	(void)dev;
	(void)idx;
	struct vio_iov iov[MAX_IOV];
	struct vio_chain c;
	while (vio_vq_pop(vq, &c, iov, MAX_IOV) == 1) {
		uint8_t v = rng_letter++;
		for (unsigned k = 0; k < c.nr_in; k++)
			memset(c.in[k].base, v, c.in[k].len);
		uint32_t l = rng_lens[rng_next++ % rng_nlens];
		if (l == UINT32_MAX)
			l = c.in_len + 1;
		REQUIRE(vio_vq_push(vq, c.head, l) == 0);
	}
	vio_vq_call(vq);
	return false;
}

static const struct vio_device_ops rng_ops = {
    .status = ok_status, .reset = no_reset, .kick = rng_kick};

static void rng_run(bool packed, const uint32_t *lens, unsigned nlens,
		    uint8_t *out, size_t len, ssize_t *res)
{
	static const unsigned bits[] = {VIRTIO_F_VERSION_1,
					VIRTIO_F_RING_PACKED};
	struct vio_device_opts c = {
	    .name = "hostile-rng",
	    .device_id = VIRTIO_ID_RNG,
	    .features = vio_features_from(bits, packed ? 2 : 1),
	    .num_queues = 1,
	    .queue_max_size = 8,
	    .ops = &rng_ops,
	};
	rng_lens = lens;
	rng_nlens = nlens;
	rng_next = 0;
	rng_letter = 'a';
	struct vio_mem *mem = vio_mem_new();
	struct vio_device *dev = vio_device_new(&c);
	REQUIRE(mem && dev);
	struct stub st;
	struct vio_drvdev *vdev = stub_init(&st, dev, mem);
	struct vio_bus *bus = vio_bus_new();
	REQUIRE(vdev && bus);
	REQUIRE(vio_bus_register(bus, &vio_rng_driver) == 0);
	REQUIRE(vio_bus_add(bus, vdev) == 0);
	*res = vio_rng_read(vdev, out, len);
	vio_bus_remove(bus, vdev);
	vio_bus_unregister(bus, &vio_rng_driver);
	vio_bus_free(bus);
	vio_drvdev_free(vdev);
	vio_device_free(dev);
	stub_fini(&st);
	vio_mem_free(mem);
}

static void test_rng(bool packed)
{
	/* short lengths: exactly those bytes, buffer after buffer */
	static const uint32_t lens[] = {3, 1, 5, 0, 2};
	uint8_t out[11];
	ssize_t n;
	rng_run(packed, lens, 5, out, sizeof(out), &n);
	CHECK_EQ(n, (ssize_t)sizeof(out));
	/* a:3 b:1 c:5 d:0 (skipped) e:2 */
	CHECK(memcmp(out,
		     "aaabccccc"
		     "ee",
		     sizeof(out)) == 0);

	/* a length beyond the buffer: the queue breaks, the read fails */
	static const uint32_t bad[] = {UINT32_MAX};
	vio_log_set_quiet(1);
	rng_run(packed, bad, 1, out, sizeof(out), &n);
	vio_log_set_quiet(0);
	CHECK_EQ(n, -EIO);

	/* a length beyond the buffer after good bytes: the good ones */
	static const uint32_t late[] = {4, UINT32_MAX};
	memset(out, 0, sizeof(out));
	vio_log_set_quiet(1);
	rng_run(packed, late, 2, out, sizeof(out), &n);
	vio_log_set_quiet(0);
	CHECK_EQ(n, 4);
	CHECK(memcmp(out, "aaaa", 4) == 0);
	CHECK(all_bytes(out + 4, sizeof(out) - 4, 0));
}

int main(void)
{
	for (int p = 0; p < 2; p++) {
		test_blk_read_copy(p);
		test_blk_read_pieces(p);
		test_blk_read_zc(p);
		test_blk_write_flush(p);
		test_blk_get_id(p);
		test_rng(p);
	}
	return test_result("driver_used");
}
