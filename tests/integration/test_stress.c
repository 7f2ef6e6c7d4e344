/* SPDX-License-Identifier: MIT */
/*
 * Stress: a driver and a device over the in-process transport, on two
 * threads, through the whole model (bus, probe, negotiation, queue setup)
 * with every byte checked.
 *
 * The device is a test type defined here, "echo": two queues; its kick
 * handler pops each chain, reads every readable byte, and writes a
 * 16-byte header (magic, readable length, queue, checksum) followed by a
 * position-keyed transform of those bytes into the writable segments, as
 * far as they reach, and pushes with the exact written length.  The
 * driver, bound through a vio_bus and a vio_driver whose id table matches
 * the echo device, regenerates what it sent and checks the used length,
 * every written byte, and that nothing past the used length was touched.
 *
 * Randomized and seeded (VIO_TEST_SEED, printed): both ring formats,
 * EVENT_IDX and INDIRECT_DESC on and off, queue sizes, 1..8 readable and
 * 1..8 writable segments of 0..4096 bytes, batches of 1..64, and the
 * notification dance on both sides: callbacks disabled, enabled,
 * enable_cb refusing because used buffers slipped in, enable_cb_delayed,
 * sleeping on interrupts (a lost one times out and fails); the device
 * pops until empty or runs disable_notify/enable_notify loops, and calls
 * after each push or once per batch.  Out of order: in about half of its
 * kicks the device collects what it popped and pushes it back shuffled
 * (a device whose completions come in random order), which the driver
 * must take in any order (counted, must happen).  Thread timing varies from run
 * to run; the data, sizes and decisions follow the seed.
 *
 * Shutdown: buffers left in flight (kicked or not) come back exactly once
 * through vio_vq_detach_unused in the driver's remove; no fd is leaked.
 *
 * Buffers: 1,000,000 in total (200,000 under AddressSanitizer or
 * ThreadSanitizer);
 * VIO_STRESS_BUFFERS overrides.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test.h"
#include <vio/bus.h>
#include <vio/device.h>
#include <vio/driver.h>
#include <vio/inproc.h>
#include <vio/mem.h>
#include <vio/ring.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define ECHO_DEVICE_ID 0xfff0u /* not a real virtio device id */
#define ECHO_VENDOR_ID 0x56494f00u
#define ECHO_MAGIC 0x4f484345u /* "ECHO" */
#define ECHO_HDR 16u
#define NQ 2u
#define QMAX 256u
#define MAX_OUT 8u
#define MAX_IN 8u
#define MAX_SEG_LEN 4096u
#define CANARY 0xc5
#define WAIT_MS 10000 /* a lost interrupt fails after this */
/* one buffer's memory: every segment with an alignment gap */
#define SLOT_BYTES ((MAX_OUT + MAX_IN) * (MAX_SEG_LEN + 16u))
#define STAGE_BYTES (ECHO_HDR + MAX_OUT * MAX_SEG_LEN + 8u)

static const uint8_t echo_config[8] = {'e', 'c', 'h', 'o', 1, 2, 3, 4};

/* ---- the echo transform, shared by the device and the checker ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/*
 * buf (8-aligned) holds ECHO_HDR bytes of room, then len payload bytes,
 * then zero padding to a multiple of 8.  Fill the header, transform the
 * payload in place.  Returns ECHO_HDR + len.
 */
static uint32_t echo_build(uint64_t *buf, uint32_t len, unsigned q)
{
	uint64_t *p = buf + ECHO_HDR / 8;
	size_t nw = (len + 7u) / 8u;
	uint64_t sum = 0x1234567 + len;
	for (size_t j = 0; j < nw; j++) {
		sum = (sum ^ p[j]) * 0x100000001b3ull;
		p[j] ^= mix64(j * 0x9e3779b97f4a7c15ull + q + 1);
	}
	uint32_t h[4] = {htole32(ECHO_MAGIC), htole32(len), htole32(q),
			 htole32((uint32_t)(sum ^ (sum >> 32)))};
	memcpy(buf, h, sizeof(h));
	return ECHO_HDR + len;
}

/* The driver's readable bytes of a buffer: len bytes from seed, zero
 * padded to a multiple of 8. */
