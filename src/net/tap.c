/* SPDX-License-Identifier: MIT */
/*
 * tap.c - the tap:NAME port: a Linux TAP interface (vio/net.h).
 *
 * One TAP queue fd per queue pair (IFF_MULTI_QUEUE), opened with
 * IFF_VNET_HDR and a 12-byte header (struct virtio_net_hdr_v1), so the
 * kernel reads and writes the same offload metadata a virtio-net driver
 * does: a checksum or TSO frame passes through unchanged both ways.
 *
 * Transmit (the driver's frames to the kernel): one writev of the header
 * and the frame straight from driver memory, no copy; a full tap queue
 * (EAGAIN) or an interface that is down drops the frame, which the device
 * counts.
 *
 * Receive (the kernel's frames to the driver): the pair's fd sits on the
 * pair's event loop (level-triggered).  Its callback reads up to
 * TAP_RX_BATCH frames, each straight into receive buffers the device
 * reserves (vio_net_device_rx_reserve, readv, vio_net_device_rx_commit),
 * then flushes once.  When the driver has no buffer the frame is read
 * into the pair's scratch buffer and offered to vio_net_device_rx, which
 * counts the drop (or delivers it, should buffers have come meanwhile):
 * the fd is always drained, so a full ring never blocks the interface nor
 * makes the loop spin.  A tap needs an event loop: a pair started without
 * one (inproc) is refused with -ENOTSUP.
 *
 * Offloads.  The kernel may hand us what the driver takes: when a pair
 * starts, TUNSETOFFLOAD gets TUN_F_CSUM/TSO4/TSO6/TSO_ECN/UFO from the
 * GUEST_ features the driver negotiated (the setting is per interface;
 * every pair of one device sets the same).  Without GUEST_CSUM the
 * kernel checksums every frame; its DATA_VALID flag is then cleared, as
 * the spec wants flags zero.
 *
 * Queues of pairs that do not run are detached (TUNSETQUEUE), so the
 * kernel does not steer frames to an fd nobody reads; so are those of
 * pairs that run but that the driver does not use (MQ, "parked" below).
 *
 * Threads: pair k's ops and callback run on pair k's thread; each pair
 * has its own fd, scratch buffer and iovec array, nothing else is
 * shared after creation.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "util/log.h"
#include <vio/net.h>

/* Largest frame the kernel hands a TAP reader: a 64 KiB GSO frame plus a
 * VLAN tag, with the header in front. */
#define TAP_FRAME_MAX (65536u + 4u)
#define TAP_BUF_SIZE (VIO_NET_HDR_LEN + TAP_FRAME_MAX)
/* Frames read per callback before the loop serves its other sources. */
#define TAP_RX_BATCH 64u
/* iovecs per readv/writev (the header's included); chains with more
 * segments go through the scratch buffer. */
#define TAP_IOV_MAX 256u

struct tap_port;

struct tap_pair {
	struct tap_port *tp;
	unsigned qp;
	int fd;
	bool attached; /* queue attached (TUNSETQUEUE) */
	bool watching; /* fd on the loop */
	bool parked;   /* the driver does not use the pair (MQ): detached */
	bool gone;     /* the fd failed (the interface was deleted) */
	/* set in start, cleared in stop; pair thread only */
	struct vio_net_device *dev;
	struct vio_loop *loop;
	bool guest_csum;
	size_t rx_max;	  /* bytes reserved per frame, header included */
	uint8_t *scratch; /* TAP_BUF_SIZE */
	struct iovec iov[TAP_IOV_MAX];
	struct vio_ratelimit rl;
	uint64_t rx_trunc, rx_refused, tx_err; /* for log lines */
};

struct tap_port {
	struct vio_net_port port; /* first: container */
	char name[IFNAMSIZ];
	char kind[IFNAMSIZ + 8]; /* "tap:NAME" for log lines */
	unsigned pairs;
	bool multi_queue;
	struct vio_ratelimit rl; /* port-wide lines (any pair's thread) */
	struct tap_pair pair[VIO_NET_MAX_PAIRS];
};

