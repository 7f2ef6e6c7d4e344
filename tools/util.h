/* SPDX-License-Identifier: MIT */
/* Helpers shared by the vio command's subcommands (tools/cmd_*.c). */
#ifndef VIO_TOOLS_UTIL_H
#define VIO_TOOLS_UTIL_H

#include <stdint.h>

/* Exit codes of every subcommand. */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAIL 1  /* the work failed */
#define TOOL_EXIT_USAGE 2 /* bad command line */

/* "vio: <message>" on stderr. */
void tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "vio <cmd>: <message>" and a hint to --help on stderr; returns
 * TOOL_EXIT_USAGE. */
int tool_usage_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * getopt_long() returned '?' or ':' (call it with opterr = 0 and an
 * optstring starting with ':'): report the offending argument and return
 * TOOL_EXIT_USAGE.
 */
int tool_getopt_err(const char *cmd, int c, char **argv);

/*
 * A byte count: digits, then optionally K, M, G or T (binary: 1024^n),
 * optionally followed by "iB" or "B" ("64M", "4KiB", "100").  0, or
 * -EINVAL (not a size), -ERANGE (over UINT64_MAX).
 */
int tool_parse_size(const char *s, uint64_t *out);
/* A decimal integer in [min, max]: 0, -EINVAL or -ERANGE. */
int tool_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * An option's value, for subcommand cmd: what names it ("--bs", "LEN").
 * 0, or TOOL_EXIT_USAGE after saying what is wrong with s:
 * "WHAT: 'S' is not a byte count (e.g. 4k, 1M)" or "... is too large";
 * "WHAT: 'S' is not a number in MIN..MAX".
 */
int tool_size_opt(const char *cmd, const char *what, const char *s,
		  uint64_t *out);
int tool_uint_opt(const char *cmd, const char *what, const char *s,
		  uint64_t min, uint64_t max, uint64_t *out);

/* Monotonic seconds. */
double tool_now(void);

#endif
