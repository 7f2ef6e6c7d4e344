/* SPDX-License-Identifier: MIT */
/*
 * vio blk: drive a virtio-blk device with vio's blk driver.
 *
 * The device is either a vhost-user backend behind a Unix socket (vio
 * serve blk, qemu-storage-daemon, ...), reached through the vhost-user
 * frontend, or an image file served in this process by vio's own blk
 * device over the in-process transport (the device on a thread of its
 * own).  Either way the driver is bound by a bus and the verbs use its
 * public API only:
 *
 *   info     what probe found (features, capacity, limits, serial)
 *   read     bytes from the device to a file or stdout
 *   write    bytes from a file or stdin to the device
 *   verify   write a seeded pattern, flush, read it back, compare
 *   bench    fio-like load through the asynchronous API, one thread per
 *            queue, zero-copy buffers, a latency histogram per thread
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/inproc.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

#include "cmds.h"
#include "util.h"

#define CMD "blk"
#define SECTOR 512u
#define CHUNK (1u << 20) /* bytes per read/write/verify step */

/* ---- usage ---- */

static void blk_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vio blk (--socket PATH | --image FILE) [options] VERB "
	    "[args]\n\n"
	    "Drive a virtio-blk device with vio's driver: a vhost-user "
	    "backend at PATH\n(vio serve blk, qemu-storage-daemon, ...), "
	    "or FILE served by vio's blk\ndevice in this process "
	    "(in-process transport).\n\n"
	    "verbs:\n"
	    "  info                         features, capacity, limits, "
	    "serial\n"
	    "  read OFFSET LEN [-o FILE]    read to FILE (default stdout)\n"
	    "  write OFFSET [-i FILE]       write FILE (default stdin)\n"
	    "  verify [--offset O] [--length L] [--seed S]\n"
	    "                               write a pattern, flush, read "
	    "back, compare\n"
	    "  bench [--rw MODE] [--bs N] [--iodepth N] [--queues N] "
	    "[--time T] [--json]\n"
	    "                               measure IOPS, bandwidth and "
	    "latency\n"
	    "'vio blk VERB --help' tells more.  Sizes and offsets take "
	    "suffixes K, M, G, T\n(x1024).\n\n"
	    "options:\n"
	    "  --socket PATH      connect to a vhost-user-blk backend\n"
	    "  --timeout MS       keep retrying the connection for MS ms "
	    "(default 0)\n"
	    "  --image FILE       serve FILE in this process\n"
	    "  --size SIZE        with --image: create FILE with SIZE bytes "
	    "if missing\n"
	    "                     (an existing FILE must have this size)\n"
	    "  --readonly         with --image: a read-only device\n"
	    "  --queues N         queues to set up, 1..%u (default: all the "
	    "device has;\n"
	    "                     --image: the device gets N, default 1)\n"
	    "  --queue-size N     descriptors per queue (default: the "
	    "device's maximum)\n"
	    "  --queue-depth N    requests in flight per queue in the driver "
	    "(default 32;\n"
	    "                     bench: at least --iodepth)\n"
	    "  --no-packed        do not use packed rings\n"
	    "  --no-event-idx     do not use VIRTIO_RING_F_EVENT_IDX\n"
	    "  --no-indirect      do not use indirect descriptors\n"
	    "  -h, --help         this help\n\n"
	    "Exit status: 0 ok, 1 the work failed (I/O error, mismatch, "
	    "no device), 2 bad\ncommand line.\n",
	    VIO_MAX_QUEUES);
}

static void info_usage(FILE *f)
{
	fprintf(f, "usage: vio blk (--socket PATH | --image FILE) info\n\n"
		   "Print what the driver found: negotiated features, "
		   "capacity, block size,\nqueues, segment limits, discard "
		   "and write-zeroes limits, read-only, and\nthe serial "
		   "(VIRTIO_BLK_T_GET_ID).\n");
}

static void read_usage(FILE *f)
{
	fprintf(f,
		"usage: vio blk (--socket PATH | --image FILE) read OFFSET "
		"LEN [-o FILE]\n\n"
		"Read LEN bytes at OFFSET (a multiple of 512) and write them "
		"to FILE\n(default: stdout).  Sizes take suffixes K, M, G, "
		"T.\n\n"
		"  -o, --output FILE   where the bytes go ('-': stdout)\n");
}

static void write_usage(FILE *f)
{
	fprintf(f, "usage: vio blk (--socket PATH | --image FILE) write OFFSET "
		   "[-i FILE]\n\n"
		   "Write the bytes of FILE (default: stdin) at OFFSET (a "
		   "multiple of 512),\nthen flush.  A length that is not a "
		   "multiple of 512 keeps the rest of its\nlast sector.\n\n"
		   "  -i, --input FILE    where the bytes come from ('-': "
		   "stdin)\n");
}

