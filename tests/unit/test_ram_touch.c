/* test_ram_touch.c — the first-touch policy (guest/ram_touch.c): every
 * region is decided exactly once, also with threads racing for it; huge
 * pages while populates are fast, a doubling back-off after slow ones,
 * 4 KiB for partial regions and after disable or a failing populate; real
 * madvise calls populate without changing RAM; the anon block wiring. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/ram.h"
#include "guest/ram_touch.h"

#define HP (2u << 20)
#define NREG 64

/* A fake kernel: records calls per region and answers populates with the
 * scripted durations. */
struct fake {
	uint8_t *base;
	unsigned populates[NREG], huge_advice[NREG], nohuge_advice[NREG];
	unsigned whole_nohuge;
	const uint64_t *script; /* ns per populate, in call order */
	unsigned nscript, calls;
	pthread_mutex_t lock;
};

static void fake_advise(void *opaque, uint8_t *addr, size_t len, int advice)
{
	struct fake *f = opaque;
	size_t r = (size_t)(addr - f->base) / HP;

	pthread_mutex_lock(&f->lock);
	if (len > HP && advice == MADV_NOHUGEPAGE)
		f->whole_nohuge++;
	else if (advice == MADV_HUGEPAGE)
		f->huge_advice[r]++;
	else if (advice == MADV_NOHUGEPAGE)
		f->nohuge_advice[r]++;
	pthread_mutex_unlock(&f->lock);
}

static uint64_t fake_populate(void *opaque, uint8_t *addr, size_t len)
{
	struct fake *f = opaque;
	uint64_t ns;

	assert_int_equal(len, HP);
	pthread_mutex_lock(&f->lock);
	f->populates[(size_t)(addr - f->base) / HP]++;
	ns = f->calls < f->nscript ? f->script[f->calls] : 1000;
	f->calls++;
	pthread_mutex_unlock(&f->lock);
	return ns;
}

/* The fake never touches memory: any HP-aligned address will do. */
static struct ram_touch *fake_new(struct fake *f, uint64_t len, bool always)
{
	struct ram_touch_sys sys = {.hpage_size = HP, .always = always};
	struct ram_touch_ops ops = {fake_advise, fake_populate, f};

	pthread_mutex_init(&f->lock, NULL);
	f->base = (uint8_t *)(uintptr_t)(64ull * HP);
	return ram_touch_new_ops(f->base, len, sys, &ops);
}

#define SLOW (RAM_TOUCH_SLOW_NS_PER_2M + 1)
#define FAST (RAM_TOUCH_SLOW_NS_PER_2M / 4)

static void test_fast_populates_keep_huge_pages(void **state)
{
	struct fake f = {0};
	struct ram_touch *t = fake_new(&f, 8ull * HP, false);

	(void)state;
	ram_touch_prepare(t, 0, 8ull * HP);
	ram_touch_prepare(t, 0, 8ull * HP); /* decided: nothing again */
	for (int r = 0; r < 8; r++) {
		assert_int_equal(f.populates[r], 1);
		assert_int_equal(f.huge_advice[r], 1);
	}
	assert_int_equal(ram_touch_stats(t).huge_regions, 8);
	assert_int_equal(ram_touch_stats(t).small_regions, 0);
	ram_touch_free(t);
}

/* Back-off 1 -> slow: 1 small, x4 -> slow: 4 small, x4 -> fast: /2 (8)
 * -> slow: 8 small, x4 (32) -> fast, fast, fast: 4 -> slow: 4 small. */
static void test_slow_populates_back_off(void **state)
{
	static const uint64_t script[] = {SLOW, SLOW, FAST, SLOW, FAST,
					  FAST, FAST, SLOW, FAST};
	struct fake f = {.script = script, .nscript = 9};
	struct ram_touch *t = fake_new(&f, 40ull * HP, false);
	/* H=huge probe, s=4 KiB */
	const char *want = "HsHssssHHssssssssHHHHssssHH";
	int n = (int)strlen(want);

	(void)state;
	for (int r = 0; r < n; r++)
		ram_touch_prepare(t, (uint64_t)r * HP + 4096, 4096);
	for (int r = 0; r < n; r++)
		assert_int_equal(f.populates[r], want[r] == 'H');
	assert_int_equal(ram_touch_stats(t).slow_probes, 4);
	assert_int_equal(ram_touch_stats(t).small_regions, 17);
	ram_touch_free(t);
}

