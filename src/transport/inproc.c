/* SPDX-License-Identifier: MIT */
/*
 * The in-process transport (vio/inproc.h): a driver and a device in one
 * process, normally on two threads, with the isolation of two processes
 * where it matters.
 *
 * Memory: the device never uses the driver's pointers.  Each region of
 * the driver's struct vio_mem is mapped a second time, from a dup of its
 * memfd, into a device-side struct vio_memtable; ring areas and buffers
 * reach the device only as device addresses translated and bounds-checked
 * through it.  Regions the vio_mem gains later are mapped when a queue is
 * set up, when the driver kicks (cheap check first) and before each batch
 * of kicks is dispatched.  A buffer from a region created after the
 * device's last dispatch and published without a kick (EVENT_IDX lets the
 * driver skip kicks while the device is busy) is not yet mapped and
 * breaks the queue: drivers allocate their buffers before starting I/O,
 * or grow the vio_mem with vio_mem_add_region() before the queues start.
 *
 * Notifications: per queue one eventfd for kicks (driver -> device) and
 * one for calls (device -> driver); one more for config changes (device
 * -> driver: the driver's config_changed runs on a waiter's thread or in
 * vio_inproc_serve_config, never inside the device's call).  The kick
 * eventfds and a stop eventfd sit in an epoll set:
 * vio_inproc_device_poll() waits on it and dispatches.
 *
 * Locking: ip->lock serialises the device-side model, as vio/device.h
 * asks of a transport: the driver thread's control ops (status, features,
 * config writes, queue setup) and the device thread's kick dispatch.  The
 * data path (kick, call, wait) takes no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_ring.h>

#include "model/model_internal.h"
#include "util/log.h"
#include <vio/inproc.h>

#define STOP_TAG UINT32_MAX
/* Device-side table size: vio_mem never has more regions than this. */
#define INPROC_MAX_REGIONS 256

struct vio_inproc {
	struct vio_device *dev;
	struct vio_mem *mem;
	struct vio_drvdev *vdev;
	struct vio_memtable *mt;
	unsigned synced; /* regions of mem mapped in mt: __atomic access */
	pthread_mutex_t lock;
	int epfd, stopfd;
	/* config changes: the device side signals cfgfd; a driver thread
	 * (a waiter, cfg_polled: one at a time, or serve_config) drains it
	 * and runs the driver's config_changed */
	int cfgfd;
	bool cfg_polled; /* __atomic */
	bool stopped;	 /* __atomic access */
	bool attached;	 /* dev's transport hooks point at us */
	struct vio_ratelimit rl;
	unsigned nq;
	int kickfd[VIO_MAX_QUEUES];
	int callfd[VIO_MAX_QUEUES];
};

static void signal_fd(int fd)
{
	uint64_t one = 1;
	/* EAGAIN only when the counter would overflow: still signalled */
	ssize_t r = write(fd, &one, sizeof(one));
	(void)r;
}

static void drain_fd(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
}

/* Map the regions mem gained since the last sync.  Caller holds lock. */
static int sync_mem_locked(struct vio_inproc *ip)
{
	unsigned n = vio_mem_region_count(ip->mem);
	unsigned i = __atomic_load_n(&ip->synced, __ATOMIC_RELAXED);
	for (; i < n; i++) {
		const struct vio_region *r = vio_mem_region(ip->mem, i);
		if (!r)
			return -EINVAL;
		struct vio_region reg = *r;
		int ret;
		if (r->fd >= 0) {
			reg.fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
			if (reg.fd < 0)
				return -errno;
			reg.ptr = NULL;
			ret = vio_memtable_map(ip->mt, &reg);
		} else {
			ret = vio_memtable_add(ip->mt, &reg);
		}
		if (ret < 0)
			return ret;
		__atomic_store_n(&ip->synced, i + 1, __ATOMIC_RELEASE);
	}
	return 0;
}

static bool mem_grew(const struct vio_inproc *ip)
{
	return vio_mem_region_count(ip->mem) >
	       __atomic_load_n(&ip->synced, __ATOMIC_ACQUIRE);
}

/* ---- driver side: the transport ops ---- */

static uint32_t ip_device_id(void *t)
{
	struct vio_inproc *ip = t;
	return vio_device_device_id(ip->dev);
}

static uint32_t ip_vendor_id(void *t)
{
	struct vio_inproc *ip = t;
	return vio_device_vendor_id(ip->dev);
}

static uint8_t ip_get_status(void *t)
{
	struct vio_inproc *ip = t;
	return vio_device_get_status(ip->dev);
}

