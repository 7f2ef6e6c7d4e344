/* SPDX-License-Identifier: MIT */
/* ctrl.c - virtio-net (issue 9): in progress. */
#include <vio/net.h>
