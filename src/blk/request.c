/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, the device side: one request (VIRTIO 1.2 5.2.6), from a
 * popped chain to either an answer or an I/O described for the backend.
 *
 * Request layout: struct virtio_blk_outhdr (16 readable bytes), data
 * (readable for OUT, writable for IN), one writable status byte, the
 * chain's last writable byte.  Any split of these over descriptors is
 * legal (2.6.4).  The header is copied once and every field checked
 * before use; data is never copied: the chain's segments become the
 * iovecs of preadv/pwritev (or io_uring READV/WRITEV).  DISCARD and
 * WRITE_ZEROES payloads are copied once, all checked, then executed.
 * Nothing here trusts the driver: a bad request gets IOERR or UNSUPP (or,
 * without a status byte, used length 0) and a rate-limited log line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <endian.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>

#include "blk/blk_internal.h"

static void req_answer(struct blk_req *req, uint8_t status, uint32_t data)
{
	if (!req->status)
		return; /* unanswerable: result stays IOERR */
	*req->status = status;
	req->result = status;
	req->used_len = data + 1;
}

void blk_req_done(struct blk_queue *q, struct blk_req *req, int err)
{
	if (err) {
		vio_log_limited(
		    &q->rl, "%s q%u: I/O error at byte %llu: %s", q->bd->name,
		    q->idx, (unsigned long long)req->offset, strerror(-err));
		req_answer(req, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	req_answer(req, VIRTIO_BLK_S_OK,
		   req->op == BLK_OP_READ ? (uint32_t)req->len : 0);
}

/* A request the driver got wrong: answered, logged (rate-limited). */
static void req_bad(struct blk_queue *q, struct blk_req *req, uint8_t status,
		    const char *why)
{
	vio_log_limited(&q->rl, "%s q%u: driver error: %s", q->bd->name, q->idx,
			why);
	req_answer(req, status, 0);
}

/* [sector, sector + bytes / 512) inside the disk, without overflow. */
static bool range_ok(const struct vio_blk_device *bd, uint64_t sector,
		     uint64_t bytes)
{
	/* one load: a live resize (resize.c) may grow it meanwhile */
	uint64_t cap = __atomic_load_n(&bd->capacity, __ATOMIC_ACQUIRE);
	return sector <= cap && bytes <= (cap - sector) * (uint64_t)SECTOR;
}

/*
 * Describe len bytes of seg[], starting skip bytes in, as iovecs in vec
 * (which has room for nseg).  Enforces seg_max and size_max (5.2.4: the
 * driver must not exceed them) per descriptor, as the spec means them:
 * a descriptor that crossed a region boundary arrives as several pieces
 * (the later ones marked cont by vio_vq_pop) and is still one segment of
 * its whole length.  Only the descriptors holding data bytes count, and
 * only their data bytes (a header or status byte sharing a descriptor is
 * not data).  NULL or the reason.
 */
static const char *map_data(const struct vio_blk_device *bd,
			    const struct vio_iov *seg, unsigned nseg,
			    uint64_t skip, uint64_t len, struct iovec *vec,
			    unsigned *cnt)
{
	unsigned n = 0, ndesc = 0;
	uint64_t dlen = 0; /* data bytes of the current descriptor */
	for (unsigned i = 0; i < nseg && len; i++) {
		uint64_t sl = seg[i].len;
		if (!seg[i].cont)
			dlen = 0; /* a new descriptor */
		if (skip >= sl) {
			skip -= sl;
			continue;
		}
		uint8_t *p = (uint8_t *)seg[i].base + skip;
		sl -= skip;
		skip = 0;
		if (sl > len)
			sl = len;
		/* sl > 0 here: the first data piece of a descriptor has
		 * dlen 0, its later pieces not */
		if (dlen == 0 && ++ndesc > bd->seg_max)
			return "more data segments than seg_max";
		dlen += sl;
		if (dlen > bd->size_max)
			return "data segment larger than size_max";
		vec[n].iov_base = p;
		vec[n].iov_len = (size_t)sl;
		n++;
		len -= sl;
	}
	*cnt = n;
	return NULL;
}

/* IN (write == false) or OUT: check, then describe for the backend. */
static void req_rw(struct blk_queue *q, struct blk_req *req,
		   const struct vio_chain *c, struct iovec *vec,
		   uint64_t sector, bool write, const struct blk_neg *neg)
{
	struct vio_blk_device *bd = q->bd;
	uint32_t out_data = c->out_len - sizeof(struct virtio_blk_outhdr);
	uint32_t in_data = c->in_len - 1;
	uint32_t len = write ? out_data : in_data;
	const char *why;

	if (write ? in_data != 0 : out_data != 0) {
		req_bad(q, req, VIRTIO_BLK_S_IOERR,
			write ? "OUT request with writable data"
			      : "IN request with readable data");
		return;
	}
	if (len % SECTOR) {
		req_bad(q, req, VIRTIO_BLK_S_IOERR,
			"data length not a multiple of 512");
		return;
	}
	if (!range_ok(bd, sector, len)) {
		req_bad(q, req, VIRTIO_BLK_S_IOERR,
			"sector range past the end of the disk");
		return;
	}
	if (write)
		why = map_data(bd, c->out, c->nr_out,
			       sizeof(struct virtio_blk_outhdr), len, vec,
			       &req->iovcnt);
	else
		why = map_data(bd, c->in, c->nr_in, 0, len, vec, &req->iovcnt);
	if (why) {
		req_bad(q, req, VIRTIO_BLK_S_IOERR, why);
		return;
	}
	if (len == 0) { /* nothing to move: done */
		req_answer(req, VIRTIO_BLK_S_OK, 0);
		return;
	}
	req->op = write ? BLK_OP_WRITE : BLK_OP_READ;
	req->writethrough = write && neg->writethrough;
	req->iov = vec;
	req->offset = sector * SECTOR;
	req->len = len;
}

static int do_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	while (fallocate(fd, mode, (off_t)off, (off_t)len) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int write_zeroes_by_hand(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zero[64 << 10];
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		ssize_t w = pwrite(fd, zero, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static bool not_supported(int r)
{
	return r == -EOPNOTSUPP || r == -ENOTTY || r == -EINVAL || r == -ENOSYS;
}

/* Deallocate a range: a hint (5.2.6.2), so "not supported" is success. */
static int exec_discard(struct vio_blk_device *bd, uint64_t off, uint64_t len)
{
	int r;
	if (bd->is_blkdev) {
		uint64_t range[2] = {off, len};
		r = ioctl(bd->fd, BLKDISCARD, range) < 0 ? -errno : 0;
	} else {
		r = do_fallocate(bd->fd,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 off, len);
	}
	return not_supported(r) ? 0 : r;
}

/* Zero a range; unmap lets it deallocate too (5.2.6.2). */
static int exec_write_zeroes(struct vio_blk_device *bd, uint64_t off,
			     uint64_t len, bool unmap)
{
	int r = -EOPNOTSUPP;
	if (unmap) /* a hole reads as zeroes, on files and block devices */
		r = do_fallocate(bd->fd,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 off, len);
	if (not_supported(r))
		r = do_fallocate(bd->fd,
				 FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				 off, len);
	if (not_supported(r))
		r = write_zeroes_by_hand(bd->fd, off, len);
	return r;
}

static int datasync(int fd)
{
	while (fdatasync(fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * DISCARD / WRITE_ZEROES (5.2.6): the readable payload after the header is
 * an array of struct virtio_blk_discard_write_zeroes.  It is copied once
 * into the queue's buffer, every segment is checked, and only then are
 * they executed (synchronously: they are rare and fallocate is one call).
 */
static void req_dwz(struct blk_queue *q, struct blk_req *req,
		    struct vio_cursor *cur, const struct vio_chain *c, bool wz,
		    const struct blk_neg *neg)
{
	struct vio_blk_device *bd = q->bd;
	struct virtio_blk_discard_write_zeroes *seg = q->dwz;
	uint32_t out_data = c->out_len - sizeof(struct virtio_blk_outhdr);
	const size_t one = sizeof(struct virtio_blk_discard_write_zeroes);

	if (c->in_len != 1) {
		req_bad(q, req, VIRTIO_BLK_S_IOERR,
			"DISCARD/WRITE_ZEROES with writable data");
		return;
	}
	if (out_data == 0 || out_data % one) {
		req_bad(q, req, VIRTIO_BLK_S_IOERR,
			"DISCARD/WRITE_ZEROES payload not a multiple of 16");
		return;
	}
	uint32_t n = out_data / (uint32_t)one;
	if (n > bd->dwz_seg) {
		req_bad(q, req, VIRTIO_BLK_S_UNSUPP,
			"more DISCARD/WRITE_ZEROES segments than allowed");
		return;
	}
	if (vio_cursor_read(cur, seg, n * one) != n * one) {
		req_answer(req, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t sector = le64toh(seg[i].sector);
		uint32_t num = le32toh(seg[i].num_sectors);
		uint32_t flags = le32toh(seg[i].flags);
		/* 5.2.6.2: unknown flags, or unmap on a discard: UNSUPP */
		uint32_t known = wz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
		if (flags & ~known) {
			req_bad(q, req, VIRTIO_BLK_S_UNSUPP,
				"DISCARD/WRITE_ZEROES with unsupported flags");
			return;
		}
		if (num > BLK_DWZ_MAX_SECTORS) {
			req_bad(q, req, VIRTIO_BLK_S_IOERR,
				"DISCARD/WRITE_ZEROES segment longer than the "
				"maximum");
			return;
		}
		if (!range_ok(bd, sector, (uint64_t)num * SECTOR)) {
			req_bad(
			    q, req, VIRTIO_BLK_S_IOERR,
			    "DISCARD/WRITE_ZEROES past the end of the disk");
			return;
		}
	}
	if (bd->backend) {
		/* a network image: one range (max_discard_seg 1), executed
		 * by the backend like a write */
		uint64_t len = (uint64_t)le32toh(seg[0].num_sectors) * SECTOR;
		if (len == 0) {
			req_answer(req, VIRTIO_BLK_S_OK, 0);
			return;
		}
		req->op = wz ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
		req->offset = le64toh(seg[0].sector) * SECTOR;
		req->len = len;
		req->unmap = wz && (le32toh(seg[0].flags) &
				    VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		req->writethrough = neg->writethrough;
		req->iovcnt = 0;
		return;
	}
	int r = 0;
	for (uint32_t i = 0; i < n && r == 0; i++) {
		uint64_t off = le64toh(seg[i].sector) * SECTOR;
		uint64_t len = (uint64_t)le32toh(seg[i].num_sectors) * SECTOR;
		bool unmap =
		    le32toh(seg[i].flags) & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		if (len == 0)
			continue;
		r = wz ? exec_write_zeroes(bd, off, len, unmap)
		       : exec_discard(bd, off, len);
		req->offset = off;
	}
	if (r == 0 && neg->writethrough)
		r = datasync(bd->fd);
	blk_req_done(q, req, r);
}

static void req_reset(struct blk_req *req, const struct vio_chain *c,
		      struct iovec *vec)
{
	req->head = c->head;
	req->used_len = 0;
	req->status = NULL;
	req->op = BLK_OP_NONE;
	req->result = VIRTIO_BLK_S_IOERR;
	req->writethrough = false;
	req->unmap = false;
	req->iov = vec;
	req->iovcnt = 0;
	req->offset = req->len = req->done = 0;
	req->pending = 0;
	req->err = 0;
	req->heap_vec = NULL;
}

void blk_req_too_long(struct blk_queue *q, struct blk_req *req,
		      const struct vio_chain *c)
{
	req_reset(req, c, NULL);
	if (c->nr_in) {
		const struct vio_iov *last = &c->in[c->nr_in - 1];
		req->status = (uint8_t *)last->base + last->len - 1;
	}
	char why[96];
	snprintf(why, sizeof(why),
		 "request of %u+%u descriptors needs more than %u segments",
		 c->nd_out, c->nd_in, q->chain_max);
	req_bad(q, req, VIRTIO_BLK_S_IOERR, why);
}

void blk_req_start(struct blk_queue *q, struct blk_req *req,
		   const struct vio_chain *c, struct iovec *vec,
		   const struct blk_neg *neg)
{
	struct vio_blk_device *bd = q->bd;

	req_reset(req, c, vec);

	/* 5.2.6: the status byte is the last writable byte; without one
	 * the request cannot be answered at all */
	if (c->in_len == 0) {
		vio_log_limited(&q->rl,
				"%s q%u: driver error: request without a "
				"writable status byte",
				bd->name, q->idx);
		return; /* pushed with length 0 */
	}
	const struct vio_iov *last = &c->in[c->nr_in - 1];
	req->status = (uint8_t *)last->base + last->len - 1;

	struct virtio_blk_outhdr hdr;
	struct vio_cursor cur;
	vio_cursor_init(&cur, c->out, c->nr_out);
	if (vio_cursor_read(&cur, &hdr, sizeof(hdr)) != sizeof(hdr)) {
		req_bad(q, req, VIRTIO_BLK_S_IOERR,
			"request header shorter than 16 bytes");
		return;
	}
	uint32_t type = le32toh(hdr.type);
	uint64_t sector = le64toh(hdr.sector);
	uint32_t out_data = c->out_len - sizeof(hdr);
	uint32_t in_data = c->in_len - 1;

	switch (type) {
	case VIRTIO_BLK_T_IN:
		req_rw(q, req, c, vec, sector, false, neg);
		break;
	case VIRTIO_BLK_T_OUT:
		if (bd->readonly) /* 5.2.6.2: and write nothing */
			req_answer(req, VIRTIO_BLK_S_IOERR, 0);
		else
			req_rw(q, req, c, vec, sector, true, neg);
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (out_data || in_data)
			req_bad(q, req, VIRTIO_BLK_S_IOERR,
				"FLUSH request with data");
		else
			req->op = BLK_OP_FLUSH;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		if (out_data) {
			req_bad(q, req, VIRTIO_BLK_S_IOERR,
				"GET_ID request with readable data");
			break;
		}
		/* up to 20 bytes, not NUL-terminated if all 20 are used */
		struct vio_cursor w;
		vio_cursor_init(&w, c->in, c->nr_in);
		size_t n = in_data < sizeof(bd->id) ? in_data : sizeof(bd->id);
		vio_cursor_write(&w, bd->id, n);
		req_answer(req, VIRTIO_BLK_S_OK, (uint32_t)n);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool wz = type == VIRTIO_BLK_T_WRITE_ZEROES;
		if (bd->readonly)
			req_answer(req, VIRTIO_BLK_S_IOERR, 0);
		else if (!(wz ? neg->write_zeroes : neg->discard))
			req_bad(q, req, VIRTIO_BLK_S_UNSUPP,
				"DISCARD/WRITE_ZEROES not negotiated");
		else
			req_dwz(q, req, &cur, c, wz, neg);
		break;
	}
	default:
		req_answer(req, VIRTIO_BLK_S_UNSUPP, 0);
		break;
	}
}