static int ip_set_status(void *t, uint8_t status)
{
	struct vio_inproc *ip = t;
	pthread_mutex_lock(&ip->lock);
	int r = vio_device_set_status(ip->dev, status);
	pthread_mutex_unlock(&ip->lock);
	return r;
}

static int ip_get_features(void *t, struct vio_features *out)
{
	struct vio_inproc *ip = t;
	vio_device_offered(ip->dev, out);
	return 0;
}

static int ip_set_features(void *t, const struct vio_features *f)
{
	struct vio_inproc *ip = t;
	pthread_mutex_lock(&ip->lock);
	int r = vio_device_set_features(ip->dev, f);
	pthread_mutex_unlock(&ip->lock);
	return r;
}

static int ip_config_read(void *t, unsigned off, void *buf, unsigned len)
{
	struct vio_inproc *ip = t;
	return vio_device_config_read(ip->dev, off, buf, len);
}

static int ip_config_write(void *t, unsigned off, const void *buf, unsigned len)
{
	struct vio_inproc *ip = t;
	pthread_mutex_lock(&ip->lock);
	int r = vio_device_config_write(ip->dev, off, buf, len);
	pthread_mutex_unlock(&ip->lock);
	return r;
}

static uint32_t ip_config_generation(void *t)
{
	struct vio_inproc *ip = t;
	return vio_device_config_generation(ip->dev);
}

static unsigned ip_num_queues(void *t)
{
	struct vio_inproc *ip = t;
	return ip->nq;
}

static int ip_queue_max_size(void *t, unsigned idx)
{
	struct vio_inproc *ip = t;
	return vio_device_queue_max_size(ip->dev, idx);
}

/* Byte sizes of the three ring areas (VIRTIO 1.2 2.7 with the event
 * index words, 2.8): each is checked to lie inside one mapped region. */
static void area_bytes(uint16_t size, bool packed, uint64_t b[3])
{
	b[0] = 16ull * size;
	if (packed) {
		b[1] = sizeof(struct vring_packed_desc_event);
		b[2] = sizeof(struct vring_packed_desc_event);
	} else {
		b[1] = 6ull + 2ull * size;
		b[2] = 6ull + 8ull * size;
	}
}

static int ip_queue_setup(void *t, unsigned idx, uint16_t size,
			  const struct vio_vq_layout *layout)
{
	struct vio_inproc *ip = t;
	if (idx >= ip->nq || !layout)
		return -EINVAL;
	pthread_mutex_lock(&ip->lock);
	int r = sync_mem_locked(ip);
	if (r < 0)
		goto out;

	bool packed = vio_device_has_feature(ip->dev, VIRTIO_F_RING_PACKED);
	uint64_t b[3];
	area_bytes(size, packed, b);
	/* the device's view: only the device addresses cross over */
	struct vio_vq_layout dl = {
	    .desc_addr = layout->desc_addr,
	    .driver_addr = layout->driver_addr,
	    .device_addr = layout->device_addr,
	};
	dl.desc = vio_memtable_ptr(ip->mt, dl.desc_addr, b[0]);
	dl.driver = vio_memtable_ptr(ip->mt, dl.driver_addr, b[1]);
	dl.device = vio_memtable_ptr(ip->mt, dl.device_addr, b[2]);
	if (!dl.desc || !dl.driver || !dl.device) {
		r = -EFAULT;
		goto out;
	}
	r = vio_device_queue_setup(ip->dev, idx, size, &dl, ip->mt);
	if (r == 0)
		r = vio_device_queue_enable(ip->dev, idx, true);
out:
	pthread_mutex_unlock(&ip->lock);
	return r;
}

static int ip_queue_disable(void *t, unsigned idx)
{
	struct vio_inproc *ip = t;
	pthread_mutex_lock(&ip->lock);
	int r = vio_device_queue_enable(ip->dev, idx, false);
	pthread_mutex_unlock(&ip->lock);
	return r;
}

static int ip_sync_mem(void *t)
{
	struct vio_inproc *ip = t;
	if (!mem_grew(ip))
		return 0;
	pthread_mutex_lock(&ip->lock);
	int r = sync_mem_locked(ip);
	pthread_mutex_unlock(&ip->lock);
	if (r < 0)
		vio_log_limited(&ip->rl, "inproc: cannot map new memory: %s",
				strerror(-r));
	return r < 0 ? r : 0;
}

