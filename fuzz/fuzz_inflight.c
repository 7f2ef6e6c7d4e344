/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a restarted backend reading the in-flight region
 * (vhost-user INFLIGHT_SHMFD) a previous owner left in the frontend's
 * memfd: vio_vq_set_inflight(vq, region, resume = true) on a device-side
 * queue, split or packed, whose ring memory and region both come from
 * the input; then the queue is served (pop, unpop, push) as a device
 * would, until nothing is left.
 *
 * Input (little-endian; missing bytes read as zero):
 *
 *   0      mode: FZ_* below (bit 0: packed)
 *   1      size selector: split 1 << (b % 8), packed b % 128 + 1
 *   2      ring flags: FR_* below
 *   3      max_iov = b % 65
 *   4      pop budget = b % 64 + 1 (0 means 64), per life
 *   5..6   base for vio_vq_set_base() before the attach (FR_SET_BASE)
 *   7..8   data region length, % (FZ_DATA_MAX + 1)
 *   9      hold: the first b % 8 chains popped are never pushed (the
 *          backend dies owing them)
 *   10     unpop: with FZ_UNPOP, after each round of pops the newest
 *          b % 4 of that round are handed back (vio_vq_unpop)
 *   11..15 reserved
 *   16..   the ring areas (vio_vq_ring_bytes, vio_vq_layout_at)
 *   ..     the data region
 *   ..     the in-flight region, vio_inflight_queue_bytes(size, packed)
 *   ..     patch records, 4 bytes: u16 where, u16 value, applied one per
 *          round between rounds of pops (bits 15-14 of where: 0 ring,
 *          1 data, 2 and 3 the in-flight region, which the frontend may
 *          scribble on while the backend runs; it is never read back)
 *
 * Memory as in fuzz_vq.h: the ring and data regions are exactly-sized
 * heap blocks in a vio_memtable (adjacent, or FZ_GAP apart with
 * FR_GAPPED), and so is the in-flight region, which is not guest memory.
 *
 * Life 1: attach (resume unless FZ_FRESH), serve until nothing is left
 * or the budget is spent; every chain popped must lie in one memory
 * region (each byte is read and written back); unpop of the chain just
 * popped and push of a chain popped must succeed unless the queue broke
 * (a violation is reported, never a crash).
 *
 * Life 2: the backend "dies" holding the `hold` chains: a new queue on
 * the same ring attaches the region as life 1 left it, with resume.
 * When life 1 attached, did not break and nothing moved (no patch), the
 * recovery must be exact: the chains held, each once, in the order they
 * were popped (their counters), with the same lengths, and the ring
 * position (vio_vq_get_base) life 1 had.  Then life 2 is served like
 * life 1.
 *
 * FZ_GEN=DIR in the environment: after life 1, write the input a
 * restarted backend would see (life 1's ring and region as it died, no
 * FZ_FRESH, no patches) to DIR/gen-<hash>.bin: seeds with valid regions
 * in every state, from rings only (see fuzz/README.md).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include <vio/mem.h>
#include <vio/ring.h>

/* mode, byte 0 */
#define FZ_PACKED 0x01
#define FZ_FRESH 0x02	/* life 1 attaches without resume */
#define FZ_UNPOP 0x04	/* hand back chains after each round */
#define FZ_REVERSE 0x08 /* complete in reverse order */
#define FZ_BATCH 0x10	/* push with vio_vq_push_batch() */
/* ring flags, byte 2 */
#define FR_EVENT_IDX 0x01
#define FR_INDIRECT 0x02
#define FR_GAPPED 0x04
#define FR_SET_BASE 0x08
#define FR_NO_NOTIFY 0x10

#define FZ_HDR 16
#define FZ_RING_ADDR 0x10000ull
#define FZ_GAP 64u
#define FZ_DATA_MAX 4096u
#define FZ_MAX_IOV 64u
#define FZ_POPS 64u
#define FZ_ROUNDS 64u
#define FZ_PATCHES 32u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *gen_dir;
static bool verbose; /* FZ_VERBOSE set: log lines and a trace */

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_inflight: %s\n", what);
	__builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("FZ_VERBOSE") != NULL;
	vio_log_set_quiet(!verbose);
	gen_dir = getenv("FZ_GEN");
	return 0;
}

