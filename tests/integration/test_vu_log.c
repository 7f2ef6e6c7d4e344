/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page logging through the vhost-user backend (backend_log.c), with
 * a raw frontend (fake_frontend.h), the blk device and queue workers:
 *
 * - LOG_SHMFD and VHOST_F_LOG_ALL are offered; SET_LOG_BASE maps a memfd
 *   and is answered with a u64 0.
 * - Logging off (LOG_ALL not negotiated): blk I/O marks nothing.
 * - LOG_ALL set on the running device (no reset: DRIVER_OK stays, the
 *   queue keeps its position) and the ring's VHOST_VRING_F_LOG: a blk read
 *   marks the pages of the buffer the device filled, of the status byte
 *   and of the used ring / written-back descriptors; a blk write does not
 *   mark its (read-only) data pages.
 * - A second SET_LOG_BASE while the queue runs: the new log is used, the
 *   old one no longer.  LOG_ALL cleared: nothing more is marked.
 * - Through all of it the ring keeps its position; SET_STATUS 0 then
 *   GET_VRING_BASE (QEMU 7.2's stop, at the end of a migration) reports
 *   it.
 * - A chain the device holds when GET_VRING_BASE stops the queue is
 *   completed by the stop and logged before the reply.
 * - Split and packed rings.
 * - Hostile SET_LOG_BASE (a region larger than its file, offset + size
 *   wrapping, a pipe that cannot be mapped, no LOG_SHMFD negotiated):
 *   that connection ends with a log line saying why; the next one works.
 */
#include <linux/vhost_types.h>
#include <linux/virtio_ids.h>
#include <signal.h>

#include "fake_frontend.h"

#define PG 4096u

struct log_map {
	int fd;
	uint8_t *bits;
	size_t size;
};

static void log_new(struct log_map *l, size_t size)
{
	l->size = size;
	l->fd = new_memfd(size);
	l->bits =
	    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	REQUIRE(l->bits != MAP_FAILED);
}

static void log_free(struct log_map *l)
{
	munmap(l->bits, l->size);
	close(l->fd);
}

static bool marked(const struct log_map *l, uint64_t gpa)
{
	uint64_t p = gpa / PG;
	REQUIRE(p / 8 < l->size);
	return __atomic_load_n(&l->bits[p / 8], __ATOMIC_RELAXED) &
	       (1u << (p % 8));
}

static unsigned count_marked(const struct log_map *l)
{
	unsigned n = 0;
	for (size_t i = 0; i < l->size; i++)
		n += (unsigned)__builtin_popcount(l->bits[i]);
	return n;
}

static int set_log_base(struct vio_backend *b, int s, uint64_t size,
			uint64_t off, int fd)
{
	struct fmsg m = mk(VIO_VU_SET_LOG_BASE, 16);
	m.p.log.mmap_size = size;
	m.p.log.mmap_offset = off;
	int r = fe_msg(b, s, &m, &fd, 1);
	if (r)
		return r;
	uint64_t v = 1;
	CHECK(fe_reply(s, VIO_VU_SET_LOG_BASE, &v, 8));
	CHECK_EQ(v, 0);
	return 0;
}

/* SET_FEATURES with an ack: applied when the ack comes. */
static void set_features(struct vio_backend *b, int s, uint64_t f)
{
	struct fmsg m = mk(VIO_VU_SET_FEATURES, 8);
	m.h.flags |= VIO_VU_FLAG_NEED_REPLY;
	m.p.u64 = f;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	uint64_t ack = 1;
	CHECK(fe_reply(s, VIO_VU_SET_FEATURES, &ack, 8));
	CHECK_EQ(ack, 0);
}

static void set_addr(struct vio_backend *b, int s,
		     const struct vio_vq_layout *l, bool log)
{
	struct fmsg m = mk(VIO_VU_SET_VRING_ADDR, 40);
	m.p.addr.index = 0;
	m.p.addr.desc = (uintptr_t)l->desc;
	m.p.addr.avail = (uintptr_t)l->driver;
	m.p.addr.used = (uintptr_t)l->device;
	m.p.addr.log = l->device_addr;
	m.p.addr.flags = log ? 1u << VHOST_VRING_F_LOG : 0;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
}

static uint64_t daddr(struct vio_mem *mem, const void *p, size_t len)
{
	uint64_t a = vio_mem_daddr(mem, p, len);
	REQUIRE(a != VIO_BAD_ADDR);
	return a;
}

/* Features and protocol features (all offered), owner. */
static uint64_t handshake(struct vio_backend *b, int s, bool packed)
{
	uint64_t f = offered_features(b, s);
	CHECK(f & (1ull << VHOST_F_LOG_ALL));
	uint64_t pf = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
	CHECK(pf & (1ull << VIO_VU_PF_LOG_SHMFD));
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	struct fmsg m = mk(VIO_VU_SET_OWNER, 0);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 |
			1ull << VIO_VU_F_PROTOCOL_FEATURES |
			(f & (1ull << VIRTIO_RING_F_EVENT_IDX)) |
			(packed ? 1ull << VIRTIO_F_RING_PACKED : 0);
	set_features(b, s, want);
	return want;
}

static void flow(bool packed)
{
	struct vio_backend *b = backend_up(true);
	int fds_before = test_count_fds();
	int s = fe_connect(b);
	uint64_t want = handshake(b, s, packed);

	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	REQUIRE(vio_mem_add_region(mem, 2u << 20, NULL) == 0);
	const struct vio_region *reg = vio_mem_region(mem, 0);
	size_t log_size =
	    (size_t)(((reg->addr + reg->size) / PG / 8 + 7) & ~7ull);
	int kick = new_eventfd(), call = new_eventfd();
	struct vio_vq_opts qc = {
	    .size = QSIZE,
	    .packed = packed,
	    .event_idx = want & (1ull << VIRTIO_RING_F_EVENT_IDX),
	    .notify = kick_notify,
	    .opaque = &kick,
	    .name = "test/q0",
	};
	struct vio_vq *vq = vio_vq_new_driver(&qc, mem);
	REQUIRE(vq);
	uint64_t da;
	uint8_t *wbuf = vio_mem_alloc(mem, 8192, PG, &da);
	uint8_t *rbuf = vio_mem_alloc(mem, 8192, PG, &da);
	REQUIRE(wbuf && rbuf);
	send_mem_table(b, s, mem);
	struct vio_vq_layout l;
	vio_vq_get_layout(vq, &l);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_NUM, 0, QSIZE), 0);
	CHECK_EQ(
	    fe_state(b, s, VIO_VU_SET_VRING_BASE, 0, packed ? 0x80008000u : 0),
	    0);
	set_addr(b, s, &l, false);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_CALL, 0, call), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_KICK, 0, kick), 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_ENABLE, 0, 1), 0);
	CHECK(vio_device_queue(dev, 0) != NULL);

	struct log_map lg, lg2;
	log_new(&lg, log_size);
	log_new(&lg2, log_size);
	CHECK_EQ(set_log_base(b, s, log_size, 0, lg.fd), 0);

	/* logging off: nothing marked */
	memset(wbuf, 0x5a, 8192);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_OUT, 8, wbuf, 8192),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_IN, 8, rbuf, 8192),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(count_marked(&lg), 0);

	/* LOG_ALL on the running device: no reset */
	set_features(b, s, want | 1ull << VHOST_F_LOG_ALL);
	set_addr(b, s, &l, true);
	uint64_t v = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_STATUS, &v));
	CHECK(v & VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK(vio_device_queue(dev, 0) != NULL);
	memset(lg.bits, 0, log_size);
	memset(rbuf, 0, 8192);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_IN, 8, rbuf, 8192),
		 VIRTIO_BLK_S_OK);
	CHECK(memcmp(rbuf, wbuf, 8192) == 0);
	CHECK(marked(&lg, daddr(mem, rbuf, 1)));
	CHECK(marked(&lg, daddr(mem, rbuf + PG, 1)));
	if (packed)
		CHECK(marked(&lg, l.desc_addr));
	else
		CHECK(marked(&lg, l.device_addr));
	/* the blk status byte: the request's last writable byte; blk_rq
	 * frees it, so look for any page marked besides those above */
	unsigned n_read = count_marked(&lg);
	CHECK(n_read >= 3);

	/* a write: its data is only read by the device */
	memset(lg.bits, 0, log_size);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_OUT, 16, wbuf, 8192),
		 VIRTIO_BLK_S_OK);
	CHECK(!marked(&lg, daddr(mem, wbuf, 1)));
	CHECK(!marked(&lg, daddr(mem, wbuf + PG, 1)));
	CHECK(count_marked(&lg) >= 1); /* status, ring */

	/* a new log while the queue runs: the old one is no longer used */
	CHECK_EQ(set_log_base(b, s, log_size, 0, lg2.fd), 0);
	memset(lg.bits, 0, log_size);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_IN, 16, rbuf, 8192),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(count_marked(&lg), 0);
	CHECK(marked(&lg2, daddr(mem, rbuf, 1)));
	CHECK(marked(&lg2, daddr(mem, rbuf + PG, 1)));

	/* LOG_ALL off: nothing more */
	set_features(b, s, want);
	memset(lg2.bits, 0, log_size);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_IN, 8, rbuf, 8192),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(count_marked(&lg2), 0);
	CHECK(!vio_vq_broken(vq));
	/* the queue kept its position through every hand-over: six
	 * requests (packed: three descriptors each, wrap counter 1); QEMU
	 * 7.2 stops a device (at the end of a migration too) with SET_STATUS
	 * 0 before GET_VRING_BASE: the position survives the reset */
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_STATUS, 0), 0);
	struct fmsg m = mk(VIO_VU_GET_VRING_BASE, 8);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	struct vio_vu_state st = {0};
	CHECK(fe_reply(s, VIO_VU_GET_VRING_BASE, &st, 8));
	CHECK_EQ(st.num & 0xffff, packed ? 18 | 1u << 15 : 6);

	close(s);
	CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);
	vio_vq_free(vq);
	vio_mem_free(mem);
	log_free(&lg);
	log_free(&lg2);
	close(kick);
	close(call);
	CHECK_EQ(test_count_fds(), fds_before);
	CHECK(fresh_connection_works(b));
	vio_backend_free(b);
}

