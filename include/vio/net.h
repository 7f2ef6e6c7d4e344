/* SPDX-License-Identifier: MIT */
/*
 * vio/net.h - virtio-net, both sides (VIRTIO 1.x section 5.1).
 *
 * The device side (src/net/device.c) is a virtio-net device whose packets
 * go to and come from a *port* (struct vio_net_port): a TAP interface, the
 * built-in learning switch, an echo or a sink, or the application's own.
 * The driver side (src/net/driver.c) sends and receives frames through any
 * virtio-net device (vio's own over inproc, DPDK's net_vhost or vio serve
 * net over the vhost-user frontend).
 *
 * Header.  VERSION_1 only: every packet on a ring starts with the 12-byte
 * struct virtio_net_hdr_v1 (num_buffers always present), whatever else
 * was negotiated.  Offload metadata (checksum, GSO) passes through as is:
 * vio does not segment and does not checksum except where it says so; a
 * port says which offloads it can take (struct vio_net_port.offloads).
 *
 * Queues: receiveq k = 2k, transmitq k = 2k + 1 (k < queue pairs), then
 * the control queue (index 2 * max pairs) when CTRL_VQ is offered.
 */
#ifndef VIO_NET_H
#define VIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_net.h>
#include <vio/device.h>
#include <vio/driver.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIO_NET_HDR_LEN 12u  /* sizeof(struct virtio_net_hdr_v1) */
#define VIO_NET_MAX_PAIRS 8u /* queue pairs, device and driver */
#define VIO_NET_ETH_ALEN 6u

/* ---- ports: where a device's packets go ---- */

struct vio_net_device;
struct vio_net_port;

/*
 * A port's operations.  Threads: a device runs queue pair k's receiveq
 * and transmitq on one thread (vio serve puts both on one worker:
 * vio_run_opts.group = 2), and calls start/stop/xmit/xmit_flush/rx_ready
 * for pair k on it; the port calls vio_net_device_rx* for pair k on that
 * thread too (from xmit of another device on the same thread, or from a
 * callback it added to the loop).  A port serving several devices (the
 * switch) must run them all on one thread, or lock.
 */
struct vio_net_port_ops {
	/*
	 * Pair qp of dev starts (both of its queues are running) on loop
	 * (NULL: no event loop, inproc: the port may only act from xmit).
	 * A port with its own fds adds them to loop here.  0 or negative
	 * errno (the queue does not start).  May be NULL.
	 */
	int (*start)(struct vio_net_port *p, struct vio_net_device *dev,
		     unsigned qp, struct vio_loop *loop);
	/* Pair qp stops (before either queue is freed): remove what start
	 * added to the loop; do not deliver to this pair after.  May be
	 * NULL. */
	void (*stop)(struct vio_net_port *p, struct vio_net_device *dev,
		     unsigned qp);
	/*
	 * The driver of dev sent one frame on pair qp: hdr (checked against
	 * the negotiated features: a GSO type the device did not offer never
	 * reaches the port), then len bytes of Ethernet frame in iov[0..n)
	 * (driver memory: copy or write it out before returning; do not keep
	 * the pointers).  0, or negative errno: dropped (the device counts
	 * it in tx_dropped).
	 */
	int (*xmit)(struct vio_net_port *p, struct vio_net_device *dev,
		    unsigned qp, const struct virtio_net_hdr_v1 *hdr,
		    const struct vio_iov *iov, unsigned n, size_t len);
	/* End of one transmit batch on pair qp: flush what xmit queued
	 * (e.g. vio_net_device_rx_flush on the devices it delivered to).
	 * May be NULL. */
	void (*xmit_flush)(struct vio_net_port *p, struct vio_net_device *dev,
			   unsigned qp);
	/* The driver added receive buffers on pair qp (a receiveq kick): a
	 * port that stopped delivering for lack of buffers may go on.  May
	 * be NULL. */
	void (*rx_ready)(struct vio_net_port *p, struct vio_net_device *dev,
			 unsigned qp);
	/* The device is freed or detached from the port.  May be NULL. */
	void (*detach)(struct vio_net_port *p, struct vio_net_device *dev);
	/* Free the port (after every device detached).  May be NULL. */
	void (*free)(struct vio_net_port *p);
};

