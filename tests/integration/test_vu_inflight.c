/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's in-flight region (INFLIGHT_SHMFD), through a
 * raw frontend (fake_frontend.h) and a test device that can hold chains.
 *
 * - GET_INFLIGHT_FD: the reply (vio_vu_recv_reply) carries one fd, a
 *   zeroed memfd of num_queues parts, sealed against shrinking and
 *   growing; refused without the protocol feature.
 * - SET_INFLIGHT_FD with hostile values (no queues, too many, queue size
 *   0 or past the spec, a region too small, an offset past the file, an
 *   unsealed file, a pipe): the connection ends with a log line naming
 *   the problem; the backend serves the next one.
 * - Restart, split and packed: backend A pops five requests, completes
 *   two and dies holding three (freed without completing them; two more
 *   requests wait in the ring unpopped).  Backend B gets the same region
 *   with SET_INFLIGHT_FD (and a stale ring base, as QEMU sends): it pops
 *   the three first, in A's order, then the two new ones, and completes
 *   each; the driver sees all seven exactly once.
 */
#include <linux/virtio_ids.h>
#include <sys/stat.h>

#include "fake_frontend.h"

#define NQ 2
#define QSZ 16

/* The test device: holds what it pops (A) or completes it (B). */
static struct {
	bool complete;
	char mark;
	unsigned popped[64], npopped;
	uint32_t heads[64];
} td;

static bool td_kick(struct vio_device *d, unsigned idx, struct vio_vq *vq)
{
	struct vio_iov iov[8];
	struct vio_chain c;
	while (vio_vq_pop(vq, &c, iov, 8) == 1) {
		uint32_t tag;
		REQUIRE(c.nr_out >= 1 && c.out[0].len >= 4);
		memcpy(&tag, c.out[0].base, 4);
		REQUIRE(td.npopped < 64);
		td.heads[td.npopped] = c.head;
		td.popped[td.npopped++] = tag;
		if (td.complete) {
			REQUIRE(c.nr_in >= 1 && c.in[0].len >= 1);
			*(char *)c.in[0].base = td.mark;
			CHECK_EQ(vio_vq_push(vq, c.head, 1), 0);
		}
	}
	vio_vq_call(vq);
	return false;
}

static const struct vio_device_ops td_ops = {.kick = td_kick};

static struct vio_device *td_new(bool packed)
{
	struct vio_device_opts o = {
	    .name = "holder",
	    .device_id = VIRTIO_ID_RNG,
	    .num_queues = NQ,
	    .queue_max_size = QSZ,
	    .ops = &td_ops,
	};
	if (packed)
		o.features.w[0] = 1ull << VIRTIO_F_RING_PACKED;
	struct vio_device *d = vio_device_new(&o);
	REQUIRE(d);
	return d;
}

#define PF_WANT                                                                \
	((1ull << VIO_VU_PF_REPLY_ACK) | (1ull << VIO_VU_PF_INFLIGHT_SHMFD))

/* Features (with PROTOCOL_FEATURES), protocol features, owner. */
static void handshake(struct vio_backend *b, int s, bool packed, uint64_t pf)
{
	uint64_t f = offered_features(b, s);
	uint64_t want =
	    (1ull << VIRTIO_F_VERSION_1) | (1ull << VIO_VU_F_PROTOCOL_FEATURES);
	if (packed)
		want |= 1ull << VIRTIO_F_RING_PACKED;
	CHECK((f & want) == want);
	uint64_t p = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_PROTOCOL_FEATURES, &p));
	CHECK(p & (1ull << VIO_VU_PF_INFLIGHT_SHMFD));
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_FEATURES, want), 0);
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	struct fmsg m = mk(VIO_VU_SET_OWNER, 0);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
}

