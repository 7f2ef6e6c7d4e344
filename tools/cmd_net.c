/* SPDX-License-Identifier: MIT */
/*
 * vio net: drive a virtio-net device with vio's net driver (vio/net.h)
 * over the vhost-user frontend: vio serve net, DPDK's net_vhost, any
 * vhost-user-net backend.  The files: tools/net.h.
 *
 *   info    what probe found: MAC, MTU, link, queue pairs, features
 *   send    numbered UDP/IPv4 test frames
 *   recv    count what comes, and the malformed
 *   ping    one frame at a time to an echo port (or DPDK's macswap):
 *           each must come back intact with its MAC addresses swapped
 *   bench   packets per second and Gbit/s: tx, rx or loop, one thread
 *           per queue pair
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <vio/bus.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

#include "cmds.h"
#include "net.h"
#include "util.h"

static const char *ucmd = NET_CMD; /* "net", then "net VERB" */

static void net_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vio net --socket PATH [options] VERB [args]\n\n"
	    "Drive a virtio-net device with vio's driver over vhost-user: "
	    "vio serve net,\nDPDK's net_vhost, any vhost-user-net backend "
	    "listening at PATH.\n\n"
	    "verbs:\n"
	    "  info     MAC, MTU, link, queue pairs, negotiated features "
	    "[--json]\n"
	    "  send     send numbered UDP/IPv4 frames [--count N] [--size "
	    "B] [--dst MAC]\n"
	    "  recv     count the frames that come [--count N] [--timeout "
	    "S] [--json]\n"
	    "  ping     send frames one at a time and check each comes back "
	    "intact,\n"
	    "           MAC-swapped (an echo port, DPDK macswap) [--count N] "
	    "[--size B]\n"
	    "  bench    Mpps and Gbit/s per direction [--mode tx|rx|loop] "
	    "[--time S]\n"
	    "           [--size B] [--burst N] [--poll] [--json]\n"
	    "'vio net VERB --help' tells more.\n\n"
	    "options:\n"
	    "  --socket PATH      the vhost-user-net backend's socket\n"
	    "  --timeout MS       keep retrying the connection for MS ms "
	    "(default 0)\n"
	    "  --reconnect[=SECONDS]\n"
	    "                     when the backend goes away, wait up to "
	    "SECONDS (default\n"
	    "                     30) for it to return (split rings only)\n"
	    "  --queues N         queue pairs to use, 1..%u (default: every "
	    "pair the device\n"
	    "                     has)\n"
	    "  --queue-size N     descriptors per queue, 4..32768 (default: "
	    "the device's\n"
	    "                     maximum, at most 1024)\n"
	    "  --packed           require the packed ring (fail if the device "
	    "does not offer\n"
	    "                     it); default: packed when offered\n"
	    "  --no-packed        do not use packed rings\n"
	    "  --no-mrg-rxbuf     do not use mergeable receive buffers\n"
	    "  --no-event-idx     do not use VIRTIO_RING_F_EVENT_IDX\n"
	    "  --no-ctrl-vq       do not use the control queue\n"
	    "  -h, --help         this help\n\n"
	    "Exit status: 0 ok, 1 the work failed (no device, frames lost or "
	    "corrupted),\n2 bad command line.\n",
	    VIO_NET_MAX_PAIRS);
}

static void info_usage(FILE *f)
{
	fprintf(f, "usage: vio net --socket PATH info [--json]\n\n"
		   "Print what the driver found: the MAC address, MTU, link "
		   "status, queue pairs\n(in use and the most the device "
		   "has), queue size, ring format and the\nnegotiated "
		   "features.\n\n"
		   "  --json     one JSON object on stdout\n");
}

