/* SPDX-License-Identifier: MIT */
/* bench/ring's parts: ring.c (the virtqueue runs, statistics, output,
 * options) and ring_spsc.c (the two CPUs' physical limit). */
#ifndef VIO_BENCH_RING_H
#define VIO_BENCH_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define QSZ 256u /* queue entries (and SPSC slots) */
#define CACHELINE 64

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* ---- options ---- */

struct opts {
	double seconds;
	unsigned runs;
	bool json;
	FILE *jsonl;	/* --jsonl FILE: the JSON lines besides the table */
	int format;	/* -1 both, 0 split, 1 packed */
	int event_idx;	/* -1 both, 0 off, 1 on */
	unsigned batch; /* 0: 1, 16 and 64 */
	int cpu[2];
};

struct result {
	double bufs_per_s;
	double kicks_per_buf, calls_per_buf;
	bool ok;
	char err[360];
};

/* The calling thread on cpu: 0 or an errno. */
int pin(int cpu);
/* Spin until *go is set. */
void wait_go(const int *go);
/* a and b on two threads with arg; *go set once both run, *stop after
 * seconds; both joined.  -1: a thread could not start. */
int run_threads(void *(*a)(void *), void *(*b)(void *), void *arg, int *go,
		int *stop, double seconds);
/* ring_spsc.c: one run of the minimal ring at this batch. */
void run_spsc(const struct opts *o, unsigned batch, struct result *res);

#endif
