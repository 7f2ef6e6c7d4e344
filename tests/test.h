/* SPDX-License-Identifier: MIT */
/* Minimal test helpers: CHECK records a failure and goes on; a test's
 * main returns test_result().  Exit 77 means SKIP (meson convention). */
#ifndef VIO_TEST_H
#define VIO_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* CHECK may run on several threads of a test: atomic counters */
static int test_failures;
static int test_checks;
#define TEST_COUNT(v) __atomic_add_fetch(&(v), 1, __ATOMIC_RELAXED)

#define CHECK(cond)                                                            \
	do {                                                                   \
		TEST_COUNT(test_checks);                                       \
		if (!(cond)) {                                                 \
			TEST_COUNT(test_failures);                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		TEST_COUNT(test_checks);                                       \
		if (_a != _b) {                                                \
			TEST_COUNT(test_failures);                             \
			fprintf(stderr,                                        \
				"%s:%d: CHECK failed: %s == %s (%lld "         \
				"!= %lld)\n",                                  \
				__FILE__, __LINE__, #a, #b, _a, _b);           \
		}                                                              \
	} while (0)

/* Fatal: stop the test now. */
#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",         \
				__FILE__, __LINE__, #cond);                    \
			exit(1);                                               \
		}                                                              \
	} while (0)

static inline int test_result(const char *name)
{
	int checks = __atomic_load_n(&test_checks, __ATOMIC_RELAXED);
	int failures = __atomic_load_n(&test_failures, __ATOMIC_RELAXED);
	printf("%s: %d checks, %d failed\n", name, checks, failures);
	return failures ? 1 : 0;
}

/* xorshift64*: deterministic, seeded */
static inline uint64_t test_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t test_seed(void)
{
	const char *e = getenv("VIO_TEST_SEED");
	uint64_t s = e ? strtoull(e, NULL, 0) : 0x5eed1234abcdull;
	return s ? s : 1;
}

/* Open fds of this process (leak checks compare two counts). */
static inline int test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Mappings of this process (lines of /proc/self/maps). */
static inline int test_count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	int n = 0, c;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static inline void test_fill_random(uint8_t *p, size_t len, uint64_t *seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = test_rand(seed);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* The first len bytes of file path equal want. */
static inline bool test_file_matches(const char *path, const void *want,
				     size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	uint8_t *buf = malloc(len);
	bool ok = buf && pread(fd, buf, len, 0) == (ssize_t)len &&
		  memcmp(buf, want, len) == 0;
	free(buf);
	close(fd);
	return ok;
}

#endif
