/* SPDX-License-Identifier: MIT */
/*
 * vio_vq_set_polled (the engine's busy-poll mode): while a queue is
 * polled, the device's own re-arm (vio_vq_enable_notify when it finds the
 * ring empty, 2.7.10) asks the driver for nothing, so a driver adding
 * buffers does not kick (a system call per kick, for a device that reads
 * the ring anyway); enable_notify still answers whether chains wait.
 * Turning polling off asks for kicks again.  Split and packed, with and
 * without EVENT_IDX.
 *
 * Before vio_vq_set_polled existed, a polled device's re-arm left
 * notifications on and testpmd's virtio_user spent a fifth of its time in
 * write() on the kick eventfd (perf, bench/net guest-tx).
 */
#include <string.h>

#include "ring_env.h"
#include "test.h"
#include <vio/mem.h>
#include <vio/ring.h>

/* CHECK, saying which case failed */
#define CHECK_MSG(cond, ...)                                                   \
	do {                                                                   \
		bool _ok = (cond);                                             \
		if (!_ok)                                                      \
			fprintf(stderr, __VA_ARGS__), fputc('\n', stderr);     \
		CHECK(_ok);                                                    \
	} while (0)

struct env {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	uint8_t *buf;
};

static void env_init(struct env *e, bool packed, bool event_idx)
{
	memset(e, 0, sizeof(*e));
	e->mem = vio_mem_new();
	REQUIRE(e->mem);
	REQUIRE(vio_mem_add_region(e->mem, 1 << 20, NULL) == 0);
	e->mt = ring_env_table(vio_mem_region(e->mem, 0), 0, 1);
	struct vio_vq_opts c = {.size = 16,
				.packed = packed,
				.event_idx = event_idx,
				.name = "polled"};
	ring_env_pair(&c, NULL, e->mem, e->mt, &e->drv, &e->dev);
	uint64_t da;
	e->buf = vio_mem_alloc(e->mem, 4096, 64, &da);
	REQUIRE(e->buf);
}

static void env_fini(struct env *e)
{
	vio_vq_free(e->dev);
	vio_vq_free(e->drv);
	vio_memtable_free(e->mt);
	vio_mem_free(e->mem);
}

/* The driver adds one buffer: does it have to notify? */
static bool add_kicks(struct env *e, void *token)
{
	struct vio_sg sg = {e->buf, 64};
	REQUIRE(vio_vq_add(e->drv, &sg, 1, 0, token) == 0);
	return vio_vq_kick_prepare(e->drv);
}

/* The device takes everything and hands it back. */
static unsigned drain(struct env *e)
{
	unsigned n = 0;
	struct vio_chain c;
	struct vio_iov iov[4];
	while (vio_vq_pop(e->dev, &c, iov, 4) > 0) {
		REQUIRE(vio_vq_push(e->dev, c.head, 0) == 0);
		n++;
	}
	while (vio_vq_get(e->drv, NULL))
		;
	return n;
}

static void run(bool packed, bool event_idx)
{
	const char *what = packed ? (event_idx ? "packed+event" : "packed")
				  : (event_idx ? "split+event" : "split");
	struct env e;
	env_init(&e, packed, event_idx);
	int t1, t2, t3;

	/* not polled: a device that re-arms on an empty ring gets kicks */
	CHECK(vio_vq_enable_notify(e.dev));
	CHECK_MSG(add_kicks(&e, &t1), "%s: kick wanted before polling", what);
	CHECK_EQ(drain(&e), 1u);

	/* polled: the device's re-arm asks for nothing, but still says
	 * whether chains wait */
	CHECK(!vio_vq_set_polled(e.dev, true));
	for (int round = 0; round < 3; round++) {
		CHECK(vio_vq_enable_notify(e.dev)); /* empty: "armed" */
		CHECK_MSG(!add_kicks(&e, &t2), "%s: kick while polled (%d)",
			  what, round);
		CHECK_MSG(!vio_vq_enable_notify(e.dev),
			  "%s: polled re-arm missed a waiting chain", what);
		vio_vq_disable_notify(e.dev);
		CHECK_EQ(drain(&e), 1u);
	}

	/* polling off: kicks wanted again; chains already there say so */
	CHECK(vio_vq_set_polled(e.dev, false)); /* empty */
	CHECK_MSG(add_kicks(&e, &t3), "%s: no kick after polling", what);
	CHECK(!vio_vq_set_polled(e.dev, true));
	CHECK_MSG(!vio_vq_set_polled(e.dev, false),
		  "%s: set_polled(false) missed a waiting chain", what);
	CHECK_EQ(drain(&e), 1u);
	env_fini(&e);
}

int main(void)
{
	run(false, false);
	run(false, true);
	run(true, false);
	run(true, true);
	return test_result("vq_polled");
}
