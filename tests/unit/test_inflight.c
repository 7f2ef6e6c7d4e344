/* SPDX-License-Identifier: MIT */
/*
 * In-flight tracking (src/ring/inflight.c), split and packed.
 *
 * Kill at every step: while the device pops, pushes or hands back, the
 * ring and the in-flight region are write-protected; each store the
 * compiled code makes faults, the handler copies ring and region (the
 * state a process killed just before that store leaves behind), lets the
 * one instruction run (x86 trap flag) and protects again.  For every
 * copy, a new device queue resumes on it and pops everything: each
 * request the driver still waits for comes out exactly once (none that
 * was used), the ones the dead device held first, in the order it popped
 * them, then the rest in ring order.
 *
 * Restart: the device is freed mid-run without completing what it holds,
 * a new one resumes on the live ring and region, and the driver gets
 * every request completed exactly once, with the data the device wrote.
 *
 * Also vio_vq_unpop (LIFO, both formats, with and without a region) and
 * regions that contradict the ring (refused, no crash).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "test.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/ring.h>

#define QSZ 16
#define NREQ 160
#define SLOT 64
#define MAXSNAP 256

enum { AVAIL = 1, HELD, USED, DONE };

struct req {
	int state;
	uint32_t head;
	uint64_t pop_seq;
	unsigned nin; /* writable pieces of 16 bytes */
};

struct env {
	bool packed, indirect;
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	struct vio_vq_opts cfg;
	struct vio_vq_layout l;
	uint8_t *ring; /* the driver's ring block */
	size_t ring_len, ring_span;
	uint8_t *region;
	size_t region_len, region_span;
	uint8_t *arena;
	struct req r[NREQ];
	unsigned next_tag;
	uint64_t pop_seq;
	uint32_t used_slots;		  /* packed: slots pushed so far */
	unsigned stack[NREQ * 4], nstack; /* pop order, for unpop */
	uint64_t rs;
};

/* ---- store trapping ---- */

struct snap {
	uint8_t *ring, *region;
};
static struct snap snaps[MAXSNAP + 1];
static unsigned nsnap;
static bool snap_overflow;
static struct env *trap_env;

static void take(void)
{
	struct env *e = trap_env;
	if (nsnap >= MAXSNAP) {
		snap_overflow = true;
		return;
	}
	memcpy(snaps[nsnap].ring, e->ring, e->ring_len);
	memcpy(snaps[nsnap].region, e->region, e->region_len);
	nsnap++;
}

static void protect(int prot)
{
	struct env *e = trap_env;
	if (mprotect(e->ring, e->ring_span, prot) ||
	    mprotect(e->region, e->region_span, prot))
		abort();
}

static bool in(const uint8_t *a, const uint8_t *base, size_t len)
{
	return a >= base && a < base + len;
}

static void on_segv(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	struct env *e = trap_env;
	const uint8_t *a = si->si_addr;
	if (!e || !(in(a, e->ring, e->ring_span) ||
		    in(a, e->region, e->region_span))) {
		signal(SIGSEGV, SIG_DFL);
		return;
	}
	take();
	protect(PROT_READ | PROT_WRITE);
	uc->uc_mcontext.gregs[REG_EFL] |= 0x100; /* one instruction */
}

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
	protect(PROT_READ);
}

static void trap_init(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	REQUIRE(sigaction(SIGSEGV, &sa, NULL) == 0);
	sa.sa_sigaction = on_trap;
	REQUIRE(sigaction(SIGTRAP, &sa, NULL) == 0);
}

static void trap_begin(struct env *e)
{
	trap_env = e;
	nsnap = 0;
	snap_overflow = false;
	protect(PROT_READ);
}

static void trap_end(struct env *e)
{
	protect(PROT_READ | PROT_WRITE);
	take(); /* the state after the operation */
}

/* ---- the queue pair ---- */

