/* SPDX-License-Identifier: MIT */
/*
 * The engine under vio's vhost-user backend (fake frontend, blk device):
 *
 * - SET_VRING_KICK with a new fd on a running queue replaces the fd on the
 *   queue's worker: the queue is not stopped and started (hooks counted),
 *   the process keeps the same threads (/proc/self/task), requests kicked
 *   on the new fd complete, the old fd kicks nothing;
 * - a group with one thread serves two queues, both progress;
 * - GET_VRING_BASE (a stop) is quick while the worker is busy-polling.
 */
#include <dirent.h>

#include "fake_frontend.h"

static struct vio_backend_opts run_hooks;
static int starts, stops, swaps;

static void *count_start(void *opaque, struct vio_backend *b, unsigned idx,
			 int kick_fd)
{
	starts++;
	return run_hooks.queue_start(run_hooks.opaque, b, idx, kick_fd);
}

static void count_stop(void *opaque, void *handle)
{
	stops++;
	run_hooks.queue_stop(run_hooks.opaque, handle);
}

static int count_swap(void *opaque, void *handle, int kick_fd)
{
	swaps++;
	return run_hooks.queue_kick_fd(run_hooks.opaque, handle, kick_fd);
}

static struct vio_backend *backend_on(struct vio_run *run)
{
	vio_run_hooks(run, &run_hooks);
	struct vio_backend_opts c = {
	    .queue_start = count_start,
	    .queue_stop = count_stop,
	    .queue_kick_fd = count_swap,
	};
	struct vio_backend *b = vio_backend_new(dev, &c);
	REQUIRE(b);
	REQUIRE(vio_backend_listen(b, sock_path) == 0);
	starts = stops = swaps = 0;
	return b;
}

struct ring {
	int kick;
	struct vio_vq *vq;
};

struct conn {
	struct vio_backend *b;
	int s, call;
	struct vio_mem *mem;
	struct ring q[2];
};

