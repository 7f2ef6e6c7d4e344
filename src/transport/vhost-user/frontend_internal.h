/* SPDX-License-Identifier: MIT */
/*
 * Internal to the vhost-user frontend: frontend.c (the messages, memory,
 * status, config and the transport ops table), frontend_queue.c (the
 * queues: ring setup and stop, notify, wait), frontend_connect.c
 * (connect, the handshake, free, the bus across processes),
 * frontend_reconnect.c and frontend_req.c (the backend channel).  Not
 * installed.
 */
#ifndef VIO_VU_FRONTEND_INTERNAL_H
#define VIO_VU_FRONTEND_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/ring.h>
#include <vio/transport.h>
#include <vio/vhost_user.h>

#define DEFAULT_QUEUE_SIZE 256u
/* connections one vio_frontend_connect may open while it learns queue
 * sizes from a backend that ends the connection after refusing one */
#define SIZE_PROBE_CONNECTS 16
#define DEFAULT_REPLY_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS 20
/* protocol features this frontend uses */
#define PROTOCOL_WANTED                                                        \
	((1ull << VIO_VU_PF_MQ) | (1ull << VIO_VU_PF_REPLY_ACK) |              \
	 (1ull << VIO_VU_PF_CONFIG) | (1ull << VIO_VU_PF_RESET_DEVICE) |       \
	 (1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS) |                             \
	 (1ull << VIO_VU_PF_STATUS) | (1ull << VIO_VU_PF_BACKEND_REQ) |        \
	 (1ull << VIO_VU_PF_DEVICE_STATE) | (1ull << VIO_VU_PF_LOG_SHMFD))
/* and with a reconnect wait: packed rings are handed over through the
 * backend's in-flight region (frontend_reconnect.c) */
#define PROTOCOL_WANTED_RECONNECT (1ull << VIO_VU_PF_INFLIGHT_SHMFD)

struct fe_queue {
	int kick_fd, call_fd; /* from connect until free (frontend_queue.c) */
	bool started;	      /* __atomic: written under lock */
	/* reconnect (frontend_reconnect.c): the ring as the driver set it
	 * up, and the connection generation the backend has it for */
	uint16_t size;
	struct vio_vq_layout layout;
	unsigned gen; /* __atomic: written under lock */
};

struct vio_frontend {
	struct vio_frontend_opts cfg;
	int sock; /* the same number for the frontend's life (reconnect
		   * dup3s a new connection onto it) */
	pthread_mutex_t lock;
	bool dead; /* __atomic */
	/* reconnect (cfg.reconnect_ms > 0, frontend_reconnect.c): the
	 * connection is lost and a new one is due (dead stays false until
	 * the wait runs out); gen counts connections; reconnecting: the
	 * handshake of a new one runs (vio_fe_die then only marks down) */
	bool down;    /* __atomic: written under lock */
	unsigned gen; /* __atomic: written under lock */
	bool reconnecting;
	/* vio_frontend_move (frontend_state.c) runs on a new connection: a
	 * failure marks down (it then moves back), not dead */
	bool moving;
	bool no_ack; /* reconnecting, before SET_PROTOCOL_FEATURES */
	uint64_t down_since_ms;
	char path[108];
	int lsock; /* cfg.listen: the listening socket at path, else -1 */
	char why[200];
	char refused[120]; /* the last request the backend acked an error */
	uint64_t offered;  /* GET_FEATURES, without PROTOCOL_FEATURES */
	bool proto;	   /* VHOST_USER_F_PROTOCOL_FEATURES negotiated */
	uint64_t protocol;
	unsigned max_slots; /* CONFIGURE_MEM_SLOTS, else 0 */
	unsigned nq;
	unsigned config_size; /* the caller's; 0: the driver's, or per read */
	unsigned queue_size;  /* the caller's, or DEFAULT_QUEUE_SIZE */
	/* per queue: the largest size offered to the driver, queue_size
	 * lowered by the backend's refusals (frontend_connect.c) */
	unsigned qmax[VIO_MAX_QUEUES];
	bool size_refused; /* a SET_VRING_NUM was refused, this connection */
	/* a queue size the backend cannot ack was just sent (no REPLY_ACK):
	 * if the connection dies now, the reason says so; 0 otherwise */
	unsigned size_unacked;
	char size_why[200]; /* a failure about the queue size, or "" */
	uint64_t acked;	    /* set_features */
	bool features_sent; /* SET_FEATURES since the last reset */
	uint8_t status;	    /* __atomic */
	unsigned synced;    /* regions sent: __atomic */
	struct vio_drvdev *vdev;
	struct vio_ratelimit rl;
	struct fe_queue q[VIO_MAX_QUEUES];
	/* the backend channel (frontend_req.c): our end of the socketpair
	 * (__atomic; replaced and closed under req_lock), and whether a
	 * waiter polls it now (__atomic) */
	pthread_mutex_t req_lock;
	int req_fd;
	bool req_polled;
	/* the in-flight region (frontend_reconnect.c; with reconnect and
	 * INFLIGHT_SHMFD): the backend's memfd and GET_INFLIGHT_FD's reply,
	 * kept across connections (-1: none, asked again at the next ring
	 * setup); inf_sent: SET_INFLIGHT_FD went out on this connection */
	int inf_fd;
	struct vio_vu_inflight inf;
	bool inf_sent;
	/* the dirty log (vio_frontend_dirty_log, frontend.c): our memfd and
	 * mapping (-1/NULL: none yet), its size in bytes (one bit per 4 KiB
	 * page from device address 0), and whether VHOST_F_LOG_ALL is to go
	 * with every SET_FEATURES (a reconnect's replay too) */
	int log_fd;
	uint8_t *log_map;
	uint64_t log_size;
	bool log_all;
};

