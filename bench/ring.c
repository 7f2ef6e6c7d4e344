/* SPDX-License-Identifier: MIT */
/*
 * bench/ring: virtqueue throughput between two CPUs, in the manner of
 * Linux tools/virtio/ringtest.
 *
 * A driver thread (CPU 0) and a device thread (CPU 1) share one queue of
 * 256 entries in memfd memory.  The driver adds a batch of one-segment
 * 64-byte writable buffers, kicks (the notify hook only counts), and
 * harvests used buffers with vio_vq_get; the device busy-polls with
 * vio_vq_pop and returns chains with vio_vq_push_batch (a batch at most as
 * large as the driver's), then vio_vq_call (counted the same way).  No
 * syscalls on the data path: this measures the ring itself.
 *
 * The same run measures the physical limit of the two CPUs: a minimal
 * single-producer/single-consumer ring of 16-byte slots (indices on their
 * own cache lines, each side caching the other's index, one index publish
 * per batch).  The vq figure is printed as a ratio of it.
 *
 * Every run is verified: each token comes back exactly once with the
 * length the device gave it, nothing is left in flight, neither end is
 * broken.  A failed check fails the whole benchmark (exit 1), so a broken
 * ring cannot produce a fast number.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vio/mem.h>
#include <vio/ring.h>

#include "ring.h"

#define BUF_LEN 64u
#define MAX_BATCH QSZ
#define MAX_RUNS 101
#define DRAIN_NS 2000000000ull /* a lost buffer is reported after 2 s */

/* ---- one measured run ---- */

/*
 * Shared between the main thread and the two workers.  Control flags and
 * each side's counters live on their own cache lines so that the
 * benchmark's bookkeeping does not add traffic of its own.
 */
struct run {
	/* configuration, read-only while running */
	bool packed, event_idx;
	unsigned batch;
	int cpu[2];
	struct vio_vq *drv, *dev;
	uint8_t *arena; /* QSZ buffers of BUF_LEN bytes */

	_Alignas(CACHELINE) int go;	    /* main -> both: start */
	_Alignas(CACHELINE) int stop;	    /* main -> driver: stop adding */
	_Alignas(CACHELINE) int dev_stop;   /* driver -> device: all returned */
	_Alignas(CACHELINE) uint64_t kicks; /* driver's notify hook */
	_Alignas(CACHELINE) uint64_t calls; /* device's notify hook */

	/* results, written by each worker before it exits */
	_Alignas(CACHELINE) uint64_t added, completed, window_completed;
	uint64_t window_ns;
	uint64_t popped;
	bool drv_ok, dev_ok;
	char drv_err[160], dev_err[160];
};

static void on_kick(struct vio_vq *vq, void *opaque)
{
	struct run *r = opaque;
	r->kicks++;
}

static void on_call(struct vio_vq *vq, void *opaque)
{
	struct run *r = opaque;
	r->calls++;
}

int pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void wait_go(const int *go)
{
	while (!LOAD_ACQ(go))
		cpu_relax();
}

/* The driver's view of one buffer; the token is its address. */
struct tok {
	uint32_t slot;
	bool busy;
};

/* Length the device reports for the buffer in slot s: small, non-zero,
 * derived from where the buffer is, so that a used entry carrying the
 * wrong id or length is caught. */
static inline uint32_t expect_len(uint32_t slot)
{
	return slot % 61 + 1;
}

/* A used buffer came back: it must be in flight, with its length. */
static bool take_back(struct run *r, struct tok *t, uint32_t len)
{
	if (!t->busy) {
		snprintf(r->drv_err, sizeof(r->drv_err),
			 "token %u came back twice", t->slot);
		return false;
	}
	if (len != expect_len(t->slot)) {
		snprintf(r->drv_err, sizeof(r->drv_err),
			 "token %u came back with length %u, expected %u",
			 t->slot, len, expect_len(t->slot));
		return false;
	}
	t->busy = false;
	return true;
}

