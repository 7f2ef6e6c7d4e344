/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net driver against a hostile device (issue 9): a virtio-net
 * device written here sits behind the synchronous stub transport
 * (stub_transport.h: a kick runs the device at once).  It holds every
 * receive buffer the driver posts and, when the test says so, fills some
 * and returns them as used, honestly or with the lies below; it answers
 * the transmitq and the control queue as the test's knobs say.
 *
 * Receive (split and packed, mergeable buffers of 512 bytes so that a
 * 1514-byte frame spans three): honest frames of one and several buffers
 * arrive intact; num_buffers 0, num_buffers above the buffers posted,
 * fewer buffers used than num_buffers says, a header cut short, a merged
 * frame larger than any frame may be: each frame dropped and counted in
 * rx_errors, the queue goes on and the next honest frame arrives.  A used
 * length beyond the buffer and a used id that is not in flight break the
 * queue: recv fails with -EIO from then on, counted, no crash.
 *
 * Transmit: frames reach the device with their header (num_buffers 0)
 * and bytes; a device that completes nothing fills the ring: send
 * returns 0 and counts tx_full, reclaim frees the slots once it does.  A
 * packed used descriptor without VIRTQ_DESC_F_WRITE whose length is not
 * 0 (DPDK's vhost leaves the driver's length there): accepted, as 2.8.4
 * says the length is then reserved; on a split ring a transmit used
 * length above 0 breaks the queue.
 *
 * Offloads (CSUM, TSO negotiated): checksum and GSO metadata reach the
 * device as given; a checksum field past the frame, GSO without
 * NEEDS_CSUM or an MSS, UFO, ECN, a frame over 64 KiB, a frame without
 * GSO over the MTU: -EINVAL, nothing sent.  A 20000-byte frame arrives
 * whole from 40 buffers.
 *
 * Control queue: OK, VIRTIO_NET_ERR (-EIO) and no answer at all (-EIO,
 * then every later command -EIO at once); the commands' class, command
 * and data as 5.1.6.5 lays them out.  Link status from the config space.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "stub_transport.h"
#include "test.h"
#include "util/log.h"
#include <vio/bus.h>
#include <vio/device.h>
#include <vio/driver.h>
#include <vio/mem.h>
#include <vio/net.h>

#define QSIZE 64u
#define RXBUF 512u
#define MAX_IOV 8u

struct held {
	uint32_t head;
	struct vio_iov iov[MAX_IOV];
	unsigned n;
	uint32_t in_len;
};

enum { CTRL_OK, CTRL_ERR, CTRL_SILENT };

/* The hostile device's state and knobs. */
static struct {
	struct vio_vq *rxvq;
	struct held fifo[QSIZE];
	unsigned head, count; /* fifo of held receive buffers */
	/* transmit */
	uint32_t tx_len; /* used length pushed for each transmit chain */
	bool tx_hold;	 /* complete nothing (held in txh[]) */
	uint32_t txh[QSIZE];
	unsigned ntxh;
	struct vio_vq *txvq;
	unsigned tx_seen;
	uint8_t last_tx[70000];
	uint32_t last_tx_len;
	/* control */
	int ctrl_mode;
	uint8_t ctrl_class, ctrl_cmd, ctrl_data[16];
	uint32_t ctrl_len;
	unsigned ctrl_seen;
} hd;

static void rx_take(struct vio_vq *vq)
{
	hd.rxvq = vq;
	for (;;) {
		struct held *h = &hd.fifo[(hd.head + hd.count) % QSIZE];
		struct vio_chain c;
		if (hd.count == QSIZE)
			break;
		int r = vio_vq_pop(vq, &c, h->iov, MAX_IOV);
		if (r != 1)
			break;
		REQUIRE(c.nr_out == 0 && c.nr_in >= 1);
		h->head = c.head;
		h->n = c.nr_in;
		h->in_len = c.in_len;
		hd.count++;
	}
}

/* DPDK's vhost on packed transmit rings: the used length is left as the
 * driver wrote it and VIRTQ_DESC_F_WRITE is not set (2.8.4: that length
 * is reserved).  vio's push sets F_WRITE with a length: take it off. */
