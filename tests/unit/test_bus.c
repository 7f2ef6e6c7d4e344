/* SPDX-License-Identifier: MIT */
/*
 * Bus unit tests (src/model/bus.c): id tables (VIO_DEV_ANY_ID), a device
 * nobody matches stays unbound until a later driver binds it, probe
 * failure leaves FAILED and does not try the next driver, a probe that
 * sets DRIVER_OK itself, remove (device stopped first, vqs still there
 * for the driver, then reset), unregister, several drivers and devices,
 * bus_free.  Devices are real struct vio_device behind the synchronous stub
 * transport.
 */
#include <errno.h>
#include <string.h>

#include <linux/virtio_config.h>

#include "stub_transport.h"
#include "test.h"
#include "util/log.h"
#include <vio/bus.h>

#define ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define DRV VIRTIO_CONFIG_S_DRIVER
#define FOK VIRTIO_CONFIG_S_FEATURES_OK
#define DOK VIRTIO_CONFIG_S_DRIVER_OK
#define FAIL VIRTIO_CONFIG_S_FAILED
#define LIVE (ACK | DRV | FOK | DOK)

struct tbdev {
	struct vio_device *dev;
	struct stub s;
	struct vio_drvdev *vdev;
};

static struct vio_mem *mem;

static void tb_new(struct tbdev *d, uint32_t device, uint32_t vendor)
{
	unsigned bits[] = {5, 6};
	struct vio_device_opts c = {
	    .name = "tb",
	    .device_id = device,
	    .vendor_id = vendor,
	    .features = vio_features_from(bits, 2),
	    .num_queues = 1,
	    .queue_max_size = 16,
	};
	d->dev = vio_device_new(&c);
	REQUIRE(d->dev);
	d->vdev = stub_init(&d->s, d->dev, mem);
	REQUIRE(d->vdev);
}

static void tb_free(struct tbdev *d)
{
	vio_drvdev_free(d->vdev);
	vio_device_free(d->dev);
	stub_fini(&d->s);
}

/* ---- drivers ---- */

struct drv_log {
	unsigned probes, removes;
	int probe_result;   /* what probe returns */
	bool set_driver_ok; /* probe sets DRIVER_OK itself */
	bool setup_vq;
	/* what remove saw */
	uint8_t status_in_remove;
	bool vq_in_remove;
};
static struct drv_log la, lb, lc;

static int probe_common(struct drv_log *l, struct vio_drvdev *vdev)
{
	l->probes++;
	CHECK_EQ(vio_drvdev_get_status(vdev), ACK | DRV);
	if (l->probe_result)
		return l->probe_result;
	unsigned w[] = {5, 6};
	struct vio_features want = vio_features_from(w, 2);
	int r = vio_drvdev_negotiate(vdev, &want);
	if (r < 0)
		return r;
	if (l->setup_vq && !vio_drvdev_setup_vq(vdev, 0, 0, NULL, NULL))
		return -errno;
	if (l->set_driver_ok)
		return vio_drvdev_driver_ok(vdev);
	return 0;
}

static void remove_common(struct drv_log *l, struct vio_drvdev *vdev)
{
	l->removes++;
	l->status_in_remove = vio_drvdev_get_status(vdev);
	l->vq_in_remove = vio_drvdev_vq(vdev, 0) != NULL;
}

static int probe_a(struct vio_drvdev *v)
{
	return probe_common(&la, v);
}
static void remove_a(struct vio_drvdev *v)
{
	remove_common(&la, v);
}
static int probe_b(struct vio_drvdev *v)
{
	return probe_common(&lb, v);
}
static void remove_b(struct vio_drvdev *v)
{
	remove_common(&lb, v);
}
static int probe_c(struct vio_drvdev *v)
{
	return probe_common(&lc, v);
}
static void remove_c(struct vio_drvdev *v)
{
	remove_common(&lc, v);
}

/* A knows feature 5 only: 6 must never be acked for its devices. */
static const unsigned feat5[] = {5};
static const struct vio_device_id ids_a[] = {
    {1, 0x10},
    {3, VIO_DEV_ANY_ID},
    {0, 0},
};
static const struct vio_driver drv_a = {
    .name = "a",
    .id_table = ids_a,
    .feature_table = feat5,
    .feature_table_size = 1,
    .probe = probe_a,
    .remove = remove_a,
};
static const unsigned feat56[] = {5, 6};
static const struct vio_device_id ids_b[] = {{2, VIO_DEV_ANY_ID}, {0, 0}};
static const struct vio_driver drv_b = {
    .name = "b",
    .id_table = ids_b,
    .feature_table = feat56,
    .feature_table_size = 2,
    .probe = probe_b,
    .remove = remove_b,
};
static const struct vio_driver drv_c = {
    .name = "c",
    .id_table = ids_b, /* same devices as b */
    .feature_table = feat56,
    .feature_table_size = 2,
    .probe = probe_c,
    .remove = remove_c,
};

