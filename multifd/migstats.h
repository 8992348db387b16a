/* migstats.h — byte and page counters of one migration, written by the
 * migration and multifd threads and read by the control thread for
 * query-migrate. Relaxed atomics: each counter is exact, a set of them
 * read together is only approximately consistent (as in QEMU). */
#ifndef MIGD_MULTIFD_MIGSTATS_H
#define MIGD_MULTIFD_MIGSTATS_H

#include <stdatomic.h>
#include <stdint.h>

struct mig_counters {
	_Atomic uint64_t main_bytes;	/* main stream bytes written */
	_Atomic uint64_t multifd_bytes; /* multifd packets + payload */
	_Atomic uint64_t preempt_bytes; /* postcopy-preempt channel bytes */
	_Atomic uint64_t rdma_bytes;	/* rdma: pages sent by RDMA WRITE */
	_Atomic uint64_t stream_base;	/* streams closed by a postcopy pause */
	_Atomic uint64_t normal_pages;	/* pages sent with their data */
	_Atomic uint64_t zero_pages;	/* "duplicate": zero pages */
	_Atomic uint64_t precopy_bytes; /* transferred before switchover */
	_Atomic uint64_t downtime_bytes; /* transferred with the VM stopped */
	_Atomic uint64_t dirty_sync_count;
	_Atomic uint64_t dirty_pages_rate; /* pages/s at the last sync */
	_Atomic uint64_t remaining_pages;  /* still to send (bitmap count) */
	/* zero-copy-send: channel flushes at sync points in which the kernel
	 * copied every send (QEMU's dirty-sync-missed-zero-copy) */
	_Atomic uint64_t dirty_sync_missed_zero_copy;
	/* postcopy: transferred when the switch ended (the base of
	 * postcopy-bytes), and requests received (postcopy-requests) */
	_Atomic uint64_t postcopy_base;
	_Atomic uint64_t postcopy_requests;
};

static inline void mig_count(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t mig_read(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static inline uint64_t mig_transferred(struct mig_counters *c)
{
	return mig_read(&c->main_bytes) + mig_read(&c->multifd_bytes) +
	       mig_read(&c->preempt_bytes) + mig_read(&c->stream_base) +
	       mig_read(&c->rdma_bytes);
}

#endif
