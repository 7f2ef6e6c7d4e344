/* SPDX-License-Identifier: MIT */
/*
 * A frontend that truncates its guest memory under a running vhost-user
 * backend (issue 7, item 1).
 *
 * Two backends, each serving a virtio-blk device on a temporary image with
 * queue workers (vio/run.h), in this process, with the SIGBUS guard
 * installed as `vio serve` does.  The frontends are written here: raw
 * vhost-user messages, a split ring built by hand in an *unsealed* memfd
 * (as memory-backend-file gives), eventfds.
 *
 * - Frontend B connects and does a write + read round trip; it stays
 *   connected throughout.
 * - Frontend A connects, does a round trip, then puts 16 reads in flight,
 *   kicks, truncates its memfd to 0 and kicks again.  The worker (and
 *   whatever thread completes the I/O) faults on the truncated memory.
 *   Expected: the process lives; A's socket reaches EOF (the backend shut
 *   it down); A's next dispatch returns -ECONNRESET with a log line saying
 *   the frontend truncated its memory; B's connection still works (another
 *   round trip); a new connection to A (memfd sealed against shrinking,
 *   as QEMU's) works.  fds are all back at the end.
 *
 * Without the guard the process dies by SIGBUS at the truncation.
 * A watchdog (alarm) bounds the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include <vio/run.h>
#include <vio/vhost_user.h>

#define IMG_SIZE (1u << 20)
#define QSIZE 64u
#define NREQ 16u /* at most QSIZE / 3 chains of 3 */
#define MEM_SIZE 0x100000u
#define MEM_GPA 0x40000000ull
/* the layout of the frontend's memory */
#define OFF_DESC 0x0000u
#define OFF_AVAIL 0x1000u
#define OFF_USED 0x2000u
#define OFF_HDR 0x3000u	   /* + 16 * request */
#define OFF_STATUS 0x4000u /* + request */
#define OFF_DATA 0x10000u  /* + 4096 * request */

static char dir[256];

struct fmsg {
	struct vio_vu_hdr h;
	union vio_vu_payload p;
};

/* One hand-written frontend: its socket, memory and ring. */
struct fe {
	struct vio_backend *b;
	int s, memfd, kick, call;
	uint8_t *mem;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx, used_idx;
};

/* One backend and its device. */
struct side {
	char sock[300], img[300];
	struct vio_blk_device *bd;
	struct vio_backend *b;
};

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_vu_sigbus: watchdog: timed out\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* ---- messages (the wire has no padding between header and payload) ---- */

static struct fmsg mk(uint32_t req, uint32_t size)
{
	struct fmsg m;
	memset(&m, 0, sizeof(m));
	m.h.request = req;
	m.h.flags = VIO_VU_VERSION;
	m.h.size = size;
	return m;
}

static void send_msg(int s, const struct fmsg *m, const int *fds, unsigned nfds)
{
	uint8_t buf[12 + sizeof(union vio_vu_payload)];
	memcpy(buf, &m->h, 12);
	memcpy(buf + 12, &m->p, sizeof(m->p));
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {buf, 12 + (size_t)m->h.size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	REQUIRE(nfds <= 8 && iov.iov_len <= sizeof(buf));
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
	REQUIRE(sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)iov.iov_len);
}

/* Send, let the backend handle it (on this thread). */
static int fe_msg(struct fe *f, const struct fmsg *m, const int *fds,
		  unsigned nfds)
{
	send_msg(f->s, m, fds, nfds);
	return vio_backend_dispatch(f->b);
}

static bool fe_reply(struct fe *f, uint32_t req, void *payload, uint32_t want)
{
	struct vio_vu_hdr h;
	if (recv(f->s, &h, sizeof(h), MSG_WAITALL) != (ssize_t)sizeof(h))
		return false;
	CHECK_EQ(h.request, req);
	CHECK_EQ(h.size, want);
	if (h.request != req || h.size != want)
		return false;
	return want == 0 ||
	       recv(f->s, payload, want, MSG_WAITALL) == (ssize_t)want;
}

