/* SPDX-License-Identifier: MIT */
/*
 * Memory layer unit tests, the device side (struct vio_memtable): mapping
 * a vio_mem region by fd (same bytes through both mappings), the refusals
 * (each closing the fd), translation inside one region, across adjacent
 * ones, at exact bounds, near 2^64, -ENOBUFS, 509 regions, overlaps,
 * removal, fd leaks; the data path's hinted one-region lookup.
 * The driver side (struct vio_mem): test_mem.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "mem/memtable_hint.h"
#include "mem_env.h"
#include "test.h"
#include <vio/mem.h>

/* ---- device side ---- */

/* The driver's regions, mapped by fd on the device side: same bytes. */
static void test_map_shared(uint64_t *seed)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	struct vio_memtable *mt = vio_memtable_new(8);
	REQUIRE(mt);
	uint64_t da[64];
	uint8_t *p[64];
	size_t len[64];
	for (int i = 0; i < 64; i++) {
		len[i] = 1 + test_rand(seed) % 300000;
		p[i] = vio_mem_alloc(m, len[i], 64, &da[i]);
		REQUIRE(p[i]);
	}
	REQUIRE(vio_mem_region_count(m) >= 2);
	for (unsigned i = 0; i < vio_mem_region_count(m); i++) {
		struct vio_region r = *vio_mem_region(m, i);
		r.fd = dup(r.fd);
		REQUIRE(r.fd >= 0);
		r.ptr = NULL;
		CHECK_EQ(vio_memtable_map(mt, &r), 0);
	}
	CHECK_EQ(vio_memtable_count(mt), vio_mem_region_count(m));
	int same = 0, back = 0, distinct = 0;
	for (int i = 0; i < 64; i++) {
		for (size_t k = 0; k < len[i]; k++)
			p[i][k] = (uint8_t)(i * 7 + k);
		uint8_t *h = vio_memtable_ptr(mt, da[i], len[i]);
		REQUIRE(h);
		distinct += h != p[i];
		same += memcmp(h, p[i], len[i]) == 0;
		h[len[i] - 1] ^= 0xff;
		back += p[i][len[i] - 1] ==
			(uint8_t) ~(uint8_t)(i * 7 + len[i] - 1);
		struct vio_iov iov[2];
		CHECK_EQ(
		    vio_memtable_translate(mt, da[i], (uint32_t)len[i], iov, 2),
		    1);
		CHECK(iov[0].base == h && iov[0].len == len[i]);
	}
	CHECK_EQ(same, 64);
	CHECK_EQ(back, 64);
	CHECK_EQ(distinct, 64);
	vio_memtable_free(mt);
	vio_mem_free(m);
}

/* Offsets into the fd: page-aligned and not. */
static void test_map_offset(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	struct vio_region r0;
	REQUIRE(vio_mem_add_region(m, 1 * MiB, &r0) == 0);
	uint8_t *d = r0.ptr;
	for (size_t i = 0; i < r0.size; i++)
		d[i] = (uint8_t)(i * 13 + (i >> 8));
	struct vio_memtable *mt = vio_memtable_new(4);
	REQUIRE(mt);
	uint64_t offs[] = {page, 100, 3 * page + 7};
	for (int i = 0; i < 3; i++) {
		struct vio_region r = {.addr =
					   0x200000000ull * (uint64_t)(i + 1),
				       .size = 3 * page,
				       .offset = offs[i],
				       .fd = dup(r0.fd)};
		REQUIRE(r.fd >= 0);
		CHECK_EQ(vio_memtable_map(mt, &r), 0);
		uint8_t *h = vio_memtable_ptr(mt, r.addr, r.size);
		REQUIRE(h);
		CHECK(memcmp(h, d + offs[i], r.size) == 0);
		CHECK(vio_memtable_ptr(mt, r.addr, r.size + 1) == NULL);
	}
	vio_memtable_free(mt);
	vio_mem_free(m);
}

