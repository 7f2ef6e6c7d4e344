/* SPDX-License-Identifier: MIT */
/*
 * Ring layer unit tests: driver and device ends of one queue in one
 * thread, both formats, with and without EVENT_IDX and INDIRECT_DESC;
 * randomized segment counts, sizes and batches, every byte checked; the
 * restart race answer; shutdown; and the hostile-device table (the driver
 * must catch a lying device).
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <sys/mman.h>

#include "ring_env.h"
#include "test.h"
#include <vio/mem.h>
#include <vio/ring.h>

#define QSZ 64
#define MAXSEG 8

struct env {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	uint8_t *arena; /* buffers, in shared memory */
	size_t arena_len;
	int notified_dev, notified_drv;
};

static void on_kick(struct vio_vq *vq, void *o)
{
	((struct env *)o)->notified_dev++;
}

static void on_call(struct vio_vq *vq, void *o)
{
	((struct env *)o)->notified_drv++;
}

/* env_init: with stripe set, the device's memory table splits the
 * driver's memory into regions of stripe bytes, adjacent in device
 * address space (so buffers cross region boundaries). */
static uint32_t stripe;
static uint16_t qsz; /* the ring size, when not QSZ */

static void env_init(struct env *e, bool packed, bool event_idx, bool indirect)
{
	memset(e, 0, sizeof(*e));
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 8 << 20, NULL) == 0);
	e->mt = ring_env_table(vio_mem_region(e->mem, 0), stripe, 8);
	struct vio_vq_opts c = {.index = 0,
				.size = qsz ? qsz : QSZ,
				.packed = packed,
				.event_idx = event_idx,
				.indirect = indirect,
				.notify = on_kick,
				.opaque = e,
				.name = "test"};
	ring_env_pair(&c, on_call, e->mem, e->mt, &e->drv, &e->dev);
	e->arena_len = 1 << 20;
	uint64_t daddr;
	e->arena = vio_mem_alloc(e->mem, e->arena_len, 64, &daddr);
	REQUIRE(e->arena);
}

static void env_fini(struct env *e)
{
	vio_vq_free(e->dev);
	vio_vq_free(e->drv);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
}

struct buf {
	struct vio_sg sg[MAXSEG];
	unsigned out, in;
	uint32_t in_total;
	uint8_t seed;
	bool busy;
};

