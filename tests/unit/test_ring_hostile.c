/* SPDX-License-Identifier: MIT */
/*
 * The hostile-driver table: the test writes descriptors, the available
 * ring and packed flags by hand into shared memory, as a malicious driver
 * would, and checks what the device side of the ring makes of them.
 *
 * For every violation case: vio_vq_pop() returns -EIO, the queue is
 * broken, vio_vq_error() names the rule the chain walker applied, the
 * broken callback ran exactly once, every later verb keeps failing even
 * after the ring is repaired (sticky), and a second queue of the same
 * device, over the same memory table, keeps serving correct chains.
 * Positive controls check that legal but unusual chains (straddling two
 * regions adjacent in device address space, zero-length descriptors,
 * exactly queue-size chains, index wrap) are accepted and translated
 * exactly.
 *
 * Device address map (struct vio_memtable):
 *   R0     vio_mem's region (at 4 GiB+), followed by unmapped space;
 *   ALIAS  two 4 KiB regions adjacent in device address space, backed by
 *          two vio_mem_alloc blocks that are not adjacent in this process,
 *          followed by unmapped space;
 *   BIG    4 GiB + 4 KiB of PROT_NONE reserved address space: translated
 *          but never touched, for the 4 GiB total-length rule.
 */
#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <sys/mman.h>

#include "test.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/ring.h>

#define ALIAS_ADDR 0x100000000000ull
#define ALIAS_LEN 4096u
#define BIG_ADDR 0x200000000000ull
#define BIG_LEN ((4ull << 30) + 4096)
#define DATA_LEN (64u << 10)
#define DEF_IOV 64u
#define MAX_IOV 128u

#define F_NEXT VRING_DESC_F_NEXT
#define F_WRITE VRING_DESC_F_WRITE
#define F_IND VRING_DESC_F_INDIRECT
#define PK_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define PK_USED (1u << VRING_PACKED_DESC_F_USED)

enum { FMT_SPLIT = 1, FMT_PACKED = 2, FMT_BOTH = 3 };

/* One descriptor as the hostile driver writes it.  next: split only, -1
 * for the following slot.  pkbits: packed only, if pkraw the AVAIL/USED
 * bits to write instead of the correct ones for the slot's lap. */
struct d {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	int next;
	bool pkraw;
	uint16_t pkbits;
};

/* What a positive case expects pop to return. */
struct expect {
	unsigned nr_out, nr_in;
	uint32_t out_len, in_len;
	unsigned n_iov; /* iov[] entries to compare (cont too), 0: none */
	struct vio_iov iov[8];
	bool nd;		/* compare the descriptor counts */
	unsigned nd_out, nd_in; /* descriptors, apart from segments */
};

struct h {
	/* shared memory, both queues */
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_region r0;
	uint8_t *alias_a, *alias_b; /* backing of ALIAS and ALIAS + 4 KiB */
	void *big;
	uint8_t *data; /* buffers and indirect tables */
	uint64_t data_addr;
	size_t data_used;

	/* the hostile queue (index 0) */
	bool packed, event_idx;
	uint16_t size;
	struct vio_vq *vq;
	struct vio_vq_layout l;
	void *ring;
	unsigned max_iov;
	int broken_calls;
	uint16_t next_desc; /* split: where the next chain goes */
	uint16_t sidx;	    /* split: avail idx as we publish it */
	uint16_t ppos;	    /* packed: next slot */
	bool pwrap;	    /* packed: driver wrap counter */
	uint16_t next_id;   /* packed: buffer ids */
	struct expect exp;

	/* the healthy queue pair (index 1) */
	struct vio_vq *hdrv, *hdev;
	uint8_t *hbuf;
	int healthy_broken;
	unsigned served;
};

struct hcase {
	const char *name;
	unsigned fmt;
	void (*build)(struct h *h);
	/* violation: a substring of the error; NULL: a legal ring */
	const char *expect;
	int pop_ret;	  /* legal ring: 1 (a chain) or 0 (nothing) */
	bool no_indirect; /* VIRTIO_RING_F_INDIRECT_DESC not negotiated */
	unsigned max_iov; /* 0: DEF_IOV */
};

