/* SPDX-License-Identifier: MIT */
#include "conn.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

int tool_conn_opt(const char *cmd, int c, const char *arg, struct tool_conn *o)
{
	uint64_t v;
	int r;

	switch (c) {
	case 'S':
		o->socket = arg;
		return 0;
	case 'T':
		if ((r = tool_uint_opt(cmd, "--timeout", arg, 0, 86400000, &v)))
			return r;
		o->timeout_ms = (int)v;
		return 0;
	case 'R':
		v = 30;
		if (arg &&
		    (r = tool_uint_opt(cmd, "--reconnect", arg, 1, 86400, &v)))
			return r;
		o->reconnect_ms = (int)v * 1000;
		return 0;
	default:
		return TOOL_CONN_OTHER;
	}
}

struct vio_frontend *tool_conn_connect(const struct tool_conn *o,
				       struct vio_frontend_opts *fc)
{
	char err[256] = "";
	fc->connect_timeout_ms = o->timeout_ms;
	fc->reconnect_ms = o->reconnect_ms;
	fc->listen = o->listen;
	struct vio_frontend *fe =
	    vio_frontend_connect(o->socket, fc, err, sizeof(err));
	if (fe)
		return fe;
	/* name the socket once: the reason may already say it */
	if (err[0] && strstr(err, o->socket))
		tool_err("--socket: %s", err);
	else
		tool_err("--socket %s: %s", o->socket,
			 err[0] ? err : strerror(errno));
	return NULL;
}
