/* SPDX-License-Identifier: MIT */
/*
 * echo-device: a custom virtio device, served over vhost-user, built only
 * from libvio's installed headers (docs/writing-a-device.md walks through
 * it).
 *
 *     echo-device SOCKET        serve until SIGINT or SIGTERM
 *     echo-driver SOCKET TEXT   its driver (echo-driver.c)
 *
 * The device looks like a virtio console (VIRTIO 1.2 section 5.3, device
 * id 3) with one port: queue 0 is the receiveq (the driver posts writable
 * buffers, the device fills them), queue 1 the transmitq (the driver posts
 * readable buffers).  Every byte the driver transmits comes back on the
 * receiveq.  It offers VIRTIO_CONSOLE_F_SIZE, so its config space says
 * how many columns and rows the console has.
 *
 * The two queues depend on each other: bytes move only while the driver
 * has both transmitted something and posted room to receive it.  Each
 * queue's kick runs on its own worker thread (vio/run.h), so both kicks
 * run the same "pump" under one lock, and the device keeps at most one
 * transmit chain that it could echo only in part, until receive buffers
 * come back.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <endian.h>
#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <vio/device.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define RXQ 0		 /* receiveq: device to driver */
#define TXQ 1		 /* transmitq: driver to device */
#define QUEUE_SIZE 256	 /* largest ring offered per queue */
#define BATCH QUEUE_SIZE /* transmit chains per pump: a kick is bounded */

struct echo {
	struct vio_device *dev;
	pthread_mutex_t lock; /* held by the pump, and by the queue hooks */
	bool live[2];	      /* queue started: its vq may be used */
	/* the transmit chain being echoed, kept while receive room is short */
	bool tx_held;
	struct vio_chain txc;
	struct vio_cursor tx_cur;
	/* segments for one chain of each queue: vio_vq_iov_max(QUEUE_SIZE) */
	struct vio_iov tx_iov[QUEUE_SIZE + VIO_CHAIN_CROSSINGS];
	struct vio_iov rx_iov[QUEUE_SIZE + VIO_CHAIN_CROSSINGS];
};
#define MAX_IOV (QUEUE_SIZE + VIO_CHAIN_CROSSINGS)

/* Copy from the transmit cursor into a receive chain's writable segments;
 * returns the bytes written. */
static uint32_t copy_out(struct vio_cursor *from, struct vio_cursor *to)
{
	char buf[4096];
	uint32_t done = 0;
	while (from->left && to->left) {
		size_t n = from->left < to->left ? from->left : to->left;
		if (n > sizeof(buf))
			n = sizeof(buf);
		n = vio_cursor_read(from, buf, n);
		done += (uint32_t)vio_cursor_write(to, buf, n);
	}
	return done;
}

/*
 * Move bytes from transmit chains into receive chains while both queues
 * have some.  Called with e->lock held, from either queue's kick.  Every
 * receive chain popped is pushed at once; a transmit chain is pushed once
 * all its bytes went out.  Returns true if it stopped at BATCH (more may
 * be waiting: the worker calls again).
 */
static bool pump(struct echo *e)
{
	if (!e->live[RXQ] || !e->live[TXQ])
		return false;
	struct vio_vq *rx = vio_device_queue(e->dev, RXQ);
	struct vio_vq *tx = vio_device_queue(e->dev, TXQ);
	bool rx_used = false, tx_used = false;
	unsigned n;

	for (n = 0; n < BATCH; n++) {
		if (!e->tx_held) {
			if (vio_vq_pop(tx, &e->txc, e->tx_iov, MAX_IOV) <= 0)
				break; /* none (or the queue broke) */
			/* 5.3.6.1: transmit buffers are read-only; writable
			 * segments are ignored */
			vio_cursor_init(&e->tx_cur, e->txc.out, e->txc.nr_out);
			e->tx_held = true;
		}
		if (e->tx_cur.left) {
			struct vio_chain rc;
			if (vio_vq_pop(rx, &rc, e->rx_iov, MAX_IOV) <= 0)
				break; /* no room: the next receive kick
					* resumes */
			struct vio_cursor to;
			vio_cursor_init(&to, rc.in, rc.nr_in);
			uint32_t len = copy_out(&e->tx_cur, &to);
			if (vio_vq_push(rx, rc.head, len) < 0)
				break; /* broken: the device needs a reset */
			rx_used = true;
		}
		if (!e->tx_cur.left) {
			e->tx_held = false;
			if (vio_vq_push(tx, e->txc.head, 0) < 0)
				break;
			tx_used = true;
		}
	}
	/* interrupt the driver once per queue, if it asked for it */
	if (rx_used)
		vio_vq_call(rx);
	if (tx_used)
		vio_vq_call(tx);
	return n == BATCH;
}

/* vio_device_ops.kick: queue idx has new buffers (or its worker started).
 * True when the pump stopped at its bound with work left: the worker
 * calls again.  A receiveq whose buffers wait for data returns false. */
static bool echo_kick(struct vio_device *dev, unsigned idx, struct vio_vq *vq)
{
	struct echo *e = vio_device_opaque(dev);
	(void)idx;
	(void)vq; /* the pump uses both queues */
	pthread_mutex_lock(&e->lock);
	bool more = pump(e);
	pthread_mutex_unlock(&e->lock);
	return more;
}

/* vio_device_ops.reset: the queues are gone already; so is any held chain
 * (the stop hook returned it). */
static void echo_reset(struct vio_device *dev)
{
	struct echo *e = vio_device_opaque(dev);
	pthread_mutex_lock(&e->lock);
	e->tx_held = false;
	pthread_mutex_unlock(&e->lock);
}

static const struct vio_device_ops echo_ops = {
    .kick = echo_kick,
    .reset = echo_reset,
};

