/* loadvm.h — the destination's main-stream loader, QEMU's
 * qemu_loadvm_state() for migd's machine 'none': header and configuration,
 * the section loop (ram, timer, globalstate) with footers, commands (a
 * minimal return path: PONG, SWITCHOVER_ACK, SHUT; postcopy's commands,
 * page requests, pause and recovery in loadvm_postcopy.c), EOF and the
 * optional vmdesc. The RAM records are ram_load.c's.
 * Threads: the incoming thread (owner of the main stream's qfile; after
 * postcopy's LISTEN it is QEMU's listen thread); the stage word may be
 * read from any thread; return-path writes are serialised by rp_lock (the
 * uffd fault thread sends page requests). */
#ifndef MIGD_MULTIFD_LOADVM_H
#define MIGD_MULTIFD_LOADVM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "multifd/vmstate.h"
#include "util/error.h"

struct channel;
struct qfile;
struct ram_load;
struct uffd;

/* What the loader tells its owner (the incoming migration) about postcopy,
 * from the loading thread. */
enum loadvm_event {
	LOADVM_EV_LISTEN,  /* RAM registered: status postcopy-active */
	LOADVM_EV_RUN,	   /* start the vCPUs now */
	LOADVM_EV_RESUMED, /* recovery done: postcopy-active again */
};

struct loadvm_postcopy_opts {
	bool postcopy_ram; /* the local postcopy-ram capability */
	bool blocktime;	   /* postcopy-blocktime */
	unsigned nr_vcpus;
	void (*notify)(void *opaque, enum loadvm_event ev);
	/* A network error while postcopy runs (err taken): blocks until a
	 * new main channel arrives (migrate-recover) and returns its reader,
	 * or NULL when the migration must end instead. */
	struct qfile *(*pause)(void *opaque, struct mig_error *err);
	/* multifd: true when no receiver is inside a packet (LISTEN needs
	 * every precopy page landed: the source flushes them first). NULL
	 * without multifd. */
	bool (*multifd_idle)(void *opaque);
	/* RECV_BITMAP / RESUME are only valid while recovering. */
	bool (*recovering)(void *opaque);
	/* postcopy-preempt: pages requested last may still be on the preempt
	 * channel when the main stream ends; the loader waits for them
	 * (bounded) while stopping() is false (NULL: never stopping). */
	bool preempt;
	bool (*stopping)(void *opaque);
	void *opaque;
};

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
	/* Postcopy (loadvm_postcopy.c). */
	struct loadvm_postcopy_opts pco;
	_Atomic int ps;	   /* enum pc_incoming_state */
	bool nested;	   /* loading a PACKAGED blob */
	bool run_seen;	   /* RUN ended the PACKAGED blob */
	struct uffd *uffd; /* opened at ADVISE, freed by loadvm_fini() */
	int *ranges;	   /* per ram_load block: uffd range id or -1 */
	int nranges;
	/* The return path, shared with the uffd fault thread. */
	pthread_mutex_t rp_lock;
	struct channel *rp_ch; /* NULL while postcopy is paused */
	int rp_last_block;     /* block of the last REQ_PAGES(_ID) */
	_Atomic uint64_t page_requests;
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
/* Postcopy options (before loadvm_run). */
void loadvm_set_postcopy(struct loadvm *ld,
			 const struct loadvm_postcopy_opts *o);
/* Frees what postcopy opened: stops the fault thread and unregisters RAM
 * (vCPUs still blocked on missing pages then see zeros: only after the
 * migration completed, or when the guest will never run again). After
 * every thread using ld was joined. */
void loadvm_fini(struct loadvm *ld);
/* Stops the fault thread only: the vCPUs stay blocked on missing pages
 * until loadvm_fini(). */
void loadvm_stop_faults(struct loadvm *ld);
/* Loads the whole stream up to EOF and the vmdesc. 0 or -errno with the
 * first error's message in *errp. If the source opened the return path it
 * gets SHUT(0) after success (on failure the channels are shut down, as
 * QEMU 9.0's destination exits: no SHUT). */
int loadvm_run(struct loadvm *ld, struct mig_error **errp);

/* ---- postcopy, any thread (loadvm_postcopy.c) ---- */
/* The PostcopyState (enum pc_incoming_state). */
int loadvm_postcopy_state(struct loadvm *ld);
/* Points the return path at ch (NULL: paused; page requests are kept
 * pending and re-sent by loadvm_rerequest_pending()). */
void loadvm_set_return_path(struct loadvm *ld, struct channel *ch);
/* Sends REQ_PAGES for every page faulted on and not yet received. */
int loadvm_rerequest_pending(struct loadvm *ld);
/* Blocktime: total ms (or -ENOTSUP) and per-vCPU values. */
int64_t loadvm_blocktime(struct loadvm *ld, uint32_t *vcpu_ms, unsigned n);
void loadvm_blocktime_vcpu(struct loadvm *ld, unsigned cpu, uint32_t tid);
/* Loads the postcopy preempt channel f (QEMU's postcopy_preempt_thread):
 * page records with the channel's own CONTINUE state, until EOS or the end
 * of the stream. 0 at EOS, -errno otherwise. */
int loadvm_load_preempt(struct loadvm *ld, struct qfile *f,
			struct mig_error **errp);

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