static void gen_payload(uint64_t *p, uint32_t len, uint64_t seed)
{
	size_t nw = (len + 7u) / 8u;
	for (size_t j = 0; j < nw; j++)
		p[j] = mix64(seed + j);
	if (len % 8)
		memset((uint8_t *)p + len, 0, 8 - len % 8);
}

/* ---- the echo device ---- */

struct echo_dev {
	uint64_t rs; /* device-side decisions; device thread only */
	_Alignas(8) uint8_t stage[STAGE_BYTES];
	struct vio_iov iov[64];
	struct vio_used used[QMAX];
	/* read by the main thread after the device thread is joined */
	uint64_t chains, calls_made, reordered;
	int errors;
	char err[200];
};

static void echo_fail(struct echo_dev *ed, const char *what, int r)
{
	if (!ed->errors++)
		snprintf(ed->err, sizeof(ed->err), "%s: %d", what, r);
}

/* Serve one chain: read, transform, write; the used entry to push. */
static void echo_serve(struct echo_dev *ed, const struct vio_chain *c,
		       unsigned q, struct vio_used *u)
{
	struct vio_cursor cur;
	uint64_t *stage = (uint64_t *)(void *)ed->stage;

	vio_cursor_init(&cur, c->out, c->nr_out);
	uint32_t got = (uint32_t)vio_cursor_read(&cur, ed->stage + ECHO_HDR,
						 STAGE_BYTES - ECHO_HDR - 8);
	if (got != c->out_len || cur.left)
		echo_fail(ed, "chain readable length", (int)c->out_len);
	memset(ed->stage + ECHO_HDR + got, 0, 8);
	uint32_t total = echo_build(stage, got, q);
	vio_cursor_init(&cur, c->in, c->nr_in);
	u->head = c->head;
	u->len = (uint32_t)vio_cursor_write(&cur, ed->stage, total);
	ed->chains++;
}

static void echo_call(struct echo_dev *ed, struct vio_vq *vq)
{
	if (vio_vq_call(vq))
		ed->calls_made++;
}

/* Push the nu collected entries, push_batch at a time, first shuffled
 * (completion in random order) if asked. */
static void echo_push(struct echo_dev *ed, struct vio_vq *vq, unsigned *nu,
		      unsigned push_batch, bool call_each, bool shuffle)
{
	unsigned n = *nu;
	for (unsigned i = n; shuffle && i > 1; i--) {
		unsigned j = (unsigned)(test_rand(&ed->rs) % i);
		struct vio_used t = ed->used[i - 1];
		ed->used[i - 1] = ed->used[j];
		ed->used[j] = t;
		ed->reordered += j != i - 1;
	}
	for (unsigned k = 0; k < n; k += push_batch) {
		unsigned m = n - k < push_batch ? n - k : push_batch;
		int r = vio_vq_push_batch(vq, ed->used + k, m);
		if (r)
			echo_fail(ed, "vio_vq_push_batch", r);
		if (call_each)
			echo_call(ed, vq);
	}
	*nu = 0;
}

/* Pop until empty.  Pushes one at a time or in batches, calls after each
 * push or once at the end, in pop order or shuffled (up to QMAX chains
 * at a time): all chosen by the device's own dice. */
static void echo_drain(struct echo_dev *ed, struct vio_vq *vq, unsigned q,
		       unsigned push_batch, bool call_each, bool shuffle)
{
	struct vio_chain c;
	unsigned nu = 0;
	int r;

	while ((r = vio_vq_pop(vq, &c, ed->iov, 64)) == 1) {
		echo_serve(ed, &c, q, &ed->used[nu++]);
		if (nu >= (shuffle ? QMAX : push_batch))
			echo_push(ed, vq, &nu, push_batch, call_each, shuffle);
	}
	if (r < 0)
		echo_fail(ed, vio_vq_error(vq), r);
	echo_push(ed, vq, &nu, push_batch, false, shuffle);
}

