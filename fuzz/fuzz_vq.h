/* SPDX-License-Identifier: MIT */
/*
 * The device side of a virtqueue against fuzzer-written shared memory:
 * the common body of fuzz_split.c and fuzz_packed.c.
 *
 * Input (all little-endian; missing bytes read as zero):
 *
 *   0      size selector: split 1 << (b % 8), packed b % 128 + 1
 *   1      flags, FZ_* below
 *   2      max_iov = b % 65 (0..64 segments per chain)
 *   3      pop budget = b % 64 + 1 per input (0 means 64)
 *   4..5   base for vio_vq_set_base() (with FZ_SET_BASE)
 *   6..7   data region length, % (FZ_DATA_MAX + 1); 0: no data region
 *   8..15  reserved
 *   16..   the ring areas, vio_vq_ring_bytes(size) bytes, laid out by
 *          vio_vq_layout_at() (desc, driver area, device area)
 *   ..     the data region (buffers and indirect tables)
 *   ..     patch records, 4 bytes each: u16 where, u16 value.  Between
 *          rounds of pops the "driver" stores value at where (bit 15
 *          clear: ring region offset, bit 15 set: data region offset),
 *          which lets an input publish more chains later.
 *
 * Device addresses: the ring region at FZ_RING_ADDR, the data region
 * right after it (adjacent: a range may straddle both) or FZ_GAP bytes
 * later (FZ_GAPPED).  Both are plain heap blocks of exactly their length,
 * so ASan flags any byte a returned segment reaches beyond them; every
 * segment is also checked to lie inside one region, then every byte of
 * it is read and written.  Nothing may crash, hang or leak.
 */
#ifndef VIO_FUZZ_VQ_H
#define VIO_FUZZ_VQ_H

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

#define FZ_EVENT_IDX 0x01
#define FZ_INDIRECT 0x02
#define FZ_GAPPED 0x04
#define FZ_SET_BASE 0x08
#define FZ_NO_NOTIFY 0x10 /* vio_vq_disable_notify() first */
#define FZ_BATCH 0x20	  /* push with vio_vq_push_batch() */
#define FZ_REVERSE 0x40	  /* complete in reverse order */
#define FZ_BURST 0x80	  /* vio_vq_pop_burst() before each vio_vq_pop() */

#define FZ_HDR 16
#define FZ_RING_ADDR 0x10000ull
#define FZ_GAP 64u
#define FZ_DATA_MAX 4096u
#define FZ_MAX_IOV 64u
#define FZ_POPS 64u
#define FZ_PATCHES 32u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_region {
	uint8_t *p;
	size_t len;
};

static void fz_fail(void)
{
	__builtin_trap();
}

/* Every segment inside one region; then every byte read and written
 * (readable segments get their own value back, writable ones a pattern). */
static void fz_touch(const struct fz_region *rg, const struct vio_iov *iov,
		     unsigned n, bool write)
{
	for (unsigned k = 0; k < n; k++) {
		uint8_t *b = iov[k].base;
		size_t len = iov[k].len;
		bool inside = false;
		for (int r = 0; r < 2; r++)
			if (rg[r].p && b >= rg[r].p &&
			    b <= rg[r].p + rg[r].len &&
			    len <= (size_t)(rg[r].p + rg[r].len - b))
				inside = true;
		if (!inside)
			fz_fail();
		volatile uint8_t *v = b;
		for (size_t i = 0; i < len; i++) {
			uint8_t x = v[i];
			v[i] = write ? (uint8_t)(0x5a ^ i) : x;
		}
	}
}

/* The walker's promises about a chain it returned. */
static void fz_check_chain(const struct vio_chain *c, const struct vio_iov *iov,
			   unsigned max_iov)
{
	if (c->out != iov || c->in != iov + c->nr_out ||
	    (unsigned)c->nr_out + c->nr_in > max_iov)
		fz_fail();
	uint64_t o = 0, i = 0;
	for (unsigned k = 0; k < c->nr_out; k++)
		o += c->out[k].len;
	for (unsigned k = 0; k < c->nr_in; k++)
		i += c->in[k].len;
	if (o != c->out_len || i != c->in_len)
		fz_fail();
}

