/* SPDX-License-Identifier: MIT */
/*
 * The blk device completing asynchronously (issue 8): queues started on
 * a loop (blk_loop.h), requests in flight between kicks, completions
 * pushed in the order they come (a test hook sends a random half of the
 * reads and writes to io_uring with IOSQE_ASYNC, the rest complete
 * inline), every byte checked against a shadow of the image.
 *
 * - Random reads and writes (512 B..16 KiB, at most one request in
 *   flight per 16 KiB block, so the shadow is exact), FLUSHes, up to the
 *   whole ring in flight (the table full: completions resume popping),
 *   split and packed, loop in poll() mode and in busy-poll mode: every
 *   request completes, data matches, some completions came out of order,
 *   the stats count every request.
 * - queue_stop with requests in flight: returns with all of them pushed
 *   (the driver gets every token back), no kick needed; the queue starts
 *   again and serves more.
 * - A queue started without a loop (NULL): each kick completes what it
 *   popped (nothing owed when it returns), in random order too.
 * - drain: 0 once the loop delivered everything.
 * - Idle: the completion eventfd does not stay readable (a loop would
 *   spin on it).
 *
 * Seeded (VIO_TEST_SEED).
 */
#include <pthread.h>
#include <stdlib.h>

#include "blk/blk_internal.h"
#include "blk_env.h"
#include "blk_loop.h"

#define BLOCK (16u << 10)
#define NBLOCKS (IMG_BYTES / BLOCK)
#define NSLOT QSZ

struct areq {
	struct rq r;
	uint8_t *hdr, *data, *status;
	uint32_t type, len;
	uint64_t sector;
	unsigned block; /* NBLOCKS: none (FLUSH) */
	uint64_t seq;	/* submission order */
	bool busy;
};

struct actx {
	struct tenv *e;
	struct areq a[NSLOT];
	uint8_t shadow[IMG_BYTES];
	bool block_busy[NBLOCKS];
	uint64_t rs, seq_next, submitted, completed, out_of_order;
	uint64_t reads, writes, flushes;
	uint64_t last_seq_done;
	unsigned inflight;
};

static void actx_init(struct actx *c, struct tenv *e, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->e = e;
	c->rs = seed;
	REQUIRE(pread(e->fd, c->shadow, IMG_BYTES, 0) == (ssize_t)IMG_BYTES);
	for (unsigned i = 0; i < NSLOT; i++) {
		c->a[i].hdr = balloc(e, 0, 64);
		c->a[i].data = balloc(e, 0, BLOCK);
		c->a[i].status = balloc(e, 0, 64);
	}
}

/* Add one random request on a free slot; false if none could be added. */
static bool add_one(struct actx *c)
{
	struct areq *a = NULL;
	for (unsigned i = 0; i < NSLOT && !a; i++)
		if (!c->a[i].busy)
			a = &c->a[i];
	if (!a)
		return false;
	uint64_t d = test_rand(&c->rs);
	unsigned kind = (unsigned)(d % 16);
	a->type = kind < 7    ? VIRTIO_BLK_T_IN
		  : kind < 15 ? VIRTIO_BLK_T_OUT
			      : VIRTIO_BLK_T_FLUSH;
	a->block = NBLOCKS;
	a->len = 0;
	if (a->type != VIRTIO_BLK_T_FLUSH) {
		unsigned b = (unsigned)((d >> 8) % NBLOCKS);
		unsigned tries = 0;
		while (c->block_busy[b] && tries++ < NBLOCKS)
			b = (b + 1) % NBLOCKS;
		if (c->block_busy[b])
			return false;
		c->block_busy[b] = true;
		a->block = b;
		unsigned nsec = 1 + (unsigned)((d >> 20) % (BLOCK / 512));
		unsigned first =
		    (unsigned)((d >> 32) % (BLOCK / 512 - nsec + 1));
		a->sector = (uint64_t)b * (BLOCK / 512) + first;
		a->len = nsec * 512;
	} else {
		a->sector = 0;
	}
	struct virtio_blk_outhdr *h = (void *)a->hdr;
	h->type = htole32(a->type);
	h->ioprio = 0;
	h->sector = htole64(a->sector);
	rq_init(&a->r, c->e, 0);
	rq_seg(&a->r, a->hdr, 16, false);
	if (a->type == VIRTIO_BLK_T_OUT) {
		test_fill_random(a->data, a->len, &c->rs);
		rq_seg(&a->r, a->data, a->len, false);
		/* the device may complete it before any later request:
		 * the shadow holds what the image has once it completed,
		 * and no other request touches this block meanwhile */
	} else if (a->type == VIRTIO_BLK_T_IN) {
		memset(a->data, 0xee, a->len);
		rq_seg(&a->r, a->data, a->len, true);
	}
	*a->status = 0xaa;
	rq_seg(&a->r, a->status, 1, true);
	a->r.status = a->status;
	rq_add(&a->r);
	a->busy = true;
	a->seq = c->seq_next++;
	c->submitted++;
	c->inflight++;
	return true;
}