static void dpdk_style_used(struct vio_vq *vq)
{
	if (!vio_vq_is_packed(vq))
		return;
	struct vio_vq_layout l;
	vio_vq_get_layout(vq, &l);
	struct vring_packed_desc *d = l.desc;
	for (unsigned i = 0; i < vio_vq_size(vq); i++)
		d[i].flags = htole16(le16toh(d[i].flags) &
				     (uint16_t)~VRING_DESC_F_WRITE);
}

static bool net_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	(void)dev;
	struct vio_iov iov[MAX_IOV];
	struct vio_chain c;
	if (idx == 0) {
		rx_take(vq);
		return false;
	}
	if (idx == 1) {
		hd.txvq = vq;
		while (vio_vq_pop(vq, &c, iov, MAX_IOV) == 1) {
			struct vio_cursor cur;
			vio_cursor_init(&cur, c.out, c.nr_out);
			hd.last_tx_len = (uint32_t)vio_cursor_read(
			    &cur, hd.last_tx, sizeof(hd.last_tx));
			hd.tx_seen++;
			if (hd.tx_hold)
				hd.txh[hd.ntxh++] = c.head;
			else
				REQUIRE(vio_vq_push(vq, c.head, hd.tx_len) ==
					0);
		}
		dpdk_style_used(vq);
		vio_vq_call(vq);
		return false;
	}
	while (vio_vq_pop(vq, &c, iov, MAX_IOV) == 1) {
		struct vio_cursor cur;
		vio_cursor_init(&cur, c.out, c.nr_out);
		uint8_t b[2 + sizeof(hd.ctrl_data)];
		size_t n = vio_cursor_read(&cur, b, sizeof(b));
		REQUIRE(n >= 2 && c.nr_in == 1 && c.in[0].len == 1);
		hd.ctrl_class = b[0];
		hd.ctrl_cmd = b[1];
		hd.ctrl_len = (uint32_t)n - 2;
		memcpy(hd.ctrl_data, b + 2, n - 2);
		hd.ctrl_seen++;
		if (hd.ctrl_mode == CTRL_SILENT)
			continue; /* never answered */
		*(uint8_t *)c.in[0].base =
		    hd.ctrl_mode == CTRL_OK ? VIRTIO_NET_OK : VIRTIO_NET_ERR;
		REQUIRE(vio_vq_push(vq, c.head, 1) == 0);
	}
	vio_vq_call(vq);
	return false;
}

static int ok_status(struct vio_device *dev, uint8_t o, uint8_t n)
{
	(void)dev;
	(void)o;
	(void)n;
	return 0;
}

static void on_reset(struct vio_device *dev)
{
	(void)dev;
	hd.rxvq = hd.txvq = NULL;
	hd.count = hd.head = 0;
	hd.ntxh = 0;
}

static const struct vio_device_ops net_ops = {
    .status = ok_status, .reset = on_reset, .kick = net_kick};

static const uint8_t dev_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static bool offer_offloads; /* the next device offers CSUM and TSO */

static struct vio_device *net_dev_new(bool packed)
{
	static const unsigned offl[] = {
	    VIRTIO_NET_F_CSUM,	     VIRTIO_NET_F_GUEST_CSUM,
	    VIRTIO_NET_F_HOST_TSO4,  VIRTIO_NET_F_HOST_TSO6,
	    VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6};
	unsigned bits[] = {VIRTIO_F_VERSION_1,	       VIRTIO_RING_F_EVENT_IDX,
			   VIRTIO_NET_F_MAC,	       VIRTIO_NET_F_STATUS,
			   VIRTIO_NET_F_MTU,	       VIRTIO_NET_F_MRG_RXBUF,
			   VIRTIO_NET_F_CTRL_VQ,       VIRTIO_NET_F_CTRL_RX,
			   VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_F_RING_PACKED};
	struct virtio_net_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.mac, dev_mac, 6);
	cfg.status = htole16(VIRTIO_NET_S_LINK_UP);
	cfg.max_virtqueue_pairs = htole16(1);
	cfg.mtu = htole16(1500);
	struct vio_device_opts c = {
	    .name = "hostile-net",
	    .device_id = VIRTIO_ID_NET,
	    .features = vio_features_from(bits, sizeof(bits) / sizeof(bits[0]) -
						    (packed ? 0 : 1)),
	    .num_queues = 3,
	    .queue_max_size = QSIZE,
	    .config = &cfg,
	    .config_size = sizeof(cfg),
	    .ops = &net_ops,
	};
	if (offer_offloads)
		for (unsigned i = 0; i < sizeof(offl) / sizeof(offl[0]); i++)
			vio_features_set(&c.features, offl[i]);
	return vio_device_new(&c);
}

