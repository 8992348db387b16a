/* guest_cmds.h — QMP commands for the guest's workload and RAM:
 * x-guest-workload (set and query the vCPU workload, per-vCPU progress)
 * and x-query-ram-digest. Control thread only. */
#ifndef MIGD_CONTROL_GUEST_CMDS_H
#define MIGD_CONTROL_GUEST_CMDS_H

struct qmp_server;

void guest_cmds_register_qmp(struct qmp_server *srv);

#endif
