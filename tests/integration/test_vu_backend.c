/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend (device side) on a real Unix socket, driven by a
 * minimal frontend written here: raw sendmsg with SCM_RIGHTS, memfd
 * memory, eventfds.  The backend serves a virtio-blk device on a
 * temporary image.  Messages are dispatched on the test's thread
 * (vio_backend_dispatch after each send), so every outcome is
 * deterministic; only the positive flow has queue worker threads.
 *
 * - Hostile messages: a table, one malformed or out-of-order message per
 *   case (after an optional valid preamble): wrong sizes, unknown
 *   requests, bad versions, fds where none are allowed and too many fds,
 *   vring indexes past the queues, bad ring sizes, ring addresses outside
 *   the memory table, bad memory tables and regions, truncated headers
 *   and payloads, oversized payloads, config accesses past the config
 *   space, features never offered, status out of order, changes to a
 *   running ring.  For each: dispatch returns -ECONNRESET, the log (fd 2,
 *   captured) has a line saying what was wrong, the frontend sees EOF
 *   (after a negative REPLY_ACK when it asked for one), the device is
 *   reset, every fd the frontend sent is closed, and a fresh connection
 *   afterwards works (GET_FEATURES round trip).
 * - Positive flow, split and packed rings: features, protocol features,
 *   owner, queue count, slots, config (capacity), memory table, vring
 *   setup, enable; a virtio-blk write then read through a ring built with
 *   vio_vq_new_driver, checked against the image; SET_MEM_TABLE again on
 *   the running ring (stop, restart at the saved base); GET_STATUS;
 *   GET_VRING_BASE; disconnect resets the device.
 * - Leaks: 1000 connect / handshake (with a SET_MEM_TABLE of a memfd and
 *   kick/call eventfds) / disconnect cycles; /proc/self/fd entries and
 *   /proc/self/maps lines are the same before and after.
 */
#include <signal.h>

#include "fake_frontend.h"

/* ---- hostile messages ---- */

enum pre {
	PRE_NONE, /* just connected */
	PRE_FEAT, /* features (split), protocol features (all), owner */
	PRE_MEM,  /* + SET_MEM_TABLE: one 1 MiB memfd at PRE_GPA/UADDR */
	PRE_RING, /* + queue 0: size 64, base 0, addresses, kick, enabled */
};

/* what a hostile message carries besides its bytes */
enum fdkind { FD_EVENT, FD_MEM, FD_PIPE };

struct hmsg {
	struct fmsg m;
	unsigned nfds;
	enum fdkind kind;
	uint32_t send_len; /* 0: 12 + size; else send this many, then EOF */
};

#define NMSG 4
struct hcase {
	const char *name;
	enum pre pre;
	struct hmsg msg[NMSG]; /* all but the last must succeed */
	const char *log;       /* must appear in what the backend logged */
	bool ack;	       /* NEED_REPLY: expect a non-zero REPLY_ACK */
};

#define V VIO_VU_VERSION
#define HDR(r, s)                                                              \
	{                                                                      \
		.request = VIO_VU_##r, .flags = V, .size = (s)                 \
	}
#define M(r, s, ...)                                                           \
	{                                                                      \
		.m = {.h = HDR(r, s), .p = {__VA_ARGS__} }                     \
	}
#define MF(r, s, n, k, ...)                                                    \
	{                                                                      \
		.m = {.h = HDR(r, s), .p = {__VA_ARGS__}}, .nfds = (n),        \
		.kind = (k)                                                    \
	}
#define ST(i, n) .state = {(i), (n)}
#define REG(g, s, u, o)                                                        \
	{                                                                      \
		.gpa = (g), .size = (s), .uaddr = (u), .mmap_offset = (o)      \
	}
#define ADDR(i, d, a, u)                                                       \
	.addr = {.index = (i), .desc = (d), .avail = (a), .used = (u)}
/* valid ring addresses inside the PRE_MEM region */
#define GOOD_ADDR(i)                                                           \
	ADDR((i), PRE_UADDR, PRE_UADDR + 0x1000, PRE_UADDR + 0x2000)
#define CFG(o, s) .config = {.offset = (o), .size = (s)}

