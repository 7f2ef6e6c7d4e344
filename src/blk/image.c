/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk, device side: which storage backend serves an image string
 * (blk_backend.h).  A string that starts with a backend's prefix is that
 * backend's (a URI, parsed by its library); anything else is a local
 * file or block device.
 */
#include <stdio.h>
#include <string.h>

#include "blk/blk_internal.h"

static const struct blk_backend *const backends[] = {
#ifdef VIO_HAVE_NBD
    &blk_backend_nbd,
#endif
#ifdef VIO_HAVE_RBD
    &blk_backend_rbd,
#endif
    NULL,
};

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

const struct blk_backend *blk_backend_find(const char *image)
{
	for (unsigned i = 0; backends[i]; i++)
		for (const char *const *p = backends[i]->prefixes; *p; p++)
			if (has_prefix(image, *p))
				return backends[i];
	return NULL;
}

/* Every prefix a backend may take, built in or not, and its library. */
static const struct {
	const char *prefix, *what;
} known[] = {
    {"nbd://", "NBD (libnbd)"},	      {"nbds://", "NBD (libnbd)"},
    {"nbd+unix://", "NBD (libnbd)"},  {"nbds+unix://", "NBD (libnbd)"},
    {"nbd+vsock://", "NBD (libnbd)"}, {"rbd:", "Ceph RBD (librbd)"},
};

bool blk_backend_missing(const char *image, char *err, size_t errlen)
{
	if (blk_backend_find(image))
		return false;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (has_prefix(image, known[i].prefix)) {
			if (err && errlen)
				snprintf(err, errlen,
					 "%s: this vio was built without %s "
					 "support",
					 image, known[i].what);
			return true;
		}
	}
	return false;
}
