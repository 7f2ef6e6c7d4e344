/* SPDX-License-Identifier: MIT */
/*
 * vio serve: a device, served over vhost-user to one frontend at a time
 * (QEMU, qemu-storage-daemon's peers, vio's own frontend).  This file
 * has blk and rng; net and switch are in tools/serve_net.c; the sockets,
 * readiness, signals and the control loop they share in
 * tools/serve_common.c.
 *
 * The main thread owns the control socket (vio_backend_dispatch); each
 * started queue runs on a worker thread (vio/run.h) that waits on its
 * kick eventfd.  SIGINT and SIGTERM arrive through a signalfd: the device is
 * drained (every request popped completes and is pushed), then the
 * backend is freed (workers stopped, socket file removed), then the
 * device.  The workers (vio/run.h) are made once: --threads N of them
 * (queue i on thread i % N), pinned with --cpus; --poll makes them
 * busy-poll the rings for a while after they empty before sleeping.
 *
 * Guest memory a frontend truncates under us would raise SIGBUS: the
 * library's process-wide guard turns that into the end of that
 * connection, and this command opts in before serving.
 *
 * Socket activation: when systemd (or systemd-socket-activate) passes a
 * listening socket (LISTEN_FDS, LISTEN_PID; tools/ready.h), that socket is
 * served (vio_backend_listen_fd) and --socket must not be given: two
 * sockets named would leave one unserved, so the command line is refused
 * rather than one silently winning.  The socket file is then systemd's:
 * it stays after exit.
 *
 * Counters: SIGUSR1 (through the same signalfd) prints one JSON line to
 * stderr (the journal under systemd): connections, reconnects and, for
 * blk, each queue's requests, bytes, errors and breaks
 * (vio_blk_device_stats; counted by the queues' workers, lock-free).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vio/blk.h>
#include <vio/mem.h>
#include <vio/rng.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#include "cmds.h"
#include "ready.h"
#include "serve_common.h"
#include "util.h"

#define CMD "serve"

static void serve_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vio serve blk --socket PATH --image FILE [--size SIZE]\n"
	    "                     [--queues N] [--queue-size N] [--readonly]\n"
	    "                     [--poll] [--client] [--once] [--serial S]\n"
	    "                     [--block-size 512|4096] [--no-io-uring]\n"
	    "                     [--no-packed] [--no-event-idx]\n"
	    "                     [--pidfile PATH] [--threads N] [--cpus "
	    "LIST]\n"
	    "                     [--io-timeout SECONDS]\n"
	    "       vio serve rng --socket PATH [--client] [--once] "
	    "[--pidfile PATH]\n"
	    "       vio serve net --socket PATH [--port KIND] ...   "
	    "('vio serve net --help')\n"
	    "       vio serve switch --socket PATH --socket PATH ... "
	    "('vio serve switch --help')\n\n"
	    "Serve a virtio device over vhost-user on a Unix socket, to one "
	    "frontend at a\ntime (e.g. QEMU: -chardev socket,id=c0,path=PATH "
	    "-device\nvhost-user-blk-pci,chardev=c0, with guest memory "
	    "shared: -object\nmemory-backend-memfd,share=on).  Runs until "
	    "SIGINT or SIGTERM, which finish\nthe requests in flight first.\n\n"
	    "  --socket PATH      Unix socket to listen on (mode 0600), or "
	    "with --client\n"
	    "                     the frontend's socket to connect to "
	    "(QEMU server=on)\n"
	    "  --image FILE       disk image: a regular file or a block "
	    "device, or a\n"
	    "                     network image: nbd://HOST[:PORT]/EXPORT "
	    "or\n"
	    "                     nbd+unix:///EXPORT?socket=PATH (NBD), "
	    "rbd:POOL/IMAGE\n"
	    "                     (Ceph RBD), when built with libnbd / "
	    "librbd\n"
	    "  --size SIZE        create FILE with SIZE bytes if missing "
	    "(K, M, G, T);\n"
	    "                     an existing FILE must have exactly this "
	    "size\n"
	    "  --queues N         request queues, 1..64 (default 1)\n"
	    "  --queue-size N     descriptors per queue offered, 4..32768 "
	    "(default 256)\n"
	    "  --readonly         read-only disk (VIRTIO_BLK_F_RO)\n"
	    "  --poll             busy-poll each queue for a while before "
	    "sleeping\n"
	    "  --threads N        worker threads, 1..64 (default: one per "
	    "queue, at most\n"
	    "                     the online CPUs); queue i runs on thread "
	    "i %% N\n"
	    "  --cpus LIST        pin the threads to CPUs (e.g. 0,2 or 0-3): "
	    "thread k on\n"
	    "                     the k-th CPU of LIST, wrapping around\n"
	    "  --client           connect to PATH instead of listening; "
	    "when the frontend\n"
	    "                     goes away, connect again until it is "
	    "back\n"
	    "  --once             exit when the first connection ends\n"
	    "  --serial S         GET_ID answer (at most 20 bytes)\n"
	    "  --block-size N     logical block size, 512 or 4096 (default "
	    "512)\n"
	    "  --no-io-uring      synchronous I/O (preadv/pwritev) instead "
	    "of io_uring\n"
	    "  --no-packed        do not offer the packed ring\n"
	    "  --no-event-idx     do not offer VIRTIO_RING_F_EVENT_IDX\n"
	    "  --io-timeout SECONDS\n"
	    "                     network image: a request the storage does "
	    "not answer\n"
	    "                     within SECONDS fails (I/O error) and the "
	    "connection is\n"
	    "                     made again; 1..3600 (default 30)\n"
	    "  --pidfile PATH     once the socket accepts connections "
	    "(--client: once\n"
	    "                     connected), write the PID to PATH "
	    "(atomically: it\n"
	    "                     appears whole); removed at exit\n"
	    "  -h, --help         this help\n\n"
	    "Readiness: scripts wait for the --pidfile to appear.  Under "
	    "systemd\n(Type=notify), when NOTIFY_SOCKET is set: READY=1 once "
	    "the socket accepts\nconnections, STATUS= as frontends come and "
	    "go, STOPPING=1 at shutdown.\nSocket activation: a listening "
	    "socket passed in LISTEN_FDS (one; a .socket\nunit with "
	    "ListenStream=) is served, and --socket must be left out.\n"
	    "SIGUSR1 prints the counters (connections; per queue: requests, "
	    "bytes,\nerrors, breaks) as one JSON line to stderr.\n"
	    "SIGHUP (blk) reads the image's size again and grows the disk "
	    "to it while\nthe frontend is connected (a guest sees the new "
	    "size); a smaller image is\nrefused and the size stays.\n");
}

enum {
	OPT_SOCKET = 256,
	OPT_IMAGE,
	OPT_SIZE,
	OPT_QUEUES,
	OPT_QSIZE,
	OPT_READONLY,
	OPT_POLL,
	OPT_CLIENT,
	OPT_ONCE,
	OPT_SERIAL,
	OPT_BSIZE,
	OPT_NO_URING,
	OPT_NO_PACKED,
	OPT_NO_EVIDX,
	OPT_PIDFILE,
	OPT_THREADS,
	OPT_CPUS,
	OPT_IO_TIMEOUT,
};

struct serve_opts {
	const char *type;
	const char *socket;
	const char *image;
	uint64_t size;
	unsigned queues;
	unsigned queue_size;
	unsigned block_size;
	const char *serial;
	const char *pidfile;
	unsigned threads;    /* --threads; 0: the engine's default */
	const char *cpus;    /* --cpus */
	unsigned io_timeout; /* --io-timeout; 0: the device's default */
	bool readonly, poll, client, once, no_uring, no_packed, no_evidx;
};