/* Every refusal of vio_memtable_map closes the fd it was given. */
static void test_map_refusals(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	struct vio_region r0;
	REQUIRE(vio_mem_add_region(m, MiB, &r0) == 0);
	struct vio_memtable *mt = vio_memtable_new(2);
	REQUIRE(mt);
	struct vio_region ok = {.addr = 0x10000, .size = 2 * page, .fd = -1};

	struct {
		struct vio_region r;
		int err;
	} cases[] = {
	    {{.addr = 0x10000, .size = 0}, -EINVAL},
	    {{.addr = UINT64_MAX - page + 1, .size = page}, -EINVAL},
	    {{.addr = UINT64_MAX - 10, .size = page}, -EINVAL},
	    {{.addr = 0x90000, .size = page, .uaddr = UINT64_MAX - 100},
	     -EINVAL},
	    {{.addr = 0x90000, .size = page, .offset = UINT64_MAX - 100},
	     -EINVAL},
	    {{.addr = 0x90000, .size = page, .offset = INT64_MAX}, -EINVAL},
	    /* more than the file holds */
	    {{.addr = 0x90000, .size = MiB + page}, -EINVAL},
	    {{.addr = 0x90000, .size = page, .offset = MiB}, -EINVAL},
	    /* overlaps "ok" */
	    {{.addr = 0x10000, .size = page}, -EEXIST},
	    {{.addr = 0x10000 + page, .size = 4 * page}, -EEXIST},
	    {{.addr = 0x10000 - page, .size = 2 * page}, -EEXIST},
	    {{.addr = 0x10000 - page, .size = 4 * page}, -EEXIST},
	};
	int fd = dup(r0.fd);
	REQUIRE(fd >= 0);
	ok.fd = fd;
	CHECK_EQ(vio_memtable_map(mt, &ok), 0);
	CHECK(fd_is_open(fd));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cases[i].r.fd = dup(r0.fd);
		REQUIRE(cases[i].r.fd >= 0);
		int e = vio_memtable_map(mt, &cases[i].r);
		if (e != cases[i].err)
			fprintf(stderr, "case %zu: %d\n", i, e);
		CHECK_EQ(e, cases[i].err);
		CHECK(!fd_is_open(cases[i].r.fd));
	}
	CHECK_EQ(vio_memtable_count(mt), 1);
	/* bad fd */
	struct vio_region nf = {.addr = 0x900000, .size = page, .fd = -1};
	CHECK_EQ(vio_memtable_map(mt, &nf), -EBADF);
	/* full: one more fits, then -ENOSPC */
	struct vio_region r2 = {.addr = 0x20000, .size = page};
	r2.fd = dup(r0.fd);
	CHECK_EQ(vio_memtable_map(mt, &r2), 0);
	r2.addr = 0x40000;
	r2.fd = dup(r0.fd);
	CHECK_EQ(vio_memtable_map(mt, &r2), -ENOSPC);
	CHECK(!fd_is_open(r2.fd));
	/* removal closes the fd it owned */
	CHECK_EQ(vio_memtable_remove(mt, ok.addr, ok.size + 1), -ENOENT);
	CHECK_EQ(vio_memtable_remove(mt, ok.addr + 1, ok.size), -ENOENT);
	CHECK(fd_is_open(fd));
	CHECK_EQ(vio_memtable_remove(mt, ok.addr, ok.size), 0);
	CHECK(!fd_is_open(fd));
	CHECK_EQ(vio_memtable_remove(mt, ok.addr, ok.size), -ENOENT);
	CHECK_EQ(vio_memtable_count(mt), 1);
	CHECK(vio_memtable_ptr(mt, ok.addr, 1) == NULL);
	vio_memtable_free(mt);
	vio_mem_free(m);
}