/* Harvest every used buffer: check it, free its slot. */
static unsigned harvest(struct actx *c)
{
	unsigned n = 0;
	uint32_t len;
	struct rq *r;
	while ((r = vio_vq_get(c->e->drv[0], &len))) {
		struct areq *a = (struct areq *)(void *)r;
		REQUIRE(a >= c->a && a < c->a + NSLOT && a->busy);
		CHECK_EQ(*a->status, VIRTIO_BLK_S_OK);
		uint64_t off = a->sector * 512;
		if (a->type == VIRTIO_BLK_T_IN) {
			CHECK_EQ(len, a->len + 1);
			CHECK(memcmp(a->data, c->shadow + off, a->len) == 0);
			c->reads++;
		} else if (a->type == VIRTIO_BLK_T_OUT) {
			CHECK_EQ(len, 1);
			memcpy(c->shadow + off, a->data, a->len);
			c->writes++;
		} else {
			CHECK_EQ(len, 1);
			c->flushes++;
		}
		if (a->seq < c->last_seq_done)
			c->out_of_order++;
		c->last_seq_done = a->seq;
		if (a->block < NBLOCKS)
			c->block_busy[a->block] = false;
		a->busy = false;
		c->inflight--;
		c->completed++;
		n++;
	}
	return n;
}

static void kick0(struct tenv *e)
{
	vio_vq_kick(e->drv[0]);
	while (vio_device_kick(e->dev, 0))
		;
}

/* Run the loop until nothing is in flight (deadline 10 s). */
static void settle_loop(struct actx *c, struct tloop *t)
{
	uint64_t end = vio_now_ns() + 10000000000ull;
	while (c->inflight && vio_now_ns() < end) {
		tloop_turn(t, 100);
		harvest(c);
	}
	CHECK_EQ(c->inflight, 0);
}

static void check_stats(struct actx *c)
{
	struct vio_blk_queue_stats st;
	CHECK_EQ(vio_blk_device_stats(c->e->bd, 0, &st), 0);
	CHECK_EQ(st.requests, c->completed);
	CHECK_EQ(st.reads, c->reads);
	CHECK_EQ(st.writes, c->writes);
	CHECK_EQ(st.flushes, c->flushes);
	CHECK_EQ(st.errors, 0);
	CHECK_EQ(st.broken, 0);
}

static void check_image(struct actx *c)
{
	static uint8_t img[IMG_BYTES];
	REQUIRE(pread(c->e->fd, img, IMG_BYTES, 0) == (ssize_t)IMG_BYTES);
	CHECK(memcmp(img, c->shadow, IMG_BYTES) == 0);
}

