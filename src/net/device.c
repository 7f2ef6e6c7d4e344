/* SPDX-License-Identifier: MIT */
/* device.c - virtio-net (issue 9): in progress. */
#include <vio/net.h>
