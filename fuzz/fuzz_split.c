/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the device side of a split virtqueue (VIRTIO 1.2
 * 2.7) popping chains from fuzzer-written rings.  Input format and the
 * checks: fuzz_vq.h.
 */
#include "fuzz_vq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(data, size, false);
}
