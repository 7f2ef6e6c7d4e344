/* SPDX-License-Identifier: MIT */
/*
 * vio/log.h - where the library's log lines go.
 *
 * vio reports what a caller cannot see from a return value (a peer that
 * broke the protocol, a connection that came or went, a queue that broke)
 * as one line of text with a level.  By default a line of level INFO or
 * more severe goes to stderr as "vio: <msg>\n".  A program takes them over
 * with a handler:
 *
 *     static void to_syslog(void *opaque, enum vio_log_level lvl,
 *                           const char *msg)
 *     {
 *             syslog(lvl == VIO_LOG_ERROR ? LOG_ERR : LOG_INFO, "%s", msg);
 *     }
 *     vio_log_set_handler(to_syslog, NULL);
 *     vio_log_set_level(VIO_LOG_WARN);     // drop INFO and DEBUG lines
 *
 * Silence: a handler that does nothing.  VIO_LOG=quiet in the environment
 * silences the default handler; VIO_LOG=error|warn|info|debug sets the
 * initial level (read once, at the first line).
 *
 * The handler:
 * - is called from whichever thread logs: the caller's thread, the thread
 *   that runs vio_backend_dispatch, a queue worker (vio/run.h), several of
 *   them at once.  It must be thread-safe, and must not call into vio
 *   (neither log functions nor vio_log_set_handler: that deadlocks).
 * - gets msg without a trailing newline, at most VIO_LOG_MSG_MAX - 1 bytes
 *   (longer lines are cut), valid only during the call.
 * - sees lines after rate limiting: errors caused by a peer are limited
 *   per source (a queue, a connection) to a few lines a second, and the
 *   count of lines dropped comes with the next line let through
 *   ("(N similar messages suppressed)", same level).  Lines above the
 *   current level are dropped before that, and never formatted.
 * - does not change errno as the caller of the vio function sees it
 *   (errno is saved around the call).
 * - is process-wide, as the log is: one handler and one level for every
 *   vio object in the process.
 */
#ifndef VIO_LOG_H
#define VIO_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Levels, most severe first: a level lets through itself and those above. */
enum vio_log_level {
	/* vio could not do what it was asked, for a local reason (a thread,
	 * an fd or memory it could not get; a caller's misuse). */
	VIO_LOG_ERROR = 0,
	/* Something outside went wrong and vio coped: a peer broke the
	 * protocol (its queue or connection was ended), a fallback was
	 * taken. */
	VIO_LOG_WARN = 1,
	/* Normal events worth a line: a frontend connected or left. */
	VIO_LOG_INFO = 2,
	/* Detail for debugging vio or a peer. */
	VIO_LOG_DEBUG = 3,
};

/* Longest message handed to a handler, with its terminating NUL. */
#define VIO_LOG_MSG_MAX 512

typedef void vio_log_fn(void *opaque, enum vio_log_level level,
			const char *msg);

/*
 * Send every line (at or above the level) to fn(opaque, level, msg); NULL
 * restores the default (stderr, "vio: <msg>\n", one write per line).
 * When this returns, no call of the previous handler is still running,
 * so its opaque may be freed.  Any thread.
 */
void vio_log_set_handler(vio_log_fn *fn, void *opaque);

/* Drop lines less severe than max (a larger enum value).  The default is
 * VIO_LOG_INFO (or $VIO_LOG).  Any thread. */
void vio_log_set_level(enum vio_log_level max);
enum vio_log_level vio_log_get_level(void);

/* "error", "warn", "info", "debug" ("?" for anything else). */
const char *vio_log_level_name(enum vio_log_level level);

#ifdef __cplusplus
}
#endif
#endif
