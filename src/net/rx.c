/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device: receive (device.c says what the device is).
 *
 * The receive buffers stay in the ring until frames come; then
 * the pair pops them in bursts (NET_RX_BURST chains) and holds them, in
 * ring order, their first lines prefetched for writing a few frames
 * ahead (the driver last touched them on its CPU: misses that overlap
 * cost far less than one stall per frame).  A frame
 * reserves as many held chains as it needs (one without MRG_RXBUF); what
 * it does not use stays held for the next frame, as if handed back and
 * popped again.  Held chains go back to the ring newest first
 * (vio_vq_unpop) when the queue stops, and at the end of a kick without a
 * loop, so the ring is as if they had never been popped.  Committed
 * chains wait in rx_used until rx_flush.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <linux/virtio_config.h>

#include "net/device_internal.h"

/* Ask for the cache line at a for writing: a hint, it never faults. */
static inline void prefetch_w(const void *a)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)a));
#else
	__builtin_prefetch(a, 1, 3);
#endif
}

/* The lines of a receive buffer's first segment that the header and a
 * minimal frame take (76 bytes: two lines, or three): for writing, but the
 * header's own line (when no frame byte shares it) for reading, as
 * hdr_put mostly only reads it. */
static inline void prefetch_buf(const struct vio_iov *s)
{
	const uint32_t span = VIO_NET_HDR_LEN + 64;
	uintptr_t a = (uintptr_t)s->base;
	uintptr_t end = a + (s->len < span ? s->len : span);
	uintptr_t hline = a & ~(uintptr_t)63;
	a = (a + VIO_NET_HDR_LEN) & ~(uintptr_t)63;
	if (a != hline)
		__builtin_prefetch((const void *)hline, 0, 3);
	for (; a < end; a += 64)
		prefetch_w((const void *)a);
}

/*
 * Store n bytes of a receive buffer's header only if they differ from
 * what the buffer holds.  A driver that recycles its buffers (DPDK's
 * mbufs: the header alone in the line before the frame) finds the same
 * header there each time; a line the device only reads stays cached on
 * both CPUs, where a store would take it from the driver's cache and the
 * driver's read of the header would bring it back: one line crossing
 * CPUs twice per frame less.
 */
static inline void hdr_put(void *d, const void *h, size_t n)
{
	if (memcmp(d, h, n) != 0)
		memcpy(d, h, n);
}

/*
 * The receiveq of pair p, or NULL (not running, or a pair the driver
 * does not use).  A pair whose queues were started by kicks (inproc, no
 * queue_start) follows the model's vq: the transport may have replaced
 * it between kicks (nothing is held across them then).
 */
static struct vio_vq *rx_vq(struct net_pair *p)
{
	struct vio_net_device *nd = p->nd;
	if (p->qp >= __atomic_load_n(&nd->pairs_inuse, __ATOMIC_ACQUIRE))
		return NULL;
	if (net_likely(p->explicit_[0] || p->explicit_[1]))
		return p->started[0] ? p->vq[0] : NULL;
	if (!p->port_started)
		return NULL;
	struct vio_vq *cur = vio_device_queue(nd->dev, 2 * p->qp);
	if (cur != p->vq[0]) {
		net_rx_forget(p);
		p->vq[0] = cur;
		p->started[0] = cur != NULL;
		p->rx_armed = true;
	}
	if (!cur ||
	    !(vio_device_get_status(nd->dev) & VIRTIO_CONFIG_S_DRIVER_OK))
		return NULL;
	return cur;
}

void net_rx_push(struct net_pair *p)
{
	unsigned n = p->nrx_used;
	p->nrx_used = 0;
	if (!n || !p->vq[0])
		return;
	if (vio_vq_push_batch(p->vq[0], p->rx_used, n) == 0)
		vio_vq_call(p->vq[0]);
}

void net_rx_unreserve(struct net_pair *p)
{
	for (unsigned i = p->nres; i-- > p->rfirst;)
		if (p->vq[0] && vio_vq_unpop(p->vq[0], p->res[i].head) < 0)
			vio_log_limited(&p->rl,
					"%s: receiveq %u: cannot hand back a "
					"buffer (%s)",
					p->nd->name, p->qp,
					vio_vq_error(p->vq[0]));
	p->rfirst = p->nres = p->nresv = p->rpf = 0;
	p->rx_niov = 0;
	p->reserving = false;
}

/* End the current reservation; its chains stay held for the next frame
 * (as if handed back to the ring and popped again). */
static inline void rx_release(struct net_pair *p)
{
	p->nresv = 0;
	p->reserving = false;
}