/* GET_INFLIGHT_FD; the fd (and the reply in *out), or -1. */
static int get_inflight(struct vio_backend *b, int s, unsigned nq, unsigned qsz,
			struct vio_vu_inflight *out)
{
	struct fmsg m = mk(VIO_VU_GET_INFLIGHT_FD, 24);
	m.p.inflight.num_queues = (uint16_t)nq;
	m.p.inflight.queue_size = (uint16_t)qsz;
	if (fe_msg(b, s, &m, NULL, 0))
		return -1;
	struct vio_vu_msg r;
	char why[160];
	int e = vio_vu_recv_reply(s, VIO_VU_GET_INFLIGHT_FD, 0, &r, why,
				  sizeof(why));
	if (e) {
		fprintf(stderr, "GET_INFLIGHT_FD reply: %s\n", why);
		return -1;
	}
	CHECK_EQ(r.nfds, 1);
	*out = r.p.inflight;
	return r.fds[0];
}

static int set_inflight(struct vio_backend *b, int s,
			const struct vio_vu_inflight *in, int fd)
{
	struct fmsg m = mk(VIO_VU_SET_INFLIGHT_FD, 24);
	m.p.inflight = *in;
	return fe_msg(b, s, &m, &fd, 1);
}

static void test_get(void)
{
	struct vio_device *d = td_new(false);
	dev = d;
	struct vio_backend *b = backend_up(false);
	int s = fe_connect(b);
	handshake(b, s, false, PF_WANT);
	struct vio_vu_inflight in;
	int fd = get_inflight(b, s, NQ, QSZ, &in);
	REQUIRE(fd >= 0);
	size_t part = vio_inflight_queue_bytes(QSZ, true);
	CHECK_EQ(in.mmap_size, NQ * part);
	CHECK_EQ(in.mmap_offset, 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == in.mmap_size);
	int seals = fcntl(fd, F_GET_SEALS);
	CHECK(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW));
	CHECK(ftruncate(fd, 0) != 0); /* sealed */
	uint8_t *p = mmap(NULL, in.mmap_size, PROT_READ, MAP_SHARED, fd, 0);
	REQUIRE(p != MAP_FAILED);
	bool zero = true;
	for (size_t i = 0; i < in.mmap_size; i++)
		zero = zero && !p[i];
	CHECK(zero);
	munmap(p, in.mmap_size);
	/* taken back: no queue runs yet */
	CHECK_EQ(set_inflight(b, s, &in, fd), 0);
	close(fd);
	close(s);
	CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);

	/* without the protocol feature: refused */
	s = fe_connect(b);
	handshake(b, s, false, 1ull << VIO_VU_PF_REPLY_ACK);
	struct capture cap;
	capture_start(&cap);
	struct fmsg m = mk(VIO_VU_GET_INFLIGHT_FD, 24);
	m.p.inflight.num_queues = 1;
	m.p.inflight.queue_size = QSZ;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), -ECONNRESET);
	capture_end(&cap);
	CHECK(strstr(cap.text, "without INFLIGHT_SHMFD") != NULL);
	CHECK(fe_eof(s));
	close(s);
	CHECK(fresh_connection_works(b));
	vio_backend_free(b);
	vio_device_free(d);
}

