/* SPDX-License-Identifier: MIT */
/*
 * Internal: the SIGBUS guard's registry of mapped guest regions (guard.c),
 * used by the device-side memory table (memtable.c).  The public part,
 * vio_mem_sigbus_guard_install(), is in vio/mem.h.
 */
#ifndef VIO_MEM_GUARD_H
#define VIO_MEM_GUARD_H

#include <stddef.h>
#include <stdint.h>

/*
 * What the signal handler reports to a table when one of its regions
 * faults.  Both fields are accessed with __atomic builtins only.
 */
struct vio_mem_guard_owner {
	int fault_fd;	     /* shut down on a fault, or -1 */
	uint64_t fault_addr; /* device address of the first fault, or
				VIO_BAD_ADDR */
};

/*
 * Register the mapping [base, base + len) (what mmap returned) whose
 * region starts at host with device address addr and size bytes.  Returns
 * a slot number for vio_mem_guard_unregister(), or -ENOSPC when every slot
 * is taken.  owner must outlive the registration.
 */
int vio_mem_guard_register(void *base, size_t len, const void *host,
			   uint64_t addr, uint64_t size,
			   struct vio_mem_guard_owner *owner);
/*
 * Forget a slot.  When this returns no signal handler is using it (one
 * that was is waited for), so the mapping may be unmapped.  Never call it
 * from a signal handler.
 */
void vio_mem_guard_unregister(int slot);

#endif