static struct tap_port *tap_of(struct vio_net_port *p)
{
	return (struct tap_port *)((char *)p - offsetof(struct tap_port, port));
}

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

/* Attach or detach pair's queue; a single-queue tap has nothing to do. */
static int tap_queue_attach(struct tap_pair *pr, bool on)
{
	if (!pr->tp->multi_queue || pr->attached == on)
		return 0;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	if (ioctl(pr->fd, TUNSETQUEUE, &ifr) < 0)
		return -errno;
	pr->attached = on;
	return 0;
}

/* ---- pairs the driver does not use ----
 *
 * With MQ a driver may run fewer pairs than have started (VQ_PAIRS_SET):
 * the device refuses frames for the others (-ENOTCONN).  The kernel
 * would go on steering flows to their queues, and those frames would be
 * lost: such a pair's queue is detached (the kernel then uses the
 * others) and its fd leaves the loop, until the driver uses the pair
 * again, seen when it sends on it, kicks its receiveq (rx_ready), or by
 * a check every TAP_PARK_NS.
 */
#define TAP_PARK_NS (100u * 1000000u)

static void tap_rx(void *arg);
static void tap_park_check(void *arg);

static bool tap_in_use(struct tap_pair *pr)
{
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(pr->dev, &m);
	return pr->qp < m.pairs;
}

static void tap_park(struct tap_pair *pr)
{
	if (pr->watching)
		pr->loop->del_fd(pr->loop, pr->fd);
	pr->watching = false;
	int r = tap_queue_attach(pr, false);
	if (r < 0)
		vio_log_warn("%s: pair %u: detach queue: %s", pr->tp->kind,
			     pr->qp, strerror(-r));
	/* what was queued for it is lost: drain it (a bounded queue) */
	for (unsigned i = 0; i < 4096; i++)
		if (read(pr->fd, pr->scratch, TAP_BUF_SIZE) < 0)
			break;
	pr->parked = true;
	/* rate-limited: a pair whose receiveq never starts comes and goes */
	vio_log_limited_at(&pr->rl, VIO_LOG_INFO,
			   "%s: pair %u not in use by the driver: its queue "
			   "is detached",
			   pr->tp->kind, pr->qp);
	if (pr->loop->set_timer(pr->loop, TAP_PARK_NS, tap_park_check, pr) < 0)
		vio_log_err("%s: pair %u: no timer: the pair stays detached "
			    "until the driver kicks or sends on it",
			    pr->tp->kind, pr->qp);
}

static void tap_unpark(struct tap_pair *pr)
{
	pr->loop->cancel_timer(pr->loop, tap_park_check, pr);
	pr->parked = false;
	int r = tap_queue_attach(pr, true);
	if (r == 0) {
		r = pr->loop->add_fd(pr->loop, pr->fd, 0, tap_rx, pr);
		pr->watching = r == 0;
	}
	if (r < 0)
		vio_log_err("%s: pair %u: attach queue again: %s", pr->tp->kind,
			    pr->qp, strerror(-r));
	else
		vio_log_limited_at(&pr->rl, VIO_LOG_INFO,
				   "%s: pair %u in use again: its queue is "
				   "attached",
				   pr->tp->kind, pr->qp);
}

static void tap_park_check(void *arg)
{
	struct tap_pair *pr = arg;
	if (!pr->dev || !pr->parked)
		return;
	if (tap_in_use(pr))
		tap_unpark(pr);
	else
		(void)pr->loop->set_timer(pr->loop, TAP_PARK_NS, tap_park_check,
					  pr);
}

static void tap_rx_ready(struct vio_net_port *p, struct vio_net_device *dev,
			 unsigned qp)
{
	struct tap_port *tp = tap_of(p);
	if (qp >= tp->pairs)
		return;
	struct tap_pair *pr = &tp->pair[qp];
	if (pr->dev == dev && pr->parked && tap_in_use(pr))
		tap_unpark(pr);
}

/* ---- transmit: the driver's frame to the kernel ---- */

