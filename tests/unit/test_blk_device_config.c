/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk device unit tests: configuration and the bounded kick (the
 * environment is blk_env.h).
 *   - image creation rules; the synchronous backend when io_uring is
 *     refused (seccomp);
 *   - with both I/O backends and both ring formats: the driver's config
 *     writes (only writeback, only with CONFIG_WCE); a kick under a
 *     driver that keeps the ring full ends after a ring's worth.
 */
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "blk_env.h"

/* io_uring refused (as under a seccomp policy): the device still comes
 * up, on the synchronous backend.  In a child: the filter is for good. */
static void test_no_io_uring(void)
{
#if defined(VIO_HAVE_LIBURING) && defined(__NR_io_uring_setup)
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct sock_filter f[] = {
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			     offsetof(struct seccomp_data, nr)),
		    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0,
			     1),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(77);
		char p[300], err[256];
		path_of(p, sizeof(p), "seccomp.img");
		struct vio_blk_device_opts c = {.path = p, .size = 1 << 20};
		vio_log_set_quiet(1);
		struct vio_blk_device *bd =
		    vio_blk_device_new(&c, err, sizeof(err));
		int rc =
		    bd && !strcmp(vio_blk_device_backend(bd), "sync") ? 0 : 1;
		vio_blk_device_free(bd);
		unlink(p);
		_exit(rc);
	}
	int st = 0;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		printf("SKIP: cannot install a seccomp filter here\n");
	else
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
#endif
}

static void test_creation(void)
{
	char p[300], err[256];
	struct vio_blk_device *bd;
	struct vio_blk_device_opts c = {.no_io_uring = true};

	path_of(p, sizeof(p), "new.img");
	c.path = p;
	/* missing, no size: error */
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == ENOENT && err[0]);
	/* missing, with a size: created */
	c.size = 1 << 20;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	if (bd) {
		CHECK_EQ(vio_blk_device_capacity(bd), 2048);
		vio_blk_device_free(bd);
	}
	struct stat st;
	CHECK(stat(p, &st) == 0 && st.st_size == (1 << 20));
	/* exists, same size: opened; other size: refused, not resized */
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	vio_blk_device_free(bd);
	c.size = 2 << 20;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	CHECK(stat(p, &st) == 0 && st.st_size == (1 << 20));
	/* size 0: whatever it has */
	c.size = 0;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	vio_blk_device_free(bd);
	/* bad sizes and limits */
	c.size = 1000;
	path_of(p, sizeof(p), "odd.img");
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.size = 0;
	c.queue_size = 2;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.queue_size = 0;
	c.blk_size = 1000;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.blk_size = 0;
	/* not a file */
	c.path = tmpdir;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL);
	c.readonly = true;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	c.readonly = false;
	/* a file smaller than a sector */
	path_of(p, sizeof(p), "tiny.img");
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	c.path = p;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == EINVAL);
	/* read-only does not create */
	path_of(p, sizeof(p), "ro-missing.img");
	c.readonly = true;
	c.size = 1 << 20;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd == NULL && errno == ENOENT);
	CHECK(access(p, F_OK) != 0);
	/* serial and blk_size 4096 show up */
	path_of(p, sizeof(p), "new.img");
	c.readonly = false;
	c.size = 0;
	c.serial = "0123456789abcdefghijKLM";
	c.blk_size = 4096;
	bd = vio_blk_device_new(&c, err, sizeof(err));
	CHECK(bd != NULL);
	if (bd) {
		struct virtio_blk_config bc;
		CHECK_EQ(vio_device_config_read(vio_blk_device_dev(bd), 0, &bc,
						sizeof(bc)),
			 0);
		CHECK_EQ(le32toh(bc.blk_size), 4096);
		CHECK_EQ(le32toh(bc.discard_sector_alignment), 8);
		vio_blk_device_free(bd);
	}
}

/* ---- a kick is bounded (vio/device.h) ---- */

#define FLOOD_TOTAL (16u * QSZ)

struct flood {
	struct tenv *e;
	struct rq rq[QSZ];
	uint8_t *data[QSZ];
	bool busy[QSZ];
	unsigned added, got, bad;
	int stop; /* __atomic */
};

static void flood_add(struct flood *f, unsigned k)
{
	struct rq *r = &f->rq[k];
	r->out = r->in = 0;
	r->sg[0].len = 16;
	r->sg[1].buf = f->data[k];
	r->sg[1].len = 512;
	r->sg[2].len = 1;
	*r->status = 0xff;
	REQUIRE(vio_vq_add(f->e->drv[0], r->sg, 1, 2, r) == 0);
	f->busy[k] = true;
	f->added++;
}

static void flood_harvest(struct flood *f)
{
	uint32_t len;
	struct rq *r;
	while ((r = vio_vq_get(f->e->drv[0], &len))) {
		unsigned k = (unsigned)(r - f->rq);
		f->got++;
		f->bad +=
		    !f->busy[k] || len != 513 || *r->status != VIRTIO_BLK_S_OK;
		f->busy[k] = false;
	}
}

/* The driver keeps the ring full: every completion is refilled at once,
 * FLOOD_TOTAL requests in all (or until told to stop). */
static void *flood_thread(void *p)
{
	struct flood *f = p;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) &&
	       f->added < FLOOD_TOTAL) {
		flood_harvest(f);
		for (unsigned k = 0; k < QSZ && f->added < FLOOD_TOTAL; k++)
			if (!f->busy[k])
				flood_add(f, k);
		vio_vq_kick_prepare(f->e->drv[0]);
	}
	return NULL;
}

