/* SPDX-License-Identifier: MIT */
/*
 * vhost-user message codec unit tests (src/transport/vhost-user/msg.h).
 *
 * - The request table, row by row, against an independent statement of
 *   docs/interop/vhost-user.rst (request numbers, payload, fds, reply);
 *   every number that has no row (IOTLB, postcopy, ...)
 *   is unknown.
 * - vio_vu_check: every size rule at its edges (exact size accepted, one
 *   byte short or long refused), SET_MEM_TABLE for 0..8 regions and 9,
 *   GET/SET_CONFIG for config sizes 0..256 and 257, the fd-count rules
 *   (none, one, optional, vring with and without NOFD, one per region),
 *   the version bits.
 * - vio_vu_recv over a socketpair: every request round-trips through
 *   vio_vu_send with its fds (close-on-exec on arrival); messages back to
 *   back in one write and a header split across writes; clean EOF; an
 *   unknown request, a bad version, a wrong size (refused before the
 *   payload is read), an oversized payload, a truncated header and a
 *   truncated payload, fds where none are allowed, more fds than a
 *   message can carry (control data truncated): each refused with a
 *   reason, every fd that arrived closed (/proc/self/fd counted).
 * - Reply construction: the payload size of each reply kind (REPLY_ACK's
 *   u64, u64, vring state, config), as the backend builds them, sent and
 *   read back byte for byte; vio_vu_send's refusals; vio_vu_close_fds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "transport/vhost-user/msg.h"

/* ---- the table ---- */

struct expect {
	uint32_t req;
	const char *name;
	enum vio_vu_size_rule size;
	enum vio_vu_fds fds;
	enum vio_vu_reply reply;
};

