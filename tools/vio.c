/* SPDX-License-Identifier: MIT */
/*
 * vio: the command.  `vio <subcommand> [options]`; each subcommand lives
 * in its own file (tools/cmd_<name>.c, declared in tools/cmds.h) and gets
 * one row in the table below.
 */
#include <stdio.h>
#include <string.h>

#include <vio/version.h>

#include "cmds.h"
#include "util.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
    {"rng", cmd_rng,
     "read entropy from a virtio-rng device (in-process transport)"},
    {"blk", cmd_blk,
     "drive a virtio-blk device: info, read, write, verify, bench"},
    {"net", cmd_net,
     "drive a virtio-net device: info, send, recv, ping, bench"},
    {"serve", cmd_serve,
     "serve a virtio device (blk, rng, net, switch) over vhost-user"},
};
#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vio <command> [options]\n"
		"       vio <command> --help\n"
		"       vio --help | --version\n\n"
		"vio is a userspace virtio stack: virtio drivers and devices "
		"over\nshared-memory virtqueues.\n\ncommands:\n");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name,
			subcommands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return TOOL_EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("vio %s\n", vio_version());
		return TOOL_EXIT_OK;
	}
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		if (strcmp(cmd, subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	if (cmd[0] == '-')
		tool_err("unknown option '%s'", cmd);
	else
		tool_err("unknown command '%s'", cmd);
	fprintf(stderr, "Try 'vio --help'.\n");
	return TOOL_EXIT_USAGE;
}
