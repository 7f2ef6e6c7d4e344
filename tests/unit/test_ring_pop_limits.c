/* SPDX-License-Identifier: MIT */
/*
 * vio_vq_pop() with a segment array smaller than a legal chain (issue 12,
 * item 6): the chain comes back as -E2BIG, consumed from the ring, with
 * its head, totals, descriptor counts and the end of its writable area;
 * the queue is not broken, the device pushes the chain back, the driver
 * gets it with that used length, and the next chains pop normally, around
 * the ring more than once.  Both formats, direct and indirect chains, and
 * with a memory table cut into small regions (the tail descriptor in
 * several segments, or more than max_iov of them).  A chain that is
 * malformed beyond max_iov segments still breaks the queue.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "ring_env.h"
#include "test.h"
#include <vio/mem.h>
#include <vio/ring.h>

#define QSZ 64
#define LONG_OUT 4
#define LONG_IN 16
#define LONG_N (LONG_OUT + LONG_IN) /* 20 descriptors */
#define SMALL_IOV 16
#define SEG_LEN 100u
#define UNMAPPED 0xdead00000000ull

struct env {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	uint8_t *arena;
	uint64_t arena_daddr;
	bool packed, indirect;
	int broken_calls;
};

static void on_broken(struct vio_vq *vq, void *o)
{
	(void)vq;
	((struct env *)o)->broken_calls++;
}

/* stripe 0: one region; else regions of stripe bytes, adjacent in device
 * address space */
static void env_init(struct env *e, bool packed, bool indirect, uint32_t stripe)
{
	memset(e, 0, sizeof(*e));
	e->packed = packed;
	e->indirect = indirect;
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 4 << 20, NULL) == 0);
	e->mt = ring_env_table(vio_mem_region(e->mem, 0), stripe, 4);
	struct vio_vq_opts c = {.index = 0,
				.size = QSZ,
				.packed = packed,
				.event_idx = true,
				.indirect = indirect,
				.broken = on_broken,
				.opaque = e,
				.name = "limits"};
	ring_env_pair(&c, NULL, e->mem, e->mt, &e->drv, &e->dev);
	e->arena = vio_mem_alloc(e->mem, 1 << 20, 4096, &e->arena_daddr);
	REQUIRE(e->arena);
}

static void env_fini(struct env *e)
{
	vio_vq_free(e->dev);
	vio_vq_free(e->drv);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
}

static const char *cfg_name(const struct env *e)
{
	return e->packed ? (e->indirect ? "packed indirect" : "packed direct")
			 : (e->indirect ? "split indirect" : "split direct");
}

/* A chain of nout readable then nin writable SEG_LEN segments, at slot
 * (room for LONG_N segments each) of the arena. */
static void add_chain(struct env *e, struct vio_sg *sg, unsigned nout,
		      unsigned nin, unsigned slot, void *token)
{
	uint8_t *p = e->arena + (size_t)slot * LONG_N * SEG_LEN * 2;
	for (unsigned i = 0; i < nout + nin; i++) {
		sg[i].buf = p + (size_t)i * SEG_LEN * 2;
		sg[i].len = SEG_LEN + i;
		memset(sg[i].buf, i < nout ? 0x11 : 0xee, sg[i].len);
	}
	REQUIRE(vio_vq_add(e->drv, sg, nout, nin, token) == 0);
	vio_vq_kick(e->drv);
}

static uint32_t sum_len(const struct vio_sg *sg, unsigned from, unsigned n)
{
	uint32_t t = 0;
	for (unsigned i = from; i < from + n; i++)
		t += sg[i].len;
	return t;
}

/* The driver gets token back with used length len, and nothing else. */
static void harvest(struct env *e, void *token, uint32_t len)
{
	uint32_t got = 0xffffffffu;
	CHECK(vio_vq_get(e->drv, &got) == token);
	CHECK_EQ(got, len);
	CHECK(vio_vq_get(e->drv, &got) == NULL);
	CHECK(!vio_vq_broken(e->drv));
}

/*
 * The case: a 20-descriptor chain (4 readable, 16 writable), the
 * device passes 16 segments.  Alternated with short chains, around the
 * ring three times (packed: wrap counters flip; split: indices wrap).
 */
