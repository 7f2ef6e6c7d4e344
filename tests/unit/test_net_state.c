/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's device state section (src/net/state.c,
 * docs/device-state.md), through the model's vio_device_state_save /
 * vio_device_state_load, between two net devices brought up with
 * net_env.h (echo ports, so the filter shows in what comes back):
 *
 * - round trip: what a driver set on A through the control queue
 *   (receive modes, both MAC tables, MAC_ADDR_SET, VQ_PAIRS_SET) and a
 *   pending announcement are on B after the load: B saves the same
 *   bytes, its config mac and status follow, and its filter and pairs
 *   act on frames; a reset of B goes back to B's own configuration.
 *   Overflowed tables; no CTRL_VQ; MQ not negotiated (max pairs may
 *   differ then).  Split and packed.
 * - hostile: every field out of range, every length that is not exact,
 *   unknown bits, state the negotiated features cannot have: refused
 *   with its reason, and B unchanged (it saves the same bytes, its
 *   config space is the same, no config change was raised).
 */
#include "net_env.h"

#define HDR 40u
#define S HDR /* the section's first byte */
#define CAP VIO_DEVICE_STATE_MAX

static const uint8_t MAC_X[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t U1[6] = {0x02, 0, 0, 0, 1, 1};
static const uint8_t U2[6] = {0x02, 0, 0, 0, 1, 2};
static const uint8_t M1[6] = {0x01, 0, 0x5e, 0, 0, 1};
static const uint8_t M2[6] = {0x01, 0, 0x5e, 0, 0, 2};
static const uint8_t M3[6] = {0x33, 0x33, 0, 0, 0, 1};
static const uint8_t BC[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void open_dev(struct tenv *e, const uint8_t *mac, unsigned pairs,
		     bool packed, const unsigned *drop, unsigned ndrop)
{
	struct vio_net_device_opts o = {.queue_pairs = pairs};
	memcpy(o.mac, mac, 6);
	o.port = vio_net_port_echo_new();
	env_open(e, &o, packed, drop, ndrop);
}

static uint8_t rx_cmd(struct tenv *e, uint8_t cmd, uint8_t on)
{
	return ctrl(e, VIRTIO_NET_CTRL_RX, cmd, &on, 1);
}

/* MAC_TABLE_SET with nu unicast and nm multicast entries. */
static uint8_t table_set(struct tenv *e, const uint8_t (*uni)[6], unsigned nu,
			 const uint8_t (*multi)[6], unsigned nm)
{
	static uint8_t b[8 + 6 * 140];
	REQUIRE(nu + nm <= 140);
	uint32_t c = htole32(nu);
	size_t n = 0;
	memcpy(b, &c, 4);
	n += 4;
	for (unsigned i = 0; i < nu; i++, n += 6)
		memcpy(b + n, uni[i], 6);
	c = htole32(nm);
	memcpy(b + n, &c, 4);
	n += 4;
	for (unsigned i = 0; i < nm; i++, n += 6)
		memcpy(b + n, multi[i], 6);
	return ctrl(e, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, b,
		    n);
}

static uint16_t cfg_status(struct tenv *e)
{
	uint16_t le = 0;
	CHECK_EQ(
	    vio_device_config_read(
		e->dev, offsetof(struct virtio_net_config, status), &le, 2),
	    0);
	return le16toh(le);
}

/* Echo a frame from src on pair qp: did it come back (the filter passed
 * it to the driver, dst = src)? */
static bool echoed(struct tenv *e, unsigned qp, const uint8_t *src)
{
	uint8_t f[100], got[2048];
	struct virtio_net_hdr_v1 h;
	static const uint8_t peer[6] = {0x02, 0xee, 0, 0, 0, 1};
	make_frame(f, sizeof(f), peer, src, 7);
	CHECK(tx_one(e, qp, NULL, f, sizeof(f), 0));
	return rx_frame(e, qp, got, sizeof(got), &h) == (long)sizeof(f);
}

/* What must not move when a load is refused. */
struct snap {
	uint8_t blob[CAP];
	int n;
	uint8_t cfg[VIO_CONFIG_MAX];
	unsigned cfg_changes;
	uint32_t gen;
};

static void snap_take(struct tenv *e, struct snap *s)
{
	s->n = vio_device_state_save(e->dev, s->blob, sizeof(s->blob));
	CHECK(s->n > 0);
	unsigned cs = vio_device_config_size(e->dev);
	CHECK_EQ(vio_device_config_read(e->dev, 0, s->cfg, cs), 0);
	s->cfg_changes = e->cfg_changes;
	s->gen = vio_device_config_generation(e->dev);
}

static bool snap_same(struct tenv *e, const struct snap *s)
{
	struct snap now;
	snap_take(e, &now);
	return now.n == s->n && !memcmp(now.blob, s->blob, (size_t)s->n) &&
	       !memcmp(now.cfg, s->cfg, vio_device_config_size(e->dev)) &&
	       now.cfg_changes == s->cfg_changes && now.gen == s->gen;
}

/* Section length in the header follows len (so the section's own
 * checks are reached). */
static void fix_len(uint8_t *b, size_t len)
{
	uint32_t n = htole32((uint32_t)(len - HDR));
	memcpy(b + 16, &n, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* ---- round trip ---- */

static void test_round_trip(bool packed)
{
	struct tenv a, b;
	open_dev(&a, MAC_A, 2, packed, NULL, 0);
	open_dev(&b, MAC_B, 2, packed, NULL, 0);
	/* the driver on A */
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_PROMISC, 0), VIRTIO_NET_OK);
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_ALLMULTI, 1), VIRTIO_NET_OK);
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_NOBCAST, 1), VIRTIO_NET_OK);
	const uint8_t uni[2][6] = {{0x02, 0, 0, 0, 1, 1},
				   {0x02, 0, 0, 0, 1, 2}};
	const uint8_t multi[3][6] = {{0x01, 0, 0x5e, 0, 0, 1},
				     {0x01, 0, 0x5e, 0, 0, 2},
				     {0x33, 0x33, 0, 0, 0, 1}};
	CHECK_EQ(table_set(&a, uni, 2, multi, 3), VIRTIO_NET_OK);
	CHECK_EQ(ctrl(&a, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET,
		      MAC_X, 6),
		 VIRTIO_NET_OK);
	uint16_t two = htole16(2);
	CHECK_EQ(ctrl(&a, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
		      &two, 2),
		 VIRTIO_NET_OK);
	CHECK_EQ(vio_net_device_announce(a.nd), 0);

	uint8_t blob[CAP];
	int n = vio_device_state_save(a.dev, blob, sizeof(blob));
	CHECK_EQ(n, (int)(HDR + 24 + 5 * 6));
	CHECK_EQ(vio_device_state_save(a.dev, blob, HDR + 24 + 29), -ENOSPC);
	CHECK_EQ(blob[S], 1);
	CHECK_EQ(blob[S + 4], 2);		 /* pairs in use */
	CHECK_EQ(blob[S + 6], 2);		 /* max pairs */
	CHECK_EQ(blob[S + 10], 0x22);		 /* ALLMULTI | NOBCAST */
	CHECK(!memcmp(blob + S + 12, MAC_X, 6)); /* ADDR_SET's */
	CHECK_EQ(blob[S + 18], 2);
	CHECK_EQ(blob[S + 19], 3);
	CHECK_EQ(blob[S + 20], 1); /* announce pending */
	CHECK(!memcmp(blob + S + 24, U1, 6));
	CHECK(!memcmp(blob + S + 24 + 12, M1, 6));
	CHECK(!memcmp(blob + S + 24 + 24, M3, 6));

	/* B before: one pair in use, promiscuous, its own mac */
	rx_post(&b, 0, 16, 2048);
	rx_post(&b, 1, 16, 2048);
	CHECK(!echoed(&b, 1, MAC_X));
	CHECK(echoed(&b, 0, MAC_B));

	char why[200] = "";
	unsigned changes = b.cfg_changes;
	CHECK_EQ(
	    vio_device_state_load(b.dev, blob, (size_t)n, why, sizeof(why)), 0);
	CHECK(b.cfg_changes > changes); /* mac and announce */

	/* B saves exactly what A did */
	uint8_t again[CAP];
	CHECK_EQ(vio_device_state_save(b.dev, again, sizeof(again)), n);
	CHECK(!memcmp(again, blob, (size_t)n));
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(b.nd, &m);
	CHECK(!m.promisc && m.allmulti && m.nobcast);
	CHECK(!m.alluni && !m.nomulti && !m.nouni);
	CHECK_EQ(m.n_uni, 2);
	CHECK_EQ(m.n_multi, 3);
	CHECK_EQ(m.pairs, 2);
	uint8_t mac[6];
	vio_net_device_mac(b.nd, mac);
	CHECK(!memcmp(mac, MAC_X, 6));
	CHECK_EQ(vio_device_config_read(b.dev, 0, mac, 6), 0);
	CHECK(!memcmp(mac, MAC_X, 6));
	CHECK(cfg_status(&b) & VIRTIO_NET_S_ANNOUNCE);
	CHECK(cfg_status(&b) & VIRTIO_NET_S_LINK_UP);

	/* and acts on frames: pair 1 in use; the new mac and the table
	 * pass, B's configured mac no more, broadcast not (NOBCAST), any
	 * multicast (ALLMULTI) */
	struct vio_net_stats s0 = stats(&b);
	CHECK(echoed(&b, 1, MAC_X));
	CHECK(echoed(&b, 1, U2));
	CHECK(!echoed(&b, 0, MAC_B));
	CHECK(!echoed(&b, 0, BC));
	CHECK(echoed(&b, 0, M2));
	static const uint8_t m9[6] = {0x01, 9, 9, 9, 9, 9};
	CHECK(echoed(&b, 0, m9));
	CHECK_EQ(stats(&b).rx_filtered - s0.rx_filtered, 2);
	/* the driver acks the announcement on B */
	CHECK_EQ(ctrl(&b, VIRTIO_NET_CTRL_ANNOUNCE,
		      VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
		 VIRTIO_NET_OK);
	CHECK(!(cfg_status(&b) & VIRTIO_NET_S_ANNOUNCE));

	/* a reset of B: B's own mac, promiscuous, one pair */
	CHECK_EQ(vio_device_set_status(b.dev, 0), 0);
	CHECK_EQ(vio_device_config_read(b.dev, 0, mac, 6), 0);
	CHECK(!memcmp(mac, MAC_B, 6));
	vio_net_device_rx_mode(b.nd, &m);
	CHECK(m.promisc);
	CHECK_EQ(m.pairs, 1);
	env_close(&a);
	env_close(&b);
}