static void on_broken(struct vio_vq *vq, void *o)
{
	((struct h *)o)->broken_calls++;
}

static void on_healthy_broken(struct vio_vq *vq, void *o)
{
	((struct h *)o)->healthy_broken++;
}

/* ---- the hostile driver's pen ---- */

static uint8_t pat(uint64_t daddr, uint32_t i)
{
	return (uint8_t)((daddr >> 4) * 13 + i * 7 + 1);
}

/* A buffer in the data area, filled with a pattern; its device address. */
static uint64_t buf(struct h *h, uint32_t len, uint8_t **p)
{
	size_t off = (h->data_used + 15) & ~(size_t)15;
	REQUIRE(off + len <= DATA_LEN);
	h->data_used = off + len;
	uint64_t a = h->data_addr + off;
	for (uint32_t i = 0; i < len; i++)
		h->data[off + i] = pat(a, i);
	if (p)
		*p = h->data + off;
	return a;
}

/* Write an indirect table of n entries at ptr (device address daddr), in
 * the queue's format: split {addr, len, flags, next}, packed {addr, len,
 * id, flags}. */
static void itable_at(struct h *h, uint8_t *ptr, const struct d *e, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		uint8_t *t = ptr + (size_t)k * 16;
		uint64_t a = htole64(e[k].addr);
		uint32_t l = htole32(e[k].len);
		uint16_t f = htole16(e[k].flags);
		uint16_t nx = htole16(
		    (uint16_t)(e[k].next >= 0 ? e[k].next : (int)k + 1));
		memcpy(t, &a, 8);
		memcpy(t + 8, &l, 4);
		if (h->packed) {
			uint16_t id = 0;
			memcpy(t + 12, &id, 2);
			memcpy(t + 14, &f, 2);
		} else {
			memcpy(t + 12, &f, 2);
			memcpy(t + 14, &nx, 2);
		}
	}
}

/* An indirect table in the data area; its device address. */
static uint64_t itable(struct h *h, const struct d *e, unsigned n)
{
	uint8_t *p;
	uint64_t a = buf(h, n * 16, &p);
	itable_at(h, p, e, n);
	return a;
}

static void split_desc(struct h *h, uint16_t i, const struct d *d,
		       uint16_t next)
{
	struct vring_desc *t = h->l.desc;
	t[i].addr = htole64(d->addr);
	t[i].len = htole32(d->len);
	t[i].flags = htole16(d->flags);
	t[i].next = htole16(next);
}

static void split_publish(struct h *h, uint16_t head)
{
	struct vring_avail *av = h->l.driver;
	av->ring[h->sidx & (h->size - 1)] = htole16(head);
	h->sidx++;
	__atomic_store_n(&av->idx, htole16(h->sidx), __ATOMIC_RELEASE);
}

/* Write a chain of n descriptors and make it available. */
static void chain(struct h *h, const struct d *d, unsigned n)
{
	if (!h->packed) {
		uint16_t head = h->next_desc;
		for (unsigned k = 0; k < n; k++) {
			uint16_t i = (uint16_t)((head + k) % h->size);
			uint16_t nx =
			    (uint16_t)(d[k].next >= 0 ? d[k].next
						      : (i + 1) % h->size);
			split_desc(h, i, &d[k], nx);
		}
		h->next_desc = (uint16_t)((head + n) % h->size);
		split_publish(h, head);
		return;
	}
	struct vring_packed_desc *r = h->l.desc;
	uint16_t pos = h->ppos, head = pos, id = h->next_id++, head_flags = 0;
	bool wrap = h->pwrap;
	for (unsigned k = 0; k < n; k++) {
		uint16_t bits = d[k].pkraw
				    ? d[k].pkbits
				    : (uint16_t)(wrap ? PK_AVAIL : PK_USED);
		uint16_t f = (uint16_t)(d[k].flags | bits);
		r[pos].addr = htole64(d[k].addr);
		r[pos].len = htole32(d[k].len);
		r[pos].id = htole16(id);
		if (k == 0)
			head_flags = f;
		else
			r[pos].flags = htole16(f);
		if (++pos == h->size) {
			pos = 0;
			wrap = !wrap;
		}
	}
	/* the head's flags last: they make the chain available */
	__atomic_store_n(&r[head].flags, htole16(head_flags), __ATOMIC_RELEASE);
	h->ppos = pos;
	h->pwrap = wrap;
}

