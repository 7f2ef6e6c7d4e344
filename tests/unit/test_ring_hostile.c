/* SPDX-License-Identifier: MIT */
/*
 * The hostile-driver table (harness: ring_hostile.h), the shape of a
 * chain: its length and loops, head and next indices, the available
 * index, indirect tables, direction, packed wrap counters.  Addresses and
 * limits: test_ring_hostile_addr.c.
 */
#include "ring_hostile.h"

/* ---- cases: chain length and loops ---- */

static void c_loop_self(struct h *h)
{
	struct d d = fl(buf(h, 8, NULL), 8, F_NEXT);
	d.next = 0;
	chain(h, &d, 1);
}

static void c_loop_two(struct h *h)
{
	uint64_t a = buf(h, 8, NULL);
	struct d d[2] = {fl(a, 8, F_NEXT), fl(a, 8, F_NEXT)};
	d[1].next = 0; /* 0 -> 1 -> 0 */
	chain(h, d, 2);
}

/* split: every descriptor of the table in one cycle; packed: a ring full
 * of NEXT, every slot available in this lap. */
static void c_loop_full(struct h *h)
{
	struct d d[64];
	uint64_t a = buf(h, 8, NULL);
	REQUIRE(h->size <= 64);
	for (unsigned k = 0; k < h->size; k++)
		d[k] = fl(a, 8, F_NEXT);
	d[h->size - 1].next = 0;
	chain(h, d, h->size);
}

/* size - 1 direct descriptors, then an indirect table of two: size + 1 */
static void c_longer_than_queue(struct h *h)
{
	struct d d[64], e[2];
	uint64_t a = buf(h, 8, NULL);
	REQUIRE(h->size <= 64);
	for (unsigned k = 0; k < 2; k++)
		e[k] = fl(a, 8, k ? 0 : F_NEXT);
	for (unsigned k = 0; k + 1 < h->size; k++)
		d[k] = fl(a, 8, F_NEXT);
	d[h->size - 1] = fl(itable(h, e, 2), 32, F_IND);
	chain(h, d, h->size);
}

/* positive: exactly queue-size descriptors */
static void c_exactly_queue(struct h *h)
{
	struct d d[64];
	REQUIRE(h->size <= 64);
	for (unsigned k = 0; k < h->size; k++) {
		uint8_t *p;
		uint64_t a = buf(h, 4, &p);
		d[k] = fl(a, 4, k + 1 < h->size ? F_NEXT : 0);
		if (k < 4)
			expect_seg(h, p, 4);
	}
	h->exp.nr_out = h->size;
	h->exp.out_len = 4u * h->size;
	chain(h, d, h->size);
}

/* positive: size - 1 direct descriptors and a one-entry indirect table */
static void c_exactly_queue_indirect(struct h *h)
{
	struct d d[64], e;
	uint64_t a = buf(h, 4, NULL);
	REQUIRE(h->size <= 64);
	for (unsigned k = 0; k + 1 < h->size; k++)
		d[k] = fl(a, 4, F_NEXT);
	e = fl(a, 4, F_WRITE);
	d[h->size - 1] = fl(itable(h, &e, 1), 16, F_IND);
	h->exp.nr_out = h->size - 1u;
	h->exp.nr_in = 1;
	h->exp.out_len = 4u * (h->size - 1u);
	h->exp.in_len = 4;
	chain(h, d, h->size);
}

/* ---- cases: indices ---- */

static void c_head_range(struct h *h)
{
	struct d d = rd(buf(h, 8, NULL), 8);
	split_desc(h, 0, &d, 0);
	split_publish(h, h->size);
}

static void c_head_ffff(struct h *h)
{
	struct d d = rd(buf(h, 8, NULL), 8);
	split_desc(h, 0, &d, 0);
	split_publish(h, 0xffff);
}

static void c_next_range(struct h *h)
{
	struct d d = fl(buf(h, 8, NULL), 8, F_NEXT);
	d.next = h->size;
	chain(h, &d, 1);
}

static void c_avail_jump(struct h *h)
{
	struct vring_avail *av = h->l.driver;
	struct d d = rd(buf(h, 8, NULL), 8);
	for (unsigned k = 0; k < h->size; k++) {
		split_desc(h, (uint16_t)k, &d, 0);
		av->ring[k] = htole16((uint16_t)k);
	}
	av->idx = htole16((uint16_t)(h->size + 1));
}

static void c_avail_backwards(struct h *h)
{
	struct vring_avail *av = h->l.driver;
	av->idx = htole16(0xffff); /* one behind the device's 0 */
}

