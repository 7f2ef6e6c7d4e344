/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device unit tests, the control side (src/net/device.c,
 * ctrl.c; environment: net_env.h).  Split and packed rings.
 *
 * - config space: mac, status (link up), max_virtqueue_pairs, mtu; the
 *   offered features; FEATURES_OK refused for TSO without CSUM; bad
 *   options refused.
 * - control queue: RX modes, MAC table (and counts that lie), ADDR_SET
 *   (config mac), MQ pair counts out of range, bad classes, commands
 *   and lengths: VIRTIO_NET_ERR; the filter applies to echoed frames;
 *   a reset forgets it all.  Without CTRL_VQ: no filter, every pair.
 * - link status and announce: config changes, status follows.
 * - a pair's queues on two loops: queue_start refused.
 */
#include "net_env.h"

/* ---- config and features ---- */

static void test_config(void)
{
	struct tenv e;
	struct vio_net_device_opts o = {.mtu = 9000, .queue_pairs = 2};
	memcpy(o.mac, MAC_A, 6);
	env_open(&e, &o, false, NULL, 0);
	struct virtio_net_config c;
	CHECK_EQ(vio_device_config_read(e.dev, 0, &c, 12), 0);
	CHECK(!memcmp(c.mac, MAC_A, 6));
	CHECK_EQ(le16toh(c.status), VIRTIO_NET_S_LINK_UP);
	CHECK_EQ(le16toh(c.max_virtqueue_pairs), 2);
	CHECK_EQ(le16toh(c.mtu), 9000);
	struct vio_features f;
	vio_device_offered(e.dev, &f);
	static const unsigned want[] = {VIRTIO_F_VERSION_1,
					VIRTIO_NET_F_MAC,
					VIRTIO_NET_F_MTU,
					VIRTIO_NET_F_STATUS,
					VIRTIO_NET_F_MRG_RXBUF,
					VIRTIO_NET_F_CTRL_VQ,
					VIRTIO_NET_F_CTRL_RX,
					VIRTIO_NET_F_CTRL_MAC_ADDR,
					VIRTIO_NET_F_GUEST_ANNOUNCE,
					VIRTIO_NET_F_MQ,
					VIRTIO_RING_F_EVENT_IDX,
					VIRTIO_RING_F_INDIRECT_DESC,
					VIRTIO_F_RING_PACKED};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(vio_features_has(&f, want[i]));
	/* the sink takes no offloads */
	CHECK(!vio_features_has(&f, VIRTIO_NET_F_CSUM));
	CHECK(!vio_features_has(&f, VIRTIO_NET_F_HOST_TSO4));
	CHECK_EQ(vio_device_num_queues(e.dev), 5);
	CHECK_EQ(e.ctrl_idx, 4);
	uint8_t mac[6];
	vio_net_device_mac(e.nd, mac);
	CHECK(!memcmp(mac, MAC_A, 6));
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(e.nd, &m);
	CHECK(m.promisc);
	CHECK_EQ(m.pairs, 1);
	env_close(&e);

	/* a port with checksum and TSO: offered; TSO acked without CSUM
	 * is refused at FEATURES_OK */
	struct vio_net_device_opts o2 = {0};
	o2.port = vio_net_port_sink_new();
	REQUIRE(o2.port);
	o2.port->offloads = VIO_NET_PORT_TX_CSUM | VIO_NET_PORT_TX_TSO;
	static const unsigned drop[] = {VIRTIO_NET_F_CSUM};
	vio_log_set_quiet(1);
	CHECK_EQ(env_open_ex(&e, &o2, false, drop, 1, NULL, 0), -EINVAL);
	vio_log_set_quiet(0);
	vio_device_offered(e.dev, &f);
	CHECK(vio_features_has(&f, VIRTIO_NET_F_CSUM));
	CHECK(vio_features_has(&f, VIRTIO_NET_F_HOST_TSO4));
	CHECK(!(vio_device_get_status(e.dev) & VIRTIO_CONFIG_S_FEATURES_OK));
	e.nq = 0;
	env_close(&e);

	/* bad options */
	struct vio_net_device_opts o3 = {.queue_pairs = 9};
	char err[128];
	o3.port = vio_net_port_sink_new();
	CHECK(vio_net_device_new(&o3, err, sizeof(err)) == NULL);
	o3.queue_pairs = 1;
	o3.mtu = 60;
	CHECK(vio_net_device_new(&o3, err, sizeof(err)) == NULL);
	o3.mtu = 0;
	o3.port->max_pairs = 1;
	o3.queue_pairs = 2;
	CHECK(vio_net_device_new(&o3, err, sizeof(err)) == NULL);
	vio_net_port_free(o3.port);
}

