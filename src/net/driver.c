/* SPDX-License-Identifier: MIT */
/*
 * virtio-net, the driver side (VIRTIO 1.2 5.1): the driver object and its
 * instances (vio_net_driver_new), probe (negotiation, the config space,
 * buffers and rings, the pair count), remove, the control queue (5.1.6.5)
 * and the getters.  The data path is in driver_data.c; the state in
 * driver_internal.h.
 *
 * The device is trusted with nothing: config values are bounded before
 * use (a pair count of 0 or above the queues the transport has, an MTU
 * below 68), a config space that cannot be read (DPDK's vhost-user
 * backend has none) leaves the defaults: a random locally administered
 * MAC, MTU 1500, link up, the pairs the transport has.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <endian.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "driver_internal.h"

/* Frames: an Ethernet header and a VLAN tag on top of the MTU; GSO
 * frames up to 64 KiB of payload. */
#define GSO_FRAME_MAX (65536u + NET_ETH_OVERHEAD)
#define DEFAULT_MTU 1500u
#define DEFAULT_QSIZE 1024u
#define DEFAULT_RX_BUF 2048u
#define RX_BUF_MIN 64u
#define RX_BUF_MAX (1u << 20)
/* Bytes of buffers per queue, at most: fewer buffers than ring entries
 * when they are large (64 KiB receive buffers without MRG_RXBUF, TSO
 * transmit slots). */
#define QUEUE_MEM_BUDGET (16u << 20)
/* How long a control command may take. */
#define CTRL_TIMEOUT_MS 5000

struct net_driver {
	struct vio_driver drv;
	struct vio_net_driver_opts cfg;
};

static int net_probe(struct vio_drvdev *vdev);
static void net_remove(struct vio_drvdev *vdev);
static void net_config_changed(struct vio_drvdev *vdev);

