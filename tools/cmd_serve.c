/* SPDX-License-Identifier: MIT */
/*
 * vio serve: a device, served over vhost-user to one frontend at a time
 * (QEMU, qemu-storage-daemon's peers, vio's own frontend).
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
 * Frontend gone: listening, the next one is accepted (a restarted QEMU
 * with reconnect=1); --client connects again to the same path, with a
 * bounded backoff, until the frontend is back (QEMU server=on restarted);
 * --once exits instead, in both modes.
 *
 * Readiness: the --pidfile and systemd's READY=1 (tools/ready.h) are sent
 * only once the socket accepts connections (vio_backend_listen returns
 * with the socket listening), so a script that waits on them never gets
 * ECONNREFUSED.  Guest memory a frontend truncates under us would raise
 * SIGBUS: the library's process-wide guard turns that into the end of
 * that connection, and this command opts in before serving.
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
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <vio/blk.h>
#include <vio/mem.h>
#include <vio/rng.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#include "cmds.h"
#include "ready.h"
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
	    "       vio serve rng --socket PATH [--client] [--once] "
	    "[--pidfile PATH]\n\n"
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
	    "device\n"
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
	unsigned threads;  /* --threads; 0: the engine's default */
	const char *cpus;  /* --cpus */
	bool readonly, poll, client, once, no_uring, no_packed, no_evidx;
};

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
			int n = vio_run_parse_cpus(optarg, cpus,
						   VIO_MAX_QUEUES);
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
		return tool_usage_err(CMD, "which device? (blk or rng)");
	o->type = argv[optind++];
	if (optind < argc)
		return tool_usage_err(CMD, "unexpected argument '%s'",
				      argv[optind]);
	bool blk = strcmp(o->type, "blk") == 0;
	if (!blk && strcmp(o->type, "rng") != 0)
		return tool_usage_err(
		    CMD, "unknown device type '%s' (blk or rng)", o->type);
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
	if (!blk && (o->image || o->size || o->readonly || o->queues > 1))
		return tool_usage_err(
		    CMD,
		    "--image, --size, --readonly and --queues are for blk");
	return 0;
}

static bool stopping_sent; /* STOPPING=1 went out */

/*
 * Tell the service manager (NOTIFY_SOCKET), if there is one; a failure is
 * said once and does not stop the service.
 */
static void __attribute__((format(printf, 1, 2)))
serve_notify(const char *fmt, ...)
{
	static bool warned;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int r = tool_notify("%s", msg);
	if (r && !warned) {
		warned = true;
		tool_err("NOTIFY_SOCKET %s: %s", getenv("NOTIFY_SOCKET"),
			 strerror(-r));
	}
}

/* The frontend is gone: what next?  false: exit.  (--client: connect
 * again, serve_loop's reconnect; listening: accept the next one.) */
static bool next_connection(const struct serve_opts *o)
{
	return !o->once;
}

/* What serve_loop works on. */
struct serve_ctx {
	const struct serve_opts *o;
	struct vio_backend *be;
	struct vio_blk_device *bd; /* NULL for rng */
	const char *where;	   /* the socket, for messages */
	unsigned long conns;	   /* connections so far (the backend's) */
};

/*
 * SIGUSR1: the counters as one JSON line on stderr, written with one
 * write() so that it is not interleaved with the workers' log lines.
 * Read racily (relaxed loads): a queue running meanwhile may be a batch
 * ahead in some fields.
 */
static void print_stats(const struct serve_ctx *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		tool_err("stats: %s", strerror(errno));
		return;
	}
	bool conn = vio_backend_connected(c->be);
	fprintf(f,
		"{\"event\":\"stats\",\"device\":\"%s\",\"pid\":%d,"
		"\"connections\":%lu,\"reconnects\":%lu,\"connected\":%s,"
		"\"queues\":[",
		c->o->type, (int)getpid(), c->conns,
		c->conns ? c->conns - 1 : 0, conn ? "true" : "false");
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
	if (fclose(f) == 0 && buf) {
		size_t off = 0;
		while (off < len) {
			ssize_t w = write(STDERR_FILENO, buf + off, len - off);
			if (w <= 0 && errno != EINTR)
				break;
			if (w > 0)
				off += (size_t)w;
		}
	}
	free(buf);
}

/*
 * --client reconnect: the frontend (QEMU -chardev socket,server=on) went
 * away; connect again to the same path until it is back.  Tries are
 * spaced by a backoff that doubles from RECONNECT_MIN_MS to
 * RECONNECT_MAX_MS (bounded: a frontend that returns is found within
 * RECONNECT_MAX_MS), forever, unless --once; signals are still served
 * between tries (SIGTERM ends the wait at once).  A path that cannot work
 * at all (too long) ends it.
 */
