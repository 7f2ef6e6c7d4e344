/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page logging for live migration (vhost-user LOG_SHMFD, feature
 * VHOST_F_LOG_ALL): while a log is attached to a device queue, every byte
 * the device writes into driver memory sets its page's bit in a bitmap
 * the frontend shares, one bit per 4 KiB page of guest (device) address:
 * bit (gpa >> 12), in byte (gpa >> 15), bit ((gpa >> 12) & 7).  Bits are
 * set with an atomic OR after the write they cover (the frontend clears
 * them concurrently, then copies the page).
 *
 * What a queue logs (src/ring): the buffers it fills (every writable
 * descriptor of a chain, recorded when it is popped, logged when it is
 * pushed, before the used entry is published: over-logging is safe); the
 * used ring entries, used->idx, used->flags and avail_event (split), the
 * descriptors written back and the device event area (packed).  Indirect
 * tables are only read.  In-tree API, for the vhost-user backend and the
 * tests; not installed.
 */
#ifndef VIO_RING_DIRTYLOG_H
#define VIO_RING_DIRTYLOG_H

#include <stdbool.h>
#include <stdint.h>

struct vio_vq;

#define VIO_LOG_PAGE_SHIFT 12

/* The bitmap: size bytes at bits, mapped and owned by the caller. */
struct vio_dirty_log {
	uint8_t *bits;
	uint64_t size;
};

/* Set the bits of every page [gpa, gpa+len) touches (len 0: none).  Pages
 * past the bitmap's end are not logged; returns how many were not. */
uint64_t vio_dirty_log_range(const struct vio_dirty_log *log, uint64_t gpa,
			     uint64_t len);
/* Is page (gpa >> 12) marked?  (tests) */
bool vio_dirty_log_test(const struct vio_dirty_log *log, uint64_t gpa);

struct vio_vq_log_opts {
	const struct vio_dirty_log *log; /* NULL: logging off */
	/* log the ring's own writes (VHOST_VRING_F_LOG): the device area
	 * (split used ring, packed device event area) is at device_gpa
	 * (vring_addr.log_guest_addr), the packed descriptor ring at
	 * desc_gpa */
	bool ring;
	uint64_t device_gpa, desc_gpa;
};

/*
 * Attach (o->log set) or detach (o NULL or o->log NULL) a dirty log to a
 * device queue.  Only while no thread uses the queue and it holds no
 * popped chain (chains popped before are not known to the log).  The log
 * must stay mapped until it is detached or the queue freed.  Attaching
 * logs the whole device area once (the queue's set-up wrote it).  0,
 * -EINVAL (not a device queue), -ENOMEM.
 */
int vio_vq_set_log(struct vio_vq *vq, const struct vio_vq_log_opts *o);
/* Writes the log could not record since attach (outside the bitmap). */
uint64_t vio_vq_log_missed(const struct vio_vq *vq);

#endif
