/* SPDX-License-Identifier: MIT */
/*
 * virtio-net, the driver side: the data path (VIRTIO 1.2 5.1.6).
 *
 * Transmit: each frame goes out with its 12-byte header from a
 * preallocated slot (one descriptor, readable), one kick per call (the
 * ring decides whether the device wants it: EVENT_IDX or flags).  A frame
 * in the caller's memory is copied into a free slot; a frame the caller
 * wrote into a slot vio_net_tx_bufs lent it is sent in place (only the
 * header is written: the device's reads of the frame find it where the
 * caller left it, no second copy pulled through this core's cache).
 * Slot states (busy[]): free (on the free stack), lent, on the ring.
 * Lent slots leave the free stack when lent, so copies never take them;
 * the next tx_bufs takes back those not sent (its list of lent slots
 * has stale entries for the ones sent: their state tells), so a slot is
 * never lost, and sending one, in any order, is O(1).
 *
 * Slots come back through vio_net_tx_reclaim, which send and tx_bufs run
 * only when short of free slots (as DPDK's virtio driver does): on a
 * packed ring, polling for used entries on every call reads the
 * descriptor the device writes next, and that cache line moving between
 * the two sides slowed DPDK's vhost (bench/net driver-tx, packed).  Send
 * reclaims at most once per call, when a copied frame finds no free
 * slot; a lent slot always has its ring entry (slots <= ring entries).
 *
 * Receive: every buffer is on the ring from probe on.  A frame handed to
 * the caller points into its buffer (or, merged from several buffers
 * with MRG_RXBUF, into the pair's reassembly buffer): its buffers go back
 * to the ring at the start of the next recv, in one batch with one kick.
 * Buffers of frames dropped or copied go back at once.
 *
 * What the device returns is checked against what was posted: a token
 * that is not a posted buffer or a busy slot breaks the queue (the ring
 * refuses unknown ids and lengths beyond the buffer first); a header
 * shorter than 12 bytes, num_buffers 0 or above the buffers posted,
 * fewer buffers used than num_buffers says, a merged frame larger than
 * the largest frame the negotiated features allow: the frame is dropped
 * and counted in rx_errors, logged (rate-limited), and the queue goes
 * on.  Nothing is read beyond the length the device reported, nor beyond
 * the buffer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_net.h>

#include "driver_internal.h"

static struct net_pair *get_pair(struct vio_net *n, unsigned qp)
{
	if (!n || qp >= __atomic_load_n(&n->active, __ATOMIC_RELAXED) ||
	    qp >= n->npairs)
		return NULL;
	return &n->pairs[qp];
}

static void *id_token(unsigned id)
{
	return (void *)(uintptr_t)(id + 1u);
}

/* ---- receive ---- */

int net_rx_post(struct net_rxq *q, unsigned id)
{
	struct vio_sg sg = {.buf = net_rx_buf(q, id), .len = q->buf_size};
	int r = vio_vq_add(q->vq, &sg, 0, 1, id_token(id));
	if (r == 0) {
		q->posted[id] = 1;
		q->need_kick = true;
	}
	return r;
}

int net_rx_fill(struct net_rxq *q)
{
	for (unsigned i = 0; i < q->nbuf; i++) {
		int r = net_rx_post(q, i);
		if (r < 0)
			return r;
	}
	q->need_kick = false; /* probe kicks after DRIVER_OK */
	return 0;
}

/* The queue is broken: counted once in rx_errors, recv fails for good. */
static void rx_fail(struct net_pair *p, const char *why)
{
	struct net_rxq *q = &p->rx;
	if (!q->dead) {
		vio_log_limited(&q->rl, "net driver: receiveq %u: %s", p->idx,
				why);
		NET_STAT_ADD(p->st.rx_errors, 1);
	}
	q->dead = true;
}

/* Buffer id back to the ring now (dropped or copied out). */
static void rx_repost(struct net_pair *p, unsigned id)
{
	struct net_rxq *q = &p->rx;
	if (q->dead)
		return;
	int r = net_rx_post(q, id);
	if (r == -EIO)
		rx_fail(p, vio_vq_error(q->vq));
	else if (r < 0) /* cannot happen: its entry came back with it */
		rx_fail(p, strerror(-r));
}

static void rx_kick(struct net_rxq *q)
{
	if (q->need_kick && !q->dead)
		vio_vq_kick(q->vq);
	q->need_kick = false;
}