static const struct hcase hostile[] = {
    /* sizes */
    {"SET_FEATURES one byte short",
     PRE_NONE,
     {M(SET_FEATURES, 7)},
     "SET_FEATURES: payload of 7 bytes, expected 8"},
    {"SET_FEATURES one byte long",
     PRE_NONE,
     {M(SET_FEATURES, 9)},
     "SET_FEATURES: payload of 9 bytes, expected 8"},
    {"GET_FEATURES with a payload",
     PRE_NONE,
     {M(GET_FEATURES, 8)},
     "GET_FEATURES: payload of 8 bytes, expected 0"},
    {"SET_VRING_ADDR one byte short",
     PRE_FEAT,
     {M(SET_VRING_ADDR, 39)},
     "expected 40"},
    {"SET_VRING_NUM one byte long",
     PRE_FEAT,
     {M(SET_VRING_NUM, 9)},
     "SET_VRING_NUM: payload of 9 bytes, expected 8"},
    {"ADD_MEM_REG one byte long",
     PRE_MEM,
     {MF(ADD_MEM_REG, 41, 1, FD_MEM)},
     "ADD_MEM_REG: payload of 41 bytes, expected 40"},
    {"SET_MEM_TABLE size disagrees with nregions",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 64, 1, FD_MEM, .mem = {.nregions = 1})},
     "payload of 72 bytes, expected 40"},
    {"SET_MEM_TABLE payload past the maximum",
     PRE_FEAT,
     {M(SET_MEM_TABLE, 0x10000)},
     "payload of 65536 bytes"},
    {"SET_CONFIG payload past the maximum",
     PRE_FEAT,
     {M(SET_CONFIG, 12 + 300)},
     "payload of 312 bytes"},
    {"GET_CONFIG size field past the maximum",
     PRE_FEAT,
     {M(GET_CONFIG, 12 + 8, CFG(0, 1000))},
     "config size 1000"},
    {"payload size 0xffffffff",
     PRE_NONE,
     {M(SET_STATUS, 0xffffffffu)},
     "payload of 4294967295 bytes"},
    /* header */
    {"unknown request 0",
     PRE_NONE,
     {{.m = {.h = {0, V, 0}}}},
     "unknown request 0"},
    {"unknown request 22 (IOTLB_MSG) with an fd",
     PRE_FEAT,
     {{.m = {.h = {22, V, 8}}, .nfds = 1, .kind = FD_MEM}},
     "unknown request 22"},
    {"unknown request 44",
     PRE_NONE,
     {{.m = {.h = {44, V, 0}}}},
     "unknown request 44"},
    {"unknown request 0xffffffff",
     PRE_NONE,
     {{.m = {.h = {0xffffffffu, V, 0}}}},
     "unknown request 4294967295"},
    {"version 0", PRE_NONE, {{.m = {.h = {1, 0, 0}}}}, "version 0"},
    {"version 3", PRE_FEAT, {{.m = {.h = {2, 3, 8}}}}, "version 3"},
    {"truncated header",
     PRE_NONE,
     {{.m = {.h = HDR(SET_FEATURES, 8)}, .send_len = 7}},
     "truncated header"},
    {"truncated payload",
     PRE_FEAT,
     {{.m = {.h = HDR(SET_VRING_ADDR, 40)}, .send_len = 12 + 20}},
     "SET_VRING_ADDR: truncated payload"},
    /* fds */
    {"fd on SET_OWNER",
     PRE_NONE,
     {MF(SET_OWNER, 0, 1, FD_EVENT)},
     "SET_OWNER: 1 fds, expected 0"},
    {"fd on GET_FEATURES",
     PRE_NONE,
     {MF(GET_FEATURES, 0, 2, FD_MEM)},
     "GET_FEATURES: 2 fds, expected 0"},
    {"9 fds on SET_VRING_CALL",
     PRE_FEAT,
     {MF(SET_VRING_CALL, 8, 9, FD_EVENT, .u64 = 0)},
     "control data truncated"},
    {"16 fds on SET_MEM_TABLE",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 32, 16, FD_MEM,
	 .mem = {.nregions = 1, .r = {REG(0, 4096, 0x1000, 0)}})},
     "control data truncated"},
    {"SET_VRING_KICK without an fd",
     PRE_FEAT,
     {M(SET_VRING_KICK, 8, .u64 = 0)},
     "SET_VRING_KICK: 0 fds, expected 1"},
    {"SET_VRING_CALL with NOFD and an fd",
     PRE_FEAT,
     {MF(SET_VRING_CALL, 8, 1, FD_EVENT, .u64 = VIO_VU_VRING_NOFD)},
     "SET_VRING_CALL: 1 fds, expected 0"},
    {"SET_VRING_KICK with NOFD (polling)",
     PRE_FEAT,
     {M(SET_VRING_KICK, 8, .u64 = VIO_VU_VRING_NOFD)},
     "SET_VRING_KICK without an fd"},
    {"SET_MEM_TABLE with no fd",
     PRE_FEAT,
     {M(SET_MEM_TABLE, 8 + 32,
	.mem = {.nregions = 1, .r = {REG(0, 4096, 0x1000, 0)}})},
     "SET_MEM_TABLE: 0 fds, expected 1"},
    {"SET_MEM_TABLE with 2 regions and 1 fd",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 64, 1, FD_MEM,
	 .mem = {.nregions = 2,
		 .r = {REG(0, 4096, 0x1000, 0), REG(4096, 4096, 0x9000, 0)}})},
     "SET_MEM_TABLE: 1 fds, expected 2"},
    {"ADD_MEM_REG without an fd",
     PRE_MEM,
     {M(ADD_MEM_REG, 40, .reg = {.r = REG(0x400000, 4096, 0x1000, 0)})},
     "ADD_MEM_REG: 0 fds, expected 1"},
    {"REM_MEM_REG with 2 fds",
     PRE_MEM,
     {MF(REM_MEM_REG, 40, 2, FD_MEM,
	 .reg = {.r = REG(PRE_GPA, PRE_SIZE, PRE_UADDR, 0)})},
     "REM_MEM_REG: 2 fds"},
    /* vring indexes (the blk device has one queue) */
    {"SET_VRING_NUM queue 1",
     PRE_FEAT,
     {M(SET_VRING_NUM, 8, ST(1, 64))},
     "SET_VRING_NUM: queue 1 of 1"},
    {"SET_VRING_ADDR queue 64",
     PRE_FEAT,
     {M(SET_VRING_ADDR, 40, GOOD_ADDR(64))},
     "SET_VRING_ADDR: queue 64 of 1"},
    {"SET_VRING_BASE queue 0xffffffff",
     PRE_FEAT,
     {M(SET_VRING_BASE, 8, ST(0xffffffffu, 0))},
     "SET_VRING_BASE: queue 4294967295 of 1"},
    {"GET_VRING_BASE queue 1",
     PRE_FEAT,
     {M(GET_VRING_BASE, 8, ST(1, 0))},
     "GET_VRING_BASE: queue 1 of 1"},
    {"SET_VRING_ENABLE queue 1",
     PRE_FEAT,
     {M(SET_VRING_ENABLE, 8, ST(1, 1))},
     "SET_VRING_ENABLE: queue 1 of 1"},
    {"SET_VRING_KICK queue 1",
     PRE_FEAT,
     {MF(SET_VRING_KICK, 8, 1, FD_EVENT, .u64 = 1)},
     "SET_VRING_KICK: payload 0x1"},
    {"SET_VRING_CALL queue 255",
     PRE_FEAT,
     {MF(SET_VRING_CALL, 8, 1, FD_EVENT, .u64 = 255)},
     "SET_VRING_CALL: payload 0xff"},
    {"SET_VRING_ERR reserved bits",
     PRE_FEAT,
     {MF(SET_VRING_ERR, 8, 1, FD_EVENT, .u64 = 1ull << 40)},
     "SET_VRING_ERR: payload 0x10000000000"},
    {"SET_VRING_ENABLE num 2",
     PRE_FEAT,
     {M(SET_VRING_ENABLE, 8, ST(0, 2))},
     "SET_VRING_ENABLE: queue 0 of 1, num 2"},
    /* ring sizes */
    {"SET_VRING_NUM 0",
     PRE_FEAT,
     {M(SET_VRING_NUM, 8, ST(0, 0))},
     "SET_VRING_NUM: size 0"},
    {"SET_VRING_NUM not a power of 2 (split)",
     PRE_FEAT,
     {M(SET_VRING_NUM, 8, ST(0, 48))},
     "SET_VRING_NUM: size 48"},
    {"SET_VRING_NUM past the maximum",
     PRE_FEAT,
     {M(SET_VRING_NUM, 8, ST(0, 2 * QSIZE))},
     "SET_VRING_NUM: size 128"},
    {"SET_VRING_NUM 65536",
     PRE_FEAT,
     {M(SET_VRING_NUM, 8, ST(0, 65536))},
     "SET_VRING_NUM: size 65536"},
    /* ring addresses */
    {"ring addresses not in the memory table",
     PRE_MEM,
     {M(SET_VRING_NUM, 8, ST(0, QSIZE)),
      M(SET_VRING_ADDR, 40, ADDR(0, 0x1000, 0x2000, 0x3000)),
      MF(SET_VRING_KICK, 8, 1, FD_EVENT, .u64 = 0),
      M(SET_VRING_ENABLE, 8, ST(0, 1))},
     "are not in shared memory"},
    {"used ring past the end of the region",
     PRE_MEM,
     {M(SET_VRING_NUM, 8, ST(0, QSIZE)),
      M(SET_VRING_ADDR, 40,
	ADDR(0, PRE_UADDR, PRE_UADDR + 0x1000,
	     PRE_UADDR + PRE_SIZE - 6 - 8 * QSIZE + 2)),
      MF(SET_VRING_KICK, 8, 1, FD_EVENT, .u64 = 0),
      M(SET_VRING_ENABLE, 8, ST(0, 1))},
     "are not in shared memory"},
    {"ring addresses before any memory table",
     PRE_FEAT,
     {M(SET_VRING_NUM, 8, ST(0, QSIZE)), M(SET_VRING_ADDR, 40, GOOD_ADDR(0)),
      MF(SET_VRING_KICK, 8, 1, FD_EVENT, .u64 = 0),
      M(SET_VRING_ENABLE, 8, ST(0, 1))},
     "are not in shared memory"},
    {"SET_MEM_TABLE drops the ring's memory",
     PRE_RING,
     {MF(SET_MEM_TABLE, 8 + 32, 1, FD_MEM,
	 .mem = {.nregions = 1,
		 .r = {REG(PRE_GPA, PRE_SIZE, PRE_UADDR + PRE_SIZE, 0)}})},
     "are not in shared memory"},
    /* QEMU adds every region once per vhost device: a multiqueue net
     * device adds each one per queue pair.  A repeat is counted, not
     * refused ("File exists") and not mapped twice; the ring's memory
     * goes with the last REM_MEM_REG, not the first. */
    {"ADD_MEM_REG of a mapped region, then REM_MEM_REG twice",
     PRE_RING,
     {MF(ADD_MEM_REG, 40, 1, FD_MEM,
	 .reg = {.r = REG(PRE_GPA, PRE_SIZE, PRE_UADDR, 0)}),
      M(REM_MEM_REG, 40, .reg = {.r = REG(PRE_GPA, PRE_SIZE, PRE_UADDR, 0)}),
      M(REM_MEM_REG, 40, .reg = {.r = REG(PRE_GPA, PRE_SIZE, PRE_UADDR, 0)})},
     "are not in shared memory"},
    {"REM_MEM_REG of the ring's memory",
     PRE_RING,
     {M(REM_MEM_REG, 40, .reg = {.r = REG(PRE_GPA, PRE_SIZE, PRE_UADDR, 0)})},
     "are not in shared memory"},
    /* running rings */
    {"SET_VRING_NUM on a running ring",
     PRE_RING,
     {M(SET_VRING_NUM, 8, ST(0, QSIZE))},
     "SET_VRING_NUM on running queue 0"},
    {"SET_VRING_BASE on a running ring",
     PRE_RING,
     {M(SET_VRING_BASE, 8, ST(0, 5))},
     "SET_VRING_BASE on running queue 0"},
    /* memory */
    {"SET_MEM_TABLE 9 regions",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 8 * 32, 8, FD_MEM, .mem = {.nregions = 9})},
     "9 regions (at most 8)"},
    {"SET_MEM_TABLE region of size 0",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 32, 1, FD_MEM,
	 .mem = {.nregions = 1, .r = {REG(0, 0, 0x1000, 0)}})},
     "memory region gpa 0x0 size 0x0"},
    {"SET_MEM_TABLE region larger than its memfd",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 32, 1, FD_MEM,
	 .mem = {.nregions = 1, .r = {REG(0, 4 * PRE_SIZE, 0x1000, 0)}})},
     "Invalid argument"},
    {"SET_MEM_TABLE region wraps",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 32, 1, FD_MEM,
	 .mem = {.nregions = 1, .r = {REG(~0ull - 4095, 8192, 0x1000, 0)}})},
     "Invalid argument"},
    {"SET_MEM_TABLE overlapping regions",
     PRE_FEAT,
     {MF(SET_MEM_TABLE, 8 + 64, 2, FD_MEM,
	 .mem = {.nregions = 2,
		 .r = {REG(0, 0x10000, 0x1000, 0),
		       REG(0x8000, 0x10000, 0x100000, 0)}})},
     "File exists"},
    {"ADD_MEM_REG overlapping",
     PRE_MEM,
     {MF(ADD_MEM_REG, 40, 1, FD_MEM,
	 .reg = {.r = REG(PRE_GPA + PRE_SIZE - 4096, 8192, 0x1000, 0)})},
     "gpa 0x1ff000 size 0x2000 uaddr 0x1000: File exists"},
    {"ADD_MEM_REG past the slots",
     PRE_MEM,
     {MF(ADD_MEM_REG, 40, 1, FD_MEM, .reg = {.r = REG(0, 4096, 0x1000, 0)}),
      MF(ADD_MEM_REG, 40, 1, FD_MEM,
	 .reg = {.r = REG(0x10000, 4096, 0x2000, 0)}),
      MF(ADD_MEM_REG, 40, 1, FD_MEM,
	 .reg = {.r = REG(0x20000, 4096, 0x3000, 0)}),
      MF(ADD_MEM_REG, 40, 1, FD_MEM,
	 .reg = {.r = REG(0x30000, 4096, 0x4000, 0)})},
     "ADD_MEM_REG: all 4 slots in use"},
    {"REM_MEM_REG of a region not present",
     PRE_MEM,
     {M(REM_MEM_REG, 40, .reg = {.r = REG(0x900000, 4096, 0, 0)})},
     "REM_MEM_REG: no region gpa 0x900000"},
    {"REM_MEM_REG with the wrong size",
     PRE_MEM,
     {M(REM_MEM_REG, 40, .reg = {.r = REG(PRE_GPA, 4096, 0, 0)})},
     "REM_MEM_REG: no region"},
    /* config space */
    {"GET_CONFIG past the config space",
     PRE_FEAT,
     {M(GET_CONFIG, 12 + 256, CFG(0, 256))},
     "GET_CONFIG offset 0 size 256"},
    {"GET_CONFIG offset past the config space",
     PRE_FEAT,
     {M(GET_CONFIG, 12 + 4, CFG(0xfffffffeu, 4))},
     "GET_CONFIG offset 4294967294 size 4"},
    /* issue 7.3: only fields the device type names are writable */
    {"SET_CONFIG of the capacity",
     PRE_FEAT,
     {M(SET_CONFIG, 12 + 8, CFG(0, 8))},
     "SET_CONFIG offset 0 size 8: not a field the driver may write"},
    {"SET_CONFIG of writeback without CONFIG_WCE",
     PRE_FEAT,
     {M(SET_CONFIG, 12 + 1, CFG(offsetof(struct virtio_blk_config, wce), 1))},
     "not a field the driver may write"},
    /* issue 7.2: queue fds must be eventfds (a pipe could block or hang
     * up under a worker) */
    {"SET_VRING_CALL with a pipe",
     PRE_FEAT,
     {MF(SET_VRING_CALL, 8, 1, FD_PIPE, .u64 = 0)},
     "SET_VRING_CALL of queue 0: the fd is not an eventfd"},
    {"SET_VRING_KICK with a memfd",
     PRE_FEAT,
     {MF(SET_VRING_KICK, 8, 1, FD_MEM, .u64 = 0)},
     "SET_VRING_KICK of queue 0: the fd is not an eventfd"},
    {"SET_VRING_ERR with a pipe",
     PRE_FEAT,
     {MF(SET_VRING_ERR, 8, 1, FD_PIPE, .u64 = 0)},
     "SET_VRING_ERR of queue 0: the fd is not an eventfd"},
    {"SET_CONFIG past the config space",
     PRE_FEAT,
     {M(SET_CONFIG, 12 + 8, CFG(250, 8))},
     "SET_CONFIG offset 250 size 8 outside config space"},
    /* features, status */
    {"SET_FEATURES without VERSION_1",
     PRE_NONE,
     {M(SET_FEATURES, 8, .u64 = 1ull << VIO_VU_F_PROTOCOL_FEATURES)},
     "SET_FEATURES 0x0 refused"},
    {"SET_FEATURES bits never offered",
     PRE_NONE,
     {M(SET_FEATURES, 8, .u64 = 1ull << 32 | 1ull << 63)},
     "refused"},
    {"SET_PROTOCOL_FEATURES bits never offered",
     PRE_NONE,
     {M(SET_PROTOCOL_FEATURES, 8, .u64 = 1ull << 63)},
     "SET_PROTOCOL_FEATURES 0x8000000000000000: bits never offered"},
    {"SET_STATUS 0x100",
     PRE_FEAT,
     {M(SET_STATUS, 8, .u64 = 0x100)},
     "SET_STATUS 0x100"},
    {"SET_STATUS DRIVER_OK before SET_FEATURES",
     PRE_NONE,
     {M(SET_STATUS, 8, .u64 = 0xf)},
     "DRIVER_OK before SET_FEATURES"},
    /* REPLY_ACK: the failure is answered, then the connection ends */
    {"NEED_REPLY on a refused SET_VRING_NUM",
     PRE_FEAT,
     {{.m = {.h = {VIO_VU_SET_VRING_NUM, V | VIO_VU_FLAG_NEED_REPLY, 8},
	     .p = {ST(0, 0)}}}},
     "SET_VRING_NUM: size 0",
     true},
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static void pre_feat(struct vio_backend *b, int s)
{
	uint64_t f = offered_features(b, s);
	(void)f;
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_FEATURES,
			    1ull << VIRTIO_F_VERSION_1 |
				1ull << VIO_VU_F_PROTOCOL_FEATURES),
		 0);
	uint64_t pf = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	struct fmsg m = mk(VIO_VU_SET_OWNER, 0);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
}