/* Tables longer than 64: their class passes; the state says so. */
static void test_overflow(void)
{
	struct tenv a, b;
	open_dev(&a, MAC_A, 1, false, NULL, 0);
	open_dev(&b, MAC_B, 1, false, NULL, 0);
	static uint8_t many[70][6];
	for (unsigned i = 0; i < 70; i++) {
		memcpy(many[i], MAC_A, 6);
		many[i][4] = (uint8_t)i;
	}
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_PROMISC, 0), VIRTIO_NET_OK);
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_ALLUNI, 1), VIRTIO_NET_OK);
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_NOUNI, 1), VIRTIO_NET_OK);
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_NOMULTI, 1), VIRTIO_NET_OK);
	CHECK_EQ(table_set(&a, many, 65, many, 64), VIRTIO_NET_OK);
	uint8_t blob[CAP], again[CAP];
	int n = vio_device_state_save(a.dev, blob, sizeof(blob));
	CHECK_EQ(n, (int)(HDR + 24 + 64 * 6));
	CHECK_EQ(blob[S + 10], 0x5c); /* ALLUNI NOMULTI NOUNI, uni overflow */
	CHECK_EQ(blob[S + 18], 0);
	CHECK_EQ(blob[S + 19], 64);
	char why[200] = "";
	CHECK_EQ(
	    vio_device_state_load(b.dev, blob, (size_t)n, why, sizeof(why)), 0);
	CHECK_EQ(vio_device_state_save(b.dev, again, sizeof(again)), n);
	CHECK(!memcmp(again, blob, (size_t)n));
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(b.nd, &m);
	CHECK_EQ(m.n_uni, 65); /* overflowed */
	CHECK_EQ(m.n_multi, 64);
	CHECK(m.alluni && m.nouni && m.nomulti && !m.promisc);
	/* the largest section: both tables full */
	CHECK_EQ(table_set(&a, many, 64, many, 64), VIRTIO_NET_OK);
	n = vio_device_state_save(a.dev, blob, sizeof(blob));
	CHECK_EQ(n, (int)(HDR + 24 + 128 * 6));
	CHECK_EQ(
	    vio_device_state_load(b.dev, blob, (size_t)n, why, sizeof(why)), 0);
	vio_net_device_rx_mode(b.nd, &m);
	CHECK_EQ(m.n_uni, 64);
	env_close(&a);
	env_close(&b);
}

