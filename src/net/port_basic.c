/* SPDX-License-Identifier: MIT */
/*
 * The built-in test and benchmark ports: echo, sink, gen.
 *
 * echo: each frame a driver sends on pair k comes back to the same
 *   device's pair k, source and destination MAC swapped: copied once
 *   into the driver's receive buffers by vio_net_device_rx (the swapped
 *   addresses from a local copy, the rest from the transmit buffer; a
 *   frame in more than ECHO_SEGS pieces goes through rx_reserve and a
 *   cursor); the batch is flushed (one push, one call) at xmit_flush.  A
 *   frame the driver has no buffer for is dropped (the device counts it).
 * sink: counts and drops; it reads no frame byte (the device does not
 *   prefetch them either: VIO_NET_PORT_F_LEN_ONLY), as testpmd's rxonly
 *   frees the mbufs it is given.  sink:check reads and checks each.
 * gen: fills the receive buffers of every pair it serves with UDP/IPv4
 *   frames (10.0.0.1:1024 -> 10.0.0.2:1025, from 02:76:69:6f:00:01 to
 *   the device's MAC, valid IPv4 header checksum, UDP checksum 0), the
 *   pair's sequence number as a big-endian u64 at the start of the UDP
 *   payload (frame offset 42), copied from a per-pair prepared frame
 *   (vio_net_device_rx: no read-back of the driver's buffer, so stores
 *   to it never wait).  With a loop it fills when the pair
 *   starts and on rx_ready, GEN_BATCH frames per turn, rescheduling
 *   itself (set_timer 0) while buffers remain; without a loop it fills on
 *   rx_ready only, until the ring is empty.  What drivers send to it is
 *   counted like sink.
 *
 * Counters (vio_net_port_stats): per pair slot, relaxed atomics.  bad
 * counts frames taken that are not well-formed: shorter than an Ethernet
 * header, or IPv4 with a wrong header checksum or total length.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"

#define GEN_BATCH 64u
#define GEN_STAGE 16u	     /* frames stamped before the first is copied */
#define GEN_NOLOOP_MAX 4096u /* frames per rx_ready without a loop */
#define GEN_SEQ_OFF 42u	     /* 14 + 20 + 8 */
#define GEN_MIN 60u
#define GEN_MAX 9000u
#define ECHO_SEGS 8u /* source segments echo_xmit copies directly */

enum { PORT_ECHO, PORT_SINK, PORT_GEN };

struct port_slot {
	uint64_t packets, bytes, bad, made;
} __attribute__((aligned(64)));

struct gen_pair {
	struct basic_port *bp;
	struct vio_net_device *nd;
	unsigned qp;
	struct vio_loop *loop;
	uint64_t seq;
	bool active;
	/* GEN_STAGE copies of the frame as sent (frame_len apart): the
	 * template, the device's MAC (checked each fill) and the sequence
	 * number patched in */
	uint8_t *frame;
	uint8_t mac[VIO_NET_ETH_ALEN]; /* the one in the frames */
};

struct basic_port {
	struct vio_net_port port;
	int type;
	bool check; /* count: the content check (all but plain sink) */
	struct port_slot st[VIO_NET_MAX_PAIRS];
	/* gen */
	uint32_t frame_len;
	uint8_t *tmpl;
	struct gen_pair gp[VIO_NET_MAX_PAIRS];
};

static struct basic_port *bp_of(struct vio_net_port *p)
{
	return (struct basic_port *)p; /* port is the first member */
}

/* One writer per slot (the pair's thread): a relaxed load and store, no
 * locked instruction; readers get a snapshot. */
static void add(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v,
			 __ATOMIC_RELAXED);
}

