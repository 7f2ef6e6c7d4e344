/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard: guest memory that its owner truncates must not kill
 * the process.
 *
 * A vhost-user frontend shares guest memory as file descriptors; the
 * device maps them MAP_SHARED.  If the frontend later shrinks the file
 * (ftruncate; memory-backend-file is not sealed, and a hostile frontend
 * can do anything), the next access to a page past the new end raises
 * SIGBUS (si_code BUS_ADRERR) in whichever thread touched it: a queue
 * worker, the control thread.  The same happens when a hugetlbfs pool or
 * a size-limited tmpfs cannot back a hole the device touches.
 *
 * The fix, in the handler: if the faulting address lies in a registered
 * guest mapping, map anonymous zero-filled memory over the whole mapping
 * (MAP_FIXED, so the faulting instruction completes when the handler
 * returns and every later access to that region is harmless), record the
 * fault in the region's table and shut down the table's fault fd (the
 * vhost-user connection), so the table's owner sees the connection end
 * and drops it.  Any other SIGBUS goes to the handler that was installed
 * before ours, or takes the default action (the process dies by SIGBUS,
 * as without the guard): a real bug still crashes.
 *
 * The whole mapping is replaced, not just the faulting page: a hugetlbfs
 * mapping can only be replaced in huge-page units, the connection is
 * ending anyway, and it bounds the signals per region to one.
 *
 * The registry is the one global of the memory layer (a signal handler
 * has no other way to find it): a fixed array of slots, read by the
 * handler with atomics only.  The handler takes no lock, allocates
 * nothing and calls only mmap, shutdown, sigaction and raise.
 *
 * Slot life: FREE -> CLAIMED (a registering thread owns the fields) ->
 * ACTIVE (the handler may use it) -> DRAINING (new handlers ignore it;
 * the unregistering thread waits until no handler is inside) -> FREE.
 * A handler announces itself in users before it re-checks the state
 * (both sequentially consistent), so either the handler sees DRAINING,
 * or the unregistering thread sees the handler in users and waits: an
 * unregistered mapping is never touched again, and may be unmapped.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "mem/guard.h"
#include <vio/mem.h>

/* Far more than one process maps: vhost-user allows 509 regions per
 * connection (the memory table's default capacity). */
#define GUARD_SLOTS 4096u

_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
	       "the SIGBUS handler needs lock-free 64-bit atomics");
_Static_assert(__atomic_always_lock_free(sizeof(int), 0),
	       "the SIGBUS handler needs lock-free int atomics");

enum { SLOT_FREE, SLOT_CLAIMED, SLOT_ACTIVE, SLOT_DRAINING };

struct guard_slot {
	int state; /* SLOT_*, atomic */
	int users; /* handlers inside this slot, atomic */
	/* written while CLAIMED, read while ACTIVE (after an acquire) */
	uintptr_t base, len; /* the mapping */
	uintptr_t host;	     /* byte 0 of the region */
	uint64_t addr, size; /* the region in device address space */
	struct vio_mem_guard_owner *owner;
};

static struct guard_slot slots[GUARD_SLOTS];
static unsigned slots_hw; /* no slot at or above this was used; atomic */

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;		 /* under install_lock */
static struct sigaction prev_sa; /* written once, before our handler */

