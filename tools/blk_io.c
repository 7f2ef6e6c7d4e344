/* SPDX-License-Identifier: MIT */
/* vio blk: the verbs info, read, write and verify (tools/blk.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <vio/blk.h>
#include <vio/driver.h>
#include <vio/mem.h>

#include "blk.h"
#include "util.h"

/* ---- info ---- */

struct feature_name {
	unsigned bit;
	const char *name;
};

static const struct feature_name feature_names[] = {
    {VIRTIO_BLK_F_SIZE_MAX, "SIZE_MAX"},
    {VIRTIO_BLK_F_SEG_MAX, "SEG_MAX"},
    {VIRTIO_BLK_F_GEOMETRY, "GEOMETRY"},
    {VIRTIO_BLK_F_RO, "RO"},
    {VIRTIO_BLK_F_BLK_SIZE, "BLK_SIZE"},
    {VIRTIO_BLK_F_FLUSH, "FLUSH"},
    {VIRTIO_BLK_F_TOPOLOGY, "TOPOLOGY"},
    {VIRTIO_BLK_F_CONFIG_WCE, "CONFIG_WCE"},
    {VIRTIO_BLK_F_MQ, "MQ"},
    {VIRTIO_BLK_F_DISCARD, "DISCARD"},
    {VIRTIO_BLK_F_WRITE_ZEROES, "WRITE_ZEROES"},
    {VIRTIO_RING_F_INDIRECT_DESC, "INDIRECT_DESC"},
    {VIRTIO_RING_F_EVENT_IDX, "EVENT_IDX"},
    {VIRTIO_F_VERSION_1, "VERSION_1"},
    {VIRTIO_F_ACCESS_PLATFORM, "ACCESS_PLATFORM"},
    {VIRTIO_F_RING_PACKED, "RING_PACKED"},
    {VIRTIO_F_IN_ORDER, "IN_ORDER"},
    {VIRTIO_F_ORDER_PLATFORM, "ORDER_PLATFORM"},
};

static void print_size(const char *label, uint64_t bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	printf("%-18s %" PRIu64 " bytes", label, bytes);
	double v = (double)bytes;
	int u = -1;
	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	if (u >= 0)
		printf(" (%.*f %s)", v == (double)(uint64_t)v ? 0 : 1, v,
		       units[u]);
}

int blk_do_info(struct blk_ctx *c, const struct blk_opts *o)
{
	struct vio_blk_info in;
	vio_blk_get_info(c->b, &in);
	struct vio_features f;
	vio_drvdev_features(c->vdev, &f);

	printf("%-18s %s (%s)\n", "device", c->where,
	       o->conn.socket ? "vhost-user" : "in-process");
	printf("%-18s", "features");
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]);
	     i++)
		if (vio_features_has(&f, feature_names[i].bit))
			printf(" %s", feature_names[i].name);
	for (unsigned bit = 0; bit < VIO_FEATURE_BITS; bit++) {
		if (!vio_features_has(&f, bit))
			continue;
		bool known = false;
		for (size_t i = 0;
		     i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
			known |= feature_names[i].bit == bit;
		if (!known)
			printf(" bit%u", bit);
	}
	printf("\n");
	print_size("capacity", in.capacity * SECTOR);
	printf(", %" PRIu64 " sectors of 512\n", in.capacity);
	printf("%-18s %" PRIu32 "\n", "block size", in.blk_size);
	if (in.physical_block_exp || in.min_io_size || in.opt_io_size)
		printf("%-18s physical block %u, alignment offset %u, "
		       "min io %u, opt io %" PRIu32 " (blocks)\n",
		       "topology", SECTOR << in.physical_block_exp,
		       in.alignment_offset, in.min_io_size, in.opt_io_size);
	printf("%-18s %u in use of %u, %u descriptors, %u requests in "
	       "flight each\n",
	       "queues", in.num_queues, in.device_queues, in.queue_size,
	       in.queue_depth);
	printf("%-18s %s ring%s%s\n", "ring", in.packed ? "packed" : "split",
	       in.event_idx ? ", event_idx" : "",
	       in.indirect ? ", indirect" : "");
	printf("%-18s seg_max %" PRIu32 ", size_max ", "segments", in.seg_max);
	if (in.size_max)
		printf("%" PRIu32, in.size_max);
	else
		printf("none");
	printf(" (%zu bytes per request zero-copy, %zu copied)\n",
	       in.max_zc_bytes, in.max_copy_bytes);
	if (vio_blk_has_feature(c->b, VIRTIO_BLK_F_DISCARD))
		printf("%-18s max %" PRIu32 " sectors, %" PRIu32
		       " segments, alignment %" PRIu32 " sectors\n",
		       "discard", in.max_discard_sectors, in.max_discard_seg,
		       in.discard_sector_alignment);
	else
		printf("%-18s not supported\n", "discard");
	if (vio_blk_has_feature(c->b, VIRTIO_BLK_F_WRITE_ZEROES))
		printf("%-18s max %" PRIu32 " sectors, %" PRIu32
		       " segments, %s\n",
		       "write zeroes", in.max_write_zeroes_sectors,
		       in.max_write_zeroes_seg,
		       in.write_zeroes_may_unmap ? "may unmap" : "no unmap");
	else
		printf("%-18s not supported\n", "write zeroes");
	printf("%-18s %s\n", "flush",
	       vio_blk_has_feature(c->b, VIRTIO_BLK_F_FLUSH)
		   ? "yes"
		   : "no (writethrough)");
	printf("%-18s %s\n", "read-only",
	       vio_blk_readonly(c->b) ? "yes" : "no");

	char id[21];
	int r = vio_blk_get_id(c->b, 0, id);
	if (r == 0) {
		printf("%-18s ", "serial");
		for (const char *p = id; *p; p++)
			putchar(*p >= 0x20 && *p < 0x7f ? *p : '?');
		putchar('\n');
	} else {
		printf("%-18s unavailable (%s)\n", "serial",
		       r == -EOPNOTSUPP ? "GET_ID not supported"
					: strerror(-r));
	}
	if (c->bd)
		printf("%-18s %s\n", "backend", vio_blk_device_backend(c->bd));
	return TOOL_EXIT_OK;
}

