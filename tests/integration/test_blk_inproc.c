/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk driver against vio's blk device over the in-process
 * transport: the device on a thread of its own, serving a temporary image
 * the test also reads and writes with pread/pwrite to check every byte.
 *
 * - Sync API, both ring formats: read, write (zero-copy from vio_mem and
 *   copying from malloc), flush, discard, write-zeroes (with and without
 *   unmap), get-id; data checked against the image with pread.
 * - Limits: a device with seg_max 2 and size_max 4096 (requests split
 *   into 8 KiB pieces, which the device checks), small bounce buffers,
 *   no indirect descriptors; unaligned (-EINVAL) and past-capacity
 *   (-ERANGE) requests; length 0.
 * - Read-only device: -EROFS for writes, discards and write-zeroes with
 *   nothing put on the ring (the avail index does not move).
 * - Async API: 2 queues from 2 threads at queue depth 32 (and more
 *   submitted than there are slots), with callbacks and with completion
 *   arrays, reads and writes of up to 256 KiB on private blocks checked
 *   against a shadow copy, then the whole image against the shadow.
 * - Out of order: the same with the device sending a random half of the
 *   reads and writes through io_uring (IOSQE_ASYNC, a test hook) while
 *   the rest complete inline, so completions come back in another order
 *   than submitted (counted, must happen), split and packed.
 * - A sync call with async requests in flight; -EDEADLK from a callback;
 *   a broken queue fails its requests with -EIO.
 * - Teardown: every fd back, temp files removed.
 *
 * Seeded (VIO_TEST_SEED).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "blk/blk_internal.h"
#include "test.h"
#include "util/log.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/inproc.h>
#include <vio/mem.h>

#define IMG_SIZE (16u << 20)
#define SERIAL "vio-test-serial-0123" /* 20 bytes: no NUL on the wire */

static void fill_rand(uint64_t *rs, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len >= 8) {
		uint64_t v = test_rand(rs);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	while (len--)
		*p++ = (uint8_t)test_rand(rs);
}

/* ---- environment ---- */

