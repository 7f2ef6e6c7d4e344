/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the driver side: the driver object and its instances
 * (vio_blk_driver_new), the config space (5.2.4), probe (negotiation,
 * per-request limits, slots and rings) and remove.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "driver_internal.h"

#define BLK_DEFAULT_DEPTH 32u
#define BLK_DEFAULT_BOUNCE (128u << 10)
#define BLK_MAX_BOUNCE (64u << 20)
/* Entries per indirect table: the ring's default (vio_vq_opts), which
 * vio_drvdev_setup_vq uses.  Chains up to this long take one descriptor. */
#define BLK_INDIRECT_MAX 32u
/* Data segments per request, whatever the device allows (IOV_MAX). */
#define BLK_SEG_CAP 1024u
/* Data bytes per virtio request, whatever the device allows: keeps every
 * length in 32 bits with room to spare. */
#define BLK_PIECE_CAP (1u << 30)

/* A driver instance: the vio_driver and its config. */
struct blk_driver {
	struct vio_driver drv;
	struct vio_blk_driver_opts cfg;
};

static int blk_probe(struct vio_drvdev *vdev);
static void blk_remove(struct vio_drvdev *vdev);
static void blk_config_changed(struct vio_drvdev *vdev);

static const unsigned blk_features[] = {
    VIRTIO_BLK_F_SIZE_MAX,
    VIRTIO_BLK_F_SEG_MAX,
    VIRTIO_BLK_F_BLK_SIZE,
    VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_TOPOLOGY,
    VIRTIO_BLK_F_MQ,
    VIRTIO_BLK_F_DISCARD,
    VIRTIO_BLK_F_WRITE_ZEROES,
    VIRTIO_BLK_F_RO,
    VIRTIO_F_VERSION_1,
    VIRTIO_F_RING_PACKED,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
};
#define N_BLK_FEATURES (sizeof(blk_features) / sizeof(blk_features[0]))

static const struct vio_device_id blk_ids[] = {
    {VIRTIO_ID_BLOCK, VIO_DEV_ANY_ID},
    {0, 0},
};

const struct vio_driver vio_blk_driver = {
    .name = "virtio-blk",
    .id_table = blk_ids,
    .feature_table = blk_features,
    .feature_table_size = N_BLK_FEATURES,
    .probe = blk_probe,
    .remove = blk_remove,
    .config_changed = blk_config_changed,
};

static const struct vio_blk_driver_opts default_cfg;

static const struct vio_blk_driver_opts *
drv_config(const struct vio_driver *drv)
{
	if (!drv || drv == &vio_blk_driver)
		return &default_cfg;
	const struct blk_driver *bd =
	    (const struct blk_driver *)(const void *)((const char *)drv -
						      offsetof(
							  struct blk_driver,
							  drv));
	return &bd->cfg;
}

struct vio_driver *vio_blk_driver_new(const struct vio_blk_driver_opts *cfg)
{
	if (cfg && (cfg->queue_depth > VIO_VQ_MAX_SIZE ||
		    cfg->queue_size > VIO_VQ_MAX_SIZE ||
		    cfg->num_queues > VIO_MAX_QUEUES ||
		    cfg->bounce_size > BLK_MAX_BOUNCE)) {
		errno = EINVAL;
		return NULL;
	}
	struct blk_driver *bd = calloc(1, sizeof(*bd));
	if (!bd) {
		errno = ENOMEM;
		return NULL;
	}
	bd->drv = vio_blk_driver;
	if (cfg)
		bd->cfg = *cfg;
	return &bd->drv;
}

void vio_blk_driver_free(struct vio_driver *drv)
{
	if (!drv || drv == &vio_blk_driver)
		return;
	free((char *)drv - offsetof(struct blk_driver, drv));
}

struct vio_blk *vio_blk_from_vdev(struct vio_drvdev *vdev)
{
	if (!vdev)
		return NULL;
	const struct vio_driver *drv = vio_drvdev_driver(vdev);
	if (!drv || drv->probe != blk_probe)
		return NULL;
	return vio_drvdev_priv(vdev);
}

