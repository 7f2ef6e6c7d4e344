/* SPDX-License-Identifier: MIT */
/*
 * The thread contract of vio/device.h ("Threads"), observed: a two-queue
 * device records the thread of every op call.
 *
 * Over vhost-user (vio's frontend, vio's backend with vio/run.h workers):
 * status, reset and the config ops run on the thread that calls
 * vio_backend_dispatch; each queue's kicks on one worker thread of its
 * own, never the control thread, never the other queue's; kicks of one
 * queue never overlap; reset runs with no queue live, several times per
 * connection, and the device serves again after each.  The log handler
 * (vio/log.h) gets the backend's connection lines at INFO, on the control
 * thread.
 *
 * Over inproc: control ops on the driver's thread, kicks on the thread
 * that runs vio_inproc_device_poll, never two ops at once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "test.h"
#include <vio/bus.h>
#include <vio/device.h>
#include <vio/driver.h>
#include <vio/error.h>
#include <vio/inproc.h>
#include <vio/log.h>
#include <vio/mem.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define NQ 2
#define QSIZE 64
#define ROUNDS 20

/* ---- the recording device ---- */

enum op { OP_STATUS, OP_RESET, OP_CFG_WRITABLE, OP_CFG_WRITE, OP_KICK };

struct rec {
	enum op op;
	unsigned idx;
	pid_t tid;
	unsigned phase;
};

static struct {
	pthread_mutex_t lock;
	struct rec r[8192];
	unsigned n;
	unsigned phase;
	atomic_int in_op;	/* ops running now (inproc: never 2) */
	atomic_int in_kick[NQ]; /* kicks of queue i running now */
	atomic_uint overlaps, max_in_op, live_at_reset;
} T = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void record(enum op op, unsigned idx)
{
	pthread_mutex_lock(&T.lock);
	if (T.n < sizeof(T.r) / sizeof(T.r[0]))
		T.r[T.n++] = (struct rec){op, idx, gettid(), T.phase};
	pthread_mutex_unlock(&T.lock);
}

static void set_phase(unsigned p)
{
	pthread_mutex_lock(&T.lock);
	T.phase = p;
	pthread_mutex_unlock(&T.lock);
}

static void op_enter(void)
{
	unsigned now = (unsigned)atomic_fetch_add(&T.in_op, 1) + 1;
	unsigned m = atomic_load(&T.max_in_op);
	while (now > m && !atomic_compare_exchange_weak(&T.max_in_op, &m, now))
		;
}

static void op_leave(void)
{
	atomic_fetch_sub(&T.in_op, 1);
}

static int t_status(struct vio_device *dev, uint8_t old, uint8_t new_status)
{
	op_enter();
	record(OP_STATUS, 0);
	op_leave();
	return 0;
}

static void t_reset(struct vio_device *dev)
{
	op_enter();
	record(OP_RESET, 0);
	for (unsigned i = 0; i < NQ; i++)
		if (vio_device_queue(dev, i))
			atomic_fetch_add(&T.live_at_reset, 1);
	op_leave();
}

static bool t_config_writable(struct vio_device *dev, unsigned off,
			      const void *buf, unsigned len)
{
	op_enter();
	record(OP_CFG_WRITABLE, 0);
	op_leave();
	return off == 0 && len == 1;
}

static void t_config_write(struct vio_device *dev, unsigned off, unsigned len)
{
	op_enter();
	record(OP_CFG_WRITE, 0);
	op_leave();
}

/* Echo: every chain is returned, nothing written; bounded by the ring. */
static bool t_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	op_enter();
	if (atomic_fetch_add(&T.in_kick[idx % NQ], 1))
		atomic_fetch_add(&T.overlaps, 1);
	record(OP_KICK, idx);
	struct vio_chain c;
	struct vio_iov iov[4];
	unsigned n = 0;
	int r;
	while (n++ < vio_vq_size(vq) &&
	       ((r = vio_vq_pop(vq, &c, iov, 4)) > 0 || r == -E2BIG))
		(void)vio_vq_push(vq, c.head, 0);
	vio_vq_call(vq);
	atomic_fetch_sub(&T.in_kick[idx % NQ], 1);
	op_leave();
	return false;
}

static const struct vio_device_ops t_ops = {
    .status = t_status,
    .reset = t_reset,
    .config_writable = t_config_writable,
    .config_write = t_config_write,
    .kick = t_kick,
};

static struct vio_device *t_dev_new(void)
{
	static const uint8_t config[8];
	struct vio_device_opts c = {.name = "threads",
				    .device_id = VIRTIO_ID_CONSOLE,
				    .num_queues = NQ,
				    .queue_max_size = QSIZE,
				    .config = config,
				    .config_size = sizeof(config),
				    .ops = &t_ops};
	struct vio_device *d = vio_device_new(&c);
	REQUIRE(d);
	return d;
}

static void records_clear(void)
{
	pthread_mutex_lock(&T.lock);
	T.n = 0;
	T.phase = 0;
	pthread_mutex_unlock(&T.lock);
	atomic_store(&T.overlaps, 0);
	atomic_store(&T.max_in_op, 0);
	atomic_store(&T.live_at_reset, 0);
}