/* One plain readable descriptor (ends a chain). */
static struct d rd(uint64_t addr, uint32_t len)
{
	return (struct d){.addr = addr, .len = len, .next = -1};
}

static struct d fl(uint64_t addr, uint32_t len, uint16_t flags)
{
	return (struct d){.addr = addr, .len = len, .flags = flags, .next = -1};
}

static void expect_seg(struct h *h, void *base, uint32_t len)
{
	REQUIRE(h->exp.n_iov < 8);
	h->exp.iov[h->exp.n_iov++] = (struct vio_iov){base, len, 0};
}

/* a segment that continues the descriptor of the one before */
static void expect_cont(struct h *h, void *base, uint32_t len)
{
	REQUIRE(h->exp.n_iov < 8);
	h->exp.iov[h->exp.n_iov++] = (struct vio_iov){base, len, 1};
}

static void expect_nd(struct h *h, unsigned nd_out, unsigned nd_in)
{
	h->exp.nd = true;
	h->exp.nd_out = nd_out;
	h->exp.nd_in = nd_in;
}

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

#define LONGER "chain longer than the queue size"
#define NOT_MAPPED "is not in mapped memory"
#define RAW "readable descriptor after a writable one"
#define WRAPS "wraps"

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
    /* limits */
    {"more segments than max_iov", FMT_BOTH, c_max_iov,
     "chain needs more than 3 segments", 0, false, 3},
    {"straddle needs more than max_iov", FMT_BOTH, c_max_iov_straddle,
     "chain needs more than 1 segments", 0, false, 1},
    {"indirect needs more than max_iov", FMT_BOTH, c_max_iov_indirect,
     "chain needs more than 3 segments", 0, false, 3},
    {"max_iov 0", FMT_BOTH, c_max_iov_zero, "chain needs more than 0 segments",
     0, false, MAX_IOV + 1},
    {"exactly max_iov segments", FMT_BOTH, c_max_iov_exact, NULL, 1, false, 3},
    {"readable total over 4 GiB", FMT_BOTH, c_4g_out,
     "chain longer than 4 GiB"},
    {"writable total over 4 GiB", FMT_BOTH, c_4g_in, "chain longer than 4 GiB"},
    {"indirect total over 4 GiB", FMT_BOTH, c_4g_indirect,
     "chain longer than 4 GiB"},
    {"4 GiB - 1 each way", FMT_BOTH, c_4g_limit, NULL, 1},
};

/* ---- the world: memory, the healthy queue pair, the hostile queue ---- */

