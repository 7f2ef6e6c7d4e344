/* SPDX-License-Identifier: MIT */
/*
 * The backend's SET_DEVICE_STATE_FD and CHECK_DEVICE_STATE handlers
 * (backend_state.c) against a raw frontend (fake_frontend.h):
 *
 * - refused, the connection going on: without DEVICE_STATE negotiated,
 *   a direction or phase that does not exist, a ring still running,
 *   CHECK_DEVICE_STATE without a transfer;
 * - SAVE into a pipe whose reader is gone: refused, and the process
 *   (SIGPIPE at its default) lives;
 * - SAVE once the ring stopped: the blob is in the pipe, its end of file
 *   too, before the reply (bit 8: the frontend's fd is used);
 * - LOAD of that blob: CHECK_DEVICE_STATE 0; of a blob whose writer
 *   never closes its end (a frontend that died): CHECK_DEVICE_STATE says
 *   failed within about a second, the backend never hangs on it;
 * - the ring then starts again at its base and serves.
 */
#include <inttypes.h>
#include <signal.h>

#include "fake_frontend.h"

struct conn {
	struct vio_backend *b;
	int s, call, kick;
	struct vio_mem *mem;
	struct vio_vq *vq;
};

static void ring_start(struct conn *c, uint32_t base)
{
	struct vio_vq_layout l;
	vio_vq_get_layout(c->vq, &l);
	CHECK_EQ(fe_state(c->b, c->s, VIO_VU_SET_VRING_NUM, 0, QSIZE), 0);
	CHECK_EQ(fe_state(c->b, c->s, VIO_VU_SET_VRING_BASE, 0, base), 0);
	struct fmsg m = mk(VIO_VU_SET_VRING_ADDR, 40);
	m.p.addr.index = 0;
	m.p.addr.desc = (uintptr_t)l.desc;
	m.p.addr.avail = (uintptr_t)l.driver;
	m.p.addr.used = (uintptr_t)l.device;
	CHECK_EQ(fe_msg(c->b, c->s, &m, NULL, 0), 0);
	CHECK_EQ(fe_vring_fd(c->b, c->s, VIO_VU_SET_VRING_CALL, 0, c->call), 0);
	CHECK_EQ(fe_vring_fd(c->b, c->s, VIO_VU_SET_VRING_KICK, 0, c->kick), 0);
	CHECK_EQ(fe_state(c->b, c->s, VIO_VU_SET_VRING_ENABLE, 0, 1), 0);
	CHECK(vio_device_queue(dev, 0) != NULL);
}

static uint32_t ring_stop(struct conn *c)
{
	CHECK_EQ(fe_state(c->b, c->s, VIO_VU_SET_VRING_ENABLE, 0, 0), 0);
	struct fmsg m = mk(VIO_VU_GET_VRING_BASE, 8);
	m.p.state.index = 0;
	CHECK_EQ(fe_msg(c->b, c->s, &m, NULL, 0), 0);
	struct vio_vu_state st = {0};
	CHECK(fe_reply(c->s, VIO_VU_GET_VRING_BASE, &st, 8));
	CHECK(vio_device_queue(dev, 0) == NULL);
	return st.num;
}