static uint64_t fe_get_u64(struct fe *f, uint32_t req)
{
	struct fmsg m = mk(req, 0);
	uint64_t v = 0;
	CHECK_EQ(fe_msg(f, &m, NULL, 0), 0);
	CHECK(fe_reply(f, req, &v, 8));
	return v;
}

static void fe_u64(struct fe *f, uint32_t req, uint64_t v)
{
	struct fmsg m = mk(req, 8);
	m.p.u64 = v;
	CHECK_EQ(fe_msg(f, &m, NULL, 0), 0);
}

static void fe_state(struct fe *f, uint32_t req, uint32_t num)
{
	struct fmsg m = mk(req, 8);
	m.p.state.index = 0;
	m.p.state.num = num;
	CHECK_EQ(fe_msg(f, &m, NULL, 0), 0);
}

static void fe_vring_fd(struct fe *f, uint32_t req, int fd)
{
	struct fmsg m = mk(req, 8);
	m.p.u64 = 0;
	CHECK_EQ(fe_msg(f, &m, &fd, 1), 0);
}

/* ---- a frontend ---- */

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	REQUIRE(fd >= 0);
	return fd;
}

/*
 * Connect to side s and set up queue 0 on a memfd of MEM_SIZE bytes,
 * sealed against shrinking or not.
 */