static void h_init(struct h *h, bool packed, uint16_t size, bool event_idx,
		   const struct hcase *hc)
{
	memset(h, 0, sizeof(*h));
	h->packed = packed;
	h->size = size;
	h->event_idx = event_idx;
	h->pwrap = true;
	h->mem = vio_mem_new();
	REQUIRE(h->mem);
	REQUIRE(vio_mem_add_region(h->mem, 4 << 20, &h->r0) == 0);
	h->mt = vio_memtable_new(8);
	REQUIRE(h->mt);
	struct vio_region r = h->r0;
	r.fd = -1;
	REQUIRE(vio_memtable_add(h->mt, &r) == 0);
	/* the space right after (and before) R0 must be unmapped */
	REQUIRE(vio_memtable_ptr(h->mt, h->r0.addr + h->r0.size, 1) == NULL);
	REQUIRE(vio_memtable_ptr(h->mt, h->r0.addr - 1, 1) == NULL);

	/* ALIAS: B allocated before A, with a spacer, so that they are
	 * not contiguous in this process */
	uint64_t da;
	h->alias_b = vio_mem_alloc(h->mem, ALIAS_LEN, 64, &da);
	REQUIRE(vio_mem_alloc(h->mem, 64, 64, &da));
	h->alias_a = vio_mem_alloc(h->mem, ALIAS_LEN, 64, &da);
	REQUIRE(h->alias_a && h->alias_b);
	REQUIRE(h->alias_a + ALIAS_LEN != h->alias_b);
	r = (struct vio_region){
	    .addr = ALIAS_ADDR, .size = ALIAS_LEN, .fd = -1, .ptr = h->alias_a};
	REQUIRE(vio_memtable_add(h->mt, &r) == 0);
	r.addr += ALIAS_LEN;
	r.ptr = h->alias_b;
	REQUIRE(vio_memtable_add(h->mt, &r) == 0);

	h->big = mmap(NULL, BIG_LEN, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	REQUIRE(h->big != MAP_FAILED);
	r = (struct vio_region){
	    .addr = BIG_ADDR, .size = BIG_LEN, .fd = -1, .ptr = h->big};
	REQUIRE(vio_memtable_add(h->mt, &r) == 0);

	h->data = vio_mem_alloc(h->mem, DATA_LEN, 64, &h->data_addr);
	REQUIRE(h->data);

	/* the healthy pair: queue 1 of the same device, same memory */
	struct vio_vq_config c = {.index = 1,
				  .size = 8,
				  .packed = packed,
				  .event_idx = event_idx,
				  .indirect = true,
				  .broken = on_healthy_broken,
				  .opaque = h,
				  .name = "healthy"};
	h->hdrv = vio_vq_new_driver(&c, h->mem);
	REQUIRE(h->hdrv);
	struct vio_vq_layout hl;
	vio_vq_get_layout(h->hdrv, &hl);
	h->hdev = vio_vq_new_device(&c, &hl, h->mt);
	REQUIRE(h->hdev);
	h->hbuf = vio_mem_alloc(h->mem, 4096, 64, &da);
	REQUIRE(h->hbuf);

	/* the hostile queue: queue 0, ring written by hand */
	size_t bytes = vio_vq_ring_bytes(size, packed);
	h->ring = vio_mem_alloc(h->mem, bytes, 4096, &da);
	REQUIRE(h->ring);
	memset(h->ring, 0, bytes);
	vio_vq_layout_at(size, packed, h->ring, da, &h->l);
	c = (struct vio_vq_config){.index = 0,
				   .size = size,
				   .packed = packed,
				   .event_idx = event_idx,
				   .indirect = !hc->no_indirect,
				   .broken = on_broken,
				   .opaque = h,
				   .name = "hostile"};
	h->vq = vio_vq_new_device(&c, &h->l, h->mt);
	REQUIRE(h->vq);
	h->max_iov = hc->max_iov ? hc->max_iov : DEF_IOV;
	if (h->max_iov == MAX_IOV + 1)
		h->max_iov = 0;
}

static void h_fini(struct h *h)
{
	vio_vq_free(h->vq);
	vio_vq_free(h->hdev);
	vio_vq_free(h->hdrv);
	vio_memtable_free(h->mt);
	munmap(h->big, BIG_LEN);
	vio_mem_free(h->mem);
}

/* The other queue of the device serves one request end to end: a
 * readable and a writable segment, contents checked both ways. */
static void serve_healthy(struct h *h)
{
	uint8_t *out = h->hbuf, *in = h->hbuf + 1024;
	unsigned n = h->served++;
	for (unsigned i = 0; i < 100; i++) {
		out[i] = (uint8_t)(n + i);
		in[i] = 0;
	}
	struct vio_sg sg[2] = {{out, 100}, {in, 50}};
	static int token;
	CHECK_EQ(vio_vq_add(h->hdrv, sg, 1, 1, &token), 0);
	vio_vq_kick(h->hdrv);

	struct vio_iov iov[8];
	struct vio_chain c;
	CHECK_EQ(vio_vq_pop(h->hdev, &c, iov, 8), 1);
	CHECK_EQ(c.out_len, 100);
	CHECK_EQ(c.in_len, 50);
	if (c.out_len == 100 && c.in_len == 50) {
		uint8_t tmp[100];
		struct vio_cursor cur;
		vio_cursor_init(&cur, c.out, c.nr_out);
		CHECK_EQ(vio_cursor_read(&cur, tmp, 100), 100);
		CHECK(memcmp(tmp, out, 100) == 0);
		for (unsigned i = 0; i < 50; i++)
			tmp[i] = (uint8_t)~tmp[i];
		vio_cursor_init(&cur, c.in, c.nr_in);
		CHECK_EQ(vio_cursor_write(&cur, tmp, 50), 50);
	}
	CHECK_EQ(vio_vq_push(h->hdev, c.head, 50), 0);
	uint32_t len = 0;
	CHECK(vio_vq_get(h->hdrv, &len) == &token);
	CHECK_EQ(len, 50);
	for (unsigned i = 0; i < 50; i++)
		if (in[i] != (uint8_t) ~(uint8_t)(n + i)) {
			CHECK(!"healthy queue: written byte differs");
			break;
		}
	CHECK(!vio_vq_broken(h->hdev));
	CHECK(!vio_vq_broken(h->hdrv));
	CHECK_EQ(h->healthy_broken, 0);
}

/* Put one legal single-descriptor chain where the device looks next. */
static void repair(struct h *h)
{
	uint16_t base = vio_vq_get_base(h->vq);
	struct d d = rd(h->data_addr, 8);
	if (h->packed) {
		h->ppos = base & 0x7fff;
		h->pwrap = base >> 15;
	} else {
		struct vring_avail *av = h->l.driver;
		h->next_desc = 0;
		h->sidx = base;
		av->idx = htole16(base);
	}
	chain(h, &d, 1);
}

static void check_chain(struct h *h, const struct vio_chain *c,
			const struct vio_iov *iov)
{
	const struct expect *x = &h->exp;
	CHECK_EQ(c->nr_out, x->nr_out);
	CHECK_EQ(c->nr_in, x->nr_in);
	CHECK_EQ(c->out_len, x->out_len);
	CHECK_EQ(c->in_len, x->in_len);
	CHECK(c->out == iov);
	CHECK(c->in == iov + c->nr_out);
	for (unsigned k = 0; k < x->n_iov; k++) {
		CHECK(iov[k].base == x->iov[k].base);
		CHECK_EQ(iov[k].len, x->iov[k].len);
		CHECK_EQ(iov[k].cont, x->iov[k].cont);
	}
	if (x->nd) {
		CHECK_EQ(c->nd_out, x->nd_out);
		CHECK_EQ(c->nd_in, x->nd_in);
	}
	/* the totals are the sum of the segments */
	uint64_t o = 0, i = 0;
	for (unsigned k = 0; k < c->nr_out; k++)
		o += c->out[k].len;
	for (unsigned k = 0; k < c->nr_in; k++)
		i += c->in[k].len;
	CHECK_EQ(o, c->out_len);
	CHECK_EQ(i, c->in_len);
}

static unsigned n_run, n_bad, n_ok, n_empty;

static void run_case(const struct hcase *hc, bool packed, uint16_t size,
		     bool event_idx)
{
	struct h h;
	int before = test_failures;
	h_init(&h, packed, size, event_idx, hc);
	serve_healthy(&h);
	hc->build(&h);
	CHECK(!vio_vq_broken(h.vq));
	CHECK(strcmp(vio_vq_error(h.vq), "") == 0);

	static struct vio_iov iov[MAX_IOV];
	struct vio_chain c;
	memset(&c, 0, sizeof(c));
	int r = vio_vq_pop(h.vq, &c, iov, h.max_iov);
	n_run++;
	if (hc->expect) {
		n_bad++;
		char err[256];
		snprintf(err, sizeof(err), "%s", vio_vq_error(h.vq));
		CHECK_EQ(r, -EIO);
		CHECK(vio_vq_broken(h.vq));
		CHECK_EQ(h.broken_calls, 1);
		if (!strstr(err, hc->expect)) {
			CHECK(!"error message lacks the expected words");
			fprintf(stderr,
				"  case '%s': expected '%s', got '%s'\n",
				hc->name, hc->expect, err);
		}
		/* sticky: every verb keeps failing, even over a repaired
		 * ring, and the first reason stays */
		repair(&h);
		CHECK_EQ(vio_vq_pop(h.vq, &c, iov, MAX_IOV), -EIO);
		CHECK_EQ(vio_vq_push(h.vq, 0 | 1u << 16, 0), -EIO);
		struct vio_used u = {0 | 1u << 16, 0};
		CHECK_EQ(vio_vq_push_batch(h.vq, &u, 1), -EIO);
		CHECK(!vio_vq_more_avail(h.vq));
		CHECK(!vio_vq_call_prepare(h.vq));
		CHECK(!vio_vq_call(h.vq));
		CHECK(vio_vq_enable_notify(h.vq));
		vio_vq_disable_notify(h.vq);
		vio_vq_set_broken(h.vq, "a second reason");
		CHECK_EQ(vio_vq_pop(h.vq, &c, iov, MAX_IOV), -EIO);
		CHECK(vio_vq_broken(h.vq));
		CHECK(strcmp(vio_vq_error(h.vq), err) == 0);
		CHECK_EQ(h.broken_calls, 1);
		printf("  %-6s %-46s -> %s\n", packed ? "packed" : "split",
		       hc->name, err);
	} else if (hc->pop_ret == 1) {
		n_ok++;
		CHECK_EQ(r, 1);
		if (r == 1) {
			check_chain(&h, &c, iov);
			CHECK_EQ(vio_vq_push(h.vq, c.head, c.in_len ? 1 : 0),
				 0);
		}
		/* the chain is gone and nothing else is there */
		CHECK_EQ(vio_vq_pop(h.vq, &c, iov, MAX_IOV), 0);
		CHECK(!vio_vq_more_avail(h.vq));
		CHECK(!vio_vq_broken(h.vq));
		CHECK_EQ(h.broken_calls, 0);
		printf("  %-6s %-46s -> accepted (%u+%u segments)\n",
		       packed ? "packed" : "split", hc->name, c.nr_out,
		       c.nr_in);
	} else {
		n_empty++;
		CHECK_EQ(r, 0);
		CHECK(!vio_vq_more_avail(h.vq));
		CHECK_EQ(vio_vq_pop(h.vq, &c, iov, MAX_IOV), 0);
		CHECK(!vio_vq_broken(h.vq));
		CHECK(strcmp(vio_vq_error(h.vq), "") == 0);
		CHECK_EQ(h.broken_calls, 0);
		printf("  %-6s %-46s -> nothing available\n",
		       packed ? "packed" : "split", hc->name);
	}
	/* the device keeps serving its other queue */
	for (int k = 0; k < 3; k++)
		serve_healthy(&h);
	h_fini(&h);
	if (test_failures != before)
		fprintf(stderr, "  ^ FAILED: %s (%s, size %u, event_idx %d)\n",
			hc->name, packed ? "packed" : "split", size, event_idx);
}

int main(void)
{
	static const struct {
		bool packed;
		uint16_t size;
		bool event_idx;
	} runs[] = {
	    {false, 16, false},
	    {false, 16, true},
	    {true, 16, false},
	    {true, 11, true}, /* packed sizes need not be powers of 2 */
	};
	/* the test prints each error itself */
	vio_log_set_quiet(1);
	for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		printf("%s, size %u, event_idx %d:\n",
		       runs[r].packed ? "packed" : "split", runs[r].size,
		       runs[r].event_idx);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const struct hcase *hc = &cases[i];
			if (!(hc->fmt &
			      (runs[r].packed ? FMT_PACKED : FMT_SPLIT)))
				continue;
			run_case(hc, runs[r].packed, runs[r].size,
				 runs[r].event_idx);
		}
	}
	printf("%u cases run: %u violations, %u accepted, %u empty\n", n_run,
	       n_bad, n_ok, n_empty);
	return test_result("ring_hostile");
}
