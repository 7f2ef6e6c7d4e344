/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the vhost-user frontend's end of the backend channel
 * (frontend_req.c, backend_chan.c): what a hostile backend writes on the
 * socketpair SET_BACKEND_REQ_FD gave it.  The input is that byte stream:
 * messages back to back, each a 12-byte header (request, flags, size;
 * little-endian) and then min(size, what is left) payload bytes, each
 * message sent with one sendmsg() on the backend's end.
 *
 * The frontend is a zeroed struct vio_frontend with only its channel set
 * up (vio_fe_req_init, req_fd = our end, non-blocking, as
 * vio_fe_req_setup_locked leaves it) and a vdev bound to a driver whose
 * config_changed counts; it is served through the public entry
 * vio_frontend_serve_backend(), whenever the backend's end would block,
 * after a message with FZ_SERVE, and at the end, after the backend's end
 * is shut down for writing (so a message cut short by the end of the
 * input reads as EOF, not as a wait).
 *
 * File descriptors cannot be in the bytes: bits 8-11 of a header's flags
 * (reserved by the protocol, ignored by the frontend) attach that many
 * eventfds (more than the frontend's control buffer holds: truncated).
 * Bit 13 (FZ_SERVE) serves the channel after the message is sent.
 *
 * Checks besides ASan/UBSan: the target models the channel's rules (a
 * message is refused, and the channel dropped, for a bad version, a
 * payload over VIO_VU_CHAN_PAYLOAD_MAX, a header or payload cut short,
 * the REPLY flag, or fds; else CONFIG_CHANGE_MSG without payload runs
 * config_changed and is answered 0, anything else is answered 1, only
 * with NEED_REPLY), and the replies read on the backend's end must be
 * exactly the model's: 20 bytes each (request, VERSION | REPLY, 8, the
 * u64 status), in order, then EOF once the channel is dropped.  The
 * driver's config_changed ran exactly once per change served; the
 * channel is closed at the end (vio_frontend_backend_fd() is -1) and no
 * fd is left open.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "transport/vhost-user/backend_chan.h"
#include "transport/vhost-user/frontend_internal.h"
#include "util/log.h"
#include <vio/driver.h>
#include <vio/mem.h>

#define FZ_SERVE (1u << 13)
#define FZ_MAX_FDS 12u
#define FZ_IN_MAX (64u << 10) /* input bytes used */
#define FZ_FD_PROBE 64
#define FZ_REPLY 20u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd_floor;
static bool verbose;
static unsigned changes; /* config_changed calls */
static struct vio_mem *mem;

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_backend_req: %s\n", what);
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

static void count_change(struct vio_drvdev *vdev)
{
	(void)vdev;
	changes++;
}

static const struct vio_driver drv = {.name = "fuzz",
				      .config_changed = count_change};
static const struct vio_transport_ops no_ops;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("FZ_VERBOSE") != NULL;
	vio_log_set_quiet(!verbose);
	mem = vio_mem_new();
	if (!mem)
		fz_fail("vio_mem_new");
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

/* The replies the model expects, and what came back so far. */
struct expect {
	uint8_t want[FZ_IN_MAX / 12 * FZ_REPLY];
	size_t nwant;
	uint8_t got[FZ_IN_MAX / 12 * FZ_REPLY + 64];
	size_t ngot;
	bool eof;
};

static void want_reply(struct expect *e, uint32_t req, uint64_t status)
{
	uint8_t *p = e->want + e->nwant;
	uint32_t h[3] = {req, VIO_VU_VERSION | VIO_VU_FLAG_REPLY, 8};
	memcpy(p, h, sizeof(h)); /* native = little-endian here */
	memcpy(p + 12, &status, 8);
	e->nwant += FZ_REPLY;
}

