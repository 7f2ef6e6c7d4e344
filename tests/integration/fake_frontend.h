/* SPDX-License-Identifier: MIT */
/*
 * A minimal vhost-user frontend for backend tests: raw sendmsg with
 * SCM_RIGHTS, memfd memory, eventfds, and a blk device on a temporary
 * image served by the backend under test.  Messages are dispatched on the
 * test's thread (vio_backend_dispatch after each send).
 *
 * One test program includes it once: the state (paths, device) is the
 * program's.  fe_setup() creates it, fe_teardown() removes it.
 */
#ifndef VIO_TEST_FAKE_FRONTEND_H
#define VIO_TEST_FAKE_FRONTEND_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test.h"
#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/blk.h>
#include <vio/mem.h>
#include <vio/ring.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

/* every program uses a different subset */
#pragma GCC diagnostic ignored "-Wunused-function"

#define IMG_SIZE (1u << 20)
#define QSIZE 64
/* the memory region of the hostile preambles (not a real mapping in the
 * frontend: the backend only uses uaddr to translate ring addresses) */
#define PRE_GPA 0x100000ull
#define PRE_SIZE 0x100000ull
#define PRE_UADDR 0x7f0000000000ull

static char dir[256], sock_path[300], img_path[300];
static struct vio_blk_device *bd;
static struct vio_device *dev;

static int new_memfd(size_t size)
{
	int fd = memfd_create("vu-test", MFD_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, (off_t)size) == 0);
	return fd;
}

/* The write end of a pipe nobody reads; the read end stays open (in
 * pipe_rd, closed by the case) so writes would fill it, not fail. */
static int pipe_rd = -1;
static int new_pipe_end(void)
{
	int p[2];
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	if (pipe_rd >= 0)
		close(pipe_rd);
	pipe_rd = p[0];
	return p[1];
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	REQUIRE(fd >= 0);
	return fd;
}

/* ---- the minimal frontend ---- */

struct fmsg {
	struct vio_vu_hdr h;
	union vio_vu_payload p;
};