struct vio_drvdev *vio_blk_vdev(const struct vio_blk *b)
{
	return b->vdev;
}

/* ---- probe and remove ---- */

#define CFG_OFF(field) offsetof(struct virtio_blk_config, field)

/* Little-endian config fields; *v keeps its fallback if the read fails
 * (a config space shorter than the field). */
static int cfg_u8(struct vio_drvdev *vdev, unsigned off, uint8_t *v)
{
	return vio_drvdev_config_read(vdev, off, v, 1);
}

static int cfg_u16(struct vio_drvdev *vdev, unsigned off, uint16_t *v)
{
	uint16_t x;
	int r = vio_drvdev_config_read(vdev, off, &x, sizeof(x));
	if (r == 0)
		*v = le16toh(x);
	return r;
}

static int cfg_u32(struct vio_drvdev *vdev, unsigned off, uint32_t *v)
{
	uint32_t x;
	int r = vio_drvdev_config_read(vdev, off, &x, sizeof(x));
	if (r == 0)
		*v = le32toh(x);
	return r;
}

static int cfg_u64(struct vio_drvdev *vdev, unsigned off, uint64_t *v)
{
	uint64_t x;
	int r = vio_drvdev_config_read(vdev, off, &x, sizeof(x));
	if (r == 0)
		*v = le64toh(x);
	return r;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* 5.2.4: the fields each negotiated feature guards.  Only capacity is
 * required; every value is peer data, checked before use. */
static int read_config(struct vio_blk *b)
{
	struct vio_drvdev *vdev = b->vdev;
	struct vio_blk_info *in = &b->info;
	int r = cfg_u64(vdev, CFG_OFF(capacity), &in->capacity);
	if (r < 0) {
		vio_log_warn(
		    "blk driver: cannot read the capacity from the config "
		    "space (%s): is the device a virtio-blk device?",
		    strerror(-r));
		return r;
	}
	if (in->capacity == 0) {
		vio_log_warn(
		    "blk driver: the config space says capacity 0: not a "
		    "usable disk (is the device a virtio-blk device?)");
		return -ENODEV;
	}
	if (in->capacity > UINT64_MAX / SECTOR)
		in->capacity = UINT64_MAX / SECTOR;
	b->cap_bytes = in->capacity * SECTOR;

	in->blk_size = SECTOR;
	if (vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_BLK_SIZE)) {
		uint32_t v = 0;
		(void)cfg_u32(vdev, CFG_OFF(blk_size), &v);
		if (is_pow2(v) && v >= SECTOR && v <= 65536)
			in->blk_size = v;
		else
			vio_log_warn(
			    "blk driver: block size %u ignored: using 512", v);
	}
	in->seg_max = 1; /* without SEG_MAX: one data segment, as Linux */
	if (vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_SEG_MAX)) {
		uint32_t v = 0;
		(void)cfg_u32(vdev, CFG_OFF(seg_max), &v);
		in->seg_max = v ? v : 1;
	}
	if (vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_SIZE_MAX))
		(void)cfg_u32(vdev, CFG_OFF(size_max), &in->size_max);
	if (vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_TOPOLOGY)) {
		(void)cfg_u8(vdev, CFG_OFF(physical_block_exp),
			     &in->physical_block_exp);
		(void)cfg_u8(vdev, CFG_OFF(alignment_offset),
			     &in->alignment_offset);
		(void)cfg_u16(vdev, CFG_OFF(min_io_size), &in->min_io_size);
		(void)cfg_u32(vdev, CFG_OFF(opt_io_size), &in->opt_io_size);
	}
	in->device_queues = 1;
	if (vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_MQ)) {
		uint16_t v = 1;
		(void)cfg_u16(vdev, CFG_OFF(num_queues), &v);
		in->device_queues = v ? v : 1;
	}
	if (b->discard) {
		(void)cfg_u32(vdev, CFG_OFF(max_discard_sectors),
			      &in->max_discard_sectors);
		(void)cfg_u32(vdev, CFG_OFF(max_discard_seg),
			      &in->max_discard_seg);
		(void)cfg_u32(vdev, CFG_OFF(discard_sector_alignment),
			      &in->discard_sector_alignment);
	}
	if (b->wz) {
		uint8_t u = 0;
		(void)cfg_u32(vdev, CFG_OFF(max_write_zeroes_sectors),
			      &in->max_write_zeroes_sectors);
		(void)cfg_u32(vdev, CFG_OFF(max_write_zeroes_seg),
			      &in->max_write_zeroes_seg);
		(void)cfg_u8(vdev, CFG_OFF(write_zeroes_may_unmap), &u);
		in->write_zeroes_may_unmap = u != 0;
	}
	return 0;
}

