/* test_dirtyrate.c — calc-dirty-rate's pieces: the rate log in
 * guest/dirty.c (first writes per vCPU, independence from the migration's
 * log, one measurement at a time) and QEMU's integer rate formulas in
 * control/dirtyrate.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "control/dirtyrate.h"
#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/ram.h"

#define WORD_BITS (sizeof(unsigned long) * 8)

static struct guest *make_guest(uint64_t size)
{
	struct ram_block_config cfg = {
		.name = "ram", .size = size, .backing = RAM_BACKING_ANON};
	struct guest *g = guest_new(2, GUEST_RUNSTATE_RUNNING);
	struct ram_block *b;

	assert_non_null(g);
	b = ram_block_new(&cfg, NULL);
	assert_non_null(b);
	assert_int_equal(guest_add_block(g, b), 0);
	assert_int_equal(dirty_log_init(g), 0);
	return g;
}

static void test_rate_log_counts_first_writes(void **state)
{
	struct guest *g = make_guest(1 << 20); /* 256 pages */
	struct ram_block *b = g->blocks;

	dirty_log_mark_cpu(b, 0, 4096, 0); /* off: not counted */
	assert_int_equal(dirty_rate_start(g), 0);
	assert_int_equal(dirty_rate_start(g), -EBUSY);
	dirty_log_mark_cpu(b, 0, 4096, 0);
	dirty_log_mark_cpu(b, 100, 8, 0);		/* page 0 again */
	dirty_log_mark_cpu(b, 4096 * 10, 4096 * 70, 1); /* pages 10..79 */
	dirty_log_mark_cpu(b, 4096 * 79, 8192, 0);	/* 79 taken, 80 new */
	dirty_log_mark(b, 4096 * 200, 1);		/* not a vCPU */
	dirty_log_mark_cpu(b, 4096 * 201, 1, 999); /* out of range: other */
	assert_int_equal(dirty_rate_pages(g, 0), 2);
	assert_int_equal(dirty_rate_pages(g, 1), 70);
	assert_int_equal(dirty_rate_pages(g, DIRTY_RATE_CPUS), 2);
	assert_int_equal(dirty_rate_pages(g, DIRTY_RATE_CPUS + 1), 0);
	assert_int_equal(dirty_rate_total(g), 74);
	dirty_rate_stop(g);
	dirty_log_mark_cpu(b, 4096 * 150, 1, 0);
	assert_int_equal(dirty_rate_total(g), 74);
	/* A new measurement starts from nothing. */
	assert_int_equal(dirty_rate_start(g), 0);
	assert_int_equal(dirty_rate_total(g), 0);
	dirty_log_mark_cpu(b, 0, 1, 1);
	assert_int_equal(dirty_rate_pages(g, 1), 1);
	dirty_rate_stop(g);
	guest_free(g);
}

/* Measuring neither consumes nor adds to the migration's log. */
static void test_rate_log_is_independent(void **state)
{
	struct guest *g = make_guest(1 << 20);
	struct ram_block *b = g->blocks;
	unsigned long dst[256 / WORD_BITS] = {0};

	assert_int_equal(dirty_rate_start(g), 0);
	dirty_log_mark_cpu(b, 4096 * 5, 1, 0);
	assert_false(dirty_log_is_active(g));
	assert_int_equal(dirty_log_sync_block(b, dst), 0);
	dirty_log_start(g); /* a migration starts meanwhile */
	dirty_log_mark_cpu(b, 4096 * 6, 1, 0);
	dirty_log_mark_cpu(b, 4096 * 5, 1, 0);
	assert_int_equal(dirty_log_peek_block(b, dst), 2);
	assert_int_equal(dirty_rate_total(g), 2);
	dirty_rate_stop(g);
	/* The migration still gets both pages. */
	assert_int_equal(dirty_log_sync_block(b, dst), 2);
	assert_int_equal(dirty_log_peek_block(b, dst), 0);
	dirty_log_mark_cpu(b, 4096 * 7, 1, 0);
	assert_int_equal(dirty_log_peek_block(b, dst), 1);
	dst[0] |= 1ul << 7; /* pending already: not fresh */
	assert_int_equal(dirty_log_peek_block(b, dst), 0);
	dirty_log_stop(g);
	guest_free(g);
}

static void test_formulas(void **state)
{
	/* 256 pages = 1 MiB in 1 s; in 500 ms: 2 MiB/s */
	assert_int_equal(dirtyrate_from_pages(256, 1000), 1);
	assert_int_equal(dirtyrate_from_pages(256, 500), 2);
	/* multiplied before the shift: 1000 pages in 100 ms = 39 MiB/s */
	assert_int_equal(dirtyrate_from_pages(1000, 100), 39);
	assert_int_equal(dirtyrate_from_pages(1000, 0), 0);
	assert_int_equal(dirtyrate_from_pages(51200, 1000), 200);
	/* 100 of 400 samples of 512 MiB in 1 s: 128 MiB/s */
	assert_int_equal(dirtyrate_from_samples(100, 400, 512, 1000), 128);
	assert_int_equal(dirtyrate_from_samples(1, 0, 512, 1000), -1);
	assert_int_equal(dirtyrate_to_ms(2, 0), 2000);
	assert_int_equal(dirtyrate_to_ms(2, 1), 2);
	assert_true(dirtyrate_to_ms(INT64_MAX / 10, 0) > DIRTYRATE_MAX_CALC_MS);
	assert_true(dirtyrate_to_ms(INT64_MIN / 10, 0) < DIRTYRATE_MIN_CALC_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_log_counts_first_writes),
		cmocka_unit_test(test_rate_log_is_independent),
		cmocka_unit_test(test_formulas),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
