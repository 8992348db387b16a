/* test_throttle.c — vCPU throttling: QEMU's auto-converge steps (initial,
 * increment, tailslow, max, clamping) and timeslice sleep, the emulated
 * dirty ring and the dirty-limit penalty step (guest/throttle.c), and the
 * dirty limit service slowing real vCPU threads (guest/dirtylimit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "guest/dirty.h"
#include "guest/dirtylimit.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "guest/throttle.h"
#include "guest/vcpu.h"
#include "guest/workload.h"

#define MiB (1ull << 20)

/* ---- auto-converge ------------------------------------------------------ */

static void test_sleep_ns(void **state)
{
	assert_int_equal(throttle_sleep_ns(0), 0);
	/* 20 %: 2.5 ms asleep per 10 ms of running (QEMU's example) */
	assert_int_equal(throttle_sleep_ns(20), 2500001);
	assert_int_equal(throttle_sleep_ns(50), 10000001);
	assert_int_equal(throttle_sleep_ns(90), 90000001);
	assert_int_equal(throttle_sleep_ns(99), 990000000); /* rounding */
	/* clamped to 1..99 */
	assert_int_equal(throttle_sleep_ns(100), throttle_sleep_ns(99));
	assert_int_equal(throttle_sleep_ns(250), throttle_sleep_ns(99));
	assert_int_equal(throttle_clamp_pct(0), 0);
	assert_int_equal(throttle_clamp_pct(1), 1);
	assert_int_equal(throttle_clamp_pct(120), 99);
}

static void test_steps_linear(void **state)
{
	struct throttle_params p = {20, 10, 99, false};
	unsigned pct = 0, expect[] = {20, 30, 40, 50, 60, 70, 80, 90, 99, 99};

	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		pct = throttle_next_pct(&p, pct, 1000, 500);
		assert_int_equal(pct, expect[i]);
	}
	/* max-cpu-throttle caps the increments, not the initial value */
	p = (struct throttle_params){30, 25, 50, false};
	assert_int_equal(throttle_next_pct(&p, 0, 1, 0), 30);
	assert_int_equal(throttle_next_pct(&p, 30, 1, 0), 50);
	assert_int_equal(throttle_next_pct(&p, 50, 1, 0), 50);
	p = (struct throttle_params){60, 10, 40, false};
	assert_int_equal(throttle_next_pct(&p, 0, 1, 0), 60);
	assert_int_equal(throttle_next_pct(&p, 60, 1, 0), 40);
}

static void test_steps_tailslow(void **state)
{
	struct throttle_params p = {20, 10, 99, true};

	/* The first step is still cpu-throttle-initial. */
	assert_int_equal(throttle_next_pct(&p, 0, 2000, 1000), 20);
	/* cpu 80 %, ideal 80 x 1000/1010 = 79.2 -> 79: a step of 1 */
	assert_int_equal(throttle_next_pct(&p, 20, 1010, 1000), 21);
	/* cpu 80 %, ideal 80 x 1000/1100 = 72.7 -> 72: a step of 8 */
	assert_int_equal(throttle_next_pct(&p, 20, 1100, 1000), 28);
	/* far from ideal: the increment bounds the step */
	assert_int_equal(throttle_next_pct(&p, 20, 4000, 1000), 30);
	/* and max-cpu-throttle the result */
	p.max = 25;
	assert_int_equal(throttle_next_pct(&p, 20, 4000, 1000), 25);
	/* nothing dirtied: no step */
	assert_int_equal(throttle_next_pct(&p, 20, 0, 0), 20);
}

/* ---- the dirty ring and the dirty-limit step ---------------------------- */

static void test_ring(void **state)
{
	struct throttle_ring r;

	throttle_ring_init(&r);
	assert_int_equal(throttle_ring_push(&r, THROTTLE_RING_PAGES - 1, 1), 0);
	/* full, but no penalty: the ring is just harvested */
	assert_int_equal(throttle_ring_push(&r, 1, 1), 0);
	assert_int_equal(r.fill, 0);
	atomic_store(&r.penalty_us, 1500);
	assert_int_equal(throttle_ring_push(&r, 100, 1), 0);
	assert_int_equal(throttle_ring_push(&r, THROTTLE_RING_PAGES, 1),
			 1500000);
	assert_int_equal(r.fill, 100);
	assert_int_equal(atomic_load(&r.pages), 2 * THROTTLE_RING_PAGES + 100);
	assert_int_equal(atomic_load(&r.slept_us), 1500);
}

