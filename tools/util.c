/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void tool_err(const char *fmt, ...)
{
	va_list ap;
	fputs("vio: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int tool_usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "vio %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vio %s --help'.\n", cmd);
	return TOOL_EXIT_USAGE;
}

int tool_getopt_err(const char *cmd, int c, char **argv)
{
	/* getopt_long leaves the offending word at argv[optind - 1] */
	const char *word = optind > 0 ? argv[optind - 1] : "?";
	if (c == ':')
		return tool_usage_err(cmd, "option '%s' needs an argument",
				      word);
	if (optopt && strncmp(word, "--", 2) != 0)
		return tool_usage_err(cmd, "unknown option '-%c'", optopt);
	return tool_usage_err(cmd, "unknown option '%s'", word);
}

int tool_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int tool_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	switch (*s) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		s++;
		if (strcmp(s, "iB") == 0 || strcmp(s, "B") == 0)
			s += strlen(s);
	} else if (strcmp(s, "B") == 0) {
		s++;
	}
	if (*s)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int tool_size_opt(const char *cmd, const char *what, const char *s,
		  uint64_t *out)
{
	int r = tool_parse_size(s, out);
	if (r == -ERANGE)
		return tool_usage_err(cmd, "%s: '%s' is too large", what, s);
	if (r < 0)
		return tool_usage_err(
		    cmd, "%s: '%s' is not a byte count (e.g. 4k, 1M)", what, s);
	return 0;
}

int tool_uint_opt(const char *cmd, const char *what, const char *s,
		  uint64_t min, uint64_t max, uint64_t *out)
{
	if (tool_parse_uint(s, min, max, out) < 0)
		return tool_usage_err(cmd,
				      "%s: '%s' is not a number in "
				      "%" PRIu64 "..%" PRIu64,
				      what, s, min, max);
	return 0;
}

double tool_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