static bool echo_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	struct echo_dev *ed = vio_device_opaque(dev);
	uint64_t d = test_rand(&ed->rs);
	unsigned push_batch = 1 + (unsigned)(d % 32);
	bool call_each = (d >> 8) % 4 == 0;
	bool shuffle = (d >> 24) % 2 == 0;

	if ((d >> 16) % 3 == 0) {
		/* the busy-device pattern: no kicks while we work, then
		 * re-enable and look again (closes the race) */
		do {
			vio_vq_disable_notify(vq);
			echo_drain(ed, vq, idx, push_batch, call_each, shuffle);
		} while (!vio_vq_enable_notify(vq) && !vio_vq_broken(vq));
	} else {
		/* pop until empty: an empty pop re-arms kicks */
		echo_drain(ed, vq, idx, push_batch, call_each, shuffle);
	}
	echo_call(ed, vq);
	return false;
}

static int echo_status(struct vio_device *dev, uint8_t old, uint8_t new_status)
{
	return 0;
}

static void echo_reset(struct vio_device *dev)
{
}

static const struct vio_device_ops echo_ops = {
    .status = echo_status,
    .reset = echo_reset,
    .kick = echo_kick,
};

/* ---- the driver ---- */

struct slot {
	struct vio_sg sg[MAX_OUT + MAX_IN];
	unsigned n_out, n_in;
	uint32_t out_len, in_len;
	uint64_t seed;
	uint8_t *base; /* SLOT_BYTES in shared memory */
	unsigned q;
	bool busy;
};

struct drvq {
	struct vio_vq *vq;
	uint16_t size;
	struct slot *slots; /* [QMAX] */
	uint16_t free_ids[QMAX];
	unsigned nfree;
	uint8_t *mem;
	uint64_t added, done;
};

/* One configuration under test. */
struct scenario {
	bool packed, event_idx, indirect;
	uint64_t seed;
	uint64_t target; /* buffers to complete */
	/* set by probe */
	struct vio_drvdev *vdev;
	struct drvq q[NQ];
	int probed, removed;
	uint64_t detached, detach_expected;
	uint64_t callbacks;
	int errors;
};

static struct scenario *cur; /* the driver reaches its scenario here */

static void drv_fail(struct scenario *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void drv_fail(struct scenario *s, const char *fmt, ...)
{
	va_list ap;
	s->errors++;
	if (s->errors > 10)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "stress FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static void on_used(struct vio_vq *vq, void *opaque)
{
	struct scenario *s = opaque;
	s->callbacks++;
}

static int echo_probe(struct vio_drvdev *vdev)
{
	struct scenario *s = cur;
	struct vio_features want = {{0}};
	uint64_t rs = s->seed ^ 0x9b0be;

	s->probed++;
	vio_features_set(&want, VIRTIO_F_VERSION_1);
	if (s->packed)
		vio_features_set(&want, VIRTIO_F_RING_PACKED);
	if (s->event_idx)
		vio_features_set(&want, VIRTIO_RING_F_EVENT_IDX);
	if (s->indirect)
		vio_features_set(&want, VIRTIO_RING_F_INDIRECT_DESC);
	int r = vio_drvdev_negotiate(vdev, &want);
	if (r)
		return r;
	if (vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED) != s->packed ||
	    vio_drvdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX) !=
		s->event_idx ||
	    vio_drvdev_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC) !=
		s->indirect)
		return -EPROTO;
	uint8_t cfg[sizeof(echo_config)];
	r = vio_drvdev_config_read(vdev, 0, cfg, sizeof(cfg));
	if (r || memcmp(cfg, echo_config, sizeof(cfg)))
		return r ? r : -EPROTO;
	for (unsigned i = 0; i < NQ; i++) {
		/* 16 descriptors at least: a direct 16-segment chain fits */
		unsigned size;
		if (s->packed)
			size = 16 + (unsigned)(test_rand(&rs) % (QMAX - 15));
		else
			size = 16u << (test_rand(&rs) % 5);
		struct vio_vq *vq =
		    vio_drvdev_setup_vq(vdev, i, size, on_used, s);
		if (!vq)
			return -errno;
		s->q[i].vq = vq;
		s->q[i].size = vio_vq_size(vq);
	}
	s->vdev = vdev;
	vio_drvdev_set_priv(vdev, s);
	return 0;
}

