/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk device unit tests: the data path and workloads (the
 * environment is blk_env.h).
 *
 * Every test runs with both I/O backends (io_uring when it works, and the
 * synchronous one) and both ring formats:
 *   - roundtrips: OUT/IN/FLUSH/GET_ID/DISCARD/WRITE_ZEROES, checked
 *     against the file; a seeded random workload against a shadow copy;
 *     both again over memory cut into 512-byte regions;
 *   - writethrough (FLUSH not negotiated);
 *   - two queues driven from two threads at once;
 *   - the image shrinking under the device;
 *   - busy-poll picks up a request without a kick; drain;
 *   - config space and features.
 * Request validation and limits: test_blk_device_limits.c; image
 * creation, config writes and the bounded kick: test_blk_device_config.c.
 */
#include <pthread.h>
#include <time.h>

#include "blk_env.h"

/* ---- the tests ---- */

static void test_roundtrips(struct tenv *e)
{
	static uint8_t data[64 << 10];
	fill_pattern(data, sizeof(data), 1);

	/* OUT then IN, several segment shapes */
	write_sectors(e, 0, 0, data, 4096, 3, VIRTIO_BLK_S_OK);
	CHECK(file_equals(e, 0, data, 4096));
	read_sectors(e, 0, 0, data, 4096, 2);
	write_sectors(e, 0, 100, data, sizeof(data), 16, VIRTIO_BLK_S_OK);
	CHECK(file_equals(e, 100 * 512, data, sizeof(data)));
	read_sectors(e, 0, 100, data, sizeof(data), 7);
	/* the last sector of the disk */
	write_sectors(e, 0, IMG_SECTORS - 1, data + 512, 512, 1,
		      VIRTIO_BLK_S_OK);
	CHECK(file_equals(e, IMG_BYTES - 512, data + 512, 512));
	read_sectors(e, 0, IMG_SECTORS - 1, data + 512, 512, 1);

	/* any layout (2.6.4): header and data in one segment; data and
	 * status in one segment; a header split in two */
	{
		struct rq r;
		rq_init(&r, e, 0);
		uint8_t *h = rq_hdr_bytes(&r, VIRTIO_BLK_T_OUT, 8);
		memcpy(h + 16, data + 1000, 1024);
		rq_seg(&r, h, 16 + 1024, false);
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_OK, 1);
		CHECK(file_equals(e, 8 * 512, data + 1000, 1024));

		rq_init(&r, e, 0);
		h = rq_hdr_bytes(&r, VIRTIO_BLK_T_IN, 8);
		rq_seg(&r, h, 10, false);
		rq_seg(&r, h + 10, 6, false);
		uint8_t *p = rq_in(&r, 1024 + 1);
		r.status = p + 1024;
		EXPECT(&r, VIRTIO_BLK_S_OK, 1025);
		CHECK(memcmp(p, data + 1000, 1024) == 0);
	}

	/* FLUSH */
	{
		struct rq r;
		rq_init(&r, e, 0);
		rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_OK, 1);
	}

	/* GET_ID: 20 bytes, "vio-blk-" and a hash */
	{
		struct rq r;
		rq_init(&r, e, 0);
		rq_hdr(&r, VIRTIO_BLK_T_GET_ID, 0);
		uint8_t *id = rq_in(&r, VIRTIO_BLK_ID_BYTES);
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_OK, VIRTIO_BLK_ID_BYTES + 1);
		CHECK(memcmp(id, "vio-blk-", 8) == 0);
		CHECK_EQ(id[16], 0);
		CHECK_EQ(id[19], 0);
	}

	/* DISCARD two ranges; WRITE_ZEROES with and without unmap */
	write_sectors(e, 0, 200, data, 32768, 4, VIRTIO_BLK_S_OK);
	{
		struct virtio_blk_discard_write_zeroes d[2] = {
		    {htole64(200), htole32(8), 0},
		    {htole64(216), htole32(16), 0},
		};
		struct rq r;
		rq_init(&r, e, 0);
		rq_hdr(&r, VIRTIO_BLK_T_DISCARD, 0);
		rq_out(&r, d, sizeof(d));
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_OK, 1);
		CHECK(file_is_zero(e, 200 * 512, 8 * 512));
		CHECK(file_equals(e, 208 * 512, data + 8 * 512, 8 * 512));
		CHECK(file_is_zero(e, 216 * 512, 16 * 512));

		struct virtio_blk_discard_write_zeroes z[2] = {
		    {htole64(208), htole32(4), 0},
		    {htole64(232), htole32(8),
		     htole32(VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)},
		};
		rq_init(&r, e, 0);
		rq_hdr(&r, VIRTIO_BLK_T_WRITE_ZEROES, 0);
		rq_out(&r, z, sizeof(z));
		rq_status(&r);
		EXPECT(&r, VIRTIO_BLK_S_OK, 1);
		CHECK(file_is_zero(e, 208 * 512, 4 * 512));
		CHECK(file_equals(e, 212 * 512, data + 12 * 512, 4 * 512));
		CHECK(file_is_zero(e, 232 * 512, 8 * 512));
		CHECK(file_equals(e, 240 * 512, data + 40 * 512, 24 * 512));
	}
}

