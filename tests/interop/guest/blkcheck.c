// SPDX-License-Identifier: MIT
/*
 * blkcheck: data-integrity checker for a block device or an image file.
 *
 * Built static (gcc -static) so the same binary runs inside the test guest
 * (against /dev/vda) and on the host (against the image file after the guest
 * powered off).
 *
 * The pattern is a pure function of (seed, generation, absolute offset): the
 * 8-byte little-endian word at byte offset o holds
 *
 *	pat_word(key(seed, gen), o / 8)
 *
 * so any byte range can be produced or checked on its own, whatever the size,
 * order or overlap of the I/O that wrote it, and a misdirected write (right
 * data, wrong sector) shows up as a mismatch. Each write pass uses a new
 * generation, so a dropped write leaves the previous generation behind and
 * is caught too.
 *
 * Modes (TARGET is a block device or a regular file):
 *
 *   blkcheck TARGET --seed N [--passes K] [--jobs J]
 *	For gen = 1..K: tile the target with extents of varied sizes (one
 *	logical block .. 1 MiB), write them in shuffled order, flush (fsync),
 *	drop caches and reopen, read everything back with a different shuffled
 *	tiling and compare. Leaves generation K on the target.
 *   blkcheck TARGET --seed N --fill [--gen G]
 *	Write the whole target with generation G (default 0) sequentially,
 *	flush, no read-back: the host checks the image afterwards.
 *   blkcheck TARGET --seed N --verify [--gen G]
 *	Read-only check of generation G (default 0).
 *   blkcheck --verify-image FILE --seed N [--gen G]
 *	Same as --verify; the name the host side uses.
 *
 * With --jobs J the target is cut into J contiguous regions, each handled by
 * one child process pinned to CPU (i mod ncpus), so a multi-queue device
 * sees requests on several queues at once.
 *
 * The last line printed is the summary:
 *   blkcheck: RESULT PASS|FAIL mode=... size=... written=... write_MBps=...
 *	read_MBps=... [first_bad=BYTE expect=WORD got=WORD]
 * Exit status: 0 pass, 1 data mismatch or I/O error, 2 usage or setup error.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_IO (1u << 20) /* largest single request */
#define MAX_JOBS 64

enum mode { MODE_RW, MODE_FILL, MODE_VERIFY };

struct opts {
	const char *path;
	uint64_t seed;
	bool have_seed;
	unsigned int passes;
	unsigned int jobs;
	uint64_t gen;
	enum mode mode;
	bool direct;
};

struct target {
	uint64_t size; /* usable bytes: a multiple of unit */
	uint32_t unit; /* logical block size: every offset and length */
	bool is_blk;
};

struct extent {
	uint64_t off;
	uint32_t len;
};

/* One per job, in a shared anonymous mapping written by the child. */
struct job_result {
	uint64_t bytes;
	uint64_t ios;
	uint64_t bad_units; /* logical blocks holding at least one bad word */
	uint64_t first_bad; /* valid when bad_units != 0 */
	uint64_t expect;
	uint64_t got;
	int err;	  /* errno of the first I/O error, 0 if none */
	uint64_t err_off; /* offset of that request */
	bool done;	  /* the child reached its end */
};

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t pat_key(uint64_t seed, uint64_t gen)
{
	return mix64(mix64(seed) ^ mix64(gen ^ 0x5654494f47454e00ull));
}

/* The value of the 8-byte word with index @widx (byte offset / 8). */
static inline uint64_t pat_word(uint64_t key, uint64_t widx)
{
	return mix64(key ^ (widx * 0xd1342543de82ef95ull));
}

static void pat_fill(uint64_t key, uint64_t off, void *buf, size_t len)
{
	uint64_t *w = buf;
	uint64_t idx = off / 8;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = htole64(pat_word(key, idx + i));
}

/*
 * Compare @buf (read from @off) with the pattern; account mismatches in @r.
 * Returns true when everything matched.
 */