/* One kick while the driver refills the ring from another thread: it
 * returns after at most a ring's worth of chains (busy-poll on, so only
 * the bound can end it), saying more wait; calling again finishes. */
static void test_bounded_kick(struct tenv *e)
{
	static struct flood f;
	memset(&f, 0, sizeof(f));
	f.e = e;
	for (unsigned k = 0; k < QSZ; k++) {
		struct rq *r = &f.rq[k];
		rq_init(r, e, 0);
		rq_hdr(r, VIRTIO_BLK_T_IN, k);
		f.data[k] = rq_in(r, 512);
		rq_status(r);
	}
	for (unsigned k = 0; k < QSZ; k++)
		flood_add(&f, k);
	vio_vq_kick_prepare(e->drv[0]);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, flood_thread, &f) == 0);
	bool more = vio_device_kick(e->dev, 0);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	/* only that kick ran: every completion so far is one of its chains */
	flood_harvest(&f);
	printf("  bounded kick: %u chains in one kick (ring %u), more %d\n",
	       f.got, QSZ, more);
	CHECK(f.got >= 1);
	CHECK(f.got <= QSZ);
	/* what waited when the kick returned still waits (the driver may
	 * have added more since) */
	CHECK(!more || vio_vq_more_avail(vio_device_queue(e->dev, 0)));
	/* the rest, kick after kick */
	unsigned kicks = 0;
	while (vio_device_kick(e->dev, 0))
		kicks++;
	CHECK(kicks <= FLOOD_TOTAL / QSZ + 1);
	flood_harvest(&f);
	CHECK_EQ(f.got, f.added);
	CHECK_EQ(f.bad, 0);
	CHECK(!vio_vq_more_avail(vio_device_queue(e->dev, 0)));
}

/* ---- config space: only writeback, only with CONFIG_WCE ---- */

static void test_config_write(struct tenv *e, bool wce)
{
	const unsigned off = offsetof(struct virtio_blk_config, wce);
	struct virtio_blk_config before, after;
	uint8_t b;
	CHECK_EQ(vio_device_config_read(e->dev, 0, &before, sizeof(before)), 0);
	CHECK_EQ(before.wce, 1); /* writeback: FLUSH is offered */
	CHECK_EQ(vio_device_has_feature(e->dev, VIRTIO_BLK_F_CONFIG_WCE), wce);
	vio_log_set_quiet(1);
	b = 0;
	CHECK_EQ(vio_device_config_write(e->dev, off, &b, 1), wce ? 0 : -EPERM);
	CHECK_EQ(vio_device_config_read(e->dev, off, &b, 1), 0);
	CHECK_EQ(b, wce ? 0 : 1);
	/* writethrough now (with wce): requests still work */
	static uint8_t data[512];
	fill_pattern(data, sizeof(data), 11);
	write_sectors(e, 0, 4, data, 512, 1, VIRTIO_BLK_S_OK);
	CHECK(file_equals(e, 4 * 512, data, 512));
	b = 1;
	CHECK_EQ(vio_device_config_write(e->dev, off, &b, 1), wce ? 0 : -EPERM);
	/* refused whatever was negotiated: other values, other bytes,
	 * writes that only overlap writeback */
	b = 2;
	CHECK_EQ(vio_device_config_write(e->dev, off, &b, 1), -EPERM);
	uint8_t two[2] = {1, 0};
	CHECK_EQ(vio_device_config_write(e->dev, off, two, 2), -EPERM);
	CHECK_EQ(vio_device_config_write(e->dev, off - 1, two, 2), -EPERM);
	uint64_t cap = htole64(0xdeadbeef);
	CHECK_EQ(vio_device_config_write(e->dev, 0, &cap, sizeof(cap)), -EPERM);
	uint32_t sm = htole32(1);
	CHECK_EQ(vio_device_config_write(
		     e->dev, offsetof(struct virtio_blk_config, seg_max), &sm,
		     sizeof(sm)),
		 -EPERM);
	b = 0;
	CHECK_EQ(vio_device_config_write(
		     e->dev, offsetof(struct virtio_blk_config, unused), &b, 1),
		 -EPERM);
	vio_log_set_quiet(0);
	CHECK_EQ(vio_device_config_read(e->dev, 0, &after, sizeof(after)), 0);
	CHECK(memcmp(&before, &after, sizeof(after)) == 0);
}

static void run_all(bool uring, bool packed)
{
	struct tenv e;
	struct opts o = {.uring = uring, .packed = packed};
	const char *name = packed ? "packed" : "split";
	printf("backend %s, %s ring\n", uring ? "io_uring" : "sync", name);

	/* busy-poll on: only the bound ends a kick under load */
	o.poll = true;
	o.poll_us = 200000;
	o.file = "flood.img";
	if (!env_open(&e, &o))
		return;
	test_bounded_kick(&e);
	env_close(&e);
	o.poll = false;
	o.poll_us = 0;

	/* the driver's config writes */
	o.file = "wce.img";
	if (env_open(&e, &o)) {
		test_config_write(&e, true);
		env_close(&e);
	}
	o.no_wce = true;
	if (env_open(&e, &o)) {
		test_config_write(&e, false);
		env_close(&e);
	}
	o.no_wce = false;
}

int main(void)
{
	blk_tmpdir_setup();
	test_creation();
	test_no_io_uring();
	for (int uring = 1; uring >= 0; uring--)
		for (int packed = 0; packed < 2; packed++)
			run_all(uring, packed);

	return test_result("blk_device_config");
}
