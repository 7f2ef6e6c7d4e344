/* SPDX-License-Identifier: MIT */
/*
 * The hostile-driver table (harness: ring_hostile.h), addresses and
 * limits: wrapping and unmapped addresses, buffers and tables across
 * region ends and across adjacent regions, zero-length descriptors,
 * max_iov, the 4 GiB total.  The shape of a chain: test_ring_hostile.c.
 */
#include "ring_hostile.h"

/* ---- cases: addresses ---- */

static void c_wrap(struct h *h)
{
	struct d d = rd(UINT64_MAX - 7, 16);
	chain(h, &d, 1);
}

static void c_wrap_last_byte(struct h *h)
{
	/* the last byte is 2^64 - 1: no wrap, but never mapped (a region
	 * may not end at 2^64) */
	struct d d = rd(UINT64_MAX - 15, 16);
	chain(h, &d, 1);
}

static void c_wrap_indirect_entry(struct h *h)
{
	struct d e = fl(UINT64_MAX, 2, F_WRITE);
	struct d d = fl(itable(h, &e, 1), 16, F_IND);
	chain(h, &d, 1);
}

static void c_wrap_indirect_table(struct h *h)
{
	struct d d = fl(UINT64_MAX - 15, 32, F_IND);
	chain(h, &d, 1);
}

static void c_unmapped(struct h *h)
{
	struct d d = rd(0x1000, 16);
	chain(h, &d, 1);
}

static void c_unmapped_second(struct h *h)
{
	struct d d[2] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 fl(ALIAS_ADDR + 2 * ALIAS_LEN + 64, 8, F_WRITE)};
	chain(h, d, 2);
}

static void c_unmapped_in_indirect(struct h *h)
{
	struct d e[2] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 rd(h->r0.addr - 4096, 8)};
	struct d d = fl(itable(h, e, 2), 32, F_IND);
	chain(h, &d, 1);
}

static void c_straddle_r0_end(struct h *h)
{
	struct d d = rd(h->r0.addr + h->r0.size - 8, 16);
	chain(h, &d, 1);
}

static void c_straddle_alias_end(struct h *h)
{
	struct d d = fl(ALIAS_ADDR + 2 * ALIAS_LEN - 1, 2, F_WRITE);
	chain(h, &d, 1);
}

static void c_before_r0(struct h *h)
{
	/* starts in the unmapped gap, ends inside R0 */
	struct d d = rd(h->r0.addr - 8, 16);
	chain(h, &d, 1);
}

static void c_indirect_unmapped(struct h *h)
{
	struct d d = fl(0x2000, 32, F_IND);
	chain(h, &d, 1);
}

/* the table's first entry is mapped and legal, the second is not */
static void c_indirect_straddle_unmapped(struct h *h)
{
	struct d e[2] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	itable_at(h, h->alias_b + ALIAS_LEN - 16, e, 1);
	struct d d = fl(ALIAS_ADDR + 2 * ALIAS_LEN - 16, 32, F_IND);
	chain(h, &d, 1);
}

/* The table's mapped first entry ends the chain (split: no NEXT), so
 * the walk never reaches the unmapped part: the table is still refused,
 * every byte of it must be mapped. */
static void c_indirect_tail_unmapped(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	itable_at(h, h->alias_b + ALIAS_LEN - 16, &e, 1);
	struct d d = fl(ALIAS_ADDR + 2 * ALIAS_LEN - 16, 32, F_IND);
	chain(h, &d, 1);
}

/* positive: one buffer across the two adjacent ALIAS regions becomes two
 * segments, each pointing into its own backing block */
