/* SPDX-License-Identifier: MIT */
/*
 * vio blk bench (tools/blk.h): keep --iodepth requests in flight on each
 * of --queues queues, one thread each, through the driver's asynchronous
 * API with zero-copy buffers; a latency histogram per thread (hist.h),
 * merged at the end; SIGINT/SIGTERM end the run early and it still
 * reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vio/blk.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

#include "blk.h"
#include "hist.h"
#include "util.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct bench_req {
	struct vio_blk_req r; /* first: done[] gives back &r */
	uint64_t t0;
	uint8_t *buf;
};

struct bench_q {
	struct blk_ctx *c;
	const struct blk_opts *o;
	unsigned q;
	struct bench_req *reqs;
	uint8_t *bufs;
	struct vio_blk_req **done;
	uint64_t rs;		/* xorshift state */
	uint64_t base, nblocks; /* this queue's range, in blocks */
	uint64_t next;		/* sequential: next block in the range */
	uint64_t ops, bytes;	/* __atomic: read by the progress line */
	uint64_t lat_sum, lat_max;
	uint64_t hist[HIST_N];
	int err;
	uint64_t err_off;
	uint64_t t_end;
	pthread_t th;
};

static bool bench_stop; /* __atomic */
static volatile sig_atomic_t bench_sig;

