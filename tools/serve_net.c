/* SPDX-License-Identifier: MIT */
/*
 * vio serve net / vio serve switch: virtio-net devices (vio/net.h) over
 * vhost-user, served like blk (tools/serve_common.h: the same sockets,
 * --client reconnect, readiness, signals).
 *
 * net: one device on one socket, its frames going to one port (--port:
 * echo, sink, gen, tap:NAME).  The workers (vio/run.h) take queues in
 * groups of two (vio_run_opts.group = 2): a receiveq and its transmitq,
 * which is a queue pair, run on one worker, as the port contract requires
 * (vio/net.h); by default one worker per pair, at most one per CPU.
 *
 * switch: one learning switch (vio_net_switch), one device per --socket,
 * each on a switch port of its own, and every queue of every backend on
 * ONE worker: the switch copies frames ring to ring between devices and
 * requires that all of them run on one thread.
 *
 * Counters: at SIGINT/SIGTERM (after the queues stopped: final figures),
 * on SIGUSR1 (the service goes on) and every --stats-interval seconds,
 * the device's counters (vio_net_device_stats: per pair and the total)
 * and the port's (vio_net_port_stats, vio_net_switch_stats) go to stdout,
 * as one JSON line with --json (what the interop tests read), else as
 * readable lines.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vio/net.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#include "net.h"
#include "serve_common.h"
#include "util.h"

#define MAX_SOCKETS 32

static const char *ucmd = "serve net"; /* for usage errors */

static void net_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vio serve net --socket PATH [--port KIND] [--mac MAC] "
	    "[--mtu N]\n"
	    "                     [--queues N] [--queue-size N] [--packed] "
	    "[--poll]\n"
	    "                     [--tx-wait NS] [--threads N] [--cpus LIST] "
	    "[--client]\n"
	    "                     [--once] [--pidfile PATH] [--json] "
	    "[--stats-interval S] ...\n\n"
	    "Serve a virtio-net device over vhost-user on a Unix socket, to "
	    "one frontend\nat a time (QEMU: -chardev socket,id=c0,path=PATH "
	    "-netdev\nvhost-user,id=n0,chardev=c0 -device "
	    "virtio-net-pci,netdev=n0; DPDK: the vdev\n"
	    "net_virtio_user0,path=PATH).  Its frames go to a port.  Runs "
	    "until SIGINT or\nSIGTERM.\n\n"
	    "  --socket PATH      Unix socket to listen on (mode 0600), or "
	    "with --client\n"
	    "                     the frontend's socket to connect to\n"
	    "  --port KIND        where frames go (default echo):\n"
	    "                       echo       back to the driver, MAC "
	    "addresses swapped\n"
	    "                       sink       dropped (counted, contents "
	    "checked)\n"
	    "                       gen[:LEN]  none taken; every receive "
	    "buffer is filled\n"
	    "                                  with a UDP/IPv4 frame of LEN "
	    "bytes (60..9000,\n"
	    "                                  default 60)\n"
	    "                       tap:NAME   the Linux TAP interface NAME "
	    "(created if\n"
	    "                                  missing; needs "
	    "CAP_NET_ADMIN)\n"
	    "  --mac MAC          the device's MAC (default: a random "
	    "locally administered\n"
	    "                     one), e.g. 52:54:00:12:34:56\n"
	    "  --mtu N            MTU offered, 68..65535 (default 1500)\n"
	    "  --queues N         queue pairs, 1..%u (default 1; more than "
	    "1 offers MQ)\n"
	    "  --queue-size N     descriptors per queue offered, 4..32768 "
	    "(default 1024)\n"
	    "  --packed           offer the packed ring too (default: split "
	    "only)\n"
	    "  --no-mrg-rxbuf     do not offer VIRTIO_NET_F_MRG_RXBUF\n"
	    "  --no-ctrl-vq       do not offer the control queue "
	    "(VIRTIO_NET_F_CTRL_VQ)\n"
	    "  --no-event-idx     do not offer VIRTIO_RING_F_EVENT_IDX\n"
	    "  --poll             busy-poll the rings for a while before "
	    "sleeping\n"
	    "  --tx-wait NS       once a frame is on a transmit queue, wait "
	    "up to NS\n"
	    "                     nanoseconds (0..1000000, default 0) for a "
	    "batch of 64\n"
	    "                     before taking fewer: with --poll, less "
	    "contention with\n"
	    "                     a polling driver (DPDK) for up to NS more "
	    "latency\n"
	    "  --threads N        worker threads, 1..%u (default: one per "
	    "queue pair, at\n"
	    "                     most the online CPUs); pair k runs on "
	    "thread k %% N\n"
	    "  --cpus LIST        pin the threads to CPUs (e.g. 0,2 or "
	    "0-3)\n"
	    "  --client           connect to PATH instead of listening; "
	    "when the frontend\n"
	    "                     goes away, connect again until it is "
	    "back\n"
	    "  --once             exit when the first connection ends\n"
	    "  --pidfile PATH     once the socket accepts connections, write "
	    "the PID to\n"
	    "                     PATH (atomically); removed at exit\n"
	    "  --json             counters as one JSON line (default: "
	    "readable lines)\n"
	    "  --stats-interval S print the counters every S seconds "
	    "(1..86400)\n"
	    "  -h, --help         this help\n\n"
	    "Counters (per queue pair and in total: packets and bytes each "
	    "way, drops;\nthe port's packets, bad frames, frames made) go to "
	    "stdout at SIGINT and\nSIGTERM, on SIGUSR1 (without exiting) and "
	    "every --stats-interval.\nReadiness (--pidfile, NOTIFY_SOCKET) "
	    "and socket activation (LISTEN_FDS) as\nfor 'vio serve blk'.\n",
	    VIO_NET_MAX_PAIRS, VIO_MAX_QUEUES);
}

