/* SPDX-License-Identifier: MIT */
/*
 * Memory layer unit tests, the driver side (struct vio_mem): device
 * address layout, alignment in both spaces, a seeded random
 * alloc/release run with every byte checked, coalescing, growth,
 * vio_mem_daddr bounds, bad releases, threads.
 * The device side (struct vio_memtable): test_memtable.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "mem_env.h"
#include "test.h"
#include <vio/mem.h>

/* ---- driver side ---- */

static void test_layout(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	CHECK_EQ(vio_mem_region_count(m), 0);
	CHECK(vio_mem_region(m, 0) == NULL);

	struct vio_region r[4];
	CHECK_EQ(vio_mem_add_region(m, 1, &r[0]), 0);
	CHECK_EQ(vio_mem_add_region(m, 3 * MiB, &r[1]), 0);
	CHECK_EQ(vio_mem_add_region(m, 2 * MiB, &r[2]), 0);
	CHECK_EQ(vio_mem_add_region(m, 5000, &r[3]), 0);
	CHECK_EQ(vio_mem_add_region(m, 0, NULL), -EINVAL);
	CHECK_EQ(vio_mem_region_count(m), 4);
	CHECK(vio_mem_region(m, 4) == NULL);

	CHECK_EQ(r[0].addr, 0x100000000ull);
	CHECK_EQ(r[0].size, page);
	CHECK_EQ(r[1].size, 3 * MiB);
	CHECK_EQ(r[3].size, 2 * page);
	for (int i = 0; i < 4; i++) {
		const struct vio_region *g = vio_mem_region(m, (unsigned)i);
		REQUIRE(g);
		CHECK(memcmp(g, &r[i], sizeof(*g)) == 0);
		CHECK(r[i].fd >= 0 && fd_is_open(r[i].fd));
		CHECK_EQ(r[i].offset, 0);
		CHECK_EQ(r[i].addr % (2 * MiB), 0);
		CHECK_EQ((uintptr_t)r[i].ptr % (2 * MiB), 0);
		CHECK_EQ(r[i].uaddr, (uintptr_t)r[i].ptr);
		/* close-on-exec, and sealed against shrinking */
		CHECK(fcntl(r[i].fd, F_GETFD) & FD_CLOEXEC);
		int seals = fcntl(r[i].fd, F_GET_SEALS);
		CHECK(seals >= 0 && (seals & F_SEAL_SHRINK));
		CHECK(ftruncate(r[i].fd, 0) < 0);
		if (i > 0)
			CHECK(r[i].addr >=
			      r[i - 1].addr + r[i - 1].size + page);
		/* device addresses are far from pointers */
		CHECK(vio_mem_daddr(m, (void *)(uintptr_t)r[i].addr, 1) ==
		      VIO_BAD_ADDR);
		memset(r[i].ptr, 0xa5, r[i].size);
	}
	vio_mem_free(m);
	vio_mem_free(NULL);
}

static void test_alignment(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	uint64_t da;
	for (size_t a = 1; a <= 8 * MiB; a <<= 1) {
		for (int k = 0; k < 3; k++) {
			size_t sz = 1 + (size_t)k * 37;
			uint8_t *p = vio_mem_alloc(m, sz, a, &da);
			REQUIRE(p);
			CHECK_EQ((uintptr_t)p % a, 0);
			CHECK_EQ(da % a, 0);
			CHECK_EQ(vio_mem_daddr(m, p, sz), da);
			memset(p, (int)k, sz);
		}
	}
	/* not powers of two, zero size */
	size_t bad[] = {0, 3, 24, 100, 4097, SIZE_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		CHECK(vio_mem_alloc(m, 64, bad[i], &da) == NULL);
		CHECK_EQ(errno, EINVAL);
	}
	errno = 0;
	CHECK(vio_mem_alloc(m, 0, 16, &da) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(vio_mem_alloc(m, SIZE_MAX - 3, 16, &da) == NULL);
	CHECK(errno != 0);
	errno = 0;
	CHECK(vio_mem_alloc(m, SIZE_MAX / 2, 4096, &da) == NULL);
	CHECK(errno != 0);
	/* daddr may be NULL */
	CHECK(vio_mem_alloc(m, 8, 8, NULL) != NULL);
	vio_mem_free(m);
}

struct blk {
	uint8_t *p;
	size_t len;
	uint64_t da;
	uint8_t tag;
};

static bool blk_intact(const struct blk *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->p[i] != (uint8_t)(b->tag + i))
			return false;
	return true;
}

