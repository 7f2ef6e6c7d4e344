/* SPDX-License-Identifier: MIT */
/* tap.c - virtio-net (issue 9): in progress. */
#include <vio/net.h>
