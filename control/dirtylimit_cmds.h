/* dirtylimit_cmds.h — QMP set-vcpu-dirty-limit, cancel-vcpu-dirty-limit
 * and query-vcpu-dirty-limit over the guest's dirty limit service
 * (guest/dirtylimit.h, held in md->dirtylimit while some vCPU is limited),
 * and what the migration's dirty-limit capability does with it.
 * Control thread only. */
#ifndef MIGD_CONTROL_DIRTYLIMIT_CMDS_H
#define MIGD_CONTROL_DIRTYLIMIT_CMDS_H

#include <stdint.h>

struct migd;
struct qmp_server;

void dirtylimit_cmds_register_qmp(struct qmp_server *srv);
/* Stops the service (daemon exit, before the vCPUs go). */
void dirtylimit_cmds_shutdown(struct migd *md);

/* The migration's dirty-limit: every vCPU limited to quota_mb, measured
 * every period_ms (x-vcpu-dirty-limit-period). 0 or -errno. */
int dirtylimit_cmds_apply_all(struct migd *md, uint64_t quota_mb,
			      uint64_t period_ms);
/* Lifts every vCPU's limit and stops the service. */
void dirtylimit_cmds_cancel_all(struct migd *md);

#endif
