/* filemig.h — internal save/restore of the guest to/from one mapped-ram
 * file, for jobs that are not user migrations (snapshot-save/-load): a
 * private set of options (mapped-ram always on, N channels, direct-io) so
 * the user's migrate-set-capabilities/-parameters state, query-migrate and
 * MIGRATION events are untouched. The file is QEMU's mapped-ram migration
 * stream (reference §3): `migrate-incoming file:` with mapped-ram (any
 * multifd setting) restores it in migd or QEMU 10.0 too.
 *
 * The caller (the job) owns the guest's state around the operation: it
 * stops the vCPUs before filemig_save() or filemig_load() (QEMU's
 * snapshot-save/-load run with the VM stopped: STOP/RESUME are the job's),
 * refuses to start while a migration is active, and restarts the guest
 * after `done` if it wants. The save is one pass over RAM (the guest does
 * not run), with dirty logging on only for its duration.
 * Start, cancel and free: control thread. `done` runs on the control
 * thread (posted), once, after the worker thread finished. */
#ifndef MIGD_CONTROL_FILEMIG_H
#define MIGD_CONTROL_FILEMIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct migd;
struct filemig;

struct filemig_opts {
	const char *path;  /* a plain path (no /dev/fdset); copied */
	uint64_t offset;   /* where the stream starts in the file */
	unsigned channels; /* parallel I/O threads; 0: the main thread */
	bool direct_io;	   /* O_DIRECT on those threads' opens */
	/* save: the runstate recorded in the globalstate section ("running"
	 * makes an incoming migration of the file start the guest); NULL:
	 * "paused" */
	const char *runstate;
};

/* ret: 0 or -errno; err: the reason (NULL on success), borrowed for the
 * call. The filemig stays valid until filemig_free(). */
typedef void (*filemig_done_fn)(void *opaque, struct filemig *fm, int ret,
				const struct mig_error *err);

/* Starts writing the guest's RAM and device state to o->path (created
 * 0600 and truncated to offset, as 'migrate file:'). NULL with *errp when
 * it cannot start (nothing was written then). */
struct filemig *filemig_save(struct migd *md, const struct filemig_opts *o,
			     filemig_done_fn done, void *opaque,
			     struct mig_error **errp);
/* Starts loading o->path into the guest's RAM (every page: pages absent
 * from the file are cleared). On failure the RAM holds a partial image:
 * the job must not start the guest. runstate is ignored. */
struct filemig *filemig_load(struct migd *md, const struct filemig_opts *o,
			     filemig_done_fn done, void *opaque,
			     struct mig_error **errp);
/* Makes the operation fail soon with "operation cancelled" (done still
 * runs). */
void filemig_cancel(struct filemig *fm);
/* Joins the thread and frees. Call from `done` or after it ran. */
void filemig_free(struct filemig *fm);
/* Bytes of RAM pages written or read so far (progress for query-jobs). */
uint64_t filemig_progress(struct filemig *fm);

#endif