static inline void queue_used(struct net_pair *p, uint32_t head, uint32_t len)
{
	if (net_unlikely(p->nrx_used == p->rx_used_cap))
		net_rx_push(p);
	p->rx_used[p->nrx_used].head = head;
	p->rx_used[p->nrx_used].len = len;
	p->nrx_used++;
}

/* Move the held chains (and their segments) to the front of res and
 * rx_iov.  Not while a reservation is handed out. */
static void rx_compact(struct net_pair *p)
{
	unsigned n = p->nres - p->rfirst;
	if (!n) {
		p->rfirst = p->nres = p->rx_niov = p->rpf = 0;
		return;
	}
	if (!p->rfirst)
		return;
	p->rpf = p->rpf > p->rfirst ? p->rpf - p->rfirst : 0;
	unsigned off = p->res[p->rfirst].iov_off;
	memmove(p->rx_iov, p->rx_iov + off,
		(p->rx_niov - off) * sizeof(*p->rx_iov));
	p->rx_niov -= off;
	memmove(p->res, p->res + p->rfirst, n * sizeof(*p->res));
	for (unsigned i = 0; i < n; i++)
		p->res[i].iov_off -= off;
	p->rfirst = 0;
	p->nres = n;
}

/* A driver error with no chain held before it: back used, length 0. */
static void rx_bad(struct net_pair *p, uint32_t head, bool big)
{
	vio_log_limited(&p->rl,
			"%s: receiveq %u: driver error: %s buffer: returned "
			"unused",
			p->nd->name, p->qp,
			big ? "unusably fragmented" : "header-less");
	queue_used(p, head, 0);
}

/*
 * Pop up to NET_RX_BURST more chains behind the held ones (after
 * rx_compact).  Returns how
 * many (0: the ring is dry, notifications re-armed; or no room), or -EIO
 * (broken).  A buffer smaller than the header, or that needs more
 * segments than the device takes, is a driver error: returned used with
 * length 0 when no chain is held before it, else handed back to the ring
 * (it is the latest popped) for when none is.
 */
static int rx_pop_burst(struct net_pair *p, struct vio_vq *vq)
{
	unsigned got = 0;
	while (got < NET_RX_BURST && p->nres < p->res_cap) {
		struct vio_chain c;
		unsigned room = p->rx_iov_cap - p->rx_niov;
		if (!room)
			break;
		/* one-descriptor chains many at a time (one segment each,
		 * in place in rx_iov) */
		unsigned want = NET_RX_BURST - got;
		if (want > p->res_cap - p->nres)
			want = p->res_cap - p->nres;
		if (want > room)
			want = room;
		struct vio_chain cb[NET_RX_BURST];
		int b = vio_vq_pop_burst(vq, cb, p->rx_iov + p->rx_niov, want);
		if (net_unlikely(b < 0))
			return -EIO;
		for (int k = 0; k < b; k++) {
			if (net_unlikely(cb[k].in_len < VIO_NET_HDR_LEN)) {
				/* as below for this one, once the ones popped
				 * after it are back in the ring */
				for (int j = b - 1; j > k; j--)
					(void)vio_vq_unpop(vq, cb[j].head);
				if (p->nres > p->rfirst) {
					(void)vio_vq_unpop(vq, cb[k].head);
					return (int)got;
				}
				rx_bad(p, cb[k].head, false);
				b = -1; /* pop on */
				break;
			}
			struct net_res *res = &p->res[p->nres++];
			res->head = cb[k].head;
			res->in_len = cb[k].in_len;
			res->iov_off = p->rx_niov++;
			res->nr_in = 1;
			got++;
		}
		if (b == (int)want || b < 0)
			continue;
		room = p->rx_iov_cap - p->rx_niov;
		if (got == NET_RX_BURST || p->nres == p->res_cap || !room)
			break;
		int r = vio_vq_pop(vq, &c, p->rx_iov + p->rx_niov, room);
		if (r == 0) {
			if (!p->rx_armed) {
				/* dry: the next buffers the driver adds
				 * kick us (rx_ready) */
				p->rx_armed = true;
				if (!vio_vq_enable_notify(vq))
					continue; /* more came meanwhile */
			}
			break;
		}
		if (net_unlikely(r < 0 && r != -E2BIG))
			return -EIO;
		if (net_unlikely(r == -E2BIG || c.in_len < VIO_NET_HDR_LEN)) {
			if (p->nres > p->rfirst) {
				/* the next frame starts with it */
				(void)vio_vq_unpop(vq, c.head);
				break;
			}
			rx_bad(p, c.head, r == -E2BIG);
			continue;
		}
		if (c.nr_out) /* only the writable part is ours */
			memmove(p->rx_iov + p->rx_niov, c.in,
				c.nr_in * sizeof(*c.in));
		struct net_res *res = &p->res[p->nres++];
		res->head = c.head;
		res->in_len = c.in_len;
		res->iov_off = p->rx_niov;
		res->nr_in = c.nr_in;
		p->rx_niov += c.nr_in;
		got++;
	}
	return (int)got;
}