static uint8_t pat(uint8_t seed, uint32_t i)
{
	return (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* Driver and device take turns: random batches, every byte checked. */
static void roundtrip(bool packed, bool event_idx, bool indirect,
		      unsigned iters)
{
	struct env e;
	env_init(&e, packed, event_idx, indirect);
	uint64_t rs = test_seed() ^ (packed * 2 + event_idx * 4 + indirect);
	static struct buf bufs[QSZ];
	memset(bufs, 0, sizeof(bufs));
	size_t slot = e.arena_len / QSZ;
	unsigned done = 0, added = 0, bad = 0;

	while (done < iters) {
		/* driver: add a random batch */
		unsigned batch = 1 + test_rand(&rs) % 16;
		for (unsigned b = 0; b < batch; b++) {
			int id = -1;
			for (int k = 0; k < QSZ; k++)
				if (!bufs[k].busy) {
					id = k;
					break;
				}
			if (id < 0)
				break;
			struct buf *bf = &bufs[id];
			bf->out = test_rand(&rs) % 4;
			bf->in = test_rand(&rs) % 4;
			if (bf->out + bf->in == 0)
				bf->in = 1;
			bf->seed = (uint8_t)test_rand(&rs);
			bf->in_total = 0;
			uint8_t *p = e.arena + id * slot;
			for (unsigned s = 0; s < bf->out + bf->in; s++) {
				uint32_t len = test_rand(&rs) % 2000;
				bf->sg[s].buf = p;
				bf->sg[s].len = len;
				if (s < bf->out)
					for (uint32_t i = 0; i < len; i++)
						p[i] = pat(bf->seed, i + s);
				else
					bf->in_total += len, memset(p, 0, len);
				p += len;
			}
			int r = vio_vq_add(e.drv, bf->sg, bf->out, bf->in, bf);
			if (r == -ENOSPC)
				break;
			CHECK_EQ(r, 0);
			if (r)
				goto out;
			bf->busy = true;
			added++;
		}
		vio_vq_kick(e.drv);
		/* device: pop what is there, check, answer */
		struct vio_chain c;
		struct vio_iov iov[64];
		struct vio_used used[QSZ];
		unsigned nu = 0;
		int r;
		while ((r = vio_vq_pop(e.dev, &c, iov, 64)) == 1) {
			/* readable bytes carry the pattern per segment */
			uint32_t wlen = c.in_len;
			for (unsigned s = 0; s < c.nr_in; s++)
				for (uint32_t i = 0; i < c.in[s].len; i++)
					((uint8_t *)c.in[s].base)[i] =
					    (uint8_t)(i ^ 0x5a);
			used[nu].head = c.head;
			used[nu].len = wlen;
			nu++;
			if (test_rand(&rs) % 3 == 0) {
				CHECK_EQ(vio_vq_push_batch(e.dev, used, nu), 0);
				nu = 0;
			}
		}
		CHECK_EQ(r, 0);
		if (nu)
			CHECK_EQ(vio_vq_push_batch(e.dev, used, nu), 0);
		vio_vq_call(e.dev);
		/* driver: harvest */
		uint32_t len;
		struct buf *bf;
		while ((bf = vio_vq_get(e.drv, &len))) {
			CHECK(bf->busy);
			CHECK_EQ(len, bf->in_total);
			for (unsigned s = bf->out; s < bf->out + bf->in; s++)
				for (uint32_t i = 0; i < bf->sg[s].len; i++)
					if (((uint8_t *)bf->sg[s].buf)[i] !=
					    (uint8_t)(i ^ 0x5a))
						bad++;
			bf->busy = false;
			done++;
		}
		CHECK(!vio_vq_broken(e.drv));
		CHECK(!vio_vq_broken(e.dev));
		if (vio_vq_broken(e.drv) || vio_vq_broken(e.dev)) {
			fprintf(stderr, "drv: %s dev: %s\n",
				vio_vq_error(e.drv), vio_vq_error(e.dev));
			break;
		}
	}
out:
	CHECK_EQ(bad, 0);
	CHECK_EQ(vio_vq_num_free(e.drv), QSZ);
	printf("roundtrip %s event_idx=%d indirect=%d: %u buffers, %d kicks, "
	       "%d calls\n",
	       packed ? "packed" : "split", event_idx, indirect, done,
	       e.notified_dev, e.notified_drv);
	env_fini(&e);
}

/* The device's readable view matches what the driver wrote. */
static void readable_content(bool packed, bool indirect)
{
	struct env e;
	env_init(&e, packed, false, indirect);
	uint8_t *a = e.arena;
	for (int i = 0; i < 300; i++)
		a[i] = (uint8_t)i;
	struct vio_sg sg[3] = {{a, 100}, {a + 100, 200}, {a + 1000, 50}};
	int tok;
	CHECK_EQ(vio_vq_add(e.drv, sg, 2, 1, &tok), 0);
	vio_vq_kick(e.drv);
	struct vio_chain c;
	struct vio_iov iov[8];
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 8), 1);
	CHECK_EQ(c.nr_out, 2);
	CHECK_EQ(c.nr_in, 1);
	CHECK_EQ(c.out_len, 300);
	CHECK_EQ(c.in_len, 50);
	struct vio_cursor cur;
	uint8_t got[300];
	vio_cursor_init(&cur, c.out, c.nr_out);
	CHECK_EQ(vio_cursor_read(&cur, got, sizeof(got)), 300);
	CHECK(memcmp(got, a, 300) == 0);
	CHECK_EQ(vio_cursor_read(&cur, got, 1), 0);
	vio_cursor_init(&cur, c.in, c.nr_in);
	CHECK_EQ(vio_cursor_write(&cur, "hello", 5), 5);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 5), 0);
	uint32_t len = 0;
	CHECK(vio_vq_get(e.drv, &len) == &tok);
	CHECK_EQ(len, 5);
	CHECK(memcmp(a + 1000, "hello", 5) == 0);
	env_fini(&e);
}

/* restart: enable_cb refuses while used buffers are pending; shutdown
 * returns every unused token; a full ring says -ENOSPC. */
