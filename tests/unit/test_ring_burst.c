/* SPDX-License-Identifier: MIT */
/*
 * vio_vq_pop_burst: one-descriptor chains many at a time.  A driver adds
 * a random mix (one-descriptor chains readable or writable, longer
 * chains, empty descriptors, buffers across a region boundary) over many
 * turns of the ring; the device pops with bursts of random sizes, and
 * vio_vq_pop where a burst stops.  Every chain must come out once, in
 * ring order, with the driver's addresses, lengths and directions; a
 * burst must only ever return chains of its kind; unpop takes chains of
 * a burst back (newest first).  Both formats.
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
#define STRIPE 4096u

struct env {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	uint8_t *arena;
	uint8_t *base; /* in the arena, at the start of a region */
};

/* The device sees the driver's memory as regions of STRIPE bytes,
 * adjacent in device address space: a buffer across a boundary is two
 * segments, which a burst leaves to vio_vq_pop. */
static void env_init(struct env *e, bool packed, bool event_idx)
{
	memset(e, 0, sizeof(*e));
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 4 << 20, NULL) == 0);
	e->mt = ring_env_table(vio_mem_region(e->mem, 0), STRIPE, 1);
	struct vio_vq_opts c = {.size = QSZ,
				.packed = packed,
				.event_idx = event_idx,
				.name = "burst"};
	ring_env_pair(&c, NULL, e->mem, e->mt, &e->drv, &e->dev);
	uint64_t daddr;
	e->arena = vio_mem_alloc(e->mem, 1 << 20, 64, &daddr);
	REQUIRE(e->arena);
	e->base = e->arena + (STRIPE - daddr % STRIPE) % STRIPE;
}

static void env_fini(struct env *e)
{
	vio_vq_free(e->dev);
	vio_vq_free(e->drv);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
}

/* What the driver added, in ring order. */
struct added {
	uint8_t *buf;
	uint32_t len;
	unsigned out, in;
	bool one; /* a chain a burst may take */
};

static struct added q[1 << 16];
static unsigned q_head, q_tail;

/* Add one random chain; false when the ring is full. */
static bool add_one(struct env *e, uint64_t *rs)
{
	unsigned kind = test_rand(rs) % 20;
	struct vio_sg sg[3];
	unsigned out = 0, in = 0;
	uint8_t *b = e->base + (test_rand(rs) % 200) * STRIPE;
	uint32_t len = 1 + test_rand(rs) % 1500;
	bool one = true;
	if (kind < 14) { /* one descriptor, in one region */
		b += test_rand(rs) % (STRIPE - len);
		sg[0] = (struct vio_sg){b, len};
		if (kind & 1)
			in = 1;
		else
			out = 1;
	} else if (kind < 17) { /* a header and a frame: two */
		sg[0] = (struct vio_sg){b, 12};
		sg[1] = (struct vio_sg){b + 100, len};
		out = 1;
		in = 1;
		one = false;
	} else if (kind < 19) { /* across a region boundary */
		b += STRIPE - 8;
		sg[0] = (struct vio_sg){b, 64};
		in = 1;
		one = false;
	} else { /* empty */
		sg[0] = (struct vio_sg){b, 0};
		in = 1;
		one = false;
	}
	if (vio_vq_add(e->drv, sg, out, in, &q[q_tail % (1 << 16)]) < 0)
		return false;
	q[q_tail % (1 << 16)] = (struct added){b, sg[0].len, out, in, one};
	q_tail++;
	return true;
}

/* A popped chain against the next one the driver added. */
static unsigned check_chain(const struct vio_chain *c, bool from_burst)
{
	REQUIRE(q_head != q_tail);
	const struct added *a = &q[q_head % (1 << 16)];
	q_head++;
	unsigned bad = 0;
	bad += c->nd_out != a->out || c->nd_in != a->in;
	if (from_burst) {
		/* only its kind, one segment where the driver put it */
		bad += !a->one;
		bad += (unsigned)c->nr_out + c->nr_in != 1;
		const struct vio_iov *v = c->nr_out ? c->out : c->in;
		bad += v->base != a->buf || v->len != a->len;
		bad += c->out_len + c->in_len != a->len;
	}
	return bad;
}

