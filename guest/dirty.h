/* dirty.h — exact dirty logging of guest RAM (the equivalent of KVM's dirty
 * log): one bit per 4 KiB target page per RAM block, set by vCPU threads
 * *after* each write (release order), fetched-and-cleared by the migration
 * thread *before* it reads the page (acquire order). With that order a page
 * whose bit the migration thread cleared is either sent with the new data or
 * marked again and resent: no update is ever lost.
 * A second, independent consumer (the "rate log", for calc-dirty-rate)
 * has its own bitmap and per-vCPU counters of first writes: it never
 * touches the migration's bits, so measuring never disturbs a migration.
 * Threads: dirty_log_mark() any vCPU thread; start/stop/sync the migration
 * thread (or the control thread while no migration runs); the rate log
 * functions its one measuring thread. */
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

/* As dirty_log_mark(), naming the vCPU that wrote (for the rate log's
 * per-vCPU counts); cpu >= DIRTY_RATE_CPUS counts as "not a vCPU". */
void dirty_log_mark_cpu(struct ram_block *b, uint64_t offset, uint64_t len,
			unsigned cpu);

/* ---- the rate log (calc-dirty-rate) ------------------------------------
 * Counts each page at most once per measurement, as a KVM dirty bitmap
 * fetched at the start and end of the window does. One measurement at a
 * time: start returns -EBUSY while another runs, -ENODEV without
 * dirty_log_init(). */
#define DIRTY_RATE_CPUS 256 /* GUEST_SMP_MAX; one more slot for others */
int dirty_rate_start(struct guest *g);
void dirty_rate_stop(struct guest *g);
/* Pages first written since start by vCPU cpu (cpu == DIRTY_RATE_CPUS:
 * by anything that is not a vCPU). Any thread. */
uint64_t dirty_rate_pages(const struct guest *g, unsigned cpu);
/* All pages first written since start. */
uint64_t dirty_rate_total(const struct guest *g);

/* Moves every dirty bit of b into dst (bitwise OR, one bit per page,
 * dst sized for b's pages), clearing them in the log. Returns how many
 * bits were newly set in dst (pages that were not already pending). */
uint64_t dirty_log_sync_block(struct ram_block *b, unsigned long *dst);

/* Counts the dirty bits of b that are clear in pending (one bit per page,
 * sized for b), leaving the log as it is. Any thread (a snapshot). */
uint64_t dirty_log_peek_block(const struct ram_block *b,
			      const unsigned long *pending);

/* Pages of b: bitmap length in bits. */
uint64_t dirty_block_pages(const struct ram_block *b);

#endif