static void switch_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vio serve switch --socket PATH --socket PATH ... "
	    "[--poll] [--cpus LIST]\n"
	    "                        [--queues N] [--queue-size N] "
	    "[--packed] [--mtu N]\n"
	    "                        [--tx-wait NS] [--client] [--once] "
	    "[--pidfile PATH] "
	    "[--json]\n"
	    "                        [--stats-interval S]\n\n"
	    "A learning L2 switch: one virtio-net device per --socket (up to "
	    "%u), each a\nport of the switch; a frame goes to the port its "
	    "destination MAC was last\nseen on, or to every other port "
	    "(broadcast, multicast, unknown).  Every\nqueue runs on one "
	    "worker thread (the switch copies ring to ring).  Each\nsocket "
	    "takes one frontend at a time; frontends come and go "
	    "independently.\n\n"
	    "  --socket PATH      a port's socket (give it once per port)\n"
	    "  --queues N         queue pairs per device, 1..%u (default "
	    "1)\n"
	    "  --queue-size N     descriptors per queue offered, 4..32768 "
	    "(default 1024)\n"
	    "  --mtu N            MTU offered, 68..65535 (default 1500)\n"
	    "  --packed           offer the packed ring too\n"
	    "  --no-mrg-rxbuf     do not offer VIRTIO_NET_F_MRG_RXBUF\n"
	    "  --no-ctrl-vq       do not offer the control queue\n"
	    "  --no-event-idx     do not offer VIRTIO_RING_F_EVENT_IDX\n"
	    "  --poll             busy-poll the rings before sleeping\n"
	    "  --tx-wait NS       wait up to NS for a transmit batch, as "
	    "for serve net\n"
	    "  --cpus LIST        pin the worker thread to the first CPU of "
	    "LIST\n"
	    "  --client           connect to each PATH instead of "
	    "listening\n"
	    "  --once             exit when a connection ends\n"
	    "  --pidfile PATH     once every socket accepts connections, "
	    "write the PID\n"
	    "  --json             counters as one JSON line\n"
	    "  --stats-interval S print the counters every S seconds\n"
	    "  -h, --help         this help\n\n"
	    "Counters per port (the device's and the switch's: frames in "
	    "and out, flooded,\ndropped) go to stdout at SIGINT and SIGTERM, "
	    "on SIGUSR1 and every\n--stats-interval.\n",
	    MAX_SOCKETS, VIO_NET_MAX_PAIRS);
}

