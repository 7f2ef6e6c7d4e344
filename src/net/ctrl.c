/* SPDX-License-Identifier: MIT */
/*
 * virtio-net control commands (VIRTIO 1.x 5.1.6.5) and the receive
 * filter they set: pure functions over bytes (the device's control
 * queue in device.c feeds them; fuzz_net_ctrl drives them directly).
 *
 * Commands: RX (PROMISC, ALLMULTI with CTRL_RX; ALLUNI, NOMULTI, NOUNI,
 * NOBCAST with CTRL_RX_EXTRA: one byte, 0 or 1), MAC (TABLE_SET with
 * CTRL_RX: le32 count and count unicast addresses, then le32 count and
 * count multicast addresses, nothing after; ADDR_SET with
 * CTRL_MAC_ADDR: six bytes), ANNOUNCE ACK (GUEST_ANNOUNCE, no data), MQ
 * VQ_PAIRS_SET (MQ and CTRL_VQ: le16 in 1..max pairs).  Anything else,
 * or any length that is not exactly the command's, is VIRTIO_NET_ERR and
 * changes nothing.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "net/net_internal.h"

void net_rx_filter_reset(struct net_rx_filter *f,
			 const uint8_t mac[VIO_NET_ETH_ALEN])
{
	memset(f, 0, sizeof(*f));
	f->promisc = true;
	memcpy(f->mac, mac, VIO_NET_ETH_ALEN);
}

static bool table_has(const uint8_t (*t)[VIO_NET_ETH_ALEN], unsigned n,
		      const uint8_t dst[VIO_NET_ETH_ALEN])
{
	for (unsigned i = 0; i < n; i++)
		if (!memcmp(t[i], dst, VIO_NET_ETH_ALEN))
			return true;
	return false;
}

bool net_rx_filter_pass(const struct net_rx_filter *f,
			const uint8_t dst[VIO_NET_ETH_ALEN])
{
	static const uint8_t bcast[VIO_NET_ETH_ALEN] = {0xff, 0xff, 0xff,
							0xff, 0xff, 0xff};
	if (f->promisc)
		return true;
	if (dst[0] & 1) {
		if (!memcmp(dst, bcast, VIO_NET_ETH_ALEN))
			return !f->nobcast;
		if (f->nomulti)
			return false;
		if (f->allmulti || f->multi_overflow)
			return true;
		return table_has(f->multi, f->n_multi, dst);
	}
	if (f->nouni)
		return false;
	if (f->alluni || f->uni_overflow)
		return true;
	if (!memcmp(dst, f->mac, VIO_NET_ETH_ALEN))
		return true;
	return table_has(f->uni, f->n_uni, dst);
}

/* A bounded reader over the command's segments. */
struct rd {
	struct vio_cursor cur;
};

static bool rd_bytes(struct rd *r, void *dst, size_t n)
{
	return vio_cursor_read(&r->cur, dst, n) == n;
}

/* One MAC table: le32 count, then count addresses (kept up to
 * NET_MAC_TABLE_MAX; beyond, the class is let through). */
static bool read_table(struct rd *r, uint8_t (*t)[VIO_NET_ETH_ALEN],
		       unsigned *n, bool *overflow, const char **why)
{
	uint32_t le;
	if (!rd_bytes(r, &le, sizeof(le))) {
		*why = "MAC table without its entry count";
		return false;
	}
	uint32_t cnt = le32toh(le);
	/* the count against what the chain holds, before reading */
	if ((uint64_t)cnt * VIO_NET_ETH_ALEN > r->cur.left) {
		*why = "MAC table count past the end of the command";
		return false;
	}
	*n = 0;
	*overflow = cnt > NET_MAC_TABLE_MAX;
	for (uint32_t i = 0; i < cnt; i++) {
		uint8_t mac[VIO_NET_ETH_ALEN];
		if (!rd_bytes(r, mac, sizeof(mac)))
			return false; /* checked above */
		if (i < NET_MAC_TABLE_MAX)
			memcpy(t[(*n)++], mac, VIO_NET_ETH_ALEN);
	}
	if (*overflow)
		*n = 0;
	return true;
}

