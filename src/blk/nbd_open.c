/* SPDX-License-Identifier: MIT */
/*
 * The NBD storage backend's export (blk_backend.h; the queues' side is
 * io_nbd.c): open() connects once, synchronously, bounded by the I/O
 * timeout, reads the export's size, flags and block sizes, and keeps
 * that connection for queue 0.  NBD has no resize event: the size is the
 * one open() read.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "blk/io_nbd.h"
#include <vio/log.h>

const char *blk_nbd_why(void)
{
	const char *e = nbd_get_error();
	return e ? e : "unknown error";
}

int blk_nbd_err(int dflt)
{
	int e = nbd_get_errno();
	return e > 0 ? -e : dflt;
}

short blk_nbd_poll_events(struct nbd_handle *h)
{
	int dir = nbd_aio_get_direction(h);
	short ev = 0;
	if (dir & LIBNBD_AIO_DIRECTION_READ)
		ev |= POLLIN;
	if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		ev |= POLLOUT;
	return ev;
}

/* A new handle with vio's settings; NULL with errno and err set. */
struct nbd_handle *blk_nbd_handle_new(char *err, size_t errlen)
{
	struct nbd_handle *h = nbd_create();
	if (!h) {
		snprintf(err, errlen, "nbd_create: %s", blk_nbd_why());
		return NULL;
	}
	/* the driver gets IOERR on a failed read: no need to clear its
	 * buffer first; the server may check alignment itself */
	nbd_set_pread_initialize(h, false);
	nbd_set_strict_mode(h, LIBNBD_STRICT_MASK & ~LIBNBD_STRICT_ALIGN);
	/* simple replies: a read's reply is one header and the data (fewer
	 * recv calls); structured ones serve block status, unused here */
	nbd_set_request_structured_replies(h, false);
	return h;
}

/*
 * Connect to uri on the calling thread, waiting at most timeout_ns for
 * the handshake.  The handle, or NULL with err set (errno too).
 */
struct nbd_handle *blk_nbd_connect_sync(const char *uri, uint64_t timeout_ns,
					char *err, size_t errlen)
{
	struct nbd_handle *h = blk_nbd_handle_new(err, errlen);
	if (!h)
		return NULL;
	int e = 0;
	uint64_t end = vio_now_ns() + timeout_ns;
	if (nbd_aio_connect_uri(h, uri) < 0) {
		e = blk_nbd_err(-ECONNREFUSED);
		snprintf(err, errlen, "%s", blk_nbd_why());
		goto fail;
	}
	while (nbd_aio_is_connecting(h)) {
		uint64_t now = vio_now_ns();
		if (now >= end) {
			e = -ETIMEDOUT;
			snprintf(
			    err, errlen, "no NBD handshake within %llu s",
			    (unsigned long long)(timeout_ns / 1000000000u));
			goto fail;
		}
		int ms = (int)((end - now) / 1000000u) + 1;
		struct pollfd p = {.fd = nbd_aio_get_fd(h),
				   .events = blk_nbd_poll_events(h)};
		int r = poll(&p, 1, ms);
		if (r < 0 && errno != EINTR) {
			e = -errno;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto fail;
		}
		if (r <= 0)
			continue;
		if ((p.revents & ~POLLOUT) && (p.events & POLLIN))
			r = nbd_aio_notify_read(h);
		else if (p.revents & POLLOUT)
			r = nbd_aio_notify_write(h);
		else
			r = nbd_aio_notify_read(h); /* HUP/ERR: let it fail */
		if (r < 0)
			break;
	}
	if (!nbd_aio_is_ready(h)) {
		e = blk_nbd_err(-ECONNREFUSED);
		snprintf(err, errlen, "%s", blk_nbd_why());
		goto fail;
	}
	return h;
fail:
	nbd_close(h);
	errno = -e;
	return NULL;
}

/* ---- struct blk_backend ---- */

static void img_close(struct vio_blk_device *bd)
{
	struct nbd_img *img = bd->img;
	if (!img)
		return;
	if (img->spare)
		nbd_close(img->spare);
	free(img->uri);
	free(img);
	bd->img = NULL;
}

static int img_open(struct vio_blk_device *bd, const char *image,
		    const struct vio_blk_device_opts *cfg,
		    struct blk_image_info *info, char *err, size_t errlen)
{
	struct nbd_img *img = calloc(1, sizeof(*img));
	if (!img || !(img->uri = strdup(image))) {
		free(img);
		return -ENOMEM;
	}
	bd->img = img;
	char why[200];
	struct nbd_handle *h =
	    blk_nbd_connect_sync(image, bd->io_timeout_ns, why, sizeof(why));
	if (!h) {
		int e = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: %s", image, why);
		img_close(bd);
		return e;
	}
	img->spare = h;
	int64_t size = nbd_get_size(h);
	if (size < 0) {
		snprintf(err, errlen, "%s: %s", image, blk_nbd_why());
		img_close(bd);
		return -EIO;
	}
	img->size = (uint64_t)size;
	if (cfg->size && cfg->size != img->size) {
		snprintf(err, errlen,
			 "%s: the export has %llu bytes, not the %llu asked "
			 "for",
			 image, (unsigned long long)img->size,
			 (unsigned long long)cfg->size);
		img_close(bd);
		return -EINVAL;
	}
	img->ro = nbd_is_read_only(h) == 1;
	img->can_flush = nbd_can_flush(h) == 1;
	img->can_fua = nbd_can_fua(h) == 1;
	img->can_trim = nbd_can_trim(h) == 1;
	img->can_zero = nbd_can_zero(h) == 1;
	img->max_cmd = NBD_MAX_CMD;
	int64_t mx = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	while (mx > 0 && img->max_cmd > 4096 && (int64_t)img->max_cmd > mx)
		img->max_cmd /= 2;
	int64_t pref = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);

	info->bytes = img->size;
	info->phys = pref > 0 && pref <= 4096 ? (uint32_t)pref : 0;
	info->readonly = img->ro;
	info->can_discard = img->can_trim;
	info->can_write_zeroes = img->can_zero;
	/* coherent across connections only with multi-conn (or read-only) */
	info->max_queues = nbd_can_multi_conn(h) == 1 || img->ro ? 0 : 1;
	vio_log("%s: NBD %s: %llu bytes%s%s%s%s%s%s", bd->name, image,
		(unsigned long long)img->size, img->ro ? ", read-only" : "",
		img->can_flush ? ", flush" : "", img->can_fua ? ", fua" : "",
		img->can_trim ? ", trim" : "", img->can_zero ? ", zero" : "",
		info->max_queues ? ", no multi-conn" : ", multi-conn");
	return 0;
}

static int img_size(struct vio_blk_device *bd, uint64_t *bytes)
{
	/* NBD tells the size once per connection and has no resize event:
	 * the size open() read */
	struct nbd_img *img = bd->img;
	*bytes = img->size;
	return 0;
}

static const char *const nbd_prefixes[] = {
    "nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://", NULL,
};

const struct blk_backend blk_backend_nbd = {
    .name = "nbd",
    .prefixes = nbd_prefixes,
    .open = img_open,
    .close = img_close,
    .size = img_size,
    .grow = NULL,
    .io = &blk_nbd_io,
};
