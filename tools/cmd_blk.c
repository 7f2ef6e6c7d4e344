/* SPDX-License-Identifier: MIT */
/*
 * vio blk: drive a virtio-blk device with vio's blk driver.
 *
 * The device is either a vhost-user backend behind a Unix socket (vio
 * serve blk, qemu-storage-daemon, ...), reached through the vhost-user
 * frontend, or an image file served in this process by vio's own blk
 * device over the in-process transport (the device on a thread of its
 * own).  Either way the driver is bound by a bus and the verbs use its
 * public API only (the files: tools/blk.h):
 *
 *   info     what probe found (features, capacity, limits, serial)
 *   read     bytes from the device to a file or stdout
 *   write    bytes from a file or stdin to the device
 *   verify   write a seeded pattern, flush, read it back, compare
 *   bench    fio-like load through the asynchronous API, one thread per
 *            queue, zero-copy buffers, a latency histogram per thread;
 *            --move-to moves the device to another backend mid-run
 *            (vio_frontend_move: vhost-user device state transfer)
 */
#include <getopt.h>

#include "blk.h"
#include "cmds.h"
#include "util.h"

int cmd_blk(int argc, char **argv)
{
	struct blk_opts o = {.seed = 1, .bs = 4096, .secs = 10};
	int ret = blk_parse_global(argc, argv, &o);
	if (ret)
		return ret < 0 ? TOOL_EXIT_OK : ret;
	if (optind >= argc)
		return tool_usage_err(CMD, "missing verb (info, read, write, "
					   "verify, bench)");
	ret = blk_parse_verb(argc - optind, argv + optind, &o);
	if (ret)
		return ret < 0 ? TOOL_EXIT_OK : ret;
	/* --iodepth: bench 32, verify 1 unless given */
	if (!o.iodepth)
		o.iodepth = o.verb == V_BENCH ? 32 : 1;
	if (!o.conn.socket == !o.image)
		return tool_usage_err(CMD, "%s",
				      o.conn.socket ? "--socket and --image "
						      "exclude each other"
						    : "give --socket PATH or "
						      "--image FILE");
	if (o.conn.socket && (o.size || o.readonly))
		return tool_usage_err(CMD, "%s only goes with --image",
				      o.size ? "--size" : "--readonly");
	if (o.move_to && (!o.conn.socket || o.conn.listen))
		return tool_usage_err(CMD, "--move-to needs --socket (not "
					   "--image, not --listen)");
	if (o.dirty_log && !o.conn.socket)
		return tool_usage_err(CMD, "--dirty-log needs --socket");
	if (o.image &&
	    (o.conn.timeout_ms || o.conn.reconnect_ms || o.conn.listen))
		return tool_usage_err(CMD, "%s only goes with --socket",
				      o.conn.timeout_ms	    ? "--timeout"
				      : o.conn.reconnect_ms ? "--reconnect"
							    : "--listen");

	/* --image: the device gets the queues asked for (1 by default) */
	unsigned want = o.queues;
	if (o.bench_queues > want)
		want = o.bench_queues;
	struct blk_ctx c = {0};
	ret = blk_open(&c, &o, want ? want : 1);
	if (ret == 0) {
		switch (o.verb) {
		case V_INFO:
			ret = blk_do_info(&c, &o);
			break;
		case V_READ:
			ret = blk_do_read(&c, &o);
			break;
		case V_WRITE:
			ret = blk_do_write(&c, &o);
			break;
		case V_VERIFY:
			ret = blk_do_verify(&c, &o);
			break;
		case V_BENCH:
			ret = blk_do_bench(&c, &o);
			break;
		case V_NONE:
			break;
		}
	}
	blk_close(&c);
	return ret;
}