static void pre_mem(struct vio_backend *b, int s)
{
	struct fmsg m = mk(VIO_VU_SET_MEM_TABLE, 8 + 32);
	m.p.mem.nregions = 1;
	m.p.mem.r[0] =
	    (struct vio_vu_region)REG(PRE_GPA, PRE_SIZE, PRE_UADDR, 0);
	int fd = new_memfd(PRE_SIZE);
	CHECK_EQ(fe_msg(b, s, &m, &fd, 1), 0);
	close(fd);
}

static void pre_ring(struct vio_backend *b, int s, int *kick)
{
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_NUM, 0, QSIZE), 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_BASE, 0, 0), 0);
	struct fmsg m = mk(VIO_VU_SET_VRING_ADDR, 40);
	m.p.addr.desc = PRE_UADDR;
	m.p.addr.avail = PRE_UADDR + 0x1000;
	m.p.addr.used = PRE_UADDR + 0x2000;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	*kick = new_eventfd();
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_KICK, 0, *kick), 0);
	/* a frontend that forwards the driver's status */
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_STATUS, 0xb), 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_ENABLE, 0, 1), 0);
	/* STATUS is negotiated: nothing starts before DRIVER_OK */
	CHECK(vio_device_queue(dev, 0) == NULL);
	CHECK(!(vio_device_get_status(dev) & VIRTIO_CONFIG_S_DRIVER_OK));
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_STATUS, 0xf), 0);
	CHECK(vio_device_queue(dev, 0) != NULL); /* started */
	CHECK(vio_device_get_status(dev) & VIRTIO_CONFIG_S_DRIVER_OK);
}

