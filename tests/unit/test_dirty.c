/* test_dirty.c — the exact dirty log (guest/dirty.c): bitmap layout,
 * newly-set counting, logging on/off and its user count, clamping, and the
 * no-lost-update property under writers racing a syncing thread. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "guest/workload.h"

#define WORD_BITS (sizeof(unsigned long) * 8)

static struct guest *make_guest(uint64_t size)
{
	struct ram_block_config cfg = {
		.name = "ram", .size = size, .backing = RAM_BACKING_ANON};
	struct guest *g = guest_new(1, GUEST_RUNSTATE_RUNNING);
	struct ram_block *b;

	assert_non_null(g);
	b = ram_block_new(&cfg, NULL);
	assert_non_null(b);
	assert_int_equal(guest_add_block(g, b), 0);
	assert_int_equal(dirty_log_init(g), 0);
	return g;
}

static unsigned long *new_dst(struct ram_block *b)
{
	uint64_t words = (dirty_block_pages(b) + WORD_BITS - 1) / WORD_BITS;
	unsigned long *dst = calloc(words, sizeof(*dst));

	assert_non_null(dst);
	return dst;
}

static bool test_bit(const unsigned long *map, uint64_t bit)
{
	return map[bit / WORD_BITS] >> (bit % WORD_BITS) & 1;
}

static void test_layout_and_counts(void **state)
{
	struct guest *g = make_guest(1 << 20); /* 256 pages */
	struct ram_block *b = g->blocks;
	unsigned long *dst = new_dst(b);

	assert_int_equal(dirty_block_pages(b), 256);
	assert_false(dirty_log_is_active(g));
	dirty_log_mark(b, 0, 4096); /* logging off: ignored */
	assert_int_equal(dirty_log_sync_block(b, dst), 0);

	dirty_log_start(g);
	assert_true(dirty_log_is_active(g));
	dirty_log_mark(b, 4096 * 3 + 100, 1);	 /* page 3 */
	dirty_log_mark(b, 4096 * 60, 4096 * 10); /* pages 60..69 */
	dirty_log_mark(b, 4096 * 64 - 1, 2);	 /* pages 63, 64 */
	assert_int_equal(dirty_log_sync_block(b, dst), 11);
	assert_true(test_bit(dst, 3));
	for (uint64_t p = 60; p < 70; p++)
		assert_true(test_bit(dst, p));
	assert_false(test_bit(dst, 59));
	assert_false(test_bit(dst, 70));
	/* Already pending in dst: not newly set; the log is now clear. */
	dirty_log_mark(b, 4096 * 3, 4096);
	dirty_log_mark(b, 4096 * 200, 4096);
	assert_int_equal(dirty_log_sync_block(b, dst), 1);
	assert_int_equal(dirty_log_sync_block(b, dst), 0);
	free(dst);
	guest_free(g);
}

static void test_clamp_and_empty(void **state)
{
	struct guest *g = make_guest(1 << 20);
	struct ram_block *b = g->blocks;
	unsigned long *dst = new_dst(b);

	dirty_log_start(g);
	dirty_log_mark(b, 4096 * 255, 1ull << 40); /* runs past the end */
	dirty_log_mark(b, 1 << 20, 4096);	   /* starts past the end */
	dirty_log_mark(b, 0, 0);		   /* empty */
	dirty_log_mark(b, UINT64_MAX - 10, 100);   /* wraps */
	assert_int_equal(dirty_log_sync_block(b, dst), 1);
	assert_true(test_bit(dst, 255));
	free(dst);
	guest_free(g);
}

static void test_users(void **state)
{
	struct guest *g = make_guest(1 << 20);
	struct ram_block *b = g->blocks;
	unsigned long *dst = new_dst(b);

	dirty_log_start(g);
	dirty_log_mark(b, 0, 1);
	dirty_log_start(g); /* second user: does not clear the first's bits */
	dirty_log_stop(g);
	assert_true(dirty_log_is_active(g));
	dirty_log_mark(b, 4096, 1);
	assert_int_equal(dirty_log_sync_block(b, dst), 2);
	dirty_log_stop(g);
	assert_false(dirty_log_is_active(g));
	dirty_log_mark(b, 8192, 1);
	assert_int_equal(dirty_log_sync_block(b, dst), 0);
	dirty_log_stop(g); /* unbalanced stop: harmless */
	dirty_log_mark(b, 0, 1);
	dirty_log_start(g); /* a new first user starts from a clear log */
	assert_int_equal(dirty_log_sync_block(b, dst), 0);
	free(dst);
	guest_free(g);
}