static void restart_and_shutdown(bool packed)
{
	struct env e;
	env_init(&e, packed, true, false);
	static int toks[QSZ];
	struct vio_sg sg = {e.arena, 16};
	for (int i = 0; i < QSZ; i++)
		CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &toks[i]), 0);
	CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &toks[0]), -ENOSPC);
	CHECK_EQ(vio_vq_num_free(e.drv), 0);
	CHECK(vio_vq_kick(e.drv));
	CHECK(vio_vq_enable_cb(e.drv));
	struct vio_chain c;
	struct vio_iov iov[4];
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), 1);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 0), 0);
	CHECK(vio_vq_call(e.dev));	 /* driver asked for it */
	CHECK(!vio_vq_enable_cb(e.drv)); /* one is pending: refuse */
	CHECK(vio_vq_more_used(e.drv));
	uint32_t len;
	CHECK(vio_vq_get(e.drv, &len) == &toks[0]);
	CHECK(vio_vq_enable_cb(e.drv));
	vio_vq_disable_cb(e.drv);
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), 1);
	CHECK_EQ(vio_vq_push(e.dev, c.head, 0), 0);
	CHECK(!vio_vq_call(e.dev)); /* callbacks disabled: no call */
	CHECK(vio_vq_get(e.drv, &len) == &toks[1]);
	/* shutdown: the other QSZ-2 come back exactly once each */
	int n = 0;
	void *t;
	static bool seen[QSZ];
	memset(seen, 0, sizeof(seen));
	while ((t = vio_vq_detach_unused(e.drv))) {
		int i = (int)((int *)t - toks);
		CHECK(i >= 2 && i < QSZ && !seen[i]);
		if (i >= 0 && i < QSZ)
			seen[i] = true;
		n++;
	}
	CHECK_EQ(n, QSZ - 2);
	CHECK_EQ(vio_vq_num_free(e.drv), QSZ);
	env_fini(&e);
}

/* Notification suppression: with EVENT_IDX, a device that asked for no
 * kicks gets none; enable_notify re-arms and reports pending work. */
static void kick_suppression(bool packed, bool event_idx)
{
	struct env e;
	env_init(&e, packed, event_idx, false);
	static int tok;
	struct vio_sg sg = {e.arena, 16};
	CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &tok), 0);
	CHECK(vio_vq_kick(e.drv)); /* device wants kicks initially */
	vio_vq_disable_notify(e.dev);
	CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &tok), 0);
	CHECK(!vio_vq_kick(e.drv));	     /* suppressed */
	CHECK(!vio_vq_enable_notify(e.dev)); /* work is pending */
	struct vio_chain c;
	struct vio_iov iov[4];
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), 1);
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), 1);
	CHECK_EQ(vio_vq_pop(e.dev, &c, iov, 4), 0);
	CHECK(vio_vq_enable_notify(e.dev));
	CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &tok), 0);
	CHECK(vio_vq_kick(e.drv)); /* re-armed */
	env_fini(&e);
}

/* ---- hostile device: the driver checks every used entry ---- */

enum attack {
	USED_ID_RANGE,
	USED_NOT_IN_FLIGHT,
	USED_TWICE,
	USED_LEN_TOO_BIG,
	USED_IDX_JUMP,
};

static const char *attack_name[] = {
    "used id out of range", "used id not in flight", "used twice",
    "used length larger than the buffer", "used index jump"};