static int tap_xmit(struct vio_net_port *p, struct vio_net_device *dev,
		    unsigned qp, const struct virtio_net_hdr_v1 *hdr,
		    const struct vio_iov *iov, unsigned n, size_t len)
{
	struct tap_port *tp = tap_of(p);
	if (qp >= tp->pairs)
		return -EINVAL;
	struct tap_pair *pr = &tp->pair[qp];
	if (pr->dev != dev)
		return -ENOTCONN;
	if (pr->parked)
		tap_unpark(pr); /* the driver sends on it: in use again */
	struct iovec *v = pr->iov;
	unsigned k;
	v[0].iov_base = (void *)hdr;
	v[0].iov_len = VIO_NET_HDR_LEN;
	if (n < TAP_IOV_MAX) {
		for (k = 0; k < n; k++) {
			v[k + 1].iov_base = iov[k].base;
			v[k + 1].iov_len = iov[k].len;
		}
		k = n + 1;
	} else {
		/* a chain of many small pieces: one copy */
		if (len > TAP_FRAME_MAX)
			return -EMSGSIZE;
		struct vio_cursor c;
		vio_cursor_init(&c, iov, n);
		v[1].iov_base = pr->scratch;
		v[1].iov_len = vio_cursor_read(&c, pr->scratch, len);
		k = 2;
	}
	ssize_t r = writev(pr->fd, v, (int)k);
	if (r >= 0)
		return 0;
	int e = errno;
	/* EAGAIN: the kernel's queue is full; EIO: the interface is down.
	 * Both are ordinary drops; anything else (EINVAL: metadata the
	 * kernel refused) is worth a line. */
	if (e != EAGAIN && e != EIO) {
		pr->tx_err++;
		vio_log_limited(&pr->rl, "%s: pair %u: write: %s (%llu so far)",
				tp->kind, qp, strerror(e),
				(unsigned long long)pr->tx_err);
	}
	return -e;
}

/* ---- receive: the kernel's frames to the driver ---- */

/* Clean the header the kernel wrote: num_buffers is the device's, and
 * DATA_VALID needs GUEST_CSUM.  false: the driver cannot take it. */
static bool tap_rx_hdr(struct tap_pair *pr, struct virtio_net_hdr_v1 *h)
{
	h->num_buffers = 0;
	if (!pr->guest_csum)
		h->flags &= (uint8_t)~VIRTIO_NET_HDR_F_DATA_VALID;
	return vio_net_device_rx_accepts(pr->dev, h);
}

/* No receive buffer: read one frame into scratch and hand it to the
 * device (which counts the drop, or delivers it if buffers came).
 * 1: a frame, 0: none left, <0: read error. */
static int tap_rx_scratch(struct tap_pair *pr)
{
	ssize_t r = read(pr->fd, pr->scratch, TAP_BUF_SIZE);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	if ((size_t)r < VIO_NET_HDR_LEN)
		return 1;
	struct virtio_net_hdr_v1 h;
	memcpy(&h, pr->scratch, sizeof(h));
	if (!tap_rx_hdr(pr, &h)) {
		pr->rx_refused++;
		return 1;
	}
	struct vio_iov f = {.base = pr->scratch + VIO_NET_HDR_LEN,
			    .len = (uint32_t)((size_t)r - VIO_NET_HDR_LEN)};
	(void)vio_net_device_rx(pr->dev, pr->qp, &h, &f, 1, f.len);
	return 1;
}

/* One frame straight into the driver's buffers seg[0..ns): the header
 * into h (checked there, then written to the buffers), the frame after
 * it.  1: a frame, 0: none left, <0: read error. */