/* Bytes per DISCARD / WRITE_ZEROES request: max sectors (0: no limit),
 * rounded down to the alignment (in sectors) when that leaves any. */
static uint64_t range_max(uint32_t max_sectors, uint32_t align)
{
	uint64_t m = max_sectors ? max_sectors : UINT32_MAX;
	if (align > 1 && m >= align)
		m -= m % align;
	return m * SECTOR;
}

static size_t round_down(size_t v, size_t a)
{
	return v - v % a;
}

static void free_state(struct vio_drvdev *vdev, struct vio_blk *b)
{
	for (unsigned i = 0; b->q && i < b->nq; i++) {
		struct blk_q *q = &b->q[i];
		vio_mem_release(b->mem, q->shm_block);
		vio_mem_release(b->mem, q->bounce_block);
		free(q->slots);
		free(q->free_ids);
		free(q->sg);
	}
	free(b->q);
	free(b);
	vio_drvdev_set_priv(vdev, NULL);
}

/* Slots, their shared memory and the scatter list of queue i. */
static int queue_alloc(struct vio_blk *b, unsigned i, unsigned depth,
		       unsigned segs)
{
	struct blk_q *q = &b->q[i];
	uint64_t daddr;
	size_t bounce = b->info.bounce_size;

	q->b = b;
	q->idx = i;
	q->nslots = depth;
	q->slots = calloc(depth, sizeof(*q->slots));
	q->free_ids = calloc(depth, sizeof(*q->free_ids));
	q->sg = calloc(segs + 2u, sizeof(*q->sg));
	if (!q->slots || !q->free_ids || !q->sg)
		return -ENOMEM;
	q->shm_block =
	    vio_mem_alloc(b->mem, depth * sizeof(struct blk_shm), 64, &daddr);
	q->bounce_block = vio_mem_alloc(b->mem, depth * bounce, 4096, &daddr);
	if (!q->shm_block || !q->bounce_block)
		return -ENOMEM;
	memset(q->shm_block, 0, depth * sizeof(struct blk_shm));
	for (unsigned k = 0; k < depth; k++) {
		q->slots[k].shm = &q->shm_block[k];
		q->slots[k].bounce = q->bounce_block + (size_t)k * bounce;
		/* slot 0 on top of the stack */
		q->free_ids[k] = depth - 1 - k;
	}
	q->nfree = depth;
	return 0;
}

static unsigned round_down_pow2(unsigned v)
{
	while (v & (v - 1))
		v &= v - 1;
	return v;
}

