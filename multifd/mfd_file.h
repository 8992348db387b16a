/* mfd_file.h — the multifd workers of a mapped-ram file migration: N
 * threads ("mig/file/N"), each owning one file channel (its own open of
 * the file, O_DIRECT with direct-io), that run a job function on items
 * handed over by pointer swap (no copy): batches of pages to pwritev on the
 * source, <= 1 MiB chunks to preadv on the destination. No packets, no
 * init messages, no SYNC: a sync only waits until every worker is idle.
 * With no workers, queued items run at once on the caller's thread and
 * channel (mapped-ram without multifd).
 * queue/sync/free: one thread (the migration or incoming thread); kick and
 * error: any thread. */
#ifndef MIGD_MULTIFD_MFD_FILE_H
#define MIGD_MULTIFD_MFD_FILE_H

#include <stddef.h>

#include "util/error.h"

struct channel;
struct mfd_file;

/* Runs one item on ch. 0 or -errno with *errp. */
typedef int (*mfd_file_job_fn)(struct channel *ch, void *item,
			       struct mig_error **errp);

/* Takes chans[0..n) (NULL-ed in the array once taken; closed at free) and
 * starts one thread per channel. inline_ch (borrowed) runs the items when
 * n == 0. Each worker gets its own item of item_size bytes (zeroed). NULL
 * with *errp. */
struct mfd_file *mfd_file_start(struct channel **chans, unsigned n,
				struct channel *inline_ch, size_t item_size,
				mfd_file_job_fn fn, struct mig_error **errp);
/* Hands *item to an idle worker and gives back that worker's spare item
 * in its place (contents undefined); blocks while all are busy. 0, or the
 * first worker error (-errno) once one failed or the pool was kicked. */
int mfd_file_queue(struct mfd_file *p, void **item);
/* Waits until every worker is idle. 0 or the first error. */
int mfd_file_sync(struct mfd_file *p);
/* Fails the pool (-ECANCELED) and shuts the channels down. Any thread. */
void mfd_file_kick(struct mfd_file *p);
/* The first error (copied into *errp when errp is set), 0 if none. */
int mfd_file_error(struct mfd_file *p, struct mig_error **errp);
/* Stops and joins the threads, closes their channels. NULL is fine. */
void mfd_file_free(struct mfd_file *p);
unsigned mfd_file_nthreads(const struct mfd_file *p);

#endif
