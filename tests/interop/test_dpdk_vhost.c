/* SPDX-License-Identifier: MIT */
/*
 * Interop: vio's vhost-user frontend and virtio-net driver against a real
 * device, DPDK's vhost-user backend (testpmd's net_vhost PMD, the vhost
 * library OVS-DPDK and VPP put behind their ports), forwarding every frame
 * back (macswap or io).
 *
 * Per case (split and packed rings, 1 and 2 queue pairs, mergeable
 * receive buffers small enough that a frame spans several, and none):
 * a testpmd of its own on a socket in a temp dir; the driver sends
 * frames of known content (a sequence number, the pair, a pattern; 60 to
 * 1514 bytes) on every pair in windows that fit the receive ring, and
 * every frame must come back on its pair, in order, intact (macswap: the
 * two MAC addresses swapped; io: unchanged), after a warm-up frame per
 * pair (see warm_up).  A lost frame is a missing sequence number;
 * testpmd's own counters are printed too.
 *
 * testpmd runs non-interactively: --auto-start, then it waits for a line
 * on stdin, which is a pipe this test holds (EOF: it prints its counters
 * and exits; it also gets SIGKILL if the test dies).  The socket is
 * waited for with inotify (and a pidfd for testpmd dying first), never a
 * sleep.  Every testpmd is killed by PID after its stdin closed (an
 * alarm watchdog too); its runtime dir under /var/run/dpdk and the temp
 * dir are removed (its log is kept when a check failed).  --in-memory
 * cannot be combined with --no-huge in DPDK 22.11 (it forces legacy
 * memory): --no-shconf, --no-telemetry and a unique --file-prefix keep
 * instances apart instead.
 *
 * Exit 77 (SKIP) only when dpdk-testpmd is not installed.
 *
 * --bench [SECONDS]: 64-byte frames through macswap on one pair, split
 * then packed, three runs each, prints Mpps (sent and received) and the
 * medians.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <endian.h>

#include <linux/virtio_ids.h>

#include "test.h"
#include <vio/bus.h>
#include <vio/mem.h>
#include <vio/net.h>
#include <vio/vhost_user.h>

static char tmpdir[200];
static char pmd_bin[512];
static char prefix[64];
static volatile pid_t pmd_pid = -1;
static int pmd_stdin = -1; /* the write end of testpmd's stdin */

static void watchdog(int sig)
{
	(void)sig;
	if (pmd_pid > 0)
		kill(pmd_pid, SIGKILL);
	static const char msg[] =
	    "test_dpdk_vhost: watchdog: timed out or killed\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool find_testpmd(void)
{
	const char *env = getenv("VIO_TESTPMD");
	if (env && *env) {
		snprintf(pmd_bin, sizeof(pmd_bin), "%s", env);
		return access(pmd_bin, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/local/bin",
		 path ? path : "");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(pmd_bin, sizeof(pmd_bin), "%s/dpdk-testpmd", d);
		if (access(pmd_bin, X_OK) == 0)
			return true;
	}
	return false;
}

static void pmd_log_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/testpmd-%s.log", tmpdir, prefix);
}

/* testpmd's counters (printed as it exits) from its log. */
static void dump_counters(void)
{
	char logp[512];
	pmd_log_path(logp, sizeof(logp));
	FILE *f = fopen(logp, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "-packets:"))
			fprintf(stderr, "  testpmd: %s", line);
	fclose(f);
}

static void dump_log(void)
{
	char logp[512];
	pmd_log_path(logp, sizeof(logp));
	FILE *f = fopen(logp, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "  testpmd: %s", line);
	fclose(f);
}

/*
 * Stop testpmd: EOF on its stdin makes it print its counters (kept in
 * its log) and exit; whether it did within 5 s or not, SIGKILL by PID
 * (not reaped yet: the PID is still ours), then reap.
 */
