/* SPDX-License-Identifier: MIT */
/*
 * Readiness signals of a long-running subcommand (vio serve) for whoever
 * started it: a pidfile and systemd's notification socket.  Both are sent
 * only once the service really accepts clients, so that a script or a
 * service manager that waits on them never connects too early.
 */
#ifndef VIO_TOOLS_READY_H
#define VIO_TOOLS_READY_H

#include <stdbool.h>
#include <sys/types.h>

struct tool_pidfile {
	const char *path; /* NULL: none written */
	dev_t dev;	  /* the file this process wrote */
	ino_t ino;
};

/*
 * Write this process's PID ("%d\n") to path atomically: a temporary file
 * beside it, then rename(), so that a reader sees either no file or the
 * whole PID.  An existing file is replaced.  0 or negative errno.
 */
int tool_pidfile_write(struct tool_pidfile *pf, const char *path);
/* Remove the pidfile, if it is still the one this process wrote. */
void tool_pidfile_remove(struct tool_pidfile *pf);

/*
 * sd_notify(3) without libsystemd: when NOTIFY_SOCKET names a Unix
 * datagram socket ("/path", or "@name" for the abstract namespace), send
 * it one datagram of newline-separated assignments ("READY=1\nSTATUS=..").
 * 0 when sent or when NOTIFY_SOCKET is unset; negative errno otherwise
 * (-EAFNOSUPPORT: an address kind other than these two).
 */
int tool_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The first fd a service manager passes (sd_listen_fds(3)). */
#define TOOL_LISTEN_FDS_START 3

/*
 * sd_listen_fds(3) without libsystemd: the sockets systemd (or
 * systemd-socket-activate) passed, as fds TOOL_LISTEN_FDS_START and up.
 * Only when LISTEN_PID is this process (the variables may have been
 * inherited by a child they were not meant for).  LISTEN_PID, LISTEN_FDS
 * and LISTEN_FDNAMES are removed from the environment in every case, so
 * no child of ours takes them for its own; the fds get FD_CLOEXEC.  The
 * first fd's name (LISTEN_FDNAMES, ":"-separated; "" if none) goes to
 * name.  Returns how many fds were passed (0: none, or not for us), or
 * -EINVAL when LISTEN_FDS or LISTEN_PID is malformed, -EBADF when one of
 * the fds is not open.
 */
int tool_listen_fds(char *name, size_t namelen);

#endif
