/* SPDX-License-Identifier: MIT */
/*
 * device_internal.h - the virtio-net device's state, shared by device.c
 * (setup, config, queues, control queue), tx.c and rx.c (the data path) and
 * state.c (device state transfer).  Private to those files.
 */
#ifndef VIO_NET_DEVICE_INTERNAL_H
#define VIO_NET_DEVICE_INTERNAL_H

#include <pthread.h>

#include "net/net_internal.h"
#include "util/log.h"

/* Transmit chains per batch (one xmit_flush, one push, one call). */
#define NET_TX_BATCH 64u

/* Receive chains popped at once when the pair runs out of held ones.
 * Their first lines are prefetched for writing NET_RX_PREFETCH chains
 * ahead of use: the driver last touched them on its CPU, and misses that
 * overlap cost far less than one stall per frame. */
#define NET_RX_BURST 32u
/* Held chains prefetched ahead of the one a frame takes. */
#define NET_RX_PREFETCH 8u

/* One receive chain the pair holds (popped, not yet used). */
struct net_res {
	uint32_t head;
	uint32_t in_len;
	unsigned iov_off, nr_in; /* its segments in pair.rx_iov */
};

/* Counters: one writer (the pair's thread), relaxed. */
struct net_pair_stats {
	uint64_t rx_packets, rx_bytes, rx_no_buffer, rx_dropped, rx_filtered;
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_errors;
};

/* A queue pair.  Touched only on the pair's thread (both of its queues
 * run there), except the counters (read anywhere). */
struct net_pair {
	struct vio_net_device *nd;
	unsigned qp;
	/* queue state: [0] receiveq, [1] transmitq */
	struct vio_vq *vq[2];
	bool started[2];   /* running (queue_start, or a first kick) */
	bool explicit_[2]; /* queue_start ran (else started by a kick) */
	struct vio_loop *loop;
	bool port_started;
	bool rx_armed; /* receiveq notifications on (we ran dry) */

	/* transmit */
	/* a batch's chains, their segments one after the other in tx_iov
	 * (tx_iov_cap: room for one chain of tx_iov_max and two segments
	 * for each other chain of a batch; a batch ends early when the
	 * next chain might not fit) */
	struct vio_iov *tx_iov;
	unsigned tx_iov_max, tx_iov_cap;
	struct vio_chain tx_chain[NET_TX_BATCH];
	bool tx_big[NET_TX_BATCH]; /* popped with -E2BIG */
	struct vio_used tx_used[NET_TX_BATCH];
	uint64_t tx_wait_since; /* tx_wait_ns: first saw a partial batch */

	/*
	 * receive: the chains the pair holds, res[rfirst..nres), in ring
	 * order (popped ahead in bursts; handed back newest first at a stop
	 * or at the end of a loop-less kick), their segments one after the
	 * other in rx_iov[res[rfirst].iov_off..rx_niov).  The current
	 * frame's reservation is the first nresv of them.
	 */
	struct vio_iov *rx_iov;
	unsigned rx_iov_cap, rx_niov;
	struct net_res *res;
	unsigned rfirst, nres, res_cap;
	unsigned nresv;
	unsigned rpf;	/* res[..rpf) were prefetched */
	bool reserving; /* rx_reserve handed out segments */
	/* used entries not pushed yet (rx_flush) */
	struct vio_used *rx_used;
	unsigned nrx_used, rx_used_cap;

	/* the receive filter, a snapshot of the device's (by generation) */
	uint32_t fgen;
	struct net_rx_filter filter;

	struct net_pair_stats st;
	struct vio_ratelimit rl;
};

struct vio_net_device {
	struct vio_device *dev;
	struct vio_net_port *port;
	char name[32];
	uint8_t mac[VIO_NET_ETH_ALEN]; /* configured (restored at reset) */
	uint16_t mtu;
	uint16_t qsize;
	unsigned max_pairs;
	uint32_t tx_wait_ns; /* vio_net_device_opts.tx_wait_ns */

	/* negotiated (NET_NEG_*), set at FEATURES_OK; atomics */
	unsigned neg;
	unsigned ctrl_idx;    /* control queue index, or UINT32_MAX */
	unsigned neg_pairs;   /* pairs the driver may set up */
	unsigned pairs_inuse; /* MQ_VQ_PAIRS_SET (atomic) */

	/* the receive filter; the pairs copy it when fgen moves */
	pthread_mutex_t filter_lock;
	struct net_rx_filter filter;
	uint32_t fgen; /* atomic */

	/* config status field (read-modify-write under status_lock) */
	pthread_mutex_t status_lock;

	/* control queue */
	struct vio_iov *ctrl_iov;
	unsigned ctrl_iov_max;
	uint64_t ctrl_ok, ctrl_err; /* one writer */
	struct vio_ratelimit rl;

	struct net_pair pair[VIO_NET_MAX_PAIRS];
};

#define net_likely(x) __builtin_expect(!!(x), 1)
#define net_unlikely(x) __builtin_expect(!!(x), 0)

static inline void net_stat_add(uint64_t *p, uint64_t v)
{
	if (v)
		__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v,
				 __ATOMIC_RELAXED);
}

static inline unsigned net_neg(const struct vio_net_device *nd)
{
	return __atomic_load_n(&nd->neg, __ATOMIC_RELAXED);
}

/* Drop the receive state of a vq that is gone (nothing handed back). */
static inline void net_rx_forget(struct net_pair *p)
{
	p->rfirst = p->nres = p->nresv = p->rpf = 0;
	p->rx_niov = 0;
	p->reserving = false;
	p->nrx_used = 0;
}

/* tx.c */
bool net_tx_kick(struct net_pair *p, struct vio_vq *vq);
/* rx.c */
/* Hand back every chain the pair holds (newest first). */
void net_rx_unreserve(struct net_pair *p);
/* Push the pending used entries and call. */
void net_rx_push(struct net_pair *p);

#endif
