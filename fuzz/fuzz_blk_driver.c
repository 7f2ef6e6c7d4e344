/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: vio's virtio-blk driver against a hostile device.
 * The fuzzer is the device: it decides what goes into the used ring (ids,
 * lengths, the used index; for packed rings the used descriptors, their
 * flags and wrap) and into the status bytes and data the driver reads
 * back, while the driver (src/blk/driver*.c over the driver end of the
 * ring, through vio_drvdev and the bus) submits, polls and consumes it.
 *
 * The transport is this file's: probe reads a config space built from
 * the input's header, queue setup attaches a device end of the ring
 * (vio_vq_new_device over the driver's own memory) which the device uses
 * only to pop chains honestly, so that it knows heads, headers and where
 * the status byte and data are; everything it writes back is raw stores
 * into the ring, chosen by the input.  vio_drvdev_wait_used lands in the
 * transport's wait, which runs device operations from the input (the
 * device answering while the driver sleeps) and fails the wait once the
 * input is used up.
 *
 * Input: an 8-byte header (below), then operations, one opcode byte and
 * its argument bytes each; a short input reads as zeroes.
 *
 *   header: [0] features: bit0 PACKED, 1 EVENT_IDX, 2 INDIRECT_DESC,
 *               3 FLUSH, 4 SEG_MAX, 5 SIZE_MAX, 6 DISCARD,
 *               7 WRITE_ZEROES
 *           [1] queue size: 4 + b % 61 (split rounds down to 2^n)
 *           [2] seg_max: 1 + b % 8       [3] size_max: 512 << b % 5
 *           [4] driver queue depth: 1 + b % 8
 *           [5] bounce size: 4096 << b % 2; bit 7: driver no_indirect
 *           [6] capacity: 16 + b sectors [7] reserved
 *
 *   driver ops:  SUBMIT r op sector nsec flags   POLL max  POLL_WAIT
 *   device ops:  POP  USED k status lenmode idmode [u32]  RAW off u32
 *                USED_IDX u16  NEEDS_RESET  CALL
 *
 * Checks besides ASan/UBSan/leaks: every submitted request completes
 * exactly once (at the latest when the device is removed), with 0 or a
 * negative errno; a READ that succeeded holds exactly the bytes the
 * device wrote for it (the device writes f(disk offset), and only the
 * bytes its used length claims: a driver that trusted a short length
 * would return stale bytes), unless a RAW store may have rewritten a
 * used length; a GET_ID that succeeded holds a prefix of the device's id
 * and zeroes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "util/log.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/ring.h>
#include <vio/transport.h>

#define FZ_HDR 8
#define FZ_NREQ 8
#define FZ_MAX_SECT 16u
#define FZ_MAX_CHAINS 64
#define FZ_MAX_IOV 72
#define FZ_WAIT_OPS 4 /* device ops per wait */

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)

enum {
	OP_SUBMIT,
	OP_POLL,
	OP_POLL_WAIT,
	OP_POP,
	OP_USED,
	OP_RAW,
	OP_USED_IDX,
	OP_NEEDS_RESET,
	OP_CALL,
	OP_COUNT
};

static const char fz_id[VIRTIO_BLK_ID_BYTES] = "vio-fuzz-device-id-0";

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t get8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t get16(struct in *in)
{
	return (uint16_t)(get8(in) | get8(in) << 8);
}

static uint32_t get32(struct in *in)
{
	return (uint32_t)get16(in) | (uint32_t)get16(in) << 16;
}

/* A chain the device popped and has not answered (honestly) yet. */
struct chain {
	uint32_t head;
	uint32_t type;
	uint64_t sector;
	uint32_t in_len; /* writable bytes, status included */
	unsigned nr_in;
	struct vio_iov iov[FZ_MAX_IOV];
	struct vio_iov *in;
};

struct fz_req {
	struct vio_blk_req r;
	uint8_t *buf; /* heap (copying) or vio_mem (zero-copy) */
	uint8_t *zc;
	bool busy;
	unsigned completions;
};

