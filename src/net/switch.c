/* SPDX-License-Identifier: MIT */
/*
 * switch.c - the built-in learning L2 switch (vio/net.h).
 *
 * A switch joins several virtio-net devices, each on a port of its own.
 * A frame a driver sends (the port's xmit) teaches the switch where its
 * source MAC lives, then goes to the port that last sent from its
 * destination MAC, or to every other port when the destination is
 * broadcast, multicast or unknown.  Delivery is vio_net_device_rx on the
 * receiving device: one copy, from the sender's transmit buffers into the
 * receiver's receive buffers.  Used entries and calls are batched: the
 * switch remembers which devices and pairs got frames and flushes them
 * when the sender's batch ends (xmit_flush).
 *
 * Offloads: a switch port takes none on transmit, so drivers send plain,
 * fully checksummed frames, and offers receive checksum, so a frame
 * without metadata is always acceptable to a receiver.  (Metadata a
 * sender attaches anyway is passed on; a receiver that did not negotiate
 * it refuses the frame, counted as dropped.)
 *
 * Threads.  Every device of one switch must run all its pairs on one
 * thread (vio serve switch: one worker; inproc: one thread polling every
 * device): the MAC table, the flush list and the counters' writes are
 * not locked.  The switch records the thread of the first pair started
 * and, in debug builds (without NDEBUG), logs once when a frame comes
 * from another thread.  (Over inproc a device's reset, and so its pairs'
 * stop, runs on its driver's thread: stop or remove a driver while no
 * frames flow.)  Counters are read from any thread (relaxed atomics: a
 * snapshot).  Ports may be added at any time; they are freed with the
 * switch.
 *
 * Pairs: a frame sent on pair k goes to pair k modulo the receiver's
 * pairs, or to its first running pair if that one does not run, or to
 * pair 0 if the driver does not use it (MQ: it set fewer pairs).  A pair
 * that stops is no longer delivered to; when all pairs of a port have
 * stopped, the MACs learnt on it are forgotten (a MAC that moves to
 * another port is learnt there by its next frame anyway).
 *
 * The MAC table is fixed (SW_MAC_SIZE entries, no allocation per
 * packet): a hash with a bounded probe window; a new MAC takes an empty
 * or aged slot of its window, else the least recently seen one.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include <vio/net.h>

#define SW_MAX_PORTS 256u
#define SW_MAC_BITS 12u
#define SW_MAC_SIZE (1u << SW_MAC_BITS) /* 4096 entries */
#define SW_MAC_PROBE 8u			/* slots a MAC may live in */
#define SW_MAC_AGE_NS (300ull * 1000000000ull)
#define SW_ETH_HLEN 14u

struct sw_mac {
	uint64_t key;  /* the MAC in the low 48 bits, bit 48 set; 0: empty */
	uint64_t seen; /* switch clock when last sent from */
	uint16_t port;
};

struct sw_port {
	struct vio_net_port port; /* first: container */
	struct vio_net_switch *sw;
	uint16_t idx;
	char name[48];
	struct vio_net_device *dev;
	unsigned npairs;
	uint32_t running; /* pairs started */
	uint32_t pending; /* pairs delivered to since the last flush */
	struct vio_net_switch_stats st; /* one writer: the switch thread */
};

struct vio_net_switch {
	struct sw_port *port[SW_MAX_PORTS];
	unsigned nports; /* __atomic: ports are added at any time */
	/* ports with pending flushes */
	uint16_t dirty[SW_MAX_PORTS];
	unsigned ndirty;
	unsigned running_pairs; /* over all ports */
	uint64_t now;		/* coarse clock, refreshed per batch */
	uintptr_t owner;	/* the switch thread (debug check) */
	bool warned;
	struct sw_mac mac[SW_MAC_SIZE];
};

static struct sw_port *sw_port_of(struct vio_net_port *p)
{
	return (struct sw_port *)((char *)p - offsetof(struct sw_port, port));
}

static void cnt_add(uint64_t *c, uint64_t v)
{
	/* one writer: a load and a store, atomic for the readers */
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v,
			 __ATOMIC_RELAXED);
}

static uint64_t sw_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The one-thread rule, checked cheaply in debug builds: the address of a
 * thread-local variable names the calling thread. */
static _Thread_local char sw_thread_tag;

