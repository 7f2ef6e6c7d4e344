/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk device unit tests.  The driver's end of each queue is a ring
 * layer driver vq on shared memory (vio_mem); the device is a real
 * vio_blk_device brought up through the model (status, features, queue
 * setup and enable, DRIVER_OK) and kicked with vio_dev_kick.  The image is
 * a file in a mkdtemp directory, checked with pread.
 *
 * Every test runs with both I/O backends (io_uring when it works, and the
 * synchronous one) and both ring formats:
 *   - roundtrips: OUT/IN/FLUSH/GET_ID/DISCARD/WRITE_ZEROES, checked
 *     against the file; a seeded random workload against a shadow copy;
 *   - the validation table: every malformed request gets the right status
 *     (or, without a status byte, length 0) and writes nothing;
 *   - readonly refusals; writethrough (FLUSH not negotiated);
 *   - two queues driven from two threads at once;
 *   - busy-poll picks up a request without a kick; drain;
 *   - image creation rules; config space and features.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test.h"
#include "util/log.h"
#include <vio/blk.h>
#include <vio/mem.h>

#define QSZ 64
#define IMG_SECTORS 2048u
#define IMG_BYTES (IMG_SECTORS * 512u)
#define ARENA (2u << 20)
#define MAXSG 80

static char tmpdir[256];

struct tenv {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_blk_device *bd;
	struct vio_dev *dev;
	unsigned nq;
	struct vio_vq *drv[2];
	uint8_t *arena[2];
	size_t used[2];
	int fd; /* the image, for pread */
	char path[300];
};

struct opts {
	bool packed;
	bool uring;
	bool no_flush; /* the driver does not ack VIRTIO_BLK_F_FLUSH */
	bool readonly;
	bool poll;
	unsigned poll_us;
	unsigned nq;
	uint32_t seg_max, size_max;
	/* the device's memory table splits the driver's memory into
	 * regions of stripe bytes, adjacent in device address space, so
	 * buffers cross region boundaries (0: one region) */
	uint32_t stripe;
	bool no_wce; /* the driver does not ack VIRTIO_BLK_F_CONFIG_WCE */
	const char *file;
};

static void path_of(char *out, size_t len, const char *file)
{
	snprintf(out, len, "%s/%s", tmpdir, file);
}

