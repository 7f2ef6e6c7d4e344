/* SPDX-License-Identifier: MIT */
/*
 * The NBD backend's two halves: nbd_open.c opens the export (the
 * blk_backend: open, close, size; a connection made synchronously, also
 * a queue's first one) and io_nbd.c runs each queue's connection and
 * commands (blk_nbd_io).
 */
#ifndef VIO_BLK_IO_NBD_H
#define VIO_BLK_IO_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnbd.h>

#include "blk/blk_internal.h"

/* the largest command sent (libnbd and most servers refuse 64 MiB) */
#define NBD_MAX_CMD (32u << 20)

struct nbd_img {
	char *uri;
	uint64_t size;
	bool ro, can_flush, can_fua, can_trim, can_zero;
	uint32_t max_cmd;	  /* largest command, a power of 2 */
	struct nbd_handle *spare; /* open()'s connection, for queue 0 */
};

/* libnbd's last error message (never NULL), and its errno as a negative
 * one (dflt when libnbd has none). */
const char *blk_nbd_why(void);
int blk_nbd_err(int dflt);
/* The poll events libnbd's direction asks for. */
short blk_nbd_poll_events(struct nbd_handle *h);
/* A handle set up as vio uses them (NULL: err says why). */
struct nbd_handle *blk_nbd_handle_new(char *err, size_t errlen);
/* A handle connected to uri, the handshake done, within timeout_ns (NULL:
 * err says why, errno set). */
struct nbd_handle *blk_nbd_connect_sync(const char *uri, uint64_t timeout_ns,
					char *err, size_t errlen);

extern const struct blk_io_ops blk_nbd_io; /* io_nbd.c */

#endif
