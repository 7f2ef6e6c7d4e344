/* SPDX-License-Identifier: MIT */
/* Internal to src/model/ (and transports): not installed. */
#ifndef VIO_MODEL_INTERNAL_H
#define VIO_MODEL_INTERNAL_H

#include <vio/driver.h>

/* The bus records which driver a vdev is bound to (NULL: unbound).
 * Negotiation then masks with drv's feature table. */
void vio_drvdev_bind(struct vio_drvdev *vdev, const struct vio_driver *drv);
/* Stop the device (status 0 through the transport) but keep the vqs, so
 * a driver's remove can take its buffers back with vio_vq_detach_unused()
 * while the device no longer touches them. */
void vio_drvdev_stop(struct vio_drvdev *vdev);
/* A transport saw a config change interrupt: runs the bound driver's
 * config_changed, on the caller's thread. */
void vio_drvdev_config_changed(struct vio_drvdev *vdev);

#endif