static void sw_thread_check(struct vio_net_switch *sw)
{
#ifndef NDEBUG
	uintptr_t me = (uintptr_t)&sw_thread_tag;
	uintptr_t owner = __atomic_load_n(&sw->owner, __ATOMIC_RELAXED);
	if (!owner) {
		__atomic_store_n(&sw->owner, me, __ATOMIC_RELAXED);
		return;
	}
	if (owner != me &&
	    !__atomic_exchange_n(&sw->warned, true, __ATOMIC_RELAXED))
		vio_log_err("switch: a frame sent on a second thread: every "
			    "device of a switch must run on one thread (one "
			    "worker); frames may be lost or corrupted");
#else
	(void)sw;
#endif
}

/* ---- the MAC table ---- */

static uint64_t mac_key(const uint8_t *m)
{
	uint64_t k = 1ull << 48;
	for (unsigned i = 0; i < 6; i++)
		k |= (uint64_t)m[i] << (8 * i);
	return k;
}

static unsigned mac_hash(uint64_t key)
{
	return (unsigned)((key * 0x9E3779B97F4A7C15ull) >> (64 - SW_MAC_BITS));
}

static bool mac_live(const struct vio_net_switch *sw, const struct sw_mac *e)
{
	return e->key && sw->now - e->seen < SW_MAC_AGE_NS;
}

static struct sw_mac *mac_lookup(struct vio_net_switch *sw, uint64_t key)
{
	unsigned h = mac_hash(key);
	for (unsigned i = 0; i < SW_MAC_PROBE; i++) {
		struct sw_mac *e = &sw->mac[(h + i) & (SW_MAC_SIZE - 1)];
		if (e->key == key)
			return mac_live(sw, e) ? e : NULL;
	}
	return NULL;
}

static void mac_learn(struct vio_net_switch *sw, uint64_t key, uint16_t port)
{
	unsigned h = mac_hash(key);
	struct sw_mac *victim = NULL;
	for (unsigned i = 0; i < SW_MAC_PROBE; i++) {
		struct sw_mac *e = &sw->mac[(h + i) & (SW_MAC_SIZE - 1)];
		if (e->key == key) {
			if (e->port != port || e->seen != sw->now) {
				e->port = port;
				e->seen = sw->now;
			}
			return;
		}
		if (!victim || (mac_live(sw, victim) &&
				(!mac_live(sw, e) || e->seen < victim->seen)))
			victim = e;
	}
	victim->key = key;
	victim->port = port;
	victim->seen = sw->now;
}

static void mac_forget_port(struct vio_net_switch *sw, uint16_t port)
{
	for (unsigned i = 0; i < SW_MAC_SIZE; i++)
		if (sw->mac[i].key && sw->mac[i].port == port)
			sw->mac[i].key = 0;
}

/* ---- forwarding ---- */

static void sw_deliver(struct vio_net_switch *sw, struct sw_port *to,
		       unsigned qp, const struct virtio_net_hdr_v1 *hdr,
		       const struct vio_iov *iov, unsigned n, size_t len)
{
	unsigned q = qp % to->npairs;
	if (!(to->running & (1u << q)))
		q = (unsigned)__builtin_ctz(to->running);
	int r = vio_net_device_rx(to->dev, q, hdr, iov, n, len);
	if (r == -ENOTCONN && q && (to->running & 1u)) {
		/* a pair the driver does not use (MQ: fewer pairs set than
		 * started); pair 0 is always in use */
		q = 0;
		r = vio_net_device_rx(to->dev, q, hdr, iov, n, len);
	}
	if (r == 0) {
		cnt_add(&to->st.tx_packets, 1);
		cnt_add(&to->st.tx_bytes, len);
		if (!to->pending)
			sw->dirty[sw->ndirty++] = to->idx;
		to->pending |= 1u << q;
	} else if (r != -EAGAIN) {
		/* -EAGAIN: the receiver's filter (not its MAC): not a drop */
		cnt_add(&to->st.dropped, 1);
	}
}