static bool env_open(struct tenv *e, const struct opts *o)
{
	memset(e, 0, sizeof(*e));
	e->nq = o->nq ? o->nq : 1;
	path_of(e->path, sizeof(e->path), o->file ? o->file : "disk.img");
	struct vio_blk_device_config c = {
	    .path = e->path,
	    .size = o->readonly ? 0 : IMG_BYTES,
	    .num_queues = e->nq,
	    .queue_size = QSZ,
	    .seg_max = o->seg_max,
	    .size_max = o->size_max,
	    .readonly = o->readonly,
	    .poll = o->poll,
	    .poll_us = o->poll_us,
	    .no_io_uring = !o->uring,
	};
	char err[256];
	e->bd = vio_blk_device_new(&c, err, sizeof(err));
	if (!e->bd)
		fprintf(stderr, "vio_blk_device_new: %s\n", err);
	REQUIRE(e->bd);
	if (o->uring && strcmp(vio_blk_device_backend(e->bd), "io_uring")) {
		printf("SKIP: io_uring backend unavailable here (got %s)\n",
		       vio_blk_device_backend(e->bd));
		vio_blk_device_free(e->bd);
		return false;
	}
	CHECK_EQ(vio_blk_device_capacity(e->bd), IMG_SECTORS);
	e->dev = vio_blk_device_dev(e->bd);
	e->fd = open(e->path, O_RDONLY | O_CLOEXEC);
	REQUIRE(e->fd >= 0);

	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 8 << 20, NULL) == 0);
	struct vio_region rr = *vio_mem_region(e->mem, 0);
	rr.fd = -1;
	if (o->stripe) {
		unsigned n = (unsigned)(rr.size / o->stripe);
		REQUIRE(rr.size % o->stripe == 0);
		e->mt = vio_memtable_new(n);
		REQUIRE(e->mt);
		for (unsigned i = 0; i < n; i++) {
			struct vio_region s = rr;
			s.addr = rr.addr + (uint64_t)i * o->stripe;
			s.size = o->stripe;
			s.ptr = (uint8_t *)rr.ptr + (size_t)i * o->stripe;
			s.uaddr = 0;
			REQUIRE(vio_memtable_add(e->mt, &s) == 0);
		}
	} else {
		e->mt = vio_memtable_new(8);
		REQUIRE(e->mt);
		REQUIRE(vio_memtable_add(e->mt, &rr) == 0);
	}

	/* the handshake (3.1.1) */
	struct vio_features f;
	vio_dev_offered(e->dev, &f);
	if (!o->packed)
		vio_features_clear(&f, VIRTIO_F_RING_PACKED);
	if (o->no_flush)
		vio_features_clear(&f, VIRTIO_BLK_F_FLUSH);
	if (o->no_wce)
		vio_features_clear(&f, VIRTIO_BLK_F_CONFIG_WCE);
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	CHECK_EQ(vio_dev_set_status(e->dev, s), 0);
	s |= VIRTIO_CONFIG_S_DRIVER;
	CHECK_EQ(vio_dev_set_status(e->dev, s), 0);
	CHECK_EQ(vio_dev_set_features(e->dev, &f), 0);
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	CHECK_EQ(vio_dev_set_status(e->dev, s), 0);
	for (unsigned i = 0; i < e->nq; i++) {
		struct vio_vq_config vc = {
		    .index = (uint16_t)i,
		    .size = QSZ,
		    .packed = o->packed,
		    .event_idx = true,
		    .indirect = true,
		    .name = "blk-test",
		};
		e->drv[i] = vio_vq_new_driver(&vc, e->mem);
		REQUIRE(e->drv[i]);
		struct vio_vq_layout l;
		vio_vq_get_layout(e->drv[i], &l);
		CHECK_EQ(vio_dev_queue_setup(e->dev, i, QSZ, &l, e->mt), 0);
		CHECK_EQ(vio_dev_queue_enable(e->dev, i, true), 0);
		uint64_t daddr;
		e->arena[i] = vio_mem_alloc(e->mem, ARENA, 4096, &daddr);
		REQUIRE(e->arena[i]);
	}
	s |= VIRTIO_CONFIG_S_DRIVER_OK;
	CHECK_EQ(vio_dev_set_status(e->dev, s), 0);
	return true;
}

static void env_close(struct tenv *e)
{
	CHECK_EQ(vio_blk_device_drain(e->bd, 1000), 0);
	for (unsigned i = 0; i < e->nq; i++)
		CHECK(!vio_vq_broken(e->drv[i]));
	vio_blk_device_free(e->bd);
	for (unsigned i = 0; i < e->nq; i++)
		vio_vq_free(e->drv[i]);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
	close(e->fd);
}

/* ---- building requests ---- */

struct rq {
	struct tenv *e;
	unsigned q;
	struct vio_sg sg[MAXSG];
	unsigned out, in;
	uint8_t *status; /* the byte the test expects the status in */
};

static void *balloc(struct tenv *e, unsigned q, size_t len)
{
	size_t off = (e->used[q] + 63) & ~(size_t)63;
	if (off + len > ARENA)
		off = 0; /* wrap: earlier requests are finished */
	e->used[q] = off + len;
	return e->arena[q] + off;
}

static void rq_init(struct rq *r, struct tenv *e, unsigned q)
{
	memset(r, 0, sizeof(*r));
	r->e = e;
	r->q = q;
}

static void rq_seg(struct rq *r, void *p, uint32_t len, bool write)
{
	REQUIRE(r->out + r->in < MAXSG);
	r->sg[r->out + r->in].buf = p;
	r->sg[r->out + r->in].len = len;
	if (write)
		r->in++;
	else
		r->out++;
}