/* The buffers the caller had since the last recv go back, one kick. */
static void rx_refill(struct net_pair *p)
{
	struct net_rxq *q = &p->rx;
	for (unsigned i = 0; i < q->nheld && !q->dead; i++)
		rx_repost(p, q->held[i]);
	q->nheld = 0;
	rx_kick(q);
}

/* A used token and length checked against what is posted (false on a
 * violation: the queue is broken); the buffer is no longer posted. */
static bool rx_check(struct net_pair *p, void *tok, uint32_t len, unsigned *id)
{
	struct net_rxq *q = &p->rx;
	uintptr_t v = (uintptr_t)tok - 1u;
	if (v >= q->nbuf || !q->posted[v]) {
		vio_vq_set_broken(q->vq, "used token %p is not a posted buffer",
				  tok);
		rx_fail(p, vio_vq_error(q->vq));
		return false;
	}
	if (len > q->buf_size) { /* the ring refuses it first */
		vio_vq_set_broken(q->vq, "used length %u of a %u-byte buffer",
				  len, q->buf_size);
		rx_fail(p, vio_vq_error(q->vq));
		return false;
	}
	q->posted[v] = 0;
	*id = (unsigned)v;
	return true;
}

/* One used buffer off the ring, checked (false on a violation, or when
 * nothing is used). */
static bool rx_take(struct net_pair *p, unsigned *id, uint32_t *len)
{
	struct net_rxq *q = &p->rx;
	void *tok = vio_vq_get(q->vq, len);
	if (!tok) {
		if (vio_vq_broken(q->vq))
			rx_fail(p, vio_vq_error(q->vq));
		return false;
	}
	return rx_check(p, tok, *len, id);
}

/*
 * The next used buffer: the carried one, else the next taken ahead (a
 * burst taken off the ring when none is left, each buffer's first line
 * prefetched as it comes).
 */
static bool rx_next(struct net_pair *p, unsigned *id, uint32_t *len)
{
	struct net_rxq *q = &p->rx;
	if (q->carry) {
		q->carry = false;
		*id = q->carry_id;
		*len = q->carry_len;
		return true;
	}
	/* taken before a violation broke the queue: still delivered */
	if (q->ahead_pos == q->ahead_n) {
		if (q->dead)
			return false;
		unsigned n = 0;
		while (n < NET_RX_AHEAD) {
			unsigned i;
			uint32_t l;
			if (!rx_take(p, &i, &l))
				break;
			__builtin_prefetch(net_rx_buf(q, i), 0, 3);
			q->ahead_id[n] = (uint16_t)i;
			q->ahead_len[n++] = l;
		}
		q->ahead_pos = 0;
		q->ahead_n = n;
		if (!n)
			return false;
	}
	*id = q->ahead_id[q->ahead_pos];
	*len = q->ahead_len[q->ahead_pos++];
	return true;
}