enum {
	OPT_SOCKET = 256,
	OPT_PORT,
	OPT_MAC,
	OPT_MTU,
	OPT_QUEUES,
	OPT_QSIZE,
	OPT_PACKED,
	OPT_NO_MRG,
	OPT_NO_CTRL,
	OPT_NO_EVIDX,
	OPT_POLL,
	OPT_TX_WAIT,
	OPT_THREADS,
	OPT_CPUS,
	OPT_CLIENT,
	OPT_ONCE,
	OPT_PIDFILE,
	OPT_JSON,
	OPT_INTERVAL,
};

struct serve_net_opts {
	bool is_switch;
	const char *sockets[MAX_SOCKETS];
	unsigned nsockets;
	const char *port; /* --port as given; NULL: echo */
	bool has_mac;
	uint8_t mac[VIO_NET_ETH_ALEN];
	unsigned mtu, queues, queue_size, threads;
	const char *cpus, *pidfile;
	bool packed, no_mrg, no_ctrl, no_evidx;
	bool poll, client, once, json;
	unsigned interval_s;
	unsigned tx_wait_ns;
};

/* --port: a kind this command knows (the port is made later). */
static int check_port(const char *s)
{
	uint64_t v;
	if (strcmp(s, "echo") == 0 || strcmp(s, "sink") == 0 ||
	    strcmp(s, "gen") == 0)
		return 0;
	if (strncmp(s, "gen:", 4) == 0) {
		if (tool_parse_uint(s + 4, 60, 9000, &v))
			return tool_usage_err(ucmd,
					      "--port '%s': the frame length "
					      "of gen is 60..9000 bytes",
					      s);
		return 0;
	}
	if (strncmp(s, "tap:", 4) == 0) {
		size_t n = strlen(s + 4);
		if (n == 0 || n > 15 || strchr(s + 4, '/'))
			return tool_usage_err(ucmd,
					      "--port '%s': tap:NAME takes an "
					      "interface name of 1..15 "
					      "characters",
					      s);
		return 0;
	}
	return tool_usage_err(ucmd,
			      "--port '%s': unknown port kind (tap:NAME, "
			      "echo, sink, gen[:LEN])",
			      s);
}

