/* SPDX-License-Identifier: MIT */
/*
 * The learning switch (vio/net.h) joining three virtio-net devices, each
 * served over the in-process transport and driven by vio's net driver.
 * One thread polls all three devices: every port op of the switch runs on
 * it, as the switch requires.
 *
 * - Broadcast from A is flooded to B and C (contents checked), counted
 *   as A's rx and flooded, B's and C's tx.
 * - Learning: B answers A by unicast, then A sends to B: each reaches its
 *   destination only, nothing is flooded and C gets nothing more.
 * - A burst of unicast frames of many sizes, all delivered intact.
 * - Two pairs per device: a frame sent on pair 1 arrives on pair 1, or
 *   on pair 0 once the receiver's driver uses one pair only.
 * - A receiver that does not take its frames (C's ring fills): the frames
 *   for C are dropped and counted (switch and device), the others still
 *   flow; C then reads what it had, intact.
 * - A port whose device stops (C's driver removed) is delivered to no
 *   more: a broadcast reaches B only.
 * - The one-thread rule broken on purpose (A's frames handled on the
 *   test's thread): debug builds log it once.
 * - Teardown: every fd back.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include <vio/bus.h>
#include <vio/inproc.h>
#include <vio/log.h>
#include <vio/mem.h>
#include <vio/net.h>

#define NDEV 3
#define ETYPE 0x88b5 /* local experimental: no stack answers it */
#define QSIZE 64

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_net_switch: watchdog: timed out\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct node {
	struct vio_net_device *nd;
	struct vio_net_port *port;
	struct vio_mem *mem;
	struct vio_inproc *ip;
	struct vio_drvdev *vdev;
	struct vio_net *n;
	uint8_t mac[6];
	bool on_bus;
};

static struct vio_net_switch *sw;
static struct node node[NDEV];
static struct vio_bus *bus;
static struct vio_driver *drv;
static pthread_t poller;
static int stopfd = -1;

/* The one thread that runs every device of the switch. */
static void *poll_thread(void *arg)
{
	(void)arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	REQUIRE(ep >= 0);
	struct epoll_event ev = {.events = EPOLLIN};
	for (unsigned i = 0; i < NDEV; i++) {
		ev.data.u32 = i;
		REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD,
				  vio_inproc_device_fd(node[i].ip), &ev) == 0);
	}
	ev.data.u32 = NDEV;
	REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, stopfd, &ev) == 0);
	for (;;) {
		struct epoll_event evs[NDEV + 1];
		int k = epoll_wait(ep, evs, NDEV + 1, -1);
		if (k < 0 && errno == EINTR)
			continue;
		REQUIRE(k > 0);
		for (int j = 0; j < k; j++) {
			unsigned i = evs[j].data.u32;
			if (i == NDEV) {
				close(ep);
				return NULL;
			}
			int r = vio_inproc_device_poll(node[i].ip, 0);
			CHECK(r >= 0);
		}
	}
}

/* A frame: dst, src, ETYPE, then a 4-byte sequence number and bytes
 * derived from it, len bytes in all. */
static void make_frame(uint8_t *f, size_t len, const uint8_t *dst,
		       const uint8_t *src, uint32_t seq)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	memcpy(f + 14, &seq, 4);
	for (size_t i = 18; i < len; i++)
		f[i] = (uint8_t)(seq * 31u + i);
}

static bool frame_ok(const struct vio_net_pkt *p, const uint8_t *dst,
		     const uint8_t *src, uint32_t seq, size_t len)
{
	static uint8_t want[2048];
	if (p->len != len || len > sizeof(want))
		return false;
	make_frame(want, len, dst, src, seq);
	return memcmp(p->data, want, len) == 0;
}

static size_t frame_len(uint32_t seq)
{
	return 60 + (seq * 97u) % (1514 - 60 + 1);
}

static void send_frames_on(struct node *from, unsigned qp, const uint8_t *dst,
			   uint32_t seq0, unsigned count)
{
	static uint8_t buf[32][1514];
	unsigned done = 0;
	uint64_t deadline = now_ms() + 10000;
	while (done < count) {
		struct vio_net_pkt p[32];
		unsigned k = count - done < 32 ? count - done : 32;
		for (unsigned i = 0; i < k; i++) {
			uint32_t seq = seq0 + done + i;
			memset(&p[i], 0, sizeof(p[i]));
			p[i].len = (uint32_t)frame_len(seq);
			p[i].data = buf[i];
			make_frame(buf[i], p[i].len, dst, from->mac, seq);
		}
		int r = vio_net_send(from->n, qp, p, k);
		REQUIRE(r >= 0);
		done += (unsigned)r;
		if (r == 0) {
			/* ring full: take back what the device used */
			REQUIRE(now_ms() < deadline);
			(void)vio_net_tx_reclaim(from->n, qp);
		}
	}
}

