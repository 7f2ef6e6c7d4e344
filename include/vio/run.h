/* SPDX-License-Identifier: MIT */
/*
 * vio/run.h - the device engine's runtime: worker threads, each one event
 * loop (struct vio_loop, vio/device.h) over the queues it serves.  The
 * library's other layers own no thread; this module gives them workers.
 *
 * A worker is one thread that waits (epoll) on: the kick fds of the queues
 * mapped to it, the fds and timers the devices of those queues add to its
 * loop, and a control eventfd.  It is the only place that sleeps.  When a
 * queue's kick fd is readable the worker drains it and calls the queue's
 * kick; while the kick returns true ("more": it stopped at its batch
 * bound) the worker calls it again on the next turn, serving its other
 * sources in between.  Nothing is allocated per event.
 *
 * A group (struct vio_run) is N workers made once (per backend, or per
 * process): queue i runs on worker i % N, so N = 1 puts every queue on one
 * thread and N = number of queues gives each its own.  Workers may be
 * pinned to CPUs (a list like "0,2" or "0-3": worker k on the k-th CPU of
 * the list, wrapping around).
 *
 * Control goes through the worker.  Attaching a queue, detaching it and
 * replacing its kick fd are requests posted to the worker's control fd;
 * the caller waits for the worker's acknowledgement, which comes after the
 * current kick or callback returns (kicks are bounded, vio/device.h), so a
 * request completes in bounded time however busy the queue is.  The
 * worker runs the queue's start (a backend queue: vio_device_queue_start
 * with the worker's loop) on attach and its stop (vio_device_queue_stop)
 * on detach, on its own thread, before it acknowledges.  A kick fd
 * replacement keeps the thread.
 *
 * Busy-poll (opts.poll): the worker does not sleep while work comes.  On
 * every turn it checks each queue's ring in memory (ops->poll; for a
 * backend queue vio_vq_more_avail) and calls the kick when there is work,
 * and calls every VIO_LOOP_POLL callback; kick fds are not read and other
 * fds are checked with a zero-timeout wait only every few turns.  After
 * poll_us without work it re-enables notifications (ops->arm), checks the
 * rings once more and sleeps like a normal worker until the next event.
 * A queue whose kick returned false with buffers still available (a
 * receive queue waiting for data) does not count as work until its ring
 * position moves: its device's own event brings it back.
 *
 * Threads: a queue's ops and the loop's callbacks run on its worker only,
 * never two at once on one worker.  Post requests (attach, detach,
 * vio_run_set_kick_fd, vio_run_free) from any thread but a worker's own.
 */
#ifndef VIO_RUN_H
#define VIO_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include <vio/device.h>
#include <vio/vhost_user.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vio_run;
struct vio_run_queue;

struct vio_run_opts {
	/* workers; 0: num_queues capped at the online CPUs (at least 1).
	 * At most VIO_MAX_QUEUES. */
	unsigned threads;
	/* queues the group will serve, for the default of threads (0: 1) */
	unsigned num_queues;
	/* CPU list ("0,1", "0-3", "0-3,8"): pin worker k to its k-th CPU,
	 * wrapping; NULL or "": not pinned */
	const char *cpus;
	/* busy-poll; spin at most poll_us (0: 50) without work, then sleep */
	bool poll;
	unsigned poll_us;
	/* queues per group: queue idx runs on worker (idx / group) % threads
	 * (net: 2, a receiveq and its transmitq on one thread); 0: 1 */
	unsigned group;
};

/* Make the group and start its threads.  NULL with errno and a one-line
 * reason in err (a bad CPU list, a CPU that cannot be used). */
struct vio_run *vio_run_new(const struct vio_run_opts *o, char *err,
			    size_t errlen);
/* Stop and join the workers.  Detach every queue first (free the backends
 * whose hooks it serves). */
void vio_run_free(struct vio_run *r);
/* The number of workers. */
unsigned vio_run_threads(const struct vio_run *r);

/*
 * Parse a CPU list ("0,2", "0-3", "1,4-5"): the CPUs in the order given,
 * into cpus[] (at most max; duplicates kept once).  Returns the count, or
 * -EINVAL (syntax, an empty list, a reversed range) or -ERANGE (a CPU
 * number over 1023, or more than max CPUs).
 */
int vio_run_parse_cpus(const char *list, unsigned *cpus, unsigned max);

/* What the worker does with one queue; called on the worker only. */
struct vio_run_queue_ops {
	/* Attach: the queue starts running on loop.  0 or negative errno
	 * (the attach fails with it).  May be NULL. */
	int (*start)(void *arg, struct vio_loop *loop);
	/* The queue was kicked: bounded work; true if there is more. */
	bool (*kick)(void *arg);
	/* Busy-poll: is there work, judged from memory (no syscall)?
	 * NULL: call kick on every turn. */
	bool (*poll)(void *arg);
	/* Busy-poll: on false the worker starts spinning (ask the driver not
	 * to kick); on true it is about to sleep (ask for kicks again;
	 * return true if work arrived meanwhile: it does not sleep).  May be
	 * NULL. */
	bool (*arm)(void *arg, bool sleeping);
	/* Detach: the queue stops (the device hands back or completes what
	 * it holds).  May be NULL. */
	void (*stop)(void *arg);
};

/*
 * Serve a queue on worker (index % threads): the worker calls ops->start,
 * then kick once, then on every kick of kick_fd (an eventfd or a pipe the
 * caller owns and keeps open until the detach).  NULL with errno on
 * failure (errno is start's error when start refused).
 */
struct vio_run_queue *vio_run_attach(struct vio_run *r, unsigned index,
				     int kick_fd,
				     const struct vio_run_queue_ops *ops,
				     void *arg);
/* Replace the queue's kick fd; returns 0 once the worker waits on kick_fd
 * and no longer on the old one (close it after), and kicks once. */
int vio_run_set_kick_fd(struct vio_run_queue *q, int kick_fd);
/* Stop serving the queue: ops->stop ran and no op runs when it returns. */
void vio_run_detach(struct vio_run_queue *q);

/*
 * The backend's queue hooks (struct vio_backend_opts) served by r: queue
 * idx on worker (idx / group) % threads; the queue's device gets the worker's
 * loop (vio_device_queue_start) and a kick fd change keeps the worker. r must
 * outlive the backend.
 */
void vio_run_hooks(struct vio_run *r, struct vio_backend_opts *cfg);

/*
 * The same with the process's default group: queue idx of every backend
 * on worker idx (one thread per queue index, started when first used and
 * kept until the process exits).  busy_poll: that group busy-polls.
 */
void vio_run_backend_hooks(struct vio_backend_opts *cfg, bool busy_poll);

/*
 * One queue on a thread of its own (the first API, kept): fn(arg) once,
 * then after every read of kick_fd (or on every turn when busy_poll), and
 * again while it returns true.  A kick fd that fails or hangs up (a pipe
 * whose writer closed) parks the queue until it is stopped: logged once,
 * never a spin.  NULL with errno on failure.
 */
struct vio_run_worker;
struct vio_run_worker *vio_run_worker_start(int kick_fd, bool (*fn)(void *),
					    void *arg, bool busy_poll);
/* Stop the thread and join it: fn is not running when this returns. */
void vio_run_worker_stop(struct vio_run_worker *w);

#ifdef __cplusplus
}
#endif
#endif
