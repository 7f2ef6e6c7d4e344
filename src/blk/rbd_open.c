/* SPDX-License-Identifier: MIT */
/*
 * The Ceph RBD storage backend's image (blk_backend.h; the contract and
 * the queues' side are in io_rbd.c): connecting to the cluster with the
 * image string's options, opening the image (or its snapshot,
 * read-only), its size, growing it, and the thread that turns librbd's
 * update notifications into vio_blk_device_resize.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "blk/io_rbd.h"
#include "blk/rbd_spec.h"
#include <vio/blk.h>
#include <vio/log.h>

/* ---- resize events ---- */

/* librbd's thread: the image's header changed (a resize, a snapshot...) */
static void watch_cb(void *arg)
{
	struct rbd_img *img = arg;
	pthread_mutex_lock(&img->mu);
	img->pending = true;
	pthread_cond_signal(&img->cv);
	pthread_mutex_unlock(&img->mu);
}

/* The device's resize thread: the new size through the config change
 * path (not on librbd's callback thread: rbd_get_size may wait for a
 * refresh that runs there). */
static void *watch_thread(void *arg)
{
	struct rbd_img *img = arg;
	pthread_mutex_lock(&img->mu);
	for (;;) {
		while (!img->quit && !img->pending)
			pthread_cond_wait(&img->cv, &img->mu);
		if (img->quit)
			break;
		if (!__atomic_load_n(&img->bd->dev, __ATOMIC_ACQUIRE)) {
			/* the device is still being made: look again soon */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&img->cv, &img->mu, &ts);
			continue;
		}
		img->pending = false;
		pthread_mutex_unlock(&img->mu);
		uint64_t old = vio_blk_device_capacity(img->bd);
		char e[256] = "";
		int r = vio_blk_device_resize(img->bd, 0, e, sizeof(e));
		uint64_t now = vio_blk_device_capacity(img->bd);
		if (r < 0)
			vio_log_warn("%s: RBD %s changed: %s", img->bd->name,
				     img->spec, e);
		else if (now != old)
			vio_log("%s: RBD %s resized: %llu -> %llu bytes",
				img->bd->name, img->spec,
				(unsigned long long)old * SECTOR,
				(unsigned long long)now * SECTOR);
		pthread_mutex_lock(&img->mu);
	}
	pthread_mutex_unlock(&img->mu);
	return NULL;
}

/* ---- struct blk_backend ---- */

static void img_close(struct vio_blk_device *bd)
{
	struct rbd_img *img = bd->img;
	if (!img)
		return;
	if (img->watching)
		rbd_update_unwatch(img->image, img->watch);
	if (img->thr_on) {
		pthread_mutex_lock(&img->mu);
		img->quit = true;
		pthread_cond_signal(&img->cv);
		pthread_mutex_unlock(&img->mu);
		pthread_join(img->thr, NULL);
	}
	if (img->stuck) {
		/* rbd_close would wait for what librbd still holds: leave
		 * the handles to it (the process is usually leaving) */
		vio_log_warn("%s: RBD %s: not closed (requests stuck in "
			     "librbd)",
			     bd->name, img->spec);
	} else {
		if (img->image)
			rbd_close(img->image);
		if (img->ioctx)
			rados_ioctx_destroy(img->ioctx);
		if (img->cluster)
			rados_shutdown(img->cluster);
		pthread_cond_destroy(&img->cv);
		pthread_mutex_destroy(&img->mu);
		free(img->spec);
		free(img);
	}
	bd->img = NULL;
}

/* Set a Ceph option; err says which one failed. */
static int conf_set(struct rbd_img *img, const char *k, const char *v,
		    char *err, size_t errlen)
{
	int r = rados_conf_set(img->cluster, k, v);
	if (r < 0)
		snprintf(err, errlen, "%s: Ceph option %s=%s: %s", img->spec, k,
			 v, strerror(-r));
	return r;
}

