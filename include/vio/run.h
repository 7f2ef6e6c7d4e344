/* SPDX-License-Identifier: MIT */
/*
 * vio/run.h - the optional runtime: threads for the tools.  The library's
 * other layers own no thread; this module gives them workers.
 *
 * A worker waits on one eventfd (a queue's kicks) and runs a function for
 * each wake-up; in busy-poll mode it never sleeps and runs the function
 * in a loop (lowest latency, one CPU per queue).
 *
 * The function does a bounded amount of work per call and returns true
 * when there is more (a device stopped at its batch bound, see
 * vio_device_kick): the worker then calls it again without waiting for a
 * kick, checking for a stop request in between.  So a stop takes at most
 * one call's time, however hard the driver keeps the queue busy.
 *
 * Threads: fn runs on the worker's thread only, never two calls at once.
 * vio_run_backend_hooks gives each started queue a worker of its own, so a
 * device's kicks of different queues run concurrently (vio/device.h
 * "Threads"); a queue stopped and started again (a memory table change, a
 * new ring or kick fd, a reset) gets a new thread.  Stop a worker once,
 * from any thread but its own (the backend's control thread, through
 * queue_stop).
 */
#ifndef VIO_RUN_H
#define VIO_RUN_H

#include <stdbool.h>

#include <vio/vhost_user.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vio_run_worker;
/*
 * Start a thread: fn(arg) once, then after every read of kick_fd (or in a
 * loop when busy_poll), and again at once while it returns true.  A kick
 * fd that fails or hangs up (a pipe whose writer closed) parks the worker
 * until it is stopped: logged once, never a spin.  NULL with errno on
 * failure.
 */
struct vio_run_worker *vio_run_worker_start(int kick_fd, bool (*fn)(void *),
					    void *arg, bool busy_poll);
/* Stop the thread and join it: fn is not running when this returns. */
void vio_run_worker_stop(struct vio_run_worker *w);

/* Fill cfg's queue_start/queue_stop with workers of this module. */
void vio_run_backend_hooks(struct vio_backend_opts *cfg, bool busy_poll);

#ifdef __cplusplus
}
#endif
#endif
