/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the vhost-user backend (device side) reading a hostile
 * frontend's message stream.  The input is the byte stream a frontend
 * writes on the socket: messages back to back, each a 12-byte header
 * (request, flags, size; little-endian) and `size` payload bytes.
 *
 * Each input gets a fresh virtio-blk device (on a small image) and a
 * fresh backend listening on a Unix socket; the target connects as the
 * frontend and sends the input one message per sendmsg(), framed by the
 * header's size (the last message may be cut short by the end of the
 * input: the target then shuts its side down, so the backend reads EOF
 * mid-message).  After each message the backend dispatches once, its
 * replies are drained, and every queue is kicked (as a worker would).
 * The stream ends when the input does or the backend ends the connection.
 *
 * File descriptors cannot be in the bytes, so the target attaches them:
 * bits 8-11 of a header's flags (reserved by the protocol, ignored by the
 * backend) say how many: 0 means as many as the request's row in the
 * codec table wants (one per region for SET_MEM_TABLE, one unless NOFD
 * for the vring fds, ...), n > 0 means n - 1.  They are a 2 MiB memfd for
 * the memory requests and an eventfd otherwise (bit 12 swaps the two).
 *
 * One pseudo-request is the target's own: FZ_POKE (0x7fff0001, never
 * sent) writes its payload after a u32 offset into the memfd (at offset
 * modulo its size, clipped), which lets an input lay out rings and
 * virtio-blk requests in the memory it shares, so the kicks reach the
 * device's request parser through rings the backend set up.
 *
 * Every message is also run through the codec directly (vio_vu_check,
 * vio_vu_payload_size, vio_vu_request_name) with the fd count attached.
 *
 * Checks besides ASan/UBSan: the backend only ever returns 0 or
 * -ECONNRESET from dispatch; after the connection ends the device is
 * reset (status 0, no live queue); and no fd is left open: every fd the
 * backend received was closed (the lowest free fd numbers are probed).
 */
#include <errno.h>
#include <fcntl.h>
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

#include "transport/vhost-user/msg.h"
#include "util/log.h"
#include <vio/blk.h>
#include <vio/vhost_user.h>

#define FZ_MEM_SIZE (2u << 20)
#define FZ_IMG_SIZE (64u << 10)
#define FZ_FD_PROBE 64 /* fd numbers checked for leaks after each input */
#define FZ_POKE 0x7fff0001u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], sock_path[96], img_path[96];
static int fd_floor; /* lowest fd number free at start */

/* Which of the FZ_FD_PROBE fds from fd_floor are open (the fuzzer's own
 * may come and go between inputs, never during one). */
static uint64_t open_fds(void)
{
	uint64_t set = 0;
	for (int k = 0; k < FZ_FD_PROBE; k++)
		if (fcntl(fd_floor + k, F_GETFD) >= 0)
			set |= 1ull << k;
	return set;
}
static bool verbose; /* FZ_VERBOSE set: log lines and a trace */

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_vu_msg: %s\n", what);
	__builtin_trap();
}

