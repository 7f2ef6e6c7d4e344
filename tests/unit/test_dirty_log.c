/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page logging in the ring layer (src/ring/dirtylog.h): the bitmap
 * arithmetic, and for every device write path the exact set of pages
 * marked: the buffers the device fills (straddling pages and memory
 * regions, direct and indirect), the split used entry, used->idx and
 * avail_event, the packed write-back and device event area; a packed
 * chain whose ring descriptors were overwritten before it completes;
 * nothing at all once the log is detached; a packed buffer id that
 * cannot be recorded breaks the queue only while logging.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "ring/dirtylog.h"
#include "ring_env.h"
#include "test.h"
#include <vio/mem.h>
#include <vio/ring.h>

#define PG 4096u

struct env {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	struct vio_vq_layout l;
	uint8_t *arena;
	uint64_t arena_da, region_da;
	struct vio_dirty_log log;
	uint8_t *want; /* expected bitmap */
};

/* stripe: the device's table splits the driver's memory into regions of
 * stripe bytes, adjacent in device address space (0: one region). */
static void env_init(struct env *e, uint16_t qsz, bool packed, bool event_idx,
		     bool indirect, uint32_t stripe)
{
	memset(e, 0, sizeof(*e));
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 8 << 20, NULL) == 0);
	struct vio_region rr = *vio_mem_region(e->mem, 0);
	rr.fd = -1;
	e->region_da = rr.addr;
	e->mt = ring_env_table(&rr, stripe, 1);
	struct vio_vq_opts c = {.size = qsz,
				.packed = packed,
				.event_idx = event_idx,
				.indirect = indirect,
				.name = "dlog"};
	e->drv = vio_vq_new_driver(&c, e->mem);
	REQUIRE(e->drv);
	vio_vq_get_layout(e->drv, &e->l);
	e->dev = vio_vq_new_device(&c, &e->l, e->mt);
	REQUIRE(e->dev);
	e->arena = vio_mem_alloc(e->mem, 1 << 20, PG, &e->arena_da);
	REQUIRE(e->arena);
	e->log.size = ((rr.addr + rr.size) >> 15) + 1;
	e->log.bits = calloc(1, e->log.size);
	e->want = calloc(1, e->log.size);
	REQUIRE(e->log.bits && e->want);
}

static void env_fini(struct env *e)
{
	vio_vq_free(e->dev);
	vio_vq_free(e->drv);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
	free(e->log.bits);
	free(e->want);
}

static void attach(struct env *e)
{
	struct vio_vq_log_opts o = {.log = &e->log,
				    .ring = true,
				    .device_gpa = e->l.device_addr,
				    .desc_gpa = e->l.desc_addr};
	REQUIRE(vio_vq_set_log(e->dev, &o) == 0);
	/* attaching logs the device area once: start from a clean slate */
	memset(e->log.bits, 0, e->log.size);
}

static void clear(struct env *e)
{
	memset(e->log.bits, 0, e->log.size);
	memset(e->want, 0, e->log.size);
}

static void want(struct env *e, uint64_t gpa, uint64_t len)
{
	for (uint64_t p = gpa / PG; p <= (gpa + len - 1) / PG; p++)
		e->want[p >> 3] |= (uint8_t)(1u << (p & 7));
}

static uint64_t da(struct env *e, const void *p)
{
	return e->arena_da + (uint64_t)((const uint8_t *)p - e->arena);
}

/* The log holds exactly the pages wanted. */
static void check_log(struct env *e, const char *what)
{
	if (memcmp(e->log.bits, e->want, e->log.size) == 0) {
		TEST_COUNT(test_checks);
		return;
	}
	for (uint64_t i = 0; i < e->log.size; i++) {
		if (e->log.bits[i] == e->want[i])
			continue;
		TEST_COUNT(test_failures);
		fprintf(stderr,
			"%s: log byte %llu (pages %llu..): 0x%02x, want "
			"0x%02x\n",
			what, (unsigned long long)i, (unsigned long long)i * 8,
			e->log.bits[i], e->want[i]);
		return;
	}
	TEST_COUNT(test_checks);
}

/* Driver adds one chain; device pops it, fills every writable byte. */
static void add(struct env *e, struct vio_sg *sg, unsigned out, unsigned in,
		void *token)
{
	REQUIRE(vio_vq_add(e->drv, sg, out, in, token) == 0);
	vio_vq_kick_prepare(e->drv);
}

static uint32_t pop_fill(struct env *e, struct vio_chain *c)
{
	struct vio_iov iov[32];
	REQUIRE(vio_vq_pop(e->dev, c, iov, 32) == 1);
	for (unsigned i = 0; i < c->nr_in; i++)
		memset(c->in[i].base, 0xab, c->in[i].len);
	return c->in_len;
}