static int tap_rx_direct(struct tap_pair *pr, const struct vio_iov *seg,
			 unsigned ns)
{
	struct virtio_net_hdr_v1 h;
	struct iovec *v = pr->iov;
	unsigned k = 1;
	size_t skip = VIO_NET_HDR_LEN, cap = 0;
	v[0].iov_base = &h;
	v[0].iov_len = sizeof(h);
	for (unsigned i = 0; i < ns && k < TAP_IOV_MAX; i++) {
		size_t l = seg[i].len, off = skip < l ? skip : l;
		skip -= off;
		if (l == off)
			continue;
		v[k].iov_base = (uint8_t *)seg[i].base + off;
		v[k].iov_len = l - off;
		cap += l - off;
		k++;
	}
	ssize_t r = readv(pr->fd, v, (int)k);
	if (r < 0) {
		int e = errno;
		vio_net_device_rx_cancel(pr->dev, pr->qp);
		return e == EAGAIN ? 0 : -e;
	}
	/* The kernel reports a frame's full length even when the buffers
	 * were shorter (the rest is cut): drop those. */
	size_t flen = (size_t)r;
	if (flen < VIO_NET_HDR_LEN || flen - VIO_NET_HDR_LEN > cap) {
		pr->rx_trunc++;
		vio_log_limited(&pr->rl,
				"%s: pair %u: a %zu-byte frame does not fit "
				"the driver's %zu bytes of buffers: dropped "
				"(%llu so far)",
				pr->tp->kind, pr->qp, flen, cap + sizeof(h),
				(unsigned long long)pr->rx_trunc);
		vio_net_device_rx_cancel(pr->dev, pr->qp);
		return 1;
	}
	if (!tap_rx_hdr(pr, &h)) {
		pr->rx_refused++;
		vio_net_device_rx_cancel(pr->dev, pr->qp);
		return 1;
	}
	struct vio_cursor c;
	vio_cursor_init(&c, seg, ns);
	vio_cursor_write(&c, &h, sizeof(h));
	(void)vio_net_device_rx_commit(pr->dev, pr->qp, flen);
	return 1;
}

static void tap_rx(void *arg)
{
	struct tap_pair *pr = arg;
	if (!pr->dev)
		return;
	bool nobuf = false;
	int r = 0;
	for (unsigned i = 0; i < TAP_RX_BATCH; i++) {
		if (!nobuf) {
			const struct vio_iov *seg;
			int ns = vio_net_device_rx_reserve(pr->dev, pr->qp,
							   pr->rx_max, &seg);
			if (ns > 0) {
				r = tap_rx_direct(pr, seg, (unsigned)ns);
				if (r <= 0)
					break;
				continue;
			}
			if (ns == -ENOTCONN) {
				tap_park(pr);
				return;
			}
			if (ns == 0)
				vio_net_device_rx_cancel(pr->dev, pr->qp);
			/* no buffer: the rest of the batch goes through
			 * scratch and vio_net_device_rx, which counts each
			 * frame it drops (reserve counts nothing: the fd
			 * may turn out empty) */
			nobuf = true;
		}
		r = tap_rx_scratch(pr);
		if (r <= 0)
			break;
	}
	if (r < 0 && r != -EINTR) {
		/* EBADFD: the interface was deleted under us.  Its fd stays
		 * in error: stop watching it rather than spin. */
		vio_log_err("%s: pair %u: read: %s: this pair receives no more "
			    "(was the interface deleted?)",
			    pr->tp->kind, pr->qp, strerror(-r));
		pr->loop->del_fd(pr->loop, pr->fd);
		pr->watching = false;
		pr->gone = true;
	}
	vio_net_device_rx_flush(pr->dev, pr->qp);
}

/* ---- pair start and stop ---- */

/* Bytes to reserve for one frame: 64 KiB with a GSO offload, else what
 * the device's MTU allows (header, Ethernet header, a VLAN tag). */
static size_t tap_rx_max(struct vio_device *vd)
{
	if (vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_TSO4) ||
	    vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_TSO6) ||
	    vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_UFO))
		return TAP_BUF_SIZE;
	uint16_t mtu = 0;
	if (vio_device_config_read(vd, offsetof(struct virtio_net_config, mtu),
				   &mtu, sizeof(mtu)) < 0)
		mtu = 0;
	mtu = le16toh(mtu);
	if (mtu < 68)
		mtu = 1500;
	return VIO_NET_HDR_LEN + 14u + 4u + mtu;
}

static unsigned tap_offload_flags(struct vio_device *vd)
{
	unsigned f = 0;
	if (!vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	f |= TUN_F_CSUM;
	if (vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_TSO4))
		f |= TUN_F_TSO4;
	if (vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_TSO6))
		f |= TUN_F_TSO6;
	if ((f & (TUN_F_TSO4 | TUN_F_TSO6)) &&
	    vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_ECN))
		f |= TUN_F_TSO_ECN;
	if (vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_UFO))
		f |= TUN_F_UFO;
	return f;
}