/* Without MQ the layouts may differ (the driver uses one pair); without
 * CTRL_VQ every pair is in use and the filter is promiscuous. */
static void test_features(bool packed)
{
	struct tenv a, b;
	static const unsigned nomq[] = {VIRTIO_NET_F_MQ};
	open_dev(&a, MAC_A, 2, packed, nomq, 1);
	open_dev(&b, MAC_B, 1, packed, NULL, 0);
	uint8_t blob[CAP];
	char why[200] = "";
	int n = vio_device_state_save(a.dev, blob, sizeof(blob));
	CHECK_EQ(blob[S + 4], 1);
	CHECK_EQ(blob[S + 6], 2);
	CHECK_EQ(
	    vio_device_state_load(b.dev, blob, (size_t)n, why, sizeof(why)), 0);
	env_close(&a);
	env_close(&b);

	static const unsigned noctrl[] = {VIRTIO_NET_F_CTRL_VQ};
	open_dev(&a, MAC_A, 2, packed, noctrl, 1);
	open_dev(&b, MAC_B, 2, packed, noctrl, 1);
	n = vio_device_state_save(a.dev, blob, sizeof(blob));
	CHECK_EQ(n, (int)(HDR + 24));
	CHECK_EQ(blob[S + 4], 2);
	CHECK_EQ(blob[S + 10], 1);
	CHECK_EQ(
	    vio_device_state_load(b.dev, blob, (size_t)n, why, sizeof(why)), 0);
	uint8_t mac[6];
	vio_net_device_mac(b.nd, mac);
	CHECK(!memcmp(mac, MAC_A, 6)); /* the mac the driver read on A */
	env_close(&a);
	env_close(&b);
}