static void *driver_main(void *arg)
{
	struct run *r = arg;
	struct tok toks[QSZ];
	uint16_t free_stack[QSZ];
	unsigned nfree = QSZ;
	uint64_t added = 0, completed = 0;
	uint32_t len;
	struct tok *t;

	r->drv_ok = false;
	for (unsigned i = 0; i < QSZ; i++) {
		toks[i].slot = i;
		toks[i].busy = false;
		free_stack[i] = (uint16_t)(QSZ - 1 - i);
	}
	if (pin(r->cpu[0]))
		snprintf(r->drv_err, sizeof(r->drv_err),
			 "cannot pin the driver to CPU %d", r->cpu[0]);
	wait_go(&r->go);
	uint64_t t0 = now_ns();
	while (!LOAD(&r->stop)) {
		unsigned n = 0;
		while (n < r->batch && nfree) {
			t = &toks[free_stack[--nfree]];
			struct vio_sg sg = {r->arena + t->slot * BUF_LEN,
					    BUF_LEN};
			int e = vio_vq_add(r->drv, &sg, 0, 1, t);
			if (e) {
				snprintf(r->drv_err, sizeof(r->drv_err),
					 "vio_vq_add: %s", strerror(-e));
				goto fail;
			}
			t->busy = true;
			n++;
		}
		added += n;
		if (n)
			vio_vq_kick(r->drv);
		while ((t = vio_vq_get(r->drv, &len))) {
			if (!take_back(r, t, len))
				goto fail;
			free_stack[nfree++] = (uint16_t)t->slot;
			completed++;
		}
		if (vio_vq_broken(r->drv)) {
			snprintf(r->drv_err, sizeof(r->drv_err),
				 "driver queue broken: %s",
				 vio_vq_error(r->drv));
			goto fail;
		}
	}
	r->window_ns = now_ns() - t0;
	r->window_completed = completed;
	/* drain: everything in flight must come back */
	uint64_t deadline = now_ns() + DRAIN_NS;
	while (completed < added) {
		t = vio_vq_get(r->drv, &len);
		if (!t) {
			if (vio_vq_broken(r->drv) || now_ns() > deadline) {
				snprintf(
				    r->drv_err, sizeof(r->drv_err),
				    "%llu buffers never came back%s%s",
				    (unsigned long long)(added - completed),
				    vio_vq_broken(r->drv) ? ": " : "",
				    vio_vq_error(r->drv));
				goto fail;
			}
			cpu_relax();
			continue;
		}
		if (!take_back(r, t, len))
			goto fail;
		completed++;
	}
	for (unsigned i = 0; i < QSZ; i++)
		if (toks[i].busy) {
			snprintf(r->drv_err, sizeof(r->drv_err),
				 "token %u still in flight", i);
			goto fail;
		}
	if (vio_vq_num_free(r->drv) != QSZ) {
		snprintf(r->drv_err, sizeof(r->drv_err),
			 "%u descriptors free after the drain, expected %u",
			 vio_vq_num_free(r->drv), QSZ);
		goto fail;
	}
	r->drv_ok = !r->drv_err[0];
fail:
	r->added = added;
	r->completed = completed;
	STORE_REL(&r->dev_stop, 1);
	return NULL;
}