/*
 * Reserve held chains, in ring order from the first, popping more when
 * they run out, until their writable bytes reach need (a single chain
 * without MRG_RXBUF).  Returns the bytes reserved (maybe fewer than need:
 * the ring ran dry), -ENOBUFS (none) or -EIO (broken).
 */
static long rx_take(struct net_pair *p, struct vio_vq *vq, size_t need)
{
	bool mrg = net_neg(p->nd) & NET_NEG_MRG_RXBUF;
	size_t have = 0;
	unsigned k = 0; /* chains reserved */
	rx_release(p);
	for (;;) {
		unsigned i = p->rfirst + k;
		for (; i < p->nres && have < need && (mrg || !k); i++, k++)
			have += p->res[i].in_len;
		if (have >= need || (!mrg && k))
			break;
		rx_compact(p);
		int r = rx_pop_burst(p, vq);
		if (r < 0)
			return -EIO;
		if (r == 0)
			break;
	}
	p->nresv = k;
	unsigned pf = p->rfirst + k + NET_RX_PREFETCH;
	if (pf > p->nres)
		pf = p->nres;
	if (p->rpf < p->rfirst)
		p->rpf = p->rfirst;
	for (; p->rpf < pf; p->rpf++)
		prefetch_buf(&p->rx_iov[p->res[p->rpf].iov_off]);
	return have ? (long)have : -ENOBUFS;
}

/* The segments of the current reservation. */
static inline struct vio_iov *resv_iov(struct net_pair *p, unsigned *n)
{
	const struct net_res *f = &p->res[p->rfirst];
	const struct net_res *l = f + p->nresv - 1;
	*n = l->iov_off + l->nr_in - f->iov_off;
	return p->rx_iov + f->iov_off;
}

/* total bytes (header included) were written over the reservation: queue
 * the chains they fill (num_buffers set); the rest stay held. */
static void res_commit(struct net_pair *p, size_t total)
{
	const struct net_res *r = &p->res[p->rfirst];
	unsigned k = 0;
	size_t left = total;
	while (k + 1 < p->nresv && left > r[k].in_len)
		left -= r[k++].in_len;
	unsigned used = k + 1;
	uint16_t nb = htole16((uint16_t)used);
	const size_t at = offsetof(struct virtio_net_hdr_v1, num_buffers);
	struct vio_iov *seg = p->rx_iov + r[0].iov_off;
	if (net_likely(seg[0].len >= VIO_NET_HDR_LEN)) {
		hdr_put((uint8_t *)seg[0].base + at, &nb, sizeof(nb));
	} else {
		struct vio_cursor cur;
		vio_cursor_init(&cur, seg, p->rx_niov - r[0].iov_off);
		vio_cursor_skip(&cur, at);
		vio_cursor_write(&cur, &nb, sizeof(nb));
	}
	for (unsigned i = 0; i + 1 < used; i++)
		queue_used(p, r[i].head, r[i].in_len);
	queue_used(p, r[k].head, (uint32_t)left);
	p->rfirst += used;
	rx_release(p);
	if (p->rfirst == p->nres)
		p->rfirst = p->nres = p->rx_niov = p->rpf = 0;
}

static bool filter_pass(struct net_pair *p, const uint8_t *dst)
{
	struct vio_net_device *nd = p->nd;
	uint32_t g = __atomic_load_n(&nd->fgen, __ATOMIC_ACQUIRE);
	if (net_unlikely(g != p->fgen)) {
		pthread_mutex_lock(&nd->filter_lock);
		p->filter = nd->filter;
		p->fgen = nd->fgen;
		pthread_mutex_unlock(&nd->filter_lock);
	}
	return net_rx_filter_pass(&p->filter, dst);
}

/* Largest frame the driver takes with this GSO type. */
static bool frame_fits(const struct vio_net_device *nd, uint8_t gso, size_t len)
{
	if (len > NET_MAX_FRAME)
		return false;
	return gso != VIRTIO_NET_HDR_GSO_NONE || !(net_neg(nd) & NET_NEG_MTU) ||
	       len <= nd->mtu + NET_MTU_EXTRA;
}

static struct net_pair *pair_get(struct vio_net_device *nd, unsigned qp)
{
	return nd && qp < nd->max_pairs ? &nd->pair[qp] : NULL;
}