static void test_bitmap(void)
{
	uint8_t bits[4] = {0};
	struct vio_dirty_log l = {bits, sizeof(bits)};
	CHECK_EQ(vio_dirty_log_range(&l, 5 * PG, 0), 0);
	CHECK_EQ(bits[0], 0);
	vio_dirty_log_range(&l, 5 * PG + 4095, 2); /* pages 5, 6 */
	CHECK_EQ(bits[0], 0x60);
	vio_dirty_log_range(&l, 7 * PG, 10 * PG); /* 7..16 */
	CHECK_EQ(bits[0], 0xe0);
	CHECK_EQ(bits[1], 0xff);
	CHECK_EQ(bits[2], 0x01);
	CHECK(vio_dirty_log_test(&l, 16 * PG + 5));
	CHECK(!vio_dirty_log_test(&l, 17 * PG));
	/* past the end: counted, the part inside logged */
	CHECK_EQ(vio_dirty_log_range(&l, 30 * PG, 4 * PG), 2);
	CHECK_EQ(bits[3], 0xc0);
	CHECK_EQ(vio_dirty_log_range(&l, 1000 * PG, 1), 1);
	CHECK_EQ(vio_dirty_log_range(&l, UINT64_MAX - 10, 100) > 0, 1);
	CHECK(!vio_dirty_log_test(&l, 1000 * PG));
}

/*
 * One chain: a readable header, writable buffers that straddle a page
 * boundary, span three pages, and (stripe) cross a region boundary.
 * Exactly those writable pages and the ring's own are logged.
 */
static void test_paths(bool packed, bool event_idx, bool indirect,
		       uint32_t stripe, uint16_t qsz)
{
	struct env e;
	char what[96];
	snprintf(what, sizeof(what), "%s%s%s stripe %u qsz %u",
		 packed ? "packed" : "split", event_idx ? " event_idx" : "",
		 indirect ? " indirect" : "", stripe, qsz);
	env_init(&e, qsz, packed, event_idx, indirect, stripe);
	attach(&e);
	for (unsigned round = 0; round < 3 * qsz; round++) {
		clear(&e);
		uint8_t *a = e.arena;
		struct vio_sg sg[4] = {
		    {a + 20 * PG + 8, 64},     /* readable */
		    {a + 3 * PG - 50, 100},    /* pages 2, 3 */
		    {a + 8 * PG + 10, 2 * PG}, /* pages 8..10 */
		    {NULL, 0},
		};
		unsigned in = 2;
		if (stripe) { /* across the first region boundary */
			uint64_t off =
			    stripe - (e.arena_da - e.region_da) % stripe;
			sg[3] = (struct vio_sg){a + off - 20, 40};
			in = 3;
		}
		add(&e, sg, 1, in, &e);
		struct vio_chain c;
		uint32_t len = pop_fill(&e, &c);
		for (unsigned k = 1; k <= in; k++)
			want(&e, da(&e, sg[k].buf), sg[k].len);
		/* the ring: what pop and push write */
		if (packed) {
			uint16_t slot =
			    (uint16_t)((round * (indirect ? 1 : 1 + in)) % qsz);
			want(&e, e.l.desc_addr + 16u * slot, 16);
			if (event_idx)
				want(&e, e.l.device_addr, 4);
		} else {
			want(&e, e.l.device_addr + 4 + 8u * (round % qsz), 8);
			want(&e, e.l.device_addr + 2, 2);
			if (event_idx)
				want(&e, e.l.device_addr + 4 + 8u * qsz, 2);
		}
		REQUIRE(vio_vq_push(e.dev, c.head, len) == 0);
		check_log(&e, what);
		uint32_t got;
		CHECK(vio_vq_get(e.drv, &got) == &e);
		CHECK_EQ(got, len);
	}
	/* the split avail_event on its own: re-armed on an empty pop */
	if (!packed && event_idx) {
		clear(&e);
		struct vio_chain c;
		struct vio_iov iov[4];
		CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), 0);
		want(&e, e.l.device_addr + 4 + 8u * qsz, 2);
		check_log(&e, what);
	}
	/* the device's notification switch */
	clear(&e);
	vio_vq_disable_notify(e.dev);
	if (packed)
		want(&e, e.l.device_addr, 4);
	else if (!event_idx)
		want(&e, e.l.device_addr, 2);
	check_log(&e, what);
	vio_vq_enable_notify(e.dev);

	/* detached: nothing is logged any more */
	REQUIRE(vio_vq_set_log(e.dev, NULL) == 0);
	clear(&e);
	for (unsigned round = 0; round < 4; round++) {
		struct vio_sg sg[2] = {{e.arena + 20 * PG, 64},
				       {e.arena + 5 * PG, 3 * PG}};
		add(&e, sg, 1, 1, &e);
		struct vio_chain c;
		uint32_t len = pop_fill(&e, &c);
		REQUIRE(vio_vq_push(e.dev, c.head, len) == 0);
		CHECK(vio_vq_get(e.drv, NULL) == &e);
	}
	vio_vq_disable_notify(e.dev);
	vio_vq_enable_notify(e.dev);
	check_log(&e, what);
	env_fini(&e);
}

/*
 * Packed, completions out of order: chain A's ring descriptors are
 * overwritten (B's write-back, then C's descriptors) before A completes;
 * A's push still logs A's buffer, not C's.
 */
