/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's queues under control changes and hostile fds
 * (issue 7, items 2, 3, 5, 6), with real worker threads (vio/run.h):
 *
 * - config: a refused SET_CONFIG of the capacity does not reach the next
 *   connection (reset restores the device's config);
 * - error fd: a queue that breaks signals its SET_VRING_ERR eventfd and
 *   logs which queue and why;
 * - call fd: SET_VRING_CALL on a running queue swaps the fd without
 *   stopping or restarting the worker; the new fd gets the calls;
 * - full call fd: a blocking eventfd whose counter is at its maximum
 *   stalls neither the worker nor the control thread;
 * - bounded stop: GET_VRING_BASE answers promptly while a driver thread
 *   keeps the ring full;
 * - worker: a kick fd that hangs up (a pipe whose writer closed) parks the
 *   worker instead of spinning;
 * - listen: a socket path too long for a temporary name beside it still
 *   works (bound in place).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include "fake_frontend.h"

/* ---- hooks that count worker starts and stops ---- */

static struct vio_backend_opts run_hooks;
static int starts, stops;

static void *count_start(void *opaque, struct vio_backend *b, unsigned idx,
			 int kick_fd)
{
	__atomic_fetch_add(&starts, 1, __ATOMIC_RELAXED);
	return run_hooks.queue_start(run_hooks.opaque, b, idx, kick_fd);
}

static void count_stop(void *opaque, void *handle)
{
	__atomic_fetch_add(&stops, 1, __ATOMIC_RELAXED);
	run_hooks.queue_stop(run_hooks.opaque, handle);
}

static struct vio_backend *backend_counted(void)
{
	vio_run_backend_hooks(&run_hooks, false);
	struct vio_backend_opts c = {
	    .queue_start = count_start,
	    .queue_stop = count_stop,
	};
	struct vio_backend *b = vio_backend_new(dev, &c);
	REQUIRE(b);
	REQUIRE(vio_backend_listen(b, sock_path) == 0);
	starts = stops = 0;
	return b;
}

/* ---- a running split ring, driven from the test ---- */

struct ring {
	struct vio_backend *b;
	int s, kick, call, err;
	struct vio_mem *mem;
	struct vio_vq *vq;
	struct vio_vq_layout l;
};

/* Connect and start queue 0 (STATUS negotiated: DRIVER_OK sent).  call
 * and err are the fds given to the backend (-1: none). */
static void ring_up(struct ring *r, struct vio_backend *b, int call, int err)
{
	memset(r, 0, sizeof(*r));
	r->b = b;
	r->s = fe_connect(b);
	r->call = call;
	r->err = err;
	uint64_t f = offered_features(b, r->s), pf = 0;
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 |
			1ull << VIO_VU_F_PROTOCOL_FEATURES |
			(f & (1ull << VIRTIO_BLK_F_FLUSH));
	CHECK(fe_get_u64(b, r->s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
	CHECK_EQ(fe_set_u64(b, r->s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	CHECK_EQ(fe_set_u64(b, r->s, VIO_VU_SET_FEATURES, want), 0);

	r->mem = vio_mem_new();
	REQUIRE(r->mem);
	REQUIRE(vio_mem_add_region(r->mem, 8u << 20, NULL) == 0);
	r->kick = new_eventfd();
	struct vio_vq_opts qc = {
	    .size = QSIZE,
	    .notify = kick_notify,
	    .opaque = &r->kick,
	    .name = "test/q0",
	};
	r->vq = vio_vq_new_driver(&qc, r->mem);
	REQUIRE(r->vq);
	vio_vq_get_layout(r->vq, &r->l);
	send_mem_table(b, r->s, r->mem);

	CHECK_EQ(fe_state(b, r->s, VIO_VU_SET_VRING_NUM, 0, QSIZE), 0);
	CHECK_EQ(fe_state(b, r->s, VIO_VU_SET_VRING_BASE, 0, 0), 0);
	struct fmsg m = mk(VIO_VU_SET_VRING_ADDR, 40);
	m.p.addr.desc = (uintptr_t)r->l.desc;
	m.p.addr.avail = (uintptr_t)r->l.driver;
	m.p.addr.used = (uintptr_t)r->l.device;
	CHECK_EQ(fe_msg(b, r->s, &m, NULL, 0), 0);
	CHECK_EQ(fe_vring_fd(b, r->s, VIO_VU_SET_VRING_CALL, 0, call), 0);
	CHECK_EQ(fe_vring_fd(b, r->s, VIO_VU_SET_VRING_ERR, 0, err), 0);
	CHECK_EQ(fe_vring_fd(b, r->s, VIO_VU_SET_VRING_KICK, 0, r->kick), 0);
	CHECK_EQ(fe_state(b, r->s, VIO_VU_SET_VRING_ENABLE, 0, 1), 0);
	/* STATUS negotiated but no SET_STATUS sent yet (QEMU 7.2's
	 * vhost-user-rng never sends one): the ring starts when ready */
	CHECK(vio_device_queue(dev, 0) != NULL);
	CHECK(vio_device_get_status(dev) & VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK_EQ(fe_set_u64(b, r->s, VIO_VU_SET_STATUS, 0xf), 0);
	CHECK(vio_device_queue(dev, 0) != NULL);
}

static void ring_down(struct ring *r)
{
	close(r->s);
	CHECK_EQ(vio_backend_dispatch(r->b), -ECONNRESET);
	vio_vq_free(r->vq);
	vio_mem_free(r->mem);
	close(r->kick);
}

/* Wait up to ms for fd to be readable. */
static bool readable(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* ---- config space poisoning (item 3) ---- */

static void test_config_not_inherited(void)
{
	struct vio_backend *b = backend_up(false);
	int s = fe_connect(b);
	offered_features(b, s);
	struct fmsg m = mk(VIO_VU_SET_CONFIG, 12 + 8);
	m.p.config.size = 8;
	uint64_t poison = 0xdeadbeef;
	memcpy(m.p.config.data, &poison, 8);
	vio_log_set_quiet(1);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), -ECONNRESET);
	vio_log_set_quiet(0);
	close(s);

	s = fe_connect(b);
	m = mk(VIO_VU_GET_CONFIG, 12 + 8);
	m.p.config.size = 8;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	struct vio_vu_config cfg;
	CHECK(fe_reply(s, VIO_VU_GET_CONFIG, &cfg, 12 + 8));
	uint64_t cap;
	memcpy(&cap, cfg.data, 8);
	CHECK_EQ(cap, IMG_SIZE / 512);
	close(s);
	CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);
	vio_backend_free(b);
}

/* ---- a broken queue signals its error fd (item 6) ---- */

static void test_error_fd(void)
{
	struct vio_backend *b = backend_up(true);
	int call = new_eventfd(), err = new_eventfd();
	struct ring r;
	ring_up(&r, b, call, err);
	struct capture cap;
	capture_start(&cap);
	/* the avail index runs 5 past a full ring: a violation (2.7.13) */
	struct vring_avail *avail = r.l.driver;
	__atomic_store_n(&avail->idx, (uint16_t)(QSIZE + 5), __ATOMIC_RELEASE);
	uint64_t one = 1;
	CHECK(write(r.kick, &one, sizeof(one)) == sizeof(one));
	bool signalled = readable(err, 5000);
	capture_end(&cap);
	CHECK(signalled);
	CHECK(strstr(cap.text, "queue 0 broken") != NULL);
	CHECK(strstr(cap.text, "error fd signalled") != NULL);
	uint64_t v = 0;
	CHECK(fe_get_u64(b, r.s, VIO_VU_GET_STATUS, &v));
	CHECK(v & VIRTIO_CONFIG_S_NEEDS_RESET);
	ring_down(&r);
	close(call);
	close(err);
	vio_backend_free(b);
}

/* ---- a new call fd on a running queue (item 5) ---- */

static void test_call_swap(void)
{
	struct vio_backend *b = backend_counted();
	int call1 = new_eventfd(), call2 = new_eventfd();
	struct ring r;
	ring_up(&r, b, call1, -1);
	CHECK_EQ(starts, 1);
	uint8_t *buf = vio_mem_alloc(r.mem, 4096, 4096, &(uint64_t){0});
	REQUIRE(buf);
	CHECK_EQ(blk_rq(r.vq, call1, r.mem, VIRTIO_BLK_T_IN, 0, buf, 4096),
		 VIRTIO_BLK_S_OK);
	uint64_t v;
	while (read(call1, &v, sizeof(v)) > 0)
		;
	for (int i = 0; i < 20; i++) { /* QEMU: MSI-X mask, unmask, ... */
		int fd = i % 2 ? call2 : call1;
		CHECK_EQ(fe_vring_fd(b, r.s, VIO_VU_SET_VRING_CALL, 0, fd), 0);
	}
	CHECK_EQ(starts, 1); /* the worker was neither stopped nor restarted */
	CHECK_EQ(stops, 0);
	/* each swap sent one catch-up call: drain, then only call2 hears */
	while (read(call1, &v, sizeof(v)) > 0)
		;
	while (read(call2, &v, sizeof(v)) > 0)
		;
	int never = new_eventfd();
	CHECK_EQ(blk_rq(r.vq, never, r.mem, VIRTIO_BLK_T_IN, 0, buf, 4096),
		 VIRTIO_BLK_S_OK);
	CHECK(readable(call2, 2000));
	CHECK(!readable(call1, 0)); /* the old fd hears nothing more */
	close(never);
	vio_mem_release(r.mem, buf);
	ring_down(&r);
	CHECK_EQ(stops, 1);
	close(call1);
	close(call2);
	vio_backend_free(b);
}

/* ---- a call fd that would block (item 2) ---- */

static void test_full_call_fd(void)
{
	struct vio_backend *b = backend_up(true);
	/* blocking, counter at its maximum: a blocking write never returns */
	int full = eventfd(0, EFD_CLOEXEC);
	REQUIRE(full >= 0);
	uint64_t max = 0xfffffffffffffffeull;
	REQUIRE(write(full, &max, sizeof(max)) == sizeof(max));
	int never = new_eventfd(); /* wait_used polls the ring itself */
	struct ring r;
	ring_up(&r, b, full, -1);
	uint8_t *buf = vio_mem_alloc(r.mem, 4096, 4096, &(uint64_t){0});
	REQUIRE(buf);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(
		    blk_rq(r.vq, never, r.mem, VIRTIO_BLK_T_IN, 0, buf, 4096),
		    VIRTIO_BLK_S_OK);
	/* the control thread stops the worker: it must not be stuck */
	uint64_t t0 = vio_now_ns();
	struct fmsg m = mk(VIO_VU_GET_VRING_BASE, 8);
	CHECK_EQ(fe_msg(b, r.s, &m, NULL, 0), 0);
	struct vio_vu_state st;
	CHECK(fe_reply(r.s, VIO_VU_GET_VRING_BASE, &st, 8));
	CHECK_EQ(st.num, 3);
	CHECK(vio_now_ns() - t0 < 2000000000ull);
	vio_mem_release(r.mem, buf);
	ring_down(&r);
	close(full);
	close(never);
	vio_backend_free(b);
}

/* ---- bounded stop under sustained load (item 5) ---- */

struct load {
	struct ring *r;
	int stop; /* atomic */
	uint64_t done;
};

#define LOAD_REQS 48
#define LOAD_BYTES 65536

static void *load_main(void *p)
{
	struct load *ld = p;
	struct ring *r = ld->r;
	struct {
		struct virtio_blk_outhdr *h;
		uint8_t *data, *status;
	} rq[LOAD_REQS];
	uint64_t da;
	for (int i = 0; i < LOAD_REQS; i++) {
		rq[i].h = vio_mem_alloc(r->mem, sizeof(*rq[i].h), 16, &da);
		rq[i].data = vio_mem_alloc(r->mem, LOAD_BYTES, 4096, &da);
		rq[i].status = vio_mem_alloc(r->mem, 1, 1, &da);
		REQUIRE(rq[i].h && rq[i].data && rq[i].status);
		rq[i].h->type = VIRTIO_BLK_T_IN;
		rq[i].h->sector = (uint64_t)(i % 16) * (LOAD_BYTES / 512);
	}
	bool free_rq[LOAD_REQS];
	for (int i = 0; i < LOAD_REQS; i++)
		free_rq[i] = true;
	/* a device that never stops would hold the test's control thread:
	 * the load ends by itself after 3 s, so that shows as a slow stop */
	uint64_t end = vio_now_ns() + 3000000000ull;
	while (!__atomic_load_n(&ld->stop, __ATOMIC_ACQUIRE) &&
	       vio_now_ns() < end) {
		/* a few at a time: the device finds new chains whenever
		 * it finishes a batch, so the ring never runs dry */
		int added = 0;
		for (int i = 0; i < LOAD_REQS && added < 4; i++) {
			if (!free_rq[i])
				continue;
			added++;
			struct vio_sg sg[3] = {{rq[i].h, sizeof(*rq[i].h)},
					       {rq[i].data, LOAD_BYTES},
					       {rq[i].status, 1}};
			if (vio_vq_add(r->vq, sg, 1, 2, &rq[i]) == 0)
				free_rq[i] = false;
		}
		vio_vq_kick(r->vq);
		uint32_t len;
		void *t;
		while ((t = vio_vq_get(r->vq, &len))) {
			free_rq[(typeof(&rq[0]))t - rq] = true;
			__atomic_add_fetch(&ld->done, 1, __ATOMIC_RELAXED);
		}
		if (vio_vq_broken(r->vq))
			break;
	}
	return NULL;
}

static void test_bounded_stop(void)
{
	struct vio_backend *b = backend_up(true);
	int call = new_eventfd();
	struct ring r;
	ring_up(&r, b, call, -1);
	struct load ld = {.r = &r};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, load_main, &ld) == 0);
	/* under load: the device keeps finding chains */
	uint64_t deadline = vio_now_ns() + 5000000000ull;
	while (__atomic_load_n(&ld.done, __ATOMIC_RELAXED) < 2000 &&
	       vio_now_ns() < deadline)
		usleep(1000);
	uint64_t t0 = vio_now_ns();
	struct fmsg m = mk(VIO_VU_GET_VRING_BASE, 8);
	CHECK_EQ(fe_msg(b, r.s, &m, NULL, 0), 0);
	uint64_t took = vio_now_ns() - t0;
	struct vio_vu_state st;
	CHECK(fe_reply(r.s, VIO_VU_GET_VRING_BASE, &st, 8));
	__atomic_store_n(&ld.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	printf("bounded stop: %llu requests before, stop took %llu us\n",
	       (unsigned long long)ld.done, (unsigned long long)took / 1000);
	CHECK(ld.done >= 2000);
	CHECK(took < 1000000000ull);
	ring_down(&r);
	close(call);
	vio_backend_free(b);
}

/* ---- a hung-up kick fd parks the worker (item 2) ---- */

static int runs;
static bool count_run(void *arg)
{
	__atomic_fetch_add(&runs, 1, __ATOMIC_RELAXED);
	return false;
}

static uint64_t cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void test_kick_hangup(void)
{
	int p[2];
	REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	close(p[1]); /* POLLHUP from now on */
	vio_log_set_quiet(1);
	uint64_t c0 = cpu_us();
	struct vio_run_worker *w =
	    vio_run_worker_start(p[0], count_run, NULL, false);
	REQUIRE(w);
	usleep(300000); /* measuring CPU over a span, not waiting on it */
	uint64_t used = cpu_us() - c0;
	vio_run_worker_stop(w);
	vio_log_set_quiet(0);
	close(p[0]);
	printf("hung-up kick fd: %llu us CPU in 300 ms, %d runs\n",
	       (unsigned long long)used, runs);
	CHECK(used < 100000);
	CHECK_EQ(runs, 1);
}

/* ---- a socket path with no room for a temporary name beside it ---- */

static void test_long_path(void)
{
	char path[108];
	size_t n = strlen(dir);
	REQUIRE(n + 2 < sizeof(path) - 4);
	memcpy(path, dir, n);
	path[n++] = '/';
	while (n < sizeof(path) - 4) /* 103 bytes: fits, "+.PID.tmp" not */
		path[n++] = 'a';
	path[n] = 0;
	struct vio_backend *b = vio_backend_new(dev, NULL);
	REQUIRE(b);
	CHECK_EQ(vio_backend_listen(b, path), 0);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, n + 1);
	CHECK(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(s);
	vio_backend_free(b);
	CHECK(access(path, F_OK) != 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(50); /* a hang (a stuck worker) fails with a core */
	fe_setup("vu-queue");
	test_config_not_inherited();
	test_error_fd();
	test_call_swap();
	test_full_call_fd();
	test_bounded_stop();
	test_kick_hangup();
	test_long_path();
	fe_teardown();
	return test_result("vu_queue_ctl");
}