static void *rq_hdr_bytes(struct rq *r, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr *h = balloc(r->e, r->q, sizeof(*h) + 1024);
	h->type = htole32(type);
	h->ioprio = 0;
	h->sector = htole64(sector);
	return h;
}

static void rq_hdr(struct rq *r, uint32_t type, uint64_t sector)
{
	rq_seg(r, rq_hdr_bytes(r, type, sector), 16, false);
}

/* readable data, copied from src */
static void rq_out(struct rq *r, const void *src, uint32_t len)
{
	void *p = balloc(r->e, r->q, len);
	memcpy(p, src, len);
	rq_seg(r, p, len, false);
}

/* writable buffer, filled with 0xee */
static uint8_t *rq_in(struct rq *r, uint32_t len)
{
	uint8_t *p = balloc(r->e, r->q, len);
	memset(p, 0xee, len);
	rq_seg(r, p, len, true);
	return p;
}

static void rq_status(struct rq *r)
{
	r->status = rq_in(r, 1);
}

static void rq_add(struct rq *r)
{
	REQUIRE(vio_vq_add(r->e->drv[r->q], r->sg, r->out, r->in, r) == 0);
}

/* A kick handles at most a ring's worth of chains: call until done. */
static void kick(struct tenv *e, unsigned q)
{
	vio_vq_kick(e->drv[q]);
	while (vio_dev_kick(e->dev, q))
		;
}

/* Add, kick, harvest; the used length, or -1 if nothing came back. */
static long rq_run(struct rq *r)
{
	rq_add(r);
	kick(r->e, r->q);
	uint32_t len = 0;
	void *t = vio_vq_get(r->e->drv[r->q], &len);
	CHECK(t == r);
	if (t != r)
		return -1;
	return len;
}

#define EXPECT(r, st, len)                                                     \
	do {                                                                   \
		long _l = rq_run(r);                                           \
		CHECK_EQ(_l, (len));                                           \
		CHECK_EQ(*(r)->status, (st));                                  \
	} while (0)

static void fill_pattern(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static bool file_equals(struct tenv *e, uint64_t off, const void *want,
			size_t len)
{
	static uint8_t got[IMG_BYTES];
	if (len > sizeof(got))
		return false;
	ssize_t n = pread(e->fd, got, len, (off_t)off);
	return n == (ssize_t)len && memcmp(got, want, len) == 0;
}

static bool file_is_zero(struct tenv *e, uint64_t off, size_t len)
{
	static const uint8_t zero[IMG_BYTES];
	return file_equals(e, off, zero, len);
}

/* A write: hdr, data in nseg pieces (uneven, not 512-aligned), status. */
static void write_sectors(struct tenv *e, unsigned q, uint64_t sector,
			  const uint8_t *data, uint32_t len, unsigned nseg,
			  uint8_t want)
{
	struct rq r;
	rq_init(&r, e, q);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, sector);
	uint32_t off = 0;
	for (unsigned i = 0; i < nseg; i++) {
		uint32_t n = i + 1 == nseg ? len - off : len / nseg - 3;
		rq_out(&r, data + off, n);
		off += n;
	}
	rq_status(&r);
	EXPECT(&r, want, 1);
}

/* A read into nseg pieces; checks the data against want (if not NULL). */
static void read_sectors(struct tenv *e, unsigned q, uint64_t sector,
			 const uint8_t *want, uint32_t len, unsigned nseg)
{
	struct rq r;
	rq_init(&r, e, q);
	rq_hdr(&r, VIRTIO_BLK_T_IN, sector);
	uint8_t *p[MAXSG];
	uint32_t l[MAXSG], off = 0;
	for (unsigned i = 0; i < nseg; i++) {
		l[i] = i + 1 == nseg ? len - off : len / nseg + 5;
		p[i] = rq_in(&r, l[i]);
		off += l[i];
	}
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_OK, len + 1);
	if (!want)
		return;
	bool same = true;
	off = 0;
	for (unsigned i = 0; i < nseg; i++) {
		same &= memcmp(p[i], want + off, l[i]) == 0;
		off += l[i];
	}
	CHECK(same);
}

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
	CHECK(vio_dev_has_feature(e->dev, VIRTIO_BLK_F_RO));
	CHECK(!vio_dev_has_feature(e->dev, VIRTIO_BLK_F_DISCARD));
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