/* Written from the spec, not from msg.c. */
static const struct expect spec[] = {
    {1, "GET_FEATURES", VIO_VU_SZ_NONE, VIO_VU_FD_NONE, VIO_VU_REPLY_U64},
    {2, "SET_FEATURES", VIO_VU_SZ_U64, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {3, "SET_OWNER", VIO_VU_SZ_NONE, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {4, "RESET_OWNER", VIO_VU_SZ_NONE, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {5, "SET_MEM_TABLE", VIO_VU_SZ_MEMTAB, VIO_VU_FD_PER_REGION,
     VIO_VU_REPLY_NONE},
    {8, "SET_VRING_NUM", VIO_VU_SZ_STATE, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {9, "SET_VRING_ADDR", VIO_VU_SZ_ADDR, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {10, "SET_VRING_BASE", VIO_VU_SZ_STATE, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {11, "GET_VRING_BASE", VIO_VU_SZ_STATE, VIO_VU_FD_NONE, VIO_VU_REPLY_STATE},
    {12, "SET_VRING_KICK", VIO_VU_SZ_U64, VIO_VU_FD_VRING, VIO_VU_REPLY_NONE},
    {13, "SET_VRING_CALL", VIO_VU_SZ_U64, VIO_VU_FD_VRING, VIO_VU_REPLY_NONE},
    {14, "SET_VRING_ERR", VIO_VU_SZ_U64, VIO_VU_FD_VRING, VIO_VU_REPLY_NONE},
    {15, "GET_PROTOCOL_FEATURES", VIO_VU_SZ_NONE, VIO_VU_FD_NONE,
     VIO_VU_REPLY_U64},
    {16, "SET_PROTOCOL_FEATURES", VIO_VU_SZ_U64, VIO_VU_FD_NONE,
     VIO_VU_REPLY_NONE},
    {17, "GET_QUEUE_NUM", VIO_VU_SZ_NONE, VIO_VU_FD_NONE, VIO_VU_REPLY_U64},
    {18, "SET_VRING_ENABLE", VIO_VU_SZ_STATE, VIO_VU_FD_NONE,
     VIO_VU_REPLY_NONE},
    {21, "SET_BACKEND_REQ_FD", VIO_VU_SZ_NONE, VIO_VU_FD_ONE,
     VIO_VU_REPLY_NONE},
    {24, "GET_CONFIG", VIO_VU_SZ_CONFIG, VIO_VU_FD_NONE, VIO_VU_REPLY_CONFIG},
    {25, "SET_CONFIG", VIO_VU_SZ_CONFIG, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {31, "GET_INFLIGHT_FD", VIO_VU_SZ_INFLIGHT, VIO_VU_FD_NONE,
     VIO_VU_REPLY_INFLIGHT},
    {32, "SET_INFLIGHT_FD", VIO_VU_SZ_INFLIGHT, VIO_VU_FD_ONE,
     VIO_VU_REPLY_NONE},
    {34, "RESET_DEVICE", VIO_VU_SZ_NONE, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {36, "GET_MAX_MEM_SLOTS", VIO_VU_SZ_NONE, VIO_VU_FD_NONE, VIO_VU_REPLY_U64},
    {37, "ADD_MEM_REG", VIO_VU_SZ_MEMREG, VIO_VU_FD_ONE, VIO_VU_REPLY_NONE},
    {38, "REM_MEM_REG", VIO_VU_SZ_MEMREG, VIO_VU_FD_OPTIONAL,
     VIO_VU_REPLY_NONE},
    {39, "SET_STATUS", VIO_VU_SZ_U64, VIO_VU_FD_NONE, VIO_VU_REPLY_NONE},
    {40, "GET_STATUS", VIO_VU_SZ_NONE, VIO_VU_FD_NONE, VIO_VU_REPLY_U64},
    {6, "SET_LOG_BASE", VIO_VU_SZ_LOG, VIO_VU_FD_ONE, VIO_VU_REPLY_U64},
    {7, "SET_LOG_FD", VIO_VU_SZ_NONE, VIO_VU_FD_ONE, VIO_VU_REPLY_NONE},
    {42, "SET_DEVICE_STATE_FD", VIO_VU_SZ_XFER, VIO_VU_FD_ONE,
     VIO_VU_REPLY_U64_FD},
    {43, "CHECK_DEVICE_STATE", VIO_VU_SZ_NONE, VIO_VU_FD_NONE,
     VIO_VU_REPLY_U64},
};
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

static const struct expect *spec_row(uint32_t req)
{
	for (unsigned i = 0; i < NSPEC; i++)
		if (spec[i].req == req)
			return &spec[i];
	return NULL;
}

static void test_table(void)
{
	/* the wire structs */
	CHECK_EQ(sizeof(struct vio_vu_hdr), 12);
	CHECK_EQ(sizeof(struct vio_vu_state), 8);
	CHECK_EQ(sizeof(struct vio_vu_addr), 40);
	CHECK_EQ(sizeof(struct vio_vu_region), 32);
	CHECK_EQ(sizeof(struct vio_vu_mem_table), 8 + 8 * 32);
	CHECK_EQ(sizeof(struct vio_vu_mem_reg), 40);
	CHECK_EQ(offsetof(struct vio_vu_config, data), 12);
	CHECK_EQ(offsetof(struct vio_vu_addr, desc), 8);
	CHECK_EQ(offsetof(struct vio_vu_addr, used), 16);
	CHECK_EQ(offsetof(struct vio_vu_addr, avail), 24);
	CHECK_EQ(offsetof(struct vio_vu_addr, log), 32);
	CHECK_EQ(VIO_VU_REQUEST_MAX, 44);
	CHECK_EQ(sizeof(struct vio_vu_log), 16);
	CHECK_EQ(sizeof(struct vio_vu_transfer_state), 8);

	unsigned known = 0;
	for (uint32_t r = 0; r < 64; r++) {
		const struct vio_vu_request_info *i = vio_vu_request_info(r);
		const struct expect *e = spec_row(r);
		if (!e) {
			if (i)
				fprintf(stderr, "request %u has a row (%s)\n",
					r, i->name);
			CHECK(i == NULL);
			CHECK(strcmp(vio_vu_request_name(r),
				     "unknown request") == 0);
			continue;
		}
		known++;
		REQUIRE(i != NULL);
		CHECK(i->known);
		CHECK(strcmp(i->name, e->name) == 0);
		CHECK(strcmp(vio_vu_request_name(r), e->name) == 0);
		CHECK_EQ(i->size_rule, e->size);
		CHECK_EQ(i->fds, e->fds);
		CHECK_EQ(i->reply, e->reply);
	}
	CHECK_EQ(known, NSPEC);
	/* numbers a frontend may send that this codec refuses */
	static const uint32_t unknown[] = {
	    0,	19, 20, 22, 23, 26, 27,	 28,	      29,
	    30, 33, 35, 41, 44, 45, 255, 0x80000001u, UINT32_MAX};
	for (unsigned k = 0; k < sizeof(unknown) / sizeof(unknown[0]); k++)
		CHECK(vio_vu_request_info(unknown[k]) == NULL);
}

/* ---- vio_vu_check ---- */

/* Fixed payload size of a rule, or -1 for the variable ones. */
static int fixed_size(enum vio_vu_size_rule s)
{
	switch (s) {
	case VIO_VU_SZ_NONE:
		return 0;
	case VIO_VU_SZ_U64:
		return 8;
	case VIO_VU_SZ_STATE:
		return 8;
	case VIO_VU_SZ_ADDR:
		return 40;
	case VIO_VU_SZ_MEMREG:
		return 40;
	case VIO_VU_SZ_INFLIGHT:
		return 24;
	case VIO_VU_SZ_LOG:
		return 16;
	case VIO_VU_SZ_XFER:
		return 8;
	default:
		return -1;
	}
}

/* A message that satisfies its row (fds are -1 placeholders: check
 * never touches them). */
static void valid_msg(struct vio_vu_msg *m, const struct expect *e)
{
	memset(m, 0, sizeof(*m));
	m->hdr.request = e->req;
	m->hdr.flags = VIO_VU_VERSION;
	int fs = fixed_size(e->size);
	if (e->size == VIO_VU_SZ_MEMTAB) {
		m->p.mem.nregions = 1;
		m->hdr.size = 8 + 32;
	} else if (e->size == VIO_VU_SZ_CONFIG) {
		m->p.config.size = 4;
		m->hdr.size = 12 + 4;
	} else {
		m->hdr.size = (uint32_t)fs;
	}
	switch (e->fds) {
	case VIO_VU_FD_ONE:
	case VIO_VU_FD_VRING:
	case VIO_VU_FD_PER_REGION:
		m->nfds = 1;
		break;
	default:
		m->nfds = 0;
	}
	for (unsigned k = 0; k < VIO_VU_MAX_TABLE_REGIONS; k++)
		m->fds[k] = -1;
}

static int check(const struct vio_vu_msg *m, char *why, size_t len)
{
	why[0] = 0;
	int r = vio_vu_check(m, why, len);
	if (r)
		CHECK(why[0] != 0); /* a refusal always says why */
	return r;
}

static void test_check_sizes(void)
{
	struct vio_vu_msg m;
	char why[160];
	for (unsigned k = 0; k < NSPEC; k++) {
		const struct expect *e = &spec[k];
		valid_msg(&m, e);
		CHECK_EQ(check(&m, why, sizeof(why)), 0);
		CHECK_EQ(vio_vu_payload_size(&m), m.hdr.size);
		uint32_t good = m.hdr.size;
		/* one byte short, one byte long, far too long */
		if (good > 0) {
			m.hdr.size = good - 1;
			CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
			CHECK(strstr(why, e->name) != NULL);
		}
		m.hdr.size = good + 1;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		m.hdr.size = UINT32_MAX;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		m.hdr.size = good;
		CHECK_EQ(check(&m, why, sizeof(why)), 0);
	}

	/* SET_MEM_TABLE: 0..8 regions, fds one per region */
	valid_msg(&m, spec_row(VIO_VU_SET_MEM_TABLE));
	for (uint32_t n = 0; n <= VIO_VU_MAX_TABLE_REGIONS; n++) {
		m.p.mem.nregions = n;
		m.nfds = n;
		m.hdr.size = 8 + 32 * n;
		CHECK_EQ(check(&m, why, sizeof(why)), 0);
		CHECK_EQ(vio_vu_payload_size(&m), 8 + 32 * n);
		m.hdr.size = 8 + 32 * n - 1;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		m.hdr.size = 8 + 32 * n + 1;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		/* nregions says n, size says n+1 (or n-1) regions */
		m.hdr.size = 8 + 32 * (n + 1);
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		if (n) {
			m.hdr.size = 8 + 32 * (n - 1);
			CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		}
	}
	m.p.mem.nregions = 9;
	m.nfds = 8;
	m.hdr.size = 8 + 32 * 9;
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	m.hdr.size = sizeof(struct vio_vu_mem_table);
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	CHECK(strstr(why, "regions") != NULL);
	m.p.mem.nregions = UINT32_MAX;
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	CHECK_EQ(vio_vu_payload_size(&m), 8); /* clamped, never wraps */
	m.p.mem.nregions = 0;
	m.nfds = 0;
	m.hdr.size = 7;
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	m.hdr.size = 0;
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);

	/* GET_CONFIG / SET_CONFIG: 12 + size, size <= 256 */
	for (int req = VIO_VU_GET_CONFIG; req <= VIO_VU_SET_CONFIG; req++) {
		valid_msg(&m, spec_row((uint32_t)req));
		for (uint32_t s = 0; s <= VIO_VU_CONFIG_MAX; s++) {
			m.p.config.size = s;
			m.hdr.size = 12 + s;
			CHECK_EQ(check(&m, why, sizeof(why)), 0);
			CHECK_EQ(vio_vu_payload_size(&m), 12 + s);
			m.hdr.size = 12 + s + 1;
			CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
			m.hdr.size = 12 + s - 1;
			CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		}
		m.p.config.size = VIO_VU_CONFIG_MAX + 1;
		m.hdr.size = 12 + VIO_VU_CONFIG_MAX + 1;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		m.hdr.size = 12 + VIO_VU_CONFIG_MAX;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		/* 12 + size would wrap to 11 */
		m.p.config.size = UINT32_MAX;
		m.hdr.size = 11;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		m.hdr.size = 12 + 4;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		CHECK_EQ(vio_vu_payload_size(&m), 12);
	}
}

static void test_check_fds(void)
{
	struct vio_vu_msg m;
	char why[160];
	for (unsigned k = 0; k < NSPEC; k++) {
		const struct expect *e = &spec[k];
		valid_msg(&m, e);
		unsigned good = m.nfds;
		for (unsigned n = 0; n <= VIO_VU_MAX_TABLE_REGIONS; n++) {
			m.nfds = n;
			bool ok;
			switch (e->fds) {
			case VIO_VU_FD_NONE:
				ok = n == 0;
				break;
			case VIO_VU_FD_OPTIONAL:
				ok = n <= 1;
				break;
			default: /* one (one region in valid_msg) */
				ok = n == 1;
			}
			int r = check(&m, why, sizeof(why));
			CHECK_EQ(r, ok ? 0 : -EPROTO);
			if (r)
				CHECK(strstr(why, "fds") != NULL);
		}
		m.nfds = good;
	}
	/* vring fd messages: NOFD (bit 8) means no fd, index in bits 0-7 */
	for (uint32_t req = VIO_VU_SET_VRING_KICK; req <= VIO_VU_SET_VRING_ERR;
	     req++) {
		valid_msg(&m, spec_row(req));
		m.p.u64 = 5;
		m.nfds = 1;
		CHECK_EQ(check(&m, why, sizeof(why)), 0);
		m.nfds = 0;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		m.p.u64 = 5 | VIO_VU_VRING_NOFD;
		CHECK_EQ(check(&m, why, sizeof(why)), 0);
		m.nfds = 1;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
		m.nfds = 2;
		CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	}
	/* one fd per region, exactly */
	valid_msg(&m, spec_row(VIO_VU_SET_MEM_TABLE));
	for (uint32_t n = 0; n <= VIO_VU_MAX_TABLE_REGIONS; n++) {
		m.p.mem.nregions = n;
		m.hdr.size = 8 + 32 * n;
		for (unsigned f = 0; f <= VIO_VU_MAX_TABLE_REGIONS; f++) {
			m.nfds = f;
			CHECK_EQ(check(&m, why, sizeof(why)),
				 f == n ? 0 : -EPROTO);
		}
	}
}

static void test_check_header(void)
{
	struct vio_vu_msg m;
	char why[160];
	valid_msg(&m, spec_row(VIO_VU_SET_FEATURES));
	for (uint32_t v = 0; v < 4; v++) {
		m.hdr.flags = v;
		int r = check(&m, why, sizeof(why));
		CHECK_EQ(r, v == VIO_VU_VERSION ? 0 : -EPROTO);
		if (r)
			CHECK(strstr(why, "version") != NULL);
	}
	/* REPLY, NEED_REPLY and the reserved bits do not matter to check */
	m.hdr.flags = VIO_VU_VERSION | VIO_VU_FLAG_NEED_REPLY;
	CHECK_EQ(check(&m, why, sizeof(why)), 0);
	m.hdr.flags = VIO_VU_VERSION | VIO_VU_FLAG_REPLY;
	CHECK_EQ(check(&m, why, sizeof(why)), 0);
	m.hdr.flags = VIO_VU_VERSION | 0xfff0u;
	CHECK_EQ(check(&m, why, sizeof(why)), 0);
	m.hdr.flags = 0x2u | VIO_VU_FLAG_NEED_REPLY;
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);

	/* unknown requests */
	m.hdr.flags = VIO_VU_VERSION;
	m.hdr.request = VIO_VU_REQUEST_MAX;
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	CHECK(strstr(why, "unknown request") != NULL);
	m.hdr.request = 22; /* IOTLB_MSG: not supported */
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	m.hdr.request = 0;
	CHECK_EQ(check(&m, why, sizeof(why)), -EPROTO);
	CHECK_EQ(vio_vu_payload_size(&m), 0);

	/* a short why[] is still terminated, never overrun */
	char tiny[8];
	memset(tiny, 'x', sizeof(tiny));
	m.hdr.request = 1000;
	CHECK_EQ(vio_vu_check(&m, tiny, 4), -EPROTO);
	CHECK_EQ(tiny[3], 0);
	CHECK_EQ(tiny[4], 'x');
}

/* ---- sockets ---- */

static void pair(int sv[2])
{
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

static int memfd(void)
{
	int fd = memfd_create("vu-msg-test", MFD_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, 4096) == 0);
	return fd;
}

/* Raw sendmsg: bytes plus fds in one message. */
static ssize_t send_raw(int s, const void *buf, size_t len, const int *fds,
			unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
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
	return sendmsg(s, &mh, MSG_NOSIGNAL);
}

/* Each request, valid, sent with vio_vu_send and received. */
static void test_roundtrip(void)
{
	int sv[2];
	pair(sv);
	int before = test_count_fds();
	int mfd = memfd(), efd = eventfd(0, EFD_CLOEXEC);
	REQUIRE(efd >= 0);

	for (unsigned k = 0; k < NSPEC; k++) {
		const struct expect *e = &spec[k];
		struct vio_vu_msg m, got;
		valid_msg(&m, e);
		/* a recognisable payload */
		for (unsigned b = 0; b < sizeof(m.p); b++)
			((uint8_t *)&m.p)[b] = (uint8_t)(b * 7 + k);
		if (e->size == VIO_VU_SZ_MEMTAB) {
			m.p.mem.nregions = 3;
			m.p.mem.padding = 0;
			m.hdr.size = 8 + 3 * 32;
		} else if (e->size == VIO_VU_SZ_CONFIG) {
			m.p.config.size = 200;
			m.hdr.size = 12 + 200;
		}
		if (e->fds == VIO_VU_FD_VRING)
			m.p.u64 = 3;
		m.nfds = e->fds == VIO_VU_FD_PER_REGION ? 3
			 : e->fds == VIO_VU_FD_NONE	? 0
							: 1;
		for (unsigned f = 0; f < m.nfds; f++)
			m.fds[f] = f % 2 ? efd : mfd;
		m.hdr.flags = VIO_VU_VERSION | VIO_VU_FLAG_NEED_REPLY;
		CHECK_EQ(vio_vu_send(sv[0], &m), 0);

		memset(&got, 0xa5, sizeof(got));
		char why[160] = "";
		int r = vio_vu_recv(sv[1], &got, why, sizeof(why));
		if (r)
			fprintf(stderr, "%s: %s\n", e->name, why);
		CHECK_EQ(r, 0);
		CHECK_EQ(got.hdr.request, e->req);
		CHECK_EQ(got.hdr.flags, m.hdr.flags);
		CHECK_EQ(got.hdr.size, m.hdr.size);
		CHECK(memcmp(&got.p, &m.p, m.hdr.size) == 0);
		/* the rest of the payload is zeroed, not stale */
		bool zero = true;
		for (size_t b = m.hdr.size; b < sizeof(got.p); b++)
			zero &= ((uint8_t *)&got.p)[b] == 0;
		CHECK(zero);
		CHECK_EQ(got.nfds, m.nfds);
		for (unsigned f = 0; f < got.nfds; f++) {
			CHECK(got.fds[f] != mfd && got.fds[f] != efd);
			CHECK(fcntl(got.fds[f], F_GETFD) == FD_CLOEXEC);
		}
		int fds[VIO_VU_MAX_TABLE_REGIONS];
		memcpy(fds, got.fds, sizeof(fds));
		unsigned n = got.nfds;
		vio_vu_close_fds(&got);
		CHECK_EQ(got.nfds, 0);
		for (unsigned f = 0; f < n; f++)
			CHECK(fcntl(fds[f], F_GETFD) < 0 && errno == EBADF);
	}
	close(mfd);
	close(efd);
	CHECK_EQ(test_count_fds(), before);

	/* three messages in one write; a header split over two writes */
	uint8_t buf[64];
	struct vio_vu_hdr h = {VIO_VU_GET_FEATURES, VIO_VU_VERSION, 0};
	memcpy(buf, &h, 12);
	h = (struct vio_vu_hdr){VIO_VU_SET_FEATURES, VIO_VU_VERSION, 8};
	memcpy(buf + 12, &h, 12);
	uint64_t v = 0x123456789abcdef0ull;
	memcpy(buf + 24, &v, 8);
	h = (struct vio_vu_hdr){VIO_VU_GET_STATUS, VIO_VU_VERSION, 0};
	memcpy(buf + 32, &h, 12);
	CHECK_EQ(send_raw(sv[0], buf, 44, NULL, 0), 44);
	struct vio_vu_msg got;
	char why[160];
	CHECK_EQ(vio_vu_recv(sv[1], &got, why, sizeof(why)), 0);
	CHECK_EQ(got.hdr.request, VIO_VU_GET_FEATURES);
	CHECK_EQ(vio_vu_recv(sv[1], &got, why, sizeof(why)), 0);
	CHECK_EQ(got.hdr.request, VIO_VU_SET_FEATURES);
	CHECK(got.p.u64 == v);
	CHECK_EQ(vio_vu_recv(sv[1], &got, why, sizeof(why)), 0);
	CHECK_EQ(got.hdr.request, VIO_VU_GET_STATUS);
	CHECK_EQ(send_raw(sv[0], buf + 12, 5, NULL, 0), 5);
	CHECK_EQ(send_raw(sv[0], buf + 17, 15, NULL, 0), 15);
	CHECK_EQ(vio_vu_recv(sv[1], &got, why, sizeof(why)), 0);
	CHECK_EQ(got.hdr.request, VIO_VU_SET_FEATURES);
	CHECK(got.p.u64 == v);

	/* clean EOF between messages */
	close(sv[0]);
	CHECK_EQ(vio_vu_recv(sv[1], &got, why, sizeof(why)), -ECONNRESET);
	close(sv[1]);
}

/* One hostile byte string (with fds) into vio_vu_recv: refused with
 * want (an errno) and a reason containing needle, every fd closed. */
static void refuse(const char *what, const void *bytes, size_t len,
		   unsigned nfds, bool shut, int want, const char *needle)
{
	int sv[2];
	pair(sv);
	int before = test_count_fds();
	int fds[64];
	for (unsigned f = 0; f < nfds; f++)
		fds[f] = f % 2 ? eventfd(0, EFD_CLOEXEC) : memfd();
	if (len || nfds)
		CHECK_EQ(send_raw(sv[0], bytes, len, fds, nfds), (ssize_t)len);
	for (unsigned f = 0; f < nfds; f++)
		close(fds[f]);
	if (shut)
		shutdown(sv[0], SHUT_WR);
	struct vio_vu_msg m;
	char why[160] = "";
	int r = vio_vu_recv(sv[1], &m, why, sizeof(why));
	if (r != want || !strstr(why, needle))
		fprintf(stderr, "%s: got %d (%s), want %d (%s)\n", what, r, why,
			want, needle);
	CHECK_EQ(r, want);
	CHECK(strstr(why, needle) != NULL);
	CHECK_EQ(m.nfds, 0);
	CHECK_EQ(test_count_fds(), before); /* everything that arrived closed */
	close(sv[0]);
	close(sv[1]);
}

static size_t hdr(uint8_t *buf, uint32_t req, uint32_t flags, uint32_t size)
{
	struct vio_vu_hdr h = {req, flags, size};
	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

static void test_recv_refusals(void)
{
	uint8_t b[512];
	memset(b, 0, sizeof(b));
	size_t n;

	n = hdr(b, 999, VIO_VU_VERSION, 0);
	refuse("unknown", b, n, 0, false, -EPROTO, "unknown request 999");
	n = hdr(b, 22, VIO_VU_VERSION, 8); /* IOTLB_MSG */
	refuse("iotlb", b, n + 8, 1, false, -EPROTO, "unknown request 22");
	n = hdr(b, VIO_VU_SET_LOG_BASE, VIO_VU_VERSION, 8);
	refuse("log base short", b, n + 8, 1, false, -EPROTO,
	       "SET_LOG_BASE: payload of 8 bytes, expected 16");
	n = hdr(b, VIO_VU_GET_FEATURES, 0, 0);
	refuse("version 0", b, n, 0, false, -EPROTO, "version 0");
	n = hdr(b, VIO_VU_GET_FEATURES, 2, 0);
	refuse("version 2", b, n, 0, false, -EPROTO, "version 2");
	/* sizes refused from the header alone: nothing more is read */
	n = hdr(b, VIO_VU_SET_FEATURES, 1, 7);
	refuse("short u64", b, n, 0, false, -EPROTO, "expected 8");
	n = hdr(b, VIO_VU_SET_FEATURES, 1, 9);
	refuse("long u64", b, n, 0, false, -EPROTO, "expected 8");
	n = hdr(b, VIO_VU_GET_FEATURES, 1, 8);
	refuse("payload on GET", b, n, 0, false, -EPROTO, "expected 0");
	n = hdr(b, VIO_VU_SET_VRING_ADDR, 1, 39);
	refuse("short addr", b, n, 0, false, -EPROTO, "expected 40");
	n = hdr(b, VIO_VU_SET_VRING_NUM, 1, 9);
	refuse("long state", b, n, 0, false, -EPROTO, "expected 8");
	n = hdr(b, VIO_VU_ADD_MEM_REG, 1, 41);
	refuse("long mem reg", b, n, 1, false, -EPROTO, "expected 40");
	n = hdr(b, VIO_VU_SET_MEM_TABLE, 1, 0x100000);
	refuse("huge table", b, n, 0, false, -EPROTO, "payload of 1048576");
	n = hdr(b, VIO_VU_SET_MEM_TABLE, 1, 7);
	refuse("tiny table", b, n, 0, false, -EPROTO, "payload of 7");
	n = hdr(b, VIO_VU_GET_CONFIG, 1, 12 + VIO_VU_CONFIG_MAX + 1);
	refuse("huge config", b, n, 0, false, -EPROTO, "payload of 269");
	n = hdr(b, VIO_VU_SET_CONFIG, 1, UINT32_MAX);
	refuse("max size", b, n, 0, false, -EPROTO, "payload of");
	/* sizes refused after the payload was read */
	n = hdr(b, VIO_VU_SET_MEM_TABLE, 1, 8 + 32);
	uint32_t nreg = 2;
	memcpy(b + n, &nreg, 4);
	refuse("table count", b, n + 8 + 32, 2, false, -EPROTO, "expected 72");
	nreg = 9;
	n = hdr(b, VIO_VU_SET_MEM_TABLE, 1, 8 + 8 * 32);
	memcpy(b + n, &nreg, 4);
	refuse("9 regions", b, n + 8 + 8 * 32, 8, false, -EPROTO, "9 regions");
	uint32_t csize = 300;
	n = hdr(b, VIO_VU_SET_CONFIG, 1, 12 + 4);
	memcpy(b + n + 4, &csize, 4);
	refuse("config size", b, n + 16, 0, false, -EPROTO, "config size 300");
	/* fd counts */
	n = hdr(b, VIO_VU_SET_OWNER, 1, 0);
	refuse("fd on SET_OWNER", b, n, 1, false, -EPROTO, "1 fds, expected 0");
	n = hdr(b, VIO_VU_GET_FEATURES, 1, 0);
	refuse("8 fds on GET", b, n, 8, false, -EPROTO, "8 fds");
	refuse("12 fds", b, n, 12, false, -EPROTO, "control data truncated");
	refuse("60 fds", b, n, 60, false, -EPROTO, "control data truncated");
	nreg = 1;
	n = hdr(b, VIO_VU_SET_MEM_TABLE, 1, 8 + 32);
	memcpy(b + n, &nreg, 4);
	refuse("table no fd", b, n + 40, 0, false, -EPROTO, "0 fds");
	refuse("table 2 fds", b, n + 40, 2, false, -EPROTO, "2 fds");
	n = hdr(b, VIO_VU_SET_VRING_KICK, 1, 8);
	memset(b + n, 0, 8);
	refuse("kick no fd", b, n + 8, 0, false, -EPROTO, "0 fds");
	b[n + 1] = 1; /* NOFD */
	refuse("nofd with fd", b, n + 8, 1, false, -EPROTO, "1 fds");
	n = hdr(b, VIO_VU_ADD_MEM_REG, 1, 40);
	memset(b + n, 0, 40);
	refuse("add no fd", b, n + 40, 0, false, -EPROTO, "0 fds");
	refuse("add 2 fds", b, n + 40, 2, false, -EPROTO, "2 fds");
	n = hdr(b, VIO_VU_REM_MEM_REG, 1, 40);
	refuse("rem 2 fds", b, n + 40, 2, false, -EPROTO, "2 fds");
	/* truncation: the peer stops mid-message */
	n = hdr(b, VIO_VU_SET_FEATURES, 1, 8);
	refuse("trunc header", b, 5, 0, true, -EPIPE, "truncated header");
	refuse("trunc hdr fd", b, 11, 1, true, -EPIPE, "truncated header");
	refuse("trunc payload", b, n + 3, 0, true, -EPIPE, "truncated payload");
	n = hdr(b, VIO_VU_SET_MEM_TABLE, 1, 8 + 32);
	memcpy(b + n, &nreg, 4);
	refuse("trunc table", b, n + 20, 1, true, -EPIPE, "truncated payload");
}

/* Replies as the backend builds them: flags VERSION|REPLY, size from
 * vio_vu_payload_size. */
static void test_replies(void)
{
	static const struct {
		uint32_t req;
		uint32_t size;
	} rep[] = {
	    {VIO_VU_GET_FEATURES, 8},	  {VIO_VU_GET_PROTOCOL_FEATURES, 8},
	    {VIO_VU_GET_QUEUE_NUM, 8},	  {VIO_VU_GET_MAX_MEM_SLOTS, 8},
	    {VIO_VU_GET_STATUS, 8},	  {VIO_VU_GET_VRING_BASE, 8},
	    {VIO_VU_SET_FEATURES, 8},	  {VIO_VU_SET_MEM_TABLE, 8},
	    {VIO_VU_SET_VRING_KICK, 8},	  {VIO_VU_ADD_MEM_REG, 8},
	    {VIO_VU_SET_CONFIG, 8},	  {VIO_VU_SET_STATUS, 8},
	    {VIO_VU_GET_CONFIG, 12 + 24},
	};
	int sv[2];
	pair(sv);
	for (unsigned k = 0; k < sizeof(rep) / sizeof(rep[0]); k++) {
		struct vio_vu_msg m;
		memset(&m, 0, sizeof(m));
		m.hdr.request = rep[k].req;
		m.hdr.flags = VIO_VU_VERSION | VIO_VU_FLAG_REPLY;
		if (rep[k].req == VIO_VU_GET_CONFIG) {
			m.p.config.offset = 4;
			m.p.config.size = 24;
			for (unsigned b = 0; b < 24; b++)
				m.p.config.data[b] = (uint8_t)(0x40 + b);
		} else if (rep[k].req == VIO_VU_GET_VRING_BASE) {
			m.p.state.index = 1;
			m.p.state.num = 0x8123;
		} else {
			m.p.u64 = 0x1122334455667788ull + k;
		}
		m.hdr.size = vio_vu_payload_size(&m);
		CHECK_EQ(m.hdr.size, rep[k].size);
		CHECK_EQ(vio_vu_send(sv[0], &m), 0);
		uint8_t buf[512];
		ssize_t got = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);
		CHECK_EQ(got, 12 + rep[k].size);
		struct vio_vu_hdr h;
		memcpy(&h, buf, 12);
		CHECK_EQ(h.request, rep[k].req);
		CHECK_EQ(h.flags, 0x5);
		CHECK_EQ(h.size, rep[k].size);
		CHECK(memcmp(buf + 12, &m.p, rep[k].size) == 0);
	}
	/* a reply without REPLY set is sized as a request */
	struct vio_vu_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.request = VIO_VU_GET_FEATURES;
	m.hdr.flags = VIO_VU_VERSION;
	CHECK_EQ(vio_vu_payload_size(&m), 0);
	m.hdr.request = VIO_VU_GET_VRING_BASE;
	CHECK_EQ(vio_vu_payload_size(&m), 8);

	/* send refuses what it cannot frame */
	m.hdr.size = sizeof(m.p) + 1;
	CHECK_EQ(vio_vu_send(sv[0], &m), -EINVAL);
	m.hdr.size = 0;
	m.nfds = VIO_VU_MAX_TABLE_REGIONS + 1;
	CHECK_EQ(vio_vu_send(sv[0], &m), -EINVAL);
	m.nfds = 0;
	close(sv[1]);
	/* peer gone: an error, not SIGPIPE */
	CHECK_EQ(vio_vu_send(sv[0], &m), -EPIPE);
	close(sv[0]);

	/* close_fds skips -1 and empties the message */
	int before = test_count_fds();
	m.nfds = 3;
	m.fds[0] = memfd();
	m.fds[1] = -1;
	m.fds[2] = eventfd(0, EFD_CLOEXEC);
	vio_vu_close_fds(&m);
	CHECK_EQ(m.nfds, 0);
	CHECK_EQ(test_count_fds(), before);
	vio_vu_close_fds(&m); /* nothing left: a no-op */
}

int main(void)
{
	test_table();
	test_check_sizes();
	test_check_fds();
	test_check_header();
	test_roundtrip();
	test_recv_refusals();
	test_replies();
	return test_result("vu_msg");
}