static int fe_connect(struct vio_backend *b)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(s >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	REQUIRE(strlen(sock_path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	REQUIRE(connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	REQUIRE(!vio_backend_connected(b));
	CHECK_EQ(vio_backend_dispatch(b), 0); /* accept */
	CHECK(vio_backend_connected(b));
	return s;
}

/* Send len bytes of (header, payload) with fds: one sendmsg. */
static void fe_send_raw(int s, const void *buf, size_t len, const int *fds,
			unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	REQUIRE(nfds <= 16);
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	REQUIRE(sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Send the first len bytes of header + payload (the wire has no padding
 * between them, struct fmsg does). */
static void fe_send_msg(int s, const struct fmsg *m, size_t len, const int *fds,
			unsigned nfds)
{
	uint8_t buf[12 + sizeof(union vio_vu_payload)];
	memcpy(buf, &m->h, 12);
	memcpy(buf + 12, &m->p, sizeof(m->p));
	if (len > sizeof(buf))
		len = sizeof(buf); /* the rest is never read */
	fe_send_raw(s, buf, len, fds, nfds);
}

/* Send a message (12 + h.size bytes) and let the backend handle it. */
static int fe_msg(struct vio_backend *b, int s, const struct fmsg *m,
		  const int *fds, unsigned nfds)
{
	fe_send_msg(s, m, 12 + m->h.size, fds, nfds);
	return vio_backend_dispatch(b);
}

/* Read one reply to req: header checked, payload of want bytes. */
static bool fe_reply(int s, uint32_t req, void *payload, uint32_t want)
{
	struct vio_vu_hdr h;
	ssize_t n = recv(s, &h, sizeof(h), MSG_WAITALL);
	if (n != (ssize_t)sizeof(h)) {
		fprintf(stderr, "reply to %s: recv %zd\n",
			vio_vu_request_name(req), n);
		return false;
	}
	CHECK_EQ(h.request, req);
	CHECK_EQ(h.flags, VIO_VU_VERSION | VIO_VU_FLAG_REPLY);
	CHECK_EQ(h.size, want);
	if (h.size != want || h.request != req)
		return false;
	return want == 0 ||
	       recv(s, payload, want, MSG_WAITALL) == (ssize_t)want;
}

static struct fmsg mk(uint32_t req, uint32_t size)
{
	struct fmsg m;
	memset(&m, 0, sizeof(m));
	m.h.request = req;
	m.h.flags = VIO_VU_VERSION;
	m.h.size = size;
	return m;
}

/* A request with a u64 reply. */
static bool fe_get_u64(struct vio_backend *b, int s, uint32_t req, uint64_t *v)
{
	struct fmsg m = mk(req, 0);
	if (fe_msg(b, s, &m, NULL, 0))
		return false;
	return fe_reply(s, req, v, 8);
}

static int fe_set_u64(struct vio_backend *b, int s, uint32_t req, uint64_t v)
{
	struct fmsg m = mk(req, 8);
	m.p.u64 = v;
	return fe_msg(b, s, &m, NULL, 0);
}

static int fe_state(struct vio_backend *b, int s, uint32_t req, uint32_t idx,
		    uint32_t num)
{
	struct fmsg m = mk(req, 8);
	m.p.state.index = idx;
	m.p.state.num = num;
	return fe_msg(b, s, &m, NULL, 0);
}

/* vring fd message; fd < 0 sends NOFD */
static int fe_vring_fd(struct vio_backend *b, int s, uint32_t req, uint32_t idx,
		       int fd)
{
	struct fmsg m = mk(req, 8);
	m.p.u64 = idx | (fd < 0 ? VIO_VU_VRING_NOFD : 0);
	return fe_msg(b, s, &m, &fd, fd < 0 ? 0 : 1);
}

/* The peer has closed: EOF, or ECONNRESET when it closed with bytes of
 * ours unread (AF_UNIX does that); never data. */
static bool fe_eof(int s)
{
	char c;
	ssize_t n = recv(s, &c, 1, 0);
	if (n < 0 && errno == ECONNRESET)
		return true;
	if (n != 0)
		fprintf(stderr, "expected EOF, recv %zd (%s)\n", n,
			n < 0 ? strerror(errno) : "data");
	return n == 0;
}

static uint64_t offered_features(struct vio_backend *b, int s)
{
	uint64_t f = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_FEATURES, &f));
	CHECK(f & (1ull << VIRTIO_F_VERSION_1));
	CHECK(f & (1ull << VIO_VU_F_PROTOCOL_FEATURES));
	return f;
}

/* A working connection: GET_FEATURES round trip, then a clean close. */
static bool fresh_connection_works(struct vio_backend *b)
{
	int s = fe_connect(b);
	uint64_t f = 0;
	bool ok = fe_get_u64(b, s, VIO_VU_GET_FEATURES, &f) &&
		  (f & (1ull << VIRTIO_F_VERSION_1));
	close(s);
	CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);
	CHECK(!vio_backend_connected(b));
	return ok;
}

static struct vio_backend *backend_up(bool workers)
{
	struct vio_backend_opts c = {0};
	if (workers)
		vio_run_backend_hooks(&c, false);
	c.max_mem_slots = 4;
	struct vio_backend *b = vio_backend_new(dev, &c);
	REQUIRE(b);
	int r = vio_backend_listen(b, sock_path);
	if (r)
		fprintf(stderr, "listen %s: %s\n", sock_path, strerror(-r));
	REQUIRE(r == 0);
	return b;
}

/* Run fn with fd 2 going to a memfd; returns what was written. */
struct capture {
	int saved, fd;
	char text[4096];
};

static void capture_start(struct capture *c)
{
	fflush(stderr);
	c->fd = new_memfd(0);
	c->saved = dup(2);
	REQUIRE(c->saved >= 0);
	REQUIRE(dup2(c->fd, 2) == 2);
}

static void capture_end(struct capture *c)
{
	fflush(stderr);
	REQUIRE(dup2(c->saved, 2) == 2);
	close(c->saved);
	ssize_t n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
	c->text[n > 0 ? n : 0] = 0;
	close(c->fd);
}

static void kick_notify(struct vio_vq *vq, void *opaque)
{
	int fd = *(int *)opaque;
	uint64_t one = 1;
	(void)vq;
	CHECK(write(fd, &one, sizeof(one)) == sizeof(one));
}

/* Wait (up to 5 s) for the device to return the chain of token. */
static bool wait_used(struct vio_vq *vq, int call, void *token, uint32_t *len)
{
	uint64_t deadline = vio_now_ns() + 5000000000ull;
	while (vio_now_ns() < deadline) {
		void *t = vio_vq_get(vq, len);
		if (t) {
			CHECK(t == token);
			return t == token;
		}
		struct pollfd p = {call, POLLIN, 0};
		if (poll(&p, 1, 100) == 1) {
			uint64_t v;
			CHECK(read(call, &v, sizeof(v)) == sizeof(v));
		}
	}
	fprintf(stderr, "no used buffer within 5 s (%s)\n", vio_vq_error(vq));
	return false;
}

/* One blk request: header, data (out or in), status. */
static uint8_t blk_rq(struct vio_vq *vq, int call, struct vio_mem *mem,
		      uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	uint64_t da;
	struct virtio_blk_outhdr *h = vio_mem_alloc(mem, sizeof(*h), 16, &da);
	uint8_t *status = vio_mem_alloc(mem, 1, 1, &da);
	REQUIRE(h && status);
	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*status = 0xff;
	bool out = type == VIRTIO_BLK_T_OUT;
	struct vio_sg sg[3] = {{h, sizeof(*h)}, {data, len}, {status, 1}};
	int r = vio_vq_add(vq, sg, out ? 2 : 1, out ? 1 : 2, h);
	CHECK_EQ(r, 0);
	vio_vq_kick(vq);
	uint32_t used = 0;
	uint8_t st = 0xee;
	if (!r && wait_used(vq, call, h, &used)) {
		CHECK_EQ(used, out ? 1 : len + 1);
		st = *status;
	}
	vio_mem_release(mem, h);
	vio_mem_release(mem, status);
	return st;
}

static void send_mem_table(struct vio_backend *b, int s, struct vio_mem *mem)
{
	unsigned n = vio_mem_region_count(mem);
	REQUIRE(n >= 1 && n <= VIO_VU_MAX_TABLE_REGIONS);
	struct fmsg m = mk(VIO_VU_SET_MEM_TABLE, 8 + 32 * n);
	m.h.flags |= VIO_VU_FLAG_NEED_REPLY;
	m.p.mem.nregions = n;
	int fds[VIO_VU_MAX_TABLE_REGIONS];
	for (unsigned i = 0; i < n; i++) {
		const struct vio_region *r = vio_mem_region(mem, i);
		m.p.mem.r[i] = (struct vio_vu_region){
		    r->addr, r->size, (uint64_t)(uintptr_t)r->ptr, r->offset};
		fds[i] = r->fd;
	}
	CHECK_EQ(fe_msg(b, s, &m, fds, n), 0);
	uint64_t ack = 1;
	CHECK(fe_reply(s, VIO_VU_SET_MEM_TABLE, &ack, 8));
	CHECK(ack == 0);
}

/* The blk device on a temporary image, and the socket path. */
static void fe_setup(const char *name)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vio-%s-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp", name);
	REQUIRE(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	snprintf(img_path, sizeof(img_path), "%s/img", dir);

	struct vio_blk_device_opts c = {
	    .path = img_path,
	    .size = IMG_SIZE,
	    .queue_size = QSIZE,
	    .serial = "vu-backend-test",
	};
	char err[256];
	bd = vio_blk_device_new(&c, err, sizeof(err));
	if (!bd)
		fprintf(stderr, "vio_blk_device_new: %s\n", err);
	REQUIRE(bd);
	dev = vio_blk_device_dev(bd);
}

static void fe_teardown(void)
{
	vio_blk_device_free(bd);
	unlink(img_path);
	CHECK(access(sock_path, F_OK) != 0); /* the backend removed it */
	rmdir(dir);
}

#endif