/* argv[0] is "serve"; activated: systemd passed a socket */
static int parse(int argc, char **argv, struct serve_net_opts *o,
		 bool activated)
{
	static const struct option lo[] = {
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"port", required_argument, NULL, OPT_PORT},
	    {"mac", required_argument, NULL, OPT_MAC},
	    {"mtu", required_argument, NULL, OPT_MTU},
	    {"queues", required_argument, NULL, OPT_QUEUES},
	    {"queue-size", required_argument, NULL, OPT_QSIZE},
	    {"packed", no_argument, NULL, OPT_PACKED},
	    {"no-mrg-rxbuf", no_argument, NULL, OPT_NO_MRG},
	    {"no-ctrl-vq", no_argument, NULL, OPT_NO_CTRL},
	    {"no-event-idx", no_argument, NULL, OPT_NO_EVIDX},
	    {"poll", no_argument, NULL, OPT_POLL},
	    {"tx-wait", required_argument, NULL, OPT_TX_WAIT},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"client", no_argument, NULL, OPT_CLIENT},
	    {"once", no_argument, NULL, OPT_ONCE},
	    {"pidfile", required_argument, NULL, OPT_PIDFILE},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"stats-interval", required_argument, NULL, OPT_INTERVAL},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, r;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			(o->is_switch ? switch_usage : net_usage)(stdout);
			return -1;
		case OPT_SOCKET:
			if (o->nsockets == MAX_SOCKETS)
				return tool_usage_err(
				    ucmd, "--socket: at most %u sockets",
				    MAX_SOCKETS);
			o->sockets[o->nsockets++] = optarg;
			break;
		case OPT_PORT:
			if (o->is_switch)
				return tool_usage_err(
				    ucmd,
				    "--port is for 'vio serve net' (each "
				    "socket of a switch is a switch port)");
			if ((r = check_port(optarg)))
				return r;
			o->port = optarg;
			break;
		case OPT_MAC:
			if (o->is_switch)
				return tool_usage_err(
				    ucmd, "--mac is for 'vio serve net'");
			if (net_parse_mac(optarg, o->mac))
				return tool_usage_err(
				    ucmd,
				    "--mac '%s': expected six hex bytes "
				    "like 52:54:00:12:34:56",
				    optarg);
			if (o->mac[0] & 1)
				return tool_usage_err(
				    ucmd,
				    "--mac '%s': a multicast address (the "
				    "first byte is odd)",
				    optarg);
			if (!(o->mac[0] | o->mac[1] | o->mac[2] | o->mac[3] |
			      o->mac[4] | o->mac[5]))
				return tool_usage_err(
				    ucmd, "--mac '%s': all zero", optarg);
			o->has_mac = true;
			break;
		case OPT_MTU:
			if ((r = tool_uint_opt(ucmd, "--mtu", optarg, 68, 65535,
					       &v)))
				return r;
			o->mtu = (unsigned)v;
			break;
		case OPT_QUEUES:
			if ((r = tool_uint_opt(ucmd, "--queues", optarg, 1,
					       VIO_NET_MAX_PAIRS, &v)))
				return r;
			o->queues = (unsigned)v;
			break;
		case OPT_QSIZE:
			if ((r = tool_uint_opt(ucmd, "--queue-size", optarg, 4,
					       32768, &v)))
				return r;
			o->queue_size = (unsigned)v;
			break;
		case OPT_PACKED:
			o->packed = true;
			break;
		case OPT_NO_MRG:
			o->no_mrg = true;
			break;
		case OPT_NO_CTRL:
			o->no_ctrl = true;
			break;
		case OPT_NO_EVIDX:
			o->no_evidx = true;
			break;
		case OPT_POLL:
			o->poll = true;
			break;
		case OPT_TX_WAIT:
			if ((r = tool_uint_opt(ucmd, "--tx-wait", optarg, 0,
					       VIO_NET_TX_WAIT_MAX, &v)))
				return r;
			o->tx_wait_ns = (unsigned)v;
			break;
		case OPT_THREADS:
			if (o->is_switch)
				return tool_usage_err(
				    ucmd, "--threads: the switch runs on one "
					  "thread (every device of a switch "
					  "must)");
			if ((r = tool_uint_opt(ucmd, "--threads", optarg, 1,
					       VIO_MAX_QUEUES, &v)))
				return r;
			o->threads = (unsigned)v;
			break;
		case OPT_CPUS: {
			unsigned cpus[VIO_MAX_QUEUES];
			if (vio_run_parse_cpus(optarg, cpus, VIO_MAX_QUEUES) <
			    0)
				return tool_usage_err(
				    ucmd,
				    "--cpus '%s': expected CPU numbers and "
				    "ranges, e.g. 0,2 or 0-3 (CPUs 0..1023, "
				    "at most %u)",
				    optarg, VIO_MAX_QUEUES);
			o->cpus = optarg;
			break;
		}
		case OPT_CLIENT:
			o->client = true;
			break;
		case OPT_ONCE:
			o->once = true;
			break;
		case OPT_PIDFILE:
			if (!*optarg)
				return tool_usage_err(ucmd,
						      "--pidfile: empty path");
			o->pidfile = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_INTERVAL:
			if ((r = tool_uint_opt(ucmd, "--stats-interval", optarg,
					       1, 86400, &v)))
				return r;
			o->interval_s = (unsigned)v;
			break;
		default:
			return tool_getopt_err(ucmd, c, argv);
		}
	}
	/* the type word (net or switch): cmd_serve found it already */
	if (optind < argc)
		optind++;
	if (optind < argc)
		return tool_usage_err(ucmd, "unexpected argument '%s'",
				      argv[optind]);
	if (o->is_switch) {
		if (activated)
			return tool_usage_err(
			    ucmd, "a socket passed by systemd (LISTEN_FDS) "
				  "is for 'vio serve net': a switch takes "
				  "--socket PATH for each port");
		if (o->nsockets == 0)
			return tool_usage_err(ucmd,
					      "--socket PATH is required (once "
					      "per port)");
		return 0;
	}
	if (activated && (o->nsockets || o->client))
		return tool_usage_err(
		    ucmd,
		    "%s and a socket passed by systemd (LISTEN_FDS) exclude "
		    "each other: leave %s out",
		    o->client ? "--client" : "--socket",
		    o->client ? "--client" : "--socket");
	if (o->nsockets > 1)
		return tool_usage_err(ucmd,
				      "one --socket (several are for 'vio "
				      "serve switch')");
	if (!o->nsockets && !activated)
		return tool_usage_err(ucmd, "--socket PATH is required");
	return 0;
}

