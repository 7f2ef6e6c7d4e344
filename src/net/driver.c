/* SPDX-License-Identifier: MIT */
/* driver.c - virtio-net (issue 9): in progress. */
#include <vio/net.h>
