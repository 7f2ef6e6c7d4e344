/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard (src/mem/guard.c, vio_mem_sigbus_guard_install).
 *
 * - Chaining, each in a forked child (a fresh process: the guard is
 *   process-wide): a SIGBUS outside every registered region still kills
 *   (by SIGBUS; under ASan, by ASan's report); so does a SIGBUS sent with
 *   kill(); a handler installed before the guard gets the faults that are
 *   not the guard's, and not the ones that are.
 * - Truncation under readers: a table maps two regions of unsealed
 *   memfds; four threads read the first in a loop while a fifth maps and
 *   removes regions of another table (the registry changing under the
 *   handler); the first memfd is truncated to 0.  Every reader's access
 *   completes (it reads zeros from then on), the table is faulted at a
 *   device address inside that region, its fault fd (a socketpair end) is
 *   shut down, the second region and the other table are untouched, the
 *   replaced region is writable, set_fault_fd clears the state, and
 *   freeing the table unmaps both regions and closes every fd.
 * - A full registry (4096 slots): an unsealed region is refused with
 *   -ENOSPC, a sealed one (F_SEAL_SHRINK) is mapped unguarded.
 * - The driver side's memfds are sealed: ftruncate on one fails (EPERM).
 *
 * A watchdog (alarm) bounds the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include <vio/mem.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define REGION (1u << 20)
#define GPA1 0x100000000ull
#define GPA2 0x200000000ull
#define SURVIVED 42 /* a child that should have died exits so */
#define PREV_RAN 33 /* the handler installed before the guard */

static size_t page;

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_mem_guard: watchdog: timed out\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* An unsealed memfd of size bytes, every byte fill. */
static int filled_memfd(size_t size, uint8_t fill)
{
	int fd = memfd_create("guard-test", MFD_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, (off_t)size) == 0);
	uint8_t *p =
	    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(p != MAP_FAILED);
	memset(p, fill, size);
	munmap(p, size);
	return fd;
}

static void map_region(struct vio_memtable *mt, int fd, uint64_t gpa)
{
	struct vio_region r = {
	    .addr = gpa, .size = REGION, .fd = dup(fd), .ptr = NULL};
	REQUIRE(r.fd >= 0);
	REQUIRE(vio_memtable_map(mt, &r) == 0);
}

/* Some mapping of this process holds address p (/proc/self/maps). */
static bool is_mapped(const volatile void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	REQUIRE(f);
	uintptr_t a = (uintptr_t)p, lo, hi;
	bool found = false;
	char line[512];
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 &&
			a >= lo && a < hi;
	fclose(f);
	return found;
}

/* ---- chaining (forked children) ---- */

/* A shared mapping of a file truncated under it: touching it faults. */
static volatile uint8_t *truncated_mapping(void)
{
	int fd = filled_memfd(2 * page, 1);
	uint8_t *p =
	    mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(p != MAP_FAILED);
	REQUIRE(ftruncate(fd, 0) == 0);
	close(fd);
	return p;
}

static void prev_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	_exit(PREV_RAN);
}

enum child_case { FAULT_OUTSIDE, KILL_SIGBUS, CHAIN_PREV };

static void child(enum child_case c)
{
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	if (c == CHAIN_PREV) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = prev_handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		REQUIRE(sigaction(SIGBUS, &sa, NULL) == 0);
	} else {
		/* the death is expected: keep ASan's report out of the log */
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, 2);
	}
	REQUIRE(vio_mem_sigbus_guard_install() == 0);
	/* a guarded region: its fault is the guard's, not prev's */
	struct vio_memtable *mt = vio_memtable_new(4);
	REQUIRE(mt);
	int fd = filled_memfd(REGION, 7);
	map_region(mt, fd, GPA1);
	REQUIRE(ftruncate(fd, 0) == 0);
	volatile uint8_t *g = vio_memtable_ptr(mt, GPA1, REGION);
	REQUIRE(g && g[100] == 0 && vio_memtable_faulted(mt));

	if (c == KILL_SIGBUS)
		kill(getpid(), SIGBUS);
	else
		(void)truncated_mapping()[0];
	_exit(SURVIVED);
}

/* Fork a child for case c; its wait status. */
static int run_child(enum child_case c)
{
	fflush(NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		child(c);
	int st = 0;
	REQUIRE(waitpid(pid, &st, 0) == pid);
	return st;
}

/* Died as an unhandled SIGBUS dies: by the signal, or (ASan installed a
 * SIGBUS handler first, and the guard chains to it) by ASan's report. */
static bool died_of_sigbus(int st)
{
	if (WIFSIGNALED(st))
		return WTERMSIG(st) == SIGBUS;
	if (UNDER_ASAN && WIFEXITED(st))
		return WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != SURVIVED &&
		       WEXITSTATUS(st) != PREV_RAN;
	return false;
}

static const char *how(int st)
{
	static char buf[64];
	if (WIFSIGNALED(st))
		snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(st));
	return buf;
}