static void *device_main(void *arg)
{
	struct run *r = arg;
	struct vio_used used[MAX_BATCH];
	struct vio_iov iov[4];
	struct vio_chain c;
	unsigned nu = 0;
	uint64_t popped = 0;
	int e;

	r->dev_ok = false;
	if (pin(r->cpu[1]))
		snprintf(r->dev_err, sizeof(r->dev_err),
			 "cannot pin the device to CPU %d", r->cpu[1]);
	wait_go(&r->go);
	while (!LOAD(&r->dev_stop)) {
		e = vio_vq_pop(r->dev, &c, iov, 4);
		if (e == 1) {
			uintptr_t off =
			    (uintptr_t)((uint8_t *)c.in[0].base - r->arena);
			if (c.nr_out != 0 || c.nr_in != 1 ||
			    c.in_len != BUF_LEN || off % BUF_LEN ||
			    off >= QSZ * BUF_LEN) {
				snprintf(r->dev_err, sizeof(r->dev_err),
					 "unexpected chain: %u out, %u in, "
					 "%u bytes",
					 c.nr_out, c.nr_in, c.in_len);
				goto out;
			}
			used[nu].head = c.head;
			used[nu].len = expect_len((uint32_t)(off / BUF_LEN));
			popped++;
			if (++nu < r->batch)
				continue;
		} else if (e < 0) {
			snprintf(r->dev_err, sizeof(r->dev_err),
				 "device queue broken: %s",
				 vio_vq_error(r->dev));
			goto out;
		}
		if (nu) {
			e = vio_vq_push_batch(r->dev, used, nu);
			if (e) {
				snprintf(r->dev_err, sizeof(r->dev_err),
					 "vio_vq_push_batch: %s", strerror(-e));
				goto out;
			}
			nu = 0;
			vio_vq_call(r->dev);
		}
	}
	/* the driver has everything back: nothing may be left */
	e = vio_vq_pop(r->dev, &c, iov, 4);
	if (nu || e != 0) {
		snprintf(r->dev_err, sizeof(r->dev_err),
			 "device still has work after the drain (%u, %d)", nu,
			 e);
		goto out;
	}
	r->dev_ok = !r->dev_err[0];
out:
	r->popped = popped;
	if (!r->dev_ok)
		STORE_REL(&r->stop, 1); /* unblock the driver's loop */
	return NULL;
}

/* Run both threads for `seconds`, then join them. */
int run_threads(void *(*a)(void *), void *(*b)(void *), void *arg, int *go,
		int *stop, double seconds)
{
	pthread_t ta, tb;
	if (pthread_create(&ta, NULL, a, arg))
		return -1;
	if (pthread_create(&tb, NULL, b, arg)) {
		STORE_REL(go, 1);
		STORE_REL(stop, 1);
		pthread_join(ta, NULL);
		return -1;
	}
	/* let both threads reach their CPUs before the clock starts */
	struct timespec settle = {0, 20 * 1000 * 1000};
	nanosleep(&settle, NULL);
	STORE_REL(go, 1);
	struct timespec ts = {(time_t)seconds,
			      (long)((seconds - (time_t)seconds) * 1e9)};
	nanosleep(&ts, NULL);
	STORE_REL(stop, 1);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	return 0;
}

static void run_vq(const struct opts *o, bool packed, bool event_idx,
		   unsigned batch, struct result *res)
{
	struct run *r = NULL;
	struct vio_mem *mem = NULL;
	struct vio_memtable *mt = NULL;

	memset(res, 0, sizeof(*res));
	if (posix_memalign((void **)&r, CACHELINE, sizeof(*r))) {
		snprintf(res->err, sizeof(res->err), "out of memory");
		return;
	}
	memset(r, 0, sizeof(*r));
	r->packed = packed;
	r->event_idx = event_idx;
	r->batch = batch;
	r->cpu[0] = o->cpu[0];
	r->cpu[1] = o->cpu[1];

	mem = vio_mem_new();
	if (!mem || vio_mem_add_region(mem, 1 << 20, NULL)) {
		snprintf(res->err, sizeof(res->err), "vio_mem: %s",
			 strerror(errno));
		goto out;
	}
	mt = vio_memtable_new(4);
	struct vio_region reg = *vio_mem_region(mem, 0);
	reg.fd = -1; /* the same mapping, not owned by the table */
	if (!mt || vio_memtable_add(mt, &reg)) {
		snprintf(res->err, sizeof(res->err), "vio_memtable: %s",
			 strerror(errno));
		goto out;
	}
	struct vio_vq_opts cfg = {.size = QSZ,
				  .packed = packed,
				  .event_idx = event_idx,
				  .notify = on_kick,
				  .opaque = r,
				  .name = "bench"};
	r->drv = vio_vq_new_driver(&cfg, mem);
	if (!r->drv) {
		snprintf(res->err, sizeof(res->err), "vio_vq_new_driver: %s",
			 strerror(errno));
		goto out;
	}
	struct vio_vq_layout l;
	vio_vq_get_layout(r->drv, &l);
	cfg.notify = on_call;
	r->dev = vio_vq_new_device(&cfg, &l, mt);
	uint64_t daddr;
	r->arena = vio_mem_alloc(mem, QSZ * BUF_LEN, CACHELINE, &daddr);
	if (!r->dev || !r->arena) {
		snprintf(res->err, sizeof(res->err), "setup: %s",
			 strerror(errno));
		goto out;
	}
	if (run_threads(driver_main, device_main, r, &r->go, &r->stop,
			o->seconds)) {
		snprintf(res->err, sizeof(res->err), "pthread_create failed");
		goto out;
	}
	if (!r->drv_ok || !r->dev_ok) {
		snprintf(res->err, sizeof(res->err), "%s%s%s",
			 r->drv_err[0] ? r->drv_err : "",
			 r->drv_err[0] && r->dev_err[0] ? "; " : "",
			 r->dev_err[0] ? r->dev_err : "");
		if (!res->err[0])
			snprintf(res->err, sizeof(res->err), "failed");
		goto out;
	}
	if (r->added != r->completed || r->popped != r->added) {
		snprintf(res->err, sizeof(res->err),
			 "count mismatch: added %llu, popped %llu, "
			 "completed %llu",
			 (unsigned long long)r->added,
			 (unsigned long long)r->popped,
			 (unsigned long long)r->completed);
		goto out;
	}
	if (r->completed == 0 || r->window_ns == 0) {
		snprintf(res->err, sizeof(res->err), "no buffer completed");
		goto out;
	}
	res->ok = true;
	res->bufs_per_s =
	    (double)r->window_completed * 1e9 / (double)r->window_ns;
	res->kicks_per_buf = (double)r->kicks / (double)r->added;
	res->calls_per_buf = (double)r->calls / (double)r->completed;
out:
	vio_vq_free(r->dev);
	vio_vq_free(r->drv);
	vio_memtable_free(mt);
	vio_mem_free(mem);
	free(r);
}

