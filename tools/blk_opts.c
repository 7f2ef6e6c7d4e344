/* SPDX-License-Identifier: MIT */
/* vio blk: usage texts and options (tools/blk.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vio/blk.h>
#include <vio/ring.h>

#include "blk.h"
#include "util.h"

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
	    "  --reconnect[=SECONDS]\n"
	    "                     when the backend goes away, wait up to "
	    "SECONDS\n"
	    "                     (default 30) for it to return and redo what "
	    "was in\n"
	    "                     flight (split rings only); without it a lost "
	    "backend\n"
	    "                     fails the I/O\n"
	    "  --listen           with --socket: listen at PATH for the "
	    "backend to connect\n"
	    "                     (vio serve in client mode) instead of "
	    "connecting\n"
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
		"              [--seed S] [--passes N] [--iodepth N]\n\n"
		"Overwrite [O, O+L) with a pattern derived from S and each "
		"byte's position,\nflush, read it back and compare; report "
		"the first mismatch.  DESTROYS the\ndata in that range.\n\n"
		"  --offset O   start, a multiple of 512 (default 0)\n"
		"  --length L   bytes, a multiple of 512 (default: up to the "
		"capacity)\n"
		"  --seed S     pattern seed (default 1)\n"
		"  --passes N   do it N times, pass i with seed S+i (default "
		"1)\n"
		"  --iodepth N  each 1 MiB step as N requests in flight at "
		"once, 1..64\n"
		"               (default 1)\n");
}

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: vio blk (--socket PATH | --image FILE) bench [--rw "
		"MODE] [--bs N]\n"
		"              [--iodepth N] [--queues N] [--time T] "
		"[--json]\n"
		"              [--move-to PATH [--move-after T]] "
		"[--dirty-log]\n\n"
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
		"text report\n"
		"  --move-to PATH (--socket only) mid-run, move the device "
		"to the backend\n"
		"                 listening at PATH (vhost-user device state "
		"transfer: both\n"
		"                 must offer it, as vio serve does); the "
		"requests in flight\n"
		"                 complete once, the run goes on\n"
		"  --move-after T when to move (default: half of --time)\n"
		"  --dirty-log    (--socket only) run with the backend's "
		"dirty-page logging\n"
		"                 on (as during a live migration) and print "
		"how many pages\n"
		"                 the log marked\n");
}

const char *const blk_rw_names[4] = {"randread", "randwrite", "read", "write"};

/* The command for usage errors: "blk", then "blk VERB". */
static const char *ucmd = CMD;

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

int blk_parse_global(int argc, char **argv, struct blk_opts *o)
{
	static const struct option longopts[] = {
	    TOOL_CONN_LONGOPTS,
	    {"listen", no_argument, NULL, 'l'},
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
		if ((r = tool_conn_opt(ucmd, c, optarg, &o->conn)) !=
		    TOOL_CONN_OTHER) {
			if (r)
				return r;
			continue;
		}
		switch (c) {
		case 'l':
			o->conn.listen = true;
			break;
		case 'I':
			o->image = optarg;
			break;
		case 'z':
			if ((r = tool_size_opt(ucmd, "--size", optarg, &v)))
				return r;
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
			if ((r = tool_uint_opt(ucmd, "--queues", optarg, 1,
					       VIO_MAX_QUEUES, &v)))
				return r;
			o->queues = (unsigned)v;
			break;
		case 's':
			if ((r = tool_uint_opt(ucmd, "--queue-size", optarg, 4,
					       VIO_VQ_MAX_SIZE, &v)))
				return r;
			o->queue_size = (unsigned)v;
			break;
		case 'd':
			if ((r = tool_uint_opt(ucmd, "--queue-depth", optarg, 1,
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
int blk_parse_verb(int argc, char **argv, struct blk_opts *o)
{
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"input", required_argument, NULL, 'i'},
	    {"offset", required_argument, NULL, 'O'},
	    {"length", required_argument, NULL, 'L'},
	    {"seed", required_argument, NULL, 'x'},
	    {"passes", required_argument, NULL, 'p'},
	    {"rw", required_argument, NULL, 'w'},
	    {"bs", required_argument, NULL, 'b'},
	    {"iodepth", required_argument, NULL, 'D'},
	    {"queues", required_argument, NULL, 'q'},
	    {"time", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"move-to", required_argument, NULL, 'M'},
	    {"move-after", required_argument, NULL, 'A'},
	    {"dirty-log", no_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* which options each verb takes */
	static const char *const allowed[] = {
	    [V_INFO] = "",	  [V_READ] = "o",	   [V_WRITE] = "i",
	    [V_VERIFY] = "OLxpD", [V_BENCH] = "wbDqtjMAg",
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
			if ((r = tool_size_opt(ucmd, "--offset", optarg,
					       &o->offset)))
				return r;
			break;
		case 'L':
			if ((r = tool_size_opt(ucmd, "--length", optarg,
					       &o->len)))
				return r;
			o->has_length = true;
			break;
		case 'x':
			if ((r = tool_uint_opt(ucmd, "--seed", optarg, 0,
					       UINT64_MAX, &o->seed)))
				return r;
			break;
		case 'p':
			if ((r = tool_uint_opt(ucmd, "--passes", optarg, 1,
					       1000000, &v)))
				return r;
			o->passes = (unsigned)v;
			break;
		case 'w': {
			bool found = false;
			for (unsigned k = 0; k < 4; k++)
				if (strcmp(optarg, blk_rw_names[k]) == 0) {
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
			if ((r = tool_size_opt(ucmd, "--bs", optarg, &v)))
				return r;
			if (v == 0 || v % SECTOR || v > (64u << 20))
				return tool_usage_err(
				    ucmd,
				    "--bs: '%s' is not a multiple of 512 "
				    "bytes in 512..64M",
				    optarg);
			o->bs = v;
			break;
		case 'D':
			if ((r = tool_uint_opt(ucmd, "--iodepth", optarg, 1,
					       4096, &v)))
				return r;
			o->iodepth = (unsigned)v;
			break;
		case 'q':
			if ((r = tool_uint_opt(ucmd, "bench --queues", optarg,
					       1, VIO_MAX_QUEUES, &v)))
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
		case 'M':
			o->move_to = optarg;
			break;
		case 'g':
			o->dirty_log = true;
			break;
		case 'A':
			if (parse_duration(optarg, &o->move_after) < 0)
				return tool_usage_err(
				    ucmd,
				    "--move-after: '%s' is not a duration in "
				    "(0, 24h] (e.g. 2s, 500ms)",
				    optarg);
			break;
		}
	}
	if (o->move_after > 0 && !o->move_to)
		return tool_usage_err(ucmd, "--move-after needs --move-to");
	if (o->move_to && o->move_after >= o->secs)
		return tool_usage_err(ucmd,
				      "--move-after %gs: the run ends at %gs "
				      "(--time)",
				      o->move_after, o->secs);
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
		if ((r = tool_size_opt(ucmd, "OFFSET", pos[0], &o->offset)))
			return r;
	}
	if (want >= 2) {
		if ((r = tool_size_opt(ucmd, "LEN", pos[1], &o->len)))
			return r;
	}
	return 0;
}
