/* SPDX-License-Identifier: MIT */
/*
 * vio serve net / vio serve switch: usage and options (serve_net.h).  The
 * two commands share one option table; the switch refuses what is for
 * one device on one port (--port, --mac, a socket passed by systemd), net
 * takes one --socket.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <vio/net.h>
#include <vio/run.h>

#include "net.h"
#include "serve_net.h"
#include "util.h"

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
	    "                       sink       dropped (counted; no frame "
	    "byte read, like\n"
	    "                                  testpmd's rxonly)\n"
	    "                       sink:check dropped, each frame's "
	    "Ethernet/IPv4 header\n"
	    "                                  checked (the 'bad' counter)\n"
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

/* --port: a kind this command knows (the port is made later). */
static int check_port(const char *s)
{
	uint64_t v;
	if (strcmp(s, "echo") == 0 || strcmp(s, "sink") == 0 ||
	    strcmp(s, "sink:check") == 0 || strcmp(s, "gen") == 0)
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
			      "echo, sink[:check], gen[:LEN])",
			      s);
}

int serve_net_parse(int argc, char **argv, struct serve_net_opts *o,
		    bool activated)
{
	ucmd = o->is_switch ? "serve switch" : "serve net";
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
