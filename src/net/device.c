/* SPDX-License-Identifier: MIT */
/*
 * virtio-net, the device side (VIRTIO 1.x section 5.1): a network card
 * whose wire is a port (struct vio_net_port: tap, switch, echo, sink,
 * gen, or the application's own).
 *
 * Queues.  receiveq k = 2k, transmitq k = 2k + 1 for k < pairs, then the
 * control queue when CTRL_VQ is offered: the device has 2 * pairs + 1
 * queues, and the control queue is queue 2N where N is pairs with MQ
 * negotiated and 1 without (5.1.2; computed at FEATURES_OK).
 *
 * Features offered: VERSION_1, MAC, MTU, STATUS, MRG_RXBUF, CTRL_VQ with
 * CTRL_RX, CTRL_RX_EXTRA, CTRL_MAC_ADDR and GUEST_ANNOUNCE, MQ (pairs >
 * 1), EVENT_IDX, INDIRECT_DESC, RING_PACKED (opts.packed), and from the
 * port's offloads CSUM, HOST_TSO4/6, HOST_UFO, GUEST_CSUM, GUEST_TSO4/6,
 * GUEST_UFO (TSO and UFO only with their CSUM).  FEATURES_OK is refused
 * (the bit not kept) for the offload combinations 5.1.3.1 forbids:
 * HOST_* GSO without CSUM, GUEST_* GSO without GUEST_CSUM (the header
 * checks rely on them).  The control features without CTRL_VQ (CTRL_RX,
 * CTRL_MAC_ADDR, MQ, ...) are accepted and have no effect: DPDK's
 * virtio-user emulates the control queue itself, acks them without
 * CTRL_VQ and enables pairs with SET_VRING_ENABLE; every pair is then in
 * use.
 *
 * Header: VERSION_1 only, so every frame on a ring starts with the
 * 12-byte struct virtio_net_hdr_v1 (num_buffers present).
 *
 * Transmit (tx.c): a transmitq kick pops a batch (at most
 * NET_TX_BATCH), checks each chain (net_tx_parse: readable only, header
 * present, header consistent with the negotiated features; a bad one is
 * answered and counted in tx_errors, never sent), hands each frame to
 * port->ops->xmit, then xmit_flush, one push of the batch (used length
 * 0) and one call.  A kick is bounded by the ring's size.
 *
 * Receive (rx.c): buffers stay in the ring until a frame arrives; the
 * port delivers with vio_net_device_rx (a copy) or rx_reserve/rx_commit
 * (straight into the buffers), on the pair's thread.  MRG_RXBUF spreads
 * a frame over several buffers (num_buffers set); without it one buffer
 * holds header and frame (-EMSGSIZE otherwise).  No buffer: the frame is
 * dropped and counted (-ENOBUFS), the receiveq's notifications are
 * re-armed, and the next receiveq kick tells the port (rx_ready).  Used
 * entries are pushed and the driver called at rx_flush.
 *
 * Receive filter: promiscuous after reset (all a driver without CTRL_RX
 * can have); with CTRL_RX the driver's modes and MAC table apply
 * (-EAGAIN, rx_filtered).  The control queue (ctrl.c parses, this file
 * applies) writes the device's filter under a lock and bumps a
 * generation; each pair copies it when the generation moved, so the
 * receive path pays one atomic load per frame.
 *
 * Threads: a pair's two queues run on one thread (vio serve: group 2);
 * queue_start refuses (-EINVAL) a queue whose pair partner runs on
 * another loop.  The port's start runs when the pair's first queue
 * starts, its stop when the last one stops.  Without queue_start (the
 * inproc transport kicks without one) a queue starts at its first kick
 * with no loop; then every kick ends with the pair's receive entries
 * pushed and nothing held.  Counters are relaxed atomics.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "net/device_internal.h"

#define NET_DEFAULT_QSIZE 1024u
#define NET_CTRL_NONE UINT32_MAX

/* ---- receive filter and control queue ---- */

/* (also state.c's, as are status_update and net_ops' state ops) */
void filter_publish(struct vio_net_device *nd, const struct net_rx_filter *f)
{
	pthread_mutex_lock(&nd->filter_lock);
	nd->filter = *f;
	__atomic_add_fetch(&nd->fgen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&nd->filter_lock);
}