/* ---- control queue ---- */

static void test_ctrl(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {.queue_pairs = 3};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_echo_new();
	env_open(&e, &o, packed, NULL, 0);
	CHECK_EQ(e.ctrl_idx, 6);
	uint8_t on = 1, off = 0, two = 2;
	uint16_t pairs;

	/* bad class, command, lengths */
	CHECK_EQ(ctrl(&e, 9, 0, NULL, 0), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_RX, 9, &on, 1), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_RX, 0, NULL, 0), VIRTIO_NET_ERR);
	uint8_t two_bytes[2] = {1, 1};
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_RX, 0, two_bytes, 2), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_RX, 0, &two, 1), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_VLAN, 0, &on, 1), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_ANNOUNCE, 0, &on, 1), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_ANNOUNCE, 0, NULL, 0), VIRTIO_NET_OK);
	/* before VQ_PAIRS_SET only the first pair receives (5.1.6.5.6.2) */
	uint8_t f1[80], g1[2048];
	struct virtio_net_hdr_v1 h1;
	make_frame(f1, sizeof(f1), MAC_A, MAC_A, 1);
	rx_post(&e, 1, 4, 2048);
	CHECK(tx_one(&e, 1, NULL, f1, sizeof(f1), 0));
	CHECK_EQ(rx_frame(&e, 1, g1, sizeof(g1), &h1), -1);
	/* pair counts */
	pairs = htole16(0);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MQ, 0, &pairs, 2), VIRTIO_NET_ERR);
	pairs = htole16(4);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MQ, 0, &pairs, 2), VIRTIO_NET_ERR);
	pairs = htole16(0x8000);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MQ, 0, &pairs, 2), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MQ, 0, &pairs, 1), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MQ, 1, &pairs, 2), VIRTIO_NET_ERR);
	pairs = htole16(3);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MQ, 0, &pairs, 2), VIRTIO_NET_OK);
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(e.nd, &m);
	CHECK_EQ(m.pairs, 3);
	CHECK(tx_one(&e, 1, NULL, f1, sizeof(f1), 0));
	CHECK_EQ(rx_frame(&e, 1, g1, sizeof(g1), &h1), (long)sizeof(f1));
	/* MAC tables: counts that lie, bytes after */
	uint8_t tbl[4 + 12 + 4 + 6 + 1];
	uint32_t c2 = htole32(2), c1 = htole32(1), big = htole32(0x40000000);
	memcpy(tbl, &c2, 4);
	memcpy(tbl + 4, MAC_B, 6);
	memcpy(tbl + 10, MAC_A, 6);
	memcpy(tbl + 16, &c1, 4);
	static const uint8_t mc[6] = {0x01, 0, 0x5e, 0, 0, 1};
	memcpy(tbl + 20, mc, 6);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 0, tbl, 27), VIRTIO_NET_ERR);
	memcpy(tbl + 16, &big, 4);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 0, tbl, 26), VIRTIO_NET_ERR);
	memcpy(tbl, &big, 4);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 0, tbl, 26), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 0, tbl, 3), VIRTIO_NET_ERR);
	memcpy(tbl, &c2, 4);
	memcpy(tbl + 16, &c1, 4);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 0, tbl, 26), VIRTIO_NET_OK);
	vio_net_device_rx_mode(e.nd, &m);
	CHECK_EQ(m.n_uni, 2);
	CHECK_EQ(m.n_multi, 1);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 9, tbl, 26), VIRTIO_NET_ERR);
	/* ADDR_SET: config mac follows; wrong lengths refused */
	static const uint8_t mac_c[6] = {0x02, 0, 0, 0, 0, 0xcc};
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 1, mac_c, 5), VIRTIO_NET_ERR);
	unsigned before = e.cfg_changes;
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_MAC, 1, mac_c, 6), VIRTIO_NET_OK);
	uint8_t cm[6];
	CHECK_EQ(vio_device_config_read(e.dev, 0, cm, 6), 0);
	CHECK(!memcmp(cm, mac_c, 6));
	CHECK(e.cfg_changes > before);

	/* the filter: promiscuous off; echo returns a frame to its source:
	 * MAC_B is in the unicast table, 02..dd is not; multicast in the
	 * table passes, another does not unless ALLMULTI; broadcast passes
	 * unless NOBCAST */
	CHECK_EQ(
	    ctrl(&e, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
	    VIRTIO_NET_OK);
	vio_net_device_rx_mode(e.nd, &m);
	CHECK(!m.promisc);
	rx_post(&e, 0, 16, 2048);
	static const uint8_t mac_d[6] = {0x02, 0, 0, 0, 0, 0xdd};
	static const uint8_t mc2[6] = {0x01, 0, 0x5e, 0, 0, 2};
	static const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t *srcs[] = {MAC_B, mac_d, mc, mc2, bc, mac_c};
	const bool pass[] = {true, false, true, false, true, true};
	uint8_t f[100], got[2048];
	struct virtio_net_hdr_v1 h;
	for (unsigned i = 0; i < 6; i++) {
		make_frame(f, sizeof(f), MAC_A, srcs[i], (uint8_t)i);
		CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
		long r = rx_frame(&e, 0, got, sizeof(got), &h);
		CHECK_EQ(r, pass[i] ? (long)sizeof(f) : -1);
	}
	struct vio_net_stats s = stats(&e);
	CHECK_EQ(s.rx_filtered, 2);
	CHECK_EQ(
	    ctrl(&e, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
	    VIRTIO_NET_OK);
	CHECK_EQ(
	    ctrl(&e, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, &on, 1),
	    VIRTIO_NET_OK);
	make_frame(f, sizeof(f), MAC_A, mc2, 9);
	CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), (long)sizeof(f));
	make_frame(f, sizeof(f), MAC_A, bc, 9);
	CHECK(tx_one(&e, 0, NULL, f, sizeof(f), 0));
	CHECK_EQ(rx_frame(&e, 0, got, sizeof(got), &h), -1);
	s = stats(&e);
	CHECK_EQ(s.rx_filtered, 3);
	CHECK(s.ctrl_err >= 18);
	CHECK(s.ctrl_ok >= 7);

	/* a reset forgets it all: promiscuous, the configured mac, one
	 * pair */
	CHECK_EQ(vio_device_set_status(e.dev, 0), 0);
	CHECK_EQ(vio_device_config_read(e.dev, 0, cm, 6), 0);
	CHECK(!memcmp(cm, MAC_A, 6));
	vio_net_device_rx_mode(e.nd, &m);
	CHECK(m.promisc);
	CHECK_EQ(m.n_uni, 0);
	CHECK_EQ(m.pairs, 1);
	env_close(&e);
}

