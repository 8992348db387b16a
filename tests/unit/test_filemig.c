/* test_filemig.c — the internal save/restore entry point for snapshot jobs
 * (control/filemig.c) on a real guest and event loop: a save with 0 and 3
 * channels, a load into a guest that already holds other data (pages
 * absent from the file are cleared), the user's migration configuration
 * left alone, a missing file and cancellation reported through `done`. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/filemig.h"
#include "control/migcfg.h"
#include "control/migd.h"
#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "util/evloop.h"

#define SIZE (8ull << 20)

struct fx {
	struct migd md;
	struct ram_block *b;
	char path[PATH_MAX];
	int ret;
	char desc[256];
	bool done;
};

static void on_done(void *opaque, struct filemig *fm, int ret,
		    const struct mig_error *err)
{
	struct fx *fx = opaque;

	fx->ret = ret;
	snprintf(fx->desc, sizeof(fx->desc), "%s", err ? err->desc : "");
	fx->done = true;
	filemig_free(fm);
	ev_loop_stop(fx->md.loop);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct ram_block_config cfg = {
		.name = "ram", .size = SIZE, .backing = RAM_BACKING_ANON};

	fx->md.config = mig_config_new();
	fx->md.guest = guest_new(1, GUEST_RUNSTATE_PAUSED);
	fx->b = ram_block_new(&cfg, NULL);
	assert_non_null(fx->b);
	assert_int_equal(guest_add_block(fx->md.guest, fx->b), 0);
	assert_int_equal(dirty_log_init(fx->md.guest), 0);
	snprintf(fx->path, sizeof(fx->path), "/var/tmp/test_filemig.%d",
		 (int)getpid());
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	unlink(fx->path);
	guest_free(fx->md.guest);
	mig_config_free(fx->md.config);
	free(fx);
	return 0;
}

static int run(struct fx *fx, bool load, unsigned channels, bool cancel)
{
	struct filemig_opts o = {
		.path = fx->path, .channels = channels, .offset = 4096};
	struct filemig *fm;

	fx->done = false;
	fx->md.loop = ev_loop_new(); /* a stopped loop stays stopped */
	fm = load ? filemig_load(&fx->md, &o, on_done, fx, NULL)
		  : filemig_save(&fx->md, &o, on_done, fx, NULL);
	assert_non_null(fm);
	if (cancel)
		filemig_cancel(fm);
	assert_int_equal(ev_loop_run(fx->md.loop), 0);
	ev_loop_free(fx->md.loop);
	fx->md.loop = NULL;
	assert_true(fx->done);
	return fx->ret;
}

static void fill(uint8_t *p, unsigned seed)
{
	for (uint64_t i = 0; i < SIZE; i += 4096)
		if ((i / 4096) % 3)
			memset(p + i, (int)(seed + i / 4096) | 1, 64);
}

static void test_save_load(void **state)
{
	struct fx *fx = *state;
	uint8_t *want = malloc(SIZE);

	for (unsigned channels = 0; channels <= 3; channels += 3) {
		memset(fx->b->host, 0, SIZE);
		fill(fx->b->host, channels);
		memcpy(want, fx->b->host, SIZE);
		assert_int_equal(run(fx, false, channels, false), 0);
		memset(fx->b->host, 0x5a, SIZE); /* the guest ran meanwhile */
		assert_int_equal(run(fx, true, channels, false), 0);
		assert_memory_equal(fx->b->host, want, SIZE);
	}
	/* the user's configuration did not change */
	assert_false(mig_config_cap(fx->md.config, MIG_CAP_MAPPED_RAM));
	free(want);
}

static void test_errors(void **state)
{
	struct fx *fx = *state;

	unlink(fx->path);
	assert_int_equal(run(fx, true, 2, false), -EIO);
	assert_non_null(strstr(fx->desc, "Could not open"));
	assert_int_not_equal(run(fx, false, 2, true), 0);
	assert_string_equal(fx->desc, "operation cancelled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_save_load, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
