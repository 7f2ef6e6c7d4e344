/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the vhost-user backend's end of the backend channel
 * (backend_req.c, backend_chan.c): what a hostile frontend writes on it,
 * which the backend reads as acks of its CONFIG_CHANGE_MSGs before each
 * one it sends.  The input:
 *
 *   0      bit 0: REPLY_ACK negotiated (the backend asks for acks);
 *          bit 1: CONFIG not negotiated (the backend does not use the
 *          channel)
 *   1..    messages back to back, as fuzz_backend_req.c frames them: a
 *          12-byte header (request, flags, size; little-endian), then
 *          min(size, what is left) payload bytes, one sendmsg() each;
 *          bits 8-11 of flags attach that many eventfds, bit 13 runs
 *          the model's config_changed hook after the message (and
 *          it runs anyway once more than 64 messages are pending;
 *          with CONFIG not negotiated the input ends there).
 *
 * The channel is set up through the real handler
 * (vio_vu_backend_req_set: a Unix stream socket, made non-blocking) on a
 * zeroed struct vio_backend, on this thread, which makes it the control
 * thread: the hook sends and collects acks later, never waiting.  The
 * hook (vio_vu_backend_config_changed) runs after FZ_HOOK messages and
 * at the end, after the frontend's end is shut down for writing.
 *
 * Checks besides ASan/UBSan: the target models the rules (before each
 * send the backend reads what is pending: each must be whole, version 1,
 * at most 64 payload bytes, and an ack: CONFIG_CHANGE_MSG with REPLY,
 * 8 bytes, no fds; anything else, 64 messages at once, or EOF drops the
 * channel; else it sends CONFIG_CHANGE_MSG, NEED_REPLY with REPLY_ACK),
 * and what the frontend's end reads must be exactly those 12-byte
 * messages, then EOF once the channel is dropped or freed; no fd is left
 * open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/vhost-user/backend_chan.h"
#include "transport/vhost-user/backend_internal.h"
#include "util/log.h"

#define FZ_HOOK (1u << 13)
#define FZ_MAX_FDS 12u
#define FZ_IN_MAX (16u << 10)
#define FZ_FD_PROBE 64
#define FZ_DRAIN_MAX 64u /* backend_req.c's DRAIN_MAX */
#define FZ_MSG 12u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd_floor;

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_backend_ack: %s\n", what);
	__builtin_trap();
}

static uint64_t open_fds(void)
{
	uint64_t set = 0;
	for (int k = 0; k < FZ_FD_PROBE; k++)
		if (fcntl(fd_floor + k, F_GETFD) >= 0)
			set |= 1ull << k;
	return set;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vio_log_set_quiet(getenv("FZ_VERBOSE") == NULL);
	int probe = dup(0);
	if (probe < 0)
		probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fd_floor = probe;
	close(probe);
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* What the frontend's end read: every byte checked against the model's
 * messages as it arrives. */
struct seen {
	uint8_t want[FZ_MSG];
	unsigned nwant; /* messages the backend must have sent */
	size_t ngot;	/* bytes read */
	bool eof;
};

static void drain(int s, struct seen *e)
{
	uint8_t buf[256];
	while (!e->eof) {
		ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			for (ssize_t i = 0; i < n; i++, e->ngot++)
				if (e->ngot >= (size_t)e->nwant * FZ_MSG ||
				    buf[i] != e->want[e->ngot % FZ_MSG])
					fz_fail("the backend sent what the "
						"model does not expect");
			continue;
		}
		/* ECONNRESET: the other end closed with our bytes unread
		 * (once; then 0) */
		if (n == 0 || errno == ECONNRESET)
			e->eof = true;
		else if (errno != EINTR)
			return;
	}
}