static void hostile_device(bool packed, enum attack a)
{
	struct env e;
	env_init(&e, packed, false, false);
	static int toks[4];
	struct vio_sg sg = {e.arena, 64};
	for (int i = 0; i < 2; i++)
		CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &toks[i]), 0);
	vio_vq_kick(e.drv);
	struct vio_vq_layout l;
	vio_vq_get_layout(e.drv, &l);
	uint32_t id = 0, len = 8;
	uint16_t idx_add = 1;
	switch (a) {
	case USED_ID_RANGE:
		id = QSZ + 3;
		break;
	case USED_NOT_IN_FLIGHT:
		id = packed ? 5 : 7; /* never handed out */
		break;
	case USED_LEN_TOO_BIG:
		len = 65;
		break;
	case USED_TWICE:
		break;
	case USED_IDX_JUMP:
		idx_add = 40;
		break;
	}
	/* forge the used entries by hand, as a hostile device would */
	if (packed) {
		struct vring_packed_desc *d = l.desc;
		uint16_t f = (1u << VRING_PACKED_DESC_F_AVAIL) |
			     (1u << VRING_PACKED_DESC_F_USED);
		d[0].id = htole16((uint16_t)id);
		d[0].len = htole32(len);
		d[0].flags = htole16(f);
		if (a == USED_TWICE || a == USED_IDX_JUMP) {
			d[1].id = htole16((uint16_t)id);
			d[1].len = htole32(len);
			d[1].flags = htole16(f);
		}
	} else {
		struct vring_used *u = l.device;
		u->ring[0].id = htole32(id);
		u->ring[0].len = htole32(len);
		u->ring[1].id = htole32(id);
		u->ring[1].len = htole32(len);
		u->idx = htole16(a == USED_TWICE ? 2 : idx_add);
	}
	uint32_t got;
	void *t1 = vio_vq_get(e.drv, &got);
	void *t2 = t1 ? vio_vq_get(e.drv, &got) : NULL;
	bool expect_first_ok =
	    a == USED_TWICE || (packed && a == USED_IDX_JUMP);
	if (expect_first_ok)
		CHECK(t1 == &toks[0]);
	else
		CHECK(t1 == NULL);
	if (packed && a == USED_IDX_JUMP) {
		/* packed has no index: the second forged entry is a second
		 * use of id 0 */
		CHECK(t2 == NULL);
	} else {
		CHECK(t2 == NULL);
	}
	CHECK(vio_vq_broken(e.drv));
	CHECK(strlen(vio_vq_error(e.drv)) > 0);
	/* broken is sticky: every verb refuses */
	CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &toks[2]), -EIO);
	CHECK(vio_vq_get(e.drv, &got) == NULL);
	printf("hostile device (%s, %s): %s\n", packed ? "packed" : "split",
	       attack_name[a], vio_vq_error(e.drv));
	env_fini(&e);
}

/*
 * Descriptors across region boundaries (memory in 256-byte regions): a
 * descriptor becomes one segment per region it touches, the later ones
 * marked cont, and nd_out / nd_in count descriptors, not segments.
 * Direct and indirect chains, both formats; the segments are regrouped
 * by their marks and must give back each descriptor exactly.
 */
static void crossing(bool packed, bool indirect)
{
	struct env e;
	stripe = 256;
	env_init(&e, packed, true, indirect);
	stripe = 0;
	uint64_t rs = test_seed() ^ (0x51 + packed * 2 + indirect);
	unsigned max_iov = vio_vq_iov_max(QSZ);
	static struct vio_iov iov[2048];
	REQUIRE(max_iov <= 2048);
	unsigned bad = 0, pieces = 0;
	for (unsigned round = 0; round < 2000; round++) {
		struct vio_sg sg[MAXSEG];
		unsigned out = test_rand(&rs) % 4, in = 1 + test_rand(&rs) % 4;
		uint8_t *p = e.arena + test_rand(&rs) % 4096;
		for (unsigned s = 0; s < out + in; s++) {
			uint32_t len = 1 + test_rand(&rs) % 2000;
			sg[s].buf = p;
			sg[s].len = len;
			p += len + test_rand(&rs) % 300;
		}
		int tok;
		REQUIRE(vio_vq_add(e.drv, sg, out, in, &tok) == 0);
		vio_vq_kick_prepare(e.drv);
		struct vio_chain c;
		REQUIRE(vio_vq_pop(e.dev, &c, iov, max_iov) == 1);
		bad += c.nd_out != out || c.nd_in != in;
		/* regroup: a segment without cont starts a descriptor */
		unsigned d = 0;
		uint32_t got = 0;
		uint8_t *next = NULL;
		for (unsigned k = 0; k < (unsigned)c.nr_out + c.nr_in; k++) {
			const struct vio_iov *v = &iov[k];
			uint64_t da = vio_mem_daddr(e.mem, v->base, v->len);
			if (!v->cont) {
				if (k > 0)
					bad += got != sg[d++].len;
				bad += v->base != sg[d].buf;
				got = 0;
			} else {
				/* a piece starts a region, right after the
				 * piece before it */
				bad += da % 256u != 0 || v->base != next;
			}
			/* no piece crosses a region boundary */
			bad += da / 256u != (da + v->len - 1) / 256u;
			bad += k == c.nr_out && v->cont; /* in[] starts anew */
			got += v->len;
			next = (uint8_t *)v->base + v->len;
		}
		bad += d + 1 != out + in || got != sg[d].len;
		pieces += (unsigned)c.nr_out + c.nr_in;
		REQUIRE(vio_vq_push(e.dev, c.head, 0) == 0);
		uint32_t len;
		REQUIRE(vio_vq_get(e.drv, &len) == &tok);
	}
	CHECK_EQ(bad, 0);
	CHECK(!vio_vq_broken(e.dev));
	printf("crossing (%s%s): %u segments for 2000 chains\n",
	       packed ? "packed" : "split", indirect ? ", indirect" : "",
	       pieces);
	env_fini(&e);
}