struct fz_region {
	uint8_t *p;
	size_t len;
};

/* A chain popped and neither pushed nor handed back. */
struct held {
	uint32_t head;
	uint32_t out_len, in_len;
	uint16_t nr_out, nr_in;
	int ret; /* 1 or -E2BIG */
	int exp; /* life 2: its index in the chains expected, else -1 */
};

struct fz {
	const uint8_t *in;
	size_t in_len, off; /* next patch record */
	bool packed;
	uint16_t qsize;
	unsigned mode, rflags, max_iov, budget, hold, unpop;
	struct fz_region rg[2]; /* ring, data */
	uint8_t *region;
	size_t region_len;
	struct vio_memtable *mt;
	unsigned patches;
	bool scribbled; /* a patch landed anywhere */
	struct held held[FZ_POPS];
	unsigned nheld;
	bool drained; /* the last pop found nothing */
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Every segment inside one region; every byte read and written back
 * unchanged (memory stays as the input made it, for life 2). */
static void touch(const struct fz *z, const struct vio_iov *iov, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		uint8_t *b = iov[k].base;
		size_t len = iov[k].len;
		bool inside = false;
		for (int r = 0; r < 2; r++) {
			const struct fz_region *g = &z->rg[r];
			if (g->p && b >= g->p && b <= g->p + g->len &&
			    len <= (size_t)(g->p + g->len - b))
				inside = true;
		}
		if (!inside)
			fz_fail("a segment outside the memory");
		volatile uint8_t *v = b;
		for (size_t i = 0; i < len; i++)
			v[i] = v[i];
	}
}

/* The walker's promises about a chain it returned. */
static void check_chain(const struct fz *z, const struct vio_chain *c,
			const struct vio_iov *iov, int ret)
{
	if (ret == -E2BIG) {
		if (c->nr_out || c->nr_in > z->max_iov || c->in != iov)
			fz_fail("-E2BIG chain");
		touch(z, c->in, c->nr_in);
		return;
	}
	if (c->out != iov || c->in != iov + c->nr_out ||
	    (unsigned)c->nr_out + c->nr_in > z->max_iov)
		fz_fail("chain segments");
	uint64_t o = 0, i = 0;
	for (unsigned k = 0; k < c->nr_out; k++)
		o += c->out[k].len;
	for (unsigned k = 0; k < c->nr_in; k++)
		i += c->in[k].len;
	if (o != c->out_len || i != c->in_len)
		fz_fail("chain lengths");
	touch(z, c->out, c->nr_out);
	touch(z, c->in, c->nr_in);
}

static struct vio_vq *new_vq(const struct fz *z, uint16_t base, bool set_base)
{
	struct vio_vq_layout l;
	vio_vq_layout_at(z->qsize, z->packed, z->rg[0].p, FZ_RING_ADDR, &l);
	struct vio_vq_opts c = {.index = 0,
				.size = z->qsize,
				.packed = z->packed,
				.event_idx = z->rflags & FR_EVENT_IDX,
				.indirect = z->rflags & FR_INDIRECT,
				.name = "fuzz"};
	struct vio_vq *vq = vio_vq_new_device(&c, &l, z->mt);
	if (!vq)
		fz_fail("vio_vq_new_device");
	if (set_base)
		vio_vq_set_base(vq, base);
	if (z->rflags & FR_NO_NOTIFY)
		vio_vq_disable_notify(vq);
	return vq;
}

/* More ring slots in flight than the ring has: a driver that made
 * slots available again before they were used (packed: nothing tells
 * the device without an in-flight region), after which the ring's
 * distance between its avail and used positions no longer counts what
 * is held, and unpop may refuse (-EINVAL). */
static bool overpopped(const struct fz *z)
{
	uint32_t slots = 0;
	for (unsigned k = 0; k < z->nheld; k++)
		slots += z->packed ? z->held[k].head >> 16 : 1;
	return slots > z->qsize;
}