struct rig {
	struct vio_mem *mem;
	struct vio_device *dev;
	struct stub st;
	struct vio_drvdev *vdev;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_net *n;
	bool packed;
};

static void rig_up(struct rig *r, bool packed)
{
	memset(r, 0, sizeof(*r));
	memset(&hd, 0, sizeof(hd));
	r->packed = packed;
	r->mem = vio_mem_new();
	r->dev = net_dev_new(packed);
	REQUIRE(r->mem && r->dev);
	r->vdev = stub_init(&r->st, r->dev, r->mem);
	r->bus = vio_bus_new();
	struct vio_net_driver_opts o = {.rx_buf_size = RXBUF,
					.tso = offer_offloads};
	r->drv = vio_net_driver_new(&o);
	REQUIRE(r->vdev && r->bus && r->drv);
	REQUIRE(vio_bus_register(r->bus, r->drv) == 0);
	REQUIRE(vio_bus_add(r->bus, r->vdev) == 0);
	r->n = vio_net_from_vdev(r->vdev);
	REQUIRE(r->n);
	CHECK_EQ(vio_net_has_feature(r->n, VIRTIO_F_RING_PACKED), packed);
	CHECK_EQ(hd.count, QSIZE); /* the receive ring is full */
}

static void rig_down(struct rig *r)
{
	vio_bus_remove(r->bus, r->vdev);
	vio_bus_unregister(r->bus, r->drv);
	vio_bus_free(r->bus);
	vio_net_driver_free(r->drv);
	vio_drvdev_free(r->vdev);
	vio_device_free(r->dev);
	stub_fini(&r->st);
	vio_mem_free(r->mem);
}

/* ---- the hostile device's pen: receive ---- */

/* How the next frame is returned. */
struct lie {
	int nb_field;  /* num_buffers written: -1 honest */
	int nb_push;   /* buffers returned as used: -1 honest */
	int64_t len0;  /* used length of the first buffer: -1 honest */
	uint32_t fill; /* fill every buffer to this many bytes: 0 honest */
};
static const struct lie honest = {-1, -1, -1, 0};

static void make_frame(uint8_t *f, uint32_t len, uint32_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seq * 31u + i * 7u + 1u);
}

/* Deliver frame f (len bytes) into held buffers as lie says; call. */
static void deliver(const uint8_t *f, uint32_t len, struct lie l)
{
	REQUIRE(hd.rxvq);
	rx_take(hd.rxvq);
	uint32_t total = VIO_NET_HDR_LEN + len, off = 0;
	unsigned need = 0;
	uint32_t rem = total;
	while (rem) {
		REQUIRE(need < hd.count);
		uint32_t cap = hd.fifo[(hd.head + need) % QSIZE].in_len;
		if (l.fill)
			cap = l.fill;
		rem -= rem < cap ? rem : cap;
		need++;
	}
	unsigned push = l.nb_push >= 0 ? (unsigned)l.nb_push : need;
	REQUIRE(push <= hd.count);
	struct virtio_net_hdr_v1 h;
	memset(&h, 0, sizeof(h));
	h.num_buffers =
	    htole16((uint16_t)(l.nb_field >= 0 ? (unsigned)l.nb_field : need));
	for (unsigned k = 0; k < push; k++) {
		struct held *b = &hd.fifo[hd.head];
		hd.head = (hd.head + 1) % QSIZE;
		hd.count--;
		struct vio_cursor w;
		vio_cursor_init(&w, b->iov, b->n);
		uint32_t cap = l.fill ? l.fill : b->in_len, wrote = 0;
		if (k == 0) {
			wrote += (uint32_t)vio_cursor_write(&w, &h, sizeof(h));
			off = 0;
		}
		while (wrote < cap && off < len) {
			uint32_t c =
			    cap - wrote < len - off ? cap - wrote : len - off;
			wrote += (uint32_t)vio_cursor_write(&w, f + off, c);
			off += c;
		}
		uint32_t ulen = wrote;
		if (k == 0 && l.len0 >= 0)
			ulen = (uint32_t)l.len0;
		REQUIRE(vio_vq_push(hd.rxvq, b->head, ulen) == 0);
	}
	vio_vq_call(hd.rxvq);
}