int vio_net_device_rx(struct vio_net_device *nd, unsigned qp,
		      const struct virtio_net_hdr_v1 *hdr,
		      const struct vio_iov *iov, unsigned n, size_t len)
{
	struct net_pair *p = pair_get(nd, qp);
	struct vio_vq *vq = p ? rx_vq(p) : NULL;
	if (!vq)
		return -ENOTCONN;
	rx_release(p);
	uint8_t dst[VIO_NET_ETH_ALEN];
	bool whole = false; /* the frame is in iov[0] */
	if (net_likely(n && iov[0].len >= len && len >= NET_ETH_HLEN)) {
		memcpy(dst, iov[0].base, sizeof(dst));
		whole = true;
	} else if (n && iov[0].len >= sizeof(dst) && len >= NET_ETH_HLEN) {
		/* segments (a port's rewritten addresses, then the rest):
		 * the address from the first, the length from all */
		size_t have = 0;
		for (unsigned i = 0; i < n && have < len; i++)
			have += iov[i].len;
		if (have < len) {
			net_stat_add(&p->st.rx_dropped, 1);
			return -EINVAL;
		}
		memcpy(dst, iov[0].base, sizeof(dst));
	} else {
		struct vio_cursor src;
		vio_cursor_init(&src, iov, n);
		if (len < NET_ETH_HLEN || src.left < len ||
		    vio_cursor_read(&src, dst, sizeof(dst)) != sizeof(dst)) {
			net_stat_add(&p->st.rx_dropped, 1);
			return -EINVAL;
		}
	}
	if (!filter_pass(p, dst)) {
		net_stat_add(&p->st.rx_filtered, 1);
		return -EAGAIN;
	}
	if (hdr && !net_rx_hdr_ok(hdr, net_neg(nd))) {
		net_stat_add(&p->st.rx_dropped, 1);
		return -EPROTO;
	}
	if (!frame_fits(nd, hdr ? hdr->gso_type : 0, len)) {
		net_stat_add(&p->st.rx_dropped, 1);
		return -EMSGSIZE;
	}
	size_t need = VIO_NET_HDR_LEN + len;
	long r = rx_take(p, vq, need);
	if (r < 0 || (size_t)r < need) {
		bool mrg = net_neg(nd) & NET_NEG_MRG_RXBUF;
		rx_release(p);
		if (r == -EIO)
			return -ENOTCONN;
		if (r >= 0 && !mrg) {
			net_stat_add(&p->st.rx_dropped, 1);
			return -EMSGSIZE;
		}
		net_stat_add(&p->st.rx_no_buffer, 1);
		return -ENOBUFS;
	}
	static const struct virtio_net_hdr_v1 zero;
	const struct virtio_net_hdr_v1 *h = hdr ? hdr : &zero;
	unsigned nseg;
	struct vio_iov *seg = resv_iov(p, &nseg);
	if (net_likely(seg[0].len >= need)) {
		/* the usual case: one segment holds it all, so one buffer
		 * (res_commit sets num_buffers 1: already there, it finds) */
		uint8_t *d = seg[0].base;
		struct virtio_net_hdr_v1 fh = *h;
		fh.num_buffers = htole16(1);
		hdr_put(d, &fh, VIO_NET_HDR_LEN);
		d += VIO_NET_HDR_LEN;
		if (whole) {
			memcpy(d, iov[0].base, len);
		} else {
			size_t left = len;
			for (unsigned i = 0; i < n && left; i++) {
				size_t k =
				    iov[i].len < left ? iov[i].len : left;
				memcpy(d, iov[i].base, k);
				d += k;
				left -= k;
			}
		}
	} else {
		struct vio_cursor cur;
		vio_cursor_init(&cur, seg, nseg);
		vio_cursor_write(&cur, h, VIO_NET_HDR_LEN);
		size_t left = len;
		for (unsigned i = 0; i < n && left; i++) {
			size_t k = iov[i].len < left ? iov[i].len : left;
			vio_cursor_write(&cur, iov[i].base, k);
			left -= k;
		}
	}
	res_commit(p, need);
	net_stat_add(&p->st.rx_packets, 1);
	net_stat_add(&p->st.rx_bytes, len);
	return 0;
}

void net_rx_nobuf(struct vio_net_device *nd, unsigned qp)
{
	struct net_pair *p = pair_get(nd, qp);
	if (p)
		net_stat_add(&p->st.rx_no_buffer, 1);
}

