/* SPDX-License-Identifier: MIT */
/*
 * vio net bench (tools/net.h): one thread per queue pair in use, each
 * sending (tx), receiving (rx) or both (loop) as fast as the rings go
 * for --time seconds; packets and bytes per direction, summed.
 *
 * tx and loop send in place (vio_net_tx_bufs): each frame is written
 * into a transmit slot the driver lends, the whole frame (valid UDP/IPv4)
 * the first time a slot is seen, then only its Ethernet/IPv4/UDP headers
 * (NET_FRAME_HDR bytes) each time the slot is reused.  That is what
 * DPDK's testpmd txonly writes per mbuf before its virtio-user driver
 * posts the mbuf itself, so that bench/net compares like with like: the
 * driver, the transport and the device, not frame making or copying.
 *
 * --poll: never wait for an interrupt (receive with timeout 0: the
 * driver leaves callbacks off, so the device never signals), as DPDK's
 * virtio-user driver polls; without it an empty receive ring sleeps on
 * the call eventfd.
 *
 * loop keeps at most a window of frames in flight (half the ring, so an
 * echo port never finds the receive ring empty); frames that do not come
 * back within LOST_S leave the window, and what has not come back by the
 * end (after LOST_S of silence) is lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "util.h"

#define MAX_BURST 256u
/* loop: a window of frames not back after this long is given up on */
#define LOST_S 0.5

static const uint8_t bench_dst[VIO_NET_ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x02};

struct bench_pair {
	struct net_ctx *c;
	const struct net_opts *o;
	unsigned qp;
	double t_start, t_end; /* the measured interval */
	uint64_t tx, tx_bytes, rx, rx_bytes, bad, lost;
	int err;
	pthread_t th;
};

static void count_rx(struct bench_pair *b, const struct vio_net_pkt *p, int n)
{
	for (int i = 0; i < n; i++) {
		b->rx_bytes += p[i].len;
		if (b->o->mode == NM_LOOP && p[i].len != b->o->size)
			b->bad++;
	}
	b->rx += (unsigned)n;
}

/*
 * The transmit slots a pair has written a whole frame into (a set of
 * pointers, open addressing): a slot seen before gets only the headers.
 */
struct slot_set {
	uintptr_t *v;
	size_t mask;
};

static int slot_set_init(struct slot_set *s, unsigned slots)
{
	size_t cap = 1024;
	while (cap < (size_t)slots * 4)
		cap *= 2;
	s->v = calloc(cap, sizeof(*s->v));
	s->mask = cap - 1;
	return s->v ? 0 : -ENOMEM;
}

/* True when p was not in the set (it is now). */
static bool slot_set_add(struct slot_set *s, const void *p)
{
	uintptr_t k = (uintptr_t)p;
	size_t i = (size_t)((k >> 6) * 0x9e3779b97f4a7c15ull >> 40) & s->mask;
	for (;; i = (i + 1) & s->mask) {
		if (s->v[i] == k)
			return false;
		if (!s->v[i]) {
			s->v[i] = k;
			return true;
		}
	}
}

/*
 * Up to k frames into lent slots, in tp[]: the count, or negative errno.
 * A slot's payload is written once (the first time it is seen), its
 * headers every time, as DPDK's txonly does (see the top of the file).
 */
static int fill_frames(struct bench_pair *b, struct slot_set *seen,
		       const uint8_t *frame, struct vio_net_pkt *tp, unsigned k)
{
	void *bufs[MAX_BURST];
	uint32_t room = 0;
	int r = vio_net_tx_bufs(b->c->n, b->qp, bufs, k, &room);
	if (r <= 0)
		return r;
	uint32_t size = b->o->size;
	if (room < size)
		return -EMSGSIZE;
	for (int i = 0; i < r; i++) {
		if (slot_set_add(seen, bufs[i]))
			memcpy(bufs[i], frame, size);
		else
			memcpy(bufs[i], frame, NET_FRAME_HDR);
		tp[i] = (struct vio_net_pkt){.data = bufs[i], .len = size};
	}
	return r;
}

