/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk device unit tests: request validation and limits (the
 * environment is blk_env.h).  With both I/O backends and both ring
 * formats:
 *   - the validation table: every malformed request gets the right status
 *     (or, without a status byte, length 0) and writes nothing;
 *   - readonly refusals;
 *   - seg_max and size_max per descriptor, whatever memory regions a
 *     descriptor's bytes cross.
 */
#include <sys/stat.h>

#include "blk_env.h"

/* Every malformed request: the right status, nothing written. */
static void test_validation(struct tenv *e)
{
	static uint8_t data[8192], before[IMG_BYTES];
	struct rq r;
	fill_pattern(data, sizeof(data), 9);
	REQUIRE(pread(e->fd, before, IMG_BYTES, 0) == (ssize_t)IMG_BYTES);
	vio_log_set_quiet(1);

	/* sector range */
	write_sectors(e, 0, IMG_SECTORS, data, 512, 1, VIRTIO_BLK_S_IOERR);
	write_sectors(e, 0, IMG_SECTORS - 1, data, 1024, 1, VIRTIO_BLK_S_IOERR);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, IMG_SECTORS);
	rq_in(&r, 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	/* sector * 512 overflows 64 bits, or lands near the top */
	write_sectors(e, 0, UINT64_MAX, data, 512, 1, VIRTIO_BLK_S_IOERR);
	write_sectors(e, 0, UINT64_MAX / 512 + 1, data, 512, 1,
		      VIRTIO_BLK_S_IOERR);
	write_sectors(e, 0, 1ull << 55, data, 512, 1, VIRTIO_BLK_S_IOERR);

	/* data length not a multiple of 512 */
	write_sectors(e, 0, 0, data, 513, 1, VIRTIO_BLK_S_IOERR);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_in(&r, 100);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);

	/* header shorter than 16 bytes */
	rq_init(&r, e, 0);
	rq_seg(&r, rq_hdr_bytes(&r, VIRTIO_BLK_T_FLUSH, 0), 8, false);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	/* no header at all */
	rq_init(&r, e, 0);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);

	/* no writable byte for the status: pushed with length 0 */
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	rq_out(&r, data, 512);
	CHECK_EQ(rq_run(&r), 0);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
	CHECK_EQ(rq_run(&r), 0);

	/* status not last: the device answers in the last writable byte;
	 * an OUT with writable bytes besides the status is refused */
	{
		rq_init(&r, e, 0);
		rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
		uint8_t *early = rq_in(&r, 1);
		uint8_t *tail = rq_in(&r, 512);
		r.status = tail + 511;
		EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
		CHECK_EQ(*early, 0xee);
		CHECK_EQ(tail[0], 0xee);
	}

	/* wrong direction: IN with readable data, OUT with writable data,
	 * FLUSH and GET_ID with data */
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_out(&r, data, 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	rq_in(&r, 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
	rq_out(&r, data, 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
	rq_in(&r, 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_GET_ID, 0);
	rq_out(&r, data, 20);
	rq_in(&r, 20);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);

	/* segment limits (this device: seg_max 8, size_max 4096) */
	write_sectors(e, 0, 0, data, 8 * 512, 9, VIRTIO_BLK_S_IOERR);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	rq_out(&r, data, 8192);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	for (int i = 0; i < 9; i++)
		rq_in(&r, 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);

	/* unknown types */
	uint32_t unknown[] = {2, 3, 5, 14, 0x55, VIRTIO_BLK_T_IN | 0x80000000u};
	for (unsigned i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		rq_init(&r, e, 0);
		rq_hdr(&r, unknown[i], 0);
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_UNSUPP, 1);
	}

	/* DISCARD / WRITE_ZEROES payloads */
	struct {
		uint32_t type;
		uint64_t sector;
		uint32_t num, flags;
		unsigned segs; /* copies of the segment */
		uint32_t trim; /* bytes cut off the payload */
		uint8_t want;
	} dwz[] = {
	    {VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 1,
	     0, VIRTIO_BLK_S_UNSUPP},
	    {VIRTIO_BLK_T_DISCARD, 0, 8, 4, 1, 0, VIRTIO_BLK_S_UNSUPP},
	    {VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2, 1, 0, VIRTIO_BLK_S_UNSUPP},
	    {VIRTIO_BLK_T_DISCARD, IMG_SECTORS - 4, 8, 0, 1, 0,
	     VIRTIO_BLK_S_IOERR},
	    {VIRTIO_BLK_T_WRITE_ZEROES, UINT64_MAX, 1, 0, 1, 0,
	     VIRTIO_BLK_S_IOERR},
	    {VIRTIO_BLK_T_WRITE_ZEROES, 0, 4194304, 0, 1, 0,
	     VIRTIO_BLK_S_IOERR},
	    {VIRTIO_BLK_T_DISCARD, 0, 8, 0, 1, 1, VIRTIO_BLK_S_IOERR},
	    {VIRTIO_BLK_T_DISCARD, 0, 8, 0, 0, 0, VIRTIO_BLK_S_IOERR},
	    {VIRTIO_BLK_T_DISCARD, 0, 1, 0, 33, 0, VIRTIO_BLK_S_UNSUPP},
	    /* one good segment, then a bad one: nothing is done */
	    {VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0, 2, 0, VIRTIO_BLK_S_IOERR},
	};
	for (unsigned i = 0; i < sizeof(dwz) / sizeof(dwz[0]); i++) {
		static struct virtio_blk_discard_write_zeroes d[40];
		for (unsigned k = 0; k < dwz[i].segs; k++) {
			d[k].sector = htole64(dwz[i].sector);
			d[k].num_sectors = htole32(dwz[i].num);
			d[k].flags = htole32(dwz[i].flags);
		}
		if (i == sizeof(dwz) / sizeof(dwz[0]) - 1)
			d[1].sector = htole64(IMG_SECTORS);
		rq_init(&r, e, 0);
		rq_hdr(&r, dwz[i].type, 0);
		uint32_t plen = dwz[i].segs * 16 - dwz[i].trim;
		if (plen)
			rq_out(&r, d, plen);
		rq_status(&r);
		long l = rq_run(&r);
		CHECK_EQ(l, 1);
		if (*r.status != dwz[i].want)
			fprintf(stderr, "dwz case %u: status %u\n", i,
				*r.status);
		CHECK_EQ(*r.status, dwz[i].want);
	}

	vio_log_set_quiet(0);
	/* nothing above changed the disk, nor its size */
	CHECK(file_equals(e, 0, before, IMG_BYTES));
	struct stat st;
	CHECK(fstat(e->fd, &st) == 0 && st.st_size == IMG_BYTES);
	/* and the queue still works */
	read_sectors(e, 0, 0, before, 4096, 3);
}

