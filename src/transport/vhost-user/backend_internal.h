/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's state, shared by its two halves: backend.c
 * (queues and the message handlers) and backend_conn.c (sockets, the
 * connection's life, dispatch).  Private to the transport.
 */
#ifndef VIO_VU_BACKEND_INTERNAL_H
#define VIO_VU_BACKEND_INTERNAL_H

#include <linux/vhost_types.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring/dirtylog.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/mem.h>
#include <vio/vhost_user.h>

#define DEFAULT_SLOTS 509u
#define VU_REG_DUPS 64u /* distinct regions added more than once */
#define PROTOCOL_OFFERED                                                       \
	((1ull << VIO_VU_PF_MQ) | (1ull << VIO_VU_PF_REPLY_ACK) |              \
	 (1ull << VIO_VU_PF_CONFIG) | (1ull << VIO_VU_PF_RESET_DEVICE) |       \
	 (1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS) |                             \
	 (1ull << VIO_VU_PF_STATUS) | (1ull << VIO_VU_PF_BACKEND_REQ) |        \
	 (1ull << VIO_VU_PF_INFLIGHT_SHMFD) | VU_PF_LOG | VU_PF_STATE)
/* migration (backend_log.c, backend_state.c): each file's owner turns its
 * protocol feature on here once it works */
#define VU_PF_LOG (1ull << VIO_VU_PF_LOG_SHMFD)
#define VU_PF_STATE (1ull << VIO_VU_PF_DEVICE_STATE)

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
	/* ADD_MEM_REG repeats: QEMU sends every region once per vhost
	 * device, and a multiqueue net device is one vhost device per queue
	 * pair (all on this connection): a repeat of a mapped region counts
	 * here and its REM_MEM_REG uncounts it; the last one unmaps */
	struct vu_reg_dup {
		uint64_t gpa, size;
		unsigned extra;
	} reg_dup[VU_REG_DUPS];
	unsigned nreg_dup;
	unsigned nq;
	struct vu_queue q[VIO_MAX_QUEUES];
	struct vio_ratelimit rl;
	/* the backend channel (backend_req.c): the hook runs on any thread,
	 * so all of it is under req_lock, with what it needs of the
	 * connection copied at SET_BACKEND_REQ_FD */
	pthread_mutex_t req_lock;
	int req_fd;
	unsigned req_owed;	  /* acks not collected yet */
	bool req_ack, req_config; /* REPLY_ACK, CONFIG negotiated */
	unsigned long req_conn;	  /* the connection's number */
	pthread_t req_ctl;	  /* the thread that dispatched it */
	/* the in-flight region (backend_inflight.c): SET_INFLIGHT_FD's
	 * mapping, num_queues parts of inflight_stride bytes for rings of
	 * up to inflight_qsize; mapped and unmapped by the control thread
	 * while no queue runs */
	void *inflight_map;
	size_t inflight_map_len;
	uint8_t *inflight_base;
	size_t inflight_stride;
	unsigned inflight_nq, inflight_qsize;
	/* an fd the reply of the message being handled carries
	 * (GET_INFLIGHT_FD); vio_vu_backend_handle sends and closes it */
	bool has_reply_fd;
	int reply_fd;
	/* dirty log (backend_log.c): SET_LOG_BASE's mapping (a one-region
	 * table: bounds checked, guarded against truncation; the bitmap at
	 * log.bits), replaced and unmapped by the control thread while no
	 * queue runs; log_all: VHOST_F_LOG_ALL is negotiated (queues start
	 * with the log attached); SET_LOG_FD's fd */
	struct vio_memtable *log_mt;
	struct vio_dirty_log log;
	bool log_all, has_log_fd;
	int log_fd;
	struct vu_state_xfer *state; /* backend_state.c: a state transfer */
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

/* backend_req.c: the backend channel.  init/fini: vio_backend_new/free;
 * close: the connection's end; set: SET_BACKEND_REQ_FD's handler;
 * config_changed: the model's hook (any thread). */
void vio_vu_backend_req_init(struct vio_backend *b);
void vio_vu_backend_req_fini(struct vio_backend *b);
void vio_vu_backend_req_close(struct vio_backend *b);
int vio_vu_backend_req_set(struct vio_backend *b, struct vio_vu_msg *m);
void vio_vu_backend_config_changed(void *t);

/* backend_inflight.c: GET_INFLIGHT_FD and SET_INFLIGHT_FD's handlers;
 * attach: queue idx was enabled, give its vq its part of the region
 * (on failure the queue is disabled again); unmap: forget the region
 * (every queue stopped). */
int vio_vu_h_get_inflight(struct vio_backend *b, struct vio_vu_msg *m);
int vio_vu_h_set_inflight(struct vio_backend *b, struct vio_vu_msg *m);
int vio_vu_inflight_attach(struct vio_backend *b, unsigned idx);
void vio_vu_inflight_unmap(struct vio_backend *b);

/* backend_log.c: dirty-page logging for live migration (protocol feature
 * LOG_SHMFD, feature bit VHOST_F_LOG_ALL): SET_LOG_BASE's and SET_LOG_FD's
 * handlers. */
int vio_vu_h_set_log_base(struct vio_backend *b, struct vio_vu_msg *m);
int vio_vu_h_set_log_fd(struct vio_backend *b, struct vio_vu_msg *m);
/* Queue idx starts: attach the log to its vq when logging is on (0, or
 * negative errno: the queue does not start).  unmap: the connection's
 * end, every queue stopped. */
int vio_vu_log_attach(struct vio_backend *b, unsigned idx);
void vio_vu_log_unmap(struct vio_backend *b);
/* backend_mem.c: the guest memory table's handlers. */
int vio_vu_h_set_mem_table(struct vio_backend *b, struct vio_vu_msg *m);
int vio_vu_h_add_mem_reg(struct vio_backend *b, struct vio_vu_msg *m);
int vio_vu_h_rem_mem_reg(struct vio_backend *b, struct vio_vu_msg *m);
/* backend.c: stop every queue (each completes what it holds); start
 * every queue that is ready. */
void vio_vu_queues_stop(struct vio_backend *b);
int vio_vu_queues_start(struct vio_backend *b);

/* backend_state.c: device state transfer (protocol feature DEVICE_STATE):
 * SET_DEVICE_STATE_FD's and CHECK_DEVICE_STATE's handlers. */
int vio_vu_h_set_device_state_fd(struct vio_backend *b, struct vio_vu_msg *m);
int vio_vu_h_check_device_state(struct vio_backend *b, struct vio_vu_msg *m);
/* Drop a transfer left open (the end of the connection). */
void vio_vu_state_end(struct vio_backend *b);
/* SET_FEATURES: FEATURES_OK was accepted, no ring started yet: apply a
 * state loaded before it (0: none, or applied; else the device needs a
 * reset, the log says why, and the error is returned).  reset: the
 * device is reset (not the one SET_FEATURES makes): drop such a state. */
int vio_vu_state_features_ok(struct vio_backend *b);
void vio_vu_state_reset(struct vio_backend *b);

#endif
