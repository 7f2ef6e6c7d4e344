/* SPDX-License-Identifier: MIT */
/*
 * The tap:NAME port (vio/net.h): a virtio-net device on a TAP interface,
 * served over vhost-user on vio's workers (vio/run.h, a queue pair per
 * worker), driven by vio's net driver through vio's frontend.  The test
 * runs in a network namespace of its own (unshare(CLONE_NEWNET); skipped,
 * exit 77, where that is not allowed), so the interfaces it makes vanish
 * with it.
 *
 * - Creation: a new interface appears and goes with the port; bad names
 *   and pair counts are refused with a reason; a persistent single-queue
 *   TAP made beforehand is attached to (one pair; two are refused).
 * - A pair started without an event loop (inproc) is refused, -ENOTSUP.
 * - Frames both ways, checked with an AF_PACKET socket bound to the TAP:
 *   driver to kernel and kernel to driver, 60 to 1514 bytes, counts and
 *   contents.  A driver that does not read: its ring fills, the rest is
 *   dropped and counted, what it holds arrives intact.
 * - Offload metadata through the TAP both ways: a UDP datagram the driver
 *   sends with NEEDS_CSUM and only the pseudo-header sum in its checksum
 *   field reaches a UDP socket on the TAP's address (the kernel would
 *   drop it without the metadata), and a datagram from that socket
 *   reaches the driver with NEEDS_CSUM (GUEST_CSUM negotiated) and
 *   checksums right once completed.  The same with a driver that takes
 *   no checksum offload: plain datagrams, flags 0, checksums done.
 * - Two queue pairs: frames sent on both pairs arrive, frames from the
 *   kernel arrive over the pairs.  The driver goes down to one pair
 *   (VQ_PAIRS_SET): the other pair's TAP queue is detached, every flow
 *   reaches the driver; back to two: the queue is attached again and
 *   takes flows.  Then the interface is deleted under
 *   the port: both pairs say so once and stop watching their fds, the
 *   driver's frames are dropped, teardown is clean.
 * - Teardown: every thread joined, every fd back.
 */
#include "net_tap_util.h"

static char tmpdir[200];

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_net_tap: watchdog: timed out\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* Log lines of the tap: a pair stopped receiving, a pair parked (not
 * in use by the driver), a pair back in use. */
static int gone_lines, park_lines, unpark_lines;
static void count_gone(void *opaque, enum vio_log_level lvl, const char *msg)
{
	(void)opaque;
	(void)lvl;
	if (strstr(msg, "receives no more"))
		__atomic_add_fetch(&gone_lines, 1, __ATOMIC_RELAXED);
	if (strstr(msg, "pair 1 not in use"))
		__atomic_add_fetch(&park_lines, 1, __ATOMIC_RELAXED);
	if (strstr(msg, "pair 1 in use again"))
		__atomic_add_fetch(&unpark_lines, 1, __ATOMIC_RELAXED);
}

/* ---- the device on vhost-user, the driver over the frontend ---- */

struct env {
	const char *ifname;
	unsigned pairs;
	struct vio_net_port *port;
	struct vio_net_device *nd;
	struct vio_run *run;
	struct vio_backend *be;
	pthread_t th;
	int stopfd;
	char sock[256];
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_frontend *f;
	struct vio_net *n;
	uint8_t dev_mac[6], tap_mac[6];
};

/* The backend's control thread: dispatch until stopfd fires. */
static void *control_thread(void *arg)
{
	struct env *e = arg;
	for (;;) {
		struct pollfd p[2] = {
		    {.fd = vio_backend_fd(e->be), .events = POLLIN},
		    {.fd = e->stopfd, .events = POLLIN},
		};
		int k = poll(p, 2, -1);
		if (k < 0 && errno == EINTR)
			continue;
		REQUIRE(k > 0);
		if (p[1].revents)
			return NULL;
		if (p[0].revents)
			(void)vio_backend_dispatch(e->be);
	}
}

