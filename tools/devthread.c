/* SPDX-License-Identifier: MIT */
#include "devthread.h"

#include <errno.h>
#include <string.h>

#include <vio/inproc.h>

#include "util.h"

static void *device_thread(void *arg)
{
	struct vio_inproc *ip = arg;
	int r;
	while ((r = vio_inproc_device_poll(ip, -1)) >= 0)
		;
	if (r != -ECANCELED)
		tool_err("device thread: %s", strerror(-r));
	return NULL;
}

int tool_devthread_start(struct tool_devthread *t, struct vio_device *dev,
			 struct vio_mem *mem)
{
	t->ip = vio_inproc_new(dev, mem);
	if (!t->ip) {
		tool_err("cannot create the in-process transport: %s",
			 strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	int r = pthread_create(&t->th, NULL, device_thread, t->ip);
	if (r) {
		tool_err("cannot start the device thread: %s", strerror(r));
		return TOOL_EXIT_FAIL;
	}
	t->started = true;
	return 0;
}

struct vio_drvdev *tool_devthread_vdev(const struct tool_devthread *t)
{
	return t->ip ? vio_inproc_vdev(t->ip) : NULL;
}

void tool_devthread_stop(struct tool_devthread *t)
{
	if (t->started) {
		vio_inproc_stop(t->ip);
		pthread_join(t->th, NULL);
		t->started = false;
	}
	vio_inproc_free(t->ip);
	t->ip = NULL;
}