static void verify_usage(FILE *f)
{
	fprintf(f,
		"usage: vio blk (--socket PATH | --image FILE) verify "
		"[--offset O] [--length L]\n"
		"              [--seed S]\n\n"
		"Overwrite [O, O+L) with a pattern derived from S and each "
		"byte's position,\nflush, read it back and compare; report "
		"the first mismatch.  DESTROYS the\ndata in that range.\n\n"
		"  --offset O   start, a multiple of 512 (default 0)\n"
		"  --length L   bytes, a multiple of 512 (default: up to the "
		"capacity)\n"
		"  --seed S     pattern seed (default 1)\n");
}

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: vio blk (--socket PATH | --image FILE) bench [--rw "
		"MODE] [--bs N]\n"
		"              [--iodepth N] [--queues N] [--time T] "
		"[--json]\n\n"
		"Keep --iodepth requests in flight on each of --queues "
		"queues (one thread\neach, asynchronous API, zero-copy "
		"buffers) for --time, then print IOPS,\nMiB/s and the "
		"latency percentiles.  Writes DESTROY data.  Ctrl-C ends "
		"the\nrun early and still reports.\n\n"
		"  --rw MODE      randread (default), randwrite, read, write "
		"(sequential:\n"
		"                 each queue walks its own slice of the "
		"device)\n"
		"  --bs N         bytes per request, a multiple of 512 "
		"(default 4k)\n"
		"  --iodepth N    requests in flight per queue, 1..4096 "
		"(default 32)\n"
		"  --queues N     queues to drive (default: every queue set "
		"up)\n"
		"  --time T       duration: 10, 10s, 500ms, 2m (default 10s)\n"
		"  --json         one JSON object on stdout instead of the "
		"text report\n");
}

/* ---- options ---- */

enum verb { V_NONE, V_INFO, V_READ, V_WRITE, V_VERIFY, V_BENCH };

enum rw_mode { RW_RANDREAD, RW_RANDWRITE, RW_READ, RW_WRITE };
static const char *const rw_names[] = {"randread", "randwrite", "read",
				       "write"};

struct blk_opts {
	const char *socket, *image;
	uint64_t size;
	int timeout_ms;
	unsigned queues, queue_size, queue_depth;
	bool readonly, no_packed, no_event_idx, no_indirect;

	enum verb verb;
	/* read / write */
	uint64_t offset, len;
	const char *file;
	/* verify */
	bool has_length;
	uint64_t seed;
	/* bench */
	enum rw_mode rw;
	uint64_t bs;
	unsigned iodepth, bench_queues;
	double secs;
	bool json;
};

/* The command for usage errors: "blk", then "blk VERB". */
static const char *ucmd = CMD;

static int bad_size(const char *what, const char *s, int r)
{
	if (r == -ERANGE)
		return tool_usage_err(ucmd, "%s: '%s' is too large", what, s);
	return tool_usage_err(
	    ucmd, "%s: '%s' is not a byte count (e.g. 4k, 1M)", what, s);
}

static int parse_uint_opt(const char *what, const char *s, uint64_t min,
			  uint64_t max, uint64_t *out)
{
	if (tool_parse_uint(s, min, max, out) < 0)
		return tool_usage_err(ucmd,
				      "%s: '%s' is not a number in "
				      "%" PRIu64 "..%" PRIu64,
				      what, s, min, max);
	return 0;
}

/* "10", "10s", "1.5s", "500ms", "2m": seconds in (0, 1 day]. */
static int parse_duration(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v > 0) || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		v /= 1000.0;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		v *= 60.0;
	else if (strcmp(end, "h") == 0)
		v *= 3600.0;
	else if (*end && strcmp(end, "s") != 0)
		return -EINVAL;
	if (!(v > 0) || v > 86400.0)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_global(int argc, char **argv, struct blk_opts *o)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 'S'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"image", required_argument, NULL, 'I'},
	    {"size", required_argument, NULL, 'z'},
	    {"readonly", no_argument, NULL, 'r'},
	    {"queues", required_argument, NULL, 'q'},
	    {"queue-size", required_argument, NULL, 's'},
	    {"queue-depth", required_argument, NULL, 'd'},
	    {"no-packed", no_argument, NULL, 'P'},
	    {"no-event-idx", no_argument, NULL, 'E'},
	    {"no-indirect", no_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, r;

	opterr = 0;
	optind = 0;
	/* '+': stop at the verb; its options are its own */
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			o->socket = optarg;
			break;
		case 'T':
			if ((r = parse_uint_opt("--timeout", optarg, 0,
						86400000, &v)))
				return r;
			o->timeout_ms = (int)v;
			break;
		case 'I':
			o->image = optarg;
			break;
		case 'z':
			r = tool_parse_size(optarg, &v);
			if (r < 0)
				return bad_size("--size", optarg, r);
			if (v == 0 || v % SECTOR)
				return tool_usage_err(
				    CMD,
				    "--size: '%s' is not a non-zero "
				    "multiple of 512 bytes",
				    optarg);
			o->size = v;
			break;
		case 'r':
			o->readonly = true;
			break;
		case 'q':
			if ((r = parse_uint_opt("--queues", optarg, 1,
						VIO_MAX_QUEUES, &v)))
				return r;
			o->queues = (unsigned)v;
			break;
		case 's':
			if ((r = parse_uint_opt("--queue-size", optarg, 4,
						VIO_VQ_MAX_SIZE, &v)))
				return r;
			o->queue_size = (unsigned)v;
			break;
		case 'd':
			if ((r = parse_uint_opt("--queue-depth", optarg, 1,
						VIO_VQ_MAX_SIZE, &v)))
				return r;
			o->queue_depth = (unsigned)v;
			break;
		case 'P':
			o->no_packed = true;
			break;
		case 'E':
			o->no_event_idx = true;
			break;
		case 'N':
			o->no_indirect = true;
			break;
		case 'h':
			blk_usage(stdout);
			return -1;
		default:
			return tool_getopt_err(CMD, c, argv);
		}
	}
	return 0;
}