/* ---- statistics and output ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct point {
	const char *format;
	unsigned batch;
	int event_idx; /* -1: not applicable */
	double median, min, max;
	double kicks, calls; /* per buffer, median run's; <0: n/a */
	double ratio;	     /* to spsc, <0: n/a */
};

static double median(const double *v, unsigned n)
{
	double sorted[MAX_RUNS];
	memcpy(sorted, v, sizeof(double) * n);
	qsort(sorted, n, sizeof(double), cmp_double);
	return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* The points of one batch size: spsc first, then the vq configurations. */
#define MAX_POINTS 5

struct series {
	struct point p;
	int fmt; /* -1 spsc, 0 split, 1 packed */
	double v[MAX_RUNS], kicks[MAX_RUNS], calls[MAX_RUNS];
};

/*
 * Measure every point of one batch size, o->runs rounds.  A round runs
 * each point once, spsc first, so that the ratio of a vq run to the spsc
 * run of its own round is taken under the same conditions (on a shared
 * or virtual machine the two CPUs' relation drifts over seconds).
 * false if any run failed.
 */
static bool measure_batch(const struct opts *o, struct series *s, unsigned n,
			  unsigned batch)
{
	struct result res;

	for (unsigned i = 0; i < o->runs; i++) {
		for (unsigned k = 0; k < n; k++) {
			if (s[k].fmt < 0)
				run_spsc(o, batch, &res);
			else
				run_vq(o, s[k].fmt == 1, s[k].p.event_idx == 1,
				       batch, &res);
			if (!res.ok) {
				fprintf(stderr,
					"FAIL %s batch %u event_idx %d run "
					"%u: %s\n",
					s[k].p.format, batch, s[k].p.event_idx,
					i + 1, res.err);
				return false;
			}
			s[k].v[i] = res.bufs_per_s;
			s[k].kicks[i] = res.kicks_per_buf;
			s[k].calls[i] = res.calls_per_buf;
		}
	}
	for (unsigned k = 0; k < n; k++) {
		struct point *p = &s[k].p;
		double ratio[MAX_RUNS];
		p->median = median(s[k].v, o->runs);
		p->min = p->max = s[k].v[0];
		for (unsigned i = 1; i < o->runs; i++) {
			if (s[k].v[i] < p->min)
				p->min = s[k].v[i];
			if (s[k].v[i] > p->max)
				p->max = s[k].v[i];
		}
		p->kicks = p->calls = p->ratio = -1;
		if (s[k].fmt < 0)
			continue;
		for (unsigned i = 0; i < o->runs; i++)
			ratio[i] = s[k].v[i] / s[0].v[i];
		p->ratio = median(ratio, o->runs);
		/* notifications: mean over the runs */
		p->kicks = p->calls = 0;
		for (unsigned i = 0; i < o->runs; i++) {
			p->kicks += s[k].kicks[i] / o->runs;
			p->calls += s[k].calls[i] / o->runs;
		}
	}
	return true;
}

static void print_header(const struct opts *o)
{
	if (o->json)
		return;
	printf("queue size %u, %u-byte buffers, CPUs %d and %d, %u runs of "
	       "%.2f s per point (median, min, max);\nratio: median over "
	       "the runs of vq / spsc of the same round\n",
	       QSZ, BUF_LEN, o->cpu[0], o->cpu[1], o->runs, o->seconds);
	printf("%-7s %5s %9s %10s %8s %8s %9s %10s %10s\n", "format", "batch",
	       "event_idx", "Mbuf/s", "min", "max", "ratio", "kicks/buf",
	       "calls/buf");
}

/* One point as a JSON object on one line (README.md lists the fields). */
static void print_json(FILE *f, const struct opts *o, const struct point *p)
{
	fprintf(f,
		"{\"format\":\"%s\",\"batch\":%u,\"event_idx\":%s,"
		"\"buffers_per_s\":%.0f,\"min\":%.0f,\"max\":%.0f,"
		"\"runs\":%u,\"seconds\":%g,\"queue_size\":%u",
		p->format, p->batch,
		p->event_idx < 0 ? "null"
		: p->event_idx	 ? "true"
				 : "false",
		p->median, p->min, p->max, o->runs, o->seconds, QSZ);
	if (p->ratio >= 0)
		fprintf(f, ",\"ratio_to_spsc\":%.4f", p->ratio);
	if (p->kicks >= 0)
		fprintf(f, ",\"kicks_per_buf\":%.5f,\"calls_per_buf\":%.5f",
			p->kicks, p->calls);
	fprintf(f, "}\n");
	fflush(f);
}

static void print_point(const struct opts *o, const struct point *p)
{
	char ev[8], ratio[16], kicks[16], calls[16];

	if (o->jsonl)
		print_json(o->jsonl, o, p);
	if (o->json) {
		print_json(stdout, o, p);
		return;
	}
	snprintf(ev, sizeof(ev), "%s",
		 p->event_idx < 0 ? "-"
		 : p->event_idx	  ? "on"
				  : "off");
	snprintf(ratio, sizeof(ratio), p->ratio >= 0 ? "%.3f" : "-", p->ratio);
	snprintf(kicks, sizeof(kicks), p->kicks >= 0 ? "%.4f" : "-", p->kicks);
	snprintf(calls, sizeof(calls), p->calls >= 0 ? "%.4f" : "-", p->calls);
	printf("%-7s %5u %9s %10.2f %8.2f %8.2f %9s %10s %10s\n", p->format,
	       p->batch, ev, p->median / 1e6, p->min / 1e6, p->max / 1e6, ratio,
	       kicks, calls);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ring [options]\n"
		"Virtqueue throughput, driver and device busy-polling on two "
		"CPUs,\ncompared with a minimal SPSC ring between the same "
		"CPUs.\n\n"
		"  --seconds S       measure each run for S seconds "
		"(default 0.5)\n"
		"  --runs N          runs per point, the median is reported "
		"(default 5)\n"
		"  --format F        split or packed (default both)\n"
		"  --batch N         buffers per kick, 1..%u (default 1, 16 "
		"and 64)\n"
		"  --event-idx X     on or off (default both)\n"
		"  --cpus A,B        driver and device CPUs (default 0,1)\n"
		"  --json            one JSON object per line\n"
		"  --jsonl FILE      also write them to FILE, besides the "
		"table\n"
		"                    (bench/plot.py ring FILE OUT.svg charts "
		"them)\n"
		"  --help            this text\n",
		MAX_BATCH);
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"seconds", required_argument, NULL, 's'},
	    {"runs", required_argument, NULL, 'r'},
	    {"format", required_argument, NULL, 'f'},
	    {"batch", required_argument, NULL, 'b'},
	    {"event-idx", required_argument, NULL, 'e'},
	    {"cpus", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"jsonl", required_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	char *end;
	int ch;

	*o = (struct opts){.seconds = 0.5,
			   .runs = 5,
			   .format = -1,
			   .event_idx = -1,
			   .cpu = {0, 1}};
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			o->seconds = strtod(optarg, &end);
			if (*end || !(o->seconds > 0 && o->seconds <= 3600))
				goto bad;
			break;
		case 'r': {
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > MAX_RUNS)
				goto bad;
			o->runs = (unsigned)v;
			break;
		}
		case 'f':
			if (!strcmp(optarg, "split"))
				o->format = 0;
			else if (!strcmp(optarg, "packed"))
				o->format = 1;
			else
				goto bad;
			break;
		case 'b': {
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > MAX_BATCH)
				goto bad;
			o->batch = (unsigned)v;
			break;
		}
		case 'e':
			if (!strcmp(optarg, "on"))
				o->event_idx = 1;
			else if (!strcmp(optarg, "off"))
				o->event_idx = 0;
			else
				goto bad;
			break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &o->cpu[0], &o->cpu[1]) !=
				2 ||
			    o->cpu[0] < 0 || o->cpu[1] < 0 ||
			    o->cpu[0] >= CPU_SETSIZE ||
			    o->cpu[1] >= CPU_SETSIZE)
				goto bad;
			break;
		case 'j':
			o->json = true;
			break;
		case 'J':
			if (o->jsonl)
				fclose(o->jsonl);
			o->jsonl = fopen(optarg, "w");
			if (!o->jsonl) {
				fprintf(stderr, "ring: %s: %s\n", optarg,
					strerror(errno));
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ring: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "ring: bad value '%s'\n", optarg);
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	static const unsigned default_batches[] = {1, 16, 64};
	struct opts o;

	if (parse(argc, argv, &o))
		return 2;
	cpu_set_t avail;
	if (sched_getaffinity(0, sizeof(avail), &avail) == 0 &&
	    (!CPU_ISSET(o.cpu[0], &avail) || !CPU_ISSET(o.cpu[1], &avail) ||
	     o.cpu[0] == o.cpu[1]))
		fprintf(stderr,
			"ring: warning: CPUs %d and %d are not two distinct "
			"CPUs of this process; figures will be poor\n",
			o.cpu[0], o.cpu[1]);

	const unsigned *batches = default_batches;
	unsigned nb = 3;
	if (o.batch) {
		batches = &o.batch;
		nb = 1;
	}
	print_header(&o);
	bool ok = true;
	for (unsigned bi = 0; bi < nb; bi++) {
		unsigned b = batches[bi];
		static struct series s[MAX_POINTS];
		unsigned n = 0;
		memset(s, 0, sizeof(s));
		s[n].fmt = -1;
		s[n++].p = (struct point){
		    .format = "spsc", .batch = b, .event_idx = -1};
		for (int f = 0; f < 2; f++) {
			if (o.format >= 0 && f != o.format)
				continue;
			for (int ev = 0; ev < 2; ev++) {
				if (o.event_idx >= 0 && ev != o.event_idx)
					continue;
				s[n].fmt = f;
				s[n++].p = (struct point){.format = f ? "packed"
								      : "split",
							  .batch = b,
							  .event_idx = ev};
			}
		}
		if (!measure_batch(&o, s, n, b)) {
			ok = false;
			continue;
		}
		for (unsigned k = 0; k < n; k++)
			print_point(&o, &s[k].p);
	}
	if (o.jsonl && fclose(o.jsonl) != 0) {
		perror("ring: --jsonl");
		ok = false;
	}
	return ok ? 0 : 1;
}
