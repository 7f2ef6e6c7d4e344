/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's guest memory messages: SET_MEM_TABLE (the
 * whole table at once) and ADD_MEM_REG / REM_MEM_REG (one region each,
 * protocol feature CONFIGURE_MEM_SLOTS).  Every queue is stopped before
 * the table changes (its worker completes what the device holds) and the
 * ready ones started again after.  QEMU sends ADD_MEM_REG once per queue
 * pair for the same region: a repeat is counted, not mapped twice, and
 * REM_MEM_REG unmaps only the last of them.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "transport/vhost-user/backend_internal.h"

#define BAD(fmt, ...)                                                          \
	(vio_log_limited(&b->rl, "vhost-user: connection %lu: " fmt, b->conns, \
			 ##__VA_ARGS__),                                       \
	 -EPROTO)

static int map_region(struct vio_backend *b, const struct vio_vu_region *vr,
		      int fd)
{
	struct vio_region r = {.addr = vr->gpa,
			       .size = vr->size,
			       .uaddr = vr->uaddr,
			       .offset = vr->mmap_offset,
			       .fd = fd};
	int e = vio_memtable_map(b->mt, &r); /* owns fd, even on failure */
	if (e)
		return BAD("memory region gpa 0x%" PRIx64 " size 0x%" PRIx64
			   " uaddr 0x%" PRIx64 ": %s",
			   vr->gpa, vr->size, vr->uaddr, strerror(-e));
	return 0;
}

int vio_vu_h_set_mem_table(struct vio_backend *b, struct vio_vu_msg *m)
{
	vio_vu_queues_stop(b);
	vio_memtable_clear(b->mt);
	b->nreg_dup = 0;
	int r = 0;
	for (unsigned i = 0; i < m->p.mem.nregions; i++) {
		int fd = m->fds[i];
		m->fds[i] = -1;
		if (!r)
			r = map_region(b, &m->p.mem.r[i], fd);
		else
			close(fd);
	}
	return r ? r : vio_vu_queues_start(b);
}

static struct vu_reg_dup *reg_dup_find(struct vio_backend *b, uint64_t gpa,
				       uint64_t size)
{
	for (unsigned i = 0; i < b->nreg_dup; i++)
		if (b->reg_dup[i].gpa == gpa && b->reg_dup[i].size == size)
			return &b->reg_dup[i];
	return NULL;
}

/* Is vr already mapped, at the same guest and frontend addresses? */
static bool region_mapped(const struct vio_backend *b,
			  const struct vio_vu_region *vr)
{
	if (!vr->size)
		return false;
	void *g = vio_memtable_ptr(b->mt, vr->gpa, vr->size);
	return g && g == vio_memtable_uptr(b->mt, vr->uaddr, vr->size);
}

int vio_vu_h_add_mem_reg(struct vio_backend *b, struct vio_vu_msg *m)
{
	const struct vio_vu_region *vr = &m->p.reg.r;
	if (region_mapped(b, vr)) {
		/* a repeat (one per queue pair): counted, not mapped twice;
		 * its fd is closed by the caller */
		struct vu_reg_dup *d = reg_dup_find(b, vr->gpa, vr->size);
		if (!d) {
			if (b->nreg_dup == VU_REG_DUPS)
				return BAD("ADD_MEM_REG: more than %u regions "
					   "added twice",
					   VU_REG_DUPS);
			d = &b->reg_dup[b->nreg_dup++];
			*d = (struct vu_reg_dup){.gpa = vr->gpa,
						 .size = vr->size};
		}
		d->extra++;
		return 0;
	}
	if (vio_memtable_count(b->mt) >= b->cfg.max_mem_slots)
		return BAD("ADD_MEM_REG: all %u slots in use",
			   b->cfg.max_mem_slots);
	vio_vu_queues_stop(b);
	int fd = m->fds[0];
	m->fds[0] = -1;
	int r = map_region(b, &m->p.reg.r, fd);
	return r ? r : vio_vu_queues_start(b);
}

int vio_vu_h_rem_mem_reg(struct vio_backend *b, struct vio_vu_msg *m)
{
	struct vu_reg_dup *d = reg_dup_find(b, m->p.reg.r.gpa, m->p.reg.r.size);
	if (d && region_mapped(b, &m->p.reg.r)) {
		/* one of several adds of it goes: it stays mapped */
		if (--d->extra == 0)
			*d = b->reg_dup[--b->nreg_dup];
		return 0;
	}
	vio_vu_queues_stop(b);
	if (vio_memtable_remove(b->mt, m->p.reg.r.gpa, m->p.reg.r.size))
		return BAD("REM_MEM_REG: no region gpa 0x%" PRIx64
			   " size 0x%" PRIx64,
			   m->p.reg.r.gpa, m->p.reg.r.size);
	return vio_vu_queues_start(b);
}