/* ---- no lost update ----------------------------------------------------- */

/* Rounds of a few thousand writes over many pages: most pages are written
 * at most once per round, so a mark the log loses is usually a page's last
 * write of the round, which the check after the round then catches. */
#define RACE_PAGES 32768 /* 128 MiB */
#define RACE_WRITERS 3
#define RACE_WRITES 3000 /* per writer and round */
#define RACE_ROUNDS 150

struct race {
	struct ram_block *b;
	atomic_uint running;	   /* writers still writing this round */
	uint64_t sent[RACE_PAGES]; /* what the syncer last copied */
	unsigned long *dst;
	uint64_t syncs;
};

static _Atomic uint64_t *page_word(struct ram_block *b, uint64_t page)
{
	return (_Atomic uint64_t *)(b->host + page * 4096);
}

struct writer {
	struct race *r;
	unsigned id;
	struct workload_prng prng;
	uint64_t seq;
};

/* Writes values never used before to random pages, then logs them. */
static void *writer_thread(void *opaque)
{
	struct writer *w = opaque;

	for (unsigned i = 0; i < RACE_WRITES; i++) {
		uint64_t page = workload_prng_next(&w->prng) % RACE_PAGES;

		atomic_store_explicit(page_word(w->r->b, page),
				      ++w->seq << 8 | w->id,
				      memory_order_relaxed);
		dirty_log_mark(w->r->b, page * 4096 + 8 * (i % 8), 8);
	}
	atomic_fetch_sub(&w->r->running, 1);
	return NULL;
}

/* "Sends" every page the log reports: takes the bits, then copies. */
static void send_dirty(struct race *r)
{
	dirty_log_sync_block(r->b, r->dst);
	for (uint64_t i = 0; i < RACE_PAGES / WORD_BITS; i++) {
		while (r->dst[i]) {
			uint64_t p = i * WORD_BITS +
				     (uint64_t)__builtin_ctzl(r->dst[i]);

			r->dst[i] &= r->dst[i] - 1;
			r->sent[p] = atomic_load_explicit(page_word(r->b, p),
							  memory_order_relaxed);
		}
	}
	r->syncs++;
}

static void race_round(struct race *r, struct writer *w)
{
	pthread_t tids[RACE_WRITERS];

	atomic_store(&r->running, RACE_WRITERS);
	for (unsigned i = 0; i < RACE_WRITERS; i++)
		assert_int_equal(
			pthread_create(&tids[i], NULL, writer_thread, &w[i]),
			0);
	while (atomic_load(&r->running))
		send_dirty(r);
	for (unsigned i = 0; i < RACE_WRITERS; i++)
		pthread_join(tids[i], NULL);
	send_dirty(r); /* the final pass after the "vCPUs" stopped */
	for (uint64_t p = 0; p < RACE_PAGES; p++)
		if (r->sent[p] != atomic_load(page_word(r->b, p)))
			fail_msg("page %llu: sent %llx, RAM has %llx",
				 (unsigned long long)p,
				 (unsigned long long)r->sent[p],
				 (unsigned long long)atomic_load(
					 page_word(r->b, p)));
}

static void test_no_lost_update(void **state)
{
	struct guest *g = make_guest(RACE_PAGES * 4096ull);
	struct race *r = calloc(1, sizeof(*r));
	struct writer w[RACE_WRITERS];

	assert_non_null(r);
	r->b = g->blocks;
	r->dst = new_dst(r->b);
	for (unsigned i = 0; i < RACE_WRITERS; i++) {
		w[i] = (struct writer){.r = r, .id = i};
		workload_prng_seed(&w[i].prng, i + 1);
	}
	/* The first pass after dirty_log_start() sends every page (the bulk
	 * stage); then only what the log reports. */
	dirty_log_start(g);
	for (uint64_t p = 0; p < RACE_PAGES; p++)
		r->dst[p / WORD_BITS] |= 1ul << (p % WORD_BITS);
	for (unsigned round = 0; round < RACE_ROUNDS; round++)
		race_round(r, w);
	assert_true(r->syncs > RACE_ROUNDS);
	free(r->dst);
	free(r);
	guest_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_counts),
		cmocka_unit_test(test_clamp_and_empty),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_no_lost_update),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
