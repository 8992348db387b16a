/* dirty.c — the exact dirty log (see dirty.h for the ordering contract):
 * one atomic bitmap per RAM block, hung off struct ram_block, and a
 * guest-wide user count that switches logging on and off; beside it the
 * rate log: a second bitmap per block and per-vCPU first-write counters,
 * switched on by calc-dirty-rate alone.
 * Threads: dirty_log_mark() from vCPU threads (lock-free); start/stop take
 * the guest-wide mutex; sync is for the one thread that consumes the log;
 * init/fini the control thread while no vCPU runs. */
#include "guest/dirty.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

#define BITS_PER_WORD (sizeof(unsigned long) * CHAR_BIT)

_Static_assert(DIRTY_RATE_CPUS == GUEST_SMP_MAX, "one rate slot per vCPU");

/* One counter per cache line: vCPUs bump their own without bouncing. */
struct dirty_rate_count {
	_Atomic uint64_t pages;
} __attribute__((aligned(64)));

struct dirty_block {
	atomic_bool active;	 /* copy of the guest's "users > 0" */
	atomic_bool rate_active; /* the rate log is measuring */
	uint64_t pages;		 /* bits in use */
	size_t words;
	_Atomic unsigned long *bits;
	_Atomic unsigned long *rate_bits; /* the rate log's own bitmap */
	struct dirty_rate_count *counts;  /* the guest's, DIRTY_RATE_CPUS+1 */
};

struct dirty_log {
	pthread_mutex_t lock; /* serialises start/stop */
	unsigned users;	      /* lock */
	atomic_bool active;   /* users > 0, for dirty_log_is_active() */
	bool rate_busy;	      /* lock: a measurement owns the rate log */
	struct dirty_rate_count counts[DIRTY_RATE_CPUS + 1];
};

uint64_t dirty_block_pages(const struct ram_block *b)
{
	return (b->used_length + DIRTY_PAGE_SIZE - 1) >> DIRTY_PAGE_SHIFT;
}

static struct dirty_block *dirty_block_new(const struct ram_block *b)
{
	struct dirty_block *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->pages = dirty_block_pages(b);
	d->words = (d->pages + BITS_PER_WORD - 1) / BITS_PER_WORD;
	/* calloc of a large size maps fresh zero pages: a 1 TiB guest's
	 * 32 MiB bitmap costs nothing until pages get dirty. */
	d->bits = calloc(d->words ? d->words : 1, sizeof(*d->bits));
	d->rate_bits = calloc(d->words ? d->words : 1, sizeof(*d->bits));
	if (!d->bits || !d->rate_bits) {
		free((void *)d->bits);
		free((void *)d->rate_bits);
		free(d);
		return NULL;
	}
	atomic_init(&d->active, false);
	atomic_init(&d->rate_active, false);
	return d;
}

int dirty_log_init(struct guest *g)
{
	struct ram_block *b;

	if (g->dirty)
		return 0;
	g->dirty = aligned_alloc(64, sizeof(*g->dirty));
	if (!g->dirty)
		return -ENOMEM;
	memset(g->dirty, 0, sizeof(*g->dirty));
	pthread_mutex_init(&g->dirty->lock, NULL);
	atomic_init(&g->dirty->active, false);
	guest_for_each_block(g, b)
	{
		b->dirty = dirty_block_new(b);
		if (!b->dirty) {
			dirty_log_fini(g);
			return -ENOMEM;
		}
		b->dirty->counts = g->dirty->counts;
	}
	return 0;
}

void dirty_log_fini(struct guest *g)
{
	struct ram_block *b;

	if (!g || !g->dirty)
		return;
	guest_for_each_block(g, b)
	{
		if (b->dirty) {
			free((void *)b->dirty->bits);
			free((void *)b->dirty->rate_bits);
		}
		free(b->dirty);
		b->dirty = NULL;
	}
	pthread_mutex_destroy(&g->dirty->lock);
	free(g->dirty);
	g->dirty = NULL;
}

static void clear_block(struct dirty_block *d)
{
	for (size_t i = 0; i < d->words; i++)
		atomic_store_explicit(&d->bits[i], 0, memory_order_relaxed);
}

