/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the device side, on a legal chain with more segments than
 * the queue's per-chain array (vio_vq_pop's -E2BIG, issue 12 item 6).
 * The device's memory table cuts the driver's memory into 512-byte
 * regions, so one 600 KiB descriptor is 1200 segments, more than
 * vio_vq_iov_max(64) = 1088.  The device answers IOERR through the
 * status byte (used length 1) and writes nothing else; with the status
 * byte inside the long descriptor, it still finds it (the ring hands over
 * only that last byte); a too-long request without a writable byte comes
 * back with used length 0.  The queue is never broken: reads and writes
 * that fit keep working, before and after, split and packed.
 */
#include "blk_env.h"

#define STRIPE 512u
#define BIG (600u << 10)

static bool all_ee(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0xee)
			return false;
	return true;
}

static void run_all(bool packed)
{
	struct tenv e;
	struct opts o = {.packed = packed, .stripe = STRIPE};
	REQUIRE(env_open(&e, &o));
	static uint8_t data[8192];
	fill_pattern(data, sizeof(data), packed);

	/* a request that fits, first */
	write_sectors(&e, 0, 8, data, sizeof(data), 3, VIRTIO_BLK_S_OK);
	read_sectors(&e, 0, 8, data, sizeof(data), 3);

	/* IN: header, 600 KiB in one descriptor (1200 segments), status */
	struct rq r;
	rq_init(&r, &e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	uint8_t *buf = rq_in(&r, BIG);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	CHECK(all_ee(buf, BIG));
	CHECK(!vio_vq_broken(e.drv[0]));

	/* the status byte is the last byte of the long descriptor: the
	 * ring gives only that byte */
	rq_init(&r, &e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	buf = rq_in(&r, BIG + 1);
	r.status = buf + BIG;
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	CHECK(all_ee(buf, BIG));

	/* OUT of 600 KiB with no writable byte: nothing to answer in */
	rq_init(&r, &e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	uint8_t *p = balloc(&e, 0, BIG);
	memset(p, 0x5a, BIG);
	rq_seg(&r, p, BIG, false);
	CHECK_EQ(rq_run(&r), 0);

	/* nothing reached the image, and the queue still serves */
	read_sectors(&e, 0, 8, data, sizeof(data), 3);
	rw_crossing(&e, 100, 4, 4096, STRIPE, 100, VIRTIO_BLK_S_OK);
	write_sectors(&e, 0, 40, data, sizeof(data), 5, VIRTIO_BLK_S_OK);
	read_sectors(&e, 0, 40, data, sizeof(data), 2);
	printf("%s: too-long chains answered (IOERR, len 1; len 0 without "
	       "status), queue kept\n",
	       packed ? "packed" : "split");
	env_close(&e);
}

int main(void)
{
	blk_tmpdir_setup();
	for (int packed = 0; packed < 2; packed++)
		run_all(packed);
	return test_result("blk_pop_limits");
}
