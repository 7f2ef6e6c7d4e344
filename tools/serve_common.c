/* SPDX-License-Identifier: MIT */
/*
 * vio serve: sockets, readiness, signals and the control loop that every
 * device type shares (tools/serve_common.h).
 *
 * Frontend gone: listening, the next one is accepted (a restarted QEMU
 * with reconnect=1); --client connects again to the same path, with a
 * bounded backoff, until the frontend is back (QEMU server=on restarted);
 * --once exits instead, in both modes.
 *
 * Readiness: the pidfile and systemd's READY=1 are sent only once every
 * socket accepts connections (vio_backend_listen returned with the socket
 * listening), so a script that waits on them never gets ECONNREFUSED.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <vio/mem.h>
#include <vio/vhost_user.h>

#include "serve_common.h"
#include "util.h"

static bool stopping_sent; /* STOPPING=1 went out */

void serve_notify(const char *fmt, ...)
{
	static bool warned;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int r = tool_notify("%s", msg);
	if (r && !warned) {
		warned = true;
		tool_err("NOTIFY_SOCKET %s: %s", getenv("NOTIFY_SOCKET"),
			 strerror(-r));
	}
}

void serve_stopping(void)
{
	if (!stopping_sent)
		serve_notify("STOPPING=1\nSTATUS=exiting");
	stopping_sent = true;
}

void serve_write_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w <= 0 && errno != EINTR)
			break;
		if (w > 0)
			off += (size_t)w;
	}
}

