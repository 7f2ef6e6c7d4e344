/* SPDX-License-Identifier: MIT */
/*
 * bench/ring: the physical limit of the two CPUs, the figure the
 * virtqueue runs are printed as a ratio of: a minimal single-producer/
 * single-consumer ring of 16-byte slots (indices on their own cache
 * lines, each side caching the other's index, one index publish per
 * batch), verified like the vq runs (every slot's value checked).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

/* ---- the physical limit: a minimal SPSC ring ---- */

struct spsc_slot {
	uint64_t token;
	uint32_t len, pad;
};

struct spsc {
	_Alignas(CACHELINE) struct spsc_slot slot[QSZ];
	_Alignas(CACHELINE) uint32_t head; /* producer publishes */
	_Alignas(CACHELINE) uint32_t tail; /* consumer publishes */
	_Alignas(CACHELINE) int go;
	_Alignas(CACHELINE) int stop;
	_Alignas(CACHELINE) uint64_t produced_final; /* valid once done */
	int done;
	int cpu[2];
	unsigned batch;
	uint64_t window_ns, window_produced, consumed;
	bool cons_ok;
	char err[160];
};

static void *spsc_producer(void *arg)
{
	struct spsc *s = arg;
	uint32_t head = 0, cached_tail = 0;
	uint64_t seq = 0;

	pin(s->cpu[0]);
	wait_go(&s->go);
	uint64_t t0 = now_ns();
	while (!LOAD(&s->stop)) {
		uint32_t room = QSZ - (head - cached_tail);
		if (room < s->batch) {
			cached_tail = LOAD_ACQ(&s->tail);
			room = QSZ - (head - cached_tail);
			if (!room)
				continue;
		}
		uint32_t n = room < s->batch ? room : s->batch;
		for (uint32_t k = 0; k < n; k++) {
			struct spsc_slot *sl = &s->slot[(head + k) % QSZ];
			sl->token = ++seq;
			sl->len = (uint32_t)seq & 63;
		}
		head += n;
		STORE_REL(&s->head, head);
	}
	s->window_ns = now_ns() - t0;
	s->window_produced = seq;
	STORE(&s->produced_final, seq);
	STORE_REL(&s->done, 1);
	return NULL;
}

static void *spsc_consumer(void *arg)
{
	struct spsc *s = arg;
	uint32_t tail = 0, cached_head = 0, since_publish = 0;
	uint64_t expect = 1;

	s->cons_ok = false;
	if (pin(s->cpu[1])) {
		snprintf(s->err, sizeof(s->err),
			 "cannot pin the consumer to CPU %d", s->cpu[1]);
		STORE_REL(&s->stop, 1);
		while (!LOAD_ACQ(&s->done))
			STORE_REL(&s->tail, LOAD_ACQ(&s->head));
		return NULL;
	}
	wait_go(&s->go);
	for (;;) {
		if (tail == cached_head) {
			if (since_publish) {
				STORE_REL(&s->tail, tail);
				since_publish = 0;
			}
			cached_head = LOAD_ACQ(&s->head);
			if (tail == cached_head) {
				if (LOAD_ACQ(&s->done) &&
				    LOAD_ACQ(&s->head) == tail)
					break;
				cpu_relax();
				continue;
			}
		}
		const struct spsc_slot *sl = &s->slot[tail % QSZ];
		uint64_t tok = sl->token;
		uint32_t len = sl->len;
		if (tok != expect || len != ((uint32_t)expect & 63)) {
			snprintf(s->err, sizeof(s->err),
				 "slot %u: token %llu, expected %llu",
				 tail % QSZ, (unsigned long long)tok,
				 (unsigned long long)expect);
			goto out;
		}
		expect++;
		tail++;
		if (++since_publish == s->batch) {
			STORE_REL(&s->tail, tail);
			since_publish = 0;
		}
	}
	s->cons_ok = true;
out:
	s->consumed = expect - 1;
	if (!s->cons_ok)
		STORE_REL(&s->stop, 1);
	/* a failed consumer leaves the producer spinning on a full ring:
	 * keep freeing slots until it has stopped */
	while (!s->cons_ok && !LOAD_ACQ(&s->done))
		STORE_REL(&s->tail, LOAD_ACQ(&s->head));
	return NULL;
}

void run_spsc(const struct opts *o, unsigned batch, struct result *res)
{
	struct spsc *s;

	memset(res, 0, sizeof(*res));
	if (posix_memalign((void **)&s, CACHELINE, sizeof(*s))) {
		snprintf(res->err, sizeof(res->err), "out of memory");
		return;
	}
	memset(s, 0, sizeof(*s));
	s->batch = batch;
	s->cpu[0] = o->cpu[0];
	s->cpu[1] = o->cpu[1];
	if (run_threads(spsc_producer, spsc_consumer, s, &s->go, &s->stop,
			o->seconds)) {
		snprintf(res->err, sizeof(res->err), "pthread_create failed");
	} else if (!s->cons_ok) {
		snprintf(res->err, sizeof(res->err), "%s", s->err);
	} else if (s->consumed != s->produced_final || !s->consumed) {
		snprintf(res->err, sizeof(res->err),
			 "produced %llu, consumed %llu",
			 (unsigned long long)s->produced_final,
			 (unsigned long long)s->consumed);
	} else {
		res->ok = true;
		res->bufs_per_s =
		    (double)s->window_produced * 1e9 / (double)s->window_ns;
	}
	free(s);
}