static void expect_frame(struct vio_net *n, uint32_t len, uint32_t seq)
{
	uint8_t want[2048];
	struct vio_net_pkt p[4];
	make_frame(want, len, seq);
	int r = vio_net_recv(n, 0, p, 4, 100);
	CHECK_EQ(r, 1);
	if (r == 1) {
		CHECK_EQ(p[0].len, len);
		CHECK(p[0].len == len && memcmp(p[0].data, want, len) == 0);
	}
}

static uint64_t rx_errors(struct vio_net *n)
{
	struct vio_net_drv_stats s;
	CHECK_EQ(vio_net_stats(n, 0, &s), 0);
	return s.rx_errors;
}

static void rx_honest_and_lies(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	uint8_t f[8192];
	uint32_t seq = 0;

	/* honest: one buffer, three buffers (merged), several per recv */
	static const uint32_t lens[] = {60, 1514, 500, 501, 1000};
	for (unsigned i = 0; i < 5; i++) {
		make_frame(f, lens[i], seq);
		deliver(f, lens[i], honest);
		expect_frame(r.n, lens[i], seq++);
	}
	for (unsigned i = 0; i < 3; i++) {
		make_frame(f, 1514, seq + i);
		deliver(f, 1514, honest);
	}
	struct vio_net_pkt p[8];
	int got = vio_net_recv(r.n, 0, p, 8, 0);
	/* one merged frame per recv holds the reassembly buffer: the second
	 * comes with the next call */
	CHECK_EQ(got, 1);
	CHECK_EQ(vio_net_recv(r.n, 0, p, 8, 0), 1);
	CHECK_EQ(vio_net_recv(r.n, 0, p, 8, 0), 1);
	CHECK_EQ(vio_net_recv(r.n, 0, p, 8, 0), 0);
	seq += 3;
	for (unsigned i = 0; i < 6; i++) {
		make_frame(f, 100, seq + i);
		deliver(f, 100, honest);
	}
	CHECK_EQ(vio_net_recv(r.n, 0, p, 8, 0), 6);
	for (unsigned i = 0; i < 6; i++) {
		uint8_t w[100];
		make_frame(w, 100, seq + i);
		CHECK(p[i].len == 100 && memcmp(p[i].data, w, 100) == 0);
		CHECK_EQ(le16toh(p[i].hdr.num_buffers), 1);
	}
	seq += 6;
	/* taken off the ring a burst at a time, handed out a few per recv:
	 * in order, none lost, none twice */
	for (unsigned i = 0; i < 7; i++) {
		make_frame(f, 100, seq + i);
		deliver(f, 100, honest);
	}
	for (unsigned i = 0; i < 7; i += 3) {
		int want = 7 - i < 3 ? (int)(7 - i) : 3;
		CHECK_EQ(vio_net_recv(r.n, 0, p, 3, 0), want);
		for (int j = 0; j < want; j++) {
			uint8_t w[100];
			make_frame(w, 100, seq + i + (unsigned)j);
			CHECK(p[j].len == 100 &&
			      memcmp(p[j].data, w, 100) == 0);
		}
	}
	CHECK_EQ(vio_net_recv(r.n, 0, p, 3, 0), 0);
	seq += 7;
	CHECK_EQ(rx_errors(r.n), 0);

	/* lies that drop one frame; the next honest frame arrives */
	const struct {
		const char *name;
		uint32_t len;
		struct lie l;
	} lies[] = {
	    {"num_buffers 0", 100, {0, 1, -1, 0}},
	    {"num_buffers above the ring", 100, {QSIZE + 1, 1, -1, 0}},
	    {"num_buffers 65535", 100, {65535, 1, -1, 0}},
	    {"3 buffers said, 1 used", 100, {3, 1, -1, 0}},
	    {"header only", 100, {-1, -1, VIO_NET_HDR_LEN, 0}},
	    {"header cut short", 100, {-1, -1, 5, 0}},
	    {"used length 0", 100, {-1, -1, 0, 0}},
	    {"merged frame too large",
	     8 * RXBUF - VIO_NET_HDR_LEN,
	     {-1, -1, -1, 0}},
	};
	for (unsigned i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint64_t e0 = rx_errors(r.n);
		make_frame(f, lies[i].len, 999);
		deliver(f, lies[i].len, lies[i].l);
		int k = vio_net_recv(r.n, 0, p, 8, 0);
		if (k != 0 || rx_errors(r.n) != e0 + 1)
			fprintf(stderr,
				"%s: lie '%s': recv %d, rx_errors "
				"%llu -> %llu\n",
				packed ? "packed" : "split", lies[i].name, k,
				(unsigned long long)e0,
				(unsigned long long)rx_errors(r.n));
		CHECK_EQ(k, 0);
		CHECK_EQ(rx_errors(r.n), e0 + 1);
		make_frame(f, 1514, seq);
		deliver(f, 1514, honest);
		expect_frame(r.n, 1514, seq++);
	}
	/* every buffer went back: the ring is full again after a recv */
	CHECK_EQ(vio_net_recv(r.n, 0, p, 8, 0), 0);
	rx_take(hd.rxvq);
	CHECK_EQ(hd.count, QSIZE);
	rig_down(&r);
}