/* Connect to the cluster as sp says, with vio's time bounds. */
static int cluster_connect(struct vio_blk_device *bd, struct rbd_img *img,
			   const struct rbd_spec *sp, char *err, size_t errlen)
{
	int r = rados_create(&img->cluster, sp->id);
	if (r < 0) {
		img->cluster = NULL;
		snprintf(err, errlen, "%s: rados_create: %s", img->spec,
			 strerror(-r));
		return r;
	}
	r = rados_conf_read_file(img->cluster, sp->conf);
	if (r < 0 && sp->conf) {
		snprintf(err, errlen, "%s: cannot read the Ceph config %s: %s",
			 img->spec, sp->conf, strerror(-r));
		return r;
	}
	/* no config found at the default places: options may say it all */
	char half[24], full[24];
	unsigned t = (unsigned)(bd->io_timeout_ns / 1000000000u);
	snprintf(half, sizeof(half), "%u", t / 2 ? t / 2 : 1);
	snprintf(full, sizeof(full), "%u", t ? t : 1);
	if ((r = conf_set(img, "rados_osd_op_timeout", half, err, errlen)) ||
	    (r = conf_set(img, "rados_mon_op_timeout", half, err, errlen)) ||
	    (r = conf_set(img, "client_mount_timeout", full, err, errlen)))
		return r;
	if (sp->keyring &&
	    (r = conf_set(img, "keyring", sp->keyring, err, errlen)))
		return r;
	/* librbd's cache off, whatever the config file says: in writeback
	 * mode it acknowledges writes that only this process holds, which a
	 * killed vio loses while the driver, reconnecting, redoes only what
	 * was still in flight.  The image string may turn it on again. */
	if ((r = conf_set(img, "rbd_cache", "false", err, errlen)))
		return r;
	/* one thread for librados' and librbd's completions and internal
	 * work (default 2): fewer wake-ups and lock hand-overs between the
	 * pool's threads and the messenger's.  Measured on
	 * 2 cores, 4k randread qd32 on a memstore OSD: vio serve's CPU per
	 * request 48 -> 28 us, IOPS +25% (bench/blk-net-cpu).  Safe because
	 * nothing of vio's runs long or blocks on that thread (aio_done and
	 * watch_cb only queue and signal; synchronous librbd calls are made
	 * on vio's own threads, never from a callback).  A device with many
	 * busy queues on many cores may want more: the image string sets
	 * librados_thread_count=N. */
	if ((r = conf_set(img, "librados_thread_count", "1", err, errlen)))
		return r;
	for (unsigned i = 0; i < sp->nopt; i++)
		if ((r = conf_set(img, sp->key[i], sp->val[i], err, errlen)))
			return r;
	/* writes copied before rbd_aio_writev returns: a request that
	 * timed out leaves librbd nothing of the driver's to read */
	if ((r = conf_set(img, "rbd_disable_zero_copy_writes", "true", err,
			  errlen)))
		return r;
	r = rados_connect(img->cluster);
	if (r < 0) {
		snprintf(err, errlen,
			 "%s: cannot connect to the Ceph cluster (%s%s): %s",
			 img->spec, sp->conf ? "config " : "default config",
			 sp->conf ? sp->conf : "", strerror(-r));
		return r;
	}
	char v[24] = "";
	img->cache =
	    rados_conf_get(img->cluster, "rbd_cache", v, sizeof(v)) == 0 &&
	    strcmp(v, "true") == 0;
	if (img->cache && !(rados_conf_get(img->cluster, "rbd_cache_max_dirty",
					   v, sizeof(v)) == 0 &&
			    strcmp(v, "0") == 0))
		vio_log_warn("%s: RBD %s: librbd's writeback cache is on: "
			     "writes it acknowledged are lost if vio serve "
			     "dies before a flush (a reconnecting driver does "
			     "not redo them); rbd_cache_max_dirty=0 keeps the "
			     "cache writethrough",
			     bd->name, img->spec);
	return 0;
}

