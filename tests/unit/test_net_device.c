/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device unit tests, the data path (src/net/tx.c and rx.c,
 * port_basic.c; environment: net_env.h).  Split and packed rings.
 *
 * - transmit to a sink: frames counted on both sides, chains returned;
 *   sink:check finds malformed IPv4 frames, a plain sink reads no frame
 *   (a frame on a page with no access goes through).
 * - echo round trip, MAC-swapped, with and without MRG_RXBUF (a frame
 *   over several small buffers, num_buffers), contents checked.
 * - no receive buffer: the echoed frame is dropped and counted, the
 *   transmit still completes; a buffer too small without MRG_RXBUF.
 * - hostile transmit chains: shorter than the header, a writable
 *   descriptor, GSO without the feature, NEEDS_CSUM without CSUM,
 *   checksum offsets past the frame, GSO with gso_size 0: answered,
 *   counted in tx_errors, never reach the port.
 * - gen: receive buffers filled with valid, numbered UDP frames, without
 *   a loop (on the receiveq kick) and with one (its timer); a
 *   reservation outstanding at a queue stop is handed back.
 */
#include <sys/mman.h>

#include "net_env.h"

/* ---- transmit to a sink ---- */

static void test_tx_sink(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {.port = vio_net_port_sink_check_new()};
	env_open(&e, &o, packed, NULL, 0);
	CHECK_EQ(strcmp(e.port->kind, "sink:check"), 0);
	CHECK_EQ(e.port->flags, 0); /* it reads frames: prefetched */
	uint8_t f[1514];
	unsigned ok = 0;
	size_t bytes = 0;
	for (unsigned i = 0; i < 20; i++) {
		size_t len = 60 + i * 70;
		make_frame(f, len, MAC_B, MAC_A, (uint8_t)i);
		ok += tx_one(&e, 0, NULL, f, len, i % 3 ? 7 : 0);
		bytes += len;
	}
	CHECK_EQ(ok, 20);
	struct vio_net_stats s = stats(&e);
	CHECK_EQ(s.tx_packets, 20);
	CHECK_EQ(s.tx_bytes, bytes);
	CHECK_EQ(s.tx_errors, 0);
	struct vio_net_port_stats ps;
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.packets, 20);
	CHECK_EQ(ps.bytes, bytes);
	CHECK_EQ(ps.bad, 0);

	/* the content check: IPv4 header checksum and total length */
	uint8_t ip[100];
	make_frame(ip, sizeof(ip), MAC_B, MAC_A, 0);
	ip[12] = 0x08;
	ip[13] = 0x00;
	memset(ip + 14, 0, 20);
	ip[14] = 0x45;
	ip[17] = sizeof(ip) - 14;
	ip[22] = 64;
	ip[23] = 17;
	uint32_t sum = 0;
	for (unsigned i = 14; i < 34; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[24] = (uint8_t)(~sum >> 8);
	ip[25] = (uint8_t)~sum;
	CHECK(tx_one(&e, 0, NULL, ip, sizeof(ip), 20)); /* good, cut */
	ip[30] ^= 1;					/* checksum */
	CHECK(tx_one(&e, 0, NULL, ip, sizeof(ip), 0));
	ip[30] ^= 1;
	ip[17] += 1; /* total length past the frame */
	ip[25] -= 1;
	CHECK(tx_one(&e, 0, NULL, ip, sizeof(ip), 0));
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.packets, 23);
	CHECK_EQ(ps.bad, 2);
	env_close(&e);
}

/*
 * A plain sink reads no byte of a frame, and has none prefetched
 * (VIO_NET_PORT_F_LEN_ONLY): the frame sits alone on a page with no
 * access while the device takes it (sink:check would fault).  It is
 * counted, and the chain comes back.
 */
