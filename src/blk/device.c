/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the device side (VIRTIO 1.2 section 5.2): a disk backed by
 * an image file or a block device, or by a network image through a
 * storage backend (blk_backend.h: NBD, Ceph RBD).
 *
 * Data path (queue.c): chains are popped into a per-queue in-flight
 * table and pushed as they complete, in completion order, batched per
 * loop turn.  Reads and writes the page cache can serve complete inline
 * (RWF_NOWAIT), the rest through io_uring, whose completions arrive on
 * the queue's loop (ops->queue_start) or, without a loop, within the
 * kick that popped them.  ops->queue_stop completes and pushes every
 * chain in flight, so reset has nothing to drop and the ring base the
 * transport reads afterwards is exact.
 *
 * Cache mode: writeback (FLUSH makes writes durable) when FLUSH was
 * negotiated, writethrough otherwise; with CONFIG_WCE the driver may
 * switch with the config field writeback (struct virtio_blk_config.wce),
 * the one config byte it may write (blk_config_writable).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <endian.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "blk/blk_internal.h"

#define BLK_DEFAULT_QUEUE_SIZE 256
#define BLK_DEFAULT_SIZE_MAX (1u << 20)
#define BLK_DEFAULT_DWZ_SEG 32u
#define BLK_DEFAULT_POLL_US 50u
#define BLK_DEFAULT_IO_TIMEOUT_S 30u
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static bool blk_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	struct vio_blk_device *bd = vio_device_opaque(dev);
	if (idx >= bd->nq)
		return false;
	return blk_queue_kick(&bd->q[idx], vq);
}

static int blk_queue_start_op(struct vio_device *dev, unsigned idx,
			      struct vio_vq *vq, struct vio_loop *loop)
{
	struct vio_blk_device *bd = vio_device_opaque(dev);
	if (idx >= bd->nq)
		return -EINVAL;
	return blk_queue_start(&bd->q[idx], vq, loop);
}

static void blk_queue_stop_op(struct vio_device *dev, unsigned idx,
			      struct vio_vq *vq)
{
	struct vio_blk_device *bd = vio_device_opaque(dev);
	if (idx < bd->nq)
		blk_queue_stop(&bd->q[idx], vq);
}

/* Every queue is already freed and was stopped first: nothing is in
 * flight (a queue freed unstopped has its I/O waited for, dropped). */
static void blk_reset(struct vio_device *dev)
{
	struct vio_blk_device *bd = vio_device_opaque(dev);
	for (unsigned i = 0; i < bd->nq; i++)
		blk_queue_abandon(&bd->q[i]);
}

/*
 * The driver's config writes (VIRTIO 1.2 5.2.4): only writeback, one
 * byte, 0 (writethrough) or 1 (writeback), and only with CONFIG_WCE
 * negotiated.  Everything else in virtio_blk_config is the device's.
 */
static bool blk_config_writable(struct vio_device *dev, unsigned off,
				const void *buf, unsigned len)
{
	const uint8_t *b = buf;
	return vio_device_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE) &&
	       off == offsetof(struct virtio_blk_config, wce) && len == 1 &&
	       b && b[0] <= 1;
}

/*
 * 5.2.5.2: with CONFIG_WCE but without FLUSH the device MUST start in
 * writethrough and say so (writeback 0).  Written as the driver would,
 * so a reset gives the next driver the device's default (1) again.
 */
static int blk_status(struct vio_device *dev, uint8_t old, uint8_t new_status)
{
	uint8_t zero = 0;
	if ((new_status & ~old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    vio_device_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE) &&
	    !vio_device_has_feature(dev, VIRTIO_BLK_F_FLUSH))
		return vio_device_config_write(
		    dev, offsetof(struct virtio_blk_config, wce), &zero, 1);
	return 0;
}

/* state.c: the device state section (docs/device-state.md) */
int blk_state_save(struct vio_device *dev, void *buf, size_t cap);
int blk_state_load(struct vio_device *dev, const void *buf, size_t len,
		   char *why, size_t whylen);

static const struct vio_device_ops blk_ops = {
    .status = blk_status,
    .reset = blk_reset,
    .kick = blk_kick,
    .queue_start = blk_queue_start_op,
    .queue_stop = blk_queue_stop_op,
    .config_writable = blk_config_writable,
    .state_save = blk_state_save,
    .state_load = blk_state_load,
};

