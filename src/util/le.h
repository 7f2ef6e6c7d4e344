/* SPDX-License-Identifier: MIT */
/*
 * Little-endian fields of any width up to 8 bytes at any alignment: the
 * byte layouts vio writes itself (device state sections), read back from
 * bytes a peer may have handed over.  No alignment assumed, no host order.
 */
#ifndef VIO_UTIL_LE_H
#define VIO_UTIL_LE_H

#include <stdint.h>

static inline void vio_put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t vio_get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#endif
