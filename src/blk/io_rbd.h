/* SPDX-License-Identifier: MIT */
/*
 * The RBD backend's two halves: rbd_open.c connects to the cluster and
 * opens the image (the blk_backend: open, close, size, grow; the resize
 * watch), io_rbd.c runs each queue's asynchronous librbd calls
 * (blk_rbd_io).  The contract of both is at the top of io_rbd.c.
 */
#ifndef VIO_BLK_IO_RBD_H
#define VIO_BLK_IO_RBD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "blk/blk_internal.h"

struct rbd_img {
	struct vio_blk_device *bd;
	char *spec; /* the image string, for log lines */
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	bool cache;	/* librbd's cache is on: writethrough flushes */
	bool stuck;	/* librbd still holds requests: leak, no close */
	uint64_t watch; /* rbd_update_watch's handle */
	bool watching;
	/* the resize thread: woken by the update callback */
	pthread_t thr;
	bool thr_on;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool pending, quit;
};

extern const struct blk_io_ops blk_rbd_io; /* io_rbd.c */

#endif