static inline bool has_pf(const struct vio_frontend *f, unsigned bit)
{
	return f->protocol & (1ull << bit);
}

static inline bool is_dead(const struct vio_frontend *f)
{
	return __atomic_load_n(&f->dead, __ATOMIC_ACQUIRE);
}

static inline bool is_down(const struct vio_frontend *f)
{
	return __atomic_load_n(&f->down, __ATOMIC_ACQUIRE);
}

/* Messages may go out: neither dead nor waiting for a reconnect. */
static inline bool can_talk(const struct vio_frontend *f)
{
	return !is_dead(f) && !is_down(f);
}

static inline bool fe_reconnects(const struct vio_frontend *f)
{
	return f->cfg.reconnect_ms > 0;
}

/* The ring is set up (a stop is due before another setup or a reset). */
static inline bool q_started(const struct fe_queue *q)
{
	return __atomic_load_n(&q->started, __ATOMIC_ACQUIRE);
}

/* Mark the frontend dead (once; logged) and shut the socket down. */
void vio_fe_die(struct vio_frontend *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A request without payload or with a u64 one, answered by a u64.
 * Caller holds lock.  0; -ENOTCONN, -EPROTO (dead), -EIO (acked error). */
int vio_fe_xfer_u64(struct vio_frontend *f, uint32_t req, uint64_t in,
		    uint64_t *out);
/* A request with a vring state payload (index, num); as above. */
int vio_fe_xfer_state(struct vio_frontend *f, uint32_t req, uint32_t idx,
		      uint32_t num);
/* Send the regions the vio_mem gained; caller holds lock. */
int vio_fe_mem_sync_locked(struct vio_frontend *f);
/* The features word for SET_FEATURES: what the driver acked, with
 * PROTOCOL_FEATURES and VHOST_F_LOG_ALL as negotiated/asked. */
uint64_t vio_fe_features_word(const struct vio_frontend *f);
/* The dirty log again on a new connection (reconnect), if one was set:
 * SET_LOG_BASE with it.  Caller holds lock.  0 or as vio_fe_xfer_u64. */
int vio_fe_log_resend_locked(struct vio_frontend *f);
/* Unmap and close the dirty log (free). */
void vio_fe_log_free(struct vio_frontend *f);
/* The sync_mem transport op (t: the frontend): as above when the
 * vio_mem gained regions, taking the lock; also called by notify. */
int vio_fe_sync_mem(void *t);
/* The socket polls as hung up (the backend closed it). */
bool vio_fe_sock_hung_up(const struct vio_frontend *f);
void vio_fe_close_fd(int *fd);
/* Connect to path (retrying ENOENT/ECONNREFUSED for timeout_ms): the
 * socket, or negative errno with a reason in err. */
int vio_fe_sock_connect(const char *path, int timeout_ms, char *err,
			size_t errlen);

/* ---- frontend_queue.c ---- */

/* Send the ring of queue idx as the driver set it up: NUM, BASE, ADDR,
 * CALL, KICK, ENABLE.  Caller holds lock.  0 or as vio_fe_xfer_u64. */
int vio_fe_ring_setup_locked(struct vio_frontend *f, unsigned idx,
			     uint32_t base);
/* Stop ring idx if started (disable, GET_VRING_BASE) and wake its
 * waiters.  Caller holds lock. */
void vio_fe_queue_stop_locked(struct vio_frontend *f, unsigned idx);
/* The queue transport ops (t: the frontend), for vio_fe_ops. */
unsigned vio_fe_num_queues(void *t);
int vio_fe_queue_max_size(void *t, unsigned idx);
int vio_fe_queue_setup(void *t, unsigned idx, uint16_t size,
		       const struct vio_vq_layout *layout);
int vio_fe_queue_disable(void *t, unsigned idx);
void vio_fe_notify(void *t, unsigned idx);
int vio_fe_wait(void *t, unsigned idx, int timeout_ms);
int vio_fe_call_fd(void *t, unsigned idx);

/* ---- frontend_reconnect.c ---- */

/* cfg.listen: listen at f->path (a stale socket file is replaced). */
int vio_fe_listen(struct vio_frontend *f, char *err, size_t errlen);
/* Close the listening socket and remove its file. */
void vio_fe_unlisten(struct vio_frontend *f);
/* A new connection: connect to f->path (retrying while nothing listens),
 * or listening, accept one; within timeout_ms (-1: no limit).  The fd,
 * or negative errno with a reason in err (-ETIMEDOUT: nobody came). */
int vio_fe_sock_open(struct vio_frontend *f, int timeout_ms, char *err,
		     size_t errlen);

/* The connection was lost (f->down): connect again within the reconnect
 * wait and redo the handshake (same features), memory and status; the
 * rings follow per queue (vio_fe_restore).  Caller holds lock.  0, or
 * -ENOTCONN with f dead for good. */
int vio_fe_reconnect_locked(struct vio_frontend *f);
/* On the thread that owns queue idx's vq (its notify or wait): reconnect
 * if needed, then give the new backend the ring with every buffer still
 * in flight available again.  0 or -ENOTCONN (dead for good). */
int vio_fe_restore(struct vio_frontend *f, unsigned idx);
/* vio_frontend_move (frontend_state.c) uses these: take: a new
 * connection fd onto f->sock's number, with the reply timeouts (fd
 * closed); 0 or negative errno.  handshake_again: the handshake on it,
 * checked against the first: 0, or negative errno with a reason in why
 * or f->why.  Caller holds lock. */
int vio_fe_take_sock(struct vio_frontend *f, int fd);
int vio_fe_handshake_again(struct vio_frontend *f, char *why, size_t n);
/* Queue idx needs vio_fe_restore before its next kick or sleep. */
static inline bool fe_needs_restore(const struct vio_frontend *f, unsigned idx)
{
	return fe_reconnects(f) &&
	       (is_down(f) ||
		__atomic_load_n(&f->q[idx].gen, __ATOMIC_ACQUIRE) !=
		    __atomic_load_n(&f->gen, __ATOMIC_ACQUIRE));
}

/* The in-flight region (packed rings across a reconnect; see
 * frontend_reconnect.c).  get: GET_INFLIGHT_FD for every queue at the
 * largest size offered, if the backend has INFLIGHT_SHMFD and packed
 * rings and the frontend reconnects (else nothing); drop: forget the
 * region (a device reset: the next ring setup asks for a fresh one);
 * prepare: before the driver sets up ring idx, with a packed ring: a
 * region given to this
 * connection (SET_INFLIGHT_FD) whose part for idx is empty (a new ring).
 * Caller holds lock.  0 or as vio_fe_xfer_u64. */
int vio_fe_inflight_get_locked(struct vio_frontend *f);
void vio_fe_inflight_drop(struct vio_frontend *f);
int vio_fe_inflight_prepare_locked(struct vio_frontend *f, unsigned idx);

/* Any request (fds attached, payload filled), answered as its kind
 * says; as vio_fe_xfer_u64.  Caller holds lock. */
int vio_fe_xfer(struct vio_frontend *f, struct vio_vu_msg *m);

/* ---- frontend_req.c: the backend channel ---- */

/* init: at connect, before anything can fail; fini: at free; close:
 * when a connection is dropped (another one makes its own channel). */
void vio_fe_req_init(struct vio_frontend *f);
void vio_fe_req_fini(struct vio_frontend *f);
void vio_fe_req_close(struct vio_frontend *f);
/* In the handshake, after SET_PROTOCOL_FEATURES: if BACKEND_REQ was
 * negotiated, give the backend its end of a new channel
 * (SET_BACKEND_REQ_FD).  Caller holds lock.  0 (also when the backend
 * refused it: no channel then), or -ENOTCONN/-EPROTO (dead). */
int vio_fe_req_setup_locked(struct vio_frontend *f);
/* fe_wait: the channel's fd if this waiter is to poll it too (one
 * waiter at a time), else -1; after the poll, vio_fe_req_wait_end with
 * that fd and its revents serves it and gives the turn back. */
int vio_fe_req_wait_begin(struct vio_frontend *f);
void vio_fe_req_wait_end(struct vio_frontend *f, int fd, short revents);

extern const struct vio_transport_ops vio_fe_ops;

#endif