/* ---- completions pushed while GET_VRING_BASE stops the queue ---- */

/* The holder: its kick pops and holds; its queue_stop (the worker, as
 * GET_VRING_BASE stops the queue) fills the held buffer and pushes it. */
static struct {
	uint32_t head;
	void *buf;
	uint32_t len;
	int held; /* atomic: the test thread waits for it */
} hd;

static bool hd_kick(struct vio_device *d, unsigned idx, struct vio_vq *vq)
{
	struct vio_iov iov[4];
	struct vio_chain c;
	while (vio_vq_pop(vq, &c, iov, 4) == 1) {
		REQUIRE(c.nr_in == 1 && !__atomic_load_n(&hd.held, 0));
		hd.head = c.head;
		hd.buf = c.in[0].base;
		hd.len = c.in[0].len;
		__atomic_store_n(&hd.held, 1, __ATOMIC_RELEASE);
	}
	return false;
}

static void hd_stop(struct vio_device *d, unsigned idx, struct vio_vq *vq)
{
	if (!__atomic_load_n(&hd.held, __ATOMIC_ACQUIRE))
		return;
	memset(hd.buf, 0xcd, hd.len);
	CHECK_EQ(vio_vq_push(vq, hd.head, hd.len), 0);
	vio_vq_call(vq);
	__atomic_store_n(&hd.held, 0, __ATOMIC_RELEASE);
}