static int tap_start(struct vio_net_port *p, struct vio_net_device *dev,
		     unsigned qp, struct vio_loop *loop)
{
	struct tap_port *tp = tap_of(p);
	if (!loop) {
		/* rate-limited: a device without loops tries at each kick */
		vio_log_limited_at(&tp->rl, VIO_LOG_ERROR,
				   "%s: pair %u cannot start: a tap port needs "
				   "an event loop (vio serve, vio/run.h), and "
				   "this transport has none (inproc?)",
				   tp->kind, qp);
		return -ENOTSUP;
	}
	if (qp >= tp->pairs)
		return -EINVAL;
	struct tap_pair *pr = &tp->pair[qp];
	if (pr->dev)
		return -EBUSY;
	struct vio_device *vd = vio_net_device_dev(dev);
	unsigned off = tap_offload_flags(vd);
	if (ioctl(pr->fd, TUNSETOFFLOAD, (unsigned long)off) < 0) {
		/* the kernel refused a combination: take plain frames */
		vio_log_warn("%s: TUNSETOFFLOAD %#x: %m; offloads off",
			     tp->kind, off);
		if (ioctl(pr->fd, TUNSETOFFLOAD, 0ul) < 0)
			vio_log_warn("%s: TUNSETOFFLOAD 0: %m", tp->kind);
	}
	pr->guest_csum = vio_device_has_feature(vd, VIRTIO_NET_F_GUEST_CSUM);
	pr->rx_max = tap_rx_max(vd);
	int r = tap_queue_attach(pr, true);
	if (r < 0) {
		vio_log_err("%s: pair %u: attach queue: %s", tp->kind, qp,
			    strerror(-r));
		return r;
	}
	pr->dev = dev;
	pr->loop = loop;
	r = loop->add_fd(loop, pr->fd, 0, tap_rx, pr);
	pr->watching = r == 0;
	if (r < 0) {
		vio_log_err("%s: pair %u: add fd to loop: %s", tp->kind, qp,
			    strerror(-r));
		pr->dev = NULL;
		pr->loop = NULL;
		(void)tap_queue_attach(pr, false);
		return r;
	}
	return 0;
}

static void tap_stop(struct vio_net_port *p, struct vio_net_device *dev,
		     unsigned qp)
{
	struct tap_port *tp = tap_of(p);
	if (qp >= tp->pairs)
		return;
	struct tap_pair *pr = &tp->pair[qp];
	if (pr->dev != dev || !pr->loop)
		return;
	if (pr->watching)
		pr->loop->del_fd(pr->loop, pr->fd);
	if (pr->parked)
		pr->loop->cancel_timer(pr->loop, tap_park_check, pr);
	pr->watching = false;
	pr->parked = false;
	pr->loop = NULL;
	pr->dev = NULL;
	if (pr->gone)
		return; /* nothing to detach from */
	int r = tap_queue_attach(pr, false);
	if (r < 0)
		vio_log_warn("%s: pair %u: detach queue: %s", tp->kind, qp,
			     strerror(-r));
}

/* The device is gone: every pair has stopped already (stop runs before
 * a queue is freed); forget it in case one did not. */
static void tap_detach(struct vio_net_port *p, struct vio_net_device *dev)
{
	struct tap_port *tp = tap_of(p);
	for (unsigned i = 0; i < tp->pairs; i++)
		if (tp->pair[i].dev == dev && !tp->pair[i].loop)
			tp->pair[i].dev = NULL;
}

static void tap_free(struct vio_net_port *p)
{
	struct tap_port *tp = tap_of(p);
	for (unsigned i = 0; i < tp->pairs; i++) {
		struct tap_pair *pr = &tp->pair[i];
		/* every pair stopped (its fd left the loop) before */
		if (pr->fd >= 0)
			close(pr->fd);
		free(pr->scratch);
	}
	free(tp);
}

