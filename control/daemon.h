/* daemon.h — process-level duties of main(): QEMU's -daemonize (double
 * fork; the launching parent exits 0 only once the daemon reports that it
 * is ready) and -pidfile (created, locked, removed at exit).
 * Main thread only, before other threads exist. */
#ifndef MIGD_CONTROL_DAEMON_H
#define MIGD_CONTROL_DAEMON_H

#include <stdbool.h>

#include "util/error.h"

struct daemon_state {
	int ready_fd;	/* write end of the pipe to the waiting parent, or -1 */
	int pid_fd;	/* locked pidfile, or -1 */
	char *pid_path; /* absolute path to unlink at exit */
};

void daemon_state_init(struct daemon_state *ds);

/* Forks twice. Only the daemon returns (0); the launcher waits for
 * daemon_ready() and exits 0, or 1 if the daemon died first. -errno with
 * *errp if the first fork fails. */
int daemon_start(struct daemon_state *ds, struct mig_error **errp);
/* Detaches stdio (stderr too unless keep_stderr), changes to "/", and lets
 * the launcher exit 0. No-op when not daemonized. */
void daemon_ready(struct daemon_state *ds, bool keep_stderr);

/* Writes getpid() to path, holding a lock like QEMU. 0 or -errno with
 * *errp ("cannot create PID file: Cannot lock pid file: ..."). */
int daemon_write_pidfile(struct daemon_state *ds, const char *path,
			 struct mig_error **errp);
/* Removes the pidfile (if written) and closes everything. */
void daemon_fini(struct daemon_state *ds);

#endif