static void test_hostile_set(void)
{
	struct vio_device *d = td_new(false);
	dev = d;
	size_t part = vio_inflight_queue_bytes(QSZ, true);
	struct {
		const char *name;
		struct vio_vu_inflight in;
		int kind; /* 0: backend's memfd, 1: unsealed memfd, 2: pipe */
		const char *log;
	} cases[] = {
	    {"no queues", {NQ * part, 0, 0, QSZ, 0}, 0, "0 queues"},
	    {"more queues than the device",
	     {NQ * part, 0, NQ + 1, QSZ, 0},
	     0,
	     "3 queues (the device has 2)"},
	    {"queue size 0", {NQ * part, 0, NQ, 0, 0}, 0, "queue size 0"},
	    {"queue size past the spec",
	     {NQ * part, 0, NQ, 40000, 0},
	     0,
	     "queue size 40000"},
	    {"region too small", {NQ * part - 1, 0, NQ, QSZ, 0}, 0, "needed"},
	    {"offset past the file",
	     {NQ * part, 4096, NQ, QSZ, 0},
	     0,
	     "past the file"},
	    {"huge offset",
	     {NQ * part, UINT64_MAX - 8, NQ, QSZ, 0},
	     0,
	     "past the file"},
	    {"huge size", {UINT64_MAX, 0, NQ, QSZ, 0}, 0, "past the file"},
	    {"unsealed file", {NQ * part, 0, NQ, QSZ, 0}, 1, "not sealed"},
	    {"a pipe", {NQ * part, 0, NQ, QSZ, 0}, 2, "not a memory file"},
	};
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		/* a backend each: its log lines are rate-limited */
		struct vio_backend *b = backend_up(false);
		int s = fe_connect(b);
		handshake(b, s, false, PF_WANT);
		struct vio_vu_inflight in;
		int fd = get_inflight(b, s, NQ, QSZ, &in);
		REQUIRE(fd >= 0);
		if (cases[k].kind == 1) {
			close(fd);
			fd = new_memfd(NQ * part);
		} else if (cases[k].kind == 2) {
			close(fd);
			fd = new_pipe_end();
		}
		struct capture cap;
		capture_start(&cap);
		int r = set_inflight(b, s, &cases[k].in, fd);
		capture_end(&cap);
		close(fd);
		if (r != -ECONNRESET || !strstr(cap.text, cases[k].log))
			fprintf(stderr, "%s: %d, log: %s\n", cases[k].name, r,
				cap.text);
		CHECK_EQ(r, -ECONNRESET);
		CHECK(strstr(cap.text, "SET_INFLIGHT_FD") != NULL);
		CHECK(strstr(cap.text, cases[k].log) != NULL);
		CHECK(fe_eof(s));
		close(s);
		CHECK(fresh_connection_works(b));
		vio_backend_free(b);
	}
	vio_device_free(d);
}

/* ---- restart ---- */

struct fe_ring {
	struct vio_mem *mem;
	struct vio_vq *vq;
	int kick, call;
	uint8_t *bufs;
};

/* Memory, queue 0's ring, enable (DRIVER_OK comes with the start). */
static void ring_up(struct vio_backend *b, int s, struct fe_ring *r,
		    bool packed, uint32_t base)
{
	send_mem_table(b, s, r->mem);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_NUM, 0, QSZ), 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_BASE, 0, base), 0);
	struct vio_vq_layout l;
	vio_vq_get_layout(r->vq, &l);
	struct fmsg m = mk(VIO_VU_SET_VRING_ADDR, 40);
	m.p.addr.index = 0;
	m.p.addr.desc = (uintptr_t)l.desc;
	m.p.addr.avail = (uintptr_t)l.driver;
	m.p.addr.used = (uintptr_t)l.device;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_CALL, 0, r->call), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_KICK, 0, r->kick), 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_ENABLE, 0, 1), 0);
	CHECK(vio_device_queue(dev, 0) != NULL);
}

static void add_req(struct fe_ring *r, uint32_t tag)
{
	uint8_t *o = r->bufs + tag * 32;
	memcpy(o, &tag, 4);
	o[16] = 0;
	struct vio_sg sg[2] = {{o, 8}, {o + 16, 8}};
	CHECK_EQ(vio_vq_add(r->vq, sg, 1, 1, o), 0);
	vio_vq_kick_prepare(r->vq);
}

/* Harvest: tags completed, with the mark each carries. */
static unsigned harvest(struct fe_ring *r, unsigned *tags, char *marks)
{
	unsigned n = 0;
	uint32_t len;
	uint8_t *o;
	while ((o = vio_vq_get(r->vq, &len))) {
		CHECK_EQ(len, 1);
		memcpy(&tags[n], o, 4);
		marks[n++] = (char)o[16];
	}
	CHECK(!vio_vq_broken(r->vq));
	return n;
}