/* Without CTRL_RX (or CTRL_VQ) there is no filter: everything passes. */
static void test_no_ctrl(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {.no_ctrl_vq = true, .queue_pairs = 2};
	o.port = vio_net_port_echo_new();
	env_open(&e, &o, packed, NULL, 0);
	CHECK_EQ(vio_device_num_queues(e.dev), 4);
	CHECK_EQ(e.ctrl_idx, UINT32_MAX);
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(e.nd, &m);
	CHECK_EQ(m.pairs, 2); /* MQ without CTRL_VQ: every pair in use */
	rx_post(&e, 1, 4, 2048);
	uint8_t f[100], got[2048];
	struct virtio_net_hdr_v1 h;
	static const uint8_t other[6] = {0x02, 9, 9, 9, 9, 9};
	make_frame(f, sizeof(f), MAC_A, other, 1);
	CHECK(tx_one(&e, 1, NULL, f, sizeof(f), 0));
	CHECK_EQ(rx_frame(&e, 1, got, sizeof(got), &h), (long)sizeof(f));
	struct vio_net_stats s;
	CHECK_EQ(vio_net_device_stats(e.nd, 1, &s), 0);
	CHECK_EQ(s.rx_packets, 1);
	CHECK_EQ(vio_net_device_stats(e.nd, 0, &s), 0);
	CHECK_EQ(s.rx_packets, 0);
	CHECK_EQ(vio_net_device_stats(e.nd, 2, &s), -EINVAL);
	env_close(&e);
}

/*
 * DPDK's virtio-user (queues=2) emulates the control queue: it acks
 * CTRL_RX, CTRL_MAC_ADDR and MQ without CTRL_VQ.  FEATURES_OK must hold
 * (it was refused: the frontend's connection ended), every pair in use.
 */
