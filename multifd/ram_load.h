/* ram_load.h — the destination's guest RAM during an incoming migration:
 * the records of QEMU's 'ram' section read from the main stream
 * (reference §1.7: MEM_SIZE, PAGE, ZERO, CONTINUE, EOS, MULTIFD_FLUSH),
 * and the page landing the multifd receivers share with it: block lookup,
 * bounds checks and a per-block "may be non-zero" bitmap so zero pages never
 * touch RAM that is still zero.
 * Threads: new/free by one thread while no other uses the object;
 * ram_load_section() by the thread that owns the main stream (it keeps the
 * CONTINUE state); the landing functions from any thread (bitmap words are
 * updated atomically; page contents are ordered by the multifd syncs, as in
 * QEMU). Nothing here ever writes outside a block's used length. */
#ifndef MIGD_MULTIFD_RAM_LOAD_H
#define MIGD_MULTIFD_RAM_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct guest;
struct qfile;
struct ram_block;
struct ram_load;
struct ram_load_file;
struct rdma_ram;

struct ram_load_opts {
	bool multifd;		       /* the multifd capability */
	bool flush_after_each_section; /* legacy: sync at every RAM EOS */
	bool x_ignore_shared;	       /* MEM_SIZE carries a GPA per block;
					* shared blocks are not migrated */
	/* mapped-ram: each MEM_SIZE entry carries a header and its pages
	 * are read from the file (ram_load_file.h); page records are
	 * refused ("Unexpected RAM flags") */
	struct ram_load_file *file;
	/* rdma: the channel's RAM protocol: HOOK records run its control
	 * loop, MEM_SIZE tells it the source's block order (rdma_ram.h) */
	struct rdma_ram *rdma;
};

/* Waits until every multifd channel has delivered what it was sent before
 * the current sync point (mfd_recv_sync()). 0 or -errno with *errp. */
typedef int (*ram_load_sync_fn)(void *opaque, struct mig_error **errp);

/* Bitmaps for every block of g (which must outlive the object). NULL on
 * allocation failure. */
struct ram_load *ram_load_new(const struct guest *g,
			      const struct ram_load_opts *o);
void ram_load_free(struct ram_load *rl);
/* The multifd sync used at MULTIFD_FLUSH (and at EOS in legacy mode).
 * Without one (or without the multifd option) sync points are no-ops, as
 * in QEMU. */
void ram_load_set_sync(struct ram_load *rl, ram_load_sync_fn fn, void *opaque);

/* Loads the body of one ram section (START/PART/END or FULL) up to and
 * including its EOS record. 0 or -errno with QEMU's message in *errp. */
int ram_load_section(struct ram_load *rl, struct qfile *f, uint32_t version,
		     struct mig_error **errp);

/* ---- postcopy ------------------------------------------------------------
 * After LISTEN every page record is placed through userfaultfd
 * (UFFDIO_COPY / UFFDIO_ZEROPAGE), never written into RAM directly. */
struct uffd;
/* Switches to postcopy placement: ranges[i] is block i's uffd range id
 * (-1: not registered; records for it are refused). Call once, from the
 * main stream's thread, before postcopy records arrive. 0 or -ENOMEM. */
int ram_load_set_postcopy(struct ram_load *rl, struct uffd *u,
			  const int *ranges);
bool ram_load_postcopy_running(const struct ram_load *rl);
/* Postcopy advised: zero pages that arrive before LISTEN are read, so
 * that they are present (mapped) when RAM gets registered: a page a
 * source counts as sent must never fault (it would not answer for it). */
void ram_load_populate_zero_pages(struct ram_load *rl);
/* Pages that arrived before postcopy are remembered (page and zero
 * records, multifd landing). DISCARD forgets [start, +length) (checked by
 * the caller); a recovery's RECV_BITMAP ORs what is left into le (one bit
 * per target page, little-endian bit order, len bytes). */
void ram_load_forget(struct ram_load *rl, int idx, uint64_t start,
		     uint64_t length);
void ram_load_received_or_le(const struct ram_load *rl, int idx, uint8_t *le,
			     size_t len);
/* From LISTEN on, pages may only be placed through userfaultfd: the
 * multifd receivers refuse packets with pages (checked by them before
 * they touch RAM). Any thread. */
void ram_load_close_landing(struct ram_load *rl);
/* The error a receiver reports for such a packet. */
#define RAM_LOAD_LANDING_CLOSED_MSG                                            \
	"multifd: pages received after postcopy started"
bool ram_load_landing_closed(const struct ram_load *rl);
int ram_load_nblocks(const struct ram_load *rl);
/* Postcopy records of one channel up to EOS (QEMU's ram_load_postcopy);
 * *last_block is that channel's CONTINUE state (-1 at first). Any thread
 * owning f. 0 or -errno: read errors keep the channel's errno (-EPIPE,
 * -ECONNRESET, ...), bad records are -EINVAL. */
int ram_load_postcopy(struct ram_load *rl, struct qfile *f, int *last_block,
		      struct mig_error **errp);

/* ---- landing (any thread) ------------------------------------------------ */
/* Index of the block named name, or -1. */
int ram_load_lookup(const struct ram_load *rl, const char *name);
struct ram_block *ram_load_block(const struct ram_load *rl, int idx);
/* x-ignore-shared: the block's pages must not be migrated. */
bool ram_load_block_skipped(const struct ram_load *rl, int idx);
/* Call before writing page data at offset (checked by the caller:
 * page aligned, inside the block). */
void ram_load_mark_page(struct ram_load *rl, int idx, uint64_t offset);
/* A zero page at offset (checked by the caller): RAM that may hold data is
 * cleared, RAM that is still zero is left alone. */
void ram_load_zero_page(struct ram_load *rl, int idx, uint64_t offset);
/* Counters (pages with data, zero pages) for statistics. */
void ram_load_count(struct ram_load *rl, uint64_t normal, uint64_t zero);
uint64_t ram_load_normal_pages(const struct ram_load *rl);
uint64_t ram_load_zero_pages(const struct ram_load *rl);

#endif