/* ---- hostile sections ---- */

struct bad {
	const char *name;
	unsigned off;	/* section offset to change */
	unsigned width; /* 1 or 2 bytes; 0: nothing */
	uint16_t val;
	int len_delta; /* bytes added (0 filled) or cut, header fixed */
	int err;
	const char *says;
};

static void try_bad(struct tenv *b, const uint8_t *good, size_t n,
		    const struct bad *t)
{
	uint8_t m[CAP + 8];
	memset(m, 0, sizeof(m));
	memcpy(m, good, n);
	if (t->width == 1)
		m[S + t->off] = (uint8_t)t->val;
	else if (t->width == 2)
		put16(m + S + t->off, t->val);
	size_t len = (size_t)((long)n + t->len_delta);
	fix_len(m, len);
	struct snap before;
	snap_take(b, &before);
	char why[200] = "";
	int r = vio_device_state_load(b->dev, m, len, why, sizeof(why));
	if (r != t->err || !strstr(why, t->says)) {
		fprintf(stderr, "%s: %d (%s), expected %d with '%s'\n", t->name,
			r, why, t->err, t->says);
		CHECK(0);
	}
	if (!snap_same(b, &before)) {
		fprintf(stderr, "%s: the device changed\n", t->name);
		CHECK(0);
	}
}