static void test_match(void)
{
	static const struct vio_device_id any[] = {
	    {VIO_DEV_ANY_ID, VIO_DEV_ANY_ID}, {0, 0}};
	static const struct vio_device_id empty[] = {{0, 0}};
	const struct vio_driver d_any = {.name = "any", .id_table = any};
	const struct vio_driver d_empty = {.name = "e", .id_table = empty};
	const struct vio_driver d_none = {.name = "none"};

	CHECK(vio_driver_matches(&drv_a, 1, 0x10));
	CHECK(!vio_driver_matches(&drv_a, 1, 0x11));
	CHECK(!vio_driver_matches(&drv_a, 1, VIO_DEV_ANY_ID - 1));
	CHECK(vio_driver_matches(&drv_a, 3, 0));
	CHECK(vio_driver_matches(&drv_a, 3, 0xdeadbeef));
	CHECK(!vio_driver_matches(&drv_a, 2, 0x10));
	CHECK(!vio_driver_matches(&drv_a, 0, 0)); /* 0 ends the table */
	CHECK(vio_driver_matches(&drv_b, 2, 7));
	CHECK(vio_driver_matches(&d_any, 77, 5));
	CHECK(!vio_driver_matches(&d_empty, 1, 0x10));
	CHECK(!vio_driver_matches(&d_none, 1, 0x10));
	CHECK(!vio_driver_matches(NULL, 1, 0x10));
}

static void test_bus(void)
{
	struct vio_bus *bus = vio_bus_new();
	REQUIRE(bus);
	struct tbdev x, y, z, w, v;
	tb_new(&x, 1, 0x10);
	tb_new(&y, 2, 0x99);
	tb_new(&z, 2, 0x05);
	tb_new(&w, 3, 0x07);
	tb_new(&v, 9, 0x00);
	la.setup_vq = true;

	/* no driver yet: -ENODEV, on the bus, unbound, untouched */
	CHECK_EQ(vio_bus_add(bus, x.vdev), -ENODEV);
	CHECK_EQ(vio_bus_count(bus), 1);
	CHECK(vio_drvdev_driver(x.vdev) == NULL);
	CHECK_EQ(vio_drvdev_get_status(x.vdev), 0);
	CHECK_EQ(vio_bus_add(bus, x.vdev), -EEXIST);

	/* a later driver binds it */
	CHECK_EQ(vio_bus_register(bus, &drv_a), 0);
	CHECK_EQ(vio_bus_register(bus, &drv_a), -EEXIST);
	CHECK_EQ(la.probes, 1);
	CHECK(vio_drvdev_driver(x.vdev) == &drv_a);
	CHECK_EQ(vio_drvdev_get_status(x.vdev), LIVE);
	CHECK(vio_drvdev_vq(x.vdev, 0) != NULL);
	/* the feature table: 6 is offered and wanted but unknown to a */
	CHECK(vio_drvdev_has_feature(x.vdev, 5));
	CHECK(!vio_drvdev_has_feature(x.vdev, 6));
	CHECK(!vio_device_has_feature(x.dev, 6));

	/* probe failure: FAILED, unbound, the next driver not tried */
	CHECK_EQ(vio_bus_register(bus, &drv_b), 0);
	CHECK_EQ(vio_bus_register(bus, &drv_c), 0);
	lb.probe_result = -EIO;
	CHECK_EQ(vio_bus_add(bus, y.vdev), -EIO);
	CHECK_EQ(lb.probes, 1);
	CHECK_EQ(lc.probes, 0);
	CHECK(vio_drvdev_get_status(y.vdev) & FAIL);
	CHECK(!(vio_drvdev_get_status(y.vdev) & DOK));
	CHECK(vio_drvdev_driver(y.vdev) == NULL);
	CHECK_EQ(vio_bus_count(bus), 2);

	/* a probe that sets DRIVER_OK itself */
	lb.probe_result = 0;
	lb.set_driver_ok = true;
	CHECK_EQ(vio_bus_add(bus, z.vdev), 0);
	CHECK_EQ(lb.probes, 2);
	CHECK(vio_drvdev_driver(z.vdev) == &drv_b);
	CHECK_EQ(vio_drvdev_get_status(z.vdev), LIVE);
	CHECK(vio_drvdev_has_feature(z.vdev, 6)); /* b knows 6 */

	/* VIO_DEV_ANY_ID vendor */
	CHECK_EQ(vio_bus_add(bus, w.vdev), 0);
	CHECK(vio_drvdev_driver(w.vdev) == &drv_a);
	CHECK_EQ(la.probes, 2);
	/* nobody's */
	CHECK_EQ(vio_bus_add(bus, v.vdev), -ENODEV);
	CHECK_EQ(vio_bus_count(bus), 5);

	/* remove: the device stopped, the vqs still there, then reset */
	vio_bus_remove(bus, x.vdev);
	CHECK_EQ(la.removes, 1);
	CHECK_EQ(la.status_in_remove, 0);
	CHECK(la.vq_in_remove);
	CHECK_EQ(vio_drvdev_get_status(x.vdev), 0);
	CHECK(vio_drvdev_vq(x.vdev, 0) == NULL);
	CHECK(vio_device_queue(x.dev, 0) == NULL);
	CHECK(vio_drvdev_driver(x.vdev) == NULL);
	CHECK_EQ(vio_bus_count(bus), 4);
	vio_bus_remove(bus, x.vdev); /* not on the bus: nothing */
	CHECK_EQ(la.removes, 1);

	/* unregister b: its device is unbound and reset, stays on the bus;
	 * the FAILED device it never bound is untouched */
	vio_bus_unregister(bus, &drv_b);
	CHECK_EQ(lb.removes, 1);
	CHECK(vio_drvdev_driver(z.vdev) == NULL);
	CHECK_EQ(vio_drvdev_get_status(z.vdev), 0);
	CHECK(vio_drvdev_get_status(y.vdev) & FAIL);
	CHECK_EQ(vio_bus_count(bus), 4);
	CHECK_EQ(lc.probes, 0); /* no rematch on unregister */

	/* registering b again binds both unbound devices of type 2 */
	CHECK_EQ(vio_bus_register(bus, &drv_b), 0);
	CHECK_EQ(lb.probes, 4);
	CHECK(vio_drvdev_driver(y.vdev) == &drv_b);
	CHECK(vio_drvdev_driver(z.vdev) == &drv_b);
	CHECK_EQ(vio_drvdev_get_status(y.vdev), LIVE);
	CHECK_EQ(lc.probes, 0);

	/* bus_free removes everything still there */
	vio_bus_free(bus);
	CHECK_EQ(la.removes, 2); /* w */
	CHECK_EQ(lb.removes, 3); /* y, z */
	CHECK_EQ(lc.removes, 0);
	CHECK_EQ(vio_drvdev_get_status(w.vdev), 0);
	CHECK_EQ(vio_drvdev_get_status(y.vdev), 0);
	CHECK(vio_drvdev_driver(w.vdev) == NULL);

	tb_free(&x);
	tb_free(&y);
	tb_free(&z);
	tb_free(&w);
	tb_free(&v);
	CHECK_EQ(x.s.released, 1);
}