static void rx_drop(struct net_pair *p, unsigned id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rx_drop(struct net_pair *p, unsigned id, const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vio_log_limited(&p->rx.rl, "net driver: receiveq %u: %s: dropped",
			p->idx, why);
	NET_STAT_ADD(p->st.rx_errors, 1);
	rx_repost(p, id);
}

/*
 * The rest of a merged frame: nb - 1 more buffers after the head (whose
 * data is already in reasm[0..have)).  Returns the frame's length, or 0
 * (dropped and counted: every buffer taken goes back).
 */
static uint32_t rx_merge(struct net_pair *p, unsigned nb, uint32_t have,
			 bool bad)
{
	struct net_rxq *q = &p->rx;
	for (unsigned k = 1; k < nb; k++) {
		unsigned id;
		uint32_t len;
		if (!rx_next(p, &id, &len)) {
			if (q->dead)
				return 0;
			vio_log_limited(&q->rl,
					"net driver: receiveq %u: %u of %u "
					"buffers of a frame missing: dropped",
					p->idx, nb - k, nb);
			NET_STAT_ADD(p->st.rx_errors, 1);
			return 0;
		}
		if (!bad && len > q->reasm_cap - have) {
			vio_log_limited(&q->rl,
					"net driver: receiveq %u: a merged "
					"frame over %u bytes: dropped",
					p->idx, q->reasm_cap);
			NET_STAT_ADD(p->st.rx_errors, 1);
			bad = true;
		}
		if (!bad) {
			memcpy(q->reasm + have, net_rx_buf(q, id), len);
			have += len;
		}
		rx_repost(p, id);
	}
	return bad ? 0 : have;
}

/*
 * One used buffer (the head of a frame): fill *pkt and return 1, or 0
 * (dropped), or -EAGAIN (a merged frame while reasm holds one this call
 * returns: carried to the next recv).
 */
static int rx_one(struct net_pair *p, unsigned id, uint32_t len,
		  struct vio_net_pkt *pkt)
{
	struct net_rxq *q = &p->rx;
	uint8_t *buf = net_rx_buf(q, id);
	if (len <= VIO_NET_HDR_LEN) {
		rx_drop(p, id,
			"used length %u: no frame after the %u-byte "
			"header",
			len, VIO_NET_HDR_LEN);
		return 0;
	}
	struct virtio_net_hdr_v1 hdr;
	memcpy(&hdr, buf, sizeof(hdr)); /* read once */
	unsigned nb = le16toh(hdr.num_buffers);
	if (!q->reasm || nb == 1) { /* without MRG_RXBUF: one buffer */
		pkt->hdr = hdr;
		pkt->data = buf + VIO_NET_HDR_LEN;
		pkt->len = len - VIO_NET_HDR_LEN;
		q->held[q->nheld++] = id;
		return 1;
	}
	if (nb == 0 || nb > q->nbuf) {
		rx_drop(p, id, "num_buffers %u (%u buffers posted)", nb,
			q->nbuf);
		return 0;
	}
	if (q->reasm_busy) {
		q->carry = true;
		q->carry_id = id;
		q->carry_len = len;
		return -EAGAIN;
	}
	/* the head alone may not exceed the largest frame (buffers larger
	 * than that: rx_buf_size above the MTU) */
	uint32_t have = len - VIO_NET_HDR_LEN;
	bool bad = have > q->reasm_cap;
	if (bad) {
		vio_log_limited(&q->rl,
				"net driver: receiveq %u: a merged frame over "
				"%u bytes: dropped",
				p->idx, q->reasm_cap);
		NET_STAT_ADD(p->st.rx_errors, 1);
	} else {
		memcpy(q->reasm, buf + VIO_NET_HDR_LEN, have);
	}
	rx_repost(p, id);
	uint32_t flen = rx_merge(p, nb, have, bad);
	if (!flen)
		return 0;
	q->reasm_busy = true;
	pkt->hdr = hdr;
	pkt->data = q->reasm;
	pkt->len = flen;
	return 1;
}

/* Frames ready now, up to max. */
static unsigned rx_harvest(struct net_pair *p, struct vio_net_pkt *pkts,
			   unsigned max)
{
	unsigned got = 0;
	uint64_t bytes = 0;
	while (got < max) {
		unsigned id;
		uint32_t len;
		if (!rx_next(p, &id, &len))
			break;
		int r = rx_one(p, id, len, &pkts[got]);
		if (r == -EAGAIN)
			break;
		if (r == 1)
			bytes += pkts[got++].len;
	}
	if (got) {
		NET_STAT_ADD(p->st.rx_packets, got);
		NET_STAT_ADD(p->st.rx_bytes, bytes);
	}
	rx_kick(&p->rx); /* what was dropped or copied went back */
	return got;
}

int vio_net_recv(struct vio_net *n, unsigned qp, struct vio_net_pkt *pkts,
		 unsigned max, int timeout_ms)
{
	struct net_pair *p = get_pair(n, qp);
	if (!p)
		return -ENXIO;
	if (max && !pkts)
		return -EINVAL;
	struct net_rxq *q = &p->rx;
	rx_refill(p);
	q->reasm_busy = false;
	if (!max)
		return q->dead ? -EIO : 0;

	uint64_t deadline = 0;
	if (timeout_ms > 0)
		deadline = vio_now_ns() + (uint64_t)timeout_ms * 1000000u;
	unsigned got;
	for (;;) {
		got = rx_harvest(p, pkts, max);
		if (got || q->dead || timeout_ms == 0 || q->carry)
			break;
		int ms = -1;
		if (timeout_ms > 0) {
			uint64_t now = vio_now_ns();
			if (now >= deadline)
				break;
			ms = (int)((deadline - now + 999999u) / 1000000u);
		}
		uint32_t len = 0;
		errno = 0;
		void *tok = vio_drvdev_wait_used(n->vdev, q->vq, &len, ms);
		int e = errno;
		/* awake: no interrupts while we are busy anyway (a hint) */
		vio_vq_disable_cb(q->vq);
		if (tok) {
			if (!rx_check(p, tok, len, &q->carry_id))
				break;
			q->carry = true;
			q->carry_len = len;
			continue;
		}
		if (e == ETIMEDOUT)
			break;
		if (vio_vq_broken(q->vq))
			rx_fail(p, vio_vq_error(q->vq));
		else if (e == EIO)
			rx_fail(p, "the device needs a reset");
		else
			rx_fail(p, strerror(e ? e : EIO));
	}
	return !got && q->dead ? -EIO : (int)got;
}

/* ---- transmit ---- */

static void tx_fail(struct net_pair *p, const char *why)
{
	struct net_txq *q = &p->tx;
	if (!q->dead)
		vio_log_limited(&q->rl, "net driver: transmitq %u: %s", p->idx,
				why);
	q->dead = true;
}

static int tx_reclaim(struct net_pair *p)
{
	struct net_txq *q = &p->tx;
	void *tok;
	uint32_t len;
	int n = 0;
	if (q->dead)
		return -EIO;
	while ((tok = vio_vq_get(q->vq, &len))) {
		uintptr_t v = (uintptr_t)tok - 1u;
		if (v >= q->nslots || q->busy[v] != NET_TX_RING) {
			vio_vq_set_broken(
			    q->vq, "used token %p is not a busy slot", tok);
			break;
		}
		q->busy[v] = NET_TX_FREE;
		q->free_ids[q->nfree++] = (unsigned)v;
		n++;
	}
	if (vio_vq_broken(q->vq)) {
		tx_fail(p, vio_vq_error(q->vq));
		return -EIO;
	}
	return n;
}

int vio_net_tx_reclaim(struct vio_net *n, unsigned qp)
{
	struct net_pair *p = get_pair(n, qp);
	if (!p)
		return -ENXIO;
	return tx_reclaim(p);
}

/*
 * A frame and its offload metadata against the negotiated features
 * (5.1.6.2.1): flags 0 or NEEDS_CSUM (with CSUM), the checksum field
 * inside the frame; a GSO type the device took (HOST_TSO4/6; UFO and ECN
 * are never negotiated), with NEEDS_CSUM and an MSS; a frame without GSO
 * no longer than the MTU allows, a GSO frame up to its slot.
 */
static bool tx_frame_ok(const struct vio_net *n, const struct vio_net_pkt *k)
{
	const struct virtio_net_hdr_v1 *h = &k->hdr;
	if (!k->data || !k->len || k->len > n->tx_frame_max)
		return false;
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false;
	if (h->flags) {
		uint32_t end = (uint32_t)le16toh(h->csum_start) +
			       le16toh(h->csum_offset) + 2u;
		if (!n->info.csum || end > k->len)
			return false;
	}
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return k->len <= (uint32_t)n->info.mtu + NET_ETH_OVERHEAD;
	case VIRTIO_NET_HDR_GSO_TCPV4:
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!h->flags || !h->gso_size)
			return false;
		return vio_drvdev_has_feature(
		    n->vdev, h->gso_type == VIRTIO_NET_HDR_GSO_TCPV4
				 ? VIRTIO_NET_F_HOST_TSO4
				 : VIRTIO_NET_F_HOST_TSO6);
	default:
		return false;
	}
}

