/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net device on the device engine (vio/run.h), with real
 * threads: a worker serves a pair (group 2, both queues on its loop,
 * started with vio_device_queue_start as the vhost-user backend's hooks
 * do), the test's thread is the driver (ring layer driver vqs; kicks and
 * calls through eventfds, each only when the other side asked for it:
 * EVENT_IDX negotiated, so a lost notification stalls the test and fails
 * it at its deadline).  Environment: net_env.h.  Split and packed.
 *
 * - echo: thousands of frames sent while the driver keeps reposting
 *   receive buffers; every frame comes back once, MAC-swapped, intact.
 * - gen: the generator fills from its timer on the worker; the driver
 *   reposts; sequence numbers arrive in order, none lost; after the
 *   queues are detached (queue_stop on the worker) the driver's count
 *   equals what gen made.
 *
 * In the meson suite 'threads' too (ThreadSanitizer in make check).
 */
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "net_env.h"
#include <vio/run.h>

#define DEADLINE_MS 5000

struct eng {
	struct tenv *e;
	int kickfd[2], callfd[2];
	struct vio_run_queue *rq[2];
	unsigned idx[2];
};

static struct eng *g_eng;

static void eng_call(void *t, unsigned idx)
{
	struct eng *g = t;
	uint64_t one = 1;
	if (idx < 2)
		CHECK(write(g->callfd[idx], &one, sizeof(one)) == 8);
}

static void eng_cfg(void *t)
{
	(void)t;
}

static const struct vio_device_transport eng_hooks = {
    .call = eng_call,
    .config_changed = eng_cfg,
};

static int q_start(void *arg, struct vio_loop *loop)
{
	unsigned *idx = arg;
	return vio_device_queue_start(g_eng->e->dev, *idx, loop);
}

static bool q_kick(void *arg)
{
	unsigned *idx = arg;
	return vio_device_kick(g_eng->e->dev, *idx);
}

static void q_stop(void *arg)
{
	unsigned *idx = arg;
	vio_device_queue_stop(g_eng->e->dev, *idx);
}

static const struct vio_run_queue_ops q_ops = {
    .start = q_start,
    .kick = q_kick,
    .stop = q_stop,
};

static uint64_t now_ms(void)
{
	return vio_now_ns() / 1000000u;
}

/* Publish what the driver added to queue q; kick if the device asks. */
static void drv_kick(struct eng *g, unsigned q)
{
	uint64_t one = 1;
	if (vio_vq_kick_prepare(g->e->vq[q]))
		CHECK(write(g->kickfd[q], &one, sizeof(one)) == 8);
}

/* Wait for a call on either queue (or until deadline); false on
 * timeout.  Interrupts are asked for first (the restart closes the
 * race: something already pending returns at once). */
static bool drv_wait(struct eng *g, uint64_t deadline)
{
	if (!vio_vq_enable_cb(g->e->vq[0]) || !vio_vq_enable_cb(g->e->vq[1]))
		return true;
	uint64_t now = now_ms();
	if (now >= deadline)
		return false;
	struct pollfd pfd[2] = {{.fd = g->callfd[0], .events = POLLIN},
				{.fd = g->callfd[1], .events = POLLIN}};
	int r = poll(pfd, 2, (int)(deadline - now));
	uint64_t v;
	for (unsigned q = 0; q < 2; q++)
		if (pfd[q].revents & POLLIN)
			CHECK(read(g->callfd[q], &v, sizeof(v)) == 8);
	return r > 0;
}

static void eng_start(struct eng *g, struct tenv *e, struct vio_run *r)
{
	memset(g, 0, sizeof(*g));
	g->e = e;
	g_eng = g;
	vio_device_attach(e->dev, &eng_hooks, g);
	for (unsigned q = 0; q < 2; q++) {
		g->kickfd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		g->callfd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		REQUIRE(g->kickfd[q] >= 0 && g->callfd[q] >= 0);
		g->idx[q] = q;
	}
	for (unsigned q = 0; q < 2; q++) {
		g->rq[q] =
		    vio_run_attach(r, q, g->kickfd[q], &q_ops, &g->idx[q]);
		REQUIRE(g->rq[q]);
	}
}

static void eng_stop(struct eng *g)
{
	for (unsigned q = 0; q < 2; q++) {
		if (g->rq[q])
			vio_run_detach(g->rq[q]);
		g->rq[q] = NULL;
	}
	for (unsigned q = 0; q < 2; q++) {
		close(g->kickfd[q]);
		close(g->callfd[q]);
	}
}

#define NBUF 48u
#define BUFSZ 2048u