static void burst_random(bool packed, bool event_idx)
{
	struct env e;
	env_init(&e, packed, event_idx);
	uint64_t rs = test_seed() ^ (0xb0 + event_idx + 2 * packed);
	static struct vio_chain cb[32];
	static struct vio_iov iov[32 + 64];
	static struct vio_used used[QSZ];
	unsigned nused = 0, bad = 0, by_burst = 0, total = 0;
	q_head = q_tail = 0;
	for (unsigned round = 0; round < 20000; round++) {
		unsigned add = test_rand(&rs) % 12;
		for (unsigned i = 0; i < add && add_one(&e, &rs); i++)
			;
		vio_vq_kick_prepare(e.drv);
		unsigned want = 1 + test_rand(&rs) % 32;
		int b = vio_vq_pop_burst(e.dev, cb, iov, want);
		REQUIRE(b >= 0 && b <= (int)want);
		for (int k = 0; k < b; k++) {
			bad += check_chain(&cb[k], true);
			used[nused++] = (struct vio_used){cb[k].head, 0};
		}
		by_burst += (unsigned)b;
		if (b < (int)want) {
			/* where the burst stopped: vio_vq_pop */
			struct vio_chain c;
			int r = vio_vq_pop(e.dev, &c, iov + 32, 64);
			REQUIRE(r >= 0);
			if (r == 1) {
				bad += check_chain(&c, false);
				used[nused++] = (struct vio_used){c.head, 0};
			}
		}
		total = q_head;
		if (nused && (test_rand(&rs) % 3 == 0 || nused > QSZ - 33)) {
			REQUIRE(vio_vq_push_batch(e.dev, used, nused) == 0);
			nused = 0;
			uint32_t len;
			while (vio_vq_get(e.drv, &len))
				;
		}
	}
	/* the rest: every chain the driver added comes out */
	for (;;) {
		struct vio_chain c;
		int r = vio_vq_pop(e.dev, &c, iov, 64);
		REQUIRE(r >= 0);
		if (r == 0)
			break;
		bad += check_chain(&c, false);
	}
	CHECK_EQ(q_head, q_tail);
	CHECK(q_tail > 20000 * 3);
	CHECK_EQ(bad, 0);
	CHECK(!vio_vq_broken(e.dev));
	CHECK(!vio_vq_broken(e.drv));
	/* most chains are of the burst's kind: most went that way */
	CHECK(by_burst > total / 2);
	printf("burst (%s, event_idx %d): %u of %u chains by bursts\n",
	       packed ? "packed" : "split", event_idx, by_burst, total);
	env_fini(&e);
}

/* Chains of a burst go back newest first and come out again the same. */
static void burst_unpop(bool packed)
{
	struct env e;
	env_init(&e, packed, false);
	static int tok[8];
	for (unsigned i = 0; i < 6; i++) {
		struct vio_sg sg = {e.arena + i * 256, 100 + i};
		REQUIRE(vio_vq_add(e.drv, &sg, 0, 1, &tok[i]) == 0);
	}
	vio_vq_kick_prepare(e.drv);
	struct vio_chain c[8];
	struct vio_iov iov[8];
	CHECK_EQ(vio_vq_pop_burst(e.dev, c, iov, 8), 6);
	CHECK_EQ(vio_vq_unpop(e.dev, c[5].head), 0);
	CHECK_EQ(vio_vq_unpop(e.dev, c[4].head), 0);
	CHECK_EQ(vio_vq_unpop(e.dev, c[3].head), 0);
	uint32_t h3 = c[3].head;
	CHECK_EQ(vio_vq_pop_burst(e.dev, c, iov, 2), 2);
	CHECK_EQ(c[0].head, h3);
	CHECK_EQ(c[0].in_len, 103);
	CHECK(c[0].in[0].base == e.arena + 3 * 256);
	CHECK_EQ(c[1].in_len, 104);
	CHECK_EQ(vio_vq_pop_burst(e.dev, c + 2, iov + 2, 8), 1);
	CHECK_EQ(c[2].in_len, 105);
	CHECK_EQ(vio_vq_pop_burst(e.dev, c, iov, 8), 0);
	CHECK(!vio_vq_broken(e.dev));
	env_fini(&e);
}