/* Offloads a port takes (vio_net_port.offloads) */
enum {
	/* frames from the driver may carry NEEDS_CSUM (device offers CSUM) */
	VIO_NET_PORT_TX_CSUM = 1u << 0,
	/* ... and GSO TCPv4/TCPv6/UDP (offers HOST_TSO4/TSO6/UFO; needs
	 * TX_CSUM) */
	VIO_NET_PORT_TX_TSO = 1u << 1,
	VIO_NET_PORT_TX_UFO = 1u << 2,
	/* the port may deliver frames with NEEDS_CSUM / DATA_VALID (device
	 * offers GUEST_CSUM), and GSO frames (offers GUEST_TSO4/6, UFO) */
	VIO_NET_PORT_RX_CSUM = 1u << 3,
	VIO_NET_PORT_RX_TSO = 1u << 4,
	VIO_NET_PORT_RX_UFO = 1u << 5,
};

/* How a port's xmit uses the frames (vio_net_port.flags) */
enum {
	/* xmit reads no byte of the frame, only its length (a counting
	 * sink): the device does not prefetch frames for it.  A read from
	 * the device's CPU pulls the line the driver wrote into a shared
	 * state, and the driver pays for that when it writes its next frame
	 * into the same buffer; 0: the device prefetches each frame's first
	 * lines a few frames before it hands it to xmit (which reads them). */
	VIO_NET_PORT_F_LEN_ONLY = 1u << 0,
};

/* A port: implementations embed it (container_of) and fill it. */
struct vio_net_port {
	const struct vio_net_port_ops *ops;
	const char *kind;   /* "tap", "switch", "echo", "sink", "gen", ... */
	unsigned offloads;  /* VIO_NET_PORT_TX_* / RX_* */
	unsigned max_pairs; /* pairs the port can serve; 0: any */
	unsigned flags;	    /* VIO_NET_PORT_F_* */
};

/* Built-in ports (src/net/port_*.c, src/net/tap.c, src/net/switch.c).
 * NULL with errno and a one-line reason in err where there is one. */
struct vio_net_port *vio_net_port_echo_new(void); /* reflect, MAC-swapped */
/* sink: frames dropped, counted (packets, bytes), never read (as
 * testpmd's rxonly: VIO_NET_PORT_F_LEN_ONLY); sink_check: the same, and
 * each frame checked (vio_net_port_stats.bad), kind "sink:check". */
struct vio_net_port *vio_net_port_sink_new(void);
struct vio_net_port *vio_net_port_sink_check_new(void);
/*
 * tap:NAME: a Linux TAP interface opened with IFF_VNET_HDR (offload
 * metadata passes both ways) and IFF_MULTI_QUEUE (one fd per pair, up to
 * pairs); created if it does not exist, in the calling thread's network
 * namespace.  The port reads and writes in batches from the pair's loop.
 */
struct vio_net_port *vio_net_port_tap_new(const char *name, unsigned pairs,
					  char *err, size_t errlen);
/*
 * gen: a traffic generator for benchmarks and tests (guest-rx): fills
 * every receive buffer the driver offers with UDP/IPv4 frames of
 * frame_len bytes (60..9000; 0: 60), a sequence number in the payload,
 * from the pair's loop (busy while buffers come).  NULL with errno.
 */
struct vio_net_port *vio_net_port_gen_new(uint32_t frame_len);
/* Free a port (its ops->free); NULL is ignored. */
void vio_net_port_free(struct vio_net_port *p);