/* Read-modify-write of the config status field. */
void status_update(struct vio_net_device *nd, uint16_t set, uint16_t clear)
{
	const unsigned off = offsetof(struct virtio_net_config, status);
	uint16_t le = 0;
	pthread_mutex_lock(&nd->status_lock);
	(void)vio_device_config_read(nd->dev, off, &le, sizeof(le));
	uint16_t s = le16toh(le), ns = (uint16_t)((s | set) & ~clear);
	if (ns != s) {
		le = htole16(ns);
		(void)vio_device_config_update(nd->dev, off, &le, sizeof(le));
	}
	pthread_mutex_unlock(&nd->status_lock);
}

static void ctrl_apply(struct vio_net_device *nd, const struct net_rx_filter *f,
		       const struct net_ctrl_effect *e)
{
	if (e->filter)
		filter_publish(nd, f);
	/* 5.1.6.5.2.1: the config mac before the command is used */
	if (e->mac_set && vio_device_has_feature(nd->dev, VIRTIO_NET_F_MAC))
		(void)vio_device_config_update(
		    nd->dev, offsetof(struct virtio_net_config, mac), f->mac,
		    VIO_NET_ETH_ALEN);
	if (e->announce_ack)
		status_update(nd, 0, VIRTIO_NET_S_ANNOUNCE);
	if (e->pairs)
		__atomic_store_n(&nd->pairs_inuse, e->pairs, __ATOMIC_RELEASE);
}

/* One control chain: answered with the ack byte (used length 1). */
static uint32_t ctrl_one(struct vio_net_device *nd, struct vio_chain *c,
			 bool too_long)
{
	uint8_t ack = VIRTIO_NET_ERR;
	const char *why = "more segments than the device takes";
	if (!c->in_len || !c->nr_in) {
		vio_log_limited(&nd->rl,
				"%s: control command without a writable ack "
				"byte: returned unanswered",
				nd->name);
		net_stat_add(&nd->ctrl_err, 1);
		return 0;
	}
	if (!too_long) {
		struct net_rx_filter f;
		struct net_ctrl_effect e;
		pthread_mutex_lock(&nd->filter_lock);
		f = nd->filter;
		pthread_mutex_unlock(&nd->filter_lock);
		ack = net_ctrl_exec(c->out, c->nr_out, net_neg(nd),
				    nd->max_pairs, &f, &e, &why);
		if (ack == VIRTIO_NET_OK)
			ctrl_apply(nd, &f, &e);
	}
	if (ack != VIRTIO_NET_OK)
		vio_log_limited(&nd->rl, "%s: control command refused: %s",
				nd->name, why);
	/* the ack is the first writable byte (the last one for a chain
	 * vio_vq_pop cut short: in[] then covers the end) */
	if (too_long) {
		const struct vio_iov *l = &c->in[c->nr_in - 1];
		((uint8_t *)l->base)[l->len - 1] = ack;
	} else {
		*(uint8_t *)c->in[0].base = ack;
	}
	net_stat_add(ack == VIRTIO_NET_OK ? &nd->ctrl_ok : &nd->ctrl_err, 1);
	return 1;
}

static bool ctrl_kick(struct vio_net_device *nd, struct vio_vq *vq)
{
	unsigned budget = vio_vq_size(vq), done = 0;
	bool more = false;
	vio_vq_disable_notify(vq);
	for (;;) {
		struct vio_chain c;
		int r = budget
			    ? vio_vq_pop(vq, &c, nd->ctrl_iov, nd->ctrl_iov_max)
			    : 0;
		if (r > 0 || r == -E2BIG) {
			uint32_t len = ctrl_one(nd, &c, r == -E2BIG);
			if (vio_vq_push(vq, c.head, len) < 0)
				break;
			budget--;
			done++;
			continue;
		}
		if (r < 0)
			break; /* broken: the model asks for a reset */
		if (vio_vq_enable_notify(vq))
			break;
		vio_vq_disable_notify(vq);
		if (!budget) {
			more = true;
			break;
		}
	}
	if (done)
		vio_vq_call(vq);
	return more;
}

/* ---- queue pairs ---- */

