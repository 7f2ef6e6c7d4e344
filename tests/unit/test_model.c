/* SPDX-License-Identifier: MIT */
/*
 * Model layer unit tests (src/model/): status and features.  The device
 * type is model_env.h's tdev.
 *
 * - The status transition function: exhaustively against a reference
 *   model written the other way round (successor sets), a named table,
 *   and the same transitions driven through both sides: the device
 *   (vio_device_set_status) and the driver (vio_drvdev_add_status).
 * - Feature sets: from/has/subset/and at word boundaries.
 * - Negotiation: the device refuses FEATURES_OK for never-offered bits
 *   and without VERSION_1; the driver turns a refusal into -EIO + FAILED,
 *   a device without VERSION_1 into -ENODEV + FAILED, and masks with the
 *   bound driver's feature table.
 * Config space, queues and kicks, missing ops: test_model_queues.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "model/model_internal.h"
#include "model_env.h"
#include "stub_transport.h"
#include "test.h"
#include "util/log.h"
#include <vio/device.h>
#include <vio/driver.h>
#include <vio/mem.h>

/* ---- reference model: the legal successors of a status ---- */

static bool ref_legal(uint8_t o, uint8_t n, bool by_device)
{
	const uint8_t known = ACK | DRV | FOK | DOK | NR | FAIL;
	if (n == 0)
		return true;
	if (n & ~known)
		return false;
	if (n == o)
		return true;
	uint8_t succ[3];
	unsigned k = 0;
	if (by_device) {
		succ[k++] = (uint8_t)(o | NR);
	} else {
		succ[k++] = (uint8_t)(o | FAIL);
		if (!(o & (FAIL | NR))) {
			switch (o & (ACK | DRV | FOK | DOK)) {
			case 0:
				succ[k++] = (uint8_t)(o | ACK);
				break;
			case ACK:
				succ[k++] = (uint8_t)(o | DRV);
				break;
			case ACK | DRV:
				succ[k++] = (uint8_t)(o | FOK);
				break;
			case ACK | DRV | FOK:
				succ[k++] = (uint8_t)(o | DOK);
				break;
			}
		}
	}
	for (unsigned i = 0; i < k; i++)
		if (succ[i] == n && succ[i] != o)
			return true;
	return false;
}

static void test_status_exhaustive(void)
{
	unsigned legal = 0, mismatches = 0;
	for (unsigned o = 0; o < 256; o++)
		for (unsigned n = 0; n < 256; n++)
			for (int d = 0; d < 2; d++) {
				bool got =
				    vio_status_legal((uint8_t)o, (uint8_t)n, d);
				bool want =
				    ref_legal((uint8_t)o, (uint8_t)n, d);
				legal += got;
				if (got != want && mismatches++ < 10)
					fprintf(
					    stderr,
					    "status %#x -> %#x by_device=%d: "
					    "got %d want %d\n",
					    o, n, d, got, want);
			}
	CHECK_EQ(mismatches, 0);
	/* sanity: the function is neither all-yes nor all-no */
	CHECK(legal > 256 && legal < 4096);
}

