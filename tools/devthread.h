/* SPDX-License-Identifier: MIT */
/*
 * A device served in this process: the in-process transport (vio/inproc.h)
 * with the device side on a thread of its own, for the subcommands that
 * run a device and its driver together (vio rng, vio blk --image).
 */
#ifndef VIO_TOOLS_DEVTHREAD_H
#define VIO_TOOLS_DEVTHREAD_H

#include <pthread.h>
#include <stdbool.h>

struct vio_device;
struct vio_mem;
struct vio_drvdev;

struct tool_devthread {
	struct vio_inproc *ip;
	pthread_t th;
	bool started;
};

/*
 * Connect dev to the driver side through the in-process transport over
 * mem, and start the thread that serves the device's queues.  0, or
 * TOOL_EXIT_FAIL after saying why; tool_devthread_stop() cleans up either
 * way.  dev and mem stay the caller's and must outlive the thread.
 */
int tool_devthread_start(struct tool_devthread *t, struct vio_device *dev,
			 struct vio_mem *mem);
/* The driver side's device (NULL before a successful start). */
struct vio_drvdev *tool_devthread_vdev(const struct tool_devthread *t);
/* Stop and join the thread, free the transport.  Idempotent. */
void tool_devthread_stop(struct tool_devthread *t);

#endif