static void test_dirtylimit_step(void **state)
{
	uint64_t full = throttle_ring_full_us(2000); /* 16 MiB at 2000 MB/s */

	assert_int_equal(full, 8000);
	assert_int_equal(throttle_ring_full_us(0), 0);
	/* a vCPU that does not write is never penalised */
	assert_int_equal(throttle_dirtylimit_step(5000, 100, 0, full), 0);
	/* within 25 MB/s of the quota: unchanged */
	assert_int_equal(throttle_dirtylimit_step(5000, 100, 120, full), 5000);
	assert_int_equal(throttle_dirtylimit_step(5000, 100, 80, full), 5000);
	/* 2000 vs 100: the cycle must grow from 8 ms to 160 ms */
	assert_int_equal(throttle_dirtylimit_step(0, 100, 2000, full),
			 160000 - 8000);
	/* 160 vs 100: 37 % off -> half the cycle difference (100 ms vs
	 * 160 ms) */
	assert_int_equal(throttle_dirtylimit_step(1000, 100, 160, full),
			 1000 + (160000 - 100000) / 2);
	assert_int_equal(throttle_dirtylimit_step(40000, 160, 100, full),
			 40000 - (160000 - 100000) / 2);
	/* 100 vs 300 (too slow by 66 %): the cycle must shrink from 160 ms
	 * to 53.3 ms, floored at 0 */
	assert_int_equal(throttle_dirtylimit_step(200000, 300, 100, full),
			 200000 - (160000 - 53333));
	assert_int_equal(throttle_dirtylimit_step(100, 300, 100, full), 0);
	/* a fast writer already penalised: 92 vs a quota of 50 moves by half
	 * of 320 ms - 173.9 ms, not by a tenth of the fill time at its peak */
	assert_int_equal(throttle_dirtylimit_step(160000, 50, 92,
						  throttle_ring_full_us(4800)),
			 160000 + (320000 - 173913) / 2);
	/* at most 99 fill times */
	assert_int_equal(throttle_dirtylimit_step(790000, 1, 2000, full),
			 8000 * 99);
}

/* ---- the service on real vCPUs ------------------------------------------ */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static struct guest *make_guest(unsigned smp, uint64_t size)
{
	struct ram_block_config cfg = {.backing = RAM_BACKING_ANON};
	struct guest *g = guest_new(smp, GUEST_RUNSTATE_PAUSED);
	struct ram_block *b;

	assert_non_null(g);
	cfg.name = "ram";
	cfg.size = size;
	b = ram_block_new(&cfg, NULL);
	assert_non_null(b);
	assert_int_equal(guest_add_block(g, b), 0);
	assert_int_equal(dirty_log_init(g), 0);
	g->vcpus = vcpus_new(g, NULL);
	assert_non_null(g->vcpus);
	return g;
}

static uint64_t bytes_of(struct vcpus *v, unsigned cpu)
{
	struct vcpu_progress p;

	vcpus_get_progress(v, cpu, &p);
	return p.bytes_written;
}

/* MiB/s each vCPU writes over ms. */
static void rates(struct vcpus *v, unsigned ms, double *out)
{
	uint64_t b0[2] = {bytes_of(v, 0), bytes_of(v, 1)};

	sleep_ms(ms);
	for (unsigned i = 0; i < 2; i++)
		out[i] = (double)(bytes_of(v, i) - b0[i]) / (double)MiB *
			 1000.0 / ms;
}

static void test_service_limits_one_vcpu(void **state)
{
	struct guest *g = make_guest(2, 64 * MiB);
	struct workload_config w;
	struct dirtylimit_info di;
	struct dirtylimit *dl;
	double free_run[2], limited[2];

	workload_config_active(&w);
	w.rate_mb = 400; /* 200 MiB/s per vCPU */
	assert_int_equal(vcpus_set_workload(g->vcpus, &w, NULL), 0);
	vcpus_resume(g->vcpus);
	dl = dirtylimit_new(g->vcpus, NULL);
	assert_non_null(dl);
	dirtylimit_set_period(dl, 100);
	rates(g->vcpus, 400, free_run);
	dirtylimit_set(dl, 0, 50);
	assert_int_equal(dirtylimit_limited(dl), 1);
	sleep_ms(1200); /* a few periods to settle */
	rates(g->vcpus, 1000, limited);
	assert_true(dirtylimit_get(dl, 0, &di));
	assert_true(di.enabled);
	assert_int_equal(di.quota_mb, 50);
	assert_false(dirtylimit_get(dl, 2, &di));
	/* vCPU 0 near its quota (the tolerance is 25 MB/s), vCPU 1 not
	 * slowed at all */
	assert_true(limited[0] < 50 + 40);
	assert_true(limited[1] > free_run[1] * 0.7);
	assert_true(dirtylimit_throttle_time_per_round(dl) > 0);
	dirtylimit_clear(dl, 0);
	assert_int_equal(dirtylimit_limited(dl), 0);
	assert_int_equal(dirtylimit_throttle_time_per_round(dl), 0);
	dirtylimit_free(dl);
	guest_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sleep_ns),
		cmocka_unit_test(test_steps_linear),
		cmocka_unit_test(test_steps_tailslow),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_dirtylimit_step),
		cmocka_unit_test(test_service_limits_one_vcpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