static void test_readonly(struct tenv *e)
{
	static uint8_t data[4096], before[4096];
	struct rq r;
	REQUIRE(pread(e->fd, before, sizeof(before), 0) == sizeof(before));
	fill_pattern(data, sizeof(data), 3);
	CHECK(vio_device_has_feature(e->dev, VIRTIO_BLK_F_RO));
	CHECK(!vio_device_has_feature(e->dev, VIRTIO_BLK_F_DISCARD));
	write_sectors(e, 0, 0, data, 4096, 2, VIRTIO_BLK_S_IOERR);
	struct virtio_blk_discard_write_zeroes d = {0, htole32(8), 0};
	uint32_t types[] = {VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES};
	for (int i = 0; i < 2; i++) {
		rq_init(&r, e, 0);
		rq_hdr(&r, types[i], 0);
		rq_out(&r, &d, sizeof(d));
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	}
	CHECK(file_equals(e, 0, before, sizeof(before)));
	read_sectors(e, 0, 0, before, 4096, 1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_OK, 1);
}

/* seg_max 8 and size_max 4096 are per descriptor (5.2.4), however many
 * regions a descriptor's bytes touch.  Memory in 512-byte regions. */
static void test_crossing_limits(struct tenv *e)
{
	/* one data descriptor over 2, 3 and 9 regions */
	rw_crossing(e, 0, 1, 512, 512, 256, VIRTIO_BLK_S_OK);
	rw_crossing(e, 8, 1, 1024, 512, 100, VIRTIO_BLK_S_OK);
	rw_crossing(e, 16, 1, 4096, 512, 100, VIRTIO_BLK_S_OK);
	/* exactly seg_max descriptors, each over 3 regions (24 pieces) */
	rw_crossing(e, 32, 8, 1024, 512, 300, VIRTIO_BLK_S_OK);
	/* the limits still hold: seg_max + 1 descriptors (each in one
	 * region), one descriptor of size_max + 512 */
	vio_log_set_quiet(1);
	rw_crossing(e, 64, 9, 512, 512, 0, VIRTIO_BLK_S_IOERR);
	rw_crossing(e, 64, 1, 4096 + 512, 512, 0, VIRTIO_BLK_S_IOERR);
	vio_log_set_quiet(0);
	/* header and data in one descriptor over regions: data is 4096 */
	{
		static uint8_t data[4096];
		fill_pattern(data, sizeof(data), 5);
		struct rq r;
		rq_init(&r, e, 0);
		uint8_t *h = balloc_at(e, 0, 16 + 4096, 512, 500);
		struct virtio_blk_outhdr hdr = {htole32(VIRTIO_BLK_T_OUT), 0,
						htole64(80)};
		memcpy(h, &hdr, 16);
		memcpy(h + 16, data, sizeof(data));
		rq_seg(&r, h, 16 + 4096, false);
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_OK, 1);
		CHECK(file_equals(e, 80 * 512, data, sizeof(data)));
	}
}