static void c_straddle_adjacent(struct h *h)
{
	for (unsigned i = 0; i < 100; i++) {
		h->alias_a[ALIAS_LEN - 100 + i] = (uint8_t)i;
		h->alias_b[i] = (uint8_t)(100 + i);
	}
	struct d d[2] = {fl(ALIAS_ADDR + ALIAS_LEN - 100, 200, F_NEXT),
			 fl(ALIAS_ADDR + ALIAS_LEN - 10, 20, F_WRITE)};
	chain(h, d, 2);
	expect_seg(h, h->alias_a + ALIAS_LEN - 100, 100);
	expect_cont(h, h->alias_b, 100);
	expect_seg(h, h->alias_a + ALIAS_LEN - 10, 10);
	expect_cont(h, h->alias_b, 10);
	h->exp.nr_out = 2;
	h->exp.nr_in = 2;
	expect_nd(h, 1, 1);
	h->exp.out_len = 200;
	h->exp.in_len = 20;
}

/* positive: in an indirect table, descriptors within one region, across
 * the boundary, and again within one: segments 1 + 2 + 1, descriptors
 * 1 + 2 (seg_max and size_max are per descriptor) */
static void c_indirect_cross_counts(struct h *h)
{
	struct d e[3] = {fl(ALIAS_ADDR, 64, F_NEXT),
			 fl(ALIAS_ADDR + ALIAS_LEN - 32, 96, F_NEXT | F_WRITE),
			 fl(ALIAS_ADDR + ALIAS_LEN + 100, 8, F_WRITE)};
	struct d d = fl(itable(h, e, 3), 48, F_IND);
	chain(h, &d, 1);
	expect_seg(h, h->alias_a, 64);
	expect_seg(h, h->alias_a + ALIAS_LEN - 32, 32);
	expect_cont(h, h->alias_b, 64);
	expect_seg(h, h->alias_b + 100, 8);
	h->exp.nr_out = 1;
	h->exp.nr_in = 3;
	expect_nd(h, 1, 2);
	h->exp.out_len = 64;
	h->exp.in_len = 104;
}

/* positive: an indirect table across the two adjacent ALIAS regions */
static void c_indirect_straddle_adjacent(struct h *h)
{
	struct d e[4];
	uint8_t *p[4];
	for (unsigned k = 0; k < 4; k++)
		e[k] = fl(
		    buf(h, 8u + k, &p[k]), 8u + k,
		    (uint16_t)((k < 3 ? F_NEXT : 0) | (k >= 2 ? F_WRITE : 0)));
	/* entry 0 in A, entry 1 split 8/8 over A and B, entries 2, 3 in B */
	uint8_t tmp[64];
	itable_at(h, tmp, e, 4);
	memcpy(h->alias_a + ALIAS_LEN - 24, tmp, 24);
	memcpy(h->alias_b, tmp + 24, 40);
	struct d d = fl(ALIAS_ADDR + ALIAS_LEN - 24, 64, F_IND);
	chain(h, &d, 1);
	for (unsigned k = 0; k < 4; k++)
		expect_seg(h, p[k], 8u + k);
	h->exp.nr_out = 2;
	h->exp.nr_in = 2;
	h->exp.out_len = 8 + 9;
	h->exp.in_len = 10 + 11;
}

static void c_zero_length(struct h *h)
{
	uint8_t *p1, *p3;
	struct d d[5] = {fl(buf(h, 8, NULL), 0, F_NEXT),
			 fl(buf(h, 16, &p1), 16, F_NEXT),
			 fl(0, 0, F_NEXT), /* unmapped, but no byte to map */
			 fl(buf(h, 8, &p3), 8, F_WRITE | F_NEXT),
			 fl(buf(h, 8, NULL), 0, F_WRITE)};
	chain(h, d, 5);
	expect_seg(h, p1, 16);
	expect_seg(h, p3, 8);
	h->exp.nr_out = 1;
	h->exp.nr_in = 1;
	expect_nd(h, 3, 2); /* a zero-length descriptor is no segment */
	h->exp.out_len = 16;
	h->exp.in_len = 8;
}

