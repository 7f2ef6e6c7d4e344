/* SPDX-License-Identifier: MIT */
/*
 * Internal to the virtio-net driver side (src/net/driver*.c): the state of
 * a bound device and of its queue pairs, shared by two files:
 *
 *   driver.c       the driver object, probe (negotiation, config space,
 *                  buffers, rings, the pair count), remove, the control
 *                  queue, info and counters;
 *   driver_data.c  the data path: send, transmit reclaim, receive
 *                  (reposting, mergeable reassembly, the checks of what
 *                  the device returned) and the wait for an interrupt.
 *
 * Memory.  Everything the device reads or writes is allocated from the
 * vdev's vio_mem at probe: per receiveq one block of nbuf buffers, per
 * transmitq one block of nslots slots, one block for the control queue.
 * Nothing is allocated per packet.  A token on a ring is a buffer or slot
 * number plus one (never NULL); the ring returns only tokens it was given
 * and the driver checks them again against its own table (posted[] /
 * busy[]) before touching the buffer.
 *
 * Threading: everything of pair k is touched only by the thread that
 * calls send/recv/reclaim for k (one at a time); the counters are written
 * by that thread only (relaxed stores) and read from any thread.  The
 * control queue has a lock of its own.  The rest is read-only after probe,
 * but for the link state (an atomic) and the active pair count (atomic).
 */
#ifndef VIO_NET_DRIVER_INTERNAL_H
#define VIO_NET_DRIVER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/log.h"
#include <vio/net.h>

/* An Ethernet header and a VLAN tag on top of the MTU. */
#define NET_ETH_OVERHEAD 18u

/* Single-writer counters: a relaxed load and store (no locked add), read
 * from any thread as a snapshot. */
#define NET_STAT_ADD(field, v)                                                 \
	__atomic_store_n(&(field),                                             \
			 __atomic_load_n(&(field), __ATOMIC_RELAXED) + (v),    \
			 __ATOMIC_RELAXED)

/* Used receive buffers taken off the ring at a time (rx_next). */
#define NET_RX_AHEAD 32u

/*
 * Where a receive buffer starts in its slot: its 12-byte header ends on a
 * 128-byte boundary, so the frame starts a cache line of its own and the
 * line pair the header is in (a core's adjacent-line prefetcher fetches
 * 128-byte pairs) holds nothing else the device writes.  With the header
 * at the slot's start, reading it pulled the frame's first line to the
 * driver's core as well, and the device's next write of that buffer
 * stalled on both (bench/net driver-rx, 64 B).  Transmit slots keep the
 * header at their start: this layout there was slower (driver-tx -27%).
 */
#define NET_RX_PAD (128u - VIO_NET_HDR_LEN)

struct net_rxq {
	struct vio_vq *vq;
	uint8_t *bufs;	   /* [nbuf * stride], in vio_mem */
	uint32_t stride;   /* NET_RX_PAD + buf_size, rounded up to 128 */
	uint32_t buf_size; /* bytes per buffer, the header included */
	unsigned nbuf;
	uint8_t *posted; /* [nbuf]: 1 while the buffer is on the ring */
	/* buffers whose frames the last recv handed out: reposted by the
	 * next recv (the frames point into them until then) */
	unsigned *held;
	unsigned nheld;
	/* mergeable: one frame of several buffers is copied here */
	uint8_t *reasm; /* malloc, reasm_cap bytes */
	uint32_t reasm_cap;
	bool reasm_busy; /* holds a frame the current recv returns */
	/* a used buffer taken off the ring but not processed yet (the head
	 * of a merged frame while reasm is busy, or what a wait returned) */
	bool carry;
	unsigned carry_id;
	uint32_t carry_len;
	/* used buffers taken off the ring a burst at a time, their first
	 * lines prefetched: the device wrote them on its CPU, and misses that
	 * overlap cost far less than one stall per frame (checked, no longer
	 * posted; ahead_pos..ahead_n are next) */
	unsigned ahead_pos, ahead_n;
	uint16_t ahead_id[NET_RX_AHEAD];
	uint32_t ahead_len[NET_RX_AHEAD];
	bool need_kick;
	bool dead; /* broken: recv fails with -EIO for good */
	struct vio_ratelimit rl;
};

/* Receive buffer id (buf_size bytes). */
static inline uint8_t *net_rx_buf(const struct net_rxq *q, unsigned id)
{
	return q->bufs + (size_t)id * q->stride + NET_RX_PAD;
}

struct net_txq {
	struct vio_vq *vq;
	uint8_t *slots;	    /* [nslots * slot_size], in vio_mem */
	uint32_t slot_size; /* header + the largest frame */
	unsigned nslots;
	unsigned *free_ids; /* a stack */
	unsigned nfree;
	/* [nslots]: NET_TX_FREE (on the free stack), NET_TX_RING (on the
	 * ring) or NET_TX_LENT (handed out by vio_net_tx_bufs, not sent) */
	uint8_t *busy;
	/* the slots the last vio_net_tx_bufs handed out ([nslots]; those
	 * sent since are stale entries: their state says so) */
	unsigned *lent;
	unsigned nlent;
	bool dead;
	struct vio_ratelimit rl;
};

enum { NET_TX_FREE = 0, NET_TX_RING = 1, NET_TX_LENT = 2 };

struct net_pair {
	struct vio_net *n;
	unsigned idx;
	struct net_rxq rx;
	struct net_txq tx;
	struct vio_net_drv_stats st;
};

/* The control queue's buffer: one command at a time. */
struct net_ctrl_shm {
	struct virtio_net_ctrl_hdr hdr; /* readable */
	uint8_t data[8];		/* readable: the command's data */
	uint8_t ack;			/* writable */
	uint8_t pad[64 - 2 - 8 - 1];
};
_Static_assert(sizeof(struct net_ctrl_shm) == 64, "one cache line");

struct vio_net {
	struct vio_drvdev *vdev;
	struct vio_mem *mem;
	struct vio_net_info info; /* link_up and pairs: see below */
	unsigned dev_max_pairs;	  /* what the device says (ctrl index) */
	unsigned npairs;	  /* pairs set up */
	unsigned active;	  /* pairs in use (atomic) */
	bool link_up;		  /* atomic */
	bool guest_tso, host_tso;
	uint32_t rx_frame_max, tx_frame_max; /* Ethernet frame bytes */
	struct net_pair *pairs;		     /* [npairs] */
	/* control queue (CTRL_VQ, and its index on the device) */
	struct vio_vq *ctrl;
	struct net_ctrl_shm *ctrl_shm;
	bool ctrl_dead;		   /* a command went unanswered: no more */
	pthread_mutex_t ctrl_lock; /* held for a whole command */
	pthread_mutex_t info_lock; /* info.mac (set_mac, get_info) */
	struct vio_ratelimit rl;
};

/* ---- driver_data.c ---- */

/* Put buffer id of q on the ring (no kick).  0 or vio_vq_add's error. */
int net_rx_post(struct net_rxq *q, unsigned id);
/* Every buffer of q to the ring at probe, before DRIVER_OK. */
int net_rx_fill(struct net_rxq *q);

#endif