/* A network image (vio/blk.h: nbd://..., nbd+unix://..., rbd:...), not a
 * file to look for; a file with such a name is given as ./NAME. */
static bool image_is_uri(const char *image)
{
	return strstr(image, "://") || strncmp(image, "rbd:", 4) == 0;
}

/* activated: systemd passed a listening socket (LISTEN_FDS) */
static int parse(int argc, char **argv, struct serve_opts *o, bool activated)
{
	static const struct option lo[] = {
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"image", required_argument, NULL, OPT_IMAGE},
	    {"size", required_argument, NULL, OPT_SIZE},
	    {"queues", required_argument, NULL, OPT_QUEUES},
	    {"queue-size", required_argument, NULL, OPT_QSIZE},
	    {"readonly", no_argument, NULL, OPT_READONLY},
	    {"poll", no_argument, NULL, OPT_POLL},
	    {"client", no_argument, NULL, OPT_CLIENT},
	    {"once", no_argument, NULL, OPT_ONCE},
	    {"serial", required_argument, NULL, OPT_SERIAL},
	    {"block-size", required_argument, NULL, OPT_BSIZE},
	    {"no-io-uring", no_argument, NULL, OPT_NO_URING},
	    {"no-packed", no_argument, NULL, OPT_NO_PACKED},
	    {"no-event-idx", no_argument, NULL, OPT_NO_EVIDX},
	    {"pidfile", required_argument, NULL, OPT_PIDFILE},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"io-timeout", required_argument, NULL, OPT_IO_TIMEOUT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			serve_usage(stdout);
			return -1;
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_IMAGE:
			o->image = optarg;
			break;
		case OPT_SIZE:
			if (tool_parse_size(optarg, &o->size) || o->size == 0 ||
			    o->size % 512)
				return tool_usage_err(
				    CMD,
				    "--size '%s': expected a non-zero multiple "
				    "of 512 bytes (e.g. 1G, 64M)",
				    optarg);
			break;
		case OPT_QUEUES:
			if (tool_parse_uint(optarg, 1, 64, &v))
				return tool_usage_err(
				    CMD, "--queues '%s': expected 1..64",
				    optarg);
			o->queues = (unsigned)v;
			break;
		case OPT_QSIZE:
			if (tool_parse_uint(optarg, 4, 32768, &v))
				return tool_usage_err(
				    CMD, "--queue-size '%s': expected 4..32768",
				    optarg);
			o->queue_size = (unsigned)v;
			break;
		case OPT_BSIZE:
			if (tool_parse_uint(optarg, 512, 4096, &v) ||
			    (v != 512 && v != 4096))
				return tool_usage_err(
				    CMD,
				    "--block-size '%s': expected 512 or "
				    "4096",
				    optarg);
			o->block_size = (unsigned)v;
			break;
		case OPT_SERIAL:
			if (strlen(optarg) > 20)
				return tool_usage_err(
				    CMD, "--serial '%s': at most 20 bytes",
				    optarg);
			o->serial = optarg;
			break;
		case OPT_READONLY:
			o->readonly = true;
			break;
		case OPT_POLL:
			o->poll = true;
			break;
		case OPT_CLIENT:
			o->client = true;
			break;
		case OPT_ONCE:
			o->once = true;
			break;
		case OPT_NO_URING:
			o->no_uring = true;
			break;
		case OPT_NO_PACKED:
			o->no_packed = true;
			break;
		case OPT_NO_EVIDX:
			o->no_evidx = true;
			break;
		case OPT_THREADS:
			if (tool_parse_uint(optarg, 1, VIO_MAX_QUEUES, &v))
				return tool_usage_err(
				    CMD, "--threads '%s': expected 1..%u",
				    optarg, VIO_MAX_QUEUES);
			o->threads = (unsigned)v;
			break;
		case OPT_CPUS: {
			unsigned cpus[VIO_MAX_QUEUES];
			int n =
			    vio_run_parse_cpus(optarg, cpus, VIO_MAX_QUEUES);
			if (n < 0)
				return tool_usage_err(
				    CMD,
				    "--cpus '%s': expected CPU numbers and "
				    "ranges, e.g. 0,2 or 0-3 (CPUs 0..1023, "
				    "at most %u)",
				    optarg, VIO_MAX_QUEUES);
			o->cpus = optarg;
			break;
		}
		case OPT_IO_TIMEOUT:
			if (tool_parse_uint(optarg, 1, 3600, &v))
				return tool_usage_err(
				    CMD, "--io-timeout '%s': expected 1..3600",
				    optarg);
			o->io_timeout = (unsigned)v;
			break;
		case OPT_PIDFILE:
			if (!*optarg)
				return tool_usage_err(CMD,
						      "--pidfile: empty path");
			o->pidfile = optarg;
			break;
		default:
			return tool_getopt_err(CMD, c, argv);
		}
	}
	if (optind >= argc)
		return tool_usage_err(
		    CMD, "which device? (blk, rng, net or switch)");
	o->type = argv[optind++];
	if (optind < argc)
		return tool_usage_err(CMD, "unexpected argument '%s'",
				      argv[optind]);
	bool blk = strcmp(o->type, "blk") == 0;
	if (!blk && strcmp(o->type, "rng") != 0)
		return tool_usage_err(
		    CMD,
		    "unknown device type '%s' (blk, rng, net or "
		    "switch)",
		    o->type);
	if (activated && (o->socket || o->client))
		return tool_usage_err(
		    CMD,
		    "%s and a socket passed by systemd (LISTEN_FDS) exclude "
		    "each other: leave %s out",
		    o->client ? "--client" : "--socket",
		    o->client ? "--client" : "--socket");
	if (!o->socket && !activated)
		return tool_usage_err(CMD, "--socket PATH is required");
	if (blk && !o->image)
		return tool_usage_err(CMD, "--image FILE is required");
	if (!blk && (o->image || o->size || o->readonly || o->queues > 1 ||
		     o->io_timeout))
		return tool_usage_err(CMD, "--image, --size, --readonly, "
					   "--queues and --io-timeout are for "
					   "blk");
	return 0;
}

