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

#endif