static void test_echo_threads(struct vio_run *r, bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_echo_new();
	static const unsigned drop[] = {VIRTIO_NET_F_CTRL_VQ};
	env_open(&e, &o, packed, drop, 1);
	struct eng g;
	eng_start(&g, &e, r);
	uint8_t *rxb[NBUF];
	for (unsigned i = 0; i < NBUF; i++) {
		rxb[i] = balloc(&e, BUFSZ);
		struct vio_sg sg = {rxb[i], BUFSZ};
		REQUIRE(vio_vq_add(e.vq[0], &sg, 0, 1, rxb[i]) == 0);
	}
	drv_kick(&g, 0);
	/* transmit slots: 32 frames in flight at most */
	enum { TXS = 32, TOTAL = 4000 };
	uint8_t *txb[TXS];
	bool busy[TXS] = {false};
	for (unsigned i = 0; i < TXS; i++)
		txb[i] = balloc(&e, VIO_NET_HDR_LEN + 200);
	unsigned sent = 0, got = 0, bad = 0, tx_done = 0;
	uint64_t deadline = now_ms() + DEADLINE_MS * 4;
	while (got < TOTAL && now_ms() < deadline) {
		/* send into free slots */
		bool added = false;
		for (unsigned k = 0; k < TXS && sent < TOTAL; k++) {
			if (busy[k])
				continue;
			size_t len = 60 + sent % 140;
			memset(txb[k], 0, VIO_NET_HDR_LEN);
			make_frame(txb[k] + VIO_NET_HDR_LEN, len, MAC_B, MAC_A,
				   (uint8_t)sent);
			/* the frame's number, to check order and contents */
			memcpy(txb[k] + VIO_NET_HDR_LEN + 14, &sent, 4);
			struct vio_sg sg = {txb[k],
					    (uint32_t)(VIO_NET_HDR_LEN + len)};
			if (vio_vq_add(e.vq[1], &sg, 1, 0, &busy[k]) < 0)
				break;
			busy[k] = true;
			sent++;
			added = true;
		}
		if (added)
			drv_kick(&g, 1);
		/* transmit completions */
		uint32_t len;
		bool *t;
		bool tx_done_now = false;
		while ((t = vio_vq_get(e.vq[1], &len))) {
			*t = false;
			tx_done++;
			tx_done_now = true;
		}
		/* received frames: check, repost */
		uint8_t *b;
		bool progress = false;
		while ((b = vio_vq_get(e.vq[0], &len))) {
			progress = true;
			uint32_t num;
			memcpy(&num, b + VIO_NET_HDR_LEN + 14, 4);
			size_t flen = len - VIO_NET_HDR_LEN;
			uint8_t want[200];
			make_frame(want, 60 + got % 140, MAC_A, MAC_B,
				   (uint8_t)got);
			memcpy(want + 14, &got, 4);
			bad += num != got || flen != 60 + got % 140 ||
			       memcmp(b + VIO_NET_HDR_LEN, want, flen);
			got++;
			struct vio_sg sg = {b, BUFSZ};
			REQUIRE(vio_vq_add(e.vq[0], &sg, 0, 1, b) == 0);
		}
		if (progress)
			drv_kick(&g, 0);
		if (!progress && got < TOTAL && !added && !tx_done_now &&
		    !drv_wait(&g, now_ms() + DEADLINE_MS))
			break; /* stalled: a lost notification */
	}
	printf("echo on the engine (%s): sent %u, received %u, bad %u\n",
	       packed ? "packed" : "split", sent, got, bad);
	CHECK_EQ(got, TOTAL);
	CHECK_EQ(bad, 0);
	eng_stop(&g);
	struct vio_net_stats s;
	CHECK_EQ(vio_net_device_stats(e.nd, 0, &s), 0);
	CHECK_EQ(s.rx_packets, TOTAL);
	CHECK_EQ(s.rx_no_buffer, 0);
	CHECK_EQ(s.tx_packets, s.tx_packets); /* read while stopped */
	env_close(&e);
}

static void test_gen_threads(struct vio_run *r, bool packed)
{
	struct tenv e;
	struct vio_net_device_opts o = {0};
	memcpy(o.mac, MAC_A, 6);
	o.port = vio_net_port_gen_new(0);
	REQUIRE(o.port);
	env_open(&e, &o, packed, NULL, 0);
	uint8_t *rxb[NBUF];
	for (unsigned i = 0; i < NBUF; i++) {
		rxb[i] = balloc(&e, BUFSZ);
		struct vio_sg sg = {rxb[i], BUFSZ};
		REQUIRE(vio_vq_add(e.vq[0], &sg, 0, 1, rxb[i]) == 0);
	}
	vio_vq_kick_prepare(e.vq[0]);
	struct eng g;
	eng_start(&g, &e, r);
	enum { TOTAL = 5000 };
	unsigned got = 0, bad = 0;
	uint64_t deadline = now_ms() + DEADLINE_MS * 4;
	while (got < TOTAL && now_ms() < deadline) {
		uint32_t len;
		uint8_t *b;
		bool progress = false;
		while ((b = vio_vq_get(e.vq[0], &len))) {
			progress = true;
			uint64_t seq = 0;
			for (unsigned i = 0; i < 8; i++)
				seq = seq << 8 | b[VIO_NET_HDR_LEN + 42 + i];
			bad += len != VIO_NET_HDR_LEN + 60 || seq != got;
			got++;
			if (got + NBUF <= TOTAL) {
				struct vio_sg sg = {b, BUFSZ};
				REQUIRE(vio_vq_add(e.vq[0], &sg, 0, 1, b) == 0);
			}
		}
		if (progress)
			drv_kick(&g, 0);
		else if (!drv_wait(&g, now_ms() + DEADLINE_MS))
			break;
	}
	printf("gen on the engine (%s): received %u, bad %u\n",
	       packed ? "packed" : "split", got, bad);
	CHECK_EQ(got, TOTAL);
	CHECK_EQ(bad, 0);
	eng_stop(&g);
	struct vio_net_port_stats ps;
	CHECK_EQ(vio_net_port_stats(e.port, &ps), 0);
	CHECK_EQ(ps.made, TOTAL);
	env_close(&e);
}

int main(void)
{
	char err[128];
	struct vio_run_opts ro = {.threads = 1, .num_queues = 2, .group = 2};
	struct vio_run *r = vio_run_new(&ro, err, sizeof(err));
	if (!r)
		fprintf(stderr, "vio_run_new: %s\n", err);
	REQUIRE(r);
	for (int packed = 0; packed < 2; packed++) {
		test_echo_threads(r, packed);
		test_gen_threads(r, packed);
	}
	vio_run_free(r);
	return test_result("net_engine");
}
