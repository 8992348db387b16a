/* snapshot.h — QMP snapshot-save, snapshot-load and snapshot-delete as
 * jobs (control/jobs.h) over the snapshot stores (control/snapstore.h),
 * with QEMU 9.0's semantics: argument and state errors are job errors
 * (aborting -> concluded with "error"), the VM is stopped during a save
 * and resumed if it ran; a load stops it and resumes it only when the
 * whole image loaded (a failed load leaves the guest stopped, never
 * running on partial RAM). The guest's RAM moves with control/filemig.
 * Control thread only. */
#ifndef MIGD_CONTROL_SNAPSHOT_H
#define MIGD_CONTROL_SNAPSHOT_H

#include "util/error.h"

struct migd;
struct cmdline;
struct qmp_server;

/* Builds md->snapstore from the -blockdev options and md->jobs. 0 or
 * -errno with *errp (prefixed with the -blockdev argument). */
int snapshot_init(struct migd *md, const struct cmdline *cl,
		  struct mig_error **errp);
/* Registers snapshot-save/-load/-delete, query-jobs and job-dismiss. */
void snapshot_register_qmp(struct qmp_server *srv);
/* At exit, before the QMP server goes: cancels a running save/load, waits
 * for its thread and frees the jobs. */
void snapshot_shutdown(struct migd *md);
/* Frees the stores. */
void snapshot_free(struct migd *md);

#endif
