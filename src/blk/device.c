/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the device side (VIRTIO 1.2 section 5.2): a disk backed by
 * an image file or a block device.
 *
 * Data path per kick (queue idx, on that queue's worker thread):
 *
 *   disable notifications;
 *   loop, until a ring's worth of chains (the queue size) was handled:
 *     pop up to a batch of chains (queue size, and as many as the
 *     preallocated segment arena holds); validate each (request.c);
 *     answer the bad ones at once, hand READ/WRITE/FLUSH to the I/O
 *     backend (io_uring: queued, one submission for the batch);
 *     wait for the whole batch; write the status bytes;
 *     push the batch with one vio_vq_push_batch, vio_vq_call;
 *     when the ring is empty: busy-poll (cfg.poll) for poll_us, then
 *     re-enable notifications and return unless chains arrived meanwhile.
 *
 * The bound keeps a kick short under any load (vio/device.h): a driver
 * that refills the ring as fast as it drains cannot keep a kick running,
 * so the transport can stop the queue between kicks.  A kick that ends on
 * the bound with chains still waiting leaves notifications disabled and
 * vio_device_kick() tells its caller to call again.
 *
 * A kick returns only after every request it popped has completed and
 * was pushed: there is never in-flight state between kicks, which is what
 * vio_blk_device_drain() waits for and why reset has nothing to drop.
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
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

/* Single writer (the queue's kick): a relaxed load and store, no locked
 * read-modify-write; readers load relaxed. */
static void stat_add(uint64_t *p, uint64_t v)
{
	if (v)
		__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v,
				 __ATOMIC_RELAXED);
}

/* A pushed batch, in the queue's counters: one update per counter. */
static void batch_count(struct blk_queue *q, unsigned n)
{
	struct vio_blk_queue_stats c = {.requests = n};
	for (unsigned i = 0; i < n; i++) {
		const struct blk_req *req = &q->reqs[i];
		bool ok = req->result == VIRTIO_BLK_S_OK;
		if (req->op == BLK_OP_READ) {
			c.reads++;
			c.bytes_read += ok ? req->len : 0;
		} else if (req->op == BLK_OP_WRITE) {
			c.writes++;
			c.bytes_written += ok ? req->len : 0;
		} else if (req->op == BLK_OP_FLUSH) {
			c.flushes++;
		}
		c.errors += !ok;
	}
	struct vio_blk_queue_stats *st = &q->st;
	stat_add(&st->requests, c.requests);
	stat_add(&st->reads, c.reads);
	stat_add(&st->writes, c.writes);
	stat_add(&st->flushes, c.flushes);
	stat_add(&st->bytes_read, c.bytes_read);
	stat_add(&st->bytes_written, c.bytes_written);
	stat_add(&st->errors, c.errors);
}

/*
 * One batch: pop, start, wait, push.  Returns the number of chains
 * handled (0: the ring was empty) or -EIO (the queue is broken).
 */
static int blk_batch(struct blk_queue *q, struct vio_vq *vq,
		     const struct blk_neg *neg, unsigned max)
{
	unsigned n = 0, used_iov = 0;
	int r = 0;

	if (max > q->nreqs)
		max = q->nreqs;
	while (n < max && q->iov_cap - used_iov >= q->chain_max) {
		struct vio_chain c;
		r = vio_vq_pop(vq, &c, q->iov + used_iov, q->chain_max);
		struct blk_req *req = &q->reqs[n];
		if (r == -E2BIG) {
			/* legal but too many segments: IOERR, queue kept */
			blk_req_too_long(q, req, &c);
			n++;
			used_iov += c.nr_in;
			r = 1;
			continue;
		}
		if (r <= 0)
			break;
		n++;
		blk_req_start(q, req, &c, q->vec + used_iov, neg);
		if (req->op != BLK_OP_NONE)
			q->io->submit(q, req);
		used_iov += (unsigned)c.nr_out + c.nr_in;
	}
	if (n == 0)
		return r < 0 ? -EIO : 0;
	/* the batch's memory (iovecs, slots) is reused next round: every
	 * request must be finished before the next pop */
	q->io->wait(q);
	for (unsigned i = 0; i < n; i++) {
		q->used[i].head = q->reqs[i].head;
		q->used[i].len = q->reqs[i].used_len;
	}
	/* counted before the push: a driver that sees its completion finds
	 * it counted (the push's release orders these stores before it) */
	batch_count(q, n);
	if (vio_vq_push_batch(vq, q->used, n) < 0)
		return -EIO;
	vio_vq_call(vq);
	return r < 0 ? -EIO : (int)n;
}

/* Cache mode and request types, as negotiated (and configured) now. */
static void neg_read(struct vio_blk_device *bd, struct blk_neg *neg)
{
	struct vio_device *dev = bd->dev;
	bool writeback = vio_device_has_feature(dev, VIRTIO_BLK_F_FLUSH);
	if (writeback && vio_device_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE)) {
		uint8_t wce = 1;
		(void)vio_device_config_read(
		    dev, offsetof(struct virtio_blk_config, wce), &wce, 1);
		writeback = wce != 0;
	}
	neg->writethrough = !writeback;
	neg->discard = vio_device_has_feature(dev, VIRTIO_BLK_F_DISCARD);
	neg->write_zeroes =
	    vio_device_has_feature(dev, VIRTIO_BLK_F_WRITE_ZEROES);
}

