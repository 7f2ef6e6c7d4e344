/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend under a multi-threaded driver, and config
 * sizes given by the driver rather than known by the transport.
 *
 * The backends (vio's rng and blk devices) run in a child process, so
 * every eventfd of this process belongs to the frontend or to the test.
 * A test driver (an id table, probe setting up queue 0, remove) binds
 * over a bus; its remove is where a driver stops its I/O threads, and
 * the test uses it to act while the device is stopped (vio_bus_remove
 * stops the device, then calls remove with the vqs still there).
 *
 * - kick_after_stop: a thread is inside notify, between taking the kick
 *   fd and writing to it (held there by an interposed write()), when
 *   another thread removes the device; the remove opens eventfds, which
 *   take any fd number the stop freed; then the kick goes on.  No
 *   eventfd of ours may receive it.
 * - wait_woken_by_stop: a thread blocked in wait (poll on the call fd)
 *   when another thread removes the device returns at once with
 *   -ECANCELED instead of sleeping on a ring that is gone.
 * - hammer: for a bounded time, one thread kicks and one waits in a
 *   loop while the main thread connects and removes the device over and
 *   over and a third opens and checks eventfds: none ever gets data.
 * - config_by_driver: with config_size 0 the frontend asks the device
 *   for what the driver reads (a device id the transport knows nothing
 *   of), or the size the bound driver declares; reads outside it fail
 *   with -EINVAL.
 *
 * Every process is killed by PID, every fd comes back, the temp dir is
 * removed; an alarm bounds the whole test.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "test.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/mem.h>
#include <vio/rng.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define DISK_SIZE (1u << 20)
/* a device id no transport knows: the config size must come from the
 * driver (or from what it reads) */
#define ODD_ID 42u

static char tmpdir[200], rng_sock[300], blk_sock[300], blk_img[300];
static volatile pid_t child_pid = -1;

static void watchdog(int sig)
{
	(void)sig;
	if (child_pid > 0)
		kill(child_pid, SIGKILL);
	static const char msg[] = "test_vu_frontend_fds: watchdog: timed out\n";
	ssize_t r = syscall(SYS_write, 2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- write(), interposed: holds one armed kick inside notify ---- */

static __thread bool write_armed; /* this thread's next 8-byte write */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_fd = -1; /* the fd the held write is about to use */
static bool gate_go;

ssize_t write(int fd, const void *buf, size_t len)
{
	if (write_armed && len == sizeof(uint64_t)) {
		write_armed = false;
		pthread_mutex_lock(&gate_lock);
		gate_fd = fd;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_go)
			pthread_cond_wait(&gate_cond, &gate_lock);
		pthread_mutex_unlock(&gate_lock);
	}
	return syscall(SYS_write, fd, buf, len);
}

static int gate_wait_held(int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	pthread_mutex_lock(&gate_lock);
	while (gate_fd < 0 &&
	       pthread_cond_timedwait(&gate_cond, &gate_lock, &dl) == 0)
		;
	int fd = gate_fd;
	pthread_mutex_unlock(&gate_lock);
	return fd;
}

static void gate_release(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_go = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static void gate_reset(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_fd = -1;
	gate_go = false;
	pthread_mutex_unlock(&gate_lock);
}

/* ---- eventfds of ours that must never be written ---- */

#define PROBES 64

struct probes {
	int fd[PROBES];
	unsigned n;
};

/* Open eventfds until one has number want (or PROBES of them). */
static bool probes_open(struct probes *p, int want)
{
	bool hit = false;
	p->n = 0;
	while (p->n < PROBES) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			break;
		p->fd[p->n++] = fd;
		if (fd == want) {
			hit = true;
			break;
		}
	}
	return hit;
}

/* Close them; the number of them that received something. */
static unsigned probes_close(struct probes *p)
{
	unsigned dirty = 0;
	for (unsigned i = 0; i < p->n; i++) {
		uint64_t v;
		if (read(p->fd[i], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
			fprintf(stderr, "  data (%llu) landed on eventfd %d\n",
				(unsigned long long)v, p->fd[i]);
			dirty++;
		}
		close(p->fd[i]);
	}
	p->n = 0;
	return dirty;
}

/* ---- the backends, in a child process ---- */

static void serve_forever(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct vio_rng_device_opts rc = {.queue_size = 256};
	struct vio_rng_device *rd = vio_rng_device_new(&rc, NULL, 0);
	struct vio_device *rng = vio_rng_device_dev(rd);
	struct vio_blk_device_opts c = {.path = blk_img, .size = DISK_SIZE};
	char err[256];
	struct vio_blk_device *bd = vio_blk_device_new(&c, err, sizeof(err));
	if (!rng || !bd)
		_exit(2);
	struct vio_backend_opts bc = {0};
	vio_run_backend_hooks(&bc, false);
	struct vio_backend *be[2] = {
	    vio_backend_new(rng, &bc),
	    vio_backend_new(vio_blk_device_dev(bd), &bc)};
	if (!be[0] || !be[1] || vio_backend_listen(be[0], rng_sock) ||
	    vio_backend_listen(be[1], blk_sock))
		_exit(2);
	for (;;) {
		struct pollfd p[2] = {
		    {.fd = vio_backend_fd(be[0]), .events = POLLIN},
		    {.fd = vio_backend_fd(be[1]), .events = POLLIN}};
		if (poll(p, 2, 1000) > 0)
			for (unsigned i = 0; i < 2; i++)
				if (p[i].revents)
					(void)vio_backend_dispatch(be[i]);
		if (getppid() == 1)
			_exit(0);
	}
}

/* ---- a test driver: queue 0 set up at probe ---- */

struct tdrv {
	struct vio_drvdev *vdev;
	struct vio_vq *vq;
	void (*on_remove)(struct tdrv *); /* runs with the device stopped */
	void *arg;
};
static struct tdrv td;

static int t_probe(struct vio_drvdev *vdev)
{
	struct vio_features want = {{0}};
	vio_features_set(&want, VIRTIO_F_VERSION_1);
	int r = vio_drvdev_negotiate(vdev, &want);
	if (r)
		return r;
	td.vdev = vdev;
	td.vq = vio_drvdev_setup_vq(vdev, 0, 0, NULL, NULL);
	return td.vq ? 0 : -errno;
}

static void t_remove(struct vio_drvdev *vdev)
{
	(void)vdev;
	if (td.on_remove)
		td.on_remove(&td);
	td.vq = NULL;
	td.vdev = NULL;
}

static const struct vio_device_id rng_ids[] = {{VIRTIO_ID_RNG, VIO_DEV_ANY_ID},
					       {0, 0}};
static const unsigned t_features[] = {VIRTIO_F_VERSION_1};

static const struct vio_driver t_driver = {
    .name = "test-rng",
    .id_table = rng_ids,
    .feature_table = t_features,
    .feature_table_size = 1,
    .probe = t_probe,
    .remove = t_remove,
};

struct conn {
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_frontend *f;
};

static void conn_open(struct conn *c, const struct vio_driver *drv,
		      const char *sock, uint32_t id, unsigned config_size)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	REQUIRE(c->mem && c->bus);
	REQUIRE(vio_bus_register(c->bus, drv) == 0);
	char uri[320], err[256] = "";
	snprintf(uri, sizeof(uri), "vhost-user:%s", sock);
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = id,
	    .config_size = config_size,
	    .connect_timeout_ms = 10000,
	    .reply_timeout_ms = 10000,
	};
	c->f = vio_bus_connect(c->bus, uri, &fc, err, sizeof(err));
	if (!c->f)
		fprintf(stderr, "connect %s: %s\n", sock, err);
	REQUIRE(c->f);
}

/* The device goes away: remove (the driver's remove runs), free. */
static void conn_close(struct conn *c)
{
	vio_bus_remove(c->bus, vio_frontend_vdev(c->f));
	vio_frontend_free(c->f);
	vio_bus_free(c->bus);
	vio_mem_free(c->mem);
	memset(c, 0, sizeof(*c));
}

/* ---- kick_after_stop ---- */

static void *kick_once(void *arg)
{
	struct vio_vq *vq = arg;
	write_armed = true;
	vio_vq_notify(vq);
	write_armed = false;
	return NULL;
}

struct held_kick {
	pthread_t th;
	int fd;		/* the kick fd number the held write uses */
	bool reused;	/* one of our eventfds got that number */
	unsigned dirty; /* eventfds of ours that received data */
};

/* In remove: the device is stopped; take every number it freed, then
 * let the held kick go on and see where it landed. */
static void remove_during_kick(struct tdrv *t)
{
	struct held_kick *h = t->arg;
	struct probes p;
	h->reused = probes_open(&p, h->fd);
	gate_release();
	pthread_join(h->th, NULL);
	h->dirty = probes_close(&p);
}

static void test_kick_after_stop(void)
{
	fprintf(stderr, "kick_after_stop\n");
	struct conn c;
	conn_open(&c, &t_driver, rng_sock, VIRTIO_ID_RNG, 0);
	REQUIRE(td.vq);
	struct held_kick h = {.fd = -1};
	gate_reset();
	REQUIRE(pthread_create(&h.th, NULL, kick_once, td.vq) == 0);
	h.fd = gate_wait_held(10000);
	REQUIRE(h.fd >= 0); /* the kick is held inside notify */
	td.on_remove = remove_during_kick;
	td.arg = &h;
	conn_close(&c);
	td.on_remove = NULL;
	fprintf(stderr, "  kick fd %d %s\n", h.fd,
		h.reused ? "was closed and its number reused" : "stayed open");
	CHECK(!h.reused);
	CHECK_EQ(h.dirty, 0);
}

/* ---- wait_woken_by_stop ---- */

struct waiter {
	pthread_t th;
	pid_t tid; /* __atomic */
	struct vio_drvdev *vdev;
	struct vio_vq *vq;
	void *token;
	int err;
	uint64_t ms;
};

static void *wait_once(void *arg)
{
	struct waiter *w = arg;
	__atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	uint64_t t0 = now_ms();
	uint32_t len;
	errno = 0;
	w->token = vio_drvdev_wait_used(w->vdev, w->vq, &len, 15000);
	w->err = errno;
	w->ms = now_ms() - t0;
	return NULL;
}

/* Thread tid sleeps in poll()/ppoll() (the wait's only blocking call). */
static bool blocked_in_poll(pid_t tid)
{
	char path[64], buf[128] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	long nr = strtol(buf, NULL, 10);
	return nr == SYS_ppoll
#ifdef SYS_poll
	       || nr == SYS_poll
#endif
	    ;
}

static void remove_join_waiter(struct tdrv *t)
{
	struct waiter *w = t->arg;
	pthread_join(w->th, NULL);
}

static void test_wait_woken_by_stop(void)
{
	fprintf(stderr, "wait_woken_by_stop\n");
	struct conn c;
	conn_open(&c, &t_driver, rng_sock, VIRTIO_ID_RNG, 0);
	REQUIRE(td.vq);
	struct waiter w = {.vdev = td.vdev, .vq = td.vq};
	REQUIRE(pthread_create(&w.th, NULL, wait_once, &w) == 0);
	uint64_t t0 = now_ms();
	bool blocked = false;
	while (!blocked && now_ms() - t0 < 10000) {
		pid_t tid = __atomic_load_n(&w.tid, __ATOMIC_ACQUIRE);
		blocked = tid > 0 && blocked_in_poll(tid);
		if (!blocked)
			pause_ms(1);
	}
	CHECK(blocked);
	td.on_remove = remove_join_waiter;
	td.arg = &w;
	conn_close(&c);
	td.on_remove = NULL;
	fprintf(stderr, "  the waiter returned after %llu ms: %s\n",
		(unsigned long long)w.ms, strerror(w.err));
	CHECK(w.token == NULL);
	CHECK_EQ(w.err, ECANCELED);
	CHECK(w.ms < 10000);
}

/* ---- hammer ---- */

struct hammer {
	bool stop_io;	 /* __atomic: the I/O threads end */
	bool stop_probe; /* __atomic: the prober ends */
	unsigned dirty;	 /* __atomic */
	unsigned long kicks, waits;
	pthread_t kicker, waiter, prober;
};

static void *hammer_kick(void *arg)
{
	struct hammer *h = arg;
	struct vio_vq *vq = td.vq;
	while (!__atomic_load_n(&h->stop_io, __ATOMIC_ACQUIRE)) {
		vio_vq_notify(vq);
		h->kicks++;
	}
	return NULL;
}

static void *hammer_wait(void *arg)
{
	struct hammer *h = arg;
	struct vio_drvdev *vdev = td.vdev;
	struct vio_vq *vq = td.vq;
	while (!__atomic_load_n(&h->stop_io, __ATOMIC_ACQUIRE)) {
		uint32_t len;
		(void)vio_drvdev_wait_used(vdev, vq, &len, 5);
		h->waits++;
	}
	return NULL;
}

static void *hammer_probe(void *arg)
{
	struct hammer *h = arg;
	while (!__atomic_load_n(&h->stop_probe, __ATOMIC_ACQUIRE)) {
		struct probes p;
		(void)probes_open(&p, -1);
		sched_yield();
		__atomic_add_fetch(&h->dirty, probes_close(&p),
				   __ATOMIC_RELAXED);
	}
	return NULL;
}

static void remove_stop_io(struct tdrv *t)
{
	struct hammer *h = t->arg;
	__atomic_store_n(&h->stop_io, true, __ATOMIC_RELEASE);
	pthread_join(h->kicker, NULL);
	pthread_join(h->waiter, NULL);
}

static void test_hammer(uint64_t *seed)
{
	fprintf(stderr, "hammer\n");
	struct hammer h = {0};
	REQUIRE(pthread_create(&h.prober, NULL, hammer_probe, &h) == 0);
	unsigned rounds = 0;
	uint64_t t0 = now_ms();
	while (now_ms() - t0 < 1500) {
		struct conn c;
		conn_open(&c, &t_driver, rng_sock, VIRTIO_ID_RNG, 0);
		REQUIRE(td.vq);
		__atomic_store_n(&h.stop_io, false, __ATOMIC_RELEASE);
		REQUIRE(pthread_create(&h.kicker, NULL, hammer_kick, &h) == 0);
		REQUIRE(pthread_create(&h.waiter, NULL, hammer_wait, &h) == 0);
		/* a random moment of the I/O for the remove */
		pause_ms((unsigned)(test_rand(seed) % 8));
		td.on_remove = remove_stop_io;
		td.arg = &h;
		conn_close(&c);
		td.on_remove = NULL;
		rounds++;
	}
	__atomic_store_n(&h.stop_probe, true, __ATOMIC_RELEASE);
	pthread_join(h.prober, NULL);
	fprintf(stderr, "  %u rounds, %lu kicks, %lu waits\n", rounds, h.kicks,
		h.waits);
	CHECK(rounds > 0);
	CHECK_EQ(h.dirty, 0);
}

/* ---- config_by_driver ---- */

/* A driver for a device type the transport does not know: it reads the
 * config space (a virtio-blk one: capacity, size_max, seg_max). */
static const struct vio_device_id odd_ids[] = {{ODD_ID, VIO_DEV_ANY_ID},
					       {0, 0}};

static int odd_probe(struct vio_drvdev *vdev)
{
	struct vio_features want = {{0}};
	vio_features_set(&want, VIRTIO_F_VERSION_1);
	return vio_drvdev_negotiate(vdev, &want);
}

static const struct vio_driver odd_driver = {
    .name = "test-odd",
    .id_table = odd_ids,
    .feature_table = t_features,
    .feature_table_size = 1,
    .probe = odd_probe,
};

/* The same, declaring a 16-byte config space. */
static const struct vio_driver odd16_driver = {
    .name = "test-odd16",
    .id_table = odd_ids,
    .feature_table = t_features,
    .feature_table_size = 1,
    .probe = odd_probe,
    .config_size = 16,
};

static void test_config_by_driver(void)
{
	fprintf(stderr, "config_by_driver\n");
	struct conn c;
	uint64_t cap = 0;
	uint32_t v32 = 0;

	/* size 0, driver says nothing: what each read needs */
	conn_open(&c, &odd_driver, blk_sock, ODD_ID, 0);
	struct vio_drvdev *vdev = vio_frontend_vdev(c.f);
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, &cap, sizeof(cap)), 0);
	CHECK_EQ(le64toh(cap), DISK_SIZE / 512);
	CHECK_EQ(vio_drvdev_config_read(vdev, 12, &v32, sizeof(v32)), 0);
	conn_close(&c);

	/* the driver declares 16 bytes: inside works, beyond is refused */
	conn_open(&c, &odd16_driver, blk_sock, ODD_ID, 0);
	vdev = vio_frontend_vdev(c.f);
	cap = 0;
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, &cap, sizeof(cap)), 0);
	CHECK_EQ(le64toh(cap), DISK_SIZE / 512);
	CHECK_EQ(vio_drvdev_config_read(vdev, 12, &v32, sizeof(v32)), 0);
	CHECK_EQ(vio_drvdev_config_read(vdev, 16, &v32, sizeof(v32)), -EINVAL);
	CHECK(vio_frontend_alive(c.f));
	conn_close(&c);

	/* the caller's size wins over the driver's */
	conn_open(&c, &odd16_driver, blk_sock, ODD_ID, 8);
	vdev = vio_frontend_vdev(c.f);
	cap = 0;
	CHECK_EQ(vio_drvdev_config_read(vdev, 0, &cap, sizeof(cap)), 0);
	CHECK_EQ(le64toh(cap), DISK_SIZE / 512);
	CHECK_EQ(vio_drvdev_config_read(vdev, 8, &v32, sizeof(v32)), -EINVAL);
	conn_close(&c);

	/* no driver bound (the vdev used directly): what each read needs */
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct vio_frontend_opts fc = {
	    .mem = mem,
	    .device_id = ODD_ID,
	    .connect_timeout_ms = 10000,
	    .reply_timeout_ms = 10000,
	};
	char err[256] = "";
	struct vio_frontend *f =
	    vio_frontend_connect(blk_sock, &fc, err, sizeof(err));
	if (!f)
		fprintf(stderr, "connect: %s\n", err);
	REQUIRE(f);
	cap = 0;
	CHECK_EQ(
	    vio_drvdev_config_read(vio_frontend_vdev(f), 0, &cap, sizeof(cap)),
	    0);
	CHECK_EQ(le64toh(cap), DISK_SIZE / 512);
	vio_frontend_free(f);
	vio_mem_free(mem);
}