static bool pat_check(uint64_t key, uint64_t off, const void *buf, size_t len,
		      uint32_t unit, struct job_result *r)
{
	const uint64_t *w = buf;
	uint64_t idx = off / 8;
	size_t words_per_unit = unit / 8;
	bool ok = true;

	for (size_t u = 0; u < len / unit; u++) {
		for (size_t i = u * words_per_unit;
		     i < (u + 1) * words_per_unit; i++) {
			uint64_t want = pat_word(key, idx + i);
			uint64_t have = le64toh(w[i]);

			if (want == have)
				continue;
			if (r->bad_units == 0 || off + i * 8 < r->first_bad) {
				/* the first differing byte (little-endian) */
				r->first_bad =
				    off + i * 8 +
				    (uint64_t)__builtin_ctzll(want ^ have) / 8;
				r->expect = want;
				r->got = have;
			}
			r->bad_units++;
			ok = false;
			break; /* next unit */
		}
	}
	return ok;
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

/* A length in [unit, MAX_IO], a multiple of unit, of varied shape. */
static uint32_t pick_len(uint64_t *rng, uint32_t unit)
{
	uint32_t max_units = MAX_IO / unit;
	uint64_t r = rng_next(rng);
	uint32_t units;

	switch (r & 3) {
	case 0: /* small: 1..8 blocks */
		units = 1 + (r >> 8) % 8;
		break;
	case 1: /* medium: up to 64 KiB */
		units = 1 + (r >> 8) % ((64u << 10) / unit);
		break;
	case 2: /* anything up to the maximum */
		units = 1 + (r >> 8) % max_units;
		break;
	default: /* a power of two */
		units = 1u << ((r >> 8) % 32);
		break;
	}
	if (units > max_units)
		units = max_units;
	if (units == 0)
		units = 1;
	return units * unit;
}

/*
 * Tile [start, end) with extents of varied length; shuffle them unless
 * @sequential. Returns the count, 0 on allocation failure (start < end).
 */
static size_t make_tiling(struct extent **out, uint64_t start, uint64_t end,
			  uint32_t unit, uint64_t rng, bool sequential)
{
	size_t n = 0, cap = 1024;
	struct extent *e = malloc(cap * sizeof(*e));

	if (!e)
		return 0;
	for (uint64_t off = start; off < end;) {
		uint64_t len = pick_len(&rng, unit);

		if (len > end - off)
			len = end - off;
		if (n == cap) {
			struct extent *ne = realloc(e, 2 * cap * sizeof(*e));

			if (!ne) {
				free(e);
				return 0;
			}
			e = ne;
			cap *= 2;
		}
		e[n].off = off;
		e[n].len = (uint32_t)len;
		n++;
		off += len;
	}
	if (!sequential) {
		for (size_t i = n - 1; i > 0; i--) {
			size_t j = rng_next(&rng) % (i + 1);
			struct extent t = e[i];

			e[i] = e[j];
			e[j] = t;
		}
	}
	*out = e;
	return n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_target(const struct opts *o, int flags)
{
	int fd = -1;

	if (o->direct) {
		fd = open(o->path, flags | O_DIRECT | O_CLOEXEC);
		/* tmpfs and some host filesystems refuse O_DIRECT */
		if (fd < 0 && errno == EINVAL)
			fprintf(stderr,
				"blkcheck: O_DIRECT refused on %s, "
				"using buffered I/O\n",
				o->path);
		else
			return fd;
	}
	return open(o->path, flags | O_CLOEXEC);
}

static int probe_target(const struct opts *o, struct target *t)
{
	struct stat st;
	uint64_t bytes = 0;
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "blkcheck: open %s: %s\n", o->path,
			strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		fprintf(stderr, "blkcheck: fstat: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	t->is_blk = S_ISBLK(st.st_mode);
	t->unit = 512;
	if (t->is_blk) {
		int ssz = 0;

		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0 ||
		    ioctl(fd, BLKSSZGET, &ssz) < 0) {
			fprintf(stderr, "blkcheck: size ioctl: %s\n",
				strerror(errno));
			close(fd);
			return -1;
		}
		if (ssz >= 512 && ssz <= 65536 && (ssz & (ssz - 1)) == 0)
			t->unit = (uint32_t)ssz;
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		fprintf(stderr, "blkcheck: %s: not a block device or file\n",
			o->path);
		close(fd);
		return -1;
	}
	close(fd);
	if (bytes % t->unit)
		fprintf(stderr,
			"blkcheck: ignoring %" PRIu64 " trailing bytes\n",
			bytes % t->unit);
	t->size = bytes - bytes % t->unit;
	if (t->size == 0) {
		fprintf(stderr, "blkcheck: %s is empty\n", o->path);
		return -1;
	}
	return 0;
}

/* Full-length pread/pwrite; returns 0 or a positive errno. */
static int do_io(int fd, bool wr, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = wr ? pwrite(fd, (char *)buf + done, len - done,
					(off_t)(off + done))
			       : pread(fd, (char *)buf + done, len - done,
				       (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return wr ? ENOSPC : ENODATA;
		done += (size_t)n;
	}
	return 0;
}

static void pin_cpu(unsigned int job)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (ncpu <= 1)
		return;
	CPU_ZERO(&set);
	CPU_SET(job % (unsigned long)ncpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

/*
 * One job: write (@wr) or check generation @gen over [start, end).
 * Runs in a child; the result goes to @r.
 */
static void run_job(const struct opts *o, const struct target *t,
		    unsigned int job, uint64_t start, uint64_t end, bool wr,
		    uint64_t gen, uint64_t layout_seed, struct job_result *r)
{
	uint64_t key = pat_key(o->seed, gen);
	struct extent *ext = NULL;
	void *buf = NULL;
	size_t n;
	int fd;

	memset(r, 0, sizeof(*r));
	pin_cpu(job);
	fd = open_target(o, wr ? O_WRONLY : O_RDONLY);
	if (fd < 0) {
		r->err = errno;
		return;
	}
	if (posix_memalign(&buf, 4096, MAX_IO)) {
		r->err = ENOMEM;
		close(fd);
		return;
	}
	n = make_tiling(&ext, start, end, t->unit,
			mix64(layout_seed ^ (job + 1)), o->mode == MODE_FILL);
	if (n == 0) {
		r->err = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int err;

		if (wr)
			pat_fill(key, ext[i].off, buf, ext[i].len);
		err = do_io(fd, wr, buf, ext[i].len, ext[i].off);
		if (err) {
			r->err = err;
			r->err_off = ext[i].off;
			break;
		}
		if (!wr)
			pat_check(key, ext[i].off, buf, ext[i].len, t->unit, r);
		r->bytes += ext[i].len;
		r->ios++;
	}
	r->done = true;
out:
	free(ext);
	free(buf);
	close(fd);
}

/*
 * Run one phase over the whole target with J children; sums the results
 * into @sum. Returns the wall time in seconds, negative on setup failure.
 */
static double run_phase(const struct opts *o, const struct target *t,
			struct job_result *res, bool wr, uint64_t gen,
			uint64_t layout_seed, struct job_result *sum)
{
	uint64_t units = t->size / t->unit;
	unsigned int jobs = o->jobs;
	double t0 = now_s();
	pid_t pids[MAX_JOBS];

	if (units < jobs)
		jobs = (unsigned int)units;
	for (unsigned int j = 0; j < jobs; j++) {
		uint64_t s = units * j / jobs * t->unit;
		uint64_t e = units * (j + 1) / jobs * t->unit;

		pids[j] = fork();
		if (pids[j] < 0) {
			fprintf(stderr, "blkcheck: fork: %s\n",
				strerror(errno));
			for (unsigned int k = 0; k < j; k++)
				waitpid(pids[k], NULL, 0);
			return -1;
		}
		if (pids[j] == 0) {
			run_job(o, t, j, s, e, wr, gen, layout_seed, &res[j]);
			_exit(0);
		}
	}
	memset(sum, 0, sizeof(*sum));
	for (unsigned int j = 0; j < jobs; j++) {
		struct job_result *r = &res[j];
		int st;

		while (waitpid(pids[j], &st, 0) < 0 && errno == EINTR)
			;
		if (!r->done && !r->err) {
			r->err = ECHILD; /* child died */
			r->err_off = units * j / jobs * t->unit;
		}
		sum->bytes += r->bytes;
		sum->ios += r->ios;
		if (r->err && !sum->err) {
			sum->err = r->err;
			sum->err_off = r->err_off;
		}
		if (r->bad_units &&
		    (!sum->bad_units || r->first_bad < sum->first_bad)) {
			sum->first_bad = r->first_bad;
			sum->expect = r->expect;
			sum->got = r->got;
		}
		sum->bad_units += r->bad_units;
	}
	return now_s() - t0;
}

/* Flush the device cache (fsync on a block device sends a FLUSH). */
static int flush_target(const struct opts *o, double *secs)
{
	double t0 = now_s();
	int fd = open(o->path, O_WRONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = errno;
	if (fd >= 0)
		close(fd);
	*secs = now_s() - t0;
	return rc;
}

/* Make the read-back come from the device, not from a cache. */
static void drop_caches(const struct opts *o, const struct target *t)
{
	int fd;

	if (!t->is_blk)
		return; /* an image file on the host: leave the host alone */
	fd = open(o->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ioctl(fd, BLKFLSBUF, 0);
		close(fd);
	}
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		/* best effort: O_DIRECT already bypasses the page cache */
		if (write(fd, "3\n", 2) < 0)
			fprintf(stderr, "blkcheck: drop_caches: %s\n",
				strerror(errno));
		close(fd);
	}
}

static double mbps(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes / secs / 1e6 : 0.0;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: blkcheck TARGET --seed N [--passes K] [--jobs J]\n"
	    "       blkcheck TARGET --seed N --fill [--gen G] [--jobs J]\n"
	    "       blkcheck TARGET --seed N --verify [--gen G] [--jobs J]\n"
	    "       blkcheck --verify-image FILE --seed N [--gen G]\n"
	    "       options: --no-direct (buffered I/O)\n");
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno == 0 && *s && !*end && *s != '-';
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	uint64_t v;

	*o = (struct opts){.passes = 1, .jobs = 1, .direct = true};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--fill")) {
			o->mode = MODE_FILL;
		} else if (!strcmp(a, "--verify")) {
			o->mode = MODE_VERIFY;
		} else if (!strcmp(a, "--no-direct")) {
			o->direct = false;
		} else if (!strcmp(a, "--verify-image") && val) {
			o->mode = MODE_VERIFY;
			o->path = val;
			i++;
		} else if (!strcmp(a, "--seed") && val && parse_u64(val, &v)) {
			o->seed = v;
			o->have_seed = true;
			i++;
		} else if (!strcmp(a, "--gen") && val && parse_u64(val, &v)) {
			o->gen = v;
			i++;
		} else if (!strcmp(a, "--passes") && val &&
			   parse_u64(val, &v) && v >= 1 && v <= 1000) {
			o->passes = (unsigned int)v;
			i++;
		} else if (!strcmp(a, "--jobs") && val && parse_u64(val, &v) &&
			   v >= 1 && v <= MAX_JOBS) {
			o->jobs = (unsigned int)v;
			i++;
		} else if (a[0] != '-' && !o->path) {
			o->path = a;
		} else {
			fprintf(stderr, "blkcheck: bad argument '%s'\n", a);
			return -1;
		}
	}
	if (!o->path || !o->have_seed) {
		fprintf(stderr, "blkcheck: need a target and --seed\n");
		return -1;
	}
	return 0;
}

static const char *mode_name(enum mode m)
{
	return m == MODE_FILL ? "fill" : m == MODE_VERIFY ? "verify" : "rw";
}

int main(int argc, char **argv)
{
	struct job_result sum, *res;
	struct target t;
	struct opts o;
	uint64_t written = 0, readb = 0, bad = 0, gen_last;
	double wsecs = 0, rsecs = 0, fsecs = 0, f, ph;
	int err = 0;
	uint64_t err_off = 0, first_bad = 0, expect = 0, got = 0;
	bool have_bad = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &o) < 0) {
		usage();
		return 2;
	}
	if (probe_target(&o, &t) < 0)
		return 2;
	res = mmap(NULL, sizeof(*res) * MAX_JOBS, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		fprintf(stderr, "blkcheck: mmap: %s\n", strerror(errno));
		return 2;
	}
	printf("blkcheck: %s mode=%s size=%" PRIu64 " unit=%u seed=%" PRIu64
	       " jobs=%u%s\n",
	       o.path, mode_name(o.mode), t.size, t.unit, o.seed, o.jobs,
	       t.is_blk ? " blockdev" : " file");

	unsigned int npass = o.mode == MODE_RW ? o.passes : 1;

	gen_last = o.mode == MODE_RW ? o.passes : o.gen;
	for (unsigned int p = 1; p <= npass && !err && !bad; p++) {
		uint64_t gen = o.mode == MODE_RW ? p : o.gen;
		uint64_t lseed = mix64(o.seed ^ (gen << 32));

		if (o.mode != MODE_VERIFY) {
			f = run_phase(&o, &t, res, true, gen, lseed, &sum);
			if (f < 0)
				return 2;
			wsecs += f;
			written += sum.bytes;
			ph = f;
			if (sum.err) {
				err = sum.err;
				err_off = sum.err_off;
				break;
			}
			err = flush_target(&o, &f);
			fsecs += f;
			if (err)
				break;
			printf("blkcheck: gen %" PRIu64 " written %" PRIu64
			       " bytes in %" PRIu64 " requests, %.1f MB/s, "
			       "flush %.3f s\n",
			       gen, sum.bytes, sum.ios, mbps(sum.bytes, ph), f);
		}
		if (o.mode == MODE_FILL)
			break;
		drop_caches(&o, &t);
		f = run_phase(&o, &t, res, false, gen, ~lseed, &sum);
		if (f < 0)
			return 2;
		rsecs += f;
		readb += sum.bytes;
		if (sum.err) {
			err = sum.err;
			err_off = sum.err_off;
		}
		if (sum.bad_units) {
			bad = sum.bad_units;
			have_bad = true;
			first_bad = sum.first_bad;
			expect = sum.expect;
			got = sum.got;
		}
		printf("blkcheck: gen %" PRIu64 " read %" PRIu64
		       " bytes in %" PRIu64 " requests, %.1f MB/s, %" PRIu64
		       " bad blocks\n",
		       gen, sum.bytes, sum.ios, mbps(sum.bytes, f),
		       sum.bad_units);
	}

	bool pass = !err && !have_bad;

	printf("blkcheck: RESULT %s mode=%s size=%" PRIu64 " gen=%" PRIu64
	       " written=%" PRIu64 " write_MBps=%.1f flush_s=%.3f read=%" PRIu64
	       " read_MBps=%.1f",
	       pass ? "PASS" : "FAIL", mode_name(o.mode), t.size, gen_last,
	       written, mbps(written, wsecs), fsecs, readb, mbps(readb, rsecs));
	if (err)
		printf(" io_error=%s at=%" PRIu64, strerror(err), err_off);
	if (have_bad)
		printf(" bad_blocks=%" PRIu64 " first_bad=%" PRIu64
		       " expect=0x%016" PRIx64 " got=0x%016" PRIx64,
		       bad, first_bad, expect, got);
	printf("\n");
	munmap(res, sizeof(*res) * MAX_JOBS);
	return pass ? 0 : 1;
}
