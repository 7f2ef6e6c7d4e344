/* SPDX-License-Identifier: MIT */
/*
 * The environment of the virtio-blk device unit tests (test_blk_device*.c).
 * The driver's end of each queue is a ring layer driver vq on shared
 * memory (vio_mem); the device is a real vio_blk_device brought up through
 * the model (status, features, queue setup and enable, DRIVER_OK) and
 * kicked with vio_device_kick.  The image is a file in a mkdtemp directory,
 * checked with pread.
 *
 * Each program includes it once: the temporary directory is the
 * program's (blk_tmpdir_setup creates it and removes it at exit).  A
 * program's run_all(uring, packed) starts with an env_open that returns
 * when io_uring is unavailable, having printed the "SKIP: io_uring" line
 * scripts/test-summary.py looks for.
 */
#ifndef VIO_TEST_BLK_ENV_H
#define VIO_TEST_BLK_ENV_H

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "ring_env.h"
#include "test.h"
#include "util/log.h"
#include <vio/blk.h>
#include <vio/mem.h>

/* every program uses a different subset */
#pragma GCC diagnostic ignored "-Wunused-function"

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
	struct vio_device *dev;
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
	/* the image as the device opens it (an NBD URI): no file to
	 * check with pread (e->fd -1); its size must be IMG_BYTES */
	const char *image;
};

static void path_of(char *out, size_t len, const char *file)
{
	snprintf(out, len, "%s/%s", tmpdir, file);
}

static bool env_open(struct tenv *e, const struct opts *o)
{
	memset(e, 0, sizeof(*e));
	e->nq = o->nq ? o->nq : 1;
	if (o->image)
		snprintf(e->path, sizeof(e->path), "%s", o->image);
	else
		path_of(e->path, sizeof(e->path),
			o->file ? o->file : "disk.img");
	struct vio_blk_device_opts c = {
	    .path = e->path,
	    .size = o->readonly || o->image ? 0 : IMG_BYTES,
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
	e->fd = o->image ? -1 : open(e->path, O_RDONLY | O_CLOEXEC);
	REQUIRE(o->image || e->fd >= 0);

	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 8 << 20, NULL) == 0);
	const struct vio_region *rr = vio_mem_region(e->mem, 0);
	REQUIRE(!o->stripe || rr->size % o->stripe == 0);
	e->mt = ring_env_table(rr, o->stripe, 8);

	/* the handshake (3.1.1) */
	struct vio_features f;
	vio_device_offered(e->dev, &f);
	if (!o->packed)
		vio_features_clear(&f, VIRTIO_F_RING_PACKED);
	if (o->no_flush)
		vio_features_clear(&f, VIRTIO_BLK_F_FLUSH);
	if (o->no_wce)
		vio_features_clear(&f, VIRTIO_BLK_F_CONFIG_WCE);
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	s |= VIRTIO_CONFIG_S_DRIVER;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	CHECK_EQ(vio_device_set_features(e->dev, &f), 0);
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
	for (unsigned i = 0; i < e->nq; i++) {
		struct vio_vq_opts vc = {
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
		CHECK_EQ(vio_device_queue_setup(e->dev, i, QSZ, &l, e->mt), 0);
		CHECK_EQ(vio_device_queue_enable(e->dev, i, true), 0);
		uint64_t daddr;
		e->arena[i] = vio_mem_alloc(e->mem, ARENA, 4096, &daddr);
		REQUIRE(e->arena[i]);
	}
	s |= VIRTIO_CONFIG_S_DRIVER_OK;
	CHECK_EQ(vio_device_set_status(e->dev, s), 0);
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
	if (e->fd >= 0)
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
	while (vio_device_kick(e->dev, q))
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

/* The program's temporary directory, removed at exit (also on a
 * REQUIRE failure's exit()). */
static void blk_tmpdir_setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-blk-XXXXXX",
		 t && *t ? t : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	atexit(rm_tmpdir);
}

#endif
