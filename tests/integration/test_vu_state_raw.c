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
 * - the ring then starts again at its base and serves;
 * - QEMU 8.2+'s order, the state loaded before SET_FEATURES (its
 *   incoming migration loads the device state before it starts the
 *   vhost device): CHECK_DEVICE_STATE checks what it can (device type,
 *   features this device offers, ...) and keeps the blob; SET_FEATURES
 *   with the blob's features applies it (the writeback mode the source's
 *   driver chose); other features, or another disk geometry: refused at
 *   SET_FEATURES with the reason in the log, DEVICE_NEEDS_RESET, and no
 *   ring starts; a reset (RESET_DEVICE, SET_STATUS 0) or a new LOAD
 *   drops a pending blob.
 */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>

#include <linux/virtio_ids.h>

#include "fake_frontend.h"

struct conn {
	struct vio_backend *b;
	int s, call, kick;
	struct vio_mem *mem;
	struct vio_vq *vq;
};

/* Everything a ring needs but its enable. */
static void ring_setup(struct conn *c, uint32_t base)
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
}

static void ring_start(struct conn *c, uint32_t base)
{
	ring_setup(c, base);
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

/* Connected, protocol features set; no SET_FEATURES yet: the offer. */
static uint64_t conn_open(struct conn *c, struct vio_backend *b, uint64_t pf)
{
	memset(c, 0, sizeof(*c));
	c->b = b;
	c->s = fe_connect(b);
	c->call = new_eventfd();
	c->kick = new_eventfd();
	uint64_t f = offered_features(b, c->s);
	CHECK_EQ(fe_set_u64(b, c->s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	return f;
}

/* The memory and the frontend's side of the ring. */
static void conn_mem(struct conn *c)
{
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
	send_mem_table(c->b, c->s, c->mem);
}

/* VERSION_1 and FLUSH; with CONFIG_WCE when wce (the driver may choose
 * the writeback mode, a state carries it). */
static uint64_t blk_want(uint64_t offered, bool wce)
{
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 |
			1ull << VIO_VU_F_PROTOCOL_FEATURES |
			(offered & (1ull << VIRTIO_BLK_F_FLUSH));
	if (wce) {
		CHECK(offered & (1ull << VIRTIO_BLK_F_CONFIG_WCE));
		want |= 1ull << VIRTIO_BLK_F_CONFIG_WCE;
	}
	return want;
}

static void conn_up_wce(struct conn *c, struct vio_backend *b, uint64_t pf,
			bool wce)
{
	uint64_t f = conn_open(c, b, pf);
	CHECK_EQ(fe_set_u64(b, c->s, VIO_VU_SET_FEATURES, blk_want(f, wce)), 0);
	conn_mem(c);
	ring_start(c, 0);
}

static void conn_up(struct conn *c, struct vio_backend *b, uint64_t pf)
{
	conn_up_wce(c, b, pf, false);
}

/* The frontend's side, once the backend's is gone. */
static void conn_free(struct conn *c)
{
	close(c->s);
	vio_vq_free(c->vq);
	vio_mem_free(c->mem);
	close(c->kick);
	close(c->call);
}

static void conn_down(struct conn *c)
{
	shutdown(c->s, SHUT_RDWR);
	CHECK_EQ(vio_backend_dispatch(c->b), -ECONNRESET);
	conn_free(c);
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

/* ---- QEMU 8.2+'s order: the state loads before SET_FEATURES ---- */

static uint8_t dev_wce(void)
{
	uint8_t v = 0xff;
	CHECK_EQ(vio_device_config_read(
		     dev, offsetof(struct virtio_blk_config, wce), &v, 1),
		 0);
	return v;
}

/* LOAD blob through a pipe: CHECK_DEVICE_STATE's answer. */
static uint64_t load(struct conn *c, const uint8_t *blob, size_t len)
{
	int p[2];
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(set_state_fd(c, VIO_VU_STATE_LOAD, 0, p[0]),
		 VIO_VU_STATE_REPLY_NOFD);
	close(p[0]);
	CHECK(write(p[1], blob, len) == (ssize_t)len);
	close(p[1]);
	return check_state(c);
}

static uint64_t get_status(struct conn *c)
{
	uint64_t v = 0xdead;
	CHECK(fe_get_u64(c->b, c->s, VIO_VU_GET_STATUS, &v));
	return v;
}

/* The source: writethrough chosen by its driver (SET_CONFIG), saved. */
static size_t save_wce0(struct vio_backend *b, uint64_t pf, uint8_t *blob)
{
	struct conn c;
	conn_up_wce(&c, b, pf, true);
	CHECK_EQ(dev_wce(), 1);
	struct fmsg m = mk(VIO_VU_SET_CONFIG, 12 + 1);
	m.p.config.offset = offsetof(struct virtio_blk_config, wce);
	m.p.config.size = 1;
	m.p.config.data[0] = 0;
	CHECK_EQ(fe_msg(b, c.s, &m, NULL, 0), 0);
	CHECK_EQ(dev_wce(), 0);
	(void)ring_stop(&c);
	int p[2];
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(set_state_fd(&c, VIO_VU_STATE_SAVE, 0, p[1]),
		 VIO_VU_STATE_REPLY_NOFD);
	close(p[1]);
	ssize_t n = 0, k;
	while ((k = read(p[0], blob + n, VIO_DEVICE_STATE_MAX - (size_t)n)) > 0)
		n += k;
	close(p[0]);
	CHECK_EQ(check_state(&c), 0);
	CHECK_EQ(n, 64);
	conn_down(&c);
	CHECK_EQ(dev_wce(), 1); /* the end of the connection reset it */
	return (size_t)n;
}

/* SET_FEATURES after a LOAD kept pending; the log it wrote. */
static void set_features_logged(struct conn *c, uint64_t want,
				struct capture *cap)
{
	capture_start(cap);
	int r = fe_set_u64(c->b, c->s, VIO_VU_SET_FEATURES, want);
	capture_end(cap);
	CHECK_EQ(r, 0); /* the connection goes on */
	fputs(cap->text, stderr);
}

static void test_load_before_features(struct vio_backend *b, uint64_t pf)
{
	uint8_t blob[VIO_DEVICE_STATE_MAX], bad[VIO_DEVICE_STATE_MAX];
	size_t n = save_wce0(b, pf, blob);
	const uint8_t nr = VIRTIO_CONFIG_S_NEEDS_RESET;
	struct capture cap;
	struct conn c;

	/* the same features: checked and kept at CHECK, applied at
	 * SET_FEATURES, the ring runs */
	uint64_t f = conn_open(&c, b, pf);
	CHECK_EQ(load(&c, blob, n), 0);
	CHECK(!(vio_device_get_status(dev) & VIRTIO_CONFIG_S_FEATURES_OK));
	CHECK_EQ(dev_wce(), 1); /* not yet */
	set_features_logged(&c, blk_want(f, true), &cap);
	CHECK_EQ(dev_wce(), 0);
	CHECK(strstr(cap.text, "device state loaded") != NULL);
	CHECK(!(get_status(&c) & nr));
	conn_mem(&c);
	ring_start(&c, 0);
	CHECK(serves(&c));
	CHECK_EQ(dev_wce(), 0);
	conn_down(&c);

	/* other features (no CONFIG_WCE): refused at SET_FEATURES with the
	 * reason, the device needs a reset, no ring starts (the frontend's
	 * start of one ends the connection) */
	f = conn_open(&c, b, pf);
	CHECK_EQ(load(&c, blob, n), 0);
	set_features_logged(&c, blk_want(f, false), &cap);
	CHECK(strstr(cap.text, "refused") != NULL);
	CHECK(strstr(cap.text, "saved with features") != NULL);
	CHECK(get_status(&c) & nr);
	conn_mem(&c);
	ring_setup(&c, 0);
	CHECK_EQ(fe_state(b, c.s, VIO_VU_SET_VRING_ENABLE, 0, 1), -ECONNRESET);
	CHECK(vio_device_queue(dev, 0) == NULL);
	CHECK(!vio_backend_connected(b));
	CHECK(fe_eof(c.s));
	conn_free(&c);

	/* another disk geometry: checkable only with the features (the
	 * type's section), refused then */
	memcpy(bad, blob, n);
	bad[40 + 8] ^= 1; /* capacity */
	f = conn_open(&c, b, pf);
	CHECK_EQ(load(&c, bad, n), 0);
	set_features_logged(&c, blk_want(f, true), &cap);
	CHECK(strstr(cap.text, "the source disk has") != NULL);
	CHECK(get_status(&c) & nr);
	CHECK_EQ(dev_wce(), 1); /* nothing of it applied */
	conn_down(&c);

	/* what can be checked before the features is refused at CHECK:
	 * another device type, features this device never offers, a
	 * truncated blob; nothing stays pending */
	f = conn_open(&c, b, pf);
	memcpy(bad, blob, n);
	bad[12] = VIRTIO_ID_NET;
	CHECK_EQ(load(&c, bad, n), 1);
	memcpy(bad, blob, n);
	bad[24 + 7] |= 0x40; /* bit 62: not a blk feature */
	CHECK_EQ(load(&c, bad, n), 1);
	CHECK_EQ(load(&c, blob, n - 1), 1);
	set_features_logged(&c, blk_want(f, true), &cap);
	CHECK_EQ(dev_wce(), 1);
	CHECK(!(get_status(&c) & nr));
	conn_down(&c);

	/* a reset drops it: RESET_DEVICE, then SET_STATUS 0 */
	f = conn_open(&c, b, pf);
	CHECK_EQ(load(&c, blob, n), 0);
	struct fmsg m = mk(VIO_VU_RESET_DEVICE, 0);
	CHECK_EQ(fe_msg(b, c.s, &m, NULL, 0), 0);
	set_features_logged(&c, blk_want(f, true), &cap);
	CHECK_EQ(dev_wce(), 1);
	CHECK(!(get_status(&c) & nr));
	conn_mem(&c);
	ring_start(&c, 0);
	CHECK(serves(&c));
	conn_down(&c);
	f = conn_open(&c, b, pf);
	CHECK_EQ(load(&c, blob, n), 0);
	capture_start(&cap);
	CHECK_EQ(fe_set_u64(b, c.s, VIO_VU_SET_STATUS, 0), 0);
	capture_end(&cap);
	CHECK(strstr(cap.text, "dropped: device reset") != NULL);
	set_features_logged(&c, blk_want(f, true), &cap);
	CHECK_EQ(dev_wce(), 1);
	conn_down(&c);

	/* a new LOAD drops it, even one that fails */
	f = conn_open(&c, b, pf);
	CHECK_EQ(load(&c, blob, n), 0);
	CHECK_EQ(load(&c, (const uint8_t *)"VIOSTATX", 8), 1);
	set_features_logged(&c, blk_want(f, true), &cap);
	CHECK_EQ(dev_wce(), 1);
	CHECK(!(get_status(&c) & nr));
	conn_down(&c);
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

	test_load_before_features(b, pf);
	CHECK_EQ(test_count_fds(), fds);
	vio_backend_free(b);
	fe_teardown();
	return test_result("vu_state_raw");
}