struct fz {
	struct in in;
	/* device */
	uint8_t status;
	bool needs_reset;
	struct vio_features offered, acked;
	struct virtio_blk_config cfg;
	uint16_t qmax;
	struct vio_mem *mem;
	struct vio_memtable *mt;
	unsigned synced;
	struct vio_vq *dvq;
	uint16_t size;
	bool packed;
	struct vio_vq_layout layout;
	struct chain chains[FZ_MAX_CHAINS];
	unsigned nchains;
	uint16_t used_idx; /* split: next used index; packed: position */
	bool used_wrap;
	bool call;
	bool scribbled; /* a RAW store may have changed a used length */
	/* driver */
	struct vio_blk *b;
	struct fz_req req[FZ_NREQ];
	bool in_wait;
};

static void fz_device_op(struct fz *z, uint8_t op);

/* The disk's content, as the device returns it: never 0. */
static uint8_t disk_byte(uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull;
	return (uint8_t)(1 + (x >> 56) % 255);
}

/* ---- the transport ---- */

static int fz_sync(struct fz *z)
{
	unsigned n = vio_mem_region_count(z->mem);
	for (; z->synced < n; z->synced++) {
		struct vio_region r = *vio_mem_region(z->mem, z->synced);
		int e = vio_memtable_add(z->mt, &r);
		if (e < 0)
			return e;
	}
	return 0;
}

static uint32_t t_device_id(void *t)
{
	(void)t;
	return VIRTIO_ID_BLOCK;
}

static uint32_t t_vendor_id(void *t)
{
	(void)t;
	return 0;
}

static uint8_t t_get_status(void *t)
{
	struct fz *z = t;
	return (uint8_t)(z->status |
			 (z->needs_reset ? VIRTIO_CONFIG_S_NEEDS_RESET : 0));
}

static int t_set_status(void *t, uint8_t st)
{
	struct fz *z = t;
	z->status = st;
	if (st == 0)
		z->needs_reset = false;
	return 0;
}

static int t_get_features(void *t, struct vio_features *out)
{
	*out = ((struct fz *)t)->offered;
	return 0;
}

static int t_set_features(void *t, const struct vio_features *f)
{
	((struct fz *)t)->acked = *f;
	return 0;
}

static int t_config_read(void *t, unsigned off, void *buf, unsigned len)
{
	struct fz *z = t;
	if (off > sizeof(z->cfg) || len > sizeof(z->cfg) - off)
		return -EINVAL;
	memcpy(buf, (const uint8_t *)&z->cfg + off, len);
	return 0;
}

static uint32_t t_config_generation(void *t)
{
	(void)t;
	return 0;
}

static unsigned t_num_queues(void *t)
{
	(void)t;
	return 1;
}

static int t_queue_max_size(void *t, unsigned idx)
{
	return idx == 0 ? ((struct fz *)t)->qmax : 0;
}

static int t_queue_setup(void *t, unsigned idx, uint16_t size,
			 const struct vio_vq_layout *l)
{
	struct fz *z = t;
	if (idx != 0 || z->dvq || fz_sync(z) < 0)
		return -EINVAL;
	struct vio_vq_opts c = {
	    .size = size,
	    .packed = vio_features_has(&z->acked, VIRTIO_F_RING_PACKED),
	    .event_idx = vio_features_has(&z->acked, VIRTIO_RING_F_EVENT_IDX),
	    .indirect =
		vio_features_has(&z->acked, VIRTIO_RING_F_INDIRECT_DESC),
	    .name = "fuzz-device",
	};
	z->dvq = vio_vq_new_device(&c, l, z->mt);
	if (!z->dvq)
		return -EINVAL;
	z->size = size;
	z->packed = c.packed;
	z->layout = *l;
	z->used_idx = 0;
	z->used_wrap = true;
	return 0;
}

static int t_queue_disable(void *t, unsigned idx)
{
	(void)t;
	(void)idx;
	return 0;
}

static void t_notify(void *t, unsigned idx)
{
	(void)t;
	(void)idx;
}

/* The driver sleeps: the device acts (a few operations of the input),
 * then interrupts.  Once the input is used up the wait fails. */