static void hostile_case(const struct hcase *hc)
{
	struct vio_backend *b = backend_up(false);
	int fds_before = test_count_fds();
	int s = fe_connect(b);
	int kick = -1;
	if (hc->pre >= PRE_FEAT)
		pre_feat(b, s);
	if (hc->pre >= PRE_MEM)
		pre_mem(b, s);
	if (hc->pre >= PRE_RING)
		pre_ring(b, s, &kick);

	unsigned last = 0;
	while (last + 1 < NMSG && hc->msg[last + 1].m.h.request)
		last++;
	struct capture cap;
	int r = 0;
	for (unsigned i = 0; i <= last; i++) {
		const struct hmsg *hm = &hc->msg[i];
		int fds[16];
		for (unsigned f = 0; f < hm->nfds; f++)
			fds[f] = hm->kind == FD_MEM    ? new_memfd(PRE_SIZE)
				 : hm->kind == FD_PIPE ? new_pipe_end()
						       : new_eventfd();
		size_t len =
		    hm->send_len ? hm->send_len : 12 + (size_t)hm->m.h.size;
		if (i == last)
			capture_start(&cap);
		fe_send_msg(s, &hm->m, len, fds, hm->nfds);
		for (unsigned f = 0; f < hm->nfds; f++)
			close(fds[f]);
		if (hm->send_len)
			shutdown(s, SHUT_WR);
		r = vio_backend_dispatch(b);
		if (i < last && r) {
			fprintf(stderr, "%s: preamble message %u: %d\n",
				hc->name, i, r);
			CHECK_EQ(r, 0);
		}
	}
	capture_end(&cap);
	if (pipe_rd >= 0)
		close(pipe_rd);
	pipe_rd = -1;
	fprintf(stderr, "[%s]\n%s", hc->name, cap.text);
	bool logged = strstr(cap.text, hc->log) != NULL;
	if (r != -ECONNRESET || !logged)
		fprintf(stderr, "case \"%s\": dispatch %d, want \"%s\" in:\n%s",
			hc->name, r, hc->log, cap.text);
	CHECK_EQ(r, -ECONNRESET);
	CHECK(logged);
	CHECK(!vio_backend_connected(b));
	CHECK_EQ(vio_device_get_status(dev), 0); /* the device was reset */
	CHECK(vio_device_queue(dev, 0) == NULL);
	if (hc->ack) {
		uint64_t v = 0;
		CHECK(fe_reply(s, hc->msg[last].m.h.request, &v, 8));
		CHECK(v != 0);
	}
	CHECK(fe_eof(s));
	close(s);
	if (kick >= 0)
		close(kick);
	/* everything the frontend sent was closed by the backend */
	CHECK_EQ(test_count_fds(), fds_before);

	CHECK(fresh_connection_works(b));
	vio_backend_free(b);
}

