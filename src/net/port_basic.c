/* SPDX-License-Identifier: MIT */
/* port_basic.c - virtio-net (issue 9): in progress. */
#include <vio/net.h>