static int t_wait(void *t, unsigned idx, int timeout_ms)
{
	struct fz *z = t;
	(void)idx;
	(void)timeout_ms;
	if (z->in_wait)
		return -EDEADLK;
	z->in_wait = true;
	for (unsigned k = 0; k < FZ_WAIT_OPS && z->in.n && !z->call; k++)
		fz_device_op(z, get8(&z->in) % OP_COUNT);
	z->in_wait = false;
	if (z->call) {
		z->call = false;
		return 0;
	}
	return z->in.n ? -ETIMEDOUT : -EIO;
}

static int t_sync_mem(void *t)
{
	return fz_sync(t);
}

static const struct vio_transport_ops fz_ops = {
    .name = "fuzz",
    .device_id = t_device_id,
    .vendor_id = t_vendor_id,
    .get_status = t_get_status,
    .set_status = t_set_status,
    .get_features = t_get_features,
    .set_features = t_set_features,
    .config_read = t_config_read,
    .config_generation = t_config_generation,
    .num_queues = t_num_queues,
    .queue_max_size = t_queue_max_size,
    .queue_setup = t_queue_setup,
    .queue_disable = t_queue_disable,
    .notify = t_notify,
    .wait = t_wait,
    .sync_mem = t_sync_mem,
};

/* ---- the device ---- */

static void dev_pop(struct fz *z)
{
	while (z->dvq && z->nchains < FZ_MAX_CHAINS) {
		struct chain *c = &z->chains[z->nchains];
		struct vio_chain vc;
		if (vio_vq_pop(z->dvq, &vc, c->iov, FZ_MAX_IOV) != 1)
			return;
		struct virtio_blk_outhdr h;
		struct vio_cursor cur;
		vio_cursor_init(&cur, vc.out, vc.nr_out);
		/* every chain of the driver has a 16-byte header and a
		 * status byte; a descriptor the device itself scribbled on
		 * (a packed used descriptor with a wrong wrap bit reads as
		 * available) may not */
		if (vio_cursor_read(&cur, &h, sizeof(h)) != sizeof(h) ||
		    vc.in_len == 0) {
			if (!z->scribbled)
				__builtin_trap();
			continue;
		}
		c->head = vc.head;
		c->type = le32toh(h.type);
		c->sector = le64toh(h.sector);
		c->in_len = vc.in_len;
		c->nr_in = vc.nr_in;
		c->in = vc.in;
		z->nchains++;
	}
}

/* Write the first n bytes of the chain's writable data. */
static void dev_fill(const struct chain *c, uint32_t n)
{
	struct vio_cursor w;
	vio_cursor_init(&w, c->in, c->nr_in);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t v = c->type == VIRTIO_BLK_T_GET_ID
				? (i < sizeof(fz_id) ? (uint8_t)fz_id[i] : 0)
				: disk_byte(c->sector * 512u + i);
		if (vio_cursor_write(&w, &v, 1) != 1)
			break;
	}
}