/* Seeded random workload: batches of reads and writes with random
 * shapes, many per kick (several device batches), against a shadow. */
static void test_random(struct tenv *e, uint64_t seed)
{
	static uint8_t shadow[IMG_BYTES];
	static uint8_t buf[QSZ][16 << 10];
	struct rq rqs[QSZ];
	struct {
		bool read;
		uint64_t sector;
		uint32_t len;
		uint8_t *p[8];
		uint32_t l[8];
		unsigned n;
	} info[QSZ];
	uint64_t rs = seed;
	unsigned bad = 0, done = 0;

	REQUIRE(pread(e->fd, shadow, IMG_BYTES, 0) == (ssize_t)IMG_BYTES);
	for (unsigned round = 0; round < 40; round++) {
		unsigned batch = 1 + test_rand(&rs) % QSZ;
		for (unsigned k = 0; k < batch; k++) {
			struct rq *r = &rqs[k];
			uint32_t nsec = 1 + test_rand(&rs) % 32;
			/* one 32-sector slot per request: nothing in a batch
			 * overlaps anything else in it */
			uint64_t sector =
			    k * 32u + test_rand(&rs) % (33 - nsec);
			uint32_t len = nsec * 512;
			unsigned nseg = 1 + test_rand(&rs) % 4, s = 0;
			info[k].read = test_rand(&rs) % 2;
			info[k].sector = sector;
			info[k].len = len;
			rq_init(r, e, 0);
			rq_hdr(r,
			       info[k].read ? VIRTIO_BLK_T_IN
					    : VIRTIO_BLK_T_OUT,
			       sector);
			fill_pattern(buf[k], len, test_rand(&rs));
			for (uint32_t off = 0; off < len; s++) {
				uint32_t left = len - off;
				uint32_t l = s + 1 == nseg
						 ? left
						 : 1 + test_rand(&rs) % left;
				if (info[k].read) {
					info[k].p[s] = rq_in(r, l);
				} else {
					rq_out(r, buf[k] + off, l);
					memcpy(shadow + sector * 512 + off,
					       buf[k] + off, l);
				}
				info[k].l[s] = l;
				off += l;
			}
			info[k].n = s;
			rq_status(r);
			rq_add(r);
		}
		kick(e, 0);
		uint32_t len;
		struct rq *r;
		unsigned got = 0;
		while ((r = vio_vq_get(e->drv[0], &len))) {
			unsigned k = (unsigned)(r - rqs);
			got++;
			if (*r->status != VIRTIO_BLK_S_OK) {
				bad++;
				continue;
			}
			if (!info[k].read) {
				bad += len != 1;
				continue;
			}
			bad += len != info[k].len + 1;
			uint32_t off = 0;
			for (unsigned s = 0; s < info[k].n; s++) {
				/* reads see the shadow as it was before this
				 * batch's writes: slots are disjoint */
				if (memcmp(info[k].p[s],
					   shadow + info[k].sector * 512 + off,
					   info[k].l[s]))
					bad++;
				off += info[k].l[s];
			}
		}
		CHECK_EQ(got, batch);
		done += got;
	}
	CHECK_EQ(bad, 0);
	CHECK(file_equals(e, 0, shadow, IMG_BYTES));
	printf("  random: %u requests\n", done);
}