/* ---- queue workers: vio/run.h threads, one per started queue ---- */

struct worker {
	struct echo *e;
	struct vio_backend *b;
	unsigned idx;
	struct vio_run_worker *w;
};

static bool worker_fn(void *arg)
{
	struct worker *w = arg;
	/* -> vio_device_kick -> echo_kick: true while the pump has more */
	return vio_backend_queue_kick(w->b, w->idx);
}

/*
 * The backend starts a queue once the driver set it up, and stops it
 * before it changes that queue, its memory or resets the device.  The
 * pump of one queue touches the other, so it must know: these hooks wrap
 * vio/run.h's workers (vio_run_backend_hooks does the same without the
 * live flags) and keep e->live[] under the lock.
 */
static void *queue_start(void *opaque, struct vio_backend *b, unsigned idx,
			 int kick_fd)
{
	struct echo *e = opaque;
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	*w = (struct worker){.e = e, .b = b, .idx = idx};
	pthread_mutex_lock(&e->lock);
	e->live[idx] = true;
	pthread_mutex_unlock(&e->lock);
	/* its first call pumps whatever waited for this queue */
	w->w = vio_run_worker_start(kick_fd, worker_fn, w, false);
	if (!w->w) {
		pthread_mutex_lock(&e->lock);
		e->live[idx] = false;
		pthread_mutex_unlock(&e->lock);
		free(w);
		return NULL;
	}
	return w;
}

static void queue_stop(void *opaque, void *handle)
{
	struct echo *e = opaque;
	struct worker *w = handle;
	vio_run_worker_stop(w->w); /* this queue's kick no longer runs */
	pthread_mutex_lock(&e->lock);
	if (w->idx == TXQ && e->tx_held) {
		/* the backend reads the ring state next: every popped chain
		 * must be back (the bytes not echoed yet are dropped) */
		struct vio_vq *tx = vio_device_queue(e->dev, TXQ);
		if (vio_vq_push(tx, e->txc.head, 0) == 0)
			vio_vq_call(tx);
		e->tx_held = false;
	}
	e->live[w->idx] = false;
	pthread_mutex_unlock(&e->lock);
	free(w);
}

/* ---- main: serve one frontend after another until a signal ---- */

static int serve(struct vio_backend *b, int sfd)
{
	for (;;) {
		struct pollfd p[2] = {{sfd, POLLIN, 0},
				      {vio_backend_fd(b), POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("echo-device: poll");
			return 1;
		}
		if (p[0].revents)
			return 0; /* SIGINT or SIGTERM */
		if (!p[1].revents)
			continue;
		/* accept a frontend, or handle one of its messages */
		int r = vio_backend_dispatch(b);
		if (r == -ECONNRESET) {
			fprintf(stderr, "echo-device: frontend gone\n");
		} else if (r < 0) {
			fprintf(stderr, "echo-device: %s\n", strerror(-r));
			return 1;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: echo-device SOCKET\n\n"
		   "Serve a virtio console (device id 3) that echoes what the "
		   "driver transmits,\nover vhost-user on the Unix socket "
		   "SOCKET, until SIGINT or SIGTERM.\nTry it with: echo-driver "
		   "SOCKET TEXT\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		usage(stderr);
		return 2;
	}

	/* signals through a signalfd: blocked before any thread starts */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN); /* a frontend may go at any time */
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	/* guest memory a frontend truncates must not kill us (vio/mem.h) */
	int r = vio_mem_sigbus_guard_install();
	if (sfd < 0 || r) {
		fprintf(stderr, "echo-device: signalfd or SIGBUS guard: %s\n",
			strerror(sfd < 0 ? errno : -r));
		return 1;
	}

	struct echo *e = calloc(1, sizeof(*e));
	if (!e)
		return 1;
	pthread_mutex_init(&e->lock, NULL);

	/* the config space (little-endian, VIRTIO 1.x) */
	struct virtio_console_config config = {
	    .cols = htole16(80),
	    .rows = htole16(25),
	};
	/* device feature bits, and the ring features the library handles */
	static const unsigned features[] = {
	    VIRTIO_CONSOLE_F_SIZE,
	    VIRTIO_F_RING_PACKED,
	    VIRTIO_RING_F_EVENT_IDX,
	    VIRTIO_RING_F_INDIRECT_DESC,
	};
	struct vio_device_opts dc = {
	    .name = "echo",
	    .device_id = VIRTIO_ID_CONSOLE,
	    .features = vio_features_from(features, sizeof(features) /
							sizeof(features[0])),
	    .num_queues = 2,
	    .queue_max_size = QUEUE_SIZE,
	    .config = &config,
	    .config_size = sizeof(config),
	    .ops = &echo_ops,
	    .opaque = e,
	};
	e->dev = vio_device_new(&dc);

	struct vio_backend_opts bc = {
	    .queue_start = queue_start,
	    .queue_stop = queue_stop,
	    .opaque = e,
	};
	struct vio_backend *b = e->dev ? vio_backend_new(e->dev, &bc) : NULL;
	int rc = 1;
	if (!b) {
		fprintf(stderr, "echo-device: %s\n", strerror(errno));
	} else if ((r = vio_backend_listen(b, argv[1]))) {
		fprintf(stderr, "echo-device: listen %s: %s\n", argv[1],
			strerror(-r));
	} else {
		/* the socket file appears only once it accepts connections */
		fprintf(stderr, "echo-device: listening on %s\n", argv[1]);
		rc = serve(b, sfd);
	}

	vio_backend_free(b); /* stops the workers, removes the socket */
	vio_device_free(e->dev);
	pthread_mutex_destroy(&e->lock);
	free(e);
	close(sfd);
	return rc;
}