/* positive: the avail index wraps through 65535 to 0 */
static void c_avail_idx_wrap(struct h *h)
{
	vio_vq_set_base(h->vq, 0xfffe);
	h->sidx = 0xfffe;
	uint8_t *p;
	struct d d = rd(buf(h, 8, &p), 8);
	chain(h, &d, 1);
	expect_seg(h, p, 8);
	h->exp.nr_out = 1;
	h->exp.out_len = 8;
}

/* ---- cases: indirect ---- */

static void c_nested_indirect(struct h *h)
{
	struct d inner = rd(buf(h, 8, NULL), 8);
	struct d e[2] = {rd(buf(h, 8, NULL), 8),
			 fl(itable(h, &inner, 1), 16, F_IND)};
	e[0].flags = F_NEXT;
	struct d d = fl(itable(h, e, 2), 32, F_IND);
	chain(h, &d, 1);
}

static void c_indirect_len0(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	struct d d = fl(itable(h, &e, 1), 0, F_IND);
	chain(h, &d, 1);
}

static void c_indirect_len24(struct h *h)
{
	struct d e[2] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	struct d d = fl(itable(h, e, 2), 24, F_IND);
	chain(h, &d, 1);
}

static void c_indirect_len8(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	struct d d = fl(itable(h, &e, 1), 8, F_IND);
	chain(h, &d, 1);
}