static void cleanup(void)
{
	unlink(img_path);
	unlink(sock_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("FZ_VERBOSE") != NULL;
	vio_log_set_quiet(!verbose);
	snprintf(dir, sizeof(dir), "/tmp/vio-fuzz-vu-XXXXXX");
	if (!mkdtemp(dir))
		fz_fail("mkdtemp");
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	snprintf(img_path, sizeof(img_path), "%s/img", dir);
	atexit(cleanup);
	int probe = dup(0);
	if (probe < 0)
		probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fd_floor = probe;
	close(probe);
	return 0;
}

static unsigned fds_wanted(const struct vio_vu_hdr *h,
			   const union vio_vu_payload *p)
{
	unsigned sel = (h->flags >> 8) & 0xf;
	if (sel)
		return sel - 1;
	const struct vio_vu_request_info *i = vio_vu_request_info(h->request);
	if (!i)
		return 0;
	switch (i->fds) {
	case VIO_VU_FD_ONE:
		return 1;
	case VIO_VU_FD_VRING:
		return p->u64 & VIO_VU_VRING_NOFD ? 0 : 1;
	case VIO_VU_FD_PER_REGION:
		return p->mem.nregions < VIO_VU_MAX_TABLE_REGIONS
			   ? p->mem.nregions
			   : VIO_VU_MAX_TABLE_REGIONS;
	default:
		return 0;
	}
}

static bool mem_request(uint32_t r)
{
	return r == VIO_VU_SET_MEM_TABLE || r == VIO_VU_ADD_MEM_REG ||
	       r == VIO_VU_REM_MEM_REG;
}

static void send_chunk(int s, const uint8_t *buf, size_t len, int fd,
		       unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctl;
	int fds[16];
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		for (unsigned k = 0; k < nfds; k++)
			fds[k] = fd;
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	/* at most one message and a few replies are ever queued */
	if (sendmsg(s, &mh, MSG_NOSIGNAL) != (ssize_t)len && errno != EPIPE &&
	    errno != ECONNRESET)
		fz_fail("sendmsg");
}

static void drain(int s)
{
	uint8_t buf[1024];
	while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* The codec alone, on the message as it sits in the input. */
static void codec(const struct vio_vu_hdr *h, const uint8_t *payload,
		  size_t len, unsigned nfds)
{
	struct vio_vu_msg m;
	char why[160];
	memset(&m, 0, sizeof(m));
	m.hdr = *h;
	memcpy(&m.p, payload, len < sizeof(m.p) ? len : sizeof(m.p));
	m.nfds =
	    nfds < VIO_VU_MAX_TABLE_REGIONS ? nfds : VIO_VU_MAX_TABLE_REGIONS;
	for (unsigned k = 0; k < VIO_VU_MAX_TABLE_REGIONS; k++)
		m.fds[k] = -1;
	why[0] = 0;
	int r = vio_vu_check(&m, why, sizeof(why));
	if (r != 0 && (r != -EPROTO || !why[0]))
		fz_fail("vio_vu_check: refusal without a reason");
	m.hdr.flags &= ~VIO_VU_FLAG_REPLY; /* sized as a request */
	uint32_t ps = vio_vu_payload_size(&m);
	if (ps > sizeof(m.p))
		fz_fail("vio_vu_payload_size past the payload");
	if (r == 0 && ps != h->size)
		fz_fail("accepted message of another size than its rule");
	m.hdr.flags |= VIO_VU_FLAG_REPLY;
	if (vio_vu_payload_size(&m) > sizeof(m.p))
		fz_fail("reply payload size past the payload");
	if (!vio_vu_request_name(h->request))
		fz_fail("no name");
}

/* What the backend's workers would do on a kick: serve every queue (a
 * queue that is not running ignores it). */
static void kick_all(struct vio_backend *b, struct vio_device *dev)
{
	for (unsigned q = 0; q < vio_device_num_queues(dev); q++)
		vio_backend_queue_kick(b, q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vio_blk_device_opts dc = {
	    .path = img_path,
	    .size = FZ_IMG_SIZE,
	    .num_queues = 2,
	    .queue_size = 64,
	    .no_io_uring = true,
	};
	uint64_t fds_before = open_fds();
	char err[128];
	struct vio_blk_device *bd = vio_blk_device_new(&dc, err, sizeof(err));
	if (!bd)
		fz_fail(err);
	struct vio_device *dev = vio_blk_device_dev(bd);
	struct vio_backend_opts bc = {.max_mem_slots = 16};
	struct vio_backend *b = vio_backend_new(dev, &bc);
	if (!b || vio_backend_listen(b, sock_path))
		fz_fail("backend");

	int memfd = memfd_create("fz-vu", MFD_CLOEXEC);
	int evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (memfd < 0 || evfd < 0 || s < 0 || ftruncate(memfd, FZ_MEM_SIZE) ||
	    connect(s, (struct sockaddr *)&sa, sizeof(sa)) ||
	    vio_backend_dispatch(b) || !vio_backend_connected(b))
		fz_fail("setup");

	size_t pos = 0;
	while (pos < size && vio_backend_connected(b)) {
		struct vio_vu_hdr h = {0, 0, 0};
		union vio_vu_payload p;
		size_t left = size - pos, len;
		memset(&p, 0, sizeof(p));
		memcpy(&h, data + pos, left < sizeof(h) ? left : sizeof(h));
		if (left < sizeof(h)) {
			len = left;
		} else {
			size_t psz = left - sizeof(h);
			if (psz > h.size)
				psz = h.size;
			memcpy(&p, data + pos + sizeof(h),
			       psz < sizeof(p) ? psz : sizeof(p));
			codec(&h, data + pos + sizeof(h), psz,
			      fds_wanted(&h, &p));
			len = sizeof(h) + psz;
		}
		if (h.request == FZ_POKE && len > sizeof(h) + 4) {
			uint32_t off;
			memcpy(&off, data + pos + sizeof(h), 4);
			off %= FZ_MEM_SIZE;
			size_t n = len - sizeof(h) - 4;
			if (n > FZ_MEM_SIZE - off)
				n = FZ_MEM_SIZE - off;
			if (pwrite(memfd, data + pos + sizeof(h) + 4, n, off) !=
			    (ssize_t)n)
				fz_fail("pwrite");
			pos += len;
			kick_all(b, dev);
			continue;
		}
		unsigned nfds = left < sizeof(h) ? 0 : fds_wanted(&h, &p);
		bool use_mem = mem_request(h.request) ^ !!(h.flags & 0x1000);
		send_chunk(s, data + pos, len, use_mem ? memfd : evfd, nfds);
		pos += len;
		if (pos >= size)
			shutdown(s, SHUT_WR); /* a cut message reads EOF */
		int r = vio_backend_dispatch(b);
		if (verbose)
			fprintf(stderr, "fz: %s (%u bytes, %u fds): %d\n",
				vio_vu_request_name(h.request), h.size, nfds,
				r);
		if (r != 0 && r != -ECONNRESET)
			fz_fail("dispatch: neither 0 nor -ECONNRESET");
		drain(s);
		kick_all(b, dev);
	}
	close(s);
	for (int k = 0; k < 64 && vio_backend_connected(b); k++) {
		int r = vio_backend_dispatch(b); /* what is left, then EOF */
		if (r != 0 && r != -ECONNRESET)
			fz_fail("dispatch after close");
	}
	if (vio_backend_connected(b))
		fz_fail("still connected after the frontend closed");
	if (vio_device_get_status(dev) != 0)
		fz_fail("device not reset after the connection ended");
	for (unsigned q = 0; q < vio_device_num_queues(dev); q++)
		if (vio_device_queue(dev, q))
			fz_fail("a queue is live after the connection ended");
	if (verbose) { /* in gen_vu_corpus.py's layout: used/device areas */
		uint16_t u[4] = {0};
		if (pread(memfd, &u[0], 4, 0x2000) != 4 ||
		    pread(memfd, &u[2], 4, 0x6000) != 4)
			fz_fail("pread");
		fprintf(stderr,
			"fz: at 0x2000: %04x %04x, at 0x6000: %04x %04x\n",
			u[0], u[1], u[2], u[3]);
	}
	close(memfd);
	close(evfd);
	vio_backend_free(b);
	vio_blk_device_free(bd);
	unlink(img_path);

	/* every fd the backend was sent is closed */
	uint64_t leaked = open_fds() & ~fds_before;
	for (int fd = fd_floor; leaked; fd++, leaked >>= 1)
		if (leaked & 1) {
			char link[64], what[128] = "?";
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			ssize_t n = readlink(link, what, sizeof(what) - 1);
			what[n > 0 ? n : 0] = 0;
			fprintf(stderr, "fd %d left open: %s\n", fd, what);
			fz_fail("fd leak");
		}
	return 0;
}