static void dev_used(struct fz *z)
{
	uint8_t k = get8(&z->in), stsel = get8(&z->in);
	uint8_t lensel = get8(&z->in), idsel = get8(&z->in);
	if (!z->nchains || !z->dvq)
		return;
	unsigned ci = k % z->nchains;
	struct chain *c = &z->chains[ci];
	uint32_t data = c->in_len - 1;
	uint32_t honest = 1;
	if (c->type == VIRTIO_BLK_T_IN)
		honest += data;
	else if (c->type == VIRTIO_BLK_T_GET_ID)
		honest += data < sizeof(fz_id) ? data : sizeof(fz_id);
	uint32_t len;
	switch (lensel % 8) {
	case 0:
		len = honest;
		break;
	case 1:
		len = honest - 1;
		break;
	case 2:
		len = 0;
		break;
	case 3:
		len = 1;
		break;
	case 4:
		len = c->in_len;
		break;
	case 5:
		len = c->in_len + 1;
		break;
	case 6:
		len = get32(&z->in);
		break;
	default:
		len = honest > lensel / 8u ? honest - lensel / 8u : 0;
		break;
	}
	/* the device writes what its length claims (never past the data) */
	if (c->type == VIRTIO_BLK_T_IN || c->type == VIRTIO_BLK_T_GET_ID) {
		uint32_t n = len ? len - 1 : 0;
		dev_fill(c, n < data ? n : data);
	}
	static const uint8_t sts[] = {VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK,
				      VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP};
	uint8_t st = stsel < 0xf0 ? sts[stsel % 4] : (uint8_t)(stsel & 0xf);
	const struct vio_iov *last = &c->in[c->nr_in - 1];
	((volatile uint8_t *)last->base)[last->len - 1] = st;

	/* a lie about the id completes some other request, whose data was
	 * not written: the driver cannot tell, so the data checks stop */
	uint32_t id = c->head;
	if (idsel % 16 == 15)
		id = get32(&z->in);
	else if (idsel % 16 == 14)
		id = c->head ^ 1u;
	if (idsel % 16 >= 14 || (z->packed && (idsel & 0x10)))
		z->scribbled = true;
	if (!z->packed) {
		struct vring_used *u = z->layout.device;
		struct vring_used_elem *e =
		    &u->ring[z->used_idx & (z->size - 1)];
		__atomic_store_n(&e->id, htole32(id), __ATOMIC_RELAXED);
		__atomic_store_n(&e->len, htole32(len), __ATOMIC_RELAXED);
		z->used_idx = (uint16_t)(z->used_idx + 1);
		__atomic_store_n(&u->idx, htole16(z->used_idx),
				 __ATOMIC_RELEASE);
	} else {
		struct vring_packed_desc *d =
		    (struct vring_packed_desc *)z->layout.desc + z->used_idx;
		uint32_t nd = c->head >> 16;
		__atomic_store_n(&d->id, htole16((uint16_t)id),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&d->len, htole32(len), __ATOMIC_RELAXED);
		uint16_t f = (uint16_t)(z->used_wrap ? F_AVAIL | F_USED : 0);
		if (idsel & 0x10) /* a wrong wrap bit */
			f ^= (uint16_t)(idsel & 0x20 ? F_USED : F_AVAIL);
		__atomic_store_n(&d->flags, htole16(f), __ATOMIC_RELEASE);
		uint32_t p = (uint32_t)z->used_idx + (nd ? nd : 1);
		while (p >= z->size) {
			p -= z->size;
			z->used_wrap = !z->used_wrap;
		}
		z->used_idx = (uint16_t)p;
	}
	/* answered: forget the chain (a lie about its id may leave the
	 * driver waiting for it, as a real hostile device would) */
	z->chains[ci] = z->chains[--z->nchains];
	z->chains[ci].in =
	    z->chains[ci].iov + (z->chains[ci].in - z->chains[z->nchains].iov);
	z->call = true;
}

static void dev_raw(struct fz *z)
{
	uint16_t off = get16(&z->in);
	uint32_t v = get32(&z->in);
	if (!z->dvq)
		return;
	uint8_t *base;
	size_t bytes;
	if (z->packed) {
		base = z->layout.desc;
		bytes = 16u * z->size;
	} else {
		base = z->layout.device;
		bytes = 4u + 8u * z->size;
	}
	size_t o = (off % bytes) & ~(size_t)3;
	__atomic_store_n((uint32_t *)(void *)(base + o), v, __ATOMIC_RELEASE);
	z->scribbled = true;
}

static void fz_device_op(struct fz *z, uint8_t op)
{
	switch (op) {
	case OP_POP:
		dev_pop(z);
		break;
	case OP_USED:
		dev_pop(z);
		dev_used(z);
		break;
	case OP_RAW:
		dev_raw(z);
		break;
	case OP_USED_IDX: {
		uint16_t v = get16(&z->in);
		if (z->dvq && !z->packed) {
			struct vring_used *u = z->layout.device;
			__atomic_store_n(&u->idx, htole16(v), __ATOMIC_RELEASE);
			z->used_idx = v;
		} else if (z->dvq) {
			z->used_idx = (uint16_t)(v % z->size);
			z->used_wrap = v & 0x8000;
		}
		z->scribbled = true;
		break;
	}
	case OP_NEEDS_RESET:
		z->needs_reset = true;
		break;
	case OP_CALL:
		z->call = true;
		break;
	default: /* a driver op: nothing for the device */
		break;
	}
}