static size_t round_page(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

static void env_init(struct env *e, bool packed, bool indirect, uint64_t seed)
{
	memset(e, 0, sizeof(*e));
	e->packed = packed;
	e->indirect = indirect;
	e->rs = seed;
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 4 << 20, NULL) == 0);
	struct vio_region rr = *vio_mem_region(e->mem, 0);
	rr.fd = -1;
	e->mt = vio_memtable_new(4);
	REQUIRE(e->mt && vio_memtable_add(e->mt, &rr) == 0);
	e->cfg = (struct vio_vq_opts){.size = QSZ,
				      .packed = packed,
				      .indirect = indirect,
				      .name = "inflight"};
	e->drv = vio_vq_new_driver(&e->cfg, e->mem);
	REQUIRE(e->drv);
	vio_vq_get_layout(e->drv, &e->l);
	e->ring = e->l.desc;
	e->ring_len = vio_vq_ring_bytes(QSZ, packed);
	e->ring_span = round_page(e->ring_len);
	uint64_t da;
	/* the ring block's last page is its own */
	REQUIRE(vio_mem_alloc(e->mem, 4096, 4096, &da));
	e->arena = vio_mem_alloc(e->mem, NREQ * SLOT, 64, &da);
	REQUIRE(e->arena);
	e->region_len = vio_inflight_queue_bytes(QSZ, packed);
	REQUIRE(e->region_len);
	e->region_span = round_page(e->region_len);
	e->region = mmap(NULL, e->region_span, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE(e->region != MAP_FAILED);
	e->dev = vio_vq_new_device(&e->cfg, &e->l, e->mt);
	REQUIRE(e->dev);
	REQUIRE(vio_vq_set_inflight(e->dev, e->region, true) == 0);
	for (unsigned i = 0; i <= MAXSNAP; i++) {
		snaps[i].ring = realloc(snaps[i].ring, e->ring_len);
		snaps[i].region = realloc(snaps[i].region, e->region_len);
		REQUIRE(snaps[i].ring && snaps[i].region);
	}
}

static void env_fini(struct env *e)
{
	vio_vq_free(e->dev);
	vio_vq_free(e->drv);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
	munmap(e->region, e->region_span);
}

static uint8_t *out_of(struct env *e, unsigned tag)
{
	return e->arena + (size_t)tag * SLOT;
}

/* Driver: add one request (its tag in its first bytes; one or two
 * readable pieces, zero to two writable ones) and publish it. */
static bool drv_add(struct env *e)
{
	if (e->next_tag >= NREQ)
		return false;
	unsigned tag = e->next_tag;
	uint8_t *o = out_of(e, tag);
	memset(o, 0, SLOT);
	memcpy(o, &tag, sizeof(tag));
	struct vio_sg sg[4];
	unsigned n = 0, nout = 1 + (unsigned)(test_rand(&e->rs) % 2);
	unsigned nin = (unsigned)(test_rand(&e->rs) % 3);
	if (nout == 1) {
		sg[n++] = (struct vio_sg){o, 16};
	} else {
		sg[n++] = (struct vio_sg){o, 8};
		sg[n++] = (struct vio_sg){o + 8, 8};
	}
	for (unsigned k = 0; k < nin; k++)
		sg[n++] = (struct vio_sg){o + 32 + 16 * k, 16};
	if (vio_vq_add(e->drv, sg, nout, nin, &e->r[tag]) != 0)
		return false;
	vio_vq_kick_prepare(e->drv);
	e->r[tag].state = AVAIL;
	e->r[tag].nin = nin;
	e->next_tag++;
	return true;
}

/* Driver: harvest used buffers; each exactly once, with its data. */
static void drv_get(struct env *e)
{
	uint32_t len;
	struct req *q;
	while ((q = vio_vq_get(e->drv, &len))) {
		unsigned tag = (unsigned)(q - e->r);
		CHECK_EQ(q->state, USED);
		q->state = DONE;
		uint8_t *o = out_of(e, tag);
		if (len >= 4) {
			uint32_t v;
			memcpy(&v, o + 32, 4);
			CHECK_EQ(v, tag ^ 0xa5a5a5a5u);
		}
	}
	CHECK(!vio_vq_broken(e->drv));
}