/* The verb's own options and arguments: argv[0] is the verb. */
static int parse_verb(int argc, char **argv, struct blk_opts *o)
{
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"input", required_argument, NULL, 'i'},
	    {"offset", required_argument, NULL, 'O'},
	    {"length", required_argument, NULL, 'L'},
	    {"seed", required_argument, NULL, 'x'},
	    {"rw", required_argument, NULL, 'w'},
	    {"bs", required_argument, NULL, 'b'},
	    {"iodepth", required_argument, NULL, 'D'},
	    {"queues", required_argument, NULL, 'q'},
	    {"time", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* which options each verb takes */
	static const char *const allowed[] = {
	    [V_INFO] = "",	[V_READ] = "o",	      [V_WRITE] = "i",
	    [V_VERIFY] = "OLx", [V_BENCH] = "wbDqtj",
	};
	static void (*const usage[])(FILE *) = {
	    [V_INFO] = info_usage,   [V_READ] = read_usage,
	    [V_WRITE] = write_usage, [V_VERIFY] = verify_usage,
	    [V_BENCH] = bench_usage,
	};
	const char *name = argv[0];
	if (strcmp(name, "info") == 0)
		o->verb = V_INFO;
	else if (strcmp(name, "read") == 0)
		o->verb = V_READ;
	else if (strcmp(name, "write") == 0)
		o->verb = V_WRITE;
	else if (strcmp(name, "verify") == 0)
		o->verb = V_VERIFY;
	else if (strcmp(name, "bench") == 0)
		o->verb = V_BENCH;
	else
		return tool_usage_err(ucmd,
				      "unknown verb '%s' (info, read, write, "
				      "verify, bench)",
				      name);

	static char vcmd[32];
	snprintf(vcmd, sizeof(vcmd), "%s %s", CMD, name);
	ucmd = vcmd;

	uint64_t v;
	int c, r;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":ho:i:", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage[o->verb](stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return tool_getopt_err(ucmd, c, argv);
		if (!strchr(allowed[o->verb], c)) {
			const char *opt = "?";
			for (const struct option *lo = longopts; lo->name; lo++)
				if (lo->val == c)
					opt = lo->name;
			return tool_usage_err(ucmd, "%s takes no option --%s",
					      name, opt);
		}
		switch (c) {
		case 'o':
		case 'i':
			o->file = optarg;
			break;
		case 'O':
			r = tool_parse_size(optarg, &o->offset);
			if (r < 0)
				return bad_size("--offset", optarg, r);
			break;
		case 'L':
			r = tool_parse_size(optarg, &o->len);
			if (r < 0)
				return bad_size("--length", optarg, r);
			o->has_length = true;
			break;
		case 'x':
			if ((r = parse_uint_opt("--seed", optarg, 0, UINT64_MAX,
						&o->seed)))
				return r;
			break;
		case 'w': {
			bool found = false;
			for (unsigned k = 0; k < 4; k++)
				if (strcmp(optarg, rw_names[k]) == 0) {
					o->rw = (enum rw_mode)k;
					found = true;
				}
			if (!found)
				return tool_usage_err(
				    ucmd,
				    "--rw: '%s' is not one of randread, "
				    "randwrite, read, write",
				    optarg);
			break;
		}
		case 'b':
			r = tool_parse_size(optarg, &v);
			if (r < 0)
				return bad_size("--bs", optarg, r);
			if (v == 0 || v % SECTOR || v > (64u << 20))
				return tool_usage_err(
				    ucmd,
				    "--bs: '%s' is not a multiple of 512 "
				    "bytes in 512..64M",
				    optarg);
			o->bs = v;
			break;
		case 'D':
			if ((r = parse_uint_opt("--iodepth", optarg, 1, 4096,
						&v)))
				return r;
			o->iodepth = (unsigned)v;
			break;
		case 'q':
			if ((r = parse_uint_opt("bench --queues", optarg, 1,
						VIO_MAX_QUEUES, &v)))
				return r;
			o->bench_queues = (unsigned)v;
			break;
		case 't':
			r = parse_duration(optarg, &o->secs);
			if (r < 0)
				return tool_usage_err(
				    ucmd,
				    "--time: '%s' is not a duration in "
				    "(0, 24h] (e.g. 10s, 500ms, 2m)",
				    optarg);
			break;
		case 'j':
			o->json = true;
			break;
		}
	}
	char **pos = argv + optind;
	int npos = argc - optind;
	int want = o->verb == V_READ ? 2 : o->verb == V_WRITE ? 1 : 0;
	if (npos > want)
		return tool_usage_err(ucmd, "%s: unexpected argument '%s'",
				      name, pos[want]);
	if (npos < want)
		return tool_usage_err(ucmd, "%s: missing %s", name,
				      npos == 0 ? "OFFSET" : "LEN");
	if (want >= 1) {
		r = tool_parse_size(pos[0], &o->offset);
		if (r < 0)
			return bad_size("OFFSET", pos[0], r);
	}
	if (want >= 2) {
		r = tool_parse_size(pos[1], &o->len);
		if (r < 0)
			return bad_size("LEN", pos[1], r);
	}
	return 0;
}

