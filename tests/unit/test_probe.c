/* test_probe.c — the page-request latency probe (guest/probe.c): histogram
 * buckets, percentiles, statistics, the mincore/first-access primitives,
 * and the content=probe generator (guest/workload_gen.c) on fresh RAM,
 * where every page is missing until its first access. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/probe.h"
#include "guest/ram.h"
#include "guest/workload.h"

static void test_buckets(void **state)
{
	unsigned last = 0;

	for (uint64_t v = 0; v < PROBE_HIST_SUB; v++)
		assert_int_equal(probe_hist_bucket(v), v);
	/* every value lies in its bucket; buckets grow with values; a
	 * bucket is at most 1/32 of its first value wide */
	for (uint64_t v = 1; v < (1ull << 62); v += v / 7 + 1) {
		unsigned b = probe_hist_bucket(v);
		uint64_t lo = probe_hist_bucket_low(b);
		uint64_t w = probe_hist_bucket_width(b);

		assert_true(b < PROBE_HIST_BUCKETS);
		assert_true(lo <= v && v - lo < w);
		assert_true(b >= last);
		if (lo >= PROBE_HIST_SUB)
			assert_true(w * PROBE_HIST_SUB <= lo);
		last = b;
	}
	assert_int_equal(probe_hist_bucket(UINT64_MAX), PROBE_HIST_BUCKETS - 1);
	assert_int_equal(probe_hist_bucket_low(PROBE_HIST_BUCKETS), UINT64_MAX);
	assert_int_equal(probe_hist_bucket_width(PROBE_HIST_BUCKETS), 0);
}

static void assert_near(uint64_t got, uint64_t want)
{
	uint64_t d = got > want ? got - want : want - got;

	if (d * 32 > want + 32) /* within a bucket (3.2 %) */
		fail_msg("%llu is not near %llu", (unsigned long long)got,
			 (unsigned long long)want);
}

static void test_percentiles(void **state)
{
	struct probe_hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	probe_hist_reset(h);
	assert_int_equal(probe_hist_percentile(h, 50), 0);
	/* 1..100000 ns in shuffled order */
	for (uint64_t i = 0; i < 100000; i++)
		probe_hist_add(h, (i * 7919) % 100000 + 1);
	assert_int_equal(h->count, 100000);
	assert_int_equal(h->min_ns, 1);
	assert_int_equal(h->max_ns, 100000);
	assert_int_equal(h->sum_ns, 100000ull * 100001 / 2);
	assert_near(probe_hist_percentile(h, 50), 50000);
	assert_near(probe_hist_percentile(h, 90), 90000);
	assert_near(probe_hist_percentile(h, 99), 99000);
	assert_near(probe_hist_percentile(h, 99.9), 99900);
	assert_int_equal(probe_hist_percentile(h, 100), 100000);
	assert_int_equal(probe_hist_percentile(h, 0.0001), 1);
	assert_int_equal(probe_hist_percentile(h, 0), 0);
	assert_int_equal(probe_hist_percentile(h, 101), 0);
	assert_int_equal(probe_hist_percentile(h, -1), 0);
	/* one sample: every percentile is that sample (clamped) */
	probe_hist_reset(h);
	probe_hist_add(h, 123456789);
	assert_int_equal(probe_hist_percentile(h, 50), 123456789);
	assert_int_equal(probe_hist_percentile(h, 99), 123456789);
	free(h);
}

static void test_skewed_tail(void **state)
{
	struct probe_hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	probe_hist_reset(h);
	/* 98 fast requests (50 us), 2 slow ones (20 ms): p99 is slow */
	for (int i = 0; i < 98; i++)
		probe_hist_add(h, 50000);
	probe_hist_add(h, 20000000);
	probe_hist_add(h, 20000000);
	assert_near(probe_hist_percentile(h, 50), 50000);
	assert_near(probe_hist_percentile(h, 98), 50000);
	assert_near(probe_hist_percentile(h, 99), 20000000);
	/* the sum saturates instead of wrapping */
	probe_hist_add(h, UINT64_MAX);
	assert_int_equal(h->sum_ns, UINT64_MAX);
	assert_int_equal(h->max_ns, UINT64_MAX);
	free(h);
}

static void test_stats(void **state)
{
	struct probe_stats *s = malloc(sizeof(*s));
	struct probe_stats *c = malloc(sizeof(*c));

	assert_non_null(s);
	assert_non_null(c);
	probe_stats_init(s);
	probe_stats_record(s, 1000);
	probe_stats_record(s, 3000);
	probe_stats_count(s, 5, false);
	probe_stats_count(s, 256, true);
	probe_stats_snapshot(s, c);
	assert_int_equal(c->hist.count, 2);
	assert_int_equal(c->hist.sum_ns, 4000);
	assert_int_equal(c->resident, 261);
	assert_int_equal(c->not_found, 1);
	probe_stats_reset(s);
	probe_stats_snapshot(s, c);
	assert_int_equal(c->hist.count, 0);
	assert_int_equal(c->resident, 0);
	assert_int_equal(c->not_found, 0);
	probe_stats_destroy(s);
	free(s);
	free(c);
}

static void test_primitives(void **state)
{
	uint8_t *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	assert_true(probe_page_missing(p + 4096));
	assert_true(probe_first_access_ns(p + 4096) < 10000000000ull);
	assert_false(probe_page_missing(p + 4096)); /* the zero page */
	p[2 * 4096] = 1;
	assert_false(probe_page_missing(p + 2 * 4096));
	assert_int_equal(madvise(p, 4 * 4096, MADV_DONTNEED), 0);
	assert_true(probe_page_missing(p + 2 * 4096));
	/* not mapped at all: unknown, so not "missing" */
	assert_int_equal(munmap(p, 4 * 4096), 0);
	assert_false(probe_page_missing(p));
}

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

static void test_probe_workload(void **state)
{
	struct guest *g = make_guest(16 * 4096);
	struct workload_map *map = workload_map_new(g);
	struct workload_gen *gen0 = workload_gen_new(map);
	struct workload_gen *gen1 = workload_gen_new(map);
	struct probe_stats *s = malloc(sizeof(*s));
	struct workload_config w;
	struct mig_error *err = NULL;
	unsigned long pending[1] = {0};
	struct ram_block *b;

	assert_non_null(map);
	assert_non_null(gen0);
	assert_non_null(gen1);
	assert_non_null(s);
	probe_stats_init(s);
	assert_int_equal(workload_parse(&w, "content=probe,seed=7", &err), 0);
	assert_int_equal(w.content, WORKLOAD_CONTENT_PROBE);
	workload_gen_set_probe(gen0, s);
	workload_gen_reset(gen0, &w, 0, 2);
	workload_gen_reset(gen1, &w, 1, 2);
	assert_int_equal(workload_gen_touch(gen1), 0); /* vCPU 1 idles */
	/* fresh anonymous RAM: each touch finds a missing page until all 16
	 * are mapped, then it finds none */
	for (int i = 0; i < 40; i++)
		assert_int_equal(workload_gen_touch(gen0), 4096);
	assert_int_equal(s->hist.count, 16);
	assert_true(s->not_found >= 1);
	assert_true(s->resident > 0);
	assert_true(s->hist.max_ns >= s->hist.min_ns);
	/* the probe writes nothing */
	guest_for_each_block(g, b)
	{
		assert_int_equal(dirty_log_peek_block(b, pending), 0);
	}
	probe_stats_destroy(s);
	free(s);
	workload_gen_free(gen0);
	workload_gen_free(gen1);
	workload_map_free(map);
	guest_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_skewed_tail),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_primitives),
		cmocka_unit_test(test_probe_workload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
