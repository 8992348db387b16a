/* migd.h — the daemon's context: one struct migd built in main() and passed
 * to every command handler. No mutable globals anywhere else.
 * Fields are owned by the control thread unless their own header says
 * otherwise. */
#ifndef MIGD_CONTROL_MIGD_H
#define MIGD_CONTROL_MIGD_H

#include <stdbool.h>
#include <stdint.h>

struct ev_loop;
struct qmp_server;
struct guest;
struct mig_config;
struct fdsets;
struct migration;
struct incoming;
struct mig_objects;
struct dirtylimit;
struct dirtyrate;
struct swo_history;
struct jobs;
struct snapstore;
struct rv_fabric;

#define MIGD_VERSION "0.1.0"
/* The QAPI level migd implements, reported as version.qemu. */
#define MIGD_QEMU_MAJOR 9
#define MIGD_QEMU_MINOR 0
#define MIGD_QEMU_MICRO 0

struct migd {
	struct ev_loop *loop;
	struct qmp_server *qmp;
	struct guest *guest;	     /* RAM blocks, vCPUs, runstate */
	struct mig_config *config;   /* migration capabilities + parameters */
	struct fdsets *fdsets;	     /* add-fd / remove-fd / query-fdsets */
	struct mig_objects *objects; /* tls-creds-*, authz-simple
				      * (control/objects.h) */
	char *name;		     /* -name, or NULL */
	uint8_t uuid[16];	     /* -uuid, all zero when not given */
	bool has_uuid;
	char *incoming;		     /* -incoming URI or "defer", or NULL */
	int mig_status;		     /* enum mig_status (migcfg.h); NONE until a
				      * migration starts */
	struct migration *migration; /* the current or last outgoing
				      * migration (control/migration.h) */
	struct dirtyrate *dirtyrate; /* calc-dirty-rate (control/dirtyrate.h) */
	struct swo_history *swo;     /* switchover cost history across
				      * migrations (control/switchover.h) */
	struct incoming *incoming_state; /* the incoming migration, NULL
					  * until migrate-incoming/-incoming
					  * (control/incoming.h) */
	struct dirtylimit *dirtylimit;	 /* guest/dirtylimit.h: set while some
					  * vCPU has a dirty limit
					  * (control/dirtylimit_cmds.h) */
	struct jobs *jobs;		 /* query-jobs (control/jobs.h) */
	struct snapstore *snapstore;	 /* -blockdev snapshot stores
					  * (control/snapstore.h) */
	struct rv_fabric *rdma_fabric;	 /* rdma: verbs backend (rdma/verbs.h):
					  * rdma-core in migd, the loopback
					  * fabric in tests */
	bool quit_requested; /* 'quit' or a signal: leave the loop */
	int exit_status;
};

/* Asks the control loop to finish (after pending replies are flushed). */
void migd_request_quit(struct migd *md);

#endif
