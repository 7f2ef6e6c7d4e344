/* SPDX-License-Identifier: MIT */
/*
 * vio_vq_pop_burst with the driver on another thread, and no other
 * synchronisation between the two than the ring itself: no kicks, no
 * calls, no locks.  The driver adds one-descriptor buffers four at a time
 * (so packed bursts take whole cache lines of descriptors) and the device
 * spins on bursts, writes a sequence number into each buffer and returns
 * it.  Every buffer must come back once, in order, with its number.
 *
 * Under ThreadSanitizer (suite "threads") this is what shows that a burst
 * orders its reads of the descriptors' bodies after the flags that
 * publish them in a way the memory model (and TSan) sees: a burst that
 * loaded the flags relaxed and relied on a separate fence was reported
 * as a data race on the descriptor ring.  Both formats.
 */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "ring_env.h"
#include "test.h"
#include <vio/mem.h>
#include <vio/ring.h>

#define QSZ 64
#define TOTAL 20000u
#define BUFSZ 64u

struct tenv {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	uint8_t *arena;
	bool dev_late, drv_late; /* each thread's own, read after join */
	unsigned dev_bad, drv_bad, by_burst;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *device_thread(void *arg)
{
	struct tenv *e = arg;
	struct vio_chain c[16];
	struct vio_iov iov[64];
	unsigned done = 0;
	uint64_t deadline = now_ms() + 40000;
	while (done < TOTAL) {
		int n = vio_vq_pop_burst(e->dev, c, iov, 16);
		if (n < 0) {
			e->dev_bad++;
			return NULL;
		}
		if (n == 0) {
			/* nothing yet (every chain here is of a burst's
			 * kind: one that a burst refused stays, and shows
			 * as a timeout) */
			if (now_ms() > deadline) {
				e->dev_late = true;
				return NULL;
			}
			sched_yield();
			continue;
		}
		e->by_burst += (unsigned)n;
		for (int k = 0; k < n; k++) {
			if (c[k].nr_in != 1 || c[k].in[0].len != BUFSZ) {
				e->dev_bad++;
			} else {
				uint32_t seq = done + (unsigned)k;
				memcpy(c[k].in[0].base, &seq, sizeof(seq));
			}
			if (vio_vq_push(e->dev, c[k].head, sizeof(uint32_t)) <
			    0)
				e->dev_bad++;
		}
		done += (unsigned)n;
	}
	return NULL;
}

static void *driver_thread(void *arg)
{
	struct tenv *e = arg;
	unsigned added = 0, got = 0;
	uint64_t deadline = now_ms() + 40000;
	static uint8_t *slot_of[TOTAL];
	while (got < TOTAL) {
		bool busy = false;
		if (added < TOTAL && vio_vq_num_free(e->drv) >= 4) {
			for (unsigned i = 0; i < 4 && added < TOTAL; i++) {
				uint8_t *b =
				    e->arena + (added % (4 * QSZ)) * BUFSZ;
				memset(b, 0xee, BUFSZ);
				struct vio_sg sg = {b, BUFSZ};
				if (vio_vq_add(e->drv, &sg, 0, 1, b) < 0) {
					e->drv_bad++;
					return NULL;
				}
				slot_of[added++] = b;
			}
			vio_vq_kick_prepare(e->drv);
			busy = true;
		}
		uint32_t len;
		uint8_t *b;
		while ((b = vio_vq_get(e->drv, &len))) {
			uint32_t seq;
			memcpy(&seq, b, sizeof(seq));
			e->drv_bad += b != slot_of[got] || len != sizeof(seq) ||
				      seq != got;
			got++;
			busy = true;
		}
		if (!busy) {
			if (now_ms() > deadline) {
				e->drv_late = true;
				return NULL;
			}
			sched_yield();
		}
	}
	return NULL;
}

static void run(bool packed)
{
	struct tenv e;
	memset(&e, 0, sizeof(e));
	e.mem = vio_mem_new();
	REQUIRE(e.mem);
	REQUIRE(vio_mem_add_region(e.mem, 1 << 20, NULL) == 0);
	e.mt = ring_env_table(vio_mem_region(e.mem, 0), 0, 1);
	struct vio_vq_opts o = {.size = QSZ, .packed = packed, .name = "bt"};
	ring_env_pair(&o, NULL, e.mem, e.mt, &e.drv, &e.dev);
	uint64_t daddr;
	e.arena = vio_mem_alloc(e.mem, 4 * QSZ * BUFSZ, 64, &daddr);
	REQUIRE(e.arena);

	pthread_t td, tv;
	REQUIRE(pthread_create(&tv, NULL, device_thread, &e) == 0);
	REQUIRE(pthread_create(&td, NULL, driver_thread, &e) == 0);
	pthread_join(td, NULL);
	pthread_join(tv, NULL);
	CHECK(!e.dev_late);
	CHECK(!e.drv_late);
	CHECK_EQ(e.dev_bad, 0);
	CHECK_EQ(e.drv_bad, 0);
	CHECK_EQ(e.by_burst, TOTAL);
	CHECK(!vio_vq_broken(e.dev));
	CHECK(!vio_vq_broken(e.drv));
	printf("burst threads (%s): %u buffers\n", packed ? "packed" : "split",
	       e.by_burst);
	vio_vq_free(e.dev);
	vio_vq_free(e.drv);
	vio_memtable_free(e.mt);
	vio_mem_free(e.mem);
}

int main(void)
{
	run(true);
	run(false);
	return test_result("ring_burst_threads");
}