static int hd_start(struct vio_device *d, unsigned idx, struct vio_vq *vq,
		    struct vio_loop *loop)
{
	return 0;
}

static const struct vio_device_ops hd_ops = {
    .kick = hd_kick, .queue_start = hd_start, .queue_stop = hd_stop};

static void test_stop_logged(bool packed)
{
	struct vio_device_opts o = {
	    .name = "holder",
	    .device_id = VIRTIO_ID_RNG,
	    .num_queues = 1,
	    .queue_max_size = QSIZE,
	    .ops = &hd_ops,
	};
	if (packed)
		o.features.w[0] = 1ull << VIRTIO_F_RING_PACKED;
	struct vio_device *d = vio_device_new(&o), *saved = dev;
	REQUIRE(d);
	dev = d;
	struct vio_backend *b = backend_up(true);
	int s = fe_connect(b);
	uint64_t want = handshake(b, s, packed);
	set_features(b, s, want | 1ull << VHOST_F_LOG_ALL);

	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	REQUIRE(vio_mem_add_region(mem, 2u << 20, NULL) == 0);
	const struct vio_region *reg = vio_mem_region(mem, 0);
	size_t log_size =
	    (size_t)(((reg->addr + reg->size) / PG / 8 + 7) & ~7ull);
	int kick = new_eventfd(), call = new_eventfd();
	struct vio_vq_opts qc = {.size = QSIZE,
				 .packed = packed,
				 .event_idx =
				     want & (1ull << VIRTIO_RING_F_EVENT_IDX),
				 .notify = kick_notify,
				 .opaque = &kick,
				 .name = "test/q0"};
	struct vio_vq *vq = vio_vq_new_driver(&qc, mem);
	REQUIRE(vq);
	uint64_t da;
	uint8_t *buf = vio_mem_alloc(mem, 3 * PG, PG, &da);
	REQUIRE(buf);
	send_mem_table(b, s, mem);
	struct vio_vq_layout l;
	vio_vq_get_layout(vq, &l);
	struct log_map lg;
	log_new(&lg, log_size);
	CHECK_EQ(set_log_base(b, s, log_size, 0, lg.fd), 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_NUM, 0, QSIZE), 0);
	CHECK_EQ(
	    fe_state(b, s, VIO_VU_SET_VRING_BASE, 0, packed ? 0x80008000u : 0),
	    0);
	set_addr(b, s, &l, true);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_CALL, 0, call), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_KICK, 0, kick), 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_ENABLE, 0, 1), 0);

	/* a buffer of three pages, popped and held by the device */
	struct vio_sg sg = {buf + 100, 2 * PG};
	CHECK_EQ(vio_vq_add(vq, &sg, 0, 1, buf), 0);
	vio_vq_kick(vq);
	uint64_t deadline = vio_now_ns() + 5000000000ull;
	while (!__atomic_load_n(&hd.held, __ATOMIC_ACQUIRE) &&
	       vio_now_ns() < deadline)
		usleep(1000);
	REQUIRE(__atomic_load_n(&hd.held, __ATOMIC_ACQUIRE));
	memset(lg.bits, 0, log_size);

	/* the stop completes it: logged before GET_VRING_BASE answers */
	struct fmsg m = mk(VIO_VU_GET_VRING_BASE, 8);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	struct vio_vu_state st = {0};
	CHECK(fe_reply(s, VIO_VU_GET_VRING_BASE, &st, 8));
	CHECK_EQ(st.num & 0xffff, packed ? 1 | 1u << 15 : 1);
	for (unsigned p = 0; p < 3; p++)
		CHECK(marked(&lg, daddr(mem, buf + p * PG, 1)));
	CHECK(marked(&lg, packed ? l.desc_addr : l.device_addr));
	uint32_t len = 0;
	CHECK(wait_used(vq, call, buf, &len));
	CHECK_EQ(len, 2 * PG);
	CHECK_EQ(buf[100], 0xcd);

	close(s);
	CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);
	vio_backend_free(b);
	vio_vq_free(vq);
	vio_mem_free(mem);
	log_free(&lg);
	close(kick);
	close(call);
	vio_device_free(d);
	dev = saved;
}

