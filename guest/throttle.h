/* throttle.h — the arithmetic of vCPU throttling, as QEMU does it: the
 * auto-converge percentage steps and its per-timeslice sleep, and the
 * dirty-limit's emulated per-vCPU dirty ring (a vCPU that fills it sleeps
 * its penalty) with QEMU's penalty adjustment. Pure functions, except the
 * ring, whose fields say which thread writes them. The vCPU threads honour
 * both (guest/vcpu.c); the dirty-limit service is guest/dirtylimit.h. */
#ifndef MIGD_GUEST_THROTTLE_H
#define MIGD_GUEST_THROTTLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- auto-converge (QEMU's cpu-throttle) ----------------------------- */

#define THROTTLE_PCT_MIN 1
#define THROTTLE_PCT_MAX 99
#define THROTTLE_TIMESLICE_NS 10000000ull /* QEMU's 10 ms timeslice */

struct throttle_params {
	unsigned initial;   /* cpu-throttle-initial */
	unsigned increment; /* cpu-throttle-increment */
	unsigned max;	    /* max-cpu-throttle */
	bool tailslow;	    /* cpu-throttle-tailslow */
};

/* pct clamped to 1..99 (0 stays 0: not throttled). */
unsigned throttle_clamp_pct(unsigned pct);
/* Sleep after each 10 ms of running at pct: pct/(1-pct) x 10 ms (+1 ns
 * against rounding, as QEMU); 0 for pct 0. */
uint64_t throttle_sleep_ns(unsigned pct);
/* The next percentage when the trigger fires at percentage now (0 = not
 * yet throttled): initial first, then +increment (or tailslow's step
 * towards the ideal share dirty_threshold/dirty_bytes), capped at max. */
unsigned throttle_next_pct(const struct throttle_params *p, unsigned now,
			   uint64_t dirty_bytes, uint64_t dirty_threshold);

/* ---- dirty-limit: an emulated per-vCPU dirty ring -------------------- */

/* Entries of each vCPU's ring: KVM's dirty-ring-size 4096 (16 MiB of
 * 4 KiB pages). A page touch is one entry. */
#define THROTTLE_RING_PAGES 4096u
#define THROTTLE_RING_MIB 16u
#define THROTTLE_TOLERANCE_MB 25 /* |rate - quota| this close: done */
#define THROTTLE_HALF_STEP_PCT 50 /* error at most this: half a step */

struct throttle_ring {
	_Atomic uint64_t pages;	     /* entries ever pushed (vCPU writes) */
	_Atomic uint64_t penalty_us; /* sleep per full ring (service writes) */
	_Atomic uint64_t slept_us;   /* total penalty slept (vCPU writes) */
	/* Fill events, so rates can be measured over whole fill+sleep
	 * cycles: how many, and the clock (ns) of the last one. The vCPU
	 * stores full_ns before it bumps fulls. */
	_Atomic uint64_t fulls, full_ns;
	uint64_t fill; /* entries in the ring: vCPU only */
};

void throttle_ring_init(struct throttle_ring *r);
/* vCPU thread, after writing: pushes pages entries at clock now_ns;
 * returns the sleep (ns) owed when the ring filled, else 0. */
uint64_t throttle_ring_push(struct throttle_ring *r, uint64_t pages,
			    uint64_t now_ns);

/* Time (us) to fill a ring at rate_mb MiB/s; 0 for rate 0. */
uint64_t throttle_ring_full_us(uint64_t rate_mb);
/* The dirtylimit step: the new penalty per full ring for a vCPU at
 * current_mb under quota_mb. Unchanged within the tolerance; 0 if it does
 * not write; otherwise moved by the difference between the ring cycle at
 * the quota and at the current rate (half of it within 50% of the quota);
 * at most 99 ring fill times at the highest rate seen (ring_full_us), as
 * QEMU. */
uint64_t throttle_dirtylimit_step(uint64_t penalty_us, uint64_t quota_mb,
				  uint64_t current_mb, uint64_t ring_full_us);

#endif