static void test_config(struct tenv *e, unsigned nq)
{
	struct virtio_blk_config bc;
	REQUIRE(vio_dev_config_len(e->dev) == sizeof(bc));
	CHECK_EQ(vio_dev_config_read(e->dev, 0, &bc, sizeof(bc)), 0);
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
	CHECK_EQ(vio_dev_device_id(e->dev), VIRTIO_ID_BLOCK);
	struct vio_features f;
	vio_dev_offered(e->dev, &f);
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
	vio_dev_kick(e->dev, 0);
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

/* io_uring refused (as under a seccomp policy): the device still comes
 * up, on the synchronous backend.  In a child: the filter is for good. */
static void test_no_io_uring(void)
{
#if defined(VIO_HAVE_LIBURING) && defined(__NR_io_uring_setup)
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct sock_filter f[] = {
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			     offsetof(struct seccomp_data, nr)),
		    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0,
			     1),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(77);
		char p[300], err[256];
		path_of(p, sizeof(p), "seccomp.img");
		struct vio_blk_device_config c = {.path = p, .size = 1 << 20};
		vio_log_set_quiet(1);
		struct vio_blk_device *bd =
		    vio_blk_device_new(&c, err, sizeof(err));
		int rc =
		    bd && !strcmp(vio_blk_device_backend(bd), "sync") ? 0 : 1;
		vio_blk_device_free(bd);
		unlink(p);
		_exit(rc);
	}
	int st = 0;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		printf("SKIP: cannot install a seccomp filter here\n");
	else
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
#endif
}

static void test_creation(void)
{
	char p[300], err[256];
	struct vio_blk_device *bd;
	struct vio_blk_device_config c = {.no_io_uring = true};

	path_of(p, sizeof(p), "new.img");
	c.path = p;
	/* missing, no size: error */
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == ENOENT && err[0]);
	/* missing, with a size: created */
	c.size = 1 << 20;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	if (bd) {
		CHECK_EQ(vio_blk_device_capacity(bd), 2048);
		vio_blk_device_free(bd);
	}
	struct stat st;
	CHECK(stat(p, &st) == 0 && st.st_size == (1 << 20));
	/* exists, same size: opened; other size: refused, not resized */
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	vio_blk_device_free(bd);
	c.size = 2 << 20;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	CHECK(stat(p, &st) == 0 && st.st_size == (1 << 20));
	/* size 0: whatever it has */
	c.size = 0;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	vio_blk_device_free(bd);
	/* bad sizes and limits */
	c.size = 1000;
	path_of(p, sizeof(p), "odd.img");
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.size = 0;
	c.queue_size = 2;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.queue_size = 0;
	c.blk_size = 1000;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.blk_size = 0;
	/* not a file */
	c.path = tmpdir;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL);
	c.readonly = true;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.readonly = false;
	/* a file smaller than a sector */
	path_of(p, sizeof(p), "tiny.img");
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	c.path = p;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	/* read-only does not create */
	path_of(p, sizeof(p), "ro-missing.img");
	c.readonly = true;
	c.size = 1 << 20;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == ENOENT);
	CHECK(access(p, F_OK) != 0);
	/* serial and blk_size 4096 show up */
	path_of(p, sizeof(p), "new.img");
	c.readonly = false;
	c.size = 0;
	c.serial = "0123456789abcdefghijKLM";
	c.blk_size = 4096;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	if (bd) {
		struct virtio_blk_config bc;
		CHECK_EQ(vio_dev_config_read(vio_blk_device_dev(bd), 0, &bc,
					     sizeof(bc)),
			 0);
		CHECK_EQ(le32toh(bc.blk_size), 4096);
		CHECK_EQ(le32toh(bc.discard_sector_alignment), 8);
		vio_blk_device_free(bd);
	}
}

