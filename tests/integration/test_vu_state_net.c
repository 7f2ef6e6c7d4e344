/* SPDX-License-Identifier: MIT */
/*
 * Device state transfer of a virtio-net device (docs/device-state.md,
 * src/net/state.c): vio's frontend with vio's net driver moves the
 * device between two of vio's backends in this process (each a net
 * device on an echo port, two pairs, its own configured mac, engine and
 * control thread).
 *
 * Before the move the driver sets, through the control queue, two pairs
 * in use (VQ_PAIRS_SET), promiscuous off (RX) and a mac of its own
 * (MAC_ADDR_SET).  After each move the destination has them: its
 * receive mode and mac say so, and frames show it: the driver's echoed
 * frames come back on pair 1 (a destination with one pair in use drops
 * them), and a frame echoed to another unicast address is filtered
 * (rx_filtered of the destination goes up; a promiscuous one would
 * deliver it).  Then hostile blobs (section version, pairs, unknown
 * receive mode bits, a table that lies about its length) are refused by
 * the destination with the reason in its log, and the device goes on
 * with the source.  Split and packed rings; an alarm bounds it all.
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
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "integration/vu_serve.h"
#include "test.h"
#include <vio/bus.h>
#include <vio/log.h>
#include <vio/mem.h>
#include <vio/net.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define PAIRS 2u
#define QSIZE 256u

static char tmpdir[200], sock_a[300], sock_b[300];
static const uint8_t MAC_A[6] = {0x02, 0, 0, 0, 0, 0xaa};
static const uint8_t MAC_B[6] = {0x02, 0, 0, 0, 0, 0xbb};
static const uint8_t MAC_X[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t MAC_Z[6] = {0x02, 0x99, 0, 0, 0, 0x01};
static const uint8_t PEER[6] = {0x02, 0xee, 0, 0, 0, 0x01};

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_vu_state_net: watchdog: timed out\n";
	ssize_t r = syscall(SYS_write, 2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* ---- a backend: net device on an echo port, engine, control thread */

struct server {
	struct vio_net_port *port;
	struct vio_net_device *nd;
	struct vio_run *run;
	struct vio_backend *b;
	pthread_t th;
	int stop;
	struct vu_ctl ctl;
};

static void server_start(struct server *s, const char *sock, const uint8_t *mac,
			 bool packed)
{
	memset(s, 0, sizeof(*s));
	char err[200];
	s->port = vio_net_port_echo_new();
	REQUIRE(s->port);
	struct vio_net_device_opts o = {.queue_pairs = PAIRS,
					.queue_size = QSIZE,
					.packed = packed,
					.port = s->port};
	memcpy(o.mac, mac, 6);
	s->nd = vio_net_device_new(&o, err, sizeof(err));
	if (!s->nd)
		fprintf(stderr, "net device: %s\n", err);
	REQUIRE(s->nd);
	/* a pair's two queues on one worker */
	struct vio_run_opts ro = {.threads = 1, .group = 2};
	s->run = vio_run_new(&ro, err, sizeof(err));
	REQUIRE(s->run);
	struct vio_backend_opts c = {0};
	vio_run_hooks(s->run, &c);
	s->b = vio_backend_new(vio_net_device_dev(s->nd), &c);
	REQUIRE(s->b);
	REQUIRE(vio_backend_listen(s->b, sock) == 0);
	s->stop = eventfd(0, EFD_CLOEXEC);
	REQUIRE(s->stop >= 0);
	s->ctl = (struct vu_ctl){.b = s->b, .stop = s->stop};
	REQUIRE(pthread_create(&s->th, NULL, vu_ctl_main, &s->ctl) == 0);
}

static void server_stop(struct server *s)
{
	uint64_t one = 1;
	REQUIRE(write(s->stop, &one, sizeof(one)) == sizeof(one));
	pthread_join(s->th, NULL);
	vio_backend_free(s->b);
	vio_run_free(s->run);
	vio_net_device_free(s->nd);
	vio_net_port_free(s->port);
	close(s->stop);
}

static uint64_t filtered(struct server *s)
{
	struct vio_net_stats st;
	CHECK_EQ(vio_net_device_stats(s->nd, VIO_NET_MAX_PAIRS, &st), 0);
	return st.rx_filtered;
}

