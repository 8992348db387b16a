/* ram_save_postcopy.h — the source's 'ram' section once postcopy runs
 * (QEMU's ram_postcopy_send_discard_bitmap, postcopy page requests,
 * release-ram, ram_dirty_bitmap_reload): the multifd flush before the
 * switch, the discard bitmap, the background stream that serves requested
 * pages first, requested pages on the preempt channel, and the received
 * bitmaps of a recovery.
 * Threads: the migration thread, except ram_save_postcopy_send_req() and
 * ram_save_postcopy_recv_bitmap(), which the return-path thread calls
 * (they take rs->lock). */
#ifndef MIGD_MULTIFD_RAM_SAVE_POSTCOPY_H
#define MIGD_MULTIFD_RAM_SAVE_POSTCOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "multifd/ram_save.h"
#include "util/error.h"

struct ram_save;
struct qfile;
struct pc_req;

/* multifd before the switch: a PART section whose pages are flushed and
 * synced on every channel (with MULTIFD_FLUSH), so the destination has
 * placed all of precopy's pages before it discards. No-op without
 * multifd. From then on pages go on the main stream. */
int ram_save_postcopy_flush_multifd(struct ram_save *rs,
				    struct mig_error **errp);
/* The switch, guest stopped: final dirty sync, one DISCARD command per
 * <= 12 runs of pending pages per block, then postcopy mode (scan from
 * the start, block names again, requests from urgent()). */
int ram_save_postcopy_discard(struct ram_save *rs, bool release_ram,
			      ram_save_urgent_fn urgent, void *opaque,
			      struct mig_error **errp);
/* release-ram right after the switch: frees every page already sent. */
void ram_save_postcopy_release_sent(struct ram_save *rs);
/* The main stream was flushed (after the END section): release-ram frees
 * what it carried. */
void ram_save_postcopy_flushed(struct ram_save *rs);
/* One PART section: requested pages first (not rate limited), then the
 * background scan until stop(); flushes the main stream and frees what
 * it sent (release-ram). 1 nothing pending, 0 stopped, -errno. */
int ram_save_postcopy_iterate(struct ram_save *rs, ram_save_stop_fn stop,
			      void *opaque, struct mig_error **errp);
/* postcopy-preempt: the preempt channel's stream (NULL: none). */
void ram_save_postcopy_set_preempt(struct ram_save *rs, struct qfile *pf);
/* Sends the still-pending pages of a request on the preempt stream and
 * flushes it: pages sent, or -errno. Return-path thread. */
int ram_save_postcopy_send_req(struct ram_save *rs, const struct pc_req *r);
/* Recovery: the destination's received bitmap of a block (size bytes,
 * little-endian words, one bit per target page): pages it lacks become
 * pending. -ENOENT for an unknown block (*errp set). */
int ram_save_postcopy_recv_bitmap(struct ram_save *rs, const char *block,
				  const uint8_t *le_bits, uint64_t size,
				  struct mig_error **errp);
/* Recovery: a new main stream (its first record names its block), the
 * scan restarts. */
void ram_save_postcopy_resume(struct ram_save *rs, struct qfile *f);
/* Index of a block by name, -1 if none. */
int ram_save_block_index(const struct ram_save *rs, const char *name);

#endif