static void long_chain_then_short(bool packed, bool indirect)
{
	struct env e;
	env_init(&e, packed, indirect, 0);
	struct vio_iov iov[SMALL_IOV];
	struct vio_chain c;
	struct vio_sg sg[LONG_N];
	int tok_long, tok_short;

	for (unsigned round = 0; round < 3 * QSZ; round++) {
		add_chain(&e, sg, LONG_OUT, LONG_IN, 0, &tok_long);
		memset(&c, 0, sizeof(c));
		int r = vio_vq_pop(e.dev, &c, iov, SMALL_IOV);
		CHECK_EQ(r, -E2BIG);
		CHECK(!vio_vq_broken(e.dev));
		CHECK_EQ(e.broken_calls, 0);
		CHECK(strcmp(vio_vq_error(e.dev), "") == 0);
		CHECK_EQ(c.nd_out, LONG_OUT);
		CHECK_EQ(c.nd_in, LONG_IN);
		CHECK_EQ(c.out_len, sum_len(sg, 0, LONG_OUT));
		CHECK_EQ(c.in_len, sum_len(sg, LONG_OUT, LONG_IN));
		CHECK_EQ(c.nr_out, 0);
		/* the end of the writable area: the last descriptor */
		CHECK_EQ(c.nr_in, 1);
		CHECK(c.in == iov);
		CHECK(iov[0].base == sg[LONG_N - 1].buf);
		CHECK_EQ(iov[0].len, sg[LONG_N - 1].len);
		CHECK_EQ(iov[0].cont, 0);
		/* the device answers with a status byte at the end */
		uint8_t *st = (uint8_t *)iov[0].base + iov[0].len - 1;
		*st = 0x0a;
		/* the next pop (nothing there) is clean, not a retry */
		struct vio_chain c2;
		CHECK_EQ(vio_vq_pop(e.dev, &c2, iov, SMALL_IOV), 0);
		CHECK_EQ(vio_vq_push(e.dev, c.head, 1), 0);
		vio_vq_call(e.dev);
		harvest(&e, &tok_long, 1);
		CHECK_EQ(
		    ((uint8_t *)sg[LONG_N - 1].buf)[sg[LONG_N - 1].len - 1],
		    0x0a);
		/* nothing else was written */
		CHECK_EQ(((uint8_t *)sg[LONG_OUT].buf)[0], 0xee);

		/* a chain that fits pops as usual */
		add_chain(&e, sg, 1, 2, 1, &tok_short);
		r = vio_vq_pop(e.dev, &c, iov, SMALL_IOV);
		CHECK_EQ(r, 1);
		CHECK_EQ(c.nr_out, 1);
		CHECK_EQ(c.nr_in, 2);
		CHECK_EQ(c.nd_out, 1);
		CHECK_EQ(c.nd_in, 2);
		CHECK(c.out[0].base == sg[0].buf);
		CHECK(c.in[1].base == sg[2].buf);
		CHECK_EQ(c.in_len, sum_len(sg, 1, 2));
		CHECK_EQ(vio_vq_push(e.dev, c.head, c.in_len), 0);
		vio_vq_call(e.dev);
		harvest(&e, &tok_short, sum_len(sg, 1, 2));
		if (test_failures)
			break;
	}
	CHECK(!vio_vq_broken(e.dev));
	CHECK_EQ(vio_vq_num_free(e.drv), QSZ);
	printf("%s: 20-descriptor chain with max_iov 16 -> -E2BIG, queue "
	       "kept (%u rounds)\n",
	       cfg_name(&e), 3 * QSZ);
	env_fini(&e);
}

/* Several too-long chains pending at once, pushed back as one batch. */
static void batch_of_long(bool packed, bool indirect)
{
	struct env e;
	env_init(&e, packed, indirect, 0);
	struct vio_iov iov[SMALL_IOV];
	struct vio_sg sg[3][LONG_N];
	int tok[3];
	struct vio_used u[3];
	for (unsigned i = 0; i < 3; i++)
		add_chain(&e, sg[i], LONG_OUT, LONG_IN, i, &tok[i]);
	for (unsigned i = 0; i < 3; i++) {
		struct vio_chain c;
		CHECK_EQ(vio_vq_pop(e.dev, &c, iov, SMALL_IOV), -E2BIG);
		CHECK_EQ(c.in_len, sum_len(sg[i], LONG_OUT, LONG_IN));
		u[i].head = c.head;
		u[i].len = 0;
	}
	struct vio_chain c;
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, SMALL_IOV), 0);
	CHECK_EQ(vio_vq_push_batch(e.dev, u, 3), 0);
	for (unsigned i = 0; i < 3; i++) {
		uint32_t len = 1;
		CHECK(vio_vq_get(e.drv, &len) == &tok[i]);
		CHECK_EQ(len, 0);
	}
	CHECK(!vio_vq_broken(e.dev));
	CHECK(!vio_vq_broken(e.drv));
	env_fini(&e);
}