static int blk_probe(struct vio_drvdev *vdev)
{
	const struct vio_blk_driver_opts *cfg =
	    drv_config(vio_drvdev_driver(vdev));
	struct vio_features want =
	    vio_features_from(blk_features, N_BLK_FEATURES);
	if (cfg->no_packed)
		vio_features_clear(&want, VIRTIO_F_RING_PACKED);
	if (cfg->no_event_idx)
		vio_features_clear(&want, VIRTIO_RING_F_EVENT_IDX);
	if (cfg->no_indirect)
		vio_features_clear(&want, VIRTIO_RING_F_INDIRECT_DESC);
	int r = vio_drvdev_negotiate(vdev, &want);
	if (r < 0)
		return r;

	struct vio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vdev = vdev;
	b->mem = vio_drvdev_mem(vdev);
	b->ro = vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_RO);
	b->flush = vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_FLUSH);
	b->discard = vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_DISCARD);
	b->wz = vio_drvdev_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES);
	vio_drvdev_set_priv(vdev, b);
	r = read_config(b);
	if (r < 0)
		goto fail;

	struct vio_blk_info *in = &b->info;
	in->packed = vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED);
	in->event_idx = vio_drvdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX);
	in->indirect =
	    vio_drvdev_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC);

	/* queues: what the config says, what the transport has, what the
	 * caller asked for */
	unsigned nq = in->device_queues;
	if (nq > vio_drvdev_num_queues(vdev))
		nq = vio_drvdev_num_queues(vdev);
	if (cfg->num_queues && nq > cfg->num_queues)
		nq = cfg->num_queues;
	/* the smallest ring decides the per-request limits of all */
	unsigned qsize = VIO_VQ_MAX_SIZE;
	for (unsigned i = 0; i < nq; i++) {
		unsigned s = vio_drvdev_queue_max_size(vdev, i);
		if (cfg->queue_size && s > cfg->queue_size)
			s = cfg->queue_size;
		if (!in->packed)
			s = round_down_pow2(s);
		if (s < qsize)
			qsize = s;
	}
	if (nq == 0 || qsize < 3) {
		vio_log_warn("blk driver: %s", nq ? "queues shorter than the 3 "
						    "descriptors of a request"
						  : "no queue");
		r = -ENODEV;
		goto fail;
	}
	in->num_queues = nq;
	in->queue_size = qsize;

	/* data segments per request: the device's seg_max, the ring (a
	 * chain fits the queue, 2.7.5.3.1; with indirect descriptors it
	 * fits one indirect table so it takes one descriptor) */
	unsigned segs = in->seg_max < BLK_SEG_CAP ? in->seg_max : BLK_SEG_CAP;
	unsigned ring_segs =
	    (in->indirect && qsize >= BLK_INDIRECT_MAX ? BLK_INDIRECT_MAX
						       : qsize) -
	    2u;
	if (segs > ring_segs)
		segs = ring_segs;
	in->segs_per_req = segs;
	b->seg_bytes = in->size_max && in->size_max < BLK_PIECE_CAP
			   ? in->size_max
			   : BLK_PIECE_CAP;
	uint64_t zc = (uint64_t)segs * b->seg_bytes;
	if (zc > BLK_PIECE_CAP)
		zc = BLK_PIECE_CAP;
	b->max_zc = round_down((size_t)zc, SECTOR);
	if (b->max_zc >= in->blk_size)
		b->max_zc = round_down(b->max_zc, in->blk_size);
	if (b->max_zc == 0) {
		vio_log_warn(
		    "blk driver: device limits (seg_max %u, size_max %u) "
		    "leave no room for one sector",
		    in->seg_max, in->size_max);
		r = -ENODEV;
		goto fail;
	}
	size_t bounce =
	    cfg->bounce_size ? cfg->bounce_size : BLK_DEFAULT_BOUNCE;
	bounce = (bounce + 4095u) & ~(size_t)4095u;
	in->bounce_size = bounce;
	b->max_copy =
	    bounce < b->max_zc ? round_down(bounce, SECTOR) : b->max_zc;
	in->max_zc_bytes = b->max_zc;
	in->max_copy_bytes = b->max_copy;
	b->max_discard_bytes =
	    range_max(in->max_discard_sectors, in->discard_sector_alignment);
	b->max_wz_bytes = range_max(in->max_write_zeroes_sectors, 0);

	unsigned depth =
	    cfg->queue_depth ? cfg->queue_depth : BLK_DEFAULT_DEPTH;
	if (depth > qsize)
		depth = qsize;
	in->queue_depth = depth;

	/* every queue's memory first, then the rings: all of it exists
	 * before the device is told where the rings are */
	b->q = calloc(nq, sizeof(*b->q));
	if (!b->q) {
		r = -ENOMEM;
		goto fail;
	}
	b->nq = nq;
	for (unsigned i = 0; i < nq; i++) {
		r = queue_alloc(b, i, depth, segs);
		if (r < 0)
			goto fail;
	}
	for (unsigned i = 0; i < nq; i++) {
		struct blk_q *q = &b->q[i];
		q->vq = vio_drvdev_setup_vq(vdev, i, qsize, NULL, NULL);
		if (!q->vq) {
			r = errno ? -errno : -EIO;
			vio_log_warn("blk driver: queue %u: %s", i,
				     strerror(-r));
			goto fail;
		}
		/* interrupts only when we sleep (q_wait re-enables) */
		vio_vq_disable_cb(q->vq);
	}
	for (unsigned i = 0; i < nq; i++)
		b->q[i].regions = vio_mem_region_count(b->mem);
	return 0;