static void test_status_table(void)
{
	static const struct {
		uint8_t o, n;
		bool dev, legal;
	} t[] = {
	    /* the handshake, one bit at a time, in order */
	    {0, ACK, false, true},
	    {ACK, ACK | DRV, false, true},
	    {ACK | DRV, ACK | DRV | FOK, false, true},
	    {ACK | DRV | FOK, ACK | DRV | FOK | DOK, false, true},
	    /* the device never performs the handshake */
	    {0, ACK, true, false},
	    {ACK | DRV, ACK | DRV | FOK, true, false},
	    /* skipping, reordering, two bits at once */
	    {0, DRV, false, false},
	    {0, ACK | DRV, false, false},
	    {ACK, ACK | FOK, false, false},
	    {ACK | DRV, ACK | DRV | DOK, false, false},
	    {ACK, ACK | DRV | FOK, false, false},
	    {0, DOK, false, false},
	    /* clearing bits: only by reset */
	    {ACK | DRV, ACK, false, false},
	    {ACK | DRV | FOK | DOK, ACK | DRV | DOK, false, false},
	    {ACK | FAIL, ACK, false, false},
	    {ACK | DRV | FOK | DOK | NR, ACK | DRV | FOK | DOK, false, false},
	    /* reset from anything, by either side */
	    {ACK | DRV | FOK | DOK, 0, false, true},
	    {0xff, 0, false, true},
	    {NR | FAIL, 0, true, true},
	    /* FAILED: by the driver, at any time */
	    {0, FAIL, false, true},
	    {ACK | DRV, ACK | DRV | FAIL, false, true},
	    {ACK | DRV | FOK | DOK | NR, ACK | DRV | FOK | DOK | NR | FAIL,
	     false, true},
	    {ACK, ACK | FAIL, true, false},
	    /* after FAILED or NEEDS_RESET the driver must reset first */
	    {ACK | FAIL, ACK | DRV | FAIL, false, false},
	    {ACK | DRV | FOK | NR, ACK | DRV | FOK | DOK | NR, false, false},
	    /* NEEDS_RESET: by the device only, at any time */
	    {ACK | DRV | FOK | DOK, ACK | DRV | FOK | DOK | NR, true, true},
	    {0, NR, true, true},
	    {ACK | DRV | FOK | DOK, ACK | DRV | FOK | DOK | NR, false, false},
	    /* undefined bits */
	    {0, 0x10, false, false},
	    {0, 0x20, true, false},
	    {ACK, ACK | 0x10, false, false},
	    /* a rewrite of the same value is no transition */
	    {ACK | DRV, ACK | DRV, false, true},
	    {ACK | DRV, ACK | DRV, true, true},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool got = vio_status_legal(t[i].o, t[i].n, t[i].dev);
		if (got != t[i].legal)
			fprintf(stderr, "table row %zu: %#x -> %#x dev=%d\n", i,
				t[i].o, t[i].n, t[i].dev);
		CHECK(got == t[i].legal);
	}
}

static void test_status_str(void)
{
	char b[128];
	CHECK(strcmp(vio_status_str(0, b, sizeof(b)), "RESET") == 0);
	CHECK(strcmp(vio_status_str(ACK | DRV, b, sizeof(b)),
		     "ACKNOWLEDGE|DRIVER") == 0);
	CHECK(strcmp(vio_status_str(ACK | DRV | FOK | DOK | NR | FAIL, b,
				    sizeof(b)),
		     "ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK|"
		     "DEVICE_NEEDS_RESET|FAILED") == 0);
	CHECK(strcmp(vio_status_str(ACK | 0x30, b, sizeof(b)),
		     "ACKNOWLEDGE|0x30") == 0);
	char small[8];
	memset(small, 'x', sizeof(small));
	vio_status_str(ACK | DRV, small, sizeof(small));
	CHECK(memchr(small, '\0', sizeof(small)) != NULL);
}

/* Drive dev to status target through the device-side API. */
static void drive_dev(struct vio_device *dev, uint8_t target)
{
	static const uint8_t steps[] = {ACK, ACK | DRV, ACK | DRV | FOK,
					ACK | DRV | FOK | DOK};
	REQUIRE(vio_device_set_status(dev, 0) == 0);
	uint8_t hs = target & (ACK | DRV | FOK | DOK);
	for (unsigned i = 0; i < 4 && (steps[i] & hs) == steps[i]; i++) {
		REQUIRE(vio_device_set_status(dev, steps[i]) == 0);
		if (steps[i] == (ACK | DRV)) {
			/* acked in state DRIVER, so FEATURES_OK is accepted */
			unsigned v1 = VIRTIO_F_VERSION_1;
			struct vio_features f = vio_features_from(&v1, 1);
			REQUIRE(vio_device_set_features(dev, &f) == 0);
		}
	}
	if (target & FAIL)
		REQUIRE(vio_device_set_status(dev, hs | FAIL) == 0);
	if (target & NR)
		vio_device_needs_reset(dev, "test");
	REQUIRE(vio_device_get_status(dev) == target);
}

static const uint8_t reachable[] = {
    0,
    ACK,
    ACK | DRV,
    ACK | DRV | FOK,
    ACK | DRV | FOK | DOK,
    FAIL,
    ACK | DRV | FAIL,
    ACK | DRV | FOK | DOK | FAIL,
    ACK | DRV | FOK | NR,
    ACK | DRV | FOK | DOK | NR,
    ACK | DRV | FOK | DOK | NR | FAIL,
};
#define N_REACHABLE (sizeof(reachable) / sizeof(reachable[0]))