/* The device is stopped: every buffer still out comes back exactly once. */
static void echo_remove(struct vio_drvdev *vdev)
{
	struct scenario *s = vio_drvdev_priv(vdev);
	s->removed++;
	for (unsigned i = 0; i < NQ; i++) {
		struct drvq *dq = &s->q[i];
		struct slot *t;
		while ((t = vio_vq_detach_unused(dq->vq))) {
			if (t < dq->slots || t >= dq->slots + QMAX ||
			    !t->busy) {
				drv_fail(s, "detach: bad or repeated token");
				continue;
			}
			t->busy = false;
			dq->free_ids[dq->nfree++] = (uint16_t)(t - dq->slots);
			s->detached++;
		}
		if (vio_vq_num_free(dq->vq) != dq->size)
			drv_fail(s,
				 "queue %u: %u of %u descriptors free after "
				 "detach",
				 i, vio_vq_num_free(dq->vq), dq->size);
	}
}

static const struct vio_device_id echo_ids[] = {
    {ECHO_DEVICE_ID, VIO_DEV_ANY_ID},
    {0, 0},
};

static const struct vio_driver echo_driver = {
    .name = "echo-test",
    .id_table = echo_ids,
    .probe = echo_probe,
    .remove = echo_remove,
};

/* Segment length: mostly small, sometimes empty, sometimes up to 4096. */
static uint32_t rand_len(uint64_t *rs)
{
	uint64_t r = test_rand(rs);
	switch (r % 16) {
	case 0:
		return 0;
	case 1:
		return (uint32_t)((r >> 8) % (MAX_SEG_LEN + 1));
	default:
		return 1 + (uint32_t)((r >> 8) % 64);
	}
}

static _Alignas(8) uint8_t scratch[STAGE_BYTES];
static uint8_t canary_block[MAX_SEG_LEN];

/* Lay out and fill one buffer in slot t. */
static void make_buffer(uint64_t *rs, struct slot *t)
{
	uint8_t *p = t->base;
	t->n_out = 1 + (unsigned)(test_rand(rs) % MAX_OUT);
	t->n_in = 1 + (unsigned)(test_rand(rs) % MAX_IN);
	t->seed = test_rand(rs);
	t->out_len = t->in_len = 0;
	for (unsigned k = 0; k < t->n_out + t->n_in; k++) {
		uint32_t len = rand_len(rs);
		p += test_rand(rs) % 16; /* odd alignments too */
		t->sg[k].buf = p;
		t->sg[k].len = len;
		p += len;
		if (k < t->n_out)
			t->out_len += len;
		else
			t->in_len += len;
	}
	uint64_t *w = (uint64_t *)(void *)scratch;
	gen_payload(w, t->out_len, t->seed);
	const uint8_t *src = scratch;
	for (unsigned k = 0; k < t->n_out; k++) {
		memcpy(t->sg[k].buf, src, t->sg[k].len);
		src += t->sg[k].len;
	}
	for (unsigned k = t->n_out; k < t->n_out + t->n_in; k++)
		memset(t->sg[k].buf, CANARY, t->sg[k].len);
}

/* Check a used buffer: length, every written byte, untouched rest. */
static bool check_buffer(struct scenario *s, const struct slot *t, uint32_t len)
{
	uint64_t *w = (uint64_t *)(void *)scratch;
	gen_payload(w + ECHO_HDR / 8, t->out_len, t->seed);
	uint32_t total = echo_build(w, t->out_len, t->q);
	uint32_t expect = total < t->in_len ? total : t->in_len;
	if (len != expect) {
		drv_fail(s, "queue %u: used length %u, expected %u", t->q, len,
			 expect);
		return false;
	}
	uint32_t off = 0;
	for (unsigned k = t->n_out; k < t->n_out + t->n_in; k++) {
		const uint8_t *b = t->sg[k].buf;
		uint32_t sl = t->sg[k].len;
		uint32_t wr = off < len ? (len - off < sl ? len - off : sl) : 0;
		if (memcmp(b, scratch + off, wr)) {
			drv_fail(s, "queue %u: wrong bytes in segment %u", t->q,
				 k);
			return false;
		}
		if (memcmp(b + wr, canary_block, sl - wr)) {
			drv_fail(s,
				 "queue %u: bytes past the used length "
				 "written in segment %u",
				 t->q, k);
			return false;
		}
		off += sl;
	}
	return true;
}

