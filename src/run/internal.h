/* SPDX-License-Identifier: MIT */
/*
 * The engine's worker (loop.c) as the group (group.c) uses it.
 */
#ifndef VIO_RUN_INTERNAL_H
#define VIO_RUN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <vio/run.h>

struct rw;

/* A worker thread; cpu < 0: not pinned.  NULL with errno. */
struct rw *rw_new(bool poll, uint64_t poll_ns, int cpu);
/* Stop and join (queues still attached are detached first). */
void rw_free(struct rw *w);

struct vio_run_queue *rw_attach(struct rw *w, int kick_fd,
				const struct vio_run_queue_ops *ops, void *arg);

#endif