/*
 * Counters of the built-in echo, sink and gen ports (frames they took from
 * drivers, frames they made); bad: frames taken that are not well-formed
 * (an IPv4 frame whose header checksum or total length is wrong, a frame
 * shorter than an Ethernet header): the content check of the interop
 * tests, made by echo, gen and sink_check (sink reads no frame: 0).  0, or
 * -EOPNOTSUPP for other ports.  Any thread (a snapshot).
 */
struct vio_net_port_stats {
	uint64_t packets, bytes, bad;
	uint64_t made; /* gen: frames delivered */
};
int vio_net_port_stats(const struct vio_net_port *p,
		       struct vio_net_port_stats *out);

/*
 * The learning switch: one vio_net_switch joins several devices, each on
 * a port of its own (vio_net_switch_port).  A frame goes to the port
 * that last sent from its destination MAC, or to every other port
 * (broadcast, multicast, unknown unicast), copied once, ring to ring.
 * Every device of one switch must run on one thread (vio serve switch
 * uses one worker).  Counters per port.
 */
struct vio_net_switch;
struct vio_net_switch *vio_net_switch_new(void);
/* A new port of sw (its name for logs and stats). */
struct vio_net_port *vio_net_switch_port(struct vio_net_switch *sw,
					 const char *name);
struct vio_net_switch_stats {
	uint64_t rx_packets, rx_bytes; /* frames the port's driver sent */
	uint64_t tx_packets, tx_bytes; /* frames delivered to its driver */
	uint64_t flooded;	       /* frames of this port flooded */
	uint64_t dropped;	       /* could not be delivered to it */
};
unsigned vio_net_switch_num_ports(const struct vio_net_switch *sw);
int vio_net_switch_stats(const struct vio_net_switch *sw, unsigned port,
			 struct vio_net_switch_stats *out);
/* Free the switch and its ports (after their devices are freed). */
void vio_net_switch_free(struct vio_net_switch *sw);

/* ---- device side ---- */

struct vio_net_device_opts {
	const char *name; /* for log lines; NULL: "net" */
	/* MAC offered with VIRTIO_NET_F_MAC; all zero: a random locally
	 * administered one */
	uint8_t mac[VIO_NET_ETH_ALEN];
	uint16_t mtu;		   /* VIRTIO_NET_F_MTU; 0: 1500 (68..65535) */
	unsigned queue_pairs;	   /* 1..VIO_NET_MAX_PAIRS (VIRTIO_NET_F_MQ if
				      > 1); 0: 1 */
	uint16_t queue_size;	   /* largest queue offered; 0: 1024 */
	struct vio_net_port *port; /* required; not owned */
	/* Features offered besides VERSION_1, the port's offloads, MAC, MTU,
	 * STATUS, MRG_RXBUF, CTRL_VQ (+ CTRL_RX, CTRL_MAC_ADDR,
	 * GUEST_ANNOUNCE), MQ (pairs > 1): */
	bool packed;	   /* VIRTIO_F_RING_PACKED (default: split only) */
	bool no_event_idx; /* do not offer VIRTIO_RING_F_EVENT_IDX */
	bool no_indirect;  /* do not offer VIRTIO_RING_F_INDIRECT_DESC */
	bool no_mrg_rxbuf; /* do not offer VIRTIO_NET_F_MRG_RXBUF */
	bool no_ctrl_vq;   /* do not offer VIRTIO_NET_F_CTRL_VQ (and MQ's
			      pair count command: pairs are then fixed) */
	bool no_offloads;  /* offer none of the port's offloads */
	bool link_down;	   /* start with the link down (VIRTIO_NET_F_STATUS) */
	/* Transmit batching: once a chain is available, wait up to this long
	 * (at most VIO_NET_TX_WAIT_MAX) for a full batch (64 ring entries)
	 * before taking fewer; 0 (the default): take what is there.  Under
	 * busy polling a device that takes each frame the moment the driver
	 * publishes it reads lines the driver is still writing (the next
	 * descriptors, the frame its statistics read): DPDK's virtio-user
	 * sent 6% more with 1000 ns (docs/net.md).  Adds up to that much
	 * latency to a lone frame. */
	uint32_t tx_wait_ns;
};
#define VIO_NET_TX_WAIT_MAX 1000000u /* ns */