static int sw_xmit(struct vio_net_port *p, struct vio_net_device *dev,
		   unsigned qp, const struct virtio_net_hdr_v1 *hdr,
		   const struct vio_iov *iov, unsigned n, size_t len)
{
	struct sw_port *sp = sw_port_of(p);
	struct vio_net_switch *sw = sp->sw;
	(void)dev;
	sw_thread_check(sw);
	cnt_add(&sp->st.rx_packets, 1);
	cnt_add(&sp->st.rx_bytes, len);
	if (len < SW_ETH_HLEN)
		return -EINVAL; /* the device counts it */
	uint8_t eth[12];
	if (n && iov[0].len >= sizeof(eth)) {
		memcpy(eth, iov[0].base, sizeof(eth));
	} else {
		struct vio_cursor c;
		vio_cursor_init(&c, iov, n);
		if (vio_cursor_read(&c, eth, sizeof(eth)) != sizeof(eth))
			return -EINVAL;
	}
	/* metadata only when the sender attached some */
	const struct virtio_net_hdr_v1 *h = NULL;
	struct virtio_net_hdr_v1 hc;
	if (hdr && (hdr->flags || hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE)) {
		hc = *hdr;
		hc.num_buffers = 0;
		h = &hc;
	}
	if (!(eth[6] & 1))
		mac_learn(sw, mac_key(eth + 6), sp->idx);
	if (!(eth[0] & 1)) {
		struct sw_mac *e = mac_lookup(sw, mac_key(eth));
		struct sw_port *to = e ? sw->port[e->port] : NULL;
		if (to == sp)
			return 0; /* it lives behind the sender: filtered */
		if (to && to->running) {
			sw_deliver(sw, to, qp, h, iov, n, len);
			return 0;
		}
	}
	cnt_add(&sp->st.flooded, 1);
	unsigned np = __atomic_load_n(&sw->nports, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < np; i++) {
		struct sw_port *to = sw->port[i];
		if (to != sp && to->running)
			sw_deliver(sw, to, qp, h, iov, n, len);
	}
	return 0;
}

static void sw_flush(struct vio_net_switch *sw)
{
	for (unsigned i = 0; i < sw->ndirty; i++) {
		struct sw_port *to = sw->port[sw->dirty[i]];
		uint32_t m = to->pending;
		to->pending = 0;
		while (m) {
			unsigned q = (unsigned)__builtin_ctz(m);
			m &= m - 1;
			vio_net_device_rx_flush(to->dev, q);
		}
	}
	sw->ndirty = 0;
}

static void sw_xmit_flush(struct vio_net_port *p, struct vio_net_device *dev,
			  unsigned qp)
{
	struct vio_net_switch *sw = sw_port_of(p)->sw;
	(void)dev;
	(void)qp;
	sw_flush(sw);
	sw->now = sw_clock();
}

/* ---- pairs and devices ---- */

static int sw_start(struct vio_net_port *p, struct vio_net_device *dev,
		    unsigned qp, struct vio_loop *loop)
{
	struct sw_port *sp = sw_port_of(p);
	struct vio_net_switch *sw = sp->sw;
	(void)loop; /* the switch acts from xmit only */
	if (sp->dev && sp->dev != dev) {
		vio_log_err("switch port %s serves another device already",
			    sp->name);
		return -EBUSY;
	}
	if (qp >= VIO_NET_MAX_PAIRS)
		return -EINVAL;
	/* the first pair to start names the switch thread */
	if (!sw->running_pairs)
		__atomic_store_n(&sw->owner, (uintptr_t)&sw_thread_tag,
				 __ATOMIC_RELAXED);
	sp->dev = dev;
	sp->npairs = vio_net_device_queue_pairs(dev);
	if (sp->npairs == 0)
		sp->npairs = 1;
	if (!(sp->running & (1u << qp))) {
		sp->running |= 1u << qp;
		sw->running_pairs++;
	}
	sw->now = sw_clock();
	return 0;
}

static void sw_stop_pairs(struct sw_port *sp, uint32_t mask)
{
	struct vio_net_switch *sw = sp->sw;
	mask &= sp->running;
	if (!mask)
		return;
	/* flush what was delivered and not pushed yet (the pair is still
	 * there: stop comes before its queues are freed) */
	uint32_t fl = sp->pending & mask;
	while (fl) {
		unsigned q = (unsigned)__builtin_ctz(fl);
		fl &= fl - 1;
		vio_net_device_rx_flush(sp->dev, q);
	}
	if (sp->pending && !(sp->pending &= ~mask)) {
		for (unsigned i = 0; i < sw->ndirty; i++)
			if (sw->dirty[i] == sp->idx) {
				sw->dirty[i] = sw->dirty[--sw->ndirty];
				break;
			}
	}
	sp->running &= ~mask;
	sw->running_pairs -= (unsigned)__builtin_popcount(mask);
	if (!sp->running)
		mac_forget_port(sw, sp->idx);
}

