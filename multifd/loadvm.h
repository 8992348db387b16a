/* loadvm.h — the destination's main-stream loader, QEMU's
 * qemu_loadvm_state() for migd's machine 'none': header and configuration,
 * the section loop (ram, timer, globalstate) with footers, commands (a
 * minimal return path: PONG, SWITCHOVER_ACK, SHUT), EOF and the optional
 * vmdesc. The RAM records are ram_load.c's.
 * Threads: the incoming thread (owner of the main stream's qfile); the
 * stage word may be read from any thread. */
#ifndef MIGD_MULTIFD_LOADVM_H
#define MIGD_MULTIFD_LOADVM_H

#include <stdatomic.h>
#include <stdbool.h>

#include "multifd/vmstate.h"
#include "util/error.h"

struct qfile;
struct ram_load;

/* Where the loader is, for the incoming idle policy. */
enum loadvm_stage {
	LOADVM_STAGE_HEADER,   /* reading the file header/configuration */
	LOADVM_STAGE_BOUNDARY, /* waiting for the next section or a footer:
				* a paused source (pause-before-switchover)
				* legitimately sends nothing here */
	LOADVM_STAGE_ITEM,     /* inside a section or command */
	LOADVM_STAGE_SYNC,     /* waiting for the multifd channels */
	LOADVM_STAGE_VMDESC,   /* after EOF: the optional vmdesc */
	LOADVM_STAGE_DONE,
};

struct loadvm {
	struct qfile *f; /* the main stream */
	struct ram_load *rl;
	struct vms_opts vms; /* what both ends must agree on */
	bool switchover_ack; /* the local switchover-ack capability */
	_Atomic int stage;   /* enum loadvm_stage */
	/* Results: */
	int src_runstate; /* from globalstate: a guest_runstate, or
			   * GUEST_RUNSTATE__MAX for a QEMU state migd
			   * lacks; -1 when none came */
	bool return_path; /* the source opened the return path */
	/* Section ids seen in START/FULL headers. */
	struct loadvm_section {
		uint32_t id;
		int kind;
		uint32_t version;
	} sections[16];
	int nsections;
};

/* Prepares ld for one stream (f and rl are borrowed). */
void loadvm_init(struct loadvm *ld, struct qfile *f, struct ram_load *rl,
		 const struct vms_opts *vms, bool switchover_ack);
/* Loads the whole stream up to EOF and the vmdesc. 0 or -errno with the
 * first error's message in *errp. If the source opened the return path it
 * gets SHUT(0) after success (on failure the channels are shut down, as
 * QEMU 9.0's destination exits: no SHUT). */
int loadvm_run(struct loadvm *ld, struct mig_error **errp);

/* Any thread. */
static inline enum loadvm_stage loadvm_get_stage(struct loadvm *ld)
{
	return (enum loadvm_stage)atomic_load_explicit(&ld->stage,
						       memory_order_relaxed);
}

/* For the sync callback: marks the wait for the multifd channels. */
static inline void loadvm_set_stage(struct loadvm *ld, enum loadvm_stage s)
{
	atomic_store_explicit(&ld->stage, (int)s, memory_order_relaxed);
}

#endif
