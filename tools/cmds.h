/* SPDX-License-Identifier: MIT */
/*
 * The vio command's subcommands, one file each (tools/cmd_<name>.c), all
 * listed in the dispatch table in tools/vio.c.  Each gets its own argv
 * (argv[0] is the subcommand's name) and returns an exit code
 * (tools/util.h).
 */
#ifndef VIO_TOOLS_CMDS_H
#define VIO_TOOLS_CMDS_H

int cmd_rng(int argc, char **argv);
int cmd_blk(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_net(int argc, char **argv);

#endif