/* ---- read / write ---- */

int blk_do_read(struct blk_ctx *c, const struct blk_opts *o)
{
	int ret = blk_check_range(c, o->offset, o->len);
	if (ret)
		return ret;
	bool to_stdout = !o->file || strcmp(o->file, "-") == 0;
	FILE *out = stdout;
	if (!to_stdout) {
		out = fopen(o->file, "wb");
		if (!out) {
			tool_err("%s: %s", o->file, strerror(errno));
			return TOOL_EXIT_FAIL;
		}
	}
	uint8_t *buf = blk_shm_alloc(c, CHUNK);
	if (!buf) {
		ret = TOOL_EXIT_FAIL;
		goto out;
	}
	for (uint64_t done = 0; done < o->len;) {
		size_t n =
		    o->len - done < CHUNK ? (size_t)(o->len - done) : CHUNK;
		/* a tail that is not a whole sector: read the sector (the
		 * capacity is whole sectors, so it is inside) */
		size_t rn = (n + SECTOR - 1) & ~(size_t)(SECTOR - 1);
		int r = vio_blk_read(c->b, 0, o->offset + done, buf, rn);
		if (r < 0) {
			ret = blk_io_err("read", o->offset + done, r);
			break;
		}
		if (fwrite(buf, 1, n, out) != n) {
			tool_err("%s: write failed: %s",
				 to_stdout ? "stdout" : o->file,
				 strerror(errno));
			ret = TOOL_EXIT_FAIL;
			break;
		}
		done += n;
	}
	vio_mem_release(c->mem, buf);
out:
	if (!to_stdout) {
		if (fclose(out) != 0 && ret == 0) {
			tool_err("%s: %s", o->file, strerror(errno));
			ret = TOOL_EXIT_FAIL;
		}
		if (ret == 0)
			printf("read %" PRIu64 " bytes at offset %" PRIu64
			       " to %s\n",
			       o->len, o->offset, o->file);
	} else if (fflush(stdout) != 0 && ret == 0) {
		tool_err("stdout: %s", strerror(errno));
		ret = TOOL_EXIT_FAIL;
	}
	return ret;
}

/* Fill buf with up to len bytes from f; the count, or -1 on error. */
static ssize_t read_full(FILE *f, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		size_t n = fread(buf + got, 1, len - got, f);
		if (n == 0)
			break;
		got += n;
	}
	return ferror(f) ? -1 : (ssize_t)got;
}