static void pair_forget_rx(struct net_pair *p)
{
	net_rx_forget(p);
}

/* Queue k of pair p (0 receiveq, 1 transmitq) starts on loop. */
static int pair_start(struct net_pair *p, unsigned k, struct vio_vq *vq,
		      struct vio_loop *loop, bool explicit_)
{
	struct vio_net_device *nd = p->nd;
	unsigned other = 1 - k;
	if (p->started[other] && p->loop && loop && p->loop != loop) {
		vio_log_err("%s: pair %u: %s runs on another thread than its "
			    "%s: a pair's two queues must share one loop "
			    "(vio_run_opts.group = 2)",
			    nd->name, p->qp, k ? "transmitq" : "receiveq",
			    k ? "receiveq" : "transmitq");
		return -EINVAL;
	}
	bool first = !p->started[0] && !p->started[1];
	p->vq[k] = vq;
	p->started[k] = true;
	p->explicit_[k] = explicit_;
	if (k == 0) {
		pair_forget_rx(p);
		p->rx_armed = true;
	}
	if (loop)
		p->loop = loop;
	if (first) {
		p->fgen = __atomic_load_n(&nd->fgen, __ATOMIC_ACQUIRE) - 1;
		const struct vio_net_port_ops *o = nd->port->ops;
		int r = o->start ? o->start(nd->port, nd, p->qp, loop) : 0;
		if (r < 0) {
			/* limited: without queue_start every kick tries */
			vio_log_limited(
			    &p->rl, "%s: pair %u: port %s did not start: %s",
			    nd->name, p->qp, nd->port->kind, strerror(-r));
			p->vq[k] = NULL;
			p->started[k] = false;
			p->loop = NULL;
			return r;
		}
		p->port_started = true;
	} else if (k == 0 && nd->port->ops->rx_ready) {
		/* the port may have given up for want of a receiveq */
		nd->port->ops->rx_ready(nd->port, nd, p->qp);
	}
	return 0;
}

static void pair_port_stop(struct net_pair *p)
{
	struct vio_net_device *nd = p->nd;
	if (p->port_started && nd->port->ops->stop)
		nd->port->ops->stop(nd->port, nd, p->qp);
	p->port_started = false;
	p->loop = NULL;
}

static void pair_stop(struct net_pair *p, unsigned k)
{
	if (!p->started[k])
		return;
	if (k == 0) {
		/* newest first: the ring gets back what was reserved, then
		 * the driver gets what was delivered */
		net_rx_unreserve(p);
		net_rx_push(p);
	}
	p->vq[k] = NULL;
	p->started[k] = false;
	p->explicit_[k] = false;
	if (!p->started[0] && !p->started[1])
		pair_port_stop(p);
}

/* ---- device ops ---- */

static struct net_pair *pair_of(struct vio_net_device *nd, unsigned idx)
{
	unsigned np = __atomic_load_n(&nd->neg_pairs, __ATOMIC_RELAXED);
	if (idx / 2 >= np || idx / 2 >= nd->max_pairs)
		return NULL;
	return &nd->pair[idx / 2];
}

static bool net_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	struct vio_net_device *nd = vio_device_opaque(dev);
	if (idx == __atomic_load_n(&nd->ctrl_idx, __ATOMIC_RELAXED))
		return ctrl_kick(nd, vq);
	struct net_pair *p = pair_of(nd, idx);
	if (!p)
		return false;
	unsigned k = idx & 1;
	if (!p->started[k] || p->vq[k] != vq) {
		/* no queue_start (inproc), or a new vq behind our back: the
		 * old one is gone with whatever it held */
		if (p->started[k]) {
			if (k == 0)
				pair_forget_rx(p);
			p->started[k] = false;
		}
		if (pair_start(p, k, vq, NULL, false) < 0)
			return false;
	}
	bool more = false;
	if (k == 1) {
		more = net_tx_kick(p, vq);
	} else {
		/* buffers are there: no kick until we run dry again */
		vio_vq_disable_notify(vq);
		p->rx_armed = false;
		if (nd->port->ops->rx_ready)
			nd->port->ops->rx_ready(nd->port, nd, p->qp);
	}
	if (!p->loop) {
		/* nothing held past a kick without a loop (vio/device.h) */
		net_rx_unreserve(p);
		net_rx_push(p);
	}
	return more;
}

