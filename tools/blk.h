/* SPDX-License-Identifier: MIT */
/*
 * vio blk (tools/cmd_blk.c): what its files share.
 *
 *   blk_opts.c    usage texts, the global options and each verb's own
 *   blk_dev.c     opening the device (--socket: the vhost-user frontend;
 *                 --image: vio's blk device in this process) and binding
 *                 the driver; helpers of the verbs
 *   blk_io.c      info, read, write, verify
 *   blk_bench.c   bench (its latency histogram: hist.h)
 */
#ifndef VIO_TOOLS_BLK_H
#define VIO_TOOLS_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "devthread.h"

#define CMD "blk"
#define SECTOR 512u
#define CHUNK (1u << 20) /* bytes per read/write/verify step */

/* ---- options ---- */

enum verb { V_NONE, V_INFO, V_READ, V_WRITE, V_VERIFY, V_BENCH };

enum rw_mode { RW_RANDREAD, RW_RANDWRITE, RW_READ, RW_WRITE };
/* indexed by enum rw_mode */
extern const char *const blk_rw_names[4];

struct blk_opts {
	struct tool_conn conn; /* --socket, --timeout, --reconnect, --listen */
	const char *image;
	uint64_t size;
	unsigned queues, queue_size, queue_depth;
	bool readonly, no_packed, no_event_idx, no_indirect;

	enum verb verb;
	/* read / write */
	uint64_t offset, len;
	const char *file;
	/* verify */
	bool has_length;
	uint64_t seed;
	unsigned passes; /* 0: 1 */
	/* bench */
	enum rw_mode rw;
	uint64_t bs;
	unsigned iodepth, bench_queues;
	double secs;
	bool json;
	/* bench --move-to/--move-after: vio_frontend_move mid-run */
	const char *move_to;
	double move_after; /* seconds; 0: half of secs */
	/* bench --dirty-log: vio_frontend_dirty_log on for the run */
	bool dirty_log;
};

/*
 * The options before the verb, then the verb's own (argv[0] is the verb).
 * 0, -1 (--help was printed: exit 0) or TOOL_EXIT_USAGE (said why).
 */
int blk_parse_global(int argc, char **argv, struct blk_opts *o);
int blk_parse_verb(int argc, char **argv, struct blk_opts *o);

/* ---- the device and the driver ---- */

struct blk_ctx {
	struct vio_mem *mem;
	/* --image */
	struct vio_blk_device *bd;
	struct tool_devthread dt;
	/* --socket */
	struct vio_frontend *fe;

	struct vio_drvdev *vdev;
	struct vio_bus *bus;
	struct vio_driver *drv;
	bool added;
	struct vio_blk *b;
	const char *where; /* for messages: "PATH" */
};

/*
 * Open the device o names (--image: with want_queues queues) and bind the
 * driver: 0, or TOOL_EXIT_FAIL after saying why.  blk_close() either way.
 */
int blk_open(struct blk_ctx *c, const struct blk_opts *o, unsigned want_queues);
void blk_close(struct blk_ctx *c);
/* Zero-copy I/O buffer in the shared memory; message on failure. */
void *blk_shm_alloc(struct blk_ctx *c, size_t size);
/* offset must be sector-aligned and [offset, offset + len) inside the
 * device: 0, or TOOL_EXIT_FAIL after saying why. */
int blk_check_range(struct blk_ctx *c, uint64_t offset, uint64_t len);
/* "WHAT at offset O failed: reason"; returns TOOL_EXIT_FAIL. */
int blk_io_err(const char *what, uint64_t offset, int r);

/* ---- the verbs: an exit code each ---- */

int blk_do_info(struct blk_ctx *c, const struct blk_opts *o);
int blk_do_read(struct blk_ctx *c, const struct blk_opts *o);
int blk_do_write(struct blk_ctx *c, const struct blk_opts *o);
int blk_do_verify(struct blk_ctx *c, const struct blk_opts *o);
int blk_do_bench(struct blk_ctx *c, const struct blk_opts *o);

/* A 64-bit mixer (splitmix64's finalizer). */
uint64_t blk_mix64(uint64_t x);
/* verify's pattern: len bytes (a multiple of 8) for device offset pos. */
void blk_pattern_fill(uint64_t seed, uint64_t pos, uint8_t *buf, size_t len);

#endif