static void test_hostile(void)
{
	for (unsigned i = 0; i < NHOSTILE; i++)
		hostile_case(&hostile[i]);
	printf("hostile: %zu cases\n", NHOSTILE);
}

/* ---- the positive flow: a virtio-blk write and read through a ring ---- */

static void positive_flow(bool packed)
{
	struct vio_backend *b = backend_up(true);
	int fds_before = test_count_fds();
	int s = fe_connect(b);

	uint64_t f = offered_features(b, s);
	CHECK(f & (1ull << VIRTIO_F_RING_PACKED));
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 |
			1ull << VIO_VU_F_PROTOCOL_FEATURES |
			(f & (1ull << VIRTIO_RING_F_EVENT_IDX)) |
			(f & (1ull << VIRTIO_BLK_F_FLUSH)) |
			(packed ? 1ull << VIRTIO_F_RING_PACKED : 0);
	uint64_t pf = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
	uint64_t need = 1ull << VIO_VU_PF_REPLY_ACK | 1ull << VIO_VU_PF_MQ |
			1ull << VIO_VU_PF_CONFIG |
			1ull << VIO_VU_PF_CONFIGURE_MEM_SLOTS |
			1ull << VIO_VU_PF_STATUS;
	CHECK((pf & need) == need);
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	struct fmsg m = mk(VIO_VU_SET_OWNER, 0);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_FEATURES, want), 0);
	uint64_t v = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_QUEUE_NUM, &v));
	CHECK_EQ(v, 1);
	CHECK(fe_get_u64(b, s, VIO_VU_GET_MAX_MEM_SLOTS, &v));
	CHECK_EQ(v, 4);
	CHECK(fe_get_u64(b, s, VIO_VU_GET_STATUS, &v));
	CHECK_EQ(v, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			VIRTIO_CONFIG_S_FEATURES_OK);

	/* config space: capacity */
	m = mk(VIO_VU_GET_CONFIG, 12 + sizeof(struct virtio_blk_config));
	m.p.config.size = sizeof(struct virtio_blk_config);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	struct vio_vu_config cfg;
	CHECK(fe_reply(s, VIO_VU_GET_CONFIG, &cfg, m.h.size));
	CHECK_EQ(cfg.size, sizeof(struct virtio_blk_config));
	struct virtio_blk_config bc;
	memcpy(&bc, cfg.data, sizeof(bc));
	CHECK_EQ(bc.capacity, IMG_SIZE / 512);
	/* a slice, at an offset */
	m = mk(VIO_VU_GET_CONFIG, 12 + 8);
	m.p.config.size = 8;
	m.p.config.offset = 0;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	CHECK(fe_reply(s, VIO_VU_GET_CONFIG, &cfg, 12 + 8));
	CHECK(memcmp(cfg.data, &bc.capacity, 8) == 0);

	/* memory and the ring */
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	REQUIRE(vio_mem_add_region(mem, 2u << 20, NULL) == 0);
	int kick = new_eventfd(), call = new_eventfd();
	struct vio_vq_opts qc = {
	    .index = 0,
	    .size = QSIZE,
	    .packed = packed,
	    .event_idx = want & (1ull << VIRTIO_RING_F_EVENT_IDX),
	    .notify = kick_notify,
	    .opaque = &kick,
	    .name = "test/q0",
	};
	struct vio_vq *vq = vio_vq_new_driver(&qc, mem);
	REQUIRE(vq);
	uint64_t da;
	uint8_t *wbuf = vio_mem_alloc(mem, 8192, 4096, &da);
	uint8_t *rbuf = vio_mem_alloc(mem, 8192, 4096, &da);
	REQUIRE(wbuf && rbuf);
	send_mem_table(b, s, mem);

	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_NUM, 0, QSIZE), 0);
	/* packed: avail and used wrap counters 1, indexes 0 */
	CHECK_EQ(
	    fe_state(b, s, VIO_VU_SET_VRING_BASE, 0, packed ? 0x80008000u : 0),
	    0);
	struct vio_vq_layout l;
	vio_vq_get_layout(vq, &l);
	m = mk(VIO_VU_SET_VRING_ADDR, 40);
	m.p.addr.index = 0;
	m.p.addr.desc = (uintptr_t)l.desc;
	m.p.addr.avail = (uintptr_t)l.driver;
	m.p.addr.used = (uintptr_t)l.device;
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_CALL, 0, call), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_ERR, 0, -1), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_KICK, 0, kick), 0);
	/* PROTOCOL_FEATURES: rings start disabled */
	CHECK(vio_device_queue(dev, 0) == NULL);
	/* the frontend forwards the driver's status (as QEMU's
	 * vhost-user-blk and vio's frontend do) */
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_STATUS,
			    VIRTIO_CONFIG_S_ACKNOWLEDGE |
				VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK),
		 0);
	CHECK_EQ(fe_state(b, s, VIO_VU_SET_VRING_ENABLE, 0, 1), 0);
	/* STATUS negotiated (issue 7.4): the ring is enabled but no buffer
	 * is used before the driver's DRIVER_OK (VIRTIO 1.x 3.1.1) */
	CHECK(vio_device_queue(dev, 0) == NULL);
	CHECK(fe_get_u64(b, s, VIO_VU_GET_STATUS, &v));
	CHECK(!(v & VIRTIO_CONFIG_S_DRIVER_OK));
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_STATUS,
			    VIRTIO_CONFIG_S_ACKNOWLEDGE |
				VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK |
				VIRTIO_CONFIG_S_DRIVER_OK),
		 0);
	CHECK(vio_device_queue(dev, 0) != NULL);
	CHECK(fe_get_u64(b, s, VIO_VU_GET_STATUS, &v));
	CHECK(v & VIRTIO_CONFIG_S_DRIVER_OK);

	/* write 8 KiB at sector 8, read it back */
	uint64_t rs = test_seed() ^ packed;
	for (unsigned i = 0; i < 8192; i++)
		wbuf[i] = (uint8_t)test_rand(&rs);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_OUT, 8, wbuf, 8192),
		 VIRTIO_BLK_S_OK);
	/* new memory table on the running ring: stopped, restarted at the
	 * saved base */
	send_mem_table(b, s, mem);
	CHECK(vio_device_queue(dev, 0) != NULL);
	memset(rbuf, 0, 8192);
	CHECK_EQ(blk_rq(vq, call, mem, VIRTIO_BLK_T_IN, 8, rbuf, 8192),
		 VIRTIO_BLK_S_OK);
	CHECK(memcmp(rbuf, wbuf, 8192) == 0);
	uint8_t img[8192];
	int ifd = open(img_path, O_RDONLY | O_CLOEXEC);
	REQUIRE(ifd >= 0);
	CHECK(pread(ifd, img, sizeof(img), 8 * 512) == (ssize_t)sizeof(img));
	close(ifd);
	CHECK(memcmp(img, wbuf, 8192) == 0);
	/* a replaced call fd on a running ring is used from then on */
	int call2 = new_eventfd();
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_CALL, 0, call2), 0);
	CHECK_EQ(blk_rq(vq, call2, mem, VIRTIO_BLK_T_IN, 0, rbuf, 512),
		 VIRTIO_BLK_S_OK);
	CHECK(!vio_vq_broken(vq));

	/* GET_VRING_BASE stops the ring and says where it stopped */
	m = mk(VIO_VU_GET_VRING_BASE, 8);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	struct vio_vu_state st = {0};
	CHECK(fe_reply(s, VIO_VU_GET_VRING_BASE, &st, 8));
	CHECK_EQ(st.index, 0);
	if (packed) /* 9 descriptors, wrap counter still 1 */
		CHECK_EQ(st.num & 0xffff, 9 | 1u << 15);
	else
		CHECK_EQ(st.num, 3);
	CHECK(vio_device_queue(dev, 0) == NULL);

	/* disconnect: the device is reset and the memory unmapped */
	close(s);
	CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);
	CHECK_EQ(vio_device_get_status(dev), 0);
	vio_vq_free(vq);
	vio_mem_free(mem);
	close(kick);
	close(call);
	close(call2);
	CHECK_EQ(test_count_fds(), fds_before);
	CHECK(fresh_connection_works(b));
	vio_backend_free(b);
}

