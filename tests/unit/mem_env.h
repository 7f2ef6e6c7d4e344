/* SPDX-License-Identifier: MIT */
/*
 * What the memory layer's tests share (test_mem.c, the driver side;
 * test_memtable.c, the device side).  Each program includes it once and
 * calls mem_env_init() first.
 */
#ifndef VIO_TEST_MEM_ENV_H
#define VIO_TEST_MEM_ENV_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

/* every program uses a different subset */
#pragma GCC diagnostic ignored "-Wunused-function"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static size_t page;

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void mem_env_init(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	page = pg > 0 ? (size_t)pg : 4096;
}

#endif