static int net_queue_start(struct vio_device *dev, unsigned idx,
			   struct vio_vq *vq, struct vio_loop *loop)
{
	struct vio_net_device *nd = vio_device_opaque(dev);
	if (idx == __atomic_load_n(&nd->ctrl_idx, __ATOMIC_RELAXED))
		return 0;
	struct net_pair *p = pair_of(nd, idx);
	if (!p)
		return 0; /* not a queue of the negotiated layout: idle */
	unsigned k = idx & 1;
	if (p->started[k])
		pair_stop(p, k);
	return pair_start(p, k, vq, loop, true);
}

static void net_queue_stop(struct vio_device *dev, unsigned idx,
			   struct vio_vq *vq)
{
	struct vio_net_device *nd = vio_device_opaque(dev);
	(void)vq;
	if (idx == __atomic_load_n(&nd->ctrl_idx, __ATOMIC_RELAXED))
		return; /* control chains are answered within the kick */
	struct net_pair *p = pair_of(nd, idx);
	if (p)
		pair_stop(p, idx & 1);
}

static unsigned neg_bits(struct vio_device *dev)
{
	static const struct {
		unsigned bit, neg;
	} map[] = {
	    {VIRTIO_NET_F_CSUM, NET_NEG_CSUM},
	    {VIRTIO_NET_F_HOST_TSO4, NET_NEG_HOST_TSO4},
	    {VIRTIO_NET_F_HOST_TSO6, NET_NEG_HOST_TSO6},
	    {VIRTIO_NET_F_HOST_UFO, NET_NEG_HOST_UFO},
	    {VIRTIO_NET_F_GUEST_CSUM, NET_NEG_GUEST_CSUM},
	    {VIRTIO_NET_F_GUEST_TSO4, NET_NEG_GUEST_TSO4},
	    {VIRTIO_NET_F_GUEST_TSO6, NET_NEG_GUEST_TSO6},
	    {VIRTIO_NET_F_GUEST_UFO, NET_NEG_GUEST_UFO},
	    {VIRTIO_NET_F_MTU, NET_NEG_MTU},
	    {VIRTIO_NET_F_MRG_RXBUF, NET_NEG_MRG_RXBUF},
	    {VIRTIO_NET_F_CTRL_VQ, NET_NEG_CTRL_VQ},
	    {VIRTIO_NET_F_CTRL_RX, NET_NEG_CTRL_RX},
	    {VIRTIO_NET_F_CTRL_RX_EXTRA, NET_NEG_CTRL_RX_EXTRA},
	    {VIRTIO_NET_F_CTRL_MAC_ADDR, NET_NEG_CTRL_MAC_ADDR},
	    {VIRTIO_NET_F_GUEST_ANNOUNCE, NET_NEG_ANNOUNCE},
	    {VIRTIO_NET_F_MQ, NET_NEG_MQ},
	    {VIRTIO_NET_F_STATUS, NET_NEG_STATUS},
	};
	unsigned neg = 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (vio_device_has_feature(dev, map[i].bit))
			neg |= map[i].neg;
	return neg;
}

/* 5.1.3.1: the features a feature needs.  NULL, or what is wrong. */
static const char *neg_conflict(unsigned neg)
{
	if ((neg &
	     (NET_NEG_HOST_TSO4 | NET_NEG_HOST_TSO6 | NET_NEG_HOST_UFO)) &&
	    !(neg & NET_NEG_CSUM))
		return "HOST_TSO4/TSO6/UFO without CSUM";
	if ((neg &
	     (NET_NEG_GUEST_TSO4 | NET_NEG_GUEST_TSO6 | NET_NEG_GUEST_UFO)) &&
	    !(neg & NET_NEG_GUEST_CSUM))
		return "GUEST_TSO4/TSO6/UFO without GUEST_CSUM";
	return NULL;
}