/* Every bit this driver may take; probe narrows it by the options. */
static const unsigned net_features[] = {
    VIRTIO_NET_F_CSUM,	     VIRTIO_NET_F_GUEST_CSUM,
    VIRTIO_NET_F_MTU,	     VIRTIO_NET_F_MAC,
    VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_HOST_TSO4,  VIRTIO_NET_F_HOST_TSO6,
    VIRTIO_NET_F_MRG_RXBUF,  VIRTIO_NET_F_STATUS,
    VIRTIO_NET_F_CTRL_VQ,    VIRTIO_NET_F_CTRL_RX,
    VIRTIO_NET_F_MQ,	     VIRTIO_NET_F_CTRL_MAC_ADDR,
    VIRTIO_F_VERSION_1,	     VIRTIO_F_RING_PACKED,
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
#define N_NET_FEATURES (sizeof(net_features) / sizeof(net_features[0]))

static const struct vio_device_id net_ids[] = {
    {VIRTIO_ID_NET, VIO_DEV_ANY_ID},
    {0, 0},
};

#define CFG_OFF(field) offsetof(struct virtio_net_config, field)
#define CFG_END(field)                                                         \
	(CFG_OFF(field) + sizeof(((struct virtio_net_config *)0)->field))

struct vio_driver *vio_net_driver_new(const struct vio_net_driver_opts *cfg)
{
	if (cfg && (cfg->num_pairs > VIO_NET_MAX_PAIRS ||
		    cfg->queue_size > VIO_VQ_MAX_SIZE ||
		    (cfg->rx_buf_size && (cfg->rx_buf_size < RX_BUF_MIN ||
					  cfg->rx_buf_size > RX_BUF_MAX)))) {
		errno = EINVAL;
		return NULL;
	}
	struct net_driver *nd = calloc(1, sizeof(*nd));
	if (!nd) {
		errno = ENOMEM;
		return NULL;
	}
	nd->drv = (struct vio_driver){
	    .name = "virtio-net",
	    .id_table = net_ids,
	    .feature_table = net_features,
	    .feature_table_size = N_NET_FEATURES,
	    .probe = net_probe,
	    .remove = net_remove,
	    .config_changed = net_config_changed,
	    /* the fields read: mac, status, max_virtqueue_pairs, mtu */
	    .config_size = CFG_END(mtu),
	};
	if (cfg)
		nd->cfg = *cfg;
	return &nd->drv;
}

void vio_net_driver_free(struct vio_driver *drv)
{
	if (drv)
		free((char *)drv - offsetof(struct net_driver, drv));
}

static const struct vio_net_driver_opts *drv_config(const struct vio_driver *d)
{
	const struct net_driver *nd =
	    (const struct net_driver *)(const void *)((const char *)d -
						      offsetof(
							  struct net_driver,
							  drv));
	return &nd->cfg;
}

struct vio_net *vio_net_from_vdev(struct vio_drvdev *vdev)
{
	if (!vdev)
		return NULL;
	const struct vio_driver *drv = vio_drvdev_driver(vdev);
	if (!drv || drv->probe != net_probe)
		return NULL;
	return vio_drvdev_priv(vdev);
}

struct vio_drvdev *vio_net_vdev(const struct vio_net *n)
{
	return n ? n->vdev : NULL;
}

bool vio_net_has_feature(const struct vio_net *n, unsigned bit)
{
	return n && vio_drvdev_has_feature(n->vdev, bit);
}

/* ---- config space ---- */

static int cfg_u16(struct vio_drvdev *vdev, unsigned off, uint16_t *v)
{
	uint16_t x;
	int r = vio_drvdev_config_read(vdev, off, &x, sizeof(x));
	if (r == 0)
		*v = le16toh(x);
	return r;
}

/* The link status now (5.1.4): up without STATUS, or when the config
 * space cannot be read (the last known state is kept). */
static bool read_link(struct vio_net *n)
{
	if (!vio_drvdev_has_feature(n->vdev, VIRTIO_NET_F_STATUS))
		return true;
	uint16_t st = 0;
	if (cfg_u16(n->vdev, CFG_OFF(status), &st) < 0)
		return __atomic_load_n(&n->link_up, __ATOMIC_RELAXED);
	return st & VIRTIO_NET_S_LINK_UP;
}

static void random_mac(uint8_t mac[VIO_NET_ETH_ALEN])
{
	if (getrandom(mac, VIO_NET_ETH_ALEN, 0) != (ssize_t)VIO_NET_ETH_ALEN) {
		uint64_t t = vio_now_ns() ^ (uint64_t)(uintptr_t)mac;
		memcpy(mac, &t, VIO_NET_ETH_ALEN);
	}
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02); /* unicast, local */
}

/* 5.1.4: the fields each negotiated feature guards, checked. */
static void read_config(struct vio_net *n)
{
	struct vio_drvdev *vdev = n->vdev;
	struct vio_net_info *in = &n->info;
	bool have_mac = false;

	if (vio_drvdev_has_feature(vdev, VIRTIO_NET_F_MAC)) {
		int r = vio_drvdev_config_read(vdev, CFG_OFF(mac), in->mac,
					       VIO_NET_ETH_ALEN);
		if (r < 0)
			vio_log_warn("net driver: cannot read the MAC from "
				     "the config space (%s): using a random "
				     "one",
				     strerror(-r));
		else if (in->mac[0] & 1)
			vio_log_warn("net driver: the device's MAC is a "
				     "multicast address: using a random one");
		else
			have_mac = true;
	}
	if (!have_mac)
		random_mac(in->mac);

	in->mtu = DEFAULT_MTU;
	if (vio_drvdev_has_feature(vdev, VIRTIO_NET_F_MTU)) {
		uint16_t v = 0;
		int r = cfg_u16(vdev, CFG_OFF(mtu), &v);
		if (r == 0 && v >= 68)
			in->mtu = v;
		else if (r == 0)
			vio_log_warn("net driver: MTU %u from the config space "
				     "ignored: using %u",
				     v, DEFAULT_MTU);
		else
			vio_log_info("net driver: cannot read the MTU from the "
				     "config space (%s): using %u",
				     strerror(-r), DEFAULT_MTU);
	}
	n->link_up = true;
	n->link_up = read_link(n);
}