static void test_config(struct tenv *e, unsigned nq)
{
	struct virtio_blk_config bc;
	REQUIRE(vio_device_config_size(e->dev) == sizeof(bc));
	CHECK_EQ(vio_device_config_read(e->dev, 0, &bc, sizeof(bc)), 0);
	CHECK_EQ(le64toh(bc.capacity), IMG_SECTORS);
	CHECK_EQ(le32toh(bc.seg_max), QSZ - 2);
	CHECK_EQ(le32toh(bc.size_max), 1u << 20);
	CHECK_EQ(le32toh(bc.blk_size), 512);
	CHECK_EQ(le16toh(bc.num_queues), nq);
	CHECK_EQ(le32toh(bc.max_discard_seg), 32);
	CHECK_EQ(le32toh(bc.max_write_zeroes_seg), 32);
	CHECK_EQ(le32toh(bc.discard_sector_alignment), 1);
	CHECK(le32toh(bc.max_discard_sectors) > 0);
	CHECK_EQ(bc.write_zeroes_may_unmap, 1);
	CHECK_EQ(vio_device_device_id(e->dev), VIRTIO_ID_BLOCK);
	struct vio_features f;
	vio_device_offered(e->dev, &f);
	unsigned want[] = {VIRTIO_BLK_F_SEG_MAX,       VIRTIO_BLK_F_SIZE_MAX,
			   VIRTIO_BLK_F_BLK_SIZE,      VIRTIO_BLK_F_FLUSH,
			   VIRTIO_BLK_F_TOPOLOGY,      VIRTIO_BLK_F_DISCARD,
			   VIRTIO_BLK_F_WRITE_ZEROES,  VIRTIO_F_VERSION_1,
			   VIRTIO_F_RING_PACKED,       VIRTIO_RING_F_EVENT_IDX,
			   VIRTIO_RING_F_INDIRECT_DESC};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(vio_features_has(&f, want[i]));
	CHECK_EQ(vio_features_has(&f, VIRTIO_BLK_F_MQ), nq > 1);
	CHECK(!vio_features_has(&f, VIRTIO_BLK_F_RO));
}

/* Two queues, two threads, disjoint halves of the disk. */
struct mq_arg {
	struct tenv *e;
	unsigned q;
	unsigned bad;
};

static void *mq_thread(void *p)
{
	struct mq_arg *a = p;
	struct tenv *e = a->e;
	static uint8_t data[2][32 << 10];
	uint8_t *d = data[a->q];
	uint64_t base = a->q * (IMG_SECTORS / 2);
	for (unsigned round = 0; round < 20; round++) {
		struct rq rqs[16];
		fill_pattern(d, sizeof(data[0]), round * 2 + a->q);
		for (unsigned k = 0; k < 16; k++) {
			rq_init(&rqs[k], e, a->q);
			rq_hdr(&rqs[k], VIRTIO_BLK_T_OUT, base + k * 4);
			rq_out(&rqs[k], d + k * 2048, 2048);
			rq_status(&rqs[k]);
			rq_add(&rqs[k]);
		}
		kick(e, a->q);
		uint32_t len;
		struct rq *r;
		unsigned got = 0;
		while ((r = vio_vq_get(e->drv[a->q], &len))) {
			got++;
			a->bad += *r->status != VIRTIO_BLK_S_OK || len != 1;
		}
		a->bad += got != 16;
		struct rq rd;
		rq_init(&rd, e, a->q);
		rq_hdr(&rd, VIRTIO_BLK_T_IN, base);
		uint8_t *back = rq_in(&rd, 16 * 2048);
		rq_status(&rd);
		long l = rq_run(&rd);
		a->bad += l != 16 * 2048 + 1 || *rd.status != VIRTIO_BLK_S_OK ||
			  memcmp(back, d, 16 * 2048) != 0;
	}
	return NULL;
}