/* Every write from every reachable status, on a real device. */
static void test_status_device_side(void)
{
	struct tdev t;
	struct vio_device *dev = tdev_new(&t, NULL, 0);
	vio_log_set_quiet(1); /* the refusals are logged */
	for (unsigned i = 0; i < N_REACHABLE; i++) {
		uint8_t s = reachable[i];
		for (unsigned n = 0; n < 256; n++) {
			drive_dev(dev, s);
			int r = vio_device_set_status(dev, (uint8_t)n);
			bool legal = ref_legal(s, (uint8_t)n, false);
			CHECK_EQ(r == 0, legal);
			CHECK_EQ(vio_device_get_status(dev), legal ? n : s);
		}
	}
	vio_log_set_quiet(0);
	/* ops->status sees accepted transitions, and may refuse one */
	drive_dev(dev, ACK | DRV | FOK);
	t.status_calls = 0;
	t.refuse_status = -EBUSY;
	CHECK_EQ(vio_device_set_status(dev, ACK | DRV | FOK | DOK), -EBUSY);
	CHECK_EQ(vio_device_get_status(dev), ACK | DRV | FOK);
	CHECK_EQ(t.status_calls, 1);
	t.refuse_status = 0;
	CHECK_EQ(vio_device_set_status(dev, ACK | DRV | FOK | DOK), 0);
	CHECK_EQ(t.last_old, ACK | DRV | FOK);
	CHECK_EQ(t.last_new, ACK | DRV | FOK | DOK);
	/* a rewrite of the same value is not a transition */
	t.status_calls = 0;
	CHECK_EQ(vio_device_set_status(dev, ACK | DRV | FOK | DOK), 0);
	CHECK_EQ(t.status_calls, 0);
	/* needs_reset: once, and the transport hears of it once */
	struct stub s;
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct vio_drvdev *vdev = stub_init(&s, dev, mem);
	REQUIRE(vdev);
	vio_log_set_quiet(1);
	vio_device_needs_reset(dev, "first");
	vio_device_needs_reset(dev, "second");
	vio_log_set_quiet(0);
	CHECK_EQ(s.needs_reset, 1);
	CHECK(vio_device_get_status(dev) & NR);
	vio_drvdev_free(vdev);
	CHECK_EQ(s.released, 1);
	CHECK_EQ(vio_device_get_status(dev), 0); /* vdev_free reset it */
	vio_device_free(dev);
	stub_fini(&s);
	vio_mem_free(mem);
}

/* The same through the driver side: vio_drvdev_add_status never sends an
 * illegal write, and the device agrees with every legal one. */
static void test_status_driver_side(void)
{
	struct tdev t;
	struct vio_device *dev = tdev_new(&t, NULL, 0);
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct stub s;
	struct vio_drvdev *vdev = stub_init(&s, dev, mem);
	REQUIRE(vdev);
	vio_log_set_quiet(1); /* drive_dev's needs_reset lines */
	for (unsigned i = 0; i < N_REACHABLE; i++) {
		uint8_t st = reachable[i];
		for (unsigned bits = 0; bits < 256; bits++) {
			drive_dev(dev, st);
			uint8_t n = (uint8_t)(st | bits);
			int r = vio_drvdev_add_status(vdev, (uint8_t)bits);
			bool legal = ref_legal(st, n, false);
			CHECK_EQ(r == 0, legal);
			CHECK_EQ(vio_drvdev_get_status(vdev), legal ? n : st);
		}
	}
	/* connect: reset, ACKNOWLEDGE, DRIVER from any state */
	drive_dev(dev, ACK | DRV | FOK | DOK | NR);
	vio_log_set_quiet(0);
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	CHECK_EQ(vio_drvdev_get_status(vdev), ACK | DRV);
	vio_drvdev_free(vdev);
	vio_device_free(dev);
	stub_fini(&s);
	vio_mem_free(mem);
}

/* ---- features ---- */