/* The device's pair count (5.1.4: max_virtqueue_pairs with MQ, else 1),
 * or what the transport has when the config space cannot say. */
static unsigned device_pairs(struct vio_net *n, bool ctrl)
{
	struct vio_drvdev *vdev = n->vdev;
	unsigned nq = vio_drvdev_num_queues(vdev);
	if (!vio_drvdev_has_feature(vdev, VIRTIO_NET_F_MQ))
		return 1;
	uint16_t v = 0;
	int r = cfg_u16(vdev, CFG_OFF(max_virtqueue_pairs), &v);
	if (r == 0 && v >= VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN &&
	    v <= VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX)
		return v;
	unsigned t = (ctrl && nq > 2 ? nq - 1 : nq) / 2;
	if (r == 0)
		vio_log_warn("net driver: max_virtqueue_pairs %u is out of "
			     "range: using the %u pair(s) the transport has",
			     v, t ? t : 1);
	return t ? t : 1;
}

/* ---- buffers ---- */

static unsigned round_down_pow2(unsigned v)
{
	while (v & (v - 1))
		v &= v - 1;
	return v;
}

static uint32_t round_up64(uint32_t v)
{
	return (v + 63u) & ~63u;
}

/* How many buffers of size bytes for a ring of qsize: one per entry, as
 * many as the budget allows when they are large (at least 16). */
static unsigned nbufs(unsigned qsize, uint32_t size)
{
	unsigned cap = QUEUE_MEM_BUDGET / size;
	if (cap < 16)
		cap = 16;
	return qsize < cap ? qsize : cap;
}

static void free_state(struct vio_drvdev *vdev, struct vio_net *n)
{
	for (unsigned i = 0; n->pairs && i < n->npairs; i++) {
		struct net_pair *p = &n->pairs[i];
		vio_mem_release(n->mem, p->rx.bufs);
		vio_mem_release(n->mem, p->tx.slots);
		free(p->rx.posted);
		free(p->rx.held);
		free(p->rx.reasm);
		free(p->tx.free_ids);
		free(p->tx.busy);
		free(p->tx.lent);
	}
	free(n->pairs);
	vio_mem_release(n->mem, n->ctrl_shm);
	pthread_mutex_destroy(&n->ctrl_lock);
	pthread_mutex_destroy(&n->info_lock);
	free(n);
	vio_drvdev_set_priv(vdev, NULL);
}

/* The queue size for queue idx: the device's, the caller's cap. */
static unsigned queue_size(struct vio_net *n, unsigned idx, unsigned want)
{
	unsigned s = vio_drvdev_queue_max_size(n->vdev, idx);
	if (s > want)
		s = want;
	if (!n->info.packed)
		s = round_down_pow2(s);
	return s;
}

/* Buffers of pair p (memory only: the rings come after). */
static int pair_alloc(struct vio_net *n, struct net_pair *p, unsigned rxsize,
		      unsigned txsize, uint32_t rx_buf)
{
	struct net_rxq *rx = &p->rx;
	struct net_txq *tx = &p->tx;
	uint64_t daddr;

	rx->buf_size = rx_buf;
	rx->stride = (NET_RX_PAD + rx_buf + 127u) & ~127u;
	rx->nbuf = nbufs(rxsize, rx->stride);
	rx->posted = calloc(rx->nbuf, 1);
	rx->held = calloc(rx->nbuf, sizeof(*rx->held));
	if (!rx->posted || !rx->held)
		return -ENOMEM;
	rx->bufs =
	    vio_mem_alloc(n->mem, (size_t)rx->nbuf * rx->stride, 128, &daddr);
	if (!rx->bufs)
		return -ENOMEM;
	if (n->info.mrg_rxbuf) {
		rx->reasm_cap = n->rx_frame_max;
		rx->reasm = malloc(rx->reasm_cap);
		if (!rx->reasm)
			return -ENOMEM;
	}

	tx->slot_size = round_up64(VIO_NET_HDR_LEN + n->tx_frame_max);
	tx->nslots = nbufs(txsize, tx->slot_size);
	tx->free_ids = calloc(tx->nslots, sizeof(*tx->free_ids));
	tx->busy = calloc(tx->nslots, 1);
	tx->lent = calloc(tx->nslots, sizeof(*tx->lent));
	if (!tx->free_ids || !tx->busy || !tx->lent)
		return -ENOMEM;
	tx->slots = vio_mem_alloc(n->mem, (size_t)tx->nslots * tx->slot_size,
				  64, &daddr);
	if (!tx->slots)
		return -ENOMEM;
	for (unsigned k = 0; k < tx->nslots; k++)
		tx->free_ids[k] = tx->nslots - 1 - k; /* slot 0 on top */
	tx->nfree = tx->nslots;
	return 0;
}