/* What the signal handlers work on. */
struct serve_ctx {
	const struct serve_opts *o;
	struct serve_sock *s;
	struct vio_blk_device *bd; /* NULL for rng */
};

/*
 * SIGUSR1: the counters as one JSON line on stderr, written with one
 * write() so that it is not interleaved with the workers' log lines.
 * Read racily (relaxed loads): a queue running meanwhile may be a batch
 * ahead in some fields.
 */
static void print_stats(void *arg)
{
	const struct serve_ctx *c = arg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		tool_err("stats: %s", strerror(errno));
		return;
	}
	bool conn = vio_backend_connected(c->s->be);
	fprintf(f,
		"{\"event\":\"stats\",\"device\":\"%s\",\"pid\":%d,"
		"\"connections\":%lu,\"reconnects\":%lu,\"connected\":%s,"
		"\"queues\":[",
		c->o->type, (int)getpid(), c->s->conns,
		c->s->conns ? c->s->conns - 1 : 0, conn ? "true" : "false");
	struct vio_blk_queue_stats t = {0};
	unsigned nq = c->bd ? vio_blk_device_num_queues(c->bd) : 0;
	for (unsigned i = 0; i < nq; i++) {
		struct vio_blk_queue_stats s;
		if (vio_blk_device_stats(c->bd, i, &s))
			continue;
		fprintf(f,
			"%s{\"queue\":%u,\"requests\":%" PRIu64
			",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
			",\"flushes\":%" PRIu64 ",\"bytes_read\":%" PRIu64
			",\"bytes_written\":%" PRIu64 ",\"errors\":%" PRIu64
			",\"broken\":%" PRIu64 "}",
			i ? "," : "", i, s.requests, s.reads, s.writes,
			s.flushes, s.bytes_read, s.bytes_written, s.errors,
			s.broken);
		t.requests += s.requests;
		t.bytes_read += s.bytes_read;
		t.bytes_written += s.bytes_written;
		t.errors += s.errors;
		t.broken += s.broken;
	}
	fprintf(f,
		"],\"requests\":%" PRIu64 ",\"bytes_read\":%" PRIu64
		",\"bytes_written\":%" PRIu64 ",\"errors\":%" PRIu64
		",\"broken\":%" PRIu64 "}\n",
		t.requests, t.bytes_read, t.bytes_written, t.errors, t.broken);
	if (fclose(f) == 0 && buf)
		serve_write_all(STDERR_FILENO, buf, len);
	free(buf);
}

