/* SPDX-License-Identifier: MIT */
/*
 * The hostile-driver harness (test_ring_hostile*.c): the test writes
 * descriptors, the available ring and packed flags by hand into shared
 * memory, as a malicious driver would, and checks what the device side of
 * the ring makes of them.  Each program has a table of cases (struct
 * hcase) and hands it to rh_main, which runs every case in every ring
 * configuration its format allows.
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
 *
 * Each program includes it once.
 */
#ifndef VIO_TEST_RING_HOSTILE_H
#define VIO_TEST_RING_HOSTILE_H

#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <sys/mman.h>

#include "test.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/ring.h>

/* every program uses a different subset */
#pragma GCC diagnostic ignored "-Wunused-function"

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
	int pop_ret;	  /* legal ring: 1, 0 (nothing) or -E2BIG */
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
	struct vio_vq_opts c = {.index = 1,
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
	c = (struct vio_vq_opts){.index = 0,
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
	} else if (hc->pop_ret == -E2BIG) {
		/* legal but more segments than max_iov (vio_vq_pop): the
		 * chain is consumed, the queue kept, the device pushes it */
		n_ok++;
		CHECK_EQ(r, -E2BIG);
		CHECK(!vio_vq_broken(h.vq));
		CHECK_EQ(vio_vq_push(h.vq, c.head, 0), 0);
		CHECK_EQ(vio_vq_pop(h.vq, &c, iov, MAX_IOV), 0);
		CHECK_EQ(h.broken_calls, 0);
		printf("  %-6s %-46s -> too many segments, queue kept\n",
		       packed ? "packed" : "split", hc->name);
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

/* Every case of the table in every ring configuration its format
 * allows; the program's result. */
static int rh_main(const struct hcase *cases, size_t ncases, const char *name)
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
		for (size_t i = 0; i < ncases; i++) {
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
	return test_result(name);
}

#endif