int blk_do_write(struct blk_ctx *c, const struct blk_opts *o)
{
	int ret = blk_check_range(c, o->offset, 0);
	if (ret)
		return ret;
	if (vio_blk_readonly(c->b)) {
		tool_err("%s: device is read-only", c->where);
		return TOOL_EXIT_FAIL;
	}
	bool from_stdin = !o->file || strcmp(o->file, "-") == 0;
	const char *name = from_stdin ? "stdin" : o->file;
	FILE *in = stdin;
	if (!from_stdin) {
		in = fopen(o->file, "rb");
		if (!in) {
			tool_err("%s: %s", o->file, strerror(errno));
			return TOOL_EXIT_FAIL;
		}
	}
	/* a regular file: refuse before writing anything */
	struct stat st;
	if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) {
		ret = blk_check_range(c, o->offset, (uint64_t)st.st_size);
		if (ret)
			goto out;
	}
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	uint8_t *buf = blk_shm_alloc(c, CHUNK);
	if (!buf) {
		ret = TOOL_EXIT_FAIL;
		goto out;
	}
	uint64_t done = 0;
	for (;;) {
		ssize_t n = read_full(in, buf, CHUNK);
		if (n < 0) {
			tool_err("%s: read failed: %s", name, strerror(errno));
			ret = TOOL_EXIT_FAIL;
			break;
		}
		if (n == 0)
			break;
		uint64_t off = o->offset + done;
		size_t wn = ((size_t)n + SECTOR - 1) & ~(size_t)(SECTOR - 1);
		if (wn > cap - off) {
			tool_err("%s goes past the capacity (%" PRIu64
				 " bytes) at offset %" PRIu64 ": %" PRIu64
				 " bytes written",
				 name, cap, cap, done);
			ret = TOOL_EXIT_FAIL;
			break;
		}
		if (wn != (size_t)n) {
			/* keep the rest of the last sector */
			uint8_t tail[SECTOR];
			size_t at = wn - SECTOR;
			int r = vio_blk_read(c->b, 0, off + at, tail, SECTOR);
			if (r < 0) {
				ret = blk_io_err("read", off + at, r);
				break;
			}
			memcpy(buf + n, tail + (n - at), wn - (size_t)n);
		}
		int r = vio_blk_write(c->b, 0, off, buf, wn);
		if (r < 0) {
			ret = blk_io_err("write", off, r);
			break;
		}
		done += (uint64_t)n;
		if ((size_t)n < CHUNK)
			break;
	}
	vio_mem_release(c->mem, buf);
	if (ret == 0) {
		int r = vio_blk_flush(c->b, 0);
		if (r < 0)
			ret = blk_io_err("flush", o->offset, r);
	}
	if (ret == 0)
		printf("wrote %" PRIu64 " bytes at offset %" PRIu64 "\n", done,
		       o->offset);
out:
	if (!from_stdin)
		fclose(in);
	return ret;
}

/* ---- verify ---- */

uint64_t blk_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* The pattern's 8 bytes at absolute device offset pos (a multiple of 8). */
static uint64_t pattern_word(uint64_t seed, uint64_t pos)
{
	return blk_mix64(seed * 0x9e3779b97f4a7c15ull + (pos >> 3) + 1);
}

void blk_pattern_fill(uint64_t seed, uint64_t pos, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = pattern_word(seed, pos + i);
		memcpy(buf + i, &w, 8);
	}
}

/*
 * One chunk of verify: op on [off, off + n) through buf, as depth
 * requests in flight at once (each a multiple of 512 bytes, the last
 * takes the rest).  0 or the first request's error.
 */