/* Only the first user clears the log: a second user (calc-dirty-rate
 * during a migration) must not wipe pages the first has not synced. */
void dirty_log_start(struct guest *g)
{
	struct ram_block *b;

	if (!g->dirty)
		return;
	pthread_mutex_lock(&g->dirty->lock);
	if (g->dirty->users++ == 0) {
		guest_for_each_block(g, b)
		{
			if (!b->dirty)
				continue;
			clear_block(b->dirty);
			atomic_store(&b->dirty->active, true);
		}
		atomic_store(&g->dirty->active, true);
	}
	pthread_mutex_unlock(&g->dirty->lock);
	/* Pairs with the fence in dirty_log_mark(): a write that saw logging
	 * off is visible to whoever reads RAM after start returns. */
	atomic_thread_fence(memory_order_seq_cst);
}

void dirty_log_stop(struct guest *g)
{
	struct ram_block *b;

	if (!g->dirty)
		return;
	pthread_mutex_lock(&g->dirty->lock);
	if (g->dirty->users && --g->dirty->users == 0) {
		atomic_store(&g->dirty->active, false);
		guest_for_each_block(g, b)
		{
			if (b->dirty)
				atomic_store(&b->dirty->active, false);
		}
	}
	pthread_mutex_unlock(&g->dirty->lock);
}

bool dirty_log_is_active(const struct guest *g)
{
	return g->dirty && atomic_load(&g->dirty->active);
}

static void mark_word(_Atomic unsigned long *word, unsigned long mask)
{
	/* Already set: skipping the RMW is safe after the seq_cst fence in
	 * dirty_log_mark() (the syncer's exchange is seq_cst too, so it
	 * cannot clear the bit without seeing the write that preceded the
	 * fence), and it keeps hot pages from bouncing the bitmap line. */
	if ((atomic_load_explicit(word, memory_order_relaxed) & mask) == mask)
		return;
	atomic_fetch_or_explicit(word, mask, memory_order_release);
}

static unsigned long range_mask(uint64_t first_bit, uint64_t last_bit)
{
	unsigned lo = (unsigned)(first_bit % BITS_PER_WORD);
	unsigned hi = (unsigned)(last_bit % BITS_PER_WORD);
	unsigned long upper = hi == BITS_PER_WORD - 1 ? ~0ul : (2ul << hi) - 1;

	return upper & ~((1ul << lo) - 1);
}

/* The rate log: sets the bits and credits the pages that were not yet
 * set (first writes in this measurement) to the writer. */
static void mark_rate_word(struct dirty_block *d, uint64_t w,
			   unsigned long mask, unsigned cpu)
{
	unsigned long old;

	if ((atomic_load_explicit(&d->rate_bits[w], memory_order_relaxed) &
	     mask) == mask)
		return;
	old = atomic_fetch_or_explicit(&d->rate_bits[w], mask,
				       memory_order_relaxed);
	mask &= ~old;
	if (mask)
		atomic_fetch_add_explicit(&d->counts[cpu].pages,
					  (uint64_t)__builtin_popcountl(mask),
					  memory_order_relaxed);
}

void dirty_log_mark_cpu(struct ram_block *b, uint64_t offset, uint64_t len,
			unsigned cpu)
{
	struct dirty_block *d = b->dirty;
	uint64_t first, last;
	bool log, rate;

	if (!d || !len || offset >= b->used_length)
		return;
	/* Orders the caller's write before the "is logging on" load; pairs
	 * with the fence in dirty_log_start(). Acquire: when logging is on,
	 * the bitmap clear that start did before it is visible here. */
	atomic_thread_fence(memory_order_seq_cst);
	log = atomic_load_explicit(&d->active, memory_order_acquire);
	rate = atomic_load_explicit(&d->rate_active, memory_order_acquire);
	if (!log && !rate)
		return;
	if (cpu > DIRTY_RATE_CPUS)
		cpu = DIRTY_RATE_CPUS;
	if (len > b->used_length - offset)
		len = b->used_length - offset;
	first = offset >> DIRTY_PAGE_SHIFT;
	last = (offset + len - 1) >> DIRTY_PAGE_SHIFT;
	while (first <= last) {
		uint64_t w = first / BITS_PER_WORD;
		uint64_t end = (w + 1) * BITS_PER_WORD - 1;
		unsigned long mask;

		if (end > last)
			end = last;
		mask = range_mask(first, end);
		if (log)
			mark_word(&d->bits[w], mask);
		if (rate)
			mark_rate_word(d, w, mask, cpu);
		first = end + 1;
	}
}

