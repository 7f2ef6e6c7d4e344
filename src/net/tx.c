/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device: transmit (device.c says what the device is).
 *
 * net_tx_kick pops a batch of at most NET_TX_BATCH chains (their
 * segments one after the other in tx_iov; one-descriptor chains many at
 * a time with vio_vq_pop_burst), then checks each with net_tx_parse
 * (hdr.c: a bad one is answered with used length 0 and counted in
 * tx_errors) and hands each frame to the port, with the first lines of
 * the frame TX_PREFETCH_AHEAD chains on prefetched (unless the port
 * reads no frame: VIO_NET_PORT_F_LEN_ONLY), then one xmit_flush, one
 * push of the batch and one call.  Bounded by the ring.
 */
#include <errno.h>

#include "net/device_internal.h"

/*
 * Frames are prefetched TX_PREFETCH_AHEAD chains ahead of the one the
 * port is given, not all of a batch as it is popped: a frame is a line
 * the driver's CPU holds, and on an AMD EPYC host 32 such prefetches at
 * once hid nothing (the first read of each frame still stalled: 57% of
 * the device's time in packed loopback), where 4 ahead doubled the
 * rate; on the Intel host before it measured the same either way.
 */
#define TX_PREFETCH_AHEAD 4u

/* A hint that chain k's frame will be read soon: its first line (the
 * header and the Ethernet/IP headers of a small frame) and the next.
 * always_inline: GCC finds a function whose only effect is a prefetch
 * pure, and drops calls to it that it has not inlined. */
static inline __attribute__((always_inline)) void
prefetch_frame(const struct net_pair *p, unsigned k)
{
	const struct vio_chain *c = &p->tx_chain[k];
	if (p->tx_big[k] || !c->nr_out)
		return; /* refused, its segments not kept */
	const char *a = (const char *)c->out[0].base;
	__builtin_prefetch(a, 0, 3);
	if (c->out[0].len > 64)
		__builtin_prefetch(a + 64, 0, 3);
}

/*
 * tx_wait_ns: true when a full batch is there, or a partial one waited
 * long enough, or there is nothing (the kick's loop then re-arms).  While
 * it waits only the probe reads the ring (the descriptor NET_TX_BATCH
 * ahead, or split's available index): the driver finishes its burst on
 * lines nobody else reads.
 */
static bool tx_batch_due(struct net_pair *p, struct vio_vq *vq)
{
	if (vio_vq_avail_at_least(vq, NET_TX_BATCH)) {
		p->tx_wait_since = 0;
		return true;
	}
	uint64_t now = vio_now_ns();
	if (!p->tx_wait_since) {
		if (!vio_vq_more_avail(vq))
			return true; /* empty: the loop below re-arms */
		p->tx_wait_since = now;
		return false;
	}
	if (now - p->tx_wait_since < p->nd->tx_wait_ns)
		return false;
	p->tx_wait_since = 0;
	return true;
}

bool net_tx_kick(struct net_pair *p, struct vio_vq *vq)
{
	struct vio_net_device *nd = p->nd;
	struct vio_net_port *port = nd->port;
	unsigned neg = net_neg(nd);
	unsigned budget = vio_vq_size(vq);
	bool more = false, broken = false;
	/* a port that reads no frame byte gets none fetched */
	bool pf = !(port->flags & VIO_NET_PORT_F_LEN_ONLY);

	vio_vq_disable_notify(vq);
	if (nd->tx_wait_ns && !tx_batch_due(p, vq))
		return true; /* look again on the next turn */
	for (;;) {
		unsigned n = 0, niov = 0;
		bool empty = false;
		uint64_t pk = 0, by = 0, dr = 0, er = 0;
		/* 1. pop a batch, each chain's segments after the last's */
		while (n < NET_TX_BATCH && budget &&
		       niov + p->tx_iov_max <= p->tx_iov_cap) {
			/* one-descriptor chains many at a time, each one
			 * segment; the next chain (or the news that there is
			 * none) from vio_vq_pop */
			unsigned want = NET_TX_BATCH - n;
			if (want > budget)
				want = budget;
			int b = vio_vq_pop_burst(vq, &p->tx_chain[n],
						 p->tx_iov + niov, want);
			if (b < 0) {
				broken = true;
				break;
			}
			for (unsigned k = n; k < n + (unsigned)b; k++) {
				const struct vio_chain *c = &p->tx_chain[k];
				p->tx_used[k].head = c->head;
				p->tx_used[k].len = 0;
				p->tx_big[k] = false;
			}
			n += (unsigned)b;
			niov += (unsigned)b;
			budget -= (unsigned)b;
			if (n == NET_TX_BATCH || !budget ||
			    niov + p->tx_iov_max > p->tx_iov_cap)
				break;
			struct vio_chain *c = &p->tx_chain[n];
			int r =
			    vio_vq_pop(vq, c, p->tx_iov + niov, p->tx_iov_max);
			if (r == 0) {
				empty = true;
				break;
			}
			if (r < 0 && r != -E2BIG) {
				broken = true;
				break;
			}
			budget--;
			p->tx_used[n].head = c->head;
			p->tx_used[n].len = 0;
			p->tx_big[n] = r == -E2BIG;
			n++;
			if (r == -E2BIG)
				continue; /* its segments are not kept */
			niov += (unsigned)c->nr_out + c->nr_in;
		}
		/* 2. check each and hand it to the port, the frames
		 * TX_PREFETCH_AHEAD ahead on their way: the driver wrote them
		 * on its CPU, and misses that overlap cost far less than one
		 * stall per frame */
		for (unsigned k = 0; pf && k < n && k < TX_PREFETCH_AHEAD; k++)
			prefetch_frame(p, k);
		for (unsigned k = 0; k < n; k++) {
			if (pf && k + TX_PREFETCH_AHEAD < n)
				prefetch_frame(p, k + TX_PREFETCH_AHEAD);
			struct virtio_net_hdr_v1 hdr;
			const struct vio_iov *frame;
			unsigned nf;
			size_t len;
			const char *why = "more segments than the device takes";
			if (p->tx_big[k] ||
			    net_tx_parse(&p->tx_chain[k], neg, nd->mtu, &hdr,
					 &frame, &nf, &len, &why) < 0) {
				er++;
				vio_log_limited(&p->rl,
						"%s: transmitq %u: chain "
						"refused: %s",
						nd->name, p->qp, why);
				continue;
			}
			if (port->ops->xmit(port, nd, p->qp, &hdr, frame, nf,
					    len) < 0) {
				dr++;
			} else {
				pk++;
				by += len;
			}
		}
		if (n) {
			if (port->ops->xmit_flush)
				port->ops->xmit_flush(port, nd, p->qp);
			net_stat_add(&p->st.tx_packets, pk);
			net_stat_add(&p->st.tx_bytes, by);
			net_stat_add(&p->st.tx_dropped, dr);
			net_stat_add(&p->st.tx_errors, er);
			if (vio_vq_push_batch(vq, p->tx_used, n) < 0)
				broken = true;
			vio_vq_call(vq);
		}
		if (broken)
			break;
		if (!budget) {
			/* bound reached: re-arm only if nothing waits */
			if (!vio_vq_enable_notify(vq)) {
				vio_vq_disable_notify(vq);
				more = true;
			}
			break;
		}
		if (empty) {
			/* 2.7.10: re-arm, then look once more */
			if (vio_vq_enable_notify(vq))
				break;
			vio_vq_disable_notify(vq);
		}
	}
	return more;
}