static void *bench_thread(void *arg)
{
	struct bench_pair *b = arg;
	const struct net_opts *o = b->o;
	struct vio_net *n = b->c->n;
	unsigned burst = o->burst;
	/* rx: 100 ms at most, then the clock is read again */
	int rx_wait = o->poll ? 0 : 100, loop_wait = o->poll ? 0 : 1;
	uint8_t *frame = malloc(o->size);
	struct vio_net_pkt tp[MAX_BURST], rp[MAX_BURST];
	struct slot_set seen = {0};
	if (!frame || slot_set_init(&seen, b->c->info.queue_size)) {
		free(frame);
		b->err = -ENOMEM;
		return NULL;
	}
	net_frame_build(frame, o->size, bench_dst, b->c->info.mac, b->qp);
	uint64_t window = b->c->info.queue_size / 2;
	if (window < burst)
		window = burst;
	uint64_t win_base = 0; /* frames sent that left the window (lost) */
	double last_rx = tool_now();
	bool rx_seen = false; /* loop: frames came since the clock's read */
	b->t_start = tool_now();
	double end = b->t_start + o->secs;
	unsigned turn = 0;
	for (;;) {
		if ((++turn & 63) == 0 || (o->mode == NM_RX && !o->poll)) {
			double now = tool_now();
			if (now >= end || net_stop)
				break;
		}
		int r;
		if (o->mode == NM_RX) {
			r = vio_net_recv(n, b->qp, rp, burst, rx_wait);
			if (r < 0) {
				b->err = r;
				break;
			}
			count_rx(b, rp, r);
			continue;
		}
		unsigned k = burst;
		if (o->mode == NM_LOOP) {
			/* frames given up on that came back after all leave
			 * win_base */
			uint64_t out = b->tx - b->rx;
			if (out < win_base)
				win_base = out;
			uint64_t inflight = out - win_base;
			k = inflight >= window ? 0
			    : window - inflight < burst
				? (unsigned)(window - inflight)
				: burst;
		}
		int s = 0;
		if (k) {
			/* slots not sent are taken back by the next call */
			s = fill_frames(b, &seen, frame, tp, k);
			if (s > 0)
				s = vio_net_send(n, b->qp, tp, (unsigned)s);
			if (s < 0) {
				b->err = s;
				break;
			}
			b->tx += (unsigned)s;
			b->tx_bytes += (uint64_t)s * o->size;
		}
		if (o->mode == NM_TX) {
			if ((unsigned)s < k &&
			    vio_net_tx_reclaim(n, b->qp) <= 0 && !o->poll)
				sched_yield();
			continue;
		}
		/* loop: take what came back; wait a little when nothing
		 * could be sent */
		r = vio_net_recv(n, b->qp, rp, burst, s == 0 ? loop_wait : 0);
		if (r < 0) {
			b->err = r;
			break;
		}
		count_rx(b, rp, r);
		/* the clock only on a turn that moved nothing: a frame since
		 * the last such turn restarts the silence from now */
		if (r > 0) {
			rx_seen = true;
		} else if (s == 0) {
			double now = tool_now();
			if (rx_seen) {
				rx_seen = false;
				last_rx = now;
			} else if (now - last_rx > LOST_S) {
				/* the window's frames are not coming back:
				 * send more (they count as lost unless they
				 * come yet) */
				win_base = b->tx - b->rx;
				last_rx = now;
			}
		}
	}
	b->t_end = tool_now();
	/* loop: the frames still on their way back (not timed); what has
	 * not come back after LOST_S of silence is lost */
	last_rx = tool_now();
	while (o->mode == NM_LOOP && b->err == 0 && b->tx > b->rx &&
	       tool_now() - last_rx < LOST_S) {
		/* --poll: not timed any more, so let a device that shares
		 * this CPU run */
		int r = vio_net_recv(n, b->qp, rp, burst, o->poll ? 0 : 10);
		if (r < 0)
			break;
		if (r > 0)
			last_rx = tool_now();
		else if (o->poll)
			sched_yield();
		count_rx(b, rp, r);
	}
	if (o->mode == NM_LOOP && b->tx > b->rx)
		b->lost = b->tx - b->rx;
	/* hand back the transmit slots before the device goes */
	vio_net_tx_bufs(n, b->qp, NULL, 0, NULL);
	for (int i = 0; i < 100 && vio_net_tx_reclaim(n, b->qp) > 0; i++)
		;
	free(seen.v);
	free(frame);
	return NULL;
}

static double mpps(uint64_t p, double s)
{
	return s > 0 ? (double)p / s / 1e6 : 0;
}

static double gbps(uint64_t bytes, double s)
{
	return s > 0 ? (double)bytes * 8 / s / 1e9 : 0;
}

static const char *const mode_names[] = {"tx", "rx", "loop"};

