/* SPDX-License-Identifier: MIT */
/*
 * vio net (tools/cmd_net.c): what its files share.
 *
 *   cmd_net.c     usage, options, connecting (the vhost-user frontend and
 *                 vio's net driver), info
 *   net_frame.c   the test frames: UDP/IPv4 with valid checksums, a
 *                 sequence number and a pattern; their check
 *   net_io.c      send, recv, ping
 *   net_bench.c   bench (tx, rx, loop; one thread per queue pair)
 */
#ifndef VIO_TOOLS_NET_H
#define VIO_TOOLS_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/net.h>

#include "conn.h"

#define NET_CMD "net"

enum net_verb { NV_NONE, NV_INFO, NV_SEND, NV_RECV, NV_PING, NV_BENCH };
enum net_mode { NM_TX, NM_RX, NM_LOOP };

struct net_opts {
	struct tool_conn conn; /* --socket, --timeout, --reconnect */
	unsigned queues, queue_size;
	bool packed, no_packed, no_mrg, no_evidx, no_ctrl;

	enum net_verb verb;
	uint64_t count; /* send, recv, ping; recv 0: until --timeout */
	uint32_t size;	/* frame bytes without the virtio header */
	bool has_dst;
	uint8_t dst[VIO_NET_ETH_ALEN];
	double wait_s; /* recv, ping: --timeout */
	double secs;   /* bench --time */
	enum net_mode mode;
	unsigned burst;
	bool poll; /* bench --poll: never wait for an interrupt */
	bool json;
};

struct net_ctx {
	struct vio_mem *mem;
	struct vio_frontend *fe;
	struct vio_drvdev *vdev;
	struct vio_bus *bus;
	struct vio_driver *drv;
	bool added;
	struct vio_net *n;
	struct vio_net_info info;
};

/* ---- frames (net_frame.c) ---- */

/* Smallest frame: Ethernet, IPv4, UDP headers and the 12-byte tag. */
#define NET_FRAME_MIN 60u
/* Its Ethernet, IPv4 and UDP headers: what a frame sender that reuses
 * buffers rewrites per frame (DPDK's testpmd txonly does) */
#define NET_FRAME_HDR 42u
#define NET_FRAME_MAX 65535u

/*
 * A UDP/IPv4 frame of len bytes (>= NET_FRAME_MIN) into buf: dst, src,
 * 10.0.0.1:4789 -> 10.0.0.2:4789 (any port, it is not interpreted),
 * header and UDP checksums valid, payload "vioN" + seq (big endian) then
 * a pattern of seq.
 */
void net_frame_build(uint8_t *buf, uint32_t len, const uint8_t *dst,
		     const uint8_t *src, uint64_t seq);
/* Rewrite the sequence number of a frame net_frame_build made (and the
 * pattern and the UDP checksum with it). */
void net_frame_set_seq(uint8_t *buf, uint32_t len, uint64_t seq);

enum net_frame_verdict {
	NF_OURS,  /* one of ours, intact: *seq set */
	NF_OTHER, /* well-formed, but not ours (a gen port's, DPDK's) */
	NF_BAD,	  /* malformed: short, bad IPv4 checksum or length, or one
		     of ours with a wrong payload or UDP checksum */
};
enum net_frame_verdict net_frame_check(const uint8_t *buf, uint32_t len,
				       uint64_t *seq);

/* "52:54:00:12:34:56": 0 or -EINVAL */
int net_parse_mac(const char *s, uint8_t mac[VIO_NET_ETH_ALEN]);
void net_mac_str(const uint8_t m[VIO_NET_ETH_ALEN], char out[18]);

/* ---- the verbs: an exit code each ---- */

int net_do_send(struct net_ctx *c, const struct net_opts *o);
int net_do_recv(struct net_ctx *c, const struct net_opts *o);
int net_do_ping(struct net_ctx *c, const struct net_opts *o);
int net_do_bench(struct net_ctx *c, const struct net_opts *o);

/* SIGINT/SIGTERM during a verb: set (the verb ends early and reports) */
extern volatile int net_stop;
void net_catch_signals(void);

#endif