/* Lies that break the queue: the driver says -EIO from then on. */
static void rx_breaks(bool packed, int which)
{
	struct rig r;
	rig_up(&r, packed);
	uint8_t f[2048];
	struct vio_net_pkt p[4];
	make_frame(f, 100, 1);
	if (which == 0) {
		/* used length beyond the 512-byte buffer */
		deliver(f, 100, (struct lie){-1, -1, RXBUF + 1, 0});
	} else {
		/* a used id that is not in flight: a buffer pushed twice */
		deliver(f, 100, honest);
		expect_frame(r.n, 100, 1);
		rx_take(hd.rxvq);
		struct held *b = &hd.fifo[hd.head];
		/* a well-formed frame of 8 bytes, returned twice in one
		 * batch: the driver holds it after the first (a dropped one
		 * would go back to the ring at once and be in flight again) */
		struct virtio_net_hdr_v1 h = {.num_buffers = htole16(1)};
		struct vio_cursor w;
		vio_cursor_init(&w, b->iov, b->n);
		vio_cursor_write(&w, &h, sizeof(h));
		REQUIRE(vio_vq_push(hd.rxvq, b->head, 20) == 0);
		REQUIRE(vio_vq_push(hd.rxvq, b->head, 20) == 0);
		vio_vq_call(hd.rxvq);
		/* the first is a frame of 8 bytes, the second breaks it */
		int k = vio_net_recv(r.n, 0, p, 4, 0);
		CHECK_EQ(k, 1);
		CHECK_EQ(p[0].len, 8);
	}
	CHECK_EQ(vio_net_recv(r.n, 0, p, 4, 0), -EIO);
	CHECK_EQ(vio_net_recv(r.n, 0, p, 4, 10), -EIO); /* sticky */
	CHECK(rx_errors(r.n) >= 1);
	/* transmit is another queue: it goes on */
	struct vio_net_pkt t = {.data = f, .len = 60};
	CHECK_EQ(vio_net_send(r.n, 0, &t, 1), 1);
	rig_down(&r);
}

/* ---- transmit ---- */