static struct vio_vq *setup_vq(struct vio_net *n, unsigned idx, unsigned size,
			       int *err)
{
	struct vio_vq *vq = vio_drvdev_setup_vq(n->vdev, idx, size, NULL, NULL);
	if (!vq) {
		*err = errno ? -errno : -EIO;
		vio_log_warn("net driver: queue %u: %s", idx, strerror(-*err));
		return NULL;
	}
	/* interrupts only while we sleep (the waits enable them) */
	vio_vq_disable_cb(vq);
	return vq;
}

static struct vio_features wanted_features(const struct vio_net_driver_opts *c)
{
	struct vio_features w = vio_features_from(net_features, N_NET_FEATURES);
	static const unsigned csum[] = {VIRTIO_NET_F_CSUM,
					VIRTIO_NET_F_GUEST_CSUM};
	static const unsigned tso[] = {
	    VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
	    VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6};
	/* TSO needs the checksum offload (5.1.3.1): tso implies csum */
	if (!c->csum && !c->tso)
		for (unsigned i = 0; i < 2; i++)
			vio_features_clear(&w, csum[i]);
	if (!c->tso)
		for (unsigned i = 0; i < 4; i++)
			vio_features_clear(&w, tso[i]);
	if (c->no_packed)
		vio_features_clear(&w, VIRTIO_F_RING_PACKED);
	if (c->no_event_idx)
		vio_features_clear(&w, VIRTIO_RING_F_EVENT_IDX);
	if (c->no_indirect)
		vio_features_clear(&w, VIRTIO_RING_F_INDIRECT_DESC);
	if (c->no_mrg_rxbuf)
		vio_features_clear(&w, VIRTIO_NET_F_MRG_RXBUF);
	if (c->no_ctrl_vq) {
		/* and what needs it; MQ stays: without a control queue the
		 * pairs are fixed (every pair the device has is in use) */
		vio_features_clear(&w, VIRTIO_NET_F_CTRL_VQ);
		vio_features_clear(&w, VIRTIO_NET_F_CTRL_RX);
		vio_features_clear(&w, VIRTIO_NET_F_CTRL_MAC_ADDR);
	}
	return w;
}

static bool has(const struct vio_net *n, unsigned bit)
{
	return vio_drvdev_has_feature(n->vdev, bit);
}