/* Open the image (create it if size is given and it does not exist). */
static int image_open(struct rbd_img *img, const struct rbd_spec *sp,
		      const struct vio_blk_device_opts *cfg, bool ro, char *err,
		      size_t errlen)
{
	int r = rados_ioctx_create(img->cluster, sp->pool, &img->ioctx);
	if (r < 0) {
		img->ioctx = NULL;
		snprintf(err, errlen, "%s: pool %s: %s", img->spec, sp->pool,
			 strerror(-r));
		return r;
	}
	if (sp->ns)
		rados_ioctx_set_namespace(img->ioctx, sp->ns);
	if (ro)
		r = rbd_open_read_only(img->ioctx, sp->image, &img->image,
				       sp->snap);
	else
		r = rbd_open(img->ioctx, sp->image, &img->image, NULL);
	if (r == -ENOENT && !ro && cfg->size) {
		rbd_image_options_t o;
		rbd_image_options_create(&o);
		r = rbd_create4(img->ioctx, sp->image, cfg->size, o);
		rbd_image_options_destroy(o);
		if (r == 0) {
			vio_log("%s: RBD image %s created (%llu bytes)",
				img->bd->name, img->spec,
				(unsigned long long)cfg->size);
			r = rbd_open(img->ioctx, sp->image, &img->image, NULL);
		}
	}
	if (r < 0) {
		img->image = NULL;
		snprintf(err, errlen, "%s: cannot open %s%s%s: %s", img->spec,
			 sp->snap ? "snapshot " : "image ",
			 sp->snap ? sp->snap : sp->image,
			 r == -ENOENT ? " (no such image or snapshot)" : "",
			 strerror(-r));
	}
	return r;
}

static int img_open(struct vio_blk_device *bd, const char *image,
		    const struct vio_blk_device_opts *cfg,
		    struct blk_image_info *info, char *err, size_t errlen)
{
	struct rbd_img *img = calloc(1, sizeof(*img));
	if (!img || !(img->spec = strdup(image))) {
		free(img);
		return -ENOMEM;
	}
	img->bd = bd;
	pthread_mutex_init(&img->mu, NULL);
	pthread_cond_init(&img->cv, NULL);
	bd->img = img;
	/* the string without its options, for log lines */
	char *colon = img->spec + strlen("rbd:");
	while ((colon = strchr(colon, ':')) && colon[-1] == '\\')
		colon++;
	if (colon)
		*colon = '\0';

	/* librados and librbd start their threads here (and the resize
	 * thread below): with every signal blocked, which they inherit, so
	 * none of them takes a signal meant for the program (vio serve
	 * blocks SIGTERM only after making the device, for its signalfd) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	struct rbd_spec sp;
	int r = rbd_spec_parse(image, &sp, err, errlen);
	bool ro = cfg->readonly || sp.snap;
	uint64_t size = 0;
	if (r == 0)
		r = cluster_connect(bd, img, &sp, err, errlen);
	if (r == 0)
		r = image_open(img, &sp, cfg, ro, err, errlen);
	if (r == 0 && (r = rbd_get_size(img->image, &size)) < 0)
		snprintf(err, errlen, "%s: rbd_get_size: %s", img->spec,
			 strerror(-r));
	if (r == 0 && cfg->size && cfg->size != size) {
		snprintf(err, errlen,
			 "%s: the image has %llu bytes, not the %llu asked "
			 "for",
			 img->spec, (unsigned long long)size,
			 (unsigned long long)cfg->size);
		r = -EINVAL;
	}
	free(sp.buf);
	if (r < 0) {
		img_close(bd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return r;
	}
	/* a snapshot does not change; an image tells of resizes */
	if (!sp.snap) {
		if (pthread_create(&img->thr, NULL, watch_thread, img) == 0)
			img->thr_on = true;
		if (img->thr_on && rbd_update_watch(img->image, &img->watch,
						    watch_cb, img) == 0)
			img->watching = true;
		else
			vio_log_warn("%s: RBD %s: no resize events", bd->name,
				     img->spec);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	info->bytes = size;
	info->readonly = ro;
	info->can_discard = !ro;
	info->can_write_zeroes = !ro;
	info->max_queues = 0; /* one handle, any thread */
	vio_log("%s: RBD %s: %llu bytes%s%s", bd->name, img->spec,
		(unsigned long long)size, ro ? ", read-only" : "",
		img->cache ? ", librbd cache on" : "");
	return 0;
}

static int img_size(struct vio_blk_device *bd, uint64_t *bytes)
{
	struct rbd_img *img = bd->img;
	return rbd_get_size(img->image, bytes);
}

static int img_grow(struct vio_blk_device *bd, uint64_t bytes)
{
	struct rbd_img *img = bd->img;
	return rbd_resize(img->image, bytes);
}

static const char *const rbd_prefixes[] = {"rbd:", NULL};

const struct blk_backend blk_backend_rbd = {
    .name = "rbd",
    .prefixes = rbd_prefixes,
    .open = img_open,
    .close = img_close,
    .size = img_size,
    .grow = img_grow,
    .io = &blk_rbd_io,
};