static void tx_rows(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	uint8_t f[1600];
	struct vio_net_pkt p[8];
	for (unsigned i = 0; i < 8; i++) {
		make_frame(f, 1514, i);
		p[i] = (struct vio_net_pkt){.data = f, .len = 60 + i};
	}
	CHECK_EQ(vio_net_send(r.n, 0, p, 8), 8);
	CHECK_EQ(hd.tx_seen, 8);
	CHECK_EQ(hd.last_tx_len, VIO_NET_HDR_LEN + 67);
	struct virtio_net_hdr_v1 h;
	memcpy(&h, hd.last_tx, sizeof(h));
	CHECK_EQ(h.num_buffers, 0);
	CHECK_EQ(h.flags, 0);
	CHECK(memcmp(hd.last_tx + VIO_NET_HDR_LEN, f, 67) == 0);
	/* too large, bad metadata (no CSUM negotiated) */
	struct vio_net_pkt big = {.data = f, .len = 1519};
	CHECK_EQ(vio_net_send(r.n, 0, &big, 1), -EINVAL);
	struct vio_net_pkt cs = {.data = f, .len = 100};
	cs.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	CHECK_EQ(vio_net_send(r.n, 0, &cs, 1), -EINVAL);
	cs.hdr.flags = 0;
	cs.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	CHECK_EQ(vio_net_send(r.n, 0, &cs, 1), -EINVAL);

	/* a device that completes nothing: the ring fills */
	hd.tx_hold = true;
	unsigned sent = 0;
	int k;
	while ((k = vio_net_send(r.n, 0, p, 8)) > 0)
		sent += (unsigned)k;
	CHECK_EQ(k, 0);
	CHECK_EQ(sent, QSIZE);
	struct vio_net_drv_stats s;
	CHECK_EQ(vio_net_stats(r.n, 0, &s), 0);
	CHECK_EQ(s.tx_full, 1);
	CHECK_EQ(s.tx_packets, 8 + QSIZE);
	/* it completes them, DPDK-style on packed: the used length left
	 * as the driver wrote it (2.8.4: reserved without F_WRITE) */
	for (unsigned i = 0; i < hd.ntxh; i++)
		REQUIRE(vio_vq_push(hd.txvq, hd.txh[i],
				    packed ? VIO_NET_HDR_LEN + 60 : 0) == 0);
	dpdk_style_used(hd.txvq);
	hd.ntxh = 0;
	hd.tx_hold = false;
	CHECK_EQ(vio_net_tx_reclaim(r.n, 0), QSIZE);
	CHECK_EQ(vio_net_send(r.n, 0, p, 8), 8);

	/* a transmit used length above 0 */
	hd.tx_len = VIO_NET_HDR_LEN + 60;
	CHECK_EQ(vio_net_send(r.n, 0, p, 1), 1);
	if (packed) {
		/* reserved: ignored; the 8 before it come back too (send
		 * reclaims only when it is short of slots) */
		CHECK_EQ(vio_net_tx_reclaim(r.n, 0), 9);
		CHECK_EQ(vio_net_send(r.n, 0, p, 8), 8);
	} else {
		/* split: the length is what the device wrote: a lie */
		CHECK_EQ(vio_net_tx_reclaim(r.n, 0), -EIO);
		CHECK_EQ(vio_net_send(r.n, 0, p, 1), -EIO);
	}
	rig_down(&r);
}

/* ---- control queue, config space ---- */

static void ctrl_rows(bool packed)
{
	struct rig r;
	rig_up(&r, packed);
	struct vio_net_info in;
	vio_net_get_info(r.n, &in);
	CHECK(memcmp(in.mac, dev_mac, 6) == 0);
	CHECK_EQ(in.mtu, 1500);
	CHECK(in.link_up);
	CHECK(in.ctrl_vq);
	CHECK(in.mrg_rxbuf);
	CHECK_EQ(in.pairs, 1);

	hd.ctrl_mode = CTRL_OK;
	CHECK_EQ(vio_net_set_promisc(r.n, true), 0);
	CHECK_EQ(hd.ctrl_class, VIRTIO_NET_CTRL_RX);
	CHECK_EQ(hd.ctrl_cmd, VIRTIO_NET_CTRL_RX_PROMISC);
	CHECK(hd.ctrl_len == 1 && hd.ctrl_data[0] == 1);
	static const uint8_t mac[6] = {0x02, 1, 2, 3, 4, 5};
	CHECK_EQ(vio_net_set_mac(r.n, mac), 0);
	CHECK_EQ(hd.ctrl_class, VIRTIO_NET_CTRL_MAC);
	CHECK_EQ(hd.ctrl_cmd, VIRTIO_NET_CTRL_MAC_ADDR_SET);
	CHECK(hd.ctrl_len == 6 && memcmp(hd.ctrl_data, mac, 6) == 0);
	vio_net_get_info(r.n, &in);
	CHECK(memcmp(in.mac, mac, 6) == 0);
	/* no MQ offered */
	CHECK_EQ(vio_net_set_pairs(r.n, 1), -EOPNOTSUPP);

	hd.ctrl_mode = CTRL_ERR;
	CHECK_EQ(vio_net_set_promisc(r.n, false), -EIO);
	hd.ctrl_mode = CTRL_SILENT;
	unsigned seen = hd.ctrl_seen;
	CHECK_EQ(vio_net_set_promisc(r.n, false), -EIO);
	CHECK_EQ(hd.ctrl_seen, seen + 1);
	hd.ctrl_mode = CTRL_OK;
	/* the unanswered buffer may still be on the ring: no more */
	CHECK_EQ(vio_net_set_promisc(r.n, false), -EIO);
	CHECK_EQ(hd.ctrl_seen, seen + 1);

	/* link status follows the config space */
	uint16_t st = 0;
	REQUIRE(vio_device_config_update(
		    r.dev, offsetof(struct virtio_net_config, status), &st,
		    2) == 0);
	vio_net_get_info(r.n, &in);
	CHECK(!in.link_up);
	st = htole16(VIRTIO_NET_S_LINK_UP);
	REQUIRE(vio_device_config_update(
		    r.dev, offsetof(struct virtio_net_config, status), &st,
		    2) == 0);
	vio_net_get_info(r.n, &in);
	CHECK(in.link_up);
	rig_down(&r);
}

