/* SPDX-License-Identifier: MIT */
/*
 * Feature sets: VIO_FEATURE_BITS bits, F_ constants are bit numbers
 * (<linux/virtio_config.h>, the device headers).  Negotiation is an
 * intersection (drvdev.c); the device checks a subset (device.c).
 */
#include <string.h>

#include <vio/device.h>

#define NWORDS (VIO_FEATURE_BITS / 64)

bool vio_features_subset(const struct vio_features *a,
			 const struct vio_features *b)
{
	for (unsigned i = 0; i < NWORDS; i++)
		if (a->w[i] & ~b->w[i])
			return false;
	return true;
}

void vio_features_and(struct vio_features *dst, const struct vio_features *a,
		      const struct vio_features *b)
{
	for (unsigned i = 0; i < NWORDS; i++)
		dst->w[i] = a->w[i] & b->w[i];
}

struct vio_features vio_features_from(const unsigned *bits, unsigned n)
{
	struct vio_features f;
	memset(&f, 0, sizeof(f));
	for (unsigned i = 0; i < n; i++)
		vio_features_set(&f, bits[i]);
	return f;
}
