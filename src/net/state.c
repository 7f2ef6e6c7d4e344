/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's section of a device state blob (docs/device-state.md):
 * what a destination backend needs to carry on serving a driver that
 * will not initialise the device again.  Rings, features and memory
 * travel in vhost-user messages; what is left is what the driver set
 * through the control queue (receive mode, MAC tables, the MAC of
 * MAC_ADDR_SET, the pairs of VQ_PAIRS_SET), a pending announcement, and
 * the layout the driver read once and relies on (max pairs, MTU),
 * checked to be the destination's.
 *
 * Version 1, little-endian, 24 + 6 * (U + M) bytes:
 *
 *     0  u32  section version (1)
 *     4  u16  queue pairs in use (VQ_PAIRS_SET; all of them without
 *             CTRL_VQ)
 *     6  u16  the source's max queue pairs (config max_virtqueue_pairs)
 *     8  u16  the source's MTU (config mtu)
 *    10  u16  receive mode: bit 0 PROMISC, 1 ALLMULTI, 2 ALLUNI,
 *             3 NOMULTI, 4 NOUNI, 5 NOBCAST, 6 unicast table
 *             overflowed, 7 multicast table overflowed; others 0
 *    12  u8[6] the MAC the filter passes (MAC_ADDR_SET's, else the
 *             source's configured one; the config mac with F_MAC)
 *    18  u8   U: unicast table entries (0..64; 0 with bit 6)
 *    19  u8   M: multicast table entries (0..64; 0 with bit 7)
 *    20  u16  status: bit 0 ANNOUNCE pending; others 0
 *    22  u16  reserved, 0
 *    24  U unicast addresses, then M multicast addresses, 6 bytes each
 *
 * Not carried: the link status (the destination's port and operator own
 * it) and the counters.  Loading checks every field against the
 * negotiated features and the destination before changing anything,
 * then publishes the filter, sets the config mac, the pairs in use and
 * the announcement.  The destination's configured mac stays what a reset
 * restores.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "net/device_internal.h"
#include "util/le.h"

#define NET_STATE_VERSION 1u
#define NET_STATE_FIXED 24u
#define NET_STATE_MAX                                                          \
	(NET_STATE_FIXED + 2u * NET_MAC_TABLE_MAX * VIO_NET_ETH_ALEN)

enum {
	M_PROMISC = 1u << 0,
	M_ALLMULTI = 1u << 1,
	M_ALLUNI = 1u << 2,
	M_NOMULTI = 1u << 3,
	M_NOUNI = 1u << 4,
	M_NOBCAST = 1u << 5,
	M_UNI_OVERFLOW = 1u << 6,
	M_MULTI_OVERFLOW = 1u << 7,
	M_KNOWN = 0xffu,
	/* the CTRL_RX_EXTRA commands' */
	M_EXTRA = M_ALLUNI | M_NOMULTI | M_NOUNI | M_NOBCAST,
};
#define S_ANNOUNCE 1u

static uint16_t cfg_status(struct vio_net_device *nd)
{
	uint16_t le = 0;
	(void)vio_device_config_read(nd->dev,
				     offsetof(struct virtio_net_config, status),
				     &le, sizeof(le));
	return le16toh(le);
}

int net_state_save(struct vio_device *dev, void *buf, size_t cap)
{
	struct vio_net_device *nd = vio_device_opaque(dev);
	struct net_rx_filter f;
	pthread_mutex_lock(&nd->filter_lock);
	f = nd->filter;
	pthread_mutex_unlock(&nd->filter_lock);
	unsigned nu = f.uni_overflow ? 0 : f.n_uni;
	unsigned nm = f.multi_overflow ? 0 : f.n_multi;
	size_t len = NET_STATE_FIXED + (size_t)(nu + nm) * VIO_NET_ETH_ALEN;
	if (cap < len)
		return -ENOSPC;
	unsigned mode =
	    (f.promisc ? M_PROMISC : 0) | (f.allmulti ? M_ALLMULTI : 0) |
	    (f.alluni ? M_ALLUNI : 0) | (f.nomulti ? M_NOMULTI : 0) |
	    (f.nouni ? M_NOUNI : 0) | (f.nobcast ? M_NOBCAST : 0) |
	    (f.uni_overflow ? M_UNI_OVERFLOW : 0) |
	    (f.multi_overflow ? M_MULTI_OVERFLOW : 0);
	uint8_t *p = buf;
	memset(p, 0, NET_STATE_FIXED);
	vio_put_le(p, NET_STATE_VERSION, 4);
	vio_put_le(p + 4, __atomic_load_n(&nd->pairs_inuse, __ATOMIC_ACQUIRE),
		   2);
	vio_put_le(p + 6, nd->max_pairs, 2);
	vio_put_le(p + 8, nd->mtu, 2);
	vio_put_le(p + 10, mode, 2);
	memcpy(p + 12, f.mac, VIO_NET_ETH_ALEN);
	p[18] = (uint8_t)nu;
	p[19] = (uint8_t)nm;
	vio_put_le(p + 20,
		   (cfg_status(nd) & VIRTIO_NET_S_ANNOUNCE) ? S_ANNOUNCE : 0,
		   2);
	/* p + 22: reserved, 0 */
	uint8_t *t = p + NET_STATE_FIXED;
	memcpy(t, f.uni, (size_t)nu * VIO_NET_ETH_ALEN);
	memcpy(t + (size_t)nu * VIO_NET_ETH_ALEN, f.multi,
	       (size_t)nm * VIO_NET_ETH_ALEN);
	return (int)len;
}

#define WHY(err, ...) (snprintf(why, whylen, __VA_ARGS__), (err))

/*
 * Check the section p (len bytes, hostile) against nd's negotiated
 * features and limits, and build the filter, pairs and status it sets:
 * 0, or negative errno with why.  Changes nothing of nd.
 */
static int parse(struct vio_net_device *nd, const uint8_t *p, size_t len,
		 struct net_rx_filter *f, unsigned *pairs, bool *announce,
		 char *why, size_t whylen)
{
	if (len < 4)
		return WHY(-EINVAL, "net state truncated: %zu bytes", len);
	uint64_t ver = vio_get_le(p, 4);
	if (ver != NET_STATE_VERSION)
		return WHY(-EPROTONOSUPPORT,
			   "net state version %llu, this vio reads version %u",
			   (unsigned long long)ver, NET_STATE_VERSION);
	if (len < NET_STATE_FIXED)
		return WHY(-EINVAL,
			   "net state truncated: %zu bytes, version 1 has at "
			   "least %u",
			   len, NET_STATE_FIXED);
	unsigned np = (unsigned)vio_get_le(p + 4, 2);
	unsigned maxp = (unsigned)vio_get_le(p + 6, 2);
	unsigned mtu = (unsigned)vio_get_le(p + 8, 2);
	unsigned mode = (unsigned)vio_get_le(p + 10, 2);
	unsigned nu = p[18], nm = p[19];
	unsigned st = (unsigned)vio_get_le(p + 20, 2);
	unsigned rsv = (unsigned)vio_get_le(p + 22, 2);
	if (nu > NET_MAC_TABLE_MAX || nm > NET_MAC_TABLE_MAX)
		return WHY(-EINVAL,
			   "net state: MAC tables of %u and %u entries, at "
			   "most %u each",
			   nu, nm, NET_MAC_TABLE_MAX);
	size_t want = NET_STATE_FIXED + (size_t)(nu + nm) * VIO_NET_ETH_ALEN;
	if (len != want)
		return WHY(-EINVAL,
			   "net state of %zu bytes, version 1 with %u + %u "
			   "MAC table entries has %zu",
			   len, nu, nm, want);
	if ((mode & ~(unsigned)M_KNOWN) || (st & ~S_ANNOUNCE) || rsv)
		return WHY(-EINVAL,
			   "net state: receive mode 0x%x, status 0x%x, "
			   "reserved 0x%x: unknown bits",
			   mode, st, rsv);
	if (((mode & M_UNI_OVERFLOW) && nu) ||
	    ((mode & M_MULTI_OVERFLOW) && nm))
		return WHY(-EINVAL, "net state: a MAC table that overflowed "
				    "with entries");

	unsigned neg = net_neg(nd);
	if (!(neg & NET_NEG_CTRL_RX) && (mode != M_PROMISC || nu || nm))
		return WHY(-EINVAL,
			   "net state: receive mode 0x%x with %u + %u MAC "
			   "table entries without CTRL_RX (only promiscuous, "
			   "no table)",
			   mode, nu, nm);
	if (!(neg & NET_NEG_CTRL_RX_EXTRA) && (mode & M_EXTRA))
		return WHY(-EINVAL,
			   "net state: receive mode 0x%x without "
			   "CTRL_RX_EXTRA",
			   mode);
	if ((st & S_ANNOUNCE) && (neg & (NET_NEG_ANNOUNCE | NET_NEG_STATUS)) !=
				     (NET_NEG_ANNOUNCE | NET_NEG_STATUS))
		return WHY(-EINVAL, "net state: an announcement pending "
				    "without GUEST_ANNOUNCE and STATUS");
	/* with MQ the driver's control queue is queue 2 * max pairs: the
	 * layout must be the same */
	if (maxp < 1 || maxp > VIO_NET_MAX_PAIRS ||
	    ((neg & NET_NEG_MQ) && maxp != nd->max_pairs))
		return WHY(-EINVAL,
			   "net state: the source has %u queue pairs, this "
			   "device %u%s",
			   maxp, nd->max_pairs,
			   (neg & NET_NEG_MQ) ? " (with MQ they must be equal)"
					      : "");
	unsigned negp = __atomic_load_n(&nd->neg_pairs, __ATOMIC_RELAXED);
	if (np < 1 || np > negp || np > maxp ||
	    (!(neg & NET_NEG_CTRL_VQ) && np != negp))
		return WHY(-EINVAL,
			   "net state: %u queue pairs in use, this device "
			   "serves %u%s",
			   np, negp,
			   (neg & NET_NEG_CTRL_VQ)
			       ? ""
			       : " (without CTRL_VQ all of them are)");
	if ((neg & NET_NEG_MTU) ? mtu != nd->mtu : mtu < 68)
		return WHY(-EINVAL, "net state: MTU %u, this device %u", mtu,
			   nd->mtu);

	memset(f, 0, sizeof(*f));
	f->promisc = mode & M_PROMISC;
	f->allmulti = mode & M_ALLMULTI;
	f->alluni = mode & M_ALLUNI;
	f->nomulti = mode & M_NOMULTI;
	f->nouni = mode & M_NOUNI;
	f->nobcast = mode & M_NOBCAST;
	f->uni_overflow = mode & M_UNI_OVERFLOW;
	f->multi_overflow = mode & M_MULTI_OVERFLOW;
	memcpy(f->mac, p + 12, VIO_NET_ETH_ALEN);
	f->n_uni = nu;
	f->n_multi = nm;
	const uint8_t *t = p + NET_STATE_FIXED;
	memcpy(f->uni, t, (size_t)nu * VIO_NET_ETH_ALEN);
	memcpy(f->multi, t + (size_t)nu * VIO_NET_ETH_ALEN,
	       (size_t)nm * VIO_NET_ETH_ALEN);
	*pairs = np;
	*announce = st & S_ANNOUNCE;
	return 0;
}

int net_state_load(struct vio_device *dev, const void *buf, size_t len,
		   char *why, size_t whylen)
{
	struct vio_net_device *nd = vio_device_opaque(dev);
	char dummy[1];
	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	struct net_rx_filter f;
	unsigned pairs = 0;
	bool announce = false;
	int r = parse(nd, buf, len, &f, &pairs, &announce, why, whylen);
	if (r)
		return r;
	/* all checked: nothing below can fail */
	filter_publish(nd, &f);
	if (vio_device_has_feature(dev, VIRTIO_NET_F_MAC)) {
		const unsigned off = offsetof(struct virtio_net_config, mac);
		uint8_t cur[VIO_NET_ETH_ALEN];
		if (vio_device_config_read(dev, off, cur, sizeof(cur)) ||
		    memcmp(cur, f.mac, sizeof(cur)))
			(void)vio_device_config_update(dev, off, f.mac,
						       VIO_NET_ETH_ALEN);
	}
	__atomic_store_n(&nd->pairs_inuse, pairs, __ATOMIC_RELEASE);
	if (announce)
		status_update(nd, VIRTIO_NET_S_ANNOUNCE, 0);
	else
		status_update(nd, 0, VIRTIO_NET_S_ANNOUNCE);
	return 0;
}
