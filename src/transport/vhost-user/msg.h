/* SPDX-License-Identifier: MIT */
/*
 * Internal: the vhost-user message codec, shared by the backend (device
 * side) and the frontend (driver side).  The protocol's numbers are not in
 * the kernel's uapi headers; they are defined here, once, from QEMU's
 * docs/interop/vhost-user.rst.
 *
 * One table (vio_vu_requests[]) knows, per request: its name, the payload
 * size rule, how many fds it may carry, and what kind of reply it has.
 * vio_vu_recv() checks all of it before anyone looks at the payload.
 */
#ifndef VIO_VU_MSG_H
#define VIO_VU_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* header flags */
#define VIO_VU_VERSION 0x1u
#define VIO_VU_VERSION_MASK 0x3u
#define VIO_VU_FLAG_REPLY (1u << 2)
#define VIO_VU_FLAG_NEED_REPLY (1u << 3)

/* feature bit 30 of GET/SET_FEATURES */
#define VIO_VU_F_PROTOCOL_FEATURES 30

/* protocol feature bits */
#define VIO_VU_PF_MQ 0
#define VIO_VU_PF_LOG_SHMFD 1
#define VIO_VU_PF_REPLY_ACK 3
#define VIO_VU_PF_BACKEND_REQ 5
#define VIO_VU_PF_CONFIG 9
#define VIO_VU_PF_INFLIGHT_SHMFD 12
#define VIO_VU_PF_RESET_DEVICE 13
#define VIO_VU_PF_CONFIGURE_MEM_SLOTS 15
#define VIO_VU_PF_STATUS 16
#define VIO_VU_PF_DEVICE_STATE 19

enum vio_vu_request {
	VIO_VU_GET_FEATURES = 1,
	VIO_VU_SET_FEATURES = 2,
	VIO_VU_SET_OWNER = 3,
	VIO_VU_RESET_OWNER = 4,
	VIO_VU_SET_MEM_TABLE = 5,
	VIO_VU_SET_LOG_BASE = 6,
	VIO_VU_SET_LOG_FD = 7,
	VIO_VU_SET_VRING_NUM = 8,
	VIO_VU_SET_VRING_ADDR = 9,
	VIO_VU_SET_VRING_BASE = 10,
	VIO_VU_GET_VRING_BASE = 11,
	VIO_VU_SET_VRING_KICK = 12,
	VIO_VU_SET_VRING_CALL = 13,
	VIO_VU_SET_VRING_ERR = 14,
	VIO_VU_GET_PROTOCOL_FEATURES = 15,
	VIO_VU_SET_PROTOCOL_FEATURES = 16,
	VIO_VU_GET_QUEUE_NUM = 17,
	VIO_VU_SET_VRING_ENABLE = 18,
	VIO_VU_SET_BACKEND_REQ_FD = 21,
	VIO_VU_GET_CONFIG = 24,
	VIO_VU_SET_CONFIG = 25,
	VIO_VU_GET_INFLIGHT_FD = 31,
	VIO_VU_SET_INFLIGHT_FD = 32,
	VIO_VU_RESET_DEVICE = 34,
	VIO_VU_GET_MAX_MEM_SLOTS = 36,
	VIO_VU_ADD_MEM_REG = 37,
	VIO_VU_REM_MEM_REG = 38,
	VIO_VU_SET_STATUS = 39,
	VIO_VU_GET_STATUS = 40,
	VIO_VU_SET_DEVICE_STATE_FD = 42,
	VIO_VU_CHECK_DEVICE_STATE = 43,
	VIO_VU_REQUEST_MAX = 44,
};

/* SET_MEM_TABLE carries at most this many regions (and fds) */
#define VIO_VU_MAX_TABLE_REGIONS 8u
/* the u64 payload of SET_VRING_KICK/CALL/ERR */
#define VIO_VU_VRING_IDX_MASK 0xffu
#define VIO_VU_VRING_NOFD (1u << 8)

struct vio_vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vio_vu_state {
	uint32_t index;
	uint32_t num;
};

struct vio_vu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc; /* frontend virtual addresses */
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vio_vu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vio_vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vio_vu_region r[VIO_VU_MAX_TABLE_REGIONS];
};

struct vio_vu_mem_reg {
	uint64_t padding;
	struct vio_vu_region r;
};

#define VIO_VU_CONFIG_MAX 256u
struct vio_vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VIO_VU_CONFIG_MAX];
};

/*
 * GET_INFLIGHT_FD / SET_INFLIGHT_FD (protocol feature INFLIGHT_SHMFD).
 * GET: the frontend fills num_queues and queue_size (mmap fields 0); the
 * backend replies with all four and one fd (a memfd of mmap_size bytes
 * from mmap_offset: num_queues regions of vio_inflight_queue_bytes()).
 * SET: the frontend sends the same four fields with that fd (or the one a
 * previous backend gave it).  Natural alignment: 24 bytes on the wire,
 * as QEMU and libvhost-user send it (sizeof of their unpacked struct).
 */
struct vio_vu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
};

/* SET_LOG_BASE (protocol feature LOG_SHMFD): the dirty log is mmap_size
 * bytes of the fd that comes with it, from mmap_offset. */
struct vio_vu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

/* SET_DEVICE_STATE_FD (protocol feature DEVICE_STATE) */
#define VIO_VU_STATE_SAVE 0u	      /* transfer_direction: backend writes */
#define VIO_VU_STATE_LOAD 1u	      /* backend reads */
#define VIO_VU_STATE_PHASE_STOPPED 0u /* migration_phase */
/* the reply's u64: bits 0-7 an error code (0: ok), this bit: no fd with
 * the reply (the backend uses the frontend's) */
