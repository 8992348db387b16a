/* dirty.h — exact dirty logging of guest RAM (the equivalent of KVM's dirty
 * log): one bit per 4 KiB target page per RAM block, set by vCPU threads
 * *after* each write (release order), fetched-and-cleared by the migration
 * thread *before* it reads the page (acquire order). With that order a page
 * whose bit the migration thread cleared is either sent with the new data or
 * marked again and resent: no update is ever lost.
 * Threads: dirty_log_mark() any vCPU thread; start/stop/sync the migration
 * thread (or the control thread while no migration runs). */
#ifndef MIGD_GUEST_DIRTY_H
#define MIGD_GUEST_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

struct guest;
struct ram_block;

#define DIRTY_PAGE_SHIFT 12
#define DIRTY_PAGE_SIZE (1u << DIRTY_PAGE_SHIFT)

/* Allocates the per-block bitmaps (all clear). 0 or -ENOMEM. Control
 * thread, before vCPUs start. */
int dirty_log_init(struct guest *g);
void dirty_log_fini(struct guest *g);

/* Logging is off by default (no cost for vCPUs). Start clears every bit,
 * then sets the enabled flag; stop clears the flag. Counting users: the
 * migration and calc-dirty-rate may both have it on. */
void dirty_log_start(struct guest *g);
void dirty_log_stop(struct guest *g);
bool dirty_log_is_active(const struct guest *g);

/* Marks [offset, offset+len) of b dirty if logging is on. vCPU threads. */
void dirty_log_mark(struct ram_block *b, uint64_t offset, uint64_t len);

/* Moves every dirty bit of b into dst (bitwise OR, one bit per page,
 * dst sized for b's pages), clearing them in the log. Returns how many
 * bits were newly set in dst (pages that were not already pending). */
uint64_t dirty_log_sync_block(struct ram_block *b, unsigned long *dst);

/* Pages of b: bitmap length in bits. */
uint64_t dirty_block_pages(const struct ram_block *b);

#endif