/* ---- leaks ---- */

static void cycle(struct vio_backend *b)
{
	int s = fe_connect(b);
	uint64_t f = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_FEATURES, &f));
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_FEATURES,
			    1ull << VIRTIO_F_VERSION_1 |
				1ull << VIO_VU_F_PROTOCOL_FEATURES),
		 0);
	uint64_t pf = 0;
	CHECK(fe_get_u64(b, s, VIO_VU_GET_PROTOCOL_FEATURES, &pf));
	CHECK_EQ(fe_set_u64(b, s, VIO_VU_SET_PROTOCOL_FEATURES, pf), 0);
	struct fmsg m = mk(VIO_VU_SET_OWNER, 0);
	CHECK_EQ(fe_msg(b, s, &m, NULL, 0), 0);
	pre_mem(b, s);
	int kick = new_eventfd(), call = new_eventfd();
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_CALL, 0, call), 0);
	CHECK_EQ(fe_vring_fd(b, s, VIO_VU_SET_VRING_KICK, 0, kick), 0);
	close(kick);
	close(call);
	close(s);
	CHECK_EQ(vio_backend_dispatch(b), -ECONNRESET);
}

static void test_leaks(void)
{
	struct vio_backend *b = backend_up(false);
	vio_log_set_quiet(1); /* two lines per connection otherwise */
	cycle(b);	      /* warm-up: lazily allocated state settles */
	int fds = test_count_fds(), maps = test_count_maps();
	int failures = test_failures;
	for (int i = 0; i < 1000 && test_failures == failures; i++)
		cycle(b);
	int fds2 = test_count_fds(), maps2 = test_count_maps();
	vio_log_set_quiet(0);
	printf("leaks: fds %d -> %d, maps %d -> %d\n", fds, fds2, maps, maps2);
	CHECK_EQ(fds2, fds);
	CHECK_EQ(maps2, maps);
	vio_backend_free(b);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(55); /* a hang is a failure with a core, not a meson timeout */
	fe_setup("vu-test");

	test_hostile();
	positive_flow(false);
	positive_flow(true);
	test_leaks();

	fe_teardown();
	return test_result("vu_backend");
}