/*
 * Slots lent by the last vio_net_tx_bufs and not sent since go back to
 * the free stack, the first lent on top (lent first again, warm in the
 * cache, unless a reclaim pushes others on top).
 */
static void tx_take_back(struct net_txq *q)
{
	for (unsigned i = q->nlent; i-- > 0;) {
		unsigned id = q->lent[i];
		if (q->busy[id] != NET_TX_LENT)
			continue; /* sent since */
		q->busy[id] = NET_TX_FREE;
		q->free_ids[q->nfree++] = id;
	}
	q->nlent = 0;
}

int vio_net_tx_bufs(struct vio_net *n, unsigned qp, void **bufs, unsigned max,
		    uint32_t *room)
{
	struct net_pair *pr = get_pair(n, qp);
	if (!pr)
		return -ENXIO;
	if (max && !bufs)
		return -EINVAL;
	struct net_txq *q = &pr->tx;
	if (q->dead)
		return -EIO;
	tx_take_back(q);
	if (room)
		*room = n->tx_frame_max;
	/* reclaim only when short of slots (see the top of the file) */
	if (q->nfree < max && tx_reclaim(pr) < 0)
		return -EIO;
	unsigned k = 0;
	for (; k < max && q->nfree; k++) {
		unsigned id = q->free_ids[--q->nfree];
		q->busy[id] = NET_TX_LENT;
		q->lent[q->nlent++] = id;
		bufs[k] =
		    q->slots + (size_t)id * q->slot_size + VIO_NET_HDR_LEN;
	}
	return (int)k;
}

