/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the device state blob parser (docs/device-state.md):
 * vio_device_state_load, the model's envelope (magic, format version,
 * header size, device type, lengths, features) and the device types'
 * sections (virtio-blk's, src/blk/state.c; virtio-net's,
 * src/net/state.c), as a destination backend gets it from a hostile
 * frontend at CHECK_DEVICE_STATE.
 *
 * Input: byte 0 picks the destination, the rest is the blob.  Bit 1
 * clear: one of two vio_blk_devices on a 1 MiB memfd image, negotiated
 * once (VERSION_1, FLUSH, and with bit 0 CONFIG_WCE, so the writeback
 * byte is applied; else it must match), writeback 1 before each input.
 * Bit 1 set: one of two vio_net_devices (sink port, 2 pairs): bit 0
 * clear, every feature offered negotiated (CTRL_VQ, CTRL_RX(_EXTRA),
 * CTRL_MAC_ADDR, GUEST_ANNOUNCE, MQ, MTU, STATUS); set, without
 * CTRL_VQ, MQ and MTU.  Each is put back into the state it had after
 * negotiation (its own saved blob, loaded) before each input.
 *
 * Checks besides ASan/UBSan: a refused blob changes nothing (blk:
 * writeback still 1; net: the device saves the same bytes and its config
 * space is the same) and says why; an accepted one is exactly what the
 * device itself saves, byte for byte (but blk's source queue count,
 * which may be lower, and net's source max pairs and MTU when MQ and MTU
 * were not negotiated: then they may differ), with the writeback byte it
 * carried applied.
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
#include <linux/virtio_net.h>

#include "util/log.h"
#include <vio/blk.h>
#include <vio/device.h>
#include <vio/net.h>

#define FZ_IMG (1u << 20)
#define HDR 40u
#define NQ_OFF (HDR + 4) /* the section's queue count (u16) */
#define WCE_OFF offsetof(struct virtio_blk_config, wce)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vio_blk_device *bd[2];
static struct vio_net_port *nport;
static struct vio_net_device *nd[2];
/* each net device's state after negotiation, restored before an input */
static uint8_t npristine[2][VIO_DEVICE_STATE_MAX];
static int npristine_len[2];

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

static struct vio_net_device *make_net(bool bare)
{
	char err[128];
	struct vio_net_device_opts c = {
	    .queue_pairs = 2, .mtu = 1500, .port = nport};
	c.mac[0] = 0x02;
	c.mac[5] = bare ? 2 : 1;
	struct vio_net_device *n = vio_net_device_new(&c, err, sizeof(err));
	if (!n)
		fz_fail(err);
	struct vio_device *d = vio_net_device_dev(n);
	struct vio_features f;
	vio_device_offered(d, &f);
	if (bare) {
		vio_features_clear(&f, VIRTIO_NET_F_CTRL_VQ);
		vio_features_clear(&f, VIRTIO_NET_F_MQ);
		vio_features_clear(&f, VIRTIO_NET_F_MTU);
	}
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	if (vio_device_set_status(d, s) ||
	    vio_device_set_status(d, s |= VIRTIO_CONFIG_S_DRIVER) ||
	    vio_device_set_features(d, &f) ||
	    vio_device_set_status(d, s | VIRTIO_CONFIG_S_FEATURES_OK))
		fz_fail("net negotiation");
	int k = bare ? 1 : 0;
	npristine_len[k] =
	    vio_device_state_save(d, npristine[k], sizeof(npristine[k]));
	if (npristine_len[k] <= 0)
		fz_fail("net save");
	return n;
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
	nport = vio_net_port_sink_new();
	if (!nport)
		fz_fail("sink port");
	nd[0] = make_net(false);
	nd[1] = make_net(true);
	return 0;
}

static uint8_t wce_of(struct vio_device *d)
{
	uint8_t v = 0xff;
	if (vio_device_config_read(d, WCE_OFF, &v, 1))
		fz_fail("config read");
	return v;
}

/* What a refused blob must leave as it was. */
struct net_snap {
	uint8_t blob[VIO_DEVICE_STATE_MAX];
	int n;
	uint8_t cfg[VIO_CONFIG_MAX];
};

static void net_snap(struct vio_device *d, struct net_snap *s)
{
	s->n = vio_device_state_save(d, s->blob, sizeof(s->blob));
	if (s->n <= 0 ||
	    vio_device_config_read(d, 0, s->cfg, vio_device_config_size(d)))
		fz_fail("net save");
}

static void net_one(bool bare, const uint8_t *blob, size_t n)
{
	struct vio_device *d = vio_net_device_dev(nd[bare]);
	char why[200] = "";
	if (vio_device_state_load(d, npristine[bare],
				  (size_t)npristine_len[bare], why,
				  sizeof(why)))
		fz_fail("the device's own state refused");
	static struct net_snap before, after;
	net_snap(d, &before);
	why[0] = '\0';
	int r = vio_device_state_load(d, blob, n, why, sizeof(why));
	net_snap(d, &after);
	if (getenv("FZ_VERBOSE"))
		fprintf(stderr, "net%d: %d %s\n", bare, r, why);
	if (r) {
		if (r >= 0 || !why[0])
			fz_fail("net: refused without a reason");
		if (after.n != before.n ||
		    memcmp(after.blob, before.blob, (size_t)before.n) ||
		    memcmp(after.cfg, before.cfg, vio_device_config_size(d)))
			fz_fail("net: a refused blob changed the device");
		return;
	}
	if ((size_t)after.n != n)
		fz_fail("net: accepted a blob of another length");
	for (size_t i = 0; i < n; i++) {
		/* max pairs (HDR + 6) and MTU (HDR + 8) are the
		 * destination's own when MQ and MTU were not negotiated */
		if (bare && i >= HDR + 6 && i < HDR + 10)
			continue;
		if (after.blob[i] != blob[i])
			fz_fail("net: accepted a blob that differs from the "
				"device's own");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	if (len < 1)
		return 0;
	if (in[0] & 2) {
		size_t nn = len - 1;
		uint8_t *nb = malloc(nn ? nn : 1);
		if (!nb)
			return 0;
		memcpy(nb, in + 1, nn);
		net_one(in[0] & 1, nb, nn);
		free(nb);
		return 0;
	}
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