static void pmd_stop(void)
{
	if (pmd_pid <= 0)
		return;
	int pidfd = (int)syscall(SYS_pidfd_open, pmd_pid, 0);
	if (pmd_stdin >= 0)
		close(pmd_stdin);
	pmd_stdin = -1;
	if (pidfd >= 0) {
		struct pollfd pf = {.fd = pidfd, .events = POLLIN};
		while (poll(&pf, 1, 5000) < 0 && errno == EINTR)
			;
		close(pidfd);
	}
	kill(pmd_pid, SIGKILL);
	int st;
	while (waitpid(pmd_pid, &st, 0) < 0 && errno == EINTR)
		;
	pmd_pid = -1;
	/* the runtime dir --file-prefix made (empty with --no-shconf) */
	char run[512];
	snprintf(run, sizeof(run), "/var/run/dpdk/%s", prefix);
	if (rmdir(run) < 0 && errno != ENOENT)
		fprintf(stderr, "could not remove %s: %s\n", run,
			strerror(errno));
}

/* The log stays for a failed test. */
static void pmd_log_remove(void)
{
	char logp[512];
	if (__atomic_load_n(&test_failures, __ATOMIC_RELAXED))
		return;
	pmd_log_path(logp, sizeof(logp));
	unlink(logp);
}

static void stop_at_exit(void)
{
	pmd_stop();
}

/*
 * Start testpmd serving a vhost-user net device with pairs queue pairs at
 * sock, forwarding mode fwd; returns once the socket exists (inotify on
 * the temp dir, a pidfd for an early death) or fails the test.
 */
static void pmd_start(const char *sock, unsigned pairs, const char *fwd,
		      unsigned tag)
{
	snprintf(prefix, sizeof(prefix), "vio-dpdk-%d-%u", (int)getpid(), tag);
	char vdev[400], q[96], rxq[32], txq[32], fm[64], logp[512];
	snprintf(vdev, sizeof(vdev), "net_vhost0,iface=%s,queues=%u", sock,
		 pairs);
	snprintf(q, sizeof(q), "--file-prefix=%s", prefix);
	snprintf(rxq, sizeof(rxq), "--rxq=%u", pairs);
	snprintf(txq, sizeof(txq), "--txq=%u", pairs);
	snprintf(fm, sizeof(fm), "--forward-mode=%s", fwd);
	pmd_log_path(logp, sizeof(logp));

	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	REQUIRE(in >= 0);
	REQUIRE(inotify_add_watch(in, tmpdir, IN_CREATE) >= 0);
	int pfd[2];
	REQUIRE(pipe2(pfd, O_CLOEXEC) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int fd =
		    open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		dup2(pfd[0], 0);
		/* dies with the test, whatever kills it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* lcore 0 waits on stdin, lcore 1 forwards; both float over
		 * the two CPUs (a shared machine) */
		execl(pmd_bin, pmd_bin, "--no-huge", "--no-pci", "--lcores",
		      "(0,1)@(0-1)", "--no-shconf", "--no-telemetry", q, "-m",
		      "256", "--vdev", vdev, "--log-level=lib.eal:warning",
		      "--", fm, "--auto-start", rxq, txq,
		      "--port-topology=loop", "--total-num-mbufs=16384",
		      "--nb-cores=1", (char *)NULL);
		_exit(127);
	}
	pmd_pid = pid;
	close(pfd[0]);
	pmd_stdin = pfd[1];

	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t deadline = now_ns() + 30000000000ull;
	struct stat stt;
	bool up = false, died = false;
	for (;;) {
		if (stat(sock, &stt) == 0 && S_ISSOCK(stt.st_mode)) {
			up = true;
			break;
		}
		uint64_t now = now_ns();
		if (now >= deadline)
			break;
		struct pollfd pf[2] = {{.fd = in, .events = POLLIN},
				       {.fd = pidfd, .events = POLLIN}};
		int r = poll(pf, pidfd >= 0 ? 2 : 1,
			     (int)((deadline - now) / 1000000u) + 1);
		if (r > 0 && (pf[1].revents & POLLIN)) {
			died = true;
			break;
		}
		char ev[4096];
		while (read(in, ev, sizeof(ev)) > 0)
			;
	}
	if (pidfd >= 0)
		close(pidfd);
	close(in);
	if (!up) {
		fprintf(stderr, "testpmd %s (its log follows)\n",
			died ? "exited before its socket appeared"
			     : "made no socket in 30 s");
		dump_log();
		exit(1);
	}
}

/* ---- the driver side ---- */

struct client {
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_frontend *f;
	struct vio_net *n;
};