#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 2000

struct reconnect {
	bool on;	      /* waiting for the frontend to come back */
	int delay_ms;	      /* between the last try and the next */
	unsigned long n;      /* failed tries so far */
	struct timespec t;    /* when the connection ended */
	struct timespec next; /* when the next try is due */
};

static int64_t ms_between(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000 +
	       (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* ms until the next try is due (0: now); a poll timeout.  A deadline, not
 * a plain timeout, so that signals (SIGUSR1) cannot put tries off. */
static int reconnect_wait_ms(const struct reconnect *rc)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = ms_between(&now, &rc->next);
	return ms <= 0 ? 0 : ms > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : (int)ms;
}

static void reconnect_after(struct reconnect *rc, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, &rc->next);
	rc->next.tv_nsec += (long)ms * 1000000;
	rc->next.tv_sec += rc->next.tv_nsec / 1000000000;
	rc->next.tv_nsec %= 1000000000;
}

static void reconnect_begin(struct reconnect *rc, const char *where)
{
	*rc = (struct reconnect){.on = true, .delay_ms = RECONNECT_MIN_MS};
	clock_gettime(CLOCK_MONOTONIC, &rc->t);
	reconnect_after(rc, rc->delay_ms);
	fprintf(stderr,
		"vio serve: %s: frontend gone; connecting again (every "
		"%d..%d ms) until it is back\n",
		where, RECONNECT_MIN_MS, RECONNECT_MAX_MS);
}

