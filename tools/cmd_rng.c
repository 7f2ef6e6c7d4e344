/* SPDX-License-Identifier: MIT */
/*
 * vio rng: a virtio-rng device and its driver in one process, over the
 * in-process transport: the device on a thread of its own, the driver
 * bound by a bus, N bytes read through the ring and timed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <vio/bus.h>
#include <vio/mem.h>
#include <vio/rng.h>

#include "cmds.h"
#include "devthread.h"
#include "util.h"

#define CMD "rng"
#define CHUNK (1u << 20)

static void rng_usage(FILE *f)
{
	fprintf(
	    f, "usage: vio rng [--bytes N] [--packed] [--no-event-idx]\n"
	       "               [--queue-size N] [--out FILE|-]\n\n"
	       "Run a virtio-rng device and the vio driver in this process "
	       "(in-process\ntransport, device on its own thread), read N "
	       "bytes of entropy through\nthe virtqueue and report the "
	       "throughput.\n\n"
	       "  --bytes N         bytes to read; suffixes K, M, G, T (x1024) "
	       "(default 1M)\n"
	       "  --packed          packed ring (default: split ring)\n"
	       "  --no-event-idx    do not use VIRTIO_RING_F_EVENT_IDX\n"
	       "  --queue-size N    device queue size, 1..32768 (default 256; "
	       "split rings\n"
	       "                    round down to a power of two)\n"
	       "  --out FILE|-      also write the bytes to FILE (- for "
	       "stdout; the\n"
	       "                    report then goes to stderr)\n"
	       "  -h, --help        this help\n");
}

struct rng_opts {
	uint64_t bytes;
	bool packed, no_event_idx;
	uint16_t queue_size;
	const char *out;
};

static int parse(int argc, char **argv, struct rng_opts *o)
{
	static const struct option longopts[] = {
	    {"bytes", required_argument, NULL, 'b'},
	    {"packed", no_argument, NULL, 'p'},
	    {"no-event-idx", no_argument, NULL, 'E'},
	    {"queue-size", required_argument, NULL, 'q'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if ((r = tool_size_opt(CMD, "--bytes", optarg,
					       &o->bytes)))
				return r;
			break;
		case 'p':
			o->packed = true;
			break;
		case 'E':
			o->no_event_idx = true;
			break;
		case 'q':
			if ((r = tool_uint_opt(CMD, "--queue-size", optarg, 1,
					       VIO_VQ_MAX_SIZE, &v)))
				return r;
			o->queue_size = (uint16_t)v;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'h':
			rng_usage(stdout);
			return -1;
		default:
			return tool_getopt_err(CMD, c, argv);
		}
	}
	if (optind < argc)
		return tool_usage_err(CMD, "unexpected argument '%s'",
				      argv[optind]);
	return 0;
}

/* Read o->bytes through vdev; 0 or an exit code. */
static int read_all(struct vio_drvdev *vdev, const struct rng_opts *o,
		    FILE *out, double *secs)
{
	uint8_t *buf = malloc(CHUNK);
	if (!buf) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	int ret = TOOL_EXIT_OK;
	double t = 0;
	for (uint64_t left = o->bytes; left;) {
		size_t n = left < CHUNK ? (size_t)left : CHUNK;
		double t0 = tool_now();
		ssize_t r = vio_rng_read(vdev, buf, n);
		t += tool_now() - t0;
		if (r < 0 || (size_t)r != n) {
			tool_err("rng read failed after %" PRIu64 " bytes: %s",
				 o->bytes - left,
				 r < 0 ? strerror((int)-r) : "short read");
			ret = TOOL_EXIT_FAIL;
			break;
		}
		if (out && fwrite(buf, 1, n, out) != n) {
			tool_err("%s: write failed: %s", o->out,
				 strerror(errno));
			ret = TOOL_EXIT_FAIL;
			break;
		}
		left -= n;
	}
	free(buf);
	*secs = t;
	return ret;
}

int cmd_rng(int argc, char **argv)
{
	struct rng_opts o = {.bytes = 1u << 20};
	int ret = parse(argc, argv, &o);
	if (ret)
		return ret < 0 ? TOOL_EXIT_OK : ret;

	FILE *out = NULL;
	bool out_is_stdout = o.out && strcmp(o.out, "-") == 0;
	if (out_is_stdout) {
		out = stdout;
	} else if (o.out) {
		out = fopen(o.out, "wb");
		if (!out) {
			tool_err("%s: %s", o.out, strerror(errno));
			return TOOL_EXIT_FAIL;
		}
	}

	ret = TOOL_EXIT_FAIL;
	struct vio_rng_device_opts dc = {
	    .queue_size = o.queue_size,
	    .packed = o.packed,
	    .no_event_idx = o.no_event_idx,
	};
	char derr[256] = "";
	struct vio_rng_device *rd = vio_rng_device_new(&dc, derr, sizeof(derr));
	struct vio_device *dev = vio_rng_device_dev(rd);
	struct vio_mem *mem = vio_mem_new();
	struct tool_devthread dt = {0};
	struct vio_bus *bus = NULL;
	struct vio_drvdev *vdev = NULL;

	if (!dev || !mem) {
		tool_err("cannot create the device: %s",
			 derr[0] ? derr : strerror(errno));
		goto out;
	}
	if (tool_devthread_start(&dt, dev, mem))
		goto out;
	vdev = tool_devthread_vdev(&dt);
	bus = vio_bus_new();
	if (!bus || vio_bus_register(bus, &vio_rng_driver) < 0) {
		tool_err("cannot create the bus");
		goto out;
	}
	int r = vio_bus_add(bus, vdev);
	if (r < 0) {
		tool_err("no driver bound the device: %s", strerror(-r));
		goto out;
	}

	double secs = 0;
	ret = read_all(vdev, &o, out, &secs);
	if (ret == TOOL_EXIT_OK) {
		double mib = (double)o.bytes / (1024.0 * 1024.0);
		FILE *rep = out_is_stdout ? stderr : stdout;
		fprintf(rep,
			"read %" PRIu64 " bytes in %.3f s: %.1f MiB/s "
			"(%s ring, event_idx %s)\n",
			o.bytes, secs, secs > 0 ? mib / secs : 0.0,
			vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED)
			    ? "packed"
			    : "split",
			vio_drvdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX)
			    ? "on"
			    : "off");
	}

out:
	if (bus) {
		if (vdev)
			vio_bus_remove(bus, vdev);
		vio_bus_free(bus);
	}
	tool_devthread_stop(&dt);
	vio_rng_device_free(rd);
	vio_mem_free(mem);
	if (out && !out_is_stdout && fclose(out) != 0 && ret == 0) {
		tool_err("%s: %s", o.out, strerror(errno));
		ret = TOOL_EXIT_FAIL;
	}
	if (out_is_stdout && fflush(stdout) != 0 && ret == 0)
		ret = TOOL_EXIT_FAIL;
	return ret;
}