static void complete(struct scenario *s, struct drvq *dq, struct slot *t,
		     uint32_t len)
{
	if (t < dq->slots || t >= dq->slots + QMAX || !t->busy) {
		drv_fail(s, "queue %u: bad or repeated token", t ? t->q : 99);
		return;
	}
	check_buffer(s, t, len);
	t->busy = false;
	dq->free_ids[dq->nfree++] = (uint16_t)(t - dq->slots);
	dq->done++;
}

static unsigned harvest(struct scenario *s, struct drvq *dq)
{
	struct slot *t;
	uint32_t len;
	unsigned n = 0;
	while ((t = vio_vq_get(dq->vq, &len))) {
		complete(s, dq, t, len);
		n++;
	}
	if (vio_vq_broken(dq->vq))
		drv_fail(s, "driver queue broken: %s", vio_vq_error(dq->vq));
	return n;
}

/* Sleep on the queue's interrupt for one buffer, then take the rest. */
static void wait_one(struct scenario *s, struct drvq *dq)
{
	uint32_t len;
	struct slot *t = vio_drvdev_wait_used(s->vdev, dq->vq, &len, WAIT_MS);
	if (!t) {
		drv_fail(s,
			 "no used buffer within %d ms (%s): a lost "
			 "notification? in flight %llu",
			 WAIT_MS, strerror(errno),
			 (unsigned long long)(dq->added - dq->done));
		return;
	}
	complete(s, dq, t, len);
	harvest(s, dq);
}

/* Add up to batch buffers to dq and kick.  Returns how many went in. */
static unsigned add_batch(struct scenario *s, uint64_t *rs, struct drvq *dq,
			  unsigned batch, bool kick)
{
	unsigned n = 0;
	while (n < batch && dq->nfree) {
		struct slot *t = &dq->slots[dq->free_ids[dq->nfree - 1]];
		make_buffer(rs, t);
		int r = vio_vq_add(dq->vq, t->sg, t->n_out, t->n_in, t);
		if (r == -ENOSPC)
			break;
		if (r) {
			drv_fail(s, "vio_vq_add: %d", r);
			break;
		}
		dq->nfree--;
		t->busy = true;
		dq->added++;
		n++;
	}
	if (kick)
		vio_vq_kick(dq->vq);
	return n;
}

static uint64_t done_total(const struct scenario *s)
{
	uint64_t d = 0;
	for (unsigned i = 0; i < NQ; i++)
		d += s->q[i].done;
	return d;
}

static void drive(struct scenario *s)
{
	uint64_t rs = s->seed;

	while (done_total(s) < s->target && !s->errors) {
		unsigned qi = (unsigned)(test_rand(&rs) % NQ);
		struct drvq *dq = &s->q[qi];
		unsigned batch = 1 + (unsigned)(test_rand(&rs) % 64);
		unsigned n = add_batch(s, &rs, dq, batch, true);
		bool in_flight = dq->added != dq->done;

		switch (test_rand(&rs) % 8) {
		case 0:
		case 1:
			/* sleep on the interrupt */
			if (in_flight)
				wait_one(s, dq);
			break;
		case 2:
			/* no callbacks while we poll, then restart: enable_cb
			 * refuses if used buffers slipped in */
			vio_vq_disable_cb(dq->vq);
			harvest(s, dq);
			while (!vio_vq_enable_cb(dq->vq))
				if (!harvest(s, dq) && vio_vq_broken(dq->vq))
					break;
			break;
		case 3:
			/* callbacks off and left off: the next sleep turns
			 * them back on */
			vio_vq_disable_cb(dq->vq);
			harvest(s, dq);
			break;
		case 4:
			/* ask only after most of what is in flight */
			while (!vio_vq_enable_cb_delayed(dq->vq))
				if (!harvest(s, dq) && vio_vq_broken(dq->vq))
					break;
			harvest(s, dq);
			break;
		default:
			harvest(s, dq);
			break;
		}
		/* a full ring: nothing went in, so wait for room */
		if (!n && dq->added != dq->done && !s->errors)
			wait_one(s, dq);
	}
	/* drain every queue */
	for (unsigned i = 0; i < NQ && !s->errors; i++)
		while (s->q[i].added != s->q[i].done && !s->errors)
			wait_one(s, &s->q[i]);
	/* leave some buffers out, kicked or not, for the remove path */
	for (unsigned i = 0; i < NQ && !s->errors; i++) {
		struct drvq *dq = &s->q[i];
		unsigned n =
		    add_batch(s, &rs, dq, 1 + (unsigned)(test_rand(&rs) % 8),
			      test_rand(&rs) % 2);
		s->detach_expected += n;
	}
}