static void test_chaining(void)
{
	int st = run_child(FAULT_OUTSIDE);
	printf("fault outside the regions: %s\n", how(st));
	if (!died_of_sigbus(st))
		fprintf(stderr, "fault outside: wait status 0x%x\n", st);
	CHECK(died_of_sigbus(st));
	st = run_child(KILL_SIGBUS);
	printf("kill -BUS: %s\n", how(st));
	if (!died_of_sigbus(st))
		fprintf(stderr, "kill -BUS: wait status 0x%x\n", st);
	CHECK(died_of_sigbus(st));
	st = run_child(CHAIN_PREV);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == PREV_RAN);
}

/* ---- truncation under readers ---- */

struct shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned started; /* readers that read the whole region once */
	int stop;	  /* atomic: the churn thread stops */
};

struct reader {
	struct shared *sh;
	volatile uint8_t *p;
	bool saw_pattern, saw_zeros;
	uint64_t passes;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	bool announced = false;
	for (;;) {
		bool zero = false;
		for (size_t off = 0; off < REGION; off += page / 2) {
			uint8_t v = r->p[off];
			if (v == 0xa5)
				r->saw_pattern = true;
			else
				zero |= v == 0;
		}
		r->passes++;
		if (zero) {
			r->saw_zeros = true;
			return NULL;
		}
		if (!announced) {
			announced = true;
			pthread_mutex_lock(&r->sh->lock);
			r->sh->started++;
			pthread_cond_broadcast(&r->sh->cond);
			pthread_mutex_unlock(&r->sh->lock);
		}
	}
}

/* Map and remove regions of another table, over and over. */
static void *churn_main(void *arg)
{
	struct shared *sh = arg;
	struct vio_memtable *mt = vio_memtable_new(8);
	REQUIRE(mt);
	int fd = filled_memfd(REGION, 3);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		for (unsigned i = 0; i < 4; i++)
			map_region(mt, fd, GPA2 + (uint64_t)i * 2 * REGION);
		uint8_t *q = vio_memtable_ptr(mt, GPA2, 1);
		REQUIRE(q && *q == 3);
		vio_memtable_clear(mt);
	}
	CHECK(!vio_memtable_faulted(mt));
	vio_memtable_free(mt);
	close(fd);
	return NULL;
}

#define NREADERS 4

