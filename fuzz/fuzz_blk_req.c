/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the virtio-blk device's request parser (device.c,
 * request.c), fed chains a hostile driver wrote.  The target builds a
 * well-formed ring (split or packed, direct or indirect chains) from the
 * input's descriptor records, so that the fuzzer's effort goes into what
 * the chains say: header, data, status byte, DISCARD / WRITE_ZEROES
 * ranges, GET_ID, FLUSH, unknown types, every length edge, descriptors
 * that cross memory-region boundaries (seg_max and size_max are per
 * descriptor), the device's limits and negotiated features.  The device
 * is a real vio_blk_device on the synchronous backend, on a 64 KiB memfd
 * image (emptied before each input), brought up through the model and
 * kicked with vio_device_kick until it says nothing is left.
 *
 * Input (little-endian; missing bytes read as zero):
 *
 *   0      flags: FZ_* below
 *   1      region size of the data memory: 64 << (b % 8) bytes
 *   2      seg_max (0: the device's default)
 *   3      size_max: 0 default, else 4096 << (b % 4)
 *   4      max_discard_seg: 0 default, else b % 8 + 1
 *   5      chains: b % FZ_CHAINS + 1
 *   6      the writeback byte written to config (with FZ_WCE)
 *   7..15  reserved
 *   16..   per chain: one byte (bits 0-3: descriptors - 1, bit 4:
 *          indirect), then 5 bytes per descriptor: u16 offset into the
 *          data memory (mod its size), u16 length, u8 flags (bit 0:
 *          writable; bit 1: length not clipped to the data memory; bit
 *          2: length * 64)
 *   ..     the rest: the data memory's bytes (headers, payloads)
 *
 * The data memory (FZ_DATA bytes, then FZ_TBL bytes where the target puts
 * indirect tables) is one exactly-sized heap block, registered as regions
 * of the chosen size adjacent in device address space.
 *
 * Checks besides ASan/UBSan: unless the queue broke (a descriptor outside
 * memory, which only the unclipped flag can make), every chain comes back
 * exactly once, in order, with a used length no larger than its writable
 * bytes; a lone chain answered with a status byte has 0, 1 or 2 there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "util/log.h"
#include <vio/blk.h>
#include <vio/mem.h>

#define FZ_PACKED 0x01
#define FZ_INDIRECT 0x02 /* INDIRECT_DESC negotiated */
#define FZ_READONLY 0x04
#define FZ_NO_FLUSH 0x08 /* the driver leaves FLUSH out: writethrough */
#define FZ_NO_DISCARD 0x10
#define FZ_NO_WZ 0x20
#define FZ_WCE 0x40 /* CONFIG_WCE negotiated, byte 6 written */
#define FZ_EVENT_IDX 0x80

#define FZ_HDR 16
#define FZ_QSZ 32u
#define FZ_CHAINS 8u
#define FZ_DESCS 16u
#define FZ_DATA (16u << 10)
#define FZ_TBL (FZ_CHAINS * FZ_DESCS * 16u)
#define FZ_MEM_ADDR 0x40000000ull
#define FZ_IMG (64u << 10)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int img_fd = -1;
static char img_path[64];
static bool verbose; /* FZ_VERBOSE set: log lines and a trace */

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_blk_req: %s\n", what);
	__builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("FZ_VERBOSE") != NULL;
	vio_log_set_quiet(!verbose);
	img_fd = memfd_create("fuzz-blk-img", MFD_CLOEXEC);
	if (img_fd < 0)
		fz_fail("memfd_create");
	snprintf(img_path, sizeof(img_path), "/proc/self/fd/%d", img_fd);
	return 0;
}

struct fz_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* VRING_DESC_F_WRITE */
};

struct fz_chain {
	unsigned n;
	bool indirect;
	struct fz_desc d[FZ_DESCS];
	uint64_t in_len;
	uint8_t *status; /* the last writable byte, or NULL */
	uint16_t head;	 /* split: head index; packed: buffer id */
	unsigned slots;	 /* ring descriptors used */
};

static void put_desc(void *slot, const struct fz_desc *d, bool packed,
		     uint16_t flags, uint16_t next_or_id)
{
	if (packed) {
		struct vring_packed_desc p = {
		    .addr = htole64(d->addr),
		    .len = htole32(d->len),
		    .id = htole16(next_or_id),
		    .flags = htole16(flags),
		};
		memcpy(slot, &p, sizeof(p));
	} else {
		struct vring_desc s = {
		    .addr = htole64(d->addr),
		    .len = htole32(d->len),
		    .flags = htole16(flags),
		    .next = htole16(next_or_id),
		};
		memcpy(slot, &s, sizeof(s));
	}
}