/* ---- descriptors that cross memory regions (seg_max, size_max) ---- */

/* len bytes whose device address is off bytes into a stripe. */
static uint8_t *balloc_at(struct tenv *e, unsigned q, uint32_t len,
			  uint32_t stripe, uint32_t off)
{
	uint8_t *p = balloc(e, q, len + stripe);
	uint64_t d = vio_mem_daddr(e->mem, p, len + stripe);
	REQUIRE(d != VIO_BAD_ADDR);
	return p + (off + stripe - d % stripe) % stripe;
}

/* OUT then IN of len bytes at sector, each data descriptor dlen bytes
 * starting off bytes into a stripe; the read must give the data back. */
static void rw_crossing(struct tenv *e, uint64_t sector, uint32_t ndesc,
			uint32_t dlen, uint32_t stripe, uint32_t off,
			uint8_t want)
{
	static uint8_t data[256 << 10];
	uint32_t len = ndesc * dlen;
	REQUIRE(len <= sizeof(data));
	fill_pattern(data, len, sector + ndesc + dlen + off);
	struct rq r;
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, sector);
	for (uint32_t i = 0; i < ndesc; i++) {
		uint8_t *p = balloc_at(e, 0, dlen, stripe, off);
		memcpy(p, data + i * dlen, dlen);
		rq_seg(&r, p, dlen, false);
	}
	rq_status(&r);
	EXPECT(&r, want, 1);
	if (want != VIRTIO_BLK_S_OK)
		return;
	CHECK(file_equals(e, sector * 512, data, len));

	uint8_t *p[MAXSG];
	rq_init(&r, e, 0);
	rq_hdr(&r, VIRTIO_BLK_T_IN, sector);
	for (uint32_t i = 0; i < ndesc; i++) {
		p[i] = balloc_at(e, 0, dlen, stripe, off);
		memset(p[i], 0xee, dlen);
		rq_seg(&r, p[i], dlen, true);
	}
	rq_status(&r);
	EXPECT(&r, VIRTIO_BLK_S_OK, len + 1);
	bool same = true;
	for (uint32_t i = 0; i < ndesc; i++)
		same &= memcmp(p[i], data + i * dlen, dlen) == 0;
	CHECK(same);
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

/* Default limits (seg_max 62), 512-byte regions: a request of seg_max
 * descriptors of 4 KiB, each over 9 regions, is 558 pieces, more than
 * twice the queue size: served, the queue not broken. */
static void test_many_pieces(struct tenv *e)
{
	rw_crossing(e, 0, QSZ - 2, 4096, 512, 7, VIRTIO_BLK_S_OK);
	CHECK(!vio_vq_broken(vio_dev_queue(e->dev, 0)));
}

/* ---- a kick is bounded (vio/device.h) ---- */

#define FLOOD_TOTAL (16u * QSZ)

struct flood {
	struct tenv *e;
	struct rq rq[QSZ];
	uint8_t *data[QSZ];
	bool busy[QSZ];
	unsigned added, got, bad;
	int stop; /* __atomic */
};

static void flood_add(struct flood *f, unsigned k)
{
	struct rq *r = &f->rq[k];
	r->out = r->in = 0;
	r->sg[0].len = 16;
	r->sg[1].buf = f->data[k];
	r->sg[1].len = 512;
	r->sg[2].len = 1;
	*r->status = 0xff;
	REQUIRE(vio_vq_add(f->e->drv[0], r->sg, 1, 2, r) == 0);
	f->busy[k] = true;
	f->added++;
}

