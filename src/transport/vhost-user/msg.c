/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user message codec: the request table and the socket I/O.
 * Nothing here interprets a payload beyond what its size rule needs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/vhost-user/msg.h"

_Static_assert(sizeof(struct vio_vu_inflight) == 24,
	       "the inflight description is 24 bytes on the wire");

#define ROW(req, sz, fd, rep)                                                  \
	[VIO_VU_##req] = {#req, VIO_VU_SZ_##sz, VIO_VU_FD_##fd,                \
			  VIO_VU_REPLY_##rep, true}

/* One row per request this codec accepts; a request without a row is
 * refused before any handler runs.  (REM_MEM_REG may carry an fd: the
 * spec lets frontends send one; it is closed unused.) */
static const struct vio_vu_request_info table[VIO_VU_REQUEST_MAX] = {
    ROW(GET_FEATURES, NONE, NONE, U64),
    ROW(SET_FEATURES, U64, NONE, NONE),
    ROW(SET_OWNER, NONE, NONE, NONE),
    ROW(RESET_OWNER, NONE, NONE, NONE),
    ROW(SET_MEM_TABLE, MEMTAB, PER_REGION, NONE),
    ROW(SET_VRING_NUM, STATE, NONE, NONE),
    ROW(SET_VRING_ADDR, ADDR, NONE, NONE),
    ROW(SET_VRING_BASE, STATE, NONE, NONE),
    ROW(GET_VRING_BASE, STATE, NONE, STATE),
    ROW(SET_VRING_KICK, U64, VRING, NONE),
    ROW(SET_VRING_CALL, U64, VRING, NONE),
    ROW(SET_VRING_ERR, U64, VRING, NONE),
    ROW(GET_PROTOCOL_FEATURES, NONE, NONE, U64),
    ROW(SET_PROTOCOL_FEATURES, U64, NONE, NONE),
    ROW(GET_QUEUE_NUM, NONE, NONE, U64),
    ROW(SET_VRING_ENABLE, STATE, NONE, NONE),
    ROW(SET_BACKEND_REQ_FD, NONE, ONE, NONE),
    ROW(GET_CONFIG, CONFIG, NONE, CONFIG),
    ROW(SET_CONFIG, CONFIG, NONE, NONE),
    ROW(GET_INFLIGHT_FD, INFLIGHT, NONE, INFLIGHT),
    ROW(SET_INFLIGHT_FD, INFLIGHT, ONE, NONE),
    ROW(RESET_DEVICE, NONE, NONE, NONE),
    ROW(GET_MAX_MEM_SLOTS, NONE, NONE, U64),
    ROW(ADD_MEM_REG, MEMREG, ONE, NONE),
    ROW(REM_MEM_REG, MEMREG, OPTIONAL, NONE),
    ROW(SET_STATUS, U64, NONE, NONE),
    ROW(GET_STATUS, NONE, NONE, U64),
    /* migration: SET_LOG_BASE is always answered (u64 0) */
    ROW(SET_LOG_BASE, LOG, ONE, U64),
    ROW(SET_LOG_FD, NONE, ONE, NONE),
    ROW(SET_DEVICE_STATE_FD, XFER, ONE, U64_FD),
    ROW(CHECK_DEVICE_STATE, NONE, NONE, U64),
};

const struct vio_vu_request_info *vio_vu_request_info(uint32_t r)
{
	if (r >= VIO_VU_REQUEST_MAX || !table[r].known)
		return NULL;
	return &table[r];
}

const char *vio_vu_request_name(uint32_t r)
{
	const struct vio_vu_request_info *i = vio_vu_request_info(r);
	return i ? i->name : "unknown request";
}

uint32_t vio_vu_payload_size(const struct vio_vu_msg *m)
{
	const struct vio_vu_request_info *i =
	    vio_vu_request_info(m->hdr.request);
	if (!i)
		return 0;
	bool reply = m->hdr.flags & VIO_VU_FLAG_REPLY;
	uint8_t rule = i->size_rule;
	if (reply) {
		switch (i->reply) {
		case VIO_VU_REPLY_U64:
		case VIO_VU_REPLY_U64_FD:
		case VIO_VU_REPLY_NONE:
			return 8;
		case VIO_VU_REPLY_STATE:
			return sizeof(struct vio_vu_state);
		case VIO_VU_REPLY_INFLIGHT:
			return sizeof(struct vio_vu_inflight);
		default:
			break;
		}
	}
	switch (rule) {
	case VIO_VU_SZ_U64:
		return 8;
	case VIO_VU_SZ_STATE:
		return sizeof(struct vio_vu_state);
	case VIO_VU_SZ_ADDR:
		return sizeof(struct vio_vu_addr);
	case VIO_VU_SZ_MEMTAB:
		return 8 + (m->p.mem.nregions <= VIO_VU_MAX_TABLE_REGIONS
				? m->p.mem.nregions
				: 0) *
			       (uint32_t)sizeof(struct vio_vu_region);
	case VIO_VU_SZ_MEMREG:
		return sizeof(struct vio_vu_mem_reg);
	case VIO_VU_SZ_INFLIGHT:
		return sizeof(struct vio_vu_inflight);
	case VIO_VU_SZ_LOG:
		return sizeof(struct vio_vu_log);
	case VIO_VU_SZ_XFER:
		return sizeof(struct vio_vu_transfer_state);
	case VIO_VU_SZ_CONFIG:
		return 12 + (m->p.config.size <= VIO_VU_CONFIG_MAX
				 ? m->p.config.size
				 : 0);
	default:
		return 0;
	}
}

void vio_vu_close_fds(struct vio_vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -EPROTO)

/* Size rule, for a request (not a reply) whose header and payload are in
 * m.  Fixed sizes are compared before the payload is read. */
static int check_size(const struct vio_vu_request_info *i, uint32_t size,
		      const struct vio_vu_msg *m, bool have_payload, char *why,
		      size_t whylen)
{
	uint32_t want;
	switch (i->size_rule) {
	case VIO_VU_SZ_NONE:
		want = 0;
		break;
	case VIO_VU_SZ_U64:
		want = 8;
		break;
	case VIO_VU_SZ_STATE:
		want = sizeof(struct vio_vu_state);
		break;
	case VIO_VU_SZ_ADDR:
		want = sizeof(struct vio_vu_addr);
		break;
	case VIO_VU_SZ_MEMREG:
		want = sizeof(struct vio_vu_mem_reg);
		break;
	case VIO_VU_SZ_INFLIGHT:
		want = sizeof(struct vio_vu_inflight);
		break;
	case VIO_VU_SZ_LOG:
		want = sizeof(struct vio_vu_log);
		break;
	case VIO_VU_SZ_XFER:
		want = sizeof(struct vio_vu_transfer_state);
		break;
	case VIO_VU_SZ_MEMTAB:
		if (size < 8 || size > sizeof(struct vio_vu_mem_table))
			return WHY("%s: payload of %u bytes", i->name, size);
		if (!have_payload)
			return 0;
		if (m->p.mem.nregions > VIO_VU_MAX_TABLE_REGIONS)
			return WHY("%s: %u regions (at most %u)", i->name,
				   m->p.mem.nregions, VIO_VU_MAX_TABLE_REGIONS);
		want = 8 + m->p.mem.nregions *
			       (uint32_t)sizeof(struct vio_vu_region);
		break;
	case VIO_VU_SZ_CONFIG:
		if (size < 12 || size > 12 + VIO_VU_CONFIG_MAX)
			return WHY("%s: payload of %u bytes", i->name, size);
		if (!have_payload)
			return 0;
		if (m->p.config.size > VIO_VU_CONFIG_MAX)
			return WHY("%s: config size %u", i->name,
				   m->p.config.size);
		want = 12 + m->p.config.size;
		break;
	default:
		return WHY("%s: no size rule", i->name);
	}
	if (size != want)
		return WHY("%s: payload of %u bytes, expected %u", i->name,
			   size, want);
	return 0;
}

static int check_fds(const struct vio_vu_request_info *i,
		     const struct vio_vu_msg *m, char *why, size_t whylen)
{
	unsigned want_min = 0, want_max = 0;
	switch (i->fds) {
	case VIO_VU_FD_NONE:
		break;
	case VIO_VU_FD_ONE:
		want_min = want_max = 1;
		break;
	case VIO_VU_FD_OPTIONAL:
		want_max = 1;
		break;
	case VIO_VU_FD_VRING:
		want_min = want_max = (m->p.u64 & VIO_VU_VRING_NOFD) ? 0 : 1;
		break;
	case VIO_VU_FD_PER_REGION:
		want_min = want_max = m->p.mem.nregions;
		break;
	}
	if (m->nfds < want_min || m->nfds > want_max)
		return WHY("%s: %u fds, expected %u%s", i->name, m->nfds,
			   want_min, want_max > want_min ? " or 1" : "");
	return 0;
}

int vio_vu_check(const struct vio_vu_msg *m, char *why, size_t whylen)
{
	const struct vio_vu_request_info *i =
	    vio_vu_request_info(m->hdr.request);
	if (!i)
		return WHY("unknown request %u", m->hdr.request);
	if ((m->hdr.flags & VIO_VU_VERSION_MASK) != VIO_VU_VERSION)
		return WHY("%s: version %u", i->name,
			   m->hdr.flags & VIO_VU_VERSION_MASK);
	int r = check_size(i, m->hdr.size, m, true, why, whylen);
	return r ? r : check_fds(i, m, why, whylen);
}

/* Read exactly len bytes (no fds expected). */
static int read_full(int sock, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = recv(sock, (uint8_t *)buf + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		done += (size_t)n;
	}
	return 0;
}

int vio_vu_recv(int sock, struct vio_vu_msg *m, char *why, size_t whylen)
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
	ssize_t n;

	memset(&m->hdr, 0, sizeof(m->hdr));
	m->nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	/* collect fds first, so that every path below closes them */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k =
		    (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int fds[VIO_VU_MAX_TABLE_REGIONS];
		if (k > VIO_VU_MAX_TABLE_REGIONS)
			k = VIO_VU_MAX_TABLE_REGIONS;
		memcpy(fds, CMSG_DATA(c), k * sizeof(int));
		for (unsigned j = 0; j < k; j++) {
			if (m->nfds < VIO_VU_MAX_TABLE_REGIONS)
				m->fds[m->nfds++] = fds[j];
			else
				close(fds[j]);
		}
	}
	int r;
	if (mh.msg_flags & MSG_CTRUNC) {
		r = WHY("control data truncated (too many fds)");
		goto fail;
	}
	if ((size_t)n < sizeof(m->hdr)) {
		r = read_full(sock, (uint8_t *)&m->hdr + n,
			      sizeof(m->hdr) - (size_t)n);
		if (r) {
			snprintf(why, whylen, "truncated header");
			goto fail;
		}
	}
	const struct vio_vu_request_info *i =
	    vio_vu_request_info(m->hdr.request);
	if (!i) {
		r = WHY("unknown request %u", m->hdr.request);
		goto fail;
	}
	if ((m->hdr.flags & VIO_VU_VERSION_MASK) != VIO_VU_VERSION) {
		r = WHY("%s: version %u", i->name,
			m->hdr.flags & VIO_VU_VERSION_MASK);
		goto fail;
	}
	/* bound the payload before reading it */
	r = check_size(i, m->hdr.size, m, false, why, whylen);
	if (r)
		goto fail;
	if (m->hdr.size > sizeof(m->p)) {
		r = WHY("%s: payload of %u bytes", i->name, m->hdr.size);
		goto fail;
	}
	memset(&m->p, 0, sizeof(m->p));
	r = read_full(sock, &m->p, m->hdr.size);
	if (r) {
		snprintf(why, whylen, "%s: truncated payload", i->name);
		goto fail;
	}
	r = vio_vu_check(m, why, whylen);
	if (r)
		goto fail;
	return 0;
fail:
	vio_vu_close_fds(m);
	return r;
}