/* Read what the frontend sent on the channel, without waiting. */
static void drain(int s, struct expect *e)
{
	while (!e->eof) {
		if (e->ngot >= sizeof(e->got))
			fz_fail("more reply bytes than any input can cause");
		ssize_t n = recv(s, e->got + e->ngot, sizeof(e->got) - e->ngot,
				 MSG_DONTWAIT);
		if (n > 0) {
			e->ngot += (size_t)n;
			if (e->ngot > e->nwant ||
			    memcmp(e->got, e->want, e->ngot))
				fz_fail("a reply the model does not expect");
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

/* Serve the channel until it has nothing (or is gone). */
static void serve(struct vio_frontend *f, int s, struct expect *e)
{
	for (unsigned i = 0; i < 4096; i++) {
		if (vio_frontend_backend_fd(f) < 0)
			break;
		int r = vio_frontend_serve_backend(f);
		drain(s, e);
		if (r <= 0)
			break;
	}
	drain(s, e);
}

/* One message (or the input's tail) from the backend's end; fds go
 * with its first byte.  Serves the channel whenever it would block. */
static void send_msg(struct vio_frontend *f, int s, struct expect *e,
		     const uint8_t *buf, size_t len, unsigned nfds)
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
	for (unsigned tries = 0; done < len; tries++) {
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
		ssize_t n = sendmsg(s, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPIPE)
			break; /* the frontend dropped the channel */
		if (n < 0 && errno != EAGAIN)
			fz_fail("sendmsg");
		if (tries > 1000)
			fz_fail("the frontend does not read its channel");
		serve(f, s, e);
	}
	for (unsigned k = 0; k < nfds; k++)
		close(fds[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t in_len)
{
	if (in_len > FZ_IN_MAX)
		in_len = FZ_IN_MAX;
	static struct expect e;
	memset(&e, 0, sizeof(e));
	static struct vio_frontend f;
	memset(&f, 0, sizeof(f));
	uint64_t fds_before = open_fds();
	changes = 0;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		fz_fail("socketpair");
	int fl = fcntl(sv[0], F_GETFL);
	if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK))
		fz_fail("fcntl");
	vio_fe_req_init(&f);
	f.req_fd = sv[0];
	f.vdev = vio_drvdev_new(&no_ops, NULL, mem);
	if (!f.vdev)
		fz_fail("vio_drvdev_new");
	vio_drvdev_bind(f.vdev, &drv);

	/* the model: does the channel still stand, and what is owed */
	bool up = true;
	unsigned want_changes = 0;
	size_t off = 0;
	while (off < in_len) {
		const uint8_t *h = in + off;
		size_t left = in_len - off;
		uint32_t req = left >= 4 ? le32(h) : 0;
		uint32_t flags = left >= 8 ? le32(h + 4) : 0;
		uint32_t size = left >= 12 ? le32(h + 8) : 0;
		size_t len = left < 12
				 ? left
				 : 12 + (size < left - 12 ? size : left - 12);
		unsigned nfds = left >= 8 ? (flags >> 8) & 0xf : 0;
		if (nfds > FZ_MAX_FDS)
			nfds = FZ_MAX_FDS;
		send_msg(&f, sv[1], &e, h, len, nfds);
		off += len;
		if (up) {
			bool whole = left >= 12 && size <= left - 12;
			if (!whole ||
			    (flags & VIO_VU_VERSION_MASK) != VIO_VU_VERSION ||
			    size > VIO_VU_CHAN_PAYLOAD_MAX ||
			    (flags & VIO_VU_FLAG_REPLY) || nfds) {
				up = false;
			} else {
				bool change =
				    req == VIO_VU_BACKEND_CONFIG_CHANGE_MSG &&
				    size == 0;
				want_changes += change;
				if (flags & VIO_VU_FLAG_NEED_REPLY)
					want_reply(&e, req, change ? 0 : 1);
			}
		}
		if (left >= 8 && (flags & FZ_SERVE))
			serve(&f, sv[1], &e);
	}
	shutdown(sv[1], SHUT_WR);
	serve(&f, sv[1], &e);
	if (vio_frontend_backend_fd(&f) >= 0)
		fz_fail("the channel stands after EOF");
	/* our end sees EOF once the frontend closed its end */
	struct pollfd p = {.fd = sv[1], .events = POLLIN};
	if (poll(&p, 1, 1000) != 1)
		fz_fail("no EOF after the channel was dropped");
	drain(sv[1], &e);
	if (!e.eof)
		fz_fail("no EOF after the channel was dropped");
	if (e.ngot != e.nwant)
		fz_fail("fewer replies than the model expects");
	if (changes != want_changes)
		fz_fail("config_changed ran a different number of times");
	if (verbose)
		fprintf(stderr, "fuzz_backend_req: %zu replies, %u changes\n",
			e.nwant / FZ_REPLY, changes);

	vio_drvdev_free(f.vdev);
	vio_fe_req_fini(&f);
	close(sv[1]);
	if (open_fds() != fds_before)
		fz_fail("an fd was left open");
	return 0;
}