static void test_translate(void)
{
	const size_t half = 64 * 1024;
	uint8_t *buf = malloc(2 * half + 4096);
	REQUIRE(buf);
	struct vio_memtable *mt = vio_memtable_new(16);
	REQUIRE(mt);
	const uint64_t A = 0x40000000, B = A + half, C = B + half + 4096;
	struct vio_region ra = {.addr = A, .size = half, .fd = -1, .ptr = buf};
	struct vio_region rb = {
	    .addr = B, .size = half, .fd = -1, .ptr = buf + half};
	struct vio_region rc = {
	    .addr = C, .size = 4096, .fd = -1, .ptr = buf + 2 * half};
	/* added out of order: kept sorted */
	CHECK_EQ(vio_memtable_add(mt, &rc), 0);
	CHECK_EQ(vio_memtable_add(mt, &rb), 0);
	CHECK_EQ(vio_memtable_add(mt, &ra), 0);
	CHECK_EQ(vio_memtable_add(mt, &ra), -EEXIST);
	struct vio_region np = {.addr = 0x1000, .size = 1, .fd = -1};
	CHECK_EQ(vio_memtable_add(mt, &np), -EINVAL);
	np.ptr = buf;
	np.size = 0;
	CHECK_EQ(vio_memtable_add(mt, &np), -EINVAL);
	CHECK_EQ(vio_memtable_count(mt), 3);

	struct vio_iov iov[4];
	/* inside one region */
	CHECK_EQ(vio_memtable_translate(mt, A + 10, 100, iov, 4), 1);
	CHECK(iov[0].base == buf + 10 && iov[0].len == 100);
	/* across A and B */
	CHECK_EQ(vio_memtable_translate(mt, B - 5, 20, iov, 4), 2);
	CHECK(iov[0].base == buf + half - 5 && iov[0].len == 5);
	CHECK(iov[1].base == buf + half && iov[1].len == 15);
	CHECK_EQ(vio_memtable_translate(mt, A, 2 * half, iov, 4), 2);
	CHECK(iov[0].len == half && iov[1].len == half);
	/* ... but not as one pointer */
	CHECK(vio_memtable_ptr(mt, B - 5, 20) == NULL);
	CHECK(vio_memtable_ptr(mt, B - 5, 5) == buf + half - 5);
	/* too many segments; unmapped wins over too many */
	CHECK_EQ(vio_memtable_translate(mt, B - 5, 20, iov, 1), -ENOBUFS);
	CHECK_EQ(vio_memtable_translate(mt, B - 5, 20, NULL, 0), -ENOBUFS);
	CHECK_EQ(vio_memtable_translate(mt, A, 2 * half + 1, iov, 1), -EFAULT);
	/* the gap between B and C */
	CHECK_EQ(vio_memtable_translate(mt, B + half - 1, 2, iov, 4), -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, B + half, 1, iov, 4), -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, C - 1, 2, iov, 4), -EFAULT);
	CHECK(vio_memtable_ptr(mt, B + half, 1) == NULL);
	/* exact bounds of C */
	CHECK_EQ(vio_memtable_translate(mt, C, 4096, iov, 4), 1);
	CHECK_EQ(vio_memtable_translate(mt, C + 4095, 1, iov, 4), 1);
	CHECK(iov[0].base == buf + 2 * half + 4095);
	CHECK_EQ(vio_memtable_translate(mt, C + 4096, 1, iov, 4), -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, C + 1, 4096, iov, 4), -EFAULT);
	CHECK(vio_memtable_ptr(mt, C, 4096) == buf + 2 * half);
	CHECK(vio_memtable_ptr(mt, C, 4097) == NULL);
	CHECK(vio_memtable_ptr(mt, C + 4095, 1) != NULL);
	CHECK(vio_memtable_ptr(mt, C + 4096, 0) == NULL);
	CHECK(vio_memtable_ptr(mt, C + 4095, 0) != NULL);
	CHECK(vio_memtable_ptr(mt, C + 1, UINT64_MAX) == NULL);
	/* below everything */
	CHECK_EQ(vio_memtable_translate(mt, A - 1, 1, iov, 4), -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, 0, 1, iov, 4), -EFAULT);
	CHECK(vio_memtable_ptr(mt, A - 1, 2) == NULL);
	/* len 0 */
	CHECK_EQ(vio_memtable_translate(mt, A, 0, iov, 4), 0);
	CHECK_EQ(vio_memtable_translate(mt, 12345, 0, NULL, 0), 0);

	/* near 2^64: a region may not end at 2^64; one just below may */
	struct vio_region top = {
	    .addr = UINT64_MAX - 4095, .size = 4096, .fd = -1, .ptr = buf};
	CHECK_EQ(vio_memtable_add(mt, &top), -EINVAL);
	top.addr = UINT64_MAX - 8191;
	CHECK_EQ(vio_memtable_add(mt, &top), 0);
	CHECK_EQ(vio_memtable_translate(mt, top.addr, 4096, iov, 4), 1);
	CHECK_EQ(vio_memtable_translate(mt, top.addr + 4095, 1, iov, 4), 1);
	CHECK_EQ(vio_memtable_translate(mt, top.addr + 4095, 2, iov, 4),
		 -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, UINT64_MAX - 10, 100, iov, 4),
		 -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, UINT64_MAX, 1, iov, 4), -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, UINT64_MAX, UINT32_MAX, iov, 4),
		 -EFAULT);
	CHECK(vio_memtable_ptr(mt, top.addr, UINT64_MAX) == NULL);
	CHECK(vio_memtable_ptr(mt, UINT64_MAX, 1) == NULL);
	/* uaddr wrap is refused too */
	struct vio_region uw = {.addr = 0x100,
				.size = 4096,
				.uaddr = UINT64_MAX - 4095,
				.ptr = buf};
	CHECK_EQ(vio_memtable_add(mt, &uw), -EINVAL);

	/* removal leaves the neighbours alone */
	CHECK_EQ(vio_memtable_remove(mt, B, half), 0);
	CHECK_EQ(vio_memtable_translate(mt, B - 5, 20, iov, 4), -EFAULT);
	CHECK_EQ(vio_memtable_translate(mt, B - 5, 5, iov, 4), 1);
	CHECK_EQ(vio_memtable_translate(mt, C, 1, iov, 4), 1);
	vio_memtable_clear(mt);
	CHECK_EQ(vio_memtable_count(mt), 0);
	CHECK_EQ(vio_memtable_translate(mt, A, 1, iov, 4), -EFAULT);
	CHECK(vio_memtable_ptr(mt, A, 1) == NULL);

	/* one buffer cut into 8 adjacent regions */
	for (int i = 0; i < 8; i++) {
		struct vio_region r = {.addr = A + (uint64_t)i * 1000,
				       .size = 1000,
				       .fd = -1,
				       .ptr = buf + i * 1000};
		CHECK_EQ(vio_memtable_add(mt, &r), 0);
	}
	struct vio_iov big[8];
	CHECK_EQ(vio_memtable_translate(mt, A + 1, 7998, big, 8), 8);
	CHECK(big[0].base == buf + 1 && big[0].len == 999);
	CHECK(big[7].base == buf + 7000 && big[7].len == 999);
	CHECK_EQ(vio_memtable_translate(mt, A + 1, 7998, big, 7), -ENOBUFS);
	vio_memtable_free(mt);
	free(buf);
}

