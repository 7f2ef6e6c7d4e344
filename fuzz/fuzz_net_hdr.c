/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the virtio-net device's transmit chain check
 * (net_tx_parse, net_tx_hdr_check in src/net/hdr.c) and the receive
 * header check (net_rx_hdr_ok): a hostile driver's chain, cut into
 * segments at the fuzzer's choice, against any negotiated feature set.
 *
 * Input (little-endian; missing bytes read as zero):
 *
 *   0..1   negotiated features, NET_NEG_* bits (net_internal.h)
 *   2..3   mtu
 *   4      flags: bit 0 the chain has a writable descriptor
 *   5      segments: b % 8 + 1
 *   6..    u16 length per segment (clipped to the bytes left)
 *   ..     the segments' bytes, in order
 *
 * Each segment is its own exactly-sized heap block (ASan sees any read
 * past one).  Checks besides ASan/UBSan: an accepted chain's frame
 * segments lie inside the chain's, total the reported length, which is
 * the chain's minus the header; the header agrees with the features
 * (no GSO type or NEEDS_CSUM not negotiated, checksum inside the frame,
 * MTU respected without GSO); the flags the port sees are NEEDS_CSUM at
 * most.
 */
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"
#include "util/log.h"

#define FZ_SEGS 8u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_net_hdr: %s\n", what);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vio_log_set_quiet(getenv("FZ_VERBOSE") == NULL);
	return 0;
}

static unsigned byte_at(const uint8_t *d, size_t n, size_t i)
{
	return i < n ? d[i] : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned neg = byte_at(data, size, 0) | byte_at(data, size, 1) << 8;
	uint16_t mtu =
	    (uint16_t)(byte_at(data, size, 2) | byte_at(data, size, 3) << 8);
	bool writable = byte_at(data, size, 4) & 1;
	unsigned nseg = byte_at(data, size, 5) % FZ_SEGS + 1;
	size_t pos = 6 + 2 * (size_t)nseg;
	struct vio_iov iov[FZ_SEGS + 1];
	uint8_t *blk[FZ_SEGS + 1];
	const uint8_t *lo[FZ_SEGS], *hi[FZ_SEGS];
	uint32_t total = 0;

	for (unsigned i = 0; i < nseg; i++) {
		size_t want = byte_at(data, size, 6 + 2 * i) |
			      byte_at(data, size, 7 + 2 * i) << 8;
		size_t left = pos < size ? size - pos : 0;
		size_t len = want < left ? want : left;
		blk[i] = malloc(len ? len : 1);
		if (!blk[i])
			fz_fail("malloc");
		if (len)
			memcpy(blk[i], data + pos, len);
		pos += len;
		iov[i] = (struct vio_iov){blk[i], (uint32_t)len, 0};
		lo[i] = blk[i];
		hi[i] = blk[i] + len;
		total += (uint32_t)len;
	}
	unsigned nin = 0;
	if (writable) {
		blk[nseg] = malloc(16);
		if (!blk[nseg])
			fz_fail("malloc");
		iov[nseg] = (struct vio_iov){blk[nseg], 16, 0};
		nin = 1;
	}
	struct vio_chain c = {
	    .head = 0,
	    .nr_out = (uint16_t)nseg,
	    .nr_in = (uint16_t)nin,
	    .nd_out = (uint16_t)nseg,
	    .nd_in = (uint16_t)nin,
	    .out_len = total,
	    .in_len = nin ? 16 : 0,
	    .out = iov,
	    .in = iov + nseg,
	};
	struct virtio_net_hdr_v1 hdr;
	const struct vio_iov *frame = NULL;
	unsigned nf = 0;
	size_t len = 0;
	const char *why = NULL;
	int r = net_tx_parse(&c, neg, mtu, &hdr, &frame, &nf, &len, &why);
	if (r == 0) {
		if (writable || total < VIO_NET_HDR_LEN)
			fz_fail("accepted a chain it must refuse");
		if (len != total - VIO_NET_HDR_LEN || len < NET_ETH_HLEN ||
		    len > NET_MAX_FRAME)
			fz_fail("frame length");
		size_t sum = 0;
		for (unsigned i = 0; i < nf; i++) {
			unsigned k = (unsigned)(frame + i - iov);
			const uint8_t *b = frame[i].base;
			if (k >= nseg || b < lo[k] || b + frame[i].len > hi[k])
				fz_fail("frame segment outside the chain");
			sum += frame[i].len;
		}
		if (sum != len)
			fz_fail("frame segments do not add up");
		if (hdr.flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
			fz_fail("flags passed to the port");
		if ((hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		    (!(neg & NET_NEG_CSUM) || (size_t)le16toh(hdr.csum_start) +
						      le16toh(hdr.csum_offset) +
						      2 >
						  len))
			fz_fail("checksum request accepted");
		switch (hdr.gso_type) {
		case VIRTIO_NET_HDR_GSO_NONE:
			if ((neg & NET_NEG_MTU) && len > mtu + NET_MTU_EXTRA)
				fz_fail("over the MTU");
			break;
		case VIRTIO_NET_HDR_GSO_TCPV4:
			if (!(neg & NET_NEG_HOST_TSO4))
				fz_fail("TSO4 not negotiated");
			break;
		case VIRTIO_NET_HDR_GSO_TCPV6:
			if (!(neg & NET_NEG_HOST_TSO6))
				fz_fail("TSO6 not negotiated");
			break;
		case VIRTIO_NET_HDR_GSO_UDP:
			if (!(neg & NET_NEG_HOST_UFO))
				fz_fail("UFO not negotiated");
			break;
		default:
			fz_fail("GSO type never offered");
		}
		if (hdr.gso_type && (!hdr.gso_size || !hdr.flags))
			fz_fail("GSO without MSS or NEEDS_CSUM");
	} else if (!why || !*why) {
		fz_fail("refused without a reason");
	}
	/* the receive check on the same bytes, as a port's header */
	if (size >= 6 + 2 * (size_t)nseg + VIO_NET_HDR_LEN) {
		struct virtio_net_hdr_v1 rh;
		memcpy(&rh, data + 6 + 2 * nseg, sizeof(rh));
		if (net_rx_hdr_ok(&rh, neg)) {
			if ((rh.flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM |
					  VIRTIO_NET_HDR_F_DATA_VALID)) ||
			    (rh.flags && !(neg & NET_NEG_GUEST_CSUM)))
				fz_fail("receive flags not negotiated");
			if (rh.gso_type &&
			    (!rh.gso_size ||
			     !(rh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)))
				fz_fail("receive GSO without MSS/NEEDS_CSUM");
		}
	}
	for (unsigned i = 0; i < nseg + nin; i++)
		free(blk[i]);
	return 0;
}