/* Complete held[from..nheld): reversed or not, batched or not. */
static void push_from(struct fz *z, struct vio_vq *vq, unsigned from)
{
	struct vio_used u[FZ_POPS];
	unsigned n = 0;
	for (unsigned k = from; k < z->nheld; k++) {
		const struct held *h = &z->held[k];
		u[n].head = h->head;
		u[n].len = h->ret == -E2BIG ? 0 : h->in_len;
		n++;
	}
	z->nheld = from;
	if (!n)
		return;
	if (z->mode & FZ_REVERSE)
		for (unsigned k = 0; k < n / 2; k++) {
			struct vio_used t = u[k];
			u[k] = u[n - 1 - k];
			u[n - 1 - k] = t;
		}
	if (z->mode & FZ_BATCH) {
		int r = vio_vq_push_batch(vq, u, n);
		if (r && !(r == -EIO && vio_vq_broken(vq)))
			fz_fail("push_batch of chains in flight");
	} else {
		for (unsigned k = 0; k < n; k++) {
			int r = vio_vq_push(vq, u[k].head, u[k].len);
			if (r && !(r == -EIO && vio_vq_broken(vq)))
				fz_fail("push of a chain in flight");
		}
	}
	(void)vio_vq_call_prepare(vq);
}

/* One driver move: the next patch record, if any. */
static bool patch(struct fz *z)
{
	if (z->patches >= FZ_PATCHES || z->off + 4 > z->in_len)
		return false;
	uint16_t where = le16(z->in + z->off), val = le16(z->in + z->off + 2);
	z->off += 4;
	z->patches++;
	uint8_t *p;
	size_t span;
	switch (where >> 14) {
	case 0:
		p = z->rg[0].p;
		span = z->rg[0].len;
		break;
	case 1:
		p = z->rg[1].p;
		span = z->rg[1].len;
		break;
	default:
		p = z->region;
		span = z->region_len;
		break;
	}
	where &= 0x3fff;
	if (span >= 2) {
		size_t at = (where % (span - 1)) & ~(size_t)1;
		p[at] = (uint8_t)val;
		p[at + 1] = (uint8_t)(val >> 8);
		z->scribbled = true;
	}
	return true;
}

/* Serve vq: rounds of pops (handing back the newest with FZ_UNPOP),
 * completing all but held[0..keep), until nothing moves.  Life 2 passes
 * the chains it expects first (exp, nexp). */
static void serve(struct fz *z, struct vio_vq *vq, unsigned keep, bool patches,
		  const struct held *exp, unsigned nexp)
{
	static struct vio_iov iov[FZ_MAX_IOV];
	unsigned pops = 0, seen = 0;
	for (unsigned round = 0; round < FZ_ROUNDS; round++) {
		unsigned first = z->nheld;
		(void)vio_vq_more_avail(vq);
		while (pops < z->budget && z->nheld < FZ_POPS) {
			struct vio_chain ch;
			int ret = vio_vq_pop(vq, &ch, iov, z->max_iov);
			z->drained = ret == 0;
			if (ret == 0)
				break;
			if (ret < 0 && ret != -E2BIG) {
				if (ret != -EIO || !vio_vq_broken(vq))
					fz_fail("pop: not -EIO and broken");
				break;
			}
			if (ret != 1 && ret != -E2BIG)
				fz_fail("pop: unexpected return");
			if (vio_vq_broken(vq))
				fz_fail("pop returned a chain, queue broken");
			check_chain(z, &ch, iov, ret);
			pops++;
			struct held h = {ch.head,   ch.out_len, ch.in_len,
					 ch.nr_out, ch.nr_in,	ret,
					 -1};
			if (seen < nexp) {
				/* the head only: what the chain holds may have
				 * changed (an indirect table where the device
				 * writes used entries) */
				if (exp[seen].head != h.head)
					fz_fail(
					    "recovered chain is not the one "
					    "held");
				h.exp = (int)seen++;
			}
			z->held[z->nheld++] = h;
		}
		if (nexp && seen < nexp && !vio_vq_broken(vq) &&
		    pops < z->budget)
			fz_fail("fewer chains recovered than held");
		bool moved = z->nheld > first;
		if ((z->mode & FZ_UNPOP) && !vio_vq_broken(vq)) {
			/* newest first; they come back at the next pops */
			unsigned n = z->unpop % 4;
			while (n-- && z->nheld > first && z->nheld > keep) {
				const struct held *h = &z->held[z->nheld - 1];
				int r = vio_vq_unpop(vq, h->head);
				if (r == -EINVAL && overpopped(z))
					break; /* the ring's count is lost */
				if (r)
					fz_fail("unpop of the chain just "
						"popped");
				if (h->exp >= 0)
					seen = (unsigned)h->exp; /* again */
				z->nheld--;
			}
		}
		if (z->nheld > keep)
			push_from(z, vq, keep);
		if (vio_vq_broken(vq)) {
			struct vio_chain ch;
			if (vio_vq_pop(vq, &ch, iov, z->max_iov) != -EIO)
				fz_fail("broken is not sticky");
			return;
		}
		if (pops >= z->budget)
			return;
		if (!(patches && patch(z)) && !moved)
			return;
		if (z->rflags & FR_NO_NOTIFY)
			(void)vio_vq_enable_notify(vq);
	}
}