/*
 * The data path's one-region lookup with a per-queue hint: the same
 * answers as vio_memtable_ptr whatever the hint holds (stale, out of
 * range, another region's), NULL for a range that crosses regions or is
 * not mapped (those go to vio_memtable_translate), and a table that
 * changed under an old hint answers from the table as it is.
 */
static void test_ptr_hint(void)
{
	const size_t sz = 8192;
	uint8_t *buf = malloc(3 * sz);
	REQUIRE(buf);
	struct vio_memtable *mt = vio_memtable_new(8);
	REQUIRE(mt);
	const uint64_t A = 0x100000, B = A + sz, C = 0x900000;
	struct vio_region ra = {.addr = A, .size = sz, .fd = -1, .ptr = buf};
	struct vio_region rb = {
	    .addr = B, .size = sz, .fd = -1, .ptr = buf + sz};
	struct vio_region rc = {
	    .addr = C, .size = sz, .fd = -1, .ptr = buf + 2 * sz};
	CHECK_EQ(vio_memtable_add(mt, &ra), 0);
	CHECK_EQ(vio_memtable_add(mt, &rb), 0);
	CHECK_EQ(vio_memtable_add(mt, &rc), 0);
	const unsigned hints[] = {0, 1, 2, 3, 7, 1000, UINT32_MAX};
	for (unsigned k = 0; k < sizeof(hints) / sizeof(hints[0]); k++) {
		unsigned h = hints[k];
		CHECK(vio_memtable_ptr_hint(mt, A + 5, 100, &h) == buf + 5);
		CHECK_EQ(h, 0);
		h = hints[k];
		CHECK(vio_memtable_ptr_hint(mt, C + sz - 1, 1, &h) ==
		      buf + 3 * sz - 1);
		CHECK_EQ(h, 2);
		h = hints[k];
		/* across A and B: adjacent, but not one region */
		CHECK(vio_memtable_ptr_hint(mt, B - 1, 2, &h) == NULL);
		h = hints[k];
		/* past C, in the gap, below everything, near 2^64 */
		CHECK(vio_memtable_ptr_hint(mt, C + sz - 1, 2, &h) == NULL);
		CHECK(vio_memtable_ptr_hint(mt, C + sz, 1, &h) == NULL);
		CHECK(vio_memtable_ptr_hint(mt, B + sz, 1, &h) == NULL);
		CHECK(vio_memtable_ptr_hint(mt, A - 1, 1, &h) == NULL);
		CHECK(vio_memtable_ptr_hint(mt, 0, 1, &h) == NULL);
		CHECK(vio_memtable_ptr_hint(mt, UINT64_MAX, UINT32_MAX, &h) ==
		      NULL);
		CHECK(vio_memtable_ptr_hint(mt, A + 1, UINT32_MAX, &h) == NULL);
	}
	/* a hint that hits stays; a right hint past the region's end is
	 * not taken for a hit */
	unsigned h = 1;
	CHECK(vio_memtable_ptr_hint(mt, B, (uint32_t)sz, &h) == buf + sz);
	CHECK_EQ(h, 1);
	CHECK(vio_memtable_ptr_hint(mt, B + 1, (uint32_t)sz, &h) == NULL);
	/* the table changes under the hint: B removed, C's slot moves */
	h = 1;
	CHECK_EQ(vio_memtable_remove(mt, B, sz), 0);
	CHECK(vio_memtable_ptr_hint(mt, B + 10, 1, &h) == NULL);
	CHECK(vio_memtable_ptr_hint(mt, C + 10, 1, &h) == buf + 2 * sz + 10);
	CHECK_EQ(h, 1);
	vio_memtable_clear(mt);
	h = 0;
	CHECK(vio_memtable_ptr_hint(mt, A, 1, &h) == NULL);
	vio_memtable_free(mt);
	free(buf);
}

