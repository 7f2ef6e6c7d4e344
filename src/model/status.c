/* SPDX-License-Identifier: MIT */
/*
 * The status byte's one transition function (VIRTIO 1.2 section 2.1 and
 * 3.1.1), used by both sides: vio_device_set_status() checks the driver's
 * writes with it, vio_device_needs_reset() the device's own, and
 * vio_drvdev_add_status() refuses to send an illegal write at all.
 *
 * Legal, old -> new:
 *   - new == 0: reset, from anything, by either side's request;
 *   - new == old: no transition (a rewrite of the same value);
 *   - otherwise no bit of old is cleared and exactly one bit is added:
 *       by the driver: the next handshake bit, ACKNOWLEDGE, DRIVER,
 *         FEATURES_OK, DRIVER_OK in that order, only while neither FAILED
 *         nor DEVICE_NEEDS_RESET is set (3.1.1: after a failure the driver
 *         resets first); or FAILED at any time;
 *       by the device: DEVICE_NEEDS_RESET at any time (2.1.2: the device
 *         never sets the handshake bits or FAILED, the driver never sets
 *         DEVICE_NEEDS_RESET).
 * Bits with no meaning in the spec (0x10, 0x20) are never legal.
 */
#include <stdio.h>

#include <vio/device.h>

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRIVER VIRTIO_CONFIG_S_DRIVER
#define S_FEATURES_OK VIRTIO_CONFIG_S_FEATURES_OK
#define S_DRIVER_OK VIRTIO_CONFIG_S_DRIVER_OK
#define S_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET
#define S_FAILED VIRTIO_CONFIG_S_FAILED

#define S_HANDSHAKE (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)
#define S_KNOWN (S_HANDSHAKE | S_NEEDS_RESET | S_FAILED)

/* The handshake bits that must already be set before adding bit. */
static int handshake_prereq(uint8_t bit)
{
	switch (bit) {
	case S_ACK:
		return 0;
	case S_DRIVER:
		return S_ACK;
	case S_FEATURES_OK:
		return S_ACK | S_DRIVER;
	case S_DRIVER_OK:
		return S_ACK | S_DRIVER | S_FEATURES_OK;
	default:
		return -1;
	}
}

bool vio_status_legal(uint8_t old, uint8_t new_status, bool by_device)
{
	if (new_status == 0)
		return true;
	if (new_status & ~S_KNOWN)
		return false;
	if (new_status == old)
		return true;
	if (old & ~new_status)
		return false; /* only reset clears bits */

	uint8_t added = new_status & ~old;
	if (added & (added - 1))
		return false; /* one bit at a time */
	if (by_device)
		return added == S_NEEDS_RESET;
	if (added == S_FAILED)
		return true;
	if (added == S_NEEDS_RESET)
		return false;
	if (old & (S_FAILED | S_NEEDS_RESET))
		return false;
	return (old & S_HANDSHAKE) == handshake_prereq(added);
}

const char *vio_status_str(uint8_t status, char *buf, size_t len)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} names[] = {
	    {S_ACK, "ACKNOWLEDGE"},
	    {S_DRIVER, "DRIVER"},
	    {S_FEATURES_OK, "FEATURES_OK"},
	    {S_DRIVER_OK, "DRIVER_OK"},
	    {S_NEEDS_RESET, "DEVICE_NEEDS_RESET"},
	    {S_FAILED, "FAILED"},
	};
	size_t off = 0;

	if (!buf || len == 0)
		return buf;
	buf[0] = '\0';
	if (status == 0) {
		snprintf(buf, len, "RESET");
		return buf;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(status & names[i].bit))
			continue;
		int n = snprintf(buf + off, len - off, "%s%s", off ? "|" : "",
				 names[i].name);
		if (n < 0 || (size_t)n >= len - off)
			return buf; /* truncated */
		off += (size_t)n;
	}
	if (status & ~S_KNOWN) {
		int n = snprintf(buf + off, len - off, "%s0x%02x",
				 off ? "|" : "", status & ~S_KNOWN);
		(void)n;
	}
	return buf;
}
