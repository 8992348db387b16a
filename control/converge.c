/* converge.c — auto-converge and dirty-limit for the outgoing migration
 * (see converge.h). The migration thread decides; the cpu throttle
 * reaches the vCPUs through their atomics at once, while the dirty limit
 * service belongs to the control thread, so applying or lifting it is
 * posted there (in order with the migration's other posts). */
#include "control/converge.h"

#include <stdlib.h>

#include "control/dirtylimit_cmds.h"
#include "control/migcfg.h"
#include "control/migd.h"
#include "control/migration_priv.h"
#include "guest/dirtylimit.h"
#include "guest/guest.h"
#include "guest/throttle.h"
#include "guest/vcpu.h"
#include "multifd/ram_flags.h"
#include "util/evloop.h"
#include "util/log.h"

#define PERIOD_MS 1000 /* QEMU checks once the period passed 1 s */

static const enum mig_param conv_params[CONV__MAX] = {
	[CONV_TRIGGER_THRESHOLD] = MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD,
	[CONV_THROTTLE_INITIAL] = MIG_PARAM_CPU_THROTTLE_INITIAL,
	[CONV_THROTTLE_INCREMENT] = MIG_PARAM_CPU_THROTTLE_INCREMENT,
	[CONV_THROTTLE_TAILSLOW] = MIG_PARAM_CPU_THROTTLE_TAILSLOW,
	[CONV_MAX_THROTTLE] = MIG_PARAM_MAX_CPU_THROTTLE,
	[CONV_VCPU_DIRTY_LIMIT] = MIG_PARAM_VCPU_DIRTY_LIMIT,
	[CONV_DIRTY_LIMIT_PERIOD] = MIG_PARAM_X_VCPU_DIRTY_LIMIT_PERIOD,
};

static uint64_t param(struct migration *m, enum converge_param p)
{
	if (atomic_load(&m->conv.have_live))
		return atomic_load(&m->conv.live[p]);
	return mig_config_param(m->cfg, conv_params[p]);
}

void converge_params_changed(struct migration *m, const struct mig_config *cfg)
{
	struct migd *md = m->md;

	for (int p = 0; p < CONV__MAX; p++)
		atomic_store(&m->conv.live[p],
			     mig_config_param(cfg, conv_params[p]));
	atomic_store(&m->conv.have_live, true);
	if (md->dirtylimit && mig_config_cap(m->cfg, MIG_CAP_DIRTY_LIMIT) &&
	    mig_status_is_running(migration_status(m)))
		dirtylimit_set_period(
			md->dirtylimit,
			mig_config_param(cfg,
					 MIG_PARAM_X_VCPU_DIRTY_LIMIT_PERIOD));
}

/* ---- auto-converge ------------------------------------------------------ */

static void set_cpu_throttle(struct migration *m, unsigned pct)
{
	struct vcpus *v = m->md->guest ? m->md->guest->vcpus : NULL;
	uint64_t sleep = throttle_sleep_ns(pct);

	atomic_store(&m->conv.cpu_throttle_pct, pct);
	for (unsigned i = 0; i < vcpus_count(v); i++)
		vcpus_set_throttle(v, i, sleep);
}

/* QEMU's mig_throttle_guest_down(). */
static void throttle_guest_down(struct migration *m, uint64_t dirty,
				uint64_t threshold)
{
	struct throttle_params p = {
		.initial = (unsigned)param(m, CONV_THROTTLE_INITIAL),
		.increment = (unsigned)param(m, CONV_THROTTLE_INCREMENT),
		.max = (unsigned)param(m, CONV_MAX_THROTTLE),
		.tailslow = param(m, CONV_THROTTLE_TAILSLOW) != 0,
	};
	unsigned now = atomic_load(&m->conv.cpu_throttle_pct);
	unsigned next = throttle_next_pct(&p, now, dirty, threshold);

	log_info("migration: auto-converge: cpu throttle %u%% -> %u%%", now,
		 next);
	set_cpu_throttle(m, next);
}

/* ---- dirty-limit -------------------------------------------------------- */

struct dl_post {
	struct migd *md;
	uint64_t quota_mb, period_ms;
	bool cancel;
};