static void on_sigint(int sig)
{
	(void)sig;
	bench_sig = 1;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int bench_submit(struct bench_q *bq, struct bench_req *br, uint64_t now)
{
	const struct blk_opts *o = bq->o;
	uint64_t blk;
	if (o->rw == RW_RANDREAD || o->rw == RW_RANDWRITE) {
		blk = bq->base + xorshift(&bq->rs) % bq->nblocks;
	} else {
		blk = bq->base + bq->next;
		if (++bq->next == bq->nblocks)
			bq->next = 0;
	}
	memset(&br->r, 0, sizeof(br->r));
	br->r.op = (o->rw == RW_RANDWRITE || o->rw == RW_WRITE)
		       ? VIO_BLK_OP_WRITE
		       : VIO_BLK_OP_READ;
	br->r.offset = blk * o->bs;
	br->r.buf = br->buf;
	br->r.len = (size_t)o->bs;
	br->t0 = now;
	int r = vio_blk_submit(bq->c->b, bq->q, &br->r);
	if (r < 0) {
		bq->err = r;
		bq->err_off = br->r.offset;
	}
	return r;
}

static void *bench_thread(void *arg)
{
	struct bench_q *bq = arg;
	const struct blk_opts *o = bq->o;
	unsigned inflight = 0;
	uint64_t now = now_ns();

	for (unsigned i = 0; i < o->iodepth; i++) {
		if (bench_submit(bq, &bq->reqs[i], now) < 0)
			break;
		inflight++;
	}
	uint64_t last_progress = now;
	while (inflight) {
		int n =
		    vio_blk_poll(bq->c->b, bq->q, bq->done, o->iodepth, 1000);
		now = now_ns();
		if (n < 0) {
			if (!bq->err)
				bq->err = n;
			break;
		}
		if (n == 0) {
			/* nothing for 10 s: the device stopped answering */
			if (now - last_progress > 10000000000ull) {
				if (!bq->err)
					bq->err = -ETIMEDOUT;
				break;
			}
			continue;
		}
		last_progress = now;
		bool stop = __atomic_load_n(&bench_stop, __ATOMIC_RELAXED);
		for (int i = 0; i < n; i++) {
			struct bench_req *br = (struct bench_req *)bq->done[i];
			inflight--;
			if (br->r.result < 0) {
				if (!bq->err) {
					bq->err = br->r.result;
					bq->err_off = br->r.offset;
				}
				__atomic_store_n(&bench_stop, true,
						 __ATOMIC_RELAXED);
				continue;
			}
			uint64_t lat = now - br->t0;
			bq->hist[hist_index(lat)]++;
			bq->lat_sum += lat;
			if (lat > bq->lat_max)
				bq->lat_max = lat;
			__atomic_store_n(&bq->ops, bq->ops + 1,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&bq->bytes, bq->bytes + o->bs,
					 __ATOMIC_RELAXED);
			if (!stop && !bq->err) {
				if (bench_submit(bq, br, now) < 0)
					__atomic_store_n(&bench_stop, true,
							 __ATOMIC_RELAXED);
				else
					inflight++;
			}
		}
	}
	bq->t_end = now_ns();
	return NULL;
}

/* --move-to: the device to another backend, the load running. */
struct bench_move {
	bool tried;
	int err;
	uint64_t ops_before; /* requests completed when the move began */
	double ms;
};

static void bench_move(struct blk_ctx *c, const struct blk_opts *o,
		       struct bench_q *bqs, unsigned nq, struct bench_move *mv)
{
	char err[300];
	mv->tried = true;
	for (unsigned q = 0; q < nq; q++)
		mv->ops_before +=
		    __atomic_load_n(&bqs[q].ops, __ATOMIC_RELAXED);
	double t = tool_now();
	int r = vio_frontend_move(c->fe, o->move_to, NULL, err, sizeof(err));
	mv->ms = (tool_now() - t) * 1e3;
	if (r) {
		mv->err = r;
		/* the run goes on with the old backend; exit status 1 */
		tool_err("--move-to %s: %s", o->move_to, err);
		return;
	}
	/* the frontend's log line says it moved, and how long it took */
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s,
			      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

static void fmt_bs(uint64_t bs, char *out, size_t len)
{
	if (bs % (1u << 20) == 0)
		snprintf(out, len, "%" PRIu64 "M", bs >> 20);
	else if (bs % 1024 == 0)
		snprintf(out, len, "%" PRIu64 "k", bs >> 10);
	else
		snprintf(out, len, "%" PRIu64, bs);
}

int blk_do_bench(struct blk_ctx *c, const struct blk_opts *o)
{
	unsigned avail = vio_blk_num_queues(c->b);
	unsigned nq = o->bench_queues ? o->bench_queues : avail;
	if (nq > avail) {
		tool_err("bench --queues %u: the driver has only %u queue%s "
			 "(try 'vio blk --queues %u ...')",
			 nq, avail, avail == 1 ? "" : "s", nq);
		return TOOL_EXIT_FAIL;
	}
	bool write = o->rw == RW_RANDWRITE || o->rw == RW_WRITE;
	if (write && vio_blk_readonly(c->b)) {
		tool_err("%s: device is read-only", c->where);
		return TOOL_EXIT_FAIL;
	}
	uint64_t cap = vio_blk_capacity_bytes(c->b);
	uint64_t blocks = cap / o->bs;
	if (blocks < nq) {
		tool_err("--bs %" PRIu64 ": the device (%" PRIu64
			 " bytes) is too small for %u request%s of that size",
			 o->bs, cap, nq, nq == 1 ? "" : "s");
		return TOOL_EXIT_FAIL;
	}
	size_t per_q = (size_t)o->iodepth * (size_t)o->bs;
	struct bench_q *bqs = calloc(nq, sizeof(*bqs));
	if (!bqs) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	int ret = TOOL_EXIT_FAIL;
	unsigned started = 0;
	/* every buffer exists before the first request (the transport
	 * learns of new memory regions only when told) */
	for (unsigned q = 0; q < nq; q++) {
		struct bench_q *bq = &bqs[q];
		bq->c = c;
		bq->o = o;
		bq->q = q;
		bq->rs = blk_mix64(0x5eed0000u + q) | 1;
		bq->reqs = calloc(o->iodepth, sizeof(*bq->reqs));
		bq->done = calloc(o->iodepth, sizeof(*bq->done));
		bq->bufs = blk_shm_alloc(c, per_q);
		if (!bq->reqs || !bq->done || !bq->bufs) {
			if (!bq->reqs || !bq->done)
				tool_err("out of memory");
			goto out;
		}
		if (write)
			blk_pattern_fill(q + 1, 0, bq->bufs, per_q);
		for (unsigned i = 0; i < o->iodepth; i++)
			bq->reqs[i].buf = bq->bufs + (size_t)i * o->bs;
		if (o->rw == RW_READ || o->rw == RW_WRITE) {
			/* sequential: a slice each */
			bq->nblocks = blocks / nq;
			bq->base = (uint64_t)q * bq->nblocks;
		} else {
			bq->nblocks = blocks;
			bq->base = 0;
		}
	}

	/* after the buffers: the log is sized for the memory there is */
	if (o->dirty_log) {
		int r = vio_frontend_dirty_log(c->fe, true);
		if (r) {
			tool_err("--dirty-log: %s",
				 r == -EOPNOTSUPP
				     ? "the backend has no dirty logging "
				       "(LOG_SHMFD, VHOST_F_LOG_ALL)"
				     : strerror(-r));
			goto out;
		}
	}

	struct sigaction sa = {.sa_handler = on_sigint}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	bench_sig = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	__atomic_store_n(&bench_stop, false, __ATOMIC_RELAXED);

	bool progress = !o->json && isatty(STDERR_FILENO);
	uint64_t t_start = now_ns();
	for (; started < nq; started++) {
		int r = pthread_create(&bqs[started].th, NULL, bench_thread,
				       &bqs[started]);
		if (r) {
			tool_err("cannot start a thread: %s", strerror(r));
			__atomic_store_n(&bench_stop, true, __ATOMIC_RELAXED);
			break;
		}
	}
	double t_last = tool_now(), t0 = t_last;
	uint64_t ops_last = 0;
	double move_at = o->move_after > 0 ? o->move_after : o->secs / 2;
	struct bench_move mv = {0};
	while (started == nq && !bench_sig &&
	       !__atomic_load_n(&bench_stop, __ATOMIC_RELAXED)) {
		double t = tool_now();
		if (o->move_to && !mv.tried && t - t0 >= move_at) {
			bench_move(c, o, bqs, nq, &mv);
			continue;
		}
		if (t - t0 >= o->secs)
			break;
		double left = o->secs - (t - t0);
		if (o->move_to && !mv.tried && move_at - (t - t0) < left)
			left = move_at - (t - t0);
		sleep_s(left < 0.1 ? left : 0.1);
		t = tool_now();
		if (progress && t - t_last >= 1.0) {
			uint64_t ops = 0, bytes = 0;
			for (unsigned q = 0; q < nq; q++) {
				ops += __atomic_load_n(&bqs[q].ops,
						       __ATOMIC_RELAXED);
				bytes += __atomic_load_n(&bqs[q].bytes,
							 __ATOMIC_RELAXED);
			}
			double iops = (double)(ops - ops_last) / (t - t_last);
			fprintf(stderr,
				"\r%5.1f/%g s  %10.0f IOPS  %9.1f MiB/s  "
				"%" PRIu64 " MiB total\033[K",
				t - t0, o->secs, iops,
				iops * (double)o->bs / (1 << 20), bytes >> 20);
			ops_last = ops;
			t_last = t;
		}
	}
	__atomic_store_n(&bench_stop, true, __ATOMIC_RELAXED);
	uint64_t t_end = t_start;
	for (unsigned q = 0; q < started; q++) {
		pthread_join(bqs[q].th, NULL);
		if (bqs[q].t_end > t_end)
			t_end = bqs[q].t_end;
	}
	if (progress)
		fprintf(stderr, "\r\033[K");
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (started < nq)
		goto out;

	/* merge */
	static uint64_t hist[HIST_N];
	memset(hist, 0, sizeof(hist));
	uint64_t ops = 0, lat_sum = 0, lat_max = 0;
	int err = 0;
	for (unsigned q = 0; q < nq; q++) {
		struct bench_q *bq = &bqs[q];
		for (unsigned i = 0; i < HIST_N; i++)
			hist[i] += bq->hist[i];
		ops += bq->ops;
		lat_sum += bq->lat_sum;
		if (bq->lat_max > lat_max)
			lat_max = bq->lat_max;
		if (bq->err && !err) {
			err = bq->err;
			if (err == -ETIMEDOUT)
				tool_err("queue %u: the device stopped "
					 "answering (10 s without a "
					 "completion)",
					 q);
			else
				blk_io_err(write ? "write" : "read",
					   bq->err_off, err);
		}
	}
	double secs = (double)(t_end - t_start) / 1e9;
	double iops = secs > 0 ? (double)ops / secs : 0;
	double mibs = iops * (double)o->bs / (1 << 20);
	double mean = ops ? (double)lat_sum / (double)ops / 1e3 : 0;
	double p50 = hist_quantile(hist, ops, 0.50) / 1e3;
	double p99 = hist_quantile(hist, ops, 0.99) / 1e3;
	double p999 = hist_quantile(hist, ops, 0.999) / 1e3;
	double max = (double)lat_max / 1e3;
	struct vio_blk_info in;
	vio_blk_get_info(c->b, &in);
	char bs[32];
	fmt_bs(o->bs, bs, sizeof(bs));
	uint64_t dirty = o->dirty_log ? vio_frontend_dirty_pages(c->fe) : 0;
	if (o->json) {
		printf("{\"rw\":\"%s\",\"bs\":%" PRIu64 ",\"iodepth\":%u,"
		       "\"queues\":%u,\"transport\":\"%s\",\"ring\":\"%s\","
		       "\"seconds\":%.3f,\"ops\":%" PRIu64 ",\"iops\":%.1f,"
		       "\"mib_s\":%.2f,\"lat_us\":{\"mean\":%.2f,\"p50\":%.2f,"
		       "\"p99\":%.2f,\"p99_9\":%.2f,\"max\":%.2f},"
		       "\"errors\":%d,\"interrupted\":%s,",
		       blk_rw_names[o->rw], o->bs, o->iodepth, nq,
		       o->conn.socket ? "vhost-user" : "inproc",
		       in.packed ? "packed" : "split", secs, ops, iops, mibs,
		       mean, p50, p99, p999, max, err || mv.err ? 1 : 0,
		       bench_sig ? "true" : "false");
		if (o->move_to)
			printf("\"move\":{\"done\":%s,\"ms\":%.3f,"
			       "\"ops_before\":%" PRIu64 "},",
			       mv.tried && !mv.err ? "true" : "false", mv.ms,
			       mv.ops_before);
		if (o->dirty_log)
			printf("\"dirty_pages\":%" PRIu64 ",", dirty);
		/* The whole histogram, for a latency CDF (bench/plot.py):
		 * [bucket middle in us, requests] for each non-empty
		 * bucket, in increasing latency. */
		printf("\"lat_hist_us\":[");
		const char *sep = "";
		for (unsigned i = 0; i < HIST_N; i++) {
			if (!hist[i])
				continue;
			printf("%s[%.3f,%" PRIu64 "]", sep, hist_value(i) / 1e3,
			       hist[i]);
			sep = ",";
		}
		printf("]}\n");
	} else {
		printf("%s %s, iodepth %u x %u queue%s (%s, %s ring), "
		       "%.2f s%s\n",
		       blk_rw_names[o->rw], bs, o->iodepth, nq,
		       nq == 1 ? "" : "s",
		       o->conn.socket ? "vhost-user" : "in-process",
		       in.packed ? "packed" : "split", secs,
		       bench_sig ? " (interrupted)" : "");
		printf("  %.0f IOPS, %.1f MiB/s, %" PRIu64 " requests\n", iops,
		       mibs, ops);
		printf("  latency (us): mean %.1f, p50 %.1f, p99 %.1f, "
		       "p99.9 %.1f, max %.1f\n",
		       mean, p50, p99, p999, max);
		if (o->move_to && mv.tried && !mv.err)
			printf("  moved to %s after %" PRIu64
			       " requests, in %.1f ms\n",
			       o->move_to, mv.ops_before, mv.ms);
		if (o->dirty_log)
			printf("  dirty log: %" PRIu64 " pages marked\n",
			       dirty);
	}
	if (fflush(stdout) != 0)
		err = err ? err : -EIO;
	if (mv.err && !err)
		err = mv.err;
	ret = err ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
out:
	for (unsigned q = 0; q < nq; q++) {
		free(bqs[q].reqs);
		free(bqs[q].done);
		vio_mem_release(c->mem, bqs[q].bufs);
	}
	free(bqs);
	return ret;
}