static void c_zero_length_indirect(struct h *h)
{
	uint8_t *p;
	struct d e[3] = {fl(0, 0, F_NEXT), fl(buf(h, 4, &p), 4, F_NEXT),
			 fl(0x1000, 0, F_WRITE)};
	struct d d = fl(itable(h, e, 3), 48, F_IND);
	chain(h, &d, 1);
	expect_seg(h, p, 4);
	h->exp.nr_out = 1;
	h->exp.out_len = 4;
}

/* ---- cases: limits ---- */

static void c_max_iov(struct h *h)
{
	struct d d[4];
	for (unsigned k = 0; k < 4; k++)
		d[k] = fl(buf(h, 8, NULL), 8, k < 3 ? F_NEXT : 0);
	chain(h, d, 4);
}

/* one descriptor over two adjacent regions needs two segments */
static void c_max_iov_straddle(struct h *h)
{
	struct d d = rd(ALIAS_ADDR + ALIAS_LEN - 8, 16);
	chain(h, &d, 1);
}

static void c_max_iov_indirect(struct h *h)
{
	struct d e[4];
	for (unsigned k = 0; k < 4; k++)
		e[k] = fl(buf(h, 8, NULL), 8, k < 3 ? F_NEXT : 0);
	struct d d = fl(itable(h, e, 4), 64, F_IND);
	chain(h, &d, 1);
}

static void c_max_iov_zero(struct h *h)
{
	struct d d = rd(buf(h, 8, NULL), 8);
	chain(h, &d, 1);
}

/* positive: exactly max_iov (3) segments, one from a straddle */
static void c_max_iov_exact(struct h *h)
{
	uint8_t *p;
	struct d d[2] = {fl(buf(h, 8, &p), 8, F_NEXT),
			 fl(ALIAS_ADDR + ALIAS_LEN - 8, 16, F_WRITE)};
	chain(h, d, 2);
	expect_seg(h, p, 8);
	expect_seg(h, h->alias_a + ALIAS_LEN - 8, 8);
	expect_cont(h, h->alias_b, 8);
	h->exp.nr_out = 1;
	h->exp.nr_in = 2;
	expect_nd(h, 1, 1);
	h->exp.out_len = 8;
	h->exp.in_len = 16;
}

static void c_4g_out(struct h *h)
{
	struct d d[2] = {fl(BIG_ADDR, 0xc0000000u, F_NEXT),
			 rd(BIG_ADDR, 0x40000000u)};
	chain(h, d, 2);
}

static void c_4g_in(struct h *h)
{
	struct d d[3] = {fl(BIG_ADDR, 0xffffffffu, F_WRITE | F_NEXT),
			 fl(BIG_ADDR, 0, F_WRITE | F_NEXT),
			 fl(BIG_ADDR, 1, F_WRITE)};
	chain(h, d, 3);
}

static void c_4g_indirect(struct h *h)
{
	struct d e[3] = {fl(BIG_ADDR, 0x80000000u, F_NEXT),
			 fl(BIG_ADDR + 4096, 0x7fffffffu, F_NEXT),
			 rd(BIG_ADDR, 1)};
	struct d d = fl(itable(h, e, 3), 48, F_IND);
	chain(h, &d, 1);
}

/* positive: 4 GiB - 1 in each direction is the limit (used.len is 32
 * bits and counts only written bytes); never touched: PROT_NONE */
static void c_4g_limit(struct h *h)
{
	struct d d[3] = {fl(BIG_ADDR, 0x80000000u, F_NEXT),
			 fl(BIG_ADDR + 1, 0x7fffffffu, F_NEXT),
			 fl(BIG_ADDR + 4096, 0xffffffffu, F_WRITE)};
	chain(h, d, 3);
	h->exp.nr_out = 2;
	h->exp.nr_in = 1;
	h->exp.out_len = 0xffffffffu;
	h->exp.in_len = 0xffffffffu;
	expect_seg(h, (uint8_t *)h->big, 0x80000000u);
	expect_seg(h, (uint8_t *)h->big + 1, 0x7fffffffu);
	expect_seg(h, (uint8_t *)h->big + 4096, 0xffffffffu);
}

