/* vcpu.h — the guest's vCPU threads ("vcpu/N"): each runs the workload
 * (guest/workload.h) at its share of the dirty rate with a token bucket,
 * sleeps a share of each 10 ms timeslice when throttled, and counts what it
 * writes. Paused vCPUs sleep on a condition variable (no busy waiting).
 * Threads: every function may be called from any thread except a vCPU's
 * own; pause/resume/set_workload/free are serialised by an internal lock
 * (control/vm.c drives pause/resume from the runstate). */
#ifndef MIGD_GUEST_VCPU_H
#define MIGD_GUEST_VCPU_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/workload.h"
#include "util/error.h"

struct guest;
struct vcpus;
struct throttle_ring;
struct probe_stats;

/* QEMU's cpu throttle timeslice: a throttled vCPU sleeps after each. */
#define VCPU_TIMESLICE_NS 10000000ull

/* Starts g->smp_cpus threads, paused and idle. The guest's block list must
 * be complete (and dirty_log_init() done, for logging to work). NULL with
 * *errp set on failure. */
struct vcpus *vcpus_new(struct guest *g, struct mig_error **errp);
/* Stops and joins every thread. NULL is fine. */
void vcpus_free(struct vcpus *v);

/* Lets the vCPUs write. */
void vcpus_resume(struct vcpus *v);
/* Synchronous: when it returns no vCPU writes guest RAM until the next
 * vcpus_resume() (a vCPU between two writes or asleep returns at once).
 * Both accept NULL (a guest without vCPUs). */
void vcpus_pause(struct vcpus *v);
bool vcpus_are_running(const struct vcpus *v);
/* Postcopy's destination: a vCPU may be blocked on a missing page for as
 * long as the migration is paused. While on, vcpus_pause() does not wait
 * for a vCPU in the middle of an access (it parks after it); the access
 * in progress may still complete after vcpus_pause() returned. */
void vcpus_set_faults_block(struct vcpus *v, bool on);
unsigned vcpus_count(const struct vcpus *v);
/* The kernel thread id of vCPU cpu (postcopy-blocktime), 0 if unknown. */
uint32_t vcpus_thread_id(struct vcpus *v, unsigned cpu);

/* Replaces the workload after workload_validate() and workload_fit()
 * against the guest's RAM; -EINVAL with *errp set when it does not fit. */
int vcpus_set_workload(struct vcpus *v, const struct workload_config *w,
		       struct mig_error **errp);
void vcpus_get_workload(struct vcpus *v, struct workload_config *out);

/* Throttling (auto-converge, dirty-limit): vCPU cpu sleeps sleep_ns after
 * each VCPU_TIMESLICE_NS of running; 0 = not throttled. */
void vcpus_set_throttle(struct vcpus *v, unsigned cpu, uint64_t sleep_ns);
uint64_t vcpus_get_throttle(struct vcpus *v, unsigned cpu);
/* dirty-limit: vCPU cpu's emulated dirty ring (guest/throttle.h), NULL if
 * out of range; guest/dirtylimit.c reads it and sets its penalty. */
struct throttle_ring *vcpus_ring(struct vcpus *v, unsigned cpu);

/* content=probe: a copy of what the probe (vCPU 0) recorded since its
 * probe workload was loaded (out's lock is left untouched). */
void vcpus_get_probe(struct vcpus *v, struct probe_stats *out);

struct vcpu_progress {
	uint64_t bytes_written; /* since the vCPU started */
	uint64_t rate;		/* bytes/s over the last second */
	bool finished;		/* made every pass of its workload */
};
/* Progress of vCPU cpu (< vcpus_count()). */
void vcpus_get_progress(struct vcpus *v, unsigned cpu,
			struct vcpu_progress *out);

#endif