static void test_features(void)
{
	static const unsigned bits[] = {0, 5, 63, 64, 100, 127, 128, 5000};
	struct vio_features a = vio_features_from(bits, 8);
	CHECK(vio_features_has(&a, 0));
	CHECK(vio_features_has(&a, 63));
	CHECK(vio_features_has(&a, 64));
	CHECK(vio_features_has(&a, 127));
	CHECK(!vio_features_has(&a, 1));
	CHECK(!vio_features_has(&a, 65));
	CHECK(!vio_features_has(&a, 128)); /* out of range: ignored */
	CHECK(!vio_features_has(&a, 5000));

	static const unsigned sub[] = {5, 64, 127};
	struct vio_features b = vio_features_from(sub, 3);
	CHECK(vio_features_subset(&b, &a));
	CHECK(!vio_features_subset(&a, &b));
	CHECK(vio_features_subset(&a, &a));
	struct vio_features empty = vio_features_from(NULL, 0);
	CHECK(vio_features_subset(&empty, &b));
	CHECK(!vio_features_subset(&b, &empty));

	/* a bit only in the high word breaks the subset */
	struct vio_features c = b;
	vio_features_set(&c, 126);
	CHECK(!vio_features_subset(&c, &a));

	struct vio_features d;
	vio_features_and(&d, &a, &c);
	CHECK(vio_features_has(&d, 5) && vio_features_has(&d, 64) &&
	      vio_features_has(&d, 127));
	CHECK(!vio_features_has(&d, 126) && !vio_features_has(&d, 0));
	vio_features_and(&d, &d, &empty); /* dst may alias */
	CHECK(vio_features_subset(&d, &empty));
	vio_features_clear(&a, 64);
	CHECK(!vio_features_has(&a, 64));
	vio_features_clear(&a, 9999); /* out of range: no effect */
}

/* ---- negotiation ---- */

static void test_negotiation_device(void)
{
	struct tdev t;
	struct vio_device *dev = tdev_new(&t, ring_bits, 4);
	struct vio_features off;
	vio_device_offered(dev, &off);
	CHECK(vio_features_has(&off, VIRTIO_F_VERSION_1)); /* added */
	CHECK(vio_features_has(&off, 5));

	vio_log_set_quiet(1);
	/* features only in state DRIVER */
	struct vio_features f = off;
	CHECK_EQ(vio_device_set_features(dev, &f), -EINVAL);
	drive_dev(dev, ACK);
	CHECK_EQ(vio_device_set_features(dev, &f), -EINVAL);

	/* a bit never offered: FEATURES_OK refused and not kept */
	drive_dev(dev, ACK | DRV);
	vio_features_set(&f, 6);
	CHECK_EQ(vio_device_set_features(dev, &f), 0);
	CHECK_EQ(vio_device_set_status(dev, ACK | DRV | FOK), -EINVAL);
	CHECK_EQ(vio_device_get_status(dev), ACK | DRV);
	/* a bit in the high word never offered */
	f = off;
	vio_features_set(&f, 120);
	CHECK_EQ(vio_device_set_features(dev, &f), 0);
	CHECK_EQ(vio_device_set_status(dev, ACK | DRV | FOK), -EINVAL);
	/* VERSION_1 missing */
	f = off;
	vio_features_clear(&f, VIRTIO_F_VERSION_1);
	CHECK_EQ(vio_device_set_features(dev, &f), 0);
	CHECK_EQ(vio_device_set_status(dev, ACK | DRV | FOK), -EINVAL);
	CHECK_EQ(vio_device_get_status(dev), ACK | DRV);
	vio_log_set_quiet(0);

	/* a proper subset is accepted; then features are frozen */
	unsigned some[] = {VIRTIO_F_VERSION_1, 5};
	f = vio_features_from(some, 2);
	CHECK_EQ(vio_device_set_features(dev, &f), 0);
	CHECK_EQ(vio_device_set_status(dev, ACK | DRV | FOK), 0);
	CHECK(vio_device_has_feature(dev, 5));
	CHECK(!vio_device_has_feature(dev, VIRTIO_RING_F_EVENT_IDX));
	CHECK_EQ(vio_device_set_features(dev, &off), -EINVAL);
	struct vio_features neg;
	vio_device_negotiated(dev, &neg);
	CHECK(vio_features_subset(&neg, &f) && vio_features_subset(&f, &neg));
	/* reset forgets the negotiation */
	CHECK_EQ(vio_device_set_status(dev, 0), 0);
	CHECK(!vio_device_has_feature(dev, 5));
	CHECK(!vio_device_has_feature(dev, VIRTIO_F_VERSION_1));
	vio_device_free(dev);
}

static const struct vio_device_id any_ids[] = {{42, VIO_DEV_ANY_ID}, {0, 0}};
static const unsigned tbl5[] = {5};
static const struct vio_driver drv5 = {
    .name = "drv5",
    .id_table = any_ids,
    .feature_table = tbl5,
    .feature_table_size = 1,
};

