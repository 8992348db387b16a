/* vm.h — the VM's runstate as QEMU's monitor and migration code see it:
 * start/stop with STOP/RESUME events, the states migration moves through,
 * shutdown with its SHUTDOWN event, and the QMP commands query-status, stop,
 * cont, quit, query-name and query-uuid.
 * Control thread only (other threads post to the control loop). */
#ifndef MIGD_CONTROL_VM_H
#define MIGD_CONTROL_VM_H

#include "guest/guest.h"

struct migd;
struct qmp_server;

/* Registers query-status, stop, cont, quit, query-name, query-uuid. */
void vm_register_qmp(struct qmp_server *srv);

/* QEMU's vm_start(): unless already running, emits RESUME and enters
 * running (the vCPU issue resumes the vCPU threads here). */
void vm_start(struct migd *md);
/* QEMU's vm_stop(): only a running VM stops; it enters st and emits STOP.
 * Any other state is left alone, without an event. */
void vm_stop(struct migd *md, enum guest_runstate st);
/* QEMU's vm_stop_force_state(): like vm_stop() when running, otherwise a
 * silent change to st (e.g. paused -> finish-migrate). */
void vm_stop_force_state(struct migd *md, enum guest_runstate st);

/* End of a successful incoming migration (QEMU's
 * process_incoming_migration_bh): src_state is the source's runstate from
 * the globalstate section, or -1 when none came. A source that was running
 * (or no globalstate) starts the VM if autostart, else leaves it paused; a
 * stopped source's state is adopted. */
void vm_incoming_done(struct migd *md, int src_state);

/* Emits SHUTDOWN {"guest": false, "reason": reason} and asks the loop to
 * quit; later calls are ignored. reason: "host-qmp-quit", "host-signal". */
void vm_shutdown(struct migd *md, const char *reason);

#endif