static unsigned tag_of(const struct vio_chain *c)
{
	struct vio_cursor cur;
	uint32_t tag = UINT32_MAX;
	vio_cursor_init(&cur, c->out, c->nr_out);
	CHECK_EQ(vio_cursor_read(&cur, &tag, 4), 4);
	REQUIRE(tag < NREQ);
	return tag;
}

/* ---- resume on a copy: the check ---- */

enum op { OP_POP, OP_PUSH, OP_UNPOP };

struct opinfo {
	enum op op;
	unsigned x;	     /* pop, unpop: the chain */
	unsigned batch[QSZ]; /* push */
	unsigned nbatch;
	size_t pub_off;	      /* push: the word that publishes */
	uint8_t pub_after[2]; /* its value after */
};

static bool member(const unsigned *v, unsigned n, unsigned x)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void check_snap(struct env *e, const struct snap *s,
		       const struct opinfo *o)
{
	static uint8_t live_ring[1 << 16];
	static uint8_t region[1 << 20];
	bool published = o->op == OP_PUSH &&
			 memcmp(s->ring + o->pub_off, o->pub_after, 2) == 0;
	memcpy(live_ring, e->ring, e->ring_len);
	memcpy(e->ring, s->ring, e->ring_len);
	memcpy(region, s->region, e->region_len);
	struct vio_vq *vq = vio_vq_new_device(&e->cfg, &e->l, e->mt);
	REQUIRE(vq);
	vio_vq_set_base(vq, e->packed ? 0 : 12345); /* the region rules */
	CHECK_EQ(vio_vq_set_inflight(vq, region, true), 0);
	unsigned rec = vio_vq_inflight_recovered(vq);
	unsigned seen[NREQ] = {0}, got[NREQ], ngot = 0;
	struct vio_iov iov[8];
	struct vio_chain c;
	int r;
	while ((r = vio_vq_pop(vq, &c, iov, 8)) == 1 && ngot < NREQ) {
		unsigned t = tag_of(&c);
		CHECK_EQ(seen[t], 0);
		seen[t]++;
		got[ngot++] = t;
		if (e->r[t].state == HELD)
			CHECK_EQ(c.head, e->r[t].head);
	}
	CHECK_EQ(r, 0);
	CHECK(!vio_vq_broken(vq));
	/* every request the driver still waits for, once */
	for (unsigned t = 0; t < NREQ; t++) {
		bool waits = e->r[t].state == AVAIL || e->r[t].state == HELD;
		if (published && member(o->batch, o->nbatch, t))
			waits = false;
		CHECK_EQ(seen[t], waits ? 1 : 0);
	}
	/* the dead device's chains first, in pop order; then ring order */
	unsigned held_before = 0;
	for (unsigned t = 0; t < NREQ; t++)
		if (e->r[t].state == HELD &&
		    !(published && member(o->batch, o->nbatch, t)))
			held_before++;
	if (o->op == OP_POP)
		CHECK(rec == held_before || rec == held_before + 1);
	else if (o->op == OP_UNPOP)
		CHECK(rec == held_before || rec + 1 == held_before);
	else
		CHECK_EQ(rec, held_before);
	for (unsigned i = 0; i < ngot; i++) {
		struct req *q = &e->r[got[i]];
		if (i < rec) {
			CHECK(q->state == HELD ||
			      (o->op == OP_POP && got[i] == o->x));
			if (i > 0)
				CHECK(q->pop_seq > e->r[got[i - 1]].pop_seq);
		} else if (i > rec) {
			CHECK(got[i] > got[i - 1]);
		}
	}
	vio_vq_free(vq);
	memcpy(e->ring, live_ring, e->ring_len);
}