/* ---- counters ---- */

struct net_srv {
	const struct serve_net_opts *o;
	struct serve_sock socks[MAX_SOCKETS];
	struct vio_net_device *nd[MAX_SOCKETS];
	unsigned n;		   /* devices made */
	struct vio_net_port *port; /* net */
	struct vio_net_switch *sw; /* switch */
};

static void json_dev(FILE *f, const struct vio_net_stats *s)
{
	fprintf(f,
		"\"rx_packets\":%" PRIu64 ",\"rx_bytes\":%" PRIu64
		",\"rx_no_buffer\":%" PRIu64 ",\"rx_dropped\":%" PRIu64
		",\"rx_filtered\":%" PRIu64 ",\"tx_packets\":%" PRIu64
		",\"tx_bytes\":%" PRIu64 ",\"tx_dropped\":%" PRIu64
		",\"tx_errors\":%" PRIu64 ",\"ctrl_ok\":%" PRIu64
		",\"ctrl_err\":%" PRIu64,
		s->rx_packets, s->rx_bytes, s->rx_no_buffer, s->rx_dropped,
		s->rx_filtered, s->tx_packets, s->tx_bytes, s->tx_dropped,
		s->tx_errors, s->ctrl_ok, s->ctrl_err);
}

static void text_dev(FILE *f, const char *who, const struct vio_net_stats *s)
{
	fprintf(f,
		"%s: to driver %" PRIu64 " packets %" PRIu64 " bytes (%" PRIu64
		" no buffer, %" PRIu64 " dropped, %" PRIu64
		" filtered); from driver %" PRIu64 " packets %" PRIu64
		" bytes (%" PRIu64 " dropped, %" PRIu64 " errors)\n",
		who, s->rx_packets, s->rx_bytes, s->rx_no_buffer, s->rx_dropped,
		s->rx_filtered, s->tx_packets, s->tx_bytes, s->tx_dropped,
		s->tx_errors);
}