static void test_tx_sink_len_only(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	env_open(&e, &o, packed, NULL, 0);
	CHECK_EQ(strcmp(e.port->kind, "sink"), 0);
	CHECK(e.port->flags & VIO_NET_PORT_F_LEN_ONLY);
	uint8_t *h = balloc(&e, VIO_NET_HDR_LEN);
	memset(h, 0, VIO_NET_HDR_LEN);
	e.off = (e.off + 4095) & ~(size_t)4095; /* the arena is page-aligned */
	uint8_t *f = balloc(&e, 4096);
	for (unsigned i = 0; i < 3; i++) {
		size_t len = 60 + 500 * i;
		make_frame(f, len, MAC_B, MAC_A, (uint8_t)i);
		struct vio_sg sg[2] = {{h, VIO_NET_HDR_LEN},
				       {f, (uint32_t)len}};
		REQUIRE(vio_vq_add(e.vq[1], sg, 2, 0, f) == 0);
		REQUIRE(mprotect(f, 4096, PROT_NONE) == 0);
		kick(&e, 1);
		REQUIRE(mprotect(f, 4096, PROT_READ | PROT_WRITE) == 0);
		CHECK_EQ(reap(&e, 1), 1);
	}
	struct vio_net_port_stats ps;
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.packets, 3);
	CHECK_EQ(ps.bytes, 60 + 560 + 1060);
	CHECK_EQ(ps.bad, 0);
	CHECK_EQ(stats(&e).tx_packets, 3);
	env_close(&e);
}

/* ---- transmit batching (tx_wait_ns) ---- */

/* Queue one frame on transmitq 0 in one segment after its header (two
 * descriptors with cut: header, frame), without a kick. */
static void tx_add(struct tenv *e, uint8_t seed)
{
	uint8_t *b = balloc(e, VIO_NET_HDR_LEN + 60);
	memset(b, 0, VIO_NET_HDR_LEN);
	make_frame(b + VIO_NET_HDR_LEN, 60, MAC_B, MAC_A, seed);
	struct vio_sg sg = {b, VIO_NET_HDR_LEN + 60};
	REQUIRE(vio_vq_add(e->vq[1], &sg, 1, 0, b) == 0);
}

/* A partial batch waits (the kick takes nothing and asks to be run
 * again) until tx_wait_ns have passed, then goes; a full batch of 64
 * descriptors goes at the first kick; an empty ring is no work. */
static void test_tx_wait(bool packed)
{
	struct tenv e;
	const uint32_t wait = VIO_NET_TX_WAIT_MAX; /* 1 ms */
	struct vio_net_device_opts o = {.tx_wait_ns = wait};
	env_open(&e, &o, packed, NULL, 0);
	CHECK(!vio_device_kick(e.dev, 1));
	tx_add(&e, 1);
	vio_vq_kick_prepare(e.vq[1]);
	uint64_t t0 = vio_now_ns();
	CHECK(vio_device_kick(e.dev, 1)); /* waits: run again */
	CHECK_EQ(reap(&e, 1), 0);
	unsigned turns = 0;
	while (vio_device_kick(e.dev, 1) && vio_now_ns() - t0 < 5000000000u)
		turns++;
	uint64_t took = vio_now_ns() - t0;
	CHECK_EQ(reap(&e, 1), 1);
	CHECK(took >= wait);
	CHECK(turns > 0);
	CHECK_EQ(stats(&e).tx_packets, 1);

	/* 64 one-descriptor chains (the ring's size): no wait */
	for (unsigned i = 0; i < QSZ; i++)
		tx_add(&e, (uint8_t)i);
	vio_vq_kick_prepare(e.vq[1]);
	t0 = vio_now_ns();
	vio_device_kick(e.dev, 1);
	CHECK_EQ(reap(&e, 1), QSZ);
	CHECK(vio_now_ns() - t0 < wait);
	CHECK_EQ(stats(&e).tx_packets, 1 + QSZ);
	env_close(&e);

	/* out of range: refused with a reason */
	struct vio_net_port *port = vio_net_port_sink_new();
	REQUIRE(port);
	struct vio_net_device_opts bad = {
	    .port = port, .tx_wait_ns = VIO_NET_TX_WAIT_MAX + 1};
	char err[128] = "";
	CHECK(vio_net_device_new(&bad, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "transmit wait") != NULL);
	vio_net_port_free(port);
}

/* ---- echo ---- */