/*
 * SIGHUP (blk): read the image's size again and grow the disk to it
 * (vio_blk_device_resize): the frontend is told over the backend channel
 * (a guest's /sys/block/vdX/size follows).  A smaller image is refused
 * and the capacity stays.  On this (the control) thread: the frontend's
 * GET_CONFIG that follows is answered by the loop below.
 */
static void serve_resize(void *arg)
{
	const struct serve_ctx *c = arg;
	if (!c->bd)
		return;
	uint64_t old = vio_blk_device_capacity(c->bd) * 512;
	char err[256] = "";
	int r = vio_blk_device_resize(c->bd, 0, err, sizeof(err));
	uint64_t now = vio_blk_device_capacity(c->bd) * 512;
	if (r)
		fprintf(stderr, "vio serve: blk %s: SIGHUP: %s\n", c->o->image,
			err[0] ? err : strerror(-r));
	else if (now == old)
		fprintf(stderr,
			"vio serve: blk %s: SIGHUP: size unchanged (%" PRIu64
			" bytes)\n",
			c->o->image, now);
	else
		fprintf(stderr,
			"vio serve: blk %s: resized from %" PRIu64
			" to %" PRIu64 " bytes\n",
			c->o->image, old, now);
}

/* blk or rng: opts parsed; nfds: the sockets systemd passed (0 or 1) */
static int serve_blk_rng(struct serve_opts *o, int nfds, const char *where)
{
	int r = serve_sigbus_guard();
	if (r)
		return r;

	struct vio_blk_device *bd = NULL;
	struct vio_device *dev = NULL;
	struct vio_rng_device *rd = NULL;
	char err[256] = "";
	bool blk = strcmp(o->type, "blk") == 0;
	if (blk && !o->size && !image_is_uri(o->image) &&
	    access(o->image, F_OK) != 0 && errno == ENOENT) {
		tool_err("image %s does not exist (--size SIZE creates it)",
			 o->image);
		return TOOL_EXIT_FAIL;
	}
	if (blk) {
		struct vio_blk_device_opts c = {
		    .path = o->image,
		    .size = o->size,
		    .serial = o->serial,
		    .num_queues = o->queues,
		    .queue_size = (uint16_t)o->queue_size,
		    .blk_size = o->block_size,
		    .readonly = o->readonly,
		    /* --poll: the workers busy-poll the rings and the
		     * device's completion queue (vio/run.h); the device's
		     * own in-kick poll is for callers without the engine */
		    .poll = false,
		    .no_io_uring = o->no_uring,
		    .no_packed = o->no_packed,
		    .no_event_idx = o->no_evidx,
		    .io_timeout = o->io_timeout,
		};
		bd = vio_blk_device_new(&c, err, sizeof(err));
		if (!bd) {
			tool_err("%s", err[0] ? err : strerror(errno));
			return TOOL_EXIT_FAIL;
		}
		dev = vio_blk_device_dev(bd);
	} else {
		struct vio_rng_device_opts c = {.queue_size =
						    (uint16_t)o->queue_size};
		rd = vio_rng_device_new(&c, err, sizeof(err));
		dev = vio_rng_device_dev(rd);
		if (!dev) {
			tool_err("%s", err[0] ? err : strerror(errno));
			return TOOL_EXIT_FAIL;
		}
	}

	/* signals through a signalfd: blocked before any thread starts */
	int sfd = serve_signals();
	int rc = TOOL_EXIT_FAIL;
	struct serve_sock s = {.path = o->socket};
	struct vio_run *run = NULL;
	struct tool_pidfile pidfile = {0};
	if (sfd < 0)
		goto out;
	snprintf(s.where, sizeof(s.where), "%s", where);

	struct vio_backend_opts bc = {0};
	/* the workers: made once, queue i on thread i % N (vio/run.h);
	 * after the signal mask, which they inherit */
	struct vio_run_opts ro = {
	    .threads = o->threads < o->queues ? o->threads : o->queues,
	    .num_queues = o->queues,
	    .cpus = o->cpus,
	    .poll = o->poll,
	};
	char rerr[160];
	run = vio_run_new(&ro, rerr, sizeof(rerr));
	if (!run) {
		tool_err("--threads/--cpus: %s", rerr);
		goto out;
	}
	vio_run_hooks(run, &bc);
	s.be = vio_backend_new(dev, &bc);
	if (!s.be) {
		tool_err("vhost-user backend: %s", strerror(errno));
		goto out;
	}
	if (serve_sock_start(&s, o->client, nfds == 1))
		goto out;
	const char *how = o->client ? "connected to" : "listening on";
	if (blk)
		fprintf(stderr,
			"vio serve: blk %s: %" PRIu64 " bytes, %u queue%s, "
			"%s%s, %s %s\n",
			o->image, vio_blk_device_capacity(bd) * 512, o->queues,
			o->queues == 1 ? "" : "s", vio_blk_device_backend(bd),
			o->readonly ? ", read-only" : "", how, s.where);
	else
		fprintf(stderr, "vio serve: rng (getrandom), %s %s\n", how,
			s.where);
	/* ready: the socket accepts connections (or we are connected) */
	char status[256];
	snprintf(status, sizeof(status), "%s %s (0 connections so far)", how,
		 s.where);
	if (serve_ready(&pidfile, o->pidfile, status))
		goto out;
	struct serve_ctx ctx = {.o = o, .s = &s, .bd = bd};
	struct serve_loop_ops lo = {
	    .usr1 = print_stats,
	    .hup = bd ? serve_resize : NULL,
	    .arg = &ctx,
	};
	rc = serve_loop(&s, 1, sfd, o->client, o->once, &lo);
	serve_stopping();

out:
	/* in-flight requests complete (and are pushed) before the workers
	 * stop; then no new kick can start */
	if (bd && vio_blk_device_drain(bd, 10000))
		tool_err("requests still in flight after 10 s");
	if (s.be)
		vio_backend_free(s.be);
	vio_run_free(run); /* after the backend: no queue left on it */
	if (bd) {
		vio_blk_device_free(bd);
	} else {
		vio_rng_device_free(rd);
	}
	if (sfd >= 0)
		close(sfd);
	/* last: the file disappears once the socket is gone */
	tool_pidfile_remove(&pidfile);
	return rc;
}