static struct vio_blk_device *make_device(const uint8_t *hdr)
{
	if (ftruncate(img_fd, 0) || ftruncate(img_fd, FZ_IMG))
		fz_fail("ftruncate");
	struct vio_blk_device_opts c = {
	    .path = img_path,
	    .queue_size = FZ_QSZ,
	    .seg_max = hdr[2] && hdr[2] <= FZ_QSZ - 2 ? hdr[2] : 0,
	    .size_max = hdr[3] ? 4096u << (hdr[3] % 4) : 0,
	    .max_discard_seg = hdr[4] ? hdr[4] % 8u + 1 : 0,
	    .readonly = hdr[0] & FZ_READONLY,
	    .no_io_uring = true,
	};
	char err[128];
	struct vio_blk_device *bd = vio_blk_device_new(&c, err, sizeof(err));
	if (!bd)
		fz_fail(err);
	return bd;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t in_len)
{
	uint8_t hdr[FZ_HDR] = {0};
	memcpy(hdr, in, in_len < FZ_HDR ? in_len : FZ_HDR);
	size_t off = FZ_HDR;
	unsigned flags = hdr[0];
	bool packed = flags & FZ_PACKED;
	uint32_t stripe = 64u << (hdr[1] % 8);
	unsigned nchains = hdr[5] % FZ_CHAINS + 1;

	/* the data memory: exactly sized, so ASan sees any byte past it */
	uint8_t *mem = calloc(1, FZ_DATA + FZ_TBL);
	if (!mem)
		return 0;
	struct fz_chain ch[FZ_CHAINS];
	unsigned nc = 0, slots = 0;
	for (; nc < nchains && off < in_len; nc++) {
		struct fz_chain *c = &ch[nc];
		uint8_t b = in[off++];
		c->n = (b & 15u) + 1;
		c->indirect = (b & 16u) && (flags & FZ_INDIRECT);
		c->slots = c->indirect ? 1 : c->n;
		c->in_len = 0;
		c->status = NULL;
		for (unsigned k = 0; k < c->n; k++) {
			uint8_t r[5] = {0};
			for (unsigned i = 0; i < 5 && off < in_len; i++)
				r[i] = in[off++];
			uint32_t o = (uint32_t)(r[0] | r[1] << 8) % FZ_DATA;
			uint32_t len = (uint32_t)(r[2] | r[3] << 8);
			if (r[4] & 4)
				len *= 64;
			if (!(r[4] & 2) && len > FZ_DATA - o)
				len = FZ_DATA - o;
			c->d[k].addr = FZ_MEM_ADDR + o;
			c->d[k].len = len;
			c->d[k].flags = r[4] & 1 ? VRING_DESC_F_WRITE : 0;
			if (r[4] & 1) {
				c->in_len += len;
				/* the last writable byte, where it is in
				 * memory (else the queue breaks) */
				if (len)
					c->status = len <= FZ_DATA - o
							? mem + o + len - 1
							: NULL;
			}
		}
		if (slots + c->slots > FZ_QSZ)
			break;
		slots += c->slots;
	}
	if (off < in_len)
		memcpy(mem, in + off,
		       in_len - off < FZ_DATA ? in_len - off : FZ_DATA);

	struct vio_memtable *mt = vio_memtable_new((FZ_DATA + FZ_TBL) / 64 + 1);
	if (!mt)
		fz_fail("memtable");
	for (uint32_t a = 0; a < FZ_DATA + FZ_TBL; a += stripe) {
		uint32_t sz = FZ_DATA + FZ_TBL - a < stripe
				  ? FZ_DATA + FZ_TBL - a
				  : stripe;
		struct vio_region r = {.addr = FZ_MEM_ADDR + a,
				       .size = sz,
				       .fd = -1,
				       .ptr = mem + a};
		if (vio_memtable_add(mt, &r))
			fz_fail("memtable_add");
	}

	/* the device, and the driver's side of the handshake */
	struct vio_blk_device *bd = make_device(hdr);
	struct vio_device *dev = vio_blk_device_dev(bd);
	struct vio_features f;
	vio_device_offered(dev, &f);
	if (!packed)
		vio_features_clear(&f, VIRTIO_F_RING_PACKED);
	if (!(flags & FZ_INDIRECT))
		vio_features_clear(&f, VIRTIO_RING_F_INDIRECT_DESC);
	if (!(flags & FZ_EVENT_IDX))
		vio_features_clear(&f, VIRTIO_RING_F_EVENT_IDX);
	if (flags & FZ_NO_FLUSH)
		vio_features_clear(&f, VIRTIO_BLK_F_FLUSH);
	if (flags & FZ_NO_DISCARD)
		vio_features_clear(&f, VIRTIO_BLK_F_DISCARD);
	if (flags & FZ_NO_WZ)
		vio_features_clear(&f, VIRTIO_BLK_F_WRITE_ZEROES);
	if (!(flags & FZ_WCE))
		vio_features_clear(&f, VIRTIO_BLK_F_CONFIG_WCE);
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	if (vio_device_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE) ||
	    vio_device_set_status(dev, s) || vio_device_set_features(dev, &f) ||
	    vio_device_set_status(dev, s |= VIRTIO_CONFIG_S_FEATURES_OK))
		fz_fail("handshake");
	if (flags & FZ_WCE) {
		int r = vio_device_config_write(
		    dev, offsetof(struct virtio_blk_config, wce), &hdr[6], 1);
		if ((r == 0) != (hdr[6] <= 1))
			fz_fail("writeback byte");
	}

	size_t ring_len = vio_vq_ring_bytes(FZ_QSZ, packed);
	void *ring;
	if (posix_memalign(&ring, 64, ring_len))
		fz_fail("ring");
	memset(ring, 0, ring_len);
	struct vio_vq_layout l;
	vio_vq_layout_at(FZ_QSZ, packed, ring, 0x1000, &l);

	/* the chains, in ring order; indirect tables after the data */
	uint16_t pos = 0;
	uint8_t *tbl = mem + FZ_DATA;
	for (unsigned i = 0; i < nc; i++) {
		struct fz_chain *c = &ch[i];
		c->head = pos;
		if (c->indirect) {
			for (unsigned k = 0; k < c->n; k++) {
				uint16_t fl = c->d[k].flags;
				if (k + 1 < c->n && !packed)
					fl |= VRING_DESC_F_NEXT;
				put_desc(tbl + k * 16, &c->d[k], packed, fl,
					 packed ? 0 : (uint16_t)(k + 1));
			}
			struct fz_desc t = {FZ_MEM_ADDR + (uint64_t)(tbl - mem),
					    c->n * 16u, 0};
			tbl += c->n * 16u;
			uint16_t fl = VRING_DESC_F_INDIRECT;
			if (packed)
				fl |= 1u << VRING_PACKED_DESC_F_AVAIL;
			put_desc((uint8_t *)l.desc + pos * 16u, &t, packed, fl,
				 packed ? (uint16_t)i : 0);
			pos++;
			continue;
		}
		for (unsigned k = 0; k < c->n; k++) {
			uint16_t fl = c->d[k].flags;
			if (k + 1 < c->n)
				fl |= VRING_DESC_F_NEXT;
			if (packed)
				fl |= 1u << VRING_PACKED_DESC_F_AVAIL;
			put_desc((uint8_t *)l.desc + pos * 16u, &c->d[k],
				 packed, fl,
				 packed ? (uint16_t)i : (uint16_t)(pos + 1));
			pos++;
		}
	}
	if (!packed) {
		struct vring_avail *av = l.driver;
		for (unsigned i = 0; i < nc; i++)
			av->ring[i] = htole16(ch[i].head);
		__atomic_store_n(&av->idx, htole16((uint16_t)nc),
				 __ATOMIC_RELEASE);
	}

	if (vio_device_queue_setup(dev, 0, FZ_QSZ, &l, mt) ||
	    vio_device_queue_enable(dev, 0, true) ||
	    vio_device_set_status(dev, s | VIRTIO_CONFIG_S_DRIVER_OK))
		fz_fail("queue setup");
	for (unsigned k = 0; vio_device_kick(dev, 0); k++)
		if (k > 2 * FZ_QSZ)
			fz_fail("kick never ends");

	/* every chain back, once, in order, with a sane length */
	struct vio_vq *vq = vio_device_queue(dev, 0);
	if (vq && !vio_vq_broken(vq)) {
		uint16_t up = 0;
		for (unsigned i = 0; i < nc; i++) {
			uint32_t id, len;
			if (packed) {
				struct vring_packed_desc *d =
				    (struct vring_packed_desc *)l.desc + up;
				uint16_t fl = le16toh(d->flags);
				if (!(fl & (1u << VRING_PACKED_DESC_F_USED)))
					fz_fail("chain not returned");
				id = le16toh(d->id);
				len = le32toh(d->len);
				if (id != i)
					fz_fail("wrong buffer id");
				up = (uint16_t)(up + ch[i].slots);
			} else {
				struct vring_used *u = l.device;
				if (le16toh(u->idx) != nc)
					fz_fail("chains not returned");
				id = le32toh(u->ring[i].id);
				len = le32toh(u->ring[i].len);
				if (id != ch[i].head)
					fz_fail("wrong head");
			}
			if (verbose)
				fprintf(
				    stderr,
				    "chain %u: %u descriptors%s, used %u, "
				    "status %d\n",
				    i, ch[i].n,
				    ch[i].indirect ? " (indirect)" : "", len,
				    len && ch[i].status ? *ch[i].status : -1);
			if (len > ch[i].in_len)
				fz_fail("used length past the buffer");
			if (nc == 1 && len && ch[i].status &&
			    *ch[i].status > VIRTIO_BLK_S_UNSUPP)
				fz_fail("status byte");
		}
	}

	if (verbose)
		fprintf(stderr, "%u chains, queue %s\n", nc,
			!vq		    ? "gone"
			: vio_vq_broken(vq) ? vio_vq_error(vq)
					    : "ok");
	vio_blk_device_free(bd);
	vio_memtable_free(mt);
	free(ring);
	free(mem);
	return 0;
}