static void ip_notify(void *t, unsigned idx)
{
	struct vio_inproc *ip = t;
	if (idx >= ip->nq)
		return;
	/* for drivers that did not sync before adding */
	(void)ip_sync_mem(ip);
	signal_fd(ip->kickfd[idx]);
}

int vio_inproc_serve_config(struct vio_inproc *ip)
{
	uint64_t v;
	if (read(ip->cfgfd, &v, sizeof(v)) != sizeof(v))
		return 0; /* EAGAIN: none pending (or another thread took it) */
	vio_drvdev_config_changed(ip->vdev);
	return 1;
}

int vio_inproc_config_fd(const struct vio_inproc *ip)
{
	return ip->cfgfd;
}

static int ip_wait(void *t, unsigned idx, int timeout_ms)
{
	struct vio_inproc *ip = t;
	if (idx >= ip->nq)
		return -EINVAL;
	/* one waiter at a time also waits for config changes (else -1,
	 * which poll ignores); a change alone wakes with 0 */
	bool no = false;
	bool cfg =
	    __atomic_compare_exchange_n(&ip->cfg_polled, &no, true, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	struct pollfd p[2] = {{.fd = ip->callfd[idx], .events = POLLIN},
			      {.fd = cfg ? ip->cfgfd : -1, .events = POLLIN}};
	int r = poll(p, 2, timeout_ms);
	int e = errno;
	if (cfg) {
		if (r > 0 && p[1].revents)
			(void)vio_inproc_serve_config(ip);
		__atomic_store_n(&ip->cfg_polled, false, __ATOMIC_RELEASE);
	}
	if (r < 0)
		return -e;
	if (r == 0)
		return -ETIMEDOUT;
	if (p[0].revents)
		drain_fd(ip->callfd[idx]); /* EAGAIN: another waiter took it */
	return 0;
}

static int ip_call_fd(void *t, unsigned idx)
{
	struct vio_inproc *ip = t;
	return idx < ip->nq ? ip->callfd[idx] : -1;
}

static const struct vio_transport_ops inproc_ops = {
    .name = "inproc",
    .device_id = ip_device_id,
    .vendor_id = ip_vendor_id,
    .get_status = ip_get_status,
    .set_status = ip_set_status,
    .get_features = ip_get_features,
    .set_features = ip_set_features,
    .config_read = ip_config_read,
    .config_write = ip_config_write,
    .config_generation = ip_config_generation,
    .num_queues = ip_num_queues,
    .queue_max_size = ip_queue_max_size,
    .queue_setup = ip_queue_setup,
    .queue_disable = ip_queue_disable,
    .notify = ip_notify,
    .wait = ip_wait,
    .call_fd = ip_call_fd,
    .sync_mem = ip_sync_mem,
    /* release: the vdev belongs to ip, which vio_inproc_free frees */
};

/* ---- device side: the hooks the device calls ---- */

static void dev_call(void *t, unsigned idx)
{
	struct vio_inproc *ip = t;
	if (idx < ip->nq)
		signal_fd(ip->callfd[idx]);
}

/* Wake every waiter: vio_drvdev_wait_used re-reads status after a wake. */
static void dev_needs_reset(void *t)
{
	struct vio_inproc *ip = t;
	for (unsigned i = 0; i < ip->nq; i++)
		signal_fd(ip->callfd[i]);
}

/* Any thread: the driver's config_changed runs on a driver thread
 * (ip_wait, vio_inproc_serve_config), never inside the device's call. */
static void dev_config_changed(void *t)
{
	struct vio_inproc *ip = t;
	signal_fd(ip->cfgfd);
}

static const struct vio_device_transport inproc_hooks = {
    .call = dev_call,
    .needs_reset = dev_needs_reset,
    .config_changed = dev_config_changed,
};

/* ---- lifetime ---- */

struct vio_inproc *vio_inproc_new(struct vio_device *dev, struct vio_mem *mem)
{
	if (!dev || !mem) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_inproc *ip = calloc(1, sizeof(*ip));
	if (!ip) {
		errno = ENOMEM;
		return NULL;
	}
	ip->dev = dev;
	ip->mem = mem;
	ip->nq = vio_device_num_queues(dev);
	ip->epfd = ip->stopfd = ip->cfgfd = -1;
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++)
		ip->kickfd[i] = ip->callfd[i] = -1;
	pthread_mutex_init(&ip->lock, NULL);

	int e = ENOMEM;
	ip->mt = vio_memtable_new(INPROC_MAX_REGIONS);
	if (!ip->mt)
		goto fail;
	ip->epfd = epoll_create1(EPOLL_CLOEXEC);
	ip->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ip->cfgfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ip->epfd < 0 || ip->stopfd < 0 || ip->cfgfd < 0)
		goto fail_errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STOP_TAG};
	if (epoll_ctl(ip->epfd, EPOLL_CTL_ADD, ip->stopfd, &ev) < 0)
		goto fail_errno;
	for (unsigned i = 0; i < ip->nq; i++) {
		ip->kickfd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ip->callfd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ip->kickfd[i] < 0 || ip->callfd[i] < 0)
			goto fail_errno;
		ev.data.u32 = i;
		if (epoll_ctl(ip->epfd, EPOLL_CTL_ADD, ip->kickfd[i], &ev) < 0)
			goto fail_errno;
	}
	pthread_mutex_lock(&ip->lock);
	int r = sync_mem_locked(ip);
	pthread_mutex_unlock(&ip->lock);
	if (r < 0) {
		e = -r;
		goto fail;
	}
	ip->vdev = vio_drvdev_new(&inproc_ops, ip, mem);
	if (!ip->vdev)
		goto fail_errno;
	vio_device_attach(dev, &inproc_hooks, ip);
	ip->attached = true;
	return ip;

