/* SPDX-License-Identifier: MIT */
/*
 * vio/log.h: a handler takes every line (nothing reaches stderr), with its
 * level and text; the level filters before formatting and before the rate
 * limit; NULL restores the stderr default; a replaced handler is no longer
 * running when vio_log_set_handler returns, whatever threads log; errno is
 * kept; $VIO_LOG sets the initial level or quiets the default.
 *
 * stderr is checked by putting a memfd on fd 2 around each case and
 * reading it back after fd 2 is restored (CHECK itself prints to stderr).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <linux/virtio_ids.h>

#include "test.h"
#include "util/log.h"
#include <vio/device.h>
#include <vio/log.h>

/* ---- capturing fd 2 ---- */

static int saved_stderr = -1, cap_fd = -1;

static void capture_begin(void)
{
	fflush(stderr);
	cap_fd = memfd_create("stderr", MFD_CLOEXEC);
	REQUIRE(cap_fd >= 0);
	saved_stderr = dup(2);
	REQUIRE(saved_stderr >= 0);
	REQUIRE(dup2(cap_fd, 2) == 2);
}

/* Restore fd 2; what was written to it meanwhile, in buf. */
static size_t capture_end(char *buf, size_t len)
{
	fflush(stderr);
	REQUIRE(dup2(saved_stderr, 2) == 2);
	close(saved_stderr);
	ssize_t n = pread(cap_fd, buf, len - 1, 0);
	close(cap_fd);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

/* ---- a handler that records ---- */

#define REC_MAX 32
struct rec {
	unsigned n;
	enum vio_log_level level[REC_MAX];
	char msg[REC_MAX][VIO_LOG_MSG_MAX];
	int errno_seen;
};

static void rec_fn(void *opaque, enum vio_log_level level, const char *msg)
{
	struct rec *r = opaque;
	r->errno_seen = errno;
	errno = EBADF; /* must not leak to the vio caller */
	if (r->n < REC_MAX) {
		r->level[r->n] = level;
		snprintf(r->msg[r->n], sizeof(r->msg[0]), "%s", msg);
	}
	r->n++;
}

static struct vio_device *new_dev(void)
{
	static const struct vio_device_ops ops = {0};
	struct vio_device_opts c = {.name = "logdev",
				    .device_id = VIRTIO_ID_RNG,
				    .num_queues = 1,
				    .queue_max_size = 8,
				    .ops = &ops};
	struct vio_device *d = vio_device_new(&c);
	REQUIRE(d);
	return d;
}

/* Lines of the library through the public API reach the handler, at their
 * level, with their text, and nothing reaches stderr. */
static void test_handler_takes_lines(void)
{
	struct rec r = {0};
	char out[4096];
	struct vio_device *d = new_dev();

	capture_begin();
	vio_log_set_handler(rec_fn, &r);
	errno = 0;
	/* 0 -> DRIVER_OK skips ACKNOWLEDGE: refused, one WARN line */
	int ret = vio_device_set_status(d, VIRTIO_CONFIG_S_DRIVER_OK);
	int e = errno;
	vio_log_set_handler(NULL, NULL);
	size_t n = capture_end(out, sizeof(out));

	CHECK_EQ(ret, -EINVAL);
	CHECK_EQ(e, 0); /* the handler's EBADF did not leak */
	CHECK_EQ(n, 0);
	if (n)
		fprintf(stderr, "went to stderr: %s", out);
	CHECK_EQ(r.n, 1);
	CHECK_EQ(r.level[0], VIO_LOG_WARN);
	CHECK(strstr(r.msg[0], "logdev: illegal status write") == r.msg[0]);
	CHECK(strchr(r.msg[0], '\n') == NULL);
	vio_device_free(d);
}

/* Rate limiting happens before the handler: a flood of peer errors from
 * one source arrives as VIO_RATELIMIT_BURST lines, then the count. */
static void test_ratelimit_before_handler(void)
{
	struct rec r = {0};
	struct vio_device *d = new_dev();
	vio_log_set_handler(rec_fn, &r);
	uint64_t t0 = vio_now_ns();
	for (int i = 0; i < 20; i++) {
		int ret = vio_device_set_status(d, VIRTIO_CONFIG_S_DRIVER_OK);
		CHECK_EQ(ret, -EINVAL);
	}
	/* one window (1 s) unless this thread stalled that long */
	if (vio_now_ns() - t0 < 900000000ull)
		CHECK_EQ(r.n, VIO_RATELIMIT_BURST);
	vio_device_free(d);

	/* the count of dropped lines comes first, at the line's level */
	struct vio_ratelimit rl = {0};
	r.n = 0;
	for (int i = 0; i < VIO_RATELIMIT_BURST + 3; i++)
		vio_log_limited(&rl, "flood %d", i);
	unsigned passed = r.n;
	rl.window_ns = 0; /* as if a second went by */
	vio_log_limited_at(&rl, VIO_LOG_ERROR, "after");
	vio_log_set_handler(NULL, NULL);
	CHECK_EQ(passed, VIO_RATELIMIT_BURST);
	CHECK_EQ(r.n, VIO_RATELIMIT_BURST + 2);
	CHECK_EQ(r.level[0], VIO_LOG_WARN);
	CHECK(strcmp(r.msg[0], "flood 0") == 0);
	CHECK_EQ(r.level[VIO_RATELIMIT_BURST], VIO_LOG_ERROR);
	CHECK(strcmp(r.msg[VIO_RATELIMIT_BURST],
		     "(3 similar messages suppressed)") == 0);
	CHECK(strcmp(r.msg[VIO_RATELIMIT_BURST + 1], "after") == 0);
}

/* The level drops less severe lines, before the rate limit counts them. */
static void test_level_filter(void)
{
	struct rec r = {0};
	CHECK_EQ(vio_log_get_level(), VIO_LOG_INFO); /* the default */
	vio_log_set_handler(rec_fn, &r);

	static const enum vio_log_level all[] = {VIO_LOG_ERROR, VIO_LOG_WARN,
						 VIO_LOG_INFO, VIO_LOG_DEBUG};
	for (unsigned max = 0; max < 4; max++) {
		vio_log_set_level(all[max]);
		CHECK_EQ(vio_log_get_level(), all[max]);
		r.n = 0;
		for (unsigned l = 0; l < 4; l++) {
			CHECK_EQ(vio_log_enabled(all[l]), l <= max);
			vio_log_at(all[l], "line %s",
				   vio_log_level_name(all[l]));
		}
		CHECK_EQ(r.n, max + 1);
		for (unsigned l = 0; l <= max && l < r.n; l++) {
			char want[32];
			snprintf(want, sizeof(want), "line %s",
				 vio_log_level_name(all[l]));
			CHECK_EQ(r.level[l], all[l]);
			CHECK(strcmp(r.msg[l], want) == 0);
		}
	}
	/* vio_log is INFO, vio_log_limited WARN */
	vio_log_set_level(VIO_LOG_WARN);
	r.n = 0;
	vio_log("info line");
	struct vio_ratelimit rl = {0};
	vio_log_limited(&rl, "warn line");
	CHECK_EQ(r.n, 1);
	CHECK_EQ(r.level[0], VIO_LOG_WARN);

	/* filtered lines do not use up the limiter's budget */
	vio_log_set_level(VIO_LOG_ERROR);
	struct vio_ratelimit rl2 = {0};
	for (int i = 0; i < 50; i++)
		vio_log_limited(&rl2, "dropped by level");
	vio_log_set_level(VIO_LOG_INFO);
	r.n = 0;
	vio_log_limited(&rl2, "first of its window");
	CHECK_EQ(r.n, 1);
	CHECK(strcmp(r.msg[0], "first of its window") == 0);

	/* a public-API line below the level never reaches the handler */
	struct vio_device *d = new_dev();
	vio_log_set_level(VIO_LOG_ERROR);
	r.n = 0;
	CHECK_EQ(vio_device_set_status(d, VIRTIO_CONFIG_S_DRIVER_OK), -EINVAL);
	CHECK_EQ(r.n, 0);
	vio_log_set_level(VIO_LOG_INFO);
	vio_device_free(d);

	/* out-of-range levels are clamped */
	vio_log_set_level((enum vio_log_level)99);
	CHECK_EQ(vio_log_get_level(), VIO_LOG_DEBUG);
	vio_log_set_level(VIO_LOG_INFO);
	CHECK(strcmp(vio_log_level_name((enum vio_log_level)7), "?") == 0);
	vio_log_set_handler(NULL, NULL);
}

/* %m sees the caller's errno; errno is the same after the call; long
 * lines are cut to VIO_LOG_MSG_MAX - 1. */
static void test_errno_and_length(void)
{
	struct rec r = {0};
	vio_log_set_handler(rec_fn, &r);
	errno = ENOSPC;
	vio_log("disk: %m");
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(r.errno_seen, ENOSPC);
	CHECK(strcmp(r.msg[0], "disk: No space left on device") == 0);

	char big[2 * VIO_LOG_MSG_MAX];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	vio_log("%s", big);
	CHECK_EQ(r.n, 2);
	CHECK_EQ(strlen(r.msg[1]), VIO_LOG_MSG_MAX - 1);
	vio_log_set_handler(NULL, NULL);
}

/* NULL restores the default: "vio: msg\n" on stderr, at the level. */
static void test_default_restored(void)
{
	struct rec r = {0};
	char out[4096];
	struct vio_device *d = new_dev();
	vio_log_set_handler(rec_fn, &r);
	vio_log_set_handler(NULL, NULL);
	capture_begin();
	CHECK_EQ(vio_device_set_status(d, VIRTIO_CONFIG_S_DRIVER_OK), -EINVAL);
	vio_log_debug("not at the default level");
	size_t n = capture_end(out, sizeof(out));
	CHECK_EQ(r.n, 0);
	CHECK(n > 0);
	CHECK(strncmp(out, "vio: logdev: illegal status write ", 34) == 0);
	CHECK(n > 0 && out[n - 1] == '\n' && strchr(out, '\n') == out + n - 1);
	vio_device_free(d);

	/* the internal quiet switch still silences everything */
	vio_log_set_quiet(1);
	capture_begin();
	vio_log_err("quiet");
	n = capture_end(out, sizeof(out));
	vio_log_set_quiet(0);
	CHECK_EQ(n, 0);
}

/* ---- threads: a replaced handler is not running afterwards ---- */

struct counter {
	atomic_uint calls;
	atomic_int retired; /* set once replaced: a call now is a bug */
	atomic_uint late;
};

static void count_fn(void *opaque, enum vio_log_level level, const char *msg)
{
	struct counter *c = opaque;
	(void)level;
	(void)msg;
	if (atomic_load(&c->retired))
		atomic_fetch_add(&c->late, 1);
	atomic_fetch_add(&c->calls, 1);
}

static atomic_int stop_logging;

static void *log_loop(void *arg)
{
	struct vio_ratelimit rl = {0};
	unsigned i = 0;
	(void)arg;
	while (!atomic_load(&stop_logging)) {
		vio_log_warn("thread line %u", i++);
		vio_log_limited(&rl, "limited %u", i);
	}
	return NULL;
}

static void test_threads(void)
{
	enum { NT = 3, ROUNDS = 100 };
	struct counter c[2] = {0};
	pthread_t th[NT];
	vio_log_set_handler(count_fn, &c[0]);
	for (int i = 0; i < NT; i++)
		REQUIRE(pthread_create(&th[i], NULL, log_loop, NULL) == 0);
	for (int round = 0; round < ROUNDS; round++) {
		struct counter *old = &c[round % 2], *new = &c[(round + 1) % 2];
		/* wait until the threads log through old (deadline) */
		unsigned seen = atomic_load(&old->calls);
		uint64_t end = vio_now_ns() + 5000000000ull;
		while (atomic_load(&old->calls) == seen && vio_now_ns() < end)
			sched_yield();
		atomic_store(&new->retired, 0);
		vio_log_set_handler(count_fn, new);
		atomic_store(&old->retired, 1);
	}
	atomic_store(&stop_logging, 1);
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	vio_log_set_handler(NULL, NULL);
	CHECK_EQ(atomic_load(&c[0].late) + atomic_load(&c[1].late), 0);
	CHECK(atomic_load(&c[0].calls) >= ROUNDS / 2);
	CHECK(atomic_load(&c[1].calls) >= ROUNDS / 2);
}

/* ---- $VIO_LOG, in a fresh process (it is read once) ---- */

static int env_child(const char *mode)
{
	struct rec r = {0};
	char out[1024];
	int fails = 0;
	if (strcmp(mode, "warn") == 0) {
		fails += vio_log_get_level() != VIO_LOG_WARN;
		vio_log_set_handler(rec_fn, &r);
		vio_log_info("dropped");
		vio_log_warn("kept");
		fails += r.n != 1;
		/* an explicit setting wins over the environment */
		vio_log_set_level(VIO_LOG_DEBUG);
		fails += vio_log_get_level() != VIO_LOG_DEBUG;
	} else { /* quiet: the default is silent, a handler is not */
		capture_begin();
		vio_log_err("silenced");
		size_t n = capture_end(out, sizeof(out));
		fails += n != 0;
		vio_log_set_handler(rec_fn, &r);
		vio_log_info("kept");
		fails += r.n != 1;
	}
	return fails ? 1 : 0;
}

static void test_env(void)
{
	static const char *const modes[] = {"warn", "quiet"};
	for (unsigned i = 0; i < 2; i++) {
		pid_t p = fork();
		REQUIRE(p >= 0);
		if (p == 0) {
			setenv("VIO_LOG", modes[i], 1);
			char *argv[] = {"test_log", "--env-child",
					(char *)modes[i], NULL};
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		int st = 0;
		REQUIRE(waitpid(p, &st, 0) == p);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--env-child") == 0)
		return env_child(argv[2]);
	unsetenv("VIO_LOG");
	test_level_filter();
	test_handler_takes_lines();
	test_ratelimit_before_handler();
	test_errno_and_length();
	test_default_restored();
	test_threads();
	test_env();
	return test_result("log");
}