static void client_open(struct client *c, const char *sock, unsigned pairs,
			const struct vio_net_driver_opts *o)
{
	memset(c, 0, sizeof(*c));
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	c->drv = vio_net_driver_new(o);
	REQUIRE(c->mem && c->bus && c->drv);
	REQUIRE(vio_bus_register(c->bus, c->drv) == 0);
	struct vio_frontend_opts fc = {
	    .mem = c->mem,
	    .device_id = VIRTIO_ID_NET,
	    .num_queues = 2 * pairs,
	    .queue_size = 1024,
	    .connect_timeout_ms = 20000, /* testpmd may still be starting */
	    .reply_timeout_ms = 10000,
	};
	char err[256] = "";
	c->f = vio_bus_connect(c->bus, sock, &fc, err, sizeof(err));
	if (!c->f) {
		fprintf(stderr, "connect to testpmd: %s\n", err);
		dump_log();
	}
	REQUIRE(c->f);
	c->n = vio_net_from_vdev(vio_frontend_vdev(c->f));
	REQUIRE(c->n);
}

static void client_close(struct client *c)
{
	if (c->f) {
		vio_bus_remove(c->bus, vio_frontend_vdev(c->f));
		vio_frontend_free(c->f);
	}
	vio_bus_unregister(c->bus, c->drv);
	vio_bus_free(c->bus);
	vio_net_driver_free(c->drv);
	vio_mem_free(c->mem);
	memset(c, 0, sizeof(*c));
}

/* ---- frames ---- */

static const uint8_t peer_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
#define ETHERTYPE_LOCAL 0x88b5 /* IEEE local experimental */
#define MAGIC 0x76696f21u      /* "vio!" */

/* Frame seq of pair qp: dst peer, src ours, local ethertype, then magic,
 * pair, seq, length, and a pattern of seq and offset. */
static uint32_t frame_len(uint32_t seq)
{
	static const uint32_t lens[] = {60, 64, 128, 1514, 333, 1000, 61};
	return lens[seq % (sizeof(lens) / sizeof(lens[0]))];
}

static void make_frame(uint8_t *f, uint32_t len, const uint8_t *mac,
		       unsigned qp, uint32_t seq)
{
	memcpy(f, peer_mac, 6);
	memcpy(f + 6, mac, 6);
	f[12] = ETHERTYPE_LOCAL >> 8;
	f[13] = ETHERTYPE_LOCAL & 0xff;
	uint32_t h[4] = {MAGIC, qp, seq, len};
	memcpy(f + 14, h, sizeof(h));
	for (uint32_t i = 30; i < len; i++)
		f[i] = (uint8_t)(seq * 7u + i);
}

/* A frame that came back: the right one, intact.  false with a reason. */
static bool check_frame(const struct vio_net_pkt *p, const uint8_t *mac,
			unsigned qp, uint32_t want_seq, bool swapped, char *why,
			size_t wlen)
{
	const uint8_t *f = p->data;
	uint32_t len = frame_len(want_seq);
	if (p->len != len) {
		snprintf(why, wlen, "length %u, sent %u", p->len, len);
		return false;
	}
	const uint8_t *dst = swapped ? mac : peer_mac;
	const uint8_t *src = swapped ? peer_mac : mac;
	if (memcmp(f, dst, 6) || memcmp(f + 6, src, 6)) {
		snprintf(why, wlen, "MAC addresses not as expected");
		return false;
	}
	uint32_t h[4];
	memcpy(h, f + 14, sizeof(h));
	if (h[0] != MAGIC || h[1] != qp || h[2] != want_seq || h[3] != len) {
		snprintf(why, wlen,
			 "header magic %#x pair %u seq %u len %u, expected "
			 "pair %u seq %u",
			 h[0], h[1], h[2], h[3], qp, want_seq);
		return false;
	}
	for (uint32_t i = 30; i < len; i++)
		if (f[i] != (uint8_t)(want_seq * 7u + i)) {
			snprintf(why, wlen, "payload byte %u differs", i);
			return false;
		}
	return true;
}

/*
 * Send total frames on every pair in windows of at most win outstanding,
 * receive them all back and check each.  Returns frames that came back
 * intact.
 */