/* After everything is released, each region must be one free extent:
 * allocating its whole size, in region order, lands at its start. */
static void check_fully_coalesced(struct vio_mem *m)
{
	unsigned n = vio_mem_region_count(m);
	void *ps[64];
	REQUIRE(n <= 64);
	for (unsigned i = 0; i < n; i++) {
		const struct vio_region *r = vio_mem_region(m, i);
		uint64_t da;
		ps[i] = vio_mem_alloc(m, r->size, 16, &da);
		CHECK(ps[i] == r->ptr);
		CHECK_EQ(da, r->addr);
	}
	CHECK_EQ(vio_mem_region_count(m), n);
	for (unsigned i = 0; i < n; i++)
		vio_mem_release(m, ps[i]);
}

static void test_random(uint64_t *seed)
{
	enum { SLOTS = 512, OPS = 20000 };
	static struct blk b[SLOTS];
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	memset(b, 0, sizeof(b));
	int bad = 0, mism = 0;
	for (int op = 0; op < OPS; op++) {
		struct blk *x = &b[test_rand(seed) % SLOTS];
		if (x->p) {
			if (!blk_intact(x))
				bad++;
			vio_mem_release(m, x->p);
			x->p = NULL;
			continue;
		}
		uint64_t r = test_rand(seed);
		x->len = 1 + (r % 8 == 0 ? r % 70000 : r % 600);
		size_t align = (size_t)1 << ((r >> 20) % 13);
		x->p = vio_mem_alloc(m, x->len, align, &x->da);
		REQUIRE(x->p);
		if ((uintptr_t)x->p % align || x->da % align ||
		    vio_mem_daddr(m, x->p, x->len) != x->da)
			mism++;
		x->tag = (uint8_t)r;
		for (size_t i = 0; i < x->len; i++)
			x->p[i] = (uint8_t)(x->tag + i);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(mism, 0);
	/* these sizes fit the first 4 MiB region many times over */
	CHECK(vio_mem_region_count(m) >= 1 && vio_mem_region_count(m) <= 3);
	for (int i = 0; i < SLOTS; i++) {
		if (b[i].p) {
			CHECK(blk_intact(&b[i]));
			vio_mem_release(m, b[i].p);
		}
	}
	check_fully_coalesced(m);
	vio_mem_free(m);
}

static void test_coalesce(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	REQUIRE(vio_mem_add_region(m, 4 * MiB, NULL) == 0);
	uint64_t da[4];
	uint8_t *p[4];
	for (int i = 0; i < 4; i++) {
		p[i] = vio_mem_alloc(m, MiB, 16, &da[i]);
		REQUIRE(p[i]);
		if (i)
			CHECK(p[i] == p[i - 1] + MiB);
	}
	CHECK_EQ(vio_mem_region_count(m), 1);
	/* b, c freed: 2 MiB only fits if they merged */
	vio_mem_release(m, p[1]);
	vio_mem_release(m, p[2]);
	uint64_t d2;
	uint8_t *q = vio_mem_alloc(m, 2 * MiB, 16, &d2);
	CHECK(q == p[1]);
	CHECK_EQ(d2, da[1]);
	CHECK_EQ(vio_mem_region_count(m), 1);
	vio_mem_release(m, q);
	/* a, c, then b in the middle: merges on both sides */
	vio_mem_release(m, p[0]);
	q = vio_mem_alloc(m, 3 * MiB, 16, &d2);
	CHECK(q == p[0]);
	vio_mem_release(m, q);
	vio_mem_release(m, p[3]);
	check_fully_coalesced(m);
	CHECK_EQ(vio_mem_region_count(m), 1);

	/* alignment padding is not lost */
	uint8_t *s = vio_mem_alloc(m, 16, 16, NULL);
	uint8_t *t = vio_mem_alloc(m, 16, 4096, NULL);
	uint8_t *u = vio_mem_alloc(m, 16, 16, NULL);
	CHECK(s == p[0]);
	CHECK(t == p[0] + 4096);
	CHECK(u == p[0] + 16);
	vio_mem_release(m, s);
	vio_mem_release(m, t);
	vio_mem_release(m, u);
	check_fully_coalesced(m);
	vio_mem_free(m);
}

static void test_growth(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	REQUIRE(vio_mem_add_region(m, MiB, NULL) == 0);
	uint64_t da;
	uint8_t *a = vio_mem_alloc(m, MiB - 64, 16, &da);
	REQUIRE(a);
	CHECK_EQ(vio_mem_region_count(m), 1);
	/* does not fit in what is left of region 0 */
	uint8_t *b = vio_mem_alloc(m, 128, 16, &da);
	REQUIRE(b);
	CHECK_EQ(vio_mem_region_count(m), 2);
	const struct vio_region *r1 = vio_mem_region(m, 1);
	REQUIRE(r1);
	CHECK_EQ(r1->size, 4 * MiB);
	CHECK(b == r1->ptr);
	CHECK_EQ(da, r1->addr);
	/* small ones still go to region 0's tail (first fit) */
	uint8_t *c = vio_mem_alloc(m, 32, 16, &da);
	CHECK(c == a + MiB - 64);
	/* bigger than 4 MiB: region of size + align */
	uint8_t *d = vio_mem_alloc(m, 5 * MiB, 4096, &da);
	REQUIRE(d);
	CHECK_EQ(vio_mem_region_count(m), 3);
	const struct vio_region *r2 = vio_mem_region(m, 2);
	CHECK(r2->size >= 5 * MiB + 4096);
	CHECK(r2->addr >= r1->addr + r1->size + page);
	CHECK_EQ(r2->addr % (2 * MiB), 0);
	memset(d, 1, 5 * MiB);
	/* large alignment: a fresh region aligned to it in both spaces */
	uint8_t *e = vio_mem_alloc(m, 100, 16 * MiB, &da);
	REQUIRE(e);
	CHECK_EQ((uintptr_t)e % (16 * MiB), 0);
	CHECK_EQ(da % (16 * MiB), 0);
	vio_mem_release(m, a);
	vio_mem_release(m, b);
	vio_mem_release(m, c);
	vio_mem_release(m, d);
	vio_mem_release(m, e);
	check_fully_coalesced(m);
	vio_mem_free(m);

	/* an alignment larger than a region's is not served from it, even
	 * where offset 0 is free */
	m = vio_mem_new();
	REQUIRE(m);
	REQUIRE(vio_mem_add_region(m, 4 * MiB, NULL) == 0);
	e = vio_mem_alloc(m, 64, 64 * MiB, &da);
	REQUIRE(e);
	CHECK_EQ((uintptr_t)e % (64 * MiB), 0);
	CHECK_EQ(da % (64 * MiB), 0);
	vio_mem_free(m);
}

static void test_daddr_bounds(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	struct vio_region r0, r1;
	REQUIRE(vio_mem_add_region(m, 64 * 1024, &r0) == 0);
	REQUIRE(vio_mem_add_region(m, 64 * 1024, &r1) == 0);
	uint8_t *p0 = r0.ptr, *p1 = r1.ptr;
	int local;

	CHECK_EQ(vio_mem_daddr(m, p0, r0.size), r0.addr);
	CHECK_EQ(vio_mem_daddr(m, p0, 0), r0.addr);
	CHECK_EQ(vio_mem_daddr(m, p0 + r0.size - 1, 1), r0.addr + r0.size - 1);
	CHECK_EQ(vio_mem_daddr(m, p0 + r0.size - 1, 2), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(m, p0, r0.size + 1), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(m, p0 + 100, SIZE_MAX), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(m, p0 + 100, SIZE_MAX - 50), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(m, p1 + 5, 10), r1.addr + 5);
	CHECK_EQ(vio_mem_daddr(m, p1 - 1, 2), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(m, &local, sizeof(local)), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(m, NULL, 0), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(m, (void *)(UINTPTR_MAX - 3), 8), VIO_BAD_ADDR);
	CHECK_EQ(vio_mem_daddr(NULL, p0, 1), VIO_BAD_ADDR);
	/* a range from region 0 into region 1 is refused, even where
	 * the two happen to be adjacent in this process */
	if (p0 + r0.size == p1)
		CHECK_EQ(vio_mem_daddr(m, p0 + r0.size - 8, 16), VIO_BAD_ADDR);
	if (p1 + r1.size == p0)
		CHECK_EQ(vio_mem_daddr(m, p1 + r1.size - 8, 16), VIO_BAD_ADDR);
	/* past the end of region 0 in its own reservation */
	CHECK_EQ(vio_mem_daddr(m, p0 + r0.size, 1),
		 p0 + r0.size == p1 ? r1.addr : VIO_BAD_ADDR);
	vio_mem_free(m);
}

static void test_bad_release(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	uint64_t da;
	uint8_t *a = vio_mem_alloc(m, 256, 16, &da);
	uint8_t *b = vio_mem_alloc(m, 256, 16, &da);
	REQUIRE(a && b);
	memset(b, 0x5a, 256);
	int local;
	vio_mem_release(m, NULL);
	vio_mem_release(m, &local);   /* logged once */
	vio_mem_release(m, a + 16);   /* inside a block */
	vio_mem_release(m, a + 4096); /* free space */
	vio_mem_release(m, a);
	vio_mem_release(m, a); /* double */
	vio_mem_release(NULL, a);
	/* b untouched, and nothing handed out twice */
	uint8_t *c = vio_mem_alloc(m, 256, 16, &da);
	uint8_t *d = vio_mem_alloc(m, 256, 16, &da);
	CHECK(c == a);
	CHECK(d != a && d != b && (d + 256 <= b || d >= b + 256));
	bool ok = true;
	for (int i = 0; i < 256; i++)
		ok = ok && b[i] == 0x5a;
	CHECK(ok);
	vio_mem_release(m, b);
	vio_mem_release(m, c);
	vio_mem_release(m, d);
	check_fully_coalesced(m);
	vio_mem_free(m);
}

struct thr {
	struct vio_mem *m;
	uint64_t seed;
	int errors;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct blk b[32] = {0};
	for (int op = 0; op < 4000; op++) {
		struct blk *x = &b[test_rand(&t->seed) % 32];
		if (x->p) {
			if (!blk_intact(x) ||
			    vio_mem_daddr(t->m, x->p, x->len) != x->da)
				t->errors++;
			vio_mem_release(t->m, x->p);
			x->p = NULL;
			continue;
		}
		uint64_t r = test_rand(&t->seed);
		x->len = 1 + r % 3000;
		x->p = vio_mem_alloc(t->m, x->len, 64, &x->da);
		if (!x->p) {
			t->errors++;
			continue;
		}
		x->tag = (uint8_t)(r >> 32);
		for (size_t i = 0; i < x->len; i++)
			x->p[i] = (uint8_t)(x->tag + i);
	}
	for (int i = 0; i < 32; i++) {
		if (b[i].p && !blk_intact(&b[i]))
			t->errors++;
		vio_mem_release(t->m, b[i].p);
	}
	return NULL;
}

static void test_threads(uint64_t *seed)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	REQUIRE(vio_mem_add_region(m, 64 * 1024, NULL) == 0);
	struct thr t[4];
	pthread_t id[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){.m = m, .seed = test_rand(seed) | 1};
		REQUIRE(pthread_create(&id[i], NULL, thr_main, &t[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(id[i], NULL);
		CHECK_EQ(t[i].errors, 0);
	}
	check_fully_coalesced(m);
	vio_mem_free(m);
}

int main(void)
{
	uint64_t seed = test_seed();
	mem_env_init();
	printf("test_mem: seed 0x%llx\n", (unsigned long long)seed);

	test_layout();
	test_alignment();
	test_random(&seed);
	test_coalesce();
	test_growth();
	test_daddr_bounds();
	test_bad_release();
	test_threads(&seed);
	return test_result("test_mem");
}
