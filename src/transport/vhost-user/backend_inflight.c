/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's in-flight region (protocol feature
 * INFLIGHT_SHMFD; docs/interop/vhost-user.rst "Inflight I/O tracking").
 *
 * GET_INFLIGHT_FD: the backend makes the region, a zeroed memfd sealed
 * against shrinking and growing (the frontend can never make a mapping of
 * it fault), and hands it over; it keeps nothing.  SET_INFLIGHT_FD: the
 * frontend gives a region back, this backend's or a dead predecessor's;
 * it is mapped and every queue that starts afterwards attaches its part
 * (vio_vq_set_inflight with resume: a region never used is initialised,
 * one that holds a dead backend's state is recovered, and its chains in
 * flight are popped again first).
 *
 * Layout: num_queues parts, one per queue, each of
 * vio_inflight_queue_bytes(queue_size, packed = true) bytes: the packed
 * layout is the larger, so the stride does not depend on which format is
 * negotiated when (a frontend may ask before SET_FEATURES), and a ring of
 * either format up to queue_size entries fits its part.
 *
 * Everything in SET_INFLIGHT_FD is checked against this backend and the
 * fd itself (size, seals) before it is mapped; a bad value ends the
 * connection with one log line.  The region is mapped and unmapped only
 * while no queue runs (no worker can be writing it).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/vhost-user/backend_internal.h"

#define BAD(fmt, ...)                                                          \
	(vio_log_limited(&b->rl, "vhost-user: connection %lu: " fmt, b->conns, \
			 ##__VA_ARGS__),                                       \
	 -EPROTO)

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

static size_t stride_of(unsigned qsize)
{
	return vio_inflight_queue_bytes((uint16_t)qsize, true);
}

/* num_queues and queue_size of either message: 1..queues of the device,
 * 1..the spec's largest ring (a ring larger than the device takes never
 * starts; the part is only bigger than it needs). */
static int check_shape(struct vio_backend *b, const char *name,
		       const struct vio_vu_inflight *in)
{
	if (!(b->protocol & (1ull << VIO_VU_PF_INFLIGHT_SHMFD)))
		return BAD("%s without INFLIGHT_SHMFD negotiated", name);
	if (in->num_queues == 0 || in->num_queues > b->nq)
		return BAD("%s: %u queues (the device has %u)", name,
			   in->num_queues, b->nq);
	if (in->queue_size == 0 || in->queue_size > VIO_VQ_MAX_SIZE)
		return BAD("%s: queue size %u (at most %u)", name,
			   in->queue_size, VIO_VQ_MAX_SIZE);
	return 0;
}

int vio_vu_h_get_inflight(struct vio_backend *b, struct vio_vu_msg *m)
{
	struct vio_vu_inflight *in = &m->p.inflight;
	int r = check_shape(b, "GET_INFLIGHT_FD", in);
	if (r)
		return r;
	size_t size = (size_t)in->num_queues * stride_of(in->queue_size);
	int fd = memfd_create("vio-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return BAD("GET_INFLIGHT_FD: memfd_create: %s",
			   strerror(errno));
	/* a new memfd reads as zeroes: every queue's version 0, "never
	 * used" */
	if (ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, SEALS | F_SEAL_SEAL)) {
		int e = errno;
		close(fd);
		return BAD("GET_INFLIGHT_FD: %zu bytes: %s", size, strerror(e));
	}
	in->mmap_size = size;
	in->mmap_offset = 0;
	in->padding = 0;
	b->reply_fd = fd;
	b->has_reply_fd = true;
	return 0;
}

void vio_vu_inflight_unmap(struct vio_backend *b)
{
	if (b->inflight_map)
		munmap(b->inflight_map, b->inflight_map_len);
	b->inflight_map = NULL;
	b->inflight_map_len = 0;
	b->inflight_base = NULL;
	b->inflight_nq = b->inflight_qsize = 0;
	b->inflight_stride = 0;
}

int vio_vu_h_set_inflight(struct vio_backend *b, struct vio_vu_msg *m)
{
	const struct vio_vu_inflight *in = &m->p.inflight;
	int r = check_shape(b, "SET_INFLIGHT_FD", in);
	if (r)
		return r;
	for (unsigned i = 0; i < b->nq; i++)
		if (vio_device_queue(b->dev, i))
			return BAD("SET_INFLIGHT_FD while queue %u runs", i);
	size_t stride = stride_of(in->queue_size);
	uint64_t need = (uint64_t)in->num_queues * stride;
	if (in->mmap_size < need)
		return BAD("SET_INFLIGHT_FD: %" PRIu64
			   " bytes for %u queues of "
			   "%u (%" PRIu64 " needed)",
			   in->mmap_size, in->num_queues, in->queue_size, need);
	int fd = m->fds[0];
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return BAD("SET_INFLIGHT_FD: not a memory file");
	if (in->mmap_offset > (uint64_t)st.st_size ||
	    in->mmap_size > (uint64_t)st.st_size - in->mmap_offset)
		return BAD("SET_INFLIGHT_FD: offset %" PRIu64 " + %" PRIu64
			   " bytes past the file's %" PRIu64,
			   in->mmap_offset, in->mmap_size,
			   (uint64_t)st.st_size);
	/* a file the frontend could shrink would fault under a worker */
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return BAD("SET_INFLIGHT_FD: the file is not sealed against "
			   "shrinking");
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t pgsz = pg > 0 ? (uint64_t)pg : 4096;
	uint64_t start = in->mmap_offset & ~(pgsz - 1);
	size_t len = (size_t)(in->mmap_offset - start + need);
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 (off_t)start);
	if (map == MAP_FAILED)
		return BAD("SET_INFLIGHT_FD: mmap of %zu bytes: %s", len,
			   strerror(errno));
	vio_vu_inflight_unmap(b);
	b->inflight_map = map;
	b->inflight_map_len = len;
	b->inflight_base = (uint8_t *)map + (in->mmap_offset - start);
	b->inflight_stride = stride;
	b->inflight_nq = in->num_queues;
	b->inflight_qsize = in->queue_size;
	/* once per (re)connection: says in-flight tracking is on */
	vio_log("vhost-user: connection %lu: in-flight region for %u queues "
		"of up to %u entries",
		b->conns, in->num_queues, in->queue_size);
	return 0; /* the caller closes the fd: the mapping stays */
}

int vio_vu_inflight_attach(struct vio_backend *b, unsigned idx)
{
	struct vio_vq *vq = vio_device_queue(b->dev, idx);
	if (!b->inflight_base || !vq || idx >= b->inflight_nq)
		return 0; /* no region for this queue: no tracking */
	int r;
	if (vio_vq_size(vq) > b->inflight_qsize) {
		r = BAD("queue %u: ring of %u, in-flight region for %u", idx,
			vio_vq_size(vq), b->inflight_qsize);
	} else {
		void *part =
		    b->inflight_base + (size_t)idx * b->inflight_stride;
		r = vio_vq_set_inflight(vq, part, true);
		if (r == -EINVAL)
			r = BAD("queue %u: the in-flight region does not match "
				"the ring",
				idx);
		else if (r)
			r = BAD("queue %u: in-flight region: %s", idx,
				strerror(-r));
		else if (vio_vq_inflight_recovered(vq))
			vio_log("vhost-user: connection %lu: queue %u: %u "
				"requests in flight resubmitted",
				b->conns, idx, vio_vq_inflight_recovered(vq));
	}
	if (r)
		vio_device_queue_enable(b->dev, idx, false);
	return r;
}
