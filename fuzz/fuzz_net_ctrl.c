/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the virtio-net control command parser
 * (net_ctrl_exec in src/net/ctrl.c) and the receive filter it sets
 * (net_rx_filter_pass): a hostile driver's command stream, each command
 * cut into segments at the fuzzer's choice, against any feature set.
 *
 * Input (little-endian; missing bytes read as zero):
 *
 *   0..1   negotiated features, NET_NEG_* bits (net_internal.h)
 *   2      max pairs: b % 8 + 1
 *   3..    commands, each: u8 segments (b % 4 + 1), u16 length, one cut
 *          byte per segment boundary (position = b % (length + 1),
 *          sorted), then length bytes (class, command, data)
 *
 * Each segment is its own exactly-sized heap block.  Checks besides
 * ASan/UBSan: the answer is OK or ERR; ERR leaves the filter as it was;
 * OK on a command whose feature was not negotiated never happens; a
 * pair count is in 1..max pairs; the tables stay within their bounds;
 * the filter answers for a few addresses (broadcast, multicast,
 * the device's, another).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"
#include "util/log.h"

#define FZ_CMDS 16u
#define FZ_SEGS 4u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_net_ctrl: %s\n", what);
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

static int cmp_sz(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac0[6] = {0x02, 0, 0, 0, 0, 1};
	unsigned neg = byte_at(data, size, 0) | byte_at(data, size, 1) << 8;
	unsigned max_pairs = byte_at(data, size, 2) % 8 + 1;
	struct net_rx_filter f, before;
	net_rx_filter_reset(&f, mac0);
	size_t pos = 3;

	for (unsigned n = 0; n < FZ_CMDS && pos < size; n++) {
		unsigned nseg = byte_at(data, size, pos) % FZ_SEGS + 1;
		size_t want = byte_at(data, size, pos + 1) |
			      byte_at(data, size, pos + 2) << 8;
		pos += 3;
		size_t cut[FZ_SEGS + 1];
		for (unsigned i = 0; i + 1 < nseg; i++)
			cut[i] = byte_at(data, size, pos + i);
		pos += nseg - 1;
		size_t left = pos < size ? size - pos : 0;
		size_t len = want < left ? want : left;
		for (unsigned i = 0; i + 1 < nseg; i++)
			cut[i] %= len + 1;
		qsort(cut, nseg - 1, sizeof(cut[0]), cmp_sz);
		cut[nseg - 1] = len;
		struct vio_iov iov[FZ_SEGS];
		uint8_t *blk[FZ_SEGS];
		size_t at = 0;
		for (unsigned i = 0; i < nseg; i++) {
			size_t k = cut[i] - at;
			blk[i] = malloc(k ? k : 1);
			if (!blk[i])
				fz_fail("malloc");
			if (k)
				memcpy(blk[i], data + pos + at, k);
			iov[i] = (struct vio_iov){blk[i], (uint32_t)k, 0};
			at = cut[i];
		}
		uint8_t cls = len > 0 ? data[pos] : 0xff;
		pos += len;

		before = f;
		struct net_ctrl_effect e;
		const char *why = NULL;
		uint8_t ack =
		    net_ctrl_exec(iov, nseg, neg, max_pairs, &f, &e, &why);
		if (ack == VIRTIO_NET_ERR) {
			if (memcmp(&before, &f, sizeof(f)))
				fz_fail("ERR changed the filter");
			if (!why || !*why)
				fz_fail("ERR without a reason");
		} else if (ack == VIRTIO_NET_OK) {
			if (cls == VIRTIO_NET_CTRL_RX &&
			    !(neg & NET_NEG_CTRL_RX))
				fz_fail("RX command without CTRL_RX");
			if (cls == VIRTIO_NET_CTRL_MQ &&
			    (!(neg & NET_NEG_MQ) || e.pairs < 1 ||
			     e.pairs > max_pairs))
				fz_fail("pair count");
			if (cls == VIRTIO_NET_CTRL_ANNOUNCE &&
			    (!(neg & NET_NEG_ANNOUNCE) || !e.announce_ack))
				fz_fail("announce");
			if (cls > VIRTIO_NET_CTRL_MQ ||
			    cls == VIRTIO_NET_CTRL_VLAN)
				fz_fail("OK for an unknown class");
		} else {
			fz_fail("neither OK nor ERR");
		}
		if (f.n_uni > NET_MAC_TABLE_MAX ||
		    f.n_multi > NET_MAC_TABLE_MAX)
			fz_fail("table past its bound");
		for (unsigned i = 0; i < nseg; i++)
			free(blk[i]);
	}
	static const uint8_t probe[][6] = {
	    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	    {0x01, 0, 0x5e, 0, 0, 1},
	    {0x02, 0, 0, 0, 0, 1},
	    {0x02, 0, 0, 0, 0, 2},
	};
	unsigned pass = 0;
	for (unsigned i = 0; i < 4; i++)
		pass += net_rx_filter_pass(&f, probe[i]);
	if (f.promisc && pass != 4)
		fz_fail("promiscuous filter dropped a frame");
	return 0;
}