static void stats_net(FILE *f, const struct net_srv *v, const char *event)
{
	const struct serve_sock *s = &v->socks[0];
	struct vio_net_device *nd = v->nd[0];
	unsigned pairs = vio_net_device_queue_pairs(nd);
	struct vio_net_stats t = {0};
	vio_net_device_stats(nd, VIO_NET_MAX_PAIRS, &t);
	struct vio_net_port_stats ps;
	bool has_ps = vio_net_port_stats(v->port, &ps) == 0;
	char mac[18];
	uint8_t m[VIO_NET_ETH_ALEN];
	vio_net_device_mac(nd, m);
	net_mac_str(m, mac);
	if (v->o->json) {
		fprintf(f,
			"{\"event\":\"%s\",\"device\":\"net\",\"pid\":%d,"
			"\"socket\":\"%s\",\"mac\":\"%s\",\"connections\":%lu,"
			"\"connected\":%s,\"pairs\":[",
			event, (int)getpid(), s->where, mac, s->conns,
			s->be && vio_backend_connected(s->be) ? "true"
							      : "false");
		for (unsigned q = 0; q < pairs; q++) {
			struct vio_net_stats ss = {0};
			vio_net_device_stats(nd, q, &ss);
			fprintf(f, "%s{\"pair\":%u,", q ? "," : "", q);
			json_dev(f, &ss);
			fputc('}', f);
		}
		fputs("],\"total\":{", f);
		json_dev(f, &t);
		fprintf(f, "},\"port\":{\"kind\":\"%s\"", v->port->kind);
		if (has_ps)
			fprintf(f,
				",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
				",\"bad\":%" PRIu64 ",\"made\":%" PRIu64,
				ps.packets, ps.bytes, ps.bad, ps.made);
		fputs("}}\n", f);
		return;
	}
	fprintf(f, "vio serve net %s (%s, %s): %lu connection%s\n", s->where,
		mac, event, s->conns, s->conns == 1 ? "" : "s");
	char who[32];
	for (unsigned q = 0; pairs > 1 && q < pairs; q++) {
		struct vio_net_stats ss = {0};
		vio_net_device_stats(nd, q, &ss);
		snprintf(who, sizeof(who), "  pair %u", q);
		text_dev(f, who, &ss);
	}
	text_dev(f, "  total", &t);
	fprintf(f, "  control queue: %" PRIu64 " ok, %" PRIu64 " refused\n",
		t.ctrl_ok, t.ctrl_err);
	if (has_ps)
		fprintf(f,
			"  port %s: %" PRIu64 " packets %" PRIu64
			" bytes taken, %" PRIu64 " bad, %" PRIu64 " made\n",
			v->port->kind, ps.packets, ps.bytes, ps.bad, ps.made);
}

static void stats_switch(FILE *f, const struct net_srv *v, const char *event)
{
	if (v->o->json)
		fprintf(f,
			"{\"event\":\"%s\",\"device\":\"switch\",\"pid\":%d,"
			"\"ports\":[",
			event, (int)getpid());
	else
		fprintf(f, "vio serve switch (%s): %u ports\n", event, v->n);
	for (unsigned i = 0; i < v->n; i++) {
		const struct serve_sock *s = &v->socks[i];
		struct vio_net_stats t = {0};
		vio_net_device_stats(v->nd[i], VIO_NET_MAX_PAIRS, &t);
		struct vio_net_switch_stats w = {0};
		bool has_w = vio_net_switch_stats(v->sw, i, &w) == 0;
		char mac[18];
		uint8_t m[VIO_NET_ETH_ALEN];
		vio_net_device_mac(v->nd[i], m);
		net_mac_str(m, mac);
		if (!v->o->json) {
			fprintf(f, "  port %u %s (%s): %lu connection%s\n", i,
				s->where, mac, s->conns,
				s->conns == 1 ? "" : "s");
			text_dev(f, "    device", &t);
			if (has_w)
				fprintf(f,
					"    switch: from driver %" PRIu64
					" packets %" PRIu64
					" bytes, to driver %" PRIu64
					" packets %" PRIu64 " bytes, %" PRIu64
					" flooded, %" PRIu64 " dropped\n",
					w.rx_packets, w.rx_bytes, w.tx_packets,
					w.tx_bytes, w.flooded, w.dropped);
			continue;
		}
		fprintf(f,
			"%s{\"port\":%u,\"socket\":\"%s\",\"mac\":\"%s\","
			"\"connections\":%lu,\"connected\":%s,\"device\":{",
			i ? "," : "", i, s->where, mac, s->conns,
			s->be && vio_backend_connected(s->be) ? "true"
							      : "false");
		json_dev(f, &t);
		fputc('}', f);
		if (has_w)
			fprintf(f,
				",\"switch\":{\"rx_packets\":%" PRIu64
				",\"rx_bytes\":%" PRIu64
				",\"tx_packets\":%" PRIu64
				",\"tx_bytes\":%" PRIu64 ",\"flooded\":%" PRIu64
				",\"dropped\":%" PRIu64 "}",
				w.rx_packets, w.rx_bytes, w.tx_packets,
				w.tx_bytes, w.flooded, w.dropped);
		fputc('}', f);
	}
	if (v->o->json)
		fputs("]}\n", f);
}

