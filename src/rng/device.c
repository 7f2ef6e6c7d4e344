/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng, the device side (VIRTIO 1.2 5.4): fill every writable
 * buffer the driver posts on the requestq with random bytes.
 *
 * Data path per kick: with notifications disabled, pop at most a ring's
 * worth of chains (one batch: vio/device.h wants a kick bounded under any
 * load), fill their writable segments (one getrandom(2) per segment: the
 * entropy has to come from somewhere), return them all with one
 * vio_vq_push_batch() and interrupt the driver once.  Notifications are
 * re-enabled unless chains are still waiting (then vio_device_kick() tells
 * the caller to call again).  No allocation per request: the segment and
 * used arrays are sized for the largest queue at creation, the segments
 * with room for descriptors that cross region boundaries (a descriptor
 * is as many segments as regions it touches; the device has no
 * per-descriptor limit to check).  A chain that needs more segments than
 * that (vio_vq_pop's -E2BIG) goes back with used length 0: no entropy,
 * the queue kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "util/log.h"
#include <vio/rng.h>

#define RNG_DEFAULT_QUEUE_SIZE 256

struct vio_rng_device {
	struct vio_device *dev;
	int (*fill)(void *opaque, void *buf, size_t len);
	void *fill_opaque;
	struct vio_iov *iov; /* [max_iov] */
	unsigned max_iov;
	struct vio_used *used; /* [used_cap] */
	unsigned used_cap;
	struct vio_ratelimit rl;
	char name[32];
};

static int fill_getrandom(void *opaque, void *buf, size_t len)
{
	uint8_t *p = buf;
	(void)opaque;
	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Fill the writable segments; returns the bytes written. */
static uint32_t fill_chain(struct vio_rng_device *rng,
			   const struct vio_chain *c)
{
	uint32_t written = 0;
	for (unsigned i = 0; i < c->nr_in; i++) {
		int r =
		    rng->fill(rng->fill_opaque, c->in[i].base, c->in[i].len);
		if (r < 0) {
			vio_log_limited(&rng->rl, "%s: entropy source: %s",
					rng->name, strerror(-r));
			break;
		}
		written += c->in[i].len;
	}
	return written;
}

static bool rng_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	struct vio_rng_device *rng = vio_device_opaque(dev);
	struct vio_chain c;
	unsigned n = 0, max = vio_vq_size(vq);
	bool more = false;

	(void)idx; /* one queue */
	if (max > rng->used_cap)
		max = rng->used_cap;
	vio_vq_disable_notify(vq);
	for (;;) {
		int r;
		while (n < max &&
		       ((r = vio_vq_pop(vq, &c, rng->iov, rng->max_iov)) > 0 ||
			r == -E2BIG)) {
			uint32_t written = 0;
			if (r == -E2BIG)
				/* legal, but more segments than max_iov:
				 * returned unfilled, the queue kept */
				vio_log_limited(&rng->rl,
						"%s: request of %u descriptors "
						"needs more than %u segments: "
						"returned empty",
						rng->name, c.nd_out + c.nd_in,
						rng->max_iov);
			else if (c.nr_out)
				/* 5.4.6.1: the driver posts writable
				 * buffers only */
				vio_log_limited(&rng->rl,
						"%s: driver error: request "
						"with %u readable segments",
						rng->name, c.nr_out);
			else
				written = fill_chain(rng, &c);
			rng->used[n].head = c.head;
			rng->used[n].len = written;
			n++;
		}
		if (vio_vq_broken(vq))
			break;
		/* 2.7.10: re-arm, then look once more to close the race */
		if (vio_vq_enable_notify(vq))
			break;
		/* chains wait: on the bound, leave notifications disabled;
		 * vio_device_kick() tells the caller to call again */
		vio_vq_disable_notify(vq);
		if (n == max) {
			more = true;
			break;
		}
	}
	if (n == 0 || vio_vq_push_batch(vq, rng->used, n) < 0)
		return false; /* nothing, or broken: needs a reset */
	vio_vq_call(vq);
	return more;
}

static const struct vio_device_ops rng_ops = {
    .kick = rng_kick,
};

static void set_err(char *err, size_t errlen, const char *what, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, strerror(e));
}

struct vio_rng_device *vio_rng_device_new(const struct vio_rng_device_opts *cfg,
					  char *err, size_t errlen)
{
	struct vio_rng_device_opts def = {0};
	if (!cfg)
		cfg = &def;
	uint16_t qsize =
	    cfg->queue_size ? cfg->queue_size : RNG_DEFAULT_QUEUE_SIZE;
	if (qsize > VIO_VQ_MAX_SIZE) {
		if (err && errlen)
			snprintf(err, errlen, "queue size %u: at most %u",
				 (unsigned)qsize, VIO_VQ_MAX_SIZE);
		errno = EINVAL;
		return NULL;
	}
	struct vio_rng_device *rng = calloc(1, sizeof(*rng));
	if (!rng) {
		set_err(err, errlen, "rng device", ENOMEM);
		errno = ENOMEM;
		return NULL;
	}
	snprintf(rng->name, sizeof(rng->name), "%s",
		 cfg->name ? cfg->name : "rng");
	rng->fill = cfg->fill ? cfg->fill : fill_getrandom;
	rng->fill_opaque = cfg->fill_opaque;
	/* a chain has at most qsize descriptors (2.7.5.3.1), plus a
	 * segment per region boundary they cross */
	rng->max_iov = vio_vq_iov_max(qsize);
	rng->used_cap = qsize;
	rng->iov = calloc(rng->max_iov, sizeof(*rng->iov));
	rng->used = calloc(rng->used_cap, sizeof(*rng->used));
	if (!rng->iov || !rng->used)
		goto fail;

	struct vio_features f = {{0}};
	if (cfg->packed)
		vio_features_set(&f, VIRTIO_F_RING_PACKED);
	if (!cfg->no_event_idx)
		vio_features_set(&f, VIRTIO_RING_F_EVENT_IDX);
	if (!cfg->no_indirect)
		vio_features_set(&f, VIRTIO_RING_F_INDIRECT_DESC);
	struct vio_device_opts dc = {
	    .name = rng->name,
	    .device_id = VIRTIO_ID_RNG,
	    .vendor_id = 0,
	    .features = f,
	    .num_queues = 1,
	    .queue_max_size = qsize,
	    .ops = &rng_ops,
	    .opaque = rng,
	};
	rng->dev = vio_device_new(&dc);
	if (!rng->dev)
		goto fail;
	return rng;
fail:;
	int e = errno ? errno : ENOMEM;
	set_err(err, errlen, "rng device", e);
	free(rng->iov);
	free(rng->used);
	free(rng);
	errno = e;
	return NULL;
}

struct vio_device *vio_rng_device_dev(const struct vio_rng_device *rng)
{
	return rng ? rng->dev : NULL;
}

void vio_rng_device_free(struct vio_rng_device *rng)
{
	if (!rng)
		return;
	vio_device_free(rng->dev);
	free(rng->iov);
	free(rng->used);
	free(rng);
}
