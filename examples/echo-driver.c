/* SPDX-License-Identifier: MIT */
/*
 * echo-driver: the driver of echo-device (echo-device.c), over vio's
 * vhost-user frontend, built only from libvio's installed headers.
 *
 *     echo-driver SOCKET TEXT
 *
 * Sends TEXT on the console's transmitq (queue 1) in chunks, collects
 * what comes back on the receiveq (queue 0), prints it on stdout and
 * exits 0 if it is TEXT again.  The receive buffers are small on purpose:
 * a long TEXT takes many of them, reposted as they come back.
 *
 * The driver is a struct vio_driver on a bus (vio/bus.h): the bus matches
 * the device id, then probe negotiates features, reads the config space
 * and sets up the queues; the bus then sets DRIVER_OK.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <endian.h>
#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <vio/bus.h>
#include <vio/driver.h>
#include <vio/vhost_user.h>

#define RXQ 0
#define TXQ 1
#define RX_BUFS 8	/* receive buffers in flight */
#define RX_BUF_SIZE 512 /* bytes each */
#define TX_BUF_SIZE 4096
#define TIMEOUT_MS 5000

struct console {
	struct vio_vq *rx, *tx;
	char *rxbuf[RX_BUFS], *txbuf;
	unsigned cols, rows; /* 0 without VIRTIO_CONSOLE_F_SIZE */
};

