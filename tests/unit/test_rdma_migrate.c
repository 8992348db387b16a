/* test_rdma_migrate.c — whole rdma: migrations over the loopback fabric
 * (rdma_migtest.h): RAM equal on both sides for random, zero and mixed
 * content, with pin-all on and off, and with live rounds that re-dirty
 * pages; every verbs object released (rv_loop_live_objects() == 0); and
 * what the destination's idle policy sees of a migration whose rounds of
 * RDMA WRITEs are slow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdma_migtest.h"

static void run_ok(int kind, bool pin_all, int rounds, uint16_t port,
		   struct mt_run *out)
{
	struct mt_run r = {
		.port = port, .pin_all = pin_all, .redirty_rounds = rounds};

	r.fab = rv_loop_create();
	assert_non_null(r.fab);
	mt_guests(&r);
	mt_fill(r.src, kind, 1234 + (unsigned)kind);
	mt_migrate(&r);
	assert_string_equal(r.src_err, "");
	assert_string_equal(r.dst_err, "");
	assert_int_equal(r.src_ret, 0);
	assert_int_equal(r.dst_ret, 0);
	assert_true(mt_same_ram(&r));
	assert_int_equal(rv_loop_live_objects(r.fab), 0);
	rv_fabric_destroy(r.fab);
	mt_free(&r);
	/* The control loop ran at setup, each round and the completion. */
	assert_int_equal(r.dst_st.hooks, (uint64_t)rounds + 3);
	if (pin_all)
		assert_int_equal(r.src_st.registrations, 0);
	if (out)
		*out = r;
}

/* 9.5 MiB of random pages: one registration per 1 MiB chunk on each
 * side, page runs merged up to their chunk's end. */
static void test_random_dynamic(void **state)
{
	struct mt_run r;

	run_ok(0, false, 0, 5001, &r);
	assert_int_equal(r.src_st.registrations, 8 + 2 + 1);
	assert_int_equal(r.dst_st.registrations, 8 + 2 + 1);
	assert_int_equal(r.src_st.compress, 0);
	assert_int_equal(r.src_st.writes, 8 + 2 + 1);
	assert_int_equal(r.src_st.write_bytes,
			 8 * MT_MIB + 3 * MT_MIB / 2 + 64 * 1024);
}

/* All zero: nothing registered, every chunk a COMPRESS. */
static void test_zero_dynamic(void **state)
{
	struct mt_run r;

	run_ok(1, false, 0, 5002, &r);
	assert_int_equal(r.src_st.registrations, 0);
	assert_int_equal(r.src_st.writes, 0);
	assert_int_equal(r.src_st.compress, 8 + 2 + 1);
}

static void test_mixed_dynamic(void **state)
{
	run_ok(2, false, 0, 5003, NULL);
}

static void test_random_pin_all(void **state)
{
	struct mt_run r;

	run_ok(0, true, 0, 5004, &r);
	assert_int_equal(r.src_st.compress, 0);
	assert_int_equal(r.src_st.writes, 8 + 2 + 1);
}

static void test_mixed_pin_all(void **state)
{
	run_ok(2, true, 0, 5005, NULL);
}

static void test_live_rounds_dynamic(void **state)
{
	run_ok(2, false, 3, 5006, NULL);
}

static void test_live_rounds_pin_all(void **state)
{
	run_ok(0, true, 3, 5007, NULL);
}

/* What check_idle (control/incoming_conn.c) sees, sampled every 2 ms:
 * "silent" when the rdma progress counter did not move and no HOOK round
 * is open; "quiet round" when the counter did not move inside a round. */
struct idle_watch {
	struct mt_run *r;
	atomic_bool stop;
	int64_t max_silent_ms, max_quiet_round_ms;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool sample(struct mt_run *r, uint64_t *progress, bool *in_round)
{
	struct channel *ch;

	pthread_mutex_lock(&r->dst_lock);
	ch = atomic_load(&r->dst_ch);
	if (ch) {
		*progress = rdma_chan_progress(ch);
		*in_round = rdma_chan_in_round(ch);
	}
	pthread_mutex_unlock(&r->dst_lock);
	return ch != NULL;
}

static void *idle_watch_main(void *opaque)
{
	struct idle_watch *w = opaque;
	int64_t moved = mono_ms(), quiet = moved;
	uint64_t last = 0, p;
	bool in;

	while (!atomic_load(&w->stop)) {
		int64_t now = mono_ms();

		if (!sample(w->r, &p, &in)) {
			moved = quiet = now;
		} else {
			if (p != last || in)
				moved = now;
			if (p != last || !in)
				quiet = now;
			last = p;
		}
		if (now - moved > w->max_silent_ms)
			w->max_silent_ms = now - moved;
		if (now - quiet > w->max_quiet_round_ms)
			w->max_quiet_round_ms = now - quiet;
		usleep(2000);
	}
	return NULL;
}

/* Pin-all: after setup no control message crosses during a round, only
 * RDMA WRITEs, whose completions come 100 ms late here. Against a 1 s
 * idle timeout: the destination sees rounds without any traffic of its
 * own lasting longer than that (counting bytes alone would fail the
 * migration), and outside a round it is never silent that long. */
static void test_idle_policy_sees_write_rounds(void **state)
{
	struct mt_run r = {.port = 5008, .pin_all = true, .redirty_rounds = 1};
	struct idle_watch w = {.r = &r};
	pthread_t t;

	r.fab = rv_loop_create();
	assert_non_null(r.fab);
	mt_guests(&r);
	mt_fill(r.src, 0, 99);
	pthread_mutex_init(&r.src_lock, NULL);
	pthread_mutex_init(&r.dst_lock, NULL);
	r.locks_ready = true; /* the watcher takes dst_lock from the start */
	assert_int_equal(pthread_create(&t, NULL, idle_watch_main, &w), 0);
	rv_loop_set_delay(r.fab, 100);
	mt_migrate(&r);
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	if (r.src_ret || r.dst_ret)
		print_message("source: %s\ndestination: %s\n", r.src_err,
			      r.dst_err);
	assert_int_equal(r.src_ret, 0);
	assert_int_equal(r.dst_ret, 0);
	assert_true(mt_same_ram(&r));
	if (getenv("MT_VERBOSE"))
		print_message("silent %lld ms, quiet round %lld ms\n",
			      (long long)w.max_silent_ms,
			      (long long)w.max_quiet_round_ms);
	assert_true(w.max_quiet_round_ms > 1000);
	assert_true(w.max_silent_ms < 1000);
	assert_int_equal(rv_loop_live_objects(r.fab), 0);
	rv_fabric_destroy(r.fab);
	mt_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_dynamic),
		cmocka_unit_test(test_zero_dynamic),
		cmocka_unit_test(test_mixed_dynamic),
		cmocka_unit_test(test_random_pin_all),
		cmocka_unit_test(test_mixed_pin_all),
		cmocka_unit_test(test_live_rounds_dynamic),
		cmocka_unit_test(test_live_rounds_pin_all),
		cmocka_unit_test(test_idle_policy_sees_write_rounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