/* frames that came back in more than one receive buffer */
static uint64_t merged;

#define WARMUP_SEQ 0xffffffffu

/* A warm-up frame (seq WARMUP_SEQ) that came back, late or not. */
static bool is_warmup(const struct vio_net_pkt *p)
{
	uint32_t h[3];
	if (p->len < 26)
		return false;
	memcpy(h, (const uint8_t *)p->data + 14, sizeof(h));
	return h[0] == MAGIC && h[2] == WARMUP_SEQ;
}

/*
 * testpmd starts forwarding only after its port's link is up, which is
 * when this driver connects, and first flushes its receive queues (its
 * flush_fwd_rx_queues: frames read and freed, not counted): frames sent
 * in that moment are gone.  So a warm-up frame per pair, again every
 * 100 ms, until one comes back (up to 20 s); warm-up frames that come
 * back later are skipped.
 */
static void warm_up(struct vio_net *n, unsigned pairs)
{
	struct vio_net_info in;
	vio_net_get_info(n, &in);
	uint8_t f[60];
	uint64_t deadline = now_ns() + 20000000000ull;
	for (unsigned qp = 0; qp < pairs; qp++) {
		make_frame(f, 60, in.mac, qp, WARMUP_SEQ);
		struct vio_net_pkt p = {.data = f, .len = 60}, rx[32];
		bool back = false;
		unsigned tries = 0;
		while (!back && now_ns() < deadline) {
			CHECK(vio_net_send(n, qp, &p, 1) >= 0);
			tries++;
			uint64_t until = now_ns() + 100000000u;
			while (!back && now_ns() < until) {
				int r = vio_net_recv(n, qp, rx, 32, 10);
				for (int i = 0; i < r; i++)
					back |= is_warmup(&rx[i]);
			}
		}
		if (!back)
			fprintf(stderr, "pair %u: no warm-up frame came back\n",
				qp);
		else if (tries > 1)
			fprintf(stderr,
				"  pair %u: warm-up frame back after %u "
				"tries\n",
				qp, tries);
		CHECK(back);
	}
}

static uint64_t exchange(struct vio_net *n, unsigned pairs, uint32_t total,
			 unsigned win, bool swapped)
{
	struct vio_net_info in;
	vio_net_get_info(n, &in);
	uint32_t sent[VIO_NET_MAX_PAIRS] = {0}, got[VIO_NET_MAX_PAIRS] = {0};
	uint8_t frames[32][1514];
	struct vio_net_pkt pk[32];
	uint64_t ok = 0;
	bool failed = false;
	uint64_t deadline = now_ns() + 60000000000ull;

	for (;;) {
		bool done = true;
		for (unsigned qp = 0; qp < pairs; qp++) {
			/* send up to the window */
			unsigned k = 0;
			while (k < 32 && sent[qp] + k < total &&
			       sent[qp] - got[qp] + k < win) {
				uint32_t seq = sent[qp] + k;
				make_frame(frames[k], frame_len(seq), in.mac,
					   qp, seq);
				pk[k] = (struct vio_net_pkt){
				    .data = frames[k], .len = frame_len(seq)};
				k++;
			}
			if (k) {
				int r = vio_net_send(n, qp, pk, k);
				if (r < 0) {
					fprintf(stderr, "pair %u: send: %s\n",
						qp, strerror(-r));
					failed = true;
					break;
				}
				sent[qp] += (uint32_t)r;
			}
			struct vio_net_pkt rx[32];
			int r = vio_net_recv(n, qp, rx, 32,
					     sent[qp] > got[qp] ? 10 : 0);
			if (r < 0) {
				fprintf(stderr, "pair %u: recv: %s\n", qp,
					strerror(-r));
				failed = true;
				break;
			}
			for (int i = 0; i < r && !failed; i++) {
				char why[200];
				if (is_warmup(&rx[i]))
					continue;
				if (!check_frame(&rx[i], in.mac, qp, got[qp],
						 swapped, why, sizeof(why))) {
					fprintf(stderr,
						"pair %u frame %u: %s\n", qp,
						got[qp], why);
					failed = true;
					break;
				}
				got[qp]++;
				ok++;
				merged += le16toh(rx[i].hdr.num_buffers) > 1;
			}
			if (got[qp] < total)
				done = false;
		}
		if (done || failed)
			break;
		if (now_ns() > deadline) {
			for (unsigned qp = 0; qp < pairs; qp++)
				fprintf(stderr,
					"pair %u: sent %u, %u came back "
					"(timed out)\n",
					qp, sent[qp], got[qp]);
			break;
		}
	}
	CHECK(!failed);
	return ok;
}