/* ---- the driver's requests ---- */

static void req_check(struct fz *z, struct fz_req *q, int result)
{
	struct vio_blk_req *r = &q->r;
	if (!q->busy || result != r->result || result > 0 || result < -4095)
		__builtin_trap(); /* completed twice, or a bad result */
	q->busy = false;
	q->completions++;
	if (result != 0)
		return;
	const uint8_t *p = r->buf;
	if (r->op == VIO_BLK_OP_READ && !z->scribbled) {
		for (size_t i = 0; i < r->len; i++)
			if (p[i] != disk_byte(r->offset + i))
				__builtin_trap(); /* bytes the device never
						   * wrote for this read */
	} else if (r->op == VIO_BLK_OP_GET_ID && !z->scribbled) {
		size_t i = 0;
		while (i < r->len && i < sizeof(fz_id) &&
		       p[i] == (uint8_t)fz_id[i])
			i++;
		for (; i < r->len && i < sizeof(fz_id); i++)
			if (p[i] != 0)
				__builtin_trap();
	}
}

static struct fz *g_fz;

static void req_done(struct vio_blk_req *r, int result)
{
	req_check(g_fz, r->user, result);
}

static void drv_submit(struct fz *z)
{
	uint8_t ri = get8(&z->in), op = get8(&z->in), sec = get8(&z->in);
	uint8_t nsec = get8(&z->in), fl = get8(&z->in);
	struct fz_req *q = &z->req[ri % FZ_NREQ];
	if (q->busy)
		return;
	struct vio_blk_req *r = &q->r;
	memset(r, 0, sizeof(*r));
	r->op = op % 6;
	r->offset = (uint64_t)sec * 512u;
	r->len = (size_t)(nsec % (FZ_MAX_SECT + 1)) * 512u;
	if (r->op == VIO_BLK_OP_GET_ID)
		r->len = 1 + nsec % 24u;
	if (fl & 1)
		r->flags = VIO_BLK_REQ_UNMAP;
	r->buf = (fl & 2) && q->zc ? q->zc : q->buf;
	memset(r->buf, 0, FZ_MAX_SECT * 512u);
	r->done = (fl & 4) ? NULL : req_done;
	r->user = q;
	q->busy = true;
	int e = vio_blk_submit(z->b, (fl & 8) ? 1 : 0, r);
	if (e < 0) {
		q->busy = false;
		if (e != -EINVAL && e != -ERANGE && e != -EROFS &&
		    e != -EOPNOTSUPP && e != -EIO && e != -ENXIO)
			__builtin_trap();
	}
}

static void drv_poll(struct fz *z, int timeout_ms)
{
	struct vio_blk_req *done[FZ_NREQ] = {0};
	unsigned max = get8(&z->in) % (FZ_NREQ + 1);
	int n = vio_blk_poll(z->b, 0, done, max, timeout_ms);
	if ((n < 0 && n != -EIO) || n > FZ_NREQ)
		__builtin_trap();
	/* n counts callbacks too: done[] holds the others, first */
	for (unsigned i = 0; i < max && done[i]; i++)
		req_check(z, done[i]->user, done[i]->result);
}

/* Callback-less requests that finished but were not collected yet:
 * remove completes everything queued (their callbacks, if any), the
 * rest come back from a poll with room for all. */
