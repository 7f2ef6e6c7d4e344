/* SPDX-License-Identifier: MIT */
/* switch.c - virtio-net (issue 9): in progress. */
#include <vio/net.h>
