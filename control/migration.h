/* migration.h — the outgoing migration: the QMP commands migrate,
 * migrate_cancel, migrate-continue, query-migrate and
 * query-migrationthreads, and the migration thread that runs setup,
 * precopy iterations, switchover and completion.
 * Control thread, except where a function says otherwise. */
#ifndef MIGD_CONTROL_MIGRATION_H
#define MIGD_CONTROL_MIGRATION_H

#include <jansson.h>

struct migd;
struct mig_config;
struct qmp_server;
struct vms_opts;

/* Registers the commands and the parameter-change hook (live
 * max-bandwidth, downtime-limit). Call after md->config exists. */
void migration_register_qmp(struct migd *md, struct qmp_server *srv);
/* Cancels a running migration and waits for its thread; frees it. At
 * daemon exit. */
void migration_shutdown(struct migd *md);
/* The stream options both ends must agree on (knobs, validated
 * capabilities, uuid), from a configuration snapshot. Any thread. */
void migration_vms_opts(const struct migd *md, const struct mig_config *cfg,
			struct vms_opts *o);
/* Frees the last migration; after the loop has run its pending posts. */
void migration_free_last(struct migd *md);

#endif
