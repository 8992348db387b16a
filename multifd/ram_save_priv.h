/* ram_save_priv.h — what ram_save.c (precopy: bitmap, scan, sections) and
 * ram_save_postcopy.c (discard bitmap, requested pages, release-ram,
 * recovery bitmaps) share: the state of the 'ram' section's sender.
 * Threads: the migration thread; in postcopy also the return-path thread,
 * which sends requested pages under rs->lock. */
#ifndef MIGD_MULTIFD_RAM_SAVE_PRIV_H
#define MIGD_MULTIFD_RAM_SAVE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "multifd/ram_save.h"

#define BITS_PER_LONG (8 * sizeof(unsigned long))

struct ram_block;

struct rs_block {
	struct ram_block *b;
	unsigned long *bmap; /* pages still to send */
	uint64_t npages;
	/* First round only: mincore() residency at setup. A page that was
	 * not populated then is zero unless the guest wrote it since — and a
	 * write marks it dirty, so it is sent again. NULL: unknown. */
	unsigned char *resident;
};

/* One output stream of page records and its CONTINUE state (QEMU keeps
 * the last block per channel). */
struct rs_out {
	struct qfile *f;
	const struct ram_block *last_block;
};

/* release-ram: page runs sent since the last flush of the main stream,
 * freed once that flush has handed them to the kernel. */
struct rs_release_run {
	struct rs_block *rb;
	uint64_t page, n;
};

struct rs_release {
	bool on;
	struct rs_release_run *r;
	unsigned n, cap;
};

struct ram_save {
	struct guest *g;
	struct qfile *f; /* == main.f */
	struct ram_save_opts o;
	struct mig_counters *ctr;
	struct rs_block *blocks;
	size_t nblocks;
	size_t cur_block; /* scan cursor */
	uint64_t cur_page;
	uint64_t pending;	 /* set bits in all bitmaps */
	struct rs_out main;	 /* the main stream */
	struct mfd_batch *batch; /* multifd batch being filled */
	bool logging;
	bool first_round; /* the bulk round, until a wrap */
	/* postcopy (ram_save_postcopy.c) */
	pthread_mutex_t lock; /* bitmaps + pending once postcopy runs */
	bool postcopy;
	struct rs_release rel;
	struct rs_out preempt; /* postcopy-preempt stream, f NULL if none */
	ram_save_urgent_fn urgent;
	void *urgent_opaque;
};

/* Finds, clears and sends the next pending page: 1 sent, 0 none, -errno. */
int ram_save_one(struct ram_save *rs);
/* Sends one page (its bit already cleared) as a record on out. */
int ram_save_send_page(struct ram_save *rs, struct rs_out *out,
		       struct rs_block *rb, uint64_t page);
/* release-ram bookkeeping for a page just queued on the main stream. */
void ram_save_note_release(struct ram_save *rs, struct rs_block *rb,
			   uint64_t page);
/* Clears a pending bit: true if it was set. Caller holds rs->lock in
 * postcopy. */
bool ram_save_test_clear(struct ram_save *rs, struct rs_block *rb,
			 uint64_t page);
/* A multifd sync point (partial batch, SYNC on every channel, and the
 * MULTIFD_FLUSH record when asked). */
int ram_save_multifd_sync(struct ram_save *rs, bool put_flush_record);
/* Ends the bulk round's "known zero" shortcut (frees the residency
 * snapshot): postcopy does so at the switch, before a second thread sends. */
void ram_save_drop_residency(struct ram_save *rs);
/* The PART/END section trailer (EOS + footer). */
int ram_save_end_section(struct ram_save *rs);

#endif
