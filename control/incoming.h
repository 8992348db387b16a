/* incoming.h — the incoming (destination) migration: the QMP command
 * migrate-incoming and -incoming URI, the listener, channel classification,
 * the incoming and multifd receive threads, the destination's status
 * (none -> setup -> active [-> postcopy-active <-> postcopy-paused ->
 * postcopy-recover] -> completed | failed) with its MIGRATION events,
 * query-migrate's destination fields, and the runstate at the end.
 * Postcopy's side is control/postcopy_dst.c.
 * Control thread only; the threads it starts report back through
 * ev_loop_post(). */
#ifndef MIGD_CONTROL_INCOMING_H
#define MIGD_CONTROL_INCOMING_H

#include <jansson.h>

#include "util/error.h"

struct migd;
struct qmp_server;

/* Registers migrate-incoming. */
void incoming_register_qmp(struct qmp_server *srv);

/* -incoming URI at startup (QEMU runs qmp_migrate_incoming() from its
 * command line once the monitors exist). No-op without -incoming or with
 * "defer". 0 or -errno with *errp (main prints "-incoming URI: ..."). */
int incoming_start_cmdline(struct migd *md, struct mig_error **errp);

/* The destination's part of query-migrate, as QEMU's
 * fill_destination_migration_info(): nothing before any incoming
 * migration; otherwise "status", "error-desc" (failed) and
 * "socket-address" (while listening), set in info. Call it before the
 * source's part, which overrides "status" when the source has one (QEMU's
 * order). */
void incoming_fill_query_info(struct migd *md, json_t *info);

/* At daemon exit: stops an incoming migration (shuts its channels down,
 * joins its threads, closes everything). Calls it posted may still be
 * queued: they find it finished and do nothing. */
void incoming_shutdown(struct migd *md);
/* Frees what is left, after the event loop is gone. */
void incoming_free(struct migd *md);

#endif