static void send_usage(FILE *f)
{
	fprintf(f,
		"usage: vio net --socket PATH send [--count N] [--size B] "
		"[--dst MAC]\n\n"
		"Send N UDP/IPv4 frames (valid checksums; the payload holds a "
		"sequence number\nand a pattern a receiver can check: vio net "
		"recv, an echo or sink port),\non queue pair 0, from the "
		"device's MAC address.  Exits once the device\nhas taken them "
		"all.\n\n"
		"  --count N     frames (default 1000)\n"
		"  --size B      frame bytes without the virtio header, "
		"60..65535 (default 64;\n"
		"                at most the MTU + 18: an Ethernet header and "
		"a VLAN tag)\n"
		"  --dst MAC     destination (default ff:ff:ff:ff:ff:ff)\n");
}

static void recv_usage(FILE *f)
{
	fprintf(f, "usage: vio net --socket PATH recv [--count N] [--timeout "
		   "S] [--json]\n\n"
		   "Receive frames on every queue pair until N came or S "
		   "seconds passed, then\nprint how many, their bytes, and "
		   "how many were malformed (short, a bad IPv4\nheader "
		   "checksum or length, or vio's own test frames altered). "
		   "Exit 1 if\nfewer than N came or any was malformed.\n\n"
		   "  --count N     frames to wait for (default 0: until the "
		   "timeout)\n"
		   "  --timeout S   seconds (default 10)\n"
		   "  --json        one JSON object on stdout\n");
}

static void ping_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vio net --socket PATH ping [--count N] [--size B] "
	    "[--dst MAC]\n"
	    "              [--timeout S] [--json]\n\n"
	    "Send N frames one at a time on queue pair 0 to a port that "
	    "sends them back\nwith the MAC addresses swapped (vio serve net's "
	    "echo port, DPDK testpmd\nmacswap) and check that each comes "
	    "back whole; print the round-trip times\n(min, average, p99). "
	    "Exit 1 if one is lost or altered.\n\n"
	    "  --count N     frames (default 10)\n"
	    "  --size B      frame bytes, 60..65535 (default 64)\n"
	    "  --dst MAC     destination (default 02:00:00:00:00:01)\n"
	    "  --timeout S   seconds to wait for each answer (default 1)\n"
	    "  --json        one JSON object on stdout\n");
}

static void bench_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vio net --socket PATH bench [--mode tx|rx|loop] "
	    "[--time S] [--size B]\n"
	    "              [--burst N] [--poll] [--json]\n\n"
	    "Measure packets per second and Gbit/s (frame bytes, without "
	    "the virtio\nheader) in each direction, one thread per queue "
	    "pair (--queues).  tx and\nloop write each frame in place into "
	    "a transmit slot the driver lends\n(vio_net_tx_bufs): the "
	    "Ethernet/IPv4/UDP headers per frame, the payload\nonce per "
	    "slot, as DPDK's testpmd txonly does.\n\n"
	    "  --mode tx     send as fast as the ring takes (to a sink port, "
	    "DPDK rxonly)\n"
	    "  --mode rx     count what the device sends (a gen port, DPDK "
	    "txonly)\n"
	    "  --mode loop   send and receive on each pair (an echo port, "
	    "DPDK macswap or\n"
	    "                io forwarding); default\n"
	    "  --time S      seconds, 0.1..3600 (default 5)\n"
	    "  --size B      frame bytes, 60..65535 (default 64)\n"
	    "  --burst N     frames per send and receive call, 1..256 "
	    "(default 32)\n"
	    "  --poll        busy-poll: never wait for an interrupt (receive "
	    "with timeout 0,\n"
	    "                callbacks left off), as DPDK's virtio-user "
	    "driver does\n"
	    "  --json        one JSON object on stdout\n");
}