/*
 * A virtio-net device on cfg->port.  NULL with errno and a one-line
 * reason in err (bad MTU, pairs, queue size, a port that serves fewer
 * pairs).
 */
struct vio_net_device *vio_net_device_new(const struct vio_net_device_opts *cfg,
					  char *err, size_t errlen);
/* The virtio device, to hand to a transport.  Owned by nd. */
struct vio_device *vio_net_device_dev(const struct vio_net_device *nd);
struct vio_net_device *vio_net_device_from_dev(struct vio_device *dev);
const char *vio_net_device_name(const struct vio_net_device *nd);
void vio_net_device_mac(const struct vio_net_device *nd,
			uint8_t mac[VIO_NET_ETH_ALEN]);
unsigned vio_net_device_queue_pairs(const struct vio_net_device *nd);
/* Link status (config space status, VIRTIO_NET_S_LINK_UP) with a config
 * change notification; any thread. */
void vio_net_device_set_link(struct vio_net_device *nd, bool up);
/* Ask the driver to announce itself (VIRTIO_NET_S_ANNOUNCE, with
 * GUEST_ANNOUNCE negotiated): 0 or -EOPNOTSUPP. */
int vio_net_device_announce(struct vio_net_device *nd);
/* Free the device (its transport must be gone); detaches the port. */
void vio_net_device_free(struct vio_net_device *nd);

/*
 * Receive path: a port delivers frames to the driver of nd on pair qp,
 * on pair qp's thread (see struct vio_net_port_ops).
 *
 * vio_net_device_rx: one frame, hdr (NULL: no offload metadata) then len
 * bytes of Ethernet frame in iov[0..n), copied into the driver's receive
 * buffers (several with MRG_RXBUF, num_buffers set).  Pushed used entries
 * and the call are batched until vio_net_device_rx_flush.  Returns 0, or
 * the frame is dropped and counted: -ENOBUFS (no receive buffer: the
 * ring is full from the device's point of view; never blocks),
 * -EMSGSIZE (larger than the buffers), -EPROTO (offload metadata the
 * driver did not negotiate), -EAGAIN (filtered by the driver's receive
 * mode), -ENOTCONN (pair not running).
 *
 * vio_net_device_rx_reserve / rx_commit: receive straight into the
 * driver's buffers (a TAP readv): reserve buffers for up to max bytes
 * (header included; one buffer without MRG_RXBUF), get their writable
 * segments (header first, valid until commit or cancel), then commit the
 * bytes written (header included: the port writes the header, vio sets
 * num_buffers; len 0 or a frame the receive mode filters hands the
 * buffers back unused), or cancel.  reserve: number of segments, or
 * -ENOBUFS (not counted: a port that then drops a frame offers it to
 * vio_net_device_rx, which counts) / -ENOTCONN as above.  commit: 0, the
 * errors of rx; len past what was reserved drops the frame, counted: -ENOBUFS
 * with MRG_RXBUF (the ring had too few buffers), else -EMSGSIZE.
 */
int vio_net_device_rx(struct vio_net_device *nd, unsigned qp,
		      const struct virtio_net_hdr_v1 *hdr,
		      const struct vio_iov *iov, unsigned n, size_t len);
int vio_net_device_rx_reserve(struct vio_net_device *nd, unsigned qp,
			      size_t max, const struct vio_iov **iov);
int vio_net_device_rx_commit(struct vio_net_device *nd, unsigned qp,
			     size_t len);
void vio_net_device_rx_cancel(struct vio_net_device *nd, unsigned qp);
/* Push what rx delivered on pair qp and call the driver if it wants. */
void vio_net_device_rx_flush(struct vio_net_device *nd, unsigned qp);
/* May pair qp take frames with this offload metadata (negotiated
 * features)?  Ports that cannot convert drop what this refuses. */