int net_do_bench(struct net_ctx *c, const struct net_opts *o)
{
	unsigned pairs = c->info.pairs ? c->info.pairs : 1;
	struct bench_pair *bp = calloc(pairs, sizeof(*bp));
	if (!bp) {
		tool_err("out of memory");
		return TOOL_EXIT_FAIL;
	}
	unsigned started = 0;
	for (; started < pairs; started++) {
		bp[started] =
		    (struct bench_pair){.c = c, .o = o, .qp = started};
		int r = pthread_create(&bp[started].th, NULL, bench_thread,
				       &bp[started]);
		if (r) {
			tool_err("thread for pair %u: %s", started,
				 strerror(r));
			net_stop = 1;
			break;
		}
	}
	for (unsigned q = 0; q < started; q++)
		pthread_join(bp[q].th, NULL);
	int ret = started == pairs ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
	struct bench_pair t = {0};
	double secs = 0;
	for (unsigned q = 0; q < started; q++) {
		struct bench_pair *b = &bp[q];
		t.tx += b->tx;
		t.tx_bytes += b->tx_bytes;
		t.rx += b->rx;
		t.rx_bytes += b->rx_bytes;
		t.bad += b->bad;
		t.lost += b->lost;
		if (b->t_end - b->t_start > secs)
			secs = b->t_end - b->t_start;
		if (b->err && ret == TOOL_EXIT_OK) {
			tool_err("pair %u: %s", q,
				 b->err == -EIO ? "the queue broke"
						: strerror(-b->err));
			ret = TOOL_EXIT_FAIL;
		}
	}
	const char *m = mode_names[o->mode];
	if (o->json) {
		printf("{\"mode\":\"%s\",\"size\":%u,\"pairs\":%u,\"burst\":%u,"
		       "\"seconds\":%.3f,\"packed\":%s,\"poll\":%s,"
		       "\"tx\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"mpps\":%.4f,\"gbps\":%.4f},"
		       "\"rx\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"mpps\":%.4f,\"gbps\":%.4f,\"bad\":%" PRIu64 "},"
		       "\"lost\":%" PRIu64 ",\"per_pair\":[",
		       m, o->size, pairs, o->burst, secs,
		       c->info.packed ? "true" : "false",
		       o->poll ? "true" : "false", t.tx, t.tx_bytes,
		       mpps(t.tx, secs), gbps(t.tx_bytes, secs), t.rx,
		       t.rx_bytes, mpps(t.rx, secs), gbps(t.rx_bytes, secs),
		       t.bad, t.lost);
		for (unsigned q = 0; q < started; q++) {
			struct bench_pair *b = &bp[q];
			double s = b->t_end - b->t_start;
			printf("%s{\"pair\":%u,\"tx_packets\":%" PRIu64
			       ",\"rx_packets\":%" PRIu64
			       ",\"tx_mpps\":%.4f,\"rx_mpps\":%.4f}",
			       q ? "," : "", q, b->tx, b->rx, mpps(b->tx, s),
			       mpps(b->rx, s));
		}
		printf("]}\n");
	} else {
		printf("bench %s: %u-byte frames, %u pair%s, %s ring, %s, "
		       "%.2f s\n",
		       m, o->size, pairs, pairs == 1 ? "" : "s",
		       c->info.packed ? "packed" : "split",
		       o->poll ? "polling" : "interrupts", secs);
		if (o->mode != NM_RX)
			printf("  tx: %8.3f Mpps %8.3f Gbit/s  (%" PRIu64
			       " frames)\n",
			       mpps(t.tx, secs), gbps(t.tx_bytes, secs), t.tx);
		if (o->mode != NM_TX)
			printf("  rx: %8.3f Mpps %8.3f Gbit/s  (%" PRIu64
			       " frames)\n",
			       mpps(t.rx, secs), gbps(t.rx_bytes, secs), t.rx);
		if (o->mode == NM_LOOP)
			printf("  lost %" PRIu64 ", wrong length %" PRIu64 "\n",
			       t.lost, t.bad);
		for (unsigned q = 0; pairs > 1 && q < started; q++) {
			struct bench_pair *b = &bp[q];
			double s = b->t_end - b->t_start;
			printf("  pair %u: tx %.3f Mpps, rx %.3f Mpps\n", q,
			       mpps(b->tx, s), mpps(b->rx, s));
		}
	}
	free(bp);
	return ret;
}
