/* postcopy_src.h — postcopy on the source: ADVISE, the switch
 * (migrate-start-postcopy), the background stream that serves the
 * destination's page requests first, postcopy-preempt, release-ram,
 * completion, and recovery (postcopy-paused, migrate resume:true,
 * RECV_BITMAP, RESUME) — plus the QMP side of migrate-start-postcopy,
 * migrate-pause and resume.
 * Threads: the migration thread, unless a function says otherwise; the
 * return-path thread is private to postcopy_src.c. */
#ifndef MIGD_CONTROL_POSTCOPY_SRC_H
#define MIGD_CONTROL_POSTCOPY_SRC_H

#include <stdbool.h>

#include "util/error.h"

struct migration;
struct mig_addr;
struct channel;
struct pcs;

/* With postcopy-ram: m->pcs (page-request queue, locks). 0 or -ENOMEM. */
int pcs_new(struct migration *m, struct mig_error **errp);
/* Stops the return-path thread, closes the preempt channel, frees. */
void pcs_free(struct migration *m);
/* Any thread: shuts the postcopy channels down, wakes the waits. */
void pcs_kick(struct pcs *p);
/* POSTCOPY_ADVISE after the header (postcopy-ram only). */
void pcs_put_advise(struct migration *m);
/* migrate-start-postcopy ran and this migration can do it. */
bool pcs_wanted(struct migration *m);
/* The switch, the postcopy stream, pauses and recoveries, completion:
 * 0 once completed, -errno with *errp (or -ECANCELED) otherwise. */
int pcs_run(struct migration *m, struct mig_error **errp);

/* ---- control thread (QMP) ---- */
/* migrate resume:true, QEMU's checks ("Cannot resume if there is no
 * paused migration", release-ram): paused -> postcopy-recover-setup, the
 * migration thread connects to a (taken; ch: opened fd:/exec: stream,
 * taken). 0 or -EINVAL with *errp. */
int pcs_request_resume(struct migration *m, struct mig_addr *a,
		       struct channel *ch, struct mig_error **errp);
/* migrate-pause on the source: postcopy-active or postcopy-recover shut
 * their channels down. -ENOENT (no *errp) when not applicable. */
int pcs_pause(struct migration *m, struct mig_error **errp);

#endif