static int net_probe(struct vio_drvdev *vdev)
{
	const struct vio_net_driver_opts *cfg =
	    drv_config(vio_drvdev_driver(vdev));
	struct vio_features want = wanted_features(cfg);
	int r = vio_drvdev_negotiate(vdev, &want);
	if (r < 0)
		return r;

	struct vio_net *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->ctrl_lock, NULL);
	pthread_mutex_init(&n->info_lock, NULL);
	n->vdev = vdev;
	n->mem = vio_drvdev_mem(vdev);
	vio_drvdev_set_priv(vdev, n);

	struct vio_net_info *in = &n->info;
	in->packed = has(n, VIRTIO_F_RING_PACKED);
	in->event_idx = has(n, VIRTIO_RING_F_EVENT_IDX);
	in->mrg_rxbuf = has(n, VIRTIO_NET_F_MRG_RXBUF);
	in->ctrl_vq = has(n, VIRTIO_NET_F_CTRL_VQ);
	in->csum = has(n, VIRTIO_NET_F_CSUM);
	in->guest_csum = has(n, VIRTIO_NET_F_GUEST_CSUM);
	in->host_tso =
	    has(n, VIRTIO_NET_F_HOST_TSO4) || has(n, VIRTIO_NET_F_HOST_TSO6);
	in->guest_tso =
	    has(n, VIRTIO_NET_F_GUEST_TSO4) || has(n, VIRTIO_NET_F_GUEST_TSO6);
	read_config(n);

	/* pairs: the device's, the transport's queues, the caller's */
	unsigned nq = vio_drvdev_num_queues(vdev);
	n->dev_max_pairs = device_pairs(n, in->ctrl_vq);
	unsigned pairs = n->dev_max_pairs;
	if (pairs > VIO_NET_MAX_PAIRS)
		pairs = VIO_NET_MAX_PAIRS;
	if (pairs > nq / 2)
		pairs = nq / 2;
	if (cfg->num_pairs && pairs > cfg->num_pairs)
		pairs = cfg->num_pairs;
	if (pairs == 0) {
		vio_log_warn("net driver: the device has %u queue(s): a "
			     "receiveq and a transmitq are needed",
			     nq);
		r = -ENODEV;
		goto fail;
	}
	unsigned ctrl_idx = 2u * n->dev_max_pairs;
	if (in->ctrl_vq && ctrl_idx >= nq) {
		vio_log_warn("net driver: no control queue (index %u, the "
			     "transport has %u queues): commands refused",
			     ctrl_idx, nq);
		in->ctrl_vq = false;
	}

	/* frame and buffer sizes (5.1.6.3.1) */
	n->rx_frame_max =
	    in->guest_tso ? GSO_FRAME_MAX : in->mtu + NET_ETH_OVERHEAD;
	n->tx_frame_max =
	    in->host_tso ? GSO_FRAME_MAX : in->mtu + NET_ETH_OVERHEAD;
	uint32_t rx_buf =
	    in->mrg_rxbuf
		? (cfg->rx_buf_size ? cfg->rx_buf_size : DEFAULT_RX_BUF)
		: round_up64(VIO_NET_HDR_LEN + n->rx_frame_max);
	unsigned qwant = cfg->queue_size ? cfg->queue_size : DEFAULT_QSIZE;

	/* every pair's memory first, then the rings: all of it exists
	 * before the device learns where the rings are */
	n->pairs = calloc(pairs, sizeof(*n->pairs));
	if (!n->pairs) {
		r = -ENOMEM;
		goto fail;
	}
	n->npairs = pairs;
	unsigned qmin = VIO_VQ_MAX_SIZE;
	for (unsigned i = 0; i < pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		unsigned rs = queue_size(n, 2 * i, qwant);
		unsigned ts = queue_size(n, 2 * i + 1, qwant);
		if (rs < 2 || ts < 2) {
			vio_log_warn("net driver: pair %u: queue sizes %u/%u",
				     i, rs, ts);
			r = -ENODEV;
			goto fail;
		}
		p->n = n;
		p->idx = i;
		r = pair_alloc(n, p, rs, ts, rx_buf);
		if (r < 0)
			goto fail;
		if (rs < qmin)
			qmin = rs;
	}
	in->queue_size = (uint16_t)qmin;
	if (in->ctrl_vq) {
		uint64_t daddr;
		n->ctrl_shm =
		    vio_mem_alloc(n->mem, sizeof(*n->ctrl_shm), 64, &daddr);
		if (!n->ctrl_shm) {
			r = -ENOMEM;
			goto fail;
		}
		memset(n->ctrl_shm, 0, sizeof(*n->ctrl_shm));
	}
	for (unsigned i = 0; i < pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		p->rx.vq = setup_vq(n, 2 * i, queue_size(n, 2 * i, qwant), &r);
		if (!p->rx.vq)
			goto fail;
		p->tx.vq =
		    setup_vq(n, 2 * i + 1, queue_size(n, 2 * i + 1, qwant), &r);
		if (!p->tx.vq)
			goto fail;
	}
	if (in->ctrl_vq) {
		unsigned s = queue_size(n, ctrl_idx, 64);
		n->ctrl = s >= 3 ? setup_vq(n, ctrl_idx, s, &r) : NULL;
		if (!n->ctrl) {
			vio_log_warn("net driver: control queue %u unusable: "
				     "commands refused",
				     ctrl_idx);
			in->ctrl_vq = false;
		}
	}
	(void)vio_drvdev_sync_mem(vdev);
	for (unsigned i = 0; i < pairs; i++) {
		r = net_rx_fill(&n->pairs[i].rx);
		if (r < 0)
			goto fail;
	}

	/* 3.1.1: no notification and no command before DRIVER_OK */
	r = vio_drvdev_driver_ok(vdev);
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < pairs; i++)
		vio_vq_kick(n->pairs[i].rx.vq);

	/* 5.1.6.5.5: only pair 0 runs until VQ_PAIRS_SET; without a
	 * control queue every pair the device has runs */
	n->active = in->ctrl_vq ? 1 : pairs;
	if (in->ctrl_vq && pairs > 1 && has(n, VIRTIO_NET_F_MQ)) {
		r = vio_net_set_pairs(n, pairs);
		if (r < 0)
			vio_log_warn("net driver: VQ_PAIRS_SET %u: %s: using "
				     "one pair",
				     pairs, strerror(-r));
	}
	in->max_pairs = pairs;
	return 0;