fail:
	/* the bus sets FAILED; the vqs go with the next reset */
	free_state(vdev, b);
	return r;
}

/*
 * The bus stopped the device (status 0) before calling us: nothing is
 * used any more.  Requests still queued complete with -ENODEV (their
 * callbacks run here, on the bus's thread).
 */
static void blk_remove(struct vio_drvdev *vdev)
{
	struct vio_blk *b = vio_drvdev_priv(vdev);
	if (!b)
		return;
	for (unsigned i = 0; i < b->nq; i++) {
		struct blk_q *q = &b->q[i];
		q->dead = true; /* no log line: this is not a failure */
		for (struct vio_blk_req *r = q->pend_head; r; r = r->priv_next)
			if (!r->priv_err)
				r->priv_err = -ENODEV;
		for (unsigned k = 0; k < q->nslots; k++)
			if (q->slots[k].req && !q->slots[k].req->priv_err)
				q->slots[k].req->priv_err = -ENODEV;
		blkq_fail_all(q, "device removed");
		while (q->vq && vio_vq_detach_unused(q->vq))
			;
		q->in_poll = true;
		(void)blkq_deliver(q, NULL, 0);
		q->in_poll = false;
	}
	free_state(vdev, b);
}

/*
 * The device says its config space changed (5.2.6: the capacity, after a
 * resize).  Runs on a driver thread (the transport's: one that waits for
 * used buffers, or an explicit serve call), possibly while other queues'
 * threads submit: the capacity is published with an atomic store, which
 * req_check and the getters load.  Requests already sent keep the range
 * they were checked against; the device refuses what is past its own
 * capacity.  A capacity that cannot be read or is 0 keeps the old one.
 */
static void blk_config_changed(struct vio_drvdev *vdev)
{
	struct vio_blk *b = vio_drvdev_priv(vdev);
	if (!b)
		return; /* not probed (yet): probe reads the config itself */
	uint64_t sectors = 0;
	int r = cfg_u64(vdev, CFG_OFF(capacity), &sectors);
	if (r < 0 || sectors == 0) {
		vio_log_warn("blk driver: config change: capacity %s; "
			     "keeping %" PRIu64 " bytes",
			     r < 0 ? strerror(-r) : "0",
			     vio_blk_capacity_bytes(b));
		return;
	}
	if (sectors > UINT64_MAX / SECTOR)
		sectors = UINT64_MAX / SECTOR;
	uint64_t old = __atomic_exchange_n(&b->cap_bytes, sectors * SECTOR,
					   __ATOMIC_RELEASE);
	if (old != sectors * SECTOR)
		vio_log_info("blk driver: capacity changed from %" PRIu64
			     " to %" PRIu64 " bytes",
			     old, sectors * SECTOR);
}