static void env_up(struct env *e, const char *ifname, unsigned pairs, bool csum)
{
	memset(e, 0, sizeof(*e));
	e->ifname = ifname;
	e->pairs = pairs;
	char err[256];
	e->port = vio_net_port_tap_new(ifname, pairs, err, sizeof(err));
	if (!e->port)
		fprintf(stderr, "tap: %s\n", err);
	REQUIRE(e->port);
	CHECK(strcmp(e->port->kind, "tap") == 0);
	CHECK_EQ(e->port->max_pairs, pairs);
	CHECK(if_nametoindex(ifname) > 0);
	struct vio_net_device_opts o = {
	    .name = ifname,
	    .mac = {0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x50 + pairs)},
	    .queue_pairs = pairs,
	    .queue_size = 256,
	    .port = e->port,
	};
	e->nd = vio_net_device_new(&o, err, sizeof(err));
	if (!e->nd)
		fprintf(stderr, "net device: %s\n", err);
	REQUIRE(e->nd);
	vio_net_device_mac(e->nd, e->dev_mac);
	CHECK(memcmp(e->dev_mac, o.mac, 6) == 0);

	/* a pair's two queues on one worker, a worker per pair */
	struct vio_run_opts ro = {.threads = pairs, .group = 2};
	e->run = vio_run_new(&ro, err, sizeof(err));
	REQUIRE(e->run);
	struct vio_backend_opts bo = {0};
	vio_run_hooks(e->run, &bo);
	e->be = vio_backend_new(vio_net_device_dev(e->nd), &bo);
	REQUIRE(e->be);
	snprintf(e->sock, sizeof(e->sock), "%s/%s.sock", tmpdir, ifname);
	REQUIRE(vio_backend_listen(e->be, e->sock) == 0);
	e->stopfd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(e->stopfd >= 0);
	REQUIRE(pthread_create(&e->th, NULL, control_thread, e) == 0);

	e->mem = vio_mem_new();
	e->bus = vio_bus_new();
	struct vio_net_driver_opts dopt = {.csum = csum};
	e->drv = vio_net_driver_new(&dopt);
	REQUIRE(e->mem && e->bus && e->drv);
	REQUIRE(vio_bus_register(e->bus, e->drv) == 0);
	struct vio_frontend_opts fo = {
	    .mem = e->mem,
	    .device_id = VIRTIO_ID_NET,
	    .connect_timeout_ms = 5000,
	    .reply_timeout_ms = 5000,
	};
	e->f = vio_bus_connect(e->bus, e->sock, &fo, err, sizeof(err));
	if (!e->f)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(e->f);
	e->n = vio_net_from_vdev(vio_frontend_vdev(e->f));
	REQUIRE(e->n);
	struct vio_net_info info;
	vio_net_get_info(e->n, &info);
	CHECK_EQ(info.pairs, pairs);
	CHECK(memcmp(info.mac, e->dev_mac, 6) == 0);

	if_up(ifname, TAP_IP);
	if_mac(ifname, e->tap_mac);
}

static void env_down(struct env *e)
{
	vio_bus_remove(e->bus, vio_frontend_vdev(e->f));
	vio_frontend_free(e->f);
	vio_bus_free(e->bus);
	vio_net_driver_free(e->drv);
	vio_mem_free(e->mem);
	uint64_t one = 1;
	REQUIRE(write(e->stopfd, &one, sizeof(one)) == sizeof(one));
	pthread_join(e->th, NULL);
	close(e->stopfd);
	vio_backend_free(e->be);
	vio_run_free(e->run);
	vio_net_device_free(e->nd);
	vio_net_port_free(e->port);
	/* a tap the port made goes with it */
	CHECK_EQ(if_nametoindex(e->ifname), 0);
}

