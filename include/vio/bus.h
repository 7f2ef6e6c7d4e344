/* SPDX-License-Identifier: MIT */
/*
 * vio/bus.h - the virtio bus (the first seed's model, as an object).
 *
 * Drivers register with an id table; when a device is added it is matched
 * against every driver ((device, vendor), VIO_DEV_ANY_ID matching any
 * vendor).  For the first match: reset, ACKNOWLEDGE, DRIVER, probe; success
 * gives DRIVER_OK, failure FAILED (and the next driver is not tried).
 * Removing a device runs its driver's remove and resets it.
 *
 * Not thread-safe: one thread owns a bus.  No globals: make as many buses
 * as you like.
 */
#ifndef VIO_BUS_H
#define VIO_BUS_H

#include <vio/driver.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vio_bus;
struct vio_bus *vio_bus_new(void);
/* Removes every device still on the bus (their vdevs stay the caller's). */
void vio_bus_free(struct vio_bus *bus);
/* Register a driver (not copied: it must outlive the bus); devices already
 * present without a driver are matched against it. */
int vio_bus_register(struct vio_bus *bus, const struct vio_driver *drv);
/* Unbind (remove) its devices, then forget it. */
void vio_bus_unregister(struct vio_bus *bus, const struct vio_driver *drv);
/* true if drv's id table matches (device, vendor) */
bool vio_driver_matches(const struct vio_driver *drv, uint32_t device,
			uint32_t vendor);
/*
 * A device appears.  Returns 0 if a driver bound, -ENODEV if none matched
 * (the device stays on the bus, unbound), or the probe's error (status is
 * FAILED, the device stays on the bus, unbound).
 */
int vio_bus_add(struct vio_bus *bus, struct vio_drvdev *vdev);
/* The device disappears: driver's remove, reset, off the bus. */
void vio_bus_remove(struct vio_bus *bus, struct vio_drvdev *vdev);
unsigned vio_bus_count(const struct vio_bus *bus);

#ifdef __cplusplus
}
#endif
#endif