static const struct vio_net_port_ops tap_ops = {
    .start = tap_start,
    .stop = tap_stop,
    .xmit = tap_xmit,
    .rx_ready = tap_rx_ready,
    .detach = tap_detach,
    .free = tap_free,
};

/* ---- creation ---- */

/* Open one queue of the interface; name is updated with the kernel's
 * (a "tap%d" template becomes tap0).  fd or negative errno. */
static int tap_open(char name[IFNAMSIZ], bool multi_queue)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (multi_queue)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	memcpy(ifr.ifr_name, name, IFNAMSIZ);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = 0;
	int hs = VIO_NET_HDR_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hs) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	/* VERSION_1 headers are little-endian */
	int le = 1;
	if (ioctl(fd, TUNSETVNETLE, &le) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
#endif
	return fd;
}

struct vio_net_port *vio_net_port_tap_new(const char *name, unsigned pairs,
					  char *err, size_t errlen)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ || strchr(name, '/') ||
	    strchr(name, ' ')) {
		set_err(err, errlen, "tap: bad interface name \"%s\"",
			name ? name : "");
		errno = EINVAL;
		return NULL;
	}
	if (pairs == 0)
		pairs = 1;
	if (pairs > VIO_NET_MAX_PAIRS) {
		set_err(err, errlen, "tap:%s: %u queue pairs (at most %u)",
			name, pairs, VIO_NET_MAX_PAIRS);
		errno = EINVAL;
		return NULL;
	}
	struct tap_port *tp = calloc(1, sizeof(*tp));
	if (!tp) {
		set_err(err, errlen, "tap:%s: out of memory", name);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned i = 0; i < VIO_NET_MAX_PAIRS; i++)
		tp->pair[i].fd = -1;
	strncpy(tp->name, name, IFNAMSIZ - 1);
	tp->pairs = pairs;
	tp->multi_queue = true;
	int e = 0;
	for (unsigned i = 0; i < pairs; i++) {
		struct tap_pair *pr = &tp->pair[i];
		pr->tp = tp;
		pr->qp = i;
		int fd = tap_open(tp->name, tp->multi_queue);
		if (fd == -EINVAL && i == 0 && pairs == 1) {
			/* an existing single-queue tap (ip tuntap add without
			 * multi_queue): one pair is all it can serve */
			tp->multi_queue = false;
			fd = tap_open(tp->name, false);
		}
		if (fd < 0) {
			e = -fd;
			if (e == ENOENT || e == ENODEV)
				set_err(err, errlen,
					"tap:%s: /dev/net/tun: %s (no TUN "
					"driver?)",
					name, strerror(e));
			else if (e == EINVAL)
				set_err(err, errlen,
					"tap:%s: %s (a non-TAP interface of "
					"that name, or a TAP without "
					"multi_queue for %u pairs)",
					name, strerror(e), pairs);
			else
				set_err(err, errlen, "tap:%s: %s", name,
					strerror(e));
			break;
		}
		pr->fd = fd;
		pr->attached = true;
		pr->scratch = malloc(TAP_BUF_SIZE);
		if (!pr->scratch) {
			e = ENOMEM;
			set_err(err, errlen, "tap:%s: out of memory", name);
			break;
		}
	}
	/* queues attach when their pair starts */
	for (unsigned i = 0; !e && i < pairs; i++) {
		int r = tap_queue_attach(&tp->pair[i], false);
		if (r < 0) {
			e = -r;
			set_err(err, errlen, "tap:%s: detach queue: %s", name,
				strerror(e));
		}
	}
	if (e) {
		tap_free(&tp->port);
		errno = e;
		return NULL;
	}
	snprintf(tp->kind, sizeof(tp->kind), "tap:%s", tp->name);
	tp->port.ops = &tap_ops;
	tp->port.kind = "tap";
	tp->port.offloads = VIO_NET_PORT_TX_CSUM | VIO_NET_PORT_TX_TSO |
			    VIO_NET_PORT_TX_UFO | VIO_NET_PORT_RX_CSUM |
			    VIO_NET_PORT_RX_TSO;
	tp->port.max_pairs = pairs;
	return &tp->port;
}