static void iov_max(void)
{
	CHECK_EQ(vio_vq_iov_max(1), 1 + VIO_CHAIN_CROSSINGS);
	CHECK_EQ(vio_vq_iov_max(64), 64 + VIO_CHAIN_CROSSINGS);
	CHECK_EQ(vio_vq_iov_max(4096), 8192);
	CHECK_EQ(vio_vq_iov_max(32768), UINT16_MAX);
}

/*
 * Packed used descriptors: the device sets VIRTQ_DESC_F_WRITE when it wrote
 * bytes (2.8.4: the length of a used descriptor without it is reserved and
 * ignored by drivers), and a driver reads a used descriptor of a buffer
 * with nothing writable as 0 bytes whatever its length field says (DPDK's
 * vhost leaves the driver's own length there).
 */
static void packed_used_write_flag(void)
{
	struct env e;
	env_init(&e, true, false, false);
	static int toks[2];
	struct vio_sg in = {e.arena, 64}, out = {e.arena + 64, 32};
	CHECK_EQ(vio_vq_add(e.drv, &in, 0, 1, &toks[0]), 0);  /* writable */
	CHECK_EQ(vio_vq_add(e.drv, &out, 1, 0, &toks[1]), 0); /* readable */
	vio_vq_kick(e.drv);
	struct vio_chain c;
	struct vio_iov iov[4];
	uint32_t heads[2];
	for (int i = 0; i < 2; i++) {
		REQUIRE(vio_vq_pop(e.dev, &c, iov, 4) == 1);
		heads[i] = c.head;
	}
	CHECK_EQ(vio_vq_push(e.dev, heads[0], 10), 0);
	CHECK_EQ(vio_vq_push(e.dev, heads[1], 0), 0);
	struct vio_vq_layout l;
	vio_vq_get_layout(e.drv, &l);
	struct vring_packed_desc *d = l.desc;
	CHECK(le16toh(d[0].flags) & VRING_DESC_F_WRITE);
	CHECK(!(le16toh(d[1].flags) & VRING_DESC_F_WRITE));
	/* a device that leaves a length on the readable buffer's entry */
	d[1].len = htole32(32);
	uint32_t got = 99;
	CHECK(vio_vq_get(e.drv, &got) == &toks[0]);
	CHECK_EQ(got, 10);
	CHECK(vio_vq_get(e.drv, &got) == &toks[1]);
	CHECK_EQ(got, 0);
	CHECK(!vio_vq_broken(e.drv));
	env_fini(&e);
}

/*
 * Split, driver: buffers reposted in the order they came back land in the
 * same descriptors and avail slots lap after lap (the free list is a
 * queue), and the driver stores only what changes: the descriptor table,
 * read-only after the first lap, is not written by the next two (a
 * write would fault), and the avail slots hold the same heads.  The
 * device's reads of those lines then hit its own cached copies.
 */
static void split_reuse_untouched(void)
{
	enum { N = 256 };
	struct env e;
	qsz = N;
	env_init(&e, false, false, false);
	qsz = 0;
	struct vio_vq_layout l;
	vio_vq_get_layout(e.drv, &l);
	REQUIRE(((uintptr_t)l.desc & 4095) == 0);
	struct vring_avail *av = l.driver;
	static int toks[N];
	static __le16 heads[N];
	for (int lap = 0; lap < 3; lap++) {
		if (lap == 1) {
			memcpy(heads, av->ring, sizeof(heads));
			REQUIRE(mprotect(l.desc, N * 16, PROT_READ) == 0);
		}
		for (unsigned i = 0; i < N; i++) {
			struct vio_sg sg = {e.arena + i * 64, 64};
			CHECK_EQ(vio_vq_add(e.drv, &sg, 0, 1, &toks[i]), 0);
		}
		vio_vq_kick(e.drv);
		struct vio_chain c;
		struct vio_iov iov[2];
		for (unsigned i = 0; i < N; i++) {
			REQUIRE(vio_vq_pop(e.dev, &c, iov, 2) == 1);
			CHECK(iov[0].base == e.arena + i * 64);
			CHECK_EQ(vio_vq_push(e.dev, c.head, 64), 0);
		}
		for (unsigned i = 0; i < N; i++) {
			uint32_t len = 0;
			CHECK(vio_vq_get(e.drv, &len) == &toks[i]);
			CHECK_EQ(len, 64);
		}
		if (lap > 0)
			CHECK(memcmp(heads, av->ring, sizeof(heads)) == 0);
	}
	REQUIRE(mprotect(l.desc, N * 16, PROT_READ | PROT_WRITE) == 0);
	CHECK(!vio_vq_broken(e.drv));
	env_fini(&e);
}

