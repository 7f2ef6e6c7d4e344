/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the device state blob parser (docs/device-state.md):
 * vio_device_state_load, the model's envelope (magic, format version,
 * header size, device type, lengths, features) and virtio-blk's section
 * (src/blk/state.c), as a destination backend gets it from a hostile
 * frontend at CHECK_DEVICE_STATE.
 *
 * Input: byte 0 picks the destination (bit 0: CONFIG_WCE negotiated, so
 * the writeback byte is applied; else it must match), the rest is the
 * blob.  Two vio_blk_devices on a 1 MiB memfd image, negotiated once
 * (VERSION_1, FLUSH, and CONFIG_WCE on one), writeback 1 before each
 * input.
 *
 * Checks besides ASan/UBSan: a refused blob changes nothing (writeback
 * still 1) and says why; an accepted one is exactly what the device
 * itself saves, byte for byte (but the source's queue count, which may
 * be lower), with the writeback byte it carried applied.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "util/log.h"
#include <vio/blk.h>
#include <vio/device.h>

#define FZ_IMG (1u << 20)
#define HDR 40u
#define NQ_OFF (HDR + 4) /* the section's queue count (u16) */
#define WCE_OFF offsetof(struct virtio_blk_config, wce)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vio_blk_device *bd[2];

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_state: %s\n", what);
	__builtin_trap();
}

static struct vio_blk_device *make(int fd, bool wce)
{
	char path[64], err[128];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct vio_blk_device_opts c = {
	    .path = path, .num_queues = 2, .no_io_uring = true};
	struct vio_blk_device *b = vio_blk_device_new(&c, err, sizeof(err));
	if (!b)
		fz_fail(err);
	struct vio_device *d = vio_blk_device_dev(b);
	struct vio_features f = {{0, 0}};
	vio_features_set(&f, VIRTIO_F_VERSION_1);
	vio_features_set(&f, VIRTIO_BLK_F_FLUSH);
	if (wce)
		vio_features_set(&f, VIRTIO_BLK_F_CONFIG_WCE);
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	if (vio_device_set_status(d, s) ||
	    vio_device_set_status(d, s |= VIRTIO_CONFIG_S_DRIVER) ||
	    vio_device_set_features(d, &f) ||
	    vio_device_set_status(d, s | VIRTIO_CONFIG_S_FEATURES_OK))
		fz_fail("negotiation");
	return b;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vio_log_set_quiet(getenv("FZ_VERBOSE") == NULL);
	int fd = memfd_create("fuzz-state-img", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, FZ_IMG))
		fz_fail("memfd");
	bd[0] = make(fd, false);
	bd[1] = make(fd, true);
	return 0;
}

static uint8_t wce_of(struct vio_device *d)
{
	uint8_t v = 0xff;
	if (vio_device_config_read(d, WCE_OFF, &v, 1))
		fz_fail("config read");
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	if (len < 1)
		return 0;
	bool wce = in[0] & 1;
	struct vio_device *d = vio_blk_device_dev(bd[wce]);
	uint8_t one = 1;
	if (wce && vio_device_config_write(d, WCE_OFF, &one, 1))
		fz_fail("config write");
	/* an exactly-sized copy: ASan sees any read past the blob */
	size_t n = len - 1;
	uint8_t *blob = malloc(n ? n : 1);
	if (!blob)
		return 0;
	memcpy(blob, in + 1, n);
	char why[200] = "";
	int r = vio_device_state_load(d, blob, n, why, sizeof(why));
	if (r) {
		if (r >= 0 || !why[0])
			fz_fail("refused without a reason");
		if (wce_of(d) != 1)
			fz_fail("a refused blob changed the device");
	} else {
		uint8_t mine[VIO_DEVICE_STATE_MAX];
		int m = vio_device_state_save(d, mine, sizeof(mine));
		if (m < 0 || (size_t)m != n)
			fz_fail("accepted a blob of another length");
		for (size_t i = 0; i < n; i++)
			if (mine[i] != blob[i] && i != NQ_OFF &&
			    i != NQ_OFF + 1)
				fz_fail("accepted a blob that differs from "
					"the device's own");
	}
	free(blob);
	return 0;
}
