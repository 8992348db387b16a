/* migctl_watch.h — `migctl watch`: polls query-migrate over an open QMP
 * connection and shows progress until the migration ends. Owns the polling
 * loop and the terminal handling; the text comes from migctl_progress.h.
 * Single-threaded: runs on migctl's only thread. */
#ifndef MIGD_CONTRIB_MIGCTL_WATCH_H
#define MIGD_CONTRIB_MIGCTL_WATCH_H

#include <stdbool.h>
#include <stdio.h>

struct qmpc;

struct mctl_watch_opts {
	int start_timeout_ms; /* give up when no migration started (< 0: never)
			       */
	int interval_ms;      /* between two query-migrate */
	bool live;	      /* redraw one line (a terminal) instead of
			       * printing one line per change */
	FILE *out;
};

/* Returns migctl's exit status: 0 the migration completed, 1 it failed or
 * was cancelled (or none started in time, or query-migrate failed), 2 the
 * connection failed. Messages go to o->out and stderr. */
int mctl_watch(struct qmpc *c, const struct mctl_watch_opts *o);

#endif