int vio_mem_guard_register(void *base, size_t len, const void *host,
			   uint64_t addr, uint64_t size,
			   struct vio_mem_guard_owner *owner)
{
	for (unsigned i = 0; i < GUARD_SLOTS; i++) {
		struct guard_slot *s = &slots[i];
		int expect = SLOT_FREE;
		if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != SLOT_FREE ||
		    !__atomic_compare_exchange_n(
			&s->state, &expect, SLOT_CLAIMED, false,
			__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		s->base = (uintptr_t)base;
		s->len = len;
		s->host = (uintptr_t)host;
		s->addr = addr;
		s->size = size;
		s->owner = owner;
		unsigned hw = __atomic_load_n(&slots_hw, __ATOMIC_RELAXED);
		while (hw < i + 1 && !__atomic_compare_exchange_n(
					 &slots_hw, &hw, i + 1, true,
					 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			;
		__atomic_store_n(&s->state, SLOT_ACTIVE, __ATOMIC_SEQ_CST);
		return (int)i;
	}
	return -ENOSPC;
}

void vio_mem_guard_unregister(int slot)
{
	if (slot < 0 || (unsigned)slot >= GUARD_SLOTS)
		return;
	struct guard_slot *s = &slots[slot];
	__atomic_store_n(&s->state, SLOT_DRAINING, __ATOMIC_SEQ_CST);
	/* a handler inside finishes an mmap and a shutdown: short */
	while (__atomic_load_n(&s->users, __ATOMIC_SEQ_CST))
		sched_yield();
	__atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
}

/* In the handler: s is ACTIVE and holds a; replace its mapping, tell its
 * owner.  False if the mapping cannot be replaced. */
static bool fix_slot(const struct guard_slot *s, uintptr_t a)
{
	void *p = mmap((void *)s->base, s->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		       -1, 0);
	if (p == MAP_FAILED)
		return false;
	/* the device address that faulted, clamped into the region (the
	 * mapping has rounding on both sides) */
	uint64_t off = a > s->host ? (uint64_t)(a - s->host) : 0;
	if (off >= s->size)
		off = s->size - 1;
	uint64_t none = VIO_BAD_ADDR;
	struct vio_mem_guard_owner *o = s->owner;
	__atomic_compare_exchange_n(&o->fault_addr, &none, s->addr + off, false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	int fd = __atomic_load_n(&o->fault_fd, __ATOMIC_SEQ_CST);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	return true;
}

/* In the handler: true if a was in a registered mapping, now replaced. */
static bool guard_fix(uintptr_t a)
{
	unsigned hw = __atomic_load_n(&slots_hw, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < hw; i++) {
		struct guard_slot *s = &slots[i];
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SLOT_ACTIVE)
			continue;
		__atomic_fetch_add(&s->users, 1, __ATOMIC_SEQ_CST);
		bool hit = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST) ==
			       SLOT_ACTIVE &&
			   a - s->base < s->len;
		bool fixed = hit && fix_slot(s, a);
		__atomic_fetch_sub(&s->users, 1, __ATOMIC_SEQ_CST);
		if (hit)
			return fixed;
	}
	return false;
}

/* Not ours: what would have happened without the guard. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	if (prev_sa.sa_flags & SA_SIGINFO) {
		if (prev_sa.sa_sigaction) {
			prev_sa.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (prev_sa.sa_handler == SIG_IGN) {
		/* a fault cannot be ignored (the kernel would kill us);
		 * a SIGBUS sent by kill() can */
		if (!si || si->si_code <= 0)
			return;
	} else if (prev_sa.sa_handler != SIG_DFL) {
		prev_sa.sa_handler(sig);
		return;
	}
	/* the default action: die by SIGBUS (with a core) when the handler
	 * returns, since the signal is blocked until then */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	/* only faults the kernel raised for an address (not kill()) */
	bool fixed = si && si->si_code == BUS_ADRERR &&
		     guard_fix((uintptr_t)si->si_addr);
	errno = saved;
	if (!fixed)
		chain(sig, si, uc);
	errno = saved;
}

int vio_mem_sigbus_guard_install(void)
{
	int r = 0;
	pthread_mutex_lock(&install_lock);
	if (!installed) {
		struct sigaction sa;
		/* the previous action is stored before our handler can run */
		if (sigaction(SIGBUS, NULL, &prev_sa)) {
			r = -errno;
		} else {
			memset(&sa, 0, sizeof(sa));
			sa.sa_sigaction = on_sigbus;
			sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
			sigemptyset(&sa.sa_mask);
			if (sigaction(SIGBUS, &sa, NULL))
				r = -errno;
			else
				installed = true;
		}
	}
	pthread_mutex_unlock(&install_lock);
	return r;
}