int serve_sigbus_guard(void)
{
	/* a frontend that truncates its memory file ends its connection, not
	 * this process (vio/mem.h); installed before any guest memory is
	 * mapped */
	int r = vio_mem_sigbus_guard_install();
	if (r) {
		tool_err("cannot install the SIGBUS guard for guest memory: %s",
			 strerror(-r));
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

int serve_signals(void)
{
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGUSR1); /* counters, not an exit */
	signal(SIGPIPE, SIG_IGN);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	if (sfd < 0)
		tool_err("signalfd: %s", strerror(errno));
	return sfd;
}

int serve_activation(int nfds, const char *fdname, char *where, size_t len)
{
	if (nfds < 0) {
		tool_err("LISTEN_FDS/LISTEN_PID from the service manager: %s",
			 nfds == -EBADF ? "a passed fd is not open"
					: "malformed");
		return TOOL_EXIT_FAIL;
	}
	if (nfds > 1) {
		tool_err("systemd passed %d sockets (LISTEN_FDS); vio serve "
			 "serves one: give the .socket unit one ListenStream=",
			 nfds);
		return TOOL_EXIT_FAIL;
	}
	if (nfds == 1)
		snprintf(where, len, "fd %d from systemd%s%s%s",
			 TOOL_LISTEN_FDS_START, fdname[0] ? " (" : "", fdname,
			 fdname[0] ? ")" : "");
	return 0;
}

/* Serve the socket systemd passed (fd 3): why it cannot be, or 0. */
static int listen_inherited(struct vio_backend *be, const char *where)
{
	int r = vio_backend_listen_fd(be, TOOL_LISTEN_FDS_START);
	if (r == -ENOTSOCK)
		tool_err("%s: not a socket", where);
	else if (r == -EAFNOSUPPORT)
		tool_err("%s: not a Unix socket (ListenStream= takes a path)",
			 where);
	else if (r == -EPROTOTYPE)
		tool_err("%s: not a stream socket (ListenStream=)", where);
	else if (r == -EINVAL)
		tool_err("%s: not listening (the .socket unit must not say "
			 "Accept=yes)",
			 where);
	else if (r)
		tool_err("%s: %s", where, strerror(-r));
	return r;
}

int serve_sock_start(struct serve_sock *s, bool client, bool inherited)
{
	if (inherited)
		return listen_inherited(s->be, s->where) ? TOOL_EXIT_FAIL : 0;
	if (!s->where[0])
		snprintf(s->where, sizeof(s->where), "%s", s->path);
	int r = client ? vio_backend_connect(s->be, s->path)
		       : vio_backend_listen(s->be, s->path);
	if (!r)
		return 0;
	if (r == -EADDRINUSE)
		tool_err("%s: socket in use by another process", s->path);
	else if (r == -EEXIST)
		tool_err("%s: exists and is not a socket (not replacing it)",
			 s->path);
	else if (r == -ENAMETOOLONG)
		tool_err("%s: socket path too long (at most 107 bytes)",
			 s->path);
	else
		tool_err("%s %s: %s", client ? "connect" : "listen", s->path,
			 strerror(-r));
	return TOOL_EXIT_FAIL;
}

int serve_ready(struct tool_pidfile *pf, const char *pidfile,
		const char *status)
{
	int r;
	if (pidfile && (r = tool_pidfile_write(pf, pidfile))) {
		tool_err("--pidfile %s: %s", pidfile, strerror(-r));
		return TOOL_EXIT_FAIL;
	}
	serve_notify("READY=1\nSTATUS=%s", status);
	return 0;
}

/*
 * --client reconnect: the frontend (QEMU -chardev socket,server=on) went
 * away; connect again to the same path until it is back.  Tries are
 * spaced by a backoff that doubles from RECONNECT_MIN_MS to
 * RECONNECT_MAX_MS (bounded: a frontend that returns is found within
 * RECONNECT_MAX_MS), forever, unless --once; signals are still served
 * between tries (SIGTERM ends the wait at once).  A path that cannot work
 * at all (too long) ends it.
 */
#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 2000

static int64_t ms_between(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000 +
	       (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* ms until t (0: now), capped at max_ms: a poll timeout.  A deadline,
 * not a plain timeout, so that signals (SIGUSR1) cannot put tries off. */
static int ms_until(const struct timespec *t, int max_ms)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = ms_between(&now, t);
	return ms <= 0 ? 0 : ms > max_ms ? max_ms : (int)ms;
}

static void add_ms(struct timespec *t, long ms)
{
	t->tv_nsec += (ms % 1000) * 1000000;
	t->tv_sec += ms / 1000 + t->tv_nsec / 1000000000;
	t->tv_nsec %= 1000000000;
}

static void reconnect_after(struct serve_reconnect *rc, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, &rc->next);
	add_ms(&rc->next, ms);
}

static void reconnect_begin(struct serve_reconnect *rc, const char *where)
{
	*rc =
	    (struct serve_reconnect){.on = true, .delay_ms = RECONNECT_MIN_MS};
	clock_gettime(CLOCK_MONOTONIC, &rc->t);
	reconnect_after(rc, rc->delay_ms);
	fprintf(stderr,
		"vio serve: %s: frontend gone; connecting again (every "
		"%d..%d ms) until it is back\n",
		where, RECONNECT_MIN_MS, RECONNECT_MAX_MS);
}

/* One try.  0: connected again; -EAGAIN: not yet; else a lasting error. */
static int reconnect_try(struct serve_sock *s)
{
	struct serve_reconnect *rc = &s->rc;
	int r = vio_backend_connect(s->be, s->path);
	if (r == -ENAMETOOLONG || r == -EINVAL) {
		tool_err("connect %s: %s", s->path, strerror(-r));
		return r;
	}
	if (r) {
		/* the first failure, then one line a minute at most */
		rc->n++;
		unsigned long every = 60000 / RECONNECT_MAX_MS;
		if (rc->n == 1 || rc->n % every == 0)
			fprintf(stderr,
				"vio serve: connect %s: %s (try %lu; still "
				"trying)\n",
				s->path, strerror(-r), rc->n);
		rc->delay_ms = rc->delay_ms * 2 > RECONNECT_MAX_MS
				   ? RECONNECT_MAX_MS
				   : rc->delay_ms * 2;
		reconnect_after(rc, rc->delay_ms);
		return -EAGAIN;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double sec = (double)ms_between(&rc->t, &now) / 1000;
	fprintf(stderr,
		"vio serve: %s: connected again after %.1f s (%lu failed "
		"tr%s)\n",
		s->path, sec, rc->n, rc->n == 1 ? "y" : "ies");
	rc->on = false;
	return 0;
}

#define MAX_SOCKS 64

/* "PATH: " before a line when several sockets are served */
static const char *prefix(const struct serve_sock *s, unsigned n, char *buf,
			  size_t len)
{
	if (n == 1)
		return "";
	snprintf(buf, len, "%s: ", s->where);
	return buf;
}

static void note_attached(struct serve_sock *s, unsigned n)
{
	char pb[200];
	bool conn = vio_backend_connected(s->be);
	if (conn && !s->was_connected) {
		/* the backend's number, which its log lines carry */
		s->conns = vio_backend_connections(s->be);
		fprintf(stderr,
			"vio serve: %sconnection %lu: frontend attached\n",
			prefix(s, n, pb, sizeof(pb)), s->conns);
		serve_notify("STATUS=%sconnection %lu: frontend attached "
			     "(%lu connection%s so far)",
			     prefix(s, n, pb, sizeof(pb)), s->conns, s->conns,
			     s->conns == 1 ? "" : "s");
	}
	s->was_connected = conn;
}

/* A signal: 1 to go on, 0 to stop. */
static int on_signal(int sfd, const struct serve_loop_ops *ops,
		     unsigned long conns)
{
	struct signalfd_siginfo si;
	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return 1;
	if (si.ssi_signo == SIGUSR1) {
		if (ops->usr1)
			ops->usr1(ops->arg);
		return 1;
	}
	if (si.ssi_signo == SIGHUP && ops->hup) {
		ops->hup(ops->arg);
		return 1;
	}
	const char *sig = strsignal((int)si.ssi_signo);
	fprintf(stderr,
		"vio serve: %s: finishing requests in flight, then exiting\n",
		sig);
	serve_notify("STOPPING=1\nSTATUS=%s: finishing requests in flight "
		     "(%lu connection%s served)",
		     sig, conns, conns == 1 ? "" : "s");
	stopping_sent = true;
	return 0;
}

int serve_loop(struct serve_sock *socks, unsigned n, int sfd, bool client,
	       bool once, const struct serve_loop_ops *ops)
{
	struct pollfd p[1 + MAX_SOCKS];
	struct timespec tick;
	if (n > MAX_SOCKS)
		n = MAX_SOCKS;
	if (ops->tick_ms) {
		clock_gettime(CLOCK_MONOTONIC, &tick);
		add_ms(&tick, ops->tick_ms);
	}
	for (;;) {
		unsigned long conns = 0;
		int timeout = -1;
		p[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		for (unsigned i = 0; i < n; i++) {
			struct serve_sock *s = &socks[i];
			note_attached(s, n);
			conns += s->conns;
			/* --client without a frontend: no fd (a negative fd
			 * is ignored), and a try whenever one is due */
			p[1 + i] = (struct pollfd){.fd = vio_backend_fd(s->be),
						   .events = POLLIN};
			if (s->rc.on) {
				int ms =
				    ms_until(&s->rc.next, RECONNECT_MAX_MS);
				if (timeout < 0 || ms < timeout)
					timeout = ms;
			}
		}
		if (ops->tick_ms) {
			int ms = ms_until(&tick, (int)ops->tick_ms);
			if (timeout < 0 || ms < timeout)
				timeout = ms;
		}
		int k = poll(p, 1 + n, timeout);
		if (k < 0 && errno != EINTR) {
			tool_err("poll: %s", strerror(errno));
			return TOOL_EXIT_FAIL;
		}
		if (ops->tick_ms && ms_until(&tick, 1) == 0) {
			ops->tick(ops->arg);
			clock_gettime(CLOCK_MONOTONIC, &tick);
			add_ms(&tick, ops->tick_ms);
		}
		bool tried = false;
		for (unsigned i = 0; i < n; i++) {
			struct serve_sock *s = &socks[i];
			if (!s->rc.on || ms_until(&s->rc.next, 1) != 0)
				continue;
			int r = reconnect_try(s);
			if (r && r != -EAGAIN)
				return TOOL_EXIT_FAIL;
			tried = true;
		}
		if (tried || k <= 0)
			continue; /* a pending signal is read next turn */
		if (p[0].revents && !on_signal(sfd, ops, conns))
			return TOOL_EXIT_OK;
		for (unsigned i = 0; i < n; i++) {
			struct serve_sock *s = &socks[i];
			if (!p[1 + i].revents || p[1 + i].fd < 0)
				continue;
			int r = vio_backend_dispatch(s->be);
			if (r == -ECONNRESET) {
				char pb[200];
				const char *pf = prefix(s, n, pb, sizeof(pb));
				fprintf(stderr,
					"vio serve: %sconnection %lu: ended\n",
					pf, s->conns);
				s->was_connected = false;
				if (once)
					return TOOL_EXIT_OK;
				if (client)
					reconnect_begin(&s->rc, s->where);
				serve_notify("STATUS=%sconnection %lu ended; "
					     "waiting for a frontend (%lu "
					     "connection%s so far)",
					     pf, s->conns, s->conns,
					     s->conns == 1 ? "" : "s");
			} else if (r < 0) {
				tool_err("serving %s: %s", s->where,
					 strerror(-r));
				return TOOL_EXIT_FAIL;
			}
		}
	}
}