/* ---- the device and the driver ---- */

struct blk_ctx {
	struct vio_mem *mem;
	/* --image */
	struct vio_blk_device *bd;
	struct vio_inproc *ip;
	pthread_t th;
	bool th_started;
	/* --socket */
	struct vio_frontend *fe;

	struct vio_vdev *vdev;
	struct vio_bus *bus;
	struct vio_driver *drv;
	bool added;
	struct vio_blk *b;
	const char *where; /* for messages: "PATH" */
};

static void *device_thread(void *arg)
{
	struct vio_inproc *ip = arg;
	int r;
	while ((r = vio_inproc_device_poll(ip, -1)) >= 0)
		;
	if (r != -ECANCELED)
		tool_err("device thread: %s", strerror(-r));
	return NULL;
}

static int open_image(struct blk_ctx *c, const struct blk_opts *o, unsigned nq)
{
	struct vio_blk_device_config dc = {
	    .path = o->image,
	    .size = o->size,
	    .num_queues = nq,
	    .queue_size = (uint16_t)(o->queue_size ? o->queue_size : 0),
	    .readonly = o->readonly,
	    .no_packed = o->no_packed,
	    .no_event_idx = o->no_event_idx,
	    .no_indirect = o->no_indirect,
	};
	char err[256] = "";
	c->bd = vio_blk_device_new(&dc, err, sizeof(err));
	if (!c->bd) {
		/* the reason may already start with the path */
		const char *why = err[0] ? err : strerror(errno);
		size_t pl = strlen(o->image);
		if (strncmp(why, o->image, pl) == 0 && why[pl] == ':' &&
		    why[pl + 1] == ' ')
			why += pl + 2;
		tool_err("--image %s: %s", o->image, why);
		return TOOL_EXIT_FAIL;
	}
	c->ip = vio_inproc_new(vio_blk_device_dev(c->bd), c->mem);
	if (!c->ip) {
		tool_err("cannot create the in-process transport: %s",
			 strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	c->vdev = vio_inproc_vdev(c->ip);
	int r = pthread_create(&c->th, NULL, device_thread, c->ip);
	if (r) {
		tool_err("cannot start the device thread: %s", strerror(r));
		return TOOL_EXIT_FAIL;
	}
	c->th_started = true;
	return 0;
}

/* The vhost-user path: connect to the backend at o->socket. */
static int open_socket(struct blk_ctx *c, const struct blk_opts *o)
{
	struct vio_frontend_config fc = {
	    .mem = c->mem,
	    .device_id = VIRTIO_ID_BLOCK,
	    .num_queues = o->queues,
	    .connect_timeout_ms = o->timeout_ms,
	};
	char err[256] = "";
	c->fe = vio_frontend_connect(o->socket, &fc, err, sizeof(err));
	if (!c->fe) {
		/* name the socket once: the reason may already say it */
		if (err[0] && strstr(err, o->socket))
			tool_err("--socket: %s", err);
		else
			tool_err("--socket %s: %s", o->socket,
				 err[0] ? err : strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	c->vdev = vio_frontend_vdev(c->fe);
	return 0;
}

static int blk_open(struct blk_ctx *c, const struct blk_opts *o,
		    unsigned want_queues)
{
	c->where = o->socket ? o->socket : o->image;
	c->mem = vio_mem_new();
	if (!c->mem) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	int ret = o->socket ? open_socket(c, o) : open_image(c, o, want_queues);
	if (ret)
		return ret;

	struct vio_blk_driver_config dc = {
	    .queue_depth = o->queue_depth,
	    .num_queues = o->queues,
	    .queue_size = o->queue_size,
	    .no_packed = o->no_packed,
	    .no_event_idx = o->no_event_idx,
	    .no_indirect = o->no_indirect,
	};
	if (o->verb == V_BENCH && dc.queue_depth < o->iodepth)
		dc.queue_depth = o->iodepth;
	c->drv = vio_blk_driver_new(&dc);
	c->bus = vio_bus_new();
	if (!c->drv || !c->bus || vio_bus_register(c->bus, c->drv) < 0) {
		tool_err("cannot set up the driver: %s", strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	int r = vio_bus_add(c->bus, c->vdev);
	if (r == -ENODEV && vio_vdev_driver(c->vdev) == NULL &&
	    vio_vdev_device_id(c->vdev) != VIRTIO_ID_BLOCK) {
		tool_err("%s: not a virtio-blk device (device id %u)", c->where,
			 vio_vdev_device_id(c->vdev));
		c->added = true;
		return TOOL_EXIT_FAIL;
	}
	c->added = true;
	if (r < 0) {
		tool_err("%s: not a usable virtio-blk device: the driver's "
			 "probe failed: %s",
			 c->where, strerror(-r));
		return TOOL_EXIT_FAIL;
	}
	c->b = vio_blk_from_vdev(c->vdev);
	if (!c->b) {
		tool_err("%s: the blk driver did not bind", c->where);
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

static void blk_close(struct blk_ctx *c)
{
	if (c->bus) {
		if (c->added)
			vio_bus_remove(c->bus, c->vdev);
		vio_bus_free(c->bus);
	}
	vio_blk_driver_free(c->drv);
	if (c->th_started) {
		vio_inproc_stop(c->ip);
		pthread_join(c->th, NULL);
	}
	vio_inproc_free(c->ip);
	vio_blk_device_free(c->bd);
	if (c->fe)
		vio_frontend_free(c->fe);
	vio_mem_free(c->mem);
}

/* Zero-copy I/O buffer in the shared memory; message on failure. */
static void *shm_alloc(struct blk_ctx *c, size_t size)
{
	uint64_t daddr;
	void *p = vio_mem_alloc(c->mem, size, 4096, &daddr);
	if (!p)
		tool_err("cannot allocate %zu bytes of shared memory: %s", size,
			 strerror(errno));
	return p;
}

/* offset + len must be sector-aligned (offset) and inside the device. */
static int check_range(struct blk_ctx *c, uint64_t offset, uint64_t len)
{
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	if (offset % SECTOR) {
		tool_err("offset %" PRIu64 " is not a multiple of 512", offset);
		return TOOL_EXIT_FAIL;
	}
	if (offset > cap || (offset == cap && len)) {
		tool_err("offset %" PRIu64 " is past the capacity (%" PRIu64
			 " bytes)",
			 offset, cap);
		return TOOL_EXIT_FAIL;
	}
	if (len > cap - offset) {
		tool_err("offset %" PRIu64 " + length %" PRIu64
			 " goes past the capacity (%" PRIu64 " bytes)",
			 offset, len, cap);
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

static int io_err(const char *what, uint64_t offset, int r)
{
	tool_err("%s at offset %" PRIu64 " failed: %s", what, offset,
		 r == -EROFS ? "device is read-only" : strerror(-r));
	return TOOL_EXIT_FAIL;
}

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

static int do_info(struct blk_ctx *c, const struct blk_opts *o)
{
	struct vio_blk_info in;
	vio_blk_get_info(c->b, &in);
	struct vio_features f;
	vio_vdev_features(c->vdev, &f);

	printf("%-18s %s (%s)\n", "device", c->where,
	       o->socket ? "vhost-user" : "in-process");
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

static int do_read(struct blk_ctx *c, const struct blk_opts *o)
{
	int ret = check_range(c, o->offset, o->len);
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
	uint8_t *buf = shm_alloc(c, CHUNK);
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
			ret = io_err("read", o->offset + done, r);
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

static int do_write(struct blk_ctx *c, const struct blk_opts *o)
{
	int ret = check_range(c, o->offset, 0);
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
		ret = check_range(c, o->offset, (uint64_t)st.st_size);
		if (ret)
			goto out;
	}
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	uint8_t *buf = shm_alloc(c, CHUNK);
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
				ret = io_err("read", off + at, r);
				break;
			}
			memcpy(buf + n, tail + (n - at), wn - (size_t)n);
		}
		int r = vio_blk_write(c->b, 0, off, buf, wn);
		if (r < 0) {
			ret = io_err("write", off, r);
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
			ret = io_err("flush", o->offset, r);
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

static uint64_t mix64(uint64_t x)
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
	return mix64(seed * 0x9e3779b97f4a7c15ull + (pos >> 3) + 1);
}

static void pattern_fill(uint64_t seed, uint64_t pos, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = pattern_word(seed, pos + i);
		memcpy(buf + i, &w, 8);
	}
}

static int do_verify(struct blk_ctx *c, const struct blk_opts *o)
{
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	uint64_t len = o->len;
	if (!o->has_length)
		len = o->offset <= cap ? cap - o->offset : 0;
	if (len % SECTOR) {
		tool_err("length %" PRIu64 " is not a multiple of 512", len);
		return TOOL_EXIT_FAIL;
	}
	int ret = check_range(c, o->offset, len ? len : 1);
	if (ret)
		return ret;
	if (vio_blk_readonly(c->b)) {
		tool_err("%s: device is read-only", c->where);
		return TOOL_EXIT_FAIL;
	}
	uint8_t *buf = shm_alloc(c, CHUNK);
	uint8_t *want = malloc(CHUNK);
	if (!buf || !want) {
		if (!want)
			tool_err("out of memory");
		ret = TOOL_EXIT_FAIL;
		goto out;
	}
	double t0 = tool_now();
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		pattern_fill(o->seed, o->offset + done, buf, n);
		int r = vio_blk_write(c->b, 0, o->offset + done, buf, n);
		if (r < 0) {
			ret = io_err("write", o->offset + done, r);
			goto out;
		}
		done += n;
	}
	int r = vio_blk_flush(c->b, 0);
	if (r < 0) {
		ret = io_err("flush", o->offset, r);
		goto out;
	}
	uint64_t first = UINT64_MAX, bad_sectors = 0;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		memset(buf, 0, n);
		r = vio_blk_read(c->b, 0, o->offset + done, buf, n);
		if (r < 0) {
			ret = io_err("read", o->offset + done, r);
			goto out;
		}
		pattern_fill(o->seed, o->offset + done, want, n);
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
		ret = TOOL_EXIT_FAIL;
	} else {
		printf("verified %" PRIu64 " bytes at offset %" PRIu64
		       " (seed %" PRIu64 "): ok, %.1f MiB/s\n",
		       len, o->offset, o->seed,
		       secs > 0 ? 2.0 * (double)len / (1 << 20) / secs : 0.0);
	}
out:
	free(want);
	vio_mem_release(c->mem, buf);
	return ret;
}

/* ---- bench ---- */

/*
 * Latency histogram, log-linear in nanoseconds: values below 2^HB are
 * exact; above, each power of two is cut into 2^HB buckets (under 3.2%
 * relative error).  Fixed size, updated without allocation.
 */
#define HB 5
#define HSUB (1u << HB)
#define HN ((64 - HB + 1) * HSUB)

static unsigned hist_index(uint64_t v)
{
	if (v < HSUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	return (e - HB + 1) * HSUB + (unsigned)((v >> (e - HB)) & (HSUB - 1));
}

/* The middle of bucket i. */
static double hist_value(unsigned i)
{
	if (i < HSUB)
		return i;
	unsigned g = i / HSUB, s = i % HSUB, e = g + HB - 1;
	double w = (double)(1ull << (e - HB));
	return (double)(HSUB + s) * w + w / 2.0;
}

/* The value at quantile p (0..1) of n samples in h. */
static double hist_quantile(const uint64_t *h, uint64_t n, double p)
{
	if (!n)
		return 0;
	uint64_t rank = (uint64_t)(p * (double)n);
	if ((double)rank < p * (double)n)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < HN; i++) {
		acc += h[i];
		if (acc >= rank)
			return hist_value(i);
	}
	return hist_value(HN - 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct bench_req {
	struct vio_blk_req r; /* first: done[] gives back &r */
	uint64_t t0;
	uint8_t *buf;
};

struct bench_q {
	struct blk_ctx *c;
	const struct blk_opts *o;
	unsigned q;
	struct bench_req *reqs;
	uint8_t *bufs;
	struct vio_blk_req **done;
	uint64_t rs;		/* xorshift state */
	uint64_t base, nblocks; /* this queue's range, in blocks */
	uint64_t next;		/* sequential: next block in the range */
	uint64_t ops, bytes;	/* __atomic: read by the progress line */
	uint64_t lat_sum, lat_max;
	uint64_t hist[HN];
	int err;
	uint64_t err_off;
	uint64_t t_end;
	pthread_t th;
};

static bool bench_stop; /* __atomic */
static volatile sig_atomic_t bench_sig;

static void on_sigint(int sig)
{
	(void)sig;
	bench_sig = 1;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int bench_submit(struct bench_q *bq, struct bench_req *br, uint64_t now)
{
	const struct blk_opts *o = bq->o;
	uint64_t blk;
	if (o->rw == RW_RANDREAD || o->rw == RW_RANDWRITE) {
		blk = bq->base + xorshift(&bq->rs) % bq->nblocks;
	} else {
		blk = bq->base + bq->next;
		if (++bq->next == bq->nblocks)
			bq->next = 0;
	}
	memset(&br->r, 0, sizeof(br->r));
	br->r.op = (o->rw == RW_RANDWRITE || o->rw == RW_WRITE)
		       ? VIO_BLK_OP_WRITE
		       : VIO_BLK_OP_READ;
	br->r.offset = blk * o->bs;
	br->r.buf = br->buf;
	br->r.len = (size_t)o->bs;
	br->t0 = now;
	int r = vio_blk_submit(bq->c->b, bq->q, &br->r);
	if (r < 0) {
		bq->err = r;
		bq->err_off = br->r.offset;
	}
	return r;
}

static void *bench_thread(void *arg)
{
	struct bench_q *bq = arg;
	const struct blk_opts *o = bq->o;
	unsigned inflight = 0;
	uint64_t now = now_ns();

	for (unsigned i = 0; i < o->iodepth; i++) {
		if (bench_submit(bq, &bq->reqs[i], now) < 0)
			break;
		inflight++;
	}
	uint64_t last_progress = now;
	while (inflight) {
		int n =
		    vio_blk_poll(bq->c->b, bq->q, bq->done, o->iodepth, 1000);
		now = now_ns();
		if (n < 0) {
			if (!bq->err)
				bq->err = n;
			break;
		}
		if (n == 0) {
			/* nothing for 10 s: the device stopped answering */
			if (now - last_progress > 10000000000ull) {
				if (!bq->err)
					bq->err = -ETIMEDOUT;
				break;
			}
			continue;
		}
		last_progress = now;
		bool stop = __atomic_load_n(&bench_stop, __ATOMIC_RELAXED);
		for (int i = 0; i < n; i++) {
			struct bench_req *br = (struct bench_req *)bq->done[i];
			inflight--;
			if (br->r.result < 0) {
				if (!bq->err) {
					bq->err = br->r.result;
					bq->err_off = br->r.offset;
				}
				__atomic_store_n(&bench_stop, true,
						 __ATOMIC_RELAXED);
				continue;
			}
			uint64_t lat = now - br->t0;
			bq->hist[hist_index(lat)]++;
			bq->lat_sum += lat;
			if (lat > bq->lat_max)
				bq->lat_max = lat;
			__atomic_store_n(&bq->ops, bq->ops + 1,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&bq->bytes, bq->bytes + o->bs,
					 __ATOMIC_RELAXED);
			if (!stop && !bq->err) {
				if (bench_submit(bq, br, now) < 0)
					__atomic_store_n(&bench_stop, true,
							 __ATOMIC_RELAXED);
				else
					inflight++;
			}
		}
	}
	bq->t_end = now_ns();
	return NULL;
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s,
			      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

static void fmt_bs(uint64_t bs, char *out, size_t len)
{
	if (bs % (1u << 20) == 0)
		snprintf(out, len, "%" PRIu64 "M", bs >> 20);
	else if (bs % 1024 == 0)
		snprintf(out, len, "%" PRIu64 "k", bs >> 10);
	else
		snprintf(out, len, "%" PRIu64, bs);
}

static int do_bench(struct blk_ctx *c, const struct blk_opts *o)
{
	unsigned avail = vio_blk_num_queues(c->b);
	unsigned nq = o->bench_queues ? o->bench_queues : avail;
	if (nq > avail) {
		tool_err("bench --queues %u: the driver has only %u queue%s "
			 "(try 'vio blk --queues %u ...')",
			 nq, avail, avail == 1 ? "" : "s", nq);
		return TOOL_EXIT_FAIL;
	}
	bool write = o->rw == RW_RANDWRITE || o->rw == RW_WRITE;
	if (write && vio_blk_readonly(c->b)) {
		tool_err("%s: device is read-only", c->where);
		return TOOL_EXIT_FAIL;
	}
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	uint64_t blocks = cap / o->bs;
	if (blocks < nq) {
		tool_err("--bs %" PRIu64 ": the device (%" PRIu64
			 " bytes) is too small for %u request%s of that size",
			 o->bs, cap, nq, nq == 1 ? "" : "s");
		return TOOL_EXIT_FAIL;
	}
	size_t per_q = (size_t)o->iodepth * (size_t)o->bs;
	struct bench_q *bqs = calloc(nq, sizeof(*bqs));
	if (!bqs) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	int ret = TOOL_EXIT_FAIL;
	unsigned started = 0;
	/* every buffer exists before the first request (the transport
	 * learns of new memory regions only when told) */
	for (unsigned q = 0; q < nq; q++) {
		struct bench_q *bq = &bqs[q];
		bq->c = c;
		bq->o = o;
		bq->q = q;
		bq->rs = mix64(0x5eed0000u + q) | 1;
		bq->reqs = calloc(o->iodepth, sizeof(*bq->reqs));
		bq->done = calloc(o->iodepth, sizeof(*bq->done));
		bq->bufs = shm_alloc(c, per_q);
		if (!bq->reqs || !bq->done || !bq->bufs) {
			if (!bq->reqs || !bq->done)
				tool_err("out of memory");
			goto out;
		}
		if (write)
			pattern_fill(q + 1, 0, bq->bufs, per_q);
		for (unsigned i = 0; i < o->iodepth; i++)
			bq->reqs[i].buf = bq->bufs + (size_t)i * o->bs;
		if (o->rw == RW_READ || o->rw == RW_WRITE) {
			/* sequential: a slice each */
			bq->nblocks = blocks / nq;
			bq->base = (uint64_t)q * bq->nblocks;
		} else {
			bq->nblocks = blocks;
			bq->base = 0;
		}
	}

	struct sigaction sa = {.sa_handler = on_sigint}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	bench_sig = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	__atomic_store_n(&bench_stop, false, __ATOMIC_RELAXED);

	bool progress = !o->json && isatty(STDERR_FILENO);
	uint64_t t_start = now_ns();
	for (; started < nq; started++) {
		int r = pthread_create(&bqs[started].th, NULL, bench_thread,
				       &bqs[started]);
		if (r) {
			tool_err("cannot start a thread: %s", strerror(r));
			__atomic_store_n(&bench_stop, true, __ATOMIC_RELAXED);
			break;
		}
	}
	double t_last = tool_now(), t0 = t_last;
	uint64_t ops_last = 0;
	while (started == nq && !bench_sig &&
	       !__atomic_load_n(&bench_stop, __ATOMIC_RELAXED)) {
		double t = tool_now();
		if (t - t0 >= o->secs)
			break;
		double left = o->secs - (t - t0);
		sleep_s(left < 0.1 ? left : 0.1);
		t = tool_now();
		if (progress && t - t_last >= 1.0) {
			uint64_t ops = 0, bytes = 0;
			for (unsigned q = 0; q < nq; q++) {
				ops += __atomic_load_n(&bqs[q].ops,
						       __ATOMIC_RELAXED);
				bytes += __atomic_load_n(&bqs[q].bytes,
							 __ATOMIC_RELAXED);
			}
			double iops = (double)(ops - ops_last) / (t - t_last);
			fprintf(stderr,
				"\r%5.1f/%g s  %10.0f IOPS  %9.1f MiB/s  "
				"%" PRIu64 " MiB total\033[K",
				t - t0, o->secs, iops,
				iops * (double)o->bs / (1 << 20), bytes >> 20);
			ops_last = ops;
			t_last = t;
		}
	}
	__atomic_store_n(&bench_stop, true, __ATOMIC_RELAXED);
	uint64_t t_end = t_start;
	for (unsigned q = 0; q < started; q++) {
		pthread_join(bqs[q].th, NULL);
		if (bqs[q].t_end > t_end)
			t_end = bqs[q].t_end;
	}
	if (progress)
		fprintf(stderr, "\r\033[K");
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (started < nq)
		goto out;

	/* merge */
	static uint64_t hist[HN];
	memset(hist, 0, sizeof(hist));
	uint64_t ops = 0, lat_sum = 0, lat_max = 0;
	int err = 0;
	for (unsigned q = 0; q < nq; q++) {
		struct bench_q *bq = &bqs[q];
		for (unsigned i = 0; i < HN; i++)
			hist[i] += bq->hist[i];
		ops += bq->ops;
		lat_sum += bq->lat_sum;
		if (bq->lat_max > lat_max)
			lat_max = bq->lat_max;
		if (bq->err && !err) {
			err = bq->err;
			if (err == -ETIMEDOUT)
				tool_err("queue %u: the device stopped "
					 "answering (10 s without a "
					 "completion)",
					 q);
			else
				io_err(write ? "write" : "read", bq->err_off,
				       err);
		}
	}
	double secs = (double)(t_end - t_start) / 1e9;
	double iops = secs > 0 ? (double)ops / secs : 0;
	double mibs = iops * (double)o->bs / (1 << 20);
	double mean = ops ? (double)lat_sum / (double)ops / 1e3 : 0;
	double p50 = hist_quantile(hist, ops, 0.50) / 1e3;
	double p99 = hist_quantile(hist, ops, 0.99) / 1e3;
	double p999 = hist_quantile(hist, ops, 0.999) / 1e3;
	double max = (double)lat_max / 1e3;
	struct vio_blk_info in;
	vio_blk_get_info(c->b, &in);
	char bs[32];
	fmt_bs(o->bs, bs, sizeof(bs));
	if (o->json) {
		printf("{\"rw\":\"%s\",\"bs\":%" PRIu64 ",\"iodepth\":%u,"
		       "\"queues\":%u,\"transport\":\"%s\",\"ring\":\"%s\","
		       "\"seconds\":%.3f,\"ops\":%" PRIu64 ",\"iops\":%.1f,"
		       "\"mib_s\":%.2f,\"lat_us\":{\"mean\":%.2f,\"p50\":%.2f,"
		       "\"p99\":%.2f,\"p99_9\":%.2f,\"max\":%.2f},"
		       "\"errors\":%d,\"interrupted\":%s}\n",
		       rw_names[o->rw], o->bs, o->iodepth, nq,
		       o->socket ? "vhost-user" : "inproc",
		       in.packed ? "packed" : "split", secs, ops, iops, mibs,
		       mean, p50, p99, p999, max, err ? 1 : 0,
		       bench_sig ? "true" : "false");
	} else {
		printf("%s %s, iodepth %u x %u queue%s (%s, %s ring), "
		       "%.2f s%s\n",
		       rw_names[o->rw], bs, o->iodepth, nq, nq == 1 ? "" : "s",
		       o->socket ? "vhost-user" : "in-process",
		       in.packed ? "packed" : "split", secs,
		       bench_sig ? " (interrupted)" : "");
		printf("  %.0f IOPS, %.1f MiB/s, %" PRIu64 " requests\n", iops,
		       mibs, ops);
		printf("  latency (us): mean %.1f, p50 %.1f, p99 %.1f, "
		       "p99.9 %.1f, max %.1f\n",
		       mean, p50, p99, p999, max);
	}
	if (fflush(stdout) != 0)
		err = err ? err : -EIO;
	ret = err ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
out:
	for (unsigned q = 0; q < nq; q++) {
		free(bqs[q].reqs);
		free(bqs[q].done);
		vio_mem_release(c->mem, bqs[q].bufs);
	}
	free(bqs);
	return ret;
}

/* ---- the command ---- */

int cmd_blk(int argc, char **argv)
{
	struct blk_opts o = {.seed = 1, .bs = 4096, .iodepth = 32, .secs = 10};
	int ret = parse_global(argc, argv, &o);
	if (ret)
		return ret < 0 ? TOOL_EXIT_OK : ret;
	if (optind >= argc)
		return tool_usage_err(CMD, "missing verb (info, read, write, "
					   "verify, bench)");
	ret = parse_verb(argc - optind, argv + optind, &o);
	if (ret)
		return ret < 0 ? TOOL_EXIT_OK : ret;
	if (!o.socket == !o.image)
		return tool_usage_err(CMD, "%s",
				      o.socket ? "--socket and --image "
						 "exclude each other"
					       : "give --socket PATH or "
						 "--image FILE");
	if (o.socket && (o.size || o.readonly))
		return tool_usage_err(CMD, "%s only goes with --image",
				      o.size ? "--size" : "--readonly");
	if (o.image && o.timeout_ms)
		return tool_usage_err(CMD, "--timeout only goes with --socket");

	/* --image: the device gets the queues asked for (1 by default) */
	unsigned want = o.queues;
	if (o.bench_queues > want)
		want = o.bench_queues;
	struct blk_ctx c = {0};
	ret = blk_open(&c, &o, want ? want : 1);
	if (ret == 0) {
		switch (o.verb) {
		case V_INFO:
			ret = do_info(&c, &o);
			break;
		case V_READ:
			ret = do_read(&c, &o);
			break;
		case V_WRITE:
			ret = do_write(&c, &o);
			break;
		case V_VERIFY:
			ret = do_verify(&c, &o);
			break;
		case V_BENCH:
			ret = do_bench(&c, &o);
			break;
		case V_NONE:
			break;
		}
	}
	blk_close(&c);
	return ret;
}