static void check_all(struct env *e, const struct opinfo *o)
{
	CHECK(!snap_overflow);
	for (unsigned i = 0; i < nsnap; i++)
		check_snap(e, &snaps[i], o);
}

/* ---- device steps, each killed at every store ---- */

static void dev_pop(struct env *e, bool kill_checks)
{
	struct vio_iov iov[8];
	struct vio_chain c;
	struct opinfo o = {.op = OP_POP};
	trap_begin(e);
	int r = vio_vq_pop(e->dev, &c, iov, 8);
	trap_end(e);
	CHECK(r == 0 || r == 1);
	if (r != 1)
		return;
	unsigned t = tag_of(&c);
	o.x = t;
	CHECK_EQ(e->r[t].state, AVAIL);
	e->r[t].head = c.head;
	e->r[t].pop_seq = ++e->pop_seq;
	if (kill_checks) /* the model before: t is not held yet */
		check_all(e, &o);
	e->r[t].state = HELD;
	e->stack[e->nstack++] = t;
	if (c.nr_in) { /* the device's answer */
		uint32_t v = t ^ 0xa5a5a5a5u;
		struct vio_cursor cur;
		vio_cursor_init(&cur, c.in, c.nr_in);
		vio_cursor_write(&cur, &v, 4);
	}
}

static void dev_push(struct env *e, bool kill_checks)
{
	struct opinfo o = {.op = OP_PUSH};
	struct vio_used u[QSZ];
	unsigned held[NREQ], nheld = 0;
	for (unsigned t = 0; t < NREQ; t++)
		if (e->r[t].state == HELD)
			held[nheld++] = t;
	unsigned want = 1 + (unsigned)(test_rand(&e->rs) % 4);
	while (nheld && o.nbatch < want) { /* any order */
		unsigned k = (unsigned)(test_rand(&e->rs) % nheld);
		o.batch[o.nbatch++] = held[k];
		held[k] = held[--nheld];
	}
	if (!o.nbatch)
		return;
	for (unsigned k = 0; k < o.nbatch; k++) {
		struct req *q = &e->r[o.batch[k]];
		u[k] = (struct vio_used){q->head, q->nin ? 4 : 0};
	}
	/* the publishing word: split used->idx, packed the first flags */
	if (e->packed)
		o.pub_off = (e->used_slots % QSZ) * 16 + 14;
	else
		o.pub_off = (size_t)((uint8_t *)e->l.device - e->ring) + 2;
	trap_begin(e);
	int r = vio_vq_push_batch(e->dev, u, o.nbatch);
	trap_end(e);
	CHECK_EQ(r, 0);
	memcpy(o.pub_after, e->ring + o.pub_off, 2);
	if (kill_checks)
		check_all(e, &o);
	for (unsigned k = 0; k < o.nbatch; k++) {
		e->r[o.batch[k]].state = USED;
		e->used_slots += e->r[o.batch[k]].head >> 16;
	}
}

static void dev_unpop(struct env *e, bool kill_checks)
{
	if (!e->nstack)
		return;
	unsigned t = e->stack[e->nstack - 1];
	if (e->r[t].state != HELD)
		return; /* pushed: nothing below it can go back */
	struct opinfo o = {.op = OP_UNPOP, .x = t};
	trap_begin(e);
	int r = vio_vq_unpop(e->dev, e->r[t].head);
	trap_end(e);
	if (r)
		fprintf(stderr, "unpop tag %u head 0x%x: %d (stack %u)\n", t,
			e->r[t].head, r, e->nstack);
	CHECK_EQ(r, 0);
	if (kill_checks)
		check_all(e, &o);
	e->r[t].state = AVAIL;
	e->nstack--;
}

/* The device dies holding chains; a new one resumes on the live ring and
 * region; what the dead one held comes back first. */