/* ---- the driver side: handshake by hand, echo traffic ---- */

struct drv {
	struct vio_drvdev *vdev;
	struct vio_vq *vq[NQ];
	void *buf[NQ];
};

static void drv_up(struct drv *d)
{
	struct vio_features want = {{0}};
	vio_features_set(&want, VIRTIO_F_VERSION_1);
	REQUIRE(vio_drvdev_connect(d->vdev) == 0); /* resets first */
	REQUIRE(vio_drvdev_negotiate(d->vdev, &want) == 0);
	for (unsigned i = 0; i < NQ; i++) {
		d->vq[i] = vio_drvdev_setup_vq(d->vdev, i, 0, NULL, NULL);
		if (!d->vq[i])
			fprintf(stderr, "setup_vq %u: %s\n", i,
				vio_strerror(-errno));
		REQUIRE(d->vq[i]);
	}
	REQUIRE(vio_drvdev_driver_ok(d->vdev) == 0);
	uint8_t one = 1;
	CHECK_EQ(vio_drvdev_config_write(d->vdev, 0, &one, 1), 0);
}

/* ROUNDS echoes on each queue; each must come back. */
static void drv_traffic(struct drv *d)
{
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned i = 0; i < NQ; i++) {
			struct vio_sg sg = {.buf = d->buf[i], .len = 64};
			uint32_t len = 99;
			CHECK_EQ(vio_drvdev_send_and_wait(
				     d->vdev, d->vq[i], &sg, 1, 0, &len, 10000),
				 0);
			CHECK_EQ(len, 0);
		}
}

/* ---- checks on the records ---- */

static bool is_control(enum op op)
{
	return op != OP_KICK;
}

/* Every control op on ctl; kicks never on ctl or drv; in each traffic
 * phase each queue's kicks on one thread, not the other queue's. */
static void check_threads(pid_t ctl, pid_t drv_tid, bool one_kick_thread,
			  const unsigned *phases, unsigned nphases)
{
	unsigned control = 0, kicks = 0, resets = 0;
	pthread_mutex_lock(&T.lock);
	for (unsigned i = 0; i < T.n; i++) {
		struct rec *r = &T.r[i];
		if (is_control(r->op)) {
			control++;
			resets += r->op == OP_RESET;
			if (r->tid != ctl)
				fprintf(stderr, "op %d on thread %d, not %d\n",
					r->op, r->tid, ctl);
			CHECK_EQ(r->tid, ctl);
		} else {
			kicks++;
			CHECK(r->tid != drv_tid);
			if (!one_kick_thread)
				CHECK(r->tid != ctl);
		}
	}
	for (unsigned p = 0; p < nphases; p++) {
		pid_t q_tid[NQ] = {0};
		for (unsigned i = 0; i < T.n; i++) {
			struct rec *r = &T.r[i];
			if (r->op != OP_KICK || r->phase != phases[p])
				continue;
			if (!q_tid[r->idx])
				q_tid[r->idx] = r->tid;
			CHECK_EQ(r->tid, q_tid[r->idx]);
		}
		CHECK(q_tid[0] && q_tid[1]);
		if (one_kick_thread)
			CHECK_EQ(q_tid[0], q_tid[1]);
		else
			CHECK(q_tid[0] != q_tid[1]);
	}
	pthread_mutex_unlock(&T.lock);
	CHECK(control > 0);
	CHECK(kicks >= ROUNDS);
	CHECK(resets >= 2);
	CHECK_EQ(atomic_load(&T.overlaps), 0);
	CHECK_EQ(atomic_load(&T.live_at_reset), 0);
}

/* ---- vhost-user ---- */

struct backend_thread {
	struct vio_backend *b;
	int stop_fd;
	pid_t tid;
	atomic_int ready;
	pthread_t th;
};