static void test_negotiation_driver(void)
{
	struct tdev t;
	struct vio_device *dev = tdev_new(&t, ring_bits, 4);
	struct vio_mem *mem = vio_mem_new();
	REQUIRE(mem);
	struct stub s;
	struct vio_drvdev *vdev = stub_init(&s, dev, mem);
	REQUIRE(vdev);
	static const unsigned want_bits[] = {5, 6, 70, VIRTIO_RING_F_EVENT_IDX};
	struct vio_features want = vio_features_from(want_bits, 4);

	/* only in state ACK|DRIVER */
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want), -EINVAL);

	/* unbound: offered & wanted, plus VERSION_1 */
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want), 0);
	CHECK_EQ(vio_drvdev_get_status(vdev), ACK | DRV | FOK);
	CHECK(vio_drvdev_has_feature(vdev, VIRTIO_F_VERSION_1));
	CHECK(vio_drvdev_has_feature(vdev, 5));
	CHECK(vio_drvdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX));
	CHECK(!vio_drvdev_has_feature(vdev, 6));  /* not offered */
	CHECK(!vio_drvdev_has_feature(vdev, 70)); /* not offered */
	CHECK(
	    !vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED)); /* unwanted */
	CHECK(vio_device_has_feature(dev, 5)); /* the device agrees */
	/* a second negotiation is refused (FEATURES_OK already set) */
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want), -EINVAL);

	/* bound: the feature table masks device bits, not transport bits */
	vio_drvdev_bind(vdev, &drv5);
	static const unsigned want2_bits[] = {5, VIRTIO_F_RING_PACKED,
					      VIRTIO_RING_F_INDIRECT_DESC};
	struct vio_features want2 = vio_features_from(want2_bits, 3);
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want2), 0);
	CHECK(vio_drvdev_has_feature(vdev, 5));
	CHECK(vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED));
	CHECK(vio_drvdev_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC));
	vio_drvdev_bind(vdev, NULL);

	/* the device offers a bit the driver's table lacks: never acked */
	static const struct vio_driver drv_none = {
	    .name = "none",
	    .id_table = any_ids,
	};
	vio_drvdev_bind(vdev, &drv_none);
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	vio_log_set_quiet(1); /* "wants bits missing from its table" */
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want2), 0);
	vio_log_set_quiet(0);
	CHECK(!vio_drvdev_has_feature(vdev, 5));
	CHECK(vio_drvdev_has_feature(vdev, VIRTIO_F_RING_PACKED));
	vio_drvdev_bind(vdev, NULL);

	/* the transport offers a bit the device never did: the device
	 * refuses FEATURES_OK, the driver sees it missing */
	s.extra_offer = 6;
	static const unsigned want6[] = {6};
	struct vio_features w6 = vio_features_from(want6, 1);
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	vio_log_set_quiet(1);
	CHECK_EQ(vio_drvdev_negotiate(vdev, &w6), -EIO);
	vio_log_set_quiet(0);
	CHECK_EQ(vio_drvdev_get_status(vdev), ACK | DRV | FAIL);
	CHECK(!vio_drvdev_has_feature(vdev, VIRTIO_F_VERSION_1));
	s.extra_offer = -1;

	/* no VERSION_1 offered: -ENODEV and FAILED */
	s.hide_version_1 = true;
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want), -ENODEV);
	CHECK(vio_drvdev_get_status(vdev) & FAIL);
	CHECK(!(vio_drvdev_get_status(vdev) & FOK));
	s.hide_version_1 = false;

	/* DRIVER_OK through the driver side */
	CHECK_EQ(vio_drvdev_connect(vdev), 0);
	CHECK_EQ(vio_drvdev_driver_ok(vdev), -EINVAL); /* skips FEATURES_OK */
	CHECK_EQ(vio_drvdev_negotiate(vdev, &want), 0);
	CHECK_EQ(vio_drvdev_driver_ok(vdev), 0);
	CHECK_EQ(vio_drvdev_get_status(vdev), ACK | DRV | FOK | DOK);

	vio_drvdev_free(vdev);
	vio_device_free(dev);
	stub_fini(&s);
	vio_mem_free(mem);
}

int main(void)
{
	test_status_exhaustive();
	test_status_table();
	test_status_str();
	test_status_device_side();
	test_status_driver_side();
	test_features();
	test_negotiation_device();
	test_negotiation_driver();
	return test_result("model");
}