static void on_dl_post(struct ev_loop *loop, void *opaque)
{
	struct dl_post *p = opaque;

	if (p->cancel)
		dirtylimit_cmds_cancel_all(p->md);
	else if (dirtylimit_cmds_apply_all(p->md, p->quota_mb, p->period_ms) <
		 0)
		log_warn("migration: dirty-limit: cannot start the dirty "
			 "limit service");
	free(p);
}

static void post_dirty_limit(struct migration *m, bool cancel,
			     uint64_t quota_mb)
{
	struct dl_post *p = malloc(sizeof(*p));

	if (!p)
		return;
	*p = (struct dl_post){m->md, quota_mb,
			      param(m, CONV_DIRTY_LIMIT_PERIOD), cancel};
	if (ev_loop_post(m->md->loop, on_dl_post, p) < 0)
		free(p);
}

/* QEMU's migration_dirty_limit_guest(): applied again only if
 * vcpu-dirty-limit changed since. */
static void dirty_limit_guest(struct migration *m)
{
	uint64_t quota = param(m, CONV_VCPU_DIRTY_LIMIT);

	if (m->conv.dirty_limit_on && m->conv.dirty_limit_quota == quota)
		return;
	log_info("migration: dirty-limit: %llu MB/s per vCPU",
		 (unsigned long long)quota);
	m->conv.dirty_limit_on = true;
	m->conv.dirty_limit_quota = quota;
	post_dirty_limit(m, false, quota);
}

/* ---- the trigger -------------------------------------------------------- */

static void period_start(struct converge *c, uint64_t now, uint64_t xfer)
{
	c->period_started = true;
	c->period_start_ms = now;
	c->period_dirty_pages = 0;
	c->period_xfer_start = xfer;
}

/* QEMU's migration_trigger_throttle(): the count is not reset by a
 * period below the threshold, only when the trigger fires. */
static void trigger(struct migration *m, uint64_t xfer)
{
	struct converge *c = &m->conv;
	uint64_t dirty = c->period_dirty_pages * RAM_TARGET_PAGE_SIZE;
	uint64_t threshold = (xfer - c->period_xfer_start) *
			     param(m, CONV_TRIGGER_THRESHOLD) / 100;

	if (dirty <= threshold || ++c->high_cnt < 2)
		return;
	c->high_cnt = 0;
	if (mig_config_cap(m->cfg, MIG_CAP_AUTO_CONVERGE))
		throttle_guest_down(m, dirty, threshold);
	else if (mig_config_cap(m->cfg, MIG_CAP_DIRTY_LIMIT))
		dirty_limit_guest(m);
}

void converge_after_sync(struct migration *m, uint64_t fresh_pages)
{
	struct converge *c = &m->conv;
	uint64_t now = migration_wall_ms(), xfer = mig_transferred(&m->ctr);

	/* The first period starts with the migration's setup sync. */
	if (!c->period_started)
		period_start(c, m->start_ms, 0);
	c->period_dirty_pages += fresh_pages;
	if (now <= c->period_start_ms + PERIOD_MS)
		return;
	trigger(m, xfer);
	period_start(c, now, xfer);
}

void converge_finish(struct migration *m)
{
	if (atomic_load(&m->conv.cpu_throttle_pct))
		set_cpu_throttle(m, 0);
	if (mig_config_cap(m->cfg, MIG_CAP_DIRTY_LIMIT))
		post_dirty_limit(m, true, 0);
}

/* ---- query-migrate ------------------------------------------------------ */

void converge_fill_info(struct migration *m, json_t *info)
{
	unsigned pct = atomic_load(&m->conv.cpu_throttle_pct);
	struct dirtylimit *dl = m->md->dirtylimit;

	if (pct)
		json_object_set_new(info, "cpu-throttle-percentage",
				    json_integer(pct));
	if (!dl || !mig_config_cap(m->cfg, MIG_CAP_DIRTY_LIMIT))
		return;
	json_object_set_new(
		info, "dirty-limit-throttle-time-per-round",
		json_integer(
			(json_int_t)dirtylimit_throttle_time_per_round(dl)));
	json_object_set_new(
		info, "dirty-limit-ring-full-time",
		json_integer((json_int_t)dirtylimit_ring_full_time(dl)));
}