static void restart(struct env *e)
{
	vio_vq_free(e->dev);
	e->dev = vio_vq_new_device(&e->cfg, &e->l, e->mt);
	REQUIRE(e->dev);
	vio_vq_set_base(e->dev, 0);
	REQUIRE(vio_vq_set_inflight(e->dev, e->region, true) == 0);
	static uint64_t old_seq[NREQ];
	static bool was_held[NREQ];
	unsigned held = 0;
	for (unsigned t = 0; t < NREQ; t++) {
		was_held[t] = e->r[t].state == HELD;
		old_seq[t] = e->r[t].pop_seq;
		if (was_held[t]) {
			e->r[t].state = AVAIL; /* popped again below */
			held++;
		}
	}
	CHECK_EQ(vio_vq_inflight_recovered(e->dev), held);
	e->nstack = 0;
	uint64_t last = 0;
	for (unsigned k = 0; k < held; k++) {
		dev_pop(e, false);
		REQUIRE(e->nstack == k + 1);
		unsigned t = e->stack[k];
		CHECK(was_held[t]);
		CHECK(old_seq[t] > last);
		last = old_seq[t];
	}
}

static void run(bool packed, bool indirect, bool kill_checks, unsigned restarts,
		uint64_t seed)
{
	struct env e;
	env_init(&e, packed, indirect, seed);
	trap_env = &e;
	unsigned steps = 0;
	while (steps++ < 4000) {
		unsigned a = (unsigned)(test_rand(&e.rs) % 16);
		if (a < 4)
			drv_add(&e);
		else if (a < 8)
			dev_pop(&e, kill_checks);
		else if (a < 11)
			dev_push(&e, kill_checks);
		else if (a < 12)
			dev_unpop(&e, kill_checks);
		else if (a < 14)
			drv_get(&e);
		else if (a == 14 && restarts && test_rand(&e.rs) % 40 == 0) {
			restart(&e);
			restarts--;
		}
		bool all_done = e.next_tag == NREQ;
		for (unsigned t = 0; t < NREQ && all_done; t++)
			all_done = e.r[t].state == DONE;
		if (all_done)
			break;
	}
	/* drain: everything completes, exactly once */
	for (unsigned round = 0; round < 1000; round++) {
		while (drv_add(&e))
			;
		dev_pop(&e, false);
		dev_push(&e, false);
		drv_get(&e);
	}
	for (unsigned t = 0; t < NREQ; t++)
		CHECK_EQ(e.r[t].state, DONE);
	trap_env = NULL;
	env_fini(&e);
}

/* ---- unpop without a region ---- */

static void test_unpop(bool packed)
{
	struct env e;
	env_init(&e, packed, false, 7);
	vio_vq_free(e.dev); /* a device without a region */
	e.dev = vio_vq_new_device(&e.cfg, &e.l, e.mt);
	REQUIRE(e.dev);
	trap_env = &e;
	for (int i = 0; i < 3; i++)
		REQUIRE(drv_add(&e));
	struct vio_iov iov[8];
	struct vio_chain c[3];
	for (int i = 0; i < 3; i++)
		REQUIRE(vio_vq_pop(e.dev, &c[i], iov, 8) == 1);
	CHECK_EQ(vio_vq_unpop(e.dev, c[0].head), -EINVAL); /* not latest */
	CHECK_EQ(vio_vq_unpop(e.dev, c[2].head), 0);
	CHECK_EQ(vio_vq_unpop(e.dev, c[1].head), 0);
	struct vio_chain d;
	REQUIRE(vio_vq_pop(e.dev, &d, iov, 8) == 1);
	CHECK_EQ(d.head, c[1].head);
	REQUIRE(vio_vq_pop(e.dev, &d, iov, 8) == 1);
	CHECK_EQ(d.head, c[2].head);
	CHECK_EQ(vio_vq_pop(e.dev, &d, iov, 8), 0);
	struct vio_used u[3] = {{c[0].head, 0}, {c[1].head, 0}, {c[2].head, 0}};
	CHECK_EQ(vio_vq_push_batch(e.dev, u, 3), 0);
	CHECK_EQ(vio_vq_unpop(e.dev, c[2].head), -EINVAL); /* used */
	CHECK(!vio_vq_broken(e.dev));
	uint32_t len;
	int n = 0;
	while (vio_vq_get(e.drv, &len))
		n++;
	CHECK_EQ(n, 3);
	trap_env = NULL;
	env_fini(&e);
}

