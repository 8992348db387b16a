/* dirtylimit.h — the dirty page rate limit service (QEMU's dirtylimit):
 * per-vCPU quotas in MiB/s, and a thread ("dirtylimit") that every period
 * measures each vCPU's dirty rate from its emulated dirty ring
 * (guest/throttle.h) and adjusts the sleep the vCPU pays each time its
 * ring fills, so only vCPUs that write are slowed. It exists while some
 * vCPU is limited (QEMU's "in service").
 * Threads: every function from the control thread; the service's own
 * thread touches only the rings' atomics and, under the lock, the rates. */
#ifndef MIGD_GUEST_DIRTYLIMIT_H
#define MIGD_GUEST_DIRTYLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct vcpus;
struct dirtylimit;

#define DIRTYLIMIT_PERIOD_MS 1000 /* QEMU's DIRTYLIMIT_CALC_TIME_MS */

/* Starts the service for v's vCPUs with no vCPU limited. NULL with *errp
 * set on failure. */
struct dirtylimit *dirtylimit_new(struct vcpus *v, struct mig_error **errp);
/* Stops the thread and lifts every penalty. NULL is fine. */
void dirtylimit_free(struct dirtylimit *dl);

/* cpu < 0: every vCPU. quota_mb > 0. cpu must be < the vCPU count. */
void dirtylimit_set(struct dirtylimit *dl, int cpu, uint64_t quota_mb);
void dirtylimit_clear(struct dirtylimit *dl, int cpu);
/* vCPUs currently limited. */
unsigned dirtylimit_limited(struct dirtylimit *dl);
/* Measurement period (1..1000 ms): x-vcpu-dirty-limit-period while a
 * migration with dirty-limit runs, else DIRTYLIMIT_PERIOD_MS. */
void dirtylimit_set_period(struct dirtylimit *dl, uint64_t ms);

struct dirtylimit_info {
	bool enabled;
	uint64_t quota_mb;   /* limit-rate */
	uint64_t current_mb; /* current-rate: the last period's rate */
};
/* false if cpu is out of range. */
bool dirtylimit_get(struct dirtylimit *dl, unsigned cpu,
		    struct dirtylimit_info *out);
/* query-migrate's figures (us): the largest penalty per full ring of any
 * vCPU, and the ring fill time at the running vCPUs' mean rate (0 when
 * no vCPU writes). */
uint64_t dirtylimit_throttle_time_per_round(struct dirtylimit *dl);
uint64_t dirtylimit_ring_full_time(struct dirtylimit *dl);

#endif
