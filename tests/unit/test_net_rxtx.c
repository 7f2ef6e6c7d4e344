/* SPDX-License-Identifier: MIT */
/*
 * The batched data path of the virtio-net device (src/net/tx.c and rx.c):
 *
 * - a transmit batch is popped whole before it is sent, its chains'
 *   segments one after the other in one array: a chain that no longer
 *   fits behind the earlier ones goes back to the ring and leads the
 *   next batch (every frame sent, none refused);
 * - receive chains are popped in bursts and held: frames still land in
 *   ring order, a frame too large for the next buffer leaves it for a
 *   smaller one, and a stop hands every held chain back (the ring
 *   position is as before the burst);
 * - a receive header is right whatever the buffer held before (the
 *   device stores only the bytes that differ).
 */
#include "net_env.h"

/* 40 chains of 31 segments (indirect, one slot each): the device's
 * segment array (QSZ + 1024 entries) holds 35 of them. */
static void test_tx_segments(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	o.port = vio_net_port_sink_new();
	REQUIRE(o.port);
	env_open(&e, &o, packed, NULL, 0);
	const unsigned chains = 40, pieces = 30;
	unsigned q = 1;
	for (unsigned c = 0; c < chains; c++) {
		struct vio_sg sg[31];
		uint8_t *h = balloc(&e, VIO_NET_HDR_LEN);
		memset(h, 0, VIO_NET_HDR_LEN);
		sg[0] = (struct vio_sg){h, VIO_NET_HDR_LEN};
		uint8_t *b = balloc(&e, 2 * pieces);
		make_frame(b, 2 * pieces, MAC_A, MAC_B, (uint8_t)c);
		for (unsigned i = 0; i < pieces; i++)
			sg[1 + i] = (struct vio_sg){b + 2 * i, 2};
		REQUIRE(vio_vq_add(e.vq[q], sg, 1 + pieces, 0, b) == 0);
	}
	kick(&e, q);
	CHECK_EQ(reap(&e, q), chains);
	struct vio_net_stats st = stats(&e);
	CHECK_EQ(st.tx_packets, chains);
	CHECK_EQ(st.tx_bytes, chains * 2 * pieces);
	CHECK_EQ(st.tx_errors, 0);
	struct vio_net_port_stats ps;
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.packets, chains);
	CHECK_EQ(ps.bad, 0);
	env_close(&e);
}

/* Receive through held chains, the test being the pair's thread (a pair
 * started without a loop: nothing is held past a kick, but the port's
 * calls in between share the held chains). */
static void test_rx_held(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_sink_new();
	REQUIRE(o.port);
	/* without MRG_RXBUF: one buffer per frame */
	static const unsigned drop[] = {VIRTIO_NET_F_MRG_RXBUF};
	env_open(&e, &o, packed, drop, 1);
	static uint8_t f[1000], got[2048];
	make_frame(f, sizeof(f), MAC_A, MAC_B, 9);
	CHECK(tx_one(&e, 0, NULL, f, 60, 0)); /* starts the pair */
	/* buffers: 3 of 2048, one of 100, 3 of 2048 */
	rx_post(&e, 0, 3, 2048);
	rx_post(&e, 0, 1, 100);
	rx_post(&e, 0, 3, 2048);
	struct vio_vq *dq = vio_device_queue(e.dev, 0);
	uint16_t base = vio_vq_get_base(dq);
	struct vio_iov iov = {f, 0, 0};
	for (unsigned i = 0; i < 3; i++) {
		iov.len = 500 + i;
		CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, &iov, 1, iov.len), 0);
	}
	/* the small buffer is next: too small for 500, kept for 60 */
	iov.len = 500;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, &iov, 1, 500), -EMSGSIZE);
	iov.len = 60;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, &iov, 1, 60), 0);
	iov.len = 700;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, &iov, 1, 700), 0);
	vio_net_device_rx_flush(e.nd, 0);
	struct virtio_net_hdr_v1 h;
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), 500 + i);
		CHECK_EQ(le16toh(h.num_buffers), 1);
		CHECK(!memcmp(got, f, 500 + i));
	}
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), 60);
	CHECK(!memcmp(got, f, 60));
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), 700);
	CHECK(!memcmp(got, f, 700));
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), -1);
	/* 5 used, 2 held: the end of a kick hands them back */
	CHECK_EQ((uint16_t)(vio_vq_get_base(dq) - base), 7);
	kick(&e, 0);
	CHECK_EQ((uint16_t)(vio_vq_get_base(dq) - base), 5);
	iov.len = 800;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, &iov, 1, 800), 0);
	vio_net_device_rx_flush(e.nd, 0);
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), 800);
	CHECK(!memcmp(got, f, 800));
	struct vio_net_stats st = stats(&e);
	CHECK_EQ(st.rx_packets, 6);
	CHECK_EQ(st.rx_dropped, 1);
	env_close(&e);
}

/*
 * The device writes a receive header's bytes only where the buffer holds
 * others (a recycled buffer already has the header it needs): whatever a
 * buffer held before, the driver reads exactly the frame's header, with
 * num_buffers 1, with and without a port header, and with the buffer
 * holding the right header but for one byte.
 */
static void test_rx_stale_header(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_sink_new();
	REQUIRE(o.port);
	o.port->offloads |= VIO_NET_PORT_RX_CSUM; /* GUEST_CSUM offered */
	env_open(&e, &o, packed, NULL, 0);
	static uint8_t f[200], got[2048];
	make_frame(f, sizeof(f), MAC_A, MAC_B, 3);
	CHECK(tx_one(&e, 0, NULL, f, 60, 0)); /* starts the pair */
	struct virtio_net_hdr_v1 csum = {0};
	csum.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	struct virtio_net_hdr_v1 want1 = {0};
	want1.num_buffers = htole16(1);
	const uint8_t fill[] = {0xa5, 0x00, 0x01};
	for (unsigned k = 0; k < 6; k++) {
		struct vio_sg sg = {balloc(&e, 2048), 2048};
		uint8_t *b = sg.buf;
		if (k < 3) {
			memset(b, fill[k], 2048);
		} else {
			/* the right header but for one byte */
			const struct virtio_net_hdr_v1 *w =
			    k == 5 ? &csum : &want1;
			memcpy(b, w, VIO_NET_HDR_LEN);
			b[k == 3 ? 8 : 4] ^= 0x40; /* csum_offset, gso_size */
			if (k == 5)
				b[10] = 1; /* num_buffers already 1 */
		}
		REQUIRE(vio_vq_add(e.vq[0], &sg, 0, 1, sg.buf) == 0);
	}
	vio_vq_kick_prepare(e.vq[0]);
	struct vio_iov iov = {f, 100, 0};
	for (unsigned k = 0; k < 6; k++)
		CHECK_EQ(vio_net_device_rx(e.nd, 0, k == 5 ? &csum : NULL, &iov,
					   1, 100),
			 0);
	vio_net_device_rx_flush(e.nd, 0);
	for (unsigned k = 0; k < 6; k++) {
		struct virtio_net_hdr_v1 h;
		CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), 100);
		struct virtio_net_hdr_v1 w = k == 5 ? csum : want1;
		w.num_buffers = htole16(1);
		CHECK(!memcmp(&h, &w, sizeof(h)));
		CHECK(!memcmp(got, f, 100));
	}
	env_close(&e);
}

int main(void)
{
	for (int packed = 0; packed < 2; packed++) {
		test_tx_segments(packed);
		test_rx_held(packed);
		test_rx_stale_header(packed);
	}
	return test_result("net_rxtx");
}