static void flood_harvest(struct flood *f)
{
	uint32_t len;
	struct rq *r;
	while ((r = vio_vq_get(f->e->drv[0], &len))) {
		unsigned k = (unsigned)(r - f->rq);
		f->got++;
		f->bad +=
		    !f->busy[k] || len != 513 || *r->status != VIRTIO_BLK_S_OK;
		f->busy[k] = false;
	}
}

/* The driver keeps the ring full: every completion is refilled at once,
 * FLOOD_TOTAL requests in all (or until told to stop). */
static void *flood_thread(void *p)
{
	struct flood *f = p;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) &&
	       f->added < FLOOD_TOTAL) {
		flood_harvest(f);
		for (unsigned k = 0; k < QSZ && f->added < FLOOD_TOTAL; k++)
			if (!f->busy[k])
				flood_add(f, k);
		vio_vq_kick_prepare(f->e->drv[0]);
	}
	return NULL;
}

/* One kick while the driver refills the ring from another thread: it
 * returns after at most a ring's worth of chains (busy-poll on, so only
 * the bound can end it), saying more wait; calling again finishes. */
static void test_bounded_kick(struct tenv *e)
{
	static struct flood f;
	memset(&f, 0, sizeof(f));
	f.e = e;
	for (unsigned k = 0; k < QSZ; k++) {
		struct rq *r = &f.rq[k];
		rq_init(r, e, 0);
		rq_hdr(r, VIRTIO_BLK_T_IN, k);
		f.data[k] = rq_in(r, 512);
		rq_status(r);
	}
	for (unsigned k = 0; k < QSZ; k++)
		flood_add(&f, k);
	vio_vq_kick_prepare(e->drv[0]);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, flood_thread, &f) == 0);
	bool more = vio_dev_kick(e->dev, 0);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	/* only that kick ran: every completion so far is one of its chains */
	flood_harvest(&f);
	printf("  bounded kick: %u chains in one kick (ring %u), more %d\n",
	       f.got, QSZ, more);
	CHECK(f.got >= 1);
	CHECK(f.got <= QSZ);
	/* what waited when the kick returned still waits (the driver may
	 * have added more since) */
	CHECK(!more || vio_vq_more_avail(vio_dev_queue(e->dev, 0)));
	/* the rest, kick after kick */
	unsigned kicks = 0;
	while (vio_dev_kick(e->dev, 0))
		kicks++;
	CHECK(kicks <= FLOOD_TOTAL / QSZ + 1);
	flood_harvest(&f);
	CHECK_EQ(f.got, f.added);
	CHECK_EQ(f.bad, 0);
	CHECK(!vio_vq_more_avail(vio_dev_queue(e->dev, 0)));
}

/* ---- config space: only writeback, only with CONFIG_WCE ---- */