/* No writable byte, and max_iov 0: -E2BIG with nr_in 0. */
static void no_tail(bool packed, bool indirect)
{
	struct env e;
	env_init(&e, packed, indirect, 0);
	struct vio_iov iov[SMALL_IOV];
	struct vio_sg sg[LONG_N];
	struct vio_chain c;
	int tok;

	add_chain(&e, sg, LONG_N, 0, 0, &tok);
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, SMALL_IOV), -E2BIG);
	CHECK_EQ(c.nd_out, LONG_N);
	CHECK_EQ(c.nd_in, 0);
	CHECK_EQ(c.nr_out, 0);
	CHECK_EQ(c.nr_in, 0);
	CHECK_EQ(c.out_len, sum_len(sg, 0, LONG_N));
	CHECK_EQ(c.in_len, 0);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 0), 0);
	harvest(&e, &tok, 0);

	add_chain(&e, sg, 1, 1, 1, &tok);
	CHECK_EQ(vio_vq_pop(e.dev, &c, NULL, 0), -E2BIG);
	CHECK_EQ(c.nd_out, 1);
	CHECK_EQ(c.nd_in, 1);
	CHECK_EQ(c.nr_out + c.nr_in, 0);
	CHECK_EQ(c.in_len, sg[1].len);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 0), 0);
	harvest(&e, &tok, 0);
	CHECK(!vio_vq_broken(e.dev));
	env_fini(&e);
}

#define STRIPE 4096u

/* len bytes at a device address off bytes into a stripe */
static uint8_t *at_stripe(struct env *e, size_t *cursor, uint32_t len,
			  uint32_t off)
{
	uint64_t d = e->arena_daddr + *cursor;
	size_t skip = (off + STRIPE - d % STRIPE) % STRIPE;
	uint8_t *p = e->arena + *cursor + skip;
	*cursor += skip + len;
	return p;
}

/*
 * Region crossings: the chain's segments outnumber max_iov because its
 * descriptors cross region boundaries.  The tail descriptor comes back
 * whole (in pieces, cont marked) when it fits, else only its last byte.
 */
static void crossing_tail(bool packed, bool indirect)
{
	struct env e;
	env_init(&e, packed, indirect, STRIPE);
	struct vio_iov iov[4];
	struct vio_chain c;
	struct vio_sg sg[4];
	size_t cur = 0;
	int tok;

	/* 16 readable bytes, then 2.5 stripes writable starting 100 bytes
	 * before a boundary: 1 + 4 segments, max_iov 4 */
	sg[0].buf = at_stripe(&e, &cur, 16, 0);
	sg[0].len = 16;
	sg[1].buf = at_stripe(&e, &cur, 2 * STRIPE + 200, STRIPE - 100);
	sg[1].len = 2 * STRIPE + 200;
	REQUIRE(vio_vq_add(e.drv, sg, 1, 1, &tok) == 0);
	vio_vq_kick(e.drv);
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), -E2BIG);
	CHECK_EQ(c.nd_out, 1);
	CHECK_EQ(c.nd_in, 1);
	CHECK_EQ(c.nr_in, 4);
	CHECK(iov[0].base == sg[1].buf);
	CHECK_EQ(iov[0].len, 100);
	CHECK_EQ(iov[1].len, STRIPE);
	CHECK_EQ(iov[3].len, 100);
	CHECK_EQ(iov[0].cont, 0);
	CHECK_EQ(iov[1].cont, 1);
	CHECK_EQ(iov[3].cont, 1);
	CHECK(iov[3].base == (uint8_t *)sg[1].buf + sg[1].len - 100);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 1), 0);
	harvest(&e, &tok, 1);

	/* the tail descriptor alone needs 5 segments: its last byte */
	sg[0].buf = at_stripe(&e, &cur, 16, 0);
	sg[0].len = 16;
	sg[1].buf = at_stripe(&e, &cur, 3 * STRIPE + 200, STRIPE - 100);
	sg[1].len = 3 * STRIPE + 200;
	REQUIRE(vio_vq_add(e.drv, sg, 1, 1, &tok) == 0);
	vio_vq_kick(e.drv);
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), -E2BIG);
	CHECK_EQ(c.nr_in, 1);
	CHECK_EQ(iov[0].len, 1);
	CHECK(iov[0].base == (uint8_t *)sg[1].buf + sg[1].len - 1);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 1), 0);
	harvest(&e, &tok, 1);

	/* exactly max_iov segments (1 + 3): a normal pop */
	sg[0].buf = at_stripe(&e, &cur, 16, 0);
	sg[0].len = 16;
	sg[1].buf = at_stripe(&e, &cur, STRIPE + 200, STRIPE - 100);
	sg[1].len = STRIPE + 200;
	REQUIRE(vio_vq_add(e.drv, sg, 1, 1, &tok) == 0);
	vio_vq_kick(e.drv);
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), 1);
	CHECK_EQ(c.nr_out, 1);
	CHECK_EQ(c.nr_in, 3);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 1), 0);
	harvest(&e, &tok, 1);
	CHECK(!vio_vq_broken(e.dev));
	printf("%s: crossing tail pieces and last-byte fallback\n",
	       cfg_name(&e));
	env_fini(&e);
}