static void fe_up(struct fe *f, struct side *sd, bool sealed)
{
	memset(f, 0, sizeof(*f));
	f->b = sd->b;
	f->s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(f->s >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	REQUIRE(strlen(sd->sock) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, sd->sock);
	REQUIRE(connect(f->s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(f->s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	CHECK_EQ(vio_backend_dispatch(f->b), 0); /* accept */
	REQUIRE(vio_backend_connected(f->b));

	f->memfd = memfd_create("vu-sigbus", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	REQUIRE(f->memfd >= 0);
	REQUIRE(ftruncate(f->memfd, MEM_SIZE) == 0);
	if (sealed)
		REQUIRE(fcntl(f->memfd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      f->memfd, 0);
	REQUIRE(f->mem != MAP_FAILED);
	f->desc = (struct vring_desc *)(f->mem + OFF_DESC);
	f->avail = (struct vring_avail *)(f->mem + OFF_AVAIL);
	f->used = (struct vring_used *)(f->mem + OFF_USED);
	f->kick = new_eventfd();
	f->call = new_eventfd();

	uint64_t feat = fe_get_u64(f, VIO_VU_GET_FEATURES);
	REQUIRE(feat & (1ull << VIRTIO_F_VERSION_1));
	uint64_t pf = fe_get_u64(f, VIO_VU_GET_PROTOCOL_FEATURES);
	fe_u64(f, VIO_VU_SET_PROTOCOL_FEATURES, pf);
	struct fmsg m = mk(VIO_VU_SET_OWNER, 0);
	CHECK_EQ(fe_msg(f, &m, NULL, 0), 0);
	fe_u64(f, VIO_VU_SET_FEATURES,
	       1ull << VIRTIO_F_VERSION_1 | 1ull << VIO_VU_F_PROTOCOL_FEATURES);

	m = mk(VIO_VU_SET_MEM_TABLE, 8 + 32);
	m.h.flags |= VIO_VU_FLAG_NEED_REPLY;
	m.p.mem.nregions = 1;
	m.p.mem.r[0] = (struct vio_vu_region){MEM_GPA, MEM_SIZE,
					      (uint64_t)(uintptr_t)f->mem, 0};
	CHECK_EQ(fe_msg(f, &m, &f->memfd, 1), 0);
	uint64_t ack = 1;
	CHECK(fe_reply(f, VIO_VU_SET_MEM_TABLE, &ack, 8));
	CHECK_EQ(ack, 0);

	fe_state(f, VIO_VU_SET_VRING_NUM, QSIZE);
	fe_state(f, VIO_VU_SET_VRING_BASE, 0);
	m = mk(VIO_VU_SET_VRING_ADDR, 40);
	m.p.addr.index = 0;
	m.p.addr.desc = (uintptr_t)f->desc;
	m.p.addr.avail = (uintptr_t)f->avail;
	m.p.addr.used = (uintptr_t)f->used;
	CHECK_EQ(fe_msg(f, &m, NULL, 0), 0);
	fe_vring_fd(f, VIO_VU_SET_VRING_CALL, f->call);
	fe_vring_fd(f, VIO_VU_SET_VRING_KICK, f->kick);
	fe_state(f, VIO_VU_SET_VRING_ENABLE, 1);
	if (pf & (1ull << VIO_VU_PF_STATUS))
		fe_u64(f, VIO_VU_SET_STATUS,
		       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			   VIRTIO_CONFIG_S_FEATURES_OK |
			   VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Everything the frontend holds (the backend's end is ended already). */
static void fe_close(struct fe *f)
{
	if (f->mem)
		munmap(f->mem, MEM_SIZE);
	close(f->memfd);
	close(f->kick);
	close(f->call);
	close(f->s);
}

/* Put request i on the ring (not yet published): one sector at sector. */
static void fe_add(struct fe *f, unsigned i, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr *h =
	    (struct virtio_blk_outhdr *)(f->mem + OFF_HDR + 16 * i);
	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	f->mem[OFF_STATUS + i] = 0xff;
	bool out = type == VIRTIO_BLK_T_OUT;
	uint16_t d = (uint16_t)(3 * i);
	f->desc[d] = (struct vring_desc){MEM_GPA + OFF_HDR + 16 * i, 16,
					 VRING_DESC_F_NEXT, (uint16_t)(d + 1)};
	f->desc[d + 1] = (struct vring_desc){
	    MEM_GPA + OFF_DATA + 4096ull * i, 512,
	    (uint16_t)(VRING_DESC_F_NEXT | (out ? 0 : VRING_DESC_F_WRITE)),
	    (uint16_t)(d + 2)};
	f->desc[d + 2] = (struct vring_desc){MEM_GPA + OFF_STATUS + i, 1,
					     VRING_DESC_F_WRITE, 0};
	f->avail->ring[f->avail_idx % QSIZE] = d;
	f->avail_idx++;
}

static void fe_kick(struct fe *f)
{
	__atomic_store_n(&f->avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	uint64_t one = 1;
	CHECK(write(f->kick, &one, sizeof(one)) == sizeof(one));
}

/* Wait (5 s at most) until every request put on the ring is used. */
static bool fe_wait_used(struct fe *f)
{
	uint64_t deadline = vio_now_ns() + 5000000000ull;
	while (__atomic_load_n(&f->used->idx, __ATOMIC_ACQUIRE) !=
	       f->avail_idx) {
		if (vio_now_ns() > deadline) {
			fprintf(stderr, "no used buffers within 5 s\n");
			return false;
		}
		struct pollfd p = {f->call, POLLIN, 0};
		if (poll(&p, 1, 100) == 1) {
			uint64_t v;
			CHECK(read(f->call, &v, sizeof(v)) == sizeof(v));
		}
	}
	f->used_idx = f->avail_idx;
	return true;
}

/* Write a random sector, read it back: the connection works. */
static bool fe_round_trip(struct fe *f, uint64_t *seed)
{
	uint64_t sector = test_rand(seed) % (IMG_SIZE / 512);
	uint8_t want[512];
	test_fill_random(want, sizeof(want), seed);
	memcpy(f->mem + OFF_DATA, want, sizeof(want));
	fe_add(f, 0, VIRTIO_BLK_T_OUT, sector);
	fe_kick(f);
	if (!fe_wait_used(f) || f->mem[OFF_STATUS] != VIRTIO_BLK_S_OK)
		return false;
	memset(f->mem + OFF_DATA + 4096, 0, 512);
	fe_add(f, 1, VIRTIO_BLK_T_IN, sector);
	fe_kick(f);
	if (!fe_wait_used(f) || f->mem[OFF_STATUS + 1] != VIRTIO_BLK_S_OK)
		return false;
	return memcmp(f->mem + OFF_DATA + 4096, want, sizeof(want)) == 0;
}

/* The backend ended the connection: EOF (or a reset) within 10 s. */
static bool fe_wait_eof(struct fe *f)
{
	uint64_t deadline = vio_now_ns() + 10000000000ull;
	while (vio_now_ns() < deadline) {
		struct pollfd p = {f->s, POLLIN | POLLRDHUP, 0};
		if (poll(&p, 1, 100) != 1)
			continue;
		char c;
		ssize_t n = recv(f->s, &c, 1, MSG_DONTWAIT);
		return n == 0 || (n < 0 && errno == ECONNRESET);
	}
	fprintf(stderr, "the backend did not end the connection in 10 s\n");
	return false;
}

/* ---- the backends ---- */

static void side_up(struct side *sd, const char *name)
{
	snprintf(sd->sock, sizeof(sd->sock), "%s/%s.sock", dir, name);
	snprintf(sd->img, sizeof(sd->img), "%s/%s.img", dir, name);
	struct vio_blk_device_opts c = {
	    .path = sd->img,
	    .size = IMG_SIZE,
	    .queue_size = QSIZE,
	    .name = name,
	};
	char err[256];
	sd->bd = vio_blk_device_new(&c, err, sizeof(err));
	if (!sd->bd)
		fprintf(stderr, "vio_blk_device_new: %s\n", err);
	REQUIRE(sd->bd);
	struct vio_backend_opts bc = {0};
	vio_run_backend_hooks(&bc, false);
	sd->b = vio_backend_new(vio_blk_device_dev(sd->bd), &bc);
	REQUIRE(sd->b);
	REQUIRE(vio_backend_listen(sd->b, sd->sock) == 0);
}

static void side_down(struct side *sd)
{
	vio_backend_free(sd->b);
	vio_blk_device_free(sd->bd);
	unlink(sd->img);
}

/* fd 2 into a memfd for a while */
struct capture {
	int saved, fd;
	char text[8192];
};

static void capture_start(struct capture *c)
{
	fflush(stderr);
	c->fd = memfd_create("log", MFD_CLOEXEC);
	REQUIRE(c->fd >= 0);
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
	fputs(c->text, stderr);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, watchdog);
	alarm(50);
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vio-sigbus-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(dir));
	uint64_t seed = test_seed();

	/* what `vio serve` does */
	REQUIRE(vio_mem_sigbus_guard_install() == 0);

	struct side a, bside;
	side_up(&a, "a");
	side_up(&bside, "b");
	int fds_before = test_count_fds();

	struct fe fb, fa;
	fe_up(&fb, &bside, false);
	CHECK(fe_round_trip(&fb, &seed));
	fe_up(&fa, &a, false);
	CHECK(fe_round_trip(&fa, &seed));

	/* requests in flight, then the memory file shrinks to nothing */
	for (unsigned i = 0; i < NREQ; i++)
		fe_add(&fa, i, VIRTIO_BLK_T_IN, i);
	fe_kick(&fa);
	REQUIRE(ftruncate(fa.memfd, 0) == 0);
	/* (this frontend's own mapping faults now: never touch it again) */
	munmap(fa.mem, MEM_SIZE);
	fa.mem = NULL;
	uint64_t one = 1;
	CHECK(write(fa.kick, &one, sizeof(one)) == sizeof(one));

	CHECK(fe_wait_eof(&fa));
	struct capture cap;
	capture_start(&cap);
	int r = vio_backend_dispatch(a.b);
	capture_end(&cap);
	CHECK_EQ(r, -ECONNRESET);
	CHECK(!vio_backend_connected(a.b));
	CHECK(strstr(cap.text, "truncated") != NULL);
	fe_close(&fa);

	/* the other connection never noticed */
	CHECK(vio_backend_connected(bside.b));
	CHECK(fe_round_trip(&fb, &seed));

	/* and the backend serves the next frontend: sealed memory this time
	 * (QEMU's memfds), which cannot shrink at all */
	fe_up(&fa, &a, true);
	CHECK(ftruncate(fa.memfd, 0) < 0 && errno == EPERM);
	CHECK(fe_round_trip(&fa, &seed));
	CHECK(fe_round_trip(&fb, &seed));

	fe_close(&fa);
	CHECK_EQ(vio_backend_dispatch(a.b), -ECONNRESET);
	fe_close(&fb);
	CHECK_EQ(vio_backend_dispatch(bside.b), -ECONNRESET);
	CHECK_EQ(test_count_fds(), fds_before);

	side_down(&a);
	side_down(&bside);
	rmdir(dir);
	return test_result("vu_sigbus");
}