static void test_echo(bool packed, bool mrg)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	o.port = vio_net_port_echo_new();
	static const unsigned drop[] = {VIRTIO_NET_F_MRG_RXBUF};
	env_open(&e, &o, packed, drop, mrg ? 0 : 1);
	/* mergeable: 100-byte buffers, so 1000 bytes take 11 of them */
	uint32_t bsz = mrg ? 100 : 1600;
	rx_post(&e, 0, QSZ - 8, bsz);
	static uint8_t f[1514], got[4096];
	unsigned good = 0, n = 0;
	for (unsigned i = 0; i < 8; i++) {
		size_t len = 60 + i * 130;
		make_frame(f, len, MAC_B, MAC_A, (uint8_t)(i * 7));
		CHECK(tx_one(&e, 0, NULL, f, len, i & 1 ? 13 : 0));
		struct virtio_net_hdr_v1 h;
		long r = rx_frame(&e, 0, got, sizeof(got), &h);
		CHECK_EQ(r, (long)len);
		if (r != (long)len)
			continue;
		n++;
		unsigned want_nb =
		    mrg ? (unsigned)((VIO_NET_HDR_LEN + len + bsz - 1) / bsz)
			: 1;
		CHECK_EQ(le16toh(h.num_buffers), want_nb);
		CHECK_EQ(h.flags, 0);
		CHECK_EQ(h.gso_type, 0);
		good += !memcmp(got, MAC_A, 6) && !memcmp(got + 6, MAC_B, 6) &&
			!memcmp(got + 12, f + 12, len - 12);
	}
	CHECK_EQ(n, 8);
	CHECK_EQ(good, 8);
	struct vio_net_stats s = stats(&e);
	CHECK_EQ(s.rx_packets, 8);
	CHECK_EQ(s.tx_packets, 8);
	printf("echo (%s, %s): %u frames round trip\n",
	       packed ? "packed" : "split", mrg ? "mergeable" : "big buffers",
	       good);
	env_close(&e);
}

/* No buffer: dropped and counted, never blocks; too small a buffer
 * without MRG_RXBUF: -EMSGSIZE, the buffer kept for a frame that fits. */
static void test_rx_full(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	o.port = vio_net_port_echo_new();
	static const unsigned drop[] = {VIRTIO_NET_F_MRG_RXBUF};
	env_open(&e, &o, packed, drop, 1);
	uint8_t f[600], got[2048];
	make_frame(f, sizeof(f), MAC_B, MAC_A, 1);
	for (unsigned i = 0; i < 3; i++)
		CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
	struct vio_net_stats s = stats(&e);
	CHECK_EQ(s.tx_packets, 3);
	CHECK_EQ(s.rx_no_buffer, 3);
	CHECK_EQ(s.rx_packets, 0);
	/* one 200-byte buffer: too small for 600, right for 100 */
	rx_post(&e, 0, 1, 200);
	CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
	s = stats(&e);
	CHECK_EQ(s.rx_dropped, 1);
	struct virtio_net_hdr_v1 h;
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), -1);
	CHECK(tx_one(&e, 0, NULL, f, 100, 0));
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), 100);
	s = stats(&e);
	CHECK_EQ(s.rx_packets, 1);
	env_close(&e);
}

/* ---- hostile transmit chains ---- */

