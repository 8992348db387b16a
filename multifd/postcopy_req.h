/* postcopy_req.h — the source's queue of page requests from the return path
 * (QEMU's ram_save_queue_pages and its callers): each REQ_PAGES(_ID) is
 * validated against the known blocks, then queued for the sender, which
 * serves queued pages before the background scan. A hostile destination
 * cannot make it grow without bound: requests are size-capped, duplicates
 * of a queued request are coalesced and the queue has a fixed capacity.
 * Not thread-safe: the caller holds its own lock (return-path thread
 * pushes, migration thread pops). */
#ifndef MIGD_MULTIFD_POSTCOPY_REQ_H
#define MIGD_MULTIFD_POSTCOPY_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct pc_req_block {
	const char *name;
	uint64_t used_length;
	uint64_t page_size; /* the block's host page size, a power of two */
};

struct pc_req {
	unsigned block; /* index into the queue's blocks */
	uint64_t start;
	uint64_t len;
};

struct pc_req_queue {
	const struct pc_req_block *blocks;
	unsigned nblocks;
	uint64_t host_page_size; /* QEMU's alignment check */
	uint64_t max_len;	 /* 0: max(block page size, 2 MiB) */
	int last_block;		 /* for REQ_PAGES (no name); -1 none */
	struct pc_req *ring;
	unsigned cap, head, count;
	uint64_t requests;  /* accepted, postcopy-requests */
	uint64_t coalesced; /* duplicates of a queued request */
};

/* cap: queue capacity (> 0). 0 or -ENOMEM / -EINVAL. */
int pc_req_queue_init(struct pc_req_queue *q, const struct pc_req_block *b,
		      unsigned nblocks, uint64_t host_page_size, unsigned cap);
void pc_req_queue_destroy(struct pc_req_queue *q);

/* The checks alone, in QEMU's order and with its messages:
 *   "MIG_RP_MSG_REQ_PAGES: Misaligned page request, start:%lx len: %zd"
 *   "MIG_RP_MSG_REQ_PAGES has no previous block"   (name NULL, none yet)
 *   "MIG_RP_MSG_REQ_PAGES has no block '%s'"
 *   "MIG_RP_MSG_REQ_PAGES request overrun, start=%lx len=%lx blocklen=%lx"
 * then migd's own: zero length, not a multiple of the block page size,
 * longer than max_len. A named request becomes the previous block even
 * when its range is refused, as in QEMU. */
int pc_req_validate(struct pc_req_queue *q, const char *name, uint64_t start,
		    uint64_t len, struct pc_req *out, struct mig_error **errp);
/* Validates and queues. 0 queued, 1 coalesced with an identical queued
 * request, -EINVAL refused, -ENOBUFS queue full ("too many outstanding
 * page requests"), with *errp set on errors. */
int pc_req_push(struct pc_req_queue *q, const char *name, uint64_t start,
		uint64_t len, struct mig_error **errp);
bool pc_req_pop(struct pc_req_queue *q, struct pc_req *out);
static inline bool pc_req_pending(const struct pc_req_queue *q)
{
	return q->count != 0;
}
/* After a postcopy recovery the destination names its block again. */
void pc_req_forget_last(struct pc_req_queue *q);

#endif