static void sw_stop(struct vio_net_port *p, struct vio_net_device *dev,
		    unsigned qp)
{
	struct sw_port *sp = sw_port_of(p);
	if (sp->dev != dev || qp >= VIO_NET_MAX_PAIRS)
		return;
	sw_stop_pairs(sp, 1u << qp);
}

static void sw_detach(struct vio_net_port *p, struct vio_net_device *dev)
{
	struct sw_port *sp = sw_port_of(p);
	if (sp->dev != dev)
		return;
	/* every pair stopped before (normally): nothing left to do but
	 * forget the device */
	if (sp->running) {
		vio_log_warn("switch port %s: device detached with pairs "
			     "running",
			     sp->name);
		sp->pending = 0;
		sw_stop_pairs(sp, sp->running);
	}
	sp->dev = NULL;
	sp->npairs = 0;
}

static const struct vio_net_port_ops sw_ops = {
    .start = sw_start,
    .stop = sw_stop,
    .xmit = sw_xmit,
    .xmit_flush = sw_xmit_flush,
    .detach = sw_detach,
    /* no free: the switch frees its ports (vio_net_switch_free) */
};

/* ---- the switch ---- */

struct vio_net_switch *vio_net_switch_new(void)
{
	struct vio_net_switch *sw = calloc(1, sizeof(*sw));
	if (!sw)
		return NULL;
	sw->now = sw_clock();
	return sw;
}

struct vio_net_port *vio_net_switch_port(struct vio_net_switch *sw,
					 const char *name)
{
	if (!sw) {
		errno = EINVAL;
		return NULL;
	}
	unsigned np = __atomic_load_n(&sw->nports, __ATOMIC_RELAXED);
	if (np >= SW_MAX_PORTS) {
		vio_log_err("switch: at most %u ports", SW_MAX_PORTS);
		errno = ENOSPC;
		return NULL;
	}
	struct sw_port *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	sp->sw = sw;
	sp->idx = (uint16_t)np;
	snprintf(sp->name, sizeof(sp->name), "%s",
		 name && *name ? name : "port");
	sp->port.ops = &sw_ops;
	sp->port.kind = "switch";
	sp->port.offloads = VIO_NET_PORT_RX_CSUM;
	sp->port.max_pairs = 0;
	sw->port[np] = sp;
	/* the switch thread sees the port once it sees the count */
	__atomic_store_n(&sw->nports, np + 1, __ATOMIC_RELEASE);
	return &sp->port;
}

unsigned vio_net_switch_num_ports(const struct vio_net_switch *sw)
{
	return sw ? __atomic_load_n(&sw->nports, __ATOMIC_ACQUIRE) : 0;
}

int vio_net_switch_stats(const struct vio_net_switch *sw, unsigned port,
			 struct vio_net_switch_stats *out)
{
	if (!sw || !out || port >= vio_net_switch_num_ports(sw))
		return -EINVAL;
	const struct vio_net_switch_stats *s = &sw->port[port]->st;
	out->rx_packets = __atomic_load_n(&s->rx_packets, __ATOMIC_RELAXED);
	out->rx_bytes = __atomic_load_n(&s->rx_bytes, __ATOMIC_RELAXED);
	out->tx_packets = __atomic_load_n(&s->tx_packets, __ATOMIC_RELAXED);
	out->tx_bytes = __atomic_load_n(&s->tx_bytes, __ATOMIC_RELAXED);
	out->flooded = __atomic_load_n(&s->flooded, __ATOMIC_RELAXED);
	out->dropped = __atomic_load_n(&s->dropped, __ATOMIC_RELAXED);
	return 0;
}

void vio_net_switch_free(struct vio_net_switch *sw)
{
	if (!sw)
		return;
	for (unsigned i = 0; i < sw->nports; i++)
		free(sw->port[i]);
	free(sw);
}