/* Rounds of random batches on a started queue, loop in the middle. */
static void test_loop(struct tenv *e, bool busy_poll, uint64_t seed)
{
	static struct actx c;
	struct tloop t;
	actx_init(&c, e, seed);
	tloop_init(&t, busy_poll);
	e->bd->test_async_pct = 50;
	CHECK_EQ(vio_device_queue_start(e->dev, 0, &t.l), 0);
	CHECK_EQ(t.nfds, 1); /* io_uring's eventfd */
	uint64_t end = vio_now_ns() + 10000000000ull;
	for (unsigned round = 0; round < 400 && vio_now_ns() < end; round++) {
		unsigned want = 1 + (unsigned)(test_rand(&c.rs) % NSLOT);
		for (unsigned i = 0; i < want; i++)
			if (!add_one(&c))
				break;
		kick0(e);
		/* some turns only: requests stay in flight across kicks */
		unsigned turns = (unsigned)(test_rand(&c.rs) % 3);
		for (unsigned i = 0; i < turns; i++)
			tloop_turn(&t, 1);
		/* busy-poll turns do not sleep: spin until something
		 * completes (5 ms at most) */
		uint64_t spin_end = vio_now_ns() + 5000000u;
		while (!harvest(&c) && busy_poll && turns &&
		       vio_now_ns() < spin_end)
			tloop_turn(&t, 0);
	}
	settle_loop(&c, &t);
	if (!busy_poll) {
		/* idle: the completion eventfd is left unreadable (at most
		 * one more call drains it), so a loop sleeps, not spins */
		tloop_turn(&t, 0);
		CHECK_EQ(tloop_turn(&t, 0), 0);
	}
	CHECK(c.completed > 200);
	CHECK(c.out_of_order > 0);
	printf("  loop%s: %llu requests, %llu completed out of order\n",
	       busy_poll ? " (busy-poll)" : "", (unsigned long long)c.completed,
	       (unsigned long long)c.out_of_order);
	check_stats(&c);
	check_image(&c);
	CHECK_EQ(vio_blk_device_drain(e->bd, 1000), 0);

	/* queue_stop with requests in flight: all pushed by the stop */
	for (unsigned i = 0; i < NSLOT; i++)
		if (!add_one(&c))
			break;
	kick0(e);
	vio_device_queue_stop(e->dev, 0);
	CHECK_EQ(t.nfds, 0); /* the eventfd was removed */
	CHECK_EQ(e->bd->q[0].owed, 0);
	harvest(&c);
	CHECK_EQ(c.inflight, 0);
	CHECK_EQ(vio_blk_device_drain(e->bd, 0), 0);
	check_stats(&c);

	/* started again: serves more */
	CHECK_EQ(vio_device_queue_start(e->dev, 0, &t.l), 0);
	for (unsigned i = 0; i < 20; i++)
		REQUIRE(add_one(&c));
	kick0(e);
	settle_loop(&c, &t);
	vio_device_queue_stop(e->dev, 0);
	check_stats(&c);
	check_image(&c);
	e->bd->test_async_pct = 0;
}

/* Without a loop: each kick completes everything it popped. */
static void test_no_loop(struct tenv *e, uint64_t seed)
{
	static struct actx c;
	actx_init(&c, e, seed);
	e->bd->test_async_pct = 50;
	CHECK_EQ(vio_device_queue_start(e->dev, 0, NULL), 0);
	for (unsigned round = 0; round < 100; round++) {
		unsigned want = 1 + (unsigned)(test_rand(&c.rs) % NSLOT);
		for (unsigned i = 0; i < want; i++)
			if (!add_one(&c))
				break;
		kick0(e);
		CHECK_EQ(e->bd->q[0].owed, 0);
		harvest(&c);
		CHECK_EQ(c.inflight, 0);
	}
	CHECK(c.out_of_order > 0);
	vio_device_queue_stop(e->dev, 0);
	check_stats(&c);
	check_image(&c);
	e->bd->test_async_pct = 0;
}

static void run_all(bool packed)
{
	struct tenv e;
	struct opts o = {.uring = true, .packed = packed};
	printf("io_uring, %s ring\n", packed ? "packed" : "split");
	uint64_t seed = test_seed() ^ (packed ? 0x5a5a : 0);

	o.file = "async.img";
	if (!env_open(&e, &o))
		return;
	test_loop(&e, false, seed);
	env_close(&e);

	o.file = "async-poll.img";
	if (env_open(&e, &o)) {
		test_loop(&e, true, seed + 1);
		env_close(&e);
	}

	o.file = "async-noloop.img";
	if (env_open(&e, &o)) {
		test_no_loop(&e, seed + 2);
		env_close(&e);
	}

	/* writethrough: inline writes, then an fsync on the ring */
	o.no_flush = true;
	o.file = "async-wt.img";
	if (env_open(&e, &o)) {
		test_loop(&e, false, seed + 3);
		env_close(&e);
	}
}

int main(void)
{
	blk_tmpdir_setup();
	run_all(false);
	run_all(true);
	return test_result("blk_device_async");
}
