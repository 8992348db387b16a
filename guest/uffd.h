/* uffd.h — userfaultfd for postcopy's destination RAM: one userfaultfd with
 * up to UFFD_MAX_RANGES registered ranges (RAM blocks) in missing-page mode,
 * a fault thread that reports each first fault on a page to a callback, and
 * atomic placement (UFFDIO_COPY / UFFDIO_ZEROPAGE) guarded by a per-range
 * "received" bitmap, plus QEMU's postcopy-blocktime accounting.
 * Does not own the RAM, the wire, or what the callback does with a request.
 * Threads: open, free, start and stop from one owner thread; register,
 * unregister, placement, wake and queries from any thread (ranges are under
 * a rwlock); the callback runs on the fault thread and may place pages and
 * wake, but must not unregister. */
#ifndef MIGD_GUEST_UFFD_H
#define MIGD_GUEST_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define UFFD_MAX_RANGES 32
/* Blocktime tracks at most this many vCPUs (QEMU: one slot per vCPU). */
#define UFFD_MAX_VCPUS 1024

struct uffd;

/* How to get the file descriptor. AUTO: userfaultfd(2) for kernel and user
 * faults; on EPERM (vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE)
 * /dev/userfaultfd; then userfaultfd(2) with UFFD_USER_MODE_ONLY. A
 * user-mode-only fd does not resolve faults the kernel takes on guest RAM
 * (read(2) into a missing page fails with EFAULT): incoming pages must
 * then only ever be placed with uffd_place_*, never read into RAM. */
enum uffd_open_method {
	UFFD_OPEN_AUTO,
	UFFD_OPEN_SYSCALL,
	UFFD_OPEN_DEV,
	UFFD_OPEN_USER_ONLY,
};

/* Called on the fault thread once per page, the first time any thread
 * faults on it while it is not received: the place to request the page
 * over the return path. range is uffd_register's id, offset is relative to
 * the range and aligned down to its page size, tid is the faulting thread's
 * id (0 when the kernel lacks UFFD_FEATURE_THREAD_ID). A fault that races
 * with placement is woken instead and never reported. */
typedef void (*uffd_fault_fn)(void *opaque, unsigned range, uint64_t offset,
			      uint32_t tid);

struct uffd_config {
	enum uffd_open_method method;
	bool need_hugetlbfs; /* a range is hugetlbfs-backed */
	bool need_shmem;     /* a range is shared (memfd, share=on file) */
	bool blocktime;	     /* postcopy-blocktime: ask for THREAD_ID */
	unsigned nr_vcpus;   /* blocktime slots, <= UFFD_MAX_VCPUS */
	uffd_fault_fn on_fault;
	void *opaque;
};

/* Opens the fd and does the UFFDIO_API handshake. Missing kernel support
 * is an error naming it ("Missing userfault features: 0x10
 * (MISSING_HUGETLBFS)"); a missing THREAD_ID only turns blocktime off
 * (uffd_has_blocktime), as QEMU does. NULL with *errp set on failure. */
struct uffd *uffd_open(const struct uffd_config *cfg, struct mig_error **errp);
/* Stops the fault thread if running, unregisters every range and closes
 * the fds. Threads blocked on missing pages are woken by the kernel and
 * find zero pages: only call this once every page is placed, or when the
 * guest will never run again. NULL is fine. */
void uffd_free(struct uffd *u);

/* Registers [host, host+length) in missing mode. host and length must be
 * multiples of page_size (a power of two, >= the host page size). The
 * range must not be populated where pages are still to come (discard it
 * first). Returns the range id (>= 0) or -errno with *errp set. */
int uffd_register(struct uffd *u, void *host, uint64_t length, size_t page_size,
		  struct mig_error **errp);
/* Unregisters: threads blocked in the range are woken and refault as if
 * userfaultfd were not there. 0 or -errno (-ENOENT: no such range). */
int uffd_unregister(struct uffd *u, unsigned range, struct mig_error **errp);

/* Starts / stops the fault thread. uffd_stop kicks it through an eventfd
 * and joins it, whatever it was doing; threads blocked on faults stay
 * blocked (placement still wakes them). Both idempotent. */
int uffd_start(struct uffd *u, struct mig_error **errp);
void uffd_stop(struct uffd *u);
/* First error the fault thread died of (0 while healthy). */
int uffd_fault_thread_error(const struct uffd *u);

/* Places one page (range page size) atomically and wakes its waiters.
 * Returns 0 when placed, 1 when the page was already received (or the
 * kernel reports EEXIST: present already), -EINVAL for an offset outside
 * the range or unaligned, -ENOENT for an unknown range, other -errno from
 * the ioctl. Zero pages use UFFDIO_ZEROPAGE where the range supports it.
 * A page is placed at most once: later calls return 1 without copying. */
int uffd_place_page(struct uffd *u, unsigned range, uint64_t offset,
		    const void *src, struct mig_error **errp);
int uffd_place_zero(struct uffd *u, unsigned range, uint64_t offset,
		    struct mig_error **errp);
/* Wakes threads waiting on [offset, offset+len) without placing. */
int uffd_wake(struct uffd *u, unsigned range, uint64_t offset, uint64_t len);

bool uffd_is_received(struct uffd *u, unsigned range, uint64_t offset);
/* Pages of the range received so far; -ENOENT for an unknown range. */
int64_t uffd_received_pages(struct uffd *u, unsigned range);
/* Pages faulted on (reported to the callback) but not yet received, in
 * offset order: what the destination must request again after a postcopy
 * recovery. Returns how many were visited or -errno. */
int64_t uffd_foreach_pending(struct uffd *u, unsigned range,
			     void (*fn)(void *opaque, uint64_t offset),
			     void *opaque);
/* The received bitmap as RECV_BITMAP carries it: one bit per target page
 * (target_page_size divides the range page size), little-endian bit order
 * within bytes of u64 words, out_len bytes (zero-padded). 0 or -errno. */
int uffd_received_to_le(struct uffd *u, unsigned range,
			uint64_t target_page_size, uint8_t *out,
			size_t out_len);

/* ---- postcopy-blocktime (QEMU 9.0/10.0 semantics, milliseconds) ----
 * A vCPU is blocked from its fault until the page is placed; its blocktime
 * is the sum of those intervals. The total blocktime grows only while all
 * nr_vcpus are blocked at once: from the last fault that made them all
 * blocked to the placement that unblocked one. Faults from threads that
 * are not vCPUs are not counted. */
bool uffd_has_blocktime(const struct uffd *u);
/* Declares that thread tid runs vCPU index cpu (< nr_vcpus). */
int uffd_blocktime_set_vcpu(struct uffd *u, unsigned cpu, uint32_t tid);
/* Copies per-vCPU blocktime (up to n entries) and returns the total, or
 * -ENOTSUP when blocktime is off. */
int64_t uffd_blocktime_read(struct uffd *u, uint32_t *vcpu_ms, unsigned n);

#endif