struct tcase {
	const char *name;
	unsigned pairs;
	bool packed;
	bool mrg;
	uint32_t rx_buf; /* mergeable buffer size: small splits frames */
	const char *fwd;
};

static void run_case(const struct tcase *t, unsigned tag)
{
	char sock[300];
	snprintf(sock, sizeof(sock), "%s/vhost%u.sock", tmpdir, tag);
	fprintf(stderr, "case %s: %u pair(s), %s ring, %s, %s\n", t->name,
		t->pairs, t->packed ? "packed" : "split",
		t->mrg ? "mergeable buffers" : "no MRG_RXBUF", t->fwd);
	pmd_start(sock, t->pairs, t->fwd, tag);

	struct vio_net_driver_opts o = {
	    .num_pairs = t->pairs,
	    .no_packed = !t->packed,
	    .no_mrg_rxbuf = !t->mrg,
	    .rx_buf_size = t->rx_buf,
	    /* DPDK's vhost library does not serve the control queue (QEMU
	     * and virtio-user answer it in the frontend): pairs are fixed */
	    .no_ctrl_vq = true,
	};
	struct client c;
	client_open(&c, sock, t->pairs, &o);
	struct vio_net_info in;
	vio_net_get_info(c.n, &in);
	CHECK_EQ(in.pairs, t->pairs);
	CHECK_EQ(in.packed, t->packed);
	CHECK_EQ(in.mrg_rxbuf, t->mrg);
	CHECK(!in.ctrl_vq);
	CHECK(in.link_up);
	CHECK(vio_net_has_feature(c.n, VIRTIO_F_VERSION_1));
	CHECK(!(in.mac[0] & 1)); /* a unicast address (random: no MAC) */
	CHECK_EQ(vio_net_set_promisc(c.n, true), -EOPNOTSUPP);

	warm_up(c.n, t->pairs);
	const uint32_t total = 3000;
	merged = 0;
	uint64_t ok =
	    exchange(c.n, t->pairs, total, 256, strcmp(t->fwd, "macswap") == 0);
	CHECK_EQ(ok, (uint64_t)total * t->pairs);
	for (unsigned qp = 0; qp < t->pairs; qp++) {
		struct vio_net_drv_stats s;
		CHECK_EQ(vio_net_stats(c.n, qp, &s), 0);
		/* and the warm-up frames */
		CHECK(s.tx_packets >= total + 1);
		CHECK(s.rx_packets >= total + 1);
		CHECK_EQ(s.rx_errors, 0);
		CHECK(vio_net_tx_reclaim(c.n, qp) >= 0);
	}
	/* a pair beyond those set up */
	struct vio_net_pkt p;
	CHECK_EQ(vio_net_recv(c.n, t->pairs, &p, 1, 0), -ENXIO);
	/* 512-byte buffers: the 1514-byte frames took 3 */
	if (t->rx_buf && t->mrg)
		CHECK(merged > 0);
	fprintf(stderr, "  %llu frames came back intact (%llu merged)\n",
		(unsigned long long)ok, (unsigned long long)merged);
	client_close(&c);
	pmd_stop();
	dump_counters();
	pmd_log_remove();
	unlink(sock);
}