static void test_uptr(void)
{
	uint8_t *buf = malloc(3 * 4096);
	REQUIRE(buf);
	struct vio_memtable *mt = vio_memtable_new(4);
	REQUIRE(mt);
	struct vio_region a = {.addr = 0x1000,
			       .size = 4096,
			       .uaddr = 0x7f0000001000,
			       .fd = -1,
			       .ptr = buf};
	struct vio_region b = {
	    .addr = 0x0, .size = 4096, .fd = -1, .ptr = buf + 4096};
	CHECK_EQ(vio_memtable_add(mt, &a), 0);
	CHECK_EQ(vio_memtable_add(mt, &b), 0);
	CHECK(vio_memtable_uptr(mt, 0x7f0000001000, 4096) == buf);
	CHECK(vio_memtable_uptr(mt, 0x7f0000001010, 16) == buf + 16);
	CHECK(vio_memtable_uptr(mt, 0x7f0000001fff, 1) == buf + 4095);
	CHECK(vio_memtable_uptr(mt, 0x7f0000001fff, 2) == NULL);
	CHECK(vio_memtable_uptr(mt, 0x7f0000002000, 1) == NULL);
	CHECK(vio_memtable_uptr(mt, 0x7f0000000fff, 1) == NULL);
	CHECK(vio_memtable_uptr(mt, 0x7f0000001010, UINT64_MAX) == NULL);
	/* b has no uaddr: 0 matches nothing */
	CHECK(vio_memtable_uptr(mt, 0, 1) == NULL);
	CHECK(vio_memtable_uptr(mt, 0x10, 1) == NULL);
	CHECK(vio_memtable_ptr(mt, 0x10, 1) == buf + 4096 + 0x10);
	vio_memtable_free(mt);
	free(buf);
}