bool vio_net_device_rx_accepts(const struct vio_net_device *nd,
			       const struct virtio_net_hdr_v1 *hdr);

struct vio_net_stats {
	/* to the driver (its receiveq) */
	uint64_t rx_packets, rx_bytes;
	uint64_t rx_no_buffer; /* -ENOBUFS */
	uint64_t rx_dropped;   /* -EMSGSIZE, -EPROTO */
	uint64_t rx_filtered;  /* receive mode */
	/* from the driver (its transmitq) */
	uint64_t tx_packets, tx_bytes;
	uint64_t tx_dropped; /* the port refused */
	uint64_t tx_errors;  /* bad header or chain (answered, not sent) */
	/* control queue */
	uint64_t ctrl_ok, ctrl_err;
};
/* Counters of pair qp (qp == VIO_NET_MAX_PAIRS: the sum; ctrl_* are
 * the device's, the same in every view).  Read from any thread (relaxed
 * atomics: a snapshot).  0 or -EINVAL. */
int vio_net_device_stats(const struct vio_net_device *nd, unsigned qp,
			 struct vio_net_stats *out);

/* The receive filter the driver set through the control queue (CTRL_RX,
 * MAC table); any thread (a snapshot). */
struct vio_net_rx_mode {
	bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
	unsigned n_uni, n_multi; /* MAC table entries */
	unsigned pairs;		 /* MQ: pairs in use */
};
void vio_net_device_rx_mode(const struct vio_net_device *nd,
			    struct vio_net_rx_mode *out);

/* ---- driver side ---- */

/*
 * The driver (src/net/driver.c):
 *
 *     struct vio_driver *drv = vio_net_driver_new(NULL);
 *     vio_bus_register(bus, drv);
 *     vio_bus_add(bus, vdev);                      // probe
 *     struct vio_net *n = vio_net_from_vdev(vdev);
 *     struct vio_net_pkt p = {.data = frame, .len = 60};
 *     vio_net_send(n, 0, &p, 1);                   // copied, kicked
 *     int k = vio_net_recv(n, 0, pkts, 32, 100);   // up to 32 frames
 *
 * Receive buffers are preallocated in the vdev's vio_mem at probe and
 * the receive ring is kept full (reposted in batches by recv).  Without
 * MRG_RXBUF each buffer holds the largest frame the negotiated offloads
 * allow (64 KiB with GUEST_TSO/UFO, else MTU + 14 + 4 + header).
 * Transmit copies each frame into a preallocated slot (zero allocation
 * per packet), or sends it in place from a slot vio_net_tx_bufs lent
 * (no copy); send queues as many as fit and kicks once per call.
 * Threading: one thread per queue pair at a time.
 */
struct vio_net_driver_opts {
	unsigned num_pairs;   /* 0: every pair the device has (MQ) */
	uint16_t queue_size;  /* 0: the device's maximum, capped at 1024 */
	uint32_t rx_buf_size; /* MRG_RXBUF buffers; 0: 2048 */
	/* features the driver would otherwise take when offered */
	bool no_packed, no_event_idx, no_indirect;
	bool no_mrg_rxbuf, no_ctrl_vq;
	bool csum; /* take CSUM/GUEST_CSUM (and TSO with tso) */
	bool tso;
};
struct vio_driver *vio_net_driver_new(const struct vio_net_driver_opts *cfg);
void vio_net_driver_free(struct vio_driver *drv);

struct vio_net;
struct vio_net *vio_net_from_vdev(struct vio_drvdev *vdev);
struct vio_drvdev *vio_net_vdev(const struct vio_net *n);

struct vio_net_info {
	uint8_t mac[VIO_NET_ETH_ALEN];
	uint16_t mtu;
	bool link_up;
	unsigned pairs, max_pairs;
	uint16_t queue_size;
	bool packed, event_idx, mrg_rxbuf, ctrl_vq, csum, guest_csum;
	bool host_tso, guest_tso;
};
/* What the config space says now (re-read: link status changes). */
void vio_net_get_info(struct vio_net *n, struct vio_net_info *out);
bool vio_net_has_feature(const struct vio_net *n, unsigned bit);