static bool blk_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	struct vio_blk_device *bd = vio_device_opaque(dev);
	if (idx >= bd->nq)
		return false;
	struct blk_queue *q = &bd->q[idx];
	struct blk_neg neg;
	neg_read(bd, &neg);
	/* at most a ring's worth of chains per kick (vio/device.h) */
	unsigned budget = vio_vq_size(vq);
	uint64_t poll_end = 0;
	bool more = false;

	__atomic_add_fetch(&bd->active, 1, __ATOMIC_SEQ_CST);
	vio_vq_disable_notify(vq);
	for (;;) {
		if (budget == 0) {
			/* bound reached: re-arm only if nothing waits, else
			 * stay disabled and let the caller call again */
			if (!vio_vq_enable_notify(vq)) {
				vio_vq_disable_notify(vq);
				more = true;
			}
			break;
		}
		int n = blk_batch(q, vq, &neg, budget);
		if (n < 0) {
			/* broken: the model asks for a reset */
			stat_add(&q->st.broken, 1);
			break;
		}
		if (n > 0) {
			budget -= (unsigned)n;
			poll_end = 0;
			continue;
		}
		if (bd->poll_ns &&
		    !__atomic_load_n(&bd->draining, __ATOMIC_ACQUIRE)) {
			uint64_t now = vio_now_ns();
			if (!poll_end)
				poll_end = now + bd->poll_ns;
			if (now < poll_end) {
				cpu_relax();
				continue;
			}
		}
		/* 2.7.10: re-arm, then look once more to close the race */
		if (vio_vq_enable_notify(vq))
			break;
		vio_vq_disable_notify(vq);
		poll_end = 0;
	}
	__atomic_sub_fetch(&bd->active, 1, __ATOMIC_SEQ_CST);
	return more;
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

static const struct vio_device_ops blk_ops = {
    .status = blk_status,
    .kick = blk_kick,
    .config_writable = blk_config_writable,
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

static int queue_init(struct vio_blk_device *bd, struct blk_queue *q,
		      unsigned idx, uint16_t qsize)
{
	q->bd = bd;
	q->idx = idx;
	q->fd = bd->fd;
	q->nreqs = qsize;
	/* segments per chain: its descriptors (at most qsize, 2.7.5.3.1)
	 * plus room for the region boundaries they cross; seg_max and
	 * size_max are checked per descriptor, whatever the pieces */
	q->chain_max = vio_vq_iov_max(qsize);
	/* room for at least one whole chain plus as much again of smaller
	 * ones: a batch stops popping when less than chain_max is left */
	q->iov_cap = 2u * q->chain_max;
	q->reqs = calloc(q->nreqs, sizeof(*q->reqs));
	q->used = calloc(q->nreqs, sizeof(*q->used));
	q->iov = calloc(q->iov_cap, sizeof(*q->iov));
	q->vec = calloc(q->iov_cap, sizeof(*q->vec));
	q->dwz =
	    calloc(bd->dwz_seg, sizeof(struct virtio_blk_discard_write_zeroes));
	if (!q->reqs || !q->used || !q->iov || !q->vec || !q->dwz)
		return -ENOMEM;
	return 0;
}

static void queue_fini(struct blk_queue *q)
{
	if (q->io && q->io->fini)
		q->io->fini(q);
	q->io = NULL;
	free(q->reqs);
	free(q->used);
	free(q->iov);
	free(q->vec);
	free(q->dwz);
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

	struct vio_blk_device *bd =
	    calloc(1, sizeof(*bd) + nq * sizeof(bd->q[0]));
	if (!bd) {
		set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	bd->fd = -1;
	bd->nq = nq;
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
	int r = open_image(cfg, bd, &bytes, &phys, err, errlen);
	if (r < 0) {
		free(bd);
		errno = -r;
		return NULL;
	}
	bd->capacity = bytes / SECTOR;

	for (unsigned i = 0; i < nq; i++) {
		if (queue_init(bd, &bd->q[i], i, qsize) < 0) {
			set_err(err, errlen, "out of memory");
			r = -ENOMEM;
			goto fail;
		}
	}
	pick_backend(bd, cfg, qsize);

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
	if (cfg->readonly) {
		vio_features_set(&f, VIRTIO_BLK_F_RO);
	} else {
		if (!cfg->no_discard)
			vio_features_set(&f, VIRTIO_BLK_F_DISCARD);
		if (!cfg->no_write_zeroes)
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
		queue_fini(&bd->q[i]);
	if (bd->fd >= 0)
		close(bd->fd);
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
	return bd->capacity;
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
	return bd->io->name;
}

int vio_blk_device_drain(struct vio_blk_device *bd, int timeout_ms)
{
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX
			   : vio_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int r = 0;

	__atomic_add_fetch(&bd->draining, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&bd->active, __ATOMIC_SEQ_CST) > 0) {
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
		queue_fini(&bd->q[i]);
	if (bd->fd >= 0)
		close(bd->fd);
	free(bd);
}