static void send_frames(struct node *from, const uint8_t *dst, uint32_t seq0,
			unsigned count)
{
	send_frames_on(from, 0, dst, seq0, count);
}

/* Receive exactly count frames of ETYPE from src (seq0...), checking
 * each; other frames are ignored.  Returns how many arrived in time. */
static unsigned recv_frames_on(struct node *to, unsigned qp, const uint8_t *dst,
			       const uint8_t *src, uint32_t seq0,
			       unsigned count, int wait_ms)
{
	unsigned got = 0;
	uint64_t deadline = now_ms() + (uint64_t)wait_ms;
	while (got < count) {
		int left = (int)(deadline - now_ms());
		if (now_ms() >= deadline)
			break;
		struct vio_net_pkt p[32];
		int r = vio_net_recv(to->n, qp, p, 32, left);
		REQUIRE(r >= 0);
		for (int i = 0; i < r; i++) {
			const uint8_t *d = p[i].data;
			if (p[i].len < 18 || d[12] != (ETYPE >> 8) ||
			    d[13] != (ETYPE & 0xff))
				continue;
			uint32_t seq;
			memcpy(&seq, d + 14, 4);
			CHECK_EQ(seq, seq0 + got);
			CHECK(frame_ok(&p[i], dst, src, seq0 + got,
				       frame_len(seq0 + got)));
			got++;
		}
	}
	return got;
}

static unsigned recv_frames(struct node *to, const uint8_t *dst,
			    const uint8_t *src, uint32_t seq0, unsigned count,
			    int wait_ms)
{
	return recv_frames_on(to, 0, dst, src, seq0, count, wait_ms);
}

/* Nothing more arrives at to (a short wait is the point: the frame would
 * have arrived within it; it is bounded and only reached on success). */
static unsigned recv_none(struct node *to)
{
	struct vio_net_pkt p[32];
	unsigned extra = 0;
	int r;
	while ((r = vio_net_recv(to->n, 0, p, 32, 50)) > 0)
		for (int i = 0; i < r; i++) {
			const uint8_t *d = p[i].data;
			if (p[i].len >= 14 && d[12] == (ETYPE >> 8) &&
			    d[13] == (ETYPE & 0xff))
				extra++;
		}
	return extra;
}

static struct vio_net_switch_stats st(unsigned i)
{
	struct vio_net_switch_stats s;
	CHECK_EQ(vio_net_switch_stats(sw, i, &s), 0);
	return s;
}

/* Wait (bounded) until port i's driver sent want frames in all: the
 * switch handled them. */
static bool wait_rx(unsigned i, uint64_t want)
{
	uint64_t deadline = now_ms() + 5000;
	while (st(i).rx_packets < want) {
		if (now_ms() >= deadline)
			return false;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return true;
}

static void setup(void)
{
	sw = vio_net_switch_new();
	REQUIRE(sw);
	static const char *names[NDEV] = {"a", "b", "c"};
	for (unsigned i = 0; i < NDEV; i++) {
		struct node *nd = &node[i];
		nd->port = vio_net_switch_port(sw, names[i]);
		REQUIRE(nd->port);
		CHECK(strcmp(nd->port->kind, "switch") == 0);
		/* plain frames in (no tx offload), any frame out */
		CHECK_EQ(nd->port->offloads, VIO_NET_PORT_RX_CSUM);
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(i + 1)};
		memcpy(nd->mac, mac, 6);
		struct vio_net_device_opts o = {
		    .name = names[i],
		    .queue_size = QSIZE,
		    .queue_pairs = 2,
		    .port = nd->port,
		};
		memcpy(o.mac, mac, 6);
		char err[200];
		nd->nd = vio_net_device_new(&o, err, sizeof(err));
		if (!nd->nd)
			fprintf(stderr, "vio_net_device_new: %s\n", err);
		REQUIRE(nd->nd);
		nd->mem = vio_mem_new();
		REQUIRE(nd->mem);
		nd->ip = vio_inproc_new(vio_net_device_dev(nd->nd), nd->mem);
		REQUIRE(nd->ip);
		nd->vdev = vio_inproc_vdev(nd->ip);
	}
	CHECK_EQ(vio_net_switch_num_ports(sw), NDEV);
	stopfd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(stopfd >= 0);
	REQUIRE(pthread_create(&poller, NULL, poll_thread, NULL) == 0);
	/* Over inproc a pair starts at its first kick.  Each probe kicks the
	 * receive queues, then sets the pair count through the control
	 * queue and waits for the answer: once it returns, the poll thread
	 * took those kicks too (inproc serves a device's kicks in queue
	 * order), so every port runs before the test sends anything. */
	bus = vio_bus_new();
	REQUIRE(bus);
	struct vio_net_driver_opts dopt = {.queue_size = QSIZE};
	drv = vio_net_driver_new(&dopt);
	REQUIRE(drv);
	REQUIRE(vio_bus_register(bus, drv) == 0);
	for (unsigned i = 0; i < NDEV; i++) {
		int r = vio_bus_add(bus, node[i].vdev);
		if (r)
			fprintf(stderr, "vio_bus_add: %s\n", strerror(-r));
		REQUIRE(r == 0);
		node[i].on_bus = true;
		node[i].n = vio_net_from_vdev(node[i].vdev);
		REQUIRE(node[i].n);
	}
}

