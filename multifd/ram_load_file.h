/* ram_load_file.h — the destination side of a mapped-ram migration
 * (reference §3): for each RAM block of the MEM_SIZE record, the 28-byte
 * header from the main stream, its checks against the block and the
 * file's size, the bitmap, and the runs of present pages read straight
 * into guest RAM in <= 1 MiB chunks, by the mfd_file workers (one own open
 * of the file each) or, without multifd, on the main channel. Then the
 * main stream goes on after the block's pages region. Nothing is read
 * into RAM before the header and bitmap are known to be inside the file.
 * ram_load_file_block(): the incoming thread; kick: any thread. */
#ifndef MIGD_MULTIFD_RAM_LOAD_FILE_H
#define MIGD_MULTIFD_RAM_LOAD_FILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct channel;
struct qfile;
struct ram_block;
struct ram_load_file;

/* main: the main stream's file channel (borrowed: tell, size, seek, and
 * the reads when nchans == 0). chans[0..nchans): taken (NULL-ed).
 * progress (may be NULL): bytes read are added (the idle policy). NULL
 * with *errp. */
struct ram_load_file *ram_load_file_new(struct channel *main,
					struct channel **chans, unsigned nchans,
					_Atomic uint64_t *progress,
					struct mig_error **errp);
void ram_load_file_free(struct ram_load_file *rlf);
void ram_load_file_kick(struct ram_load_file *rlf);
/* Pages absent from the file are cleared in RAM when they hold data:
 * always for file-backed blocks (their old content), and for every block
 * once set (loading into a guest that already ran: snapshot-load). */
void ram_load_file_set_zero_absent(struct ram_load_file *rlf, bool on);

/* Right after block b's name and length (length: as sent, equal to b's)
 * in the MEM_SIZE record read from f: loads the block as above. *pages
 * gets the number of pages read. 0 or -errno with *errp: QEMU's "Could
 * not read whole mapped-ram migration header (expected 28, got N bytes)",
 * the header checks of mapped_ram_check(), "Error reading dirty bitmap:
 * ...", "(NAME) failed to read page ...". */
int ram_load_file_block(struct ram_load_file *rlf, struct qfile *f,
			struct ram_block *b, uint64_t length, uint64_t *pages,
			struct mig_error **errp);

#endif
