/* SPDX-License-Identifier: MIT */
/*
 * Internal to the vhost-user frontend: frontend.c (the messages, memory,
 * queues and the transport ops) and frontend_connect.c (connect, the
 * handshake, free, the bus across processes).  Not installed.
 */
#ifndef VIO_VU_FRONTEND_INTERNAL_H
#define VIO_VU_FRONTEND_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/vhost-user/msg.h"
#include "util/log.h"
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
	 (1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS) | (1ull << VIO_VU_PF_STATUS))

struct fe_queue {
	int kick_fd, call_fd; /* from connect until free (see the top) */
	bool started;	      /* __atomic: written under lock */
};

struct vio_frontend {
	struct vio_frontend_opts cfg;
	int sock;
	pthread_mutex_t lock;
	bool dead; /* __atomic */
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
};

static inline bool has_pf(const struct vio_frontend *f, unsigned bit)
{
	return f->protocol & (1ull << bit);
}

static inline bool is_dead(const struct vio_frontend *f)
{
	return __atomic_load_n(&f->dead, __ATOMIC_ACQUIRE);
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
/* The socket polls as hung up (the backend closed it). */
bool vio_fe_sock_hung_up(const struct vio_frontend *f);
void vio_fe_close_fd(int *fd);

extern const struct vio_transport_ops vio_fe_ops;

#endif