/* A device that refuses DRIVER_OK: the probe is undone, FAILED. */
static int refuse_ok(struct vio_device *dev, uint8_t old, uint8_t new_status)
{
	(void)dev;
	return ((new_status & ~old) & DOK) ? -EPERM : 0;
}

static void test_driver_ok_refused(void)
{
	static const struct vio_device_ops ops = {.status = refuse_ok};
	struct vio_device_opts c = {
	    .device_id = 1,
	    .vendor_id = 0x10,
	    .num_queues = 1,
	    .queue_max_size = 8,
	    .ops = &ops,
	};
	struct tbdev d;
	d.dev = vio_device_new(&c);
	REQUIRE(d.dev);
	d.vdev = stub_init(&d.s, d.dev, mem);
	REQUIRE(d.vdev);
	struct vio_bus *bus = vio_bus_new();
	REQUIRE(bus);
	memset(&la, 0, sizeof(la));
	CHECK_EQ(vio_bus_register(bus, &drv_a), 0);
	CHECK_EQ(vio_bus_add(bus, d.vdev), -EPERM);
	CHECK_EQ(la.probes, 1);
	CHECK_EQ(la.removes, 1);
	CHECK(vio_drvdev_get_status(d.vdev) & FAIL);
	CHECK(vio_drvdev_driver(d.vdev) == NULL);
	vio_bus_free(bus);
	CHECK_EQ(la.removes, 1); /* unbound: not removed twice */
	tb_free(&d);
}

int main(void)
{
	/* drv_a wants bit 6 outside its table on purpose: quiet the
	 * debug-build complaint */
	vio_log_set_quiet(1);
	mem = vio_mem_new();
	REQUIRE(mem);
	test_match();
	test_bus();
	test_driver_ok_refused();
	CHECK_EQ(vio_bus_register(NULL, &drv_a), -EINVAL);
	CHECK_EQ(vio_bus_count(NULL), 0);
	vio_bus_free(NULL);
	vio_mem_free(mem);
	return test_result("bus");
}