static void test_many_regions(uint64_t *seed)
{
	enum { N = 509 };
	const size_t sz = 4096;
	uint8_t *buf = malloc(N * sz);
	REQUIRE(buf);
	for (size_t i = 0; i < N * sz; i++)
		buf[i] = (uint8_t)(i / sz);
	struct vio_memtable *mt = vio_memtable_new(N);
	REQUIRE(mt);
	unsigned order[N];
	for (unsigned i = 0; i < N; i++)
		order[i] = i;
	for (unsigned i = N - 1; i > 0; i--) {
		unsigned j = (unsigned)(test_rand(seed) % (i + 1));
		unsigned t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	/* region i at 0x10000 * (i + 1), every other pair adjacent */
	int fails = 0;
	for (unsigned k = 0; k < N; k++) {
		unsigned i = order[k];
		struct vio_region r = {.addr = 0x10000ull * (i + 1) -
					       (i % 2 ? 0x10000 - sz : 0),
				       .size = sz,
				       .fd = -1,
				       .ptr = buf + i * sz};
		fails += vio_memtable_add(mt, &r) != 0;
	}
	CHECK_EQ(fails, 0);
	CHECK_EQ(vio_memtable_count(mt), N);
	struct vio_region extra = {
	    .addr = 0x10000000, .size = sz, .fd = -1, .ptr = buf};
	CHECK_EQ(vio_memtable_add(mt, &extra), -ENOSPC);

	int bad = 0;
	for (unsigned i = 0; i < N; i++) {
		uint64_t a = 0x10000ull * (i + 1) - (i % 2 ? 0x10000 - sz : 0);
		uint8_t *p = vio_memtable_ptr(mt, a + 5, 10);
		if (p != buf + i * sz + 5 || *p != (uint8_t)i)
			bad++;
		if (vio_memtable_ptr(mt, a + sz - 1, 1) !=
		    buf + i * sz + sz - 1)
			bad++;
		struct vio_iov iov[2];
		int n = vio_memtable_translate(mt, a + sz - 4, 8, iov, 2);
		/* even i: region i + 1 starts at a + sz */
		if (i % 2 == 0 && i + 1 < N) {
			if (n != 2 || iov[1].base != buf + (i + 1) * sz)
				bad++;
		} else if (n != -EFAULT) {
			bad++;
		}
		if (i % 2 == 1 && vio_memtable_ptr(mt, a + sz, 1) != NULL)
			bad++;
	}
	CHECK_EQ(bad, 0);
	/* remove every third; the rest still resolve */
	for (unsigned i = 0; i < N; i += 3) {
		uint64_t a = 0x10000ull * (i + 1) - (i % 2 ? 0x10000 - sz : 0);
		CHECK_EQ(vio_memtable_remove(mt, a, sz), 0);
	}
	bad = 0;
	for (unsigned i = 0; i < N; i++) {
		uint64_t a = 0x10000ull * (i + 1) - (i % 2 ? 0x10000 - sz : 0);
		uint8_t *p = vio_memtable_ptr(mt, a, sz);
		if (i % 3 == 0 ? p != NULL : p != buf + i * sz)
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(vio_memtable_count(mt), N - (N + 2) / 3);
	CHECK_EQ(vio_memtable_add(mt, &extra), 0);
	vio_memtable_free(mt);
	free(buf);

	CHECK(vio_memtable_new(0) == NULL);
	CHECK(vio_memtable_new(UINT32_MAX) == NULL);
	vio_memtable_free(NULL);
}

static void test_fd_leaks(void)
{
	int before = test_count_fds();
	REQUIRE(before > 0);
	for (int i = 0; i < 100; i++) {
		struct vio_mem *m = vio_mem_new();
		REQUIRE(m);
		struct vio_region r;
		REQUIRE(vio_mem_add_region(m, 64 * 1024, &r) == 0);
		REQUIRE(vio_mem_alloc(m, 5 * MiB, 64, NULL));
		struct vio_memtable *mt = vio_memtable_new(2);
		REQUIRE(mt);
		r.fd = dup(r.fd);
		CHECK_EQ(vio_memtable_map(mt, &r), 0);
		r.fd = dup(vio_mem_region(m, 1)->fd);
		r.addr += 2 * r.size;
		CHECK_EQ(vio_memtable_map(mt, &r), 0);
		r.fd = dup(r.fd); /* refused: full */
		r.addr += 2 * r.size;
		CHECK_EQ(vio_memtable_map(mt, &r), -ENOSPC);
		if (i % 2)
			vio_memtable_clear(mt);
		vio_memtable_free(mt);
		vio_mem_free(m);
	}
	CHECK_EQ(test_count_fds(), before);
}

int main(void)
{
	uint64_t seed = test_seed();
	mem_env_init();
	printf("memtable: seed 0x%llx\n", (unsigned long long)seed);

	test_map_shared(&seed);
	test_map_offset();
	test_map_refusals();
	test_translate();
	test_ptr_hint();
	test_uptr();
	test_many_regions(&seed);
	test_fd_leaks();
	return test_result("memtable");
}