/*
 * The slot a frame is sent from: a lent one in place (*inplace), else a
 * free one to copy into (reclaiming once per call when there is none:
 * *reclaimed).  A pointer into the slots that is not the frame of a lent
 * slot is refused (-EINVAL); no free slot: -ENOSPC; broken: -EIO.
 */
static int tx_slot(struct net_pair *pr, const struct vio_net_pkt *k,
		   bool *inplace, bool *reclaimed)
{
	struct net_txq *q = &pr->tx;
	uintptr_t off = (uintptr_t)k->data - (uintptr_t)q->slots;
	if (off < (uintptr_t)q->nslots * q->slot_size) {
		/* the slots fit in 32 bits (QUEUE_MEM_BUDGET): a 32-bit
		 * division, per frame */
		uint32_t o = (uint32_t)off, id = o / q->slot_size;
		if (o - id * q->slot_size != VIO_NET_HDR_LEN ||
		    q->busy[id] != NET_TX_LENT)
			return -EINVAL;
		*inplace = true;
		return (int)id;
	}
	*inplace = false;
	if (!q->nfree && !*reclaimed) {
		*reclaimed = true;
		if (tx_reclaim(pr) < 0)
			return -EIO;
	}
	if (!q->nfree)
		return -ENOSPC;
	return (int)q->free_ids[q->nfree - 1];
}

int vio_net_send(struct vio_net *n, unsigned qp, const struct vio_net_pkt *p,
		 unsigned count)
{
	struct net_pair *pr = get_pair(n, qp);
	if (!pr)
		return -ENXIO;
	if (count && !p)
		return -EINVAL;
	struct net_txq *q = &pr->tx;
	if (q->dead)
		return -EIO;
	unsigned done = 0;
	uint64_t bytes = 0;
	int err = 0;
	bool reclaimed = false;
	for (; done < count; done++) {
		const struct vio_net_pkt *k = &p[done];
		if (!tx_frame_ok(n, k)) {
			err = -EINVAL;
			break;
		}
		bool inplace;
		int r = tx_slot(pr, k, &inplace, &reclaimed);
		if (r == -ENOSPC)
			break;
		if (r < 0) {
			err = r;
			break;
		}
		unsigned id = (unsigned)r;
		uint8_t *s = q->slots + (size_t)id * q->slot_size;
		struct virtio_net_hdr_v1 h = k->hdr;
		h.num_buffers = 0; /* 5.1.6.2: the driver sets it to 0 */
		memcpy(s, &h, sizeof(h));
		if (!inplace)
			memcpy(s + VIO_NET_HDR_LEN, k->data, k->len);
		struct vio_sg sg = {.buf = s, .len = VIO_NET_HDR_LEN + k->len};
		r = vio_vq_add(q->vq, &sg, 1, 0, id_token(id));
		if (r == -ENOSPC)
			break;
		if (r < 0) {
			tx_fail(pr,
				r == -EIO ? vio_vq_error(q->vq) : strerror(-r));
			err = -EIO;
			break;
		}
		if (!inplace)
			q->nfree--;
		q->busy[id] = NET_TX_RING;
		bytes += k->len;
	}
	if (done) {
		vio_vq_kick(q->vq);
		NET_STAT_ADD(pr->st.tx_packets, done);
		NET_STAT_ADD(pr->st.tx_bytes, bytes);
		return (int)done;
	}
	if (err)
		return err;
	if (count)
		NET_STAT_ADD(pr->st.tx_full, 1);
	return 0;
}
