/* rdma_ram.h — QEMU's RDMA RAM protocol on an rdma: channel, as hooks for
 * the 'ram' section code: the source's HOOK records, RAM_BLOCKS exchange,
 * dynamic chunk registration or pin-all, COMPRESS for zero chunks, merged
 * RDMA WRITEs and the drain at each round (multifd/ram_save.c); the
 * destination's control loop run at each HOOK record and the block order
 * taken from MEM_SIZE (multifd/ram_load.c). Owner thread of the channel
 * (the migration thread, or the destination's load thread). */
#ifndef MIGD_RDMA_RAM_H
#define MIGD_RDMA_RAM_H

#include <stdint.h>

#include "util/error.h"

struct channel;
struct guest;
struct qfile;
struct ram_load;
struct rdma_ram;

/* The RAM state of an rdma channel; NULL for every other channel. */
struct rdma_ram *rdma_chan_ram(struct channel *ch);

/* What the protocol did (the owner thread; for statistics and tests). */
struct rdma_ram_stats {
	uint64_t writes; /* RDMA WRITEs posted (merged page runs) */
	uint64_t write_bytes;
	uint64_t compress;	/* COMPRESS messages (zero chunks) */
	uint64_t registrations; /* chunk registrations (either side) */
	uint64_t hooks;		/* HOOK control loops (destination) */
};
void rdma_ram_get_stats(const struct rdma_ram *r, struct rdma_ram_stats *st);

/* ---- source ---- */
/* After the MEM_SIZE list of the START section: HOOK, RAM_BLOCKS
 * exchange (pin-all registration), REGISTER_FINISHED. Blocks are g's in
 * list order (the MEM_SIZE order). 0 or -errno with *errp. */
int rdma_src_setup(struct rdma_ram *r, const struct guest *g, struct qfile *f,
		   struct mig_error **errp);
/* Start of a round (PART/END section): the HOOK record, flushed. */
int rdma_src_round_start(struct rdma_ram *r, struct qfile *f,
			 struct mig_error **errp);
/* End of a round, before its EOS: flush, wait for every write, then
 * REGISTER_FINISHED. */
int rdma_src_round_stop(struct rdma_ram *r, struct qfile *f,
			struct mig_error **errp);
/* One 4 KiB page of block idx (list order) at offset: merged into the
 * pending RDMA WRITE (or a COMPRESS of a zero chunk not registered yet).
 * Nothing goes into the main stream. */
int rdma_src_save_page(struct rdma_ram *r, uint32_t idx, uint64_t offset,
		       struct mig_error **errp);

/* ---- destination ---- */
/* A block named in the MEM_SIZE list, in the source's order (QEMU's
 * rdma_block_notification). rl_idx is ram_load's index. */
int rdma_dst_block_seen(struct rdma_ram *r, int rl_idx,
			struct mig_error **errp);
/* A HOOK record: runs the control loop until REGISTER_FINISHED. */
int rdma_dst_hook(struct rdma_ram *r, struct ram_load *rl,
		  struct mig_error **errp);

#endif