static void test_tx_hostile(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	o.port = vio_net_port_sink_new();
	REQUIRE(o.port);
	o.port->offloads = VIO_NET_PORT_TX_CSUM | VIO_NET_PORT_TX_TSO;
	env_open(&e, &o, packed, NULL, 0);
	unsigned txq = 1, bad = 0;
	uint8_t f[200];
	make_frame(f, sizeof(f), MAC_B, MAC_A, 3);

	/* shorter than the header: 8 bytes */
	uint8_t *b = balloc(&e, 8);
	struct vio_sg sg[2] = {{b, 8}};
	REQUIRE(vio_vq_add(e.vq[txq], sg, 1, 0, b) == 0);
	kick(&e, txq);
	CHECK_EQ(reap(&e, txq), 1);
	bad++;
	/* a writable descriptor after the frame */
	uint8_t *w = balloc(&e, 64);
	memset(w, 0, VIO_NET_HDR_LEN);
	memcpy(w + VIO_NET_HDR_LEN, f, 40);
	sg[0] = (struct vio_sg){w, 52};
	sg[1] = (struct vio_sg){w + 52, 12};
	REQUIRE(vio_vq_add(e.vq[txq], sg, 1, 1, w) == 0);
	kick(&e, txq);
	CHECK_EQ(reap(&e, txq), 1);
	bad++;
	/* a frame shorter than Ethernet */
	CHECK(tx_one(&e, 0, NULL, f, 10, 0));
	bad++;
	struct virtio_net_hdr_v1 h;
	/* UFO not offered */
	memset(&h, 0, sizeof(h));
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	h.gso_size = htole16(100);
	h.csum_start = htole16(34);
	h.csum_offset = htole16(6);
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	bad++;
	/* ECN never offered */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	bad++;
	/* TSO with gso_size 0 */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.gso_size = 0;
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	bad++;
	/* TSO without NEEDS_CSUM */
	h.gso_size = htole16(100);
	h.flags = 0;
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	bad++;
	/* checksum offsets past the frame */
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.gso_type = 0;
	h.csum_start = htole16(190);
	h.csum_offset = htole16(16);
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	bad++;
	h.csum_start = htole16(0xffff);
	h.csum_offset = htole16(0xffff);
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	bad++;
	/* and the good ones: TSO, and checksum ending at the last byte */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	h.gso_size = htole16(1000);
	h.csum_start = htole16(54);
	h.csum_offset = htole16(16);
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	h.gso_type = 0;
	h.csum_start = htole16(190);
	h.csum_offset = htole16(8);
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	struct vio_net_stats s = stats(&e);
	CHECK_EQ(s.tx_errors, bad);
	CHECK_EQ(s.tx_packets, 2);
	struct vio_net_port_stats ps;
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.packets, 2);
	env_close(&e);

	/* without CSUM negotiated, NEEDS_CSUM is refused */
	struct vio_net_device_opts o2 = {0};
	env_open(&e, &o2, packed, NULL, 0);
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = htole16(34);
	h.csum_offset = htole16(6);
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	h.flags = 0;
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	CHECK(tx_one(&e, 0, &h, f, sizeof(f), 0));
	s = stats(&e);
	CHECK_EQ(s.tx_errors, 2);
	CHECK_EQ(s.tx_packets, 0);
	env_close(&e);
}

/* ---- gen ---- */

static uint16_t csum16(const uint8_t *b, unsigned len)
{
	uint32_t s = 0;
	for (unsigned i = 0; i + 1 < len; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void test_gen(bool packed, bool mrg)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_gen_new(mrg ? 300 : 0);
	REQUIRE(o.port);
	static const unsigned drop[] = {VIRTIO_NET_F_MRG_RXBUF};
	env_open(&e, &o, packed, drop, mrg ? 0 : 1);
	size_t flen = mrg ? 300 : 60;
	rx_post(&e, 0, 40, mrg ? 128 : 2048);
	kick(&e, 0);
	static uint8_t got[4096];
	struct virtio_net_hdr_v1 h;
	unsigned n = 0, good = 0;
	long r;
	while ((r = rx_frame(&e, 0, got, sizeof(got), &h)) >= 0) {
		CHECK_EQ(r, (long)flen);
		uint64_t seq = 0;
		for (unsigned i = 0; i < 8; i++)
			seq = seq << 8 | got[42 + i];
		good += r == (long)flen && seq == n && !memcmp(got, MAC_A, 6) &&
			got[12] == 8 && got[13] == 0 &&
			csum16(got + 14, 20) == 0 &&
			(got[16] << 8 | got[17]) == (int)flen - 14;
		n++;
	}
	unsigned want = mrg ? 40 / 3 : 40;
	CHECK_EQ(n, want);
	CHECK_EQ(good, want);
	struct vio_net_port_stats ps;
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.made, want);
	/* more buffers: the kick brings more frames, the sequence going on
	 * from the last frame delivered (the port stamps frames a stage at
	 * a time: those the ring had no room for are not skipped) */
	rx_post(&e, 0, 3, mrg ? 128 : 2048);
	kick(&e, 0);
	unsigned more = 0;
	while (rx_frame(&e, 0, got, sizeof(got), &h) >= 0) {
		uint64_t seq = 0;
		for (unsigned i = 0; i < 8; i++)
			seq = seq << 8 | got[42 + i];
		CHECK_EQ(seq, (uint64_t)(want + more));
		more++;
	}
	CHECK_EQ(more, mrg ? 1 : 3);
	env_close(&e);
}

/*
 * With queue_start and a loop (as vio serve runs it): gen fills from its
 * timer, a batch per turn; a reservation outstanding at queue_stop is
 * handed back (the driver gets nothing, the ring position goes back);
 * after a restart the same buffers are filled.
 */
