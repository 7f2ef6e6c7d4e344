/* SPDX-License-Identifier: MIT */
/*
 * vio/error.h: vio_strerror words vio's own conditions and falls back to
 * the system's text; a queue index the device does not have is -ENXIO
 * ("no such queue") at every call that takes one: the blk driver's
 * synchronous and asynchronous calls and vio_drvdev_setup_vq, over inproc.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#include <linux/virtio_config.h>

#include "test.h"
#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/error.h>
#include <vio/inproc.h>
#include <vio/mem.h>

static void test_strerror(void)
{
	static const struct {
		int err;
		const char *starts;
	} vio_own[] = {
	    {-EPROTO, "peer broke the protocol"},
	    {-EIO, "I/O error, or the queue is broken"},
	    {-ENOTCONN, "backend gone"},
	    {-ECONNRESET, "connection ended"},
	    {-ECANCELED, "queue stopped"},
	    {-ENXIO, "no such queue"},
	    {-ERANGE, "offset or length outside the device"},
	    {-ENODEV, "no matching driver"},
	    {-ETIMEDOUT, "the peer did not answer in time"},
	    {-EDEADLK, "called from a completion callback"},
	    {-EOPNOTSUPP, "the device does not offer"},
	    {-EROFS, "the device is read-only"},
	    {-EINVAL, "invalid argument"},
	};
	for (unsigned i = 0; i < sizeof(vio_own) / sizeof(vio_own[0]); i++) {
		const char *s = vio_strerror(vio_own[i].err);
		REQUIRE(s);
		if (strncmp(s, vio_own[i].starts, strlen(vio_own[i].starts)))
			fprintf(stderr, "vio_strerror(%d) = \"%s\"\n",
				vio_own[i].err, s);
		CHECK(strncmp(s, vio_own[i].starts,
			      strlen(vio_own[i].starts)) == 0);
		/* a positive errno means the same */
		CHECK(vio_strerror(-vio_own[i].err) == s);
		CHECK(strchr(s, '\n') == NULL);
	}
	CHECK(strcmp(vio_strerror(0), "success") == 0);
	/* the rest: the system's words */
	CHECK(strcmp(vio_strerror(-ENOMEM), "Cannot allocate memory") == 0);
	CHECK(strcmp(vio_strerror(-EBADF), "Bad file descriptor") == 0);
	/* never NULL, never a shared buffer */
	const char *u1 = vio_strerror(-4000), *u2 = vio_strerror(-4001);
	CHECK(u1 && *u1 && u2 && *u2);
	CHECK(vio_strerror(INT_MIN) && *vio_strerror(INT_MIN));
	CHECK(strcmp(vio_strerror(-4000), u1) == 0);
}

/* ---- a blk device with 2 queues over inproc, the blk driver bound ---- */

struct env {
	char dir[256], path[300];
	struct vio_blk_device *bd;
	struct vio_mem *mem;
	struct vio_inproc *ip;
	struct vio_drvdev *vdev;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_blk *b;
	pthread_t th;
};

static void *device_thread(void *arg)
{
	struct env *e = arg;
	while (vio_inproc_device_poll(e->ip, -1) >= 0)
		;
	return NULL;
}

static void env_up(struct env *e)
{
	memset(e, 0, sizeof(*e));
	const char *tmp = getenv("TMPDIR");
	snprintf(e->dir, sizeof(e->dir), "%s/vio-errors-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/disk.img", e->dir);
	struct vio_blk_device_opts dc = {
	    .path = e->path, .size = 1 << 20, .num_queues = 2};
	char err[256];
	e->bd = vio_blk_device_new(&dc, err, sizeof(err));
	if (!e->bd)
		fprintf(stderr, "vio_blk_device_new: %s\n", err);
	REQUIRE(e->bd);
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	e->ip = vio_inproc_new(vio_blk_device_dev(e->bd), e->mem);
	REQUIRE(e->ip);
	e->vdev = vio_inproc_vdev(e->ip);
	REQUIRE(pthread_create(&e->th, NULL, device_thread, e) == 0);
	e->bus = vio_bus_new();
	struct vio_blk_driver_opts drc = {0};
	e->drv = vio_blk_driver_new(&drc);
	REQUIRE(e->bus && e->drv);
	REQUIRE(vio_bus_register(e->bus, e->drv) == 0);
	REQUIRE(vio_bus_add(e->bus, e->vdev) == 0);
	e->b = vio_blk_from_vdev(e->vdev);
	REQUIRE(e->b);
}

static void env_down(struct env *e)
{
	vio_bus_remove(e->bus, e->vdev);
	vio_bus_free(e->bus);
	vio_blk_driver_free(e->drv);
	vio_inproc_stop(e->ip);
	pthread_join(e->th, NULL);
	vio_inproc_free(e->ip);
	vio_blk_device_free(e->bd);
	vio_mem_free(e->mem);
	unlink(e->path);
	rmdir(e->dir);
}

static void test_no_such_queue(void)
{
	struct env e;
	env_up(&e);
	static char buf[512];

	/* the queues it has work */
	CHECK_EQ(vio_blk_num_queues(e.b), 2);
	CHECK_EQ(vio_blk_read(e.b, 1, 0, buf, sizeof(buf)), 0);

	/* one past: no such queue, whichever call */
	CHECK_EQ(vio_blk_read(e.b, 2, 0, buf, sizeof(buf)), -ENXIO);
	CHECK_EQ(vio_blk_write(e.b, 2, 0, buf, sizeof(buf)), -ENXIO);
	CHECK_EQ(vio_blk_flush(e.b, 64), -ENXIO);
	struct vio_blk_req r = {
	    .op = VIO_BLK_OP_READ, .offset = 0, .buf = buf, .len = 512};
	CHECK_EQ(vio_blk_submit(e.b, 2, &r), -ENXIO);
	CHECK_EQ(vio_blk_poll(e.b, UINT_MAX, NULL, 0, 0), -ENXIO);
	CHECK(strcmp(vio_strerror(vio_blk_read(e.b, 3, 0, buf, 512)),
		     "no such queue (the device has fewer queues)") == 0);

	/* the model: a vq the device does not have */
	errno = 0;
	CHECK(vio_drvdev_setup_vq(e.vdev, 2, 0, NULL, NULL) == NULL);
	CHECK_EQ(errno, ENXIO);

	env_down(&e);
}

int main(void)
{
	test_strerror();
	test_no_such_queue();
	return test_result("errors");
}