/*
 * Turning notifications off when they are off stores nothing: the driver
 * reads the device's event flags at every kick_prepare, and a store of
 * the same value took that line from its cache (the transmit path turns
 * them off at every kick).  The page holding the event structures is made
 * read-only once they are off; then the device's verbs must not write it.
 */
static void packed_event_untouched(bool event_idx)
{
	enum { N = 256 };
	struct env e;
	qsz = N;
	env_init(&e, true, event_idx, false);
	qsz = 0;
	struct vio_vq_layout l;
	vio_vq_get_layout(e.drv, &l);
	REQUIRE(((uintptr_t)l.desc & 4095) == 0);
	/* desc fills the first page; both event structures are on the next */
	REQUIRE((uint8_t *)l.device - (uint8_t *)l.desc >= N * 16);
	void *page = (void *)((uintptr_t)l.device & ~(uintptr_t)4095);
	vio_vq_disable_cb(e.drv); /* the driver's get writes none either */
	vio_vq_disable_notify(e.dev);
	const struct vring_packed_desc_event *ev = l.device;
	CHECK_EQ(le16toh(ev->flags), VRING_PACKED_EVENT_FLAG_DISABLE);
	static int toks[N];
	REQUIRE(mprotect(page, 4096, PROT_READ) == 0);
	for (int lap = 0; lap < 3; lap++) {
		for (unsigned i = 0; i < N; i++) {
			struct vio_sg sg = {e.arena + i * 64, 64};
			CHECK_EQ(vio_vq_add(e.drv, &sg, 1, 0, &toks[i]), 0);
		}
		vio_vq_kick(e.drv);
		struct vio_chain c;
		struct vio_iov iov[2];
		for (unsigned i = 0; i < N; i++) {
			vio_vq_disable_notify(e.dev);
			REQUIRE(vio_vq_pop(e.dev, &c, iov, 2) == 1);
			CHECK_EQ(vio_vq_push(e.dev, c.head, 0), 0);
		}
		vio_vq_disable_notify(e.dev);
		for (unsigned i = 0; i < N; i++)
			CHECK(vio_vq_get(e.drv, NULL) == &toks[i]);
	}
	REQUIRE(mprotect(page, 4096, PROT_READ | PROT_WRITE) == 0);
	CHECK_EQ(le16toh(ev->flags), VRING_PACKED_EVENT_FLAG_DISABLE);
	/* and on again: stored */
	vio_vq_enable_notify(e.dev);
	CHECK_EQ(le16toh(ev->flags), event_idx
					 ? VRING_PACKED_EVENT_FLAG_DESC
					 : VRING_PACKED_EVENT_FLAG_ENABLE);
	CHECK(!vio_vq_broken(e.drv));
	CHECK(!vio_vq_broken(e.dev));
	env_fini(&e);
}

int main(void)
{
	split_reuse_untouched();
	packed_event_untouched(false);
	packed_event_untouched(true);
	iov_max();
	for (int p = 0; p < 2; p++)
		for (int ind = 0; ind < 2; ind++)
			crossing(p, ind);
	for (int p = 0; p < 2; p++) {
		for (int ev = 0; ev < 2; ev++)
			for (int ind = 0; ind < 2; ind++)
				roundtrip(p, ev, ind, 50000);
		readable_content(p, false);
		readable_content(p, true);
		restart_and_shutdown(p);
		kick_suppression(p, false);
		kick_suppression(p, true);
		for (int a = 0; a <= USED_IDX_JUMP; a++)
			hostile_device(p, (enum attack)a);
	}
	packed_used_write_flag();
	return test_result("ring");
}