static void test_multiqueue(struct tenv *e)
{
	pthread_t t[2];
	struct mq_arg a[2] = {{e, 0, 0}, {e, 1, 0}};
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, mq_thread, &a[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(a[0].bad, 0);
	CHECK_EQ(a[1].bad, 0);
}

/* Busy-poll: a request added while the kick polls is served without a
 * second kick; drain ends the poll early. */
static void *poll_thread(void *p)
{
	struct tenv *e = p;
	vio_device_kick(e->dev, 0);
	return NULL;
}

static bool wait_used(struct tenv *e, struct rq *want, uint32_t *len,
		      unsigned ms)
{
	uint64_t end = vio_now_ns() + ms * 1000000ull;
	while (vio_now_ns() < end) {
		void *t = vio_vq_get(e->drv[0], len);
		if (t)
			return t == want;
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static void test_poll_drain(struct tenv *e)
{
	static uint8_t data[4096];
	fill_pattern(data, sizeof(data), 77);
	struct rq a, b;
	rq_init(&a, e, 0);
	rq_hdr(&a, VIRTIO_BLK_T_OUT, 40);
	rq_out(&a, data, 4096);
	rq_status(&a);
	rq_add(&a);
	vio_vq_kick(e->drv[0]);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, poll_thread, e) == 0);
	uint32_t len = 0;
	CHECK(wait_used(e, &a, &len, 5000));
	CHECK_EQ(*a.status, VIRTIO_BLK_S_OK);
	/* the kick is still polling (poll_us is 2 s): no kick for this */
	rq_init(&b, e, 0);
	rq_hdr(&b, VIRTIO_BLK_T_IN, 40);
	uint8_t *back = rq_in(&b, 4096);
	rq_status(&b);
	rq_add(&b);
	vio_vq_kick_prepare(e->drv[0]);
	CHECK(wait_used(e, &b, &len, 1500));
	CHECK_EQ(*b.status, VIRTIO_BLK_S_OK);
	CHECK(memcmp(back, data, 4096) == 0);
	uint64_t t0 = vio_now_ns();
	CHECK_EQ(vio_blk_device_drain(e->bd, 5000), 0);
	/* well before the 2 s poll window would have ended */
	CHECK(vio_now_ns() - t0 < 1500000000ull);
	pthread_join(t, NULL);
	CHECK_EQ(vio_blk_device_drain(e->bd, 0), 0);
}

/* The image shrinks under the device (another process truncated it):
 * reads past the new end fail cleanly, also half-way (a short read). */
static void test_shrink(struct tenv *e)
{
	struct rq r;
	int wfd = open(e->path, O_WRONLY | O_CLOEXEC);
	REQUIRE(wfd >= 0);
	CHECK(ftruncate(wfd, 100 * 512) == 0);
	close(wfd);
	vio_log_set_quiet(1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 96);
	rq_in(&r, 8 * 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 1000);
	rq_in(&r, 512);
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_IOERR, 1);
	vio_log_set_quiet(0);
	read_sectors(e, 0, 92, NULL, 8 * 512, 2);
	CHECK(unlink(e->path) == 0);
}

/* Default limits (seg_max 62), 512-byte regions: a request of seg_max
 * descriptors of 4 KiB, each over 9 regions, is 558 pieces, more than
 * twice the queue size: served, the queue not broken. */
static void test_many_pieces(struct tenv *e)
{
	rw_crossing(e, 0, QSZ - 2, 4096, 512, 7, VIRTIO_BLK_S_OK);
	CHECK(!vio_vq_broken(vio_device_queue(e->dev, 0)));
}

static void run_all(bool uring, bool packed)
{
	struct tenv e;
	struct opts o = {.uring = uring, .packed = packed};
	const char *name = packed ? "packed" : "split";
	printf("backend %s, %s ring\n", uring ? "io_uring" : "sync", name);

	o.file = "disk.img";
	if (!env_open(&e, &o))
		return;
	test_config(&e, 1);
	test_roundtrips(&e);
	test_random(&e, test_seed() ^ (uring * 2 + packed));
	env_close(&e);

	/* the driver leaves FLUSH out: writes are writethrough, and with
	 * CONFIG_WCE the config says so (5.2.5.2: writeback starts at 0) */
	o.no_flush = true;
	if (env_open(&e, &o)) {
		CHECK(!vio_device_has_feature(e.dev, VIRTIO_BLK_F_FLUSH));
		CHECK(vio_device_has_feature(e.dev, VIRTIO_BLK_F_CONFIG_WCE));
		uint8_t wce = 0xff;
		CHECK_EQ(vio_device_config_read(
			     e.dev, offsetof(struct virtio_blk_config, wce),
			     &wce, 1),
			 0);
		CHECK_EQ(wce, 0);
		test_random(&e, test_seed() + 17);
		env_close(&e);
	}
	o.no_flush = false;

	o.nq = 2;
	o.file = "mq.img";
	if (env_open(&e, &o)) {
		test_config(&e, 2);
		test_multiqueue(&e);
		env_close(&e);
	}
	o.nq = 1;

	o.file = "shrink.img";
	if (env_open(&e, &o)) {
		test_shrink(&e);
		env_close(&e);
	}

	o.poll = true;
	o.poll_us = 2000000;
	o.file = "poll.img";
	if (env_open(&e, &o)) {
		test_poll_drain(&e);
		env_close(&e);
	}
	o.poll = false;
	o.poll_us = 0;

	/* descriptors across region boundaries, default limits */
	o.file = "cross.img";
	o.stripe = 512;
	if (env_open(&e, &o)) {
		test_many_pieces(&e);
		test_roundtrips(&e);
		test_random(&e, test_seed() + 29);
		env_close(&e);
	}
	o.stripe = 0;
}

int main(void)
{
	blk_tmpdir_setup();
	for (int uring = 1; uring >= 0; uring--)
		for (int packed = 0; packed < 2; packed++)
			run_all(uring, packed);

	return test_result("blk_device");
}