static void test_packed_reorder(void)
{
	struct env e;
	env_init(&e, 4, true, false, false, 0);
	attach(&e);
	uint8_t *a = e.arena;
	int ta, tb, tc;
	struct vio_sg sa[2] = {{a, 16}, {a + 10 * PG, 100}};
	struct vio_sg sb[2] = {{a, 16}, {a + 20 * PG, 100}};
	struct vio_sg sc[2] = {{a, 16}, {a + 30 * PG, 100}};
	add(&e, sa, 1, 1, &ta);
	add(&e, sb, 1, 1, &tb);
	struct vio_chain ca, cb, cc;
	pop_fill(&e, &ca);
	pop_fill(&e, &cb);
	clear(&e);
	REQUIRE(vio_vq_push(e.dev, cb.head, 100) == 0);
	want(&e, da(&e, sb[1].buf), 100);
	want(&e, e.l.desc_addr, 16);
	check_log(&e, "reorder B");
	CHECK(vio_vq_get(e.drv, NULL) == &tb);
	add(&e, sc, 1, 1, &tc); /* slots 0 and 1: A's descriptors */
	pop_fill(&e, &cc);
	clear(&e);
	REQUIRE(vio_vq_push(e.dev, ca.head, 100) == 0);
	want(&e, da(&e, sa[1].buf), 100);
	want(&e, e.l.desc_addr + 32, 16);
	check_log(&e, "reorder A");
	clear(&e);
	REQUIRE(vio_vq_push(e.dev, cc.head, 100) == 0);
	want(&e, da(&e, sc[1].buf), 100);
	want(&e, e.l.desc_addr + 0, 16); /* wrapped: slot 0 */
	check_log(&e, "reorder C");
	CHECK(vio_vq_get(e.drv, NULL) == &ta);
	CHECK(vio_vq_get(e.drv, NULL) == &tc);
	CHECK(!vio_vq_broken(e.dev));
	env_fini(&e);
}

/* A batch of pushes: every buffer and every used entry. */
static void test_batch(bool packed)
{
	struct env e;
	env_init(&e, 16, packed, true, false, 0);
	attach(&e);
	int tok[8];
	struct vio_chain c[8];
	struct vio_used u[8];
	for (unsigned i = 0; i < 8; i++) {
		struct vio_sg sg = {e.arena + (40 + 3 * i) * PG, 10};
		add(&e, &sg, 0, 1, &tok[i]);
	}
	clear(&e);
	for (unsigned i = 0; i < 8; i++) {
		pop_fill(&e, &c[i]);
		u[7 - i] = (struct vio_used){c[i].head, 10};
		want(&e, da(&e, e.arena + (40 + 3 * i) * PG), 10);
		if (packed) /* write-backs; the split table is only read */
			want(&e, e.l.desc_addr + 16u * i, 16);
		else
			want(&e, e.l.device_addr + 4 + 8u * i, 8);
	}
	if (packed) {
		want(&e, e.l.device_addr, 4); /* avail event */
	} else {
		want(&e, e.l.device_addr + 2, 2);	    /* idx */
		want(&e, e.l.device_addr + 4 + 8u * 16, 2); /* avail_event */
	}
	REQUIRE(vio_vq_push_batch(e.dev, u, 8) == 0);
	check_log(&e, packed ? "batch packed" : "batch split");
	env_fini(&e);
}

/* A packed buffer id out of range cannot be recorded: while logging, the
 * queue breaks (its writes could not be logged); without a log the ring
 * layer lets it through (the driver's end catches the id). */
static void test_packed_bad_id(bool logging)
{
	struct env e;
	env_init(&e, 16, true, false, false, 0);
	if (logging)
		attach(&e);
	struct vio_sg sg[2] = {{e.arena, 16}, {e.arena + PG, 16}};
	add(&e, sg, 1, 1, &e);
	struct vring_packed_desc *d = e.l.desc;
	d[1].id = htole16(200); /* the last descriptor's id counts */
	struct vio_chain c;
	struct vio_iov iov[4];
	int r = vio_vq_pop(e.dev, &c, iov, 4);
	if (logging) {
		CHECK_EQ(r, -EIO);
		CHECK(vio_vq_broken(e.dev));
		CHECK(strstr(vio_vq_error(e.dev), "dirty log") != NULL);
	} else {
		CHECK_EQ(r, 1);
		CHECK(!vio_vq_broken(e.dev));
	}
	env_fini(&e);
}

int main(void)
{
	test_bitmap();
	for (int packed = 0; packed < 2; packed++)
		for (int ev = 0; ev < 2; ev++)
			for (int ind = 0; ind < 2; ind++) {
				test_paths(packed, ev, ind, 0, 16);
				test_paths(packed, ev, ind, 64 << 10, 16);
			}
	test_paths(false, true, false, 0, 1024); /* avail_event: own page */
	test_paths(true, true, true, 0, 1024);
	test_packed_reorder();
	test_batch(false);
	test_batch(true);
	test_packed_bad_id(false);
	test_packed_bad_id(true);
	return test_result("dirty_log");
}