static void test_loop(bool packed)
{
	struct tloop tl = {
	    .l = {fake_add_fd, fake_del_fd, tl_set_timer, tl_cancel, NULL}};
	struct tenv e;
	struct vio_net_device_opts o = {0};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_gen_new(0);
	REQUIRE(o.port);
	env_open(&e, &o, packed, NULL, 0);
	rx_post(&e, 0, 40, 2048);
	CHECK_EQ(vio_device_queue_start(e.dev, 1, &tl.l), 0);
	CHECK_EQ(vio_device_queue_start(e.dev, 0, &tl.l), 0);
	CHECK(tl_run(&tl) >= 1);
	static uint8_t got[2048];
	struct virtio_net_hdr_v1 h;
	unsigned n = 0;
	while (rx_frame(&e, 0, got, sizeof(got), &h) == 60)
		n++;
	CHECK_EQ(n, 40);

	/* a reservation held across a stop goes back to the ring */
	struct vio_vq *dq = vio_device_queue(e.dev, 0);
	rx_post(&e, 0, 3, 2048);
	uint16_t base = vio_vq_get_base(dq);
	const struct vio_iov *iov;
	CHECK_EQ(vio_net_device_rx_reserve(e.nd, 0, 100, &iov) > 0, 1);
	CHECK(vio_vq_get_base(dq) != base);
	vio_device_queue_stop(e.dev, 0);
	CHECK_EQ(vio_vq_get_base(dq), base);
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), -1);
	CHECK_EQ(vio_net_device_rx_reserve(e.nd, 0, 100, &iov), -ENOTCONN);
	CHECK_EQ(vio_device_queue_start(e.dev, 0, &tl.l), 0);
	tl_run(&tl);
	n = 0;
	while (rx_frame(&e, 0, got, sizeof(got), &h) == 60)
		n++;
	CHECK_EQ(n, 3);
	/* the kick of a receiveq tells the port */
	rx_post(&e, 0, 2, 2048);
	kick(&e, 0);
	tl_run(&tl);
	n = 0;
	while (rx_frame(&e, 0, got, sizeof(got), &h) == 60)
		n++;
	CHECK_EQ(n, 2);
	vio_device_queue_stop(e.dev, 0);
	vio_device_queue_stop(e.dev, 1);
	CHECK_EQ(tl.n, 0); /* gen's timer cancelled */
	struct vio_net_port_stats ps;
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.made, 45);
	env_close(&e);
}

/* ---- the receive API, as a port calls it ---- */

/*
 * vio_net_device_rx and rx_reserve/commit called directly (the test is
 * the pair's thread): offload headers against the GUEST_ features, runts,
 * the MTU, no buffer, a pair that does not exist, a frame spread over
 * mergeable buffers, a reservation committed empty or cancelled.
 */