/* The state the driver set is on s (and acts: see ping/filter). */
static void check_state(struct server *s)
{
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(s->nd, &m);
	CHECK_EQ(m.pairs, 2);
	CHECK(!m.promisc);
	uint8_t mac[6];
	vio_net_device_mac(s->nd, mac);
	CHECK(!memcmp(mac, MAC_X, 6));
	CHECK_EQ(vio_device_config_read(vio_net_device_dev(s->nd), 0, mac, 6),
		 0);
	CHECK(!memcmp(mac, MAC_X, 6));
}

/* ---- the client: vio's frontend + net driver ---- */

struct client {
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_frontend *f;
	struct vio_net *n;
};

static void client_open(struct client *c, const char *sock, bool packed)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	struct vio_net_driver_opts dc = {.queue_size = QSIZE,
					 .no_packed = !packed};
	c->drv = vio_net_driver_new(&dc);
	REQUIRE(c->mem && c->bus && c->drv);
	REQUIRE(vio_bus_register(c->bus, c->drv) == 0);
	struct vio_frontend_opts fc = {.mem = c->mem,
				       .device_id = VIRTIO_ID_NET,
				       .connect_timeout_ms = 5000,
				       .reply_timeout_ms = 5000};
	char err[200];
	c->f = vio_bus_connect(c->bus, sock, &fc, err, sizeof(err));
	if (!c->f)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(c->f);
	c->n = vio_net_from_vdev(vio_frontend_vdev(c->f));
	REQUIRE(c->n);
	struct vio_net_info info;
	vio_net_get_info(c->n, &info);
	CHECK_EQ(info.max_pairs, PAIRS);
	CHECK(info.ctrl_vq);
	CHECK_EQ(info.packed, packed);
}

static void client_close(struct client *c)
{
	vio_bus_remove(c->bus, vio_frontend_vdev(c->f));
	vio_frontend_free(c->f);
	vio_bus_unregister(c->bus, c->drv);
	vio_bus_free(c->bus);
	vio_net_driver_free(c->drv);
	vio_mem_free(c->mem);
}

static uint32_t seq;

/* A frame from src on pair qp; true when it comes back echoed (to src)
 * within the deadline. */