/* "5", "0.5", "2s", "500ms": seconds in [min, max]. */
static int parse_secs(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		v /= 1000.0;
	else if (*end && strcmp(end, "s") != 0)
		return -EINVAL;
	if (!(v >= min) || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_global(int argc, char **argv, struct net_opts *o)
{
	static const struct option lo[] = {
	    TOOL_CONN_LONGOPTS,
	    {"queues", required_argument, NULL, 'q'},
	    {"queue-size", required_argument, NULL, 's'},
	    {"packed", no_argument, NULL, 'p'},
	    {"no-packed", no_argument, NULL, 'P'},
	    {"no-mrg-rxbuf", no_argument, NULL, 'M'},
	    {"no-event-idx", no_argument, NULL, 'E'},
	    {"no-ctrl-vq", no_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, r;
	opterr = 0;
	optind = 0;
	/* '+': stop at the verb; its options are its own */
	while ((c = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		if ((r = tool_conn_opt(ucmd, c, optarg, &o->conn)) !=
		    TOOL_CONN_OTHER) {
			if (r)
				return r;
			continue;
		}
		switch (c) {
		case 'q':
			if ((r = tool_uint_opt(ucmd, "--queues", optarg, 1,
					       VIO_NET_MAX_PAIRS, &v)))
				return r;
			o->queues = (unsigned)v;
			break;
		case 's':
			if ((r = tool_uint_opt(ucmd, "--queue-size", optarg, 4,
					       32768, &v)))
				return r;
			o->queue_size = (unsigned)v;
			break;
		case 'p':
			o->packed = true;
			break;
		case 'P':
			o->no_packed = true;
			break;
		case 'M':
			o->no_mrg = true;
			break;
		case 'E':
			o->no_evidx = true;
			break;
		case 'C':
			o->no_ctrl = true;
			break;
		case 'h':
			net_usage(stdout);
			return -1;
		default:
			return tool_getopt_err(ucmd, c, argv);
		}
	}
	if (o->packed && o->no_packed)
		return tool_usage_err(ucmd,
				      "--packed and --no-packed exclude each "
				      "other");
	if (o->packed && o->conn.reconnect_ms)
		return tool_usage_err(ucmd,
				      "--packed and --reconnect exclude each "
				      "other (reconnect needs split rings)");
	return 0;
}

static int parse_verb(int argc, char **argv, struct net_opts *o)
{
	static const struct option lo[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 'b'},
	    {"dst", required_argument, NULL, 'd'},
	    {"timeout", required_argument, NULL, 'w'},
	    {"time", required_argument, NULL, 't'},
	    {"mode", required_argument, NULL, 'm'},
	    {"burst", required_argument, NULL, 'B'},
	    {"poll", no_argument, NULL, 'P'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const allowed[] = {
	    [NV_INFO] = "j",	 [NV_SEND] = "nbd",	[NV_RECV] = "nwj",
	    [NV_PING] = "nbdwj", [NV_BENCH] = "tbmBPj",
	};
	static void (*const usage[])(FILE *) = {
	    [NV_INFO] = info_usage,   [NV_SEND] = send_usage,
	    [NV_RECV] = recv_usage,   [NV_PING] = ping_usage,
	    [NV_BENCH] = bench_usage,
	};
	static const char *const names[] = {
	    [NV_INFO] = "info", [NV_SEND] = "send",   [NV_RECV] = "recv",
	    [NV_PING] = "ping", [NV_BENCH] = "bench",
	};
	const char *name = argv[0];
	for (unsigned k = NV_INFO; k <= NV_BENCH; k++)
		if (strcmp(name, names[k]) == 0)
			o->verb = (enum net_verb)k;
	if (o->verb == NV_NONE)
		return tool_usage_err(ucmd,
				      "unknown verb '%s' (info, send, recv, "
				      "ping, bench)",
				      name);
	static char vcmd[32];
	snprintf(vcmd, sizeof(vcmd), "%s %s", NET_CMD, name);
	ucmd = vcmd;

	uint64_t v;
	int c, r;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (c == 'h') {
			usage[o->verb](stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return tool_getopt_err(ucmd, c, argv);
		if (!strchr(allowed[o->verb], c)) {
			const char *opt = "?";
			for (const struct option *l = lo; l->name; l++)
				if (l->val == c)
					opt = l->name;
			return tool_usage_err(ucmd, "%s takes no option --%s",
					      name, opt);
		}
		switch (c) {
		case 'n':
			if ((r = tool_uint_opt(ucmd, "--count", optarg,
					       o->verb == NV_RECV ? 0 : 1,
					       UINT32_MAX, &o->count)))
				return r;
			break;
		case 'b':
			if ((r = tool_uint_opt(ucmd, "--size", optarg,
					       NET_FRAME_MIN, NET_FRAME_MAX,
					       &v)))
				return r;
			o->size = (uint32_t)v;
			break;
		case 'd':
			if (net_parse_mac(optarg, o->dst))
				return tool_usage_err(
				    ucmd,
				    "--dst '%s': expected six hex bytes "
				    "like 52:54:00:12:34:56",
				    optarg);
			o->has_dst = true;
			break;
		case 'w':
			if (parse_secs(optarg, 0.001, 86400, &o->wait_s))
				return tool_usage_err(
				    ucmd,
				    "--timeout '%s': expected seconds in "
				    "0.001..86400 (e.g. 10, 0.5, 500ms)",
				    optarg);
			break;
		case 't':
			if (parse_secs(optarg, 0.1, 3600, &o->secs))
				return tool_usage_err(
				    ucmd,
				    "--time '%s': expected seconds in "
				    "0.1..3600 (e.g. 5, 1.5, 500ms)",
				    optarg);
			break;
		case 'm':
			if (strcmp(optarg, "tx") == 0)
				o->mode = NM_TX;
			else if (strcmp(optarg, "rx") == 0)
				o->mode = NM_RX;
			else if (strcmp(optarg, "loop") == 0)
				o->mode = NM_LOOP;
			else
				return tool_usage_err(
				    ucmd,
				    "--mode '%s': expected tx, rx or loop",
				    optarg);
			break;
		case 'B':
			if ((r = tool_uint_opt(ucmd, "--burst", optarg, 1, 256,
					       &v)))
				return r;
			o->burst = (unsigned)v;
			break;
		case 'P':
			o->poll = true;
			break;
		case 'j':
			o->json = true;
			break;
		}
	}
	if (optind < argc)
		return tool_usage_err(ucmd, "%s: unexpected argument '%s'",
				      name, argv[optind]);
	return 0;
}

/* ---- the device and the driver ---- */

static int net_open(struct net_ctx *c, const struct net_opts *o)
{
	c->mem = vio_mem_new();
	if (!c->mem) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	/*
	 * One region large enough for every ring and buffer of the pairs
	 * (about 6 MiB a pair at 1024 descriptors; pages are only used
	 * when touched): a backend may take few regions (DPDK: 8), and the
	 * driver's allocations would otherwise each add one when full.
	 */
	unsigned qs = o->queue_size ? o->queue_size : 1024;
	size_t per_pair = (size_t)qs * 6144 + (1u << 20);
	unsigned np = o->queues ? o->queues : VIO_NET_MAX_PAIRS;
	int r = vio_mem_add_region(c->mem, per_pair * np + (4u << 20), NULL);
	if (r) {
		tool_err("cannot make the shared memory: %s", strerror(-r));
		return TOOL_EXIT_FAIL;
	}
	struct vio_net_driver_opts dc = {
	    .num_pairs = o->queues,
	    .queue_size = (uint16_t)o->queue_size,
	    .no_packed = o->no_packed,
	    .no_event_idx = o->no_evidx,
	    .no_mrg_rxbuf = o->no_mrg,
	    .no_ctrl_vq = o->no_ctrl,
	};
	c->drv = vio_net_driver_new(&dc);
	c->bus = vio_bus_new();
	if (!c->drv || !c->bus || vio_bus_register(c->bus, c->drv) < 0) {
		tool_err("cannot set up the driver: %s", strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = VIRTIO_ID_NET,
	    /* what the backend has: the driver sets up --queues pairs of
	     * them (and the control queue) */
	    .num_queues = 0,
	    /* the largest ring tried; the backend's refusals halve it */
	    .queue_size = o->queue_size ? o->queue_size : 1024,
	};
	c->fe = tool_conn_connect(&o->conn, &fc);
	if (!c->fe)
		return TOOL_EXIT_FAIL;
	c->vdev = vio_frontend_vdev(c->fe);
	r = vio_bus_add(c->bus, c->vdev);
	c->added = true;
	if (r < 0) {
		tool_err("%s: not a usable virtio-net device: the driver's "
			 "probe failed: %s",
			 o->conn.socket, strerror(-r));
		return TOOL_EXIT_FAIL;
	}
	c->n = vio_net_from_vdev(c->vdev);
	if (!c->n) {
		tool_err("%s: the net driver did not bind", o->conn.socket);
		return TOOL_EXIT_FAIL;
	}
	vio_net_get_info(c->n, &c->info);
	if (o->packed && !c->info.packed) {
		tool_err("%s: --packed: the device does not offer the packed "
			 "ring (vio serve net: --packed)",
			 o->conn.socket);
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

static void net_close(struct net_ctx *c)
{
	if (c->bus) {
		if (c->added)
			vio_bus_remove(c->bus, c->vdev);
		vio_bus_free(c->bus);
	}
	if (c->drv)
		vio_net_driver_free(c->drv);
	if (c->fe)
		vio_frontend_free(c->fe);
	if (c->mem)
		vio_mem_free(c->mem);
}

/* ---- info ---- */

struct feature_name {
	unsigned bit;
	const char *name;
};

static const struct feature_name feature_names[] = {
    {VIRTIO_NET_F_CSUM, "CSUM"},
    {VIRTIO_NET_F_GUEST_CSUM, "GUEST_CSUM"},
    {VIRTIO_NET_F_MTU, "MTU"},
    {VIRTIO_NET_F_MAC, "MAC"},
    {VIRTIO_NET_F_GUEST_TSO4, "GUEST_TSO4"},
    {VIRTIO_NET_F_GUEST_TSO6, "GUEST_TSO6"},
    {VIRTIO_NET_F_GUEST_UFO, "GUEST_UFO"},
    {VIRTIO_NET_F_HOST_TSO4, "HOST_TSO4"},
    {VIRTIO_NET_F_HOST_TSO6, "HOST_TSO6"},
    {VIRTIO_NET_F_HOST_UFO, "HOST_UFO"},
    {VIRTIO_NET_F_MRG_RXBUF, "MRG_RXBUF"},
    {VIRTIO_NET_F_STATUS, "STATUS"},
    {VIRTIO_NET_F_CTRL_VQ, "CTRL_VQ"},
    {VIRTIO_NET_F_CTRL_RX, "CTRL_RX"},
    {VIRTIO_NET_F_CTRL_VLAN, "CTRL_VLAN"},
    {VIRTIO_NET_F_GUEST_ANNOUNCE, "GUEST_ANNOUNCE"},
    {VIRTIO_NET_F_MQ, "MQ"},
    {VIRTIO_NET_F_CTRL_MAC_ADDR, "CTRL_MAC_ADDR"},
    {VIRTIO_RING_F_INDIRECT_DESC, "INDIRECT_DESC"},
    {VIRTIO_RING_F_EVENT_IDX, "EVENT_IDX"},
    {VIRTIO_F_VERSION_1, "VERSION_1"},
    {VIRTIO_F_ACCESS_PLATFORM, "ACCESS_PLATFORM"},
    {VIRTIO_F_RING_PACKED, "RING_PACKED"},
    {VIRTIO_F_IN_ORDER, "IN_ORDER"},
};
#define N_FEATURES (sizeof(feature_names) / sizeof(feature_names[0]))

static int do_info(struct net_ctx *c, const struct net_opts *o)
{
	const struct vio_net_info *in = &c->info;
	char mac[18];
	net_mac_str(in->mac, mac);
	if (o->json) {
		printf("{\"socket\":\"%s\",\"mac\":\"%s\",\"mtu\":%u,"
		       "\"link_up\":%s,\"pairs\":%u,\"max_pairs\":%u,"
		       "\"queue_size\":%u,\"packed\":%s,\"features\":[",
		       o->conn.socket, mac, in->mtu,
		       in->link_up ? "true" : "false", in->pairs, in->max_pairs,
		       in->queue_size, in->packed ? "true" : "false");
		const char *sep = "";
		for (size_t i = 0; i < N_FEATURES; i++)
			if (vio_net_has_feature(c->n, feature_names[i].bit)) {
				printf("%s\"%s\"", sep, feature_names[i].name);
				sep = ",";
			}
		printf("]}\n");
		return TOOL_EXIT_OK;
	}
	printf("%-12s %s (vhost-user)\n", "device", o->conn.socket);
	printf("%-12s %s\n", "mac", mac);
	printf("%-12s %u\n", "mtu", in->mtu);
	printf("%-12s %s\n", "link", in->link_up ? "up" : "down");
	printf("%-12s %u in use, %u at most\n", "queue pairs", in->pairs,
	       in->max_pairs);
	printf("%-12s %u descriptors, %s ring\n", "queues", in->queue_size,
	       in->packed ? "packed" : "split");
	printf("%-12s", "features");
	for (size_t i = 0; i < N_FEATURES; i++)
		if (vio_net_has_feature(c->n, feature_names[i].bit))
			printf(" %s", feature_names[i].name);
	printf("\n");
	return TOOL_EXIT_OK;
}

/* ---- signals ---- */

volatile int net_stop;

static void on_signal(int sig)
{
	(void)sig;
	net_stop = 1;
}

void net_catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cmd_net(int argc, char **argv)
{
	struct net_opts o = {
	    .size = 64, .secs = 5, .mode = NM_LOOP, .burst = 32};
	int ret = parse_global(argc, argv, &o);
	if (ret)
		return ret < 0 ? TOOL_EXIT_OK : ret;
	if (optind >= argc)
		return tool_usage_err(ucmd, "missing verb (info, send, recv, "
					    "ping, bench)");
	ret = parse_verb(argc - optind, argv + optind, &o);
	if (ret)
		return ret < 0 ? TOOL_EXIT_OK : ret;
	if (!o.conn.socket)
		return tool_usage_err(NET_CMD, "--socket PATH is required");
	if (!o.count)
		o.count = o.verb == NV_SEND ? 1000 : o.verb == NV_PING ? 10 : 0;
	if (o.wait_s == 0)
		o.wait_s = o.verb == NV_PING ? 1 : 10;

	struct net_ctx c = {0};
	ret = net_open(&c, &o);
	/* the driver's limit: an Ethernet header and one 802.1Q tag */
	if (ret == 0 && o.size > (uint32_t)c.info.mtu + 18 &&
	    o.verb != NV_INFO && o.verb != NV_RECV) {
		tool_err("--size %u: larger than the device's MTU %u + 18",
			 o.size, c.info.mtu);
		ret = TOOL_EXIT_FAIL;
	}
	if (ret == 0) {
		net_catch_signals();
		switch (o.verb) {
		case NV_INFO:
			ret = do_info(&c, &o);
			break;
		case NV_SEND:
			ret = net_do_send(&c, &o);
			break;
		case NV_RECV:
			ret = net_do_recv(&c, &o);
			break;
		case NV_PING:
			ret = net_do_ping(&c, &o);
			break;
		case NV_BENCH:
			ret = net_do_bench(&c, &o);
			break;
		case NV_NONE:
			break;
		}
	}
	net_close(&c);
	return ret;
}
