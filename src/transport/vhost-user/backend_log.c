/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page logging for live migration (vhost-user.rst, "Migration"):
 * protocol feature LOG_SHMFD, feature bit VHOST_F_LOG_ALL, SET_LOG_BASE,
 * SET_LOG_FD, and handing the log to each queue (src/ring/dirtylog.h says
 * what a queue logs, and when).
 *
 * SET_LOG_BASE maps the frontend's bitmap (mmap_size bytes of its fd at
 * mmap_offset) through a one-region vio_memtable: the same checks as guest
 * memory (size, offset + size, the file's size, mmap) and the same guard
 * against a frontend that truncates the file afterwards.  A log that
 * cannot be mapped ends the connection with one log line; the backend
 * serves the next one.  The reply (a u64 0) says the new log is in use.
 *
 * Hand-over: queues only use the log through their vq, given at queue
 * start (vio_vu_log_attach).  A new log, and LOG_ALL turned on or off
 * (SET_FEATURES, backend.c), stop every queue first: the worker completes
 * the chains it holds and pushes them, logged into the old log; only then
 * is the old mapping dropped and the queues started again with the new
 * one.  No worker ever writes an unmapped log.  GET_VRING_BASE's stop
 * pushes with the log still attached, so those completions are logged.
 *
 * Ring addresses: the used ring (split) and the device event area
 * (packed) are logged at vring_addr.log_guest_addr when its flag
 * VHOST_VRING_F_LOG is set (QEMU sets both while logging).  A packed
 * ring's descriptors are written back too, and vhost-user gives only
 * their frontend address: their guest address is log_guest_addr plus the
 * distance between the two frontend addresses, accepted only if the
 * memory table maps that guest address to the very same bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "transport/vhost-user/backend_internal.h"

#define BAD(fmt, ...)                                                          \
	(vio_log_limited(&b->rl, "vhost-user: connection %lu: " fmt, b->conns, \
			 ##__VA_ARGS__),                                       \
	 -EPROTO)

void vio_vu_log_unmap(struct vio_backend *b)
{
	vio_memtable_free(b->log_mt); /* unmaps, closes its fd */
	b->log_mt = NULL;
	b->log = (struct vio_dirty_log){0};
	b->log_all = false;
	if (b->has_log_fd)
		vio_vu_close_fd(&b->log_fd);
	b->has_log_fd = false;
}

int vio_vu_h_set_log_base(struct vio_backend *b, struct vio_vu_msg *m)
{
	if (!(b->protocol & (1ull << VIO_VU_PF_LOG_SHMFD)))
		return BAD("SET_LOG_BASE without the LOG_SHMFD protocol "
			   "feature");
	uint64_t size = m->p.log.mmap_size, off = m->p.log.mmap_offset;
	struct vio_memtable *mt = vio_memtable_new(1);
	if (!mt)
		return BAD("SET_LOG_BASE: %s", strerror(ENOMEM));
	int fd = m->fds[0];
	m->fds[0] = -1; /* the table's now, even on failure */
	struct vio_region r = {
	    .addr = 0, .size = size, .offset = off, .fd = fd};
	int e = vio_memtable_map(mt, &r);
	void *p = e ? NULL : vio_memtable_ptr(mt, 0, size);
	if (!p) {
		vio_memtable_free(mt);
		return BAD("SET_LOG_BASE: cannot map the dirty log (size "
			   "%" PRIu64 " at offset %" PRIu64 "): %s",
			   size, off,
			   e == -EINVAL ? "size or offset out of range, or "
					  "past the end of the file"
					: strerror(e ? -e : EFAULT));
	}
	/* the workers finish with the old log before it goes */
	vio_vu_queues_stop(b);
	vio_memtable_free(b->log_mt);
	b->log_mt = mt;
	b->log = (struct vio_dirty_log){.bits = p, .size = size};
	vio_log_info("vhost-user: connection %lu: dirty log: %" PRIu64
		     " bytes (guest memory up to %" PRIu64 " MiB)",
		     b->conns, size, size * 8 * 4096 >> 20);
	int r2 = vio_vu_queues_start(b);
	m->p.u64 = 0;
	return r2;
}

int vio_vu_h_set_log_fd(struct vio_backend *b, struct vio_vu_msg *m)
{
	/* an eventfd the frontend may want signalled when the log is
	 * written; logging here is synchronous, the fd is kept, not used */
	if (b->has_log_fd)
		vio_vu_close_fd(&b->log_fd);
	b->log_fd = m->fds[0];
	m->fds[0] = -1;
	b->has_log_fd = true;
	return 0;
}

/* The packed descriptor ring's guest address (see above): 0 and *gpa, or
 * -EFAULT. */
static int desc_gpa(struct vio_backend *b, const struct vu_queue *q,
		    uint64_t *gpa)
{
	uint64_t len = 16ull * q->num;
	uint64_t g = q->addr.log + (q->addr.desc - q->addr.used);
	void *want = vio_memtable_uptr(b->mt, q->addr.desc, len);
	if (!want || vio_memtable_ptr(b->mt, g, len) != want)
		return -EFAULT;
	*gpa = g;
	return 0;
}

int vio_vu_log_attach(struct vio_backend *b, unsigned idx)
{
	struct vio_vq *vq = vio_device_queue(b->dev, idx);
	if (!vq)
		return 0;
	if (!b->log_all || !b->log.bits) {
		if (b->log_all)
			vio_log_limited(&b->rl,
					"vhost-user: connection %lu: queue %u: "
					"VHOST_F_LOG_ALL without SET_LOG_BASE: "
					"nothing logged",
					b->conns, idx);
		return vio_vq_set_log(vq, NULL);
	}
	const struct vu_queue *q = &b->q[idx];
	struct vio_vq_log_opts o = {.log = &b->log,
				    .ring = q->addr.flags &
					    (1u << VHOST_VRING_F_LOG),
				    .device_gpa = q->addr.log};
	int r = 0;
	if (o.ring && vio_vq_is_packed(vq) && desc_gpa(b, q, &o.desc_gpa)) {
		vio_log_err("vhost-user: connection %lu: queue %u: dirty log: "
			    "the packed descriptor ring (0x%" PRIx64
			    ") is not at log_guest_addr 0x%" PRIx64
			    " + its distance from the device area",
			    b->conns, idx, q->addr.desc, q->addr.log);
		r = -EFAULT;
	}
	if (!r)
		r = vio_vq_set_log(vq, &o);
	if (r) /* queue_try_start logs the failure */
		vio_device_queue_enable(b->dev, idx, false);
	return r;
}
