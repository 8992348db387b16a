/* ram_save.h — the source side of QEMU's 'ram' section: the migration
 * bitmap (pages still to send), dirty syncs from the guest's dirty log, and
 * the START / PART / END sections with their page records — on the main
 * stream, or as multifd batches (with SYNC + MULTIFD_FLUSH at each round,
 * or before every EOS in the legacy per-section mode).
 * Migration thread only. */
#ifndef MIGD_MULTIFD_RAM_SAVE_H
#define MIGD_MULTIFD_RAM_SAVE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct guest;
struct qfile;
struct mfd_send;
struct mig_counters;
struct vms_opts;
struct ram_save;
struct ram_save_file;

enum ram_zero_detect {
	RAM_ZERO_NONE,	  /* zero pages are sent as normal pages */
	RAM_ZERO_LEGACY,  /* the migration thread finds them: ZERO records */
	RAM_ZERO_MULTIFD, /* the send threads find them: zero offsets */
};

struct ram_save_opts {
	const struct vms_opts *vms;
	struct mfd_send *mfd; /* NULL: single stream */
	/* mapped-ram: pages go to fixed file offsets (mfd must be NULL) */
	struct ram_save_file *file;
	bool flush_each_section; /* multifd-flush-after-each-section */
	enum ram_zero_detect zero;
};

/* Yes/no "stop sending now" test used inside an iteration: rate limit
 * exhausted or time slice over. */
typedef bool (*ram_save_stop_fn)(void *opaque);

/* Postcopy: the next page the destination asked for, if any (block index,
 * byte range); called between the background pages. */
struct pc_req;
typedef bool (*ram_save_urgent_fn)(void *opaque, struct pc_req *out);

struct ram_save *ram_save_new(struct guest *g, struct qfile *f,
			      const struct ram_save_opts *o,
			      struct mig_counters *ctr);
void ram_save_free(struct ram_save *rs);

/* START section: every page pending, dirty logging on, first sync (pass
 * 1), MEM_SIZE record, multifd setup sync. 0 or -errno with *errp. */
int ram_save_setup(struct ram_save *rs, struct mig_error **errp);
/* One PART section: pages until stop() says so or nothing is pending.
 * Returns 1 when everything pending was sent, 0 if stopped early, -errno. */
int ram_save_iterate(struct ram_save *rs, ram_save_stop_fn stop, void *opaque,
		     struct mig_error **errp);
/* END section with everything still pending (the VM is stopped). */
int ram_save_complete(struct ram_save *rs, struct mig_error **errp);
/* Pulls the dirty log into the migration bitmap (a "dirty sync"):
 * returns the pages newly dirtied. Bumps dirty-sync-count. */
uint64_t ram_save_sync(struct ram_save *rs);
/* Pages a sync now would newly add (dirty in the guest's log, not
 * pending), counted without consuming the log: for live statistics. */
uint64_t ram_save_peek_fresh(const struct ram_save *rs);
/* Pages still to send. */
uint64_t ram_save_pending_pages(const struct ram_save *rs);
/* Stops dirty logging (end of migration, any outcome). */
void ram_save_cleanup(struct ram_save *rs);

#endif