static void test_rx_api(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {.mtu = 1500};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_sink_new();
	REQUIRE(o.port);
	o.port->offloads = VIO_NET_PORT_RX_CSUM | VIO_NET_PORT_RX_TSO;
	env_open(&e, &o, packed, NULL, 0);
	static uint8_t f[4000], got[8192];
	make_frame(f, sizeof(f), MAC_A, MAC_B, 5);
	struct vio_iov iov[2] = {{f, 100, 0}, {f + 100, sizeof(f) - 100, 0}};
	/* no kick yet: the pair is not running */
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, iov, 2, 60), -ENOTCONN);
	CHECK(tx_one(&e, 0, NULL, f, 60, 0)); /* starts the pair */
	CHECK_EQ(vio_net_device_rx(e.nd, 1, NULL, iov, 2, 60), -ENOTCONN);
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, iov, 2, 60), -ENOBUFS);
	rx_post(&e, 0, 8, 100);
	struct virtio_net_hdr_v1 h = {0};
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.gso_size = htole16(1448);
	h.csum_start = htole16(34);
	h.csum_offset = htole16(16);
	CHECK(vio_net_device_rx_accepts(e.nd, &h));
	CHECK_EQ(vio_net_device_rx(e.nd, 0, &h, iov, 2, 250), 0);
	vio_net_device_rx_flush(e.nd, 0);
	struct virtio_net_hdr_v1 rh;
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &rh), 250);
	CHECK_EQ(le16toh(rh.num_buffers), 3);
	CHECK_EQ(rh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	CHECK_EQ(rh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	CHECK(!memcmp(got, f, 250));
	/* not negotiable: UFO (not offered), ECN, RSC_INFO, no MSS */
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	CHECK(!vio_net_device_rx_accepts(e.nd, &h));
	CHECK_EQ(vio_net_device_rx(e.nd, 0, &h, iov, 2, 250), -EPROTO);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, &h, iov, 2, 250), -EPROTO);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	h.gso_size = 0;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, &h, iov, 2, 250), -EPROTO);
	h.gso_type = 0;
	h.flags = VIRTIO_NET_HDR_F_RSC_INFO;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, &h, iov, 2, 250), -EPROTO);
	h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	CHECK_EQ(vio_net_device_rx(e.nd, 0, &h, iov, 2, 60), 0);
	/* runts, frames over the MTU (unless GSO), frames past the iov */
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, iov, 2, 13), -EINVAL);
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, iov, 1, 200), -EINVAL);
	struct vio_iov shorter[2] = {{f, 100, 0}, {f + 100, 50, 0}};
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, shorter, 2, 200), -EINVAL);
	/* the destination address across segments */
	struct vio_iov cut[3] = {{f, 4, 0}, {f + 4, 40, 0}, {f + 44, 56, 0}};
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, cut, 3, 100), 0);
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, iov, 2, 1519), -EMSGSIZE);
	/* 1518 needs 16 buffers of 100: a few are left, the ring ran dry */
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, iov, 2, 1518), -ENOBUFS);
	rx_post(&e, 0, 40, 100);
	CHECK_EQ(vio_net_device_rx(e.nd, 0, NULL, iov, 2, 1518), 0);
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	h.gso_size = htole16(1000);
	CHECK_EQ(vio_net_device_rx(e.nd, 0, &h, iov, 2, 2000), 0);
	vio_net_device_rx_flush(e.nd, 0);
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &rh), 60);
	CHECK_EQ(rh.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &rh), 100);
	CHECK(!memcmp(got, f, 100));
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &rh), 1518);
	CHECK(!memcmp(got, f, 1518));
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &rh), 2000);
	CHECK_EQ(le16toh(rh.num_buffers), 21);
	CHECK(!memcmp(got, f, 2000));
	/* reserve: committed empty, cancelled, committed short of a
	 * header, committed past the reservation: the buffers come back */
	const struct vio_iov *seg;
	int k = vio_net_device_rx_reserve(e.nd, 0, 300, &seg);
	CHECK(k >= 3);
	CHECK_EQ(vio_net_device_rx_commit(e.nd, 0, 0), 0);
	CHECK(vio_net_device_rx_reserve(e.nd, 0, 300, &seg) >= 3);
	vio_net_device_rx_cancel(e.nd, 0);
	CHECK_EQ(vio_net_device_rx_commit(e.nd, 0, 100), -EINVAL);
	CHECK(vio_net_device_rx_reserve(e.nd, 0, 300, &seg) >= 3);
	CHECK_EQ(vio_net_device_rx_commit(e.nd, 0, 20), -EINVAL);
	k = vio_net_device_rx_reserve(e.nd, 0, 300, &seg);
	CHECK(k >= 3);
	/* past the reservation, mergeable: the ring had too few buffers */
	CHECK_EQ(vio_net_device_rx_commit(e.nd, 0, 100000), -ENOBUFS);
	vio_net_device_rx_flush(e.nd, 0);
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &rh), -1);
	/* and one that is used: 150 bytes written through the segments */
	k = vio_net_device_rx_reserve(e.nd, 0, 300, &seg);
	struct vio_cursor cur;
	vio_cursor_init(&cur, seg, (unsigned)k);
	static const struct virtio_net_hdr_v1 zero;
	CHECK_EQ(vio_cursor_write(&cur, &zero, VIO_NET_HDR_LEN), 12);
	CHECK_EQ(vio_cursor_write(&cur, f, 150), 150);
	CHECK_EQ(vio_net_device_rx_commit(e.nd, 0, 162), 0);
	vio_net_device_rx_flush(e.nd, 0);
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &rh), 150);
	CHECK_EQ(le16toh(rh.num_buffers), 2);
	CHECK(!memcmp(got, f, 150));
	struct vio_net_stats st = stats(&e);
	CHECK_EQ(st.rx_packets, 6);
	CHECK_EQ(st.rx_no_buffer, 3);
	CHECK_EQ(st.rx_dropped, 9); /* the commit after cancel is not */
	env_close(&e);
}