/* Drain what the driver added: pop, push, get. */
static void drain(struct env *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct vio_chain c;
		struct vio_iov iov[4];
		REQUIRE(vio_vq_pop(e->dev, &c, iov, 4) == 1);
		struct vio_used u = {c.head, 0};
		REQUIRE(vio_vq_push_batch(e->dev, &u, 1) == 0);
	}
	for (unsigned i = 0; i < n; i++) {
		uint32_t len;
		REQUIRE(vio_vq_get(e->drv, &len) != NULL);
	}
}

/* vio_vq_avail_at_least: exactly the descriptors the driver added count,
 * at every offset of the ring and across its wrap (packed: the probe's
 * wrap counter flips), n is capped at the size; never true on the
 * driver's side or on a broken queue. */
static void burst_at_least(bool packed)
{
	struct env e;
	env_init(&e, packed, false);
	static int tok[QSZ];
	CHECK(vio_vq_avail_at_least(e.dev, 0));
	CHECK(!vio_vq_avail_at_least(e.dev, 1));
	CHECK(!vio_vq_avail_at_least(e.dev, 64));
	unsigned bad = 0;
	for (unsigned lap = 0; lap < 40; lap++) {
		unsigned k = 1 + (lap * 23) % 40;
		for (unsigned i = 0; i < k; i++) {
			struct vio_sg sg = {e.arena + i * 256, 100};
			REQUIRE(vio_vq_add(e.drv, &sg, 1, 0, &tok[i]) == 0);
		}
		vio_vq_kick_prepare(e.drv);
		bad += !vio_vq_avail_at_least(e.dev, k);
		bad += !vio_vq_avail_at_least(e.dev, (k + 1) / 2);
		bad += vio_vq_avail_at_least(e.dev, k + 1);
		bad += vio_vq_avail_at_least(e.dev, QSZ);
		drain(&e, k);
		bad += vio_vq_avail_at_least(e.dev, 1);
	}
	CHECK_EQ(bad, 0);
	/* a chain of two descriptors: one entry of split's available ring;
	 * packed, two descriptors or (indirect) one */
	struct vio_sg two[2] = {{e.arena, 12}, {e.arena + 256, 100}};
	REQUIRE(vio_vq_add(e.drv, two, 1, 1, &tok[0]) == 0);
	vio_vq_kick_prepare(e.drv);
	CHECK(vio_vq_avail_at_least(e.dev, 1));
	if (!packed)
		CHECK(!vio_vq_avail_at_least(e.dev, 2));
	CHECK(!vio_vq_avail_at_least(e.dev, 3));
	drain(&e, 1);
	/* a full ring: any n beyond the size is the size */
	for (unsigned i = 0; i < QSZ; i++) {
		struct vio_sg sg = {e.arena + i * 256, 100};
		REQUIRE(vio_vq_add(e.drv, &sg, 1, 0, &tok[i]) == 0);
	}
	vio_vq_kick_prepare(e.drv);
	CHECK(vio_vq_avail_at_least(e.dev, QSZ));
	CHECK(vio_vq_avail_at_least(e.dev, QSZ + 100));
	CHECK(!vio_vq_avail_at_least(e.drv, 1));
	drain(&e, QSZ);
	CHECK(!vio_vq_broken(e.dev));
	env_fini(&e);
}

/* A driver-side queue: -EINVAL; a broken one: -EIO. */
static void burst_errors(void)
{
	struct env e;
	env_init(&e, false, true);
	struct vio_chain c;
	struct vio_iov iov[4];
	CHECK_EQ(vio_vq_pop_burst(e.drv, &c, iov, 4), -EINVAL);
	CHECK_EQ(vio_vq_pop_burst(e.dev, &c, iov, 4), 0);
	/* an avail index beyond the ring: broken, as vio_vq_pop says */
	struct vio_vq_layout l;
	vio_vq_get_layout(e.drv, &l);
	((struct vring_avail *)l.driver)->idx = htole16(QSZ + 1);
	CHECK_EQ(vio_vq_pop_burst(e.dev, &c, iov, 4), -EIO);
	CHECK(vio_vq_broken(e.dev));
	CHECK(!vio_vq_avail_at_least(e.dev, 2));
	CHECK_EQ(vio_vq_pop_burst(e.dev, &c, iov, 4), -EIO);
	env_fini(&e);
}

int main(void)
{
	for (int p = 0; p < 2; p++) {
		burst_random(p, false);
		burst_random(p, true);
		burst_unpop(p);
		burst_at_least(p);
	}
	burst_errors();
	return test_result("ring_burst");
}