#define VIO_VU_STATE_REPLY_NOFD (1u << 8)
struct vio_vu_transfer_state {
	uint32_t direction;
	uint32_t phase;
};

union vio_vu_payload {
	uint64_t u64;
	struct vio_vu_state state;
	struct vio_vu_addr addr;
	struct vio_vu_mem_table mem;
	struct vio_vu_mem_reg reg;
	struct vio_vu_config config;
	struct vio_vu_inflight inflight;
	struct vio_vu_log log;
	struct vio_vu_transfer_state xfer;
};

struct vio_vu_msg {
	struct vio_vu_hdr hdr;
	union vio_vu_payload p;
	int fds[VIO_VU_MAX_TABLE_REGIONS];
	unsigned nfds;
};

enum vio_vu_size_rule {
	VIO_VU_SZ_NONE,	    /* no payload */
	VIO_VU_SZ_U64,	    /* exactly 8 bytes */
	VIO_VU_SZ_STATE,    /* exactly struct vio_vu_state */
	VIO_VU_SZ_ADDR,	    /* exactly struct vio_vu_addr */
	VIO_VU_SZ_MEMTAB,   /* 8 + nregions * 32, nregions <= 8 */
	VIO_VU_SZ_MEMREG,   /* exactly struct vio_vu_mem_reg */
	VIO_VU_SZ_CONFIG,   /* 12 + size, size <= VIO_VU_CONFIG_MAX */
	VIO_VU_SZ_INFLIGHT, /* exactly struct vio_vu_inflight (24) */
	VIO_VU_SZ_LOG,	    /* exactly struct vio_vu_log (16) */
	VIO_VU_SZ_XFER,	    /* exactly struct vio_vu_transfer_state (8) */
};

enum vio_vu_reply {
	VIO_VU_REPLY_NONE, /* REPLY_ACK answers it if NEED_REPLY was set */
	VIO_VU_REPLY_U64,
	VIO_VU_REPLY_STATE,
	VIO_VU_REPLY_CONFIG,
	VIO_VU_REPLY_INFLIGHT, /* struct vio_vu_inflight + exactly one fd */
	VIO_VU_REPLY_U64_FD,   /* a u64, always sent, + at most one fd */
};

enum vio_vu_fds {
	VIO_VU_FD_NONE,	      /* no fd allowed */
	VIO_VU_FD_ONE,	      /* exactly one */
	VIO_VU_FD_OPTIONAL,   /* zero or one */
	VIO_VU_FD_VRING,      /* one, unless the payload says NOFD */
	VIO_VU_FD_PER_REGION, /* one per memory region */
};

struct vio_vu_request_info {
	const char *name;
	uint8_t size_rule; /* enum vio_vu_size_rule */
	uint8_t fds;	   /* enum vio_vu_fds */
	uint8_t reply;	   /* enum vio_vu_reply */
	bool known;
};

/* Row for request r, or NULL for an unknown request. */
const struct vio_vu_request_info *vio_vu_request_info(uint32_t r);
const char *vio_vu_request_name(uint32_t r);

/*
 * Receive one message on a stream socket: header, then exactly the
 * payload size the table allows for it, with its fds (SCM_RIGHTS,
 * close-on-exec).  Unknown requests, wrong sizes, a wrong fd count,
 * truncated control data or a bad version fail; every fd that arrived is
 * closed on failure.  Returns 0, -ECONNRESET (peer closed cleanly between
 * messages) or a negative errno with why[] saying what was wrong.
 */
int vio_vu_recv(int sock, struct vio_vu_msg *m, char *why, size_t whylen);
/* Check a message already in memory (header + payload + nfds): the same
 * rules as vio_vu_recv.  0 or -EPROTO with why[]. */
int vio_vu_check(const struct vio_vu_msg *m, char *why, size_t whylen);
/* Close every fd the message carries. */
void vio_vu_close_fds(struct vio_vu_msg *m);
/* Send header + hdr.size payload bytes + fds.  0 or negative errno. */
int vio_vu_send(int sock, const struct vio_vu_msg *m);
/* Payload size of a message with this size rule and payload (for
 * building replies and requests). */
uint32_t vio_vu_payload_size(const struct vio_vu_msg *m);

/* ---- frontend side (requests out, replies in) ---- */

/* Start a request: header (version 1, flags), payload zeroed, no fds.
 * Fill the payload, set hdr.size = vio_vu_payload_size(m), send. */
void vio_vu_request_init(struct vio_vu_msg *m, uint32_t request,
			 uint32_t flags);
/*
 * Receive the reply to request req: the REPLY flag and version 1, the
 * same request code, no fds, and exactly the payload its reply kind has
 * (u64 for REPLY_ACK and u64 replies, a vring state, GET_CONFIG: 12 +
 * config_size bytes, or 0 bytes: some backends' way of refusing).  A
 * reply that breaks any rule is -EPROTO with why[]; the stream is then
 * out of step and must be abandoned.  -ECONNRESET if the peer closed.
 * GET_INFLIGHT_FD's reply is a struct vio_vu_inflight with exactly one
 * fd: on success it is m->fds[0] (m->nfds == 1), the caller's to close;
 * a reply without one, or with more, is -EPROTO (every fd closed).
 */
int vio_vu_recv_reply(int sock, uint32_t req, uint32_t config_size,
		      struct vio_vu_msg *m, char *why, size_t whylen);

#endif
