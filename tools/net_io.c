/* SPDX-License-Identifier: MIT */
/* vio net: the verbs send, recv and ping (tools/net.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"
#include "util.h"

#define BATCH 32u
#define QUIET_S 0.25

static const uint8_t bcast[VIO_NET_ETH_ALEN] = {0xff, 0xff, 0xff,
						0xff, 0xff, 0xff};
static const uint8_t ping_dst[VIO_NET_ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x01};

static void pause_us(long us)
{
	struct timespec ts = {.tv_nsec = us * 1000};
	nanosleep(&ts, NULL);
}

static int io_err(const char *what, int r)
{
	tool_err("%s: %s", what,
		 r == -ENXIO ? "no such queue pair"
		 : r == -EIO ? "the queue broke (the device misbehaved)"
			     : strerror(-r));
	return TOOL_EXIT_FAIL;
}

/* ---- send ---- */

int net_do_send(struct net_ctx *c, const struct net_opts *o)
{
	const uint8_t *dst = o->has_dst ? o->dst : bcast;
	uint8_t *bufs = malloc((size_t)BATCH * o->size);
	if (!bufs) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	struct vio_net_pkt p[BATCH];
	for (unsigned i = 0; i < BATCH; i++) {
		net_frame_build(bufs + (size_t)i * o->size, o->size, dst,
				c->info.mac, 0);
		p[i] = (struct vio_net_pkt){.data = bufs + (size_t)i * o->size,
					    .len = o->size};
	}
	uint64_t sent = 0, reclaimed = 0;
	int ret = TOOL_EXIT_OK;
	double t0 = tool_now();
	while (sent < o->count && !net_stop) {
		unsigned k = o->count - sent < BATCH
				 ? (unsigned)(o->count - sent)
				 : BATCH;
		for (unsigned i = 0; i < k; i++)
			net_frame_set_seq(p[i].data, o->size, sent + i);
		int r = vio_net_send(c->n, 0, p, k);
		if (r < 0) {
			ret = io_err("send", r);
			break;
		}
		sent += (unsigned)r;
		if ((unsigned)r < k) {
			/* the ring is full: take back what the device used */
			int g = vio_net_tx_reclaim(c->n, 0);
			if (g > 0)
				reclaimed += (unsigned)g;
			else
				pause_us(20);
		}
	}
	/*
	 * Exit once the device took every frame: the driver hands back the
	 * transmit slots it used (vio_net_send reclaims some itself, so the
	 * count seen here may stay short): wait until all came back, or no
	 * slot came back for QUIET_S, at most 5 s.
	 */
	double quiet = tool_now(), end = quiet + 5;
	while (ret == TOOL_EXIT_OK && reclaimed < sent && tool_now() < end &&
	       tool_now() - quiet < QUIET_S) {
		int g = vio_net_tx_reclaim(c->n, 0);
		if (g > 0) {
			reclaimed += (unsigned)g;
			quiet = tool_now();
		} else {
			pause_us(200);
		}
	}
	double secs = tool_now() - t0;
	char d[18];
	net_mac_str(dst, d);
	printf("sent %" PRIu64 " frames of %u bytes to %s in %.3f s\n", sent,
	       o->size, d, secs);
	free(bufs);
	if (ret == TOOL_EXIT_OK && sent < o->count) {
		tool_err("interrupted after %" PRIu64 " of %" PRIu64 " frames",
			 sent, o->count);
		ret = TOOL_EXIT_FAIL;
	}
	return ret;
}

/* ---- recv ---- */

int net_do_recv(struct net_ctx *c, const struct net_opts *o)
{
	unsigned pairs = c->info.pairs ? c->info.pairs : 1;
	struct vio_net_pkt p[BATCH];
	uint64_t pkts = 0, bytes = 0, ours = 0, other = 0, bad = 0;
	double t0 = tool_now(), end = t0 + o->wait_s;
	int ret = TOOL_EXIT_OK;
	bool idle = false;
	/*
	 * The receive rings are full from probe on, but vhost-user messages
	 * are not all answered: re-reading the config space (GET_CONFIG) is
	 * a round trip, so when it returns the backend has handled every
	 * message before it (the rings, DRIVER_OK) and its queues run.  A
	 * sender may start then (a test waits for this line).
	 */
	vio_net_get_info(c->n, &c->info);
	fprintf(stderr, "vio net recv: receiving on %u pair%s\n", pairs,
		pairs == 1 ? "" : "s");
	while (!net_stop && (o->count == 0 || pkts < o->count)) {
		double now = tool_now();
		if (now >= end)
			break;
		unsigned got = 0;
		for (unsigned q = 0; q < pairs; q++) {
			/* one pair: wait on it; several: look at each, and
			 * after a round without frames wait a little on the
			 * first */
			int wait = 0;
			if (pairs == 1 || (idle && q == 0)) {
				double ms = (end - now) * 1000;
				int most = pairs == 1 ? 100 : 10;
				wait = ms > most ? most : (int)ms + 1;
			}
			int r = vio_net_recv(c->n, q, p, BATCH, wait);
			if (r < 0) {
				ret = io_err("recv", r);
				goto done;
			}
			for (int i = 0; i < r; i++) {
				uint64_t seq;
				pkts++;
				bytes += p[i].len;
				switch (net_frame_check(p[i].data, p[i].len,
							&seq)) {
				case NF_OURS:
					ours++;
					break;
				case NF_OTHER:
					other++;
					break;
				case NF_BAD:
					bad++;
					break;
				}
			}
			got += (unsigned)r;
		}
		idle = got == 0;
	}
done:;
	double secs = tool_now() - t0;
	if (o->json)
		printf("{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"ours\":%" PRIu64 ",\"other\":%" PRIu64
		       ",\"bad\":%" PRIu64 ",\"seconds\":%.3f}\n",
		       pkts, bytes, ours, other, bad, secs);
	else
		printf("received %" PRIu64 " frames, %" PRIu64
		       " bytes in %.3f s: %" PRIu64 " vio test frames, %" PRIu64
		       " others, %" PRIu64 " malformed\n",
		       pkts, bytes, secs, ours, other, bad);
	if (ret == TOOL_EXIT_OK && o->count && pkts < o->count) {
		tool_err("recv: %" PRIu64 " of %" PRIu64
			 " frames came in %.1f s",
			 pkts, o->count, secs);
		ret = TOOL_EXIT_FAIL;
	}
	if (ret == TOOL_EXIT_OK && bad) {
		tool_err("recv: %" PRIu64 " malformed frames", bad);
		ret = TOOL_EXIT_FAIL;
	}
	return ret;
}