static void c_indirect_next(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	struct d d[2] = {fl(itable(h, &e, 1), 16, F_IND | F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	chain(h, d, 2);
}

/* The formats cannot chain past an indirect descriptor without NEXT on
 * it, so "two indirects" and "a descriptor after an indirect" both come
 * down to NEXT on the indirect descriptor. */
static void c_two_indirects(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	uint64_t t = itable(h, &e, 1);
	struct d d[2] = {fl(t, 16, F_IND | F_NEXT), fl(t, 16, F_IND)};
	chain(h, d, 2);
}

static void c_after_indirect(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	struct d d[3] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 fl(itable(h, &e, 1), 16, F_IND | F_NEXT),
			 fl(buf(h, 8, NULL), 8, F_WRITE)};
	chain(h, d, 3);
}

static void c_indirect_no_feature(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	struct d d = fl(itable(h, &e, 1), 16, F_IND);
	chain(h, &d, 1);
}

static void c_indirect_too_long(struct h *h)
{
	struct d e[65];
	uint64_t a = buf(h, 4, NULL);
	REQUIRE(h->size < 65);
	for (unsigned k = 0; k <= h->size; k++)
		e[k] = fl(a, 4, k < h->size ? F_NEXT : 0);
	struct d d = fl(itable(h, e, h->size + 1u), (h->size + 1u) * 16, F_IND);
	chain(h, &d, 1);
}

/* one direct descriptor plus a table of size entries: size + 1 */
static void c_indirect_plus_direct_too_long(struct h *h)
{
	struct d e[64];
	uint64_t a = buf(h, 4, NULL);
	REQUIRE(h->size <= 64);
	for (unsigned k = 0; k < h->size; k++)
		e[k] = fl(a, 4, k + 1 < h->size ? F_NEXT : 0);
	struct d d[2] = {fl(a, 4, F_NEXT),
			 fl(itable(h, e, h->size), h->size * 16u, F_IND)};
	chain(h, d, 2);
}

/* positive: a table of exactly size entries */
static void c_indirect_exactly_queue(struct h *h)
{
	struct d e[64];
	REQUIRE(h->size <= 64);
	for (unsigned k = 0; k < h->size; k++) {
		uint8_t *p;
		e[k] = fl(buf(h, 2, &p), 2, k + 1 < h->size ? F_NEXT : 0);
		if (k < 4)
			expect_seg(h, p, 2);
	}
	struct d d = fl(itable(h, e, h->size), h->size * 16u, F_IND);
	h->exp.nr_out = h->size;
	h->exp.out_len = 2u * h->size;
	chain(h, &d, 1);
}

static void c_indirect_loop(struct h *h)
{
	uint64_t a = buf(h, 8, NULL);
	struct d e[3] = {fl(a, 8, F_NEXT), fl(a, 8, F_NEXT), rd(a, 8)};
	e[1].next = 0; /* 0 -> 1 -> 0, entry 2 unreachable */
	struct d d = fl(itable(h, e, 3), 48, F_IND);
	chain(h, &d, 1);
}

static void c_indirect_self_loop(struct h *h)
{
	struct d e = fl(buf(h, 8, NULL), 8, F_NEXT);
	e.next = 0;
	struct d d = fl(itable(h, &e, 1), 16, F_IND);
	chain(h, &d, 1);
}

static void c_indirect_next_range(struct h *h)
{
	uint64_t a = buf(h, 8, NULL);
	struct d e[2] = {fl(a, 8, F_NEXT), rd(a, 8)};
	e[0].next = 2;
	struct d d = fl(itable(h, e, 2), 32, F_IND);
	chain(h, &d, 1);
}

/* positive: split tables may be walked out of order */
static void c_indirect_out_of_order(struct h *h)
{
	uint8_t *p0, *p1, *p2;
	struct d e[3] = {fl(buf(h, 3, &p0), 3, F_NEXT),
			 fl(buf(h, 5, &p1), 5, F_WRITE),
			 fl(buf(h, 7, &p2), 7, F_NEXT)};
	e[0].next = 2; /* 0 -> 2 -> 1 */
	e[2].next = 1;
	struct d d = fl(itable(h, e, 3), 48, F_IND);
	chain(h, &d, 1);
	expect_seg(h, p0, 3);
	expect_seg(h, p2, 7);
	expect_seg(h, p1, 5);
	h->exp.nr_out = 2;
	h->exp.nr_in = 1;
	h->exp.out_len = 10;
	h->exp.in_len = 5;
}

/* ---- cases: direction ---- */

static void c_read_after_write(struct h *h)
{
	struct d d[2] = {fl(buf(h, 8, NULL), 8, F_WRITE | F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	chain(h, d, 2);
}

static void c_read_after_write_indirect(struct h *h)
{
	struct d e[2] = {fl(buf(h, 8, NULL), 8, F_WRITE | F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	struct d d = fl(itable(h, e, 2), 32, F_IND);
	chain(h, &d, 1);
}

/* writable direct descriptor, then a table that starts readable */
static void c_read_after_write_into_indirect(struct h *h)
{
	struct d e = rd(buf(h, 8, NULL), 8);
	struct d d[2] = {fl(buf(h, 8, NULL), 8, F_WRITE | F_NEXT),
			 fl(itable(h, &e, 1), 16, F_IND)};
	chain(h, d, 2);
}

/* ---- cases: packed wrap counters ---- */

/* the second descriptor of a chain marked as used in this lap */
static void c_pk_second_used(struct h *h)
{
	struct d d[2] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	d[1].pkraw = true;
	d[1].pkbits = PK_AVAIL | PK_USED;
	chain(h, d, 2);
}

/* the second descriptor available for the next lap, not this one */
static void c_pk_second_next_lap(struct h *h)
{
	struct d d[2] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	d[1].pkraw = true;
	d[1].pkbits = PK_USED;
	chain(h, d, 2);
}

static void c_pk_second_no_bits(struct h *h)
{
	struct d d[3] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 fl(buf(h, 8, NULL), 8, F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	d[2].pkraw = true;
	d[2].pkbits = 0;
	chain(h, d, 3);
}

/* a chain across the end of the ring whose part after the wrap still
 * carries the old lap's bits */
static void c_pk_wrap_stale(struct h *h)
{
	vio_vq_set_base(h->vq, (uint16_t)((h->size - 1) | 0x8000));
	h->ppos = (uint16_t)(h->size - 1);
	struct d d[2] = {fl(buf(h, 8, NULL), 8, F_NEXT),
			 rd(buf(h, 8, NULL), 8)};
	d[1].pkraw = true;
	d[1].pkbits = PK_AVAIL; /* right for lap 1, wrong for lap 0 */
	chain(h, d, 2);
}

/* positive: the same chain with the bits inverted after the wrap */
static void c_pk_wrap_ok(struct h *h)
{
	vio_vq_set_base(h->vq, (uint16_t)((h->size - 1) | 0x8000));
	h->ppos = (uint16_t)(h->size - 1);
	uint8_t *p0, *p1;
	struct d d[2] = {fl(buf(h, 8, &p0), 8, F_NEXT),
			 fl(buf(h, 8, &p1), 8, F_WRITE)};
	chain(h, d, 2);
	expect_seg(h, p0, 8);
	expect_seg(h, p1, 8);
	h->exp.nr_out = 1;
	h->exp.nr_in = 1;
	h->exp.out_len = 8;
	h->exp.in_len = 8;
}

/* heads that are not available now: nothing to pop, not a violation */
static void pk_head_bits(struct h *h, uint16_t bits)
{
	struct d d = rd(buf(h, 8, NULL), 8);
	d.pkraw = true;
	d.pkbits = bits;
	chain(h, &d, 1);
}

static void c_pk_head_used(struct h *h)
{
	pk_head_bits(h, PK_AVAIL | PK_USED);
}

static void c_pk_head_next_lap(struct h *h)
{
	pk_head_bits(h, PK_USED);
}

static void c_pk_head_no_bits(struct h *h)
{
	pk_head_bits(h, 0);
}

/* in lap 0, a head still marked available for lap 1 */
static void c_pk_head_old_lap(struct h *h)
{
	vio_vq_set_base(h->vq, 0);
	h->pwrap = false;
	pk_head_bits(h, PK_AVAIL);
}

#define LONGER "chain longer than the queue size"
#define RAW "readable descriptor after a writable one"

static const struct hcase cases[] = {
    /* chain length, loops */
    {"self loop", FMT_SPLIT, c_loop_self, LONGER},
    {"two-descriptor loop", FMT_SPLIT, c_loop_two, LONGER},
    {"full-table cycle / ring full of NEXT", FMT_BOTH, c_loop_full, LONGER},
    {"direct + indirect longer than the queue", FMT_BOTH, c_longer_than_queue,
     "is longer than the queue size"},
    {"exactly queue-size chain", FMT_BOTH, c_exactly_queue, NULL, 1},
    {"queue-size chain ending in indirect", FMT_BOTH, c_exactly_queue_indirect,
     NULL, 1},
    /* indices */
    {"head out of range", FMT_SPLIT, c_head_range,
     "available head 16 out of range"},
    {"head 0xffff", FMT_SPLIT, c_head_ffff,
     "available head 65535 out of range"},
    {"next out of range", FMT_SPLIT, c_next_range,
     "next descriptor 16 out of range"},
    {"avail index jumps by size + 1", FMT_SPLIT, c_avail_jump,
     "available index jumped from 0 to 17"},
    {"avail index goes backwards", FMT_SPLIT, c_avail_backwards,
     "available index jumped from 0 to 65535"},
    {"avail index wraps 65535 -> 0", FMT_SPLIT, c_avail_idx_wrap, NULL, 1},
    /* indirect */
    {"nested indirect", FMT_BOTH, c_nested_indirect,
     "nested indirect descriptor"},
    {"indirect length 0", FMT_BOTH, c_indirect_len0,
     "indirect table length 0 is not a non-zero multiple of 16"},
    {"indirect length 24", FMT_BOTH, c_indirect_len24,
     "indirect table length 24 is not a non-zero multiple of 16"},
    {"indirect length 8", FMT_BOTH, c_indirect_len8,
     "indirect table length 8 is not"},
    {"indirect with NEXT", FMT_BOTH, c_indirect_next,
     "indirect descriptor with NEXT set"},
    {"two indirects in a chain", FMT_BOTH, c_two_indirects,
     "indirect descriptor with NEXT set"},
    {"descriptor after an indirect", FMT_BOTH, c_after_indirect,
     "indirect descriptor with NEXT set"},
    {"indirect not negotiated", FMT_BOTH, c_indirect_no_feature,
     "VIRTIO_RING_F_INDIRECT_DESC was not negotiated", 0, true},
    {"indirect table longer than the queue", FMT_BOTH, c_indirect_too_long,
     "is longer than the queue size"},
    {"direct + full indirect table", FMT_BOTH, c_indirect_plus_direct_too_long,
     "is longer than the queue size"},
    {"indirect table of exactly queue size", FMT_BOTH, c_indirect_exactly_queue,
     NULL, 1},
    {"loop in indirect table", FMT_SPLIT, c_indirect_loop,
     "loop in indirect table"},
    {"self loop in indirect table", FMT_SPLIT, c_indirect_self_loop,
     "loop in indirect table"},
    {"indirect next out of range", FMT_SPLIT, c_indirect_next_range,
     "indirect next 2 out of range (table of 2)"},
    {"indirect table walked out of order", FMT_SPLIT, c_indirect_out_of_order,
     NULL, 1},
    /* direction */
    {"readable after writable", FMT_BOTH, c_read_after_write, RAW},
    {"readable after writable in indirect", FMT_BOTH,
     c_read_after_write_indirect, RAW},
    {"writable, then indirect starting readable", FMT_BOTH,
     c_read_after_write_into_indirect, RAW},
    /* packed wrap counters */
    {"chain tail marked used", FMT_PACKED, c_pk_second_used,
     "of a chain is not available"},
    {"chain tail for the next lap", FMT_PACKED, c_pk_second_next_lap,
     "of a chain is not available"},
    {"chain tail without bits", FMT_PACKED, c_pk_second_no_bits,
     "descriptor 2 of a chain is not available"},
    {"stale bits after the ring wraps", FMT_PACKED, c_pk_wrap_stale,
     "descriptor 0 of a chain is not available"},
    {"chain across the ring end", FMT_PACKED, c_pk_wrap_ok, NULL, 1},
    {"head marked used", FMT_PACKED, c_pk_head_used, NULL, 0},
    {"head for the next lap", FMT_PACKED, c_pk_head_next_lap, NULL, 0},
    {"head without bits", FMT_PACKED, c_pk_head_no_bits, NULL, 0},
    {"head from the previous lap", FMT_PACKED, c_pk_head_old_lap, NULL, 0},
};

int main(void)
{
	return rh_main(cases, sizeof(cases) / sizeof(cases[0]), "ring_hostile");
}
