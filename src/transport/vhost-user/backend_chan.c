/* SPDX-License-Identifier: MIT */
/*
 * The backend channel's message I/O, for both ends (backend_chan.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/vhost-user/backend_chan.h"

/* A message's later pieces must follow within this long. */
#define PIECE_WAIT_MS 100

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -EPROTO)

/* Read exactly len bytes of a message already begun. */
static int read_rest(int sock, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n =
		    recv(sock, (uint8_t *)buf + done, len - done, MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		struct pollfd p = {.fd = sock, .events = POLLIN};
		int r = poll(&p, 1, PIECE_WAIT_MS);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

int vio_vu_chan_recv(int sock, struct vio_vu_chan_msg *m, char *why,
		     size_t whylen)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VIO_VU_MAX_TABLE_REGIONS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {&m->hdr, sizeof(m->hdr)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	memset(m, 0, sizeof(*m));
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN
							       : -errno;
	if (n == 0)
		return -ECONNRESET;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k =
		    (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned j = 0; j < k; j++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof(fd));
			close(fd);
			m->nfds++;
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		m->nfds++; /* some never arrived: still a message with fds */
	if ((size_t)n < sizeof(m->hdr) &&
	    read_rest(sock, (uint8_t *)&m->hdr + n, sizeof(m->hdr) - (size_t)n))
		return WHY("truncated header");
	if ((m->hdr.flags & VIO_VU_VERSION_MASK) != VIO_VU_VERSION)
		return WHY("request %u: version %u", m->hdr.request,
			   m->hdr.flags & VIO_VU_VERSION_MASK);
	if (m->hdr.size > VIO_VU_CHAN_PAYLOAD_MAX)
		return WHY("request %u: payload of %u bytes (at most %u)",
			   m->hdr.request, m->hdr.size,
			   VIO_VU_CHAN_PAYLOAD_MAX);
	if (m->hdr.size && read_rest(sock, &m->p, m->hdr.size))
		return WHY("request %u: truncated payload", m->hdr.request);
	return 0;
}

int vio_vu_chan_send(int sock, uint32_t request, uint32_t flags,
		     const void *payload, uint32_t size)
{
	struct vio_vu_hdr h = {
	    .request = request, .flags = VIO_VU_VERSION | flags, .size = size};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)payload, size}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = size ? 2 : 1};
	if (size > VIO_VU_CHAN_PAYLOAD_MAX || (size && !payload))
		return -EINVAL;
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	/* a stream socket takes a message this small whole or not at all
	 * (unless the buffer is nearly full: then the stream is broken) */
	return (size_t)n == sizeof(h) + size ? 0 : -EIO;
}