/* Feature bits this driver understands (negotiation acks no other). */
static const unsigned console_features[] = {
    VIRTIO_F_VERSION_1,	     VIRTIO_CONSOLE_F_SIZE,	  VIRTIO_F_RING_PACKED,
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
static const struct vio_device_id console_ids[] = {
    {VIRTIO_ID_CONSOLE, VIO_DEV_ANY_ID},
    {0, 0},
};

static int post_rx(struct console *c, char *buf)
{
	struct vio_sg sg = {.buf = buf, .len = RX_BUF_SIZE};
	return vio_vq_add(c->rx, &sg, 0, 1, buf); /* 0 readable, 1 writable */
}

static void console_free(struct vio_drvdev *vdev, struct console *c)
{
	struct vio_mem *mem = vio_drvdev_mem(vdev);
	for (unsigned i = 0; i < RX_BUFS; i++)
		vio_mem_release(mem, c->rxbuf[i]);
	vio_mem_release(mem, c->txbuf);
	free(c);
	vio_drvdev_set_priv(vdev, NULL);
}

/* Status is ACKNOWLEDGE|DRIVER; return 0 and the bus sets DRIVER_OK. */
static int console_probe(struct vio_drvdev *vdev)
{
	struct vio_features wanted = vio_features_from(
	    console_features,
	    sizeof(console_features) / sizeof(console_features[0]));
	int r = vio_drvdev_negotiate(vdev, &wanted); /* ... FEATURES_OK */
	if (r)
		return r;
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	vio_drvdev_set_priv(vdev, c);
	if (vio_drvdev_has_feature(vdev, VIRTIO_CONSOLE_F_SIZE)) {
		struct virtio_console_config cfg;
		r = vio_drvdev_config_read(vdev, 0, &cfg, 4); /* cols, rows */
		if (r)
			goto fail;
		c->cols = le16toh(cfg.cols);
		c->rows = le16toh(cfg.rows);
	}
	/* size 0: the device's maximum */
	c->rx = vio_drvdev_setup_vq(vdev, RXQ, 0, NULL, NULL);
	c->tx = vio_drvdev_setup_vq(vdev, TXQ, 0, NULL, NULL);
	if (!c->rx || !c->tx) {
		r = errno ? -errno : -EIO;
		goto fail;
	}
	/* buffers must lie in the vdev's shared memory */
	uint64_t daddr;
	struct vio_mem *mem = vio_drvdev_mem(vdev);
	for (unsigned i = 0; i < RX_BUFS; i++)
		if (!(c->rxbuf[i] =
			  vio_mem_alloc(mem, RX_BUF_SIZE, 64, &daddr)))
			goto nomem;
	if (!(c->txbuf = vio_mem_alloc(mem, TX_BUF_SIZE, 64, &daddr)))
		goto nomem;
	/* share regions made since the queues were set up, then post the
	 * receive buffers (no kick before DRIVER_OK: main kicks) */
	r = vio_drvdev_sync_mem(vdev);
	for (unsigned i = 0; i < RX_BUFS && !r; i++)
		r = post_rx(c, c->rxbuf[i]);
	if (r)
		goto fail;
	return 0;
nomem:
	r = -ENOMEM;
fail:
	console_free(vdev, c); /* the queues go with the bus's reset */
	return r;
}

/* The bus stopped the device before this: take back the buffers it
 * never used, then free them. */
static void console_remove(struct vio_drvdev *vdev)
{
	struct console *c = vio_drvdev_priv(vdev);
	while (vio_vq_detach_unused(c->rx))
		;
	while (vio_vq_detach_unused(c->tx))
		;
	console_free(vdev, c);
}

static const struct vio_driver console_driver = {
    .name = "echo-console",
    .id_table = console_ids,
    .feature_table = console_features,
    .feature_table_size =
	sizeof(console_features) / sizeof(console_features[0]),
    .probe = console_probe,
    .remove = console_remove,
    /* vhost-user cannot ask a device how big its config space is */
    .config_size = sizeof(struct virtio_console_config),
};

/*
 * Send text in chunks of TX_BUF_SIZE, one in flight, and collect the echo
 * into got (len bytes).  0 or negative errno.
 */
static int echo(struct vio_drvdev *vdev, struct console *c, const char *text,
		size_t len, char *got)
{
	size_t sent = 0, recvd = 0;
	bool tx_busy = false;
	vio_vq_kick(c->rx); /* the receive buffers posted at probe */
	while (recvd < len) {
		uint32_t n;
		if (!tx_busy && sent < len) {
			size_t k =
			    len - sent < TX_BUF_SIZE ? len - sent : TX_BUF_SIZE;
			memcpy(c->txbuf, text + sent, k);
			struct vio_sg sg = {.buf = c->txbuf,
					    .len = (uint32_t)k};
			int r = vio_drvdev_send(c->tx, &sg, 1, 0, c->txbuf);
			if (r)
				return r;
			sent += k;
			tx_busy = true;
		}
		if (recvd == sent) {
			/* all of this chunk came back: its buffer will too */
			if (!vio_drvdev_wait_used(vdev, c->tx, &n, TIMEOUT_MS))
				return -errno;
			tx_busy = false;
			continue;
		}
		char *buf = vio_drvdev_wait_used(vdev, c->rx, &n, TIMEOUT_MS);
		if (!buf)
			return -errno;
		if (n > RX_BUF_SIZE || n > sent - recvd)
			return -EPROTO; /* more than it could have echoed */
		memcpy(got + recvd, buf, n);
		recvd += n;
		int r = post_rx(c, buf);
		if (r)
			return r;
		vio_vq_kick(c->rx);
		/* a transmit buffer that came back meanwhile */
		if (tx_busy && vio_vq_get(c->tx, &n))
			tx_busy = false;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 || argv[1][0] == '-') {
		fprintf(argc == 2 && !strcmp(argv[1], "--help") ? stdout
								: stderr,
			"usage: echo-driver SOCKET TEXT\n\n"
			"Send TEXT to the echo device (echo-device SOCKET) and "
			"print what comes back.\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	const char *text = argv[2];
	size_t len = strlen(text);
	char err[256];

	struct vio_mem *mem = vio_mem_new();
	struct vio_bus *bus = vio_bus_new();
	char *got = malloc(len + 1);
	if (!mem || !bus || !got || vio_bus_register(bus, &console_driver)) {
		fprintf(stderr, "echo-driver: out of memory\n");
		return 1;
	}
	struct vio_frontend_opts fc = {
	    .mem = mem,
	    .device_id = VIRTIO_ID_CONSOLE, /* vhost-user cannot tell */
	    .num_queues = 2,
	};
	struct vio_frontend *f =
	    vio_bus_connect(bus, argv[1], &fc, err, sizeof(err));
	int rc = 1;
	if (!f) {
		fprintf(stderr, "echo-driver: %s\n", err);
	} else {
		struct vio_drvdev *vdev = vio_frontend_vdev(f);
		struct console *c = vio_drvdev_priv(vdev);
		if (c->cols)
			fprintf(stderr, "echo-driver: console %ux%u\n", c->cols,
				c->rows);
		int r = echo(vdev, c, text, len, got);
		if (r) {
			fprintf(stderr, "echo-driver: %s\n", strerror(-r));
		} else {
			got[len] = '\0';
			printf("%s\n", got);
			rc = memcmp(got, text, len) != 0;
			if (rc)
				fprintf(stderr, "echo-driver: the echo "
						"differs from TEXT\n");
		}
		vio_bus_remove(bus, vdev); /* stop, remove, reset */
		vio_frontend_free(f);
	}
	vio_bus_free(bus);
	vio_mem_free(mem);
	free(got);
	return rc;
}