static int net_status(struct vio_device *dev, uint8_t old, uint8_t new_status)
{
	struct vio_net_device *nd = vio_device_opaque(dev);
	if (!((new_status & ~old) & VIRTIO_CONFIG_S_FEATURES_OK))
		return 0;
	unsigned neg = neg_bits(dev);
	const char *bad = neg_conflict(neg);
	if (bad) {
		vio_log_limited(&nd->rl, "%s: FEATURES_OK refused: %s",
				nd->name, bad);
		return -EINVAL;
	}
	/* DPDK's virtio-user emulates the control queue itself: it acks
	 * CTRL_RX, CTRL_MAC_ADDR, MQ without CTRL_VQ.  Accepted; without a
	 * control queue no command can use them */
	if (!(neg & NET_NEG_CTRL_VQ))
		neg &= ~(unsigned)(NET_NEG_CTRL_RX | NET_NEG_CTRL_RX_EXTRA |
				   NET_NEG_CTRL_MAC_ADDR | NET_NEG_ANNOUNCE);
	unsigned np = (neg & NET_NEG_MQ) ? nd->max_pairs : 1;
	__atomic_store_n(&nd->neg, neg, __ATOMIC_RELAXED);
	__atomic_store_n(&nd->neg_pairs, np, __ATOMIC_RELAXED);
	__atomic_store_n(&nd->ctrl_idx,
			 (neg & NET_NEG_CTRL_VQ) ? 2 * np : NET_CTRL_NONE,
			 __ATOMIC_RELAXED);
	/* 5.1.6.5.6.2: only the first pair until VQ_PAIRS_SET; without a
	 * control queue the pair count cannot be set: all of them */
	__atomic_store_n(&nd->pairs_inuse, (neg & NET_NEG_CTRL_VQ) ? 1 : np,
			 __ATOMIC_RELEASE);
	return 0;
}

/* Every queue is already freed (queues started by a kick were never
 * stopped: their ports are, here). */
static void net_reset(struct vio_device *dev)
{
	struct vio_net_device *nd = vio_device_opaque(dev);
	for (unsigned i = 0; i < nd->max_pairs; i++) {
		struct net_pair *p = &nd->pair[i];
		pair_forget_rx(p);
		for (unsigned k = 0; k < 2; k++) {
			p->vq[k] = NULL;
			p->started[k] = false;
			p->explicit_[k] = false;
		}
		if (p->port_started)
			pair_port_stop(p);
	}
	__atomic_store_n(&nd->neg, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&nd->neg_pairs, nd->max_pairs, __ATOMIC_RELAXED);
	__atomic_store_n(&nd->ctrl_idx, NET_CTRL_NONE, __ATOMIC_RELAXED);
	__atomic_store_n(&nd->pairs_inuse, 1, __ATOMIC_RELAXED);
	struct net_rx_filter f;
	net_rx_filter_reset(&f, nd->mac);
	filter_publish(nd, &f);
	/* what the driver changed goes back: the mac (ADDR_SET), a pending
	 * announcement */
	uint8_t mac[VIO_NET_ETH_ALEN];
	if (vio_device_config_read(dev, 0, mac, sizeof(mac)) == 0 &&
	    memcmp(mac, nd->mac, sizeof(mac)))
		(void)vio_device_config_update(dev, 0, nd->mac, sizeof(mac));
	status_update(nd, 0, VIRTIO_NET_S_ANNOUNCE);
}

static const struct vio_device_ops net_ops = {
    .status = net_status,
    .reset = net_reset,
    .kick = net_kick,
    .queue_start = net_queue_start,
    .queue_stop = net_queue_stop,
    .state_save = net_state_save, /* state.c */
    .state_load = net_state_load,
};

/* ---- setup ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void pair_fini(struct net_pair *p)
{
	free(p->tx_iov);
	free(p->rx_iov);
	free(p->res);
	free(p->rx_used);
}

static int pair_init(struct vio_net_device *nd, unsigned qp)
{
	struct net_pair *p = &nd->pair[qp];
	p->nd = nd;
	p->qp = qp;
	/* a chain has at most qsize descriptors (2.7.5.3.1) plus a segment
	 * per region boundary they cross */
	p->tx_iov_max = vio_vq_iov_max(nd->qsize);
	p->rx_iov_cap = vio_vq_iov_max(nd->qsize);
	p->res_cap = nd->qsize;
	p->rx_used_cap = nd->qsize;
	p->tx_iov_cap = p->tx_iov_max + 2 * NET_TX_BATCH;
	p->tx_iov = calloc(p->tx_iov_cap, sizeof(*p->tx_iov));
	p->rx_iov = calloc(p->rx_iov_cap, sizeof(*p->rx_iov));
	p->res = calloc(p->res_cap, sizeof(*p->res));
	p->rx_used = calloc(p->rx_used_cap, sizeof(*p->rx_used));
	if (!p->tx_iov || !p->rx_iov || !p->res || !p->rx_used)
		return -ENOMEM;
	return 0;
}