static uint16_t ip_csum(const uint8_t *b, unsigned len)
{
	uint32_t s = 0;
	for (unsigned i = 0; i + 1 < len; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Not well-formed: too short for Ethernet, or a bad IPv4 header. */
static bool frame_bad(const struct vio_iov *iov, unsigned n, size_t len)
{
	uint8_t buf[NET_ETH_HLEN + 60];
	const uint8_t *b = buf;
	size_t got = len < sizeof(buf) ? len : sizeof(buf);
	if (len < NET_ETH_HLEN)
		return true;
	if (n && iov[0].len >= got) {
		b = iov[0].base; /* the usual case: no copy */
	} else {
		struct vio_cursor cur;
		vio_cursor_init(&cur, iov, n);
		got = vio_cursor_read(&cur, buf, got);
	}
	if ((b[12] << 8 | b[13]) != 0x0800)
		return false;
	if (got < NET_ETH_HLEN + 20)
		return true;
	const uint8_t *ip = b + NET_ETH_HLEN;
	unsigned ihl = (ip[0] & 15u) * 4;
	if (ip[0] >> 4 != 4 || ihl < 20 || NET_ETH_HLEN + ihl > got)
		return true;
	if (ip_csum(ip, ihl) != 0)
		return true;
	size_t tot = (size_t)ip[2] << 8 | ip[3];
	/* short frames are padded to 60 bytes */
	return tot < ihl || tot > len - NET_ETH_HLEN ||
	       (tot < len - NET_ETH_HLEN && len > GEN_MIN);
}

static void count(struct basic_port *bp, unsigned qp, const struct vio_iov *iov,
		  unsigned n, size_t len)
{
	struct port_slot *s = &bp->st[qp % VIO_NET_MAX_PAIRS];
	add(&s->packets, 1);
	add(&s->bytes, len);
	if (bp->check && frame_bad(iov, n, len))
		add(&s->bad, 1);
}

/* ---- echo ---- */

/* Echo through a reservation and cursors: any segmentation. */
static int echo_slow(struct vio_net_device *nd, unsigned qp,
		     const struct vio_iov *iov, unsigned n, size_t len)
{
	const struct vio_iov *seg;
	int k = vio_net_device_rx_reserve(nd, qp, VIO_NET_HDR_LEN + len, &seg);
	if (k < 0) {
		if (k == -ENOBUFS) /* the driver has no buffer: dropped */
			net_rx_nobuf(nd, qp);
		return 0;
	}
	struct vio_cursor dst, src;
	vio_cursor_init(&dst, seg, (unsigned)k);
	vio_cursor_init(&src, iov, n);
	if (dst.left < VIO_NET_HDR_LEN + len) {
		/* committing more than reserved drops it, counted */
		(void)vio_net_device_rx_commit(nd, qp, VIO_NET_HDR_LEN + len);
		return 0;
	}
	static const struct virtio_net_hdr_v1 zero;
	vio_cursor_write(&dst, &zero, VIO_NET_HDR_LEN);
	uint8_t mac[2 * VIO_NET_ETH_ALEN];
	vio_cursor_read(&src, mac, sizeof(mac));
	vio_cursor_write(&dst, mac + VIO_NET_ETH_ALEN, VIO_NET_ETH_ALEN);
	vio_cursor_write(&dst, mac, VIO_NET_ETH_ALEN);
	/* the rest, segment by segment of the source */
	size_t left = len - sizeof(mac);
	while (left && src.i < src.n) {
		const struct vio_iov *s = &src.iov[src.i];
		size_t k2 = s->len - src.off;
		if (k2 > left)
			k2 = left;
		vio_cursor_write(&dst, (const uint8_t *)s->base + src.off, k2);
		vio_cursor_skip(&src, k2);
		left -= k2;
		if (!k2 && src.off == s->len) {
			src.i++; /* an empty segment */
			src.off = 0;
		}
	}
	(void)vio_net_device_rx_commit(nd, qp, VIO_NET_HDR_LEN + len);
	return 0;
}

static int echo_xmit(struct vio_net_port *p, struct vio_net_device *nd,
		     unsigned qp, const struct virtio_net_hdr_v1 *hdr,
		     const struct vio_iov *iov, unsigned n, size_t len)
{
	struct basic_port *bp = bp_of(p);
	(void)hdr; /* no offloads taken: the header says nothing */
	count(bp, qp, iov, n, len);
	if (len < NET_ETH_HLEN)
		return 0; /* never: the device refuses runts */
	/* the addresses swapped, then the rest as it is: one copy into
	 * the driver's buffers (vio_net_device_rx) */
	uint8_t mac[2 * VIO_NET_ETH_ALEN];
	struct vio_iov seg[ECHO_SEGS + 1];
	seg[0] = (struct vio_iov){mac, sizeof(mac), 0};
	if (n && iov[0].len >= len) {
		/* the usual case: one segment */
		const uint8_t *f = iov[0].base;
		memcpy(mac, f + VIO_NET_ETH_ALEN, VIO_NET_ETH_ALEN);
		memcpy(mac + VIO_NET_ETH_ALEN, f, VIO_NET_ETH_ALEN);
		seg[1] = (struct vio_iov){(uint8_t *)iov[0].base + sizeof(mac),
					  (uint32_t)(len - sizeof(mac)), 0};
		(void)vio_net_device_rx(nd, qp, NULL, seg, 2, len);
		return 0;
	}
	struct vio_cursor src;
	vio_cursor_init(&src, iov, n);
	if (vio_cursor_read(&src, mac + VIO_NET_ETH_ALEN, VIO_NET_ETH_ALEN) !=
		VIO_NET_ETH_ALEN ||
	    vio_cursor_read(&src, mac, VIO_NET_ETH_ALEN) != VIO_NET_ETH_ALEN)
		return 0;
	unsigned k = 1;
	size_t left = len - sizeof(mac);
	for (unsigned i = src.i; left && i < n; i++) {
		size_t off = i == src.i ? src.off : 0;
		if (iov[i].len <= off)
			continue;
		if (k == ECHO_SEGS + 1) {
			/* more segments than kept here: copy the rest
			 * through a reservation */
			return echo_slow(nd, qp, iov, n, len);
		}
		size_t m = iov[i].len - off < left ? iov[i].len - off : left;
		seg[k++] = (struct vio_iov){(uint8_t *)iov[i].base + off,
					    (uint32_t)m, 0};
		left -= m;
	}
	(void)vio_net_device_rx(nd, qp, NULL, seg, k, len);
	return 0; /* a frame the driver has no buffer for: counted there */
}

static void echo_flush(struct vio_net_port *p, struct vio_net_device *nd,
		       unsigned qp)
{
	(void)p;
	vio_net_device_rx_flush(nd, qp);
}

/* ---- sink ---- */

static int sink_xmit(struct vio_net_port *p, struct vio_net_device *nd,
		     unsigned qp, const struct virtio_net_hdr_v1 *hdr,
		     const struct vio_iov *iov, unsigned n, size_t len)
{
	(void)nd;
	(void)hdr;
	count(bp_of(p), qp, iov, n, len);
	return 0;
}

/* ---- gen ---- */

/* The MAC the device has now (a driver's ADDR_SET included) into every
 * staged frame, when it changed. */
static void gen_mac(struct gen_pair *g, uint32_t flen)
{
	uint8_t mac[VIO_NET_ETH_ALEN];
	vio_net_device_mac(g->nd, mac);
	if (!memcmp(mac, g->mac, sizeof(mac)))
		return;
	memcpy(g->mac, mac, sizeof(mac));
	for (unsigned i = 0; i < GEN_STAGE; i++)
		memcpy(g->frame + (size_t)i * flen, mac, sizeof(mac));
}

/*
 * Frames go out GEN_STAGE at a time: all of a stage's sequence numbers are
 * stamped (one 8-byte store each, into its own copy of the frame) before
 * the first of them is copied out.  Stamping a frame and copying it right
 * away makes the copy's wide load wait for the stamp's narrow stores to
 * reach the cache, behind every store before them: the previous frame's,
 * into the driver's buffers, which miss.  That wait was a third of the
 * port's time.
 */
static void gen_fill(void *arg)
{
	struct gen_pair *g = arg;
	struct basic_port *bp = g->bp;
	if (!g->active)
		return;
	uint32_t flen = bp->frame_len;
	unsigned max = g->loop ? GEN_BATCH : GEN_NOLOOP_MAX, made = 0;
	bool more = true;
	gen_mac(g, flen);
	while (more && made < max) {
		unsigned n = max - made < GEN_STAGE ? max - made : GEN_STAGE;
		for (unsigned i = 0; i < n; i++) {
			uint64_t be = htobe64(g->seq + i);
			memcpy(g->frame + (size_t)i * flen + GEN_SEQ_OFF, &be,
			       sizeof(be));
		}
		unsigned i = 0;
		for (; i < n; i++) {
			/* one copy per frame, straight into the driver's
			 * buffer (nothing read back from it) */
			struct vio_iov src = {g->frame + (size_t)i * flen, flen,
					      0};
			if (vio_net_device_rx(g->nd, g->qp, NULL, &src, 1,
					      flen) < 0) {
				more = false;
				break;
			}
		}
		g->seq += i;
		made += i;
		if (!g->loop && i && made % GEN_BATCH == 0)
			vio_net_device_rx_flush(g->nd, g->qp);
	}
	if (made) {
		vio_net_device_rx_flush(g->nd, g->qp);
		add(&bp->st[g->qp].made, made);
	}
	if (more && g->loop)
		(void)g->loop->set_timer(g->loop, 0, gen_fill, g);
}

static int gen_start(struct vio_net_port *p, struct vio_net_device *nd,
		     unsigned qp, struct vio_loop *loop)
{
	struct basic_port *bp = bp_of(p);
	if (qp >= VIO_NET_MAX_PAIRS)
		return -EINVAL;
	struct gen_pair *g = &bp->gp[qp];
	if (g->active && g->nd != nd)
		return -EBUSY; /* one device per pair */
	if (!g->frame) {
		g->frame = malloc((size_t)GEN_STAGE * bp->frame_len);
		if (!g->frame)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < GEN_STAGE; i++)
		memcpy(g->frame + (size_t)i * bp->frame_len, bp->tmpl,
		       bp->frame_len);
	memcpy(g->mac, bp->tmpl, sizeof(g->mac));
	g->bp = bp;
	g->nd = nd;
	g->qp = qp;
	g->loop = loop;
	g->active = true;
	if (loop)
		return loop->set_timer(loop, 0, gen_fill, g);
	return 0;
}

static void gen_stop(struct vio_net_port *p, struct vio_net_device *nd,
		     unsigned qp)
{
	struct basic_port *bp = bp_of(p);
	if (qp >= VIO_NET_MAX_PAIRS || bp->gp[qp].nd != nd)
		return;
	struct gen_pair *g = &bp->gp[qp];
	if (g->loop)
		g->loop->cancel_timer(g->loop, gen_fill, g);
	g->active = false;
	g->loop = NULL;
}

static void gen_rx_ready(struct vio_net_port *p, struct vio_net_device *nd,
			 unsigned qp)
{
	struct basic_port *bp = bp_of(p);
	if (qp < VIO_NET_MAX_PAIRS && bp->gp[qp].nd == nd)
		gen_fill(&bp->gp[qp]);
}

static void gen_detach(struct vio_net_port *p, struct vio_net_device *nd)
{
	struct basic_port *bp = bp_of(p);
	for (unsigned i = 0; i < VIO_NET_MAX_PAIRS; i++)
		if (bp->gp[i].nd == nd) {
			uint8_t *frame = bp->gp[i].frame;
			memset(&bp->gp[i], 0, sizeof(bp->gp[i]));
			bp->gp[i].frame = frame; /* kept for the next */
		}
}

/* ---- lifetime ---- */

static void basic_free(struct vio_net_port *p)
{
	struct basic_port *bp = bp_of(p);
	for (unsigned i = 0; i < VIO_NET_MAX_PAIRS; i++)
		free(bp->gp[i].frame);
	free(bp->tmpl);
	free(bp);
}

static const struct vio_net_port_ops echo_ops = {
    .xmit = echo_xmit,
    .xmit_flush = echo_flush,
    .free = basic_free,
};
static const struct vio_net_port_ops sink_ops = {
    .xmit = sink_xmit,
    .free = basic_free,
};
static const struct vio_net_port_ops gen_ops = {
    .start = gen_start,
    .stop = gen_stop,
    .xmit = sink_xmit,
    .rx_ready = gen_rx_ready,
    .detach = gen_detach,
    .free = basic_free,
};

static struct vio_net_port *
basic_new(int type, const struct vio_net_port_ops *ops, const char *kind)
{
	struct basic_port *bp = aligned_alloc(64, sizeof(*bp));
	if (!bp) {
		errno = ENOMEM;
		return NULL;
	}
	memset(bp, 0, sizeof(*bp));
	bp->type = type;
	bp->check = true;
	bp->port.ops = ops;
	bp->port.kind = kind;
	return &bp->port;
}

struct vio_net_port *vio_net_port_echo_new(void)
{
	return basic_new(PORT_ECHO, &echo_ops, "echo");
}

struct vio_net_port *vio_net_port_sink_new(void)
{
	struct vio_net_port *p = basic_new(PORT_SINK, &sink_ops, "sink");
	if (p) {
		bp_of(p)->check = false;
		p->flags = VIO_NET_PORT_F_LEN_ONLY;
	}
	return p;
}

struct vio_net_port *vio_net_port_sink_check_new(void)
{
	return basic_new(PORT_SINK, &sink_ops, "sink:check");
}

/* The frame gen sends (destination MAC and sequence patched per frame). */
static void gen_template(uint8_t *t, uint32_t flen)
{
	static const uint8_t src[VIO_NET_ETH_ALEN] = {0x02, 0x76, 0x69,
						      0x6f, 0x00, 0x01};
	memset(t, 0, flen);
	memcpy(t + VIO_NET_ETH_ALEN, src, sizeof(src));
	t[12] = 0x08; /* IPv4 */
	uint8_t *ip = t + NET_ETH_HLEN;
	unsigned tot = flen - NET_ETH_HLEN, ulen = tot - 20;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;   /* TTL */
	ip[9] = 17;   /* UDP */
	ip[12] = 10, ip[15] = 1;
	ip[16] = 10, ip[19] = 2;
	uint16_t c = ip_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	uint8_t *udp = ip + 20;
	udp[0] = 1024 >> 8, udp[1] = 1024 & 0xff;
	udp[2] = 1025 >> 8, udp[3] = 1025 & 0xff;
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	for (unsigned i = GEN_SEQ_OFF + 8; i < flen; i++)
		t[i] = (uint8_t)i;
}

struct vio_net_port *vio_net_port_gen_new(uint32_t frame_len)
{
	if (!frame_len)
		frame_len = GEN_MIN;
	if (frame_len < GEN_MIN || frame_len > GEN_MAX) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_net_port *p = basic_new(PORT_GEN, &gen_ops, "gen");
	if (!p)
		return NULL;
	struct basic_port *bp = bp_of(p);
	bp->frame_len = frame_len;
	bp->tmpl = malloc(frame_len);
	if (!bp->tmpl) {
		free(bp);
		errno = ENOMEM;
		return NULL;
	}
	gen_template(bp->tmpl, frame_len);
	return p;
}

void vio_net_port_free(struct vio_net_port *p)
{
	if (p && p->ops && p->ops->free)
		p->ops->free(p);
}

int vio_net_port_stats(const struct vio_net_port *p,
		       struct vio_net_port_stats *out)
{
	if (!p || !out)
		return -EINVAL;
	if (p->ops != &echo_ops && p->ops != &sink_ops && p->ops != &gen_ops)
		return -EOPNOTSUPP;
	const struct basic_port *bp = (const struct basic_port *)p;
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < VIO_NET_MAX_PAIRS; i++) {
		const struct port_slot *s = &bp->st[i];
		out->packets += __atomic_load_n(&s->packets, __ATOMIC_RELAXED);
		out->bytes += __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
		out->bad += __atomic_load_n(&s->bad, __ATOMIC_RELAXED);
		out->made += __atomic_load_n(&s->made, __ATOMIC_RELAXED);
	}
	return 0;
}