/*
 * The device type: the first word that is not an option or an option's
 * value (the options of every type that take one as the next word).
 */
static const char *device_type(int argc, char **argv)
{
	static const char *const with_value[] = {
	    "--socket",	    "--image",		"--size",	"--queues",
	    "--queue-size", "--serial",		"--block-size", "--pidfile",
	    "--threads",    "--cpus",		"--port",	"--mac",
	    "--mtu",	    "--stats-interval",
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-')
			return a;
		if (strchr(a, '='))
			continue;
		for (size_t k = 0; k < sizeof(with_value) / sizeof(*with_value);
		     k++)
			if (strcmp(a, with_value[k]) == 0) {
				i++;
				break;
			}
	}
	return NULL;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_opts o = {.queues = 1};
	/* first: the variables are removed whatever happens next */
	char fdname[64];
	int nfds = tool_listen_fds(fdname, sizeof(fdname));
	const char *type = device_type(argc, argv);
	if (type && (strcmp(type, "net") == 0 || strcmp(type, "switch") == 0))
		return serve_net_main(argc, argv, type, nfds, fdname);
	int r = parse(argc, argv, &o, nfds > 0);
	if (r)
		return r < 0 ? TOOL_EXIT_OK : r;
	char where[128] = "";
	if ((r = serve_activation(nfds, fdname, where, sizeof(where))))
		return r;
	if (nfds == 0)
		snprintf(where, sizeof(where), "%s", o.socket);
	return serve_blk_rng(&o, nfds, where);
}
