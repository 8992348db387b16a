/* ram_save_file.h — the source side of a mapped-ram migration (reference
 * §3): each RAM block's 28-byte header in the MEM_SIZE record, pages
 * written at their fixed file offsets (zero pages skipped, their bit
 * cleared) by the mfd_file workers or, without multifd, inline on the
 * main channel, and the bitmaps written at the end. ram_save.c calls it
 * instead of putting page records or multifd packets.
 * The migration thread, except kick/error (any thread). */
#ifndef MIGD_MULTIFD_RAM_SAVE_FILE_H
#define MIGD_MULTIFD_RAM_SAVE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct channel;
struct guest;
struct mig_counters;
struct qfile;
struct ram_save_file;

/* main: the main stream's file channel (borrowed; positioned writes when
 * nchans == 0, tell/seek around the headers). chans[0..nchans): the
 * multifd channels, taken (NULL-ed). zero_detect: skip zero pages
 * (zero-page-detection other than none). NULL with *errp. */
struct ram_save_file *ram_save_file_new(struct guest *g, struct channel *main,
					struct channel **chans, unsigned nchans,
					bool zero_detect,
					struct mig_counters *ctr,
					struct mig_error **errp);
void ram_save_file_free(struct ram_save_file *rsf);

/* In the MEM_SIZE record, right after block bi's name and length: flushes
 * f, puts the header at the current file position and moves the main
 * stream past the block's pages region. 0 or -errno with *errp. */
int ram_save_file_block_header(struct ram_save_file *rsf, struct qfile *f,
			       size_t bi, struct mig_error **errp);
/* Queues the page at offset of block bi (known_zero: never populated).
 * 0 or -errno (a worker failed). */
int ram_save_file_page(struct ram_save_file *rsf, size_t bi, uint64_t offset,
		       bool known_zero);
/* Hands the partial batch over. 0 or -errno. */
int ram_save_file_flush(struct ram_save_file *rsf);
/* Flush, then wait for every worker: QEMU's multifd sync in mapped-ram
 * mode (no SYNC packets, no MULTIFD_FLUSH record). 0 or -errno. */
int ram_save_file_sync(struct ram_save_file *rsf);
/* At completion: sync, then every block's bitmap at its offset. 0 or
 * -errno with *errp. */
int ram_save_file_finish(struct ram_save_file *rsf, struct mig_error **errp);

void ram_save_file_kick(struct ram_save_file *rsf);
/* The first worker error (copied into *errp), 0 if none. */
int ram_save_file_error(struct ram_save_file *rsf, struct mig_error **errp);
unsigned ram_save_file_nthreads(const struct ram_save_file *rsf);

#endif