/* One write to stdout: the counters are not interleaved with anything. */
static void print_stats(const struct net_srv *v, const char *event)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		tool_err("stats: %s", strerror(errno));
		return;
	}
	if (v->sw)
		stats_switch(f, v, event);
	else
		stats_net(f, v, event);
	if (fclose(f) == 0 && buf)
		serve_write_all(STDOUT_FILENO, buf, len);
	free(buf);
}

static void on_usr1(void *arg)
{
	print_stats(arg, "stats");
}

static void on_tick(void *arg)
{
	print_stats(arg, "interval");
}

/* ---- setting up ---- */

/* The port of vio serve net (--port). */
static struct vio_net_port *make_port(const struct serve_net_opts *o)
{
	const char *k = o->port ? o->port : "echo";
	struct vio_net_port *p = NULL;
	char err[256] = "";
	if (strcmp(k, "echo") == 0)
		p = vio_net_port_echo_new();
	else if (strcmp(k, "sink") == 0)
		p = vio_net_port_sink_new();
	else if (strncmp(k, "gen", 3) == 0)
		p = vio_net_port_gen_new(k[3] == ':' ? (uint32_t)atoi(k + 4)
						     : 0);
	else if (strncmp(k, "tap:", 4) == 0)
		p = vio_net_port_tap_new(k + 4, o->queues, err, sizeof(err));
	if (!p)
		tool_err("--port %s: %s", k, err[0] ? err : strerror(errno));
	return p;
}

