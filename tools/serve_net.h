/* SPDX-License-Identifier: MIT */
/*
 * vio serve net / vio serve switch (serve_net.c): the options, parsed by
 * serve_net_opts.c (--help of both commands, every check on the values).
 */
#ifndef VIO_TOOLS_SERVE_NET_H
#define VIO_TOOLS_SERVE_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <vio/net.h>

#define MAX_SOCKETS 32

struct serve_net_opts {
	bool is_switch;
	const char *sockets[MAX_SOCKETS];
	unsigned nsockets;
	const char *port; /* --port as given; NULL: echo */
	bool has_mac;
	uint8_t mac[VIO_NET_ETH_ALEN];
	unsigned mtu, queues, queue_size, threads;
	const char *cpus, *pidfile;
	bool packed, no_mrg, no_ctrl, no_evidx;
	bool poll, client, once, json;
	unsigned interval_s;
	unsigned tx_wait_ns;
};

/*
 * argv[0] is "serve"; o->is_switch chooses the command (its --help, its
 * rules); activated: systemd passed a socket (--socket is optional then).
 * 0: o is filled; <0: --help was printed (exit 0); >0: an exit status,
 * the error printed.
 */
int serve_net_parse(int argc, char **argv, struct serve_net_opts *o,
		    bool activated);

#endif
