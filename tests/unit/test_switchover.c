/* test_switchover.c — the switchover cost model of control/switchover.c:
 * threshold with the fixed cost taken off downtime-limit (and its floor),
 * expected downtime, the running estimate, and the ack gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "control/migd.h"
#include "control/switchover.h"

static void test_threshold(void **state)
{
	/* 100 bytes/ms, 300 ms, 20 ms fixed: 280 ms of data */
	assert_int_equal(swo_threshold(100.0, 300, 20.0), 28000);
	assert_int_equal(swo_threshold(100.0, 300, 0.0), 30000);
	/* a fixed cost beyond the limit leaves a quarter for data */
	assert_int_equal(swo_threshold(100.0, 100, 500.0), 2500);
	assert_int_equal(swo_threshold(0.0, 300, 5.0), 0);
	assert_int_equal(swo_threshold(100.0, 0, 5.0), 0);
}

static void test_expected_downtime(void **state)
{
	assert_int_equal(swo_expected_downtime(30000, 100.0, 20.0), 320);
	assert_int_equal(swo_expected_downtime(0, 100.0, 7.4), 7);
	assert_int_equal(swo_expected_downtime(1000, 0.0, 7.0), 0);
}

static void test_ewma(void **state)
{
	double a = swo_ewma(123.0, 0, 8.0);

	assert_true(a == 8.0);
	a = swo_ewma(a, 1, 16.0);
	assert_true(a == 10.0);
}

static void test_fixed_cost_and_gate(void **state)
{
	struct migd md = {0};
	struct swo *s = swo_new(&md, true, true);

	assert_non_null(s);
	assert_non_null(md.swo);
	assert_true(swo_fixed_cost_ms(s) == SWO_DEFAULT_RESIDUAL_MS);
	swo_note_sync(s, 4.0);
	assert_true(swo_fixed_cost_ms(s) == 4.0 + SWO_DEFAULT_RESIDUAL_MS);
	swo_record(s, 3.0, 9.0); /* residual 12 ms from now on */
	assert_true(swo_fixed_cost_ms(s) == 16.0);
	swo_free(s);
	/* the history outlives the migration */
	s = swo_new(&md, false, false);
	assert_true(swo_fixed_cost_ms(s) == 12.0);
	assert_true(swo_can_switchover(s, true));
	swo_free(s);
	s = swo_new(&md, true, true);
	assert_false(swo_can_switchover(s, true));
	assert_true(swo_can_switchover(s, false)); /* a stopped VM: go */
	assert_false(swo_acked(s));
	swo_free(s);
	swo_history_free(md.swo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_expected_downtime),
		cmocka_unit_test(test_ewma),
		cmocka_unit_test(test_fixed_cost_and_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
