/* throttle.c — throttling arithmetic (see throttle.h): QEMU's auto-converge
 * steps and timeslice sleep, the emulated dirty ring and the dirty-limit
 * penalty step. No locks: the ring's atomics carry its threading. */
#include "guest/throttle.h"

/* ---- auto-converge ------------------------------------------------------ */

unsigned throttle_clamp_pct(unsigned pct)
{
	if (!pct)
		return 0;
	if (pct < THROTTLE_PCT_MIN)
		return THROTTLE_PCT_MIN;
	return pct > THROTTLE_PCT_MAX ? THROTTLE_PCT_MAX : pct;
}

uint64_t throttle_sleep_ns(unsigned pct)
{
	double share;

	pct = throttle_clamp_pct(pct);
	if (!pct)
		return 0;
	share = (double)pct / 100.0;
	/* the extra nanosecond keeps 0.5/(1-0.5) x 10 ms from rounding down */
	return (uint64_t)(share / (1.0 - share) *
				  (double)THROTTLE_TIMESLICE_NS +
			  1.0);
}

/* tailslow: the step that would bring the guest's CPU share to the one at
 * which it dirties exactly the threshold, if smaller than the increment. */
static unsigned tailslow_step(const struct throttle_params *p, unsigned now,
			      uint64_t dirty_bytes, uint64_t dirty_threshold)
{
	uint64_t cpu_now = 100 - now, cpu_ideal;

	if (!dirty_bytes)
		return 0;
	cpu_ideal = (uint64_t)((double)cpu_now *
			       ((double)dirty_threshold / (double)dirty_bytes));
	if (cpu_ideal >= cpu_now)
		return 0;
	return cpu_now - cpu_ideal < p->increment
		       ? (unsigned)(cpu_now - cpu_ideal)
		       : p->increment;
}

unsigned throttle_next_pct(const struct throttle_params *p, unsigned now,
			   uint64_t dirty_bytes, uint64_t dirty_threshold)
{
	unsigned step, next;

	if (!now)
		return throttle_clamp_pct(p->initial);
	step = p->tailslow ? tailslow_step(p, now, dirty_bytes, dirty_threshold)
			   : p->increment;
	next = now + step;
	if (next > p->max)
		next = p->max;
	return throttle_clamp_pct(next);
}

/* ---- the dirty ring ----------------------------------------------------- */

void throttle_ring_init(struct throttle_ring *r)
{
	atomic_init(&r->pages, 0);
	atomic_init(&r->penalty_us, 0);
	atomic_init(&r->slept_us, 0);
	atomic_init(&r->fulls, 0);
	atomic_init(&r->full_ns, 0);
	r->fill = 0;
}

uint64_t throttle_ring_push(struct throttle_ring *r, uint64_t pages,
			    uint64_t now_ns)
{
	uint64_t penalty;

	atomic_fetch_add_explicit(&r->pages, pages, memory_order_relaxed);
	r->fill += pages;
	if (r->fill < THROTTLE_RING_PAGES)
		return 0;
	/* Full: the ring is harvested (emptied) and, if limited, the vCPU
	 * pays its penalty before it writes again, as on KVM's
	 * KVM_EXIT_DIRTY_RING_FULL. */
	r->fill %= THROTTLE_RING_PAGES;
	atomic_store(&r->full_ns, now_ns);
	atomic_fetch_add(&r->fulls, 1);
	penalty = atomic_load_explicit(&r->penalty_us, memory_order_relaxed);
	if (penalty)
		atomic_fetch_add_explicit(&r->slept_us, penalty,
					  memory_order_relaxed);
	return penalty * 1000;
}

uint64_t throttle_ring_full_us(uint64_t rate_mb)
{
	return rate_mb ? (uint64_t)THROTTLE_RING_MIB * 1000000 / rate_mb : 0;
}

/* The change of penalty that turns the vCPU's measured ring cycle (fill
 * plus sleep, 16 MiB / current) into the quota's (16 MiB / quota).
 * QEMU scales the fill time at the highest rate ever seen by the share the
 * rate is off by, with that share truncated to whole percent; for a fast
 * writer already under a penalty that is far too small (4.8 GB/s limited
 * to 50 MB/s sat at 92-113 MB/s for minutes), so migd uses the cycle. */
static uint64_t cycle_delta(uint64_t current_mb, uint64_t quota_mb)
{
	uint64_t now = throttle_ring_full_us(current_mb);
	uint64_t want = throttle_ring_full_us(quota_mb);

	return now > want ? now - want : want - now;
}

uint64_t throttle_dirtylimit_step(uint64_t penalty_us, uint64_t quota_mb,
				  uint64_t current_mb, uint64_t ring_full_us)
{
	uint64_t lo, hi, delta;
	bool slower = quota_mb < current_mb;

	if (!current_mb)
		return 0;
	lo = slower ? quota_mb : current_mb;
	hi = slower ? current_mb : quota_mb;
	if (hi - lo <= THROTTLE_TOLERANCE_MB)
		return penalty_us;
	delta = cycle_delta(current_mb, quota_mb);
	/* Near the quota, half the step: a measurement over few cycles is
	 * noisy, and halving converges without oscillating. */
	if ((hi - lo) * 100 / hi <= THROTTLE_HALF_STEP_PCT)
		delta /= 2;
	if (slower)
		penalty_us += delta;
	else
		penalty_us = penalty_us > delta ? penalty_us - delta : 0;
	if (penalty_us > ring_full_us * THROTTLE_PCT_MAX)
		penalty_us = ring_full_us * THROTTLE_PCT_MAX;
	return penalty_us;
}