fail_errno:
	e = errno ? errno : ENOMEM;
fail:
	vio_inproc_free(ip);
	errno = e;
	return NULL;
}

void vio_inproc_free(struct vio_inproc *ip)
{
	if (!ip)
		return;
	/* the driver side first: it resets the device if still live */
	vio_drvdev_free(ip->vdev);
	ip->vdev = NULL;
	if (ip->attached) {
		pthread_mutex_lock(&ip->lock);
		/* free the device's vqs before the memtable they point into */
		int r = vio_device_set_status(ip->dev, 0);
		(void)r; /* a reset is always legal */
		vio_device_attach(ip->dev, NULL, NULL);
		pthread_mutex_unlock(&ip->lock);
	}
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++) {
		if (ip->kickfd[i] >= 0)
			close(ip->kickfd[i]);
		if (ip->callfd[i] >= 0)
			close(ip->callfd[i]);
	}
	if (ip->stopfd >= 0)
		close(ip->stopfd);
	if (ip->cfgfd >= 0)
		close(ip->cfgfd);
	if (ip->epfd >= 0)
		close(ip->epfd);
	vio_memtable_free(ip->mt);
	pthread_mutex_destroy(&ip->lock);
	free(ip);
}

struct vio_drvdev *vio_inproc_vdev(struct vio_inproc *ip)
{
	return ip->vdev;
}

int vio_inproc_device_fd(const struct vio_inproc *ip)
{
	return ip->epfd;
}

void vio_inproc_stop(struct vio_inproc *ip)
{
	__atomic_store_n(&ip->stopped, true, __ATOMIC_RELEASE);
	signal_fd(ip->stopfd); /* never drained: poll stays woken */
}

int vio_inproc_device_poll(struct vio_inproc *ip, int timeout_ms)
{
	struct epoll_event ev[VIO_MAX_QUEUES + 1];
	bool kicked[VIO_MAX_QUEUES];

	if (__atomic_load_n(&ip->stopped, __ATOMIC_ACQUIRE))
		return -ECANCELED;
	int n = epoll_wait(ip->epfd, ev, (int)ip->nq + 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	unsigned nk = 0;
	memset(kicked, 0, sizeof(kicked[0]) * ip->nq);
	for (int i = 0; i < n; i++) {
		uint32_t tag = ev[i].data.u32;
		if (tag == STOP_TAG)
			return -ECANCELED;
		uint64_t v;
		if (tag < ip->nq &&
		    read(ip->kickfd[tag], &v, sizeof(v)) == sizeof(v)) {
			kicked[tag] = true;
			nk++;
		}
	}
	if (!nk)
		return 0;

	int dispatched = 0;
	pthread_mutex_lock(&ip->lock);
	if (mem_grew(ip)) {
		int r = sync_mem_locked(ip);
		if (r < 0)
			vio_log_limited(&ip->rl,
					"inproc: cannot map new memory: %s",
					strerror(-r));
	}
	for (unsigned i = 0; i < ip->nq; i++) {
		if (!kicked[i])
			continue;
		/* a device stops at its batch bound: kick ourselves so the
		 * rest is served on the next turn, after the other queues */
		if (vio_device_kick(ip->dev, i))
			signal_fd(ip->kickfd[i]);
		dispatched++;
	}
	pthread_mutex_unlock(&ip->lock);
	return dispatched;
}