/* One message from the frontend's end, whole; fds with its first byte. */
static void send_msg(int s, const uint8_t *buf, size_t len, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FZ_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	int fds[FZ_MAX_FDS];
	for (unsigned k = 0; k < nfds; k++) {
		fds[k] = eventfd(0, EFD_CLOEXEC);
		if (fds[k] < 0)
			fz_fail("eventfd");
	}
	size_t done = 0;
	while (done < len) {
		struct iovec iov = {(void *)(buf + done), len - done};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (nfds && done == 0) {
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		/* blocking: the input is small next to the socket buffer,
		 * and the backend reads nothing until the hook runs */
		ssize_t n = sendmsg(s, &mh, MSG_NOSIGNAL);
		if (n > 0)
			done += (size_t)n;
		else if (n < 0 && errno == EPIPE)
			break; /* the backend dropped the channel */
		else if (!(n < 0 && errno == EINTR))
			fz_fail("sendmsg");
	}
	for (unsigned k = 0; k < nfds; k++)
		close(fds[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t in_len)
{
	if (in_len > FZ_IN_MAX)
		in_len = FZ_IN_MAX;
	uint8_t mode = in_len ? in[0] : 0;
	bool ack = mode & 1, config = !(mode & 2);
	uint64_t fds_before = open_fds();
	static struct vio_backend b;
	memset(&b, 0, sizeof(b));
	vio_vu_backend_req_init(&b);
	b.protocol = 1ull << VIO_VU_PF_BACKEND_REQ;
	if (ack)
		b.protocol |= 1ull << VIO_VU_PF_REPLY_ACK;
	if (config)
		b.protocol |= 1ull << VIO_VU_PF_CONFIG;

	int sv[2]; /* 0: the frontend's end, 1: the backend's */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		fz_fail("socketpair");
	struct vio_vu_msg m;
	memset(&m, 0, sizeof(m));
	m.fds[0] = sv[1];
	m.nfds = 1;
	if (vio_vu_backend_req_set(&b, &m) || m.fds[0] != -1)
		fz_fail("SET_BACKEND_REQ_FD refused a socketpair");

	static struct seen e;
	memset(&e, 0, sizeof(e));
	uint32_t h[3] = {VIO_VU_BACKEND_CONFIG_CHANGE_MSG,
			 VIO_VU_VERSION | (ack ? VIO_VU_FLAG_NEED_REPLY : 0),
			 0};
	memcpy(e.want, h, sizeof(h));

	/* the model: the channel stands; messages pending; refused */
	bool up = true, bad = false;
	unsigned pending = 0;
	size_t off = 1;
	for (bool last = false; !last;) {
		bool hook = false;
		/* the backend reads nothing between hooks: keep what is
		 * pending within the socket's buffer (past DRAIN_MAX it is
		 * a flood anyway) */
		bool full = pending > FZ_DRAIN_MAX;
		if (off < in_len && !full) {
			const uint8_t *p = in + off;
			size_t left = in_len - off;
			uint32_t req = left >= 4 ? le32(p) : 0;
			uint32_t flags = left >= 8 ? le32(p + 4) : 0;
			uint32_t size = left >= 12 ? le32(p + 8) : 0;
			size_t len =
			    left < 12
				? left
				: 12 + (size < left - 12 ? size : left - 12);
			unsigned nfds = (flags >> 8) & 0xf;
			if (nfds > FZ_MAX_FDS)
				nfds = FZ_MAX_FDS;
			send_msg(sv[0], p, len, nfds);
			off += len;
			bool whole = left >= 12 && size <= left - 12;
			bool ok =
			    whole &&
			    (flags & VIO_VU_VERSION_MASK) == VIO_VU_VERSION &&
			    req == VIO_VU_BACKEND_CONFIG_CHANGE_MSG &&
			    (flags & VIO_VU_FLAG_REPLY) && size == 8 && !nfds;
			if (!bad && !ok)
				bad = pending < FZ_DRAIN_MAX;
			pending++;
			hook = flags & FZ_HOOK;
		} else if (full && config && up) {
			hook = true;
		} else {
			/* the end: the frontend shuts its end, the hook runs
			 * and reads EOF after what is pending */
			shutdown(sv[0], SHUT_WR);
			bad = bad || pending < FZ_DRAIN_MAX;
			pending++;
			hook = last = true;
		}
		if (!hook)
			continue;
		vio_vu_backend_config_changed(&b);
		if (up && config) {
			if (bad || pending >= FZ_DRAIN_MAX)
				up = false;
			else
				e.nwant++;
			pending = 0;
		}
		drain(sv[0], &e);
	}
	if (up && config)
		fz_fail("model: the channel stands after EOF");
	if (config && b.req_fd >= 0)
		fz_fail("the channel stands after EOF");
	vio_vu_backend_req_fini(&b);
	drain(sv[0], &e);
	if (!e.eof)
		fz_fail("no EOF after the channel was dropped");
	if (e.ngot != (size_t)e.nwant * FZ_MSG)
		fz_fail("fewer messages than the model expects");
	close(sv[0]);
	if (open_fds() != fds_before)
		fz_fail("an fd was left open");
	return 0;
}
