/* converge.h — convergence policy of an outgoing migration, as QEMU's:
 * at each dirty sync, over periods of at least one second, dirty bytes
 * are compared with throttle-trigger-threshold % of the bytes sent; the
 * second time they exceed it (and every second time after) the trigger
 * fires and starts or raises auto-converge (a cpu throttle on every vCPU)
 * or applies vcpu-dirty-limit to every vCPU (dirty-limit). Both end with
 * the migration. Threads as each function says. */
#ifndef MIGD_CONTROL_CONVERGE_H
#define MIGD_CONTROL_CONVERGE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct migration;
struct mig_config;

enum converge_param {
	CONV_TRIGGER_THRESHOLD,
	CONV_THROTTLE_INITIAL,
	CONV_THROTTLE_INCREMENT,
	CONV_THROTTLE_TAILSLOW,
	CONV_MAX_THROTTLE,
	CONV_VCPU_DIRTY_LIMIT,
	CONV_DIRTY_LIMIT_PERIOD,
	CONV__MAX,
};

/* Embedded in struct migration; all-zero is the initial state. */
struct converge {
	_Atomic unsigned cpu_throttle_pct; /* 0: not throttling */
	/* Parameters changed during the migration (QEMU reads them live);
	 * before any change, the migration's snapshot is used. */
	_Atomic bool have_live;
	_Atomic uint64_t live[CONV__MAX];
	/* migration thread only */
	bool period_started;
	uint64_t period_start_ms, period_dirty_pages, period_xfer_start;
	unsigned high_cnt;   /* QEMU's dirty_rate_high_cnt */
	bool dirty_limit_on; /* vcpu-dirty-limit was applied */
	uint64_t dirty_limit_quota;
};

/* Migration thread, after each dirty sync of the iteration phase:
 * fresh_pages is what the sync newly added to the pending pages. */
void converge_after_sync(struct migration *m, uint64_t fresh_pages);
/* Migration thread, once the migration is over (any outcome), before its
 * final status is set: stops the cpu throttle and lifts the dirty limits
 * dirty-limit applied (QEMU lifts them on cancel). */
void converge_finish(struct migration *m);
/* Control thread: a parameter change during the migration. */
void converge_params_changed(struct migration *m, const struct mig_config *cfg);
/* Control thread: query-migrate's cpu-throttle-percentage and
 * dirty-limit-* members. */
void converge_fill_info(struct migration *m, json_t *info);

#endif