struct env {
	char path[256];
	int fd; /* the test's own view of the image */
	struct vio_blk_device *bd;
	struct vio_mem *mem;
	struct vio_inproc *ip;
	struct vio_drvdev *vdev;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_blk *b;
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

/* A fresh image of IMG_SIZE random bytes, the device, the driver bound. */
static void env_up(struct env *e, struct vio_blk_device_opts dc,
		   const struct vio_blk_driver_opts *drc, uint64_t seed)
{
	memset(e, 0, sizeof(*e));
	const char *tmp = getenv("TMPDIR");
	snprintf(e->path, sizeof(e->path), "%s/vio-blk-test-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	e->fd = mkstemp(e->path);
	REQUIRE(e->fd >= 0);
	static uint8_t chunk[1 << 20];
	uint64_t rs = seed | 1;
	for (uint64_t off = 0; off < IMG_SIZE; off += sizeof(chunk)) {
		fill_rand(&rs, chunk, sizeof(chunk));
		REQUIRE(pwrite(e->fd, chunk, sizeof(chunk), (off_t)off) ==
			(ssize_t)sizeof(chunk));
	}
	dc.path = e->path;
	dc.serial = SERIAL;
	char err[256];
	e->bd = vio_blk_device_new(&dc, err, sizeof(err));
	if (!e->bd)
		fprintf(stderr, "vio_blk_device_new: %s\n", err);
	REQUIRE(e->bd);
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	e->ip = vio_inproc_new(vio_blk_device_dev(e->bd), e->mem);
	REQUIRE(e->ip);
	e->vdev = vio_inproc_vdev(e->ip);
	REQUIRE(pthread_create(&e->th, NULL, device_thread, e) == 0);
	e->bus = vio_bus_new();
	REQUIRE(e->bus);
	e->drv = vio_blk_driver_new(drc);
	REQUIRE(e->drv);
	REQUIRE(vio_bus_register(e->bus, e->drv) == 0);
	int r = vio_bus_add(e->bus, e->vdev);
	if (r)
		fprintf(stderr, "vio_bus_add: %s\n", strerror(-r));
	REQUIRE(r == 0);
	e->b = vio_blk_from_vdev(e->vdev);
	REQUIRE(e->b);
	CHECK(vio_blk_vdev(e->b) == e->vdev);
}

static void env_down(struct env *e)
{
	vio_bus_remove(e->bus, e->vdev);
	CHECK(vio_blk_from_vdev(e->vdev) == NULL);
	CHECK_EQ(vio_bus_count(e->bus), 0);
	vio_bus_free(e->bus);
	vio_blk_driver_free(e->drv);
	vio_inproc_stop(e->ip);
	pthread_join(e->th, NULL);
	CHECK_EQ(e->thread_err, 0);
	vio_inproc_free(e->ip);
	vio_blk_device_free(e->bd);
	vio_mem_free(e->mem);
	close(e->fd);
	unlink(e->path);
}

static bool image_equals(struct env *e, uint64_t off, const void *buf,
			 size_t len)
{
	uint8_t *tmp = malloc(len ? len : 1);
	REQUIRE(tmp);
	bool ok = pread(e->fd, tmp, len, (off_t)off) == (ssize_t)len &&
		  memcmp(tmp, buf, len) == 0;
	free(tmp);
	return ok;
}

static bool image_zero(struct env *e, uint64_t off, size_t len)
{
	uint8_t *z = calloc(1, len ? len : 1);
	REQUIRE(z);
	bool ok = image_equals(e, off, z, len);
	free(z);
	return ok;
}

/* ---- sync API ---- */

/* Reads and writes of random sizes at random places, through buf (which
 * is in shared memory or not), each checked against the image. */
static void rw_rounds(struct env *e, unsigned q, uint8_t *buf, size_t max,
		      uint64_t *rs, unsigned rounds)
{
	uint8_t *ref = malloc(max);
	REQUIRE(ref);
	for (unsigned i = 0; i < rounds; i++) {
		size_t len = 512u * (1 + (size_t)(test_rand(rs) % (max / 512)));
		uint64_t off =
		    512u * (test_rand(rs) % ((IMG_SIZE - len) / 512 + 1));
		memset(buf, 0xa5, len);
		CHECK_EQ(vio_blk_read(e->b, q, off, buf, len), 0);
		CHECK(image_equals(e, off, buf, len));

		fill_rand(rs, buf, len);
		memcpy(ref, buf, len);
		CHECK_EQ(vio_blk_write(e->b, q, off, buf, len), 0);
		CHECK(image_equals(e, off, ref, len));
	}
	free(ref);
}

static void test_sync(bool packed, uint64_t seed)
{
	int fds = test_count_fds();
	struct vio_blk_device_opts dc = {.num_queues = 2, .no_packed = !packed};
	struct env e;
	env_up(&e, dc, NULL, seed);
	uint64_t rs = seed ^ 0x5157;

	CHECK_EQ(vio_blk_capacity_bytes(e.b), IMG_SIZE);
	CHECK_EQ(vio_blk_num_queues(e.b), 2);
	CHECK_EQ(vio_blk_block_size(e.b), 512);
	CHECK(!vio_blk_readonly(e.b));
	CHECK_EQ(vio_blk_has_feature(e.b, VIRTIO_F_RING_PACKED), packed);
	CHECK(vio_blk_has_feature(e.b, VIRTIO_BLK_F_FLUSH));
	CHECK(vio_blk_has_feature(e.b, VIRTIO_BLK_F_DISCARD));
	CHECK(vio_blk_has_feature(e.b, VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(vio_blk_has_feature(e.b, VIRTIO_BLK_F_MQ));
	CHECK(!vio_blk_has_feature(e.b, VIRTIO_BLK_F_RO));
	struct vio_blk_info in;
	vio_blk_get_info(e.b, &in);
	CHECK_EQ(in.capacity, IMG_SIZE / 512);
	CHECK_EQ(in.seg_max, VIO_BLK_DEFAULT_SEG_MAX);
	CHECK_EQ(in.size_max, 1u << 20);
	CHECK_EQ(in.device_queues, 2);
	CHECK_EQ(in.queue_size, 256);
	CHECK_EQ(in.queue_depth, 32);
	CHECK_EQ(in.packed, packed);
	CHECK(in.indirect && in.event_idx);
	CHECK_EQ(in.segs_per_req, 30); /* one indirect table */
	CHECK_EQ(in.max_copy_bytes, 128u << 10);

	char id[21];
	CHECK_EQ(vio_blk_get_id(e.b, 0, id), 0);
	CHECK(strcmp(id, SERIAL) == 0);
	CHECK_EQ(vio_blk_get_id(e.b, 1, id), 0);
	CHECK(strcmp(id, SERIAL) == 0);

	/* zero-copy and copying, on both queues; 1 MiB: several pieces on
	 * the copying path */
	const size_t max = 1u << 20;
	uint64_t daddr;
	uint8_t *shm = vio_mem_alloc(e.mem, max, 4096, &daddr);
	REQUIRE(shm);
	uint8_t *heap = malloc(max);
	REQUIRE(heap);
	for (unsigned q = 0; q < 2; q++) {
		rw_rounds(&e, q, shm, max, &rs, 20);
		rw_rounds(&e, q, heap, max, &rs, 20);
	}
	/* the whole disk in one call, both paths */
	uint8_t *big = malloc(IMG_SIZE);
	REQUIRE(big);
	CHECK_EQ(vio_blk_read(e.b, 0, 0, big, IMG_SIZE), 0);
	CHECK(image_equals(&e, 0, big, IMG_SIZE));
	/* the last sector and the first */
	CHECK_EQ(vio_blk_read(e.b, 1, IMG_SIZE - 512, shm, 512), 0);
	CHECK(image_equals(&e, IMG_SIZE - 512, shm, 512));
	CHECK_EQ(vio_blk_write(e.b, 1, IMG_SIZE - 512, heap, 512), 0);
	CHECK(image_equals(&e, IMG_SIZE - 512, heap, 512));
	CHECK_EQ(vio_blk_flush(e.b, 0), 0);
	CHECK_EQ(vio_blk_flush(e.b, 1), 0);

	/* write-zeroes: zeroes exactly there */
	CHECK_EQ(vio_blk_read(e.b, 0, 0, big, IMG_SIZE), 0);
	CHECK_EQ(vio_blk_write_zeroes(e.b, 0, 4096, 8192, false), 0);
	CHECK(image_zero(&e, 4096, 8192));
	CHECK(image_equals(&e, 0, big, 4096));
	CHECK(image_equals(&e, 12288, big + 12288, 4096));
	CHECK_EQ(vio_blk_write_zeroes(e.b, 1, 1u << 20, 3u << 20, true), 0);
	CHECK(image_zero(&e, 1u << 20, 3u << 20));
	CHECK(image_equals(&e, (1u << 20) - 512, big + (1u << 20) - 512, 512));
	CHECK(image_equals(&e, 4u << 20, big + (4u << 20), 512));
	memset(shm, 0x11, 8192);
	CHECK_EQ(vio_blk_read(e.b, 0, 4096, shm, 8192), 0);
	CHECK(image_zero(&e, 4096, 8192) && shm[0] == 0 && shm[8191] == 0);
	/* discard: a hint; the neighbours are untouched, the range reads as
	 * zeroes or as before */
	CHECK_EQ(vio_blk_discard(e.b, 0, 8u << 20, 1u << 20), 0);
	CHECK(image_equals(&e, (8u << 20) - 512, big + (8u << 20) - 512, 512));
	CHECK(image_equals(&e, 9u << 20, big + (9u << 20), 512));
	CHECK(image_zero(&e, 8u << 20, 1u << 20) ||
	      image_equals(&e, 8u << 20, big + (8u << 20), 1u << 20));

	/* refused before anything is sent */
	CHECK_EQ(vio_blk_read(e.b, 0, 1, heap, 512), -EINVAL);
	CHECK_EQ(vio_blk_read(e.b, 0, 0, heap, 100), -EINVAL);
	CHECK_EQ(vio_blk_write(e.b, 0, 256, heap, 512), -EINVAL);
	CHECK_EQ(vio_blk_discard(e.b, 0, 0, 1000), -EINVAL);
	CHECK_EQ(vio_blk_write_zeroes(e.b, 0, 7, 512, false), -EINVAL);
	CHECK_EQ(vio_blk_read(e.b, 0, IMG_SIZE, heap, 512), -ERANGE);
	CHECK_EQ(vio_blk_read(e.b, 0, IMG_SIZE - 512, heap, 1024), -ERANGE);
	CHECK_EQ(vio_blk_write(e.b, 1, IMG_SIZE, heap, 512), -ERANGE);
	CHECK_EQ(vio_blk_read(e.b, 0, UINT64_MAX - 511, heap, 1024), -ERANGE);
	CHECK_EQ(vio_blk_discard(e.b, 0, IMG_SIZE - 512, 1024), -ERANGE);
	CHECK_EQ(vio_blk_write_zeroes(e.b, 0, 0, IMG_SIZE + 512ull, false),
		 -ERANGE);
	CHECK_EQ(vio_blk_read(e.b, 2, 0, heap, 512), -ENXIO);
	CHECK_EQ(vio_blk_read(e.b, 0, 0, NULL, 512), -EINVAL);
	/* nothing to move */
	CHECK_EQ(vio_blk_read(e.b, 0, IMG_SIZE, heap, 0), 0);
	CHECK_EQ(vio_blk_discard(e.b, 0, 0, 0), 0);
	struct vio_blk_req bad = {.op = 99};
	CHECK_EQ(vio_blk_submit(e.b, 0, &bad), -EINVAL);
	bad.op = VIO_BLK_OP_READ;
	bad.flags = VIO_BLK_REQ_UNMAP;
	CHECK_EQ(vio_blk_submit(e.b, 0, &bad), -EINVAL);
	CHECK_EQ(vio_blk_pending(e.b, 0), 0);
	/* nothing in flight: poll returns at once */
	CHECK_EQ(vio_blk_poll(e.b, 0, NULL, 0, -1), 0);
	CHECK_EQ(vio_blk_poll(e.b, 0, NULL, 0, 50), 0);

	free(big);
	free(heap);
	vio_mem_release(e.mem, shm);
	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
	printf("sync %s: ok\n", packed ? "packed" : "split");
}

/* ---- limits: requests split into many small virtio requests ---- */

static void test_split(bool packed, bool indirect, uint64_t seed)
{
	int fds = test_count_fds();
	struct vio_blk_device_opts dc = {.seg_max = 2,
					 .size_max = 4096,
					 .no_packed = !packed,
					 .no_indirect = !indirect,
					 .queue_size = 16};
	struct vio_blk_driver_opts drc = {.queue_depth = 4,
					  .bounce_size = 12288};
	struct env e;
	env_up(&e, dc, &drc, seed);
	uint64_t rs = seed ^ 0x5b11;
	struct vio_blk_info in;
	vio_blk_get_info(e.b, &in);
	CHECK_EQ(in.seg_max, 2);
	CHECK_EQ(in.size_max, 4096);
	CHECK_EQ(in.segs_per_req, 2);
	CHECK_EQ(in.max_zc_bytes, 8192);
	CHECK_EQ(in.max_copy_bytes, 8192);
	CHECK_EQ(in.queue_depth, 4);
	CHECK_EQ(in.num_queues, 1);
	CHECK_EQ(in.indirect, indirect);

	const size_t max = 3u << 20;
	uint64_t daddr;
	uint8_t *shm = vio_mem_alloc(e.mem, max, 64, &daddr);
	REQUIRE(shm);
	uint8_t *heap = malloc(max);
	REQUIRE(heap);
	/* the device answers IOERR to any piece over its limits: success
	 * means every piece was within them */
	rw_rounds(&e, 0, shm, max, &rs, 6);
	rw_rounds(&e, 0, heap, max, &rs, 6);
	/* an odd-sized zero-copy buffer: the last segment is short */
	CHECK_EQ(vio_blk_read(e.b, 0, 512, shm + 3, 9728), 0);
	CHECK(image_equals(&e, 512, shm + 3, 9728));
	free(heap);
	vio_mem_release(e.mem, shm);
	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
	printf("split %s%s: ok\n", packed ? "packed" : "split",
	       indirect ? "" : " no-indirect");
}

/* ---- read-only ---- */

static uint16_t avail_idx(struct vio_drvdev *vdev)
{
	struct vio_vq_layout l;
	vio_vq_get_layout(vio_drvdev_vq(vdev, 0), &l);
	const struct vring_avail *a = l.driver;
	return le16toh(__atomic_load_n(&a->idx, __ATOMIC_ACQUIRE));
}

static void test_readonly(uint64_t seed)
{
	int fds = test_count_fds();
	struct vio_blk_device_opts dc = {.readonly = true, .no_packed = true};
	struct env e;
	env_up(&e, dc, NULL, seed);
	CHECK(vio_blk_readonly(e.b));
	CHECK(vio_blk_has_feature(e.b, VIRTIO_BLK_F_RO));
	CHECK(!vio_blk_has_feature(e.b, VIRTIO_BLK_F_DISCARD));
	uint8_t *buf = malloc(8192);
	REQUIRE(buf);
	CHECK_EQ(vio_blk_read(e.b, 0, 8192, buf, 8192), 0);
	CHECK(image_equals(&e, 8192, buf, 8192));
	uint16_t before = avail_idx(e.vdev);
	memset(buf, 0x42, 8192);
	CHECK_EQ(vio_blk_write(e.b, 0, 8192, buf, 8192), -EROFS);
	CHECK_EQ(vio_blk_discard(e.b, 0, 0, 4096), -EROFS);
	CHECK_EQ(vio_blk_write_zeroes(e.b, 0, 0, 4096, true), -EROFS);
	struct vio_blk_req r = {
	    .op = VIO_BLK_OP_WRITE, .offset = 0, .buf = buf, .len = 512};
	CHECK_EQ(vio_blk_submit(e.b, 0, &r), -EROFS);
	CHECK_EQ(avail_idx(e.vdev), before); /* nothing sent */
	CHECK_EQ(vio_blk_pending(e.b, 0), 0);
	CHECK(!image_equals(&e, 8192, buf, 8192));
	/* reads and flushes still work */
	CHECK_EQ(vio_blk_flush(e.b, 0), 0);
	CHECK_EQ(vio_blk_read(e.b, 0, 0, buf, 4096), 0);
	CHECK(image_equals(&e, 0, buf, 4096));
	free(buf);
	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
	printf("readonly: ok\n");
}

/* A device without DISCARD / WRITE_ZEROES: refused, nothing sent. */
static void test_no_discard(uint64_t seed)
{
	struct vio_blk_device_opts dc = {
	    .no_discard = true, .no_write_zeroes = true, .no_packed = true};
	struct env e;
	env_up(&e, dc, NULL, seed);
	uint16_t before = avail_idx(e.vdev);
	CHECK_EQ(vio_blk_discard(e.b, 0, 0, 4096), -EOPNOTSUPP);
	CHECK_EQ(vio_blk_write_zeroes(e.b, 0, 0, 4096, false), -EOPNOTSUPP);
	CHECK_EQ(avail_idx(e.vdev), before);
	env_down(&e);
}

/* ---- async: 2 queues, 2 threads ---- */

#define AS_BLOCK (256u << 10) /* each in-flight request owns a block */
#define AS_INFLIGHT 48	      /* more than the 32 slots */
#define AS_BLOCKS_PER_Q (IMG_SIZE / AS_BLOCK / 2)

struct as_req {
	struct vio_blk_req r;
	struct as_q *aq;
	unsigned block;
	uint8_t *buf;
	bool zc;
	bool out;     /* submitted, not yet checked */
	uint64_t seq; /* submission order on its queue */
};

struct as_q {
	struct env *e;
	unsigned q;
	bool use_cb;
	uint64_t rs;
	uint64_t base; /* this queue's half of the disk */
	uint8_t *shadow;
	bool busy[AS_BLOCKS_PER_Q];
	struct as_req reqs[AS_INFLIGHT];
	unsigned inflight;
	uint64_t done, target, reads, writes, bytes;
	uint64_t next_seq, last_seq, out_of_order;
	int errors;
	int deadlk;
};

static void as_check(struct as_req *a, int result)
{
	struct as_q *aq = a->aq;
	if (result) {
		if (!aq->errors++)
			fprintf(stderr, "q%u: request failed: %s\n", aq->q,
				strerror(-result));
	} else if (a->r.op == VIO_BLK_OP_READ &&
		   memcmp(a->buf, aq->shadow + (a->r.offset - aq->base),
			  a->r.len)) {
		if (!aq->errors++)
			fprintf(stderr, "q%u: read at %llu differs\n", aq->q,
				(unsigned long long)a->r.offset);
	}
	if (a->seq < aq->last_seq)
		aq->out_of_order++;
	aq->last_seq = a->seq;
	aq->busy[a->block] = false;
	a->out = false;
	aq->inflight--;
	aq->done++;
}

static void as_done(struct vio_blk_req *req, int result)
{
	struct as_req *a = (struct as_req *)req;
	CHECK_EQ(req->result, result);
	/* a synchronous call from a callback would wait on itself */
	if (a->aq->deadlk++ == 0) {
		char id[21];
		CHECK_EQ(vio_blk_get_id(a->aq->e->b, a->aq->q, id), -EDEADLK);
		CHECK_EQ(vio_blk_poll(a->aq->e->b, a->aq->q, NULL, 0, 0),
			 -EDEADLK);
	}
	as_check(a, result);
}

/* Start one request on a free block: a read, or a write whose data go to
 * the shadow at once (the block is ours until it completes). */
static bool as_start(struct as_q *aq, struct as_req *a)
{
	unsigned blk = (unsigned)(test_rand(&aq->rs) % AS_BLOCKS_PER_Q);
	for (unsigned k = 0; k < AS_BLOCKS_PER_Q && aq->busy[blk]; k++)
		blk = (blk + 1) % AS_BLOCKS_PER_Q;
	if (aq->busy[blk])
		return false;
	size_t len = 512u * (1 + (size_t)(test_rand(&aq->rs) % 64));
	if (test_rand(&aq->rs) % 4 == 0)
		len = 512u *
		      (1 + (size_t)(test_rand(&aq->rs) % (AS_BLOCK / 512)));
	uint64_t in =
	    512u * (test_rand(&aq->rs) % ((AS_BLOCK - len) / 512 + 1));
	uint64_t off = aq->base + (uint64_t)blk * AS_BLOCK + in;
	bool write = test_rand(&aq->rs) % 2;

	memset(&a->r, 0, sizeof(a->r));
	a->r.op = write ? VIO_BLK_OP_WRITE : VIO_BLK_OP_READ;
	a->r.offset = off;
	a->r.buf = a->buf;
	a->r.len = len;
	a->r.done = aq->use_cb ? as_done : NULL;
	a->block = blk;
	if (write) {
		fill_rand(&aq->rs, a->buf, len);
		memcpy(aq->shadow + (off - aq->base), a->buf, len);
		aq->writes++;
	} else {
		memset(a->buf, 0xee, len);
		aq->reads++;
	}
	int r = vio_blk_submit(aq->e->b, aq->q, &a->r);
	CHECK_EQ(r, 0);
	if (r)
		return false;
	aq->busy[blk] = true;
	a->out = true;
	a->seq = aq->next_seq++;
	aq->inflight++;
	aq->bytes += len;
	return true;
}

static void *as_thread(void *arg)
{
	struct as_q *aq = arg;
	struct vio_blk_req *done[16];
	unsigned next = 0;

	/* a sync call with nothing in flight, then with requests out */
	char id[21];
	CHECK_EQ(vio_blk_get_id(aq->e->b, aq->q, id), 0);
	while (aq->done < aq->target && !aq->errors) {
		/* fill up: the ones past the 32 slots wait in the queue */
		for (unsigned k = 0;
		     k < AS_INFLIGHT && aq->inflight < AS_INFLIGHT; k++) {
			struct as_req *a = &aq->reqs[next];
			next = (next + 1) % AS_INFLIGHT;
			if (a->out)
				continue;
			if (!as_start(aq, a))
				break;
		}
		if (aq->done % 97 == 0) {
			CHECK_EQ(vio_blk_get_id(aq->e->b, aq->q, id), 0);
			CHECK(strcmp(id, SERIAL) == 0);
		}
		int n = vio_blk_poll(aq->e->b, aq->q, aq->use_cb ? NULL : done,
				     aq->use_cb ? 0 : 16, 5000);
		/* the sync get_id above may have run every callback already:
		 * 0 with nothing in flight is an honest answer */
		if (n < 0 || (n == 0 && aq->inflight)) {
			if (!aq->errors++)
				fprintf(stderr, "q%u: poll %d\n", aq->q, n);
			break;
		}
		if (!aq->use_cb) {
			for (int i = 0; i < n; i++) {
				struct as_req *a = (struct as_req *)done[i];
				as_check(a, a->r.result);
			}
		}
	}
	/* drain */
	while (aq->inflight && !aq->errors) {
		int n = vio_blk_poll(aq->e->b, aq->q, aq->use_cb ? NULL : done,
				     aq->use_cb ? 0 : 16, 5000);
		if (n <= 0)
			break;
		for (int i = 0; !aq->use_cb && i < n; i++) {
			struct as_req *a = (struct as_req *)done[i];
			as_check(a, a->r.result);
		}
	}
	CHECK_EQ(aq->inflight, 0);
	CHECK_EQ(vio_blk_pending(aq->e->b, aq->q), 0);
	return NULL;
}

/* ooo: the device completes in random order (test hook) */
static void test_async(bool packed, bool use_cb, bool ooo, uint64_t seed)
{
	int fds = test_count_fds();
	struct vio_blk_device_opts dc = {.num_queues = 2, .no_packed = !packed};
	struct vio_blk_driver_opts drc = {.queue_depth = 32};
	struct env e;
	env_up(&e, dc, &drc, seed);
	if (ooo && strcmp(vio_blk_device_backend(e.bd), "io_uring") == 0)
		e.bd->test_async_pct = 50;
	struct vio_blk_info in;
	vio_blk_get_info(e.b, &in);
	CHECK_EQ(in.queue_depth, 32);
	CHECK_EQ(in.num_queues, 2);

	uint8_t *shadow = malloc(IMG_SIZE);
	REQUIRE(shadow);
	REQUIRE(pread(e.fd, shadow, IMG_SIZE, 0) == IMG_SIZE);
	struct as_q *aq = calloc(2, sizeof(*aq));
	REQUIRE(aq);
	uint64_t daddr;
	uint8_t *shm =
	    vio_mem_alloc(e.mem, (size_t)AS_INFLIGHT * AS_BLOCK, 64, &daddr);
	REQUIRE(shm);
	for (unsigned q = 0; q < 2; q++) {
		aq[q].e = &e;
		aq[q].q = q;
		aq[q].use_cb = use_cb;
		aq[q].rs = (seed + q) | 1;
		aq[q].base = (uint64_t)q * (IMG_SIZE / 2);
		aq[q].shadow = shadow + aq[q].base;
		aq[q].target = ooo ? 1500 : 3000;
		for (unsigned i = 0; i < AS_INFLIGHT; i++) {
			struct as_req *a = &aq[q].reqs[i];
			a->aq = &aq[q];
			/* queue 0: half zero-copy; queue 1: all copying */
			a->zc = q == 0 && i % 2 == 0;
			a->buf = a->zc ? shm + (size_t)(i / 2) * AS_BLOCK
				       : malloc(AS_BLOCK);
			REQUIRE(a->buf);
		}
	}
	pthread_t th[2];
	for (unsigned q = 0; q < 2; q++)
		REQUIRE(pthread_create(&th[q], NULL, as_thread, &aq[q]) == 0);
	for (unsigned q = 0; q < 2; q++)
		pthread_join(th[q], NULL);
	for (unsigned q = 0; q < 2; q++) {
		CHECK_EQ(aq[q].errors, 0);
		CHECK(aq[q].done >= aq[q].target);
		CHECK(aq[q].reads > 100 && aq[q].writes > 100);
		if (use_cb)
			CHECK(aq[q].deadlk > 0);
		if (e.bd->test_async_pct)
			CHECK(aq[q].out_of_order > 0);
	}
	CHECK_EQ(vio_blk_flush(e.b, 0), 0);
	CHECK(image_equals(&e, 0, shadow, IMG_SIZE));

	for (unsigned q = 0; q < 2; q++)
		for (unsigned i = 0; i < AS_INFLIGHT; i++)
			if (!aq[q].reqs[i].zc)
				free(aq[q].reqs[i].buf);
	vio_mem_release(e.mem, shm);
	printf("async %s %s%s: q0 %llu requests (%llu MiB), q1 %llu "
	       "requests (%llu MiB), %llu + %llu out of order: ok\n",
	       packed ? "packed" : "split", use_cb ? "callbacks" : "arrays",
	       e.bd->test_async_pct ? ", device completing in random order"
				    : "",
	       (unsigned long long)aq[0].done,
	       (unsigned long long)(aq[0].bytes >> 20),
	       (unsigned long long)aq[1].done,
	       (unsigned long long)(aq[1].bytes >> 20),
	       (unsigned long long)aq[0].out_of_order,
	       (unsigned long long)aq[1].out_of_order);
	free(aq);
	free(shadow);
	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
}

/* ---- poll details, a broken queue ---- */

static int cb_count;
static void count_cb(struct vio_blk_req *req, int result)
{
	(void)req;
	(void)result;
	cb_count++;
}

static void test_poll_and_broken(uint64_t seed)
{
	int fds = test_count_fds();
	struct vio_blk_device_opts dc = {.no_packed = true};
	struct vio_blk_driver_opts drc = {.queue_depth = 4};
	struct env e;
	env_up(&e, dc, &drc, seed);
	uint8_t *buf = malloc(16 * 4096);
	REQUIRE(buf);

	/* completion array smaller than what completes: the rest waits */
	struct vio_blk_req r[10];
	for (unsigned i = 0; i < 10; i++) {
		r[i] = (struct vio_blk_req){.op = VIO_BLK_OP_READ,
					    .offset = 4096u * i,
					    .buf = buf + 4096u * i,
					    .len = 4096};
		CHECK_EQ(vio_blk_submit(e.b, 0, &r[i]), 0);
	}
	CHECK_EQ(vio_blk_pending(e.b, 0), 10);
	struct vio_blk_req *done[3];
	unsigned got = 0, seen = 0;
	while (got < 10) {
		int n = vio_blk_poll(e.b, 0, done, 3, 5000);
		CHECK(n > 0 && n <= 3);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			CHECK(done[i] >= r && done[i] < r + 10);
			CHECK_EQ(done[i]->result, 0);
			seen |= 1u << (done[i] - r);
		}
		got += (unsigned)n;
	}
	CHECK_EQ(seen, 0x3ff);
	CHECK(image_equals(&e, 0, buf, 10 * 4096));
	CHECK_EQ(vio_blk_poll(e.b, 0, done, 0, 0), 0);
	CHECK_EQ(vio_blk_poll(e.b, 0, NULL, 3, 0), -EINVAL);

	/* a flush with callbacks */
	struct vio_blk_req f = {.op = VIO_BLK_OP_FLUSH, .done = count_cb};
	cb_count = 0;
	CHECK_EQ(vio_blk_submit(e.b, 0, &f), 0);
	while (cb_count == 0 && vio_blk_poll(e.b, 0, NULL, 0, 5000) > 0)
		;
	CHECK_EQ(cb_count, 1);
	CHECK_EQ(f.result, 0);

	/* the queue breaks with requests out: all of them fail with -EIO,
	 * and so does everything after */
	for (unsigned i = 0; i < 6; i++) {
		r[i].done = count_cb;
		CHECK_EQ(vio_blk_submit(e.b, 0, &r[i]), 0);
	}
	vio_log_set_quiet(1);
	vio_vq_set_broken(vio_drvdev_vq(e.vdev, 0), "test");
	cb_count = 0;
	int n = vio_blk_poll(e.b, 0, NULL, 0, 5000);
	CHECK_EQ(n, 6);
	CHECK_EQ(cb_count, 6);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(r[i].result, -EIO);
	CHECK_EQ(vio_blk_read(e.b, 0, 0, buf, 512), -EIO);
	CHECK_EQ(vio_blk_poll(e.b, 0, NULL, 0, 0), -EIO);
	vio_log_set_quiet(0);
	CHECK_EQ(vio_blk_pending(e.b, 0), 0);
	free(buf);
	env_down(&e);
	CHECK_EQ(test_count_fds(), fds);
	printf("poll + broken queue: ok\n");
}

/* Driver config: refused values; one instance, several devices. */
static void test_driver_config(void)
{
	struct vio_blk_driver_opts bad = {.queue_depth = 40000};
	errno = 0;
	CHECK(vio_blk_driver_new(&bad) == NULL && errno == EINVAL);
	struct vio_driver *d = vio_blk_driver_new(NULL);
	CHECK(d != NULL);
	vio_blk_driver_free(d);
	vio_blk_driver_free(NULL);
	CHECK(vio_blk_from_vdev(NULL) == NULL);
}

int main(void)
{
	int fds = test_count_fds();
	uint64_t seed = test_seed();
	printf("seed 0x%llx\n", (unsigned long long)seed);
	test_driver_config();
	test_sync(false, seed);
	test_sync(true, seed + 1);
	test_split(false, true, seed + 2);
	test_split(true, true, seed + 3);
	test_split(false, false, seed + 4);
	test_split(true, false, seed + 5);
	test_readonly(seed + 6);
	test_no_discard(seed + 7);
	test_async(false, true, false, seed + 8);
	test_async(true, false, false, seed + 9);
	test_async(true, true, false, seed + 10);
	test_async(false, false, false, seed + 11);
	test_async(false, true, true, seed + 13);
	test_async(true, false, true, seed + 14);
	test_poll_and_broken(seed + 12);
	CHECK_EQ(test_count_fds(), fds);
	return test_result("blk_inproc");
}
