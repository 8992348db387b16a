/* postcopy_src_priv.h — what postcopy_src.c (the return-path thread, the
 * request queue, QMP entry points) and postcopy_src_run.c (the migration
 * thread's postcopy: switch, stream, pause, recovery, completion) share.
 * Lock order: m->lock before p->lock; p->lock guards everything marked
 * (lock). */
#ifndef MIGD_CONTROL_POSTCOPY_SRC_PRIV_H
#define MIGD_CONTROL_POSTCOPY_SRC_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "multifd/postcopy_req.h"
#include "util/error.h"

struct migration;
struct channel;
struct qfile;

#define PCS_QUEUE_CAP 4096

struct pcs {
	struct migration *m;
	pthread_mutex_t lock;
	pthread_cond_t cond;	     /* the migration thread's waits */
	struct pc_req_queue q;	     /* (lock) */
	struct pc_req_block *blocks; /* the guest's blocks, rs order */
	unsigned nblocks;
	bool preempt, release_ram;
	/* the return-path thread */
	pthread_t rp;
	bool rp_running;	 /* started, not joined (migration thread) */
	struct channel *rp_ch;	 /* what it reads: the main channel */
	bool rp_done, rp_failed; /* (lock) it ended; by an error */
	bool stopping;		 /* (lock) we stop it: no error then */
	bool shut;		 /* (lock) SHUT received */
	uint32_t shut_err;	 /* (lock) */
	unsigned bitmaps;	 /* (lock) RECV_BITMAP bodies applied */
	bool resume_acked;	 /* (lock) */
	/* postcopy-preempt: the channel (m->lock, for kicks) and its stream,
	 * written by the return-path thread once postcopy runs */
	struct channel *pch;
	struct qfile *pf;
};

/* Starts the return-path thread on ch (the main channel). 0 or -errno. */
int pcs_rp_start(struct pcs *p, struct channel *ch);
/* Stops and joins it (shuts ch down unless it ended by itself). */
void pcs_rp_stop(struct pcs *p);
/* Closes the preempt channel; its bytes stay counted. */
void pcs_preempt_close(struct pcs *p);
/* Replaces m->error (a new pause has a new cause). */
void pcs_set_error(struct migration *m, struct mig_error *err);

#endif