static int make_device(struct net_srv *v, unsigned i, struct vio_net_port *p,
		       const char *name)
{
	const struct serve_net_opts *o = v->o;
	struct vio_net_device_opts c = {
	    .name = name,
	    .mtu = (uint16_t)o->mtu,
	    .queue_pairs = o->queues,
	    .queue_size = (uint16_t)o->queue_size,
	    .port = p,
	    .packed = o->packed,
	    .no_event_idx = o->no_evidx,
	    .no_mrg_rxbuf = o->no_mrg,
	    .no_ctrl_vq = o->no_ctrl,
	    .tx_wait_ns = o->tx_wait_ns,
	};
	if (o->has_mac)
		memcpy(c.mac, o->mac, sizeof(c.mac));
	char err[256] = "";
	v->nd[i] = vio_net_device_new(&c, err, sizeof(err));
	if (!v->nd[i]) {
		tool_err("%s: %s", name, err[0] ? err : strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	v->n = i + 1;
	return 0;
}

int serve_net_main(int argc, char **argv, const char *type, int nfds,
		   const char *fdname)
{
	struct serve_net_opts o = {.queues = 1};
	o.is_switch = strcmp(type, "switch") == 0;
	ucmd = o.is_switch ? "serve switch" : "serve net";
	int r = parse(argc, argv, &o, nfds > 0);
	if (r)
		return r < 0 ? TOOL_EXIT_OK : r;
	char where[128] = "";
	if ((r = serve_activation(nfds, fdname, where, sizeof(where))))
		return r;
	bool inherited = nfds == 1;
	if ((r = serve_sigbus_guard()))
		return r;

	struct net_srv v = {.o = &o};
	unsigned nsock = inherited ? 1 : o.nsockets;
	int rc = TOOL_EXIT_FAIL;
	int sfd = -1;
	struct vio_run *run = NULL;
	struct tool_pidfile pidfile = {0};

	/* the devices and their ports */
	if (o.is_switch) {
		v.sw = vio_net_switch_new();
		if (!v.sw) {
			tool_err("switch: %s", strerror(errno));
			goto out;
		}
		for (unsigned i = 0; i < nsock; i++) {
			struct vio_net_port *p =
			    vio_net_switch_port(v.sw, o.sockets[i]);
			if (!p) {
				tool_err("switch port %s: %s", o.sockets[i],
					 strerror(errno));
				goto out;
			}
			if (make_device(&v, i, p, o.sockets[i]))
				goto out;
		}
	} else {
		v.port = make_port(&o);
		if (!v.port || make_device(&v, 0, v.port, "net"))
			goto out;
	}

	/* signals through a signalfd: blocked before any thread starts */
	if ((sfd = serve_signals()) < 0)
		goto out;
	/*
	 * The workers, made once.  net: a receiveq and its transmitq (a
	 * pair) on one worker (group = 2), pair k on worker k % threads, by
	 * default one per pair (at most one per CPU).  switch: one worker
	 * for every queue of every device.
	 */
	struct vio_run_opts ro = {
	    .threads = o.is_switch	      ? 1
		       : o.threads > o.queues ? o.queues
					      : o.threads,
	    .num_queues = o.queues,
	    .cpus = o.cpus,
	    .poll = o.poll,
	    .group = 2,
	};
	char rerr[160];
	run = vio_run_new(&ro, rerr, sizeof(rerr));
	if (!run) {
		tool_err("--threads/--cpus: %s", rerr);
		goto out;
	}
	for (unsigned i = 0; i < nsock; i++) {
		struct serve_sock *s = &v.socks[i];
		struct vio_backend_opts bc = {0};
		vio_run_hooks(run, &bc);
		s->path = inherited ? NULL : o.sockets[i];
		snprintf(s->where, sizeof(s->where), "%s",
			 inherited ? where : o.sockets[i]);
		s->be = vio_backend_new(vio_net_device_dev(v.nd[i]), &bc);
		if (!s->be) {
			tool_err("vhost-user backend: %s", strerror(errno));
			goto out;
		}
		if (serve_sock_start(s, o.client, inherited))
			goto out;
	}
	const char *how = o.client ? "connected to" : "listening on";
	char status[256];
	if (o.is_switch) {
		fprintf(stderr, "vio serve: switch, %u port%s, %s", nsock,
			nsock == 1 ? "" : "s", how);
		for (unsigned i = 0; i < nsock; i++)
			fprintf(stderr, " %s", v.socks[i].where);
		fputc('\n', stderr);
		snprintf(status, sizeof(status), "switch: %u ports %s", nsock,
			 how);
	} else {
		char mac[18];
		uint8_t m[VIO_NET_ETH_ALEN];
		vio_net_device_mac(v.nd[0], m);
		net_mac_str(m, mac);
		fprintf(stderr,
			"vio serve: net %s, port %s, MTU %u, %u pair%s, %s "
			"%s\n",
			mac, v.port->kind, o.mtu ? o.mtu : 1500, o.queues,
			o.queues == 1 ? "" : "s", how, v.socks[0].where);
		snprintf(status, sizeof(status), "%s %s (0 connections so far)",
			 how, v.socks[0].where);
	}
	/* ready: every socket accepts connections (or is connected) */
	if (serve_ready(&pidfile, o.pidfile, status))
		goto out;
	struct serve_loop_ops lo = {
	    .usr1 = on_usr1,
	    .tick = on_tick,
	    .tick_ms = o.interval_s * 1000,
	    .arg = &v,
	};
	rc = serve_loop(v.socks, nsock, sfd, o.client, o.once, &lo);
	serve_stopping();

out:
	/* the queues stop (ports detach their fds) before the counters are
	 * read: final figures */
	for (unsigned i = 0; i < nsock; i++)
		if (v.socks[i].be) {
			vio_backend_free(v.socks[i].be);
			v.socks[i].be = NULL;
		}
	if (rc == TOOL_EXIT_OK)
		print_stats(&v, "exit");
	vio_run_free(run);
	for (unsigned i = 0; i < v.n; i++)
		vio_net_device_free(v.nd[i]);
	vio_net_port_free(v.port);
	if (v.sw)
		vio_net_switch_free(v.sw);
	if (sfd >= 0)
		close(sfd);
	/* last: the file disappears once the socket is gone */
	tool_pidfile_remove(&pidfile);
	return rc;
}