/* ---- offload metadata (CSUM, TSO negotiated) ---- */

static void offload_rows(bool packed)
{
	struct rig r;
	offer_offloads = true;
	rig_up(&r, packed);
	offer_offloads = false;
	struct vio_net_info in;
	vio_net_get_info(r.n, &in);
	CHECK(in.csum && in.guest_csum && in.host_tso && in.guest_tso);
	static uint8_t f[65536 + 18];
	make_frame(f, sizeof(f), 5);
	struct vio_net_pkt k = {.data = f, .len = 1514};
	k.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	k.hdr.csum_start = htole16(34);
	k.hdr.csum_offset = htole16(16);
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), 1);
	struct virtio_net_hdr_v1 h;
	memcpy(&h, hd.last_tx, sizeof(h));
	CHECK(h.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM &&
	      le16toh(h.csum_start) == 34 && le16toh(h.csum_offset) == 16);
	/* the checksum field past the frame */
	k.hdr.csum_start = htole16(1510);
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), -EINVAL);
	k.hdr.csum_start = htole16(34);
	/* GSO: 64 KiB, with NEEDS_CSUM and an MSS only */
	k.len = sizeof(f);
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), -EINVAL); /* no GSO: > MTU */
	k.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), -EINVAL); /* no MSS */
	k.hdr.gso_size = htole16(1448);
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), 1);
	CHECK_EQ(hd.last_tx_len, VIO_NET_HDR_LEN + sizeof(f));
	memcpy(&h, hd.last_tx, sizeof(h));
	CHECK(h.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 &&
	      le16toh(h.gso_size) == 1448);
	CHECK(memcmp(hd.last_tx + VIO_NET_HDR_LEN, f, sizeof(f)) == 0);
	k.len++;
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), -EINVAL);
	k.len--;
	k.hdr.flags = 0;
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), -EINVAL);
	k.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	k.hdr.gso_type = VIRTIO_NET_HDR_GSO_UDP; /* UFO: never taken */
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), -EINVAL);
	k.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	CHECK_EQ(vio_net_send(r.n, 0, &k, 1), -EINVAL);

	/* a 20000-byte frame in (GUEST_TSO: frames up to 64 KiB), merged
	 * from 40 buffers */
	make_frame(f, 20000, 6);
	deliver(f, 20000, honest);
	struct vio_net_pkt p[2];
	CHECK_EQ(vio_net_recv(r.n, 0, p, 2, 0), 1);
	CHECK(p[0].len == 20000 && memcmp(p[0].data, f, 20000) == 0);
	CHECK_EQ(le16toh(p[0].hdr.num_buffers),
		 (20000 + 12 + RXBUF - 1) / RXBUF);
	CHECK_EQ(rx_errors(r.n), 0);
	rig_down(&r);
}

int main(void)
{
	vio_log_set_quiet(1); /* the lies are logged: expected */
	for (int packed = 0; packed < 2; packed++) {
		rx_honest_and_lies(packed);
		rx_breaks(packed, 0);
		rx_breaks(packed, 1);
		tx_rows(packed);
		ctrl_rows(packed);
		offload_rows(packed);
	}
	return test_result("net_driver_hostile");
}
