/* guest.h — the guest migd holds: its RAM blocks, its runstate, and (from
 * the vCPU issue on) its vCPU threads.
 * Threading: the block list is built by the control thread before any other
 * thread starts and is read-only afterwards, so any thread may walk it. The
 * runstate is written by the control thread only and may be read from any
 * thread (atomic). autostart is control-thread only. */
#ifndef MIGD_GUEST_GUEST_H
#define MIGD_GUEST_GUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/ram.h"

struct vcpus;
struct dirty_log;

/* QEMU's RunState values migd can be in (names as QEMU spells them). */
enum guest_runstate {
	GUEST_RUNSTATE_PRELAUNCH,
	GUEST_RUNSTATE_RUNNING,
	GUEST_RUNSTATE_PAUSED,
	GUEST_RUNSTATE_INMIGRATE,
	GUEST_RUNSTATE_FINISH_MIGRATE,
	GUEST_RUNSTATE_POSTMIGRATE,
	GUEST_RUNSTATE_SHUTDOWN,
	GUEST_RUNSTATE__MAX,
};

#define GUEST_SMP_MAX 256

struct guest {
	/* RAM blocks sorted largest first, QEMU's ram_list order (the order of
	 * the MEM_SIZE record). Owned; immutable once the guest runs. */
	struct ram_block *blocks;
	size_t nblocks;
	unsigned smp_cpus;    /* -smp: vCPU threads to run (1..GUEST_SMP_MAX) */
	_Atomic int runstate; /* enum guest_runstate */
	bool autostart;	      /* QEMU's autostart: off with -S or 'stop' in
			       * inmigrate; decides the state after incoming */
	/* vCPUs: the vCPU issue adds the thread array, the pause/resume
	 * machinery driven by guest_set_runstate() and the workload here. */
	struct vcpus *vcpus;	 /* guest/vcpu.h, NULL until vcpus_new() */
	struct dirty_log *dirty; /* guest/dirty.h, NULL until dirty_log_init */
};

/* A guest without RAM in runstate initial. NULL on allocation failure. */
struct guest *guest_new(unsigned smp_cpus, enum guest_runstate initial);
/* Frees every block. NULL is fine. */
void guest_free(struct guest *g);

/* Takes ownership of b. -EEXIST if a block has that name (b not taken). */
int guest_add_block(struct guest *g, struct ram_block *b);
struct ram_block *guest_find_block(const struct guest *g, const char *name);
/* Sum of used lengths: the MEM_SIZE total. */
uint64_t guest_ram_size(const struct guest *g);

#define guest_for_each_block(g, b) for ((b) = (g)->blocks; (b); (b) = (b)->next)

enum guest_runstate guest_get_runstate(const struct guest *g);
/* Control thread. Plain state change: events and vCPU pause/resume are the
 * caller's (control/vm.c). */
void guest_set_runstate(struct guest *g, enum guest_runstate st);
bool guest_is_running(const struct guest *g);

const char *guest_runstate_name(enum guest_runstate st);
/* Index of a RunState name, or -1 (e.g. the globalstate section). */
int guest_runstate_lookup(const char *name);

#endif