int main(int argc, char **argv)
{
	uint64_t seed = test_seed();
	signal(SIGALRM, watchdog);
	alarm(100);
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-vufd-XXXXXX",
		 base && *base ? base : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	snprintf(rng_sock, sizeof(rng_sock), "%s/rng.sock", tmpdir);
	snprintf(blk_sock, sizeof(blk_sock), "%s/blk.sock", tmpdir);
	snprintf(blk_img, sizeof(blk_img), "%s/blk.img", tmpdir);
	unsigned fds = test_count_fds();

	/* before any thread: it forks */
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		serve_forever();
	child_pid = pid;

	/* a name selects one part (to show one failing on its own) */
	const char *only = argc > 1 ? argv[1] : NULL;
#define PART(name, call)                                                       \
	do {                                                                   \
		if (!only || !strcmp(only, name))                              \
			call;                                                  \
	} while (0)
	PART("kick_after_stop", test_kick_after_stop());
	PART("wait_woken_by_stop", test_wait_woken_by_stop());
	PART("hammer", test_hammer(&seed));
	PART("config_by_driver", test_config_by_driver());

	kill(pid, SIGTERM);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	child_pid = -1;
	unlink(blk_img);
	unlink(rng_sock); /* the child was killed: it removed nothing */
	unlink(blk_sock);
	CHECK_EQ(test_count_fds(), fds); /* every fd back */
	CHECK(rmdir(tmpdir) == 0);
	return test_result("vu_frontend_fds");
}