static void test_back_off_is_bounded(void **state)
{
	static uint64_t script[NREG];
	struct fake f = {.script = script, .nscript = NREG};
	struct ram_touch *t;
	unsigned probes = 0;

	(void)state;
	for (int i = 0; i < NREG; i++)
		script[i] = SLOW;
	t = fake_new(&f, (uint64_t)NREG * HP, false);
	ram_touch_prepare(t, 0, (uint64_t)NREG * HP);
	for (int r = 0; r < NREG; r++)
		probes += f.populates[r];
	/* probes at regions 0, 2, 7, 24 (then 64 small ones) */
	assert_int_equal(probes, 4);
	ram_touch_free(t);
}

static void test_partial_tail_region_is_small(void **state)
{
	struct fake f = {0};
	struct ram_touch *t = fake_new(&f, 2ull * HP + 8192, true);

	(void)state;
	ram_touch_prepare(t, 2ull * HP, 8192);
	assert_int_equal(f.populates[2], 0);
	assert_int_equal(f.nohuge_advice[2], 1); /* THP "always" */
	/* offsets past the end, or empty ranges, decide nothing */
	ram_touch_prepare(t, 3ull * HP, 4096);
	ram_touch_prepare(t, 0, 0);
	assert_int_equal(f.populates[0], 0);
	ram_touch_free(t);
}

static void test_madvise_mode_leaves_small_regions_alone(void **state)
{
	static const uint64_t script[] = {SLOW};
	struct fake f = {.script = script, .nscript = 1};
	struct ram_touch *t = fake_new(&f, 4ull * HP, false);

	(void)state;
	ram_touch_prepare(t, 0, 2ull * HP);
	assert_int_equal(f.populates[1], 0);
	assert_int_equal(f.nohuge_advice[1], 0); /* no VMA split needed */
	ram_touch_free(t);
}

static void test_disable_makes_everything_small(void **state)
{
	struct fake f = {0};
	struct ram_touch *t = fake_new(&f, 4ull * HP, false);

	(void)state;
	ram_touch_prepare(t, 0, 4096);
	ram_touch_disable(t);
	assert_int_equal(f.whole_nohuge, 1);
	ram_touch_prepare(t, 0, 4ull * HP);
	assert_int_equal(f.populates[0], 1);
	for (int r = 1; r < 4; r++)
		assert_int_equal(f.populates[r], 0);
	ram_touch_free(t);
}

static void test_failed_populate_stops_probing(void **state)
{
	static const uint64_t script[] = {UINT64_MAX};
	struct fake f = {.script = script, .nscript = 1};
	struct ram_touch *t = fake_new(&f, 8ull * HP, false);

	(void)state;
	ram_touch_prepare(t, 0, 8ull * HP);
	assert_int_equal(f.calls, 1);
	assert_int_equal(ram_touch_stats(t).small_regions, 7);
	ram_touch_free(t);
}

struct racer {
	struct ram_touch *t;
	unsigned seed;
};

static void *race(void *opaque)
{
	struct racer *r = opaque;

	for (int i = 0; i < 2000; i++) {
		uint64_t off = (uint64_t)(rand_r(&r->seed) % (NREG * 512)) * 4096;

		ram_touch_prepare(r->t, off, 3 * 4096);
	}
	ram_touch_prepare(r->t, 0, (uint64_t)NREG * HP);
	return NULL;
}

