/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device: the header checks (pure: bytes and the negotiated
 * features in, verdict out; fuzz_net_hdr drives them).  net_tx_parse
 * checks a transmit chain (readable only, a header, a frame) and
 * net_tx_hdr_check its header against the features and the MTU;
 * net_rx_hdr_ok checks a header a port hands the device for the driver.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <linux/virtio_config.h>

#include "net/net_internal.h"

int net_tx_hdr_check(const struct virtio_net_hdr_v1 *h, size_t frame_len,
		     unsigned neg, uint16_t mtu, const char **why)
{
	uint8_t gso = h->gso_type;
	if (frame_len < NET_ETH_HLEN) {
		*why = "frame shorter than an Ethernet header";
		return -EPROTO;
	}
	if (frame_len > NET_MAX_FRAME) {
		*why = "frame longer than 65589 bytes";
		return -EPROTO;
	}
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!(neg & NET_NEG_CSUM)) {
			*why = "NEEDS_CSUM without CSUM negotiated";
			return -EPROTO;
		}
		uint32_t end = (uint32_t)le16toh(h->csum_start) +
			       le16toh(h->csum_offset) + 2;
		if (end > frame_len) {
			*why = "checksum offsets past the end of the frame";
			return -EPROTO;
		}
	}
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		if ((neg & NET_NEG_MTU) && frame_len > mtu + NET_MTU_EXTRA) {
			*why = "frame longer than the MTU";
			return -EPROTO;
		}
		return 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(neg & NET_NEG_HOST_TSO4)) {
			*why = "GSO TCPv4 without HOST_TSO4";
			return -EPROTO;
		}
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(neg & NET_NEG_HOST_TSO6)) {
			*why = "GSO TCPv6 without HOST_TSO6";
			return -EPROTO;
		}
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!(neg & NET_NEG_HOST_UFO)) {
			*why = "GSO UDP without HOST_UFO";
			return -EPROTO;
		}
		break;
	default:
		/* ECN, UDP_L4 and the rest: never offered */
		*why = "GSO type the device does not offer";
		return -EPROTO;
	}
	/* 5.1.6.2.1: GSO needs NEEDS_CSUM and the MSS */
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
		*why = "GSO without NEEDS_CSUM";
		return -EPROTO;
	}
	if (!h->gso_size) {
		*why = "GSO with gso_size 0";
		return -EPROTO;
	}
	return 0;
}

int net_tx_parse(struct vio_chain *c, unsigned neg, uint16_t mtu,
		 struct virtio_net_hdr_v1 *hdr, const struct vio_iov **frame,
		 unsigned *nframe, size_t *len, const char **why)
{
	if (c->nr_in || c->nd_in) {
		*why = "writable descriptor in a transmit chain";
		return -EPROTO;
	}
	if (c->out_len < VIO_NET_HDR_LEN) {
		*why = "chain shorter than the virtio-net header";
		return -EPROTO;
	}
	unsigned i = 0;
	if (c->nr_out && c->out[0].len >= VIO_NET_HDR_LEN) {
		memcpy(hdr, c->out[0].base, VIO_NET_HDR_LEN);
	} else {
		struct vio_cursor cur;
		vio_cursor_init(&cur, c->out, c->nr_out);
		if (vio_cursor_read(&cur, hdr, VIO_NET_HDR_LEN) !=
		    VIO_NET_HDR_LEN) {
			*why = "chain shorter than the virtio-net header";
			return -EPROTO;
		}
	}
	/* cut the header off the segments, in place */
	size_t skip = VIO_NET_HDR_LEN;
	while (skip && i < c->nr_out) {
		struct vio_iov *s = &c->out[i];
		if (s->len <= skip) {
			skip -= s->len;
			i++;
		} else {
			s->base = (uint8_t *)s->base + skip;
			s->len -= (uint32_t)skip;
			skip = 0;
		}
	}
	*frame = c->out + i;
	*nframe = c->nr_out - i;
	*len = c->out_len - VIO_NET_HDR_LEN;
	if (net_tx_hdr_check(hdr, *len, neg, mtu, why) < 0)
		return -EPROTO;
	/* what the port sees: the flag it may act on, no num_buffers */
	hdr->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	hdr->num_buffers = 0;
	return 0;
}

bool net_rx_hdr_ok(const struct virtio_net_hdr_v1 *h, unsigned neg)
{
	const uint8_t csum =
	    VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	if (h->flags & ~csum)
		return false; /* RSC_INFO (RSC_EXT not offered), unknown */
	if ((h->flags & csum) && !(neg & NET_NEG_GUEST_CSUM))
		return false;
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(neg & NET_NEG_GUEST_TSO4))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(neg & NET_NEG_GUEST_TSO6))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!(neg & NET_NEG_GUEST_UFO))
			return false;
		break;
	default:
		return false;
	}
	return (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && h->gso_size;
}