/* size_max 4096, memory in 4096-byte regions: a descriptor of 4608
 * bytes is two pieces of 2048 and 2560, each under size_max, and still
 * one segment larger than size_max. */
static void test_size_max_split(struct tenv *e)
{
	rw_crossing(e, 0, 1, 4096, 4096, 2048, VIRTIO_BLK_S_OK);
	rw_crossing(e, 16, 8, 4096, 4096, 1000, VIRTIO_BLK_S_OK);
	vio_log_set_quiet(1);
	rw_crossing(e, 0, 1, 4096 + 512, 4096, 2048, VIRTIO_BLK_S_IOERR);
	rw_crossing(e, 0, 2, 4096 + 512, 4096, 3000, VIRTIO_BLK_S_IOERR);
	vio_log_set_quiet(0);
	rw_crossing(e, 0, 2, 4096, 4096, 3000, VIRTIO_BLK_S_OK);
}

static void run_all(bool uring, bool packed)
{
	struct tenv e;
	struct opts o = {.uring = uring, .packed = packed};
	const char *name = packed ? "packed" : "split";
	printf("backend %s, %s ring\n", uring ? "io_uring" : "sync", name);

	o.file = "disk.img";
	o.seg_max = 8;
	o.size_max = 4096;
	if (!env_open(&e, &o))
		return;
	test_validation(&e);
	env_close(&e);
	o.seg_max = o.size_max = 0;

	/* the image the validation left, read-only */
	o.readonly = true;
	if (env_open(&e, &o)) {
		test_readonly(&e);
		env_close(&e);
	}
	o.readonly = false;

	/* descriptors across region boundaries */
	o.file = "cross.img";
	o.stripe = 512;
	o.seg_max = 8;
	o.size_max = 4096;
	if (env_open(&e, &o)) {
		test_crossing_limits(&e);
		env_close(&e);
	}
	o.stripe = 4096;
	if (env_open(&e, &o)) {
		test_size_max_split(&e);
		env_close(&e);
	}
	o.seg_max = o.size_max = 0;
	o.stripe = 0;
}

int main(void)
{
	blk_tmpdir_setup();
	for (int uring = 1; uring >= 0; uring--)
		for (int packed = 0; packed < 2; packed++)
			run_all(uring, packed);

	return test_result("blk_device_limits");
}