static uint16_t fz_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void fz_push_all(struct vio_vq *vq, struct vio_used *u, unsigned n,
			unsigned flags)
{
	if (flags & FZ_REVERSE)
		for (unsigned k = 0; k < n / 2; k++) {
			struct vio_used t = u[k];
			u[k] = u[n - 1 - k];
			u[n - 1 - k] = t;
		}
	if (flags & FZ_BATCH) {
		/* may be -EINVAL: more ring slots than the queue holds */
		(void)vio_vq_push_batch(vq, u, n);
	} else {
		for (unsigned k = 0; k < n; k++)
			if (vio_vq_push(vq, u[k].head, u[k].len) != 0 &&
			    !vio_vq_broken(vq))
				fz_fail();
	}
	(void)vio_vq_call_prepare(vq);
}

static int fz_run(const uint8_t *in, size_t in_len, bool packed)
{
	static bool init;
	if (!init) {
		vio_log_set_quiet(1);
		init = true;
	}
	uint8_t hdr[FZ_HDR] = {0};
	memcpy(hdr, in, in_len < FZ_HDR ? in_len : FZ_HDR);
	size_t off = FZ_HDR;

	uint16_t qsize = packed ? (uint16_t)(hdr[0] % 128 + 1)
				: (uint16_t)(1u << (hdr[0] % 8));
	unsigned flags = hdr[1];
	unsigned max_iov = hdr[2] % (FZ_MAX_IOV + 1);
	unsigned budget = hdr[3] ? hdr[3] % FZ_POPS + 1 : FZ_POPS;
	uint16_t base = fz_le16(hdr + 4);
	size_t data_len = fz_le16(hdr + 6) % (FZ_DATA_MAX + 1);

	/* the two regions, exactly sized heap blocks */
	struct fz_region rg[2] = {{NULL, 0}, {NULL, 0}};
	size_t ring_len = vio_vq_ring_bytes(qsize, packed);
	void *ring;
	if (posix_memalign(&ring, 64, ring_len))
		return 0;
	rg[0].p = ring;
	rg[0].len = ring_len;
	memset(ring, 0, ring_len);
	if (off < in_len) {
		size_t n = in_len - off < ring_len ? in_len - off : ring_len;
		memcpy(ring, in + off, n);
	}
	off += ring_len;
	if (data_len) {
		rg[1].p = calloc(1, data_len);
		if (!rg[1].p) {
			free(ring);
			return 0;
		}
		rg[1].len = data_len;
		if (off < in_len) {
			size_t n =
			    in_len - off < data_len ? in_len - off : data_len;
			memcpy(rg[1].p, in + off, n);
		}
	}
	off += data_len;

	struct vio_memtable *mt = vio_memtable_new(2);
	if (!mt)
		fz_fail();
	struct vio_region r = {
	    .addr = FZ_RING_ADDR, .size = ring_len, .fd = -1, .ptr = ring};
	if (vio_memtable_add(mt, &r))
		fz_fail();
	if (data_len) {
		r.addr =
		    FZ_RING_ADDR + ring_len + (flags & FZ_GAPPED ? FZ_GAP : 0);
		r.size = data_len;
		r.ptr = rg[1].p;
		if (vio_memtable_add(mt, &r))
			fz_fail();
	}

	struct vio_vq_layout l;
	vio_vq_layout_at(qsize, packed, ring, FZ_RING_ADDR, &l);
	struct vio_vq_opts c = {.index = 0,
				.size = qsize,
				.packed = packed,
				.event_idx = flags & FZ_EVENT_IDX,
				.indirect = flags & FZ_INDIRECT,
				.name = "fuzz"};
	struct vio_vq *vq = vio_vq_new_device(&c, &l, mt);
	if (!vq)
		fz_fail();
	if (flags & FZ_SET_BASE)
		vio_vq_set_base(vq, base);
	if (flags & FZ_NO_NOTIFY)
		vio_vq_disable_notify(vq);

	static struct vio_iov iov[FZ_MAX_IOV];
	struct vio_used done[FZ_POPS];
	unsigned pops = 0, patches = 0;
	for (;;) {
		/* one round: pop what is available, then complete it */
		unsigned n = 0;
		(void)vio_vq_more_avail(vq);
		while (pops < budget) {
			struct vio_chain ch;
			if (flags & FZ_BURST) {
				static struct vio_chain cb[FZ_MAX_IOV];
				unsigned want = budget - pops;
				if (want > FZ_MAX_IOV)
					want = FZ_MAX_IOV;
				int b = vio_vq_pop_burst(vq, cb, iov, want);
				if (b < 0 && (b != -EIO || !vio_vq_broken(vq)))
					fz_fail();
				if (b < 0)
					break;
				if ((unsigned)b > want)
					fz_fail();
				/* one segment each, in iov[k], non-empty */
				for (int k = 0; k < b; k++) {
					const struct vio_chain *bc = &cb[k];
					fz_check_chain(bc, &iov[k], 1);
					if (bc->nr_out + bc->nr_in != 1 ||
					    bc->nd_out + bc->nd_in != 1 ||
					    iov[k].len == 0 || iov[k].cont)
						fz_fail();
					fz_touch(rg, bc->out, bc->nr_out,
						 false);
					fz_touch(rg, bc->in, bc->nr_in, true);
					done[n].head = bc->head;
					done[n].len = bc->in_len;
					n++;
				}
				pops += (unsigned)b;
				if (pops >= budget)
					break;
			}
			int ret = vio_vq_pop(vq, &ch, iov, max_iov);
			if (ret == 0)
				break;
			if (ret == -E2BIG) {
				/* legal, more segments than max_iov: consumed,
				 * not broken, only the tail in iov[] */
				if (vio_vq_broken(vq) || ch.nr_out ||
				    ch.nr_in > max_iov || ch.in != iov)
					fz_fail();
				fz_touch(rg, ch.in, ch.nr_in, true);
				pops++;
				done[n].head = ch.head;
				done[n].len = 0;
				n++;
				continue;
			}
			if (ret < 0) {
				if (ret != -EIO || !vio_vq_broken(vq))
					fz_fail();
				break;
			}
			if (ret != 1)
				fz_fail();
			pops++;
			fz_check_chain(&ch, iov, max_iov);
			fz_touch(rg, ch.out, ch.nr_out, false);
			fz_touch(rg, ch.in, ch.nr_in, true);
			done[n].head = ch.head;
			done[n].len = ch.in_len;
			n++;
		}
		fz_push_all(vq, done, n, flags);
		if (vio_vq_broken(vq)) {
			/* sticky */
			struct vio_chain ch;
			if (vio_vq_pop(vq, &ch, iov, max_iov) != -EIO)
				fz_fail();
			break;
		}
		if (pops >= budget || patches >= FZ_PATCHES || off + 4 > in_len)
			break;
		/* the driver moves: one patch record */
		uint16_t where = fz_le16(in + off), val = fz_le16(in + off + 2);
		off += 4;
		patches++;
		uint8_t *p;
		size_t span;
		if (where & 0x8000) {
			p = rg[1].p;
			span = rg[1].len;
			where &= 0x7fff;
		} else {
			p = rg[0].p;
			span = rg[0].len;
		}
		if (span >= 2) {
			size_t at = (where % (span - 1)) & ~(size_t)1;
			p[at] = (uint8_t)val;
			p[at + 1] = (uint8_t)(val >> 8);
		}
		if (flags & FZ_NO_NOTIFY)
			(void)vio_vq_enable_notify(vq);
	}
#ifdef FZ_VERBOSE
	/* clang -DFZ_VERBOSE ...: what an input did, for reproducers */
	fprintf(stderr, "fuzz: size %u, %u pops, %u patches, %s\n", qsize, pops,
		patches, vio_vq_broken(vq) ? vio_vq_error(vq) : "ok");
#endif
	(void)vio_vq_get_base(vq);
	vio_vq_free(vq);
	vio_memtable_free(mt);
	free(rg[1].p);
	free(ring);
	return 0;
}

#endif