#define NOT_MAPPED "is not in mapped memory"
#define WRAPS "wraps"

static const struct hcase cases[] = {
    /* addresses */
    {"address + length wraps", FMT_BOTH, c_wrap, WRAPS},
    {"buffer ends at 2^64", FMT_BOTH, c_wrap_last_byte,
     "descriptor 0xfffffffffffffff0+16 is not in mapped memory"},
    {"indirect entry wraps", FMT_BOTH, c_wrap_indirect_entry, WRAPS},
    {"indirect table wraps", FMT_BOTH, c_wrap_indirect_table,
     "indirect table 0xfffffffffffffff0 wraps"},
    {"unmapped address", FMT_BOTH, c_unmapped,
     "descriptor 0x1000+16 is not in mapped memory"},
    {"second descriptor unmapped", FMT_BOTH, c_unmapped_second, NOT_MAPPED},
    {"unmapped entry in indirect table", FMT_BOTH, c_unmapped_in_indirect,
     NOT_MAPPED},
    {"buffer straddles region end into unmapped", FMT_BOTH, c_straddle_r0_end,
     NOT_MAPPED},
    {"writable straddles adjacent regions' end", FMT_BOTH, c_straddle_alias_end,
     NOT_MAPPED},
    {"buffer starts before a region", FMT_BOTH, c_before_r0, NOT_MAPPED},
    {"indirect table unmapped", FMT_BOTH, c_indirect_unmapped,
     "indirect table 0x2000+32 is not in mapped memory"},
    {"indirect table straddles into unmapped", FMT_BOTH,
     c_indirect_straddle_unmapped,
     "indirect table 0x100000001ff0+32 is not in mapped memory"},
    {"indirect table's unreached tail unmapped", FMT_BOTH,
     c_indirect_tail_unmapped,
     "indirect table 0x100000001ff0+32 is not in mapped memory"},
    {"buffer across adjacent regions", FMT_BOTH, c_straddle_adjacent, NULL, 1},
    {"indirect descriptors across regions: counts", FMT_BOTH,
     c_indirect_cross_counts, NULL, 1},
    {"indirect table across adjacent regions", FMT_BOTH,
     c_indirect_straddle_adjacent, NULL, 1},
    {"zero-length descriptors", FMT_BOTH, c_zero_length, NULL, 1},
    {"zero-length indirect entries", FMT_BOTH, c_zero_length_indirect, NULL, 1},
    /* limits */
    /* legal, more segments than max_iov: -E2BIG, not broken */
    {"more segments than max_iov", FMT_BOTH, c_max_iov, NULL, -E2BIG, false, 3},
    {"straddle needs more than max_iov", FMT_BOTH, c_max_iov_straddle, NULL,
     -E2BIG, false, 1},
    {"indirect needs more than max_iov", FMT_BOTH, c_max_iov_indirect, NULL,
     -E2BIG, false, 3},
    {"max_iov 0", FMT_BOTH, c_max_iov_zero, NULL, -E2BIG, false, MAX_IOV + 1},
    {"exactly max_iov segments", FMT_BOTH, c_max_iov_exact, NULL, 1, false, 3},
    {"readable total over 4 GiB", FMT_BOTH, c_4g_out,
     "chain longer than 4 GiB"},
    {"writable total over 4 GiB", FMT_BOTH, c_4g_in, "chain longer than 4 GiB"},
    {"indirect total over 4 GiB", FMT_BOTH, c_4g_indirect,
     "chain longer than 4 GiB"},
    {"4 GiB - 1 each way", FMT_BOTH, c_4g_limit, NULL, 1},
};

int main(void)
{
	return rh_main(cases, sizeof(cases) / sizeof(cases[0]),
		       "ring_hostile_addr");
}
