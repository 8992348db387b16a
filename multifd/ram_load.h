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
#include <stdint.h>

#include "util/error.h"

struct guest;
struct qfile;
struct ram_block;
struct ram_load;
struct ram_load_file;

struct ram_load_opts {
	bool multifd;		       /* the multifd capability */
	bool flush_after_each_section; /* legacy: sync at every RAM EOS */
	bool x_ignore_shared;	       /* MEM_SIZE carries a GPA per block;
					* shared blocks are not migrated */
	/* mapped-ram: each MEM_SIZE entry carries a header and its pages
	 * are read from the file (ram_load_file.h); page records are
	 * refused ("Unexpected RAM flags") */
	struct ram_load_file *file;
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