/* Send count ETYPE frames from the driver on pair qp. */
static void drv_send(struct env *e, unsigned qp, const uint8_t *dst,
		     uint32_t seq0, unsigned count)
{
	static uint8_t buf[16][1514];
	unsigned done = 0;
	uint64_t deadline = now_ms() + 10000;
	while (done < count) {
		struct vio_net_pkt p[16];
		unsigned k = count - done < 16 ? count - done : 16;
		for (unsigned i = 0; i < k; i++) {
			uint32_t seq = seq0 + done + i;
			memset(&p[i], 0, sizeof(p[i]));
			p[i].len = (uint32_t)frame_len(seq);
			p[i].data = buf[i];
			make_frame(buf[i], p[i].len, dst, e->dev_mac, seq);
		}
		int r = vio_net_send(e->n, qp, p, k);
		REQUIRE(r >= 0);
		done += (unsigned)r;
		if (r == 0) {
			REQUIRE(now_ms() < deadline);
			(void)vio_net_tx_reclaim(e->n, qp);
		}
	}
}

/* Frames of [seq0, seq0 + count) on the packet socket: each once, intact. */
static unsigned pkt_recv(int s, const uint8_t *dst, const uint8_t *src,
			 uint32_t seq0, unsigned count)
{
	bool seen[FLOOD] = {0};
	unsigned got = 0, bad = 0;
	REQUIRE(count <= FLOOD);
	uint64_t deadline = now_ms() + 5000;
	while (got < count && now_ms() < deadline) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
			break;
		static uint8_t f[2048];
		ssize_t r = recv(s, f, sizeof(f), MSG_DONTWAIT);
		if (r < 0)
			continue;
		int i = frame_check(f, (size_t)r, dst, src, seq0, count, &bad);
		if (i < 0)
			continue;
		CHECK(!seen[i]);
		if (!seen[i])
			got++;
		seen[i] = true;
	}
	CHECK_EQ(bad, 0);
	return got;
}

/* Frames of [seq0, seq0 + count) at the driver, over every pair. */
static unsigned drv_recv(struct env *e, const uint8_t *dst, const uint8_t *src,
			 uint32_t seq0, unsigned count)
{
	bool seen[FLOOD] = {0};
	unsigned got = 0, bad = 0, turn = 0;
	REQUIRE(count <= FLOOD);
	uint64_t deadline = now_ms() + 5000;
	while (got < count && now_ms() < deadline) {
		struct vio_net_pkt p[32];
		unsigned qp = turn++ % e->pairs;
		int r = vio_net_recv(e->n, qp, p, 32, e->pairs > 1 ? 10 : 100);
		REQUIRE(r >= 0);
		for (int j = 0; j < r; j++) {
			int i = frame_check(p[j].data, p[j].len, dst, src, seq0,
					    count, &bad);
			if (i < 0)
				continue;
			CHECK(!seen[i]);
			if (!seen[i])
				got++;
			seen[i] = true;
		}
	}
	CHECK_EQ(bad, 0);
	return got;
}

/* ---- cases ---- */

static void test_create(void)
{
	char err[200];
	err[0] = 0;
	CHECK(vio_net_port_tap_new("", 1, err, sizeof(err)) == NULL);
	CHECK(err[0] != 0);
	CHECK(vio_net_port_tap_new("a-name-far-too-long-for-linux", 1, err,
				   sizeof(err)) == NULL);
	err[0] = 0;
	CHECK(vio_net_port_tap_new("viot9", VIO_NET_MAX_PAIRS + 1, err,
				   sizeof(err)) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(strstr(err, "pairs") != NULL);
	/* an interface that is not a TAP */
	CHECK(vio_net_port_tap_new("lo", 1, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "lo") != NULL);

	/* made, and gone with the port */
	struct vio_net_port *p =
	    vio_net_port_tap_new("viot1", 1, err, sizeof(err));
	REQUIRE(p);
	CHECK(if_nametoindex("viot1") > 0);
	/* no event loop: refused before touching the device */
	CHECK_EQ(p->ops->start(p, NULL, 0, NULL), -ENOTSUP);
	vio_net_port_free(p);
	CHECK_EQ(if_nametoindex("viot1"), 0);

	/* a persistent single-queue TAP made beforehand: attached to */
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "viop0");
	REQUIRE(ioctl(fd, TUNSETIFF, &ifr) == 0);
	REQUIRE(ioctl(fd, TUNSETPERSIST, 1) == 0);
	close(fd);
	err[0] = 0;
	CHECK(vio_net_port_tap_new("viop0", 2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "multi_queue") != NULL);
	p = vio_net_port_tap_new("viop0", 1, err, sizeof(err));
	CHECK(p != NULL);
	vio_net_port_free(p);
	CHECK(if_nametoindex("viop0") > 0); /* still persistent */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(ioctl(fd, TUNSETIFF, &ifr) == 0);
	REQUIRE(ioctl(fd, TUNSETPERSIST, 0) == 0);
	close(fd);
	CHECK_EQ(if_nametoindex("viop0"), 0);
}