/* ---- --bench ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* 64-byte frames through macswap for secs seconds: Mpps out and back. */
static void bench_run(struct vio_net *n, double secs, double *tx_mpps,
		      double *rx_mpps)
{
	uint8_t frame[64];
	struct vio_net_info in;
	vio_net_get_info(n, &in);
	make_frame(frame, 64, in.mac, 0, 0);
	struct vio_net_pkt pk[32], rx[64];
	for (unsigned i = 0; i < 32; i++)
		pk[i] = (struct vio_net_pkt){.data = frame, .len = 64};
	uint64_t sent = 0, got = 0;
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
	for (unsigned it = 0; (++it & 63) || now_ns() < end;) {
		/* keep at most 896 in flight: no drops at the receiveq (1024
		 * buffers, 64 of them held by the last recv) */
		if (sent - got < 896) {
			int r = vio_net_send(n, 0, pk, 32);
			if (r > 0)
				sent += (uint64_t)r;
		}
		/* the window full: sleep on the interrupt rather than spin
		 * (testpmd may need this CPU) */
		int r = vio_net_recv(n, 0, rx, 64, sent - got < 896 ? 0 : 1);
		if (r > 0)
			got += (uint64_t)r;
	}
	uint64_t drain = now_ns() + 1000000000u;
	while (got < sent && now_ns() < drain) {
		int r = vio_net_recv(n, 0, rx, 64, 10);
		if (r > 0)
			got += (uint64_t)r;
	}
	double dt = (double)(now_ns() - t0) / 1e9;
	*tx_mpps = (double)sent / dt / 1e6;
	*rx_mpps = (double)got / dt / 1e6;
}

static int bench(double secs)
{
	const struct {
		const char *name;
		bool packed;
	} rows[] = {{"split", false}, {"packed", true}};
	for (unsigned row = 0; row < 2; row++) {
		char sock[300];
		snprintf(sock, sizeof(sock), "%s/bench%u.sock", tmpdir, row);
		pmd_start(sock, 1, "macswap", 100 + row);
		struct vio_net_driver_opts o = {.num_pairs = 1,
						.no_ctrl_vq = true,
						.no_packed = !rows[row].packed};
		struct client c;
		client_open(&c, sock, 1, &o);
		warm_up(c.n, 1);
		double tx[3], rx[3];
		for (int i = 0; i < 3; i++) {
			bench_run(c.n, secs, &tx[i], &rx[i]);
			printf("%s run %d: sent %.2f Mpps, received %.2f "
			       "Mpps\n",
			       rows[row].name, i + 1, tx[i], rx[i]);
		}
		qsort(tx, 3, sizeof(double), cmp_double);
		qsort(rx, 3, sizeof(double), cmp_double);
		printf("%s median: vio driver -> testpmd macswap -> vio "
		       "driver, 64 B: sent %.2f Mpps, received %.2f Mpps\n",
		       rows[row].name, tx[1], rx[1]);
		client_close(&c);
		pmd_stop();
		pmd_log_remove();
		unlink(sock);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (!find_testpmd()) {
		fprintf(stderr,
			"SKIP: dpdk-testpmd is not installed: the interop "
			"test of vio's virtio-net driver against DPDK's "
			"vhost-user device did NOT run (Debian: apt-get "
			"install dpdk; scripts/deps.sh check installs it)\n");
		return 77;
	}
	bool do_bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
	double secs = do_bench && argc > 2 ? atof(argv[2]) : 3.0;
	if (secs <= 0 || secs > 30)
		secs = 3.0;
	signal(SIGALRM, watchdog);
	signal(SIGTERM, watchdog);
	signal(SIGINT, watchdog);
	signal(SIGPIPE, SIG_IGN);
	alarm(do_bench ? 60 + (unsigned)(secs * 8) : 170);
	atexit(stop_at_exit);
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/vio-dpdk-XXXXXX",
		 base && *base ? base : "/tmp");
	REQUIRE(mkdtemp(tmpdir));
	fprintf(stderr, "using %s, sockets in %s\n", pmd_bin, tmpdir);

	int rc = 0;
	if (do_bench) {
		rc = bench(secs);
	} else {
		static const struct tcase cases[] = {
		    {"split-1", 1, false, true, 0, "macswap"},
		    {"split-2-io-merge", 2, false, true, 512, "io"},
		    {"split-2-nomrg", 2, false, false, 0, "macswap"},
		    {"packed-1-merge", 1, true, true, 512, "macswap"},
		    {"packed-2", 2, true, true, 0, "macswap"},
		    {"packed-1-nomrg-io", 1, true, false, 0, "io"},
		};
		for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			run_case(&cases[i], i);
		rc = test_result("dpdk_vhost");
	}
	if (rmdir(tmpdir) < 0)
		fprintf(stderr, "testpmd logs kept in %s\n", tmpdir);
	return rc;
}