int vio_vu_send(int sock, const struct vio_vu_msg *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VIO_VU_MAX_TABLE_REGIONS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {{(void *)&m->hdr, sizeof(m->hdr)},
			       {(void *)&m->p, m->hdr.size}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = m->hdr.size ? 2 : 1};
	if (m->hdr.size > sizeof(m->p) || m->nfds > VIO_VU_MAX_TABLE_REGIONS)
		return -EINVAL;
	if (m->nfds) {
		memset(ctl.buf, 0, sizeof(ctl.buf));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
		memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->nfds);
	}
	size_t total = sizeof(m->hdr) + m->hdr.size;
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != total)
		return -EIO; /* a stream socket this small does not split */
	return 0;
}

/* ---- frontend side ---- */

void vio_vu_request_init(struct vio_vu_msg *m, uint32_t request, uint32_t flags)
{
	memset(m, 0, sizeof(*m));
	m->hdr.request = request;
	m->hdr.flags = VIO_VU_VERSION | flags;
}

static int reply_check(int sock, uint32_t req,
		       const struct vio_vu_request_info *i, const char *name,
		       uint32_t config_size, ssize_t n, unsigned nfds,
		       bool ctrunc, struct vio_vu_msg *m, char *why,
		       size_t whylen);

int vio_vu_recv_reply(int sock, uint32_t req, uint32_t config_size,
		      struct vio_vu_msg *m, char *why, size_t whylen)
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
	const struct vio_vu_request_info *i = vio_vu_request_info(req);
	const char *name = i ? i->name : "?";
	ssize_t n;

	memset(&m->hdr, 0, sizeof(m->hdr));
	m->nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno == EAGAIN ? ETIMEDOUT : errno;
		snprintf(why, whylen, "%s: no reply: %s", name, strerror(e));
		return -e;
	}
	if (n == 0) {
		snprintf(why, whylen, "%s: backend closed the connection",
			 name);
		return -ECONNRESET;
	}
	/* Only GET_INFLIGHT_FD's reply carries an fd (exactly one), and
	 * SET_DEVICE_STATE_FD's may (at most one); it is kept in m->fds and
	 * closed on every failure below. */
	bool want_fd = i && (i->reply == VIO_VU_REPLY_INFLIGHT ||
			     i->reply == VIO_VU_REPLY_U64_FD);
	unsigned nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k =
		    (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned j = 0; j < k && j < VIO_VU_MAX_TABLE_REGIONS;
		     j++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof(fd));
			if (want_fd && m->nfds == 0)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
			nfds++;
		}
	}
	int r = reply_check(sock, req, i, name, config_size, n, nfds,
			    (mh.msg_flags & MSG_CTRUNC) != 0, m, why, whylen);
	if (r)
		vio_vu_close_fds(m);
	return r;
}

