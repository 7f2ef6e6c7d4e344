/* SPDX-License-Identifier: MIT */
/*
 * vio/inproc.h - the in-process transport.
 *
 * A driver and a device in one process, normally on different threads.
 * The driver's memory (a struct vio_mem) is mapped a second time for the
 * device from the same memfds, so the device sees only what was shared and
 * reaches it through address translation, as across processes.  Kicks and
 * calls are eventfds, one pair per queue.
 *
 *     struct vio_inproc *ip = vio_inproc_new(dev, mem);
 *     struct vio_drvdev *vdev = vio_inproc_vdev(ip);   // driver side
 *     // device thread:  while (running) vio_inproc_device_poll(ip, -1);
 *     // driver thread:  vio_bus_add(bus, vdev); ...
 *     vio_inproc_stop(ip);     // wakes the device thread: poll returns
 *     ... join ... ; vio_inproc_free(ip);
 *
 * The library owns no thread: the caller runs the device loop.
 *
 * Threads (vio/device.h "Threads"): the device's control ops (status,
 * reset, config) run on the driver's thread, inside the vdev call that
 * caused them; its kicks run on the thread that calls
 * vio_inproc_device_poll(), every queue's in turn.  Both hold one lock of
 * the transport, so a device served over inproc never has two of its ops
 * running at once.  One thread polls at a time.
 */
#ifndef VIO_INPROC_H
#define VIO_INPROC_H

#include <vio/device.h>
#include <vio/driver.h>
#include <vio/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vio_inproc;
/* dev and mem are not owned; they must outlive ip. */
struct vio_inproc *vio_inproc_new(struct vio_device *dev, struct vio_mem *mem);
/* Frees the vdev too. */
void vio_inproc_free(struct vio_inproc *ip);
struct vio_drvdev *vio_inproc_vdev(struct vio_inproc *ip);
/* Device side: an epoll fd readable when a kick or a stop is pending. */
int vio_inproc_device_fd(const struct vio_inproc *ip);
/* Device side: wait up to timeout_ms for kicks and dispatch them to the
 * device (vio_device_kick).  Returns the number dispatched, 0 on timeout,
 * -ECANCELED once vio_inproc_stop was called, or negative errno. */
int vio_inproc_device_poll(struct vio_inproc *ip, int timeout_ms);
/* Make device_poll return -ECANCELED from now on (any thread). */
void vio_inproc_stop(struct vio_inproc *ip);
/*
 * Config changes (vio_device_config_update, from any thread) reach the
 * driver's config_changed (vio/driver.h) on a driver thread, as an
 * interrupt would: one that waits for used buffers (vio_drvdev_wait_used,
 * one waiter at a time) or calls vio_inproc_serve_config(), which runs
 * it for a pending change without blocking (1, or 0 if none was
 * pending; not concurrently with vio_bus_remove of the vdev).
 * vio_inproc_config_fd() is readable while a change is pending.
 */
int vio_inproc_config_fd(const struct vio_inproc *ip);
int vio_inproc_serve_config(struct vio_inproc *ip);

#ifdef __cplusplus
}
#endif
#endif