/*
 * A frame: hdr is the offload metadata (zero: none; num_buffers ignored
 * on send), data and len the Ethernet frame without the virtio header.
 * send: data is the caller's; recv: data points into the driver's
 * receive buffer (or its reassembly buffer for a merged frame), valid
 * until the next vio_net_recv on that pair.
 */
struct vio_net_pkt {
	struct virtio_net_hdr_v1 hdr;
	void *data;
	uint32_t len;
};
/* Queue up to n frames on pair qp and kick once (a frame in a slot lent
 * by vio_net_tx_bufs in place, others copied).  Returns how many were
 * queued (0: the ring is full: recv or vio_net_tx_reclaim frees slots),
 * or -EINVAL (a frame over the size limit, a slot pointer that is not
 * lent), -ENXIO, -EIO (broken). */
int vio_net_send(struct vio_net *n, unsigned qp, const struct vio_net_pkt *p,
		 unsigned count);
/* Reclaim transmit slots the device used; returns how many. */
int vio_net_tx_reclaim(struct vio_net *n, unsigned qp);
/*
 * Zero-copy transmit: lend the caller up to max free transmit slots of
 * pair qp.  bufs[i] points to a slot's frame area (after the virtio
 * header, in the memory the device reads; 64-byte aligned + 12), room
 * bytes long (*room, when room is not NULL: the largest frame send
 * takes).  The caller writes a frame there and sends it with
 * vio_net_send, .data = bufs[i] (.len <= room): send then writes only
 * the virtio header, not the frame.  Returns how many slots were lent
 * (0: every slot is on the ring; vio_net_tx_reclaim or a later call may
 * free some), -ENXIO, -EINVAL (max > 0, bufs NULL), -EIO (broken).
 *
 * Contract:
 * - A lent slot is the caller's until it is sent or until the next
 *   vio_net_tx_bufs on pair qp, which first takes back every slot it
 *   lent before and not sent since (max 0: only that); a slot taken
 *   back is free again (a copied frame may use it, the call may lend it
 *   again).  Nothing but the caller writes a lent slot's frame area
 *   (copied frames use free slots).
 * - Lent slots may be sent in any order, several per send, mixed with
 *   copied frames; a send that refuses or cannot queue a frame (-EINVAL,
 *   the ring full) leaves its slot lent.
 * - .data pointing into pair qp's slots but not at the frame of a slot
 *   lent and not sent since (sent already, taken back, inside a frame)
 *   is refused: -EINVAL.  Anything else (the caller's memory, another
 *   pair's slot) is copied, as before.
 * - O(1) per frame; the slot memory lives until the device is removed.
 */
int vio_net_tx_bufs(struct vio_net *n, unsigned qp, void **bufs, unsigned max,
		    uint32_t *room);
/* Up to max received frames of pair qp; waits up to timeout_ms (0: not,
 * -1: forever) when none is ready.  Count, 0, -ENXIO, -EIO. */
int vio_net_recv(struct vio_net *n, unsigned qp, struct vio_net_pkt *p,
		 unsigned max, int timeout_ms);
/* Control queue (CTRL_VQ): 0, -EOPNOTSUPP (not negotiated), -EIO (the
 * device answered VIRTIO_NET_ERR). */
int vio_net_set_promisc(struct vio_net *n, bool on);
int vio_net_set_pairs(struct vio_net *n, unsigned pairs);
int vio_net_set_mac(struct vio_net *n, const uint8_t mac[VIO_NET_ETH_ALEN]);

struct vio_net_drv_stats {
	uint64_t tx_packets, tx_bytes, tx_full;
	uint64_t rx_packets, rx_bytes, rx_errors;
};
int vio_net_stats(const struct vio_net *n, unsigned qp,
		  struct vio_net_drv_stats *out);

#ifdef __cplusplus
}
#endif
#endif
