/* SPDX-License-Identifier: MIT */
/*
 * bench/dirtylog: the cost of dirty-page logging (src/ring/dirtylog.h) on
 * the ring path, logging on vs off in the same run.
 *
 * One thread plays driver and device on one queue (256 entries): the
 * driver adds a batch of blk-like chains (a 16-byte readable header, a
 * 4 KiB writable data buffer, a 1-byte writable status), the device pops
 * them all and pushes them back as one batch, the driver takes them back.
 * The buffers are not touched: the figure is the ring's own cost per
 * chain, where logging's extra work (a record per writable descriptor at
 * pop, the bits at push) is the largest share it can be.  Rounds
 * alternate off / on; each mode's figure is the median of its rounds.
 *
 *   dirtylog [--rounds N] [--chains N] [--batch N] [--only off|on]
 *
 * --only runs one mode (its column shows it, the other 0): for counting
 * instructions (valgrind --tool=cachegrind --cache-sim=no) on a machine
 * too busy for stable times, and for comparing "off" with a tree
 * without logging.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring/dirtylog.h"
#include <vio/mem.h>
#include <vio/ring.h>

#define QSZ 256u

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct bench {
	struct vio_mem *mem;
	struct vio_memtable *mt;
	struct vio_vq *drv, *dev;
	struct vio_dirty_log log;
	struct vio_vq_log_opts lo;
	uint8_t *hdr, *data, *status;
};

static void fail(const char *what)
{
	fprintf(stderr, "dirtylog: %s\n", what);
	exit(1);
}

static void setup(struct bench *b, bool packed, bool indirect)
{
	memset(b, 0, sizeof(*b));
	b->mem = vio_mem_new();
	if (!b->mem || vio_mem_add_region(b->mem, 8u << 20, NULL))
		fail("memory");
	struct vio_region rr = *vio_mem_region(b->mem, 0);
	rr.fd = -1;
	b->mt = vio_memtable_new(1);
	if (!b->mt || vio_memtable_add(b->mt, &rr))
		fail("memtable");
	struct vio_vq_opts c = {.size = QSZ,
				.packed = packed,
				.event_idx = true,
				.indirect = indirect,
				.name = "bench"};
	b->drv = vio_vq_new_driver(&c, b->mem);
	struct vio_vq_layout l;
	if (!b->drv)
		fail("driver vq");
	vio_vq_get_layout(b->drv, &l);
	b->dev = vio_vq_new_device(&c, &l, b->mt);
	uint64_t da;
	b->hdr = vio_mem_alloc(b->mem, 16u * QSZ, 64, &da);
	b->data = vio_mem_alloc(b->mem, 4096u * QSZ, 4096, &da);
	b->status = vio_mem_alloc(b->mem, QSZ, 64, &da);
	if (!b->dev || !b->hdr || !b->data || !b->status)
		fail("device vq or buffers");
	b->log.size = ((rr.addr + rr.size) >> 15) + 1;
	b->log.bits = calloc(1, b->log.size);
	if (!b->log.bits)
		fail("log");
	b->lo = (struct vio_vq_log_opts){.log = &b->log,
					 .ring = true,
					 .device_gpa = l.device_addr,
					 .desc_gpa = l.desc_addr};
}

static void teardown(struct bench *b)
{
	vio_vq_free(b->dev);
	vio_vq_free(b->drv);
	vio_memtable_free(b->mt);
	vio_mem_free(b->mem);
	free(b->log.bits);
}

/* ns per chain for n chains in batches of batch. */
static double run(struct bench *b, unsigned n, unsigned batch)
{
	struct vio_iov iov[4];
	struct vio_used u[QSZ];
	uint64_t t0 = now_ns();
	for (unsigned done = 0; done < n; done += batch) {
		for (unsigned k = 0; k < batch; k++) {
			struct vio_sg sg[3] = {
			    {b->hdr + 16 * k, 16},
			    {b->data + 4096 * k, 4096},
			    {b->status + k, 1},
			};
			if (vio_vq_add(b->drv, sg, 1, 2, b->hdr + 16 * k))
				fail("add");
		}
		vio_vq_kick_prepare(b->drv);
		for (unsigned k = 0; k < batch; k++) {
			struct vio_chain c;
			if (vio_vq_pop(b->dev, &c, iov, 4) != 1)
				fail("pop");
			u[k] = (struct vio_used){c.head, 4097};
		}
		if (vio_vq_push_batch(b->dev, u, batch))
			fail("push");
		vio_vq_call_prepare(b->dev);
		for (unsigned k = 0; k < batch; k++)
			if (!vio_vq_get(b->drv, NULL))
				fail("get");
	}
	return (double)(now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	unsigned rounds = 21, chains = 1u << 20, batch = 32;
	int only = -1; /* -1 both, 0 off, 1 on */
	static const struct option lo[] = {{"rounds", 1, NULL, 'r'},
					   {"chains", 1, NULL, 'c'},
					   {"batch", 1, NULL, 'b'},
					   {"only", 1, NULL, 'o'},
					   {NULL, 0, NULL, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		unsigned v = (unsigned)strtoul(optarg, NULL, 0);
		if (ch == 'o' &&
		    (!strcmp(optarg, "off") || !strcmp(optarg, "on")))
			only = !strcmp(optarg, "on");
		else if (ch == 'o')
			fail("--only off|on");
		else if (ch == 'r')
			rounds = v;
		else if (ch == 'c')
			chains = v;
		else if (ch == 'b')
			batch = v;
		else
			return 2;
	}
	if (!rounds || rounds > 1001 || !chains || !batch || batch > QSZ / 3)
		fail("--rounds 1..1001, --chains > 0, --batch 1..85");
	chains -= chains % batch;
	printf("# dirtylog: %u chains (16 B out, 4 KiB + 1 B in) per round, "
	       "batch %u, %u rounds per mode, median ns/chain\n",
	       chains, batch, rounds);
	printf("%-16s %10s %10s %9s\n", "ring", "log off", "log on",
	       "overhead");
	double *off = calloc(rounds, sizeof(double));
	double *on = calloc(rounds, sizeof(double));
	if (!off || !on)
		fail("memory");
	for (int packed = 0; packed < 2; packed++)
		for (int ind = 0; ind < 2; ind++) {
			struct bench b;
			setup(&b, packed, ind);
			run(&b, chains / 4, batch); /* warm-up */
			for (unsigned r = 0; r < rounds; r++) {
				off[r] = on[r] = 0;
				if (vio_vq_set_log(b.dev, NULL))
					fail("set_log");
				if (only != 1)
					off[r] = run(&b, chains, batch);
				if (vio_vq_set_log(b.dev, &b.lo))
					fail("set_log");
				if (only != 0)
					on[r] = run(&b, chains, batch);
			}
			double mo = median(off, rounds),
			       mn = median(on, rounds);
			char name[32];
			snprintf(name, sizeof(name), "%s%s",
				 packed ? "packed" : "split",
				 ind ? "+indirect" : "");
			printf("%-16s %10.1f %10.1f %8.1f%%\n", name, mo, mn,
			       mo > 0 ? (mn - mo) / mo * 100 : 0);
			teardown(&b);
		}
	free(off);
	free(on);
	return 0;
}
