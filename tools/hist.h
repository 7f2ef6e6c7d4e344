/* SPDX-License-Identifier: MIT */
/*
 * Latency histogram, log-linear in nanoseconds: values below 2^HIST_B are
 * exact; above, each power of two is cut into 2^HIST_B buckets (under
 * 3.2% relative error).  A plain array of HIST_N counters: fixed size,
 * updated without allocation or locks (one per thread, summed at the end).
 */
#ifndef VIO_TOOLS_HIST_H
#define VIO_TOOLS_HIST_H

#include <stdint.h>

#define HIST_B 5
#define HIST_SUB (1u << HIST_B)
#define HIST_N ((64 - HIST_B + 1) * HIST_SUB)

/* The bucket of value v. */
unsigned hist_index(uint64_t v);
/* The middle of bucket i. */
double hist_value(unsigned i);
/* The value at quantile p (0..1) of the n samples counted in h[HIST_N]. */
double hist_quantile(const uint64_t *h, uint64_t n, double p);

#endif
