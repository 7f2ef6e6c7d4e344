/* SPDX-License-Identifier: MIT */
#include "hist.h"

unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	return (e - HIST_B + 1) * HIST_SUB +
	       (unsigned)((v >> (e - HIST_B)) & (HIST_SUB - 1));
}

double hist_value(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned g = i / HIST_SUB, s = i % HIST_SUB, e = g + HIST_B - 1;
	double w = (double)(1ull << (e - HIST_B));
	return (double)(HIST_SUB + s) * w + w / 2.0;
}

double hist_quantile(const uint64_t *h, uint64_t n, double p)
{
	if (!n)
		return 0;
	uint64_t rank = (uint64_t)(p * (double)n);
	if ((double)rank < p * (double)n)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < HIST_N; i++) {
		acc += h[i];
		if (acc >= rank)
			return hist_value(i);
	}
	return hist_value(HIST_N - 1);
}