/* ---- the device thread ---- */

static void *device_thread(void *arg)
{
	struct vio_inproc *ip = arg;
	int r;
	while ((r = vio_inproc_device_poll(ip, -1)) >= 0)
		;
	return (void *)(intptr_t)r;
}

/* ---- one scenario, set up and torn down completely ---- */

static void run_scenario(struct scenario *s, double *secs)
{
	struct echo_dev *ed = calloc(1, sizeof(*ed));
	REQUIRE(ed);
	ed->rs = s->seed ^ 0xde71ce;
	if (!ed->rs)
		ed->rs = 1;

	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	/* all buffer memory before the device starts (vio/inproc.h) */
	REQUIRE(vio_mem_add_region(mem,
				   (size_t)NQ * QMAX * SLOT_BYTES + (4u << 20),
				   NULL) == 0);
	for (unsigned i = 0; i < NQ; i++) {
		struct drvq *dq = &s->q[i];
		uint64_t daddr;
		dq->mem =
		    vio_mem_alloc(mem, (size_t)QMAX * SLOT_BYTES, 64, &daddr);
		REQUIRE(dq->mem);
		dq->slots = calloc(QMAX, sizeof(*dq->slots));
		REQUIRE(dq->slots);
		for (unsigned k = 0; k < QMAX; k++) {
			dq->slots[k].base = dq->mem + (size_t)k * SLOT_BYTES;
			dq->slots[k].q = i;
		}
	}

	struct vio_features offer = {{0}};
	vio_features_set(&offer, VIRTIO_F_RING_PACKED);
	vio_features_set(&offer, VIRTIO_RING_F_EVENT_IDX);
	vio_features_set(&offer, VIRTIO_RING_F_INDIRECT_DESC);
	struct vio_device_opts dc = {.name = "echo",
				     .device_id = ECHO_DEVICE_ID,
				     .vendor_id = ECHO_VENDOR_ID,
				     .features = offer,
				     .num_queues = NQ,
				     .queue_max_size = QMAX,
				     .config = echo_config,
				     .config_size = sizeof(echo_config),
				     .ops = &echo_ops,
				     .opaque = ed};
	struct vio_device *dev = vio_device_new(&dc);
	REQUIRE(dev);
	struct vio_inproc *ip = vio_inproc_new(dev, mem);
	REQUIRE(ip);
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, device_thread, ip) == 0);

	struct vio_bus *bus = vio_bus_new();
	REQUIRE(bus);
	REQUIRE(vio_bus_register(bus, &echo_driver) == 0);
	struct vio_drvdev *vdev = vio_inproc_vdev(ip);
	CHECK_EQ(vio_drvdev_device_id(vdev), ECHO_DEVICE_ID);
	cur = s;
	int r = vio_bus_add(bus, vdev);
	CHECK_EQ(r, 0);
	CHECK_EQ(s->probed, 1);
	CHECK(vio_drvdev_driver(vdev) == &echo_driver);
	CHECK(vio_drvdev_get_status(vdev) & VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK_EQ(vio_bus_count(bus), 1);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (r == 0) {
		for (unsigned i = 0; i < NQ; i++) {
			struct drvq *dq = &s->q[i];
			dq->nfree = 0;
			for (unsigned k = 0; k < dq->size; k++)
				dq->free_ids[dq->nfree++] =
				    (uint16_t)(dq->size - 1 - k);
		}
		drive(s);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*secs = (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	/* shutdown: the bus stops the device, remove takes back the rest */
	vio_bus_remove(bus, vdev);
	CHECK_EQ(s->removed, r == 0 ? 1 : 0);
	CHECK_EQ(vio_bus_count(bus), 0);
	CHECK_EQ(s->detached, s->detach_expected);
	CHECK_EQ(vio_drvdev_get_status(vdev), 0);
	for (unsigned i = 0; i < NQ; i++) {
		CHECK_EQ(s->q[i].nfree, s->q[i].size);
		for (unsigned k = 0; k < QMAX; k++)
			CHECK(!s->q[i].slots[k].busy);
	}

	vio_inproc_stop(ip);
	void *ret;
	pthread_join(th, &ret);
	CHECK_EQ((intptr_t)ret, -ECANCELED);
	vio_inproc_free(ip);
	vio_bus_free(bus);
	vio_device_free(dev);

	CHECK_EQ(ed->errors, 0);
	if (ed->errors)
		fprintf(stderr, "device: %d errors, first: %s\n", ed->errors,
			ed->err);
	CHECK_EQ(s->errors, 0);
	uint64_t added = 0;
	for (unsigned i = 0; i < NQ; i++)
		added += s->q[i].added;
	/* every token came back once: used or detached */
	CHECK_EQ(added, done_total(s) + s->detached);
	CHECK(ed->chains >= done_total(s));
	CHECK(ed->reordered > 0);
	CHECK(done_total(s) >= s->target || s->errors);

	printf("  %-6s event_idx=%d indirect=%d sizes %3u/%3u: %llu buffers "
	       "in %.2f s (%.0f/s), %llu device calls, %llu callbacks, %llu "
	       "detached, %llu reordered\n",
	       s->packed ? "packed" : "split", s->event_idx, s->indirect,
	       s->q[0].size, s->q[1].size, (unsigned long long)done_total(s),
	       *secs, (double)done_total(s) / (*secs > 0 ? *secs : 1),
	       (unsigned long long)ed->calls_made,
	       (unsigned long long)s->callbacks,
	       (unsigned long long)s->detached,
	       (unsigned long long)ed->reordered);
	fflush(stdout);

	for (unsigned i = 0; i < NQ; i++)
		free(s->q[i].slots);
	vio_mem_free(mem);
	free(ed);
}

int main(void)
{
	uint64_t seed = test_seed();
	uint64_t total = UNDER_ASAN || UNDER_TSAN ? 200000 : 1000000;
	const char *env = getenv("VIO_STRESS_BUFFERS");
	if (env && strtoull(env, NULL, 0) > 0)
		total = strtoull(env, NULL, 0);
	printf("stress: seed 0x%llx (VIO_TEST_SEED), %llu buffers%s%s\n",
	       (unsigned long long)seed, (unsigned long long)total,
	       UNDER_ASAN   ? " (AddressSanitizer build: fewer buffers)"
	       : UNDER_TSAN ? " (ThreadSanitizer build: fewer buffers)"
			    : "",
	       env ? " (VIO_STRESS_BUFFERS)" : "");
	memset(canary_block, CANARY, sizeof(canary_block));

	int fds_before = test_count_fds();
	REQUIRE(fds_before > 0);
	double secs_total = 0;
	uint64_t done = 0;
	for (unsigned k = 0; k < 8 && !test_failures; k++) {
		struct scenario *s = calloc(1, sizeof(*s));
		REQUIRE(s);
		s->packed = k & 1;
		s->event_idx = (k >> 1) & 1;
		s->indirect = (k >> 2) & 1;
		s->seed = mix64(seed + k) | 1;
		s->target = total / 8 + (k < total % 8);
		double secs = 0;
		run_scenario(s, &secs);
		secs_total += secs;
		done += done_total(s);
		free(s);
	}
	int fds_after = test_count_fds();
	CHECK_EQ(fds_after, fds_before);
	printf("stress: %llu buffers in %.2f s (%.0f buffers/s), fds %d -> "
	       "%d\n",
	       (unsigned long long)done, secs_total,
	       (double)done / (secs_total > 0 ? secs_total : 1), fds_before,
	       fds_after);
	return test_result("stress");
}