static void gen_write(const struct fz *z, const uint8_t *hdr)
{
	uint8_t h[FZ_HDR];
	memcpy(h, hdr, FZ_HDR);
	h[0] &= (uint8_t)~FZ_FRESH;
	uint64_t x = 1469598103934665603ull; /* FNV-1a */
	const struct fz_region parts[4] = {{h, FZ_HDR},
					   z->rg[0],
					   {z->rg[1].p, z->rg[1].len},
					   {z->region, z->region_len}};
	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < parts[k].len; i++)
			x = (x ^ parts[k].p[i]) * 1099511628211ull;
	char path[512];
	snprintf(path, sizeof(path), "%s/gen-%016llx.bin", gen_dir,
		 (unsigned long long)x);
	FILE *f = fopen(path, "wb");
	if (!f)
		return;
	for (int k = 0; k < 4; k++)
		if (parts[k].len)
			fwrite(parts[k].p, 1, parts[k].len, f);
	fclose(f);
}

static uint8_t *take(const uint8_t *in, size_t in_len, size_t *off, size_t len,
		     size_t align)
{
	void *p = NULL;
	if (posix_memalign(&p, align, len ? len : 1))
		return NULL;
	memset(p, 0, len);
	if (*off < in_len) {
		size_t n = in_len - *off < len ? in_len - *off : len;
		memcpy(p, in + *off, n);
	}
	*off += len;
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t in_len)
{
	uint8_t hdr[FZ_HDR] = {0};
	memcpy(hdr, in, in_len < FZ_HDR ? in_len : FZ_HDR);
	static struct fz z;
	memset(&z, 0, sizeof(z));
	z.in = in;
	z.in_len = in_len;
	z.mode = hdr[0];
	z.packed = hdr[0] & FZ_PACKED;
	z.qsize = z.packed ? (uint16_t)(hdr[1] % 128 + 1)
			   : (uint16_t)(1u << (hdr[1] % 8));
	z.rflags = hdr[2];
	z.max_iov = hdr[3] % (FZ_MAX_IOV + 1);
	z.budget = hdr[4] ? hdr[4] % FZ_POPS + 1 : FZ_POPS;
	uint16_t base = le16(hdr + 5);
	z.rg[1].len = le16(hdr + 7) % (FZ_DATA_MAX + 1);
	z.hold = hdr[9] % 8;
	z.unpop = hdr[10];

	size_t off = FZ_HDR;
	z.rg[0].len = vio_vq_ring_bytes(z.qsize, z.packed);
	z.region_len = vio_inflight_queue_bytes(z.qsize, z.packed);
	z.rg[0].p = take(in, in_len, &off, z.rg[0].len, 64);
	z.rg[1].p =
	    z.rg[1].len ? take(in, in_len, &off, z.rg[1].len, 16) : NULL;
	z.region = take(in, in_len, &off, z.region_len, 64);
	z.off = off;
	if (!z.rg[0].p || (z.rg[1].len && !z.rg[1].p) || !z.region)
		fz_fail("out of memory");

	z.mt = vio_memtable_new(2);
	if (!z.mt)
		fz_fail("vio_memtable_new");
	struct vio_region r = {.addr = FZ_RING_ADDR,
			       .size = z.rg[0].len,
			       .fd = -1,
			       .ptr = z.rg[0].p};
	if (vio_memtable_add(z.mt, &r))
		fz_fail("vio_memtable_add");
	if (z.rg[1].len) {
		r.addr = FZ_RING_ADDR + z.rg[0].len +
			 (z.rflags & FR_GAPPED ? FZ_GAP : 0);
		r.size = z.rg[1].len;
		r.ptr = z.rg[1].p;
		if (vio_memtable_add(z.mt, &r))
			fz_fail("vio_memtable_add");
	}

	/* split: a region initialised fresh takes the ring's used index
	 * from the base; if the ring says otherwise, life 2 repairs */
	bool fresh = (z.mode & FZ_FRESH) ||
		     le16(z.region + 8) == 0; /* version, both layouts */
	uint16_t used0 = 0;
	if (!z.packed) {
		struct vio_vq_layout l;
		vio_vq_layout_at(z.qsize, false, z.rg[0].p, FZ_RING_ADDR, &l);
		used0 = le16((const uint8_t *)l.device + 2);
	}
	bool consistent = z.packed || !fresh ||
			  used0 == ((z.rflags & FR_SET_BASE) ? base : 0);

	/* life 1 */
	struct vio_vq *vq = new_vq(&z, base, z.rflags & FR_SET_BASE);
	int a = vio_vq_set_inflight(vq, z.region, !(z.mode & FZ_FRESH));
	if (a && a != -EINVAL)
		fz_fail("set_inflight: not 0 or -EINVAL");
	if (a == 0 && vio_vq_inflight_recovered(vq) > z.qsize)
		fz_fail("more chains recovered than the ring holds");
	if (a == 0 && vio_vq_set_inflight(vq, z.region, true) != -EBUSY)
		fz_fail("a second attach is not -EBUSY");
	serve(&z, vq, z.hold, true, NULL, 0);
	bool exact = a == 0 && !vio_vq_broken(vq) && !z.scribbled &&
		     z.drained && consistent;
	uint16_t base1 = vio_vq_get_base(vq);
	if (a == 0 && gen_dir && !vio_vq_broken(vq) && !z.scribbled)
		gen_write(&z, hdr);
	/* dies owing held[0..nheld) */
	vio_vq_free(vq);

	/* life 2: the same ring, the region as life 1 left it */
	struct held exp[FZ_POPS];
	unsigned nexp = z.nheld;
	memcpy(exp, z.held, sizeof(exp[0]) * nexp);
	z.nheld = 0;
	vq = new_vq(&z, 0, false);
	int a2 = vio_vq_set_inflight(vq, z.region, true);
	if (a2 && a2 != -EINVAL)
		fz_fail("set_inflight (life 2): not 0 or -EINVAL");
	if (exact) {
		if (a2)
			fz_fail("life 1's region refused");
		if (vio_vq_inflight_recovered(vq) != nexp)
			fz_fail("recovered count is not what was held");
		if (vio_vq_get_base(vq) != base1)
			fz_fail("ring position differs from life 1's");
	}
	if (verbose)
		fprintf(stderr,
			"fuzz_inflight: %s size %u: life 1 attach %d, %u held, "
			"%s; life 2 attach %d, %u recovered%s\n",
			z.packed ? "packed" : "split", z.qsize, a, nexp,
			exact ? "exact" : "not checked", a2,
			vio_vq_inflight_recovered(vq),
			vio_vq_broken(vq) ? ", broken" : "");
	serve(&z, vq, 0, false, exact ? exp : NULL, exact ? nexp : 0);
	vio_vq_free(vq);

	vio_memtable_free(z.mt);
	free(z.region);
	free(z.rg[1].p);
	free(z.rg[0].p);
	return 0;
}