fail:
	/* the bus sets FAILED; the vqs go with the next reset */
	free_state(vdev, n);
	return r;
}

/* The bus stopped the device before calling us: nothing is used any
 * more; the vqs go with the vdev. */
static void net_remove(struct vio_drvdev *vdev)
{
	struct vio_net *n = vio_drvdev_priv(vdev);
	if (n)
		free_state(vdev, n);
}

/* 5.1.4: the status field changed (link up/down).  Runs on a driver
 * thread (the transport's waiter or an explicit serve call). */
static void net_config_changed(struct vio_drvdev *vdev)
{
	struct vio_net *n = vio_drvdev_priv(vdev);
	if (!n)
		return; /* not probed (yet): probe reads the config itself */
	bool up = read_link(n);
	bool old = __atomic_exchange_n(&n->link_up, up, __ATOMIC_RELAXED);
	if (old != up)
		vio_log_info("net driver: link %s", up ? "up" : "down");
}

/* What probe found, the MAC set since, the pairs in use, and the link
 * status read again (a device without STATUS: always up). */
void vio_net_get_info(struct vio_net *n, struct vio_net_info *out)
{
	pthread_mutex_lock(&n->info_lock);
	*out = n->info;
	pthread_mutex_unlock(&n->info_lock);
	bool up = read_link(n);
	__atomic_store_n(&n->link_up, up, __ATOMIC_RELAXED);
	out->link_up = up;
	out->pairs = __atomic_load_n(&n->active, __ATOMIC_RELAXED);
}

int vio_net_stats(const struct vio_net *n, unsigned qp,
		  struct vio_net_drv_stats *out)
{
	if (!n || !out || (qp >= n->npairs && qp != VIO_NET_MAX_PAIRS))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < n->npairs; i++) {
		if (qp != VIO_NET_MAX_PAIRS && i != qp)
			continue;
		const struct vio_net_drv_stats *s = &n->pairs[i].st;
#define LD(f) out->f += __atomic_load_n(&s->f, __ATOMIC_RELAXED)
		LD(tx_packets);
		LD(tx_bytes);
		LD(tx_full);
		LD(rx_packets);
		LD(rx_bytes);
		LD(rx_errors);
#undef LD
	}
	return 0;
}

