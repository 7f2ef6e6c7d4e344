/* SPDX-License-Identifier: MIT */
/*
 * Internal to src/blk: the RBD backend's image string (io_rbd.c),
 * rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:KEY=VALUE]... (QEMU's syntax; '\\'
 * escapes a ':' or '@' in a value), cut into its parts.
 */
#ifndef VIO_BLK_RBD_SPEC_H
#define VIO_BLK_RBD_SPEC_H

#include <stddef.h>

#define RBD_OPTS_MAX 32

struct rbd_spec {
	char *buf; /* a copy of the string, cut in place: free() it */
	char *pool, *ns, *image, *snap;
	char *conf, *id, *keyring;
	unsigned nopt;
	char *key[RBD_OPTS_MAX], *val[RBD_OPTS_MAX];
};

/* Parse image (it starts with "rbd:").  0, -ENOMEM, or -EINVAL with a
 * one-line reason in err; sp->buf is to be freed in every case. */
int rbd_spec_parse(const char *image, struct rbd_spec *sp, char *err,
		   size_t errlen);

#endif