static void test_ctrl_features_alone(bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {.queue_pairs = 2};
	o.port = vio_net_port_echo_new();
	static const unsigned drop[] = {VIRTIO_NET_F_CTRL_VQ,
					VIRTIO_NET_F_GUEST_ANNOUNCE};
	CHECK_EQ(env_open_ex(&e, &o, packed, drop, 2, NULL, 0), 0);
	CHECK(vio_device_get_status(e.dev) & VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK(vio_device_has_feature(e.dev, VIRTIO_NET_F_CTRL_RX));
	CHECK(vio_device_has_feature(e.dev, VIRTIO_NET_F_MQ));
	CHECK_EQ(e.nq, 4);
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(e.nd, &m);
	CHECK_EQ(m.pairs, 2);
	CHECK(m.promisc);
	CHECK_EQ(vio_net_device_announce(e.nd), -EOPNOTSUPP);
	rx_post(&e, 1, 4, 2048);
	uint8_t f[100], got[2048];
	struct virtio_net_hdr_v1 h;
	make_frame(f, sizeof(f), MAC_A, MAC_B, 1);
	CHECK(tx_one(&e, 1, NULL, f, sizeof(f), 0));
	CHECK_EQ(rx_frame(&e, 1, got, sizeof(got), &h), (long)sizeof(f));
	env_close(&e);
}

/* ---- link status ---- */

static void test_link(void)
{
	struct tenv e;
	struct vio_net_device_opts o = {.link_down = true};
	env_open(&e, &o, false, NULL, 0);
	uint16_t st;
	CHECK_EQ(vio_device_config_read(e.dev, 6, &st, 2), 0);
	CHECK_EQ(le16toh(st), 0);
	unsigned c0 = e.cfg_changes;
	uint32_t g0 = vio_device_config_generation(e.dev);
	vio_net_device_set_link(e.nd, true);
	CHECK_EQ(e.cfg_changes, c0 + 1);
	CHECK(vio_device_config_generation(e.dev) != g0);
	CHECK_EQ(vio_device_config_read(e.dev, 6, &st, 2), 0);
	CHECK_EQ(le16toh(st), VIRTIO_NET_S_LINK_UP);
	CHECK_EQ(vio_net_device_announce(e.nd), 0);
	CHECK_EQ(vio_device_config_read(e.dev, 6, &st, 2), 0);
	CHECK_EQ(le16toh(st), VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	CHECK_EQ(ctrl(&e, VIRTIO_NET_CTRL_ANNOUNCE, 0, NULL, 0), VIRTIO_NET_OK);
	CHECK_EQ(vio_device_config_read(e.dev, 6, &st, 2), 0);
	CHECK_EQ(le16toh(st), VIRTIO_NET_S_LINK_UP);
	vio_net_device_set_link(e.nd, false);
	CHECK_EQ(vio_device_config_read(e.dev, 6, &st, 2), 0);
	CHECK_EQ(le16toh(st), 0);
	CHECK_EQ(e.cfg_changes, c0 + 4);
	env_close(&e);
}

static void test_pair_loops(void)
{
	struct vio_loop l1 = {fake_add_fd, fake_del_fd, fake_set_timer,
			      fake_cancel, NULL};
	struct vio_loop l2 = l1;
	struct tenv e;
	struct vio_net_device_opts o = {0};
	env_open(&e, &o, false, NULL, 0);
	vio_log_set_quiet(1);
	CHECK_EQ(vio_device_queue_start(e.dev, 0, &l1), 0);
	CHECK_EQ(vio_device_queue_start(e.dev, 1, &l2), -EINVAL);
	vio_log_set_quiet(0);
	CHECK_EQ(vio_device_queue_start(e.dev, 1, &l1), 0);
	vio_device_queue_stop(e.dev, 0);
	vio_device_queue_stop(e.dev, 1);
	env_close(&e);
}

int main(void)
{
	test_config();
	test_link();
	test_pair_loops();
	for (int packed = 0; packed < 2; packed++) {
		vio_log_set_quiet(1);
		test_ctrl(packed);
		vio_log_set_quiet(0);
		test_no_ctrl(packed);
		test_ctrl_features_alone(packed);
	}
	return test_result("net_ctrl");
}
