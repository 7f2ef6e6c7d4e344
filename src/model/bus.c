/* SPDX-License-Identifier: MIT */
/*
 * The virtio bus: drivers with id tables, devices that appear and
 * disappear, match and probe/remove (vio/bus.h).  An object, not a
 * global: one thread owns a bus.
 *
 * Binding (vio_bus_add, vio_bus_register): reset, ACKNOWLEDGE, DRIVER
 * (vio_drvdev_connect), probe; 0 gives DRIVER_OK unless probe set it, an
 * error gives FAILED and the device stays unbound.
 *
 * Unbinding (vio_bus_remove, vio_bus_unregister, vio_bus_free): the
 * device is stopped first (status 0), then the driver's remove runs with
 * its vqs still present, so it can take its buffers back with
 * vio_vq_detach_unused() knowing the device no longer touches them; then
 * the vdev is reset, which frees the vqs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "util/log.h"
#include <vio/bus.h>

struct vio_bus {
	const struct vio_driver **drv;
	unsigned ndrv, drv_cap;
	struct vio_drvdev **dev;
	unsigned ndev, dev_cap;
};

struct vio_bus *vio_bus_new(void)
{
	struct vio_bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		errno = ENOMEM;
	return bus;
}

static int grow(void **arr, unsigned *cap, unsigned n, size_t elem)
{
	if (n < *cap)
		return 0;
	unsigned ncap = *cap ? *cap * 2 : 8;
	void *p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

bool vio_driver_matches(const struct vio_driver *drv, uint32_t device,
			uint32_t vendor)
{
	if (!drv || !drv->id_table)
		return false;
	for (const struct vio_device_id *id = drv->id_table; id->device; id++) {
		/* as Linux's virtio_id_match: ANY works for both fields */
		if (id->device != device && id->device != VIO_DEV_ANY_ID)
			continue;
		if (id->vendor == VIO_DEV_ANY_ID || id->vendor == vendor)
			return true;
	}
	return false;
}

static const struct vio_driver *find_driver(const struct vio_bus *bus,
					    const struct vio_drvdev *vdev)
{
	uint32_t device = vio_drvdev_device_id(vdev);
	uint32_t vendor = vio_drvdev_vendor_id(vdev);
	for (unsigned i = 0; i < bus->ndrv; i++)
		if (vio_driver_matches(bus->drv[i], device, vendor))
			return bus->drv[i];
	return NULL;
}

static void add_failed(struct vio_drvdev *vdev)
{
	int r = vio_drvdev_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
	(void)r; /* best effort: the probe's error is what we report */
}

/* Connect, probe, DRIVER_OK; on failure FAILED and unbound. */
static int bus_bind(struct vio_drvdev *vdev, const struct vio_driver *drv)
{
	int r = vio_drvdev_connect(vdev);
	if (r < 0) {
		add_failed(vdev);
		return r;
	}
	vio_drvdev_bind(vdev, drv);
	r = drv->probe ? drv->probe(vdev) : 0;
	if (r < 0) {
		vio_drvdev_bind(vdev, NULL);
		add_failed(vdev);
		vio_log_warn("bus: driver %s: probe failed: %s",
			     drv->name ? drv->name : "?", strerror(-r));
		return r;
	}
	if (!(vio_drvdev_get_status(vdev) & VIRTIO_CONFIG_S_DRIVER_OK)) {
		r = vio_drvdev_driver_ok(vdev);
		if (r < 0) {
			/* the device refused to go live: undo the probe */
			vio_drvdev_stop(vdev);
			if (drv->remove)
				drv->remove(vdev);
			int r2 = vio_drvdev_reset(vdev);
			(void)r2; /* report the DRIVER_OK refusal */
			vio_drvdev_bind(vdev, NULL);
			add_failed(vdev);
			return r;
		}
	}
	return 0;
}

static void bus_unbind(struct vio_drvdev *vdev)
{
	const struct vio_driver *drv = vio_drvdev_driver(vdev);
	vio_drvdev_stop(vdev);
	if (drv && drv->remove)
		drv->remove(vdev);
	int r = vio_drvdev_reset(vdev);
	(void)r; /* a device we cannot reach is gone anyway */
	vio_drvdev_bind(vdev, NULL);
}

static int find_dev(const struct vio_bus *bus, const struct vio_drvdev *vdev)
{
	for (unsigned i = 0; i < bus->ndev; i++)
		if (bus->dev[i] == vdev)
			return (int)i;
	return -1;
}

int vio_bus_register(struct vio_bus *bus, const struct vio_driver *drv)
{
	if (!bus || !drv || !drv->id_table)
		return -EINVAL;
	for (unsigned i = 0; i < bus->ndrv; i++)
		if (bus->drv[i] == drv)
			return -EEXIST;
	if (grow((void **)&bus->drv, &bus->drv_cap, bus->ndrv,
		 sizeof(*bus->drv)))
		return -ENOMEM;
	bus->drv[bus->ndrv++] = drv;
	for (unsigned i = 0; i < bus->ndev; i++) {
		struct vio_drvdev *vdev = bus->dev[i];
		if (vio_drvdev_driver(vdev) ||
		    !vio_driver_matches(drv, vio_drvdev_device_id(vdev),
					vio_drvdev_vendor_id(vdev)))
			continue;
		(void)bus_bind(vdev, drv); /* a failed probe leaves it FAILED */
	}
	return 0;
}

void vio_bus_unregister(struct vio_bus *bus, const struct vio_driver *drv)
{
	if (!bus || !drv)
		return;
	for (unsigned i = 0; i < bus->ndev; i++)
		if (vio_drvdev_driver(bus->dev[i]) == drv)
			bus_unbind(bus->dev[i]);
	for (unsigned i = 0; i < bus->ndrv; i++) {
		if (bus->drv[i] != drv)
			continue;
		memmove(&bus->drv[i], &bus->drv[i + 1],
			(bus->ndrv - i - 1) * sizeof(*bus->drv));
		bus->ndrv--;
		break;
	}
}

int vio_bus_add(struct vio_bus *bus, struct vio_drvdev *vdev)
{
	if (!bus || !vdev)
		return -EINVAL;
	if (find_dev(bus, vdev) >= 0)
		return -EEXIST;
	if (grow((void **)&bus->dev, &bus->dev_cap, bus->ndev,
		 sizeof(*bus->dev)))
		return -ENOMEM;
	bus->dev[bus->ndev++] = vdev;
	const struct vio_driver *drv = find_driver(bus, vdev);
	if (!drv)
		return -ENODEV;
	/* the first match only: a failed probe does not try the next */
	return bus_bind(vdev, drv);
}

void vio_bus_remove(struct vio_bus *bus, struct vio_drvdev *vdev)
{
	if (!bus || !vdev)
		return;
	int i = find_dev(bus, vdev);
	if (i < 0)
		return;
	bus_unbind(vdev);
	memmove(&bus->dev[i], &bus->dev[i + 1],
		(bus->ndev - (unsigned)i - 1) * sizeof(*bus->dev));
	bus->ndev--;
}

unsigned vio_bus_count(const struct vio_bus *bus)
{
	return bus ? bus->ndev : 0;
}

void vio_bus_free(struct vio_bus *bus)
{
	if (!bus)
		return;
	while (bus->ndev)
		vio_bus_remove(bus, bus->dev[bus->ndev - 1]);
	free(bus->drv);
	free(bus->dev);
	free(bus);
}