/* ---- setup ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Open or create the image; fills fd, is_blkdev, *bytes and *phys.
 * 0 or negative errno (err says why). */
static int open_image(const struct vio_blk_device_opts *cfg,
		      struct vio_blk_device *bd, uint64_t *bytes,
		      uint32_t *phys, char *err, size_t errlen)
{
	int flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	int fd = open(cfg->path, flags);
	int e;

	if (fd < 0 && errno == ENOENT && cfg->size && !cfg->readonly) {
		fd = open(cfg->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			  0644);
		if (fd >= 0 && ftruncate(fd, (off_t)cfg->size) < 0) {
			e = errno;
			set_err(err, errlen,
				"%s: cannot size to %llu bytes: %s", cfg->path,
				(unsigned long long)cfg->size, strerror(e));
			close(fd);
			unlink(cfg->path);
			return -e;
		}
	}
	if (fd < 0) {
		e = errno;
		set_err(err, errlen, "%s: %s", cfg->path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		e = errno;
		set_err(err, errlen, "%s: fstat: %s", cfg->path, strerror(e));
		goto fail;
	}
	*phys = (uint32_t)st.st_blksize;
	if (S_ISREG(st.st_mode)) {
		*bytes = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		unsigned pbs = 0;
		if (ioctl(fd, BLKGETSIZE64, bytes) < 0) {
			e = errno;
			set_err(err, errlen, "%s: BLKGETSIZE64: %s", cfg->path,
				strerror(e));
			goto fail;
		}
		if (ioctl(fd, BLKPBSZGET, &pbs) == 0)
			*phys = pbs;
		bd->is_blkdev = true;
	} else {
		e = EINVAL;
		set_err(err, errlen,
			"%s: neither a regular file nor a block device",
			cfg->path);
		goto fail;
	}
	if (cfg->size && *bytes != cfg->size) {
		e = EINVAL;
		set_err(err, errlen,
			"%s: exists with %llu bytes, not the %llu asked for "
			"(never resized)",
			cfg->path, (unsigned long long)*bytes,
			(unsigned long long)cfg->size);
		goto fail;
	}
	if (*bytes < SECTOR) {
		e = EINVAL;
		set_err(err, errlen, "%s: smaller than one sector", cfg->path);
		goto fail;
	}
	bd->fd = fd;
	return 0;
fail:
	close(fd);
	return -e;
}

/* "vio-blk-" + FNV-1a of the path: stable for one image path. */
static void default_id(const char *path, uint8_t id[VIRTIO_BLK_ID_BYTES])
{
	uint32_t h = 2166136261u;
	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	char s[VIRTIO_BLK_ID_BYTES + 1];
	snprintf(s, sizeof(s), "vio-blk-%08x", h);
	memset(id, 0, VIRTIO_BLK_ID_BYTES);
	memcpy(id, s, strlen(s));
}

/* A network image: its backend's I/O on every queue, or failure. */
static int net_io_init(struct vio_blk_device *bd, uint16_t qsize, char *err,
		       size_t errlen)
{
	bd->io = bd->backend->io;
	for (unsigned i = 0; i < bd->nq; i++) {
		int r = bd->io->init(&bd->q[i], qsize);
		if (r < 0) {
			set_err(err, errlen, "%s: queue %u: %s", bd->name, i,
				strerror(-r));
			return r;
		}
		bd->q[i].io = bd->io;
	}
	return 0;
}

/* A network image: open it through its backend; fills *bytes, *phys and
 * what the image offers. */
static int open_net_image(const struct vio_blk_device_opts *cfg,
			  struct vio_blk_device *bd,
			  struct blk_image_info *info, char *err, size_t errlen)
{
	memset(info, 0, sizeof(*info));
	int r = bd->backend->open(bd, cfg->path, cfg, info, err, errlen);
	if (r < 0) {
		if (err && errlen && !err[0])
			set_err(err, errlen, "%s: %s", cfg->path, strerror(-r));
		return r;
	}
	if (info->bytes < SECTOR) {
		set_err(err, errlen, "%s: smaller than one sector", cfg->path);
		bd->backend->close(bd);
		return -EINVAL;
	}
	if (info->max_queues && bd->nq > info->max_queues) {
		vio_log_warn("%s: %s serves %u queue%s coherently: %u queues "
			     "asked, %u served",
			     bd->name, cfg->path, info->max_queues,
			     info->max_queues == 1 ? "" : "s", bd->nq,
			     info->max_queues);
		bd->nq = info->max_queues;
	}
	bd->readonly = bd->readonly || info->readonly;
	return 0;
}

/* io_uring on every queue, or the synchronous backend on all of them. */
static void pick_backend(struct vio_blk_device *bd,
			 const struct vio_blk_device_opts *cfg, uint16_t qsize)
{
	bd->io = &blk_io_sync;
#ifdef VIO_HAVE_LIBURING
	if (!cfg->no_io_uring) {
		int r = 0;
		unsigned i;
		for (i = 0; i < bd->nq && r == 0; i++) {
			bd->q[i].io = &blk_io_uring;
			r = blk_io_uring.init(&bd->q[i], qsize);
			if (r < 0)
				bd->q[i].io = NULL;
		}
		if (r == 0) {
			bd->io = &blk_io_uring;
			return;
		}
		for (unsigned k = 0; k < bd->nq; k++) {
			if (bd->q[k].io)
				bd->q[k].io->fini(&bd->q[k]);
			bd->q[k].io = NULL;
		}
		vio_log_warn(
		    "%s: io_uring unavailable (%s): using synchronous I/O",
		    bd->name, strerror(-r));
	}
#else
	(void)cfg;
#endif
	for (unsigned i = 0; i < bd->nq; i++) {
		bd->q[i].io = &blk_io_sync;
		blk_io_sync.init(&bd->q[i], qsize);
	}
}

static unsigned log2u(uint32_t v)
{
	unsigned n = 0;
	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

struct vio_blk_device *vio_blk_device_new(const struct vio_blk_device_opts *cfg,
					  char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!cfg || !cfg->path) {
		set_err(err, errlen, "no image path");
		errno = EINVAL;
		return NULL;
	}
	unsigned nq = cfg->num_queues ? cfg->num_queues : 1;
	uint16_t qsize =
	    cfg->queue_size ? cfg->queue_size : BLK_DEFAULT_QUEUE_SIZE;
	uint32_t blk_size = cfg->blk_size ? cfg->blk_size : SECTOR;
	/* The driver picks the ring size after reading seg_max, and may
	 * put seg_max + 2 descriptors in one indirect chain, which must not
	 * be longer than the ring (2.7.5.3.1): the default fits QEMU's
	 * default vhost-user ring of 128 (as qemu-storage-daemon does). */
	uint32_t seg_max = cfg->seg_max ? cfg->seg_max : qsize - 2u;
	if (!cfg->seg_max && seg_max > VIO_BLK_DEFAULT_SEG_MAX)
		seg_max = VIO_BLK_DEFAULT_SEG_MAX;
	uint32_t size_max =
	    cfg->size_max ? cfg->size_max : BLK_DEFAULT_SIZE_MAX;
	uint32_t dwz_seg =
	    cfg->max_discard_seg ? cfg->max_discard_seg : BLK_DEFAULT_DWZ_SEG;
	const char *bad = NULL;
	if (nq > VIO_MAX_QUEUES)
		bad = "too many queues";
	else if (qsize < 4 || qsize > VIO_VQ_MAX_SIZE)
		bad = "queue size not in 4..32768";
	else if (blk_size < SECTOR || blk_size > 4096 || !pow2(blk_size))
		bad = "block size not 512, 1024, 2048 or 4096";
	else if (cfg->size % SECTOR)
		bad = "size not a multiple of 512";
	else if (seg_max < 1 || seg_max > IOV_MAX || seg_max + 2 > qsize)
		/* header + data + status: no chain longer than the ring */
		bad = "seg_max not in 1..min(queue size - 2, 1024)";
	else if (size_max < 4096)
		bad = "size_max below 4096";
	else if (dwz_seg > 4096)
		bad = "max_discard_seg above 4096";
	if (bad) {
		set_err(err, errlen, "%s", bad);
		errno = EINVAL;
		return NULL;
	}
	const struct blk_backend *be = blk_backend_find(cfg->path);
	if (!be && blk_backend_missing(cfg->path, err, errlen)) {
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	/* a backend executes one DISCARD/WRITE_ZEROES range per request */
	if (be)
		dwz_seg = 1;

	struct vio_blk_device *bd =
	    calloc(1, sizeof(*bd) + nq * sizeof(bd->q[0]));
	if (!bd) {
		set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	bd->fd = -1;
	bd->nq = nq;
	bd->backend = be;
	bd->io_timeout_ns =
	    (uint64_t)(cfg->io_timeout ? cfg->io_timeout
				       : BLK_DEFAULT_IO_TIMEOUT_S) *
	    1000000000u;
	bd->readonly = cfg->readonly;
	bd->seg_max = seg_max;
	bd->size_max = size_max;
	bd->dwz_seg = dwz_seg;
	if (cfg->poll)
		bd->poll_ns = (uint64_t)(cfg->poll_us ? cfg->poll_us
						      : BLK_DEFAULT_POLL_US) *
			      1000u;
	snprintf(bd->name, sizeof(bd->name), "%s",
		 cfg->name ? cfg->name : "blk");
	if (cfg->serial) {
		size_t l = strlen(cfg->serial);
		memcpy(bd->id, cfg->serial,
		       l < sizeof(bd->id) ? l : sizeof(bd->id));
	} else {
		default_id(cfg->path, bd->id);
	}

	uint64_t bytes = 0;
	uint32_t phys = 0;
	/* a local image offers everything; a network one what it says */
	struct blk_image_info info = {.can_discard = true,
				      .can_write_zeroes = true};
	int r = be ? open_net_image(cfg, bd, &info, err, errlen)
		   : open_image(cfg, bd, &bytes, &phys, err, errlen);
	if (r < 0) {
		free(bd);
		errno = -r;
		return NULL;
	}
	if (be) {
		bytes = info.bytes;
		phys = info.phys ? info.phys : SECTOR;
		nq = bd->nq;
	}
	bd->capacity = bytes / SECTOR;

	for (unsigned i = 0; i < nq; i++) {
		if (blk_queue_init(bd, &bd->q[i], i, qsize) < 0) {
			set_err(err, errlen, "out of memory");
			r = -ENOMEM;
			goto fail;
		}
	}
	if (be) {
		r = net_io_init(bd, qsize, err, errlen);
		if (r < 0)
			goto fail;
	} else {
		pick_backend(bd, cfg, qsize);
	}

	/* config space (5.2.4), little-endian */
	if (phys < blk_size || phys > 4096 || !pow2(phys))
		phys = blk_size;
	uint32_t dwz_align = blk_size / SECTOR;
	struct virtio_blk_config bc;
	memset(&bc, 0, sizeof(bc));
	bc.capacity = htole64(bd->capacity);
	bc.size_max = htole32(size_max);
	bc.seg_max = htole32(seg_max);
	bc.blk_size = htole32(blk_size);
	bc.physical_block_exp = (uint8_t)log2u(phys / blk_size);
	bc.min_io_size = htole16((uint16_t)(phys / blk_size));
	bc.num_queues = htole16((uint16_t)nq);
	bc.max_discard_sectors = htole32(BLK_DWZ_MAX_SECTORS);
	bc.max_discard_seg = htole32(dwz_seg);
	bc.discard_sector_alignment = htole32(dwz_align);
	bc.max_write_zeroes_sectors = htole32(BLK_DWZ_MAX_SECTORS);
	bc.max_write_zeroes_seg = htole32(dwz_seg);
	bc.write_zeroes_may_unmap = 1;
	bc.wce = 1; /* writeback: FLUSH is offered (5.2.5.2) */

	unsigned bits[] = {VIRTIO_BLK_F_SEG_MAX,  VIRTIO_BLK_F_SIZE_MAX,
			   VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH,
			   VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_CONFIG_WCE};
	struct vio_features f =
	    vio_features_from(bits, sizeof(bits) / sizeof(bits[0]));
	if (nq > 1)
		vio_features_set(&f, VIRTIO_BLK_F_MQ);
	if (bd->readonly) {
		vio_features_set(&f, VIRTIO_BLK_F_RO);
	} else {
		if (!cfg->no_discard && info.can_discard)
			vio_features_set(&f, VIRTIO_BLK_F_DISCARD);
		if (!cfg->no_write_zeroes && info.can_write_zeroes)
			vio_features_set(&f, VIRTIO_BLK_F_WRITE_ZEROES);
	}
	if (!cfg->no_packed)
		vio_features_set(&f, VIRTIO_F_RING_PACKED);
	if (!cfg->no_event_idx)
		vio_features_set(&f, VIRTIO_RING_F_EVENT_IDX);
	if (!cfg->no_indirect)
		vio_features_set(&f, VIRTIO_RING_F_INDIRECT_DESC);

	struct vio_device_opts dc = {
	    .name = bd->name,
	    .device_id = VIRTIO_ID_BLOCK,
	    .vendor_id = 0,
	    .features = f,
	    .num_queues = nq,
	    .queue_max_size = qsize,
	    .config = &bc,
	    .config_size = sizeof(bc),
	    .ops = &blk_ops,
	    .opaque = bd,
	};
	bd->dev = vio_device_new(&dc);
	if (!bd->dev) {
		r = errno ? -errno : -ENOMEM;
		set_err(err, errlen, "vio_device_new: %s", strerror(-r));
		goto fail;
	}
	return bd;
fail:
	for (unsigned i = 0; i < nq; i++)
		blk_queue_fini(&bd->q[i]);
	if (bd->fd >= 0)
		close(bd->fd);
	if (be)
		be->close(bd);
	free(bd);
	errno = -r;
	return NULL;
}

struct vio_device *vio_blk_device_dev(const struct vio_blk_device *bd)
{
	return bd ? bd->dev : NULL;
}

uint64_t vio_blk_device_capacity(const struct vio_blk_device *bd)
{
	/* vio_blk_device_resize may store it from another thread; NULL: 0,
	 * as resize takes NULL (and GCC's LTO otherwise warns of a load
	 * through the NULL it sees there) */
	return bd ? __atomic_load_n(&bd->capacity, __ATOMIC_ACQUIRE) : 0;
}

unsigned vio_blk_device_num_queues(const struct vio_blk_device *bd)
{
	return bd->nq;
}

int vio_blk_device_stats(const struct vio_blk_device *bd, unsigned q,
			 struct vio_blk_queue_stats *out)
{
	if (!bd || q >= bd->nq || !out)
		return -EINVAL;
	const struct vio_blk_queue_stats *st = &bd->q[q].st;
	out->requests = __atomic_load_n(&st->requests, __ATOMIC_RELAXED);
	out->reads = __atomic_load_n(&st->reads, __ATOMIC_RELAXED);
	out->writes = __atomic_load_n(&st->writes, __ATOMIC_RELAXED);
	out->flushes = __atomic_load_n(&st->flushes, __ATOMIC_RELAXED);
	out->bytes_read = __atomic_load_n(&st->bytes_read, __ATOMIC_RELAXED);
	out->bytes_written =
	    __atomic_load_n(&st->bytes_written, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&st->errors, __ATOMIC_RELAXED);
	out->broken = __atomic_load_n(&st->broken, __ATOMIC_RELAXED);
	return 0;
}

const char *vio_blk_device_backend(const struct vio_blk_device *bd)
{
	return bd->backend ? bd->backend->name : bd->io->name;
}

/* A kick runs, or a queue owes the driver chains (in flight between
 * kicks, completed by its loop's events). */
static bool busy(struct vio_blk_device *bd)
{
	if (__atomic_load_n(&bd->active, __ATOMIC_SEQ_CST) > 0)
		return true;
	for (unsigned i = 0; i < bd->nq; i++)
		if (__atomic_load_n(&bd->q[i].owed, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

int vio_blk_device_drain(struct vio_blk_device *bd, int timeout_ms)
{
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX
			   : vio_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int r = 0;

	__atomic_add_fetch(&bd->draining, 1, __ATOMIC_SEQ_CST);
	while (busy(bd)) {
		if (vio_now_ns() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	__atomic_sub_fetch(&bd->draining, 1, __ATOMIC_SEQ_CST);
	return r;
}

void vio_blk_device_free(struct vio_blk_device *bd)
{
	if (!bd)
		return;
	vio_device_free(bd->dev);
	for (unsigned i = 0; i < bd->nq; i++)
		blk_queue_fini(&bd->q[i]);
	if (bd->fd >= 0)
		close(bd->fd);
	if (bd->backend)
		bd->backend->close(bd);
	free(bd);
}