static void test_racing_threads_decide_each_region_once(void **state)
{
	struct fake f = {0};
	struct ram_touch *t = fake_new(&f, (uint64_t)NREG * HP, false);
	struct racer rs[4];
	pthread_t tid[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		rs[i] = (struct racer){t, (unsigned)i + 1};
		assert_int_equal(pthread_create(&tid[i], NULL, race, &rs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(tid[i], NULL);
	for (int r = 0; r < NREG; r++) {
		assert_int_equal(f.populates[r], 1);
		assert_int_equal(f.huge_advice[r], 1);
	}
	ram_touch_free(t);
}

static void test_unusable_setups_give_no_policy(void **state)
{
	struct fake f = {0};
	struct ram_touch_ops ops = {fake_advise, fake_populate, &f};
	struct ram_touch_sys none = {0}, sys = {.hpage_size = HP};

	(void)state;
	assert_null(ram_touch_new_ops((uint8_t *)(uintptr_t)HP, HP, none, &ops));
	assert_null(ram_touch_new_ops((uint8_t *)(uintptr_t)(HP + 4096), HP,
				      sys, &ops));
	assert_null(ram_touch_new_ops((uint8_t *)(uintptr_t)HP, 0, sys, &ops));
	/* NULL policies are "plain faults" */
	ram_touch_prepare(NULL, 0, 4096);
	ram_touch_disable(NULL);
	ram_touch_free(NULL);
	assert_int_equal(ram_touch_stats(NULL).huge_regions, 0);
}

/* The real kernel: a prepared region is resident and keeps what was there;
 * pages outside prepared regions stay unpopulated. */
static void test_real_populate_keeps_content(void **state)
{
	struct ram_touch_sys sys = ram_touch_probe_sys();
	size_t len = 8 * (size_t)HP;
	uint8_t *raw, *host;
	unsigned char vec[512];
	struct ram_touch *t;

	(void)state;
	if (sys.hpage_size != HP)
		skip();
	raw = mmap(NULL, len + HP, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(raw != MAP_FAILED);
	host = (uint8_t *)(((uintptr_t)raw + HP - 1) & ~(uintptr_t)(HP - 1));
	memset(host + HP + 8192, 0xa5, 4096);
	t = ram_touch_new(host, len, sys);
	assert_non_null(t);
	ram_touch_prepare(t, HP + 4096, 4096);
	assert_int_equal(host[HP + 8192], 0xa5);
	assert_int_equal(host[HP + 8192 + 4095], 0xa5);
	assert_int_equal(mincore(host + HP, HP, vec), 0);
	for (int i = 0; i < 512; i++)
		assert_true(vec[i] & 1);
	assert_int_equal(mincore(host + 4 * HP, HP, vec), 0);
	assert_false(vec[0] & 1);
	ram_touch_free(t);
	munmap(raw, len + HP);
}

/* x-thp=auto, the default, applies to private anonymous RAM only. */
static void test_block_wiring(void **state)
{
	struct ram_block_config cfg = {.name = "ram", .size = 16ull << 20,
				       .backing = RAM_BACKING_ANON};
	struct ram_block *b;
	bool thp = ram_touch_probe_sys().hpage_size != 0;

	(void)state;
	assert_int_equal(RAM_THP_AUTO, 0); /* the zero-initialised default */
	b = ram_block_new(&cfg, NULL);
	assert_non_null(b);
	assert_int_equal(b->touch != NULL, thp);
	ram_block_prepare_write(b, 0, 4096);
	ram_block_no_huge_pages(b);
	ram_block_free(b);
	cfg.share = true;
	b = ram_block_new(&cfg, NULL);
	assert_null(b->touch);
	ram_block_free(b);
	cfg.share = false;
	cfg.thp = RAM_THP_OFF;
	b = ram_block_new(&cfg, NULL);
	assert_null(b->touch);
	ram_block_prepare_write(b, 0, 4096); /* no policy: fine */
	ram_block_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fast_populates_keep_huge_pages),
		cmocka_unit_test(test_slow_populates_back_off),
		cmocka_unit_test(test_back_off_is_bounded),
		cmocka_unit_test(test_partial_tail_region_is_small),
		cmocka_unit_test(test_madvise_mode_leaves_small_regions_alone),
		cmocka_unit_test(test_disable_makes_everything_small),
		cmocka_unit_test(test_failed_populate_stops_probing),
		cmocka_unit_test(test_racing_threads_decide_each_region_once),
		cmocka_unit_test(test_unusable_setups_give_no_policy),
		cmocka_unit_test(test_real_populate_keeps_content),
		cmocka_unit_test(test_block_wiring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
