/* SPDX-License-Identifier: MIT */
/*
 * read-sector SOCKET [N]: hexdump sector N (512 bytes; default 0) of any
 * vhost-user-blk backend (vio serve blk, qemu-storage-daemon, ...) with
 * vio's frontend and virtio-blk driver.  Uses only installed headers.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ids.h>

#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/vhost_user.h>

int main(int argc, char **argv)
{
	char err[256] = "out of memory", *end = NULL;
	unsigned long long n = argc == 3 ? strtoull(argv[2], &end, 0) : 0;
	if (argc < 2 || argc > 3 || argv[1][0] == '-' || (end && *end)) {
		fprintf(stderr, "usage: read-sector SOCKET [SECTOR]\n");
		return 2;
	}
	struct vio_mem *mem = vio_mem_new(); /* memory shared with the disk */
	struct vio_bus *bus = vio_bus_new();
	struct vio_frontend_opts fc = {.mem = mem,
				       .device_id = VIRTIO_ID_BLOCK};
	struct vio_frontend *f = NULL;
	/* connect, and the blk driver probes the disk */
	if (mem && bus && !vio_bus_register(bus, &vio_blk_driver))
		f = vio_bus_connect(bus, argv[1], &fc, err, sizeof(err));
	unsigned char buf[512];
	int r = -ENODEV;
	if (f) /* offsets and lengths in bytes, multiples of 512 */
		r = vio_blk_read(vio_blk_from_vdev(vio_frontend_vdev(f)), 0,
				 n * 512, buf, sizeof(buf));
	for (unsigned i = 0; r == 0 && i < sizeof(buf); i += 16) {
		printf("%08llx ", n * 512 + i); /* the format of hexdump -C */
		for (unsigned j = 0; j < 16; j++)
			printf("%s %02x", j == 8 ? " " : "", buf[i + j]);
		printf("  |");
		for (unsigned j = 0; j < 16; j++)
			putchar(isprint(buf[i + j]) ? buf[i + j] : '.');
		printf("|\n");
	}
	if (r)
		fprintf(stderr, "read-sector: %s\n", f ? strerror(-r) : err);
	if (f) {
		vio_bus_remove(bus, vio_frontend_vdev(f));
		vio_frontend_free(f);
	}
	vio_bus_free(bus);
	vio_mem_free(mem);
	return r ? 1 : 0;
}