static bool ping(struct client *c, unsigned qp, const uint8_t *src, int wait_ms)
{
	uint8_t f[64];
	memcpy(f, PEER, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	uint32_t mine = ++seq;
	memset(f + 14, 0, sizeof(f) - 14);
	memcpy(f + 14, &mine, 4);
	struct vio_net_pkt p = {.data = f, .len = sizeof(f)};
	uint64_t dl = now_ms() + (uint64_t)wait_ms;
	int r;
	while ((r = vio_net_send(c->n, qp, &p, 1)) == 0) {
		(void)vio_net_tx_reclaim(c->n, qp);
		if (now_ms() > dl)
			return false;
	}
	if (r != 1)
		return false;
	while (now_ms() < dl) {
		struct vio_net_pkt in[8];
		int k = vio_net_recv(c->n, qp, in, 8, 50);
		CHECK(k >= 0);
		for (int i = 0; i < k; i++) {
			const uint8_t *d = in[i].data;
			if (in[i].len == sizeof(f) && !memcmp(d, src, 6) &&
			    !memcmp(d + 14, &mine, 4))
				return true;
		}
	}
	return false;
}

/* A frame echoed to MAC_Z is filtered by s (counted), not delivered. */
static void check_filtered(struct client *c, struct server *s)
{
	uint64_t before = filtered(s);
	uint8_t f[64];
	memcpy(f, PEER, 6);
	memcpy(f + 6, MAC_Z, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	memset(f + 14, 0, sizeof(f) - 14);
	struct vio_net_pkt p = {.data = f, .len = sizeof(f)};
	uint64_t dl = now_ms() + 5000;
	while (vio_net_send(c->n, 0, &p, 1) == 0 && now_ms() < dl)
		(void)vio_net_tx_reclaim(c->n, 0);
	while (filtered(s) == before && now_ms() < dl) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	CHECK_EQ(filtered(s), before + 1);
	/* nothing for MAC_Z came to the driver */
	struct vio_net_pkt in[8];
	int k = vio_net_recv(c->n, 0, in, 8, 0);
	for (int i = 0; i < k; i++)
		CHECK(memcmp(in[i].data, MAC_Z, 6) != 0);
}

static int do_move(struct client *c, const char *to,
		   const struct vio_frontend_move_opts *o, char *err,
		   size_t errlen)
{
	uint64_t t0 = now_ms();
	int r = vio_frontend_move(c->f, to, o, err, errlen);
	printf("move to %s: %d (%s), %llu ms\n", strrchr(to, '/') + 1, r,
	       r ? err : "ok", (unsigned long long)(now_ms() - t0));
	return r;
}

/* ---- hostile blobs ---- */

enum mangle { M_SVER, M_PAIRS, M_MODE, M_TABLE, M_MAXP, M_COUNT };

static const char *const mangle_says[M_COUNT] = {
    [M_SVER] = "net state version 7",
    [M_PAIRS] = "3 queue pairs in use",
    [M_MODE] = "unknown bits",
    [M_TABLE] = "MAC table entries has",
    [M_MAXP] = "the source has 4 queue pairs",
};

static int mangle(void *arg, uint8_t *blob, size_t *len, size_t cap)
{
	enum mangle m = *(enum mangle *)arg;
	(void)cap;
	REQUIRE(*len >= 40 + 24);
	uint8_t *s = blob + 40;
	switch (m) {
	case M_SVER:
		s[0] = 7;
		break;
	case M_PAIRS:
		s[4] = 3;
		break;
	case M_MODE:
		s[11] = 0x10;
		break;
	case M_TABLE:
		s[18] = 1; /* one entry that is not there */
		break;
	case M_MAXP:
		s[6] = 4;
		break;
	default:
		break;
	}
	return 0;
}

static void run(bool packed)
{
	printf("--- %s rings ---\n", packed ? "packed" : "split");
	struct server a, b;
	server_start(&a, sock_a, MAC_A, packed);
	server_start(&b, sock_b, MAC_B, packed);
	struct client c;
	client_open(&c, sock_a, packed);

	/* on A: the driver's state, through the control queue */
	CHECK(ping(&c, 0, MAC_A, 5000));
	struct vio_net_rx_mode m;
	vio_net_device_rx_mode(a.nd, &m);
	CHECK_EQ(m.pairs, 2); /* the driver's probe set every pair */
	CHECK_EQ(vio_net_set_pairs(c.n, 1), 0);
	vio_net_device_rx_mode(a.nd, &m);
	CHECK_EQ(m.pairs, 1);
	CHECK_EQ(vio_net_set_pairs(c.n, 2), 0);
	CHECK_EQ(vio_net_set_promisc(c.n, false), 0);
	CHECK_EQ(vio_net_set_mac(c.n, MAC_X), 0);
	check_state(&a);
	CHECK(ping(&c, 1, MAC_X, 5000));
	check_filtered(&c, &a);
	vio_net_device_rx_mode(b.nd, &m);
	CHECK(m.promisc);
	CHECK_EQ(m.pairs, 1);

	/* A -> B -> A -> B: the state goes along */
	char err[300];
	struct server *at[3] = {&b, &a, &b};
	const char *path[3] = {sock_b, sock_a, sock_b};
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(do_move(&c, path[i], NULL, err, sizeof(err)), 0);
		CHECK(vio_frontend_alive(c.f));
		check_state(at[i]);
		CHECK(ping(&c, 1, MAC_X, 5000));
		CHECK(ping(&c, 0, MAC_X, 5000));
		check_filtered(&c, at[i]);
	}

	/* hostile blobs B -> A: refused by A, B carries on */
	for (enum mangle k = 0; k < M_COUNT; k++) {
		log_clear();
		struct vio_frontend_move_opts o = {.state_filter = mangle,
						   .arg = &k};
		CHECK_EQ(do_move(&c, sock_a, &o, err, sizeof(err)), -EIO);
		CHECK(log_has("LOAD transfer failed"));
		if (!log_has(mangle_says[k])) {
			fprintf(stderr, "case %d: the log lacks '%s'\n", k,
				mangle_says[k]);
			CHECK(0);
		}
		CHECK(vio_frontend_alive(c.f));
		CHECK(ping(&c, 1, MAC_X, 5000));
	}
	check_filtered(&c, &b);
	check_state(&b);

	client_close(&c);
	server_stop(&a);
	server_stop(&b);
}

int main(void)
{
	signal(SIGALRM, watchdog);
	alarm(100);
	signal(SIGPIPE, SIG_IGN);
	vio_log_set_handler(log_fn, NULL);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vio-state-net-XXXXXX");
	REQUIRE(mkdtemp(tmpdir));
	snprintf(sock_a, sizeof(sock_a), "%s/a.sock", tmpdir);
	snprintf(sock_b, sizeof(sock_b), "%s/b.sock", tmpdir);
	int fds = test_count_fds();
	run(false);
	run(true);
	CHECK_EQ(test_count_fds(), fds);
	rmdir(tmpdir);
	vio_log_set_handler(NULL, NULL);
	return test_result("vu_state_net");
}