/* ---- control queue (5.1.6.5) ---- */

/*
 * One command: header and data (readable), the ack byte (writable),
 * waited for up to CTRL_TIMEOUT_MS.  0, -EIO (VIRTIO_NET_ERR, a bad
 * answer, a broken queue or no answer in time: the buffer may still be
 * on the ring, so the queue takes no other command), -EOPNOTSUPP.
 */
static int ctrl_cmd(struct vio_net *n, uint8_t cls, uint8_t cmd,
		    const void *data, unsigned len)
{
	if (!n->ctrl)
		return -EOPNOTSUPP;
	if (len > sizeof(n->ctrl_shm->data))
		return -EINVAL;
	pthread_mutex_lock(&n->ctrl_lock);
	int r = -EIO;
	if (n->ctrl_dead)
		goto out;
	struct net_ctrl_shm *m = n->ctrl_shm;
	m->hdr.class = cls;
	m->hdr.cmd = cmd;
	memcpy(m->data, data, len);
	m->ack = 0xff; /* neither OK nor ERR: a device that never wrote */
	struct vio_sg sg[3] = {
	    {.buf = &m->hdr, .len = sizeof(m->hdr)},
	    {.buf = m->data, .len = len},
	    {.buf = &m->ack, .len = 1},
	};
	uint32_t used = 0;
	r = vio_drvdev_send_and_wait(n->vdev, n->ctrl, sg, 2, 1, &used,
				     CTRL_TIMEOUT_MS);
	vio_vq_disable_cb(n->ctrl);
	if (r < 0) {
		vio_log_limited(&n->rl,
				"net driver: control command %u.%u: %s: the "
				"control queue takes no more",
				cls, cmd, strerror(-r));
		n->ctrl_dead = true;
		r = -EIO;
		goto out;
	}
	uint8_t ack = *(volatile uint8_t *)&m->ack;
	if (used < 1 || ack != VIRTIO_NET_OK) {
		if (ack != VIRTIO_NET_ERR || used < 1)
			vio_log_limited(&n->rl,
					"net driver: control command %u.%u: "
					"answer %u (%u bytes)",
					cls, cmd, ack, used);
		r = -EIO;
		goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&n->ctrl_lock);
	return r;
}

int vio_net_set_promisc(struct vio_net *n, bool on)
{
	if (!n)
		return -EINVAL;
	if (!n->ctrl || !has(n, VIRTIO_NET_F_CTRL_RX))
		return -EOPNOTSUPP;
	uint8_t v = on ? 1 : 0;
	return ctrl_cmd(n, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &v,
			1);
}

int vio_net_set_pairs(struct vio_net *n, unsigned pairs)
{
	if (!n)
		return -EINVAL;
	if (!n->ctrl || !has(n, VIRTIO_NET_F_MQ))
		return -EOPNOTSUPP;
	if (pairs < 1 || pairs > n->npairs)
		return -EINVAL;
	uint16_t v = htole16((uint16_t)pairs);
	int r = ctrl_cmd(n, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
			 &v, sizeof(v));
	if (r == 0)
		__atomic_store_n(&n->active, pairs, __ATOMIC_RELAXED);
	return r;
}

int vio_net_set_mac(struct vio_net *n, const uint8_t mac[VIO_NET_ETH_ALEN])
{
	if (!n || !mac)
		return -EINVAL;
	if (!n->ctrl || !has(n, VIRTIO_NET_F_CTRL_MAC_ADDR))
		return -EOPNOTSUPP;
	int r = ctrl_cmd(n, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET,
			 mac, VIO_NET_ETH_ALEN);
	if (r == 0) {
		pthread_mutex_lock(&n->info_lock);
		memcpy(n->info.mac, mac, VIO_NET_ETH_ALEN);
		pthread_mutex_unlock(&n->info_lock);
	}
	return r;
}