/* One try.  0: connected again; -EAGAIN: not yet; else a lasting error. */
static int reconnect_try(struct reconnect *rc, struct serve_ctx *c)
{
	int r = vio_backend_connect(c->be, c->o->socket);
	if (r == -ENAMETOOLONG || r == -EINVAL) {
		tool_err("connect %s: %s", c->o->socket, strerror(-r));
		return r;
	}
	if (r) {
		/* the first failure, then one line a minute at most */
		rc->n++;
		unsigned long every = 60000 / RECONNECT_MAX_MS;
		if (rc->n == 1 || rc->n % every == 0)
			fprintf(stderr,
				"vio serve: connect %s: %s (try %lu; still "
				"trying)\n",
				c->o->socket, strerror(-r), rc->n);
		rc->delay_ms = rc->delay_ms * 2 > RECONNECT_MAX_MS
				   ? RECONNECT_MAX_MS
				   : rc->delay_ms * 2;
		reconnect_after(rc, rc->delay_ms);
		return -EAGAIN;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double s = (double)ms_between(&rc->t, &now) / 1000;
	fprintf(stderr,
		"vio serve: %s: connected again after %.1f s (%lu failed "
		"tr%s)\n",
		c->o->socket, s, rc->n, rc->n == 1 ? "y" : "ies");
	rc->on = false;
	return 0;
}

/*
 * SIGHUP (blk): read the image's size again and grow the disk to it
 * (vio_blk_device_resize): the frontend is told over the backend channel
 * (a guest's /sys/block/vdX/size follows).  A smaller image is refused
 * and the capacity stays.  On this (the control) thread: the frontend's
 * GET_CONFIG that follows is answered by the loop below.
 */
static void serve_resize(const struct serve_ctx *c)
{
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

static int serve_loop(struct serve_ctx *c, int sfd)
{
	const struct serve_opts *o = c->o;
	struct vio_backend *be = c->be;
	bool was_connected = false;
	struct reconnect rc = {0};
	for (;;) {
		bool conn = vio_backend_connected(be);
		if (conn && !was_connected) {
			/* the backend's number, which its log lines carry */
			c->conns = vio_backend_connections(be);
			fprintf(stderr,
				"vio serve: connection %lu: frontend "
				"attached\n",
				c->conns);
			serve_notify("STATUS=connection %lu: frontend attached "
				     "(%lu connection%s so far)",
				     c->conns, c->conns,
				     c->conns == 1 ? "" : "s");
		}
		was_connected = conn;
		struct pollfd p[2] = {
		    {.fd = sfd, .events = POLLIN},
		    {.fd = vio_backend_fd(be), .events = POLLIN},
		};
		/* --client without a frontend: no fd but the signals' (a
		 * negative fd is ignored), and a try whenever one is due */
		int n = poll(p, 2, rc.on ? reconnect_wait_ms(&rc) : -1);
		if (n < 0 && errno != EINTR) {
			tool_err("poll: %s", strerror(errno));
			return TOOL_EXIT_FAIL;
		}
		if (rc.on && reconnect_wait_ms(&rc) == 0) {
			int r = reconnect_try(&rc, c);
			if (r && r != -EAGAIN)
				return TOOL_EXIT_FAIL;
			continue; /* a pending signal is read next turn */
		}
		if (n <= 0)
			continue;
		if (p[0].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGUSR1) {
				print_stats(c);
				continue;
			}
			if (si.ssi_signo == SIGHUP && c->bd) {
				serve_resize(c);
				continue;
			}
			const char *sig = strsignal((int)si.ssi_signo);
			fprintf(stderr,
				"vio serve: %s: finishing requests in "
				"flight, then exiting\n",
				sig);
			serve_notify("STOPPING=1\nSTATUS=%s: finishing "
				     "requests in flight (%lu connection%s "
				     "served)",
				     sig, c->conns, c->conns == 1 ? "" : "s");
			stopping_sent = true;
			return TOOL_EXIT_OK;
		}
		if (!p[1].revents)
			continue;
		int r = vio_backend_dispatch(be);
		if (r == -ECONNRESET) {
			fprintf(stderr, "vio serve: connection %lu: ended\n",
				c->conns);
			was_connected = false;
			if (!next_connection(o))
				return TOOL_EXIT_OK;
			if (o->client)
				reconnect_begin(&rc, c->where);
			serve_notify("STATUS=connection %lu ended; waiting for "
				     "a frontend (%lu connection%s so far)",
				     c->conns, c->conns,
				     c->conns == 1 ? "" : "s");
		} else if (r < 0) {
			tool_err("serving %s: %s", c->where, strerror(-r));
			return TOOL_EXIT_FAIL;
		}
	}
}

/* Serve the socket systemd passed (fd 3): why it cannot be, or 0. */
static int listen_inherited(struct vio_backend *be, const char *where)
{
	int r = vio_backend_listen_fd(be, TOOL_LISTEN_FDS_START);
	if (r == -ENOTSOCK)
		tool_err("%s: not a socket", where);
	else if (r == -EAFNOSUPPORT)
		tool_err("%s: not a Unix socket (ListenStream= takes a path)",
			 where);
	else if (r == -EPROTOTYPE)
		tool_err("%s: not a stream socket (ListenStream=)", where);
	else if (r == -EINVAL)
		tool_err("%s: not listening (the .socket unit must not say "
			 "Accept=yes)",
			 where);
	else if (r)
		tool_err("%s: %s", where, strerror(-r));
	return r;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_opts o = {.queues = 1};
	/* first: the variables are removed whatever happens next */
	char fdname[64];
	int nfds = tool_listen_fds(fdname, sizeof(fdname));
	int r = parse(argc, argv, &o, nfds > 0);
	if (r)
		return r < 0 ? TOOL_EXIT_OK : r;
	if (nfds < 0) {
		tool_err("LISTEN_FDS/LISTEN_PID from the service manager: %s",
			 nfds == -EBADF ? "a passed fd is not open"
					: "malformed");
		return TOOL_EXIT_FAIL;
	}
	if (nfds > 1) {
		tool_err("systemd passed %d sockets (LISTEN_FDS); vio serve "
			 "serves one: give the .socket unit one ListenStream=",
			 nfds);
		return TOOL_EXIT_FAIL;
	}
	char where[128];
	if (nfds == 1)
		snprintf(where, sizeof(where), "fd %d from systemd%s%s%s",
			 TOOL_LISTEN_FDS_START, fdname[0] ? " (" : "", fdname,
			 fdname[0] ? ")" : "");
	else
		snprintf(where, sizeof(where), "%s", o.socket);

	/* a frontend that truncates its memory file ends its connection, not
	 * this process (vio/mem.h); installed before any guest memory is
	 * mapped */
	r = vio_mem_sigbus_guard_install();
	if (r) {
		tool_err("cannot install the SIGBUS guard for guest memory: %s",
			 strerror(-r));
		return TOOL_EXIT_FAIL;
	}

	struct vio_blk_device *bd = NULL;
	struct vio_device *dev = NULL;
	struct vio_rng_device *rd = NULL;
	char err[256] = "";
	bool blk = strcmp(o.type, "blk") == 0;
	if (blk && !o.size && access(o.image, F_OK) != 0 && errno == ENOENT) {
		tool_err("image %s does not exist (--size SIZE creates it)",
			 o.image);
		return TOOL_EXIT_FAIL;
	}
	if (blk) {
		struct vio_blk_device_opts c = {
		    .path = o.image,
		    .size = o.size,
		    .serial = o.serial,
		    .num_queues = o.queues,
		    .queue_size = (uint16_t)o.queue_size,
		    .blk_size = o.block_size,
		    .readonly = o.readonly,
		    /* --poll: the workers busy-poll the rings and the
		     * device's completion queue (vio/run.h); the device's
		     * own in-kick poll is for callers without the engine */
		    .poll = false,
		    .no_io_uring = o.no_uring,
		    .no_packed = o.no_packed,
		    .no_event_idx = o.no_evidx,
		};
		bd = vio_blk_device_new(&c, err, sizeof(err));
		if (!bd) {
			tool_err("%s", err[0] ? err : strerror(errno));
			return TOOL_EXIT_FAIL;
		}
		dev = vio_blk_device_dev(bd);
	} else {
		struct vio_rng_device_opts c = {.queue_size =
						    (uint16_t)o.queue_size};
		rd = vio_rng_device_new(&c, err, sizeof(err));
		dev = vio_rng_device_dev(rd);
		if (!dev) {
			tool_err("%s", err[0] ? err : strerror(errno));
			return TOOL_EXIT_FAIL;
		}
	}

	/* signals through a signalfd: blocked before any thread starts */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGUSR1); /* counters, not an exit */
	signal(SIGPIPE, SIG_IGN);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	int rc = TOOL_EXIT_FAIL;
	struct vio_backend *be = NULL;
	struct vio_run *run = NULL;
	struct tool_pidfile pidfile = {0};
	if (sfd < 0) {
		tool_err("signalfd: %s", strerror(errno));
		goto out;
	}

	struct vio_backend_opts bc = {0};
	/* the workers: made once, queue i on thread i % N (vio/run.h);
	 * after the signal mask, which they inherit */
	struct vio_run_opts ro = {
	    .threads = o.threads < o.queues ? o.threads : o.queues,
	    .num_queues = o.queues,
	    .cpus = o.cpus,
	    .poll = o.poll,
	};
	char rerr[160];
	run = vio_run_new(&ro, rerr, sizeof(rerr));
	if (!run) {
		tool_err("--threads/--cpus: %s", rerr);
		goto out;
	}
	vio_run_hooks(run, &bc);
	be = vio_backend_new(dev, &bc);
	if (!be) {
		tool_err("vhost-user backend: %s", strerror(errno));
		goto out;
	}
	if (nfds == 1) {
		if (listen_inherited(be, where))
			goto out;
		r = 0;
	} else {
		r = o.client ? vio_backend_connect(be, o.socket)
			     : vio_backend_listen(be, o.socket);
	}
	if (r) {
		if (r == -EADDRINUSE)
			tool_err("%s: socket in use by another process",
				 o.socket);
		else if (r == -EEXIST)
			tool_err("%s: exists and is not a socket (not "
				 "replacing it)",
				 o.socket);
		else if (r == -ENAMETOOLONG)
			tool_err("%s: socket path too long (at most 107 "
				 "bytes)",
				 o.socket);
		else
			tool_err("%s %s: %s", o.client ? "connect" : "listen",
				 o.socket, strerror(-r));
		goto out;
	}
	if (blk)
		fprintf(stderr,
			"vio serve: blk %s: %" PRIu64 " bytes, %u queue%s, "
			"%s%s, %s %s\n",
			o.image, vio_blk_device_capacity(bd) * 512, o.queues,
			o.queues == 1 ? "" : "s", vio_blk_device_backend(bd),
			o.readonly ? ", read-only" : "",
			o.client ? "connected to" : "listening on", where);
	else
		fprintf(stderr, "vio serve: rng (getrandom), %s %s\n",
			o.client ? "connected to" : "listening on", where);
	/* ready: the socket accepts connections (or we are connected) */
	if (o.pidfile && (r = tool_pidfile_write(&pidfile, o.pidfile))) {
		tool_err("--pidfile %s: %s", o.pidfile, strerror(-r));
		goto out;
	}
	serve_notify("READY=1\nSTATUS=%s %s (0 connections so far)",
		     o.client ? "connected to" : "listening on", where);
	struct serve_ctx ctx = {.o = &o, .be = be, .bd = bd, .where = where};
	rc = serve_loop(&ctx, sfd);
	if (!stopping_sent)
		serve_notify("STOPPING=1\nSTATUS=exiting");

out:
	/* in-flight requests complete (and are pushed) before the workers
	 * stop; then no new kick can start */
	if (bd && vio_blk_device_drain(bd, 10000))
		tool_err("requests still in flight after 10 s");
	if (be)
		vio_backend_free(be);
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