/* The rest of vio_vu_recv_reply: header bytes (n read so far), the fd
 * count (nfds arrived, ctrunc), the payload. */
static int reply_check(int sock, uint32_t req,
		       const struct vio_vu_request_info *i, const char *name,
		       uint32_t config_size, ssize_t n, unsigned nfds,
		       bool ctrunc, struct vio_vu_msg *m, char *why,
		       size_t whylen)
{
	bool want_fd = i && i->reply == VIO_VU_REPLY_INFLIGHT;
	bool may_fd = want_fd || (i && i->reply == VIO_VU_REPLY_U64_FD);
	if (ctrunc || nfds > (may_fd ? 1u : 0u))
		return WHY("%s: reply carries fds", name);
	if ((size_t)n < sizeof(m->hdr)) {
		int r = read_full(sock, (uint8_t *)&m->hdr + n,
				  sizeof(m->hdr) - (size_t)n);
		if (r)
			return WHY("%s: truncated reply header", name);
	}
	if (!i)
		return WHY("reply to unknown request %u", req);
	if (m->hdr.request != req)
		return WHY("%s: reply is for request %u (%s)", name,
			   m->hdr.request, vio_vu_request_name(m->hdr.request));
	if ((m->hdr.flags & VIO_VU_VERSION_MASK) != VIO_VU_VERSION)
		return WHY("%s: reply version %u", name,
			   m->hdr.flags & VIO_VU_VERSION_MASK);
	if (!(m->hdr.flags & VIO_VU_FLAG_REPLY))
		return WHY("%s: reply without the REPLY flag", name);
	uint32_t want;
	switch (i->reply) {
	case VIO_VU_REPLY_STATE:
		want = sizeof(struct vio_vu_state);
		break;
	case VIO_VU_REPLY_CONFIG:
		if (config_size > VIO_VU_CONFIG_MAX)
			return WHY("%s: config size %u", name, config_size);
		want = m->hdr.size == 0 ? 0 : 12 + config_size;
		break;
	case VIO_VU_REPLY_INFLIGHT:
		want = sizeof(struct vio_vu_inflight);
		break;
	default: /* u64 answers and REPLY_ACK */
		want = 8;
		break;
	}
	if (m->hdr.size != want)
		return WHY("%s: reply payload of %u bytes, expected %u", name,
			   m->hdr.size, want);
	memset(&m->p, 0, sizeof(m->p));
	if (want && read_full(sock, &m->p, want))
		return WHY("%s: truncated reply payload", name);
	if (want_fd && nfds != 1)
		return WHY("%s: reply without its fd", name);
	return 0;
}
