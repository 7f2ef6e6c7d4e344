/* SPDX-License-Identifier: MIT */
/*
 * vio serve: what its device types share (tools/serve_common.c).  blk and
 * rng (tools/cmd_serve.c), net and switch (tools/serve_net.c) each make
 * their device and their workers, then use these to put one or several
 * vhost-user backends on sockets and serve them until a signal:
 *
 *   serve_signals       SIGINT, SIGTERM, SIGHUP, SIGUSR1 through a signalfd
 *                       (blocked before any worker starts: they inherit it)
 *   serve_sock_start    listen on --socket, connect to it (--client), or take
 *                       the socket systemd passed; a clear error each way
 *   serve_ready         readiness once every socket accepts: --pidfile and
 *                       READY=1
 *   serve_loop          the control thread: accept, dispatch, --client
 *                       reconnect with a bounded backoff, --once, signals,
 *                       a periodic tick; one loop for every socket
 */
#ifndef VIO_TOOLS_SERVE_COMMON_H
#define VIO_TOOLS_SERVE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "ready.h"

struct vio_backend;

/* --client reconnect state of one socket (serve_common.c). */
struct serve_reconnect {
	bool on;	      /* waiting for the frontend to come back */
	int delay_ms;	      /* between the last try and the next */
	unsigned long n;      /* failed tries so far */
	struct timespec t;    /* when the connection ended */
	struct timespec next; /* when the next try is due */
};

/* One backend on one socket. */
struct serve_sock {
	struct vio_backend *be;
	const char *path;    /* --socket; NULL: the socket systemd passed */
	char where[160];     /* for messages: the path, or "fd 3 from ..." */
	unsigned long conns; /* connections so far (the backend's number) */
	bool was_connected;
	struct serve_reconnect rc;
};

/* SIGBUS guard for guest memory a frontend truncates (vio/mem.h): before
 * any memory is mapped.  0, or TOOL_EXIT_FAIL after saying why. */
int serve_sigbus_guard(void);

/*
 * Block SIGINT, SIGTERM, SIGHUP and SIGUSR1 in this thread (workers made
 * after inherit the mask), ignore SIGPIPE, and return a signalfd for them;
 * -1 after saying why.
 */
int serve_signals(void);

/*
 * LISTEN_FDS (tools/ready.h), read before the options so that the
 * variables are gone whatever happens: *nfds is 0 or 1, and where says
 * "fd 3 from systemd (NAME)".  0, or TOOL_EXIT_FAIL after saying why
 * (malformed, more than one socket).
 */
int serve_activation(int nfds, const char *fdname, char *where, size_t len);

/*
 * Put s->be on its socket: the one systemd passed (inherited), a
 * connection to s->path (client), or a listener there.  0, or
 * TOOL_EXIT_FAIL after saying why (in use, not a socket, path too long).
 */
int serve_sock_start(struct serve_sock *s, bool client, bool inherited);

/*
 * Ready (every socket accepts connections, or is connected): write the
 * pidfile (NULL: none) and tell the service manager READY=1 with status.
 * 0, or TOOL_EXIT_FAIL after saying why.
 */
int serve_ready(struct tool_pidfile *pf, const char *pidfile,
		const char *status);

/* sd_notify (tools/ready.h); a failure is said once. */
void serve_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1 unless serve_loop sent it already. */
void serve_stopping(void);

struct serve_loop_ops {
	void (*usr1)(void *arg); /* SIGUSR1; NULL: ignored */
	void (*hup)(void *arg);	 /* SIGHUP; NULL: SIGHUP stops */
	void (*tick)(void *arg); /* every tick_ms (0: never) */
	unsigned tick_ms;
	void *arg;
};

/*
 * Serve socks[0..n) until SIGINT or SIGTERM (TOOL_EXIT_OK), the end of a
 * connection with once (TOOL_EXIT_OK), or a local error (TOOL_EXIT_FAIL,
 * said).  A frontend that goes away: listening, the next is accepted;
 * client, the path is connected to again every 50 ms .. 2 s until it is
 * back.  Log lines "vio serve: connection N: frontend attached" and
 * "... ended" (prefixed with the socket when n > 1).
 */
int serve_loop(struct serve_sock *socks, unsigned n, int sfd, bool client,
	       bool once, const struct serve_loop_ops *ops);

/* Write all of buf to fd (one write where it can: lines not interleaved
 * with the workers' log lines). */
void serve_write_all(int fd, const char *buf, size_t len);

/*
 * vio serve net / vio serve switch (tools/serve_net.c): argv as cmd_serve
 * got it, type "net" or "switch", the sockets systemd passed (nfds,
 * fdname: tools/ready.h).  An exit code.
 */
int serve_net_main(int argc, char **argv, const char *type, int nfds,
		   const char *fdname);

#endif