/* The 16 bytes of descriptor k of the first chain of a fresh queue, in
 * the ring or in its indirect table (flags at 12 split, 14 packed). */
static uint8_t *nth_desc(struct env *e, unsigned k)
{
	struct vio_vq_layout l;
	vio_vq_get_layout(e->drv, &l);
	uint8_t *ring = l.desc;
	unsigned head = 0;
	if (!e->packed) {
		uint16_t h;
		memcpy(&h, (uint8_t *)l.driver + 4, 2);
		head = le16toh(h);
	}
	uint8_t *d = ring + 16 * head;
	uint16_t flags;
	memcpy(&flags, d + (e->packed ? 14 : 12), 2);
	if (le16toh(flags) & VRING_DESC_F_INDIRECT) {
		uint64_t a;
		uint32_t len;
		memcpy(&a, d, 8);
		memcpy(&len, d + 8, 4);
		uint8_t *tbl =
		    vio_memtable_ptr(e->mt, le64toh(a), le32toh(len));
		REQUIRE(tbl);
		ring = tbl;
		head = 0;
	}
	if (e->packed)
		return ring + 16 * (head + k);
	/* split: follow next */
	unsigned i = head;
	for (unsigned s = 0; s < k; s++) {
		uint16_t nx;
		memcpy(&nx, ring + 16 * i + 14, 2);
		i = le16toh(nx);
	}
	return ring + 16 * i;
}

/* Malformed after max_iov segments: still -EIO and broken. */
static void malformed_beyond(bool packed, bool indirect, bool unmapped)
{
	struct env e;
	env_init(&e, packed, indirect, 0);
	struct vio_iov iov[SMALL_IOV];
	struct vio_sg sg[LONG_N];
	struct vio_chain c;
	int tok;

	add_chain(&e, sg, LONG_OUT, LONG_IN, 0, &tok);
	uint8_t *d = nth_desc(&e, 18);
	if (unmapped) {
		uint64_t a = htole64(UNMAPPED);
		memcpy(d, &a, 8);
	} else {
		/* readable after writable */
		unsigned fo = packed ? 14 : 12;
		uint16_t f;
		memcpy(&f, d + fo, 2);
		f = htole16((uint16_t)(le16toh(f) & ~VRING_DESC_F_WRITE));
		memcpy(d + fo, &f, 2);
	}
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, SMALL_IOV), -EIO);
	CHECK(vio_vq_broken(e.dev));
	CHECK_EQ(e.broken_calls, 1);
	const char *want =
	    unmapped ? "not in mapped memory" : "readable descriptor after";
	if (!strstr(vio_vq_error(e.dev), want)) {
		CHECK(!"error names the violation");
		fprintf(stderr, "  %s: got '%s'\n", cfg_name(&e),
			vio_vq_error(e.dev));
	}
	printf("%s: malformed at descriptor 18 of 20, max_iov 16 -> %s\n",
	       cfg_name(&e), vio_vq_error(e.dev));
	env_fini(&e);
}

int main(void)
{
	for (int packed = 0; packed < 2; packed++)
		for (int ind = 0; ind < 2; ind++) {
			long_chain_then_short(packed, ind);
			batch_of_long(packed, ind);
			no_tail(packed, ind);
			crossing_tail(packed, ind);
			malformed_beyond(packed, ind, true);
			malformed_beyond(packed, ind, false);
		}
	return test_result("ring_pop_limits");
}