static void test_hostile(void)
{
	struct tenv a, b;
	open_dev(&a, MAC_A, 2, false, NULL, 0);
	open_dev(&b, MAC_B, 2, false, NULL, 0);
	CHECK_EQ(rx_cmd(&a, VIRTIO_NET_CTRL_RX_PROMISC, 0), VIRTIO_NET_OK);
	const uint8_t uni[2][6] = {{0x02, 0, 0, 0, 1, 1},
				   {0x02, 0, 0, 0, 1, 2}};
	const uint8_t multi[3][6] = {{0x01, 0, 0x5e, 0, 0, 1},
				     {0x01, 0, 0x5e, 0, 0, 2},
				     {0x33, 0x33, 0, 0, 0, 1}};
	CHECK_EQ(table_set(&a, uni, 2, multi, 3), VIRTIO_NET_OK);
	/* B has state of its own: a refusal must keep it */
	CHECK_EQ(rx_cmd(&b, VIRTIO_NET_CTRL_RX_ALLMULTI, 1), VIRTIO_NET_OK);
	uint8_t good[CAP];
	int n = vio_device_state_save(a.dev, good, sizeof(good));
	CHECK_EQ(n, (int)(HDR + 24 + 30));
	static const struct bad cases[] = {
	    {"version 2", 0, 2, 2, 0, -EPROTONOSUPPORT, "net state version 2"},
	    {"version 0", 0, 2, 0, 0, -EPROTONOSUPPORT, "net state version 0"},
	    {"version hi", 2, 2, 1, 0, -EPROTONOSUPPORT, "version 65537"},
	    {"trailing", 0, 0, 0, 1, -EINVAL, "net state of 55 bytes"},
	    {"cut entry", 0, 0, 0, -6, -EINVAL, "net state of 48 bytes"},
	    {"cut byte", 0, 0, 0, -1, -EINVAL, "has 54"},
	    {"fixed only", 0, 0, 0, -30, -EINVAL, "net state of 24 bytes"},
	    {"short", 0, 0, 0, -31, -EINVAL, "truncated: 23 bytes"},
	    {"3 bytes", 0, 0, 0, -51, -EINVAL, "truncated: 3 bytes"},
	    {"uni 65", 18, 1, 65, 0, -EINVAL, "at most 64"},
	    {"multi 255", 19, 1, 255, 0, -EINVAL, "at most 64"},
	    {"uni 3", 18, 1, 3, 0, -EINVAL, "with 3 + 3 MAC table entries"},
	    {"uni 1", 18, 1, 1, 0, -EINVAL, "with 1 + 3 MAC table entries"},
	    {"mode bit 8", 10, 2, 0x100, 0, -EINVAL, "unknown bits"},
	    {"mode bit 15", 10, 2, 0x8000, 0, -EINVAL, "unknown bits"},
	    {"status bit 1", 20, 2, 2, 0, -EINVAL, "status 0x2"},
	    {"link up", 20, 2, 0x101, 0, -EINVAL, "unknown bits"},
	    {"reserved", 22, 2, 1, 0, -EINVAL, "reserved 0x1"},
	    {"uni overflow", 10, 2, 0x40, 0, -EINVAL, "overflowed"},
	    {"multi overflow", 10, 2, 0x80, 0, -EINVAL, "overflowed"},
	    {"pairs 0", 4, 2, 0, 0, -EINVAL, "0 queue pairs in use"},
	    {"pairs 3", 4, 2, 3, 0, -EINVAL, "3 queue pairs in use"},
	    {"pairs 0xffff", 4, 2, 0xffff, 0, -EINVAL, "65535 queue pairs"},
	    {"max 3", 6, 2, 3, 0, -EINVAL, "the source has 3 queue pairs"},
	    {"max 1", 6, 2, 1, 0, -EINVAL, "the source has 1 queue pairs"},
	    {"max 0", 6, 2, 0, 0, -EINVAL, "the source has 0 queue pairs"},
	    {"max 9", 6, 2, 9, 0, -EINVAL, "the source has 9 queue pairs"},
	    {"mtu 9000", 8, 2, 9000, 0, -EINVAL, "MTU 9000"},
	    {"mtu 0", 8, 2, 0, 0, -EINVAL, "MTU 0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		try_bad(&b, good, (size_t)n, &cases[i]);
	/* every cut of the blob, the header's length kept (the model's
	 * check) or fixed (the section's) */
	struct snap before;
	snap_take(&b, &before);
	char why[200];
	uint8_t m[CAP];
	for (int k = 0; k < n; k++) {
		memcpy(m, good, (size_t)n);
		why[0] = '\0';
		CHECK(vio_device_state_load(b.dev, m, (size_t)k, why,
					    sizeof(why)) < 0);
		CHECK(why[0] != '\0');
		if (k >= (int)HDR) {
			fix_len(m, (size_t)k);
			why[0] = '\0';
			CHECK(vio_device_state_load(b.dev, m, (size_t)k, why,
						    sizeof(why)) < 0);
			CHECK(why[0] != '\0');
		}
	}
	CHECK(snap_same(&b, &before));
	/* the good blob still loads */
	CHECK_EQ(
	    vio_device_state_load(b.dev, good, (size_t)n, why, sizeof(why)), 0);
	env_close(&a);
	env_close(&b);
}

/* State the negotiated features cannot have. */
static void test_hostile_features(void)
{
	struct tenv a, b;
	uint8_t good[CAP];
	int n;
	static const unsigned noextra[] = {VIRTIO_NET_F_CTRL_RX_EXTRA};
	open_dev(&a, MAC_A, 1, false, noextra, 1);
	open_dev(&b, MAC_B, 1, false, noextra, 1);
	n = vio_device_state_save(a.dev, good, sizeof(good));
	static const struct bad extra[] = {
	    {"alluni", 10, 2, 0x05, 0, -EINVAL, "without CTRL_RX_EXTRA"},
	    {"nobcast", 10, 2, 0x21, 0, -EINVAL, "without CTRL_RX_EXTRA"},
	};
	for (size_t i = 0; i < 2; i++)
		try_bad(&b, good, (size_t)n, &extra[i]);
	env_close(&a);
	env_close(&b);

	static const unsigned noctrl[] = {VIRTIO_NET_F_CTRL_VQ};
	open_dev(&a, MAC_A, 2, false, noctrl, 1);
	open_dev(&b, MAC_B, 2, false, noctrl, 1);
	n = vio_device_state_save(a.dev, good, sizeof(good));
	static const struct bad ctrl_cases[] = {
	    {"one pair", 4, 2, 1, 0, -EINVAL, "without CTRL_VQ all of them"},
	    {"not promisc", 10, 2, 0, 0, -EINVAL, "without CTRL_RX"},
	    {"allmulti", 10, 2, 3, 0, -EINVAL, "without CTRL_RX"},
	    {"a table", 18, 1, 1, 6, -EINVAL, "without CTRL_RX"},
	    {"announce", 20, 2, 1, 0, -EINVAL, "without GUEST_ANNOUNCE"},
	};
	for (size_t i = 0; i < 5; i++)
		try_bad(&b, good, (size_t)n, &ctrl_cases[i]);
	env_close(&a);
	env_close(&b);
}

int main(void)
{
	vio_log_set_quiet(true);
	test_round_trip(false);
	test_round_trip(true);
	test_overflow();
	test_features(false);
	test_features(true);
	test_hostile();
	test_hostile_features();
	return test_result("net_state");
}