static void test_restart(bool packed)
{
	struct fe_ring r = {0};
	r.mem = vio_mem_new();
	REQUIRE(r.mem && vio_mem_add_region(r.mem, 1u << 20, NULL) == 0);
	r.kick = new_eventfd();
	r.call = new_eventfd();
	struct vio_vq_opts qc = {.size = QSZ, .packed = packed, .name = "fe"};
	r.vq = vio_vq_new_driver(&qc, r.mem);
	REQUIRE(r.vq);
	uint64_t da;
	r.bufs = vio_mem_alloc(r.mem, 64 * 32, 64, &da);
	REQUIRE(r.bufs);

	/* backend A: holds what it pops */
	struct vio_device *da_dev = td_new(packed);
	dev = da_dev;
	memset(&td, 0, sizeof(td));
	struct vio_backend *ba = backend_up(false);
	int s = fe_connect(ba);
	handshake(ba, s, packed, PF_WANT);
	struct vio_vu_inflight in;
	int ifd = get_inflight(ba, s, NQ, QSZ, &in);
	REQUIRE(ifd >= 0);
	CHECK_EQ(set_inflight(ba, s, &in, ifd), 0);
	ring_up(ba, s, &r, packed, packed ? 0x80008000u : 0);
	for (uint32_t t = 0; t < 5; t++)
		add_req(&r, t);
	vio_backend_queue_kick(ba, 0);
	CHECK_EQ(td.npopped, 5);
	/* A completes 1 and 3 */
	struct vio_vq *avq = vio_device_queue(da_dev, 0);
	REQUIRE(avq);
	for (unsigned k = 1; k < 5; k += 2) {
		*((uint8_t *)r.bufs + td.popped[k] * 32 + 16) = 'A';
		CHECK_EQ(vio_vq_push(avq, td.heads[k], 1), 0);
	}
	unsigned tags[16];
	char marks[16];
	CHECK_EQ(harvest(&r, tags, marks), 2);
	/* two more wait, unpopped */
	add_req(&r, 5);
	add_req(&r, 6);
	/* A dies holding 0, 2 and 4 (its queue stop gives nothing back) */
	vio_backend_free(ba);
	close(s);
	vio_device_free(da_dev);

	/* backend B: completes; the same region, a stale base */
	struct vio_device *db_dev = td_new(packed);
	dev = db_dev;
	memset(&td, 0, sizeof(td));
	td.complete = true;
	td.mark = 'B';
	struct vio_backend *bb = backend_up(false);
	s = fe_connect(bb);
	handshake(bb, s, packed, PF_WANT);
	CHECK_EQ(set_inflight(bb, s, &in, ifd), 0);
	struct capture cap;
	capture_start(&cap);
	ring_up(bb, s, &r, packed, packed ? 0x80008000u : 2);
	capture_end(&cap);
	CHECK(strstr(cap.text, "3 requests in flight resubmitted") != NULL);
	vio_backend_queue_kick(bb, 0);
	unsigned want[] = {0, 2, 4, 5, 6};
	CHECK_EQ(td.npopped, 5);
	for (unsigned k = 0; k < 5 && k < td.npopped; k++)
		CHECK_EQ(td.popped[k], want[k]);
	unsigned n = harvest(&r, tags, marks);
	CHECK_EQ(n, 5);
	unsigned seen[8] = {0};
	for (unsigned k = 0; k < n; k++) {
		REQUIRE(tags[k] < 8);
		seen[tags[k]]++;
		CHECK_EQ(marks[k], 'B');
	}
	for (unsigned t = 0; t < 7; t++)
		CHECK_EQ(seen[t], t == 1 || t == 3 ? 0 : 1);
	/* and the ring goes on */
	add_req(&r, 7);
	vio_backend_queue_kick(bb, 0);
	CHECK_EQ(harvest(&r, tags, marks), 1);
	close(s);
	CHECK_EQ(vio_backend_dispatch(bb), -ECONNRESET);
	vio_backend_free(bb);
	vio_device_free(db_dev);
	close(ifd);
	vio_vq_free(r.vq);
	vio_mem_free(r.mem);
	close(r.kick);
	close(r.call);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vio-inflight-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	int fds = test_count_fds();
	test_get();
	test_hostile_set();
	test_restart(false);
	test_restart(true);
	if (pipe_rd >= 0)
		close(pipe_rd);
	CHECK_EQ(test_count_fds(), fds);
	rmdir(dir);
	return test_result("vu_inflight");
}
