/* SPDX-License-Identifier: MIT */
/*
 * Internal: the backend channel of docs/interop/vhost-user.rst ("Back-end
 * communication"), both ends.  The frontend makes a socketpair and gives
 * one end to the backend (SET_BACKEND_REQ_FD, protocol feature
 * BACKEND_REQ, bit 5); on it the backend sends requests (their own
 * number space, below) and the frontend answers them: only when the
 * backend set NEED_REPLY, with a u64 (0: done, else failed).
 *
 * Both ends use these helpers with their end made non-blocking: sending
 * never waits for a peer that does not read, and receiving reads what
 * is there.  Nothing here trusts the peer: a message is read whole
 * (header, then at most VIO_VU_CHAN_PAYLOAD_MAX payload bytes) or
 * refused; fds that arrive are closed (no BACKEND_SEND_FD is negotiated).
 */
#ifndef VIO_VU_BACKEND_CHAN_H
#define VIO_VU_BACKEND_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "transport/vhost-user/msg.h"

/* backend channel requests (backend -> frontend) */
#define VIO_VU_BACKEND_IOTLB_MSG 1
#define VIO_VU_BACKEND_CONFIG_CHANGE_MSG 2
#define VIO_VU_BACKEND_VRING_HOST_NOTIFIER_MSG 3

/* The largest payload read (and then ignored) from a request this end
 * does not know: the IOTLB message (the biggest defined) fits. */
#define VIO_VU_CHAN_PAYLOAD_MAX 64u

struct vio_vu_chan_msg {
	struct vio_vu_hdr hdr;
	union {
		uint64_t u64;
		uint8_t raw[VIO_VU_CHAN_PAYLOAD_MAX];
	} p;
	unsigned nfds; /* fds that came with it (already closed) */
};

/*
 * Receive one message: 0, -EAGAIN (nothing there), -ECONNRESET (the peer
 * closed its end), or -EPROTO with why[] (bad version, a payload over
 * VIO_VU_CHAN_PAYLOAD_MAX, a message cut short: a piece that does not
 * follow within 100 ms).  After -EPROTO the stream is out of step.
 */
int vio_vu_chan_recv(int sock, struct vio_vu_chan_msg *m, char *why,
		     size_t whylen);
/* Send header (version 1 | flags) and size payload bytes in one
 * non-blocking sendmsg.  0, -EAGAIN (the peer's buffer is full), or the
 * send's negative errno (-EPIPE: the peer closed). */
int vio_vu_chan_send(int sock, uint32_t request, uint32_t flags,
		     const void *payload, uint32_t size);

#endif