static void device_destroy(struct vio_net_device *nd)
{
	for (unsigned i = 0; i < VIO_NET_MAX_PAIRS; i++)
		pair_fini(&nd->pair[i]);
	free(nd->ctrl_iov);
	pthread_mutex_destroy(&nd->filter_lock);
	pthread_mutex_destroy(&nd->status_lock);
	free(nd);
}

static struct vio_features offer(const struct vio_net_device_opts *cfg,
				 unsigned pairs)
{
	struct vio_features f = {{0}};
	static const unsigned base[] = {VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC,
					VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS};
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		vio_features_set(&f, base[i]);
	if (!cfg->no_mrg_rxbuf)
		vio_features_set(&f, VIRTIO_NET_F_MRG_RXBUF);
	if (!cfg->no_ctrl_vq) {
		vio_features_set(&f, VIRTIO_NET_F_CTRL_VQ);
		vio_features_set(&f, VIRTIO_NET_F_CTRL_RX);
		vio_features_set(&f, VIRTIO_NET_F_CTRL_RX_EXTRA);
		vio_features_set(&f, VIRTIO_NET_F_CTRL_MAC_ADDR);
		vio_features_set(&f, VIRTIO_NET_F_GUEST_ANNOUNCE);
	}
	if (pairs > 1)
		vio_features_set(&f, VIRTIO_NET_F_MQ);
	if (!cfg->no_event_idx)
		vio_features_set(&f, VIRTIO_RING_F_EVENT_IDX);
	if (!cfg->no_indirect)
		vio_features_set(&f, VIRTIO_RING_F_INDIRECT_DESC);
	if (cfg->packed)
		vio_features_set(&f, VIRTIO_F_RING_PACKED);
	unsigned o = cfg->no_offloads ? 0 : cfg->port->offloads;
	if (o & VIO_NET_PORT_TX_CSUM) {
		vio_features_set(&f, VIRTIO_NET_F_CSUM);
		if (o & VIO_NET_PORT_TX_TSO) {
			vio_features_set(&f, VIRTIO_NET_F_HOST_TSO4);
			vio_features_set(&f, VIRTIO_NET_F_HOST_TSO6);
		}
		if (o & VIO_NET_PORT_TX_UFO)
			vio_features_set(&f, VIRTIO_NET_F_HOST_UFO);
	}
	if (o & VIO_NET_PORT_RX_CSUM) {
		vio_features_set(&f, VIRTIO_NET_F_GUEST_CSUM);
		if (o & VIO_NET_PORT_RX_TSO) {
			vio_features_set(&f, VIRTIO_NET_F_GUEST_TSO4);
			vio_features_set(&f, VIRTIO_NET_F_GUEST_TSO6);
		}
		if (o & VIO_NET_PORT_RX_UFO)
			vio_features_set(&f, VIRTIO_NET_F_GUEST_UFO);
	}
	return f;
}

