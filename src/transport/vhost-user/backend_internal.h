/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's state, shared by its two halves: backend.c
 * (queues and the message handlers) and backend_conn.c (sockets, the
 * connection's life, dispatch).  Private to the transport.
 */
#ifndef VIO_VU_BACKEND_INTERNAL_H
#define VIO_VU_BACKEND_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/vhost_user.h>

#define DEFAULT_SLOTS 509u
#define PROTOCOL_OFFERED                                                       \
	((1ull << VIO_VU_PF_MQ) | (1ull << VIO_VU_PF_REPLY_ACK) |              \
	 (1ull << VIO_VU_PF_CONFIG) | (1ull << VIO_VU_PF_RESET_DEVICE) |       \
	 (1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS) | (1ull << VIO_VU_PF_STATUS))

struct vu_queue {
	uint32_t num;
	struct vio_vu_addr addr;
	uint32_t base;
	bool has_num, has_addr, enabled, running;
	int kick_fd;
	/* call_fd and err_fd: written by the worker, replaced by the
	 * control thread; both under fd_lock */
	pthread_mutex_t fd_lock;
	int call_fd, err_fd;
	void *worker;
};

struct vio_backend {
	struct vio_device *dev;
	struct vio_backend_opts cfg;
	int listen_fd, conn_fd;
	char *path; /* socket file we created */
	/* connections so far (the current one's number, for log lines):
	 * written by the control thread while no queue worker runs */
	unsigned long conns;
	uint64_t features;
	bool features_set, protocol_acked;
	/* the frontend forwards the driver's status: it sent SET_STATUS
	 * (with STATUS negotiated, rings then wait for its DRIVER_OK) */
	bool status_driven;
	uint64_t protocol;
	struct vio_memtable *mt;
	unsigned nq;
	struct vu_queue q[VIO_MAX_QUEUES];
	struct vio_ratelimit rl;
};

/* The model's transport hooks for this backend (vio_device_attach). */
extern const struct vio_device_transport vio_vu_backend_hooks;
/* Handle one checked message and send its reply; <0 ends the
 * connection. */
int vio_vu_backend_handle(struct vio_backend *b, struct vio_vu_msg *m);
/* Stop every queue, reset the device, unmap the memory, close the
 * connection. */
void vio_vu_backend_end(struct vio_backend *b);
/* Close *fd if open; -1 it. */
void vio_vu_close_fd(int *fd);

#endif