void dirty_log_mark(struct ram_block *b, uint64_t offset, uint64_t len)
{
	dirty_log_mark_cpu(b, offset, len, DIRTY_RATE_CPUS);
}

/* ---- the rate log --------------------------------------------------------
 */

static void clear_rate_block(struct dirty_block *d)
{
	/* Reads first: never-set words stay untouched (lazily zero). */
	for (size_t i = 0; i < d->words; i++)
		if (atomic_load_explicit(&d->rate_bits[i],
					 memory_order_relaxed))
			atomic_store_explicit(&d->rate_bits[i], 0,
					      memory_order_relaxed);
}

static void set_rate_active(struct guest *g, bool on)
{
	struct ram_block *b;

	guest_for_each_block(g, b)
	{
		if (!b->dirty)
			continue;
		if (on)
			clear_rate_block(b->dirty);
		atomic_store(&b->dirty->rate_active, on);
	}
}

int dirty_rate_start(struct guest *g)
{
	if (!g->dirty)
		return -ENODEV;
	pthread_mutex_lock(&g->dirty->lock);
	if (g->dirty->rate_busy) {
		pthread_mutex_unlock(&g->dirty->lock);
		return -EBUSY;
	}
	g->dirty->rate_busy = true;
	for (unsigned i = 0; i <= DIRTY_RATE_CPUS; i++)
		atomic_store(&g->dirty->counts[i].pages, 0);
	set_rate_active(g, true);
	pthread_mutex_unlock(&g->dirty->lock);
	/* As in dirty_log_start(): writes that saw it off came before. */
	atomic_thread_fence(memory_order_seq_cst);
	return 0;
}

void dirty_rate_stop(struct guest *g)
{
	if (!g->dirty)
		return;
	pthread_mutex_lock(&g->dirty->lock);
	if (g->dirty->rate_busy)
		set_rate_active(g, false);
	g->dirty->rate_busy = false;
	pthread_mutex_unlock(&g->dirty->lock);
}

uint64_t dirty_rate_pages(const struct guest *g, unsigned cpu)
{
	if (!g->dirty || cpu > DIRTY_RATE_CPUS)
		return 0;
	return atomic_load(&g->dirty->counts[cpu].pages);
}

uint64_t dirty_rate_total(const struct guest *g)
{
	uint64_t n = 0;

	for (unsigned i = 0; g->dirty && i <= DIRTY_RATE_CPUS; i++)
		n += atomic_load(&g->dirty->counts[i].pages);
	return n;
}

uint64_t dirty_log_sync_block(struct ram_block *b, unsigned long *dst)
{
	struct dirty_block *d = b->dirty;
	uint64_t newly = 0;

	if (!d)
		return 0;
	for (size_t i = 0; i < d->words; i++) {
		unsigned long v;

		/* Most words are clear: read before writing the line. */
		if (!atomic_load_explicit(&d->bits[i], memory_order_relaxed))
			continue;
		/* seq_cst (acquire at least): the page reads that follow see
		 * every write whose mark this exchange consumed. */
		v = atomic_exchange(&d->bits[i], 0);
		newly += (uint64_t)__builtin_popcountl(v & ~dst[i]);
		dst[i] |= v;
	}
	return newly;
}

uint64_t dirty_log_peek_block(const struct ram_block *b,
			      const unsigned long *pending)
{
	const struct dirty_block *d = b->dirty;
	uint64_t n = 0;

	for (size_t i = 0; d && i < d->words; i++) {
		unsigned long v =
			atomic_load_explicit(&d->bits[i], memory_order_relaxed);

		if (v)
			n += (uint64_t)__builtin_popcountl(v & ~pending[i]);
	}
	return n;
}