static void test_config_write(struct tenv *e, bool wce)
{
	const unsigned off = offsetof(struct virtio_blk_config, wce);
	struct virtio_blk_config before, after;
	uint8_t b;
	CHECK_EQ(vio_dev_config_read(e->dev, 0, &before, sizeof(before)), 0);
	CHECK_EQ(before.wce, 1); /* writeback: FLUSH is offered */
	CHECK_EQ(vio_dev_has_feature(e->dev, VIRTIO_BLK_F_CONFIG_WCE), wce);
	vio_log_set_quiet(1);
	b = 0;
	CHECK_EQ(vio_dev_config_write(e->dev, off, &b, 1), wce ? 0 : -EPERM);
	CHECK_EQ(vio_dev_config_read(e->dev, off, &b, 1), 0);
	CHECK_EQ(b, wce ? 0 : 1);
	/* writethrough now (with wce): requests still work */
	static uint8_t data[512];
	fill_pattern(data, sizeof(data), 11);
	write_sectors(e, 0, 4, data, 512, 1, VIRTIO_BLK_S_OK);
	CHECK(file_equals(e, 4 * 512, data, 512));
	b = 1;
	CHECK_EQ(vio_dev_config_write(e->dev, off, &b, 1), wce ? 0 : -EPERM);
	/* refused whatever was negotiated: other values, other bytes,
	 * writes that only overlap writeback */
	b = 2;
	CHECK_EQ(vio_dev_config_write(e->dev, off, &b, 1), -EPERM);
	uint8_t two[2] = {1, 0};
	CHECK_EQ(vio_dev_config_write(e->dev, off, two, 2), -EPERM);
	CHECK_EQ(vio_dev_config_write(e->dev, off - 1, two, 2), -EPERM);
	uint64_t cap = htole64(0xdeadbeef);
	CHECK_EQ(vio_dev_config_write(e->dev, 0, &cap, sizeof(cap)), -EPERM);
	uint32_t sm = htole32(1);
	CHECK_EQ(vio_dev_config_write(
		     e->dev, offsetof(struct virtio_blk_config, seg_max), &sm,
		     sizeof(sm)),
		 -EPERM);
	b = 0;
	CHECK_EQ(vio_dev_config_write(
		     e->dev, offsetof(struct virtio_blk_config, unused), &b, 1),
		 -EPERM);
	vio_log_set_quiet(0);
	CHECK_EQ(vio_dev_config_read(e->dev, 0, &after, sizeof(after)), 0);
	CHECK(memcmp(&before, &after, sizeof(after)) == 0);
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

	o.seg_max = 8;
	o.size_max = 4096;
	if (env_open(&e, &o)) {
		test_validation(&e);
		env_close(&e);
	}
	o.seg_max = o.size_max = 0;

	/* the driver leaves FLUSH out: writes are writethrough, and with
	 * CONFIG_WCE the config says so (5.2.5.2: writeback starts at 0) */
	o.no_flush = true;
	if (env_open(&e, &o)) {
		CHECK(!vio_dev_has_feature(e.dev, VIRTIO_BLK_F_FLUSH));
		CHECK(vio_dev_has_feature(e.dev, VIRTIO_BLK_F_CONFIG_WCE));
		uint8_t wce = 0xff;
		CHECK_EQ(vio_dev_config_read(
			     e.dev, offsetof(struct virtio_blk_config, wce),
			     &wce, 1),
			 0);
		CHECK_EQ(wce, 0);
		test_random(&e, test_seed() + 17);
		env_close(&e);
	}
	o.no_flush = false;

	o.readonly = true;
	if (env_open(&e, &o)) {
		test_readonly(&e);
		env_close(&e);
	}
	o.readonly = false;

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

	/* busy-poll on: only the bound ends a kick under load */
	o.poll_us = 200000;
	o.file = "flood.img";
	if (env_open(&e, &o)) {
		test_bounded_kick(&e);
		env_close(&e);
	}
	o.poll = false;
	o.poll_us = 0;

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
	o.stripe = 512;
	if (env_open(&e, &o)) {
		test_many_pieces(&e);
		test_roundtrips(&e);
		test_random(&e, test_seed() + 29);
		env_close(&e);
	}
	o.stripe = 0;

	/* the driver's config writes */
	o.file = "wce.img";
	if (env_open(&e, &o)) {
		test_config_write(&e, true);
		env_close(&e);
	}
	o.no_wce = true;
	if (env_open(&e, &o)) {
		test_config_write(&e, false);
		env_close(&e);
	}
	o.no_wce = false;
}

static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
		if (unlink(p) != 0)
			fprintf(stderr, "cannot remove %s\n", p);
	}
	closedir(d);
	if (rmdir(tmpdir) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-blk-XXXXXX",
		 t && *t ? t : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	/* also on a REQUIRE failure's exit() */
	atexit(rm_tmpdir);

	test_creation();
	test_no_io_uring();
	for (int uring = 1; uring >= 0; uring--)
		for (int packed = 0; packed < 2; packed++)
			run_all(uring, packed);

	return test_result("blk_device");
}