static int chunk_io(struct blk_ctx *c, int op, uint64_t off, uint8_t *buf,
		    size_t n, unsigned depth)
{
	if (depth <= 1)
		return op == VIO_BLK_OP_READ
			   ? vio_blk_read(c->b, 0, off, buf, n)
			   : vio_blk_write(c->b, 0, off, buf, n);
	struct vio_blk_req req[64];
	if (depth > 64)
		depth = 64;
	size_t each = n / depth / SECTOR * SECTOR;
	if (each == 0) {
		each = SECTOR;
		depth = (unsigned)(n / SECTOR);
	}
	unsigned sent = 0;
	int err = 0;
	for (unsigned i = 0; i < depth; i++) {
		size_t at = i * each;
		req[i] = (struct vio_blk_req){
		    .op = op,
		    .offset = off + at,
		    .buf = buf + at,
		    .len = i + 1 < depth ? each : n - at,
		};
		int r = vio_blk_submit(c->b, 0, &req[i]);
		if (r < 0) {
			err = r;
			break;
		}
		sent++;
	}
	struct vio_blk_req *done[64];
	for (unsigned got = 0; got < sent;) {
		int r = vio_blk_poll(c->b, 0, done, 64, -1);
		if (r < 0)
			return err ? err : r;
		for (int k = 0; k < r; k++)
			if (done[k]->result < 0 && !err)
				err = done[k]->result;
		got += (unsigned)r;
	}
	return err;
}

/* One verify pass with seed over [o->offset, +len): 0 or TOOL_EXIT_FAIL
 * (said why). */
static int verify_pass(struct blk_ctx *c, const struct blk_opts *o,
		       uint64_t seed, uint64_t len, uint8_t *buf, uint8_t *want)
{
	double t0 = tool_now();
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		blk_pattern_fill(seed, o->offset + done, buf, n);
		int r = chunk_io(c, VIO_BLK_OP_WRITE, o->offset + done, buf, n,
				 o->iodepth);
		if (r < 0) {
			return blk_io_err("write", o->offset + done, r);
		}
		done += n;
	}
	int r = vio_blk_flush(c->b, 0);
	if (r < 0) {
		return blk_io_err("flush", o->offset, r);
	}
	uint64_t first = UINT64_MAX, bad_sectors = 0;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		memset(buf, 0, n);
		r = chunk_io(c, VIO_BLK_OP_READ, o->offset + done, buf, n,
			     o->iodepth);
		if (r < 0) {
			return blk_io_err("read", o->offset + done, r);
		}
		blk_pattern_fill(seed, o->offset + done, want, n);
		for (size_t s = 0; s < n; s += SECTOR) {
			if (memcmp(buf + s, want + s, SECTOR) == 0)
				continue;
			bad_sectors++;
			if (first != UINT64_MAX)
				continue;
			size_t k = s;
			while (buf[k] == want[k])
				k++;
			first = o->offset + done + k;
			tool_err("verify: mismatch at offset %" PRIu64
				 ": expected 0x%02x, got 0x%02x",
				 first, want[k], buf[k]);
		}
		done += n;
	}
	double secs = tool_now() - t0;
	if (bad_sectors) {
		tool_err("verify: %" PRIu64 " of %" PRIu64
			 " sectors differ; first mismatch at offset %" PRIu64,
			 bad_sectors, len / SECTOR, first);
		return TOOL_EXIT_FAIL;
	}
	printf("verified %" PRIu64 " bytes at offset %" PRIu64 " (seed %" PRIu64
	       "): ok, %.1f MiB/s\n",
	       len, o->offset, seed,
	       secs > 0 ? 2.0 * (double)len / (1 << 20) / secs : 0.0);
	fflush(stdout);
	return 0;
}

int blk_do_verify(struct blk_ctx *c, const struct blk_opts *o)
{
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	uint64_t len = o->len;
	if (!o->has_length)
		len = o->offset <= cap ? cap - o->offset : 0;
	if (len % SECTOR) {
		tool_err("length %" PRIu64 " is not a multiple of 512", len);
		return TOOL_EXIT_FAIL;
	}
	int ret = blk_check_range(c, o->offset, len ? len : 1);
	if (ret)
		return ret;
	if (vio_blk_readonly(c->b)) {
		tool_err("%s: device is read-only", c->where);
		return TOOL_EXIT_FAIL;
	}
	uint8_t *buf = blk_shm_alloc(c, CHUNK);
	uint8_t *want = malloc(CHUNK);
	if (!buf || !want) {
		if (!want)
			tool_err("out of memory");
		ret = TOOL_EXIT_FAIL;
		goto out;
	}
	unsigned passes = o->passes ? o->passes : 1;
	for (unsigned pass = 0; pass < passes && !ret; pass++)
		ret = verify_pass(c, o, o->seed + pass, len, buf, want);
out:
	free(want);
	vio_mem_release(c->mem, buf);
	return ret;
}