static void test_truncate_under_readers(void)
{
	int fds_before = test_count_fds();
	struct vio_memtable *mt = vio_memtable_new(4);
	REQUIRE(mt);
	int fd1 = filled_memfd(REGION, 0xa5), fd2 = filled_memfd(REGION, 0x5a);
	map_region(mt, fd1, GPA1);
	map_region(mt, fd2, GPA1 + REGION); /* adjacent: same table */
	int sp[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	vio_memtable_set_fault_fd(mt, sp[0]);
	CHECK(!vio_memtable_faulted(mt));
	CHECK(vio_memtable_fault_addr(mt) == VIO_BAD_ADDR);

	struct shared sh = {.lock = PTHREAD_MUTEX_INITIALIZER,
			    .cond = PTHREAD_COND_INITIALIZER};
	struct reader rd[NREADERS];
	pthread_t th[NREADERS], churn;
	REQUIRE(pthread_create(&churn, NULL, churn_main, &sh) == 0);
	for (int i = 0; i < NREADERS; i++) {
		rd[i] = (struct reader){
		    .sh = &sh, .p = vio_memtable_ptr(mt, GPA1, REGION)};
		REQUIRE(rd[i].p);
		REQUIRE(pthread_create(&th[i], NULL, reader_main, &rd[i]) == 0);
	}
	/* every reader is reading the region */
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&sh.lock);
	int w = 0;
	while (sh.started < NREADERS && w == 0)
		w = pthread_cond_timedwait(&sh.cond, &sh.lock, &dl);
	pthread_mutex_unlock(&sh.lock);
	REQUIRE(sh.started == NREADERS);

	REQUIRE(ftruncate(fd1, 0) == 0); /* the hostile peer's move */
	for (int i = 0; i < NREADERS; i++) {
		pthread_join(th[i], NULL);
		CHECK(rd[i].saw_pattern);
		CHECK(rd[i].saw_zeros); /* the faulting read returned */
	}
	__atomic_store_n(&sh.stop, 1, __ATOMIC_RELEASE);
	pthread_join(churn, NULL);

	CHECK(vio_memtable_faulted(mt));
	uint64_t fa = vio_memtable_fault_addr(mt);
	CHECK(fa >= GPA1 && fa < GPA1 + REGION);
	/* the fault fd was shut down: the peer's end reads EOF, ours too */
	char c;
	CHECK_EQ(recv(sp[1], &c, 1, MSG_DONTWAIT), 0);
	CHECK_EQ(recv(sp[0], &c, 1, MSG_DONTWAIT), 0);
	CHECK(send(sp[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
	/* the faulted region reads zeros and takes writes (they go nowhere);
	 * the other region is still the shared file */
	volatile uint8_t *p1 = vio_memtable_ptr(mt, GPA1, REGION);
	volatile uint8_t *p2 = vio_memtable_ptr(mt, GPA1 + REGION, REGION);
	REQUIRE(p1 && p2);
	CHECK_EQ(p1[REGION - 1], 0);
	p1[5] = 9;
	CHECK_EQ(p1[5], 9);
	CHECK_EQ(p2[0], 0x5a);
	CHECK_EQ(p2[REGION - 1], 0x5a);
	uint8_t b;
	CHECK(pread(fd1, &b, 1, 5) == 0); /* the file stayed empty */
	/* a new user of the table starts clean */
	vio_memtable_set_fault_fd(mt, -1);
	CHECK(!vio_memtable_faulted(mt));
	CHECK(vio_memtable_fault_addr(mt) == VIO_BAD_ADDR);

	/* both mappings go with the table: the replaced one too */
	CHECK(is_mapped(p1) && is_mapped(p2));
	vio_memtable_free(mt);
	CHECK(!is_mapped(p1));
	CHECK(!is_mapped(p2));
	close(fd1);
	close(fd2);
	close(sp[0]);
	close(sp[1]);
	CHECK_EQ(test_count_fds(), fds_before);
}

/* A second fault in another table, after the first: each table hears of
 * its own regions only; install is idempotent. */
static void test_two_tables(void)
{
	CHECK_EQ(vio_mem_sigbus_guard_install(), 0);
	struct vio_memtable *a = vio_memtable_new(2), *b = vio_memtable_new(2);
	REQUIRE(a && b);
	int fa = filled_memfd(REGION, 1), fb = filled_memfd(REGION, 2);
	map_region(a, fa, GPA1);
	map_region(b, fb, GPA1); /* same device address, other table */
	REQUIRE(ftruncate(fb, 0) == 0);
	volatile uint8_t *pb = vio_memtable_ptr(b, GPA1 + 4096, 1);
	volatile uint8_t *pa = vio_memtable_ptr(a, GPA1 + 4096, 1);
	CHECK_EQ(*pb, 0);
	CHECK(vio_memtable_faulted(b));
	CHECK_EQ(vio_memtable_fault_addr(b), GPA1 + 4096);
	CHECK(!vio_memtable_faulted(a));
	CHECK_EQ(*pa, 1);
	vio_memtable_free(a);
	vio_memtable_free(b);
	close(fa);
	close(fb);
}

/* Every slot taken: unsealed regions are refused (fd closed), a region
 * sealed against shrinking is still mapped; slots come back on removal. */
static void test_registry_full(void)
{
	int fds_before = test_count_fds();
	struct vio_memtable *mt = vio_memtable_new(8192);
	REQUIRE(mt);
	int fd = filled_memfd(page, 1);
	int sealed =
	    memfd_create("guard-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	REQUIRE(sealed >= 0 && ftruncate(sealed, (off_t)page) == 0);
	REQUIRE(fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	unsigned n = 0;
	int r = 0;
	uint64_t gpa = GPA1;
	while (n < 8192) {
		struct vio_region reg = {
		    .addr = gpa, .size = page, .fd = dup(fd)};
		r = vio_memtable_map(mt, &reg);
		if (r)
			break;
		n++;
		gpa += page;
	}
	printf("registry: %u regions guarded, then %d\n", n, r);
	CHECK_EQ(r, -ENOSPC);
	CHECK(n >= 4000 && n <= 4096);
	CHECK_EQ(vio_memtable_count(mt), n);
	struct vio_region reg = {.addr = gpa, .size = page, .fd = dup(sealed)};
	CHECK_EQ(vio_memtable_map(mt, &reg), 0);
	/* a slot freed is a slot back */
	CHECK_EQ(vio_memtable_remove(mt, GPA1, page), 0);
	reg = (struct vio_region){.addr = GPA1, .size = page, .fd = dup(fd)};
	CHECK_EQ(vio_memtable_map(mt, &reg), 0);
	vio_memtable_free(mt);
	close(fd);
	close(sealed);
	CHECK_EQ(test_count_fds(), fds_before);
}

/* The driver's memory: the peer cannot shrink it. */
static void test_driver_sealed(void)
{
	struct vio_mem *m = vio_mem_new();
	REQUIRE(m);
	struct vio_region r;
	REQUIRE(vio_mem_add_region(m, REGION, &r) == 0);
	int seals = fcntl(r.fd, F_GET_SEALS);
	CHECK(seals >= 0 && (seals & F_SEAL_SHRINK));
	CHECK(ftruncate(r.fd, 0) < 0 && errno == EPERM);
	CHECK(ftruncate(r.fd, 2 * REGION) < 0 && errno == EPERM);
	vio_mem_free(m);
}

int main(void)
{
	signal(SIGALRM, watchdog);
	alarm(50);
	long pg = sysconf(_SC_PAGESIZE);
	page = pg > 0 ? (size_t)pg : 4096;

	/* first: the children need a process without the guard */
	test_chaining();
	REQUIRE(vio_mem_sigbus_guard_install() == 0);
	test_truncate_under_readers();
	test_two_tables();
	test_registry_full();
	test_driver_sealed();
	return test_result("test_mem_guard");
}