int vio_net_device_rx_reserve(struct vio_net_device *nd, unsigned qp,
			      size_t max, const struct vio_iov **iov)
{
	struct net_pair *p = pair_get(nd, qp);
	struct vio_vq *vq = p ? rx_vq(p) : NULL;
	if (!vq)
		return -ENOTCONN;
	if (max < VIO_NET_HDR_LEN + NET_ETH_HLEN)
		max = VIO_NET_HDR_LEN + NET_ETH_HLEN;
	long r = rx_take(p, vq, max);
	if (r < 0) {
		/* -ENOBUFS is not counted here: the port may find no frame
		 * to drop after all (the ring and the tap ran dry at once);
		 * one that drops a frame offers it to vio_net_device_rx or
		 * counts it with net_rx_nobuf */
		rx_release(p);
		return r == -EIO ? -ENOTCONN : (int)r;
	}
	p->reserving = true;
	unsigned nseg;
	*iov = resv_iov(p, &nseg);
	return (int)nseg;
}

int vio_net_device_rx_commit(struct vio_net_device *nd, unsigned qp, size_t len)
{
	struct net_pair *p = pair_get(nd, qp);
	if (!p || !p->reserving)
		return -EINVAL;
	struct vio_vq *vq = rx_vq(p);
	if (!vq || !p->reserving) {
		rx_release(p);
		return -ENOTCONN;
	}
	if (!len) {
		rx_release(p);
		return 0;
	}
	unsigned nseg;
	const struct vio_iov *seg = resv_iov(p, &nseg);
	size_t have = 0;
	for (unsigned i = 0; i < p->nresv; i++)
		have += p->res[p->rfirst + i].in_len;
	struct virtio_net_hdr_v1 h;
	uint8_t dst[VIO_NET_ETH_ALEN];
	bool ok = len <= have && len >= VIO_NET_HDR_LEN + NET_ETH_HLEN;
	if (net_likely(ok && seg[0].len >= VIO_NET_HDR_LEN + sizeof(dst))) {
		const uint8_t *b = seg[0].base;
		memcpy(&h, b, VIO_NET_HDR_LEN);
		memcpy(dst, b + VIO_NET_HDR_LEN, sizeof(dst));
	} else if (ok) {
		struct vio_cursor cur;
		vio_cursor_init(&cur, seg, nseg);
		ok = vio_cursor_read(&cur, &h, VIO_NET_HDR_LEN) ==
			 VIO_NET_HDR_LEN &&
		     vio_cursor_read(&cur, dst, sizeof(dst)) == sizeof(dst);
	}
	if (!ok) {
		/* past the reservation: with MRG_RXBUF the ring had fewer
		 * buffers than the frame needs (no buffer), without it the
		 * one buffer is too small */
		bool nobuf = len > have && (net_neg(nd) & NET_NEG_MRG_RXBUF);
		rx_release(p);
		net_stat_add(nobuf ? &p->st.rx_no_buffer : &p->st.rx_dropped,
			     1);
		return nobuf ? -ENOBUFS : len > have ? -EMSGSIZE : -EINVAL;
	}
	int err = 0;
	uint64_t *ctr = &p->st.rx_dropped;
	if (!filter_pass(p, dst)) {
		err = -EAGAIN;
		ctr = &p->st.rx_filtered;
	} else if (!net_rx_hdr_ok(&h, net_neg(nd))) {
		err = -EPROTO;
	} else if (!frame_fits(nd, h.gso_type, len - VIO_NET_HDR_LEN)) {
		err = -EMSGSIZE;
	}
	if (err) {
		rx_release(p);
		net_stat_add(ctr, 1);
		return err;
	}
	res_commit(p, len);
	net_stat_add(&p->st.rx_packets, 1);
	net_stat_add(&p->st.rx_bytes, len - VIO_NET_HDR_LEN);
	return 0;
}

void vio_net_device_rx_cancel(struct vio_net_device *nd, unsigned qp)
{
	struct net_pair *p = pair_get(nd, qp);
	if (p)
		rx_release(p);
}

void vio_net_device_rx_flush(struct vio_net_device *nd, unsigned qp)
{
	struct net_pair *p = pair_get(nd, qp);
	if (!p || !p->nrx_used)
		return;
	if (!p->explicit_[0] && !p->explicit_[1] &&
	    vio_device_queue(nd->dev, 2 * qp) != p->vq[0]) {
		net_rx_forget(p); /* that vq is gone */
		return;
	}
	net_rx_push(p);
}

bool vio_net_device_rx_accepts(const struct vio_net_device *nd,
			       const struct virtio_net_hdr_v1 *hdr)
{
	return !hdr || net_rx_hdr_ok(hdr, net_neg(nd));
}
