/* SPDX-License-Identifier: MIT */
/*
 * net_internal.h - what the files of src/net share: the pure checks of
 * the virtio-net header and of control commands (driven by the fuzz
 * targets fuzz_net_hdr and fuzz_net_ctrl), and the receive filter.
 * Nothing here touches a ring or a device: inputs in, a verdict out.
 */
#ifndef VIO_NET_INTERNAL_H
#define VIO_NET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/net.h>
#include <vio/ring.h>

#define NET_ETH_HLEN 14u
/* Largest frame after the header: 14 (Ethernet) + 40 (IPv6) + 65535
 * (VIRTIO 1.x 5.1.6.3, "Setting Up Receive Buffers"). */
#define NET_MAX_FRAME 65589u
/* Ethernet header and one VLAN tag: what a frame may carry beyond the
 * MTU when MTU was negotiated (5.1.4.1). */
#define NET_MTU_EXTRA 18u

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

/* The negotiated features the header and control checks look at. */
enum {
	NET_NEG_CSUM = 1u << 0,
	NET_NEG_HOST_TSO4 = 1u << 1,
	NET_NEG_HOST_TSO6 = 1u << 2,
	NET_NEG_HOST_UFO = 1u << 3,
	NET_NEG_GUEST_CSUM = 1u << 4,
	NET_NEG_GUEST_TSO4 = 1u << 5,
	NET_NEG_GUEST_TSO6 = 1u << 6,
	NET_NEG_GUEST_UFO = 1u << 7,
	NET_NEG_MTU = 1u << 8,
	NET_NEG_MRG_RXBUF = 1u << 9,
	NET_NEG_CTRL_VQ = 1u << 10,
	NET_NEG_CTRL_RX = 1u << 11,
	NET_NEG_CTRL_RX_EXTRA = 1u << 12,
	NET_NEG_CTRL_MAC_ADDR = 1u << 13,
	NET_NEG_ANNOUNCE = 1u << 14,
	NET_NEG_MQ = 1u << 15,
	NET_NEG_STATUS = 1u << 16,
};

/*
 * The transmit header of one frame of frame_len bytes, against the
 * negotiated features neg (NET_NEG_*) and mtu: 0, or -EPROTO with *why
 * (a static string).  Refused: NEEDS_CSUM without CSUM or with
 * csum_start + csum_offset + 2 past the frame; a GSO type not
 * negotiated (or ECN, UDP_L4: never offered), GSO without NEEDS_CSUM or
 * with gso_size 0; a frame shorter than an Ethernet header or longer
 * than NET_MAX_FRAME (mtu + NET_MTU_EXTRA without GSO when MTU was
 * negotiated).  Unknown flag bits are ignored (5.1.6.2.2).
 */
int net_tx_hdr_check(const struct virtio_net_hdr_v1 *h, size_t frame_len,
		     unsigned neg, uint16_t mtu, const char **why);

/*
 * A popped transmit chain: no writable segment, at least the header;
 * reads the header into *hdr (flags the port should not see cleared),
 * checks it (net_tx_hdr_check), and points *frame / *nframe at the
 * readable segments after the header (c->out is cut in place).  *len is
 * the frame's length.  0 or -EPROTO with *why.
 */
int net_tx_parse(struct vio_chain *c, unsigned neg, uint16_t mtu,
		 struct virtio_net_hdr_v1 *hdr, const struct vio_iov **frame,
		 unsigned *nframe, size_t *len, const char **why);

/* May the driver get a frame with this header (neg: negotiated)? */
bool net_rx_hdr_ok(const struct virtio_net_hdr_v1 *h, unsigned neg);

/* ---- the receive filter (CTRL_RX, MAC table) ---- */

#define NET_MAC_TABLE_MAX 64u
struct net_rx_filter {
	bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
	/* more entries than NET_MAC_TABLE_MAX: that class is let through */
	bool uni_overflow, multi_overflow;
	unsigned n_uni, n_multi;
	uint8_t mac[VIO_NET_ETH_ALEN]; /* the device's (ADDR_SET) */
	uint8_t uni[NET_MAC_TABLE_MAX][VIO_NET_ETH_ALEN];
	uint8_t multi[NET_MAC_TABLE_MAX][VIO_NET_ETH_ALEN];
};
/* The state after a reset: promiscuous (what a driver that never sends a
 * command expects, and all a driver without CTRL_RX can have), empty
 * tables (5.1.6.5.2.1), mac. */
void net_rx_filter_reset(struct net_rx_filter *f,
			 const uint8_t mac[VIO_NET_ETH_ALEN]);
/* Does a frame to dst pass? */
bool net_rx_filter_pass(const struct net_rx_filter *f,
			const uint8_t dst[VIO_NET_ETH_ALEN]);

/* ---- control commands ---- */

/* What a command changed, besides the filter. */
struct net_ctrl_effect {
	bool filter;	   /* *f was changed */
	bool mac_set;	   /* MAC_ADDR_SET: f->mac is the new address */
	bool announce_ack; /* ANNOUNCE_ACK: clear VIRTIO_NET_S_ANNOUNCE */
	unsigned pairs;	   /* MQ_VQ_PAIRS_SET: pairs to use (0: none) */
};

/*
 * One command: the readable bytes of a control chain in cmd (class,
 * command, data; nothing else may follow), against the negotiated
 * features neg and max_pairs.  Applies it to *f (a copy the caller
 * commits when e->filter) and fills *e.  Returns VIRTIO_NET_OK or
 * VIRTIO_NET_ERR (with *why): unknown class or command, a command whose
 * feature was not negotiated, data of the wrong length (a MAC table's
 * entry counts checked against what the chain holds), a pair count out
 * of 1..max_pairs.  *f is left alone unless the answer is OK.
 */
uint8_t net_ctrl_exec(const struct vio_iov *cmd, unsigned n, unsigned neg,
		      unsigned max_pairs, struct net_rx_filter *f,
		      struct net_ctrl_effect *e, const char **why);

/* A port dropped a frame of pair qp for lack of a receive buffer after
 * vio_net_device_rx_reserve said -ENOBUFS (which does not count). */
void net_rx_nobuf(struct vio_net_device *nd, unsigned qp);

/* ---- device state transfer (state.c, docs/device-state.md) ---- */

struct vio_device;
/* struct vio_device_ops.state_save / state_load of the net device: its
 * section (receive mode, MAC tables and address, pairs in use, a pending
 * announcement; max pairs and MTU checked). */
int net_state_save(struct vio_device *dev, void *buf, size_t cap);
int net_state_load(struct vio_device *dev, const void *buf, size_t len,
		   char *why, size_t whylen);
/* device.c: publish a new receive filter to the pairs (under the filter
 * lock, generation bumped); set and clear config status bits (with a
 * config change when they change). */
void filter_publish(struct vio_net_device *nd, const struct net_rx_filter *f);
void status_update(struct vio_net_device *nd, uint16_t set, uint16_t clear);

#endif