static void drain(struct fz *z)
{
	struct vio_blk_req *done[FZ_NREQ] = {0};
	(void)vio_blk_poll(z->b, 0, done, FZ_NREQ, 0);
	for (unsigned i = 0; i < FZ_NREQ && done[i]; i++)
		req_check(z, done[i]->user, done[i]->result);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!getenv("FZ_VERBOSE"))
		vio_log_set_quiet(1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *z = calloc(1, sizeof(*z));
	if (!z)
		return 0;
	g_fz = z;
	z->in.p = data;
	z->in.n = size;
	uint8_t h[FZ_HDR];
	for (unsigned i = 0; i < FZ_HDR; i++)
		h[i] = get8(&z->in);

	static const unsigned fbits[] = {
	    VIRTIO_F_RING_PACKED,	 VIRTIO_RING_F_EVENT_IDX,
	    VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_BLK_F_FLUSH,
	    VIRTIO_BLK_F_SEG_MAX,	 VIRTIO_BLK_F_SIZE_MAX,
	    VIRTIO_BLK_F_DISCARD,	 VIRTIO_BLK_F_WRITE_ZEROES};
	vio_features_set(&z->offered, VIRTIO_F_VERSION_1);
	for (unsigned i = 0; i < 8; i++)
		if (h[0] >> i & 1)
			vio_features_set(&z->offered, fbits[i]);
	z->qmax = (uint16_t)(4 + h[1] % 61);
	z->cfg.capacity = htole64(16u + h[6]);
	z->cfg.seg_max = htole32(1u + h[2] % 8);
	z->cfg.size_max = htole32(512u << (h[3] % 5));
	z->cfg.max_discard_sectors = htole32(8);
	z->cfg.max_discard_seg = htole32(1);
	z->cfg.max_write_zeroes_sectors = htole32(8);
	z->cfg.max_write_zeroes_seg = htole32(1);

	z->mem = vio_mem_new();
	z->mt = vio_memtable_new(64);
	struct vio_drvdev *vdev =
	    z->mem && z->mt ? vio_drvdev_new(&fz_ops, z, z->mem) : NULL;
	struct vio_bus *bus = vio_bus_new();
	struct vio_blk_driver_opts dc = {
	    .queue_depth = 1u + h[4] % 8,
	    .bounce_size = 4096u << (h[5] % 2),
	    .no_indirect = h[5] & 0x80,
	};
	struct vio_driver *drv = vio_blk_driver_new(&dc);
	if (!vdev || !bus || !drv || vio_bus_register(bus, drv) < 0)
		__builtin_trap();
	bool added = vio_bus_add(bus, vdev) == 0;
	z->b = vio_blk_from_vdev(vdev);

	for (unsigned i = 0; i < FZ_NREQ; i++) {
		uint64_t daddr;
		z->req[i].buf = malloc(FZ_MAX_SECT * 512u);
		if (!z->req[i].buf)
			__builtin_trap();
		z->req[i].zc =
		    vio_mem_alloc(z->mem, FZ_MAX_SECT * 512u, 512, &daddr);
	}

	unsigned ops = 0;
	while (z->b && z->in.n && ops++ < 512) {
		uint8_t op = get8(&z->in) % OP_COUNT;
		switch (op) {
		case OP_SUBMIT:
			drv_submit(z);
			break;
		case OP_POLL:
			drv_poll(z, 0);
			break;
		case OP_POLL_WAIT:
			/* the device acts inside the transport's wait */
			drv_poll(z, -1);
			break;
		default:
			fz_device_op(z, op);
			break;
		}
	}

	if (z->b)
		drain(z);
	if (added)
		vio_bus_remove(bus, vdev); /* completes what is left */
	for (unsigned i = 0; i < FZ_NREQ; i++) {
		struct fz_req *q = &z->req[i];
		/* a callback-less request finished by remove is not
		 * delivered anywhere: remove leaves it with its result */
		if (q->busy && (!q->r.done && q->r.result < 0))
			q->busy = false;
		if (q->busy)
			__builtin_trap(); /* never completed */
		free(q->buf);
		vio_mem_release(z->mem, q->zc);
	}
	vio_bus_unregister(bus, drv);
	vio_bus_free(bus);
	vio_blk_driver_free(drv);
	vio_drvdev_free(vdev);
	if (z->dvq)
		vio_vq_free(z->dvq);
	vio_memtable_free(z->mt);
	vio_mem_free(z->mem);
	free(z);
	g_fz = NULL;
	return 0;
}
