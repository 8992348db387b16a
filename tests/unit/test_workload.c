/* test_workload.c — the guest workload: -workload parsing and validation
 * with exact messages (guest/workload.c), the token bucket under a
 * simulated clock (guest/tbucket.c), the write generator's patterns,
 * content and dirty logging (guest/workload_gen.c), and real vCPU threads
 * (guest/vcpu.c): rate within ±30 %, synchronous pause, resume, throttle. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "guest/digest.h"
#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "guest/tbucket.h"
#include "guest/vcpu.h"
#include "guest/workload.h"

#define MiB (1ull << 20)

/* ---- parsing ------------------------------------------------------------ */

static void parse_ok(const char *text, struct workload_config *w)
{
	struct mig_error *err = NULL;

	if (workload_parse(w, text, &err) < 0)
		fail_msg("'%s': %s", text, err ? err->desc : "?");
}

static void parse_err(const char *text, const char *desc)
{
	struct workload_config w;
	struct mig_error *err = NULL;

	assert_int_equal(workload_parse(&w, text, &err), -EINVAL);
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

static void test_parse_defaults(void **state)
{
	struct workload_config w;

	workload_config_init(&w);
	assert_true(w.idle);
	parse_ok("idle", &w);
	assert_true(w.idle);
	parse_ok("100", &w);
	assert_false(w.idle);
	assert_true(w.rate_mb == 100);
	assert_false(w.rate_per_vcpu);
	assert_int_equal(w.pattern, WORKLOAD_SEQUENTIAL);
	assert_int_equal(w.content, WORKLOAD_CONTENT_RANDOM);
	assert_int_equal(w.write_size, 4096);
	assert_int_equal(w.working_set, 0);
	assert_true(workload_vcpu_rate(&w, 4) == 25 * MiB);
	parse_ok("dirty-rate=0", &w);
	assert_true(workload_vcpu_rate(&w, 4) == 0);
}

static void test_parse_all_keys(void **state)
{
	struct workload_config w;

	parse_ok("per-vcpu-rate=12.5,working-set=64M,pattern=hotcold,"
		 "hot-fraction=0.25,hot-ratio=0.75,content=mixed,"
		 "zero-fraction=0.5,text-fraction=0.25,write-size=512,seed=42",
		 &w);
	assert_true(w.rate_per_vcpu);
	assert_true(workload_vcpu_rate(&w, 4) == 12.5 * MiB);
	assert_int_equal(w.working_set, 64 * MiB);
	assert_int_equal(w.pattern, WORKLOAD_HOTCOLD);
	assert_true(w.hot_fraction == 0.25 && w.hot_ratio == 0.75);
	assert_int_equal(w.content, WORKLOAD_CONTENT_MIXED);
	assert_true(w.zero_fraction == 0.5 && w.text_fraction == 0.25);
	assert_int_equal(w.write_size, 512);
	assert_int_equal(w.seed, 42);
	assert_int_equal(workload_fit(&w, 64 * MiB, NULL), 0);
}

static void test_parse_errors(void **state)
{
	parse_err("bogus=1", "Invalid parameter 'bogus'");
	parse_err("dirty-rate=fast",
		  "Parameter 'dirty-rate' expects a number or 'idle'");
	parse_err("per-vcpu-rate=x",
		  "Invalid parameter type for 'per-vcpu-rate', expected: "
		  "number");
	parse_err("pattern=zigzag",
		  "Parameter 'pattern' does not accept value 'zigzag'");
	parse_err("content=ones",
		  "Parameter 'content' does not accept value 'ones'");
	parse_err("working-set=lots", "Parameter 'working-set' expects size");
	parse_err("seed=-1", "Parameter 'seed' expects uint64");
	parse_err("dirty-rate=10,per-vcpu-rate=5",
		  "Parameters 'dirty-rate' and 'per-vcpu-rate' are mutually "
		  "exclusive");
	parse_err("dirty-rate=-1",
		  "Parameter 'dirty-rate' expects a number between 0 and "
		  "1000000");
	parse_err("idle,pattern=random",
		  "Parameter 'pattern' is not valid with dirty-rate 'idle'");
	parse_err("hot-fraction=0.5",
		  "Parameter 'hot-fraction' is only valid with pattern "
		  "'hotcold'");
	parse_err("content=text,text-fraction=0.5",
		  "Parameter 'text-fraction' is only valid with content "
		  "'mixed'");
	parse_err("pattern=hotcold,hot-fraction=0",
		  "Parameter 'hot-fraction' expects a number greater than 0 "
		  "and at most 1");
	parse_err("pattern=hotcold,hot-ratio=1.5",
		  "Parameter 'hot-ratio' expects a number between 0 and 1");
	parse_err("content=mixed,zero-fraction=0.6,text-fraction=0.6",
		  "Parameters 'zero-fraction' and 'text-fraction' add up to "
		  "more than 1");
	parse_err("write-size=0",
		  "Parameter 'write-size' expects a value between 1 and 4096");
	parse_err("write-size=8K",
		  "Parameter 'write-size' expects a value between 1 and 4096");
	parse_err("pattern",
		  "Parameter 'dirty-rate' expects a number or 'idle'");
	parse_err("1,pattern", "Expected '=' after parameter 'pattern'");
}

static void test_fit(void **state)
{
	struct workload_config w;
	struct mig_error *err = NULL;

	parse_ok("working-set=1G", &w);
	assert_int_equal(workload_fit(&w, 256 * MiB, &err), -EINVAL);
	assert_string_equal(err->desc, "Parameter 'working-set' expects a "
				       "size between 4096 and 268435456");
	mig_error_free(err);
	err = NULL;
	parse_ok("working-set=100", &w);
	assert_int_equal(workload_fit(&w, 256 * MiB, &err), -EINVAL);
	mig_error_free(err);
	parse_ok("working-set=256M", &w);
	assert_int_equal(workload_fit(&w, 256 * MiB, NULL), 0);
}

/* ---- token bucket ------------------------------------------------------- */

/* A writer that sleeps whenever the bucket says so, oversleeping by up to
 * 300 µs as a loaded host does, keeps the long-run rate. */
static void test_tbucket_rate_simulated(void **state)
{
	static const double rates[] = {10 * MiB, 100 * MiB, 1000 * MiB};
	struct workload_prng prng;

	workload_prng_seed(&prng, 3);
	for (size_t r = 0; r < 3; r++) {
		struct tbucket tb;
		uint64_t now = 1000, end = now + 10000000000ull, bytes = 0;

		tbucket_init(&tb, rates[r], rates[r] * 0.02, now);
		while (now < end) {
			uint64_t wait;

			tbucket_refill(&tb, now);
			wait = tbucket_wait_ns(&tb, 4096);
			if (wait) {
				now += wait +
				       workload_prng_next(&prng) % 300000;
				continue;
			}
			tbucket_consume(&tb, 4096);
			bytes += 4096;
			now += 200; /* the write itself */
		}
		assert_true(bytes > rates[r] * 10 * 0.99);
		assert_true(bytes < rates[r] * 10 * 1.01);
	}
}

static void test_tbucket_burst_cap(void **state)
{
	struct tbucket tb;

	tbucket_init(&tb, 1000, 500, 0);
	assert_int_equal(tbucket_available(&tb), 0);
	tbucket_refill(&tb, 100000000); /* 0.1 s: 100 bytes */
	assert_int_equal(tbucket_available(&tb), 100);
	tbucket_refill(&tb, 60000000000ull); /* a minute idle: capped */
	assert_int_equal(tbucket_available(&tb), 500);
	assert_int_equal(tbucket_wait_ns(&tb, 400), 0);
	tbucket_consume(&tb, 500);
	assert_int_equal(tbucket_wait_ns(&tb, 100), 100000000);
	/* More than the burst is never available: wait for the burst. */
	assert_int_equal(tbucket_wait_ns(&tb, 5000), 500000000);
	tbucket_refill(&tb, 59000000000ull); /* a clock going back: ignored */
	assert_int_equal(tbucket_available(&tb), 0);
}

/* ---- generator ---------------------------------------------------------- */

static struct guest *make_guest(unsigned smp, uint64_t size1, uint64_t size2)
{
	struct ram_block_config cfg = {.backing = RAM_BACKING_ANON};
	struct guest *g = guest_new(smp, GUEST_RUNSTATE_PAUSED);
	struct ram_block *b;

	assert_non_null(g);
	cfg.name = "ram";
	cfg.size = size1;
	b = ram_block_new(&cfg, NULL);
	assert_non_null(b);
	assert_int_equal(guest_add_block(g, b), 0);
	if (size2) {
		cfg.name = "extra";
		cfg.size = size2;
		b = ram_block_new(&cfg, NULL);
		assert_non_null(b);
		assert_int_equal(guest_add_block(g, b), 0);
	}
	assert_int_equal(dirty_log_init(g), 0);
	return g;
}

static bool page_is_zero(const uint8_t *p)
{
	for (size_t i = 0; i < 4096; i++)
		if (p[i])
			return false;
	return true;
}

/* Sequential writes walk this vCPU's share of the working set in order,
 * across the block boundary, and log every page. */
static void test_gen_sequential(void **state)
{
	struct guest *g = make_guest(1, 1 * MiB, 512 * 1024);
	struct workload_map *map = workload_map_new(g);
	struct workload_gen *gen = workload_gen_new(map);
	struct ram_block *big = g->blocks, *small = g->blocks->next;
	struct workload_config w;
	unsigned long dst[8] = {0};

	assert_int_equal(workload_map_pages(map), 384);
	parse_ok("working-set=1280K", &w);
	/* vCPU 1 of 2: pages 160..319 of the 320 in the working set. */
	workload_gen_reset(gen, &w, 1, 2);
	dirty_log_start(g);
	for (int i = 0; i < 160; i++)
		assert_int_equal(workload_gen_touch(gen), 4096);
	for (uint64_t p = 0; p < 256; p++)
		assert_true(page_is_zero(big->host + p * 4096) == (p < 160));
	for (uint64_t p = 0; p < 128; p++)
		assert_true(page_is_zero(small->host + p * 4096) == (p >= 64));
	assert_int_equal(dirty_log_sync_block(big, dst), 96);
	memset(dst, 0, sizeof(dst));
	assert_int_equal(dirty_log_sync_block(small, dst), 64);
	workload_gen_free(gen);
	workload_map_free(map);
	guest_free(g);
}

static void test_gen_content(void **state)
{
	struct guest *g = make_guest(1, 4 * MiB, 0);
	struct workload_map *map = workload_map_new(g);
	struct workload_gen *gen = workload_gen_new(map);
	uint8_t *ram = g->blocks->host;
	struct workload_config w;
	unsigned zero = 0, text = 0;

	parse_ok("content=text,seed=1", &w);
	workload_gen_reset(gen, &w, 0, 1);
	for (int i = 0; i < 1024; i++)
		workload_gen_touch(gen);
	for (size_t i = 0; i < 4 * MiB; i++)
		assert_true(ram[i] == ' ' || ram[i] == '\n' || islower(ram[i]));
	/* Mixed: about a third of the pages each (random pages are never
	 * all zero nor all text). */
	parse_ok("content=mixed,zero-fraction=0.25,text-fraction=0.5", &w);
	memset(ram, 0xff, 4 * MiB);
	workload_gen_reset(gen, &w, 0, 1);
	for (int i = 0; i < 1024; i++)
		workload_gen_touch(gen);
	for (uint64_t p = 0; p < 1024; p++) {
		const uint8_t *pg = ram + p * 4096;

		zero += page_is_zero(pg);
		text += !page_is_zero(pg) &&
			(islower(pg[0]) || pg[0] == ' ' || pg[0] == '\n') &&
			(islower(pg[4095]) || pg[4095] == ' ' ||
			 pg[4095] == '\n');
	}
	assert_in_range(zero, 200, 312);
	assert_in_range(text, 440, 584);
	workload_gen_free(gen);
	workload_map_free(map);
	guest_free(g);
}

static void test_gen_write_size_and_hotcold(void **state)
{
	struct guest *g = make_guest(1, 4 * MiB, 0);
	struct workload_map *map = workload_map_new(g);
	struct workload_gen *gen = workload_gen_new(map);
	uint8_t *ram = g->blocks->host;
	struct workload_config w;
	unsigned long dst[16] = {0};
	uint64_t hot = 0, n = 0;

	/* 100 fixed bytes per touch, hot = first 10 % of 1024 pages. */
	parse_ok("pattern=hotcold,hot-fraction=0.1,hot-ratio=0.8,"
		 "content=zero,write-size=100",
		 &w);
	memset(ram, 0xff, 4 * MiB);
	workload_gen_reset(gen, &w, 0, 1);
	dirty_log_start(g);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(workload_gen_touch(gen), 100);
	dirty_log_sync_block(g->blocks, dst);
	for (uint64_t p = 0; p < 1024; p++) {
		const uint8_t *pg = ram + p * 4096;
		uint64_t zeros = 0;

		for (size_t i = 0; i < 4096; i++)
			zeros += !pg[i];
		if (zeros)
			assert_true(dst[p / 64] >> (p % 64) & 1);
		if (p < 102)
			hot += zeros;
		n += zeros;
	}
	/* Hot pages got ~80 % of the writes (overlaps make it inexact). */
	assert_true((double)hot / (double)n > 0.65);
	assert_true((double)hot / (double)n < 0.85);
	workload_gen_free(gen);
	workload_map_free(map);
	guest_free(g);
}

static void test_gen_idle(void **state)
{
	struct guest *g = make_guest(1, 1 * MiB, 0);
	struct workload_map *map = workload_map_new(g);
	struct workload_gen *gen = workload_gen_new(map);
	struct workload_config w;

	workload_config_init(&w);
	workload_gen_reset(gen, &w, 0, 1);
	assert_int_equal(workload_gen_touch(gen), 0);
	assert_true(page_is_zero(g->blocks->host));
	workload_gen_free(gen);
	workload_map_free(map);
	guest_free(g);
}

/* passes=2: exactly two touches per page of the share, then nothing. */
static void test_gen_passes(void **state)
{
	struct guest *g = make_guest(1, 1 * MiB, 0);
	struct workload_map *map = workload_map_new(g);
	struct workload_gen *gen = workload_gen_new(map);
	struct workload_config w;
	unsigned n = 0;

	parse_ok("passes=2,pattern=random", &w);
	workload_gen_reset(gen, &w, 0, 2); /* 128 of the 256 pages */
	while (workload_gen_touch(gen))
		n++;
	assert_int_equal(n, 256);
	assert_true(workload_gen_is_finished(gen));
	assert_int_equal(workload_gen_touch(gen), 0);
	workload_gen_free(gen);
	workload_map_free(map);
	guest_free(g);
}

/* ---- real vCPUs --------------------------------------------------------- */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static uint64_t total_bytes(struct vcpus *v)
{
	struct vcpu_progress p;
	uint64_t sum = 0;

	for (unsigned i = 0; i < vcpus_count(v); i++) {
		vcpus_get_progress(v, i, &p);
		sum += p.bytes_written;
	}
	return sum;
}

static void digest_of(struct guest *g, uint8_t out[16])
{
	assert_int_equal(ram_digest(g->blocks->host, g->blocks->used_length,
				    RAM_DIGEST_XXH3_128, 1, out, NULL),
			 0);
}

static void test_vcpus_rate(void **state)
{
	struct guest *g = make_guest(2, 64 * MiB, 0);
	struct workload_config w;
	struct vcpu_progress p;
	uint64_t before, after;

	g->vcpus = vcpus_new(g, NULL);
	assert_non_null(g->vcpus);
	assert_int_equal(vcpus_count(g->vcpus), 2);
	parse_ok("dirty-rate=20,pattern=random", &w);
	assert_int_equal(vcpus_set_workload(g->vcpus, &w, NULL), 0);
	assert_int_equal(total_bytes(g->vcpus), 0); /* paused */
	vcpus_resume(g->vcpus);
	sleep_ms(200);
	before = total_bytes(g->vcpus);
	sleep_ms(1000);
	after = total_bytes(g->vcpus);
	assert_in_range(after - before, 14 * MiB, 26 * MiB);
	vcpus_get_progress(g->vcpus, 1, &p);
	assert_in_range(p.rate, 7 * MiB, 13 * MiB);
	guest_free(g);
}

/* After vcpus_pause() returns nothing changes RAM; resume writes again. */
static void test_vcpus_pause_is_synchronous(void **state)
{
	struct guest *g = make_guest(2, 16 * MiB, 0);
	uint8_t d1[16], d2[16];
	struct workload_config w;
	unsigned long dst[64] = {0};
	uint64_t bytes;

	g->vcpus = vcpus_new(g, NULL);
	parse_ok("dirty-rate=0,pattern=random", &w); /* unthrottled */
	assert_int_equal(vcpus_set_workload(g->vcpus, &w, NULL), 0);
	dirty_log_start(g);
	for (int round = 0; round < 20; round++) {
		vcpus_resume(g->vcpus);
		assert_true(vcpus_are_running(g->vcpus));
		sleep_ms(5);
		vcpus_pause(g->vcpus);
		assert_false(vcpus_are_running(g->vcpus));
		dirty_log_sync_block(g->blocks, dst);
		bytes = total_bytes(g->vcpus);
		digest_of(g, d1);
		sleep_ms(5);
		digest_of(g, d2);
		assert_memory_equal(d1, d2, 16);
		assert_int_equal(dirty_log_sync_block(g->blocks, dst), 0);
		assert_int_equal(total_bytes(g->vcpus), bytes);
	}
	vcpus_resume(g->vcpus);
	sleep_ms(20);
	vcpus_pause(g->vcpus);
	digest_of(g, d2);
	assert_memory_not_equal(d1, d2, 16);
	guest_free(g);
}

/* One sequential pass of every vCPU writes every page exactly once. */
static void test_vcpus_fill_once(void **state)
{
	struct guest *g = make_guest(3, 8 * MiB, 0);
	struct workload_config w;
	struct vcpu_progress p;
	bool done = false;

	g->vcpus = vcpus_new(g, NULL);
	parse_ok("0,passes=1", &w);
	assert_int_equal(vcpus_set_workload(g->vcpus, &w, NULL), 0);
	vcpus_resume(g->vcpus);
	for (int i = 0; i < 500 && !done; i++) {
		done = true;
		for (unsigned c = 0; c < 3; c++) {
			vcpus_get_progress(g->vcpus, c, &p);
			done = done && p.finished;
		}
		sleep_ms(10);
	}
	assert_true(done);
	assert_int_equal(total_bytes(g->vcpus), 8 * MiB);
	for (uint64_t pg = 0; pg < 2048; pg++)
		assert_false(page_is_zero(g->blocks->host + pg * 4096));
	guest_free(g);
}

static void test_vcpus_throttle_and_idle(void **state)
{
	struct guest *g = make_guest(1, 16 * MiB, 0);
	struct workload_config w;
	uint64_t free_run, throttled, b0;

	g->vcpus = vcpus_new(g, NULL);
	vcpus_resume(g->vcpus);
	sleep_ms(50);
	assert_int_equal(total_bytes(g->vcpus), 0); /* idle by default */
	parse_ok("dirty-rate=0", &w);
	assert_int_equal(vcpus_set_workload(g->vcpus, &w, NULL), 0);
	sleep_ms(100);
	b0 = total_bytes(g->vcpus);
	sleep_ms(500);
	free_run = total_bytes(g->vcpus) - b0;
	/* 90 ms asleep per 10 ms slice: a tenth of the time left. */
	vcpus_set_throttle(g->vcpus, 0, 90000000);
	assert_int_equal(vcpus_get_throttle(g->vcpus, 0), 90000000);
	sleep_ms(100);
	b0 = total_bytes(g->vcpus);
	sleep_ms(500);
	throttled = total_bytes(g->vcpus) - b0;
	assert_true(throttled * 3 < free_run);
	vcpus_set_throttle(g->vcpus, 0, 0);
	/* Back to idle: no more writes. */
	workload_config_init(&w);
	assert_int_equal(vcpus_set_workload(g->vcpus, &w, NULL), 0);
	sleep_ms(20);
	b0 = total_bytes(g->vcpus);
	sleep_ms(100);
	assert_int_equal(total_bytes(g->vcpus), b0);
	guest_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_defaults),
		cmocka_unit_test(test_parse_all_keys),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_tbucket_rate_simulated),
		cmocka_unit_test(test_tbucket_burst_cap),
		cmocka_unit_test(test_gen_sequential),
		cmocka_unit_test(test_gen_content),
		cmocka_unit_test(test_gen_write_size_and_hotcold),
		cmocka_unit_test(test_gen_idle),
		cmocka_unit_test(test_gen_passes),
		cmocka_unit_test(test_vcpus_rate),
		cmocka_unit_test(test_vcpus_pause_is_synchronous),
		cmocka_unit_test(test_vcpus_fill_once),
		cmocka_unit_test(test_vcpus_throttle_and_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