static void conn_up(struct conn *c, struct vio_backend *b, uint64_t pf)
{
	memset(c, 0, sizeof(*c));
	c->b = b;
	c->s = fe_connect(b);
	c->call = new_eventfd();
	c->kick = new_eventfd();
	uint64_t f = offered_features(b, c->s);
	CHECK_EQ(fe_set_u64(b, c->s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 |
			1ull << VIO_VU_F_PROTOCOL_FEATURES |
			(f & (1ull << VIRTIO_BLK_F_FLUSH));
	CHECK_EQ(fe_set_u64(b, c->s, VIO_VU_SET_FEATURES, want), 0);
	c->mem = vio_mem_new();
	REQUIRE(c->mem);
	REQUIRE(vio_mem_add_region(c->mem, 4u << 20, NULL) == 0);
	struct vio_vq_opts qc = {
	    .index = 0,
	    .size = QSIZE,
	    .notify = kick_notify,
	    .opaque = &c->kick,
	    .name = "test/q",
	};
	c->vq = vio_vq_new_driver(&qc, c->mem);
	REQUIRE(c->vq);
	send_mem_table(b, c->s, c->mem);
	ring_start(c, 0);
}

static void conn_down(struct conn *c)
{
	close(c->s);
	CHECK_EQ(vio_backend_dispatch(c->b), -ECONNRESET);
	vio_vq_free(c->vq);
	vio_mem_free(c->mem);
	close(c->kick);
	close(c->call);
}

/* SET_DEVICE_STATE_FD with fd (not closed here): the reply's u64. */
static uint64_t set_state_fd(struct conn *c, uint32_t direction, uint32_t phase,
			     int fd)
{
	struct fmsg m = mk(VIO_VU_SET_DEVICE_STATE_FD, 8);
	m.p.xfer.direction = direction;
	m.p.xfer.phase = phase;
	CHECK_EQ(fe_msg(c->b, c->s, &m, &fd, 1), 0);
	uint64_t v = 0xdead;
	CHECK(fe_reply(c->s, VIO_VU_SET_DEVICE_STATE_FD, &v, 8));
	return v;
}

static uint64_t check_state(struct conn *c)
{
	uint64_t v = 0xdead;
	CHECK(fe_get_u64(c->b, c->s, VIO_VU_CHECK_DEVICE_STATE, &v));
	return v;
}

static bool serves(struct conn *c)
{
	uint8_t *buf = vio_mem_alloc(c->mem, 4096, 4096, NULL);
	REQUIRE(buf);
	uint8_t st =
	    blk_rq(c->vq, c->call, c->mem, VIRTIO_BLK_T_IN, 0, buf, 4096);
	vio_mem_release(c->mem, buf);
	return st == VIRTIO_BLK_S_OK;
}

int main(void)
{
	/* SIGPIPE keeps its default (the process dies): a backend must not
	 * be killed by a channel whose reader is gone */
	fe_setup("state-raw");
	struct vio_backend *b = backend_up(true);
	uint64_t pf = 0, v;
	int p[2];

	/* without DEVICE_STATE negotiated: refused, the connection goes on */
	struct conn c;
	{
		int s = fe_connect(b);
		CHECK(fe_get_u64(b, s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
		CHECK(pf & (1ull << VIO_VU_PF_DEVICE_STATE));
		close(s);
		CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);
	}
	conn_up(&c, b, pf & ~(1ull << VIO_VU_PF_DEVICE_STATE));
	(void)ring_stop(&c);
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	v = set_state_fd(&c, VIO_VU_STATE_SAVE, 0, p[1]);
	CHECK_EQ(v, VIO_VU_STATE_REPLY_NOFD | 1);
	CHECK_EQ(check_state(&c), 1);
	close(p[0]);
	close(p[1]);
	ring_start(&c, 0);
	CHECK(serves(&c));
	conn_down(&c);
	/* the engine's workers are up now: every fd from here is ours */
	int fds = test_count_fds();

	conn_up(&c, b, pf);
	CHECK(serves(&c));
	/* a ring still runs */
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(set_state_fd(&c, VIO_VU_STATE_SAVE, 0, p[1]),
		 VIO_VU_STATE_REPLY_NOFD | 1);
	CHECK_EQ(check_state(&c), 1);
	CHECK(serves(&c)); /* untouched */
	/* CHECK without a transfer */
	CHECK_EQ(check_state(&c), 1);
	uint32_t base = ring_stop(&c);
	/* a direction or a phase that does not exist */
	CHECK_EQ(set_state_fd(&c, 2, 0, p[1]), VIO_VU_STATE_REPLY_NOFD | 1);
	CHECK_EQ(check_state(&c), 1);
	CHECK_EQ(set_state_fd(&c, VIO_VU_STATE_SAVE, 1, p[1]),
		 VIO_VU_STATE_REPLY_NOFD | 1);
	CHECK_EQ(check_state(&c), 1);
	/* SAVE into a channel nobody reads any more: refused, no SIGPIPE */
	int q[2];
	REQUIRE(pipe2(q, O_CLOEXEC) == 0);
	close(q[0]);
	CHECK_EQ(set_state_fd(&c, VIO_VU_STATE_SAVE, 0, q[1]),
		 VIO_VU_STATE_REPLY_NOFD | 1);
	close(q[1]);
	CHECK_EQ(check_state(&c), 1);
	/* SAVE: the blob and its end of file are there before the reply */
	CHECK_EQ(set_state_fd(&c, VIO_VU_STATE_SAVE, 0, p[1]),
		 VIO_VU_STATE_REPLY_NOFD);
	close(p[1]);
	uint8_t blob[VIO_DEVICE_STATE_MAX + 1];
	ssize_t n = 0, k;
	while ((k = read(p[0], blob + n, sizeof(blob) - (size_t)n)) > 0)
		n += k;
	CHECK_EQ(k, 0);
	close(p[0]);
	CHECK_EQ(n, 64);
	CHECK(memcmp(blob, "VIOSTATE", 8) == 0);
	CHECK_EQ(check_state(&c), 0);
	/* LOAD it back */
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(set_state_fd(&c, VIO_VU_STATE_LOAD, 0, p[0]),
		 VIO_VU_STATE_REPLY_NOFD);
	close(p[0]);
	CHECK(write(p[1], blob, (size_t)n) == n);
	close(p[1]);
	CHECK_EQ(check_state(&c), 0);
	/* a writer that never closes: failed, in bounded time */
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(set_state_fd(&c, VIO_VU_STATE_LOAD, 0, p[0]),
		 VIO_VU_STATE_REPLY_NOFD);
	CHECK(write(p[1], blob, 10) == 10);
	uint64_t t0 = vio_now_ns();
	CHECK_EQ(check_state(&c), 1);
	uint64_t ms = (vio_now_ns() - t0) / 1000000u;
	printf("CHECK_DEVICE_STATE on an open channel: %" PRIu64 " ms\n", ms);
	CHECK(ms < 3000);
	close(p[0]);
	close(p[1]);
	/* the ring carries on from where it stopped */
	ring_start(&c, base);
	CHECK(serves(&c));
	conn_down(&c);
	CHECK_EQ(test_count_fds(), fds);
	vio_backend_free(b);
	fe_teardown();
	return test_result("vu_state_raw");
}