/* ---- ping ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Is the frame the answer to f: same length, the MAC addresses swapped,
 * every byte after them the same? */
static bool is_answer(const struct vio_net_pkt *p, const uint8_t *f,
		      uint32_t len)
{
	return p->len == len && memcmp(p->data, f + 6, 6) == 0 &&
	       memcmp((const uint8_t *)p->data + 6, f, 6) == 0 &&
	       memcmp((const uint8_t *)p->data + 12, f + 12, len - 12) == 0;
}

/* Frame i of ours came back altered? (same tag and sequence number) */
static bool is_altered(const struct vio_net_pkt *p, uint64_t i)
{
	uint64_t seq;
	enum net_frame_verdict v = net_frame_check(p->data, p->len, &seq);
	if (v == NF_OURS)
		return false; /* intact, but not the answer: a late one */
	/* ours (the tag is where we put it) but not intact */
	const uint8_t *d = p->data;
	return v == NF_BAD && p->len >= 54 && memcmp(d + 42, "vioN", 4) == 0 &&
	       (d[53] == (uint8_t)i);
}

int net_do_ping(struct net_ctx *c, const struct net_opts *o)
{
	const uint8_t *dst = o->has_dst ? o->dst : ping_dst;
	uint8_t *f = malloc(o->size);
	uint64_t *rtt = malloc(o->count * sizeof(*rtt));
	if (!f || !rtt) {
		free(f);
		free(rtt);
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	net_frame_build(f, o->size, dst, c->info.mac, 0);
	struct vio_net_pkt sp = {.data = f, .len = o->size};
	struct vio_net_pkt p[BATCH];
	uint64_t sent = 0, back = 0, lost = 0, altered = 0, other = 0;
	int ret = TOOL_EXIT_OK;
	for (uint64_t i = 0; i < o->count && !net_stop; i++) {
		net_frame_set_seq(f, o->size, i);
		uint64_t t0 = now_ns();
		uint64_t end = t0 + (uint64_t)(o->wait_s * 1e9);
		int r;
		while ((r = vio_net_send(c->n, 0, &sp, 1)) == 0) {
			vio_net_tx_reclaim(c->n, 0);
			if (now_ns() > end)
				break;
		}
		if (r < 0) {
			ret = io_err("send", r);
			break;
		}
		if (r == 0) {
			lost++;
			continue;
		}
		sent++;
		bool done = false;
		while (!done && !net_stop) {
			uint64_t now = now_ns();
			if (now >= end) {
				lost++;
				break;
			}
			int ms = (int)((end - now) / 1000000) + 1;
			r = vio_net_recv(c->n, 0, p, BATCH,
					 ms > 100 ? 100 : ms);
			if (r < 0) {
				ret = io_err("recv", r);
				goto out;
			}
			uint64_t t1 = now_ns();
			for (int k = 0; k < r; k++) {
				if (!done && is_answer(&p[k], f, o->size)) {
					rtt[back++] = t1 - t0;
					done = true;
				} else if (!done && is_altered(&p[k], i)) {
					altered++;
					done = true;
				} else {
					other++;
				}
			}
		}
	}
out:
	vio_net_tx_reclaim(c->n, 0);
	qsort(rtt, back, sizeof(*rtt), cmp_u64);
	double mn = 0, avg = 0, p99 = 0, mx = 0;
	if (back) {
		uint64_t sum = 0;
		for (uint64_t k = 0; k < back; k++)
			sum += rtt[k];
		mn = rtt[0] / 1e3;
		mx = rtt[back - 1] / 1e3;
		avg = (double)sum / (double)back / 1e3;
		uint64_t k99 = (back * 99 + 99) / 100;
		p99 = rtt[(k99 ? k99 : 1) - 1] / 1e3;
	}
	if (o->json)
		printf(
		    "{\"sent\":%" PRIu64 ",\"intact\":%" PRIu64
		    ",\"lost\":%" PRIu64 ",\"altered\":%" PRIu64
		    ",\"other\":%" PRIu64 ",\"size\":%u,\"rtt_us\":{"
		    "\"min\":%.1f,\"avg\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n",
		    sent, back, lost, altered, other, o->size, mn, avg, p99,
		    mx);
	else
		printf("ping: %" PRIu64 " sent, %" PRIu64
		       " came back intact, %" PRIu64 " lost, %" PRIu64
		       " altered (%" PRIu64 " other frames)\n"
		       "rtt min/avg/p99/max = %.1f/%.1f/%.1f/%.1f us\n",
		       sent, back, lost, altered, other, mn, avg, p99, mx);
	free(f);
	free(rtt);
	if (ret == TOOL_EXIT_OK && (lost || altered || back < o->count)) {
		tool_err("ping: %" PRIu64 " of %" PRIu64
			 " frames did not come back intact",
			 o->count - back, o->count);
		ret = TOOL_EXIT_FAIL;
	}
	return ret;
}