static void stop_poller(void)
{
	if (stopfd < 0)
		return;
	uint64_t one = 1;
	REQUIRE(write(stopfd, &one, sizeof(one)) == sizeof(one));
	pthread_join(poller, NULL);
	close(stopfd);
	stopfd = -1;
}

/* log lines about the switch's thread */
static int thread_lines;
static void count_lines(void *opaque, enum vio_log_level lvl, const char *msg)
{
	(void)opaque;
	(void)lvl;
	if (strstr(msg, "switch") && strstr(msg, "second thread"))
		__atomic_add_fetch(&thread_lines, 1, __ATOMIC_RELAXED);
}

static void teardown(void)
{
	for (unsigned i = 0; i < NDEV; i++)
		if (node[i].on_bus)
			vio_bus_remove(bus, node[i].vdev);
	vio_bus_free(bus);
	vio_net_driver_free(drv);
	stop_poller();
	for (unsigned i = 0; i < NDEV; i++) {
		vio_inproc_free(node[i].ip);
		vio_net_device_free(node[i].nd);
		vio_mem_free(node[i].mem);
	}
	vio_net_switch_free(sw);
}

int main(void)
{
	signal(SIGALRM, watchdog);
	alarm(50);
	int fds0 = test_count_fds();
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct node *a = &node[0], *b = &node[1], *c = &node[2];

	/* bad arguments */
	CHECK(vio_net_switch_port(NULL, "x") == NULL);
	CHECK_EQ(vio_net_switch_num_ports(NULL), 0);

	setup();
	CHECK_EQ(
	    vio_net_switch_stats(sw, NDEV, &(struct vio_net_switch_stats){0}),
	    -EINVAL);
	uint32_t seq = 1;

	/* broadcast: flooded to both others */
	send_frames(a, bcast, seq, 1);
	CHECK_EQ(recv_frames(b, bcast, a->mac, seq, 1, 5000), 1);
	CHECK_EQ(recv_frames(c, bcast, a->mac, seq, 1, 5000), 1);
	seq++;
	CHECK_EQ(st(0).rx_packets, 1);
	CHECK_EQ(st(0).flooded, 1);
	CHECK_EQ(st(1).tx_packets, 1);
	CHECK_EQ(st(2).tx_packets, 1);
	CHECK_EQ(st(0).tx_packets, 0);
	CHECK_EQ(st(1).tx_bytes, frame_len(1));

	/* B answers A (learnt from the broadcast): unicast, no flooding */
	send_frames(b, a->mac, seq, 1);
	CHECK_EQ(recv_frames(a, a->mac, b->mac, seq, 1, 5000), 1);
	seq++;
	CHECK_EQ(st(1).flooded, 0);
	CHECK_EQ(st(1).rx_packets, 1);
	CHECK_EQ(st(0).tx_packets, 1);
	/* A to B (learnt just now) */
	send_frames(a, b->mac, seq, 1);
	CHECK_EQ(recv_frames(b, b->mac, a->mac, seq, 1, 5000), 1);
	seq++;
	CHECK_EQ(st(0).flooded, 1);
	CHECK_EQ(st(2).tx_packets, 1); /* C saw the broadcast only */

	/* a burst, A to B, many sizes */
	for (unsigned round = 0; round < 8; round++) {
		send_frames(a, b->mac, seq, 40);
		CHECK_EQ(recv_frames(b, b->mac, a->mac, seq, 40, 5000), 40);
		seq += 40;
	}
	CHECK_EQ(st(0).flooded, 1);
	CHECK_EQ(st(2).tx_packets, 1);
	CHECK_EQ(st(1).tx_packets, 1 + 1 + 320);
	CHECK_EQ(recv_none(c), 0);

	/* pairs: a frame sent on pair 1 goes to pair 1; to pair 0 when the
	 * receiver's driver uses one pair only (VQ_PAIRS_SET 1) */
	send_frames_on(a, 1, b->mac, seq, 10);
	CHECK_EQ(recv_frames_on(b, 1, b->mac, a->mac, seq, 10, 5000), 10);
	seq += 10;
	CHECK_EQ(vio_net_set_pairs(b->n, 1), 0);
	send_frames_on(a, 1, b->mac, seq, 10);
	CHECK_EQ(recv_frames_on(b, 0, b->mac, a->mac, seq, 10, 5000), 10);
	seq += 10;
	CHECK_EQ(st(1).dropped, 0);
	CHECK_EQ(st(1).tx_packets, 1 + 1 + 320 + 20);
	CHECK_EQ(vio_net_set_pairs(b->n, 2), 0);

	/* C does not read: its ring fills; B still gets every frame */
	uint32_t cseq = seq;
	unsigned sent = 0;
	for (unsigned round = 0; round < 6; round++) {
		send_frames(a, bcast, seq, 20);
		CHECK_EQ(recv_frames(b, bcast, a->mac, seq, 20, 5000), 20);
		seq += 20;
		sent += 20;
	}
	struct vio_net_switch_stats sc = st(2);
	CHECK(sc.dropped > 0);
	CHECK_EQ(sc.tx_packets - 1 + sc.dropped, sent);
	struct vio_net_stats ds;
	CHECK_EQ(vio_net_device_stats(c->nd, 0, &ds), 0);
	CHECK_EQ(ds.rx_no_buffer, sc.dropped);
	CHECK_EQ(st(1).dropped, 0);
	/* what C's ring held arrives intact, in order */
	unsigned cgot = (unsigned)(sc.tx_packets - 1);
	CHECK_EQ(recv_frames(c, bcast, a->mac, cseq, cgot, 5000), cgot);

	/* C's device stops: not delivered to any more */
	vio_bus_remove(bus, c->vdev);
	c->on_bus = false;
	sc = st(2);
	send_frames(a, bcast, seq, 5);
	CHECK_EQ(recv_frames(b, bcast, a->mac, seq, 5, 5000), 5);
	seq += 5;
	CHECK_EQ(st(2).tx_packets, sc.tx_packets);
	CHECK_EQ(st(2).dropped, sc.dropped);
	/* and a unicast to C's MAC (forgotten) is flooded to B, whose filter
	 * may take it or not, but never to C */
	uint64_t brx = st(1).rx_packets;
	send_frames(b, c->mac, seq, 1);
	seq++;
	CHECK(wait_rx(1, brx + 1));
	CHECK_EQ(st(2).tx_packets, sc.tx_packets);
	CHECK_EQ(st(1).flooded, 1);

	/* the one-thread rule broken: A's frames handled on this thread
	 * while the poll thread is gone (debug builds say so, once) */
	stop_poller();
	vio_log_set_handler(count_lines, NULL);
	send_frames(a, bcast, seq, 2);
	seq += 2;
	uint64_t arx = st(0).rx_packets;
	uint64_t deadline = now_ms() + 5000;
	while (st(0).rx_packets < arx + 2 && now_ms() < deadline)
		CHECK(vio_inproc_device_poll(a->ip, 100) >= 0);
	CHECK_EQ(st(0).rx_packets, arx + 2);
	vio_log_set_handler(NULL, NULL);
#ifdef NDEBUG
	CHECK_EQ(thread_lines, 0);
#else
	CHECK_EQ(thread_lines, 1);
#endif

	teardown();
	CHECK_EQ(test_count_fds(), fds0);
	return test_result("net_switch");
}