/* ---- a log that cannot be used ends only that connection ---- */

struct bad_log {
	const char *name;
	uint64_t size, off, file;
	bool pipe, no_shmfd;
	const char *says;
};

static const struct bad_log bad[] = {
    {"larger than its file", 1 << 16, 0, 4096, false, false, "dirty log"},
    {"offset past the file", 4096, 8192, 4096, false, false, "dirty log"},
    {"offset + size wraps", 4096, UINT64_MAX - 100, 4096, false, false,
     "dirty log"},
    {"size 0", 0, 0, 4096, false, false, "dirty log"},
    {"a pipe", 4096, 0, 0, true, false, "dirty log"},
    {"LOG_SHMFD not negotiated", 4096, 0, 4096, false, true, "LOG_SHMFD"},
};

static void bad_case(const struct bad_log *c)
{
	/* a backend each: its log lines are rate-limited per backend */
	struct vio_backend *b = backend_up(false);
	int s = fe_connect(b);
	offered_features(b, s);
	uint64_t pf = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
	if (c->no_shmfd)
		pf &= ~(1ull << VIO_VU_PF_LOG_SHMFD);
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	int fd = c->pipe ? new_pipe_end() : new_memfd(c->file);
	struct fmsg m = mk(VIO_VU_SET_LOG_BASE, 16);
	m.p.log.mmap_size = c->size;
	m.p.log.mmap_offset = c->off;
	struct capture cap;
	capture_start(&cap);
	int r = fe_msg(b, s, &m, &fd, 1);
	capture_end(&cap);
	close(fd);
	CHECK(r < 0);
	fprintf(stderr, "[%s] dispatch %d\n%s", c->name, r, cap.text);
	CHECK(strstr(cap.text, c->says) != NULL);
	CHECK(fe_eof(s));
	CHECK(!vio_backend_connected(b));
	close(s);
	CHECK(fresh_connection_works(b));
	vio_backend_free(b);
}

static void test_bad(void)
{
	int fds = test_count_fds(), maps = test_count_maps();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		bad_case(&bad[i]);
	if (pipe_rd >= 0)
		close(pipe_rd);
	pipe_rd = -1;
	CHECK_EQ(test_count_fds(), fds);
	CHECK_EQ(test_count_maps(), maps);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(55); /* a hang is a failure with a core, not a meson timeout */
	fe_setup("vu-log");
	flow(false);
	flow(true);
	test_stop_logged(false);
	test_stop_logged(true);
	test_bad();
	fe_teardown();
	return test_result("vu_log");
}