/* ---- regions that contradict the ring ---- */

static void test_hostile(bool packed)
{
	struct env e;
	env_init(&e, packed, false, 9);
	trap_env = &e;
	for (int i = 0; i < 4; i++)
		REQUIRE(drv_add(&e));
	for (int i = 0; i < 4; i++)
		dev_pop(&e, false);
	static uint8_t copy[1 << 20];
	struct {
		size_t off;
		uint16_t v;
	} bad[] = {
	    {8, 2},			/* version */
	    {10, QSZ / 2},		/* desc_num */
	    {packed ? 12 : 14, 999},	/* free_head / used_idx */
	    {packed ? 16 : 12, QSZ + 5} /* used_idx / last_batch_head */
	};
	vio_log_set_quiet(1);
	for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		memcpy(copy, e.region, e.region_len);
		memcpy(copy + bad[k].off, &bad[k].v, 2);
		if (!packed && k == 3) /* used_idx off by 2: walk the list */
			memcpy(copy + 14, &(uint16_t){(uint16_t)-2}, 2);
		struct vio_vq *vq = vio_vq_new_device(&e.cfg, &e.l, e.mt);
		REQUIRE(vq);
		CHECK_EQ(vio_vq_set_inflight(vq, copy, true), -EINVAL);
		vio_vq_free(vq);
	}
	if (packed) { /* a loop in the free list */
		memcpy(copy, e.region, e.region_len);
		uint16_t fh;
		memcpy(&fh, copy + 12, 2);
		memcpy(copy + 32 + (size_t)fh * 32 + 2, &fh, 2);
		struct vio_vq *vq = vio_vq_new_device(&e.cfg, &e.l, e.mt);
		CHECK_EQ(vio_vq_set_inflight(vq, copy, true), -EINVAL);
		vio_vq_free(vq);
	}
	vio_log_set_quiet(0);
	/* random bytes: refused or accepted, never a crash */
	uint64_t rs = 42;
	for (int i = 0; i < 300; i++) {
		memcpy(copy, e.region, e.region_len);
		for (int j = 0; j < 6; j++) {
			size_t off = test_rand(&rs) % (e.region_len - 1);
			copy[off] = (uint8_t)test_rand(&rs);
		}
		struct vio_vq *vq = vio_vq_new_device(&e.cfg, &e.l, e.mt);
		vio_log_set_quiet(1);
		if (vio_vq_set_inflight(vq, copy, true) == 0) {
			struct vio_iov iov[8];
			struct vio_chain c;
			for (int k = 0; k < 2 * QSZ; k++)
				if (vio_vq_pop(vq, &c, iov, 8) != 1)
					break;
		}
		vio_log_set_quiet(0);
		vio_vq_free(vq);
	}
	CHECK_EQ(vio_inflight_queue_bytes(0, false), 0);
	CHECK_EQ(vio_inflight_queue_bytes(256, false), 16 + 16 * 256 + 48);
	CHECK_EQ(vio_inflight_queue_bytes(256, true), 32 + 32 * 256 + 32);
	trap_env = NULL;
	env_fini(&e);
}

int main(void)
{
	trap_init();
	uint64_t seed = test_seed();
	for (int packed = 0; packed < 2; packed++) {
		test_unpop(packed);
		test_hostile(packed);
		for (int ind = 0; ind < 2; ind++) {
			run(packed, ind, true, 0, seed + packed * 2 + ind);
			run(packed, ind, false, 6, seed * 3 + packed + ind);
		}
	}
	return test_result("inflight");
}
