/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user connection of the driver commands (`vio blk --socket`,
 * `vio net`): their shared options and the connect with its error line.
 */
#ifndef VIO_TOOLS_CONN_H
#define VIO_TOOLS_CONN_H

#include <stdbool.h>

#include <vio/vhost_user.h>

/* Their values; timeout, reconnect and listen go to vio_frontend_opts. */
struct tool_conn {
	const char *socket; /* --socket PATH */
	int timeout_ms;	    /* --timeout MS */
	int reconnect_ms;   /* --reconnect[=SECS] */
	bool listen;	    /* --listen (vio blk only) */
};

/* The getopt_long() entries of --socket, --timeout and --reconnect. */
/* clang-format off */
#define TOOL_CONN_LONGOPTS                                                     \
	{"socket", required_argument, NULL, 'S'},                              \
	{"timeout", required_argument, NULL, 'T'},                             \
	{"reconnect", optional_argument, NULL, 'R'}
/* clang-format on */

/* Not one of TOOL_CONN_LONGOPTS: tool_conn_opt() left it to the caller. */
#define TOOL_CONN_OTHER (-1)

/*
 * getopt_long() returned c with arg (optarg): if c is one of
 * TOOL_CONN_LONGOPTS, store it in o and return 0, or TOOL_EXIT_USAGE
 * after saying what is wrong with arg (for subcommand cmd); else
 * TOOL_CONN_OTHER.  --reconnect alone is 30 s.
 */
int tool_conn_opt(const char *cmd, int c, const char *arg, struct tool_conn *o);

/*
 * vio_frontend_connect() to o->socket with o's timeout, reconnect and
 * listen set in fc; NULL after a "vio: --socket PATH: why" line on stderr.
 */
struct vio_frontend *tool_conn_connect(const struct tool_conn *o,
				       struct vio_frontend_opts *fc);

#endif