/*
 * Hostile receive rings: a buffer smaller than the header (first, and in
 * the middle of a mergeable frame), a chain with a readable descriptor
 * before its writable one: the tiny buffers come back used with length
 * 0, frames land in the buffers that can hold them, the queue is kept.
 */
static void test_rx_hostile(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	o.port = vio_net_port_echo_new();
	env_open(&e, &o, packed, NULL, 0);
	unsigned rxq = 0;
	uint8_t *tiny = balloc(&e, 8);
	struct vio_sg sg[2] = {{tiny, 8}};
	REQUIRE(vio_vq_add(e.vq[rxq], sg, 0, 1, tiny) == 0);
	uint8_t *ro = balloc(&e, 16), *wr = balloc(&e, 400);
	sg[0] = (struct vio_sg){ro, 16};
	sg[1] = (struct vio_sg){wr, 400};
	REQUIRE(vio_vq_add(e.vq[rxq], sg, 1, 1, wr) == 0);
	uint8_t *b1 = balloc(&e, 100), *tiny2 = balloc(&e, 4);
	uint8_t *b2 = balloc(&e, 2048);
	struct vio_sg one[3] = {{b1, 100}, {tiny2, 4}, {b2, 2048}};
	for (unsigned i = 0; i < 3; i++)
		REQUIRE(vio_vq_add(e.vq[rxq], &one[i], 0, 1, one[i].buf) == 0);
	vio_vq_kick_prepare(e.vq[rxq]);
	uint8_t f[300];
	make_frame(f, sizeof(f), MAC_B, MAC_A, 4);
	/* 312 bytes: the tiny buffer goes back empty, the mixed chain
	 * takes it (its writable part) */
	CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
	uint32_t len;
	CHECK(vio_vq_get(e.vq[rxq], &len) == tiny);
	CHECK_EQ(len, 0);
	CHECK(vio_vq_get(e.vq[rxq], &len) == wr);
	CHECK_EQ(len, VIO_NET_HDR_LEN + sizeof(f));
	CHECK(!memcmp(wr + VIO_NET_HDR_LEN, MAC_A, 6));
	CHECK_EQ(wr[VIO_NET_HDR_LEN + 10], 0); /* num_buffers 1 */
	CHECK_EQ(wr[10], 1);
	/* mergeable, 312 bytes over b1 (100) then the tiny one: it is left
	 * for the next frame, which returns it empty and takes b2 */
	CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
	CHECK(vio_vq_get(e.vq[rxq], &len) == NULL);
	struct vio_net_stats st = stats(&e);
	CHECK_EQ(st.rx_no_buffer, 1);
	CHECK(tx_one(&e, 0, NULL, f, 60, 0));
	CHECK(vio_vq_get(e.vq[rxq], &len) == b1);
	CHECK_EQ(len, VIO_NET_HDR_LEN + 60);
	CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
	CHECK(vio_vq_get(e.vq[rxq], &len) == tiny2);
	CHECK_EQ(len, 0);
	CHECK(vio_vq_get(e.vq[rxq], &len) == b2);
	CHECK_EQ(len, VIO_NET_HDR_LEN + sizeof(f));
	CHECK(!vio_vq_broken(vio_device_queue(e.dev, rxq)));
	env_close(&e);
}

int main(void)
{
	for (int packed = 0; packed < 2; packed++) {
		test_tx_sink(packed);
		test_tx_sink_len_only(packed);
		test_tx_wait(packed);
		test_echo(packed, false);
		test_echo(packed, true);
		test_rx_full(packed);
		test_rx_api(packed);
		vio_log_set_quiet(1);
		test_rx_hostile(packed);
		vio_log_set_quiet(0);
		vio_log_set_quiet(1);
		test_tx_hostile(packed);
		vio_log_set_quiet(0);
		test_gen(packed, false);
		test_gen(packed, true);
		test_loop(packed);
	}
	return test_result("net_device");
}