/* Connect and start nq queues (STATUS: DRIVER_OK sent). */
static void conn_up(struct conn *c, struct vio_backend *b, unsigned nq)
{
	memset(c, 0, sizeof(*c));
	c->b = b;
	c->s = fe_connect(b);
	c->call = new_eventfd();
	uint64_t f = offered_features(b, c->s), pf = 0;
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 |
			1ull << VIO_VU_F_PROTOCOL_FEATURES |
			(f & (1ull << VIRTIO_BLK_F_FLUSH)) |
			(f & (1ull << VIRTIO_BLK_F_MQ));
	CHECK(fe_get_u64(b, c->s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
	CHECK_EQ(fe_set_u64(b, c->s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	CHECK_EQ(fe_set_u64(b, c->s, VIO_VU_SET_FEATURES, want), 0);
	c->mem = vio_mem_new();
	REQUIRE(c->mem);
	REQUIRE(vio_mem_add_region(c->mem, 8u << 20, NULL) == 0);
	for (unsigned i = 0; i < nq; i++) {
		struct ring *r = &c->q[i];
		r->kick = new_eventfd();
		struct vio_vq_opts qc = {
		    .index = (uint16_t)i,
		    .size = QSIZE,
		    .notify = kick_notify,
		    .opaque = &r->kick,
		    .name = "test/q",
		};
		r->vq = vio_vq_new_driver(&qc, c->mem);
		REQUIRE(r->vq);
	}
	send_mem_table(b, c->s, c->mem);
	for (unsigned i = 0; i < nq; i++) {
		struct ring *r = &c->q[i];
		struct vio_vq_layout l;
		vio_vq_get_layout(r->vq, &l);
		CHECK_EQ(fe_state(b, c->s, VIO_VU_SET_VRING_NUM, i, QSIZE), 0);
		CHECK_EQ(fe_state(b, c->s, VIO_VU_SET_VRING_BASE, i, 0), 0);
		struct fmsg m = mk(VIO_VU_SET_VRING_ADDR, 40);
		m.p.addr.index = i;
		m.p.addr.desc = (uintptr_t)l.desc;
		m.p.addr.avail = (uintptr_t)l.driver;
		m.p.addr.used = (uintptr_t)l.device;
		CHECK_EQ(fe_msg(b, c->s, &m, NULL, 0), 0);
		CHECK_EQ(
		    fe_vring_fd(b, c->s, VIO_VU_SET_VRING_CALL, i, c->call), 0);
		CHECK_EQ(
		    fe_vring_fd(b, c->s, VIO_VU_SET_VRING_KICK, i, r->kick), 0);
		CHECK_EQ(fe_state(b, c->s, VIO_VU_SET_VRING_ENABLE, i, 1), 0);
	}
	CHECK_EQ(fe_set_u64(b, c->s, VIO_VU_SET_STATUS, 0xf), 0);
	for (unsigned i = 0; i < nq; i++)
		CHECK(vio_device_queue(dev, i) != NULL);
}

static void conn_down(struct conn *c, unsigned nq)
{
	close(c->s);
	CHECK_EQ(vio_backend_dispatch(c->b), -ECONNRESET);
	for (unsigned i = 0; i < nq; i++) {
		vio_vq_free(c->q[i].vq);
		close(c->q[i].kick);
	}
	vio_mem_free(c->mem);
	close(c->call);
}

/* The process's thread ids, sorted; the count. */
static unsigned threads(int *tid, unsigned max)
{
	DIR *d = opendir("/proc/self/task");
	REQUIRE(d);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max)
		if (e->d_name[0] != '.')
			tid[n++] = atoi(e->d_name);
	closedir(d);
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && tid[j - 1] > tid[j]; j--) {
			int t = tid[j];
			tid[j] = tid[j - 1];
			tid[j - 1] = t;
		}
	return n;
}

static void test_kick_fd_swap(void)
{
	char err[128];
	struct vio_run_opts o = {.threads = 1};
	struct vio_run *run = vio_run_new(&o, err, sizeof(err));
	REQUIRE(run);
	struct vio_backend *b = backend_on(run);
	struct conn c;
	conn_up(&c, b, 1);
	CHECK_EQ(starts, 1);
	uint8_t *buf = vio_mem_alloc(c.mem, 4096, 4096, NULL);
	REQUIRE(buf);
	CHECK_EQ(
	    blk_rq(c.q[0].vq, c.call, c.mem, VIRTIO_BLK_T_IN, 0, buf, 4096),
	    VIRTIO_BLK_S_OK);
	int before[64], after[64];
	unsigned nb = threads(before, 64);

	for (int round = 0; round < 3; round++) {
		int old = c.q[0].kick, nk = new_eventfd();
		CHECK_EQ(fe_vring_fd(b, c.s, VIO_VU_SET_VRING_KICK, 0, nk), 0);
		c.q[0].kick = nk; /* the driver kicks the new fd from now */
		CHECK_EQ(blk_rq(c.q[0].vq, c.call, c.mem, VIRTIO_BLK_T_IN, 0,
				buf, 4096),
			 VIRTIO_BLK_S_OK);
		/* the old fd: nobody listens (a kick there is not read) */
		uint64_t one = 1;
		CHECK(write(old, &one, 8) == 8);
		close(old);
	}
	CHECK_EQ(starts, 1);
	CHECK_EQ(stops, 0);
	CHECK_EQ(swaps, 3);
	unsigned na = threads(after, 64);
	CHECK_EQ(na, nb);
	CHECK(memcmp(before, after, nb * sizeof(int)) == 0);
	vio_mem_release(c.mem, buf);
	conn_down(&c, 1);
	CHECK_EQ(stops, 1);
	vio_backend_free(b);
	vio_run_free(run);
}

/* Two queues on one thread, both busy. */
static void test_two_queues_one_thread(bool poll)
{
	char err[128];
	struct vio_run_opts o = {.threads = 1, .poll = poll};
	struct vio_run *run = vio_run_new(&o, err, sizeof(err));
	REQUIRE(run);
	CHECK_EQ(vio_run_threads(run), 1);
	struct vio_backend *b = backend_on(run);
	struct conn c;
	conn_up(&c, b, 2);
	uint8_t *buf = vio_mem_alloc(c.mem, 4096, 4096, NULL);
	REQUIRE(buf);
	for (int i = 0; i < 20; i++)
		for (unsigned q = 0; q < 2; q++)
			CHECK_EQ(blk_rq(c.q[q].vq, c.call, c.mem,
					VIRTIO_BLK_T_IN, (uint64_t)i, buf,
					4096),
				 VIRTIO_BLK_S_OK);
	/* a stop while the worker spins: bounded */
	uint64_t t0 = vio_now_ns();
	CHECK_EQ(fe_state(b, c.s, VIO_VU_GET_VRING_BASE, 0, 0), 0);
	uint32_t st[2];
	CHECK(fe_reply(c.s, VIO_VU_GET_VRING_BASE, st, 8));
	uint64_t took = vio_now_ns() - t0;
	CHECK(took < 1000000000ull); /* bounded (a loaded machine: slow) */
	CHECK_EQ(st[1], 20);
	vio_mem_release(c.mem, buf);
	conn_down(&c, 2);
	vio_backend_free(b);
	vio_run_free(run);
}

/* fe_setup's device with two queues */
static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vio-engine-vu-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	snprintf(img_path, sizeof(img_path), "%s/img", dir);
	struct vio_blk_device_opts c = {
	    .path = img_path,
	    .size = IMG_SIZE,
	    .queue_size = QSIZE,
	    .num_queues = 2,
	};
	char err[256];
	bd = vio_blk_device_new(&c, err, sizeof(err));
	if (!bd)
		fprintf(stderr, "vio_blk_device_new: %s\n", err);
	REQUIRE(bd);
	dev = vio_blk_device_dev(bd);
}

int main(void)
{
	setup();
	test_kick_fd_swap();
	test_two_queues_one_thread(false);
	test_two_queues_one_thread(true);
	fe_teardown();
	return test_result("engine_vu");
}