static void *control_main(void *arg)
{
	struct backend_thread *bt = arg;
	bt->tid = gettid();
	atomic_store(&bt->ready, 1);
	for (;;) {
		struct pollfd p[2] = {{bt->stop_fd, POLLIN, 0},
				      {vio_backend_fd(bt->b), POLLIN, 0}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (p[1].revents)
			(void)vio_backend_dispatch(bt->b);
	}
	return NULL;
}

/* Log lines seen by the handler: INFO ones, and on which thread. */
static struct {
	pthread_mutex_t lock;
	unsigned info, connected;
	pid_t connected_tid;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void log_fn(void *opaque, enum vio_log_level level, const char *msg)
{
	(void)opaque;
	pthread_mutex_lock(&L.lock);
	if (level == VIO_LOG_INFO)
		L.info++;
	if (level == VIO_LOG_INFO && strstr(msg, "frontend connected")) {
		L.connected++;
		L.connected_tid = gettid();
	}
	pthread_mutex_unlock(&L.lock);
}

static void test_vhost_user(void)
{
	char dir[256], sock[300];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vio-threads-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/dev.sock", dir);

	records_clear();
	vio_log_set_handler(log_fn, NULL);
	struct vio_device *dev = t_dev_new();
	struct vio_backend_opts bc = {0};
	vio_run_backend_hooks(&bc, false);
	struct backend_thread bt = {0};
	bt.b = vio_backend_new(dev, &bc);
	REQUIRE(bt.b);
	REQUIRE(vio_backend_listen(bt.b, sock) == 0);
	bt.stop_fd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(bt.stop_fd >= 0);
	REQUIRE(pthread_create(&bt.th, NULL, control_main, &bt) == 0);

	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct drv d = {0};
	for (unsigned i = 0; i < NQ; i++) {
		uint64_t daddr;
		d.buf[i] = vio_mem_alloc(mem, 4096, 64, &daddr);
		REQUIRE(d.buf[i]);
	}
	struct vio_frontend_opts fc = {.mem = mem,
				       .device_id = VIRTIO_ID_CONSOLE,
				       .num_queues = NQ,
				       .config_size = 8,
				       .queue_size = QSIZE,
				       .connect_timeout_ms = 10000,
				       .reply_timeout_ms = 10000};
	char err[256] = "";
	struct vio_frontend *f = vio_frontend_connect(sock, &fc, err, 256);
	if (!f)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(f);
	d.vdev = vio_frontend_vdev(f);

	drv_up(&d);
	set_phase(1);
	drv_traffic(&d);
	/* reset (twice in a row: the second finds nothing to drop), set up
	 * again in the same connection, serve again */
	set_phase(2);
	CHECK_EQ(vio_drvdev_reset(d.vdev), 0);
	CHECK_EQ(vio_drvdev_reset(d.vdev), 0);
	drv_up(&d);
	set_phase(3);
	drv_traffic(&d);
	set_phase(4);

	vio_frontend_free(f);
	uint64_t one = 1;
	REQUIRE(write(bt.stop_fd, &one, sizeof(one)) == sizeof(one));
	pthread_join(bt.th, NULL);
	vio_backend_free(bt.b); /* the disconnect's reset: control thread
				   is gone, so not recorded as ctl's */
	vio_log_set_handler(NULL, NULL);

	/* drop what vio_backend_free did on this thread */
	pthread_mutex_lock(&T.lock);
	while (T.n && T.r[T.n - 1].phase == 4 && T.r[T.n - 1].tid == gettid())
		T.n--;
	pthread_mutex_unlock(&T.lock);
	static const unsigned traffic[] = {1, 3};
	check_threads(bt.tid, gettid(), false, traffic, 2);

	pthread_mutex_lock(&L.lock);
	CHECK_EQ(L.connected, 1);
	CHECK_EQ(L.connected_tid, bt.tid);
	pthread_mutex_unlock(&L.lock);

	vio_device_free(dev);
	vio_mem_free(mem);
	close(bt.stop_fd);
	unlink(sock);
	rmdir(dir);
}

/* ---- inproc ---- */

struct poll_thread {
	struct vio_inproc *ip;
	pid_t tid;
	pthread_t th;
};

static void *poll_main(void *arg)
{
	struct poll_thread *pt = arg;
	pt->tid = gettid();
	while (vio_inproc_device_poll(pt->ip, -1) >= 0)
		;
	return NULL;
}

static void test_inproc(void)
{
	records_clear();
	struct vio_device *dev = t_dev_new();
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct drv d = {0};
	for (unsigned i = 0; i < NQ; i++) {
		uint64_t daddr;
		d.buf[i] = vio_mem_alloc(mem, 4096, 64, &daddr);
		REQUIRE(d.buf[i]);
	}
	struct poll_thread pt = {0};
	pt.ip = vio_inproc_new(dev, mem);
	REQUIRE(pt.ip);
	d.vdev = vio_inproc_vdev(pt.ip);
	REQUIRE(pthread_create(&pt.th, NULL, poll_main, &pt) == 0);

	drv_up(&d);
	set_phase(1);
	drv_traffic(&d);
	set_phase(2);
	CHECK_EQ(vio_drvdev_reset(d.vdev), 0);
	drv_up(&d);
	set_phase(3);
	drv_traffic(&d);
	set_phase(4);
	CHECK_EQ(vio_drvdev_reset(d.vdev), 0);

	vio_inproc_stop(pt.ip);
	pthread_join(pt.th, NULL);
	vio_inproc_free(pt.ip);

	/* control ops on this (the driver's) thread, kicks of both queues on
	 * the poll thread, never two ops at once */
	static const unsigned traffic[] = {1, 3};
	pthread_mutex_lock(&T.lock);
	for (unsigned i = 0; i < T.n; i++)
		if (T.r[i].op == OP_KICK)
			CHECK_EQ(T.r[i].tid, pt.tid);
	pthread_mutex_unlock(&T.lock);
	check_threads(gettid(), gettid(), true, traffic, 2);
	CHECK_EQ(atomic_load(&T.max_in_op), 1);

	vio_device_free(dev);
	vio_mem_free(mem);
}

int main(void)
{
	test_vhost_user();
	test_inproc();
	return test_result("dev_threads");
}