/* csum: the driver takes CSUM and GUEST_CSUM (offload metadata both
 * ways), else plain frames only */
static void test_frames(const char *ifname, bool csum)
{
	struct env e;
	env_up(&e, ifname, 1, csum);
	struct sockaddr_ll sll;
	int ps = pkt_sock(ifname, &sll);

	/* driver to kernel */
	drv_send(&e, 0, e.tap_mac, 1000, 64);
	CHECK_EQ(pkt_recv(ps, e.tap_mac, e.dev_mac, 1000, 64), 64);

	/* kernel to driver */
	static uint8_t f[1514];
	memcpy(sll.sll_addr, e.dev_mac, 6);
	for (uint32_t seq = 2000; seq < 2064; seq++) {
		size_t len = frame_len(seq);
		make_frame(f, len, e.dev_mac, e.tap_mac, seq);
		CHECK_EQ(
		    sendto(ps, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)),
		    (ssize_t)len);
	}
	CHECK_EQ(drv_recv(&e, e.dev_mac, e.tap_mac, 2000, 64), 64);

	/* the driver does not take its frames: its ring fills, the rest
	 * is dropped and counted, the tap keeps being drained */
	struct vio_net_stats s0, s1;
	CHECK_EQ(vio_net_device_stats(e.nd, 0, &s0), 0);
	for (uint32_t seq = 5000; seq < 5000 + FLOOD; seq++) {
		size_t len = frame_len(seq);
		make_frame(f, len, e.dev_mac, e.tap_mac, seq);
		CHECK_EQ(
		    sendto(ps, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)),
		    (ssize_t)len);
	}
	uint64_t deadline = now_ms() + 5000;
	do {
		CHECK_EQ(vio_net_device_stats(e.nd, 0, &s1), 0);
		if (s1.rx_packets + s1.rx_no_buffer >=
		    s0.rx_packets + s0.rx_no_buffer + FLOOD)
			break;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	} while (now_ms() < deadline);
	uint64_t took = s1.rx_packets - s0.rx_packets;
	uint64_t dropped = s1.rx_no_buffer - s0.rx_no_buffer;
	CHECK(took > 0 && took < FLOOD);
	CHECK(dropped > 0);
	/* exact: a reserve that finds no buffer counts nothing, the frame
	 * the tap then drops counts once (before: one extra count when the
	 * ring and the tap ran dry together) */
	CHECK_EQ(took + dropped, FLOOD);
	CHECK_EQ(drv_recv(&e, e.dev_mac, e.tap_mac, 5000, (unsigned)took),
		 took);

	/* offload metadata, driver to kernel: only a datagram whose
	 * NEEDS_CSUM reached the kernel checksums right there (without
	 * CSUM: a datagram with its checksum done) */
	CHECK_EQ(vio_net_has_feature(e.n, VIRTIO_NET_F_CSUM), csum);
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(us >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(UDP_TAP)};
	REQUIRE(inet_pton(AF_INET, TAP_IP, &a.sin_addr) == 1);
	REQUIRE(bind(us, (struct sockaddr *)&a, sizeof(a)) == 0);
	static uint8_t uf[256];
	const char *msg = "vio tap: partial checksum, completed by the kernel";
	struct vio_net_pkt up = {.data = uf};
	up.len = (uint32_t)make_udp(uf, e.tap_mac, e.dev_mac, msg, csum);
	/* the field alone is not a valid checksum: the metadata is needed */
	CHECK_EQ(
	    csum_fold(csum_add(udp_pseudo(uf + 14, (uint16_t)(up.len - 34)),
			       uf + 34, up.len - 34)) != 0xffff,
	    csum);
	if (csum) {
		up.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		up.hdr.csum_start = 34;
		up.hdr.csum_offset = 6;
	}
	CHECK_EQ(vio_net_send(e.n, 0, &up, 1), 1);
	struct pollfd pu = {.fd = us, .events = POLLIN};
	CHECK_EQ(poll(&pu, 1, 5000), 1);
	char got[128] = {0};
	CHECK_EQ(recv(us, got, sizeof(got) - 1, MSG_DONTWAIT),
		 (ssize_t)strlen(msg));
	CHECK(strcmp(got, msg) == 0);

	/* offload metadata, kernel to driver */
	CHECK_EQ(vio_net_has_feature(e.n, VIRTIO_NET_F_GUEST_CSUM), csum);
	arp_add(ifname, DEV_IP, e.dev_mac);
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons(UDP_DEV)};
	REQUIRE(inet_pton(AF_INET, DEV_IP, &to.sin_addr) == 1);
	const char *msg2 = "vio tap: from the kernel, checksum left to do";
	CHECK_EQ(sendto(us, msg2, strlen(msg2), 0, (struct sockaddr *)&to,
			sizeof(to)),
		 (ssize_t)strlen(msg2));
	bool found = false;
	deadline = now_ms() + 5000;
	while (!found && now_ms() < deadline) {
		struct vio_net_pkt p[16];
		int r = vio_net_recv(e.n, 0, p, 16, 100);
		REQUIRE(r >= 0);
		for (int j = 0; j < r && !found; j++) {
			uint8_t *d = p[j].data;
			if (p[j].len < 42 || d[12] != 0x08 || d[13] != 0 ||
			    d[23] != IPPROTO_UDP ||
			    (d[36] << 8 | d[37]) != UDP_DEV)
				continue;
			found = true;
			uint16_t ulen = (uint16_t)(d[38] << 8 | d[39]);
			CHECK_EQ(ulen, 8 + strlen(msg2));
			CHECK(memcmp(d + 42, msg2, strlen(msg2)) == 0);
			/* GUEST_CSUM: left to do; else done, flags 0 */
			if (csum)
				CHECK(p[j].hdr.flags &
				      VIRTIO_NET_HDR_F_NEEDS_CSUM);
			else
				CHECK_EQ(p[j].hdr.flags, 0);
			if (p[j].hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
				CHECK_EQ(p[j].hdr.csum_start, 34);
				CHECK_EQ(p[j].hdr.csum_offset, 6);
				/* complete it as a device would */
				uint16_t c = (uint16_t)~csum_fold(
				    csum_add(0, d + 34, ulen));
				d[40] = (uint8_t)(c >> 8);
				d[41] = (uint8_t)c;
			}
			CHECK_EQ(csum_fold(csum_add(udp_pseudo(d + 14, ulen),
						    d + 34, ulen)),
				 0xffff);
		}
	}
	CHECK(found);
	close(us);

	struct vio_net_stats s;
	CHECK_EQ(vio_net_device_stats(e.nd, 0, &s), 0);
	CHECK(s.tx_packets >= 65);
	CHECK(s.rx_packets >= 65 + took);
	CHECK_EQ(s.tx_dropped, 0);
	close(ps);
	env_down(&e);
}