static uint8_t rx_cmd(struct rd *r, uint8_t cmd, unsigned neg,
		      struct net_rx_filter *f, struct net_ctrl_effect *e,
		      const char **why)
{
	bool *field;
	bool extra = true;
	switch (cmd) {
	case VIRTIO_NET_CTRL_RX_PROMISC:
		field = &f->promisc;
		extra = false;
		break;
	case VIRTIO_NET_CTRL_RX_ALLMULTI:
		field = &f->allmulti;
		extra = false;
		break;
	case VIRTIO_NET_CTRL_RX_ALLUNI:
		field = &f->alluni;
		break;
	case VIRTIO_NET_CTRL_RX_NOMULTI:
		field = &f->nomulti;
		break;
	case VIRTIO_NET_CTRL_RX_NOUNI:
		field = &f->nouni;
		break;
	case VIRTIO_NET_CTRL_RX_NOBCAST:
		field = &f->nobcast;
		break;
	default:
		*why = "unknown RX command";
		return VIRTIO_NET_ERR;
	}
	if (!(neg & NET_NEG_CTRL_RX) ||
	    (extra && !(neg & NET_NEG_CTRL_RX_EXTRA))) {
		*why = "RX command without its feature";
		return VIRTIO_NET_ERR;
	}
	uint8_t on;
	if (!rd_bytes(r, &on, 1) || r->cur.left) {
		*why = "RX command data is not one byte";
		return VIRTIO_NET_ERR;
	}
	if (on > 1) {
		*why = "RX command value is not 0 or 1";
		return VIRTIO_NET_ERR;
	}
	*field = on;
	e->filter = true;
	return VIRTIO_NET_OK;
}

static uint8_t mac_cmd(struct rd *r, uint8_t cmd, unsigned neg,
		       struct net_rx_filter *f, struct net_ctrl_effect *e,
		       const char **why)
{
	if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
		uint8_t mac[VIO_NET_ETH_ALEN];
		if (!(neg & NET_NEG_CTRL_MAC_ADDR)) {
			*why = "MAC_ADDR_SET without CTRL_MAC_ADDR";
			return VIRTIO_NET_ERR;
		}
		if (!rd_bytes(r, mac, sizeof(mac)) || r->cur.left) {
			*why = "MAC_ADDR_SET data is not six bytes";
			return VIRTIO_NET_ERR;
		}
		memcpy(f->mac, mac, sizeof(mac));
		e->filter = e->mac_set = true;
		return VIRTIO_NET_OK;
	}
	if (cmd != VIRTIO_NET_CTRL_MAC_TABLE_SET) {
		*why = "unknown MAC command";
		return VIRTIO_NET_ERR;
	}
	if (!(neg & NET_NEG_CTRL_RX)) {
		*why = "MAC_TABLE_SET without CTRL_RX";
		return VIRTIO_NET_ERR;
	}
	/* parsed into a scratch copy: a bad second table changes nothing */
	struct net_rx_filter t = *f;
	if (!read_table(r, t.uni, &t.n_uni, &t.uni_overflow, why) ||
	    !read_table(r, t.multi, &t.n_multi, &t.multi_overflow, why))
		return VIRTIO_NET_ERR;
	if (r->cur.left) {
		*why = "bytes after the MAC tables";
		return VIRTIO_NET_ERR;
	}
	*f = t;
	e->filter = true;
	return VIRTIO_NET_OK;
}

uint8_t net_ctrl_exec(const struct vio_iov *cmd, unsigned n, unsigned neg,
		      unsigned max_pairs, struct net_rx_filter *f,
		      struct net_ctrl_effect *e, const char **why)
{
	struct rd r;
	uint8_t cls_cmd[2];
	const char *dummy;

	if (!why)
		why = &dummy;
	*why = "";
	memset(e, 0, sizeof(*e));
	vio_cursor_init(&r.cur, cmd, n);
	if (!rd_bytes(&r, cls_cmd, 2)) {
		*why = "command shorter than class and command";
		return VIRTIO_NET_ERR;
	}
	switch (cls_cmd[0]) {
	case VIRTIO_NET_CTRL_RX:
		return rx_cmd(&r, cls_cmd[1], neg, f, e, why);
	case VIRTIO_NET_CTRL_MAC:
		return mac_cmd(&r, cls_cmd[1], neg, f, e, why);
	case VIRTIO_NET_CTRL_ANNOUNCE:
		if (cls_cmd[1] != VIRTIO_NET_CTRL_ANNOUNCE_ACK ||
		    !(neg & NET_NEG_ANNOUNCE)) {
			*why = "bad ANNOUNCE command";
			return VIRTIO_NET_ERR;
		}
		if (r.cur.left) {
			*why = "ANNOUNCE_ACK with data";
			return VIRTIO_NET_ERR;
		}
		e->announce_ack = true;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MQ: {
		uint16_t le;
		if (cls_cmd[1] != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ||
		    !(neg & NET_NEG_MQ)) {
			*why = "bad MQ command (only VQ_PAIRS_SET, with MQ)";
			return VIRTIO_NET_ERR;
		}
		if (!rd_bytes(&r, &le, sizeof(le)) || r.cur.left) {
			*why = "VQ_PAIRS_SET data is not two bytes";
			return VIRTIO_NET_ERR;
		}
		unsigned pairs = le16toh(le);
		if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN ||
		    pairs > max_pairs) {
			*why = "VQ_PAIRS_SET out of 1..max_virtqueue_pairs";
			return VIRTIO_NET_ERR;
		}
		e->pairs = pairs;
		return VIRTIO_NET_OK;
	}
	default:
		*why = "unknown command class";
		return VIRTIO_NET_ERR;
	}
}