struct vio_net_device *vio_net_device_new(const struct vio_net_device_opts *cfg,
					  char *err, size_t errlen)
{
	if (!cfg || !cfg->port || !cfg->port->ops || !cfg->port->ops->xmit) {
		set_err(err, errlen,
			"net device: a port (with xmit) is needed");
		errno = EINVAL;
		return NULL;
	}
	unsigned pairs = cfg->queue_pairs ? cfg->queue_pairs : 1;
	unsigned mtu = cfg->mtu ? cfg->mtu : 1500;
	unsigned qsize = cfg->queue_size ? cfg->queue_size : NET_DEFAULT_QSIZE;
	if (pairs > VIO_NET_MAX_PAIRS) {
		set_err(err, errlen, "net device: %u queue pairs: at most %u",
			pairs, VIO_NET_MAX_PAIRS);
		errno = EINVAL;
		return NULL;
	}
	if (cfg->port->max_pairs && pairs > cfg->port->max_pairs) {
		set_err(err, errlen,
			"net device: %u queue pairs, but port %s serves %u",
			pairs, cfg->port->kind ? cfg->port->kind : "?",
			cfg->port->max_pairs);
		errno = EINVAL;
		return NULL;
	}
	if (mtu < 68) {
		set_err(err, errlen, "net device: MTU %u: 68..65535", mtu);
		errno = EINVAL;
		return NULL;
	}
	if (cfg->tx_wait_ns > VIO_NET_TX_WAIT_MAX) {
		set_err(err, errlen,
			"net device: transmit wait %u ns: at most %u",
			cfg->tx_wait_ns, VIO_NET_TX_WAIT_MAX);
		errno = EINVAL;
		return NULL;
	}
	if (qsize < 2 || qsize > VIO_VQ_MAX_SIZE) {
		set_err(err, errlen, "net device: queue size %u: 2..%u", qsize,
			VIO_VQ_MAX_SIZE);
		errno = EINVAL;
		return NULL;
	}
	struct vio_net_device *nd = calloc(1, sizeof(*nd));
	if (!nd) {
		set_err(err, errlen, "net device: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&nd->filter_lock, NULL);
	pthread_mutex_init(&nd->status_lock, NULL);
	snprintf(nd->name, sizeof(nd->name), "%s",
		 cfg->name ? cfg->name : "net");
	nd->port = cfg->port;
	nd->mtu = (uint16_t)mtu;
	nd->qsize = (uint16_t)qsize;
	nd->tx_wait_ns = cfg->tx_wait_ns;
	nd->max_pairs = pairs;
	nd->neg_pairs = pairs;
	nd->ctrl_idx = NET_CTRL_NONE;
	nd->pairs_inuse = 1;
	static const uint8_t zero[VIO_NET_ETH_ALEN];
	memcpy(nd->mac, cfg->mac, VIO_NET_ETH_ALEN);
	if (!memcmp(nd->mac, zero, VIO_NET_ETH_ALEN)) {
		if (getrandom(nd->mac, VIO_NET_ETH_ALEN, 0) != VIO_NET_ETH_ALEN)
			nd->mac[5] = 1;
		nd->mac[0] = (uint8_t)((nd->mac[0] & 0xfe) | 0x02);
	}
	net_rx_filter_reset(&nd->filter, nd->mac);
	for (unsigned i = 0; i < pairs; i++)
		if (pair_init(nd, i) < 0)
			goto nomem;
	nd->ctrl_iov_max = vio_vq_iov_max((uint16_t)qsize);
	nd->ctrl_iov = calloc(nd->ctrl_iov_max, sizeof(*nd->ctrl_iov));
	if (!nd->ctrl_iov)
		goto nomem;

	struct virtio_net_config c;
	memset(&c, 0, sizeof(c));
	memcpy(c.mac, nd->mac, VIO_NET_ETH_ALEN);
	c.status = htole16(cfg->link_down ? 0 : VIRTIO_NET_S_LINK_UP);
	c.max_virtqueue_pairs = htole16((uint16_t)pairs);
	c.mtu = htole16((uint16_t)mtu);
	struct vio_device_opts dc = {
	    .name = nd->name,
	    .device_id = VIRTIO_ID_NET,
	    .features = offer(cfg, pairs),
	    .num_queues = 2 * pairs + (cfg->no_ctrl_vq ? 0 : 1),
	    .queue_max_size = (uint16_t)qsize,
	    .config = &c,
	    .config_size = sizeof(c),
	    .ops = &net_ops,
	    .opaque = nd,
	};
	nd->dev = vio_device_new(&dc);
	if (!nd->dev) {
		int e = errno ? errno : ENOMEM;
		set_err(err, errlen, "net device: %s", strerror(e));
		device_destroy(nd);
		errno = e;
		return NULL;
	}
	return nd;
nomem:
	set_err(err, errlen, "net device: out of memory");
	device_destroy(nd);
	errno = ENOMEM;
	return NULL;
}

struct vio_device *vio_net_device_dev(const struct vio_net_device *nd)
{
	return nd ? nd->dev : NULL;
}

struct vio_net_device *vio_net_device_from_dev(struct vio_device *dev)
{
	if (!dev || vio_device_device_id(dev) != VIRTIO_ID_NET)
		return NULL;
	struct vio_net_device *nd = vio_device_opaque(dev);
	return nd && nd->dev == dev ? nd : NULL;
}

const char *vio_net_device_name(const struct vio_net_device *nd)
{
	return nd->name;
}

void vio_net_device_mac(const struct vio_net_device *nd,
			uint8_t mac[VIO_NET_ETH_ALEN])
{
	/* the current one (a driver's ADDR_SET included) */
	struct vio_net_device *w = (struct vio_net_device *)nd; /* lock */
	pthread_mutex_lock(&w->filter_lock);
	memcpy(mac, nd->filter.mac, VIO_NET_ETH_ALEN);
	pthread_mutex_unlock(&w->filter_lock);
}

unsigned vio_net_device_queue_pairs(const struct vio_net_device *nd)
{
	return nd->max_pairs;
}

void vio_net_device_set_link(struct vio_net_device *nd, bool up)
{
	if (up)
		status_update(nd, VIRTIO_NET_S_LINK_UP, 0);
	else
		status_update(nd, 0, VIRTIO_NET_S_LINK_UP);
}

int vio_net_device_announce(struct vio_net_device *nd)
{
	if (!(net_neg(nd) & NET_NEG_ANNOUNCE) ||
	    !(net_neg(nd) & NET_NEG_STATUS))
		return -EOPNOTSUPP;
	status_update(nd, VIRTIO_NET_S_ANNOUNCE, 0);
	return 0;
}

void vio_net_device_free(struct vio_net_device *nd)
{
	if (!nd)
		return;
	vio_device_free(nd->dev);
	for (unsigned i = 0; i < nd->max_pairs; i++)
		if (nd->pair[i].port_started)
			pair_port_stop(&nd->pair[i]);
	if (nd->port->ops->detach)
		nd->port->ops->detach(nd->port, nd);
	device_destroy(nd);
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

int vio_net_device_stats(const struct vio_net_device *nd, unsigned qp,
			 struct vio_net_stats *out)
{
	if (!nd || !out || (qp >= nd->max_pairs && qp != VIO_NET_MAX_PAIRS))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	unsigned from = qp == VIO_NET_MAX_PAIRS ? 0 : qp;
	unsigned to = qp == VIO_NET_MAX_PAIRS ? nd->max_pairs : qp + 1;
	for (unsigned i = from; i < to; i++) {
		const struct net_pair_stats *s = &nd->pair[i].st;
		out->rx_packets += ld(&s->rx_packets);
		out->rx_bytes += ld(&s->rx_bytes);
		out->rx_no_buffer += ld(&s->rx_no_buffer);
		out->rx_dropped += ld(&s->rx_dropped);
		out->rx_filtered += ld(&s->rx_filtered);
		out->tx_packets += ld(&s->tx_packets);
		out->tx_bytes += ld(&s->tx_bytes);
		out->tx_dropped += ld(&s->tx_dropped);
		out->tx_errors += ld(&s->tx_errors);
	}
	/* the control queue's are the device's: the same in every view */
	out->ctrl_ok = ld(&nd->ctrl_ok);
	out->ctrl_err = ld(&nd->ctrl_err);
	return 0;
}

void vio_net_device_rx_mode(const struct vio_net_device *nd,
			    struct vio_net_rx_mode *out)
{
	struct vio_net_device *w = (struct vio_net_device *)nd; /* lock */
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&w->filter_lock);
	const struct net_rx_filter *f = &nd->filter;
	out->promisc = f->promisc;
	out->allmulti = f->allmulti;
	out->alluni = f->alluni;
	out->nomulti = f->nomulti;
	out->nouni = f->nouni;
	out->nobcast = f->nobcast;
	out->n_uni = f->uni_overflow ? NET_MAC_TABLE_MAX + 1 : f->n_uni;
	out->n_multi = f->multi_overflow ? NET_MAC_TABLE_MAX + 1 : f->n_multi;
	pthread_mutex_unlock(&w->filter_lock);
	out->pairs = __atomic_load_n(&nd->pairs_inuse, __ATOMIC_ACQUIRE);
}