static void test_two_pairs(void)
{
	struct env e;
	env_up(&e, "viom0", 2, true);
	struct sockaddr_ll sll;
	int ps = pkt_sock("viom0", &sll);
	drv_send(&e, 0, e.tap_mac, 3000, 32);
	drv_send(&e, 1, e.tap_mac, 3032, 32);
	CHECK_EQ(pkt_recv(ps, e.tap_mac, e.dev_mac, 3000, 64), 64);
	static uint8_t f[1514];
	memcpy(sll.sll_addr, e.dev_mac, 6);
	for (uint32_t seq = 4000; seq < 4064; seq++) {
		size_t len = frame_len(seq);
		make_frame(f, len, e.dev_mac, e.tap_mac, seq);
		CHECK_EQ(
		    sendto(ps, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)),
		    (ssize_t)len);
	}
	CHECK_EQ(drv_recv(&e, e.dev_mac, e.tap_mac, 4000, 64), 64);
	struct vio_net_stats s0, s1;
	CHECK_EQ(vio_net_device_stats(e.nd, 0, &s0), 0);
	CHECK_EQ(vio_net_device_stats(e.nd, 1, &s1), 0);
	CHECK(s0.tx_packets >= 32);
	CHECK(s1.tx_packets >= 32);
	close(ps);

	/* the driver runs one pair of the two (VQ_PAIRS_SET): frames the
	 * kernel steers to pair 1's queue would be lost, so that queue is
	 * detached as soon as the device refuses one; then every flow
	 * reaches the driver on pair 0 */
	vio_log_set_handler(count_gone, NULL);
	arp_add("viom0", DEV_IP, e.dev_mac);
	CHECK_EQ(vio_net_set_pairs(e.n, 1), 0);
	udp_flows('A', 32); /* some of these are lost */
	CHECK(wait_count(&park_lines, 1));
	(void)udp_recv(e.n, 1, 'A', 32);
	udp_flows('B', 32);
	CHECK_EQ(udp_recv(e.n, 1, 'B', 32), 32);
	/* both pairs again: pair 1's queue comes back */
	CHECK_EQ(vio_net_device_stats(e.nd, 1, &s1), 0);
	CHECK_EQ(vio_net_set_pairs(e.n, 2), 0);
	CHECK(wait_count(&unpark_lines, 1));
	udp_flows('C', 32);
	CHECK_EQ(udp_recv(e.n, 2, 'C', 32), 32);
	struct vio_net_stats s2;
	CHECK_EQ(vio_net_device_stats(e.nd, 1, &s2), 0);
	CHECK(s2.rx_packets > s1.rx_packets);
	CHECK_EQ(__atomic_load_n(&park_lines, __ATOMIC_RELAXED), 1);
	CHECK_EQ(__atomic_load_n(&unpark_lines, __ATOMIC_RELAXED), 1);

	/* the interface deleted under the port: each pair's fd errs once,
	 * leaves its loop (no spinning); frames sent then are dropped */
	link_del("viom0");
	uint64_t deadline = now_ms() + 5000;
	while (__atomic_load_n(&gone_lines, __ATOMIC_RELAXED) < 2 &&
	       now_ms() < deadline) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	CHECK_EQ(__atomic_load_n(&gone_lines, __ATOMIC_RELAXED), 2);
	drv_send(&e, 0, e.tap_mac, 6000, 1);
	do {
		CHECK_EQ(vio_net_device_stats(e.nd, 0, &s0), 0);
		if (s0.tx_dropped)
			break;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	} while (now_ms() < deadline);
	CHECK_EQ(s0.tx_dropped, 1);
	vio_log_set_handler(NULL, NULL);
	CHECK_EQ(gone_lines, 2);
	env_down(&e);
}

int main(void)
{
	signal(SIGALRM, watchdog);
	alarm(50);
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr,
			"test_net_tap: SKIP: unshare(CLONE_NEWNET): %s "
			"(needs root or user namespaces)\n",
			strerror(errno));
		return 77;
	}
	if (access("/dev/net/tun", R_OK | W_OK) != 0) {
		fprintf(stderr, "test_net_tap: SKIP: /dev/net/tun: %s\n",
			strerror(errno));
		return 77;
	}
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-net-tap-XXXXXX",
		 t && *t ? t : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	if_up("lo", NULL);
	/* no IPv6 chatter (router solicitations, MLD) on the test's taps:
	 * every frame the driver sees is one the test sent */
	FILE *sy = fopen("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w");
	if (sy) {
		fputs("1", sy);
		fclose(sy);
	}
	int fds0 = test_count_fds();

	test_create();
	test_frames("viot0", true);
	test_frames("viot2", false);
	test_two_pairs();

	CHECK_EQ(test_count_fds(), fds0);
	rmdir(tmpdir);
	return test_result("net_tap");
}
